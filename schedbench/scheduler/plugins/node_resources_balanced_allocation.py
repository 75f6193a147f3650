"""NodeResourcesBalancedAllocation: favour nodes whose resource usage, with the pod added, is
balanced across the configured resources (kube's noderesources/balanced_allocation.go, v1.35).

PreScore computes the pod's plain request (``PodRequests``: no 100m/200Mi defaults, since the
plugin's scorer uses ``Requested``, not ``NonZeroRequested``) per resource of ``args.resources``;
a pod requesting none of them (all zero, e.g. best-effort) makes PreScore return Skip, so the
plugin does not score it. Score: per node, the fractions ``(requested + pod) / allocatable``
(float64, capped at 1) of the resources the node has (a scalar resource the pod does not request
is left out), then ``int64((1 - std) * 100)``; see :mod:`schedbench.scheduler.resource_scoring`.
When Score runs without PreScore it computes the request itself and scores a best-effort pod 0.
No NormalizeScore.
"""

from __future__ import annotations

import numpy as np

from ...config import NodeResourcesBalancedAllocationArgs
from ..framework import CycleState, Plugin, Status, register
from ..resource_scoring import (BALANCED_ALLOCATION, PodScoreInput, ScorerSpec,
                                allocation_scores, pod_score_input)
from ..snapshot import PodInfo


@register
class NodeResourcesBalancedAllocation(Plugin):
    name = "NodeResourcesBalancedAllocation"
    args_type = NodeResourcesBalancedAllocationArgs
    events = frozenset()  # score-only: never rejects a pod

    def __init__(self, args, handle) -> None:
        super().__init__(args, handle)
        self.scorer = ScorerSpec.build(BALANCED_ALLOCATION, self.args.resources,
                                       use_requested=True)
        self._pre_score_key = "PreScore" + self.name

    def _input(self, pod: PodInfo) -> PodScoreInput:
        return pod_score_input(self.handle.snapshot, self.scorer, pod.requests)

    def pre_score(self, state: CycleState, pod: PodInfo, nodes: np.ndarray) -> Status:
        s = self._input(pod)
        if not s.request.any():
            # Best-effort pods are not scored (kubernetes/kubernetes#129138).
            state.pop(self._pre_score_key, None)
            return Status.skip()
        state[self._pre_score_key] = s
        return Status.success()

    def score(self, state: CycleState, pod: PodInfo, nodes: np.ndarray) -> np.ndarray:
        if not self.scorer.names:
            raise RuntimeError(f"{self.name}: resources not found")
        snapshot = self.handle.snapshot
        s: PodScoreInput | None = state.get(self._pre_score_key)
        if s is None or s.num_resources != snapshot.num_resources:
            s = self._input(pod)
            if not s.request.any():
                return np.zeros(np.asarray(nodes).size, np.int64)
            state[self._pre_score_key] = s
        return allocation_scores(snapshot, nodes, self.scorer, s)
