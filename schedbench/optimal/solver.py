"""The optimal placement of a batch of pending pods: lexicographic CP-SAT solves.

:func:`solve` (a :class:`~schedbench.cluster.Cluster`) and :func:`solve_snapshot` (a live
scheduler snapshot, for replays) build the :class:`~.instance.Instance` (pod classes, the
feasibility mask from the profile's filter plugins), the CP-SAT model (:mod:`.model`), and
optimise the objectives in order: stage ``k`` optimises objective ``k`` with the values
reached by the earlier stages kept as constraints (fixed when proven optimal, at least as good
otherwise), from the previous stage's solution as a hint. The first stage starts from a
heuristic placement: one of schedbench's policies run through the real scheduler on a copy
(preemption off), or given assignments.

Objectives: ``placed`` (maximise the placed pods weighted by priority level: 1 for the lowest
priority present, 2 for the next, ...), ``nodes`` (minimise nodes hosting a pod), ``balance``
(minimise the peak utilisation over nodes and modelled resources, in per-mille; reported in
percent), ``preferences`` (maximise NodeAffinity's preferred-term weights of the chosen nodes).
Without ``placed`` among the objectives every pending pod must be placed (INFEASIBLE if they
cannot all be).

Time and determinism: ``time_limit`` (seconds for the whole solve: model building, the
hint, every stage; a stage that ends early leaves its time to the next) and ``workers`` are
CP-SAT's; ``seed`` is its ``random_seed`` and the hint's seed. With ``deterministic=True``
(the default) CP-SAT runs its workers interleaved (``interleave_search``) and each stage stops
on a *deterministic* limit (``max_deterministic_time``, :data:`DET_UNITS_PER_SECOND` work units
per second of ``time_limit``) with a wall-clock guard at 2 x ``time_limit``: the same input,
seed and worker count give the same placement bit for bit unless the guard fires (a machine
slower or busier than the budget assumes; then the result can vary). ``deterministic=False``
runs CP-SAT's parallel portfolio on wall time (usually stronger in the same time, what the
benchmarks measure): a result proven OPTIMAL has the same objective values, but a
time-limited FEASIBLE result, and which of several optimal placements is returned, can vary
from run to run. Large models (above :data:`PRESOLVE_VARS` variables) are solved without
CP-SAT's presolve, which on them can outlast the time limit; a starting placement that meets a
stage's relaxation bound (a batch that fits whole) is taken without search.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Mapping, Sequence

import numpy as np
from ortools.sat.python import cp_model

from ..cluster import Cluster
from ..config import Profile
from ..errors import InputError
from ..scheduler.framework import Framework, Handle
from ..scheduler.snapshot import GPU_INDEX, NodeSnapshot, PodInfo
from .instance import Instance, build_instance
from .model import MAXIMISE, OBJECTIVES, PlacementModel
from .result import OptimalResult

#: Above this many (class, node) variables ``method="auto"`` uses the decomposition.
LNS_THRESHOLD = 150_000
#: Up to this many variables the stage bounds come from the LP relaxation (GLOP), above it
#: from the aggregated relaxation; above :data:`PRESOLVE_VARS` CP-SAT's presolve is off (on
#: such models it can take longer than the whole time limit before the search starts).
LP_VARS = 12_000
#: Deterministic mode: CP-SAT work units per second of ``time_limit`` (two interleaved
#: workers count double; on our shared 2-core machine a unit took 2-10 s of wall time).
DET_UNITS_PER_SECOND = 0.5
PRESOLVE_VARS = 8_000
_STATUS = {cp_model.OPTIMAL: "OPTIMAL", cp_model.FEASIBLE: "FEASIBLE",
           cp_model.INFEASIBLE: "INFEASIBLE", cp_model.UNKNOWN: "UNKNOWN"}


def parse_objectives(objective: str | Sequence[str]) -> list[str]:
    """``"placed,nodes"`` or a sequence of names -> the list, validated."""
    names = [s.strip() for s in objective.split(",")] if isinstance(objective, str) \
        else [str(s).strip() for s in objective]
    names = [n for n in names if n]
    if not names:
        raise InputError("at least one objective is needed", field="--objective")
    for n in names:
        if n not in OBJECTIVES:
            raise InputError(f"unknown objective {n!r}; known: {', '.join(OBJECTIVES)}",
                             field="--objective")
    if len(set(names)) != len(names):
        raise InputError(f"an objective is repeated: {','.join(names)}", field="--objective")
    return names


def _check_options(time_limit: float, workers: int, method: str) -> None:
    if not (time_limit > 0) or time_limit != time_limit:
        raise InputError(f"must be positive, got {time_limit}", field="--time-limit")
    if workers < 1:
        raise InputError(f"must be at least 1, got {workers}", field="--workers")
    if method not in ("auto", "exact", "lns"):
        raise InputError(f"unknown method {method!r} (auto, exact, lns)", field="--method")


def _uses_gpus(snapshot: NodeSnapshot, pods: Sequence[PodInfo]) -> bool:
    return bool(snapshot.max_gpus) or any(p.num_gpu for p in pods)


def _profile_for(profile: Profile | None, gpu: bool) -> tuple[object, Profile]:
    from ..config import default_configuration
    from ..replay.kube_engine import with_gpu_share

    cfg = default_configuration()
    profile = profile or cfg.profile()
    return cfg, with_gpu_share(profile) if gpu else profile


# ------------------------------------------------------------------------------ public API


def solve(cluster: Cluster, pending: Sequence | None = None, *,
          objective: str | Sequence[str] = ("placed", "nodes"), time_limit: float = 10.0,
          workers: int = 2, seed: int = 0, hint: str | Mapping[str, str] | None = "best-fit",
          allow_moves: bool = False, profile: Profile | None = None, method: str = "auto",
          deterministic: bool = True) -> OptimalResult:
    """Place ``pending`` (default: the cluster's pending pods) on the cluster's nodes, with its
    bound pods where they are (``allow_moves``: they may move to other nodes, never be
    evicted). Feasibility is the scheduler's (``profile``, default kube-scheduler's default
    profile; GpuShare joins it when the cluster has GPUs, as in replays). See the module
    docstring for the objectives, time limit and determinism; ``method`` "auto" (exact up to
    :data:`LNS_THRESHOLD` variables), "exact" or "lns"."""
    from ..scheduler.scheduler import Scheduler

    _check_options(time_limit, workers, method)
    t0 = time.perf_counter()
    pending = list(cluster.pending_pods() if pending is None else pending)
    keys = [p.key for p in pending]
    if len(set(keys)) != len(keys):
        dup = next(k for k in keys if keys.count(k) > 1)
        raise InputError("pod given twice in the batch", obj=f"Pod/{dup}")
    gpu = any(n.allocatable.get("alibabacloud.com/gpu-count") for n in cluster.nodes) or any(
        "alibabacloud.com/gpu-count" in p.metadata.annotations
        or "alibabacloud.com/gpu-milli" in p.metadata.annotations for p in pending)
    cfg, prof = _profile_for(profile, gpu)
    for p in pending:
        if p.spec.node_name:
            raise InputError("is bound (spec.nodeName set); the batch takes pending pods",
                             obj=p.ref, field="spec.nodeName")
    sched = Scheduler(cluster, prof, config=cfg, seed=seed, fused=False)
    snap = sched.snapshot
    infos = [snap.pod_info(p, arrival=i) for i, p in enumerate(pending)]
    return _solve(snap, infos, sched.framework, objective=objective, time_limit=time_limit,
                  workers=workers, seed=seed, hint=hint, allow_moves=allow_moves,
                  method=method, deterministic=deterministic, t0=t0, hint_config=cfg)


def solve_snapshot(snapshot: NodeSnapshot, pods: Sequence[PodInfo], *, framework=None,
                   objective: str | Sequence[str] = ("placed", "nodes"),
                   time_limit: float = 10.0, workers: int = 2, seed: int = 0,
                   hint: str | Mapping[str, str] | None = "best-fit", allow_moves: bool = False,
                   profile: Profile | None = None, method: str = "auto",
                   deterministic: bool = True) -> OptimalResult:
    """:func:`solve` on a live scheduler snapshot (a replay's), for ``pods`` not bound in it;
    ``framework``: the filter plugins that define feasibility (default: ``profile``, or the
    default profile, over the snapshot, with GpuShare when GPUs are in play). The snapshot is
    left as it was."""
    _check_options(time_limit, workers, method)
    t0 = time.perf_counter()
    pods = list(pods)
    for p in pods:
        if p.node >= 0 or p.key in snapshot.pods:
            raise InputError("is bound in the snapshot; the batch takes pending pods",
                             obj=f"Pod/{p.key}")
    if framework is None:
        _, prof = _profile_for(profile, _uses_gpus(snapshot, pods))
        cluster = Cluster(nodes=[snapshot.nodes[i] for i in snapshot.alive_nodes().tolist()])
        framework = Framework(prof, Handle(snapshot, cluster, np.random.default_rng(seed)))
    return _solve(snapshot, pods, framework, objective=objective, time_limit=time_limit,
                  workers=workers, seed=seed, hint=hint, allow_moves=allow_moves,
                  method=method, deterministic=deterministic, t0=t0, hint_config=None)


# ---------------------------------------------------------------------------------- solving


def _solve(snap: NodeSnapshot, pods: list[PodInfo], framework: Framework, *, objective,
           time_limit, workers, seed, hint, allow_moves, method, deterministic, t0,
           hint_config) -> OptimalResult:
    names = parse_objectives(objective)
    require_all = "placed" not in names
    moved_pods: list[PodInfo] = []
    home_node: dict[str, int] = {}
    if allow_moves:
        moved_pods = [p for p in list(snap.pods.values())]
        for p in moved_pods:
            home_node[p.key] = p.node
            snap.remove_pod(p)  # (its GPUs are kept on the pod for the way back)
            p.pod.spec.node_name = ""  # free to go anywhere (NodeName)
    try:
        batch = pods + moved_pods
        inst = build_instance(framework, batch, must_place=frozenset(home_node),
                              preferences="preferences" in names)
        stage_names = names + (["moves"] if allow_moves else [])
        home = None
        if allow_moves:
            home = {}
            pos = {int(n): i for i, n in enumerate(inst.nodes.tolist())}
            cls_of = _class_of(inst)
            for p_i, p in enumerate(batch):
                if p.key in home_node:
                    k = (cls_of[p_i], pos[home_node[p.key]])
                    home[k] = home.get(k, 0) + 1
        if method == "auto":
            method = "lns" if inst.num_vars > LNS_THRESHOLD else "exact"
        hint_x = _hint_counts(inst, framework, batch, hint, seed, hint_config, home_node,
                              stage_names if not allow_moves else None)
        deadline = t0 + time_limit
        if method == "lns":
            from .decompose import solve_lns

            out, pm = solve_lns(inst, stage_names, hint_x, deadline=deadline, workers=workers,
                                seed=seed, deterministic=deterministic, time_limit=time_limit,
                                require_all=require_all, home=home)
        else:
            pm = PlacementModel(inst, stage_names, require_all=require_all, home=home)
            from .bounds import lp_bound

            small = inst.num_vars <= LP_VARS
            out = _solve_stages(pm, stage_names, hint_x,
                                clock=StageClock(t0, time_limit, deterministic),
                                workers=workers, seed=seed, deterministic=deterministic,
                                lp_bounds=(lambda name: lp_bound(
                                    pm, name, min(2.0, 0.1 * time_limit))) if small else None)
        status, X, gpu_sol, bound = out
        return _result(inst, pm, names, status, X, gpu_sol, bound, batch, len(pods),
                       home_node, t0, method)
    finally:
        for p in moved_pods:
            if p.node >= 0:
                snap.remove_pod(p)
            p.pod.spec.node_name = snap.node_names[home_node[p.key]]
            snap.add_pod(p, home_node[p.key])


def _class_of(inst: Instance) -> list[int]:
    out = [0] * len(inst.pods)
    for ci, c in enumerate(inst.classes):
        for i in c.members:
            out[i] = ci
    return out


def solver_parameters(solver: cp_model.CpSolver, seconds: float, workers: int, seed: int,
                      deterministic: bool, wall_left: float | None = None,
                      presolve: bool = True) -> None:
    """CP-SAT's parameters for a solve of ``seconds``: deterministic work units (interleaved
    workers) with ``wall_left`` wall seconds as a guard, or wall seconds."""
    p = solver.parameters
    p.random_seed = seed
    p.num_workers = workers
    if presolve is False:
        p.cp_model_presolve = False
    if deterministic:
        p.interleave_search = True
        p.max_deterministic_time = max(seconds, 0.01)
        p.max_time_in_seconds = max(wall_left if wall_left is not None else 3 * seconds, 0.05)
    else:
        p.max_time_in_seconds = max(seconds, 0.01)


class StageClock:
    """Time for the lexicographic stages. Wall-clock mode: each stage gets 60 % of the
    wall time left (all of it for the last stage). Deterministic mode: the same shares of
    ``DET_UNITS_PER_SECOND x time_limit`` of CP-SAT's deterministic work units, what a stage
    leaves unused passed on (so budgets do not depend on the machine's speed), with a
    wall-clock guard at 2 x ``time_limit`` from the start."""

    def __init__(self, t0: float, time_limit: float, deterministic: bool) -> None:
        self.t0, self.time_limit, self.deterministic = t0, time_limit, deterministic
        self.det_left = time_limit * DET_UNITS_PER_SECOND

    def budget(self, stages_left: int) -> tuple[float, float | None]:
        if self.deterministic:
            share = self.det_left * (0.6 if stages_left > 1 else 1.0)
            guard = max(self.t0 + 2 * self.time_limit - time.perf_counter(), 0.05)
            return max(share, 0.01), guard
        left = max(self.t0 + self.time_limit - time.perf_counter(), 0.0)
        if stages_left > 1:
            left *= 0.6
        return max(left, min(0.05 * self.time_limit, 0.5)), None

    def spent(self, solver: cp_model.CpSolver) -> None:
        if self.deterministic:
            self.det_left = max(self.det_left - solver.deterministic_time, 0.0)


def _solve_stages(pm: PlacementModel, names: list[str], hint_x: np.ndarray | None, *,
                  clock: StageClock, workers, seed, deterministic, lp_bounds=None):
    """Lexicographic stages on the one model; returns (status, X[C, N], GPU solution,
    primary bound). ``lp_bounds(name) -> float | None``: an extra valid bound of a stage
    (the LP relaxation), combined with CP-SAT's."""
    from .bounds import better_bound, proven

    model = pm.model
    status_all = "OPTIMAL"
    X = None
    gpu_sol = None
    primary_bound = 0.0
    current = hint_x
    pm.stage_bounds = {}
    from .decompose import relaxation_bound
    from .warmstart import check_start

    start_gpu = None
    counts = np.array([c.count for c in pm.inst.classes], np.int64)
    if hint_x is not None and "moves" not in names and (
            "placed" in names or (hint_x.sum(axis=1) == counts).all()):
        start_gpu = check_start(pm.inst, hint_x)
    for k, name in enumerate(names):
        pm.set_objective(name)
        _set_hint(pm, current)
        # a start that meets a cheap bound needs no search (a batch that all fits)
        if start_gpu is not None and current is not None:
            cheap = relaxation_bound(pm, name, _all_placed(pm, names, current))
            raw = _raw_value(pm, current, name)
            if proven(name, raw, cheap):
                X, gpu_sol = current, start_gpu
                pm.stage_bounds[name] = float(raw)
                if k == 0:
                    primary_bound = float(raw)
                pm.fix(name, raw)
                continue
        # the relaxation's bound first (it is part of the stage's time): the LP, or on
        # large models the aggregated relaxation of :mod:`.decompose`
        if lp_bounds is not None:
            extra = lp_bounds(name)
        else:
            extra = relaxation_bound(pm, name, _all_placed(pm, names, current)
                                     if current is not None else "placed" not in names)
        solver = cp_model.CpSolver()
        seconds, guard = clock.budget(len(names) - k)
        solver_parameters(solver, seconds, workers, seed, deterministic, guard,
                          presolve=pm.inst.num_vars <= PRESOLVE_VARS)
        st = solver.Solve(model)
        clock.spent(solver)
        if st == cp_model.MODEL_INVALID:
            raise RuntimeError(f"invalid CP-SAT model: {model.Validate()}")
        s = _STATUS.get(st, "UNKNOWN")
        bound = float(solver.BestObjectiveBound())
        if extra is not None and s != "OPTIMAL":
            bound = better_bound(name, bound, extra)
        if k == 0:
            primary_bound = bound
        pm.stage_bounds[name] = bound
        if s in ("OPTIMAL", "FEASIBLE"):
            X = _counts(pm, solver)
            gpu_sol = _gpu_values(pm, solver)
            raw = int(round(solver.ObjectiveValue()))
            if s == "FEASIBLE" and proven(name, raw, bound):
                s = "OPTIMAL"
            if s == "OPTIMAL":
                pm.stage_bounds[name] = float(raw)
            current = X
            if s != "OPTIMAL":
                status_all = "FEASIBLE"
            pm.fix(name, raw)
        elif start_gpu is not None and current is not None:
            # no solution in time: the start (shown feasible) stands
            X, gpu_sol = current, (gpu_sol if X is not None else start_gpu)
            status_all = "FEASIBLE"
            pm.fix(name, _raw_value(pm, current, name))
        else:
            if k == 0:
                return s, None, None, primary_bound
            status_all = "FEASIBLE"  # keep the previous stage's placement
            break
    return status_all, X, gpu_sol, primary_bound


def _raw_value(pm: PlacementModel, X: np.ndarray, name: str) -> int:
    """Objective ``name`` of counts ``X`` in the model's integer units."""
    v = evaluate(pm.inst, X, [name])[name]
    return int(round(v * 10)) if name == "balance" else int(round(v))


def _all_placed(pm: PlacementModel, names: list[str], X: np.ndarray) -> bool:
    """Whether every pod must be, or is, placed (for the relaxation bounds)."""
    return "placed" not in names or int(X.sum()) == sum(c.count for c in pm.inst.classes)


def _counts(pm: PlacementModel, solver: cp_model.CpSolver) -> np.ndarray:
    X = np.zeros(pm.inst.mask.shape, np.int64)
    if pm.x:
        keys = list(pm.x)
        vals = solver.Values([pm.x[k] for k in keys]).to_numpy() if hasattr(
            solver, "Values") else [solver.Value(pm.x[k]) for k in keys]
        for (c, n), v in zip(keys, vals):
            X[c, n] = int(v)
    return X


def _gpu_values(pm: PlacementModel, solver) -> tuple[dict, dict] | None:
    if not pm.inst.gpu:
        return None
    s = {k: int(solver.Value(v)) for k, v in pm.s.items()}
    w = {k: int(solver.Value(v)) for k, v in pm.w.items()}
    return s, w


def _set_hint(pm: PlacementModel, X: np.ndarray | None) -> None:
    model = pm.model
    model.ClearHints()
    if X is None:
        return
    for (c, n), v in pm.x.items():
        model.AddHint(v, int(min(X[c, n], pm.inst.ub[c, n])))
    for n, u in pm.u.items():
        if not isinstance(u, int):
            model.AddHint(u, int(X[:, n].sum() > 0))


# ------------------------------------------------------------------------------------ hints


def _hint_counts(inst: Instance, framework: Framework, batch: list[PodInfo], hint, seed,
                 config, home_node: dict[str, int], names: list[str] | None = None
                 ) -> np.ndarray | None:
    """The hint as counts per (class, node): the policy's placement (or the given one), or
    the first-fit-decreasing start of :mod:`.warmstart` when that is better for the
    objectives; the nodes of each interchangeable group reordered to respect the symmetry
    breaking."""
    if hint is None:
        return None
    if isinstance(hint, str):
        assignments = heuristic_assignments(framework, batch, hint, seed, config, home_node)
    else:
        assignments = dict(hint)
    pos = {int(n): i for i, n in enumerate(inst.nodes.tolist())}
    snap = inst.snapshot
    cls_of = _class_of(inst)
    X = np.zeros(inst.mask.shape, np.int64)
    for i, p in enumerate(batch):
        name = assignments.get(p.key)
        if name is None:
            continue
        idx = snap.node_index.get(name)
        if idx is None or idx not in pos:
            raise InputError(f"hint names node {name!r}, which is not in the cluster",
                             obj=f"Pod/{p.key}", field="hint")
        X[cls_of[i], pos[idx]] += 1
    X = np.minimum(X, inst.ub)
    if names is not None and not home_node:
        from .warmstart import ORDERS, greedy_counts

        for order_by in ORDERS:
            G = greedy_counts(inst, order_by)
            if G is not None and _start_key(inst, G, names) > _start_key(inst, X, names):
                X = G
    return _in_symmetry_order(inst, X)


def _start_key(inst: Instance, X: np.ndarray, names: list[str]) -> tuple:
    """Lexicographic quality of a starting placement (larger is better); every pod placed
    first when the objectives require it."""
    values = evaluate(inst, X, names)
    key = [] if "placed" in names else [int(X.sum())]
    return tuple(key + [values[n] if MAXIMISE[n] else -values[n] for n in names])


def _in_symmetry_order(inst: Instance, X: np.ndarray) -> np.ndarray:
    """The placement with the nodes of each interchangeable group reordered so that it
    respects the model's symmetry breaking (pod counts non-increasing in node order)."""
    from .model import node_groups

    X = X.copy()
    for group in node_groups(inst):
        rows = X[:, group]
        order = sorted(range(len(group)), key=lambda j: -int(rows[:, j].sum()))
        X[:, group] = rows[:, order]
    return X


def _pod_copy(pod):
    """A copy of a pod that a scheduler run may change (node name, status, annotations)
    without touching the original."""
    q = copy.copy(pod)
    q.spec = copy.copy(pod.spec)
    q.metadata = copy.copy(pod.metadata)
    q.metadata.annotations = dict(pod.metadata.annotations)
    q.status = copy.deepcopy(pod.status)
    return q


def heuristic_assignments(framework: Framework, batch: list[PodInfo], policy: str, seed: int,
                          config=None, home_node: dict[str, int] | None = None
                          ) -> dict[str, str]:
    """Run policy ``policy`` (a built-in policy name or a KubeSchedulerConfiguration file)
    through :class:`~schedbench.scheduler.scheduler.Scheduler` on a copy of the cluster, the
    batch queued in order, preemption off; returns pod key -> node name of the pods it
    placed (pods in ``home_node`` stay bound where they are)."""
    from ..replay.kube_engine import with_gpu_share, without_post_filter
    from ..scheduler.profiles import resolve_profile
    from ..scheduler.scheduler import Scheduler

    snap = framework.handle.snapshot
    base = framework.handle.cluster
    cfg, prof, _ = resolve_profile(policy)
    if "GpuShare" in [p.name for p in framework.filter_plugins]:
        prof = with_gpu_share(prof)
    prof = without_post_filter(prof)
    home_node = home_node or {}
    nodes = [snap.nodes[i] for i in snap.alive_nodes().tolist()]  # not changed by a run
    bound = []
    for p in list(snap.pods.values()):
        q = _pod_copy(p.pod)
        q.spec.node_name = snap.node_names[p.node]
        bound.append(q)
    pending = []
    for p in batch:
        q = _pod_copy(p.pod)
        if p.key in home_node:
            q.spec.node_name = snap.node_names[home_node[p.key]]
            bound.append(q)
        else:
            q.spec.node_name = ""
            q.metadata.annotations.pop(GPU_INDEX, None)
            pending.append(q)
    cluster = Cluster(nodes=nodes, pods=bound,
                      namespaces=list(base.namespaces) if base else [],
                      services=list(base.services) if base else [],
                      replica_sets=list(base.replica_sets) if base else [],
                      deployments=list(base.deployments) if base else [],
                      priority_classes=list(base.priority_classes) if base else [])
    sched = Scheduler(cluster, prof, config=cfg, seed=seed)
    snap2 = sched.snapshot
    nodes2 = snap2.alive_nodes()
    for q in pending:  # one pass in order, as a fill run does
        if not _may_fit(snap2, snap2.pod_info(q), nodes2):
            continue  # (no scheduling cycle: its failure diagnosis is the costly part)
        sched.enqueue(q)
        sched.schedule_one()
    return {q.key: q.spec.node_name for q in pending if q.spec.node_name}


def _may_fit(snap: NodeSnapshot, info: PodInfo, nodes: np.ndarray) -> bool:
    """Whether some node has room for the pod by NodeResourcesFit's and GpuShare's filter
    kernels (every request column, a pod slot, single GPUs); a pod that fails this fails
    the scheduler's cycle too."""
    from ..scheduler.plugins.gpu_share import gpu_filter_codes
    from ..scheduler.plugins.node_resources_fit import fit_codes

    req, _ = snap.request_vectors(info)
    ok = fit_codes(snap, nodes, req, req > 0) == 0
    if info.num_gpu and ok.any():
        ok &= gpu_filter_codes(snap, nodes, info.num_gpu, info.gpu_milli,
                               info.gpu_models) == 0
    return bool(ok.any())


# ---------------------------------------------------------------------------------- results


def _placement(inst: Instance, X: np.ndarray, gpu_sol, home_node: dict[str, int]
               ) -> tuple[dict[int, int], dict[int, tuple[int, ...]]]:
    """Batch position -> instance node position; batch position -> GPU indices. Within a
    class, pods that may stay on their home node do; the others are placed in input order on
    the nodes in node order."""
    where: dict[int, int] = {}
    pos = {int(n): i for i, n in enumerate(inst.nodes.tolist())}
    for ci, c in enumerate(inst.classes):
        left = X[ci].copy()
        members = list(c.members)
        rest = []
        for i in members:
            h = home_node.get(inst.pods[i].key)
            if h is not None and left[pos[h]] > 0:
                where[i] = pos[h]
                left[pos[h]] -= 1
            else:
                rest.append(i)
        nodes = [n for n in range(left.size) for _ in range(int(left[n]))]
        for i, n in zip(rest, nodes):
            where[i] = n
    gpus: dict[int, tuple[int, ...]] = {}
    if gpu_sol is not None:
        s, w = gpu_sol
        by_node: dict[int, list[int]] = {}
        for i in sorted(where):
            by_node.setdefault(where[i], []).append(i)
        cls_of = _class_of(inst)
        for n, members in by_node.items():
            share_left = {(c, g): v for (c, nn, g), v in s.items() if nn == n and v}
            whole = [g for (nn, g), v in sorted(w.items()) if nn == n and v]
            for i in members:
                cls = inst.classes[cls_of[i]]
                if not cls.num_gpu:
                    continue
                if cls.gpu_share:
                    g = min(g for (c, g), v in share_left.items() if c == cls_of[i] and v > 0)
                    share_left[cls_of[i], g] -= 1
                    gpus[i] = (g,)
                else:
                    gpus[i] = tuple(whole[: cls.num_gpu])
                    whole = whole[cls.num_gpu:]
    return where, gpus


def evaluate(inst: Instance, X: np.ndarray, names: Sequence[str]) -> dict[str, float]:
    """Every objective's value for the placement counts ``X`` (moves not included)."""
    out: dict[str, float] = {}
    used = inst.occupied | (X.sum(axis=0) > 0)
    for name in names:
        if name == "placed":
            out[name] = float(sum(c.weight * int(X[ci].sum())
                                  for ci, c in enumerate(inst.classes)
                                  if not c.must_place))
        elif name == "nodes":
            out[name] = float(np.count_nonzero(used))
        elif name == "balance":
            req = np.array([c.request for c in inst.classes], np.int64).reshape(
                len(inst.classes), len(inst.columns))
            load = inst.used0 + X.T @ req
            with np.errstate(divide="ignore", invalid="ignore"):
                ratio = np.where(inst.alloc > 0, 1000 * load / np.maximum(inst.alloc, 1), 0)
            out[name] = float(np.ceil(ratio.max())) / 10 if ratio.size else 0.0
        elif name == "preferences":
            out[name] = float((inst.node_pref * X).sum()) if inst.node_pref is not None else 0.0
    return out


def _result(inst: Instance, pm: PlacementModel, names: list[str], status: str, X, gpu_sol,
            bound: float, batch: list[PodInfo], n_pending: int, home_node: dict[str, int],
            t0: float, method: str) -> OptimalResult:
    snap = inst.snapshot
    primary = names[0]
    if primary == "balance":
        bound = bound / 10  # per-mille -> percent
    if X is None:
        unplaced = [p.key for p in batch[:n_pending]]
        return OptimalResult(status, 0, unplaced, int(np.count_nonzero(inst.occupied)),
                             0.0, bound if status == "UNKNOWN" else 0.0,
                             abs(bound) if status == "UNKNOWN" else 0.0,
                             time.perf_counter() - t0, method=method)
    where, gpus = _placement(inst, X, gpu_sol, home_node)
    assignments = {}
    gpu_idx = {}
    moved = {}
    for i, p in enumerate(batch):
        n = where.get(i)
        name = snap.node_names[int(inst.nodes[n])] if n is not None else None
        if i < n_pending and name is not None:
            assignments[p.key] = name
        elif i >= n_pending and name is not None:
            src = snap.node_names[home_node[p.key]]
            if src != name:
                moved[p.key] = (src, name)
        if i in gpus and (i < n_pending or p.key in moved
                          or tuple(gpus[i]) != tuple(p.gpu_indices)):
            gpu_idx[p.key] = gpus[i]  # (a pod that stays may change GPUs when others move)
    objectives = evaluate(inst, X, list(dict.fromkeys(list(names) + ["placed", "nodes"])))
    if "moves" in pm.exprs:
        objectives["moves"] = float(len(moved))
    value = objectives[primary]
    if status == "OPTIMAL":
        bound = value
    gap = 0.0 if status == "OPTIMAL" else abs(bound - value) / max(1.0, abs(value))
    unplaced = [p.key for p in batch[:n_pending] if p.key not in assignments]
    occupied_after = np.zeros(inst.nodes.size, np.bool_)
    for i, n in where.items():
        occupied_after[n] = True
    if not home_node:
        occupied_after |= inst.occupied
    bounds = {k: (v / 10 if k == "balance" else v)
              for k, v in getattr(pm, "stage_bounds", {}).items()}
    bounds[primary] = float(bound)
    return OptimalResult(status, len(assignments), unplaced,
                         int(np.count_nonzero(occupied_after)), value, float(bound), gap,
                         time.perf_counter() - t0, assignments, objectives, moved, gpu_idx,
                         method, bounds)


__all__ = ["solve", "solve_snapshot", "heuristic_assignments", "evaluate", "parse_objectives",
           "MAXIMISE"]
