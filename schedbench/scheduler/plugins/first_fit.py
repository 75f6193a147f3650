"""FirstFit (schedbench's own score plugin): the feasible node that comes first in the cluster's
node order scores MaxNodeScore, every other node 0 - classic first-fit bin packing."""

from __future__ import annotations

import numpy as np

from ..framework import MAX_NODE_SCORE, CycleState, Plugin, register
from ..snapshot import PodInfo


@register
class FirstFit(Plugin):
    name = "FirstFit"

    def score(self, state: CycleState, pod: PodInfo, nodes: np.ndarray) -> np.ndarray:
        scores = np.zeros(nodes.size, np.int64)
        if nodes.size:
            scores[int(np.argmin(nodes))] = MAX_NODE_SCORE
        return scores
