"""Re-optimising the snapshots of a run with the CP-SAT baseline (:mod:`schedbench.optimal`),
for ``schedbench compare --policies ...,optimal``.

- **fill**: :func:`fill_optimum` is the ``optimal`` run of a (trace, seed): the whole workload
  of the fill run (:func:`schedbench.gpushare.fill.prepare_fill`: the shuffled pods and their
  ``-tuned-`` clones, the same for every policy of that seed) placed at once on the empty
  cluster. Every heuristic's fill run is compared with it at the end of its own run (all pods
  attempted).
- **replay**: :class:`ReplayReoptimiser` re-optimises inside each kube replay, every ``K``
  arrivals and at the last arrival (after that instant's scheduling, when the run's metrics
  are taken): the active pods (bound and waiting) are re-placed from scratch on the nodes (so
  bound pods may move, as with ``allow_moves``) and the optimum is recorded beside the run's
  own figures on that same snapshot.

Objective: pods placed (weighted by priority), then nodes used (lexicographic). Feasibility is
the run's profile's filters (the default profile's for the fill optimum, which every built-in
policy shares) plus GpuShare on GPU traces. The optimal placement is then bound, pod by pod
(larger GPU requests first, each on the GPUs the snapshot's GPU choice gives), on a scheduler
snapshot without pods, to measure its nodes used and fragmentation with the run's own metric
code; when that greedy GPU choice cannot realise the solver's per-GPU packing the
fragmentation is unknown (``None``), the counts stay.
"""

from __future__ import annotations

import math
import time as _time
from collections.abc import Callable, Mapping, Sequence

import numpy as np
import pandas as pd

from ..errors import InputError
from ..scheduler.snapshot import MILLI_PER_GPU, PodInfo, choose_gpus
from .result import (METRIC_KEYS, OPTIMAL_POINT_KEYS, TIMESERIES_COLUMNS, OptimalOptions,
                     RunResult, RunSpec)

#: The objectives of every re-optimisation, lexicographic.
OBJECTIVE = ("placed", "nodes")
#: Statuses that come with a placement.
SOLVED = ("OPTIMAL", "FEASIBLE")
#: Snapshots of a replay when ``OptimalOptions.every`` is 0.
DEFAULT_SNAPSHOTS = 10


def solver_function(solver: Callable | None = None) -> Callable:
    """``solver`` or :func:`schedbench.optimal.solve_snapshot`; a one-line
    :class:`InputError` when the solver (OR-Tools) is not installed."""
    if solver is not None:
        return solver
    try:
        from ..optimal import solve_snapshot
    except ImportError as err:
        raise InputError(f"the optimal policy needs the CP-SAT solver (schedbench.optimal, "
                         f"OR-Tools): {err}", field="--policies") from None
    return solve_snapshot


def every_of(options: OptimalOptions, arrivals: int) -> int:
    """Arrivals between two snapshots: ``options.every``, or (0) ten snapshots."""
    if options.every > 0:
        return int(options.every)
    return max(1, math.ceil(arrivals / DEFAULT_SNAPSHOTS))


def placed_upper(result, infos: Sequence[PodInfo]) -> int | None:
    """An upper bound on the pods placed from the solver's bound of the primary objective:
    the placed count when OPTIMAL; with every pod of the same priority (one weight per pod:
    objective / placed) ``floor(bound / weight)``; None when it cannot be told."""
    n = len(infos)
    if result.status == "OPTIMAL":
        return int(result.placed)
    if result.status not in SOLVED or not infos:
        return None
    if len({i.priority for i in infos}) != 1 or result.placed <= 0 or result.objective <= 0:
        return None
    weight = float(result.objective) / float(result.placed)
    return int(min(n, math.floor(float(result.bound) / weight + 1e-9)))


def _number(v) -> float | None:
    if v is None:
        return None
    v = float(v)
    return v if math.isfinite(v) else None


def point(at: str, time: float | None, arrived: int, infos: Sequence[PodInfo], result,
          placement: dict | None, run: dict | None = None) -> dict:
    """One entry of :attr:`RunResult.optimal` (keys :data:`OPTIMAL_POINT_KEYS`)."""
    solved = result.status in SOLVED
    run = run or {}
    values = {
        "at": at, "time": None if time is None else float(time), "arrived": int(arrived),
        "pods": len(infos), "status": str(result.status),
        "placed": int(result.placed) if solved else None,
        "placed_upper": placed_upper(result, infos),
        "nodes_used": int(result.nodes_used) if solved else None,
        "frag_amount_pct": _number(placement.get("frag_amount_pct")) if placement else None,
        "objective": _number(result.objective) if solved else None,
        "bound": _number(result.bound),
        "gap": _number(result.gap) if solved else None,
        "wall_seconds": float(result.wall_seconds),
        "run_placed": run.get("placed"), "run_nodes_used": run.get("nodes_used"),
        "run_frag_amount_pct": run.get("frag_amount_pct"),
    }
    return {k: values[k] for k in OPTIMAL_POINT_KEYS}


# ------------------------------------------------------------------- measuring a placement


def measure_placement(snapshot, meter, infos: Sequence[PodInfo],
                      assignments: Mapping[str, str],
                      gpu_indices: Mapping[str, Sequence[int]] | None = None) -> dict | None:
    """Bind the assigned pods on ``snapshot`` (which holds no pod of ``infos``), take
    ``meter.figures()`` and unbind them again. A GPU pod goes on the GPUs the solver chose
    (``gpu_indices``) when given; otherwise pods go larger GPU requests first (whole GPUs,
    then shares by milli, descending), each on the GPUs :func:`choose_gpus` picks. None when
    no such GPUs are left for a pod or a node would go over its allocatable (then the
    placement cannot be measured)."""
    gpu_indices = gpu_indices or {}
    by_key = {i.key: i for i in infos}
    order = sorted((k for k in assignments if k in by_key),
                   key=lambda k: (-by_key[k].num_gpu * (by_key[k].gpu_milli >= MILLI_PER_GPU),
                                  -by_key[k].gpu_milli, -by_key[k].num_gpu))
    index = snapshot.node_index
    added: list[PodInfo] = []
    ok = True
    try:
        for key in order:
            info = by_key[key]
            node = index[assignments[key]]
            chosen = tuple(int(j) for j in gpu_indices.get(key, ()))
            if info.num_gpu and chosen:
                free = snapshot.gpu_free[node]
                if len(chosen) != info.num_gpu or \
                        any(j >= int(snapshot.gpu_count[node]) or free[j] < info.gpu_milli
                            for j in chosen):
                    ok = False
                    break
                # bound there with these GPUs: the snapshot takes them as given
                info.pod.spec.node_name = snapshot.node_names[node]
                info.gpu_indices = chosen
            elif info.num_gpu:
                count = int(snapshot.gpu_count[node])
                if not choose_gpus(snapshot.gpu_free[node], count, info.num_gpu,
                                   info.gpu_milli):
                    ok = False
                    break
            snapshot.add_pod(info, node)
            added.append(info)
        if ok:
            alive = snapshot.alive
            ok = not (snapshot.requested[alive] > snapshot.allocatable[alive]).any() and \
                bool((snapshot.pod_count[alive] <= snapshot.allowed_pods[alive]).all())
        figures = meter.figures() if ok else None
    finally:
        for info in reversed(added):
            snapshot.remove_pod(info)
    return figures


# ----------------------------------------------------------------------------------- fill


def fill_optimum(trace, spec: RunSpec, solver: Callable | None = None) -> RunResult:
    """The ``optimal`` run of a fill sweep (module docstring): metrics of the optimal
    placement of the whole workload, ``optimal`` = that one snapshot, ``extra`` with the
    solver's status, objective, bound and gap, and the end figures under the names the fill
    runs give them (``placed_total``, ``nodes_used_end``, ``frag_amount_pct_end``, ...)."""
    from ..gpushare.fill import prepare_fill
    from ..scheduler.scheduler import Scheduler
    from .kube_engine import _Meter, _model_map, _profile, without_post_filter
    from .trace_cluster import TracePods, trace_cluster

    solve = solver_function(solver)
    options = spec.optimal or OptimalOptions()
    t0 = _time.perf_counter()
    plan = prepare_fill(trace, spec.seed, spec.tune)
    cfg, profile = _profile(trace, "default")
    sched = Scheduler(trace_cluster(trace), without_post_filter(profile), config=cfg,
                      seed=spec.seed)
    snap = sched.snapshot
    pods = TracePods(plan.pods)
    infos = [snap.pod_info(pods.pod(i), arrival=i) for i in range(len(pods))]
    meter = _Meter(sched, trace)
    if meter.gpu_total:
        meter.typical = plan.typical
        meter.model_map = _model_map(snap, plan.model_names)
    hint_policy, hint = best_fill_placement(trace, spec, options.hints, pods)
    result = solve(snap, infos, framework=sched.framework, objective=OBJECTIVE,
                   time_limit=options.time_limit, workers=options.workers, seed=spec.seed,
                   hint=hint)
    solved = result.status in SOLVED
    figures = measure_placement(snap, meter, infos, result.assignments,
                                getattr(result, "gpu_indices", None)) if solved else None
    empty = meter.figures()
    n = len(infos)
    placed = int(result.placed) if solved else 0
    metrics = {k: 0.0 for k in METRIC_KEYS}
    metrics.update({k: v for k, v in (figures or empty).items() if k in metrics})
    if figures is None and solved:      # counts known, the GPU packing not realised
        for k in ("gpu_alloc_pct", "unallocated_gpu_pct", "frag_amount_pct",
                  "frag_ratio_pct", "cpu_alloc_pct", "mem_alloc_pct"):
            metrics[k] = math.nan
    metrics.update({"placed": placed, "failed": n - placed, "pending": 0,
                    "nodes_used": int(result.nodes_used) if solved else 0,
                    "wall_seconds": _time.perf_counter() - t0})
    metrics = {k: metrics[k] for k in METRIC_KEYS}
    extra = {
        "engine": "cp-sat", "hint": hint_policy,
        "status": str(result.status), "objective": float(result.objective),
        "bound": float(result.bound), "solver_gap": float(result.gap),
        "solve_seconds": float(result.wall_seconds), "time_limit": float(options.time_limit),
        "workers": int(options.workers), "attempted": n,
        "original_pods": int(plan.original_count),
        "placed_total": placed, "failed_total": n - placed,
        "nodes_used_end": metrics["nodes_used"],
        "frag_amount_pct_end": metrics["frag_amount_pct"],
        "unallocated_gpu_pct_end": metrics["unallocated_gpu_pct"],
        "gpu_alloc_pct_end": metrics["gpu_alloc_pct"],
    }
    pt = point("end", None, n, infos, result, figures)
    return RunResult(spec=spec, trace_name=getattr(trace, "name", ""), metrics=metrics,
                     extra=extra, timeseries=pd.DataFrame(columns=list(TIMESERIES_COLUMNS)),
                     placements=dict(result.assignments) if solved else {}, optimal=[pt])


def best_fill_placement(trace, spec: RunSpec, policies: Sequence[str],
                        pods) -> tuple[str, str | dict[str, str]]:
    """(policy, hint) for the fill optimum: the placement of the fill run (same trace, seed
    and workload) of the policy among ``policies`` that placed the most pods (then used the
    fewest nodes; the first on ties), as ``{"ns/pod": node}``; ``("best-fit", "best-fit")``
    (the solver runs it) without policies."""
    from .. import gpushare
    from . import kube_engine

    best: tuple | None = None
    for policy in policies:
        sub = RunSpec(spec.trace, policy, spec.seed, "fill", spec.nodes, spec.tune)
        engine = gpushare.fill_experiment if policy.startswith("atc23-") else \
            kube_engine.fill_experiment
        placements = engine(trace, sub).placements or {}
        key = (len(placements), -len(set(placements.values())))
        if best is None or key > best[0]:
            best = (key, policy, placements)
    if best is None:
        return "best-fit", "best-fit"
    key_of = {pods.ids[i]: pods.key(i) for i in range(len(pods))}
    return best[1], {key_of[pid]: node for pid, node in best[2].items()}


def fill_end_figures(result: RunResult) -> None:
    """Add ``nodes_used_end`` (nodes hosting a pod once every pod was attempted) to a fill
    run's extras, from its placements (a fill run starts from an empty cluster and removes no
    pod)."""
    if result.placements is not None and "nodes_used_end" not in result.extra:
        result.extra["nodes_used_end"] = len(set(result.placements.values()))


# --------------------------------------------------------------------------------- replay


class ReplayReoptimiser:
    """The snapshots of one kube replay (module docstring). ``due`` says whether a snapshot
    is to be taken after the scheduling of the current instant; ``take`` re-optimises it.
    ``seconds`` is the time spent here (the replay leaves it out of its own wall time)."""

    def __init__(self, trace, spec: RunSpec, cfg, profile, services: bool, arrivals: int,
                 solver: Callable | None = None) -> None:
        from ..scheduler.scheduler import Scheduler
        from .kube_engine import _Meter
        from .trace_cluster import trace_cluster

        t0 = _time.perf_counter()
        self.solve = solver_function(solver)
        self.spec = spec
        self.options = spec.optimal or OptimalOptions()
        self.every = every_of(self.options, arrivals)
        self.arrivals = arrivals
        self.next_at = min(self.every, arrivals)
        self.last = 0
        self.points: list[dict] = []
        # the nodes without any pod: the active pods are re-placed from scratch on them
        self.blank = Scheduler(trace_cluster(trace, services=services), profile, config=cfg,
                               seed=spec.seed)
        self.meter = _Meter(self.blank, trace)
        self.seconds = _time.perf_counter() - t0

    def due(self, arrived: int) -> bool:
        return arrived > self.last and (arrived >= self.next_at or arrived >= self.arrivals)

    def take(self, time: float, arrived: int, pods, rows: Sequence[int],
             bound_nodes: Mapping[int, str], run: dict) -> dict:
        """Re-place the pods of trace rows ``rows`` (bound and waiting, in arrival order);
        ``bound_nodes``: row -> node of the bound ones (the solver's hint: the run's own
        placement); ``run``: the run's placed / nodes_used / frag_amount_pct there."""
        t0 = _time.perf_counter()
        snap = self.blank.snapshot
        infos = [snap.pod_info(pods.pod(i), arrival=k) for k, i in enumerate(rows)]
        hint = {pods.key(i): node for i, node in bound_nodes.items()}
        result = self.solve(snap, infos, framework=self.blank.framework, objective=OBJECTIVE,
                            time_limit=self.options.time_limit, workers=self.options.workers,
                            seed=self.spec.seed, hint=hint)
        figures = None
        if result.status in SOLVED:
            figures = measure_placement(snap, self.meter, infos, result.assignments,
                                        getattr(result, "gpu_indices", None))
            if figures is not None and not self.meter.gpu_total:
                figures = dict(figures, frag_amount_pct=None)
        pt = point(f"arrival {arrived}", time, arrived, infos, result, figures, run)
        self.points.append(pt)
        self.last = arrived
        self.next_at = (arrived // self.every + 1) * self.every
        self.seconds += _time.perf_counter() - t0
        return pt


def active_rows(bound: Mapping[int, object], waiting_keys, index_of: Mapping[str, int],
                arrival: np.ndarray) -> list[int]:
    """Trace rows of the bound and waiting pods, by arrival time then row."""
    rows = set(bound)
    rows.update(index_of[k] for k in waiting_keys)
    return sorted(rows, key=lambda i: (float(arrival[i]), i))

