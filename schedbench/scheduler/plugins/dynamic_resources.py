"""DynamicResources (DRA): schedbench models no ResourceClaims, so, as kube-scheduler does for a
pod without claims, it skips PreFilter and PreScore; its PostFilter has nothing to deallocate."""

from __future__ import annotations

from ..framework import Code, CycleState, Status, register
from ..snapshot import PodInfo
from .not_modelled import NotModelledPlugin


@register
class DynamicResources(NotModelledPlugin):
    name = "DynamicResources"

    def post_filter(self, state: CycleState, pod: PodInfo, diagnosis):
        from ..scheduler import PostFilterResult

        return PostFilterResult(Status(Code.UNSCHEDULABLE, ("no new claims to deallocate",)))
