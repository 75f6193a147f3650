"""NodeResourcesFit: does the node have room for the pod's requests (Filter), and how good a fit
is it (Score, by the profile's scoring strategy).

Filter (``Filter`` / ``fitsRequest`` in kube v1.35's noderesources/fit.go): a node fails when
it has no pod slot left (``len(pods) + 1 > allocatable pods``: "Too many pods") or when, for a
resource the pod requests a positive amount of, ``request > allocatable - requested``
("Insufficient cpu", "Insufficient hugepages-2Mi", "Insufficient nvidia.com/gpu", ...).

- Which resources are checked: those kube's ``framework.Resource`` tracks - ``cpu``, ``memory``,
  ``ephemeral-storage`` and the scalar resources (``schedutil.IsScalarResourceName``: extended
  ``vendor/name``, ``hugepages-*``, ``*kubernetes.io/*``, ``attachable-volumes-*``). Any other
  name (a bare ``foo``, ``storage``) is dropped by kube's ``Resource.Add`` and never checked; a
  pod's ``pods`` request is not checked either.
- ``ignoredResources`` / ``ignoredResourceGroups`` (the part before ``/``) skip *extended*
  resources only (``v1helper.IsExtendedResourceName``); hugepages and ``kubernetes.io/*`` names
  are always checked.
- The status code (v1.35, kubernetes PR #131345, since v1.34): each insufficient resource is
  *unresolvable* when the pod's request alone exceeds the node's whole allocatable (an absent
  allocatable counts 0) - no preemption on that node can help. The node's code is
  ``UnschedulableAndUnresolvable`` (3) if any insufficient resource is unresolvable, else
  ``Unschedulable`` (2). "Too many pods" is never unresolvable, even with 0 allowed pods.
- Reasons, in kube's order: "Too many pods", then cpu, memory, ephemeral-storage, then the
  scalar resources. Kube walks the scalar resources in Go map order, which is random; schedbench
  lists them sorted by name (bytewise), so the order is deterministic. All reasons are kept,
  whatever the code.
- Not modelled: the DRAExtendedResource delegation (an extended resource the node does not
  advertise but a DeviceClass maps is left to DynamicResources). schedbench has no
  DeviceClasses, and without one kube delegates nothing, so the results are the same.

PreScore / Score (fit.go with resource_allocation.go): PreScore computes the pod's request per
resource of ``scoringStrategy.resources`` the way kube's scorer does (``PodRequests`` with the
non-missing defaults 100m CPU / 200Mi memory applied to every container that does not state
them, then pod-level requests, then overhead) and never skips; Score runs the strategy over the
nodes in one kernel (:mod:`schedbench.scheduler.resource_scoring`). No NormalizeScore.
"""

from __future__ import annotations

import re

import numpy as np
from numba import njit

from ...config import NodeResourcesFitArgs
from ...model.objects import DEFAULT_MEMORY_REQUEST, DEFAULT_MILLI_CPU_REQUEST, pod_requests
from ..framework import CycleState, Plugin, Status, node_change, register
from ..resource_scoring import (STRATEGY_IDS, PodScoreInput, ScorerSpec, allocation_scores,
                                pod_score_input)
from ..snapshot import NodeSnapshot, PodInfo

#: NonMissingContainerRequests of kube's scorer (``calculatePodResourceRequest``).
SCORING_DEFAULTS = {"cpu": DEFAULT_MILLI_CPU_REQUEST, "memory": DEFAULT_MEMORY_REQUEST}


_DNS_LABEL = r"[a-z0-9]([-a-z0-9]*[a-z0-9])?"
_QUALIFIED_PREFIX = re.compile(rf"{_DNS_LABEL}(\.{_DNS_LABEL})*")
_QUALIFIED_NAME = re.compile(r"([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]")
_NATIVE_NAMESPACE = "kubernetes.io/"
_CPU_MEMORY_STORAGE = ("cpu", "memory", "ephemeral-storage")


def _is_qualified_name(value: str) -> bool:
    """validation.IsQualifiedName: ``[prefix/]name``, prefix a DNS-1123 subdomain (<= 253),
    name <= 63 alphanumerics with ``-_.`` inside."""
    parts = value.split("/")
    if len(parts) == 1:
        name = parts[0]
    elif len(parts) == 2:
        prefix, name = parts
        if not prefix or len(prefix) > 253 or not _QUALIFIED_PREFIX.fullmatch(prefix):
            return False
    else:
        return False
    return 0 < len(name) <= 63 and _QUALIFIED_NAME.fullmatch(name) is not None


def is_extended_resource(name: str) -> bool:
    """v1helper.IsExtendedResourceName: not native (native = no ``/``, or ``kubernetes.io/``
    anywhere in the name), not a ``requests.*`` quota name, and ``requests.<name>`` is a
    qualified name (``nvidia.com/gpu`` yes; ``kubernetes.io/x``, ``hugepages-2Mi`` no)."""
    if "/" not in name or _NATIVE_NAMESPACE in name or name.startswith("requests."):
        return False
    return _is_qualified_name("requests." + name)


def is_fit_checked_resource(name: str) -> bool:
    """Whether kube's ``framework.Resource`` tracks ``name`` (so Filter checks it): cpu, memory,
    ephemeral-storage, or a scalar resource (``schedutil.IsScalarResourceName``)."""
    return (name in _CPU_MEMORY_STORAGE or name.startswith("hugepages-")
            or name.startswith("attachable-volumes-") or _NATIVE_NAMESPACE in name
            or is_extended_resource(name))


def scalar_reason_order(names) -> list[str]:
    """Kube's reason order for these resource names: cpu, memory, ephemeral-storage, then the
    scalar resources sorted by name (schedbench's fixed stand-in for Go's random map order)."""
    names = set(names)
    return [r for r in _CPU_MEMORY_STORAGE if r in names] + sorted(
        r for r in names if r not in _CPU_MEMORY_STORAGE)


@njit(cache=True)
def _fit_codes(nodes, allocatable, requested, pod_count, allowed_pods, request, check):
    """Per node in ``nodes``: SUCCESS (0) when a pod slot is left and every checked resource
    column fits (``request <= allocatable - requested``); otherwise UNSCHEDULABLE_AND_UNRESOLVABLE
    (3) when some insufficient column's request exceeds the node's allocatable, else
    UNSCHEDULABLE (2)."""
    out = np.zeros(nodes.size, np.int8)
    cols = np.flatnonzero(check)
    for i in range(nodes.size):
        n = nodes[i]
        code = 2 if pod_count[n] + 1 > allowed_pods[n] else 0
        for k in range(cols.size):
            r = cols[k]
            q = request[r]
            a = allocatable[n, r]
            if q > a - requested[n, r]:
                if q > a:
                    code = 3
                    break
                code = 2
        out[i] = code
    return out


def fit_codes(snapshot: NodeSnapshot, nodes: np.ndarray, request: np.ndarray,
              check: np.ndarray) -> np.ndarray:
    """Filter codes of NodeResourcesFit (0, 2 or 3) for ``nodes`` (int64 indices); ``request``
    and ``check`` (which columns to check) are over the snapshot's resource columns."""
    nodes = np.ascontiguousarray(nodes, np.int64)
    r = snapshot.num_resources
    if request.shape != (r,) or check.shape != (r,):
        raise ValueError(f"request/check must have {r} resource columns")
    return _fit_codes(nodes, snapshot.allocatable, snapshot.requested, snapshot.pod_count,
                      snapshot.allowed_pods, np.ascontiguousarray(request, np.int64),
                      np.ascontiguousarray(check, np.bool_))


class _FitState:
    __slots__ = ("request", "check")

    def __init__(self, request: np.ndarray, check: np.ndarray) -> None:
        self.request = request
        self.check = check


def _fits_empty_node(requests: dict[str, int], allocatable: dict[str, int]) -> bool:
    """kube's ``isFit``: the pod's requests fit the node with no pod on it."""
    if allocatable.get("pods", 0) < 1:
        return False
    return all(q <= allocatable.get(r, 0) for r, q in requests.items())


@register
class NodeResourcesFit(Plugin):
    name = "NodeResourcesFit"
    args_type = NodeResourcesFitArgs
    events = frozenset({"AssignedPodDelete", "NodeAdd", "NodeUpdate"})

    def queueing_hint(self, pod: PodInfo, event: str, other) -> bool:
        """kube's ``isSchedulableAfterPodEvent`` / ``isSchedulableAfterNodeChange``: a bound
        pod's deletion may free room; an added node when the pod fits it empty; an updated
        node when the pod fits it empty and the allocatable of a resource the pod requests
        (or the pod count) grew (Node/UpdateNodeAllocatable: label or taint changes never
        requeue for this plugin)."""
        if event == "AssignedPodDelete":
            return other is None or other.node >= 0 or bool(other.pod.spec.node_name)
        change = node_change(event, other)
        if change is None:
            return True
        old, new = change
        requests = {r: q for r, q in pod.pod.requests().items() if r != "pods" and q}
        if not _fits_empty_node(requests, new.allocatable):
            return False
        if old is None:
            return True
        before, after = old.allocatable, new.allocatable
        if after.get("pods", 0) > before.get("pods", 0):
            return True
        return any(after.get(r, 0) > before.get(r, 0) for r in requests)

    def __init__(self, args, handle) -> None:
        super().__init__(args, handle)
        self.ignored = frozenset(self.args.ignored_resources)
        self.ignored_groups = frozenset(self.args.ignored_resource_groups)
        strategy = self.args.scoring_strategy
        rtcr = strategy.requested_to_capacity_ratio
        self.scorer = ScorerSpec.build(STRATEGY_IDS[strategy.type], strategy.resources,
                                       rtcr.shape if rtcr is not None else ())
        self._pre_score_key = "PreScore" + self.name
        self._mask: np.ndarray = np.zeros(0, np.bool_)  # per resource column: checkable
        self._mask_of: NodeSnapshot | None = None  # the snapshot whose columns _mask covers

    def _is_checked(self, name: str) -> bool:
        if not is_fit_checked_resource(name):
            return False
        if is_extended_resource(name) and (
                name in self.ignored or name.split("/", 1)[0] in self.ignored_groups):
            return False
        return True

    def _checkable(self, snapshot: NodeSnapshot) -> np.ndarray:
        """Per resource column: tracked by kube and not ignored (columns only ever get
        appended, so the mask grows with them)."""
        names = snapshot.resources.names
        if self._mask_of is not snapshot:
            self._mask, self._mask_of = np.zeros(0, np.bool_), snapshot
        if self._mask.size != len(names):
            mask = np.zeros(len(names), np.bool_)
            mask[: self._mask.size] = self._mask[: len(names)]
            for r in range(self._mask.size, len(names)):
                mask[r] = self._is_checked(names[r])
            self._mask = mask
        return self._mask

    def _checked_columns(self, snapshot: NodeSnapshot, request: np.ndarray) -> np.ndarray:
        return (request > 0) & self._checkable(snapshot)

    # ---------------------------------------------------------------------------- filter

    def pre_filter(self, state: CycleState, pod: PodInfo, nodes: np.ndarray):
        snapshot = self.handle.snapshot
        request, _ = snapshot.request_vectors(pod)
        state[self.name] = _FitState(request, self._checked_columns(snapshot, request))
        return Status.success(), None

    def _state(self, state: CycleState, pod: PodInfo) -> _FitState:
        s = state.get(self.name)
        if s is None:  # Filter called without PreFilter (preemption dry runs do this)
            self.pre_filter(state, pod, np.empty(0, np.int64))
            s = state[self.name]
        return s

    def filter(self, state: CycleState, pod: PodInfo, nodes: np.ndarray) -> np.ndarray:
        s = self._state(state, pod)
        snapshot = self.handle.snapshot
        if s.request.shape[0] != snapshot.num_resources:  # a column appeared since PreFilter
            self.pre_filter(state, pod, nodes)
            s = state[self.name]
        return fit_codes(snapshot, nodes, s.request, s.check)

    def filter_reasons(self, state: CycleState, pod: PodInfo, node: int) -> list[str]:
        """kube's reasons for ``node``: "Too many pods" first, then "Insufficient <name>" in
        :func:`scalar_reason_order`."""
        s = self._state(state, pod)
        snap = self.handle.snapshot
        reasons = []
        if snap.pod_count[node] + 1 > snap.allowed_pods[node]:
            reasons.append("Too many pods")
        free = snap.allocatable[node] - snap.requested[node]
        short = [snap.resources.names[r] for r in np.flatnonzero(s.check)
                 if s.request[r] > free[r]]
        reasons.extend(f"Insufficient {r}" for r in scalar_reason_order(short))
        return reasons

    def filter_reasons_batch(self, state: CycleState, pod: PodInfo, nodes: np.ndarray
                             ) -> list[list[str]]:
        """:meth:`filter_reasons` for many nodes at once (vectorised; reason lists are
        built once per pattern of shortages)."""
        s = self._state(state, pod)
        snap = self.handle.snapshot
        nodes = np.asarray(nodes, np.int64)
        too_many = (snap.pod_count[nodes] + 1 > snap.allowed_pods[nodes]).tolist()
        cols = np.flatnonzero(s.check)
        short = (s.request[cols][None, :] > (snap.allocatable[nodes][:, cols]
                                             - snap.requested[nodes][:, cols]))
        names = [snap.resources.names[r] for r in cols]
        patterns: dict[tuple, list[str]] = {}
        out = []
        for many, row in zip(too_many, map(tuple, short.tolist())):
            key = (many, row)
            reasons = patterns.get(key)
            if reasons is None:
                reasons = ["Too many pods"] if many else []
                reasons.extend(f"Insufficient {r}" for r in scalar_reason_order(
                    [names[k] for k, bad in enumerate(row) if bad]))
                patterns[key] = reasons
            out.append(list(reasons))
        return out

    # ----------------------------------------------------------------------------- score

    def score_requests(self, pod: PodInfo) -> dict[str, int]:
        """The pod's request as the scorer sees it (cached on the pod)."""
        cache = pod.cache.setdefault(self.name, {})
        reqs = cache.get("score_requests")
        if reqs is None:
            reqs = cache["score_requests"] = pod_requests(pod.pod.spec, SCORING_DEFAULTS)
        return reqs

    def pre_score(self, state: CycleState, pod: PodInfo, nodes: np.ndarray) -> Status:
        state[self._pre_score_key] = pod_score_input(self.handle.snapshot, self.scorer,
                                                     self.score_requests(pod))
        return Status.success()

    def score(self, state: CycleState, pod: PodInfo, nodes: np.ndarray) -> np.ndarray:
        if not self.scorer.names:
            raise RuntimeError(f"{self.name}: resources not found")
        snapshot = self.handle.snapshot
        s: PodScoreInput | None = state.get(self._pre_score_key)
        if s is None or s.num_resources != snapshot.num_resources:  # PreScore not run / stale
            self.pre_score(state, pod, nodes)
            s = state[self._pre_score_key]
        return allocation_scores(snapshot, nodes, self.scorer, s)
