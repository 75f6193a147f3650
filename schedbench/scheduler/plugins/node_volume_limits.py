"""NodeVolumeLimits: CSI attach limits. schedbench models no volumes, so, as kube-scheduler does for a pod
without persistent volume claims, it skips PreFilter and PreScore (see :mod:`.not_modelled`)."""

from ..framework import register
from .not_modelled import NotModelledPlugin


@register
class NodeVolumeLimits(NotModelledPlugin):
    name = "NodeVolumeLimits"
