"""Plain-Python reference of kube-scheduler v1.35's resource and image scores, written from the
formulas and working on the model objects only (Node.allocatable, Pod.requests(),
Pod.non_zero_requests(), node.status.images): no numpy, no snapshot, nothing shared with the
kernels. Slow and obvious on purpose; the property tests compare the plugins with it.

Integer arithmetic follows Go: ``/`` on int64 truncates toward zero (``_go_div``), the
RequestedToCapacityRatio average is ``math.Round`` (half away from zero, done exactly with
fractions here), and the float64 arithmetic of BalancedAllocation and ImageLocality is done in
the same order as kube's code so that truncation gives the same integers.
"""

from __future__ import annotations

import math
from fractions import Fraction

from schedbench.model.objects import (DEFAULT_MEMORY_REQUEST, DEFAULT_MILLI_CPU_REQUEST, Node, Pod,
                                      pod_requests)

MAX_NODE_SCORE = 100
MAX_CUSTOM_PRIORITY_SCORE = 10
MB = 1024 * 1024


def _go_div(a: int, b: int) -> int:
    """Go's integer division (truncation toward zero)."""
    q = abs(a) // abs(b)
    return q if (a >= 0) == (b > 0) else -q


# ------------------------------------------------------------------------------------ names

def tracked_as(name: str) -> str:
    """How kube's NodeInfo keeps a resource: 'cpu', 'memory', 'ephemeral-storage', 'scalar'
    (extended / hugepages / kubernetes.io-prefixed / attachable volumes) or 'untracked'."""
    if name in ("cpu", "memory", "ephemeral-storage"):
        return name
    if name.startswith("hugepages-"):
        return "scalar"
    if name.startswith("attachable-volumes-"):
        return "scalar"
    if "kubernetes.io/" in name:
        return "scalar"
    if "/" in name and not name.startswith("requests."):
        return "scalar"
    return "untracked"


# ------------------------------------------------------------------------- the pod request

def fit_pod_request(pod: Pod) -> dict[str, int]:
    """NodeResourcesFit's scorer: PodRequests with 100m / 200Mi for every container that does
    not state a CPU / memory request."""
    return pod_requests(pod.spec, {"cpu": DEFAULT_MILLI_CPU_REQUEST,
                                   "memory": DEFAULT_MEMORY_REQUEST})


def balanced_pod_request(pod: Pod) -> dict[str, int]:
    """BalancedAllocation's scorer: plain PodRequests."""
    return pod.requests()


# ---------------------------------------------------------------- allocatable / requested

def allocatable_and_requested(node: Node, pods_on_node: list[Pod], name: str, pod_request: int,
                              use_requested: bool) -> tuple[int, int]:
    """calculateResourceAllocatableRequest: (allocatable, requested with the pod)."""
    kind = tracked_as(name)
    if kind == "untracked":
        return 0, 0
    if kind == "scalar" and pod_request == 0:
        return 0, 0
    alloc = node.allocatable.get(name, 0)
    if kind in ("cpu", "memory") and not use_requested:
        used = sum(p.non_zero_requests().get(name, 0) for p in pods_on_node)
    else:
        used = sum(p.requests().get(name, 0) for p in pods_on_node)
    return alloc, used + pod_request


def _per_resource(node: Node, pods_on_node: list[Pod], names: list[str],
                  pod_request: dict[str, int], use_requested: bool) -> list[tuple[int, int]]:
    out = []
    for name in names:
        alloc, req = allocatable_and_requested(node, pods_on_node, name,
                                               pod_request.get(name, 0), use_requested)
        out.append((alloc, req) if alloc != 0 else (0, 0))
    return out


# ------------------------------------------------------------------------------ strategies

def least_allocated(pairs: list[tuple[int, int]], weights: list[int]) -> int:
    node_score = weight_sum = 0
    for (alloc, req), w in zip(pairs, weights):
        if alloc == 0:
            continue
        score = 0 if req > alloc else _go_div((alloc - req) * MAX_NODE_SCORE, alloc)
        node_score += score * w
        weight_sum += w
    return _go_div(node_score, weight_sum) if weight_sum else 0


def most_allocated(pairs: list[tuple[int, int]], weights: list[int]) -> int:
    node_score = weight_sum = 0
    for (alloc, req), w in zip(pairs, weights):
        if alloc == 0:
            continue
        score = _go_div(min(req, alloc) * MAX_NODE_SCORE, alloc)
        node_score += score * w
        weight_sum += w
    return _go_div(node_score, weight_sum) if weight_sum else 0


def shape_value(points: list[tuple[int, int]], p: int) -> int:
    """The broken-linear function through ``points`` (utilization, score) at ``p``."""
    if p <= points[0][0]:
        return points[0][1]
    for (u0, s0), (u1, s1) in zip(points, points[1:]):
        if p <= u1:
            return s0 + _go_div((s1 - s0) * (p - u0), u1 - u0)
    return points[-1][1]


def requested_to_capacity_ratio(pairs: list[tuple[int, int]], weights: list[int],
                                shape: list[tuple[int, int]]) -> int:
    scale = MAX_NODE_SCORE // MAX_CUSTOM_PRIORITY_SCORE
    points = [(u, s * scale) for u, s in shape]
    node_score = weight_sum = 0
    for (alloc, req), w in zip(pairs, weights):
        if alloc == 0:
            continue
        utilization = 100 if req > alloc else _go_div(req * 100, alloc)
        score = shape_value(points, utilization)
        if score > 0:
            node_score += score * w
            weight_sum += w
    if weight_sum == 0:
        return 0
    return math.floor(Fraction(node_score, weight_sum) + Fraction(1, 2))  # math.Round, >= 0


def balanced(pairs: list[tuple[int, int]]) -> int:
    fractions = []
    total = 0.0
    for alloc, req in pairs:
        if alloc == 0:
            continue
        f = float(req) / float(alloc)
        if f > 1:
            f = 1.0
        total += f
        fractions.append(f)
    std = 0.0
    if len(fractions) == 2:
        std = abs((fractions[0] - fractions[1]) / 2)
    elif len(fractions) > 2:
        mean = total / float(len(fractions))
        acc = 0.0
        for f in fractions:
            acc = acc + (f - mean) * (f - mean)
        std = math.sqrt(acc / float(len(fractions)))
    return int((1 - std) * float(MAX_NODE_SCORE))


# -------------------------------------------------------------------------------- plugins

def _pods_by_node(bound_pods: list[Pod]) -> dict[str, list[Pod]]:
    out: dict[str, list[Pod]] = {}
    for p in bound_pods:
        out.setdefault(p.spec.node_name, []).append(p)
    return out


def fit_scores(nodes: list[Node], bound_pods: list[Pod], pod: Pod, strategy: str,
               resources: list[tuple[str, int]], shape: list[tuple[int, int]] = ()
               ) -> dict[str, int]:
    """NodeResourcesFit Score of ``pod`` on every node of ``nodes``."""
    by_node = _pods_by_node(bound_pods)
    request = fit_pod_request(pod)
    names = [n for n, _ in resources]
    weights = [w for _, w in resources]
    out = {}
    for node in nodes:
        pairs = _per_resource(node, by_node.get(node.metadata.name, []), names, request, False)
        if strategy == "LeastAllocated":
            out[node.metadata.name] = least_allocated(pairs, weights)
        elif strategy == "MostAllocated":
            out[node.metadata.name] = most_allocated(pairs, weights)
        elif strategy == "RequestedToCapacityRatio":
            out[node.metadata.name] = requested_to_capacity_ratio(pairs, weights, list(shape))
        else:
            raise ValueError(strategy)
    return out


def balanced_scores(nodes: list[Node], bound_pods: list[Pod], pod: Pod, resources: list[str]
                    ) -> dict[str, int] | None:
    """NodeResourcesBalancedAllocation Score of ``pod`` on every node; None when PreScore skips
    (the pod requests none of the resources)."""
    request = balanced_pod_request(pod)
    if all(request.get(name, 0) == 0 for name in resources):
        return None
    by_node = _pods_by_node(bound_pods)
    return {node.metadata.name: balanced(_per_resource(node, by_node.get(node.metadata.name, []),
                                                       list(resources), request, True))
            for node in nodes}


def normalized_image_name(name: str) -> str:
    last_part = name.rsplit("/", 1)[-1]
    return name if ":" in last_part else name + ":latest"


def image_locality_scores(nodes: list[Node], pod: Pod) -> dict[str, int]:
    """ImageLocality Score of ``pod`` on every node of ``nodes`` (all of the cluster's nodes)."""
    total_nodes = len(nodes)
    holders: dict[str, set[str]] = {}
    node_sizes: dict[str, dict[str, int]] = {}
    for node in nodes:
        sizes: dict[str, int] = {}
        for image in node.status.images:
            for name in image.names:
                sizes[name] = image.size_bytes
                holders.setdefault(name, set()).add(node.metadata.name)
        node_sizes[node.metadata.name] = sizes
    containers = pod.spec.init_containers + pod.spec.containers
    min_threshold = 23 * MB
    max_threshold = 1000 * MB * len(containers)
    out = {}
    for node in nodes:
        sizes = node_sizes[node.metadata.name]
        total = 0
        for c in containers:
            name = normalized_image_name(c.image)
            if name in sizes:
                spread = float(len(holders[name])) / float(total_nodes)
                total += int(float(sizes[name]) * spread)
        total = max(min_threshold, min(total, max_threshold))
        out[node.metadata.name] = _go_div(MAX_NODE_SCORE * (total - min_threshold),
                                          max_threshold - min_threshold)
    return out
