"""The FGD paper's (ATC '23) score policies as kube Score plugins, wrapping the node kernels
of :mod:`schedbench.gpushare.policies` (the same code the fast engine runs):

==================  ====================  =================================================
plugin              policy                GPU choice inside the node (Reserve)
==================  ====================  =================================================
Atc23DotProd        atc23-dotprod         best fit (least milli left that fits)
Atc23Clustering     atc23-clustering      best fit
Atc23Packing        atc23-packing         best fit
Atc23BestFit        atc23-bestfit         best fit (NormalizeScore: min-max to 0..100)
Atc23Fgd            atc23-fgd             the GPU with the best FGD score (first on ties)
==================  ====================  =================================================

The ``atc23-*`` profiles (:mod:`..profiles`) enable one of them with weight 1000 next to the
default filters and GpuShare, scoring every node. The paper's Random policy is not a kube
profile (it draws from the fill plan's stream; use the fast engine). Atc23Fgd needs the typical
pods and their model names in ``handle.extra["typical"]`` / ``handle.extra["model_names"]``
(the kube engine sets them); Atc23Clustering keeps, per node, the number of GPU pods of each
affinity tag (a snapshot listener).
"""

from __future__ import annotations

import numpy as np
from numba import njit

from ...gpushare.policies import (
    BESTFIT,
    CLUSTERING,
    DOTPROD,
    PACKING,
    bestfit_raw_score,
    clustering_score,
    dotprod_score,
    fgd_score,
    normalize_scores,
    packing_score,
    pod_tag,
)
from ..framework import CycleState, Plugin, register
from ..snapshot import CPU, MEMORY, MILLI_PER_GPU, NodeSnapshot, PodInfo, choose_gpus


@njit(cache=True)
def _scores(policy, nodes, cpu_free, gpu_free, tags, n_tags, cpu, num_gpu, gpu_milli):
    out = np.zeros(nodes.size, np.int64)
    for i in range(nodes.size):
        n = nodes[i]
        if policy == DOTPROD:
            out[i] = dotprod_score(cpu_free[n], gpu_free[n], cpu, num_gpu, gpu_milli)
        elif policy == CLUSTERING:
            out[i] = clustering_score(gpu_free[n], tags[n], n_tags[n], num_gpu, gpu_milli)
        elif policy == PACKING:
            out[i] = packing_score(gpu_free[n], num_gpu, gpu_milli)
        elif policy == BESTFIT:
            out[i] = bestfit_raw_score(cpu_free[n], gpu_free[n], cpu, num_gpu, gpu_milli)
    return out


@njit(cache=True)
def _fgd_scores(nodes, cpu_free, gpu_free, model, cpu, mem, num_gpu, gpu_milli,
                t_cpu, t_num, t_milli, t_acc, t_prob, out_gpu):
    out = np.zeros(nodes.size, np.int64)
    for i in range(nodes.size):
        n = nodes[i]
        s, g = fgd_score(cpu_free[n], gpu_free[n], model[n], cpu, mem, num_gpu,
                         gpu_milli, t_cpu, t_num, t_milli, t_acc, t_prob)
        out[i] = s
        out_gpu[i] = g
    return out


def _typical_of_cluster(handle):
    """Typical pods of the cluster's pods (bound and pending), when no trace gave them."""
    import pandas as pd

    from ...gpushare import typical_pods
    from ..snapshot import parse_gpu_request

    snap = handle.snapshot
    rows = []
    for pod in handle.cluster.pods:
        k, milli, models = parse_gpu_request(pod)
        rows.append((pod.requests().get("cpu", 0), k, milli, "|".join(models)))
    df = pd.DataFrame(rows, columns=["cpu_milli", "num_gpu", "gpu_milli", "gpu_models"])
    return typical_pods(df, list(snap.gpu_models.names))


def _gpu_rows(snap: NodeSnapshot) -> np.ndarray:
    """gpu_free with at least one column (all -1 without GPUs)."""
    if snap.max_gpus:
        return snap.gpu_free
    return np.full((snap.num_nodes, 1), -1, np.int64)


class _TagCounts:
    """Per node, the number of bound GPU pods of each GpuClustering tag (a listener)."""

    def __init__(self) -> None:
        self.tags = np.zeros((0, 2), np.int64)

    def _fit(self, snap: NodeSnapshot, tag: int) -> None:
        n, t = snap.num_nodes, max(tag + 1, self.tags.shape[1])
        if self.tags.shape[0] < n or self.tags.shape[1] < t:
            b = np.zeros((max(n, self.tags.shape[0]), t), np.int64)
            b[: self.tags.shape[0], : self.tags.shape[1]] = self.tags
            self.tags = b

    def pod_added(self, snap: NodeSnapshot, pod: PodInfo, node: int) -> None:
        if pod.num_gpu:
            t = int(pod_tag(pod.num_gpu, pod.gpu_milli))
            self._fit(snap, t)
            self.tags[node, t] += 1

    def pod_removed(self, snap: NodeSnapshot, pod: PodInfo, node: int) -> None:
        if pod.num_gpu:
            self.tags[node, int(pod_tag(pod.num_gpu, pod.gpu_milli))] -= 1


class _Atc23(Plugin):
    policy: int = -1
    events = frozenset()

    def score(self, state: CycleState, pod: PodInfo, nodes: np.ndarray) -> np.ndarray:
        snap = self.handle.snapshot
        req, _ = snap.request_vectors(pod)
        cpu_free = snap.allocatable[:, CPU] - snap.requested[:, CPU]
        tags, n_tags = self._tags(snap)
        return _scores(self.policy, np.ascontiguousarray(nodes, np.int64), cpu_free,
                       _gpu_rows(snap), tags, n_tags, np.int64(req[CPU]),
                       np.int64(pod.num_gpu), np.int64(pod.gpu_milli))

    def _tags(self, snap: NodeSnapshot):
        z = np.zeros((snap.num_nodes, 1), np.int64)
        return z, np.zeros(snap.num_nodes, np.int64)


@register
class Atc23DotProd(_Atc23):
    name = "Atc23DotProd"
    policy = DOTPROD


@register
class Atc23Packing(_Atc23):
    name = "Atc23Packing"
    policy = PACKING


@register
class Atc23BestFit(_Atc23):
    name = "Atc23BestFit"
    policy = BESTFIT

    def normalize_score(self, state: CycleState, pod: PodInfo, nodes: np.ndarray,
                        scores: np.ndarray) -> None:
        scores[:] = normalize_scores(np.ascontiguousarray(scores, np.int64))


@register
class Atc23Clustering(_Atc23):
    name = "Atc23Clustering"
    policy = CLUSTERING

    def __init__(self, args, handle) -> None:
        super().__init__(args, handle)
        self.counts = _TagCounts()
        handle.snapshot.add_listener(self.counts)

    def _tags(self, snap: NodeSnapshot):
        self.counts._fit(snap, 0)
        tags = self.counts.tags[: snap.num_nodes]
        return tags, np.count_nonzero(tags > 0, axis=1).astype(np.int64)


@register
class Atc23Fgd(Plugin):
    """06-FGD: ``int(sigmoid(dF / 1000) * 100)`` of the node's fragmentation decrease; its
    share pods take the GPU with the best score (the snapshot's GPU chooser)."""

    name = "Atc23Fgd"
    events = frozenset()

    def __init__(self, args, handle) -> None:
        super().__init__(args, handle)
        handle.snapshot.gpu_chooser = self.choose_gpus
        self._typ = None
        self._typ_key = None

    def _typical(self, snap: NodeSnapshot):
        typical = self.handle.extra.get("typical")
        if typical is None:
            typical = self.handle.extra["typical"] = _typical_of_cluster(self.handle)
            self.handle.extra["model_names"] = list(snap.gpu_models.names)
        names = self.handle.extra.get("model_names", list(snap.gpu_models.names))
        key = (id(typical), len(snap.gpu_models))
        if self._typ_key != key:
            ids = {str(m): i for i, m in enumerate(names)}
            mmap = np.array([ids.get(m, -1) for m in snap.gpu_models.names] + [-1], np.int64)
            n_models = max(1, typical.model_mask.shape[1])
            self._typ = (mmap, typical.cpu.astype(np.int64), typical.num_gpu.astype(np.int64),
                         typical.gpu_milli.astype(np.int64), typical.access(n_models),
                         typical.prob.astype(np.float64))
            self._typ_key = key
        return self._typ

    def _run(self, pod: PodInfo, nodes: np.ndarray):
        snap = self.handle.snapshot
        mmap, *t = self._typical(snap)
        req, _ = snap.request_vectors(pod)
        cpu_free = snap.allocatable[:, CPU] - snap.requested[:, CPU]
        model = mmap[snap.gpu_model]
        gpus = np.full(nodes.size, -1, np.int64)
        scores = _fgd_scores(np.ascontiguousarray(nodes, np.int64), cpu_free, _gpu_rows(snap),
                             model, np.int64(req[CPU]), np.int64(req[MEMORY]),
                             np.int64(pod.num_gpu), np.int64(pod.gpu_milli), *t, gpus)
        return scores, gpus

    def score(self, state: CycleState, pod: PodInfo, nodes: np.ndarray) -> np.ndarray:
        return self._run(pod, nodes)[0]

    def choose_gpus(self, snap: NodeSnapshot, pod: PodInfo, node: int) -> tuple[int, ...]:
        """Share pods: the GPU FGD scored best on ``node``; others: () (the default)."""
        if pod.num_gpu == 1 and pod.gpu_milli < MILLI_PER_GPU:
            _, gpus = self._run(pod, np.array([node], np.int64))
            g = int(gpus[0])
            c = int(snap.gpu_count[node])
            if 0 <= g < c and snap.gpu_free[node, g] >= pod.gpu_milli:
                return (g,)
        return choose_gpus(snap.gpu_free[node], int(snap.gpu_count[node]), pod.num_gpu,
                           pod.gpu_milli)



#: atc23 policy name -> score plugin (the kube profiles of :mod:`..profiles`).
ATC23_PLUGINS = {"atc23-dotprod": "Atc23DotProd", "atc23-clustering": "Atc23Clustering",
                 "atc23-packing": "Atc23Packing", "atc23-bestfit": "Atc23BestFit",
                 "atc23-fgd": "Atc23Fgd"}
