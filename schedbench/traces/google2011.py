"""Reader for Google cluster-data 2011 (``clusterdata-2011-2``, Borg, May 2011).

PATH is a directory holding ``machine_events/`` and ``task_events/`` with the gzipped CSV part
files of the public bucket (no header rows); every part present is read. Timestamps are in
microseconds (the window starts at 600 s; 0 = before it, 2**63-1 = after it). CPU and memory
are normalised to the largest machine (1.0); ``cpu_milli`` and ``memory_mib`` say what 1.0
becomes (defaults :data:`~._borg.DEFAULT_CPU_MILLI` and :data:`~._borg.DEFAULT_MEMORY_MIB`,
assumptions since the trace does not disclose the largest machine). Event rules are those of
:mod:`._borg`; ``traces/README.md`` has the column mapping.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import InputError
from . import _borg
from .native import Trace, normalise_nodes, normalise_pods

# task_events event types -> _borg kinds
TASK_KINDS = {0: _borg.SUBMIT, 1: _borg.SCHEDULE, 2: _borg.END, 3: _borg.END, 4: _borg.END,
              5: _borg.END, 6: _borg.END, 7: _borg.OTHER, 8: _borg.OTHER}
MACHINE_KINDS = {0: _borg.ADD, 1: _borg.REMOVE, 2: _borg.UPDATE}


def _parts(directory: Path, table: str, required: bool = True) -> list[Path]:
    sub = directory / table
    files = sorted(p for p in sub.glob("*.csv*") if p.is_file()) if sub.is_dir() else []
    if not files:
        files = sorted(p for p in directory.glob(f"{table}*.csv*") if p.is_file())
    if not files and required:
        raise InputError(f"no {table} part files (expected {table}/part-*.csv.gz)",
                         file=str(directory))
    return files


def _read_parts(files: list[Path], names: list[str], usecols: list[int], dtypes: dict
                ) -> tuple[pd.DataFrame, list[tuple[str, int]]]:
    """All parts concatenated, and (file, rows) of each part to locate a row."""
    frames = []
    for f in files:
        try:
            df = pd.read_csv(f, header=None, names=names, usecols=usecols, dtype=dtypes,
                             engine="c")
        except (ValueError, pd.errors.ParserError, EOFError, OSError) as err:
            raise InputError(f"cannot read part: {' '.join(str(err).split())}",
                             file=str(f)) from None
        frames.append(df)
    df = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=names)
    return df, [(str(f), len(x)) for f, x in zip(files, frames)]


def _locate(i: int, parts: list[tuple[str, int]]) -> tuple[str, int]:
    for f, rows in parts:
        if i < rows:
            return f, i
        i -= rows
    return "", i


def _codes(values: pd.Series, mapping: dict, parts: list[tuple[str, int]],
           field: str) -> np.ndarray:
    v = values.to_numpy()
    out = np.full(len(v), -1, np.int8)
    for code, kind in mapping.items():
        out[v == code] = kind
    if (out < 0).any():
        i = int(np.flatnonzero(out < 0)[0])
        f, row = _locate(i, parts)
        raise InputError(f"unknown event type {int(v[i])}", file=f, obj=f"row {row + 1}",
                         field=field)
    return out


def read_task_events(directory: str | Path) -> pd.DataFrame:
    files = _parts(Path(directory), "task_events")
    names = ["time", "missing", "job", "index", "machine", "type", "user", "sclass", "priority",
             "cpu", "mem", "disk", "different_machine"]
    df, parts = _read_parts(files, names, [0, 2, 3, 5, 7, 8, 9, 10],
                     {"time": np.int64, "job": np.int64, "index": np.int64, "type": np.int64,
                      "sclass": np.float64, "priority": np.float64, "cpu": np.float64,
                      "mem": np.float64})
    return pd.DataFrame({
        "time": df["time"].to_numpy(np.int64),
        "kind": _codes(df["type"], TASK_KINDS, parts, "event type"),
        "job": df["job"].to_numpy(np.int64), "index": df["index"].to_numpy(np.int64),
        "cpu": df["cpu"].to_numpy(np.float64), "mem": df["mem"].to_numpy(np.float64),
        "priority": np.nan_to_num(df["priority"].to_numpy(np.float64)).astype(np.int64),
        "sclass": np.nan_to_num(df["sclass"].to_numpy(np.float64), nan=-1).astype(np.int64)})


def read_machine_events(directory: str | Path) -> pd.DataFrame:
    files = _parts(Path(directory), "machine_events")
    names = ["time", "machine", "type", "platform", "cpu", "mem"]
    df, parts = _read_parts(files, names, list(range(6)),
                     {"time": np.int64, "machine": np.int64, "type": np.int64, "platform": str,
                      "cpu": np.float64, "mem": np.float64})
    return pd.DataFrame({
        "time": df["time"].to_numpy(np.int64), "machine": df["machine"].to_numpy(np.int64),
        "kind": _codes(df["type"], MACHINE_KINDS, parts, "event type"),
        "platform": df["platform"].fillna("").astype(str),
        "cpu": df["cpu"].to_numpy(np.float64), "mem": df["mem"].to_numpy(np.float64)})


def read_google2011(path: str | Path, *, cpu_milli: float = _borg.DEFAULT_CPU_MILLI,
                    memory_mib: float = _borg.DEFAULT_MEMORY_MIB) -> Trace:
    """Nodes = machines present when the first task of the window is submitted; pods = task
    submissions in the window (see :func:`._borg.pods_from_events`)."""
    d = Path(path)
    if not d.is_dir():
        raise InputError("google2011:PATH names a directory holding machine_events/ and "
                         "task_events/", file=str(d))
    tasks = read_task_events(d)
    machines = read_machine_events(d)
    pods, meta = _borg.pods_from_events(tasks, cpu_milli=cpu_milli, memory_mib=memory_mib)
    submit_times = tasks["time"].to_numpy()[tasks["kind"].to_numpy() == _borg.SUBMIT]
    at = int(submit_times.min()) if len(submit_times) else None
    nodes = _borg.nodes_from_events(machines, at, cpu_milli=cpu_milli, memory_mib=memory_mib,
                                    source=str(d / "machine_events"))
    meta.update({"cpu_milli_per_unit": cpu_milli, "memory_mib_per_unit": memory_mib,
                 "nodes_at_us": at})
    return Trace(f"google2011-{d.resolve().name}",
                 normalise_nodes(nodes, str(d / "machine_events")),
                 normalise_pods(pods, str(d / "task_events")), f"google2011:{path}", meta)
