"""Reports of a policy sweep: which policy wins, by how much, and how the runs went.

:func:`write_report` writes, into one directory (every file atomically):

- ``summary.json``: ``{"runs": [{"policy", "seed", "trace", "experiment", "metrics"}]}``, one
  entry per run, ``metrics`` exactly :data:`~schedbench.replay.METRIC_KEYS`;
- ``metrics.parquet`` / ``metrics.csv``: one row per run, the metrics and the engine's extra
  figures (scheduling delay percentiles, throughput, ...);
- ``timeseries.parquet`` / ``timeseries.csv``: every run's samples, with trace, experiment,
  policy and seed columns;
- ``report.md`` (with its plots in ``plots/``) and ``report.html`` (self-contained: the same
  tables, the plots embedded as PNG).

Runs are grouped by (trace, experiment); in a group each policy's metrics are averaged over
the seeds (mean ± sample standard deviation) and the policies ranked by the *primary metric*:
the unallocated GPU share for traces with GPUs (the FGD paper's measure), otherwise the pods
left unscheduled (failed + pending), ties broken by the p95 scheduling delay. Everything is a
function of the results alone, so the same results give byte-identical files (only
``wall_seconds`` and throughput vary between otherwise identical runs).
"""

from __future__ import annotations

import base64
import html
import io
import json
import math
import os
import re
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from .replay.gaps import RunGap, combine, run_gaps
from .replay.result import METRIC_KEYS, OPTIMAL_POLICY, TIMESERIES_COLUMNS, RunResult
from .textfmt import format_table

LABELS = {
    "placed": "placed", "failed": "failed", "pending": "pending",
    "unscheduled": "unscheduled pods",
    "unallocated_gpu_pct": "unallocated GPU %", "gpu_alloc_pct": "GPU alloc %",
    "cpu_alloc_pct": "CPU alloc %", "mem_alloc_pct": "mem alloc %",
    "frag_amount_pct": "frag amount %", "frag_ratio_pct": "frag ratio %",
    "nodes_used": "nodes used", "wall_seconds": "wall s",
    "delay_p50": "delay p50 s", "delay_p95": "delay p95 s", "delay_p99": "delay p99 s",
    "pods_per_second": "pods/s",
}
GPU_METRICS = ("unallocated_gpu_pct", "gpu_alloc_pct", "frag_amount_pct", "frag_ratio_pct")
#: Figures of ``RunResult.extra`` shown in the tables when the engine gives them.
TABLE_EXTRAS = ("delay_p50", "delay_p95", "delay_p99", "pods_per_second")
#: After the primary metric, policies are ranked by these means (lower first), then by name.
TIE_BREAKERS = {True: ("unscheduled", "delay_p95"), False: ("delay_p95",)}
INT_LIKE = frozenset({"placed", "failed", "pending", "unscheduled", "nodes_used"})
#: :class:`RunGap` figures in ``metrics.parquet`` (``gap_`` + name), with the optimum's status.
GAP_COLUMNS = ("status", "snapshots", "placed_proven", "run_placed", "optimal_placed", "placed_gap",
               "placed_gap_pct", "placed_gap_max", "run_nodes_used", "optimal_nodes_used",
               "nodes_used_gap", "nodes_used_gap_pct", "run_frag_amount_pct",
               "optimal_frag_amount_pct", "frag_amount_gap", "frag_amount_gap_pct")


# ------------------------------------------------------------------------------ raw tables


def _finite(v):
    return v if not isinstance(v, float) or math.isfinite(v) else None


def summary_dict(results: Sequence[RunResult]) -> dict:
    """The content of ``summary.json``; with the ``optimal`` policy, a run with re-optimised
    snapshots also has ``optimal`` (the snapshots, :data:`~schedbench.replay.OPTIMAL_POINT_KEYS`)
    and a run compared with the optimum ``gap_to_optimal`` (:class:`~schedbench.replay.gaps.
    RunGap`)."""
    runs = []
    for r, gap in zip(results, run_gaps(results)):
        run = {"policy": r.spec.policy, "seed": int(r.spec.seed), "trace": r.trace_name,
               "experiment": r.spec.experiment,
               "metrics": {k: _finite(r.metrics[k]) for k in METRIC_KEYS}}
        if r.optimal is not None:
            run["optimal"] = [{k: _finite(v) for k, v in p.items()} for p in r.optimal]
        if gap is not None:
            run["gap_to_optimal"] = gap.to_json()
        runs.append(run)
    return {"runs": runs}


def _scalar(v):
    if isinstance(v, (np.generic,)):
        v = v.item()
    if v is None or isinstance(v, (bool, int, float, str)):
        return v
    return json.dumps(v, sort_keys=True, default=str)


def _run_columns(r: RunResult) -> dict:
    return {"trace": r.trace_name, "trace_spec": r.spec.trace, "experiment": r.spec.experiment,
            "policy": r.spec.policy, "seed": int(r.spec.seed)}


def metrics_frame(results: Sequence[RunResult]) -> pd.DataFrame:
    """One row per run: run columns, :data:`METRIC_KEYS`, then the extra figures (sorted by
    name; a name that clashes with a column gets an ``extra_`` prefix)."""
    taken = {"trace", "trace_spec", "experiment", "policy", "seed", *METRIC_KEYS}
    extra_keys = sorted({k for r in results for k in r.extra})
    rows = []
    for r in results:
        row = _run_columns(r)
        row.update({k: r.metrics[k] for k in METRIC_KEYS})
        for k in extra_keys:
            row[f"extra_{k}" if k in taken else k] = _scalar(r.extra.get(k))
        rows.append(row)
    cols = ["trace", "trace_spec", "experiment", "policy", "seed", *METRIC_KEYS,
            *[f"extra_{k}" if k in taken else k for k in extra_keys]]
    gaps = run_gaps(results)
    if any(g is not None for g in gaps):
        gap_cols = [f"gap_{k}" for k in GAP_COLUMNS]
        for row, g in zip(rows, gaps):
            for k, c in zip(GAP_COLUMNS, gap_cols):
                row[c] = (g.status_text() if k == "status" else getattr(g, k)) \
                    if g is not None else None
        cols += gap_cols
    df = pd.DataFrame(rows, columns=cols)
    for c in cols[5 + len(METRIC_KEYS):]:
        kinds = {type(v) for v in df[c] if v is not None and not (isinstance(v, float)
                                                                   and math.isnan(v))}
        if len(kinds) > 1 and not kinds <= {int, float}:   # Parquet wants one type
            df[c] = [None if v is None or (isinstance(v, float) and math.isnan(v)) else str(v)
                     for v in df[c]]
    for k in METRIC_KEYS:
        df[k] = df[k].astype("int64" if k in INT_LIKE else "float64")
    df["seed"] = df["seed"].astype("int64")
    return df


def timeseries_frame(results: Sequence[RunResult]) -> pd.DataFrame:
    """Every run's time series, stacked, with trace, experiment, policy and seed columns."""
    lead = ["trace", "experiment", "policy", "seed"]
    cols = list(TIMESERIES_COLUMNS)
    for r in results:
        cols += [c for c in r.timeseries.columns if c not in cols and c not in lead]
    parts = []
    for r in results:
        ts = r.timeseries.reindex(columns=cols).reset_index(drop=True)
        head = pd.DataFrame({"trace": r.trace_name, "experiment": r.spec.experiment,
                             "policy": r.spec.policy, "seed": int(r.spec.seed)},
                            index=ts.index)
        parts.append(pd.concat([head, ts], axis=1))
    if not parts:
        return pd.DataFrame(columns=lead + cols)
    df = pd.concat(parts, ignore_index=True)
    df["seed"] = df["seed"].astype("int64")
    return df


# ------------------------------------------------------------------------------ statistics


def _value(r: RunResult, key: str) -> float:
    if key == "unscheduled":
        return float(r.metrics["failed"] + r.metrics["pending"])
    if key in r.metrics:
        return float(r.metrics[key])
    v = r.extra.get(key)
    return float(v) if isinstance(v, (int, float, np.number)) else math.nan


@dataclass
class PolicyStats:
    """One policy's runs in a group, with mean and sample sd (NaN for one run) per key."""

    policy: str
    runs: list[RunResult]
    mean: dict[str, float] = field(default_factory=dict)
    sd: dict[str, float] = field(default_factory=dict)

    def compute(self, keys: Sequence[str]) -> PolicyStats:
        for k in keys:
            vals = np.array([_value(r, k) for r in self.runs], dtype=float)
            vals = vals[~np.isnan(vals)]
            self.mean[k] = float(vals.mean()) if len(vals) else math.nan
            self.sd[k] = float(vals.std(ddof=1)) if len(vals) > 1 else math.nan
        return self

    @property
    def seeds(self) -> list[int]:
        return [r.spec.seed for r in self.runs]


@dataclass
class Group:
    """The runs of one trace and experiment, policies in ranking order (best first)."""

    trace: str
    experiment: str
    gpu: bool
    primary: str
    keys: list[str]            # the figures shown in tables, primary first
    policies: list[PolicyStats]
    slug: str = ""
    #: the ``optimal`` runs of a fill group (kept out of the ranking: their figures are those
    #: of the whole workload, see :mod:`schedbench.replay.gaps`)
    optimum: list[RunResult] = field(default_factory=list)
    #: policy -> its gap to the optimum over its seeds (policies compared with one only)
    gaps: dict[str, RunGap] = field(default_factory=dict)

    @property
    def has_gaps(self) -> bool:
        return bool(self.gaps) or bool(self.optimum)

    @property
    def runs(self) -> list[RunResult]:
        return [r for p in self.policies for r in p.runs]

    @property
    def seeds(self) -> list[int]:
        return sorted({s for p in self.policies for s in p.seeds})

    @property
    def title(self) -> str:
        n = len(self.seeds)
        return f"{self.trace} ({self.experiment}, {n} seed{'s' if n != 1 else ''})"


def _is_gpu(runs: Sequence[RunResult]) -> bool:
    for r in runs:
        total = r.extra.get("gpu_total_milli", r.extra.get("gpu_capacity_milli"))
        if isinstance(total, (int, float, np.number)) and total > 0:
            return True
        if r.metrics["unallocated_gpu_pct"] > 0 or r.metrics["gpu_alloc_pct"] > 0:
            return True
    return False


def _trace_labels(results: Sequence[RunResult]) -> dict[str, str]:
    """Trace spec -> display name: the trace's name, or the spec when two specs share it."""
    by_name: dict[str, set[str]] = {}
    for r in results:
        by_name.setdefault(r.trace_name, set()).add(r.spec.trace)
    return {r.spec.trace: (r.trace_name if len(by_name[r.trace_name]) == 1 else r.spec.trace)
            for r in results}


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-.") or "trace"


def group_results(results: Sequence[RunResult]) -> list[Group]:
    """Groups in order of first appearance; policies ranked best first. The ``optimal`` runs
    of a group are kept apart (:attr:`Group.optimum`) unless nothing else ran."""
    labels = _trace_labels(results)
    gap_of = {id(r): g for r, g in zip(results, run_gaps(results)) if g is not None}
    buckets: dict[tuple[str, str], dict[str, list[RunResult]]] = {}
    for r in results:
        g = buckets.setdefault((labels[r.spec.trace], r.spec.experiment), {})
        g.setdefault(r.spec.policy, []).append(r)
    groups = []
    for n, ((trace, experiment), by_policy) in enumerate(buckets.items(), 1):
        optimum: list[RunResult] = []
        if OPTIMAL_POLICY in by_policy and len(by_policy) > 1:
            optimum = sorted(by_policy.pop(OPTIMAL_POLICY), key=lambda r: r.spec.seed)
        gaps = {p: combine([gap_of.get(id(r)) for r in rs]) for p, rs in by_policy.items()}
        gaps = {p: g for p, g in gaps.items() if g is not None}
        runs = [r for rs in by_policy.values() for r in rs]
        gpu = _is_gpu(runs)
        primary = "unallocated_gpu_pct" if gpu else "unscheduled"
        keys = [primary]
        if gpu:
            keys += ["unscheduled"]
        keys += ["placed", "failed", "pending"]
        if gpu:
            keys += ["gpu_alloc_pct", "frag_amount_pct", "frag_ratio_pct"]
        keys += ["cpu_alloc_pct", "mem_alloc_pct", "nodes_used"]
        keys += [k for k in TABLE_EXTRAS if any(isinstance(r.extra.get(k), (int, float,
                                                                            np.number))
                                                for r in runs)]
        keys += ["wall_seconds"]
        stats = [PolicyStats(p, sorted(rs, key=lambda r: r.spec.seed)).compute(keys)
                 for p, rs in by_policy.items()]

        def rank_key(s: PolicyStats) -> tuple:
            vals = [s.mean.get(k, math.nan) for k in [primary, *TIE_BREAKERS[gpu]]]
            return tuple(math.inf if math.isnan(v) else v for v in vals) + (s.policy,)

        stats.sort(key=rank_key)
        groups.append(Group(trace, experiment, gpu, primary, keys, stats,
                            slug=f"{n:02d}-{_slug(trace)}-{experiment}", optimum=optimum,
                            gaps={s.policy: gaps[s.policy] for s in stats
                                  if s.policy in gaps}))
    return groups


# ------------------------------------------------------------------------------ formatting


def _fmt(key: str, v: float, n: int = 1) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "-"
    if key in INT_LIKE:
        return f"{v:.0f}" if n == 1 and float(v).is_integer() else f"{v:.1f}"
    if key == "pods_per_second":
        return f"{v:,.0f}"
    return f"{v:.2f}"


def _fmt_stat(key: str, s: PolicyStats) -> str:
    n = len(s.runs)
    m = _fmt(key, s.mean[key], n)
    sd = s.sd.get(key, math.nan)
    if n == 1 or math.isnan(sd) or m == "-":
        return m
    return f"{m} ± {_fmt(key, sd, 2)}"


def winner_sentence(g: Group) -> str:
    """Who wins the group and by how much (against the runner-up), in one sentence."""
    key = g.primary
    pct = key.endswith("_pct")
    label = LABELS[key].removesuffix(" %")
    first = g.policies[0]
    if len(g.policies) == 1:
        return (f"Only {first.policy} ran on {g.trace} ({g.experiment}): {label} "
                f"{_fmt_stat(key, first)}{'%' if pct else ''}; nothing to compare.")
    second = g.policies[1]
    a, b = first.mean[key], second.mean[key]
    nseeds = len(g.seeds)

    def val(v: float) -> str:
        return _fmt(key, v, 2 if nseeds > 1 else 1) + ("%" if pct else "")

    over = f"mean of {nseeds} seeds" if nseeds > 1 else f"seed {g.seeds[0]}"
    if math.isnan(a) or math.isnan(b):
        return f"No {label} figures to rank the policies on {g.trace} ({g.experiment})."
    if a == b:
        tied = [s.policy for s in g.policies if s.mean[key] == a]
        text = (f"{', '.join(tied[:-1])} and {tied[-1]} tie on {g.trace} ({g.experiment}) "
                f"with {label} {val(a)} ({over})")
        for k in TIE_BREAKERS[g.gpu]:
            x, y = first.mean.get(k, math.nan), second.mean.get(k, math.nan)
            if not (math.isnan(x) or math.isnan(y)) and x != y:
                return (text + f"; {first.policy} ranks first on {LABELS[k]}: "
                        f"{_fmt(k, x, 2)} vs {_fmt(k, y, 2)}.")
        return text + f"; {first.policy} ranks first by name."
    diff = b - a
    unit = " percentage points" if pct else (" pods" if key == "unscheduled" else "")
    less = "lower" if pct else "fewer"
    rel = f" ({100 * diff / b:.1f}% {less})" if b else ""
    sentence = (f"{first.policy} wins on {g.trace} ({g.experiment}): {label} {val(a)} vs "
                f"{val(b)} for the runner-up {second.policy} ({over}), "
                f"{_fmt(key, diff, 2 if nseeds > 1 else 1)}{unit} "
                f"{less}{rel}")
    paired = {r.spec.seed: _value(r, key) for r in second.runs}
    common = [(_value(r, key), paired[r.spec.seed]) for r in first.runs if r.spec.seed in paired]
    if len(common) > 1:
        better = sum(x < y for x, y in common)
        sentence += f"; better on {better} of {len(common)} seeds"
    return sentence + "."


def _columns(g: Group) -> list[str]:
    return [LABELS.get(k, k) for k in g.keys]


#: Columns of the terminal summary after the primary metric (means only), GPU traces or not.
TERMINAL_KEYS = {
    True: ("frag_amount_pct", "cpu_alloc_pct", "placed", "failed", "pending", "nodes_used"),
    False: ("placed", "failed", "pending", "cpu_alloc_pct", "mem_alloc_pct", "nodes_used",
            "delay_p95"),
}


def summary_text(results: Sequence[RunResult], failures: Sequence = ()) -> str:
    """The terminal summary: per group, policies ranked with mean ± sd, and the winner."""
    out = []
    for g in group_results(results):
        keys = [g.primary] + [k for k in TERMINAL_KEYS[g.gpu] if k in g.keys and k != g.primary]
        rows = [[i, s.policy, _fmt_stat(g.primary, s),
                 *[_fmt(k, s.mean[k], len(s.runs)) for k in keys[1:]]]
                for i, s in enumerate(g.policies, 1)]
        out.append(g.title)
        out.append(format_table(["RANK", "POLICY", *[LABELS.get(k, k).upper() for k in keys]],
                                rows, tuple(range(2, len(keys) + 2)) + (0,)))
        out.append(winner_sentence(g))
        out += gap_summary_text(g)
        out.append("")
    for f in failures:
        out.append(f"FAILED {f.spec.policy} seed {f.spec.seed} on {f.spec.trace} "
                   f"({f.spec.experiment}): {f.error}")
    return "\n".join(out).rstrip("\n")


# ------------------------------------------------------------------------ gap to the optimum

#: :class:`RunGap` figures of the gap tables, with their labels.
GAP_TABLE = (("run_placed", "placed"), ("optimal_placed", "placed (optimum)"),
             ("placed_gap", "placed gap"), ("placed_gap_pct", "placed gap %"),
             ("placed_gap_max", "placed gap at most (bound)"),
             ("run_nodes_used", "nodes used"), ("optimal_nodes_used", "nodes used (optimum)"),
             ("nodes_used_gap", "nodes gap"), ("nodes_used_gap_pct", "nodes gap %"))
GAP_TABLE_GPU = (("run_frag_amount_pct", "frag amount %"),
                 ("optimal_frag_amount_pct", "frag amount % (optimum)"),
                 ("frag_amount_gap", "frag gap (pp)"), ("frag_amount_gap_pct", "frag gap %"))


def _gap_fmt(key: str, v: float) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "-"
    if abs(v) < 1e-9:       # the same placement measured twice (float sums in another order)
        v = 0.0
    if key.endswith("_pct") or key == "frag_amount_gap":
        return f"{v:.2f}"
    # pod and node counts (means over snapshots and seeds): up to 2 decimals
    return f"{v:.0f}" if float(v).is_integer() else f"{v:.2f}".rstrip("0").rstrip(".")


def _gap_keys(g: Group) -> list[tuple[str, str]]:
    keys = list(GAP_TABLE)
    if all(gap.proven for gap in g.gaps.values()):
        keys = [k for k in keys if k[0] != "placed_gap_max"]   # = the placed gap
    return keys + (list(GAP_TABLE_GPU) if g.gpu else [])


def _gap_rows(g: Group) -> list[list[str]]:
    keys = _gap_keys(g)
    rows = []
    for s in g.policies:
        gap = g.gaps.get(s.policy)
        if gap is None:
            why = ("not re-optimised (atc23-* replays run on the fast engine)"
                   if s.policy.startswith("atc23-") and g.experiment == "replay"
                   else "no optimum")
            rows.append([s.policy, 0, why, *["-"] * len(keys)])
        else:
            rows.append([s.policy, gap.snapshots, gap.status_text(),
                         *[_gap_fmt(k, getattr(gap, k)) for k, _ in keys]])
    return rows


def _options_text(runs: Sequence[RunResult]) -> str:
    opts = next((r.spec.optimal for r in runs if r.spec.optimal is not None), None)
    if opts is None:
        return ""
    w = opts.workers
    return (f"time limit {opts.time_limit:g} s and {w} CP-SAT worker{'s' if w != 1 else ''} "
            "per solve")


def gap_paragraphs(g: Group) -> list[str]:
    """What the gap table of a group compares, how, and how sure the optimum is."""
    runs = g.optimum + g.runs
    opts = _options_text(runs)
    if g.experiment == "fill":
        pods = sorted({int(r.extra.get("attempted", 0)) for r in g.optimum})
        what = (f"The optimum: each seed's whole fill workload "
                f"({', '.join(map(str, pods))} pods) placed at once on the empty cluster by "
                f"CP-SAT (objective: pods placed, then nodes used; {opts}), compared with each "
                "policy at the end of its run (every pod attempted, not at 100% arrived as "
                "in the table above).")
    else:
        every = sorted({int(r.extra["optimal_every"]) for r in g.runs
                        if "optimal_every" in r.extra})
        what = (f"The optimum: every {', '.join(map(str, every)) or 'K'} arrivals and at the "
                "last arrival, the pods active in the policy's own replay (bound and waiting) "
                "re-placed from scratch by CP-SAT (bound pods may move; objective: pods "
                f"placed, then nodes used; {opts}), beside the policy's placement of the "
                "same pods at that instant. Figures are means over the snapshots and seeds.")
    out = [what, "Gaps: placed = optimum - policy (pods the policy left unplaced that fit); "
           "nodes used" + (" and fragmentation" if g.gpu else "") + " = policy - optimum "
           "(positive: the policy does worse); relative gaps in % of the optimum's figure. "
           "The optimum maximises pods placed before minimising nodes, so it may use more "
           "nodes when it places more pods" + ("; fragmentation is not an objective of the "
                                               "solver, so a policy may fragment less"
                                               if g.gpu else "") + "."]
    statuses = {s for gap in g.gaps.values() for s in gap.statuses}
    if statuses - {"OPTIMAL"}:
        out.append("Status: OPTIMAL is a proven optimum. FEASIBLE is the best placement "
                   "found within the time limit, not proven optimal: the true placed gap is "
                   "at least the placed gap shown (or 0 where that is negative: the policy "
                   "then beat the best placement found) and at most the bound column (from "
                   "the solver's proven bound; '-' where it cannot be told in pods). "
                   "UNKNOWN: no placement within the time limit; those snapshots are left out "
                   "of the figures.")
    else:
        out.append("Status: every snapshot was solved to a proven optimum (OPTIMAL).")
    for r in g.optimum:
        out.append(_optimum_sentence(r))
    return out


def _optimum_sentence(r: RunResult) -> str:
    x = r.extra
    status = x.get("status", "?")
    head = f"Optimum of seed {r.spec.seed}: {status}"
    if x.get("hint"):
        head = f"Optimum of seed {r.spec.seed} (started from {x['hint']}'s placement): {status}"
    if status in ("OPTIMAL", "FEASIBLE"):
        text = (f"{head}, {r.metrics['placed']} of {x.get('attempted', '?')} pods placed on "
                f"{r.metrics['nodes_used']} nodes")
        if status == "FEASIBLE":
            text += (f" (best found; objective {x.get('objective', math.nan):g}, proven bound "
                     f"{x.get('bound', math.nan):g}, gap {100 * x.get('solver_gap', 0):.2f}%)")
    else:
        text = f"{head}: no placement found within the time limit"
        if "bound" in x:
            text += f" (bound {x['bound']:g})"
    return text + f", {x.get('solve_seconds', r.metrics['wall_seconds']):.1f} s."


def _gap_cell(gap: RunGap | None, key: str, pct: str) -> str:
    if gap is None:
        return "-"
    a, b = _gap_fmt(key, getattr(gap, key)), _gap_fmt(pct, getattr(gap, pct))
    return a if b == "-" else f"{a} ({b}%)"


def gap_summary_text(g: Group) -> list[str]:
    """The terminal's gap table of a group (empty without an optimum)."""
    if not g.has_gaps:
        return []
    headers = ["POLICY", "OPTIMUM", "PLACED GAP", "NODES GAP"] + (["FRAG GAP PP"] if g.gpu
                                                                  else [])
    rows = []
    for s in g.policies:
        gap = g.gaps.get(s.policy)
        row = [s.policy, gap.status_text() if gap else "-",
               _gap_cell(gap, "placed_gap", "placed_gap_pct"),
               _gap_cell(gap, "nodes_used_gap", "nodes_used_gap_pct")]
        if g.gpu:
            row.append(_gap_cell(gap, "frag_amount_gap", "frag_amount_gap_pct"))
        rows.append(row)
    where = ("end of the fill run" if g.experiment == "fill"
             else "re-optimised replay snapshots, mean")
    out = [f"Gap to the optimum ({where}; placed: optimum - policy, others: policy - optimum):",
           format_table(headers, rows, tuple(range(2, len(headers))))]
    if any(not gap.proven for gap in g.gaps.values()):
        out.append("Not every snapshot was solved to optimality: FEASIBLE gaps are against the "
                   "best placement found (see the report for the bounds).")
    return out


# ----------------------------------------------------------------------------------- plots


def _on_grid(ts: pd.DataFrame, x: str, y: str, grid: np.ndarray) -> np.ndarray:
    """``y`` of the last sample with ``x`` <= each grid point (NaN before the first)."""
    if x not in ts or y not in ts:
        return np.full(len(grid), np.nan)
    d = ts[[x, y]].dropna()
    xs = d[x].to_numpy(dtype=float)
    ys = d[y].to_numpy(dtype=float)
    if not len(xs):
        return np.full(len(grid), np.nan)
    order = np.argsort(xs, kind="stable")
    xs, ys = xs[order], ys[order]
    idx = np.searchsorted(xs, grid, side="right") - 1
    return np.where(idx >= 0, ys[np.clip(idx, 0, None)], np.nan)


def _bands(runs: Sequence[RunResult], x: str, y: str, grid: np.ndarray):
    stack = np.vstack([_on_grid(r.timeseries, x, y, grid) for r in runs])
    with np.errstate(all="ignore"), _quiet_nan():
        med = np.nanmedian(stack, axis=0)
        lo = np.nanpercentile(stack, 25, axis=0)
        hi = np.nanpercentile(stack, 75, axis=0)
    return med, lo, hi


class _quiet_nan:
    def __enter__(self):
        import warnings

        self._w = warnings.catch_warnings()
        self._w.__enter__()
        warnings.simplefilter("ignore", RuntimeWarning)

    def __exit__(self, *exc):
        self._w.__exit__(*exc)


def _grid(runs: Sequence[RunResult], x: str, points: int = 241) -> np.ndarray | None:
    xs = [r.timeseries[x].dropna().to_numpy(dtype=float) for r in runs
          if x in r.timeseries and len(r.timeseries[x].dropna())]
    if not xs:
        return None
    lo, hi = min(float(a.min()) for a in xs), max(float(a.max()) for a in xs)
    if hi <= lo:
        hi = lo + 1.0
    return np.linspace(lo, hi, points)


def _colors(policies: Sequence[str]) -> dict[str, str]:
    from matplotlib import colormaps

    cmap = colormaps["tab10"]
    return {p: "#%02x%02x%02x" % tuple(int(255 * c) for c in cmap(i % 10)[:3])
            for i, p in enumerate(policies)}


def _figure(width: float, height: float, **margins):
    """A figure on the Agg canvas (no pyplot state). Fixed margins: constrained layout would
    double the drawing time."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=100)
    FigureCanvasAgg(fig)
    fig.subplots_adjust(**{"left": 0.8 / width, "right": 1 - 0.2 / width, "top": 0.85,
                           "bottom": 0.16, "wspace": 0.25, **margins})
    return fig


def _png(fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", metadata={"Software": None})
    return buf.getvalue()


def _line_panel(ax, g: Group, colors, x: str, y: str, grid: np.ndarray) -> None:
    for s in g.policies:
        med, lo, hi = _bands(s.runs, x, y, grid)
        ax.plot(grid, med, color=colors[s.policy], label=s.policy, linewidth=1.5)
        if len(s.runs) > 1:
            ax.fill_between(grid, lo, hi, color=colors[s.policy], alpha=0.2, linewidth=0)


def plot_over_time(g: Group, colors) -> bytes | None:
    """Allocation, and pending (replay) or failed (fill) pods, over time per policy (median
    over seeds, 25-75% band)."""
    fill = g.experiment == "fill"
    x = "arrived_gpu_pct" if fill and g.gpu else "time"
    grid = _grid(g.runs, x)
    if grid is None:
        return None
    alloc = "gpu_alloc_pct" if g.gpu else "cpu_alloc_pct"
    count = "failed" if fill else "pending"
    fig = _figure(10, 3.6)
    ax1, ax2 = fig.subplots(1, 2)
    _line_panel(ax1, g, colors, x, alloc, grid)
    _line_panel(ax2, g, colors, x, count, grid)
    xlabel = ("arrived workload (% of GPU capacity)" if x == "arrived_gpu_pct"
              else "pod arrivals (events)" if fill else "time (s)")
    ax1.set(xlabel=xlabel, ylabel=LABELS[alloc], title=f"{LABELS[alloc]} over time")
    ax2.set(xlabel=xlabel, ylabel=f"{count} pods", title=f"{count} pods over time")
    for ax in (ax1, ax2):
        ax.grid(True, alpha=0.3)
    ax1.legend(fontsize=8)
    fig.suptitle(g.title)
    return _png(fig)


def plot_unallocated(g: Group, colors) -> bytes | None:
    """Fill runs: unallocated GPU share against the arrived workload, median over seeds with
    the 25-75% band (the FGD paper's main figure)."""
    if g.experiment != "fill" or not g.gpu:
        return None
    grid = _grid(g.runs, "arrived_gpu_pct")
    if grid is None:
        return None
    fig = _figure(10, 4.2)
    ax, zoom = fig.subplots(1, 2)
    _line_panel(ax, g, colors, "arrived_gpu_pct", "unallocated_gpu_pct", grid)
    # The policies part where the cluster fills up: zoom on the last stretch.
    lo = min(max(grid[0], 80.0), grid[-1])
    zgrid = np.linspace(lo, grid[-1], len(grid)) if grid[-1] > lo else grid
    _line_panel(zoom, g, colors, "arrived_gpu_pct", "unallocated_gpu_pct", zgrid)
    for a, title in ((ax, "all arrivals"), (zoom, f"from {lo:.0f}% arrived")):
        a.axvline(100.0, color="grey", linestyle="--", linewidth=0.8)
        a.set(xlabel="arrived workload (% of GPU capacity)", ylabel="unallocated GPU %",
              title=title)
        a.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    fig.suptitle(f"Unallocated GPU vs arrived workload (median, 25-75% band): {g.title}")
    return _png(fig)


def plot_bars(g: Group, colors) -> bytes:
    """Per-policy means with sd error bars of the main figures."""
    keys = [g.primary]
    keys += (["frag_amount_pct", "cpu_alloc_pct", "unscheduled"] if g.gpu
             else ["cpu_alloc_pct", "mem_alloc_pct", "nodes_used"])
    if "delay_p95" in g.keys:
        keys.append("delay_p95")
    fig = _figure(2.6 * len(keys) + 0.5, 3.8, bottom=0.3, wspace=0.35)
    axes = fig.subplots(1, len(keys))
    names = [s.policy for s in g.policies]
    for ax, k in zip(axes, keys):
        means = [s.mean[k] for s in g.policies]
        sds = [0.0 if math.isnan(s.sd[k]) else s.sd[k] for s in g.policies]
        ax.bar(range(len(names)), means, yerr=sds, capsize=3,
               color=[colors[n] for n in names])
        ax.set_xticks(range(len(names)), names, rotation=45, ha="right", fontsize=8)
        ax.set_title(LABELS.get(k, k), fontsize=9)
        ax.grid(True, axis="y", alpha=0.3)
    fig.suptitle(f"{g.title}: mean ± sd over seeds")
    return _png(fig)


def make_plots(groups: Sequence[Group]) -> dict[str, list[tuple[str, str, bytes]]]:
    """``{group slug: [(file name, caption, png bytes)]}``."""
    order: list[str] = []
    for g in groups:
        order += [s.policy for s in g.policies if s.policy not in order]
    colors = _colors(sorted(order))
    out = {}
    for g in groups:
        items = []
        for name, caption, fn in (
                ("time", "Allocation and pending pods over time", plot_over_time),
                ("unallocated", "Unallocated GPU vs arrived workload (median, 25-75% band)",
                 plot_unallocated),
                ("bars", "Per-policy means with sd error bars", plot_bars)):
            png = fn(g, colors)
            if png is not None:
                items.append((f"{g.slug}-{name}.png", caption, png))
        out[g.slug] = items
    return out


# -------------------------------------------------------------------------------- markdown


def _md_table(headers: Sequence[str], rows: Sequence[Sequence[object]],
              numeric_from: int) -> str:
    def cell(v) -> str:
        return str(v).replace("|", "\\|")

    align = ["---" if i < numeric_from else "---:" for i in range(len(headers))]
    lines = ["| " + " | ".join(cell(h) for h in headers) + " |", "| " + " | ".join(align) + " |"]
    lines += ["| " + " | ".join(cell(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def _policy_rows(g: Group) -> list[list[str]]:
    return [[i, s.policy, len(s.runs), *[_fmt_stat(k, s) for k in g.keys]]
            for i, s in enumerate(g.policies, 1)]


def _run_keys(g: Group) -> list[str]:
    return [k for k in g.keys if k != "unscheduled"]


def _run_rows(g: Group) -> list[list[str]]:
    keys = _run_keys(g)
    return [[s.policy, r.spec.seed, *[_fmt(k, _value(r, k)) for k in keys]]
            for s in g.policies for r in s.runs]


def _intro(results: Sequence[RunResult], failures: Sequence) -> list[str]:
    traces = sorted({(r.trace_name, r.spec.trace) for r in results})
    policies = list(dict.fromkeys(r.spec.policy for r in results))
    lines = [f"{len(results)} runs: {len(policies)} policies ({', '.join(policies)}) on "
             f"{len(traces)} trace{'s' if len(traces) != 1 else ''} "
             f"({', '.join(f'{n} from {s}' if n != s else n for n, s in traces)})."]
    if failures:
        lines.append(f"{len(failures)} run{'s' if len(failures) != 1 else ''} failed (see the "
                     "end).")
    lines.append("Values are mean ± sample standard deviation over seeds; the primary metric "
                 "(first column after the run count) is the unallocated GPU share for traces "
                 "with GPUs and the unscheduled (failed + pending) pods otherwise, lower is "
                 "better. GPU figures of fill runs are taken when the arrived workload reaches "
                 "100% of GPU capacity; those of replays (allocation, fragmentation, nodes "
                 "used) at the last arrival, when the whole workload has arrived, and pod "
                 "counts at the end of the replay.")
    return lines


def render_markdown(results: Sequence[RunResult], groups: Sequence[Group], plots,
                    failures: Sequence = (), plot_dir: str = "plots") -> str:
    out = ["# schedbench policy comparison", ""]
    out += [" ".join(_intro(results, failures)), ""]
    for g in groups:
        out += [f"## {g.title}", "", f"**{winner_sentence(g)}**", "",
                f"Seeds: {', '.join(map(str, g.seeds))}.", "",
                _md_table(["rank", "policy", "runs", *_columns(g)], _policy_rows(g), 2), ""]
        if g.has_gaps:
            out += ["### Gap to the optimum", ""]
            out += [" ".join(gap_paragraphs(g)[:2]), ""]
            out += [_md_table(["policy", "snapshots", "optimum status",
                               *[label for _, label in _gap_keys(g)]], _gap_rows(g), 1), ""]
            out += [" ".join(gap_paragraphs(g)[2:]), ""]
        for fname, caption, _ in plots.get(g.slug, []):
            out += [f"![{caption}]({plot_dir}/{fname})", ""]
        out += ["### Runs", "",
                _md_table(["policy", "seed", *[LABELS.get(k, k) for k in _run_keys(g)]],
                          _run_rows(g), 1), ""]
    if failures:
        out += ["## Failed runs", ""]
        out += [_md_table(["trace", "experiment", "policy", "seed", "error"],
                          [[f.spec.trace, f.spec.experiment, f.spec.policy, f.spec.seed,
                            f.error] for f in failures], 99), ""]
    return "\n".join(out).rstrip("\n") + "\n"


# ------------------------------------------------------------------------------------ html

_CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 2em auto;
       max-width: 1200px; color: #222; padding: 0 1em; }
h1 { font-size: 1.6em; } h2 { margin-top: 2em; border-bottom: 1px solid #ddd; }
table { border-collapse: collapse; margin: 1em 0; font-size: 0.85em; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.6em; }
th { background: #f3f3f3; } td.num { text-align: right; font-variant-numeric: tabular-nums; }
tr.winner td { background: #eef8ee; } .winner-text { font-weight: bold; }
figure { margin: 1em 0; } figcaption { font-size: 0.85em; color: #555; }
img { max-width: 100%; height: auto; }
details { margin: 1em 0; }
"""


def _html_table(headers, rows, numeric_from: int, first_row_class: str = "") -> str:
    e = html.escape
    out = ["<table>", "<thead><tr>" + "".join(f"<th>{e(str(h))}</th>" for h in headers)
           + "</tr></thead>", "<tbody>"]
    for n, row in enumerate(rows):
        cls = f' class="{first_row_class}"' if n == 0 and first_row_class else ""
        cells = "".join(f'<td class="num">{e(str(c))}</td>' if i >= numeric_from
                        else f"<td>{e(str(c))}</td>" for i, c in enumerate(row))
        out.append(f"<tr{cls}>{cells}</tr>")
    out += ["</tbody>", "</table>"]
    return "\n".join(out)


def render_html(results: Sequence[RunResult], groups: Sequence[Group], plots,
                failures: Sequence = ()) -> str:
    e = html.escape
    out = ["<!DOCTYPE html>", '<html lang="en">', "<head>", '<meta charset="utf-8">',
           "<title>schedbench policy comparison</title>", f"<style>{_CSS}</style>", "</head>",
           "<body>", "<h1>schedbench policy comparison</h1>"]
    out += [f"<p>{e(line)}</p>" for line in _intro(results, failures)]
    for g in groups:
        out += [f"<h2>{e(g.title)}</h2>", f'<p class="winner-text">{e(winner_sentence(g))}</p>',
                f"<p>Seeds: {e(', '.join(map(str, g.seeds)))}.</p>",
                _html_table(["rank", "policy", "runs", *_columns(g)], _policy_rows(g), 2,
                            "winner")]
        if g.has_gaps:
            paragraphs = gap_paragraphs(g)
            out += ["<h3>Gap to the optimum</h3>"]
            out += [f"<p>{e(line)}</p>" for line in paragraphs[:2]]
            out.append(_html_table(["policy", "snapshots", "optimum status",
                                    *[label for _, label in _gap_keys(g)]], _gap_rows(g), 1))
            out += [f"<p>{e(line)}</p>" for line in paragraphs[2:]]
        for _, caption, png in plots.get(g.slug, []):
            data = base64.b64encode(png).decode("ascii")
            out.append(f'<figure><img alt="{e(caption)}" src="data:image/png;base64,{data}">'
                       f"<figcaption>{e(caption)}</figcaption></figure>")
        out += ["<details><summary>Runs</summary>",
                _html_table(["policy", "seed", *[LABELS.get(k, k) for k in _run_keys(g)]],
                            _run_rows(g), 1), "</details>"]
    if failures:
        out.append("<h2>Failed runs</h2>")
        out.append(_html_table(["trace", "experiment", "policy", "seed", "error"],
                               [[f.spec.trace, f.spec.experiment, f.spec.policy, f.spec.seed,
                                 f.error] for f in failures], 99))
    out += ["</body>", "</html>"]
    return "\n".join(out) + "\n"


# ----------------------------------------------------------------------------------- files


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    """Write ``data`` via a temporary file in the same directory and a rename."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _parquet(df: pd.DataFrame) -> bytes:
    buf = io.BytesIO()
    df.to_parquet(buf, index=False, engine="pyarrow")
    return buf.getvalue()


def _csv(df: pd.DataFrame) -> bytes:
    return df.to_csv(index=False, lineterminator="\n").encode("utf-8")


def write_report(results: Sequence[RunResult], out_dir: str | Path,
                 failures: Sequence = ()) -> dict[str, Path]:
    """Write every report file into ``out_dir`` (created if missing); returns them by name."""
    out = Path(out_dir)
    results = list(results)
    groups = group_results(results)
    plots = make_plots(groups)
    files: dict[str, bytes] = {
        "summary.json": (json.dumps(summary_dict(results), indent=2) + "\n").encode("utf-8")}
    metrics = metrics_frame(results)
    series = timeseries_frame(results)
    files["metrics.parquet"] = _parquet(metrics)
    files["metrics.csv"] = _csv(metrics)
    files["timeseries.parquet"] = _parquet(series)
    files["timeseries.csv"] = _csv(series)
    for items in plots.values():
        for fname, _, png in items:
            files[f"plots/{fname}"] = png
    files["report.md"] = render_markdown(results, groups, plots, failures).encode("utf-8")
    files["report.html"] = render_html(results, groups, plots, failures).encode("utf-8")
    written = {}
    for name, data in files.items():
        atomic_write_bytes(out / name, data)
        written[name] = out / name
    return written
