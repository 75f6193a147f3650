"""Each run's gap to the optimum, from the results of a sweep alone (``compare --policies
...,optimal``; the snapshots come from :mod:`.reoptimise`).

A run is compared with the optimum on the same snapshots: a replay with its own re-optimised
snapshots (:attr:`RunResult.optimal`, which hold both), a fill run with the ``optimal`` run
of the same trace, seed and workload at the end of the run (its ``placed_total``,
``nodes_used_end`` and ``frag_amount_pct_end``). Only snapshots with a placement (OPTIMAL or
FEASIBLE) count; figures are means over them:

- pods placed: ``optimum - run`` (pods the policy left out that the optimum placed), relative
  to the optimum's; with FEASIBLE snapshots the optimum may place more, up to the solver's
  bound: ``placed_gap_max`` = ``bound - run`` (None when the bound is not known in pods);
- nodes used: ``run - optimum`` (the optimum minimises nodes only after pods placed, so it may
  use more nodes when it places more pods);
- fragmentation (GPU traces): ``run - optimum`` in percentage points of GPU capacity, relative
  to the optimum's (not an objective of the solver: a policy may fragment less).

Relative gaps are in percent of the optimum's figure (NaN when that is 0). With pods of
several priorities the solver maximises the priority-weighted count (:mod:`schedbench.optimal`),
so its pods placed may be fewer than a policy's (a negative placed gap) and the bound is not
told in pods.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass

from .result import OPTIMAL_POLICY, RunResult

SOLVED = ("OPTIMAL", "FEASIBLE")
STATUS_ORDER = ("OPTIMAL", "FEASIBLE", "UNKNOWN", "INFEASIBLE")


@dataclass(frozen=True)
class RunGap:
    """One run's distance to the optimum (module docstring); NaN where not known."""

    snapshots: int
    solved: int
    statuses: dict
    placed_proven: int           # solved snapshots whose pods placed is proven (bound met)
    run_placed: float
    optimal_placed: float
    placed_gap: float
    placed_gap_pct: float
    placed_gap_max: float
    run_nodes_used: float
    optimal_nodes_used: float
    nodes_used_gap: float
    nodes_used_gap_pct: float
    run_frag_amount_pct: float
    optimal_frag_amount_pct: float
    frag_amount_gap: float
    frag_amount_gap_pct: float

    @property
    def proven(self) -> bool:
        """Every snapshot solved to optimality."""
        return self.snapshots > 0 and self.statuses.get("OPTIMAL", 0) == self.snapshots

    def status_text(self) -> str:
        """``OPTIMAL`` when all are; else counts like ``OPTIMAL 3, FEASIBLE 1 of 4``."""
        if self.proven:
            return "OPTIMAL" if self.snapshots == 1 else f"OPTIMAL ({self.snapshots})"
        parts = [f"{s} {self.statuses[s]}" for s in STATUS_ORDER if self.statuses.get(s)]
        parts += [f"{s} {n}" for s, n in sorted(self.statuses.items())
                  if s not in STATUS_ORDER and n]
        if self.snapshots == 1:
            text = parts[0].rsplit(" ", 1)[0] if parts else "-"
        else:
            text = ", ".join(parts) + f" of {self.snapshots}"
        if self.placed_proven > self.statuses.get("OPTIMAL", 0):
            # the lexicographic status is FEASIBLE when only the nodes stage is unproven
            text += (f"; pods placed proven optimal in {self.placed_proven}"
                     if self.snapshots > 1 else "; pods placed proven optimal")
        return text

    def to_json(self) -> dict:
        return {k: (None if isinstance(v, float) and not math.isfinite(v) else v)
                for k, v in asdict(self).items()}


def _mean(values: Sequence[float | None]) -> float:
    vals = [float(v) for v in values if v is not None and math.isfinite(float(v))]
    return sum(vals) / len(vals) if vals else math.nan


def _pct(gap: float, base: float) -> float:
    if math.isnan(gap) or math.isnan(base) or base == 0:
        return math.nan
    return 100.0 * gap / base


def run_gap(points: Sequence[dict]) -> RunGap | None:
    """The gap of one run over its comparison points (dicts with ``OPTIMAL_POINT_KEYS``
    whose ``run_*`` figures are filled in); None without points."""
    if not points:
        return None
    statuses: dict[str, int] = {}
    for p in points:
        statuses[p["status"]] = statuses.get(p["status"], 0) + 1
    ok = [p for p in points if p["status"] in SOLVED and p["placed"] is not None
          and p["run_placed"] is not None]
    run_placed = _mean([p["run_placed"] for p in ok])
    opt_placed = _mean([p["placed"] for p in ok])
    placed_gap = _mean([p["placed"] - p["run_placed"] for p in ok])
    upper = [p["placed_upper"] for p in ok]
    placed_gap_max = (_mean([u - p["run_placed"] for u, p in zip(upper, ok)])
                      if ok and all(u is not None for u in upper) else math.nan)
    nodes = [p for p in ok if p["nodes_used"] is not None and p["run_nodes_used"] is not None]
    run_nodes = _mean([p["run_nodes_used"] for p in nodes])
    opt_nodes = _mean([p["nodes_used"] for p in nodes])
    nodes_gap = _mean([p["run_nodes_used"] - p["nodes_used"] for p in nodes])
    frag = [p for p in ok if p["frag_amount_pct"] is not None
            and p["run_frag_amount_pct"] is not None]
    run_frag = _mean([p["run_frag_amount_pct"] for p in frag])
    opt_frag = _mean([p["frag_amount_pct"] for p in frag])
    frag_gap = _mean([p["run_frag_amount_pct"] - p["frag_amount_pct"] for p in frag])
    proven = sum(1 for p in ok if p["placed_upper"] is not None
                 and p["placed_upper"] == p["placed"])
    return RunGap(len(points), len(ok), statuses, proven, run_placed, opt_placed, placed_gap,
                  _pct(placed_gap, opt_placed), placed_gap_max, run_nodes, opt_nodes, nodes_gap,
                  _pct(nodes_gap, opt_nodes), run_frag, opt_frag, frag_gap,
                  _pct(frag_gap, opt_frag))


def _fill_key(r: RunResult) -> tuple:
    s = r.spec
    return (s.trace, s.nodes, s.tune, s.seed)


def comparison_points(results: Sequence[RunResult]) -> list[list[dict] | None]:
    """Per result (same order): the points it is compared with the optimum on, or None (the
    ``optimal`` runs themselves, runs without snapshots)."""
    optimum = {_fill_key(r): r for r in results
               if r.spec.policy == OPTIMAL_POLICY and r.spec.experiment == "fill" and r.optimal}
    out: list[list[dict] | None] = []
    for r in results:
        if r.spec.policy == OPTIMAL_POLICY:
            out.append(None)
        elif r.spec.experiment == "fill":
            o = optimum.get(_fill_key(r))
            if o is None:
                out.append(None)
                continue
            placed = r.extra.get("placed_total", r.metrics["placed"])
            nodes = r.extra.get("nodes_used_end")
            frag = r.extra.get("frag_amount_pct_end")
            gpu = frag is not None and o.optimal[0]["frag_amount_pct"] is not None and \
                _has_gpus(o)
            out.append([dict(o.optimal[0], run_placed=int(placed),
                             run_nodes_used=None if nodes is None else int(nodes),
                             run_frag_amount_pct=float(frag) if gpu else None)])
        else:
            out.append(list(r.optimal) if r.optimal else None)
    return out


def _has_gpus(r: RunResult) -> bool:
    return bool(r.metrics["gpu_alloc_pct"] > 0 or r.metrics["unallocated_gpu_pct"] > 0
                or r.extra.get("unallocated_gpu_pct_end", 0) > 0)


def run_gaps(results: Sequence[RunResult]) -> list[RunGap | None]:
    """Per result (same order), its :class:`RunGap`, or None."""
    return [run_gap(p) if p else None for p in comparison_points(results)]


def combine(gaps: Sequence[RunGap]) -> RunGap | None:
    """Several runs' gaps (a policy's seeds) as one: every figure the mean over the runs that
    have it, snapshots and statuses summed."""
    gaps = [g for g in gaps if g is not None]
    if not gaps:
        return None
    statuses: dict[str, int] = {}
    for g in gaps:
        for s, n in g.statuses.items():
            statuses[s] = statuses.get(s, 0) + n
    counts = ("snapshots", "solved", "statuses", "placed_proven")
    fields = [f for f in RunGap.__dataclass_fields__ if f not in counts]
    means = {f: _mean([getattr(g, f) for g in gaps]) for f in fields}
    if any(math.isnan(g.placed_gap_max) for g in gaps if g.solved):
        means["placed_gap_max"] = math.nan      # unknown for some run: not known overall
    # relative gaps of the means (the ratio of sums), as for one run
    for gap, base, pct in (("placed_gap", "optimal_placed", "placed_gap_pct"),
                           ("nodes_used_gap", "optimal_nodes_used", "nodes_used_gap_pct"),
                           ("frag_amount_gap", "optimal_frag_amount_pct",
                            "frag_amount_gap_pct")):
        means[pct] = _pct(means[gap], means[base])
    return RunGap(sum(g.snapshots for g in gaps), sum(g.solved for g in gaps), statuses,
                  sum(g.placed_proven for g in gaps), **means)
