"""Turning Borg-style event logs (Google 2011 and 2019 traces) into native nodes and pods.

Both traces log per-task events (SUBMIT, SCHEDULE, then one of EVICT/FAIL/FINISH/KILL/LOST)
and per-machine events (ADD/REMOVE/UPDATE), with timestamps in microseconds and CPU/memory
normalised to the largest machine. The readers map their event codes onto :data:`SUBMIT`,
:data:`SCHEDULE`, :data:`END` and :data:`OTHER` and call :func:`pods_from_events` and
:func:`nodes_from_events`, so both traces follow the same rules (``traces/README.md``).
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd

SUBMIT, SCHEDULE, END, OTHER = 0, 1, 2, 3
ADD, REMOVE, UPDATE = 0, 1, 2

#: Trace time 0 means "before the trace window"; 2**63 - 1 means "after it".
AFTER_TRACE = 2 ** 63 - 1
#: The trace window starts 600 s after time 0.
WINDOW_OFFSET_US = 600_000_000
#: Default scales: normalised 1.0 of CPU = this many milli-cores, of memory = this many MiB.
#: The traces do not disclose the largest machine; these are assumptions (configurable).
DEFAULT_CPU_MILLI = 32_000
DEFAULT_MEMORY_MIB = 65_536
MIN_DURATION = 1.0


def _seconds(t_us: np.ndarray) -> np.ndarray:
    """Trace microseconds -> seconds since the window start (before-the-trace -> 0,
    after-the-trace -> inf)."""
    t = t_us.astype(np.float64)
    out = np.maximum((t - WINDOW_OFFSET_US) / 1e6, 0.0)
    out[t_us >= AFTER_TRACE] = np.inf
    return out


def pods_from_events(events: pd.DataFrame, *, cpu_milli: float, memory_mib: float
                     ) -> tuple[pd.DataFrame, dict]:
    """Native pod rows from task events.

    ``events`` columns: ``time`` (int64 µs), ``kind`` (SUBMIT/SCHEDULE/END/OTHER), ``job``,
    ``index`` (int64), ``cpu``, ``mem`` (normalised float, NaN = unknown), ``priority``
    (int64), ``sclass`` (int64, -1 = unknown). Rules: every SUBMIT of a task starts a pod
    (resubmissions after an eviction or failure are pods ``JOB-INDEX-rN``); events before a
    task's first SUBMIT in the window (tasks already running when it starts) are dropped;
    arrival = the SUBMIT time; duration = first END - first SCHEDULE (or - SUBMIT when never
    scheduled), open-ended when no END follows; requests and priority come from the SUBMIT
    row. Arrivals are shifted so the first pod arrives at 0 (``meta['origin_seconds']``).
    """
    n = len(events)
    if n == 0:
        return _empty_pods(), {"origin_seconds": 0.0, "dropped_events": 0}
    order = np.lexsort((np.arange(n), events["time"].to_numpy(), events["index"].to_numpy(),
                        events["job"].to_numpy()))
    ev = events.iloc[order].reset_index(drop=True)
    ev["_row"] = order                            # position in the input, for ties
    job = ev["job"].to_numpy()
    idx = ev["index"].to_numpy()
    kind = ev["kind"].to_numpy()
    new_task = np.ones(n, bool)
    new_task[1:] = (job[1:] != job[:-1]) | (idx[1:] != idx[:-1])
    task_no = np.cumsum(new_task) - 1
    submits = (kind == SUBMIT).astype(np.int64)
    csum = np.cumsum(submits)
    task_start = np.flatnonzero(new_task)
    base = (csum - submits)[task_start]          # submits before each task's first row
    attempt = csum - base[task_no]               # 1-based attempt number; 0 = before SUBMIT
    keep = attempt > 0
    dropped = int((~keep).sum())
    ev = ev[keep].reset_index(drop=True)
    attempt = attempt[keep]
    if len(ev) == 0:
        return _empty_pods(), {"origin_seconds": 0.0, "dropped_events": dropped}
    kind = ev["kind"].to_numpy()
    t = _seconds(ev["time"].to_numpy())
    job = ev["job"].to_numpy()
    idx = ev["index"].to_numpy()
    new_pod = np.ones(len(ev), bool)
    new_pod[1:] = (job[1:] != job[:-1]) | (idx[1:] != idx[:-1]) | (attempt[1:] != attempt[:-1])
    pod_no = np.cumsum(new_pod) - 1
    first = np.flatnonzero(new_pod)
    npods = len(first)
    sched = np.full(npods, np.inf)
    np.minimum.at(sched, pod_no[kind == SCHEDULE], t[kind == SCHEDULE])
    end = np.full(npods, np.inf)
    np.minimum.at(end, pod_no[kind == END], t[kind == END])
    arrival = t[first]
    start = np.where(np.isfinite(sched), sched, arrival)
    duration = np.where(np.isfinite(end), np.maximum(end - start, MIN_DURATION), np.nan)
    origin = float(arrival[np.isfinite(arrival)].min()) if np.isfinite(arrival).any() else 0.0
    arrival = arrival - origin
    sub = ev.iloc[first]
    cpu = np.nan_to_num(sub["cpu"].to_numpy(dtype=np.float64), nan=0.0)
    mem = np.nan_to_num(sub["mem"].to_numpy(dtype=np.float64), nan=0.0)
    jobs = pd.Series(job[first]).astype(str)
    ids = jobs + "-" + pd.Series(idx[first]).astype(str)
    att = attempt[first]
    ids = ids.where(att == 1, ids + "-r" + pd.Series(att).astype(str))
    sclass = sub["sclass"].to_numpy()
    labels = np.where(sclass >= 0, "scheduling-class=" + pd.Series(sclass).astype(str), "")
    pods = pd.DataFrame({
        "id": ids, "arrival": arrival, "duration": duration,
        "cpu_milli": np.rint(cpu * cpu_milli).astype(np.int64),
        "memory_mib": np.rint(mem * memory_mib).astype(np.int64),
        "num_gpu": 0, "gpu_milli": 0, "priority": sub["priority"].to_numpy(dtype=np.int64),
        "labels": labels, "group": jobs, "gpu_models": ""})
    # trace order: by arrival, ties by first appearance in the files
    pods = pods.iloc[np.lexsort((sub["_row"].to_numpy(), arrival))].reset_index(drop=True)
    return pods, {"origin_seconds": origin, "dropped_events": dropped}


def _empty_pods() -> pd.DataFrame:
    return pd.DataFrame({"id": pd.Series([], dtype=str), "arrival": [], "duration": [],
                         "cpu_milli": pd.Series([], dtype=np.int64),
                         "memory_mib": pd.Series([], dtype=np.int64)})


def nodes_from_events(events: pd.DataFrame, at_us: int | None, *, cpu_milli: float,
                      memory_mib: float, source: str) -> pd.DataFrame:
    """Native node rows: the machines present at time ``at_us`` (None = after the last event).

    ``events`` columns: ``time`` (int64 µs), ``machine`` (int64), ``kind`` (ADD/REMOVE/UPDATE),
    ``platform`` (str), ``cpu``, ``mem`` (normalised, NaN = not given). A machine is present
    when its last event at or before ``at_us`` is not REMOVE; its capacity is the last one given
    at or before then. Machines whose capacity is never given are dropped with a warning."""
    ev = events
    if at_us is not None:
        ev = ev[ev["time"].to_numpy() <= at_us]
    order = np.lexsort((np.arange(len(ev)), ev["time"].to_numpy(), ev["machine"].to_numpy()))
    ev = ev.iloc[order]
    last = ev.groupby("machine", sort=True).tail(1)
    present = last[last["kind"] != REMOVE]["machine"]
    caps = ev[ev["cpu"].notna() & ev["mem"].notna()].groupby("machine", sort=True).tail(1)
    caps = caps.set_index("machine")
    have = present[present.isin(caps.index)]
    unknown = len(present) - len(have)
    if unknown:
        warnings.warn(f"{source}: {unknown} machine(s) without a known capacity dropped",
                      stacklevel=3)
    c = caps.loc[have.to_numpy()]
    platforms = {p: i for i, p in enumerate(pd.unique(events["platform"].fillna("")))}
    plat = c["platform"].fillna("").map(platforms).to_numpy()
    return pd.DataFrame({
        "name": pd.Series(have.to_numpy()).astype(str),
        "cpu_milli": np.rint(c["cpu"].to_numpy(dtype=np.float64) * cpu_milli).astype(np.int64),
        "memory_mib": np.rint(c["mem"].to_numpy(dtype=np.float64) * memory_mib).astype(np.int64),
        "gpu": 0, "gpu_model": "", "max_pods": 110,
        "labels": "platform=p" + pd.Series(plat).astype(str)})
