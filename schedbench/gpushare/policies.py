"""The six policies of the FGD paper (ATC '23) as node-level Numba kernels, and the
scheduling step shared by the fill experiment and the event replay.

Scores follow the simulator's Go code (``random_score.go``, ``dot_product_score.go``,
``gpu_clustering_score.go``, ``gpu_packing_score.go``, ``best_fit_score.go``, ``fgd_score.go``):
integer arithmetic truncates toward zero, float arithmetic is done in the same order, constants
``MaxSpecCpu = 128000`` and ``MaxSpecGpu = 8000``. Scores are clamped to 0..100 (the kube
framework rejects others; openb nodes never leave that range).

GPU choice inside the chosen node: share pods (1 GPU, < 1000 milli) take the fitting GPU with the
least milli left (first index on ties), a uniformly random fitting GPU (atc23-random) or the GPU
with the best FGD score (atc23-fgd, first index on ties); other GPU pods take the lowest-indexed
GPUs with enough milli left (for whole GPUs: the lowest-indexed fully free GPUs).
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from ..errors import InputError
from .frag import _frag_value, _stats

ATC23_POLICIES = ("atc23-random", "atc23-dotprod", "atc23-clustering", "atc23-packing",
                  "atc23-bestfit", "atc23-fgd")
RANDOM, DOTPROD, CLUSTERING, PACKING, BESTFIT, FGD = range(6)
MAX_SPEC_CPU = 128000
MAX_SPEC_GPU = 8000
MILLI = 1000


def policy_id(name: str) -> int:
    """Index of an ``atc23-*`` policy name (ValueError otherwise)."""
    try:
        return ATC23_POLICIES.index(name)
    except ValueError:
        raise InputError(f"unknown atc23 policy {name!r}; expected one of "
                         f"{', '.join(ATC23_POLICIES)}", field="policy") from None


@njit(cache=True)
def _go_div(a, b):
    if (a < 0) != (b < 0) and a % b != 0:
        return a // b + 1
    return a // b


@njit(cache=True)
def _clamp(s):
    if s < 0:
        return 0
    if s > 100:
        return 100
    return s


@njit(cache=True)
def _idle(gpu_row):
    s = 0
    for g in gpu_row:
        if g > 0:
            s += g
    return s


@njit(cache=True)
def pod_tag(num_gpu, gpu_milli):
    """GpuClustering's affinity tag: -1 no GPU, 0 share-gpu, k for "k-gpu"."""
    if num_gpu == 0:
        return -1
    if num_gpu == 1 and gpu_milli < MILLI:
        return 0
    return num_gpu


@njit(cache=True)
def _next_fit(gpu_row, r, last_g, last_i):
    """The GPU after (last_g, last_i) in (milli left, index) order that has >= r left, or -1:
    walking it gives the simulator's stable ascending sort without allocating."""
    best = -1
    for i in range(gpu_row.size):
        g = gpu_row[i]
        if g < 0 or g < r:
            continue
        if g < last_g or (g == last_g and i <= last_i):
            continue
        if best < 0 or g < gpu_row[best]:
            best = i
    return best


# ------------------------------------------------------------------------- node scores

@njit(cache=True)
def dotprod_score(cpu_free, gpu_row, cpu, num_gpu, gpu_milli):
    """02-DotProd (merge, max-norm): ``int((1 - (node . pod) / 2) * 100)``."""
    if cpu_free < cpu:
        return 0
    n0 = np.float64(cpu_free) / np.float64(MAX_SPEC_CPU)
    n1 = np.float64(_idle(gpu_row)) / np.float64(MAX_SPEC_GPU)
    p0 = np.float64(cpu) / np.float64(MAX_SPEC_CPU)
    p1 = np.float64(num_gpu * gpu_milli) / np.float64(MAX_SPEC_GPU)
    dot = 0.0
    dot += n0 * p0
    dot += n1 * p1
    cur = dot / 2.0
    cur = 1.0 - cur
    if not (cur > -1.0):
        return 0
    return _clamp(np.int64(100.0 * cur))


@njit(cache=True)
def clustering_score(gpu_row, tag_row, n_distinct, num_gpu, gpu_milli):
    """03-GpuClustering: base 75/50/25/0 by the node's affinity tags, plus
    ``25 * (8000 - idle) / 8000``; CPU-only pods score 0."""
    t = pod_tag(num_gpu, gpu_milli)
    if t < 0:
        return 0
    part = _go_div(25 * (MAX_SPEC_GPU - _idle(gpu_row)), MAX_SPEC_GPU)
    has = t < tag_row.size and tag_row[t] > 0
    if has:
        if n_distinct == 1:
            return _clamp(part + 75)
        return _clamp(part + 50)
    if n_distinct == 0:
        return _clamp(part + 25)
    return _clamp(part)


@njit(cache=True)
def packing_score(gpu_row, num_gpu, gpu_milli):
    """04-GpuPacking: reuse partly used GPUs, then free GPUs on used nodes, then empty nodes."""
    if gpu_milli <= 0:
        return 0
    ng = 0
    free = 0
    for g in gpu_row:
        if g >= 0:
            ng += 1
            if g == MILLI:
                free += 1
    if free == ng:
        s = 100 // 3 - free
        return _clamp(s if s > free else free)
    # smallest milli left first (stable), take fitting GPUs until num_gpu are found
    need = num_gpu
    used_free = 0
    ratio = 0
    lg = -2
    li = -1
    while need > 0:
        idx = _next_fit(gpu_row, gpu_milli, lg, li)
        if idx < 0:
            break
        g = gpu_row[idx]
        lg = g
        li = idx
        need -= 1
        ratio += g * 100 // MILLI
        if g == MILLI:
            used_free += 1
    if need != 0:
        return 0
    if used_free > 0:
        s = 100 // 2 - used_free
        return _clamp(s if s > 100 // 3 else 100 // 3)
    s = 100 - ratio // 10
    return _clamp(s if s > 100 // 2 else 100 // 2)


@njit(cache=True)
def bestfit_raw_score(cpu_free, gpu_row, cpu, num_gpu, gpu_milli):
    """05-BestFit before normalisation: ``int((1 - s) * 100)`` with
    ``s = (c - r_c) / 128000 * 0.5 + (idle - k r_g) / 8000 * 0.5``."""
    f0 = np.float64(cpu_free)
    f1 = np.float64(_idle(gpu_row))
    r0 = np.float64(cpu)
    r1 = np.float64(gpu_milli * num_gpu)
    s = 0.0
    s += (f0 - r0) / np.float64(MAX_SPEC_CPU) * 0.5
    s += (f1 - r1) / np.float64(MAX_SPEC_GPU) * 0.5
    s = (1.0 - s) * 100.0
    return np.int64(s)


@njit(cache=True)
def normalize_scores(scores):
    """The simulator's NormalizeScore: min-max to 0..100 with integer division (all 0 when
    every score is equal). Returns a new array."""
    out = np.zeros(scores.size, np.int64)
    if scores.size == 0:
        return out
    hi = scores.max()
    lo = scores.min()
    rng = hi - lo
    if rng == 0:
        return out
    for i in range(scores.size):
        out[i] = (scores[i] - lo) * 100 // rng
    return out


@njit(cache=True)
def _sigmoid_score(delta):
    return np.int64(1.0 / (1.0 + math.exp(-(delta / 1000.0))) * 100.0)


@njit(cache=True)
def _fgd_eval(cpu_free, gpu_row, md, f_before, cnt_row, small_row, cpu, mem, num_gpu, gpu_milli,
              t_cpu, t_num, t_milli, t_acc, t_prob, old_v, new_v):
    """06-FGD score of one node and the GPU it would use for a share pod (-1 otherwise)."""
    if cpu == 0 and mem == 0 and num_gpu == 0:
        return 100, -1
    idle = _idle(gpu_row)
    c2 = cpu_free - cpu
    if num_gpu == 1 and gpu_milli < MILLI:
        best = -1
        best_i = -1
        for i in range(gpu_row.size):
            g = gpu_row[i]
            if g < gpu_milli:
                continue
            seen = False
            for j in range(i):
                if gpu_row[j] == g:
                    seen = True
                    break
            if seen:  # same milli left as an earlier GPU: same score, earlier index wins
                continue
            old_v[0] = g
            new_v[0] = g - gpu_milli
            fa = _frag_value(c2, idle - gpu_milli, md, cnt_row, small_row, old_v, new_v, 1,
                             t_cpu, t_num, t_milli, t_acc, t_prob)
            s = _sigmoid_score(f_before - fa)
            if best_i < 0 or s > best:
                best = s
                best_i = i
        return best, best_i
    nchg = 0
    lg = -2
    li = -1
    while nchg < num_gpu:
        idx = _next_fit(gpu_row, gpu_milli, lg, li)
        if idx < 0:
            break
        g = gpu_row[idx]
        lg = g
        li = idx
        old_v[nchg] = g
        new_v[nchg] = g - gpu_milli
        nchg += 1
    fa = _frag_value(c2, idle - num_gpu * gpu_milli, md, cnt_row, small_row, old_v, new_v, nchg,
                     t_cpu, t_num, t_milli, t_acc, t_prob)
    return _sigmoid_score(f_before - fa), -1


@njit(cache=True)
def fgd_score(cpu_free, gpu_row, md, cpu, mem, num_gpu, gpu_milli,
              t_cpu, t_num, t_milli, t_acc, t_prob):
    """06-FGD on one node from scratch: ``(score, GPU for a share pod or -1)``; ``md`` is the
    node's model id, ``t_*`` the typical pods' arrays (``TypicalPods.access`` for ``t_acc``)."""
    m = t_prob.size
    cnt = np.zeros(m, np.int64)
    small = np.zeros(m, np.int64)
    _stats(gpu_row, t_milli, cnt, small)
    old_v = np.zeros(max(1, gpu_row.size), np.int64)
    new_v = np.zeros(max(1, gpu_row.size), np.int64)
    fb = _frag_value(cpu_free, _idle(gpu_row), md, cnt, small, old_v, new_v, 0,
                     t_cpu, t_num, t_milli, t_acc, t_prob)
    return _fgd_eval(cpu_free, gpu_row, md, fb, cnt, small, cpu, mem, num_gpu, gpu_milli,
                     t_cpu, t_num, t_milli, t_acc, t_prob, old_v, new_v)


# --------------------------------------------------------------------- GPU choice

@njit(cache=True)
def choose_gpus(policy, gpu_row, num_gpu, gpu_milli, u, fgd_gpu, out):
    """Write the chosen GPU indices to ``out[:num_gpu]``; returns how many were chosen."""
    if num_gpu == 0:
        return 0
    if num_gpu == 1 and gpu_milli < MILLI:
        if policy == FGD and fgd_gpu >= 0:
            out[0] = fgd_gpu
            return 1
        if policy == RANDOM:
            cnt = 0
            for g in gpu_row:
                if g >= gpu_milli:
                    cnt += 1
            if cnt == 0:
                return 0
            pick = np.int64(u * cnt)
            if pick >= cnt:
                pick = cnt - 1
            for i in range(gpu_row.size):
                if gpu_row[i] >= gpu_milli:
                    if pick == 0:
                        out[0] = i
                        return 1
                    pick -= 1
            return 0
        best = -1
        for i in range(gpu_row.size):
            g = gpu_row[i]
            if g >= gpu_milli and (best < 0 or g < gpu_row[best]):
                best = i
        if best < 0:
            return 0
        out[0] = best
        return 1
    k = 0
    for i in range(gpu_row.size):
        if gpu_row[i] >= gpu_milli and gpu_row[i] >= 0:
            out[k] = i
            k += 1
            if k == num_gpu:
                return k
    return k


# ------------------------------------------------------------ public node-level API

def score_node(policy: str | int, cpu_free: int, gpu_row, cpu: int, num_gpu: int, gpu_milli: int,
               *, mem: int = 1, model: int = 0, tag_row=None, typical=None, u: float = 0.0):
    """Score one (feasible) node for one pod under an ``atc23-*`` policy; returns
    ``(score, gpu_indices)``. atc23-bestfit returns the raw score (normalise across the
    feasible nodes with :func:`normalize_scores`); atc23-random returns 0 (the policy picks a
    feasible node uniformly; ``u`` in [0, 1) picks its GPU). ``tag_row`` (clustering) counts
    the node's GPU pods per tag (index 0 share-gpu, k "k-gpu"); ``typical`` (FGD) is a
    :class:`~schedbench.gpushare.frag.TypicalPods`; ``model`` is the node's model id."""
    pid = policy_id(policy) if isinstance(policy, str) else int(policy)
    row = np.ascontiguousarray(gpu_row, np.int64)
    k = int(num_gpu)
    r = int(gpu_milli)
    fgd_gpu = -1
    if pid == RANDOM:
        s = 0
    elif pid == DOTPROD:
        s = dotprod_score(int(cpu_free), row, int(cpu), k, r)
    elif pid == CLUSTERING:
        tags = np.zeros(1, np.int64) if tag_row is None else np.ascontiguousarray(tag_row, np.int64)
        s = clustering_score(row, tags, int((tags > 0).sum()), k, r)
    elif pid == PACKING:
        s = packing_score(row, k, r)
    elif pid == BESTFIT:
        s = bestfit_raw_score(int(cpu_free), row, int(cpu), k, r)
    elif pid == FGD:
        if typical is None:
            raise ValueError("atc23-fgd needs the typical pods")
        n_models = max(1, typical.model_mask.shape[1])
        s, fgd_gpu = fgd_score(int(cpu_free), row, int(model), int(cpu), int(mem), k, r,
                                     typical.cpu.astype(np.int64), typical.num_gpu.astype(np.int64),
                                     typical.gpu_milli.astype(np.int64), typical.access(n_models),
                                     typical.prob.astype(np.float64))
    else:
        raise ValueError(f"unknown policy id {pid}")
    out = np.zeros(max(1, k), np.int64)
    n = choose_gpus(pid, row, k, r, float(u), fgd_gpu, out)
    return int(s), out[:n].copy()


# --------------------------------------------------------- the scheduling engine core

@njit(cache=True)
def _feasible(n, cpu, mem, k, r, cons, cpu_free, mem_free, pods_free, gpu_free, model, cons_mask):
    if cpu_free[n] < cpu or mem_free[n] < mem or pods_free[n] < 1:
        return False
    if k == 0:
        return True
    md = model[n]
    if md < 0 or not cons_mask[cons, md]:
        return False
    c = 0
    for g in gpu_free[n]:
        if g >= r:
            c += 1
    return c >= k


@njit(cache=True)
def _node_eval(policy, n, cpu, mem, k, r, cons, cpu_free, mem_free, pods_free, gpu_free, model,
               cons_mask, tags, n_tags, fn, cnt, small, t_cpu, t_num, t_milli, t_acc, t_prob,
               old_v, new_v):
    """(score, gpu) of node ``n`` for a pod; gpu -2 = infeasible, -1 = no FGD GPU choice."""
    if not _feasible(n, cpu, mem, k, r, cons, cpu_free, mem_free, pods_free, gpu_free, model,
                     cons_mask):
        return np.int64(0), np.int64(-2)
    if policy == DOTPROD:
        return dotprod_score(cpu_free[n], gpu_free[n], cpu, k, r), np.int64(-1)
    if policy == CLUSTERING:
        return clustering_score(gpu_free[n], tags[n], n_tags[n], k, r), np.int64(-1)
    if policy == PACKING:
        return packing_score(gpu_free[n], k, r), np.int64(-1)
    if policy == BESTFIT:
        return bestfit_raw_score(cpu_free[n], gpu_free[n], cpu, k, r), np.int64(-1)
    if policy == FGD:
        s, g = _fgd_eval(cpu_free[n], gpu_free[n], model[n], fn[n], cnt[n], small[n], cpu, mem,
                         k, r, t_cpu, t_num, t_milli, t_acc, t_prob, old_v, new_v)
        return np.int64(s), np.int64(g)
    return np.int64(0), np.int64(-1)


@njit(cache=True)
def _schedule(policy, cand, cpu, mem, k, r, cons, key, u0, u1,
              cpu_free, mem_free, pods_free, gpu_free, model, cons_mask,
              tags, n_tags, fn, cnt, small, t_cpu, t_num, t_milli, t_acc, t_prob,
              c_score, c_gpu, c_ver, node_ver, scratch_n, scratch_s, old_v, new_v, out_gpus):
    """Pick a node among ``cand`` (node indices, ascending = tie-break order) for one pod and
    its GPUs. Returns (node or -1, number of GPUs written to ``out_gpus``).

    ``c_*[key, n]`` cache each node's (score, gpu) for the pod spec ``key`` while the node's
    version ``node_ver[n]`` is unchanged (keys >= ``c_ver.shape[0]`` are not cached)."""
    best = -1
    best_s = np.int64(-(2 ** 62))
    best_gpu = -1
    nf = 0
    use_cache = key >= 0 and key < c_ver.shape[0]
    for j in range(cand.size):
        n = cand[j]
        if use_cache and c_ver[key, n] == node_ver[n]:
            s = c_score[key, n]
            gg = c_gpu[key, n]
        else:
            s, gg = _node_eval(policy, n, cpu, mem, k, r, cons, cpu_free, mem_free, pods_free,
                               gpu_free, model, cons_mask, tags, n_tags, fn, cnt, small, t_cpu,
                               t_num, t_milli, t_acc, t_prob, old_v, new_v)
            if use_cache:
                c_score[key, n] = s
                c_gpu[key, n] = gg
                c_ver[key, n] = node_ver[n]
        if gg == -2:
            continue
        if policy == RANDOM or policy == BESTFIT:
            scratch_n[nf] = n
            scratch_s[nf] = s
            nf += 1
            continue
        if s > best_s:
            best_s = s
            best = n
            best_gpu = gg
    if policy == RANDOM and nf > 0:
        pick = np.int64(u0 * nf)
        if pick >= nf:
            pick = nf - 1
        best = scratch_n[pick]
    elif policy == BESTFIT and nf > 0:
        hi = scratch_s[0]
        lo = scratch_s[0]
        for j in range(nf):
            if scratch_s[j] > hi:
                hi = scratch_s[j]
            if scratch_s[j] < lo:
                lo = scratch_s[j]
        rng = hi - lo
        for j in range(nf):
            s = 0 if rng == 0 else (scratch_s[j] - lo) * 100 // rng
            if s > best_s:
                best_s = s
                best = scratch_n[j]
    if best < 0:
        return -1, 0
    ng = choose_gpus(policy, gpu_free[best], k, r, u1, best_gpu, out_gpus)
    return best, ng


@njit(cache=True)
def _apply(n, sign, cpu, mem, k, r, gpus, ng, cpu_free, mem_free, pods_free, gpu_free, model,
           tags, n_tags, fn, cnt, small, node_ver, t_cpu, t_num, t_milli, t_acc, t_prob,
           old_v, new_v):
    """Place (sign +1) or remove (sign -1) a pod on node ``n`` using GPUs ``gpus[:ng]``;
    keeps the per-node caches (typical-pod statistics, F(n), tags, version) up to date."""
    cpu_free[n] -= sign * cpu
    mem_free[n] -= sign * mem
    pods_free[n] -= sign
    for j in range(ng):
        i = gpus[j]
        o = gpu_free[n, i]
        nv = o - sign * r
        gpu_free[n, i] = nv
        for m in range(t_milli.size):
            rm = t_milli[m]
            if o >= rm:
                cnt[n, m] -= 1
            else:
                small[n, m] -= o
            if nv >= rm:
                cnt[n, m] += 1
            else:
                small[n, m] += nv
    t = pod_tag(k, r)
    if t >= 0:
        if sign > 0:
            if tags[n, t] == 0:
                n_tags[n] += 1
            tags[n, t] += 1
        else:
            tags[n, t] -= 1
            if tags[n, t] == 0:
                n_tags[n] -= 1
    fn[n] = _frag_value(cpu_free[n], _idle(gpu_free[n]), model[n], cnt[n], small[n], old_v,
                        new_v, 0, t_cpu, t_num, t_milli, t_acc, t_prob)
    node_ver[n] += 1


@njit(cache=True)
def _score_all(policy, cpu, mem, k, r, cons, cpu_free, mem_free, pods_free, gpu_free, model,
               cons_mask, tags, n_tags, t_cpu, t_num, t_milli, t_acc, t_prob, scores, fgd_gpus):
    n = cpu_free.size
    m = t_prob.size
    cnt = np.zeros((1, m), np.int64)
    small = np.zeros((1, m), np.int64)
    old_v = np.zeros(max(1, gpu_free.shape[1]), np.int64)
    new_v = np.zeros(max(1, gpu_free.shape[1]), np.int64)
    fn = np.zeros(1)
    lo = np.int64(2 ** 62)
    hi = -lo
    for i in range(n):
        if policy == FGD:
            _stats(gpu_free[i], t_milli, cnt[0], small[0])
            fn[0] = _frag_value(cpu_free[i], _idle(gpu_free[i]), model[i], cnt[0], small[0],
                                old_v, new_v, 0, t_cpu, t_num, t_milli, t_acc, t_prob)
        if not _feasible(i, cpu, mem, k, r, cons, cpu_free, mem_free, pods_free, gpu_free,
                         model, cons_mask):
            scores[i] = -1
            fgd_gpus[i] = -2
            continue
        if policy == FGD:
            s, g = _fgd_eval(cpu_free[i], gpu_free[i], model[i], fn[0], cnt[0], small[0], cpu,
                             mem, k, r, t_cpu, t_num, t_milli, t_acc, t_prob, old_v, new_v)
        elif policy == DOTPROD:
            s, g = dotprod_score(cpu_free[i], gpu_free[i], cpu, k, r), -1
        elif policy == CLUSTERING:
            s, g = clustering_score(gpu_free[i], tags[i], n_tags[i], k, r), -1
        elif policy == PACKING:
            s, g = packing_score(gpu_free[i], k, r), -1
        elif policy == BESTFIT:
            s, g = bestfit_raw_score(cpu_free[i], gpu_free[i], cpu, k, r), -1
        else:
            s, g = 0, -1
        scores[i] = s
        fgd_gpus[i] = g
        if s < lo:
            lo = s
        if s > hi:
            hi = s
    if policy == BESTFIT:
        for i in range(n):
            if fgd_gpus[i] != -2:
                scores[i] = 0 if hi == lo else (scores[i] - lo) * 100 // (hi - lo)


def score_nodes(policy: str | int, cluster, cpu: int, mem: int, num_gpu: int, gpu_milli: int,
                allowed=None, *, typical=None, tags=None):
    """Filter and score every node of ``cluster`` (a :class:`~.state.ClusterArrays`) for one
    pod: int64[N] scores (-1 = infeasible; atc23-bestfit normalised across the feasible nodes;
    atc23-random 0 everywhere: it picks a feasible node uniformly) and, for atc23-fgd share
    pods, int64[N] GPU choices. ``allowed`` = bool mask over ``cluster.model_names`` (None =
    any model); ``tags`` = int64[N, T] GPU pods per clustering tag on each node."""
    pid = policy_id(policy) if isinstance(policy, str) else int(policy)
    n = cluster.n
    n_models = max(1, len(cluster.model_names))
    mask = np.ones((1, n_models), np.bool_)
    if allowed is not None:
        mask[0, :len(cluster.model_names)] = np.asarray(allowed, np.bool_)
    if tags is None:
        tags = np.zeros((n, 1), np.int64)
    tags = np.ascontiguousarray(tags, np.int64)
    n_tags = (tags > 0).sum(axis=1).astype(np.int64)
    if typical is None:
        t = (np.zeros(0, np.int64),) * 3 + (np.ones((0, n_models), np.bool_), np.zeros(0))
    else:
        t = (typical.cpu.astype(np.int64), typical.num_gpu.astype(np.int64),
             typical.gpu_milli.astype(np.int64), typical.access(n_models),
             typical.prob.astype(np.float64))
    if pid == FGD and typical is None:
        raise ValueError("atc23-fgd needs the typical pods")
    from .state import normalised_gpu

    k, r = (int(x[0]) for x in normalised_gpu(np.array([num_gpu]), np.array([gpu_milli])))
    scores = np.zeros(n, np.int64)
    gpus = np.zeros(n, np.int64)
    _score_all(pid, int(cpu), int(mem), k, r, 0, cluster.cpu_free, cluster.mem_free,
               cluster.pods_free, cluster.gpu_free, cluster.model, mask, tags, n_tags, *t,
               scores, gpus)
    return scores, gpus
