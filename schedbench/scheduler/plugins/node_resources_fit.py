"""NodeResourcesFit: does the node have room for the pod's requests (Filter), and how good a fit
is it (Score, by the profile's scoring strategy).

Filter (``fitsRequest`` in kube's noderesources/fit.go): the node must have a pod slot left
(``len(pods) + 1 <= allocatable pods``: "Too many pods"), and for every resource the pod
requests a positive amount of, ``request <= allocatable - requested`` ("Insufficient cpu",
"Insufficient nvidia.com/gpu", ...). Extended resources listed in ``ignoredResources`` or whose
group is in ``ignoredResourceGroups`` are not checked. A failing node is ``Unschedulable`` (room
could be made by preemption) with every insufficient resource as a reason.

PreScore / Score (fit.go with resource_allocation.go): PreScore computes the pod's request per
resource of ``scoringStrategy.resources`` the way kube's scorer does (``PodRequests`` with the
non-missing defaults 100m CPU / 200Mi memory applied to every container that does not state
them, then pod-level requests, then overhead) and never skips; Score runs the strategy over the
nodes in one kernel (:mod:`schedbench.scheduler.resource_scoring`). No NormalizeScore.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from ...config import NodeResourcesFitArgs
from ...model.objects import DEFAULT_MEMORY_REQUEST, DEFAULT_MILLI_CPU_REQUEST, pod_requests
from ..framework import CycleState, Plugin, Status, register
from ..resource_scoring import (STRATEGY_IDS, PodScoreInput, ScorerSpec, allocation_scores,
                                pod_score_input)
from ..snapshot import NodeSnapshot, PodInfo

_ORDER_FIRST = ("cpu", "memory", "ephemeral-storage")
#: NonMissingContainerRequests of kube's scorer (``calculatePodResourceRequest``).
SCORING_DEFAULTS = {"cpu": DEFAULT_MILLI_CPU_REQUEST, "memory": DEFAULT_MEMORY_REQUEST}


def is_extended_resource(name: str) -> bool:
    """v1helper.IsExtendedResourceName: a qualified name outside the kubernetes.io/ namespace
    (``nvidia.com/gpu``); ``requests.*`` quota names are not resources."""
    if "/" not in name or name.startswith("requests."):
        return False
    domain = name.split("/", 1)[0]
    return not (domain == "kubernetes.io" or domain.endswith(".kubernetes.io"))


@njit(cache=True)
def _fit_codes(nodes, allocatable, requested, pod_count, allowed_pods, request, check):
    """Per node in ``nodes``: Code.UNSCHEDULABLE (2) unless a pod slot is left and every checked
    resource column fits; SUCCESS (0) otherwise."""
    out = np.zeros(nodes.size, np.int8)
    for i in range(nodes.size):
        n = nodes[i]
        bad = pod_count[n] + 1 > allowed_pods[n]
        if not bad:
            for r in range(request.size):
                if check[r] and request[r] > allocatable[n, r] - requested[n, r]:
                    bad = True
                    break
        if bad:
            out[i] = 2
    return out


def fit_codes(snapshot: NodeSnapshot, nodes: np.ndarray, request: np.ndarray,
              check: np.ndarray) -> np.ndarray:
    """Filter verdicts of NodeResourcesFit for ``nodes`` (int64 indices); ``request`` and
    ``check`` (which columns to check) are over the snapshot's resource columns."""
    nodes = np.ascontiguousarray(nodes, np.int64)
    r = snapshot.num_resources
    if request.shape != (r,) or check.shape != (r,):
        raise ValueError(f"request/check must have {r} resource columns")
    return _fit_codes(nodes, snapshot.allocatable, snapshot.requested, snapshot.pod_count,
                      snapshot.allowed_pods, request, check)


class _FitState:
    __slots__ = ("request", "check")

    def __init__(self, request: np.ndarray, check: np.ndarray) -> None:
        self.request = request
        self.check = check


@register
class NodeResourcesFit(Plugin):
    name = "NodeResourcesFit"
    events = frozenset({"AssignedPodDelete", "NodeAdd", "NodeUpdate"})

    def __init__(self, args, handle) -> None:
        if args is None:
            args = NodeResourcesFitArgs()
        elif isinstance(args, dict):
            args = NodeResourcesFitArgs.from_dict(args)
        super().__init__(args, handle)
        self.ignored = frozenset(self.args.ignored_resources)
        self.ignored_groups = frozenset(self.args.ignored_resource_groups)
        strategy = self.args.scoring_strategy
        rtcr = strategy.requested_to_capacity_ratio
        self.scorer = ScorerSpec.build(STRATEGY_IDS[strategy.type], strategy.resources,
                                       rtcr.shape if rtcr is not None else ())
        self._pre_score_key = "PreScore" + self.name

    def _checked_columns(self, snapshot: NodeSnapshot, request: np.ndarray) -> np.ndarray:
        check = request > 0
        for r, name in enumerate(snapshot.resources.names):
            if check[r] and is_extended_resource(name) and (
                    name in self.ignored or name.split("/", 1)[0] in self.ignored_groups):
                check[r] = False
        return check

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
        s = self._state(state, pod)
        snap = self.handle.snapshot
        reasons = []
        if snap.pod_count[node] + 1 > snap.allowed_pods[node]:
            reasons.append("Too many pods")
        free = snap.allocatable[node] - snap.requested[node]
        short = [snap.resources.names[r] for r in range(s.request.size)
                 if s.check[r] and s.request[r] > free[r]]
        ordered = [r for r in _ORDER_FIRST if r in short] + sorted(
            r for r in short if r not in _ORDER_FIRST)
        reasons.extend(f"Insufficient {r}" for r in ordered)
        return reasons

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
