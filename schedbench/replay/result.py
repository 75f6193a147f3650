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


@dataclass
class RunResult:
    """The outcome of a :class:`RunSpec`: ``metrics`` has exactly :data:`METRIC_KEYS`."""

    spec: RunSpec
    trace_name: str
    metrics: dict
    extra: dict = field(default_factory=dict)
    timeseries: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(
        columns=list(TIMESERIES_COLUMNS)))
    placements: dict[str, str] | None = None

    def __post_init__(self) -> None:
        if tuple(self.metrics) != METRIC_KEYS:
            raise ValueError(f"metrics must have exactly the keys {METRIC_KEYS}, "
                             f"got {tuple(self.metrics)}")
        self.metrics = {k: (int(v) if k in INT_METRICS else float(v))
                        for k, v in self.metrics.items()}
