"""Typical pods and GPU fragmentation, as FGD (ATC '23) defines them.

``typical_pods`` groups the workload by ``(cpu_milli, gpu_milli, num_gpu, gpu model constraint)``
(memory is not part of the key, CPU-only pods are included), sorts the groups by count
(descending; ties by the spec, larger first, as the simulator's ``sort.Reverse`` does), keeps
groups until they cover >= 95 % of the pods and renormalises their counts to probabilities.

The fragmentation of node ``n`` for typical pod ``m`` (milli-GPU) is all the node's idle GPU milli
unless ``m`` fits (Q3), in which case it is the idle milli on the GPUs with less than ``m``'s
per-GPU share left. ``F(n) = sum_m p_m * frag(n, m)``. The sum is accumulated exactly as the
simulator's ``NodeGpuShareFragAmount`` does (one float per quadrant, in typical-pod order, then
the quadrants except Q3 in order), so that FGD's score deltas are the simulator's bit for bit.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from numba import njit

from .state import MILLI, model_mask, normalised_gpu


@dataclass
class TypicalPods:
    """The typical-pod distribution: ``M`` specs with probabilities ``prob`` (sum 1)."""

    cpu: np.ndarray          # int64[M]
    num_gpu: np.ndarray      # int64[M]
    gpu_milli: np.ndarray    # int64[M]
    model_mask: np.ndarray   # bool[M, n_models]
    prob: np.ndarray         # float64[M]
    gpu_models: list         # the constraint string of each spec ("" = any)
    count: np.ndarray        # int64[M]: pods of each spec
    total_pods: int = 0
    distinct_specs: int = 0

    @property
    def m(self) -> int:
        return len(self.prob)

    def access(self, n_models: int) -> np.ndarray:
        """bool[M, max(1, n_models)] for the kernels."""
        out = np.ones((self.m, max(1, n_models)), np.bool_)
        w = min(n_models, self.model_mask.shape[1]) if self.model_mask.ndim == 2 else 0
        if w:
            out[:, :w] = self.model_mask[:, :w]
        return out


def typical_pods(pods_df: pd.DataFrame, model_names: list[str],
                 threshold: float = 0.95) -> TypicalPods:
    """The typical pods of a pod table (see the module docstring)."""
    n = len(pods_df)
    if n == 0:
        return TypicalPods(np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.int64),
                           np.zeros((0, len(model_names)), np.bool_), np.zeros(0), [],
                           np.zeros(0, np.int64), 0, 0)
    num, milli = normalised_gpu(pods_df["num_gpu"].to_numpy(np.int64),
                                pods_df["gpu_milli"].to_numpy(np.int64))
    spec = (pods_df["gpu_models"].fillna("").astype(str).to_numpy() if "gpu_models" in pods_df
            else np.full(n, "", object))
    frame = pd.DataFrame({"cpu": pods_df["cpu_milli"].to_numpy(np.int64), "milli": milli,
                          "num": num, "spec": np.asarray(spec, dtype=object)})
    counts = frame.groupby(["cpu", "milli", "num", "spec"], sort=False).size()
    groups = [(int(c), int(cpu), int(mi), int(nu), str(sp))
              for (cpu, mi, nu, sp), c in counts.items()]
    # sort.Sort(sort.Reverse(list)): count descending, then (cpu, milli, num, type) descending
    groups.sort(key=lambda g: (g[0], g[1], g[2], g[3], g[4]), reverse=True)
    total = float(n)
    expected = float(round(threshold * 100)) * total / 100.0
    cum = 0.0
    i = 0
    while cum < expected and i < len(groups):
        cum += groups[i][0]
        i += 1
    kept = groups[:i]
    if i >= len(groups):
        prob = [g[0] / total for g in kept]
    else:
        prob = [(g[0] / total) / (cum / total) for g in kept]
    mask = np.array([model_mask(g[4], model_names) for g in kept], np.bool_).reshape(
        len(kept), len(model_names))
    return TypicalPods(np.array([g[1] for g in kept], np.int64),
                       np.array([g[3] for g in kept], np.int64),
                       np.array([g[2] for g in kept], np.int64), mask,
                       np.array(prob, np.float64), [g[4] for g in kept],
                       np.array([g[0] for g in kept], np.int64), n, len(groups))


# ------------------------------------------------------------------------------- kernels

@njit(cache=True)
def _stats(gpu_row, t_milli, cnt_out, small_out):
    """Per typical pod: GPUs with >= its share left, and idle milli on the other GPUs."""
    for m in range(t_milli.size):
        rm = t_milli[m]
        c = 0
        s = 0
        for i in range(gpu_row.size):
            g = gpu_row[i]
            if g < 0:
                continue
            if g >= rm:
                c += 1
            else:
                s += g
        cnt_out[m] = c
        small_out[m] = s


@njit(cache=True)
def _frag_value(c, idle, md, cnt_row, small_row, old_v, new_v, nchg,
                t_cpu, t_num, t_milli, t_acc, t_prob):
    """F of a node with ``c`` CPU and ``idle`` GPU milli left whose per-typical-pod statistics
    are ``cnt_row``/``small_row`` after ``nchg`` GPUs changed from ``old_v`` to ``new_v``."""
    if idle == 0:
        return 0.0
    b0 = 0.0
    b1 = 0.0
    b3 = 0.0
    b4 = 0.0
    b5 = 0.0
    b6 = 0.0
    fidle = np.float64(idle)
    for m in range(t_prob.size):
        p = t_prob[m]
        rm = t_milli[m]
        cpu_ok = c >= t_cpu[m]
        if rm == 0:
            if cpu_ok:
                b4 += p * fidle
            else:
                b5 += p * fidle
            continue
        if md < 0 or not t_acc[m, md]:
            b6 += p * fidle
            continue
        cnt = cnt_row[m]
        small = small_row[m]
        for j in range(nchg):
            o = old_v[j]
            nv = new_v[j]
            if o >= rm:
                cnt -= 1
            else:
                small -= o
            if nv >= rm:
                cnt += 1
            else:
                small += nv
        if cnt >= t_num[m]:
            if cpu_ok:
                b1 += p * np.float64(small)
            else:
                b3 += p * fidle
        elif cpu_ok:
            b1 += p * fidle
        else:
            b0 += p * fidle
    out = 0.0
    out += b0
    out += b1
    out += b3
    out += b4
    out += b5
    out += b6
    return out


@njit(cache=True)
def _fragmentation_state(cpu_free, gpu_free, model, t_cpu, t_num, t_milli, t_acc, t_prob):
    """What the engines keep per node and update on every change: ``cnt[n, m]`` and
    ``small[n, m]`` (:func:`_stats` per typical pod m) and ``F(n)``."""
    n = cpu_free.size
    m = t_prob.size
    cnt = np.zeros((n, m), np.int64)
    small = np.zeros((n, m), np.int64)
    fn = np.zeros(n, np.float64)
    empty = np.zeros(0, np.int64)
    for i in range(n):
        _stats(gpu_free[i], t_milli, cnt[i], small[i])
        idle = 0
        for x in gpu_free[i]:
            if x > 0:
                idle += x
        fn[i] = _frag_value(cpu_free[i], idle, model[i], cnt[i], small[i], empty, empty, 0,
                            t_cpu, t_num, t_milli, t_acc, t_prob)
    return cnt, small, fn


@njit(cache=True)
def _node_frag_all(cpu_free, gpu_free, model, t_cpu, t_num, t_milli, t_acc, t_prob):
    n = cpu_free.size
    out = np.zeros(n, np.float64)
    m = t_prob.size
    cnt = np.zeros(m, np.int64)
    small = np.zeros(m, np.int64)
    empty = np.zeros(0, np.int64)
    for i in range(n):
        idle = 0
        for g in gpu_free[i]:
            if g > 0:
                idle += g
        if idle == 0:
            continue
        _stats(gpu_free[i], t_milli, cnt, small)
        out[i] = _frag_value(cpu_free[i], idle, model[i], cnt, small, empty, empty, 0,
                             t_cpu, t_num, t_milli, t_acc, t_prob)
    return out


def _typical_arrays(typical: TypicalPods, n_models: int):
    return (typical.cpu.astype(np.int64), typical.num_gpu.astype(np.int64),
            typical.gpu_milli.astype(np.int64), typical.access(n_models),
            typical.prob.astype(np.float64))


def node_fragmentation(cpu_free, gpu_free, model, typical: TypicalPods) -> np.ndarray:
    """F(n) per node (float64 milli-GPU) under the typical-pod distribution."""
    cpu_free = np.ascontiguousarray(cpu_free, np.int64)
    gpu_free = np.ascontiguousarray(gpu_free, np.int64)
    model = np.ascontiguousarray(model, np.int64)
    if gpu_free.ndim != 2 or gpu_free.shape[0] != cpu_free.size or model.size != cpu_free.size:
        raise ValueError("cpu_free[N], gpu_free[N, G] and model[N] must agree on N")
    n_models = typical.model_mask.shape[1] if typical.model_mask.ndim == 2 else 0
    if model.size and model.max() >= max(1, n_models) and typical.m:
        raise ValueError("model ids exceed the typical pods' model mask")
    return _node_frag_all(cpu_free, gpu_free, model, *_typical_arrays(typical, n_models))


def fragmentation_summary(cpu_free, gpu_free, model, typical: TypicalPods) -> tuple[float, float]:
    """(sum of F(n), total idle GPU milli) over the nodes."""
    f = node_fragmentation(cpu_free, gpu_free, model, typical)
    gpu_free = np.asarray(gpu_free, np.int64)
    return float(f.sum()), float(np.where(gpu_free > 0, gpu_free, 0).sum())


__all__ = ["MILLI", "TypicalPods", "typical_pods", "node_fragmentation", "fragmentation_summary"]
