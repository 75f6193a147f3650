"""Batches too large to solve whole: large-neighbourhood search over node windows, with a
bound from an aggregated relaxation.

Starting from a feasible placement (the hint - the heuristic's or the first-fit start - when
it is shown feasible, else the empty placement, else a first solve of the whole model), each
step frees a *window* of nodes - half the least loaded nodes of the current placement, half
drawn by a generator seeded with ``seed`` - keeps every other node as it is, and lets CP-SAT
re-optimise the window from the current placement (a hint it can only improve on).
Objectives are handled lexicographically as in the exact solve: a window keeps the earlier
objectives' values on its nodes while it optimises the current one. Without inter-pod rules
nodes are independent, so a window is a model of its own (the pods placed on its nodes plus
the unplaced ones, on its nodes only), small whatever the cluster's size; with inter-pod
rules, moves or every pod required, the full model is built once and the counts outside the
window are fixed through their domains.

The reported bound of the primary objective is valid for the whole problem and comes from a
relaxation, never from a window:

- ``placed``: the aggregated knapsack - per class at most its pods and what the nodes it may
  use could take of it alone, the sum of requests within the cluster's total free capacity per
  resource and pod slots (solved by CP-SAT; its proven bound is used);
- ``nodes``: per resource, the fewest nodes whose free capacities (largest first, occupied
  nodes counted first) cover the demand of all the pods;
- ``balance``: the average utilisation per resource after placing every pod;
- ``preferences``: every pod on its best allowed node.

Deterministic mode (``deterministic=True``): a fixed number of windows, each solved on a
deterministic time limit, so the result does not depend on the machine's speed.
"""

from __future__ import annotations

import time
from dataclasses import replace
from types import SimpleNamespace

import numpy as np
from ortools.sat.python import cp_model

from .instance import Instance
from .model import BALANCE_SCALE, MAXIMISE, PlacementModel

WINDOW_VARS = 4_000  # (class, node) variables freed per window
WINDOW_SECONDS = 0.5  # time per window (deterministic work units in deterministic mode)


def relaxation_bound(pm: PlacementModel, name: str, require_all: bool) -> float:
    """A bound on objective ``name`` over the whole problem (see the module docstring), in
    the model's units (balance: per-mille)."""
    inst = pm.inst
    C, N = inst.mask.shape
    counts = np.array([c.count for c in inst.classes], np.int64)
    req = np.array([c.request for c in inst.classes], np.int64).reshape(C, len(inst.columns))
    if name == "placed":
        m = cp_model.CpModel()
        most = np.minimum(counts, inst.ub.sum(axis=1))
        p = [m.NewIntVar(0, int(most[c]), f"p{c}") for c in range(C)]
        free = inst.cap.sum(axis=0)
        for j in range(len(inst.columns)):
            if req[:, j].any():
                m.Add(sum(int(req[c, j]) * p[c] for c in range(C)) <= int(free[j]))
        m.Add(sum(p) <= int(inst.slots.sum()))
        for c, cls in enumerate(inst.classes):
            if cls.must_place:
                m.Add(p[c] == cls.count)
        m.Maximize(sum(inst.classes[c].weight * p[c] for c in range(C)
                       if not inst.classes[c].must_place))
        s = cp_model.CpSolver()
        s.parameters.max_deterministic_time = 1.0  # (work units: the same on any machine)
        s.parameters.max_time_in_seconds = 10.0
        s.parameters.num_workers = 1
        st = s.Solve(m)
        if st in (cp_model.OPTIMAL, cp_model.FEASIBLE):
            return float(s.BestObjectiveBound())
        return float(sum(c.weight * c.count for c in inst.classes if not c.must_place))
    if name == "nodes":
        occupied = int(np.count_nonzero(inst.occupied))
        if not require_all:
            return float(occupied)
        best = occupied
        demand = counts @ req if C else np.zeros(len(inst.columns), np.int64)
        for j in range(len(inst.columns)):
            need = int(demand[j]) - int(inst.cap[inst.occupied, j].sum())
            if need <= 0:
                continue
            caps = np.sort(inst.cap[~inst.occupied, j])[::-1]
            k = int(np.searchsorted(np.cumsum(caps), need) + 1)
            best = max(best, occupied + min(k, caps.size))
        need_slots = int(counts.sum()) - int(inst.slots[inst.occupied].sum())
        if need_slots > 0:
            caps = np.sort(inst.slots[~inst.occupied])[::-1]
            best = max(best, occupied + min(int(np.searchsorted(np.cumsum(caps), need_slots)
                                                + 1), caps.size))
        return float(best)
    if name == "balance":
        lb = 0
        alloc = inst.alloc.sum(axis=0)
        placed = counts if require_all else np.zeros_like(counts)
        load = inst.used0.sum(axis=0) + placed @ req
        for j in range(len(inst.columns)):
            if alloc[j] > 0:
                lb = max(lb, -(-BALANCE_SCALE * int(load[j]) // int(alloc[j])))
        return float(lb)
    if name == "preferences":
        if inst.node_pref is None:
            return 0.0
        best = np.where(inst.mask, inst.node_pref, 0).max(axis=1) if N else np.zeros(C)
        return float((best * counts).sum())
    return 0.0


def _fix_all(pm: PlacementModel, X: np.ndarray, budget: float, workers: int, seed: int
             ) -> np.ndarray | None:
    """Whether placement ``X`` satisfies the model (all counts fixed): X, or None."""
    saved = _restrict(pm, X, np.zeros(X.shape[1], np.bool_))
    try:
        s = cp_model.CpSolver()
        s.parameters.max_time_in_seconds = max(budget, 0.05)
        s.parameters.num_workers = workers
        s.parameters.random_seed = seed
        pm.model.ClearObjective()
        st = s.Solve(pm.model)
        return X if st in (cp_model.OPTIMAL, cp_model.FEASIBLE) else None
    finally:
        _restore(pm, saved)


def _restrict(pm: PlacementModel, X: np.ndarray, free_nodes: np.ndarray) -> list:
    """Fix every count outside ``free_nodes`` to ``X``; returns what to restore."""
    proto = pm.model.Proto()
    saved = []
    for (c, n), v in pm.x.items():
        if free_nodes[n]:
            continue
        dom = proto.variables[v.Index()].domain
        saved.append((v.Index(), list(dom)))
        val = int(X[c, n])
        dom.clear()
        dom.extend([val, val])
    return saved


def _restore(pm: PlacementModel, saved: list) -> None:
    proto = pm.model.Proto()
    for idx, dom in saved:
        d = proto.variables[idx].domain
        d.clear()
        d.extend(dom)


def solve_lns(inst: Instance, names: list[str], hint_x, *, deadline: float, workers: int,
              seed: int, deterministic: bool, time_limit: float, require_all: bool,
              home=None):
    """The decomposition (module docstring). Returns ((status, X, GPU values, primary
    bound), model) like the exact solve; the model is the full :class:`PlacementModel` when
    windows are solved inside it (inter-pod rules, moves, every pod required), else a stand-in
    carrying the stage bounds (each window is then a model of its own)."""
    if inst.anti or inst.affinity or inst.spread or home is not None or require_all:
        pm = PlacementModel(inst, names, require_all=require_all, home=home)
        return _lns_in_model(pm, names, hint_x, deadline=deadline, workers=workers, seed=seed,
                             deterministic=deterministic, time_limit=time_limit), pm
    stub = SimpleNamespace(inst=inst, exprs={}, stage_bounds={})
    return _lns_windows(stub, names, hint_x, deadline=deadline, workers=workers, seed=seed,
                        deterministic=deterministic, time_limit=time_limit), stub


def _window(inst: Instance, X: np.ndarray, W: np.ndarray) -> Instance:
    """The sub-problem of nodes ``W``: per class the pods placed there now plus the
    unplaced ones (valid only without inter-pod rules: nodes are then independent)."""
    classes = []
    for ci, c in enumerate(inst.classes):
        cnt = int(X[ci, W].sum()) + c.count - int(X[ci].sum())
        classes.append(replace(c, members=c.members[:cnt]))
    counts = np.array([c.count for c in classes], np.int64).reshape(-1, 1)
    ub = np.minimum(inst.ub[:, W], counts)
    return replace(inst, nodes=inst.nodes[W], classes=classes, mask=inst.mask[:, W] & (ub > 0),
                   cap=inst.cap[W], slots=inst.slots[W], occupied=inst.occupied[W],
                   gpu_free=inst.gpu_free[W], ub=ub, alloc=inst.alloc[W], used0=inst.used0[W],
                   node_pref=None if inst.node_pref is None else inst.node_pref[:, W])


def _choose_window(X: np.ndarray, width: int, rng) -> np.ndarray:
    """Half the least loaded nodes, half drawn at random (seeded), in node order."""
    N = X.shape[1]
    order = np.argsort(X.sum(axis=0), kind="stable")
    free = np.zeros(N, np.bool_)
    free[order[: width // 2]] = True
    rest = np.flatnonzero(~free)
    if rest.size:
        free[rng.choice(rest, size=min(width - width // 2, rest.size), replace=False)] = True
    return free


def _windows_by_stage(names, time_limit: float, deadline: float, deterministic: bool):
    """For each objective stage, (index, name, an iterator over its windows): the windows not
    yet used (``time_limit / WINDOW_SECONDS``, at least one a stage) are shared out evenly among
    the stages left; unless ``deterministic``, a stage also stops at its share of the wall time
    left before ``deadline``."""
    total = max(len(names), int(time_limit / WINDOW_SECONDS))
    used = [0]

    def windows(count: int, end: float):
        for _ in range(count):
            if not deterministic and time.perf_counter() >= end:
                return
            yield
            used[0] += 1

    for k, name in enumerate(names):
        left = len(names) - k
        count = max(1, (total - used[0]) // left)
        end = time.perf_counter() + max(deadline - time.perf_counter(), 0.0) / left
        yield k, name, windows(count, end)


def _lns_windows(stub, names, hint_x, *, deadline, workers, seed, deterministic, time_limit):
    """Windows as models of their own (instances without inter-pod rules)."""
    from .solver import _counts, _gpu_values, _set_hint, evaluate, solver_parameters
    from .warmstart import check_start

    inst = stub.inst
    C, N = inst.mask.shape
    rng = np.random.default_rng(seed)
    bound = relaxation_bound(stub, names[0], False)
    stub.stage_bounds[names[0]] = bound
    X = np.zeros((C, N), np.int64)
    gpu = check_start(inst, X)
    if hint_x is not None:
        start = check_start(inst, hint_x)
        if start is not None:
            X, gpu = hint_x.copy(), start
    gpu_s, gpu_w = dict(gpu[0]), dict(gpu[1])
    per_node = max(1.0, float(np.count_nonzero(inst.ub)) / max(N, 1))
    width = int(min(N, max(4, WINDOW_VARS // per_node)))
    for k, name, windows in _windows_by_stage(names, time_limit, deadline, deterministic):
        for _ in windows:
            free = _choose_window(X, width, rng)
            W = np.flatnonzero(free)
            sub = _window(inst, X, W)
            sub_pm = PlacementModel(sub, names[: k + 1])
            here = evaluate(sub, X[:, W], names[: k + 1])
            for j in range(k):  # the earlier stages no worse on these nodes
                v = here[names[j]]
                sub_pm.fix(names[j], int(round(v * 10)) if names[j] == "balance"
                           else int(round(v)))
            sub_pm.set_objective(name)
            _set_hint(sub_pm, X[:, W])
            s = cp_model.CpSolver()
            solver_parameters(s, WINDOW_SECONDS, workers, seed, deterministic)
            st = s.Solve(sub_pm.model)
            if st not in (cp_model.OPTIMAL, cp_model.FEASIBLE):
                continue
            X[:, W] = _counts(sub_pm, s)
            if inst.gpu:
                ss, ww = _gpu_values(sub_pm, s)
                wset = set(W.tolist())
                gpu_s = {key: v for key, v in gpu_s.items() if key[1] not in wset}
                gpu_w = {key: v for key, v in gpu_w.items() if key[0] not in wset}
                gpu_s.update({(c, int(W[n]), g): v for (c, n, g), v in ss.items() if v})
                gpu_w.update({(int(W[n]), g): v for (n, g), v in ww.items() if v})
        if k:
            all_placed = int(X.sum()) == sum(c.count for c in inst.classes)
            stub.stage_bounds[name] = relaxation_bound(stub, name, all_placed)
    value = evaluate(inst, X, [names[0]])[names[0]]
    if names[0] == "balance":
        value *= 10
    proven = (value >= bound) if MAXIMISE[names[0]] else (value <= bound)
    status = "OPTIMAL" if proven and len(names) == 1 else "FEASIBLE"
    return status, X, ((gpu_s, gpu_w) if inst.gpu else None), bound


def _lns_in_model(pm: PlacementModel, names: list[str], hint_x, *, deadline: float,
                  workers: int, seed: int, deterministic: bool, time_limit: float):
    """Windows inside the full model (the other counts fixed through their domains)."""
    from .solver import _counts, _gpu_values, _set_hint, solver_parameters

    inst = pm.inst
    C, N = inst.mask.shape
    require_all = "placed" not in names
    rng = np.random.default_rng(seed)
    bound = relaxation_bound(pm, names[0], require_all)
    pm.stage_bounds = {names[0]: bound}
    X = None
    gpu_sol = None
    if X is None and hint_x is not None:
        X = _fix_all(pm, hint_x, min(5.0, time_limit / 4), workers, seed)
    if X is None and not require_all and not any(c.must_place for c in inst.classes):
        X = np.zeros((C, N), np.int64)
    if X is None:  # a first placement from the whole model
        pm.set_objective(names[0])
        _set_hint(pm, hint_x)
        s = cp_model.CpSolver()
        solver_parameters(s, max(deadline - time.perf_counter(), 0.1) / 2, workers, seed,
                          deterministic)
        st = s.Solve(pm.model)
        if st not in (cp_model.OPTIMAL, cp_model.FEASIBLE):
            return ("INFEASIBLE" if st == cp_model.INFEASIBLE else "UNKNOWN"), None, None, bound
        X = _counts(pm, s)
    per_node = max(1.0, len(pm.x) / max(N, 1))
    width = int(min(N, max(8, WINDOW_VARS // per_node)))
    for k, name, windows in _windows_by_stage(names, time_limit, deadline, deterministic):
        pm.set_objective(name)
        for _ in windows:
            free = _choose_window(X, width, rng)
            saved = _restrict(pm, X, free)
            try:
                _set_hint(pm, X)
                s = cp_model.CpSolver()
                solver_parameters(s, WINDOW_SECONDS, workers, seed, deterministic)
                st = s.Solve(pm.model)
                if st in (cp_model.OPTIMAL, cp_model.FEASIBLE):
                    X = _counts(pm, s)
                    gpu_sol = _gpu_values(pm, s)
            finally:
                _restore(pm, saved)
        # keep this stage's value for the next ones
        value = _value(pm, X, name)
        if k:
            all_placed = require_all or int(X.sum()) == sum(c.count for c in inst.classes)
            pm.stage_bounds[name] = relaxation_bound(pm, name, all_placed)
        pm.fix(name, value)
    if inst.gpu and gpu_sol is None:
        gpu_sol = _gpu_for(pm, X, workers, seed)
    value = _value(pm, X, names[0])
    proven = (value >= bound) if MAXIMISE[names[0]] else (value <= bound)
    status = "OPTIMAL" if proven and len(names) == 1 else "FEASIBLE"
    return status, X, gpu_sol, bound


def _value(pm: PlacementModel, X: np.ndarray, name: str) -> int:
    """The model's integer value of objective ``name`` at counts ``X``."""
    if name != "moves":
        from .solver import _raw_value

        return _raw_value(pm, X, name)
    saved = _restrict(pm, X, np.zeros(X.shape[1], np.bool_))
    try:
        pm.set_objective(name)
        s = cp_model.CpSolver()
        s.parameters.num_workers = 1
        s.parameters.max_time_in_seconds = 10.0
        st = s.Solve(pm.model)
        if st not in (cp_model.OPTIMAL, cp_model.FEASIBLE):
            raise RuntimeError("the incumbent placement no longer satisfies the model")
        return int(round(s.ObjectiveValue()))
    finally:
        _restore(pm, saved)


def _gpu_for(pm: PlacementModel, X: np.ndarray, workers: int, seed: int):
    from .solver import _gpu_values

    saved = _restrict(pm, X, np.zeros(X.shape[1], np.bool_))
    try:
        pm.model.ClearObjective()
        s = cp_model.CpSolver()
        s.parameters.num_workers = workers
        s.parameters.random_seed = seed
        s.parameters.max_time_in_seconds = 10.0
        s.Solve(pm.model)
        return _gpu_values(pm, s)
    finally:
        _restore(pm, saved)
