"""Synthetic clusters for benchmarks and tests, reproducible from a seed.

:func:`synthetic_cluster` builds N nodes across zones (a few instance shapes, a share of
tainted batch nodes and GPU nodes) and M pending pods (mostly small services, some medium and
large; some with node affinity, tolerations or GPU requests), the kind of mix a kube-scheduler
benchmark uses. Objects are built directly (no YAML round trip) so 100,000 nodes take seconds.
"""

from __future__ import annotations

import numpy as np

from .cluster import Cluster
from .model.labels import node_selector_from_dict
from .model.objects import (
    Affinity,
    Container,
    Node,
    NodeAffinity,
    NodeSpec,
    NodeStatus,
    ObjectMeta,
    Pod,
    PodSpec,
    ResourceRequirements,
    Taint,
    Toleration,
)

GI = 1024 ** 3
MI = 1024 ** 2
# (instance type, cores, memory GiB per core, share of nodes)
NODE_SHAPES = (("m5.xlarge", 4, 4, 0.30), ("m5.2xlarge", 8, 4, 0.30), ("c5.4xlarge", 16, 2, 0.20),
               ("r5.4xlarge", 16, 8, 0.15), ("m5.16xlarge", 64, 4, 0.05))
# (cpu millicores, memory MiB, share of pods)
POD_SIZES = ((100, 128, 0.35), (250, 256, 0.25), (500, 512, 0.15), (1000, 2048, 0.12),
             (2000, 4096, 0.08), (4000, 8192, 0.05))


def _choice(rng: np.random.Generator, table, k: int) -> np.ndarray:
    p = np.array([row[-1] for row in table], np.float64)
    return rng.choice(len(table), size=k, p=p / p.sum())


def synthetic_nodes(n: int, seed: int = 0, *, zones: int | None = None,
                    tainted_share: float = 0.05, gpu_share: float = 0.02) -> list[Node]:
    """``n`` nodes: shapes from :data:`NODE_SHAPES`, spread round-robin over ``zones`` zones
    (default: 3, or up to 10 for large clusters), ``disktype`` ssd/hdd, a share tainted
    ``dedicated=batch:NoSchedule`` and a share with 4 ``nvidia.com/gpu`` and a GPU taint."""
    rng = np.random.default_rng(seed)
    zones = zones or (3 if n < 1000 else min(10, 3 + n // 5000))
    shapes = _choice(rng, NODE_SHAPES, n)
    ssd = rng.random(n) < 0.5
    tainted = rng.random(n) < tainted_share
    gpu = rng.random(n) < gpu_share
    nodes = []
    for i in range(n):
        itype, cores, mem_per_core, _ = NODE_SHAPES[shapes[i]]
        name = f"node-{i:06d}"
        zone = f"zone-{i % zones}"
        labels = {"kubernetes.io/hostname": name, "topology.kubernetes.io/zone": zone,
                  "topology.kubernetes.io/region": "region-1",
                  "node.kubernetes.io/instance-type": itype,
                  "disktype": "ssd" if ssd[i] else "hdd"}
        alloc = {"cpu": cores * 1000 - 100, "memory": cores * mem_per_core * GI - 512 * MI,
                 "pods": 110, "ephemeral-storage": 100 * GI}
        taints = []
        if tainted[i]:
            labels["workload"] = "batch"
            taints.append(Taint(key="dedicated", value="batch", effect="NoSchedule"))
        if gpu[i]:
            alloc["nvidia.com/gpu"] = 4
            labels["accelerator"] = "nvidia-a100"
            taints.append(Taint(key="nvidia.com/gpu", value="present", effect="NoSchedule"))
        nodes.append(Node(metadata=ObjectMeta(name=name, labels=labels),
                          spec=NodeSpec(taints=taints),
                          status=NodeStatus(capacity=dict(alloc), allocatable=alloc)))
    return nodes


def synthetic_pods(m: int, seed: int = 0, *, apps: int = 50, zones: int = 3,
                   namespace: str = "default") -> list[Pod]:
    """``m`` pending pods of ``apps`` apps: sizes from :data:`POD_SIZES`; 10% require
    ``disktype=ssd``, 5% prefer a zone, 4% are batch pods tolerating the batch taint and
    requiring batch nodes, 1% ask for a GPU (tolerating the GPU taint)."""
    rng = np.random.default_rng(seed + 1)
    sizes = _choice(rng, POD_SIZES, m)
    app = rng.integers(0, apps, m)
    kind = rng.random(m)
    ssd_affinity = node_selector_from_dict({"nodeSelectorTerms": [{"matchExpressions": [
        {"key": "disktype", "operator": "In", "values": ["ssd"]}]}]})
    pods = []
    for j in range(m):
        cpu, mem, _ = POD_SIZES[sizes[j]]
        requests = {"cpu": cpu, "memory": mem * MI}
        spec = PodSpec(containers=[Container(name="main", image=f"registry/app-{app[j]}:1",
                                             resources=ResourceRequirements(requests=requests))])
        k = kind[j]
        if k < 0.10:
            spec.affinity = Affinity(node_affinity=NodeAffinity(
                required_during_scheduling_ignored_during_execution=ssd_affinity))
        elif k < 0.15:
            zone = f"zone-{int(rng.integers(zones))}"
            spec.affinity = Affinity(node_affinity=NodeAffinity(
                preferred_during_scheduling_ignored_during_execution=[_preferred_zone(zone)]))
        elif k < 0.19:
            spec.tolerations = [Toleration(key="dedicated", operator="Equal", value="batch",
                                           effect="NoSchedule")]
            spec.node_selector = {"workload": "batch"}
        elif k < 0.20:
            requests["nvidia.com/gpu"] = 1
            spec.tolerations = [Toleration(key="nvidia.com/gpu", operator="Exists",
                                           effect="NoSchedule")]
        pods.append(Pod(metadata=ObjectMeta(name=f"pod-{j:07d}", namespace=namespace,
                                            labels={"app": f"app-{app[j]}"}), spec=spec))
    return pods


def _preferred_zone(zone: str):
    from .model.objects import PreferredSchedulingTerm
    from .model.labels import node_selector_term_from_dict

    return PreferredSchedulingTerm(weight=50, preference=node_selector_term_from_dict(
        {"matchExpressions": [{"key": "topology.kubernetes.io/zone", "operator": "In",
                               "values": [zone]}]}))


def synthetic_cluster(nodes: int, pods: int, seed: int = 0) -> Cluster:
    """A cluster of :func:`synthetic_nodes` and pending :func:`synthetic_pods`."""
    node_list = synthetic_nodes(nodes, seed)
    zones = len({n.labels["topology.kubernetes.io/zone"] for n in node_list}) or 1
    return Cluster(nodes=node_list, pods=synthetic_pods(pods, seed, zones=zones),
                   source=f"synthetic(nodes={nodes}, pods={pods}, seed={seed})")
