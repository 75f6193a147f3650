"""NodeAffinity: ``spec.nodeSelector`` and required node affinity (Filter), preferred node
affinity (Score), plus the scheduler-enforced ``addedAffinity`` of NodeAffinityArgs.

PreFilter (kube v1.35):

- Skip when the pod has no required node affinity, no ``nodeSelector`` and the plugin has no
  added required affinity;
- when every required term pins ``metadata.name`` with ``matchFields`` (operator In), the
  allowed nodes are the union over terms of the intersection of each term's names (a term
  without such a field means "all nodes"); when that union is empty: UnschedulableAndUnresolvable
  "pod affinity terms conflict".

Filter: a node outside the added affinity is UnschedulableAndUnresolvable "node(s) didn't match
scheduler-enforced node affinity"; one not matching ``nodeSelector`` AND the required terms
(``GetRequiredNodeAffinity(pod).Match``) "node(s) didn't match Pod's node affinity/selector".

PreScore skips when neither the pod nor the args have preferred terms. Score sums the weights
of the matching preferred terms (args' and pod's); NormalizeScore is DefaultNormalizeScore.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ...config import NodeAffinityArgs
from ...model.labels import (
    NODE_NAME_FIELD,
    NodeSelector,
    Operator,
    node_selector_term_from_dict,
)
from ...model.objects import Pod
from ..framework import (
    UNRESOLVABLE,
    CycleState,
    Plugin,
    Status,
    default_normalize_score,
    node_change,
    register,
)
from ..nodeselector import (
    CompiledNodeSelector,
    WeightedTerms,
    compile_node_selector,
    compile_pod_node_affinity,
    compile_weighted_terms,
    match_nodes,
    refresh,
    weighted_scores,
)
from ..snapshot import NodeSnapshot, PodInfo

ERR_REASON_POD = "node(s) didn't match Pod's node affinity/selector"
ERR_REASON_ENFORCED = "node(s) didn't match scheduler-enforced node affinity"
ERR_REASON_CONFLICT = "pod affinity terms conflict"

_REQ = "requiredDuringSchedulingIgnoredDuringExecution"
_PREF = "preferredDuringSchedulingIgnoredDuringExecution"


def _required(pod: Pod) -> NodeSelector | None:
    aff = pod.spec.affinity
    if aff is None or aff.node_affinity is None:
        return None
    return aff.node_affinity.required


def _preferred(pod: Pod) -> list:
    aff = pod.spec.affinity
    if aff is None or aff.node_affinity is None:
        return []
    return aff.node_affinity.preferred


def pinned_node_names(required: NodeSelector) -> set[str] | None:
    """The PreFilter node-name set of required terms: None when some term does not pin
    ``metadata.name`` (all nodes eligible), else the union of per-term intersections."""
    names: set[str] | None = None
    for term in required.terms:
        term_names: set[str] | None = None
        for f in term.match_fields:
            if f.key == NODE_NAME_FIELD and f.operator is Operator.IN:
                s = {f.value}
                term_names = s if term_names is None else term_names & s
        if term_names is None:
            return None
        names = term_names if names is None else names | term_names
    return names


class _FilterState:
    __slots__ = ("compiled",)

    def __init__(self, compiled: CompiledNodeSelector | None) -> None:
        self.compiled = compiled


class _ScoreState:
    __slots__ = ("terms",)

    def __init__(self, terms: WeightedTerms | None) -> None:
        self.terms = terms


def _requires_match(pod: Pod, node) -> bool:
    """``nodeaffinity.GetRequiredNodeAffinity(pod).Match(node)``: the nodeSelector and the
    required terms, on a Node object."""
    labels = node.metadata.labels
    for k, v in (pod.spec.node_selector or {}).items():
        if labels.get(k) != v:
            return False
    required = _required(pod)
    return required is None or required.matches(labels, node.metadata.name)


@register
class NodeAffinity(Plugin):
    name = "NodeAffinity"
    args_type = NodeAffinityArgs
    # kube: Node/Add | Node/UpdateNodeLabel.
    events = frozenset({"NodeAdd", "NodeUpdate"})

    def queueing_hint(self, pod: PodInfo, event: str, other) -> bool:
        """kube's ``isSchedulableAfterNodeChange``: the new node matches the added affinity
        and the pod's required node affinity, and (for an update) the old one did not."""
        change = node_change(event, other)
        if change is None:
            return True
        old, new = change
        if self.added_required is not None and not self.added_required.matches(
                new.metadata.labels, new.metadata.name):
            return False
        if not _requires_match(pod.pod, new):
            return False
        return old is None or not _requires_match(pod.pod, old)

    def __init__(self, args: Any, handle) -> None:
        super().__init__(args, handle)
        added = self.args.added_affinity or {}
        self.added_required: NodeSelector | None = None
        if added.get(_REQ) is not None:
            self.added_required = NodeSelector(tuple(
                node_selector_term_from_dict(t)
                for t in (added[_REQ].get("nodeSelectorTerms") or ())))
        # kube builds the added preferred terms only when the list is non-empty.
        self.added_preferred: list[tuple[int, Any]] | None = None
        if added.get(_PREF):
            self.added_preferred = [(int(t.get("weight") or 0),
                                     node_selector_term_from_dict(t.get("preference")))
                                    for t in added[_PREF]]
        self._added_compiled: tuple[int, CompiledNodeSelector] | None = None
        self._added_pref_compiled: tuple[int, WeightedTerms] | None = None

    # --------------------------------------------------------------------------- helpers

    @property
    def snapshot(self) -> NodeSnapshot:
        return self.handle.snapshot

    def _added_selector(self) -> CompiledNodeSelector | None:
        if self.added_required is None:
            return None
        snap = self.snapshot
        c = self._added_compiled
        if c is None or c[0] != id(snap):
            c = self._added_compiled = (id(snap), compile_node_selector(snap, self.added_required))
        compiled = refresh(snap, c[1])
        if compiled is not c[1]:
            self._added_compiled = (id(snap), compiled)
        return compiled

    def _added_weighted(self) -> WeightedTerms | None:
        if self.added_preferred is None:
            return None
        snap = self.snapshot
        c = self._added_pref_compiled
        if c is None or c[0] != id(snap):
            c = self._added_pref_compiled = (id(snap),
                                             compile_weighted_terms(snap, self.added_preferred))
        return c[1]

    def _pod_selector(self, pod: PodInfo) -> CompiledNodeSelector | None:
        """The pod's compiled nodeSelector + required affinity, cached on the pod."""
        key = "NodeAffinity/required"
        snap = self.snapshot
        cached = pod.cache.get(key)
        if cached is None or cached[0] != id(snap):
            cached = pod.cache[key] = (id(snap), compile_pod_node_affinity(snap, pod.pod))
        if cached[1] is None:
            return None
        compiled = refresh(snap, cached[1])
        if compiled is not cached[1]:
            pod.cache[key] = (id(snap), compiled)
        return compiled

    def _filter_state(self, state: CycleState, pod: PodInfo) -> _FilterState:
        s = state.get(self.name)
        if not isinstance(s, _FilterState):  # Filter without PreFilter
            s = _FilterState(self._pod_selector(pod))
        return s

    # ---------------------------------------------------------------------------- filter

    def pre_filter(self, state: CycleState, pod: PodInfo, nodes: np.ndarray):
        required = _required(pod.pod)
        if required is None and self.added_required is None and not pod.pod.spec.node_selector:
            return Status.skip(), None
        state[self.name] = _FilterState(self._pod_selector(pod))
        if required is None or not required.terms:
            return Status.success(), None
        names = pinned_node_names(required)
        if names is None:
            return Status.success(), None
        if not names:
            return Status.unschedulable(ERR_REASON_CONFLICT, resolvable=False), None
        snap = self.snapshot
        idx = sorted(i for i in (snap.node_index.get(n, -1) for n in names)
                     if i >= 0 and snap.alive[i])
        return Status.success(), np.array(idx, np.int64)

    def filter(self, state: CycleState, pod: PodInfo, nodes: np.ndarray) -> np.ndarray:
        nodes = np.asarray(nodes, np.int64)
        snap = self.snapshot
        ok = match_nodes(snap, self._filter_state(state, pod).compiled, nodes)
        added = self._added_selector()
        if added is not None:
            ok &= match_nodes(snap, added, nodes)
        out = np.zeros(nodes.size, np.int8)
        out[~ok] = UNRESOLVABLE
        return out

    def filter_reasons(self, state: CycleState, pod: PodInfo, node: int) -> list[str]:
        snap = self.snapshot
        one = np.array([node], np.int64)
        added = self._added_selector()
        if added is not None and not match_nodes(snap, added, one)[0]:
            return [ERR_REASON_ENFORCED]
        if not match_nodes(snap, self._filter_state(state, pod).compiled, one)[0]:
            return [ERR_REASON_POD]
        return []

    def filter_reasons_batch(self, state: CycleState, pod: PodInfo, nodes: np.ndarray
                             ) -> list[list[str]]:
        snap = self.snapshot
        nodes = np.asarray(nodes, np.int64)
        added = self._added_selector()
        enforced_bad = ~match_nodes(snap, added, nodes) if added is not None else \
            np.zeros(nodes.size, np.bool_)
        pod_bad = ~match_nodes(snap, self._filter_state(state, pod).compiled, nodes)
        return [[ERR_REASON_ENFORCED] if e else [ERR_REASON_POD] if p else []
                for e, p in zip(enforced_bad.tolist(), pod_bad.tolist())]

    # ----------------------------------------------------------------------------- score

    def _pod_weighted(self, pod: PodInfo) -> WeightedTerms | None:
        preferred = _preferred(pod.pod)
        if not preferred:
            return None
        key = "NodeAffinity/preferred"
        snap = self.snapshot
        cached = pod.cache.get(key)
        if cached is None or cached[0] != id(snap):
            cached = pod.cache[key] = (id(snap), compile_weighted_terms(
                snap, [(t.weight, t.preference) for t in preferred]))
        return cached[1]

    def pre_score(self, state: CycleState, pod: PodInfo, nodes: np.ndarray) -> Status:
        terms = self._pod_weighted(pod)
        if terms is None and self.added_preferred is None:
            return Status.skip()
        state[self.name + "/score"] = _ScoreState(terms)
        return Status.success()

    def score(self, state: CycleState, pod: PodInfo, nodes: np.ndarray) -> np.ndarray:
        nodes = np.asarray(nodes, np.int64)
        snap = self.snapshot
        total = np.zeros(nodes.size, np.int64)
        added = self._added_weighted()
        if added is not None:
            total += weighted_scores(snap, added, nodes)
        s = state.get(self.name + "/score")
        terms = s.terms if isinstance(s, _ScoreState) else self._pod_weighted(pod)
        if terms is not None:
            total += weighted_scores(snap, terms, nodes)
        return total

    def normalize_score(self, state: CycleState, pod: PodInfo, nodes: np.ndarray,
                        scores: np.ndarray) -> None:
        default_normalize_score(scores)
