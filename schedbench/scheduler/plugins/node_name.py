"""NodeName: a pod that names a node (``spec.nodeName``) fits only that node. In v1.35 the plugin
has a Filter only (no PreFilter node set): every other node is UnschedulableAndUnresolvable
with "node(s) didn't match the requested node name"."""

from __future__ import annotations

import numpy as np

from ..framework import UNRESOLVABLE, CycleState, Plugin, node_change, register
from ..snapshot import PodInfo

ERR_REASON = "node(s) didn't match the requested node name"


@register
class NodeName(Plugin):
    name = "NodeName"
    # kube v1.35 (queueing hints on): Node/Add only.
    events = frozenset({"NodeAdd"})

    def queueing_hint(self, pod: PodInfo, event: str, other) -> bool:
        """kube's ``isSchedulableAfterNodeAdd``: the added node is the one the pod names."""
        change = node_change(event, other)
        if change is None:
            return True
        wanted = pod.pod.spec.node_name
        return not wanted or change[1].metadata.name == wanted

    def filter(self, state: CycleState, pod: PodInfo, nodes: np.ndarray) -> np.ndarray:
        nodes = np.asarray(nodes, np.int64)
        out = np.zeros(nodes.size, np.int8)
        wanted = pod.pod.spec.node_name
        if wanted:
            snap = self.handle.snapshot
            i = snap.node_index.get(wanted, -1)
            out[nodes != i] = UNRESOLVABLE
        return out

    def filter_reasons(self, state: CycleState, pod: PodInfo, node: int) -> list[str]:
        wanted = pod.pod.spec.node_name
        if wanted and self.handle.snapshot.node_names[node] != wanted:
            return [ERR_REASON]
        return []
