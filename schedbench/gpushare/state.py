"""State arrays of the GPU-sharing engine, built from a trace's node and pod tables.

Nodes (``N`` of them, ``G`` = most GPUs on one node): ``cpu_free[N]``, ``mem_free[N]``,
``gpu_free[N, G]`` (milli-GPU left per GPU, ``-1`` pads absent GPUs), ``model[N]`` (index into
``model_names``, ``-1`` for nodes without GPUs), ``pods_free[N]`` (pods the node can still take).

Pods: ``cpu``, ``mem``, ``num_gpu``, ``gpu_milli`` and a GPU-model constraint index ``cons`` into
``cons_mask[C, n_models]`` (row 0 = no constraint, all true). A pod is a GPU pod when it asks for
``num_gpu >= 1`` GPUs of ``gpu_milli >= 1`` each; ``gpu_milli`` is clipped to 0..1000 as the FGD
simulator's converter does, and a pod with either figure 0 asks for no GPU at all.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ..errors import InputError

MILLI = 1000


def parse_models(spec) -> tuple[str, ...]:
    """The models named by a ``gpu_models`` value (``A|B``); empty parts are ignored, as the
    simulator's ``IsNodeAccessibleToPodByType`` does. ``()`` = any model."""
    if spec is None or (isinstance(spec, float) and np.isnan(spec)):
        return ()
    return tuple(p.strip() for p in str(spec).split("|") if p.strip())


def model_names_of(nodes: pd.DataFrame) -> list[str]:
    """Sorted GPU models of the nodes that have GPUs (``""`` when such a node names none)."""
    if len(nodes) == 0:
        return []
    gpu = nodes["gpu"].to_numpy(np.int64)
    models = nodes["gpu_model"].fillna("").astype(str).to_numpy()
    return sorted({str(m).strip() for m, g in zip(models, gpu) if g > 0})


def model_mask(spec, model_names: list[str]) -> np.ndarray:
    """Bool mask over ``model_names``: the models a pod with this constraint may use."""
    names = parse_models(spec)
    if not names:
        return np.ones(len(model_names), np.bool_)
    allowed = set(names)
    return np.array([m != "" and m in allowed for m in model_names], np.bool_)


@dataclass
class ClusterArrays:
    """Per-node capacities and free resources, in the order of ``names``."""

    names: list[str]
    model_names: list[str]
    cpu_cap: np.ndarray
    mem_cap: np.ndarray
    gpu_count: np.ndarray
    max_pods: np.ndarray
    model: np.ndarray
    cpu_free: np.ndarray = field(default=None)
    mem_free: np.ndarray = field(default=None)
    pods_free: np.ndarray = field(default=None)
    gpu_free: np.ndarray = field(default=None)

    def __post_init__(self) -> None:
        if self.cpu_free is None:
            self.reset()

    @property
    def n(self) -> int:
        return len(self.names)

    @property
    def max_gpus(self) -> int:
        return int(self.gpu_free.shape[1])

    def reset(self) -> None:
        """Every node empty."""
        self.cpu_free = self.cpu_cap.copy()
        self.mem_free = self.mem_cap.copy()
        self.pods_free = self.max_pods.copy()
        g = max(1, int(self.gpu_count.max())) if self.n else 1
        self.gpu_free = np.full((self.n, g), -1, np.int64)
        for i, c in enumerate(self.gpu_count):
            self.gpu_free[i, :c] = MILLI

    def take(self, order: np.ndarray) -> "ClusterArrays":
        """The same cluster (empty) with its nodes in ``order``."""
        return ClusterArrays([self.names[i] for i in order], self.model_names,
                             self.cpu_cap[order], self.mem_cap[order], self.gpu_count[order],
                             self.max_pods[order], self.model[order])


def cluster_arrays(nodes: pd.DataFrame, model_names: list[str] | None = None) -> ClusterArrays:
    """Arrays of an empty cluster from a trace's ``nodes`` table (rows kept in their order)."""
    if model_names is None:
        model_names = model_names_of(nodes)
    index = {m: i for i, m in enumerate(model_names)}
    gpu = nodes["gpu"].to_numpy(np.int64) if len(nodes) else np.zeros(0, np.int64)
    models = nodes["gpu_model"].fillna("").astype(str).str.strip().to_numpy() if len(nodes) \
        else np.zeros(0, object)
    model = np.array([index.get(m, -1) if g > 0 else -1 for m, g in zip(models, gpu)], np.int64)
    if len(nodes) and (gpu < 0).any():
        raise InputError("negative GPU count", field="gpu")
    max_pods = (nodes["max_pods"].to_numpy(np.int64) if "max_pods" in nodes
                else np.full(len(nodes), 110, np.int64))
    def col(name):
        return nodes[name].to_numpy(np.int64).copy() if len(nodes) else np.zeros(0, np.int64)

    return ClusterArrays([str(x) for x in nodes["name"]] if len(nodes) else [], list(model_names),
                         col("cpu_milli"), col("memory_mib"), gpu.copy(), max_pods.copy(), model)


@dataclass
class PodArrays:
    """Per-pod requests, in the order of ``ids``; ``cons`` indexes ``cons_mask``."""

    ids: list[str]
    cpu: np.ndarray
    mem: np.ndarray
    num_gpu: np.ndarray
    gpu_milli: np.ndarray
    cons: np.ndarray
    cons_mask: np.ndarray
    cons_specs: list[str]

    @property
    def n(self) -> int:
        return len(self.ids)

    @property
    def total_gpu_milli(self) -> np.ndarray:
        return self.num_gpu * self.gpu_milli


def normalised_gpu(num_gpu: np.ndarray, gpu_milli: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(num_gpu, gpu_milli) as the engine uses them: milli clipped to 0..1000, both 0 unless
    both are positive."""
    milli = np.clip(np.asarray(gpu_milli, np.int64), 0, MILLI)
    num = np.maximum(np.asarray(num_gpu, np.int64), 0)
    gpu = (num > 0) & (milli > 0)
    return np.where(gpu, num, 0).astype(np.int64), np.where(gpu, milli, 0).astype(np.int64)


def pod_arrays(pods: pd.DataFrame, model_names: list[str]) -> PodArrays:
    """Arrays of a trace's ``pods`` table (rows kept in their order)."""
    n = len(pods)
    zero = np.zeros(0, np.int64)
    num, milli = normalised_gpu(pods["num_gpu"].to_numpy(np.int64) if n else zero,
                                pods["gpu_milli"].to_numpy(np.int64) if n else zero)
    specs = (pods["gpu_models"].fillna("").astype(str).to_numpy() if n and "gpu_models" in pods
             else np.full(n, "", object))
    keys: dict[tuple[str, ...], int] = {(): 0}
    cons_specs = [""]
    cons = np.zeros(n, np.int64)
    for i, s in enumerate(specs):
        if num[i] == 0 or not s:
            continue
        names = tuple(sorted(set(parse_models(s))))
        j = keys.get(names)
        if j is None:
            j = keys[names] = len(cons_specs)
            cons_specs.append("|".join(names))
        cons[i] = j
    mask = np.ones((len(cons_specs), max(1, len(model_names))), np.bool_)
    for j, s in enumerate(cons_specs):
        if j:
            mask[j, :len(model_names)] = model_mask(s, model_names)
    return PodArrays([str(x) for x in pods["id"]] if n else [],
                     pods["cpu_milli"].to_numpy(np.int64).copy() if n else np.zeros(0, np.int64),
                     pods["memory_mib"].to_numpy(np.int64).copy() if n else np.zeros(0, np.int64),
                     num, milli, cons, mask, cons_specs)
