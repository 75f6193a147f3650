"""A second starting placement for the search: first-fit decreasing onto the largest nodes.

The policies' placements (the hint) spread pods the way the scheduler scores nodes; for the
``nodes`` objective a bin-packing start is often far better. Classes are taken largest
request first (by their share of the cluster's free capacity), each pod on the first node,
largest free capacity first, that its mask allows and where it fits (every modelled resource,
pod slots, GPUs: a share pod on the fitting GPU with the least milli left, whole-GPU pods on
free GPUs, host ports once per node). Instances with inter-pod rules (affinity,
anti-affinity, spread) get no such start: the scheduler's hint covers them.
"""

from __future__ import annotations

import numpy as np

from ..scheduler.snapshot import MILLI_PER_GPU
from .instance import Instance


#: The class orders :func:`greedy_counts` knows.
ORDERS = ("largest", "smallest", "constrained")


def greedy_counts(inst: Instance, order_by: str = "largest") -> np.ndarray | None:
    """Counts per (class, node) of the first-fit placement, classes in the order
    ``order_by`` (one of :data:`ORDERS`), or None when the instance has inter-pod rules."""
    if inst.anti or inst.affinity or inst.spread:
        return None
    C, N = inst.mask.shape
    X = np.zeros((C, N), np.int64)
    if C == 0 or N == 0:
        return X
    cap = inst.cap.astype(np.float64)
    total = np.maximum(cap.sum(axis=0), 1.0)
    size = np.array([float((c.request / total).sum()) + (c.num_gpu if c.num_gpu else 0)
                     for c in inst.classes])
    weight = np.array([c.weight for c in inst.classes])
    free = inst.cap.copy()
    slots = inst.slots.copy()
    gpu = inst.gpu_free.copy()
    port_used: set[tuple[int, int]] = set()
    node_order = np.lexsort((np.arange(N), -(inst.cap / total).sum(axis=1)))
    # for the pods placed: smallest first; for the nodes used: largest first, or the most
    # constrained (fewest allowed nodes) first
    allowed = inst.mask.sum(axis=1)
    if order_by == "smallest":
        key = lambda c: (-weight[c], size[c], c)  # noqa: E731
    elif order_by == "constrained":
        key = lambda c: (-weight[c], allowed[c], -size[c], c)  # noqa: E731
    else:
        key = lambda c: (-weight[c], -size[c], c)  # noqa: E731
    order = sorted(range(C), key=key)
    for ci in order:
        cls = inst.classes[ci]
        req = cls.request
        groups = [g for g, grp in enumerate(inst.port_groups) if ci in grp]
        left = cls.count
        for n in node_order.tolist():
            if left == 0:
                break
            if not inst.mask[ci, n]:
                continue
            while left and X[ci, n] < inst.ub[ci, n] and slots[n] > 0 \
                    and (free[n] >= req).all():
                if groups and any((g, n) in port_used for g in groups):
                    break
                if inst.gpu and cls.num_gpu and not _take_gpu(gpu[n], cls):
                    break
                free[n] -= req
                slots[n] -= 1
                X[ci, n] += 1
                left -= 1
                for g in groups:
                    port_used.add((g, n))
    return X


def _take_gpu(free: np.ndarray, cls) -> bool:
    """Take the class's GPUs on a node (``free``: milli left per GPU, -1 none)."""
    if cls.gpu_share:
        fits = [(int(f), j) for j, f in enumerate(free) if f >= cls.gpu_milli]
        if not fits:
            return False
        _, j = min(fits)
        free[j] -= cls.gpu_milli
        return True
    whole = [j for j, f in enumerate(free) if f >= MILLI_PER_GPU]
    if len(whole) < cls.num_gpu:
        return False
    for j in whole[: cls.num_gpu]:
        free[j] -= MILLI_PER_GPU
    return True


def check_start(inst: Instance, X: np.ndarray) -> tuple[dict, dict] | None:
    """Whether counts ``X`` satisfy the model without a solver - possible only when the
    instance has no inter-pod rules: mask, bounds, capacities, pod slots, host ports and GPUs
    (share pods best-fit by milli, largest first; whole pods on free GPUs). Returns the GPU
    values in the model's form ``(s[(c, n, g)], w[(n, g)])``, or None when not shown."""
    if inst.anti or inst.affinity or inst.spread:
        return None
    if (X < 0).any() or (X > inst.ub).any() or (X[~inst.mask] != 0).any():
        return None
    req = np.array([c.request for c in inst.classes], np.int64).reshape(
        len(inst.classes), len(inst.columns))
    if (X.T @ req > inst.cap).any() or (X.sum(axis=0) > inst.slots).any():
        return None
    for group in inst.port_groups:
        if (X[group].sum(axis=0) > 1).any():
            return None
    s: dict = {}
    w: dict = {}
    if inst.gpu:
        for n in np.flatnonzero(X.sum(axis=0)).tolist():
            free = inst.gpu_free[n].copy()
            gpu_classes = [c for c in np.flatnonzero(X[:, n]).tolist()
                           if inst.classes[c].num_gpu]
            # whole GPUs first, then shares largest first
            gpu_classes.sort(key=lambda c: (inst.classes[c].gpu_share,
                                            -inst.classes[c].gpu_milli, c))
            for c in gpu_classes:
                cls = inst.classes[c]
                for _ in range(int(X[c, n])):
                    before = free.copy()
                    if not _take_gpu(free, cls):
                        return None
                    taken = np.flatnonzero(before != free).tolist()
                    if cls.gpu_share:
                        s[c, n, taken[0]] = s.get((c, n, taken[0]), 0) + 1
                    else:
                        for g in taken:
                            w[n, g] = 1
    return s, w
