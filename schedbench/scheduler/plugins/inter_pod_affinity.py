"""InterPodAffinity: required pod affinity and anti-affinity (Filter), preferred ones and the
symmetric weight of existing pods' terms (Score), as kube-scheduler v1.35 computes them.

Terms are compiled as described in :mod:`schedbench.scheduler.podaffinity`; a *topology pair*
is (topology key, the node's value of that label), and a node lacking the label is in no pair.

PreFilter counts, per topology pair:

1. existing anti-affinity: for every required anti-affinity term of every bound pod that matches
   the incoming pod (its namespace's labels used for namespace selectors), +1 on the pair of the
   bound pod's node;
2. affinity: for every bound pod that matches *all* the incoming pod's required affinity terms,
   +1 on the pair of each term (a pod matching every term is counted once per term);
3. anti-affinity: for every required anti-affinity term of the incoming pod and every bound pod
   matching it, +1 on that term's pair.

It returns Skip when (1) has no pair and the pod has no required affinity nor anti-affinity
term. Filter checks, in this order:

- affinity (``UnschedulableAndUnresolvable``, "node(s) didn't match pod affinity rules"): the
  node has every term's topology key, and every term's pair has a positive count - unless no
  pair was counted at all and the pod matches all its own terms (the first pod of a group with
  affinity to itself), in which case having the keys is enough;
- the pod's anti-affinity (``Unschedulable``, "node(s) didn't match pod anti-affinity rules"):
  no term's pair on the node has a positive count;
- existing pods' anti-affinity (``Unschedulable``, "node(s) didn't satisfy existing pods
  anti-affinity rules"): none of the node's labels forms a pair with a positive count.

PreScore sums weights per topology pair over every bound pod: the incoming pod's preferred
affinity (+weight) and anti-affinity (-weight) terms the bound pod matches; the bound pod's
required affinity terms matching the incoming pod (+hardPodAffinityWeight, when positive); the
bound pod's preferred affinity (+weight) and anti-affinity (-weight) terms matching the incoming
pod. It returns Skip when there are no nodes, when ``ignorePreferredTermsOfExistingPods`` is set
and the incoming pod has no preferred terms (then nothing at all is counted, not even the hard
weight), or when no term matched on a node with its topology key. Score is the sum of the pairs
of the node's labels; NormalizeScore maps ``[min, max]`` over the scored nodes to 0..100 as
``int(100.0 * (float(s - min) / float(max - min)))`` (all 0 when max == min).

Counts come from :class:`~schedbench.scheduler.podaffinity.AffinityIndex`, kept incrementally as
pods bind and leave, so a cycle costs one test per distinct term (or label class of bound pods)
plus the nodes those groups occupy, never a pass over all bound pods. A Filter call after the
bound pods changed (preemption's dry runs remove victims) recomputes the PreFilter counts, which
is what kube's AddPod/RemovePod extensions amount to.
"""

from __future__ import annotations

import numpy as np

from ...config import InterPodAffinityArgs
from ..framework import MAX_NODE_SCORE, CycleState, Plugin, Status, register
from ..podaffinity import (HARD, Segments, Term, affinity_index, affinity_term_matches,
                           domain_scores, filter_reasons,
                           pod_terms, resolve_namespaces)
from ..snapshot import NodeSnapshot, PodInfo

ERR_REASON_EXISTING_ANTI_AFFINITY = "node(s) didn't satisfy existing pods anti-affinity rules"
ERR_REASON_AFFINITY = "node(s) didn't match pod affinity rules"
ERR_REASON_ANTI_AFFINITY = "node(s) didn't match pod anti-affinity rules"

_REASONS = ("", ERR_REASON_AFFINITY, ERR_REASON_ANTI_AFFINITY, ERR_REASON_EXISTING_ANTI_AFFINITY)
_CODES = np.array([0, 3, 2, 2], np.int8)  # by reason index: Success, Unresolvable, Unschedulable
_EMPTY: dict[str, str] = {}
_NO_INT = np.zeros(0, np.int64)


class _Slots:
    """Topology keys of one cycle -> slot index, with the snapshot's label column of each."""

    def __init__(self, snapshot: NodeSnapshot) -> None:
        self.snapshot = snapshot
        self.index: dict[str, int] = {}
        self.cols: list[int] = []

    def slot(self, key: str) -> int:
        s = self.index.get(key)
        if s is None:
            s = self.index[key] = len(self.cols)
            self.cols.append(self.snapshot.label_key_id(key))
        return s

    def table(self, tables: int) -> np.ndarray:
        vocab = self.snapshot.vocab
        width = max([len(vocab.values[c]) for c in self.cols if c >= 0], default=0)
        return np.zeros((tables, max(1, len(self.cols)), max(1, width)), np.int64)

    def col_array(self, slots: list[int]) -> np.ndarray:
        return np.array([self.cols[s] for s in slots], np.int64) if slots else _NO_INT


class _FilterState:
    __slots__ = ("version", "generation", "skip", "keys", "table", "aff_cols", "aff_slots",
                 "allow_self", "anti_cols", "anti_slots", "ex_cols", "ex_slots")


class _ScoreState:
    __slots__ = ("cols", "table")

    def __init__(self, cols: np.ndarray, table: np.ndarray) -> None:
        self.cols = cols
        self.table = table


@register
class InterPodAffinity(Plugin):
    name = "InterPodAffinity"
    args_type = InterPodAffinityArgs
    events = frozenset({"AssignedPodAdd", "AssignedPodDelete", "NodeAdd", "NodeUpdate"})

    def __init__(self, args, handle) -> None:
        super().__init__(args, handle)
        self.index = affinity_index(handle.snapshot)

    def queueing_hint(self, pod: PodInfo, event: str, other) -> bool:
        """isSchedulableAfterPodChange for an added assigned pod (QueueingHints, GA in v1.34):
        it can only help if it matches *all* of the pending pod's required affinity terms;
        kube matches them with nil namespace labels, so a namespace selector matches only
        when it matches an empty label set. Other events requeue."""
        if event != "AssignedPodAdd" or other is None:
            return True
        affinity = pod.pod.spec.affinity
        terms = affinity.pod_affinity.required if affinity and affinity.pod_affinity else []
        if not terms:
            return False
        return all(affinity_term_matches(t, pod, other, {}) for t in terms)

    # ---------------------------------------------------------------------------- helpers

    def _namespace_labels(self) -> dict[str, dict[str, str]]:
        cluster = self.handle.cluster
        if cluster is None:
            return {}
        return {ns.metadata.name: ns.metadata.labels for ns in cluster.namespaces}

    def _resolved(self, terms, nsmap) -> list[Term]:
        return [resolve_namespaces(t, nsmap) for t in terms]

    # ---------------------------------------------------------------------------- filter

    def _compute_filter_state(self, pod: PodInfo) -> _FilterState:
        snap, index = self.handle.snapshot, self.index
        terms = pod_terms(pod)
        nsmap = self._namespace_labels()
        own_ns_labels = nsmap.get(pod.namespace, _EMPTY)
        affinity = self._resolved(terms.required_affinity, nsmap)
        anti = self._resolved(terms.required_anti_affinity, nsmap)
        slots = _Slots(snap)
        seg = Segments()
        ex_slots: list[int] = []
        for t, group in index.anti_terms.items():
            if t.matches(pod.namespace, pod.labels, own_ns_labels):
                s = slots.slot(t.topology_key)
                if s not in ex_slots:
                    ex_slots.append(s)
                seg.add(group, slots.cols[s], 0, s, 1)
        aff_slots = [slots.slot(t.topology_key) for t in affinity]
        if affinity:
            common = set(index.matching_classes(affinity[0]))
            for t in affinity[1:]:
                common.intersection_update(index.matching_classes(t))
            groups = index.populated(sorted(common))
            for s in aff_slots:
                for g in groups:
                    seg.add(g, slots.cols[s], 1, s, 1)
        anti_slots = [slots.slot(t.topology_key) for t in anti]
        for t, s in zip(anti, anti_slots):
            for g in index.populated(index.matching_classes(t)):
                seg.add(g, slots.cols[s], 2, s, 1)
        table = slots.table(3)
        seg.accumulate(snap.labels, table)

        st = _FilterState()
        st.version = index.version
        st.generation = snap.generation
        st.skip = not affinity and not anti and not table[0].any()
        st.keys = list(slots.index)
        st.table = table
        st.aff_cols = slots.col_array(aff_slots)
        st.aff_slots = np.array(aff_slots, np.int64)
        st.allow_self = bool(affinity) and not table[1].any() and all(
            t.matches(pod.namespace, pod.labels, _EMPTY) for t in affinity)
        st.anti_cols = slots.col_array(anti_slots) if table[2].any() else _NO_INT
        st.anti_slots = np.array(anti_slots, np.int64) if table[2].any() else _NO_INT
        st.ex_cols = slots.col_array(ex_slots) if table[0].any() else _NO_INT
        st.ex_slots = np.array(ex_slots, np.int64) if table[0].any() else _NO_INT
        return st

    def _filter_state(self, state: CycleState, pod: PodInfo) -> _FilterState:
        st = state.get(self.name)
        if st is None or st.version != self.index.version \
                or st.generation != self.handle.snapshot.generation:
            st = state[self.name] = self._compute_filter_state(pod)
        return st

    def pre_filter(self, state: CycleState, pod: PodInfo, nodes: np.ndarray):
        st = state[self.name] = self._compute_filter_state(pod)
        return (Status.skip() if st.skip else Status.success()), None

    def prefilter_counts(self, state: CycleState, pod: PodInfo) -> dict[str, dict]:
        """PreFilter's three maps as kube keeps them, {(topology key, value): count} without
        zero entries: ``existing_anti``, ``affinity`` and ``anti`` (for tests and explain)."""
        st = self._filter_state(state, pod)
        snap = self.handle.snapshot
        out: dict[str, dict] = {}
        for name, t in (("existing_anti", 0), ("affinity", 1), ("anti", 2)):
            pairs = {}
            for s, key in enumerate(st.keys):
                col = snap.label_key_id(key)
                if col < 0:
                    continue
                names = snap.vocab.values[col].names
                for v in np.flatnonzero(st.table[t, s]):
                    pairs[(key, names[v])] = int(st.table[t, s, v])
            out[name] = pairs
        return out

    def _reasons(self, st: _FilterState, nodes: np.ndarray) -> np.ndarray:
        return filter_reasons(self.handle.snapshot, nodes, st.table, st.aff_cols, st.aff_slots,
                              st.allow_self, st.anti_cols, st.anti_slots, st.ex_cols,
                              st.ex_slots)

    def filter(self, state: CycleState, pod: PodInfo, nodes: np.ndarray) -> np.ndarray:
        st = self._filter_state(state, pod)
        if st.skip:
            return np.zeros(len(nodes), np.int8)
        return _CODES[self._reasons(st, nodes)]

    def filter_reasons(self, state: CycleState, pod: PodInfo, node: int) -> list[str]:
        st = self._filter_state(state, pod)
        if st.skip:
            return []
        r = int(self._reasons(st, np.array([node], np.int64))[0])
        return [_REASONS[r]] if r else []

    # ----------------------------------------------------------------------------- score

    def _compute_score_state(self, pod: PodInfo, nodes: np.ndarray) -> _ScoreState | None:
        """PreScore's counts, or None for Skip."""
        if len(nodes) == 0:
            return None
        terms = pod_terms(pod)
        has_constraints = bool(terms.preferred_affinity or terms.preferred_anti_affinity)
        if self.args.ignore_preferred_terms_of_existing_pods and not has_constraints:
            return None
        snap, index = self.handle.snapshot, self.index
        nsmap = self._namespace_labels()
        own_ns_labels = nsmap.get(pod.namespace, _EMPTY)
        slots = _Slots(snap)
        seg = Segments()
        for weighted, sign in ((terms.preferred_affinity, 1), (terms.preferred_anti_affinity, -1)):
            for t, w in weighted:
                t = resolve_namespaces(t, nsmap)
                s = slots.slot(t.topology_key)
                for g in index.populated(index.matching_classes(t)):
                    seg.add(g, slots.cols[s], 0, s, sign * w)
        hard = self.args.hard_pod_affinity_weight
        for (t, kind, w), group in index.score_terms.items():
            if kind == HARD:
                if hard <= 0:
                    continue
                w = hard
            if t.matches(pod.namespace, pod.labels, own_ns_labels):
                s = slots.slot(t.topology_key)
                seg.add(group, slots.cols[s], 0, s, w)
        table = slots.table(1)
        if seg.accumulate(snap.labels, table) == 0:
            return None
        return _ScoreState(np.array(slots.cols, np.int64), table[0])

    def pre_score(self, state: CycleState, pod: PodInfo, nodes: np.ndarray) -> Status:
        st = self._compute_score_state(pod, nodes)
        key = self.name + "/score"
        if st is None:
            state.pop(key, None)
            return Status.skip()
        state[key] = st
        return Status.success()

    def score(self, state: CycleState, pod: PodInfo, nodes: np.ndarray) -> np.ndarray:
        st = state.get(self.name + "/score")
        if st is None:
            return np.zeros(len(nodes), np.int64)
        return domain_scores(self.handle.snapshot, nodes, st.cols, st.table)

    def normalize_score(self, state: CycleState, pod: PodInfo, nodes: np.ndarray,
                        scores: np.ndarray) -> None:
        if state.get(self.name + "/score") is None or scores.size == 0:
            return
        lo, hi = int(scores.min()), int(scores.max())
        diff = hi - lo
        if diff > 0:
            scores[:] = (float(MAX_NODE_SCORE)
                         * ((scores - lo).astype(np.float64) / float(diff))).astype(np.int64)
        else:
            scores[:] = 0
