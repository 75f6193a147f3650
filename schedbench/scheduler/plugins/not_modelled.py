"""Base for the plugins of features schedbench does not model: volumes and dynamic resources.

schedbench's pods have no PersistentVolumeClaims, ephemeral volumes or ResourceClaims. For such
pods kube-scheduler's own plugins step aside: VolumeBinding, VolumeRestrictions, VolumeZone,
NodeVolumeLimits and DynamicResources return Skip from PreFilter (so Filter is not called) and
from PreScore (so Score is not called). These classes do the same, so the default profile runs
unchanged and ``explain`` shows them as skipped. DynamicResources' PostFilter reports, as
kube's does for a pod without claims, that there is nothing to deallocate.
"""

from __future__ import annotations

import numpy as np

from ..framework import SUCCESS, CycleState, Plugin, Status
from ..snapshot import PodInfo


class NotModelledPlugin(Plugin):
    events = frozenset()

    def pre_filter(self, state: CycleState, pod: PodInfo, nodes: np.ndarray):
        return Status.skip(), None

    def filter(self, state: CycleState, pod: PodInfo, nodes: np.ndarray) -> np.ndarray:
        return np.full(nodes.size, SUCCESS, np.int8)

    def filter_reasons(self, state: CycleState, pod: PodInfo, node: int) -> list[str]:
        return []

    def pre_score(self, state: CycleState, pod: PodInfo, nodes: np.ndarray) -> Status:
        return Status.skip()

    def score(self, state: CycleState, pod: PodInfo, nodes: np.ndarray) -> np.ndarray:
        return np.zeros(nodes.size, np.int64)
