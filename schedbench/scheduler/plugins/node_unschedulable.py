"""NodeUnschedulable: a cordoned node (``spec.unschedulable``) takes no new pods, unless the pod
tolerates the ``node.kubernetes.io/unschedulable:NoSchedule`` taint (the one the node lifecycle
controller puts on cordoned nodes). Rejections are UnschedulableAndUnresolvable ("node(s) were
unschedulable"): preemption cannot uncordon a node."""

from __future__ import annotations

import numpy as np

from ...model.objects import Taint
from ..framework import UNRESOLVABLE, CycleState, Plugin, node_change, register
from ..snapshot import PodInfo
from ..taints import tolerations_tolerate

TAINT_NODE_UNSCHEDULABLE = "node.kubernetes.io/unschedulable"
ERR_REASON_UNSCHEDULABLE = "node(s) were unschedulable"
_UNSCHEDULABLE_TAINT = Taint(key=TAINT_NODE_UNSCHEDULABLE, value="", effect="NoSchedule")


def tolerates_unschedulable(pod: PodInfo) -> bool:
    """Whether the pod tolerates ``node.kubernetes.io/unschedulable:NoSchedule`` (cached)."""
    key = "NodeUnschedulable/tolerates"
    v = pod.cache.get(key)
    if v is None:
        v = pod.cache[key] = tolerations_tolerate(pod.pod.spec.tolerations, _UNSCHEDULABLE_TAINT)
    return v


@register
class NodeUnschedulable(Plugin):
    name = "NodeUnschedulable"
    # kube: Node/Add and Node/UpdateNodeTaint (uncordoning is a taint update).
    events = frozenset({"NodeAdd", "NodeUpdate"})

    def queueing_hint(self, pod: PodInfo, event: str, other) -> bool:
        """kube's ``isSchedulableAfterNodeChange``: a schedulable node was added, or a node
        was uncordoned."""
        change = node_change(event, other)
        if change is None:
            return True
        old, new = change
        if old is None:
            return not new.spec.unschedulable
        return old.spec.unschedulable and not new.spec.unschedulable

    def filter(self, state: CycleState, pod: PodInfo, nodes: np.ndarray) -> np.ndarray:
        nodes = np.asarray(nodes, np.int64)
        out = np.zeros(nodes.size, np.int8)
        if not tolerates_unschedulable(pod):
            out[self.handle.snapshot.unschedulable[nodes]] = UNRESOLVABLE
        return out

    def filter_reasons(self, state: CycleState, pod: PodInfo, node: int) -> list[str]:
        if self.handle.snapshot.unschedulable[node] and not tolerates_unschedulable(pod):
            return [ERR_REASON_UNSCHEDULABLE]
        return []

    def filter_reasons_batch(self, state: CycleState, pod: PodInfo, nodes: np.ndarray
                             ) -> list[list[str]]:
        if tolerates_unschedulable(pod):
            return [[] for _ in range(len(nodes))]
        bad = self.handle.snapshot.unschedulable[np.asarray(nodes, np.int64)]
        return [[ERR_REASON_UNSCHEDULABLE] if b else [] for b in bad.tolist()]
