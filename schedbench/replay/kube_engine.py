"""Replaying a trace through the kube-scheduler framework (:class:`~schedbench.scheduler.
scheduler.Scheduler`): the event-driven replay (:func:`replay`) and the FGD paper's fill
experiment (:func:`fill_experiment`), for any kube profile (built-in policy or
KubeSchedulerConfiguration file).

Both turn the trace into objects (:mod:`.trace_cluster`) and, when the trace has GPUs, add the
GpuShare filter to the profile (PreFilter + Filter, after the profile's own filters). Both are
deterministic for a seed.

**replay** - a discrete-event simulation on a virtual clock (the scheduler's ``clock``):

- at each event time, departures first (the pod leaves the snapshot; an ``AssignedPodDelete``
  cluster event moves the pods it may help out of the unschedulable pool), then arrivals (the
  pod enters the scheduling queue); then the scheduler runs cycles until nothing can be
  popped. A scheduling cycle takes no virtual time; a bound pod starts at once and leaves
  ``duration`` seconds later (never, for a pod without duration).
- between events, the clock jumps to the next event, or earlier to the next moment the queue
  would let a pod retry (a backoff completing in the error backoff queue, a 30 s flush of pods
  parked 5 min in the unschedulable pool) - counting only pods that failed before the cluster
  last changed, as :meth:`Scheduler.run` does (the others would fail the same way again).
- preemption is the profile's (DefaultPreemption in the built-in policies): victims are
  evicted at once and count as ``failed`` (``extra["preempted"]``). When every pod of the
  trace has the same priority nobody can preempt anybody, and the PostFilter plugins are left
  out (their dry runs would only consume the seeded generator's draws).
- ``spec.fail_unschedulable``: a pod whose attempt fails without a nominated node (a
  preemption in progress) fails for good (``failed``) instead of waiting.
- counts (``placed``: bound and not preempted, ``failed``, ``pending``: still waiting) are
  taken when the replay ends; the allocation, fragmentation and nodes-in-use figures at the
  **last arrival** (after that instant's scheduling: the cluster once the whole workload has
  arrived; when every pod has a duration the cluster is empty at the very end), or at the end
  with :data:`FIGURES_AT` = "end". A pod's delay is its bind time minus its arrival. The
  time series samples ~200 regular instants from 0 to the end.
- failed attempts are diagnosed by rejecting plugin and status code only
  (:func:`quiet_filter_reasons`; ``KubeReplay(explain=True)`` keeps kube's reason strings):
  the decisions are the same, a failure on a large cluster is much cheaper.
- an event log of ``(time, kind, pod id, node, gpu indices)`` with kinds ``bind``,
  ``depart``, ``evict``, ``fail`` is kept (:class:`KubeReplay`), from which the final state can
  be rebuilt.
- ``spec.optimal``: every K arrivals and at the last arrival, after that instant's scheduling,
  the active pods are re-placed by the CP-SAT baseline
  (:class:`~schedbench.replay.reoptimise.ReplayReoptimiser`) into ``RunResult.optimal``; the
  replay itself is unchanged, and the time spent there is left out of ``wall_seconds``.

**fill** (the FGD paper's method, ``fgd-fill-method.md``) -
:func:`schedbench.gpushare.fill.prepare_fill` gives the pods in attempt order (sorted by id,
shuffled, then the resampled ``-tuned-<i>`` clones up to ``spec.tune`` x GPU capacity), a
per-seed node rank and the typical pods. Each pod is tried once, in that order (no retry,
failures final, no departures, no preemption); ties between top-scoring nodes go to the
smallest rank (the simulator's lexicographic ``"%04d-name"`` choice) instead of the seeded
random pick. A pod no node has the room for (requests, pod slot, single GPUs) fails without a
scheduling cycle (the cycle would fail the same way and change nothing). The figures after
every pod feed :func:`schedbench.gpushare.fill.fill_result`, so metrics (at the last event with
arrived GPU requests <= 100% of capacity), time series and extras have exactly the fast
engine's definitions; with an ``atc23-*`` kube profile the placements equal the fast engine's.
"""

from __future__ import annotations

import dataclasses
import heapq
import math
import time as _time
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from numba import njit

from ..config import EP, PluginRef, Profile
from ..scheduler.framework import Code
from ..scheduler.profiles import resolve_profile
from ..scheduler.scheduler import Scheduler
from ..scheduler.snapshot import CPU, GPU_MILLI, MEMORY, MILLI_PER_GPU, PodInfo
from .result import METRIC_KEYS, TIMESERIES_COLUMNS, RunResult, RunSpec
from .trace_cluster import TracePods, has_gpus, trace_cluster

GPU_SHARE = "GpuShare"
TIMESERIES_SAMPLES = 200
#: When a replay's allocation, fragmentation and nodes-in-use metrics are taken:
#: "last_arrival" (the cluster once the whole workload has arrived) or "end" (after every
#: event, departures included: an empty cluster when every pod has a duration).
FIGURES_AT = "last_arrival"


# ------------------------------------------------------------------------------- profiles

def with_gpu_share(profile: Profile) -> Profile:
    """The profile with GpuShare added to PreFilter and Filter (after the others), unless it
    already has it."""
    from ..scheduler.plugins import gpu_share  # noqa: F401  (registers the plugin)

    if GPU_SHARE in profile.names(EP.FILTER):
        return profile
    plugins = {ep: list(refs) for ep, refs in profile.plugins.items()}
    for ep in (EP.PRE_FILTER, EP.FILTER):
        if GPU_SHARE not in [r.name for r in plugins[ep]]:
            plugins[ep].append(PluginRef(GPU_SHARE))
    return dataclasses.replace(profile, plugins=plugins)


def without_post_filter(profile: Profile) -> Profile:
    plugins = {ep: list(refs) for ep, refs in profile.plugins.items()}
    plugins[EP.POST_FILTER] = []
    return dataclasses.replace(profile, plugins=plugins)


def _profile(trace, policy: str):
    cfg, profile, _ = resolve_profile(policy)
    if has_gpus(trace):
        profile = with_gpu_share(profile)
    return cfg, profile


def _uniform_priority(trace) -> bool:
    pods = trace.pods
    return "priority" not in pods.columns or len(pods) == 0 or \
        int(pods["priority"].min()) == int(pods["priority"].max())


def quiet_filter_reasons(framework) -> None:
    """Make a framework explain rejected nodes by plugin only, without reason strings: the
    scheduler's decisions (queueing by rejecting plugin, preemption by status code) stay the
    same, the FitError messages lose their per-reason histogram, and a failed attempt on a
    large cluster stops costing a Python call per node and plugin."""
    plugins = framework.filter_plugins

    def filter_reasons(state, pod, outcome):
        bad = np.flatnonzero(outcome.codes != 0)
        failed_by = outcome.failed_by[bad].tolist()
        by_plugin = {j: (plugins[j].name, ()) for j in set(failed_by)}  # (shared, immutable)
        out = dict(zip(outcome.nodes[bad].tolist(), map(by_plugin.__getitem__, failed_by)))
        explained = outcome.explained
        if explained:
            for node in out:
                why = explained.get(node)
                if why is not None:
                    out[node] = why
        return out

    def filter_reason_groups(state, pod, outcome):
        """The same, grouped (see :meth:`.Scheduler._find_nodes_that_pass_filters`): per
        rejected node (in order) an index into the list of (plugin, reasons) returned."""
        bad = np.flatnonzero(outcome.codes != 0)
        groups = outcome.failed_by[bad].astype(np.int64)
        whys = [(p.name, ()) for p in plugins]
        explained = outcome.explained
        if explained:
            for i, node in enumerate(outcome.nodes[bad].tolist()):
                why = explained.get(node)
                if why is not None:
                    groups[i] = len(whys)
                    whys.append(why)
        return groups, whys

    framework.filter_reasons = filter_reasons
    framework.filter_reason_groups = filter_reason_groups


# -------------------------------------------------------------------------------- metrics

class _Meter:
    """Cluster-wide figures from the snapshot (allocation, fragmentation, nodes in use)."""

    def __init__(self, sched: Scheduler, trace) -> None:
        self.snap = snap = sched.snapshot
        self.gpu_col = snap.resources.get(GPU_MILLI)
        alive = snap.alive
        self.gpu_total = int(snap.gpu_count[alive].sum()) * MILLI_PER_GPU
        self.gpus = int(snap.gpu_count[alive].sum())
        self.cpu_total = int(snap.allocatable[alive, CPU].sum())
        self.mem_total = int(snap.allocatable[alive, MEMORY].sum())
        self.typical = None
        self.model_map = None   # snapshot model id -> the typical pods' model id
        if self.gpu_total > 0:
            from ..gpushare import typical_pods

            self.typical = typical_pods(trace.pods, list(snap.gpu_models.names))

    def gpu_used(self) -> int:
        if self.gpu_col < 0:
            return 0
        return int(self.snap.requested[self.snap.alive, self.gpu_col].sum())

    def frag(self) -> tuple[float, float]:
        """(fragmented milli, idle milli) over the cluster."""
        if self.typical is None:
            return 0.0, 0.0
        from ..gpushare import fragmentation_summary

        cpu_free, gpu_free, model = self.snap.gpu_arrays()
        if self.model_map is not None:
            model = self.model_map[model]
        f, idle = fragmentation_summary(cpu_free, gpu_free, model, self.typical)
        return float(f), float(idle)

    def figures(self) -> dict:
        snap = self.snap
        alive = snap.alive
        used = self.gpu_used()
        gpu_pct = 100.0 * used / self.gpu_total if self.gpu_total else 0.0
        f, idle = self.frag()
        count_alloc = 0
        if self.gpus:
            g = snap.gpu_free[alive]
            count_alloc = int(np.count_nonzero((g >= 0) & (g < MILLI_PER_GPU)))
        return {
            "gpu_alloc_pct": gpu_pct,
            "unallocated_gpu_pct": 100.0 - gpu_pct if self.gpu_total else 0.0,
            "cpu_alloc_pct": 100.0 * int(snap.requested[alive, CPU].sum()) / self.cpu_total
            if self.cpu_total else 0.0,
            "mem_alloc_pct": 100.0 * int(snap.requested[alive, MEMORY].sum()) / self.mem_total
            if self.mem_total else 0.0,
            "frag_amount_pct": 100.0 * f / self.gpu_total if self.gpu_total else 0.0,
            "frag_ratio_pct": 100.0 * f / idle if idle > 0 else 0.0,
            "nodes_used": int(np.count_nonzero(snap.pod_count[alive] > 0)),
            "gpu_count_alloc_pct": 100.0 * count_alloc / self.gpus if self.gpus else 0.0,
        }


def _delay_stats(delays: list[float]) -> dict:
    if not delays:
        return {"delay_p50": 0.0, "delay_p95": 0.0, "delay_p99": 0.0, "delay_mean": 0.0}
    d = np.asarray(delays, np.float64)
    p50, p95, p99 = np.percentile(d, [50, 95, 99])
    return {"delay_p50": float(p50), "delay_p95": float(p95), "delay_p99": float(p99),
            "delay_mean": float(d.mean())}


# --------------------------------------------------------------------------------- replay

@dataclass
class LogEvent:
    time: float
    kind: str            # "bind" | "depart" | "evict" | "fail"
    pod: str             # trace pod id
    node: str = ""
    gpus: tuple[int, ...] = ()


@dataclass
class _Bound:
    node: int
    gpus: tuple[int, ...]
    info: PodInfo


@dataclass
class KubeReplay:
    """One replay of a trace under a kube profile (see the module docstring). ``run()``
    returns the :class:`RunResult`; afterwards ``log`` holds the event log and ``scheduler``
    the final state."""

    trace: object
    spec: RunSpec
    samples: int = TIMESERIES_SAMPLES
    explain: bool = False    # build kube's FitError messages (reason strings) for failures
    keep_log: bool = True    # keep the event log (``replay`` does not: 3 events per pod)
    group_services: bool = True   # one Service per trace group (kube's default spreading)
    log: list[LogEvent] = field(default_factory=list)
    #: ``spec.optimal``'s solver (default :func:`schedbench.optimal.solve_snapshot`)
    solver: object = None

    def run(self) -> RunResult:
        t0 = _time.perf_counter()
        trace, spec = self.trace, self.spec
        cfg, profile = _profile(trace, spec.policy)
        if _uniform_priority(trace):  # nobody can preempt anybody: skip the dry runs
            profile = without_post_filter(profile)
        self.scheduler = sched = Scheduler(
            trace_cluster(trace, services=self.group_services), profile, config=cfg,
            seed=spec.seed)
        if not self.explain:
            quiet_filter_reasons(sched.framework)
        pods = self.pods = TracePods(trace.pods)
        n = len(pods)
        meter = _Meter(sched, trace)
        if meter.typical is not None:
            sched.handle.extra["typical"] = meter.typical
            sched.handle.extra["model_names"] = list(sched.snapshot.gpu_models.names)
        gpu_req = pods.num_gpu * pods.gpu_milli
        order = np.argsort(pods.arrival, kind="stable")
        index_of = {pods.key(i): i for i in range(n)}
        bound: dict[int, _Bound] = {}
        self.bound = bound
        departures: list[tuple[float, int, int]] = []   # (time, seq, pod row)
        seq = 0
        placed_ever = failed = preempted = arrived = attempts = 0
        arrived_gpu = 0
        delays: list[float] = []
        placement: dict[str, str] = {}
        last_arrival = float(pods.arrival.max()) if n else 0.0
        finite = pods.arrival + np.where(np.isnan(pods.duration), 0.0, pods.duration)
        horizon = float(max(last_arrival, finite.max() if n else 0.0))
        step = horizon / self.samples if horizon > 0 else 1.0
        next_sample = 0.0
        rows: list[dict] = []
        at_last_arrival: dict | None = None
        queue = sched.queue
        names = sched.snapshot.node_names
        log = self.log.append if self.keep_log else (lambda event: None)
        reopt = None
        if spec.optimal is not None:
            from .reoptimise import ReplayReoptimiser, active_rows

            reopt = ReplayReoptimiser(trace, spec, cfg, profile, self.group_services, n,
                                      solver=self.solver)

            def reoptimise() -> None:
                figures = meter.figures()
                rows = active_rows(bound, [qp.key for qp in queue.pending()], index_of,
                                   pods.arrival)
                reopt.take(sched.clock, arrived, pods, rows,
                           {i: names[b.node] for i, b in bound.items()},
                           {"placed": len(bound), "nodes_used": figures["nodes_used"],
                            "frag_amount_pct": figures["frag_amount_pct"]
                            if meter.gpu_total else None})

        def counts() -> dict:
            placed = placed_ever - preempted
            return {"placed": placed, "failed": failed + preempted,
                    "pending": arrived - placed_ever - failed}

        def sample(t: float) -> None:
            row = {"time": t, "arrived_gpu_pct": 100.0 * arrived_gpu / meter.gpu_total
                   if meter.gpu_total else 0.0}
            row.update(counts())
            row.update(meter.figures())
            rows.append(row)

        def handle(result) -> None:
            nonlocal placed_ever, failed, preempted, attempts, seq
            attempts += 1
            sched.results.clear()
            i = index_of[result.pod]
            if result.node is not None:
                node = sched.snapshot.node_index[result.node]
                info = sched.snapshot.pods[result.pod]
                bound[i] = _Bound(node, info.gpu_indices, info)
                placed_ever += 1
                delays.append(sched.clock - float(pods.arrival[i]))
                placement[pods.ids[i]] = result.node
                log(LogEvent(sched.clock, "bind", pods.ids[i], result.node,
                                         info.gpu_indices))
                d = float(pods.duration[i])
                if not math.isnan(d):
                    heapq.heappush(departures, (sched.clock + d, seq, i))
                    seq += 1
                sched.last_result.pop(result.pod, None)
            for key in result.victims:
                v = index_of[key]
                b = bound.pop(v, None)
                if b is not None:
                    preempted += 1
                    placement.pop(pods.ids[v], None)
                    log(LogEvent(sched.clock, "evict", pods.ids[v], names[b.node],
                                             b.gpus))
            if result.node is None and spec.fail_unschedulable and \
                    result.nominated_node is None and result.code != Code.ERROR:
                queue.delete(result.pod)
                failed += 1
                sched.last_result.pop(result.pod, None)
                log(LogEvent(sched.clock, "fail", pods.ids[i]))

        ai = 0
        while True:
            # the scheduler runs at the current instant until nothing can be popped
            while True:
                r = sched.schedule_one()
                if r is None:
                    break
                handle(r)
            if reopt is not None and reopt.due(arrived):
                reoptimise()
            if at_last_arrival is None and ai >= n:
                at_last_arrival = meter.figures()
            t_event = math.inf
            if ai < n:
                t_event = float(pods.arrival[order[ai]])
            if departures:
                t_event = min(t_event, departures[0][0])
            t_next = min(t_event, sched.next_retry_time())
            if t_next == math.inf:
                break
            while next_sample < t_next and next_sample <= horizon:
                sample(next_sample)
                next_sample += step
            sched.clock = max(sched.clock, t_next)
            now = sched.clock
            changed = False
            while departures and departures[0][0] <= now:
                _, _, i = heapq.heappop(departures)
                b = bound.pop(i, None)
                if b is None:  # preempted earlier
                    continue
                sched.snapshot.remove_pod(b.info)
                changed = True
                log(LogEvent(now, "depart", pods.ids[i], names[b.node], b.gpus))
                queue.move_on_event("AssignedPodDelete", now, obj=b.info)
            if changed:
                sched.version += 1
            while ai < n and pods.arrival[order[ai]] <= now:
                i = int(order[ai])
                ai += 1
                arrived += 1
                arrived_gpu += int(gpu_req[i])
                sched.enqueue(pods.pod(i))
        end = sched.clock
        while next_sample <= end:
            sample(next_sample)
            next_sample += step
        if not rows or rows[-1]["time"] < end:
            sample(end)
        if at_last_arrival is None or FIGURES_AT == "end":
            at_last_arrival = meter.figures()
        wall = _time.perf_counter() - t0 - (reopt.seconds if reopt is not None else 0.0)
        metrics = dict(counts())
        for k in METRIC_KEYS:
            if k not in metrics and k != "wall_seconds":
                metrics[k] = at_last_arrival[k]
        metrics["wall_seconds"] = wall
        metrics = {k: metrics[k] for k in METRIC_KEYS}
        extra = _delay_stats(delays)
        extra.update({
            "pods": n, "attempts": attempts, "preempted": preempted,
            "pods_per_second": attempts / wall if wall > 0 else 0.0,
            "gpu_count_alloc_pct": at_last_arrival["gpu_count_alloc_pct"],
            "end_time": end, "last_arrival": last_arrival,
            "gpu_alloc_pct_end": rows[-1]["gpu_alloc_pct"],
            "engine": "kube",
        })
        if reopt is not None:
            extra["optimal_every"] = reopt.every
            extra["optimal_seconds"] = reopt.seconds
        if len(rows) > self.samples + 1:  # the run outlasted the expected horizon
            k = math.ceil(len(rows) / self.samples)
            rows = rows[:-1:k] + rows[-1:]
        ts = pd.DataFrame(rows, columns=list(TIMESERIES_COLUMNS))
        return RunResult(spec=spec, trace_name=getattr(trace, "name", ""), metrics=metrics,
                         extra=extra, timeseries=ts, placements=placement,
                         optimal=reopt.points if reopt is not None else None)


def replay(trace, spec: RunSpec, solver=None) -> RunResult:
    """Event-driven replay of ``trace`` under ``spec.policy`` (see the module docstring);
    with ``spec.optimal``, re-optimised snapshots (:mod:`.reoptimise`) by ``solver``."""
    return KubeReplay(trace, spec, keep_log=False, solver=solver).run()


# ----------------------------------------------------------------------------------- fill

class RankedScheduler(Scheduler):
    """A Scheduler whose ties between top-scoring nodes go to the smallest node rank (the
    FGD simulator's lexicographically smallest ``"%04d-name"``)."""

    node_rank: np.ndarray  # per snapshot node index

    def select_host(self, nodes: np.ndarray, totals: np.ndarray) -> int:
        top = nodes[totals == totals.max()]
        if top.size == 1:
            return int(top[0])
        return int(top[np.argmin(self.node_rank[top])])


def snapshot_node_rank(plan, snapshot) -> np.ndarray:
    """The plan's node ranks (per node of the name-sorted node list) by snapshot node index."""
    out = np.zeros(snapshot.num_nodes, np.int64)
    for pos, name in enumerate(plan.node_names):
        out[snapshot.node_index[str(name)]] = plan.node_rank[pos]
    return out


@njit(cache=True)
def _any_room(req, alloc, requested, pod_count, allowed_pods, alive, gpu_free, gpu_count,
              gpu_model, num_gpu, milli, allowed_models, any_model):
    """Whether some live node has a pod slot, room for every positive request column and,
    for a GPU request, ``num_gpu`` GPUs with ``milli`` left of an allowed model."""
    for n in range(alloc.shape[0]):
        if not alive[n] or pod_count[n] + 1 > allowed_pods[n]:
            continue
        ok = True
        for c in range(req.size):
            if req[c] > 0 and req[c] > alloc[n, c] - requested[n, c]:
                ok = False
                break
        if not ok:
            continue
        if num_gpu > 0:
            if gpu_count[n] < num_gpu:
                continue
            if not any_model:
                m = gpu_model[n]
                if m < 0 or m >= allowed_models.size or not allowed_models[m]:
                    continue
            k = 0
            for j in range(gpu_count[n]):
                if gpu_free[n, j] >= milli:
                    k += 1
            if k < num_gpu:
                continue
        return True
    return False


def _surely_unschedulable(snap, info: PodInfo) -> bool:
    """Whether no live node has the room for the pod (a pod slot, its requests, and single
    GPUs for its GPU request): a failure kube's default filters and GpuShare are sure to
    report, decided without the scheduling cycle's per-node diagnosis (the fill experiment does
    not need its message, and a FitError leaves the scheduler's state as it was)."""
    from ..scheduler.plugins.gpu_share import model_mask

    req, _ = snap.request_vectors(info)
    gpu_free = snap.gpu_free if snap.max_gpus else np.full((snap.num_nodes, 1), -1, np.int64)
    return not _any_room(req, snap.allocatable, snap.requested, snap.pod_count,
                         snap.allowed_pods, snap.alive, gpu_free, snap.gpu_count,
                         snap.gpu_model, np.int64(info.num_gpu), np.int64(info.gpu_milli),
                         model_mask(snap, info.gpu_models), not info.gpu_models)


def _model_map(snapshot, model_names: list) -> np.ndarray:
    """Snapshot GPU model id -> id in ``model_names`` (-1 if absent), with a trailing -1 so
    that index -1 maps to -1."""
    ids = {str(m): i for i, m in enumerate(model_names)}
    return np.array([ids.get(m, -1) for m in snapshot.gpu_models.names] + [-1], np.int64)


def fill_experiment(trace, spec: RunSpec) -> RunResult:
    """The FGD paper's fill experiment under a kube profile (see the module docstring). The
    result has the shape of :func:`schedbench.gpushare.fill_experiment`'s (same metrics, time
    series and extras), so the two engines compare directly."""
    from types import SimpleNamespace

    from ..gpushare import node_fragmentation
    from ..gpushare.fill import fill_result, prepare_fill

    t0 = _time.perf_counter()
    plan = prepare_fill(trace, spec.seed, spec.tune)
    cfg, profile = _profile(trace, spec.policy)
    profile = without_post_filter(profile)
    sched = RankedScheduler(trace_cluster(trace), profile, config=cfg, seed=spec.seed)
    snap = sched.snapshot
    sched.node_rank = snapshot_node_rank(plan, snap)
    sched.handle.extra["typical"] = plan.typical
    sched.handle.extra["model_names"] = list(plan.model_names)
    pods = TracePods(plan.pods)
    n = len(pods)
    gpu_req = pods.num_gpu * pods.gpu_milli
    alive = snap.alive
    gpus_total = int(snap.gpu_count[alive].sum())
    mmap = _model_map(snap, plan.model_names)
    typical = plan.typical if gpus_total else None

    def node_frag(lo: int, hi: int) -> np.ndarray:
        cf = snap.allocatable[lo:hi, CPU] - snap.requested[lo:hi, CPU]
        gf = snap.gpu_free[lo:hi]
        return np.asarray(node_fragmentation(cf, gf, mmap[snap.gpu_model[lo:hi]], typical),
                          np.float64)

    frag_n = node_frag(0, snap.num_nodes) if typical is not None else \
        np.zeros(snap.num_nodes, np.float64)
    ev = np.zeros((n + 1, 8), np.int64)
    frag = np.zeros(n + 1, np.float64)
    frag[0] = frag_n.sum()
    ev[0, 2] = c_used = int(snap.requested[alive, CPU].sum())
    ev[0, 3] = m_used = int(snap.requested[alive, MEMORY].sum())
    ev[0, 5] = n_used = int(np.count_nonzero(snap.pod_count[alive] > 0))
    arrived = g_used = busy = placed = failed = 0
    where = np.full(n, -1, np.int64)
    queue = sched.queue
    filters = set(profile.names(EP.FILTER))
    precheck = "NodeResourcesFit" in filters and (GPU_SHARE in filters or not gpus_total)
    for i in range(n):
        arrived += int(gpu_req[i])
        pod = pods.pod(i)
        r = None
        info = snap.pod_info(pod)
        if not (precheck and _surely_unschedulable(snap, info)):
            queue.add(info, sched.clock)  # (Scheduler.enqueue, without compiling it again)
            r = sched.schedule_one()
            sched.results.clear()
            sched.last_result.clear()
        if r is not None and r.node is not None:
            node = snap.node_index[r.node]
            where[i] = node
            placed += 1
            g_used += int(gpu_req[i])
            c_used += int(info.request_vector[CPU])
            m_used += int(info.request_vector[MEMORY])
            if snap.pod_count[node] == 1:
                n_used += 1
            if info.num_gpu:
                g = snap.gpu_free[node]
                busy += sum(1 for j in info.gpu_indices
                            if g[j] + info.gpu_milli == MILLI_PER_GPU)
            if typical is not None:
                frag_n[node] = node_frag(node, node + 1)[0]
        else:
            failed += 1
            if r is not None:
                queue.delete(info.key)
        ev[i + 1] = (arrived, g_used, c_used, m_used, busy, n_used, placed, failed)
        frag[i + 1] = frag_n.sum()
    wall = _time.perf_counter() - t0
    cluster = SimpleNamespace(
        gpu_count=snap.gpu_count[alive], cpu_cap=snap.allocatable[alive, CPU],
        mem_cap=snap.allocatable[alive, MEMORY], names=list(snap.node_names))
    out = SimpleNamespace(node=where, events=ev, frag=frag, cluster=cluster,
                          pods=SimpleNamespace(ids=list(pods.ids), n=n))
    result = fill_result(trace, spec, plan, out, wall)
    result.extra["engine"] = "kube"
    return result
