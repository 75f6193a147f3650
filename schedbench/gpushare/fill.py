"""The FGD paper's fill experiment (ATC '23, Figs. 7, 9, 11-14) on the fast engine.

:func:`prepare_fill` builds the attempt order from one ``numpy.random.Generator(PCG64(seed))``
stream, in this order: pods sorted by id and shuffled; the tuning sample (pods drawn uniformly
with replacement from the id-sorted originals, cloned as ``<id>-tuned-<i>``, i = 0, 1, ...; the
draw stops at the first pod with ``total + per-GPU milli > tune x GPU capacity`` -- the
simulator's quirk: the stop test uses the per-GPU milli while the total adds ``num_gpu x milli``);
the node-name permutation (node i of the name-sorted nodes becomes ``"%04d-" + name`` with
``node_rank[i]``; ties go to the smallest such name); and, for atc23-random, two uniforms per pod
(node pick, GPU pick). The typical pods come from the original pods.

:func:`fill_experiment` places the pods online, one at a time, never removing any, a failure
being final. After every pod it records the arrived GPU milli (all pods attempted so far,
failed ones included), allocations and fragmentation. Metrics are taken at the last event whose
arrived milli is <= 100 % of GPU capacity (the paper's bars); ``extra`` has the whole run's totals.

Time series: one row per integer arrived-% point 0..130 (the paper's x axis) that has events:
ratio columns are the mean over the events whose rounded arrived % equals the point (if there
are none, over those rounding to the point +-1); ``placed``/``failed``/``nodes_used`` are the
values at the last of those events; ``time`` is that event's index (pods attempted so far) and
``arrived_gpu_pct`` is the integer point.
"""

from __future__ import annotations

import time as _time
from dataclasses import dataclass

import numpy as np
import pandas as pd
from numba import njit

from ..replay.result import METRIC_KEYS, TIMESERIES_COLUMNS, RunResult, RunSpec
from .frag import TypicalPods, _fragmentation_state, typical_pods
from .policies import RANDOM, _apply, _schedule, policy_id
from .state import ClusterArrays, PodArrays, cluster_arrays, model_names_of, pod_arrays

CACHE_CELLS = 4_000_000    # score cache size limit (pod specs x nodes)


@dataclass
class FillPlan:
    """What a fill run attempts, in order, and how it breaks ties."""

    pods: pd.DataFrame        # attempt order: shuffled originals, then the tuned clones
    node_rank: np.ndarray     # int64[N] permutation number of each node of nodes sorted by name
    node_order: np.ndarray    # int64[N] positions (in nodes sorted by name) by tie-break order
    node_names: list          # nodes sorted by name
    typical: TypicalPods
    model_names: list
    uniforms: np.ndarray      # float64[P, 2] draws for atc23-random (node, GPU)
    target_milli: float
    original_count: int


def _sorted_nodes(nodes: pd.DataFrame) -> pd.DataFrame:
    return nodes.iloc[np.argsort(nodes["name"].astype(str).to_numpy(), kind="stable")] \
        .reset_index(drop=True)


def prepare_fill(trace, seed: int, tune: float = 1.3) -> FillPlan:
    """The attempt order, node ranks and typical pods of one fill run (module docstring)."""
    rng = np.random.Generator(np.random.PCG64(int(seed)))
    nodes = _sorted_nodes(trace.nodes)
    model_names = model_names_of(nodes)
    pods = trace.pods
    order = np.argsort(pods["id"].astype(str).to_numpy(), kind="stable")
    by_id = pods.iloc[order].reset_index(drop=True)
    typical = typical_pods(by_id, model_names)
    perm = rng.permutation(len(by_id))
    shuffled = by_id.iloc[perm].reset_index(drop=True)
    capacity = int(nodes["gpu"].to_numpy(np.int64).sum()) * 1000 if len(nodes) else 0
    target = float(tune) * capacity
    num = by_id["num_gpu"].to_numpy(np.int64) if len(by_id) else np.zeros(0, np.int64)
    milli = np.clip(by_id["gpu_milli"].to_numpy(np.int64), 0, 1000) if len(by_id) \
        else np.zeros(0, np.int64)
    tot = np.where((num > 0) & (milli > 0), num * milli, 0)
    per = np.where((num > 0) & (milli > 0), milli, 0)
    total = int(tot.sum())
    frames = [shuffled]
    if tune > 0 and len(by_id):
        if total > target:
            keep = np.ones(len(shuffled), bool)
            stot = tot[perm]
            while total > target:
                alive = np.flatnonzero(keep)
                j = alive[int(rng.integers(0, alive.size))]
                keep[j] = False
                total -= int(stot[j])
            frames = [shuffled[keep].reset_index(drop=True)]
        elif per.max() > 0:
            picks = []
            while True:
                j = int(rng.integers(0, len(by_id)))
                if total + int(per[j]) > target:
                    break
                total += int(tot[j])
                picks.append(j)
            if picks:
                clones = by_id.iloc[picks].reset_index(drop=True)
                clones["id"] = [f"{pid}-tuned-{i}"
                                for i, pid in enumerate(clones["id"].astype(str))]
                frames.append(clones)
    attempt = pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]
    rank = rng.permutation(len(nodes)).astype(np.int64)
    names = [str(x) for x in nodes["name"]]
    labels = [f"{r:04d}-{nm}" for r, nm in zip(rank, names)]
    node_order = np.array(sorted(range(len(names)), key=lambda i: labels[i]), np.int64)
    uniforms = rng.random((len(attempt), 2))
    return FillPlan(attempt, rank, node_order, names, typical, model_names, uniforms, target,
                    len(by_id))


# --------------------------------------------------------------------- the engine

@njit(cache=True)
def _fill_kernel(policy, cpu_free, mem_free, pods_free, gpu_free, model, cons_mask,
                 p_cpu, p_mem, p_k, p_r, p_cons, p_key, n_keys, uni,
                 t_cpu, t_num, t_milli, t_acc, t_prob, n_tag_cols,
                 out_node, out_gpus, ev):
    """Place every pod in order. ``ev[t]`` (t = 0 initial state, t = i + 1 after pod i):
    arrived milli, used GPU milli, CPU requested, memory requested, GPUs in use, nodes used,
    placed, failed (int64), and ``F`` sum in the float column table returned."""
    n = cpu_free.size
    g = gpu_free.shape[1]
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
    cand = np.arange(n)
    gpus = np.zeros(max(g, 1), np.int64)
    pods_on = np.zeros(n, np.int64)
    frag = np.zeros(p_cpu.size + 1, np.float64)
    arrived = 0
    used = 0
    cpu_req = 0
    mem_req = 0
    gpus_busy = 0
    nodes_used = 0
    placed = 0
    failed = 0
    s = 0.0
    for i in range(n):
        s += fn[i]
    frag[0] = s
    for t in range(p_cpu.size):
        k = p_k[t]
        r = p_r[t]
        arrived += k * r
        node, ng = _schedule(policy, cand, p_cpu[t], p_mem[t], k, r, p_cons[t], p_key[t],
                             uni[t, 0], uni[t, 1], cpu_free, mem_free, pods_free, gpu_free,
                             model, cons_mask, tags, n_tags, fn, cnt, small, t_cpu, t_num,
                             t_milli, t_acc, t_prob, c_score, c_gpu, c_ver, node_ver, scratch_n,
                             scratch_s, old_v, new_v, gpus)
        out_node[t] = node
        if node >= 0:
            for j in range(ng):
                out_gpus[t, j] = gpus[j]
                if gpu_free[node, gpus[j]] == 1000:
                    gpus_busy += 1
            _apply(node, 1, p_cpu[t], p_mem[t], k, r, gpus, ng, cpu_free, mem_free, pods_free,
                   gpu_free, model, tags, n_tags, fn, cnt, small, node_ver, t_cpu, t_num, t_milli,
                   t_acc, t_prob, old_v, new_v)
            if pods_on[node] == 0:
                nodes_used += 1
            pods_on[node] += 1
            used += k * r
            cpu_req += p_cpu[t]
            mem_req += p_mem[t]
            placed += 1
        else:
            failed += 1
        e = t + 1
        ev[e, 0] = arrived
        ev[e, 1] = used
        ev[e, 2] = cpu_req
        ev[e, 3] = mem_req
        ev[e, 4] = gpus_busy
        ev[e, 5] = nodes_used
        ev[e, 6] = placed
        ev[e, 7] = failed
        s = 0.0
        for i in range(n):
            s += fn[i]
        frag[e] = s
    return frag


@dataclass
class FillOutcome:
    """Raw result of a fill run, in the plan's attempt order."""

    node: np.ndarray          # int64[P]: position in ``nodes`` (tie-break order), -1 = failed
    gpus: np.ndarray          # int64[P, K]: GPU indices used (-1 padded)
    events: np.ndarray        # int64[P + 1, 8]: see _fill_kernel
    frag: np.ndarray          # float64[P + 1]: sum of F(n)
    cluster: ClusterArrays    # nodes in tie-break order, final state
    pods: PodArrays


def spec_keys(pods: PodArrays, limit: int) -> tuple[np.ndarray, int]:
    """A score-cache key per pod (its whole request), most frequent specs first; keys >= the
    returned count are not cached."""
    frame = pd.DataFrame({"c": pods.cpu, "m": pods.mem, "k": pods.num_gpu, "r": pods.gpu_milli,
                          "x": pods.cons})
    codes, uniques = pd.factorize(pd.MultiIndex.from_frame(frame)) if len(frame) else \
        (np.zeros(0, np.int64), [])
    codes = np.asarray(codes, np.int64)
    n_keys = len(uniques)
    if n_keys == 0:
        return codes, 0
    freq = np.bincount(codes, minlength=n_keys)
    rank = np.empty(n_keys, np.int64)
    rank[np.argsort(-freq, kind="stable")] = np.arange(n_keys)
    return rank[codes], int(min(n_keys, max(0, limit)))


def run_fill(plan: FillPlan, nodes: pd.DataFrame, policy: str) -> FillOutcome:
    """Run the engine on a prepared plan (``nodes`` = the trace's node table)."""
    pid = policy_id(policy)
    nodes_sorted = _sorted_nodes(nodes)
    cluster = cluster_arrays(nodes_sorted, plan.model_names).take(plan.node_order)
    pods = pod_arrays(plan.pods, plan.model_names)
    typ = plan.typical
    n_models = max(1, len(plan.model_names))
    keys, n_keys = spec_keys(pods, CACHE_CELLS // max(1, cluster.n))
    kmax = int(pods.num_gpu.max()) if pods.n else 0
    out_node = np.full(pods.n, -1, np.int64)
    out_gpus = np.full((pods.n, max(1, kmax)), -1, np.int64)
    ev = np.zeros((pods.n + 1, 8), np.int64)
    uni = plan.uniforms if pid == RANDOM else np.zeros((pods.n, 2))
    frag = _fill_kernel(pid, cluster.cpu_free, cluster.mem_free, cluster.pods_free,
                        cluster.gpu_free, cluster.model, pods.cons_mask, pods.cpu, pods.mem,
                        pods.num_gpu, pods.gpu_milli, pods.cons, keys, n_keys,
                        np.ascontiguousarray(uni, np.float64), typ.cpu.astype(np.int64),
                        typ.num_gpu.astype(np.int64), typ.gpu_milli.astype(np.int64),
                        typ.access(n_models), typ.prob.astype(np.float64), kmax + 1,
                        out_node, out_gpus, ev)
    return FillOutcome(out_node, out_gpus, ev, frag, cluster, pods)


# ----------------------------------------------------------------------- metrics

def _pct(a, b):
    return np.where(b > 0, a / np.where(b > 0, b, 1) * 100.0, 0.0)


def event_table(out: FillOutcome) -> pd.DataFrame:
    """Per-event figures (row 0 = before any pod) in percent of capacity."""
    c = out.cluster
    gpu_cap = float(c.gpu_count.sum() * 1000)
    ev = out.events
    idle = gpu_cap - ev[:, 1]
    gpu_alloc = _pct(ev[:, 1], gpu_cap)
    return pd.DataFrame({
        "time": np.arange(len(ev)),
        "arrived_gpu_pct": _pct(ev[:, 0], gpu_cap),
        "placed": ev[:, 6], "failed": ev[:, 7], "pending": np.zeros(len(ev), np.int64),
        "gpu_alloc_pct": gpu_alloc,
        "cpu_alloc_pct": _pct(ev[:, 2], float(c.cpu_cap.sum())),
        "mem_alloc_pct": _pct(ev[:, 3], float(c.mem_cap.sum())),
        "unallocated_gpu_pct": np.where(gpu_cap > 0, 100.0 - gpu_alloc, 0.0),
        "frag_amount_pct": _pct(out.frag, gpu_cap),
        "frag_ratio_pct": _pct(out.frag, idle),
        "nodes_used": ev[:, 5],
        "gpu_count_alloc_pct": _pct(ev[:, 4], float(c.gpu_count.sum())),
        "arrived_milli": ev[:, 0],
    })


def sample_arrived(events: pd.DataFrame, points=range(0, 131)) -> pd.DataFrame:
    """The fill time series (module docstring) from :func:`event_table` rows 1..P."""
    ev = events.iloc[1:]
    if len(ev) == 0:
        return pd.DataFrame(columns=list(TIMESERIES_COLUMNS))
    rounded = np.floor(ev["arrived_gpu_pct"].to_numpy() + 0.5).astype(np.int64)
    ratio_cols = ["gpu_alloc_pct", "cpu_alloc_pct", "mem_alloc_pct", "unallocated_gpu_pct",
                  "frag_amount_pct", "frag_ratio_pct"]
    last_cols = ["time", "placed", "failed", "pending", "nodes_used"]
    rows = []
    for x in points:
        sel = rounded == x
        if not sel.any():
            sel = (rounded == x - 1) | (rounded == x + 1)
            if not sel.any():
                continue
        part = ev[sel]
        row = {"arrived_gpu_pct": float(x)}
        for col in ratio_cols:
            row[col] = float(part[col].mean())
        last = part.iloc[-1]
        for col in last_cols:
            row[col] = int(last[col])
        rows.append(row)
    return pd.DataFrame(rows, columns=list(TIMESERIES_COLUMNS))


def fill_experiment(trace, spec: RunSpec) -> RunResult:
    """One fill run of an ``atc23-*`` policy (module docstring)."""
    policy_id(spec.policy)
    t0 = _time.perf_counter()
    plan = prepare_fill(trace, spec.seed, spec.tune)
    out = run_fill(plan, trace.nodes, spec.policy)
    wall = _time.perf_counter() - t0
    return fill_result(trace, spec, plan, out, wall)


def _full_row(out: FillOutcome, events: pd.DataFrame) -> pd.Series:
    gpu_cap = int(out.cluster.gpu_count.sum()) * 1000
    if gpu_cap == 0:
        return events.iloc[-1]
    ok = np.flatnonzero(out.events[:, 0] <= gpu_cap)
    return events.iloc[ok[-1]]


def fill_result(trace, spec: RunSpec, plan: FillPlan, out: FillOutcome, wall: float) -> RunResult:
    events = event_table(out)
    row = _full_row(out, events)
    metrics = {k: 0 for k in METRIC_KEYS}
    for k in METRIC_KEYS:
        if k in row.index:
            metrics[k] = row[k]
    metrics["pending"] = 0
    metrics["wall_seconds"] = wall
    end = events.iloc[-1]
    names = out.cluster.names
    placements = {pid: names[n] for pid, n in zip(out.pods.ids, out.node) if n >= 0}
    extra = {
        "placed_total": int(end["placed"]), "failed_total": int(end["failed"]),
        "attempted": int(out.pods.n), "original_pods": int(plan.original_count),
        "tuned_pods": max(0, int(out.pods.n - plan.original_count)),
        "event_at_full": int(row["time"]),
        "arrived_gpu_pct_at_full": float(row["arrived_gpu_pct"]),
        "gpu_count_alloc_pct": float(row["gpu_count_alloc_pct"]),
        "gpu_alloc_pct_end": float(end["gpu_alloc_pct"]),
        "unallocated_gpu_pct_end": float(end["unallocated_gpu_pct"]),
        "gpu_count_alloc_pct_end": float(end["gpu_count_alloc_pct"]),
        "frag_amount_pct_end": float(end["frag_amount_pct"]),
        "cpu_alloc_pct_end": float(end["cpu_alloc_pct"]),
        "mem_alloc_pct_end": float(end["mem_alloc_pct"]),
        "pods_per_second": float(out.pods.n / wall) if wall > 0 else 0.0,
        "typical_pods": int(plan.typical.m),
        "tune_target_milli": float(plan.target_milli),
    }
    return RunResult(spec=spec, trace_name=getattr(trace, "name", ""), metrics=metrics,
                     extra=extra, timeseries=sample_arrived(events), placements=placements)
