"""kube-scheduler's resource-allocation scorer (noderesources/resource_allocation.go), the part
shared by NodeResourcesFit's Score (LeastAllocated, MostAllocated, RequestedToCapacityRatio) and
NodeResourcesBalancedAllocation.

For each resource of the plugin's ``resources`` list (in that order) and each node, the scorer
takes the node's allocatable and its requested quantity *with the pod added*:

- ``cpu`` / ``memory``: the node's non-zero requested (a container without a CPU/memory request
  counts 100m/200Mi) plus the pod's request computed the same way, for NodeResourcesFit; the
  plain requested plus the pod's plain request for BalancedAllocation (``useRequested``);
- ``ephemeral-storage``: always the plain requested plus the pod's request;
- scalar resources (extended ``vendor/name``, ``hugepages-*``, ``*kubernetes.io/*``,
  ``attachable-volumes-*``): the plain requested plus the pod's request, but only when the pod
  requests a non-zero amount; a scalar resource the pod does not request is left out;
- any other name (``pods``, a made-up ``foo``) is not tracked by kube's NodeInfo: left out.

A resource whose allocatable on the node is 0 (or absent) is left out for that node. The
strategies then combine what is left, integer for integer as kube does:

- LeastAllocated: ``(alloc - req) * 100 / alloc`` (0 when req > alloc), weighted average with
  integer division (0 when nothing is left);
- MostAllocated: ``min(req, alloc) * 100 / alloc``, weighted average with integer division;
- RequestedToCapacityRatio: the broken-linear shape (points' scores x 10) at utilization
  ``req * 100 / alloc`` (100 when req > alloc); only resources scoring > 0 count, and the weighted
  average is *rounded* (``math.Round``, half away from zero), not truncated;
- BalancedAllocation: fractions ``req / alloc`` as float64, capped at 1; the standard deviation
  (``|f1 - f2| / 2`` for two, population std for more, 0 for fewer); ``int64((1 - std) * 100)``.

The per-node loop is :func:`_allocation_scores` (Numba); Python only prepares, per pod, the
column of each resource in the snapshot, whether the column is read from the non-zero view, and
the pod's request per resource.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numba import njit

from ..config import MAX_CUSTOM_PRIORITY_SCORE, MAX_NODE_SCORE
from .snapshot import NodeSnapshot

LEAST_ALLOCATED, MOST_ALLOCATED, REQUESTED_TO_CAPACITY_RATIO, BALANCED_ALLOCATION = 0, 1, 2, 3
STRATEGY_IDS = {"LeastAllocated": LEAST_ALLOCATED, "MostAllocated": MOST_ALLOCATED,
                "RequestedToCapacityRatio": REQUESTED_TO_CAPACITY_RATIO}

MAX_UTILIZATION = 100
_SHAPE_SCALE = MAX_NODE_SCORE // MAX_CUSTOM_PRIORITY_SCORE  # 10: shape scores 0..10 -> 0..100

# How kube's NodeInfo tracks a resource name.
KIND_CPU_MEMORY = 0   # MilliCPU / Memory: non-zero view available
KIND_EPHEMERAL = 1    # EphemeralStorage: plain requested, never skipped for a zero pod request
KIND_SCALAR = 2       # ScalarResources: skipped when the pod does not request it
KIND_UNTRACKED = 3    # not in NodeInfo at all: always (0, 0), i.e. skipped


def is_scalar_resource_name(name: str) -> bool:
    """schedutil.IsScalarResourceName: extended, hugepages, prefixed native or attachable volume."""
    if name.startswith("hugepages-") or name.startswith("attachable-volumes-"):
        return True
    if "kubernetes.io/" in name:  # IsPrefixedNativeResource
        return True
    # IsExtendedResourceName: qualified (has a slash), outside the native namespace, not a quota
    # ``requests.*`` name.
    return "/" in name and not name.startswith("requests.")


def resource_kind(name: str) -> int:
    if name in ("cpu", "memory"):
        return KIND_CPU_MEMORY
    if name == "ephemeral-storage":
        return KIND_EPHEMERAL
    if is_scalar_resource_name(name):
        return KIND_SCALAR
    return KIND_UNTRACKED


@dataclass(frozen=True)
class ScorerSpec:
    """A configured resource-allocation scorer: strategy, resources (ordered), weights, the
    scaled shape (RequestedToCapacityRatio) and whether cpu/memory use the plain requested."""

    strategy: int
    names: tuple[str, ...]
    weights: np.ndarray        # int64[R]
    shape_utilization: np.ndarray  # int64[P]
    shape_score: np.ndarray        # int64[P], already x (MaxNodeScore / MaxCustomPriorityScore)
    use_requested: bool

    @classmethod
    def build(cls, strategy: int, resources, shape=(), use_requested: bool = False
              ) -> ScorerSpec:
        """``resources``: ResourceSpec-like objects (name, weight); ``shape``: points with
        utilization and score (0..10)."""
        return cls(strategy, tuple(r.name for r in resources),
                   np.array([r.weight for r in resources], np.int64),
                   np.array([p.utilization for p in shape], np.int64),
                   np.array([p.score * _SHAPE_SCALE for p in shape], np.int64),
                   use_requested)


@dataclass(frozen=True)
class PodScoreInput:
    """Per pod: for each resource of the spec, the snapshot column to read (-1: left out for
    every node), whether to read the non-zero view, and the pod's request."""

    columns: np.ndarray   # int64[R]
    nonzero: np.ndarray   # bool[R]
    request: np.ndarray   # int64[R]
    num_resources: int    # snapshot.num_resources when computed (columns may appear later)


def pod_score_input(snapshot: NodeSnapshot, spec: ScorerSpec, requests: dict[str, int]
                    ) -> PodScoreInput:
    """Map the spec's resources onto the snapshot's columns for a pod whose (scoring) request
    per resource name is ``requests`` (cpu in millicores)."""
    r = len(spec.names)
    columns = np.full(r, -1, np.int64)
    nonzero = np.zeros(r, np.bool_)
    request = np.zeros(r, np.int64)
    for i, name in enumerate(spec.names):
        q = int(requests.get(name, 0))
        request[i] = q
        kind = resource_kind(name)
        if kind == KIND_UNTRACKED or (kind == KIND_SCALAR and q == 0):
            continue
        columns[i] = snapshot.resources.get(name)  # -1 when no node or pod ever named it
        nonzero[i] = kind == KIND_CPU_MEMORY and not spec.use_requested
    return PodScoreInput(columns, nonzero, request, snapshot.num_resources)


@njit(cache=True)
def _go_div(a, b):
    """Integer division truncating toward zero (Go's ``/``); ``b > 0``."""
    if a < 0:
        return -((-a) // b)
    return a // b


@njit(cache=True)
def broken_linear(p, utilization, score):
    """helper.BuildBrokenLinearFunction evaluated at ``p``: ``score[0]`` up to the first point,
    linear (Go integer arithmetic) between points, ``score[-1]`` after the last."""
    n = utilization.size
    for i in range(n):
        if p <= utilization[i]:
            if i == 0:
                return score[0]
            return score[i - 1] + _go_div((score[i] - score[i - 1]) * (p - utilization[i - 1]),
                                          utilization[i] - utilization[i - 1])
    return score[n - 1]


@njit(cache=True)
def _allocation_scores(nodes, allocatable, requested, nonzero_requested, columns, use_nonzero,
                       pod_request, weights, strategy, shape_u, shape_s):
    n_res = columns.size
    out = np.zeros(nodes.size, np.int64)
    fractions = np.empty(n_res, np.float64)
    for j in range(nodes.size):
        n = nodes[j]
        node_score = 0
        weight_sum = 0
        k = 0
        total = 0.0
        for i in range(n_res):
            c = columns[i]
            if c < 0:
                continue
            alloc = allocatable[n, c]
            if alloc == 0:
                continue
            if use_nonzero[i]:
                req = nonzero_requested[n, c] + pod_request[i]
            else:
                req = requested[n, c] + pod_request[i]
            w = weights[i]
            if strategy == 0:  # LeastAllocated
                s = 0
                if req <= alloc:
                    s = (alloc - req) * 100 // alloc
                node_score += s * w
                weight_sum += w
            elif strategy == 1:  # MostAllocated
                if req > alloc:
                    req = alloc
                node_score += req * 100 // alloc * w
                weight_sum += w
            elif strategy == 2:  # RequestedToCapacityRatio
                if req > alloc:
                    util = 100
                else:
                    util = req * 100 // alloc
                s = broken_linear(util, shape_u, shape_s)
                if s > 0:
                    node_score += s * w
                    weight_sum += w
            else:  # BalancedAllocation
                f = np.float64(req) / np.float64(alloc)
                if f > 1.0:
                    f = 1.0
                total += f
                fractions[k] = f
                k += 1
        if strategy == 3:
            std = 0.0
            if k == 2:
                std = abs((fractions[0] - fractions[1]) / 2.0)
            elif k > 2:
                mean = total / np.float64(k)
                acc = 0.0
                for i in range(k):
                    d = fractions[i] - mean
                    acc = acc + d * d
                std = np.sqrt(acc / np.float64(k))
            out[j] = np.int64((1.0 - std) * 100.0)
        elif weight_sum > 0:
            if strategy == 2:  # math.Round(nodeScore / weightSum), both non-negative
                out[j] = (2 * node_score + weight_sum) // (2 * weight_sum)
            else:
                out[j] = node_score // weight_sum
    return out


def allocation_scores(snapshot: NodeSnapshot, nodes: np.ndarray, spec: ScorerSpec,
                      pod: PodScoreInput) -> np.ndarray:
    """Scores (int64) of ``nodes`` (node indices) for a pod prepared by :func:`pod_score_input`."""
    nodes = np.ascontiguousarray(nodes, np.int64)
    if pod.columns.shape != spec.weights.shape:
        raise ValueError("pod input does not match the scorer's resources")
    if spec.strategy == REQUESTED_TO_CAPACITY_RATIO and spec.shape_utilization.size == 0:
        raise ValueError("RequestedToCapacityRatio needs at least one shape point")
    return _allocation_scores(nodes, snapshot.allocatable, snapshot.requested,
                              snapshot.nonzero_requested, pod.columns, pod.nonzero, pod.request,
                              spec.weights, spec.strategy, spec.shape_utilization,
                              spec.shape_score)
