"""Random (schedbench's own score plugin): every feasible node scores the same (0).

A profile needs a Score plugin for kube's cycle to look for more than one feasible node; with
this one alone, every feasible node ties and the seeded tie-break picks one uniformly - the
``random`` policy. (Without any Score plugin kube-scheduler stops at the first feasible node
from its rotating start index, which is round-robin, not random.)"""

from __future__ import annotations

import numpy as np

from ..framework import CycleState, Plugin, register
from ..snapshot import PodInfo


@register
class Random(Plugin):
    name = "Random"

    def score(self, state: CycleState, pod: PodInfo, nodes: np.ndarray) -> np.ndarray:
        return np.zeros(nodes.size, np.int64)
