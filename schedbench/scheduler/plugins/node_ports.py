"""NodePorts: the pod's host ports must be free on the node.

Host ports of a pod (kube's ``GetHostPorts``): ports with ``hostPort > 0`` of its restartable
init containers (sidecars) and of its containers. Each node keeps kube's ``HostPortInfo`` of its
bound pods: a *set* of (hostIP, protocol, port) with hostIP "" read as 0.0.0.0 and protocol ""
as TCP; removing a pod removes its entries even if another pod on the node uses the same one
(kube's semantics). A wanted (ip, protocol, port) conflicts when ip is 0.0.0.0 and any IP of the
node uses (protocol, port), or when the node uses (protocol, port) on 0.0.0.0 or on ip.

PreFilter skips pods without host ports; Filter rejects conflicting nodes as Unschedulable
(preemption may free the port) with "node(s) didn't have free ports for the requested pod
ports". The used ports are kept incrementally by a snapshot listener, indexed by
(protocol, port) so that a pod's check costs the number of nodes using its ports.
"""

from __future__ import annotations

import weakref

import numpy as np

from ...model.objects import Pod
from ..framework import UNSCHEDULABLE, CycleState, Plugin, Status, register
from ..snapshot import NodeSnapshot, PodInfo

ERR_REASON = "node(s) didn't have free ports for the requested pod ports"
DEFAULT_BIND_ALL_HOST_IP = "0.0.0.0"

HostPort = tuple[str, str, int]  # (ip, protocol, port), sanitised


def host_ports(pod: Pod) -> list[HostPort]:
    """kube's ``GetHostPorts`` (sidecar init containers first, then containers), sanitised."""
    out: list[HostPort] = []
    containers = [c for c in pod.spec.init_containers if c.restart_policy == "Always"]
    containers += pod.spec.containers
    for c in containers:
        for p in c.ports:
            if p.host_port > 0:
                out.append((p.host_ip or DEFAULT_BIND_ALL_HOST_IP, p.protocol or "TCP",
                            int(p.host_port)))
    return out


def pod_host_ports(pod: PodInfo) -> list[HostPort]:
    key = "NodePorts/ports"
    v = pod.cache.get(key)
    if v is None:
        v = pod.cache[key] = host_ports(pod.pod)
    return v


def _ports_conflict(wanted: list[HostPort], used: list[HostPort]) -> bool:
    """``HostPortInfo.CheckConflict``: the same protocol and port on the same host IP, or
    either IP is 0.0.0.0 (every address)."""
    for ip, proto, port in wanted:
        for ip2, proto2, port2 in used:
            if port == port2 and proto == proto2 and (
                    ip == ip2 or DEFAULT_BIND_ALL_HOST_IP in (ip, ip2)):
                return True
    return False


class UsedPorts:
    """Per-node HostPortInfo of the snapshot's bound pods, as an index
    ``(protocol, port) -> {node: set of host IPs}`` (a snapshot listener)."""

    def __init__(self) -> None:
        self.by_port: dict[tuple[str, int], dict[int, set[str]]] = {}

    def pod_added(self, snapshot: NodeSnapshot, pod: PodInfo, node: int) -> None:
        for ip, proto, port in pod_host_ports(pod):
            self.by_port.setdefault((proto, port), {}).setdefault(node, set()).add(ip)

    def pod_removed(self, snapshot: NodeSnapshot, pod: PodInfo, node: int) -> None:
        for ip, proto, port in pod_host_ports(pod):
            nodes = self.by_port.get((proto, port))
            if nodes is None or node not in nodes:
                continue
            nodes[node].discard(ip)
            if not nodes[node]:
                del nodes[node]
            if not nodes:
                del self.by_port[(proto, port)]

    def node_ports(self, node: int) -> set[HostPort]:
        """The node's used (ip, protocol, port) entries (for explanations and tests)."""
        return {(ip, proto, port) for (proto, port), nodes in self.by_port.items()
                for ip in nodes.get(node, ())}

    def conflicts(self, wanted: list[HostPort], num_nodes: int) -> np.ndarray:
        """bool[num_nodes]: the node's used ports conflict with one of ``wanted``."""
        bad = np.zeros(num_nodes, np.bool_)
        for ip, proto, port in wanted:
            nodes = self.by_port.get((proto, port))
            if not nodes:
                continue
            for n, ips in nodes.items():
                if (ip == DEFAULT_BIND_ALL_HOST_IP or DEFAULT_BIND_ALL_HOST_IP in ips
                        or ip in ips):
                    bad[n] = True
        return bad


_USED: weakref.WeakKeyDictionary[NodeSnapshot, UsedPorts] = weakref.WeakKeyDictionary()


def used_ports(snapshot: NodeSnapshot) -> UsedPorts:
    """The snapshot's UsedPorts index (registered as a listener on first use)."""
    u = _USED.get(snapshot)
    if u is None:
        u = _USED[snapshot] = UsedPorts()
        snapshot.add_listener(u)
    return u


@register
class NodePorts(Plugin):
    name = "NodePorts"
    # kube (queueing hints on): Pod/Delete and Node/Add.
    events = frozenset({"AssignedPodDelete", "NodeAdd"})

    def queueing_hint(self, pod: PodInfo, event: str, other) -> bool:
        """kube's ``isSchedulableAfterPodDeleted``: the deleted pod was bound (or nominated)
        and held a host port that conflicts with one the pod wants. Node/Add has no hint."""
        if event != "AssignedPodDelete" or other is None:
            return True
        deleted = other.pod
        if not deleted.spec.node_name and not deleted.status.nominated_node_name \
                and other.node < 0:
            return False
        freed = pod_host_ports(other)
        return bool(freed) and _ports_conflict(pod_host_ports(pod), freed)

    def __init__(self, args, handle) -> None:
        super().__init__(args, handle)
        self.used = used_ports(handle.snapshot)

    def pre_filter(self, state: CycleState, pod: PodInfo, nodes: np.ndarray):
        wanted = pod_host_ports(pod)
        if not wanted:
            return Status.skip(), None
        state[self.name] = wanted
        return Status.success(), None

    def _wanted(self, state: CycleState, pod: PodInfo) -> list[HostPort]:
        w = state.get(self.name)
        return w if w is not None else pod_host_ports(pod)

    def filter(self, state: CycleState, pod: PodInfo, nodes: np.ndarray) -> np.ndarray:
        nodes = np.asarray(nodes, np.int64)
        out = np.zeros(nodes.size, np.int8)
        wanted = self._wanted(state, pod)
        if wanted:
            bad = self.used.conflicts(wanted, self.handle.snapshot.num_nodes)
            out[bad[nodes]] = UNSCHEDULABLE
        return out

    def filter_reasons(self, state: CycleState, pod: PodInfo, node: int) -> list[str]:
        wanted = self._wanted(state, pod)
        if wanted and self.used.conflicts(wanted, self.handle.snapshot.num_nodes)[node]:
            return [ERR_REASON]
        return []
