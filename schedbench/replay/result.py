"""What one run of a trace under one policy is (:class:`RunSpec`) and what it yields
(:class:`RunResult`): the end metrics that ``summary.json`` holds, extra figures, a time series."""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd

#: The keys of a run's ``metrics`` in ``summary.json``, in this order.
METRIC_KEYS = ("placed", "failed", "pending", "unallocated_gpu_pct", "gpu_alloc_pct",
               "cpu_alloc_pct", "mem_alloc_pct", "frag_amount_pct", "frag_ratio_pct",
               "nodes_used", "wall_seconds")
INT_METRICS = frozenset({"placed", "failed", "pending", "nodes_used"})

#: Columns of :attr:`RunResult.timeseries`.
TIMESERIES_COLUMNS = ("time", "arrived_gpu_pct", "placed", "failed", "pending", "gpu_alloc_pct",
                      "cpu_alloc_pct", "mem_alloc_pct", "unallocated_gpu_pct", "frag_amount_pct",
                      "frag_ratio_pct", "nodes_used")

EXPERIMENTS = ("replay", "fill")

#: The pseudo-policy of ``compare --policies ...,optimal``: the optimum (CP-SAT,
#: :mod:`schedbench.optimal`) the heuristics are measured against.
OPTIMAL_POLICY = "optimal"

#: The keys of one entry of :attr:`RunResult.optimal` (one re-optimised snapshot), in order:
#: where it was taken (a label, the replay's virtual time or None, the pods arrived), how many
#: pods it re-placed, the solver's status, the best placement
#: found (pods placed, nodes used, fragmentation of the placement) with the solver's objective,
#: best bound and relative gap of the primary objective (pods placed, weighted by priority),
#: then the run's own figures on the same snapshot (``None`` in the ``optimal`` run of a fill
#: sweep: every heuristic of the sweep is compared with it).
OPTIMAL_POINT_KEYS = ("at", "time", "arrived", "pods", "status", "placed", "placed_upper",
                      "nodes_used", "frag_amount_pct", "objective", "bound", "gap",
                      "wall_seconds", "run_placed", "run_nodes_used", "run_frag_amount_pct")


@dataclass(frozen=True)
class OptimalOptions:
    """How ``compare`` re-optimises (see :mod:`schedbench.replay.reoptimise`): a replay every
    ``every`` arrivals (0: ten snapshots evenly spaced over the arrivals) and at the last
    arrival; each solve stops after ``time_limit`` seconds with ``workers`` CP-SAT workers.
    ``hints``: the fill optimum starts from the best placement of these policies' fill runs
    (the sweep's policies; best-fit when empty)."""

    every: int = 0
    time_limit: float = 10.0
    workers: int = 1
    hints: tuple[str, ...] = ()


@dataclass(frozen=True)
class RunSpec:
    """One run: a trace (``FORMAT:PATH``, a native path, or ``default``), a policy (built-in
    name, ``atc23-*``, or a KubeSchedulerConfiguration file), a seed and an experiment."""

    trace: str
    policy: str
    seed: int
    experiment: str = "replay"
    nodes: str | None = None          # openb: node list other than the one beside the pods
    tune: float = 1.3                 # fill: inflate requests to this share of GPU capacity
    fail_unschedulable: bool = False  # replay: a pod that does not fit fails instead of waiting
    optimal: OptimalOptions | None = None  # re-optimise snapshots (None: not asked for)


@dataclass
class RunResult:
    """The outcome of a :class:`RunSpec`: ``metrics`` has exactly :data:`METRIC_KEYS`;
    ``optimal`` the re-optimised snapshots of the run (dicts with :data:`OPTIMAL_POINT_KEYS`)
    when the spec asks for them."""

    spec: RunSpec
    trace_name: str
    metrics: dict
    extra: dict = field(default_factory=dict)
    timeseries: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(
        columns=list(TIMESERIES_COLUMNS)))
    placements: dict[str, str] | None = None
    optimal: list[dict] | None = None

    def __post_init__(self) -> None:
        if tuple(self.metrics) != METRIC_KEYS:
            raise ValueError(f"metrics must have exactly the keys {METRIC_KEYS}, "
                             f"got {tuple(self.metrics)}")
        self.metrics = {k: (int(v) if k in INT_METRICS else float(v))
                        for k, v in self.metrics.items()}
        for point in self.optimal or ():
            if tuple(point) != OPTIMAL_POINT_KEYS:
                raise ValueError(f"optimal points must have exactly the keys "
                                 f"{OPTIMAL_POINT_KEYS}, got {tuple(point)}")
