"""DotProduct (schedbench's own score plugin): Tetris-style alignment of the pod's demand with
the node's free resources (Grandl et al., "Multi-Resource Packing for Cluster Schedulers",
SIGCOMM 2014): ``sum_r (request_r / alloc_r) * (free_r / alloc_r)`` over cpu and memory,
where ``free`` is what is left before placing the pod. Nodes whose free resources point the same
way as the demand score higher; scores are scaled so the best node gets MaxNodeScore
(DefaultNormalizeScore). A pod that requests nothing scores 0 everywhere."""

from __future__ import annotations

import numpy as np
from numba import njit

from ..framework import CycleState, Plugin, Status, default_normalize_score, register
from ..snapshot import CPU, MEMORY, PodInfo

SCALE = 1_000_000  # fixed-point scale of the raw alignment


@njit(cache=True)
def _alignment(nodes, allocatable, requested, request, columns):
    out = np.zeros(nodes.size, np.int64)
    for i in range(nodes.size):
        n = nodes[i]
        total = 0.0
        for c in columns:
            alloc = allocatable[n, c]
            if alloc <= 0:
                continue
            free = alloc - requested[n, c]
            total += (request[c] / alloc) * (free / alloc)
        out[i] = np.int64(total * SCALE)
    return out


@register
class DotProduct(Plugin):
    name = "DotProduct"

    def pre_score(self, state: CycleState, pod: PodInfo, nodes: np.ndarray) -> Status:
        request, _ = self.handle.snapshot.request_vectors(pod)
        if request[CPU] == 0 and request[MEMORY] == 0:
            return Status.skip()
        return Status.success()

    def score(self, state: CycleState, pod: PodInfo, nodes: np.ndarray) -> np.ndarray:
        snap = self.handle.snapshot
        request, _ = snap.request_vectors(pod)
        columns = np.array([CPU, MEMORY], np.int64)
        return _alignment(np.ascontiguousarray(nodes, np.int64), snap.allocatable,
                          snap.requested, request.astype(np.float64), columns)

    def normalize_score(self, state: CycleState, pod: PodInfo, nodes: np.ndarray,
                        scores: np.ndarray) -> None:
        default_normalize_score(scores)
