"""A cluster as a set of Kubernetes objects, and its summary.

:class:`Cluster` groups the objects of a manifest set by kind and answers the questions every
command asks first: which pods are bound where, which wait for the scheduler, how much of each
node is requested. It is the input of the scheduler, the optimal baseline and the simulator.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

from .errors import InputError
from .manifests import load_manifests
from .model.codec import ManifestWarning
from .model.objects import (
    Deployment,
    HorizontalPodAutoscaler,
    KubeObject,
    Namespace,
    Node,
    Pod,
    PriorityClass,
    ReplicaSet,
    Service,
)
from .model.quantity import format_quantity

# Resources every summary shows first, in this order; extended resources follow by name.
CORE_RESOURCES = ("cpu", "memory", "ephemeral-storage", "pods")


def example_cluster_path() -> Path:
    """The example cluster bundled with the package (used by the README's first command)."""
    return Path(str(resources.files("schedbench") / "data" / "example-cluster.yaml"))


@dataclass
class Cluster:
    """The objects of a cluster, by kind, in load order."""

    namespaces: list[Namespace] = field(default_factory=list)
    nodes: list[Node] = field(default_factory=list)
    pods: list[Pod] = field(default_factory=list)
    services: list[Service] = field(default_factory=list)
    replica_sets: list[ReplicaSet] = field(default_factory=list)
    deployments: list[Deployment] = field(default_factory=list)
    horizontal_pod_autoscalers: list[HorizontalPodAutoscaler] = field(default_factory=list)
    priority_classes: list[PriorityClass] = field(default_factory=list)
    source: str = ""

    _BY_KIND = {
        "Namespace": "namespaces", "Node": "nodes", "Pod": "pods", "Service": "services",
        "ReplicaSet": "replica_sets", "Deployment": "deployments",
        "HorizontalPodAutoscaler": "horizontal_pod_autoscalers",
        "PriorityClass": "priority_classes",
    }

    @classmethod
    def from_objects(cls, objects: Iterable[KubeObject], source: str = "") -> Cluster:
        cluster = cls(source=source)
        for obj in objects:
            getattr(cluster, cls._BY_KIND[obj.KIND]).append(obj)
        cluster.check_references()
        return cluster

    @classmethod
    def load(cls, paths: str | Path | Iterable[str | Path]) -> Cluster:
        """Load manifests (files or directories) as a cluster."""
        source = str(paths) if isinstance(paths, (str, Path)) else ", ".join(map(str, paths))
        return cls.from_objects(load_manifests(paths), source=source)

    def objects(self) -> list[KubeObject]:
        """Every object, cluster-scoped kinds first, in a stable order for dumping."""
        out: list[KubeObject] = []
        for attr in ("namespaces", "priority_classes", "nodes", "services", "deployments",
                     "replica_sets", "horizontal_pod_autoscalers", "pods"):
            out.extend(getattr(self, attr))
        return out

    def check_references(self) -> None:
        """Warn about what Kubernetes would not have let happen but a hand-written file can
        contain: pods bound to nodes that do not exist, unknown priority classes (an error,
        since a pod's priority cannot be determined)."""
        names = {n.name for n in self.nodes}
        for pod in self.pods:
            if pod.is_bound and pod.node_name not in names and not pod.is_terminated:
                warnings.warn(ManifestWarning(
                    f"{pod.ref}: spec.nodeName: bound to node {pod.node_name!r}, which is not in "
                    f"the cluster; the pod is ignored by capacity accounting"))
        classes = self.priority_class_map()
        for pod in self.pods:
            name = pod.spec.priority_class_name
            if name and pod.spec.priority is None and name not in classes \
                    and not name.startswith("system-"):
                raise InputError(f"no PriorityClass named {name!r} in the cluster",
                                 file=self.source or None, obj=pod.ref,
                                 field="spec.priorityClassName")

    def priority_class_map(self) -> dict[str, PriorityClass]:
        """PriorityClasses by name, with Kubernetes' two built-in system classes."""
        builtin = {
            "system-cluster-critical": PriorityClass.from_value("system-cluster-critical",
                                                                2_000_000_000),
            "system-node-critical": PriorityClass.from_value("system-node-critical",
                                                             2_000_001_000),
        }
        return {**builtin, **{pc.name: pc for pc in self.priority_classes}}

    def node(self, name: str) -> Node | None:
        return next((n for n in self.nodes if n.name == name), None)

    def bound_pods(self) -> list[Pod]:
        """Pods with ``spec.nodeName`` on a node of the cluster that still hold resources
        (not Succeeded or Failed)."""
        names = {n.name for n in self.nodes}
        return [p for p in self.pods if p.is_bound and not p.is_terminated
                and p.node_name in names]

    def pending_pods(self) -> list[Pod]:
        """Pods waiting for the scheduler: no ``spec.nodeName`` and not terminated."""
        return [p for p in self.pods if p.is_pending_scheduling]

    def requested_by_node(self) -> dict[str, dict[str, int]]:
        """The sum of the effective requests of the pods bound to each node, plus ``pods``."""
        out: dict[str, dict[str, int]] = {n.name: {} for n in self.nodes}
        for pod in self.bound_pods():
            acc = out[pod.node_name]
            for res, v in pod.requests().items():
                acc[res] = acc.get(res, 0) + v
            acc["pods"] = acc.get("pods", 0) + 1
        return out

    def summary(self) -> dict:
        """Nodes, allocatable capacity, what bound pods request, and the pending pods."""
        requested = self.requested_by_node()
        resource_names = _ordered_resources(
            [n.allocatable for n in self.nodes] + list(requested.values()))
        totals = {r: {"allocatable": 0, "requested": 0} for r in resource_names}
        nodes = []
        for n in self.nodes:
            alloc, req = n.allocatable, requested[n.name]
            for r in resource_names:
                totals[r]["allocatable"] += alloc.get(r, 0)
                totals[r]["requested"] += req.get(r, 0)
            nodes.append({
                "name": n.name,
                "ready": n.is_ready(),
                "unschedulable": n.spec.unschedulable,
                "zone": n.labels.get("topology.kubernetes.io/zone", ""),
                "taints": [f"{t.key}{'=' + t.value if t.value else ''}:{t.effect}"
                           for t in n.taints],
                "pods": req.get("pods", 0),
                "allocatable": {r: alloc.get(r, 0) for r in resource_names},
                "requested": {r: req.get(r, 0) for r in resource_names},
            })
        bound = self.bound_pods()
        pending = self.pending_pods()
        return {
            "source": self.source,
            "nodes": {
                "total": len(self.nodes),
                "ready": sum(n.is_ready() for n in self.nodes),
                "unschedulable": sum(n.spec.unschedulable for n in self.nodes),
                "tainted": sum(bool(n.taints) for n in self.nodes),
                "zones": sorted({z for z in (x["zone"] for x in nodes) if z}),
            },
            "resources": totals,
            "pods": {
                "total": len(self.pods),
                "bound": len(bound),
                "pending": len(pending),
                "terminated": sum(p.is_terminated for p in self.pods),
            },
            "node_details": nodes,
            "pending_pods": [{"pod": p.key, "requests": p.requests(),
                              "priority": p.effective_priority(self.priority_class_map())}
                             for p in pending],
        }


def _ordered_resources(lists: list[dict[str, int]]) -> list[str]:
    names = {r for d in lists for r in d}
    core = [r for r in CORE_RESOURCES if r in names]
    return core + sorted(names - set(core))


def format_resource(name: str, value: int) -> str:
    """Human text for a resource amount: ``3500m`` CPU as ``3.5``, memory in binary units."""
    if name == "cpu":
        return f"{value / 1000:g}"
    if name in ("memory", "ephemeral-storage") or name.startswith("hugepages-"):
        for suffix, factor in (("Ti", 2 ** 40), ("Gi", 2 ** 30), ("Mi", 2 ** 20), ("Ki", 2 ** 10)):
            if value >= factor:
                return f"{value / factor:.1f}{suffix}"
        return str(value)
    return format_quantity(value, name)
