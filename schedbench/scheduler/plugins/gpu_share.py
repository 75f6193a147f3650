"""GpuShare (schedbench's GPU-sharing plugin, after Alibaba's Open-Gpu-Share): may the pod's
GPU request be served by single GPUs of the node (Filter); which GPUs it takes is the Reserve
step, done when the pod is bound (:meth:`NodeSnapshot.add_pod`, :func:`choose_gpus`).

A pod asks for ``num_gpu`` GPUs with ``gpu_milli`` milli-GPU each (pod annotations
``alibabacloud.com/gpu-count``, ``alibabacloud.com/gpu-milli``, optionally the allowed models
``alibabacloud.com/gpu-card-model`` joined by ``|``); a node has ``alibabacloud.com/gpu-count``
GPUs of 1000 milli each, of the model in its label ``alibabacloud.com/gpu-card-model``
(see :mod:`schedbench.scheduler.snapshot`). Pods without a GPU request skip the plugin
(PreFilter Skip), so CPU-only pods may land on any node.

Filter, per node, the first failing check decides:

====================================  ==============================  =============================
check                                 reason                          code
====================================  ==============================  =============================
the node has no GPU                   ``node(s) had no GPU``          UnschedulableAndUnresolvable
the node's model is not allowed       ``node(s) didn't match GPU      UnschedulableAndUnresolvable
                                      model``
the node has fewer GPUs than asked    ``Insufficient GPU``            UnschedulableAndUnresolvable
fewer than ``num_gpu`` GPUs have      ``Insufficient GPU``            Unschedulable
``gpu_milli`` left
====================================  ==============================  =============================

(no preemption can add GPUs or change a model, hence unresolvable; freeing GPU share can help,
hence Unschedulable). The per-GPU total is also the resource column
``alibabacloud.com/gpu-milli``, which NodeResourcesFit checks before this plugin.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from ..framework import CycleState, Plugin, Status, register
from ..snapshot import NodeSnapshot, PodInfo

NAME = "GpuShare"
REASON_NO_GPU = "node(s) had no GPU"
REASON_MODEL = "node(s) didn't match GPU model"
REASON_INSUFFICIENT = "Insufficient GPU"



@njit(cache=True)
def _gpu_filter_codes(nodes, gpu_free, gpu_count, gpu_model, num_gpu, milli, allowed,
                      any_model):
    """Per node: 0 fits; 3 no GPU / model not allowed / too few GPUs at all; 2 too few GPUs
    with ``milli`` left."""
    out = np.zeros(nodes.size, np.int8)
    for i in range(nodes.size):
        out[i] = gpu_filter_code(nodes[i], gpu_free, gpu_count, gpu_model, num_gpu, milli,
                                 allowed, any_model)
    return out


@njit(cache=True, inline="always")
def gpu_filter_code(n, gpu_free, gpu_count, gpu_model, num_gpu, milli, allowed, any_model):
    """Node ``n``'s code of :func:`_gpu_filter_codes` (the fused kernels use it too)."""
    c = gpu_count[n]
    if c <= 0:
        return 3
    if not any_model:
        m = gpu_model[n]
        if m < 0 or m >= allowed.size or not allowed[m]:
            return 3
    if num_gpu > c:
        return 3
    k = 0
    for j in range(c):
        if gpu_free[n, j] >= milli:
            k += 1
    return 2 if k < num_gpu else 0


def model_mask(snapshot: NodeSnapshot, models: tuple[str, ...]) -> np.ndarray:
    """bool[number of known GPU models]: which model ids ``models`` allows."""
    mask = np.zeros(len(snapshot.gpu_models), np.bool_)
    for m in models:
        i = snapshot.gpu_models.get(m)
        if i >= 0:
            mask[i] = True
    return mask


def gpu_filter_codes(snapshot: NodeSnapshot, nodes: np.ndarray, num_gpu: int, milli: int,
                     models: tuple[str, ...] = ()) -> np.ndarray:
    """GpuShare's filter codes (0, 2 or 3) for ``nodes`` (node indices) and a request of
    ``num_gpu`` GPUs of ``milli`` each, of one of ``models`` (() = any)."""
    if num_gpu < 1 or not 1 <= milli <= 1000:
        raise ValueError(f"a GPU request needs num_gpu >= 1 and milli in 1..1000, got "
                         f"{num_gpu} x {milli}")
    nodes = np.ascontiguousarray(nodes, np.int64)
    if snapshot.max_gpus == 0:
        return np.full(nodes.size, 3, np.int8)
    return _gpu_filter_codes(nodes, snapshot.gpu_free, snapshot.gpu_count, snapshot.gpu_model,
                             np.int64(num_gpu), np.int64(milli), model_mask(snapshot, models),
                             not models)


def gpu_filter_reason(snapshot: NodeSnapshot, node: int, num_gpu: int, milli: int,
                      models: tuple[str, ...] = ()) -> list[str]:
    """The reason GpuShare rejects ``node`` ([] when it fits)."""
    c = int(snapshot.gpu_count[node])
    if c <= 0:
        return [REASON_NO_GPU]
    if models:
        m = int(snapshot.gpu_model[node])
        if m < 0 or snapshot.gpu_models.names[m] not in models:
            return [REASON_MODEL]
    if num_gpu > c or int(np.count_nonzero(snapshot.gpu_free[node, :c] >= milli)) < num_gpu:
        return [REASON_INSUFFICIENT]
    return []


class _GpuState:
    __slots__ = ("mask",)

    def __init__(self, mask: np.ndarray) -> None:
        self.mask = mask


@register
class GpuShare(Plugin):
    name = NAME
    events = frozenset({"AssignedPodDelete", "NodeAdd", "NodeUpdate"})
    prefilter_reads_pods = False  # the state is the pod's model mask only

    def pre_filter(self, state: CycleState, pod: PodInfo, nodes: np.ndarray):
        if pod.num_gpu <= 0:
            return Status.skip(), None
        state[self.name] = _GpuState(model_mask(self.handle.snapshot, pod.gpu_models))
        return Status.success(), None

    def filter(self, state: CycleState, pod: PodInfo, nodes: np.ndarray) -> np.ndarray:
        snap = self.handle.snapshot
        nodes = np.ascontiguousarray(nodes, np.int64)
        if pod.num_gpu <= 0:
            return np.zeros(nodes.size, np.int8)
        s = state.get(self.name)
        if s is None or s.mask.size != len(snap.gpu_models):
            s = _GpuState(model_mask(snap, pod.gpu_models))
            state[self.name] = s
        if snap.max_gpus == 0:
            return np.full(nodes.size, 3, np.int8)
        return _gpu_filter_codes(nodes, snap.gpu_free, snap.gpu_count, snap.gpu_model,
                                 np.int64(pod.num_gpu), np.int64(pod.gpu_milli), s.mask,
                                 not pod.gpu_models)

    def filter_reasons(self, state: CycleState, pod: PodInfo, node: int) -> list[str]:
        return gpu_filter_reason(self.handle.snapshot, node, pod.num_gpu, pod.gpu_milli,
                                 pod.gpu_models)
