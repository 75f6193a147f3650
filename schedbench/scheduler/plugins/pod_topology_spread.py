"""PodTopologySpread: keep matching pods evenly spread over topology domains (kube-scheduler
v1.35, ``pkg/scheduler/framework/plugins/podtopologyspread``).

Constraints
    The pod's ``topologySpreadConstraints`` of the action at hand (``DoNotSchedule`` for
    Filter, ``ScheduleAnyway`` for Score). A pod without any constraint gets the plugin's
    default constraints (``System``: hostname maxSkew 3 and zone maxSkew 5, both
    ScheduleAnyway) with the selector deduced from its Services and controller
    (:func:`~schedbench.scheduler.spreading.default_selector`), and none when nothing selects
    it. A null ``labelSelector`` matches no pod; ``matchLabelKeys`` adds ``key=value`` of the
    pod's own labels to the selector (not to a null one). ``minDomains`` defaults to 1,
    ``nodeAffinityPolicy`` to Honor and ``nodeTaintsPolicy`` to Ignore. Pods are counted when
    they are in the pod's namespace, not terminating and match the selector; a selector
    without requirements (``{}``) counts no pod at all (kube's ``countPodsMatchSelector``
    returns 0 for ``selector.Empty()``), although the pod still matches it itself.

PreFilter / Filter (DoNotSchedule)
    Over all nodes that carry *every* constraint's topology key, and per constraint only over
    nodes that pass its inclusion policies (the pod's required node affinity when Honor, its
    tolerations of NoSchedule/NoExecute taints when Honor), the matching pods are summed per
    domain (a domain is a value of the topology label; an eligible node registers its domain
    even with no pod). The global minimum is the smallest domain count, or 0 when fewer
    domains than ``minDomains`` are registered. A node without a constraint's key is
    ``UnschedulableAndUnresolvable`` ("... (missing required label)"); a node whose domain
    count + (1 if the pod matches the selector) - minimum exceeds maxSkew is
    ``Unschedulable``. Constraints are checked in order; the first failing one decides. No
    DoNotSchedule constraint: PreFilter returns Skip.

PreScore / Score / NormalizeScore (ScheduleAnyway)
    ``requireAllTopologies`` holds unless the pod has no constraints of its own and the
    defaults are the System ones. Filtered nodes lacking a topology key are then ignored
    (score 0). Every other filtered node registers its domain (its value, '' when it lacks the
    key) for each non-hostname constraint; each constraint gets the weight
    ``log(domains + 2)`` (for hostname: the number of filtered, not ignored nodes). Pods are
    then counted over *all* nodes passing the same key test and the constraint's inclusion
    policies, into registered domains only. A node's raw score is ``round(sum over the
    constraints whose key it has of count * weight + (maxSkew - 1))``, where count is its
    domain's, or for ``kubernetes.io/hostname`` the node's own count (no inclusion policy).
    NormalizeScore: ignored nodes 0; otherwise ``100 * (max + min - score) / max`` (integer
    division, min and max over the non-ignored nodes; all 100 when max is 0).

Incremental state
    Per-node counts come from :func:`~schedbench.scheduler.spreading.selector_counts` (tracked
    per (namespace, selector), updated on every bind and removal); per-domain sums, the filter
    verdicts and the scores are ``@njit`` kernels over ``(constraint, node)`` arrays.

PreFilter extensions
    :meth:`PodTopologySpread.pre_filter_add_pod` / :meth:`~PodTopologySpread.pre_filter_remove_pod`
    update a PreFilter state for a pod assumed on / removed from a node, as kube's
    ``AddPod``/``RemovePod`` do for preemption (two critical paths per constraint, so the
    minimum may become approximate exactly as it does in kube). :meth:`FilterState.clone`
    copies a state for such what-if evaluation.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
from numba import njit

from ...config import PodTopologySpreadArgs
from ...model.labels import Selector, selector_from_set
from ...model.objects import Pod
from ..framework import MAX_NODE_SCORE, CycleState, Plugin, Status, register
from ..nodeselector import compile_pod_node_affinity, match_nodes
from ..snapshot import NodeSnapshot, PodInfo
from ..spreading import HOSTNAME_LABEL, default_selector, go_log, go_round, selector_counts
from ..taints import compile_tolerations, untolerated_taints

NAME = "PodTopologySpread"
ERR_CONSTRAINTS_NOT_MATCH = "node(s) didn't match pod topology spread constraints"
ERR_NODE_LABEL_NOT_MATCH = ERR_CONSTRAINTS_NOT_MATCH + " (missing required label)"
DO_NOT_SCHEDULE = "DoNotSchedule"
SCHEDULE_ANYWAY = "ScheduleAnyway"
_DO_NOT_SCHEDULE_EFFECTS = ("NoSchedule", "NoExecute")
_MAX_INT32 = 2**31 - 1


@dataclass(frozen=True)
class SpreadConstraint:
    """kube's internal ``topologySpreadConstraint``: the selector parsed and merged with
    ``matchLabelKeys``, the optional fields defaulted."""

    max_skew: int
    topology_key: str
    selector: Selector
    min_domains: int = 1
    node_affinity_policy: str = "Honor"
    node_taints_policy: str = "Ignore"


def _parse(raw, pod_labels: dict[str, str]) -> SpreadConstraint:
    """``filterTopologySpreadConstraints`` for one constraint (spec or default)."""
    selector = getattr(raw, "label_selector", None)
    if selector is None:
        selector = Selector.nothing()
    keys = raw.match_label_keys or ()
    if keys:
        found = {k: pod_labels[k] for k in keys if k in pod_labels}
        if found and not selector.is_nothing:
            selector = selector_from_set(found).add(*selector.requirements)
    return SpreadConstraint(
        max_skew=raw.max_skew, topology_key=raw.topology_key, selector=selector,
        min_domains=raw.min_domains if raw.min_domains is not None else 1,
        node_affinity_policy=raw.node_affinity_policy or "Honor",
        node_taints_policy=raw.node_taints_policy or "Ignore")


def pod_constraints(pod: Pod, action: str, defaults: Iterable = (), cluster=None,
                    selector: Selector | None = None) -> list[SpreadConstraint]:
    """The constraints PodTopologySpread applies to ``pod`` for ``action`` (DoNotSchedule or
    ScheduleAnyway): the pod's own, or else ``defaults`` with the pod's default selector
    (``selector`` when the caller has it already)."""
    spec = pod.spec.topology_spread_constraints
    if spec:
        return [_parse(c, pod.metadata.labels) for c in spec if c.when_unsatisfiable == action]
    chosen = [_parse(c, pod.metadata.labels) for c in defaults
              if c.when_unsatisfiable == action]
    if not chosen:
        return []
    if selector is None:
        selector = default_selector(pod, cluster)
    if selector.empty:
        return []
    return [SpreadConstraint(c.max_skew, c.topology_key, selector, c.min_domains,
                             c.node_affinity_policy, c.node_taints_policy) for c in chosen]


# ------------------------------------------------------------------------------------ kernels


@njit(cache=True)
def _lacks_a_key(dom, n):
    """Node ``n`` has no domain (-1) for at least one constraint's topology key."""
    for c in range(dom.shape[0]):
        if dom[c, n] < 0:
            return True
    return False


@njit(cache=True)
def _domain_counts(nodes, dom, eligible, counts, n_domains):
    """PreFilter: per (constraint, domain) the sum of the per-node counts over ``nodes`` that
    carry every topology key and are eligible for the constraint, and which domains any such
    node registered."""
    n_c = dom.shape[0]
    sums = np.zeros((n_c, n_domains), np.int64)
    seen = np.zeros((n_c, n_domains), np.bool_)
    for i in range(nodes.size):
        n = nodes[i]
        has_all = True
        for c in range(n_c):
            if dom[c, n] < 0:
                has_all = False
                break
        if not has_all:
            continue
        for c in range(n_c):
            if eligible[c, n]:
                d = dom[c, n]
                seen[c, d] = True
                sums[c, d] += counts[c, n]
    return sums, seen


@njit(cache=True)
def _update_path(paths, c, value, num):
    """kube's ``criticalPaths.update``: ``paths[c] = (value0, num0, value1, num1)``."""
    if value == paths[c, 0]:
        i = 0
    elif value == paths[c, 2]:
        i = 1
    else:
        i = -1
    if i >= 0:
        paths[c, 2 * i + 1] = num
        if paths[c, 1] > paths[c, 3]:
            v, m = paths[c, 0], paths[c, 1]
            paths[c, 0], paths[c, 1] = paths[c, 2], paths[c, 3]
            paths[c, 2], paths[c, 3] = v, m
    elif num < paths[c, 1]:
        paths[c, 2], paths[c, 3] = paths[c, 0], paths[c, 1]
        paths[c, 0], paths[c, 1] = value, num
    elif num < paths[c, 3]:
        paths[c, 2], paths[c, 3] = value, num


@njit(cache=True)
def _critical_paths(sums, seen, placeholder):
    """The two critical paths of each constraint after PreFilter (domains in id order; the
    placeholder value plays the role of kube's empty topology value)."""
    n_c, n_d = sums.shape
    paths = np.empty((n_c, 4), np.int64)
    for c in range(n_c):
        paths[c, 0] = placeholder[c]
        paths[c, 1] = 2147483647
        paths[c, 2] = placeholder[c]
        paths[c, 3] = 2147483647
        for d in range(n_d):
            if seen[c, d]:
                _update_path(paths, c, d, sums[c, d])
    return paths


@njit(cache=True)
def _filter_codes(nodes, dom, sums, min_match, self_match, max_skew):
    """Filter: 3 (missing topology label), 2 (skew above maxSkew) or 0, first constraint wins."""
    out = np.zeros(nodes.size, np.int8)
    n_c = dom.shape[0]
    n_d = sums.shape[1]
    for i in range(nodes.size):
        n = nodes[i]
        for c in range(n_c):
            d = dom[c, n]
            if d < 0:
                out[i] = 3
                break
            match = sums[c, d] if d < n_d else 0
            if match + self_match[c] - min_match[c] > max_skew[c]:
                out[i] = 2
                break
    return out


@njit(cache=True)
def _prescore(filtered, all_nodes, require_all, dom, dom_or_empty, eligible, counts,
              is_host, n_domains):
    """PreScore: ignored nodes (over node slots), registered domains, their number, and the
    per-domain sums of the per-node counts (hostname constraints register nothing)."""
    n_c, n_slots = dom.shape
    ignored = np.zeros(n_slots, np.bool_)
    seen = np.zeros((n_c, n_domains), np.bool_)
    sizes = np.zeros(n_c, np.int64)
    sums = np.zeros((n_c, n_domains), np.int64)
    n_ignored = 0
    for i in range(filtered.size):
        n = filtered[i]
        if require_all and _lacks_a_key(dom, n):
            if not ignored[n]:
                ignored[n] = True
                n_ignored += 1
            continue
        for c in range(n_c):
            if is_host[c]:
                continue
            d = dom_or_empty[c, n]
            if not seen[c, d]:
                seen[c, d] = True
                sizes[c] += 1
    for i in range(all_nodes.size):
        n = all_nodes[i]
        if require_all and _lacks_a_key(dom, n):
            continue
        for c in range(n_c):
            if not eligible[c, n]:
                continue
            d = dom_or_empty[c, n]
            if seen[c, d]:
                sums[c, d] += counts[c, n]
    return ignored, seen, sizes, sums, n_ignored


@njit(cache=True)
def _scores(nodes, ignored, dom, sums, counts, is_host, weights, max_skew):
    out = np.zeros(nodes.size, np.int64)
    n_c = dom.shape[0]
    n_d = sums.shape[1]
    for i in range(nodes.size):
        n = nodes[i]
        if ignored[n]:
            continue
        score = 0.0
        for c in range(n_c):
            d = dom[c, n]
            if d < 0:
                continue
            if is_host[c]:
                cnt = counts[c, n]
            else:
                cnt = sums[c, d] if d < n_d else 0
            score += float(cnt) * weights[c] + float(max_skew[c] - 1)
        out[i] = np.int64(go_round(score))
    return out


@njit(cache=True)
def _normalize(nodes, ignored, scores, max_score):
    lo = np.iinfo(np.int64).max
    hi = 0
    for i in range(nodes.size):
        if ignored[nodes[i]]:
            continue
        s = scores[i]
        if s < lo:
            lo = s
        if s > hi:
            hi = s
    for i in range(nodes.size):
        if ignored[nodes[i]]:
            scores[i] = 0
        elif hi == 0:
            scores[i] = max_score
        else:
            scores[i] = max_score * (hi + lo - scores[i]) // hi


# -------------------------------------------------------------------------------- the state


@dataclass
class FilterState:
    """PreFilter's result: ``dom[c, n]`` the domain (label value id) of node slot ``n`` for
    constraint ``c`` (-1 without the label), ``sums[c, d]`` the matching pods of domain ``d``,
    ``seen[c, d]`` whether ``d`` is an eligible domain, ``paths[c]`` the critical paths."""

    constraints: list[SpreadConstraint]
    dom: np.ndarray
    sums: np.ndarray
    seen: np.ndarray
    paths: np.ndarray
    self_match: np.ndarray
    max_skew: np.ndarray
    min_domains: np.ndarray
    pod: PodInfo
    affinity: object = None
    tolerations: object = None

    def domains_num(self) -> np.ndarray:
        return self.seen.sum(axis=1)

    def min_match(self) -> np.ndarray:
        """The global minimum per constraint (0 when fewer domains than minDomains)."""
        m = self.paths[:, 1].copy()
        m[self.domains_num() < self.min_domains] = 0
        return m

    def clone(self) -> FilterState:
        return FilterState(self.constraints, self.dom, self.sums.copy(), self.seen.copy(),
                           self.paths.copy(), self.self_match, self.max_skew, self.min_domains,
                           self.pod, self.affinity, self.tolerations)


@dataclass
class ScoreState:
    constraints: list[SpreadConstraint]
    dom: np.ndarray
    ignored: np.ndarray
    sums: np.ndarray
    counts: np.ndarray
    is_host: np.ndarray
    weights: np.ndarray
    max_skew: np.ndarray


def _domain_columns(snapshot: NodeSnapshot, constraints: list[SpreadConstraint]
                    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(dom[c, n] value ids or -1, id of the value '' per constraint (or one past the
    vocabulary when no node has it), vocabulary size per constraint)."""
    n = snapshot.num_nodes
    dom = np.full((len(constraints), n), -1, np.int32)
    empty = np.zeros(len(constraints), np.int64)
    sizes = np.zeros(len(constraints), np.int64)
    for c, con in enumerate(constraints):
        k = snapshot.vocab.key_id(con.topology_key)
        if k < 0:
            continue
        dom[c] = snapshot.labels[:, k]
        sizes[c] = len(snapshot.vocab.values[k])
        e = snapshot.vocab.value_id(k, "")
        empty[c] = e if e >= 0 else sizes[c]
    return dom, empty, sizes


@register
class PodTopologySpread(Plugin):
    name = NAME
    args_type = PodTopologySpreadArgs
    events = frozenset({"AssignedPodAdd", "AssignedPodDelete", "NodeAdd", "NodeUpdate",
                        "NodeDelete"})

    def __init__(self, args, handle) -> None:
        super().__init__(args, handle)
        self.defaults = tuple(self.args.effective_default_constraints)
        self.system_defaulted = self.args.defaulting_type == "System"

    # ------------------------------------------------------------------------ helpers

    def queueing_hint(self, pod: PodInfo, event: str, other) -> bool:
        """isSchedulableAfterPodChange (QueueingHints, GA in v1.34): an assigned pod in the
        pending pod's namespace whose labels match one of its DoNotSchedule constraints (its
        own, or the DoNotSchedule defaults) may change the skew; other pods cannot."""
        if event not in ("AssignedPodAdd", "AssignedPodDelete") or other is None:
            return True
        if other.namespace != pod.namespace:
            return False
        return any(c.selector.matches(other.labels)
                   for c in self.constraints(pod, "DoNotSchedule"))

    def constraints(self, pod: PodInfo, action: str,
                    state: CycleState | None = None) -> list[SpreadConstraint]:
        """The pod's constraints for ``action``; the pod's own are parsed once per pod, the
        default selector once per cycle (kept in ``state``)."""
        spec = pod.pod.spec.topology_spread_constraints
        if spec:
            cache = pod.cache.setdefault(self.name, {})
            got = cache.get(action)
            if got is None:
                got = cache[action] = pod_constraints(pod.pod, action)
            return got
        if not any(c.when_unsatisfiable == action for c in self.defaults):
            return []
        key = self.name + "/default-selector"
        selector = state.get(key) if state is not None else None
        if selector is None:
            selector = default_selector(pod.pod, self.handle.cluster)
            if state is not None:
                state[key] = selector
        if selector.empty:  # nothing selects the pod: no default constraints apply
            return []
        return pod_constraints(pod.pod, action, self.defaults, selector=selector)

    def _eligibility(self, pod: PodInfo, constraints: list[SpreadConstraint],
                     nodes: np.ndarray) -> tuple[np.ndarray, object, object]:
        """eligible[c, n] for the node slots in ``nodes`` (matchNodeInclusionPolicies)."""
        snap = self.handle.snapshot
        affinity = tolerations = None
        aff_ok = taint_ok = None
        if any(c.node_affinity_policy == "Honor" for c in constraints):
            affinity = compile_pod_node_affinity(snap, pod.pod)
            if affinity is not None:
                aff_ok = match_nodes(snap, affinity, nodes)
        if any(c.node_taints_policy == "Honor" for c in constraints):
            tolerations = compile_tolerations(snap, pod.pod.spec.tolerations)
            taint_ok = ~untolerated_taints(snap, tolerations, nodes, _DO_NOT_SCHEDULE_EFFECTS)
        eligible = np.zeros((len(constraints), snap.num_nodes), np.bool_)
        for c, con in enumerate(constraints):
            ok = np.ones(nodes.size, np.bool_)
            if con.node_affinity_policy == "Honor" and aff_ok is not None:
                ok &= aff_ok
            if con.node_taints_policy == "Honor" and taint_ok is not None:
                ok &= taint_ok
            eligible[c, nodes] = ok
        return eligible, affinity, tolerations

    def _counts(self, pod: PodInfo, constraints: list[SpreadConstraint]) -> np.ndarray:
        tracker = selector_counts(self.handle.snapshot)
        n = self.handle.snapshot.num_nodes
        out = np.empty((len(constraints), n), np.int64)
        for c, con in enumerate(constraints):
            out[c] = tracker.counts(pod.namespace, con.selector)
        return out

    # ------------------------------------------------------------------------- filter

    def pre_filter(self, state: CycleState, pod: PodInfo, nodes: np.ndarray):
        constraints = self.constraints(pod, DO_NOT_SCHEDULE, state)
        if not constraints:
            state.pop(self.name, None)
            return Status.skip(), None
        state[self.name] = self.filter_state(pod, constraints, nodes)
        return Status.success(), None

    def filter_state(self, pod: PodInfo, constraints: list[SpreadConstraint],
                     nodes: np.ndarray) -> FilterState:
        """calPreFilterState over ``nodes`` (all nodes of the snapshot in a cycle)."""
        snap = self.handle.snapshot
        nodes = np.ascontiguousarray(nodes, np.int64)
        dom, empty, sizes = _domain_columns(snap, constraints)
        eligible, affinity, tolerations = self._eligibility(pod, constraints, nodes)
        counts = self._counts(pod, constraints)
        n_domains = int(sizes.max()) + 1 if sizes.size else 1
        sums, seen = _domain_counts(nodes, dom, eligible, counts, n_domains)
        paths = _critical_paths(sums, seen, empty)
        labels = pod.labels
        return FilterState(
            constraints, dom, sums, seen, paths,
            np.array([1 if c.selector.matches(labels) else 0 for c in constraints], np.int64),
            np.array([c.max_skew for c in constraints], np.int64),
            np.array([c.min_domains for c in constraints], np.int64),
            pod, affinity, tolerations)

    def _filter_state(self, state: CycleState, pod: PodInfo) -> FilterState | None:
        s = state.get(self.name)
        if s is None:  # Filter without PreFilter (a dry run): compute it now
            self.pre_filter(state, pod, self.handle.snapshot.alive_nodes())
            s = state.get(self.name)
        return s

    def filter(self, state: CycleState, pod: PodInfo, nodes: np.ndarray) -> np.ndarray:
        nodes = np.ascontiguousarray(nodes, np.int64)
        s = self._filter_state(state, pod)
        if s is None:
            return np.zeros(nodes.size, np.int8)
        return _filter_codes(nodes, s.dom, s.sums, s.min_match(), s.self_match, s.max_skew)

    def filter_reasons(self, state: CycleState, pod: PodInfo, node: int) -> list[str]:
        code = int(self.filter(state, pod, np.array([node], np.int64))[0])
        if code == 3:
            return [ERR_NODE_LABEL_NOT_MATCH]
        if code == 2:
            return [ERR_CONSTRAINTS_NOT_MATCH]
        return []

    # ------------------------------------------------------------ PreFilter extensions

    def pre_filter_add_pod(self, state: CycleState, pod: PodInfo, other: PodInfo,
                           node: int) -> Status:
        """kube's ``AddPod``: ``other`` (assumed) on ``node`` counts in the state."""
        self._update_with_pod(state.get(self.name), pod, other, node, 1)
        return Status.success()

    def pre_filter_remove_pod(self, state: CycleState, pod: PodInfo, other: PodInfo,
                              node: int) -> Status:
        """kube's ``RemovePod``: ``other`` on ``node`` no longer counts in the state."""
        self._update_with_pod(state.get(self.name), pod, other, node, -1)
        return Status.success()

    def _update_with_pod(self, s: FilterState | None, pod: PodInfo, other: PodInfo,
                         node: int, delta: int) -> None:
        if s is None or other.namespace != pod.namespace:
            return
        if (s.dom[:, node] < 0).any():
            return
        snap = self.handle.snapshot
        one = np.array([node], np.int64)
        aff_ok = match_nodes(snap, s.affinity, one)[0] if s.affinity is not None else True
        taint_ok = True
        if s.tolerations is not None:
            taint_ok = not untolerated_taints(snap, s.tolerations, one,
                                              _DO_NOT_SCHEDULE_EFFECTS)[0]
        labels = other.labels
        for c, con in enumerate(s.constraints):
            if not con.selector.matches(labels):
                continue
            if con.node_affinity_policy == "Honor" and not aff_ok:
                continue
            if con.node_taints_policy == "Honor" and not taint_ok:
                continue
            d = int(s.dom[c, node])
            if d >= s.sums.shape[1]:
                grow = d + 1 - s.sums.shape[1]
                s.sums = np.pad(s.sums, ((0, 0), (0, grow)))
                s.seen = np.pad(s.seen, ((0, 0), (0, grow)))
            s.sums[c, d] += delta
            s.seen[c, d] = True
            _update_path(s.paths, c, d, s.sums[c, d])

    # -------------------------------------------------------------------------- score

    def pre_score(self, state: CycleState, pod: PodInfo, nodes: np.ndarray) -> Status:
        snap = self.handle.snapshot
        key = self.name + "/score"
        state.pop(key, None)
        constraints = self.constraints(pod, SCHEDULE_ANYWAY, state)
        if not constraints:
            return Status.skip()
        all_nodes = snap.alive_nodes()
        if all_nodes.size == 0:
            return Status.skip()
        nodes = np.ascontiguousarray(nodes, np.int64)
        require_all = bool(pod.pod.spec.topology_spread_constraints) or not self.system_defaulted
        dom, empty, sizes = _domain_columns(snap, constraints)
        dom_or_empty = np.where(dom < 0, empty[:, None], dom).astype(np.int32)
        eligible, _, _ = self._eligibility(pod, constraints, all_nodes)
        counts = self._counts(pod, constraints)
        is_host = np.array([c.topology_key == HOSTNAME_LABEL for c in constraints], np.bool_)
        n_domains = int(sizes.max()) + 1 if sizes.size else 1
        ignored, _, topo_size, sums, n_ignored = _prescore(
            nodes, all_nodes, require_all, dom, dom_or_empty, eligible, counts, is_host,
            n_domains)
        weights = np.array([
            go_log((nodes.size - n_ignored if is_host[c] else int(topo_size[c])) + 2)
            for c in range(len(constraints))], np.float64)
        state[key] = ScoreState(constraints, dom, ignored, sums, counts, is_host, weights,
                                np.array([c.max_skew for c in constraints], np.int64))
        return Status.success()

    def score(self, state: CycleState, pod: PodInfo, nodes: np.ndarray) -> np.ndarray:
        s: ScoreState = state[self.name + "/score"]
        nodes = np.ascontiguousarray(nodes, np.int64)
        return _scores(nodes, s.ignored, s.dom, s.sums, s.counts, s.is_host, s.weights,
                       s.max_skew)

    def normalize_score(self, state: CycleState, pod: PodInfo, nodes: np.ndarray,
                        scores: np.ndarray) -> None:
        s: ScoreState | None = state.get(self.name + "/score")
        if s is None:
            return
        _normalize(np.ascontiguousarray(nodes, np.int64), s.ignored, scores, MAX_NODE_SCORE)
