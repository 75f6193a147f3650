"""Builders for scheduler tests: nodes, pods and clusters from a few keywords, and a plugin
instantiated over a snapshot without a full profile."""

from __future__ import annotations

from typing import Any

import numpy as np

from schedbench.cluster import Cluster
from schedbench.manifests import object_from_dict
from schedbench.model.objects import Node, Pod
from schedbench.scheduler.framework import PLUGINS, CycleState, Handle
from schedbench.scheduler.snapshot import NodeSnapshot


def make_node(name: str, cpu: str | int = "4", memory: str = "16Gi", pods: int = 110,
              labels: dict | None = None, taints: list[dict] | None = None,
              unschedulable: bool = False, extra: dict | None = None,
              images: list[dict] | None = None) -> Node:
    alloc = {"cpu": str(cpu), "memory": memory, "pods": str(pods), **(extra or {})}
    doc: dict[str, Any] = {"apiVersion": "v1", "kind": "Node",
                           "metadata": {"name": name, "labels": labels or {}},
                           "spec": {"unschedulable": unschedulable, "taints": taints or []},
                           "status": {"capacity": alloc, "allocatable": alloc}}
    if images:
        doc["status"]["images"] = images
    return object_from_dict(doc)


def make_pod(name: str, cpu: str | None = None, memory: str | None = None,
             namespace: str = "default", labels: dict | None = None, node: str = "",
             extra_requests: dict | None = None, containers: list[dict] | None = None,
             **spec: Any) -> Pod:
    """A pod with one container requesting ``cpu``/``memory`` (omitted when None); any other
    keyword is a PodSpec field in its YAML (camelCase) spelling."""
    requests = {k: v for k, v in (("cpu", cpu), ("memory", memory)) if v is not None}
    requests.update(extra_requests or {})
    if containers is None:
        containers = [{"name": "c", "image": "img", "resources": {"requests": requests}}]
    body = {"containers": containers, **spec}
    if node:
        body["nodeName"] = node
    return object_from_dict({"apiVersion": "v1", "kind": "Pod",
                             "metadata": {"name": name, "namespace": namespace,
                                          "labels": labels or {}},
                             "spec": body})


def make_cluster(nodes: list[Node], pods: list[Pod] = (), **objects: list) -> Cluster:
    """A cluster of these nodes and pods (bound ones have ``node=``), plus other objects by
    Cluster attribute name (``services=[...]``, ``replica_sets=[...]``)."""
    c = Cluster(nodes=list(nodes), pods=list(pods))
    for attr, items in objects.items():
        getattr(c, attr).extend(items)
    return c


def snapshot_of(cluster: Cluster) -> NodeSnapshot:
    """A snapshot of the cluster's nodes with its bound pods added."""
    snap = NodeSnapshot(cluster.nodes, priority_classes=cluster.priority_class_map())
    for pod in cluster.bound_pods():
        snap.add_pod(snap.pod_info(pod), snap.node_index[pod.node_name])
    return snap


def plugin_on(name: str, cluster: Cluster, args: Any = None, seed: int = 0):
    """(plugin instance, snapshot) for plugin ``name`` over ``cluster``."""
    import schedbench.scheduler.plugins  # noqa: F401

    snap = snapshot_of(cluster)
    handle = Handle(snap, cluster, np.random.default_rng(seed))
    return PLUGINS[name](args, handle), snap


def run_filter(plugin, snap: NodeSnapshot, pod: Pod) -> tuple[dict[str, int], CycleState]:
    """PreFilter + Filter of one plugin on every node: {node name: code}. A PreFilter Skip
    gives Skip (5) everywhere; a PreFilter node set marks the other nodes 3."""
    from schedbench.scheduler.framework import Code

    info = snap.pod_info(pod)
    state = CycleState()
    nodes = snap.alive_nodes()
    if hasattr(plugin, "pre_filter"):
        status, allowed = plugin.pre_filter(state, info, nodes)
        if status.is_skip:
            return {snap.node_names[n]: int(Code.SKIP) for n in nodes}, state
        if not status.is_success:
            return {snap.node_names[n]: int(status.code) for n in nodes}, state
    codes = plugin.filter(state, info, nodes)
    return {snap.node_names[n]: int(c) for n, c in zip(nodes, codes)}, state
