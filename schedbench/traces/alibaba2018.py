"""Reader for Alibaba cluster-trace-v2018 (co-located online services and batch jobs).

PATH is a directory holding the extracted tables (CSV, no header; ``.csv`` or ``.csv.gz``):

- ``machine_meta`` (required) -> nodes: each machine's last row; ``cpu_num`` cores ->
  ``cpu_milli``; ``mem_size`` (normalised 0-100) x ``memory_mib`` / 100 -> ``memory_mib``;
  ``failure_domain_1`` -> label ``alibaba.com/failure-domain-1``, ``failure_domain_2`` ->
  ``topology.kubernetes.io/zone``.
- ``batch_task`` (optional) -> one pod per task instance (``instance_num`` of them), id
  ``JOB.TASK.i``; ``start_time`` -> arrival, ``end_time - start_time`` -> duration (open-ended
  when the task has not ended); ``plan_cpu`` (100 = 1 core) x 10 -> ``cpu_milli``;
  ``plan_mem`` (0-100) -> ``memory_mib`` as above; group and label ``job`` = job name.
- ``container_meta`` (optional) -> one pod per container, from its first row: arrival =
  ``time_stamp``, open-ended (long-running services); ``cpu_request`` (100 = 1 core) x 10,
  ``mem_size`` (0-100) as above; group and label ``app`` = ``app_du``.

Pods are ordered by arrival (ties: containers first, then the files' order) and times are
seconds since the start of the sampling window. Missing optional tables give no pods of that
kind (a warning when there are no pods at all).
"""

from __future__ import annotations

import re
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import InputError
from .native import Trace, normalise_nodes, normalise_pods

#: ``mem_size``/``plan_mem`` 100 = the largest machine; this is an assumption (not disclosed).
DEFAULT_MEMORY_MIB = 524_288
MIN_DURATION = 1.0
#: batch_task instances expanded into pods at most (the full table has far more; use until=)
MAX_PODS = 20_000_000

MACHINE_META = ["machine_id", "time_stamp", "failure_domain_1", "failure_domain_2", "cpu_num",
                "mem_size", "status"]
BATCH_TASK = ["task_name", "instance_num", "job_name", "task_type", "status", "start_time",
              "end_time", "plan_cpu", "plan_mem"]
CONTAINER_META = ["container_id", "machine_id", "time_stamp", "app_du", "status", "cpu_request",
                  "cpu_limit", "mem_size"]
_LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")


def _table(directory: Path, name: str) -> Path | None:
    for ext in (".csv", ".csv.gz"):
        p = directory / f"{name}{ext}"
        if p.is_file():
            return p
    return None


def _read_typed(path: Path, names: list[str], dtypes: dict) -> pd.DataFrame | None:
    """Fast path: numeric columns parsed by the C reader; None when a cell does not parse (the
    caller then reads text to find it)."""
    dtype = {c: (np.int64 if dtypes.get(c) == "int" else
                 np.float64 if dtypes.get(c) == "float" else str) for c in names}
    na = {c: [""] for c, kind in dtypes.items() if kind == "float"}
    try:
        return pd.read_csv(path, header=None, names=names, dtype=dtype, keep_default_na=False,
                           na_values=na)
    except (ValueError, OverflowError, TypeError, pd.errors.ParserError):
        return None


def _read(path: Path, names: list[str], dtypes: dict) -> pd.DataFrame:
    try:
        typed = _read_typed(path, names, dtypes)
        if typed is not None:
            return typed
        df = pd.read_csv(path, header=None, names=names, dtype=str, keep_default_na=False,
                         na_filter=False)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError, OSError) as err:
        if isinstance(err, pd.errors.EmptyDataError):
            return pd.DataFrame({c: pd.Series([], dtype=str) for c in names})
        raise InputError(f"cannot read table: {' '.join(str(err).split())}",
                         file=str(path)) from None
    for col, kind in dtypes.items():
        text = df[col].str.strip()
        num = pd.to_numeric(text.replace("", "nan"), errors="coerce")
        bad = (num.isna() & (text != "")).to_numpy()
        if kind == "int":
            bad = bad | (num.isna() | (num % 1 != 0)).to_numpy()
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise InputError(f"expected {'an integer' if kind == 'int' else 'a number'}, got "
                             f"{df[col].iloc[i]!r}", file=str(path), obj=f"row {i + 1}",
                             field=col)
        df[col] = num.to_numpy(np.float64) if kind == "float" else num.to_numpy(np.int64)
    return df


def _label_values(values: pd.Series) -> pd.Series:
    """Values usable as label values: invalid characters become '-', cut to 63 characters."""
    mapping = {}
    for v in pd.unique(values):
        s = str(v)
        if not _LABEL_VALUE.match(s) or len(s) > 63:
            s = re.sub(r"[^-A-Za-z0-9_.]", "-", s)[:63].strip("-_.")
        mapping[v] = s
    return values.map(mapping)


def read_machine_meta(path: Path, memory_mib: float) -> pd.DataFrame:
    df = _read(path, MACHINE_META, {"time_stamp": "float", "cpu_num": "int",
                                    "mem_size": "float"})
    order = np.lexsort((np.arange(len(df)), df["time_stamp"].to_numpy()))
    last = df.iloc[order].groupby("machine_id", sort=False).tail(1)
    last = last.iloc[np.argsort(last.index.to_numpy(), kind="stable")]
    mem = last["mem_size"].to_numpy()
    bad = np.isnan(mem) | (mem < 0) | (mem > 100)
    if bad.any():
        i = int(last.index[np.flatnonzero(bad)[0]])
        raise InputError(f"mem_size must be 0..100, got {df['mem_size'].iloc[i]!r}",
                         file=str(path), obj=f"row {i + 1}", field="mem_size")
    fd1 = _label_values(last["failure_domain_1"].str.strip())
    fd2 = _label_values(last["failure_domain_2"].str.strip())
    labels = np.where(fd1 != "", "alibaba.com/failure-domain-1=" + fd1, "")
    zone = np.where(fd2 != "", "topology.kubernetes.io/zone=" + fd2, "")
    labels = pd.Series(labels, dtype=str) + np.where((labels != "") & (zone != ""), ";", "") + zone
    return pd.DataFrame({"name": last["machine_id"].to_numpy(),
                         "cpu_milli": last["cpu_num"].to_numpy() * 1000,
                         "memory_mib": np.rint(mem / 100.0 * memory_mib).astype(np.int64),
                         "labels": labels.to_numpy()})


def _duration(start: np.ndarray, end: np.ndarray) -> np.ndarray:
    ended = ~np.isnan(end) & (end > 0) & (end >= start)
    return np.where(ended, np.maximum(end - start, MIN_DURATION), np.nan)


def read_batch_task(path: Path, memory_mib: float, until: float | None = None
                    ) -> pd.DataFrame:
    df = _read(path, BATCH_TASK, {"instance_num": "float", "start_time": "float",
                                  "end_time": "float", "plan_cpu": "float", "plan_mem": "float"})
    if until is not None:
        df = df[np.nan_to_num(df["start_time"].to_numpy(), nan=0.0) < until].reset_index(
            drop=True)
    inst = np.nan_to_num(df["instance_num"].to_numpy(), nan=1.0).astype(np.int64)
    inst = np.maximum(inst, 1)
    if inst.sum() > MAX_PODS:
        raise InputError(f"batch_task expands to {int(inst.sum()):,} instances, more than "
                         f"{MAX_PODS:,} pods; keep the tasks starting before a time with "
                         "until=SECONDS (--until)", file=str(path))
    rows = np.repeat(np.arange(len(df)), inst)
    k = np.arange(len(rows)) - np.repeat(np.cumsum(inst) - inst, inst)
    t = df.iloc[rows].reset_index(drop=True)
    start = np.maximum(np.nan_to_num(t["start_time"].to_numpy(), nan=0.0), 0.0)
    job = _label_values(t["job_name"].str.strip())
    return pd.DataFrame({
        "id": t["job_name"] + "." + t["task_name"] + "." + pd.Series(k).astype(str),
        "arrival": start, "duration": _duration(start, t["end_time"].to_numpy()),
        "cpu_milli": np.rint(np.nan_to_num(t["plan_cpu"].to_numpy()) * 10).astype(np.int64),
        "memory_mib": np.rint(np.nan_to_num(t["plan_mem"].to_numpy()) / 100.0 * memory_mib
                              ).astype(np.int64),
        "labels": np.where(job != "", "job=" + job, ""), "group": t["job_name"],
        "_source": 1, "_row": rows})


def read_container_meta(path: Path, memory_mib: float, until: float | None = None
                        ) -> pd.DataFrame:
    df = _read(path, CONTAINER_META, {"time_stamp": "float", "cpu_request": "float",
                                      "mem_size": "float"})
    order = np.lexsort((np.arange(len(df)), df["time_stamp"].to_numpy()))
    first = df.iloc[order].groupby("container_id", sort=False).head(1)
    first = first.iloc[np.argsort(first.index.to_numpy(), kind="stable")]
    if until is not None:
        first = first[np.nan_to_num(first["time_stamp"].to_numpy(), nan=0.0) < until]
    app = _label_values(first["app_du"].str.strip())
    return pd.DataFrame({
        "id": first["container_id"].to_numpy(),
        "arrival": np.maximum(np.nan_to_num(first["time_stamp"].to_numpy(), nan=0.0), 0.0),
        "duration": np.nan,
        "cpu_milli": np.rint(np.nan_to_num(first["cpu_request"].to_numpy()) * 10
                             ).astype(np.int64),
        "memory_mib": np.rint(np.nan_to_num(first["mem_size"].to_numpy()) / 100.0 * memory_mib
                              ).astype(np.int64),
        "labels": np.where(app != "", "app=" + app, ""), "group": first["app_du"].to_numpy(),
        "_source": 0, "_row": first.index.to_numpy()})


def read_alibaba2018(path: str | Path, *, memory_mib: float = DEFAULT_MEMORY_MIB,
                     until: float | None = None) -> Trace:
    """Nodes from machine_meta, pods from batch_task and container_meta (module docstring);
    ``until`` keeps only pods arriving before that many seconds."""
    d = Path(path)
    if not d.is_dir():
        raise InputError("alibaba2018:PATH names a directory holding machine_meta.csv (and "
                         "optionally batch_task.csv, container_meta.csv)", file=str(d))
    meta_path = _table(d, "machine_meta")
    if meta_path is None:
        raise InputError("missing machine_meta.csv (or .csv.gz)", file=str(d))
    nodes = normalise_nodes(read_machine_meta(meta_path, memory_mib), str(meta_path))
    parts, found = [], []
    for name, reader in (("container_meta", read_container_meta),
                         ("batch_task", read_batch_task)):
        p = _table(d, name)
        if p is not None:
            parts.append(reader(p, memory_mib, until))
            found.append(name)
    if parts:
        pods = pd.concat(parts, ignore_index=True)
        pods = pods.iloc[np.lexsort((pods["_row"].to_numpy(), pods["_source"].to_numpy(),
                                     pods["arrival"].to_numpy()))]
        pods = pods.drop(columns=["_source", "_row"]).reset_index(drop=True)
    else:
        pods = pd.DataFrame({"id": pd.Series([], dtype=str), "cpu_milli": [], "memory_mib": []})
    if len(pods) == 0:
        warnings.warn(f"{d}: no batch_task or container_meta rows: the trace has no pods",
                      stacklevel=2)
    pods_file = str(d / (found[0] + ".csv")) if len(found) == 1 else str(d)
    return Trace(f"alibaba2018-{d.resolve().name}", nodes, normalise_pods(pods, pods_file),
                 f"alibaba2018:{path}", {"memory_mib_per_unit": memory_mib, "tables": found,
                                         "until": until})
