"""A trace as Kubernetes objects: nodes as :class:`~schedbench.model.objects.Node`, pods as
:class:`~schedbench.model.objects.Pod`, for the kube-scheduler framework.

Nodes (:func:`trace_nodes`): allocatable ``cpu`` = ``cpu_milli`` millicores, ``memory`` =
``memory_mib`` MiB, ``pods`` = ``max_pods``, and for GPU nodes the extended resource
``alibabacloud.com/gpu-count`` with the model in the label ``alibabacloud.com/gpu-card-model``;
labels: ``kubernetes.io/hostname`` = the name, then the trace's ``labels`` (``k=v;k2=v2``);
taints from ``taints`` (``key=value:Effect;...``).

Pods (:class:`TracePods`): one container requesting ``cpu_milli`` millicores and
``memory_mib`` MiB, ``spec.priority`` = ``priority``, the trace's ``labels``; a GPU pod gets the
annotations ``alibabacloud.com/gpu-count``, ``alibabacloud.com/gpu-milli`` and, when it names
models, ``alibabacloud.com/gpu-card-model`` (``A|B``); a non-empty ``group`` is the annotation
``schedbench.io/group`` and the label of the same name (the group itself when it is a valid
label value, else ``g-`` and a hash of it). Pods live in namespace ``default`` and are named by
their id. They are built on demand (:meth:`TracePods.pod`), so a million-pod trace costs only
its columns until the replay reaches each pod.

Groups and spreading: kube spreads a pod by default (PodTopologySpread's system defaults,
SelectorSpread) only when a Service, ReplicaSet, ... selects it. ``trace_cluster(...,
services=True)`` adds one Service per group selecting its pods, so ``spread`` and the default
profile spread each group as they would a Deployment behind a Service; the kube engine's
replays do this (``KubeReplay.group_services``, on by default). Without it no pod has an owner,
and spreading policies differ from LeastAllocated only by their other plugins. (Services are
indexed by selector, so this costs O(pod labels) per pod, not O(groups).)
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..cluster import Cluster
import hashlib
import re

from ..model.objects import (
    Container,
    Node,
    NodeSpec,
    NodeStatus,
    ObjectMeta,
    Pod,
    PodSpec,
    ResourceRequirements,
    Service,
    ServiceSpec,
    Taint,
)
from ..scheduler.snapshot import GPU_COUNT, GPU_MILLI, GPU_MODEL

MI = 1024 ** 2
NAMESPACE = "default"
GROUP_ANNOTATION = "schedbench.io/group"
HOSTNAME = "kubernetes.io/hostname"
GROUP_LABEL = "schedbench.io/group"
_LABEL_VALUE = re.compile(r"([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)?")


def group_label_value(group: str) -> str:
    """The group as a label value: itself when valid, else ``g-`` + 16 hex digits of its
    SHA-1."""
    if len(group) <= 63 and _LABEL_VALUE.fullmatch(group):
        return group
    return "g-" + hashlib.sha1(group.encode()).hexdigest()[:16]


def parse_labels(text: str) -> dict[str, str]:
    """``k=v;k2=v2`` -> dict ("" -> {}); a part without ``=`` is a key with an empty value."""
    out: dict[str, str] = {}
    if not text:
        return out
    for part in text.split(";"):
        part = part.strip()
        if not part:
            continue
        k, _, v = part.partition("=")
        out[k.strip()] = v.strip()
    return out


def parse_taints(text: str) -> list[Taint]:
    """``key=value:Effect;key:Effect`` -> taints."""
    out: list[Taint] = []
    if not text:
        return out
    for part in text.split(";"):
        part = part.strip()
        if not part:
            continue
        kv, _, effect = part.rpartition(":")
        k, _, v = kv.partition("=")
        out.append(Taint(key=k.strip(), value=v.strip(), effect=effect.strip()))
    return out


def _col(df, name: str, default: Any, n: int) -> list:
    if name in df.columns:
        return df[name].tolist()
    return [default] * n


def trace_nodes(nodes) -> list[Node]:
    """The trace's node table as Node objects, in table order."""
    n = len(nodes)
    names = [str(x) for x in nodes["name"].tolist()]
    cpu = np.asarray(nodes["cpu_milli"], np.int64).tolist()
    mem = np.asarray(nodes["memory_mib"], np.int64).tolist()
    gpu = [int(x) for x in _col(nodes, "gpu", 0, n)]
    model = [x if isinstance(x, str) else "" for x in _col(nodes, "gpu_model", "", n)]
    max_pods = [int(x) for x in _col(nodes, "max_pods", 110, n)]
    labels = [x if isinstance(x, str) else "" for x in _col(nodes, "labels", "", n)]
    taints = [x if isinstance(x, str) else "" for x in _col(nodes, "taints", "", n)]
    out = []
    for i in range(n):
        lab = {HOSTNAME: names[i]}
        lab.update(parse_labels(labels[i]))
        alloc = {"cpu": cpu[i], "memory": mem[i] * MI, "pods": max_pods[i]}
        if gpu[i] > 0:
            alloc[GPU_COUNT] = gpu[i]
            if model[i]:
                lab[GPU_MODEL] = model[i]
        out.append(Node(metadata=ObjectMeta(name=names[i], labels=lab),
                        spec=NodeSpec(taints=parse_taints(taints[i])),
                        status=NodeStatus(capacity=dict(alloc), allocatable=alloc)))
    return out


class TracePods:
    """The trace's pod table, with a Pod object built for row ``i`` on demand."""

    def __init__(self, pods) -> None:
        n = self.n = len(pods)
        self.ids = [str(x) for x in pods["id"].tolist()]
        self.arrival = np.asarray(_col(pods, "arrival", 0.0, n), np.float64)
        self.duration = np.asarray(_col(pods, "duration", np.nan, n), np.float64)
        self.cpu = np.asarray(pods["cpu_milli"], np.int64)
        self.mem = np.asarray(pods["memory_mib"], np.int64)
        self.num_gpu = np.asarray(_col(pods, "num_gpu", 0, n), np.int64)
        self.gpu_milli = np.asarray(_col(pods, "gpu_milli", 0, n), np.int64)
        self.priority = np.asarray(_col(pods, "priority", 0, n), np.int64)
        self._labels = _col(pods, "labels", "", n)
        self._group = _col(pods, "group", "", n)
        self._models = _col(pods, "gpu_models", "", n)

    def __len__(self) -> int:
        return self.n

    def key(self, i: int) -> str:
        return f"{NAMESPACE}/{self.ids[i]}"

    def pod(self, i: int) -> Pod:
        """A fresh pending Pod for row ``i``."""
        requests = {"cpu": int(self.cpu[i]), "memory": int(self.mem[i]) * MI}
        annotations: dict[str, str] = {}
        k = int(self.num_gpu[i])
        if k > 0:
            annotations[GPU_COUNT] = str(k)
            annotations[GPU_MILLI] = str(int(self.gpu_milli[i]))
            models = self._models[i]
            if isinstance(models, str) and models:
                annotations[GPU_MODEL] = models
        labels = self._labels[i]
        labels = parse_labels(labels) if isinstance(labels, str) else {}
        group = self._group[i]
        if isinstance(group, str) and group:
            annotations[GROUP_ANNOTATION] = group
            labels[GROUP_LABEL] = group_label_value(group)
        return Pod(metadata=ObjectMeta(name=self.ids[i], namespace=NAMESPACE, labels=labels,
                                       annotations=annotations),
                   spec=PodSpec(containers=[Container(
                       name="main", resources=ResourceRequirements(requests=requests))],
                       priority=int(self.priority[i])))


def group_services(pods) -> list[Service]:
    """One Service per distinct non-empty ``group`` of a pod table, selecting its pods."""
    if "group" not in pods.columns:
        return []
    out = []
    for group in pods["group"].drop_duplicates().tolist():
        if isinstance(group, str) and group:
            value = group_label_value(group)
            out.append(Service(metadata=ObjectMeta(name=f"group-{len(out)}",
                                                   namespace=NAMESPACE),
                               spec=ServiceSpec(selector={GROUP_LABEL: value})))
    return out


def trace_cluster(trace, *, with_pods: bool = False, services: bool = False) -> Cluster:
    """The trace's nodes as a Cluster (with ``with_pods`` every pod too, pending; with
    ``services`` one Service per group, see the module docstring)."""
    pods: list[Pod] = []
    if with_pods:
        tp = TracePods(trace.pods)
        pods = [tp.pod(i) for i in range(len(tp))]
    return Cluster(nodes=trace_nodes(trace.nodes), pods=pods,
                   services=group_services(trace.pods) if services else [],
                   source=getattr(trace, "source", "") or getattr(trace, "name", ""))


def has_gpus(trace) -> bool:
    """Whether the trace has GPU nodes or GPU pods (GpuShare is then enabled)."""
    nodes, pods = trace.nodes, trace.pods
    return bool(("gpu" in nodes.columns and (nodes["gpu"] > 0).any())
                or ("num_gpu" in pods.columns and (pods["num_gpu"] > 0).any()))
