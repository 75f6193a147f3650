"""Event-driven replay of a trace under an ``atc23-*`` policy on the fast engine.

Pods arrive at ``arrival`` (ties in trace order). A pod that fits is bound at once and leaves
``duration`` seconds after it was bound (NaN = never). A pod that fits nowhere waits in a FIFO
queue (or fails at once with ``spec.fail_unschedulable``); after the departures of one instant
the queue is retried in order before that instant's arrivals, and its pods' delay is bind time
minus arrival. Only nodes that lost pods can newly fit a waiting pod (every other node only
filled up since its last attempt), so a retry looks at those nodes only; the pick among them is
the same as a scan of the whole cluster. Within one retry round, once a request (the whole pod
spec) has fitted none of those nodes, later waiting pods with the same request are known to fail
too (binds in the round only take room) and are not scored again.

Ties go to the smallest ``"%04d-" + name`` with a seeded permutation of the name-sorted nodes
(``numpy.random.Generator(PCG64(seed))``, which also seeds atc23-random's draws: a SplitMix64
counter stream, two uniforms per attempt). Typical pods (FGD and the fragmentation metrics) come
from all the trace's pods.

Every bind, departure, wait and failure goes to an event log ``(time, kind, pod, node, GPUs)``;
the time series samples the state on a regular grid of ~200 instants from the first arrival to
the last arrival or expected departure (the last arrival time among them), plus the final
state. ``placed``/``failed``/``pending`` are counted in the final state (after every event;
``pending`` = pods still waiting then); allocation, fragmentation and nodes in use are taken at
the last arrival (after every event of that instant), as in the kube engine: with finite
durations the cluster is empty at the very end.
"""

from __future__ import annotations

import heapq
import time as _time

import numpy as np
import pandas as pd
from numba import njit

from ..replay.result import METRIC_KEYS, TIMESERIES_COLUMNS, RunResult, RunSpec
from .fill import CACHE_CELLS, _sorted_nodes, spec_keys
from .frag import _fragmentation_state, typical_pods
from .policies import _apply, _schedule, policy_id
from .state import cluster_arrays, model_names_of, pod_arrays

BIND, DEPART, WAIT, FAIL = 0, 1, 2, 3
EVENT_KINDS = {BIND: "bind", DEPART: "depart", WAIT: "wait", FAIL: "fail"}
GRID_POINTS = 200


@njit(cache=True)
def _splitmix(x):
    x = (x + np.uint64(0x9E3779B97F4A7C15))
    z = x
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    z = z ^ (z >> np.uint64(31))
    return z


@njit(cache=True)
def _uniform(key, counter):
    return np.float64(_splitmix(np.uint64(key) + np.uint64(counter)) >> np.uint64(11)) \
        * (1.0 / 9007199254740992.0)


@njit(cache=True)
def _snapshot(row, t, cpu_req, mem_req, used, busy, nodes_used, placed, failed, qn, fn):
    row[0] = t
    row[1] = used
    row[2] = cpu_req
    row[3] = mem_req
    row[4] = busy
    row[5] = nodes_used
    row[6] = placed
    row[7] = failed
    row[8] = qn
    s = 0.0
    for i in range(fn.size):
        s += fn[i]
    row[9] = s


@njit(cache=True)
def _replay_kernel(policy, fail_now, rand_key, cpu_free, mem_free, pods_free, gpu_free, model,
                   cons_mask, p_cpu, p_mem, p_k, p_r, p_cons, p_key, n_keys, arrival, duration,
                   order, t_cpu, t_num, t_milli, t_acc, t_prob, n_tag_cols, grid,
                   ev_time, ev_kind, ev_pod, ev_node, ev_gpus, bind_time, pod_node, snaps):
    n = cpu_free.size
    g = gpu_free.shape[1]
    P = p_cpu.size
    cnt, small, fn = _fragmentation_state(cpu_free, gpu_free, model, t_cpu, t_num, t_milli,
                                          t_acc, t_prob)
    old_v = np.zeros(max(g, 1), np.int64)
    new_v = np.zeros(max(g, 1), np.int64)
    tags = np.zeros((n, n_tag_cols), np.int64)
    n_tags = np.zeros(n, np.int64)
    node_ver = np.zeros(n, np.int64)
    c_score = np.zeros((n_keys, n), np.int64)
    c_gpu = np.zeros((n_keys, n), np.int64)
    c_ver = np.full((n_keys, n), -1, np.int64)
    scratch_n = np.zeros(n, np.int64)
    scratch_s = np.zeros(n, np.int64)
    all_nodes = np.arange(n)
    gpus = np.zeros(max(g, 1), np.int64)
    pod_gpus = np.full((P, max(1, ev_gpus.shape[1])), -1, np.int64)
    pods_on = np.zeros(n, np.int64)
    touched = np.zeros(n, np.bool_)
    touched_list = np.zeros(n, np.int64)
    queue = np.zeros(P, np.int64)
    qn = 0
    heap = [(0.0, np.int64(0))]
    heap.pop()
    ne = 0
    cpu_req = 0
    mem_req = 0
    used = 0
    busy = 0
    nodes_used = 0
    placed = 0
    failed = 0
    attempts = 0
    gi = 0
    ai = 0
    now = 0.0
    # per request key (the whole pod spec), the last retry round in which it fitted nowhere
    n_spec = 0
    for p in range(P):
        n_spec = max(n_spec, p_key[p] + 1)
    no_fit_round = np.full(max(n_spec, 1), -1, np.int64)
    retry_round = 0
    while ai < P or len(heap) > 0:
        t_arr = arrival[order[ai]] if ai < P else np.inf
        dep_first = len(heap) > 0 and heap[0][0] <= t_arr
        t = heap[0][0] if dep_first else t_arr
        while gi < grid.size and grid[gi] < t:
            _snapshot(snaps[gi], grid[gi], cpu_req, mem_req, used, busy, nodes_used, placed,
                      failed, qn, fn)
            gi += 1
        now = t
        if dep_first:
            nt = 0
            while len(heap) > 0 and heap[0][0] == t:
                _, p = heapq.heappop(heap)
                nd = pod_node[p]
                k = p_k[p]
                r = p_r[p]
                for j in range(k):
                    gpus[j] = pod_gpus[p, j]
                _apply(nd, -1, p_cpu[p], p_mem[p], k, r, gpus, k, cpu_free, mem_free, pods_free,
                       gpu_free, model, tags, n_tags, fn, cnt, small, node_ver, t_cpu, t_num,
                       t_milli, t_acc, t_prob, old_v, new_v)
                for j in range(k):
                    if gpu_free[nd, gpus[j]] == 1000:
                        busy -= 1
                pods_on[nd] -= 1
                if pods_on[nd] == 0:
                    nodes_used -= 1
                cpu_req -= p_cpu[p]
                mem_req -= p_mem[p]
                used -= k * r
                ev_time[ne] = t
                ev_kind[ne] = 1
                ev_pod[ne] = p
                ev_node[ne] = nd
                for j in range(k):
                    ev_gpus[ne, j] = gpus[j]
                ne += 1
                if not touched[nd]:
                    touched[nd] = True
                    touched_list[nt] = nd
                    nt += 1
            if qn > 0:
                cand = np.sort(touched_list[:nt])
                w = 0
                retry_round += 1
                for qi in range(qn):
                    p = queue[qi]
                    if no_fit_round[p_key[p]] == retry_round:
                        # the same request already fitted none of these nodes in this round,
                        # and binds since only took room: it fails again (same draws used)
                        attempts += 1
                        queue[w] = p
                        w += 1
                        continue
                    k = p_k[p]
                    r = p_r[p]
                    u0 = _uniform(rand_key, 2 * attempts)
                    u1 = _uniform(rand_key, 2 * attempts + 1)
                    attempts += 1
                    nd, ng = _schedule(policy, cand, p_cpu[p], p_mem[p], k, r, p_cons[p],
                                       p_key[p], u0, u1, cpu_free, mem_free, pods_free, gpu_free,
                                       model, cons_mask, tags, n_tags, fn, cnt, small, t_cpu,
                                       t_num, t_milli, t_acc, t_prob, c_score, c_gpu, c_ver,
                                       node_ver, scratch_n, scratch_s, old_v, new_v, gpus)
                    if nd < 0:
                        no_fit_round[p_key[p]] = retry_round
                        queue[w] = p
                        w += 1
                        continue
                    for j in range(ng):
                        if gpu_free[nd, gpus[j]] == 1000:
                            busy += 1
                        pod_gpus[p, j] = gpus[j]
                        ev_gpus[ne, j] = gpus[j]
                    _apply(nd, 1, p_cpu[p], p_mem[p], k, r, gpus, ng, cpu_free, mem_free,
                           pods_free, gpu_free, model, tags, n_tags, fn, cnt, small, node_ver,
                           t_cpu, t_num, t_milli, t_acc, t_prob, old_v, new_v)
                    if pods_on[nd] == 0:
                        nodes_used += 1
                    pods_on[nd] += 1
                    cpu_req += p_cpu[p]
                    mem_req += p_mem[p]
                    used += k * r
                    placed += 1
                    pod_node[p] = nd
                    bind_time[p] = t
                    ev_time[ne] = t
                    ev_kind[ne] = 0
                    ev_pod[ne] = p
                    ev_node[ne] = nd
                    ne += 1
                    if not np.isnan(duration[p]):
                        heapq.heappush(heap, (t + duration[p], p))
                qn = w
            for j in range(nt):
                touched[touched_list[j]] = False
            continue
        p = order[ai]
        ai += 1
        k = p_k[p]
        r = p_r[p]
        u0 = _uniform(rand_key, 2 * attempts)
        u1 = _uniform(rand_key, 2 * attempts + 1)
        attempts += 1
        nd, ng = _schedule(policy, all_nodes, p_cpu[p], p_mem[p], k, r, p_cons[p], p_key[p], u0,
                           u1, cpu_free, mem_free, pods_free, gpu_free, model, cons_mask, tags,
                           n_tags, fn, cnt, small, t_cpu, t_num, t_milli, t_acc, t_prob, c_score,
                           c_gpu, c_ver, node_ver, scratch_n, scratch_s, old_v, new_v, gpus)
        ev_time[ne] = t
        ev_pod[ne] = p
        ev_node[ne] = nd
        if nd < 0:
            if fail_now:
                failed += 1
                ev_kind[ne] = 3
            else:
                queue[qn] = p
                qn += 1
                ev_kind[ne] = 2
            ne += 1
            continue
        for j in range(ng):
            if gpu_free[nd, gpus[j]] == 1000:
                busy += 1
            pod_gpus[p, j] = gpus[j]
            ev_gpus[ne, j] = gpus[j]
        ev_kind[ne] = 0
        ne += 1
        _apply(nd, 1, p_cpu[p], p_mem[p], k, r, gpus, ng, cpu_free, mem_free, pods_free,
               gpu_free, model, tags, n_tags, fn, cnt, small, node_ver, t_cpu, t_num, t_milli,
               t_acc, t_prob, old_v, new_v)
        if pods_on[nd] == 0:
            nodes_used += 1
        pods_on[nd] += 1
        cpu_req += p_cpu[p]
        mem_req += p_mem[p]
        used += k * r
        placed += 1
        pod_node[p] = nd
        bind_time[p] = t
        if not np.isnan(duration[p]):
            heapq.heappush(heap, (t + duration[p], p))
    while gi < grid.size:
        _snapshot(snaps[gi], grid[gi], cpu_req, mem_req, used, busy, nodes_used, placed,
                  failed, qn, fn)
        gi += 1
    _snapshot(snaps[grid.size], now, cpu_req, mem_req, used, busy, nodes_used, placed, failed,
              qn, fn)
    return ne, qn


def node_ranking(nodes: pd.DataFrame, rng: np.random.Generator):
    """(nodes sorted by name, rank per node, positions in tie-break order)."""
    ns = _sorted_nodes(nodes)
    rank = rng.permutation(len(ns)).astype(np.int64)
    labels = [f"{r:04d}-{nm}" for r, nm in zip(rank, ns["name"].astype(str))]
    return ns, rank, np.array(sorted(range(len(labels)), key=lambda i: labels[i]), np.int64)


class ReplayOutcome:
    """Raw result of :func:`run_replay` (pods in trace order, nodes in tie-break order)."""

    def __init__(self, **kw):
        self.__dict__.update(kw)

    def event_log(self) -> pd.DataFrame:
        """The event log as a table: time, kind, pod id, node name ("" for none), GPUs."""
        names = self.cluster.names
        ids = self.pods.ids
        return pd.DataFrame({
            "time": self.ev_time, "kind": [EVENT_KINDS[int(k)] for k in self.ev_kind],
            "pod": [ids[p] for p in self.ev_pod],
            "node": [names[n] if n >= 0 else "" for n in self.ev_node],
            "gpus": [tuple(int(x) for x in row if x >= 0) for row in self.ev_gpus]})


def run_replay(trace, policy: str, seed: int, fail_unschedulable: bool = False) -> ReplayOutcome:
    pid = policy_id(policy)
    rng = np.random.Generator(np.random.PCG64(int(seed)))
    nodes, rank, node_order = node_ranking(trace.nodes, rng)
    rand_key = int(rng.integers(0, 2 ** 63 - 1))
    model_names = model_names_of(nodes)
    cluster = cluster_arrays(nodes, model_names).take(node_order)
    pods_df = trace.pods
    pods = pod_arrays(pods_df, model_names)
    typ = typical_pods(pods_df.iloc[np.argsort(pods_df["id"].astype(str).to_numpy(),
                                               kind="stable")], model_names)
    n_models = max(1, len(model_names))
    keys, n_keys = spec_keys(pods, CACHE_CELLS // max(1, cluster.n))
    arrival = pods_df["arrival"].to_numpy(np.float64) if pods.n else np.zeros(0)
    duration = pods_df["duration"].to_numpy(np.float64) if pods.n else np.zeros(0)
    order = np.argsort(arrival, kind="stable").astype(np.int64)
    kmax = int(pods.num_gpu.max()) if pods.n else 0
    if pods.n:
        t0 = float(arrival.min())
        fin = np.isfinite(duration)
        t1 = float(max(arrival.max(), (arrival[fin] + duration[fin]).max() if fin.any() else 0))
    else:
        t0 = t1 = 0.0
    grid = np.linspace(t0, t1, GRID_POINTS) if t1 > t0 else np.array([t0])
    last_arrival = float(arrival.max()) if pods.n else 0.0
    grid = np.unique(np.append(grid, last_arrival))  # the end figures are sampled there
    cap = 3 * pods.n + 1   # each pod: wait or fail, bind, depart
    ev_time = np.zeros(cap)
    ev_kind = np.zeros(cap, np.int64)
    ev_pod = np.zeros(cap, np.int64)
    ev_node = np.zeros(cap, np.int64)
    ev_gpus = np.full((cap, max(1, kmax)), -1, np.int64)
    bind_time = np.full(pods.n, np.nan)
    pod_node = np.full(pods.n, -1, np.int64)
    snaps = np.zeros((grid.size + 1, 10))
    ne, qn = _replay_kernel(pid, bool(fail_unschedulable), rand_key, cluster.cpu_free,
                            cluster.mem_free, cluster.pods_free, cluster.gpu_free, cluster.model,
                            pods.cons_mask, pods.cpu, pods.mem, pods.num_gpu, pods.gpu_milli,
                            pods.cons, keys, n_keys, arrival, duration, order,
                            typ.cpu.astype(np.int64), typ.num_gpu.astype(np.int64),
                            typ.gpu_milli.astype(np.int64), typ.access(n_models),
                            typ.prob.astype(np.float64), kmax + 1, grid, ev_time, ev_kind,
                            ev_pod, ev_node, ev_gpus, bind_time, pod_node, snaps)
    return ReplayOutcome(cluster=cluster, pods=pods, typical=typ, node_rank=rank, rand_key=rand_key,
                         ev_time=ev_time[:ne], ev_kind=ev_kind[:ne], ev_pod=ev_pod[:ne],
                         ev_node=ev_node[:ne], ev_gpus=ev_gpus[:ne], bind_time=bind_time,
                         pod_node=pod_node, pending=int(qn), snaps=snaps, arrival=arrival,
                         last_arrival=last_arrival,
                         last_arrival_row=int(np.searchsorted(grid, last_arrival)))


def _pct(a, b):
    return np.where(b > 0, np.asarray(a, float) / (b if b > 0 else 1) * 100.0, 0.0)


def replay_fast(trace, spec: RunSpec) -> RunResult:
    """Replay a trace under an ``atc23-*`` policy (module docstring)."""
    policy_id(spec.policy)
    t_start = _time.perf_counter()
    out = run_replay(trace, spec.policy, spec.seed, spec.fail_unschedulable)
    wall = _time.perf_counter() - t_start
    c = out.cluster
    gpu_cap = float(c.gpu_count.sum() * 1000)
    s = out.snaps
    gpu_alloc = _pct(s[:, 1], gpu_cap)
    ts = pd.DataFrame({
        "time": s[:, 0], "arrived_gpu_pct": np.nan, "placed": s[:, 6].astype(np.int64),
        "failed": s[:, 7].astype(np.int64), "pending": s[:, 8].astype(np.int64),
        "gpu_alloc_pct": gpu_alloc, "cpu_alloc_pct": _pct(s[:, 2], float(c.cpu_cap.sum())),
        "mem_alloc_pct": _pct(s[:, 3], float(c.mem_cap.sum())),
        "unallocated_gpu_pct": np.where(gpu_cap > 0, 100.0 - gpu_alloc, 0.0),
        "frag_amount_pct": _pct(s[:, 9], gpu_cap),
        "frag_ratio_pct": np.where(gpu_cap - s[:, 1] > 0,
                                   s[:, 9] / np.maximum(gpu_cap - s[:, 1], 1) * 100.0, 0.0),
        "nodes_used": s[:, 5].astype(np.int64)})
    # arrived GPU share over time (requests of the pods arrived so far)
    req = (out.pods.num_gpu * out.pods.gpu_milli).astype(float)
    order = np.argsort(out.arrival, kind="stable")
    cum = np.cumsum(req[order])
    idx = np.searchsorted(out.arrival[order], ts["time"].to_numpy(), side="right")
    ts["arrived_gpu_pct"] = _pct(np.where(idx > 0, cum[np.maximum(idx - 1, 0)], 0.0)
                                 if len(cum) else np.zeros(len(ts)), gpu_cap)
    ts = ts[list(TIMESERIES_COLUMNS)]
    end = ts.iloc[-1]
    figures = ts.iloc[out.last_arrival_row]  # the cluster once the whole workload has arrived
    metrics = {k: (end[k] if k in ("placed", "failed", "pending") else figures[k])
               for k in METRIC_KEYS if k in ts.columns}
    metrics["wall_seconds"] = wall
    metrics = {k: metrics[k] for k in METRIC_KEYS}
    delays = (out.bind_time - out.arrival)[np.isfinite(out.bind_time)]
    q = np.percentile(delays, [50, 95, 99]) if len(delays) else [0.0, 0.0, 0.0]
    extra = {
        "delay_p50": float(q[0]), "delay_p95": float(q[1]), "delay_p99": float(q[2]),
        "delay_mean": float(delays.mean()) if len(delays) else 0.0,
        "pods_per_second": float(out.pods.n / wall) if wall > 0 else 0.0,
        "gpu_count_alloc_pct": float(_pct(s[out.last_arrival_row, 4],
                                          float(c.gpu_count.sum()))),
        "gpu_alloc_pct_end": float(ts["gpu_alloc_pct"].iloc[-1]),
        "last_arrival": out.last_arrival,
        "gpu_alloc_pct_time_avg": float(ts["gpu_alloc_pct"].iloc[:-1].mean()),
        "end_time": float(s[-1, 0]), "events": int(len(out.ev_time)),
        "typical_pods": int(out.typical.m),
    }
    placements = {out.pods.ids[p]: c.names[n] for p, n in enumerate(out.pod_node) if n >= 0}
    return RunResult(spec=spec, trace_name=getattr(trace, "name", ""), metrics=metrics,
                     extra=extra, timeseries=ts.reset_index(drop=True), placements=placements)
