"""Valid bounds of a stage's objective from the linear relaxation of the CP-SAT model.

CP-SAT reports a proven bound, but on large models its LP worker may not reach the root
relaxation before the time limit (its bound then stays trivial). :func:`lp_bound` solves the
relaxation directly with GLOP: every variable continuous within its domain's hull, every
linear constraint without an enforcement literal kept (capacities, pod slots, class sizes,
the values fixed by earlier stages), every other constraint dropped - a relaxation, so its
optimum bounds the integer optimum; with integer coefficients on integer variables the bound
is rounded to the next integer.
"""

from __future__ import annotations

import math

from ortools.linear_solver import pywraplp

from .model import MAXIMISE, PlacementModel

LP_SECONDS = 5.0


def better_bound(name: str, a: float, b: float) -> float:
    """The tighter of two valid bounds of objective ``name``."""
    return min(a, b) if MAXIMISE[name] else max(a, b)


def proven(name: str, value: float, bound: float) -> bool:
    """Whether ``value`` meets ``bound`` (the stage is then optimal)."""
    return value >= bound - 1e-9 if MAXIMISE[name] else value <= bound + 1e-9


def lp_bound(pm: PlacementModel, name: str, seconds: float = LP_SECONDS) -> float | None:
    """The LP relaxation's bound of the model's current objective (set for stage ``name``),
    in the objective's own units; None when GLOP gives no optimum within ``seconds``."""
    proto = pm.model.Proto()
    solver = pywraplp.Solver.CreateSolver("GLOP")
    if solver is None:
        return None
    solver.SetTimeLimit(max(int(seconds * 1000), 10))
    inf = solver.infinity()
    xs = []
    for v in proto.variables:
        d = list(v.domain)
        xs.append(solver.NumVar(float(d[0]), float(d[-1]), ""))

    def term(ref: int, coeff: int):
        if ref >= 0:
            return coeff * xs[ref], 0
        return -coeff * xs[-ref - 1], coeff  # a negated literal: coeff * (1 - x)

    for ct in proto.constraints:
        if len(ct.enforcement_literal) or not ct.has_linear():
            continue
        lin = ct.linear
        d = list(lin.domain)
        expr, const = 0, 0
        for ref, c in zip(lin.vars, lin.coeffs):
            e, k = term(ref, c)
            expr += e
            const += k
        lo = -inf if d[0] <= -(2 ** 62) else float(d[0] - const)
        hi = inf if d[-1] >= 2 ** 62 else float(d[-1] - const)
        solver.Add(expr >= lo) if lo > -inf else None
        solver.Add(expr <= hi) if hi < inf else None
    obj = proto.objective
    expr, const = 0, 0
    for ref, c in zip(obj.vars, obj.coeffs):
        e, k = term(ref, c)
        expr += e
        const += k
    solver.Minimize(expr)
    if solver.Solve() != pywraplp.Solver.OPTIMAL:
        return None
    internal = solver.Objective().Value() + const + obj.offset
    internal = math.ceil(internal - 1e-6)  # integer coefficients, integer variables
    scale = obj.scaling_factor or 1.0
    return float(internal * scale)
