"""Schema-level reader for Google cluster-data 2019 (``clusterdata-2019``, trace format v3).

The 2019 trace is published through BigQuery. PATH is a directory holding exports of the
``instance_events`` and ``machine_events`` tables (``collection_events`` optional), each as
JSON lines (``.json``/``.jsonl``, optionally ``.gz``; nested ``resource_request`` and
``capacity`` records, 64-bit integers as strings as BigQuery writes them) or CSV with a header
(nested fields flattened as ``resource_request.cpus`` or ``resource_request_cpus``). A table is
one file ``TABLE.*`` or a folder ``TABLE/`` of part files.

Fields used (``clusterdata_trace_format_v3.proto``): instance events ``time``, ``type``
(SUBMIT 0, QUEUE 1, ENABLE 2, SCHEDULE 3, EVICT 4, FAIL 5, FINISH 6, KILL 7, LOST 8,
UPDATE_PENDING 9, UPDATE_RUNNING 10; names accepted too), ``collection_id``,
``instance_index``, ``priority``, ``scheduling_class``, ``collection_type`` (alloc-set
instances, type 1, are dropped: they are reservations the tasks run inside),
``resource_request.cpus``/``.memory`` (normalised); machine events ``time``, ``machine_id``,
``type`` (ADD 1, REMOVE 2, UPDATE 3), ``capacity.cpus``/``.memory``, ``platform_id``;
collection events ``collection_id``, ``collection_type``, ``priority`` (to fill gaps).
Event rules and scales are those of :mod:`._borg`.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import InputError
from . import _borg
from .native import Trace, normalise_nodes, normalise_pods

EVENT_TYPES = {"SUBMIT": 0, "QUEUE": 1, "ENABLE": 2, "SCHEDULE": 3, "EVICT": 4, "FAIL": 5,
               "FINISH": 6, "KILL": 7, "LOST": 8, "UPDATE_PENDING": 9, "UPDATE_RUNNING": 10}
INSTANCE_KINDS = {0: _borg.SUBMIT, 1: _borg.OTHER, 2: _borg.OTHER, 3: _borg.SCHEDULE,
                  4: _borg.END, 5: _borg.END, 6: _borg.END, 7: _borg.END, 8: _borg.END,
                  9: _borg.OTHER, 10: _borg.OTHER}
MACHINE_TYPES = {"ADD": 1, "REMOVE": 2, "UPDATE": 3}
MACHINE_KINDS = {1: _borg.ADD, 2: _borg.REMOVE, 3: _borg.UPDATE}
COLLECTION_TYPES = {"JOB": 0, "ALLOC_SET": 1}
_EXTS = (".json", ".jsonl", ".json.gz", ".jsonl.gz", ".csv", ".csv.gz")


def _files(directory: Path, table: str, required: bool) -> list[Path]:
    found = []
    sub = directory / table
    if sub.is_dir():
        found = sorted(p for p in sub.iterdir() if p.is_file() and p.name.endswith(_EXTS))
    if not found:
        found = sorted(p for p in directory.iterdir()
                       if p.is_file() and p.name.startswith(table) and p.name.endswith(_EXTS))
    if not found and required:
        raise InputError(f"no {table} export (expected {table}.json[.gz], {table}.csv[.gz] "
                         f"or a {table}/ folder of them)", file=str(directory))
    return found


def _flatten_json(path: Path) -> pd.DataFrame:
    try:
        df = pd.read_json(path, lines=True, dtype=False)
    except ValueError as err:
        raise InputError(f"cannot read JSON lines: {' '.join(str(err).split())}",
                         file=str(path)) from None
    for col in list(df.columns):
        if df[col].map(lambda v: isinstance(v, dict)).any():
            for key in ("cpus", "memory"):
                df[f"{col}.{key}"] = df[col].map(
                    lambda v, k=key: v.get(k) if isinstance(v, dict) else None)
            df = df.drop(columns=[col])
    return df


def _read_table(files: list[Path]) -> pd.DataFrame:
    frames = []
    for f in files:
        if ".json" in f.name:
            df = _flatten_json(f)
        else:
            try:
                df = pd.read_csv(f, dtype=str, keep_default_na=False)
            except (pd.errors.ParserError, UnicodeDecodeError, OSError) as err:
                raise InputError(f"cannot read CSV: {' '.join(str(err).split())}",
                                 file=str(f)) from None
            except pd.errors.EmptyDataError:
                continue
            df.columns = [c.replace("resource_request_", "resource_request.")
                          .replace("capacity_", "capacity.") for c in df.columns]
        df["_file"] = str(f)
        frames.append(df)
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def _col(df: pd.DataFrame, name: str, file: str, *, required: bool = True) -> pd.Series | None:
    if name in df.columns:
        return df[name]
    if required:
        has = ", ".join(c for c in df.columns if c != "_file")
        raise InputError(f"missing field {name!r} (has: {has})", file=file, field=name)
    return None


def _numbers(s: pd.Series | None, n: int, name: str, df: pd.DataFrame, *, names: dict | None = None,
             integer: bool = False, default=np.nan) -> np.ndarray:
    if s is None:
        return np.full(n, default, dtype=np.float64)
    text = s.astype(object).where(s.notna(), "")
    if names:
        text = text.map(lambda v: names.get(v, v) if isinstance(v, str) else v)
    num = pd.to_numeric(text.astype(str).str.strip().replace({"": "nan", "None": "nan"}),
                        errors="coerce").to_numpy(dtype=np.float64)
    raw = text.astype(str).str.strip()
    bad = np.isnan(num) & ~raw.isin(["", "None", "nan"]).to_numpy()
    if integer:
        bad |= ~np.isnan(num) & (num % 1 != 0)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise InputError(f"expected {'an integer' if integer else 'a number'}, got {raw.iloc[i]!r}",
                         file=df["_file"].iloc[i], obj=f"row {i + 1}", field=name)
    return np.where(np.isnan(num), default, num)


def _kinds(codes: np.ndarray, mapping: dict, df: pd.DataFrame, name: str) -> np.ndarray:
    out = np.full(len(codes), -1, np.int8)
    for code, kind in mapping.items():
        out[codes == code] = kind
    if (out < 0).any():
        i = int(np.flatnonzero(out < 0)[0])
        raise InputError(f"unknown event type {codes[i]!r}", file=df["_file"].iloc[i],
                         obj=f"row {i + 1}", field=name)
    return out


def read_instance_events(directory: Path, collections: pd.DataFrame | None) -> pd.DataFrame:
    df = _read_table(_files(directory, "instance_events", True))
    n = len(df)
    if n == 0:
        return pd.DataFrame({c: [] for c in ("time", "kind", "job", "index", "cpu", "mem",
                                             "priority", "sclass")})
    f = str(directory / "instance_events")
    time = _numbers(_col(df, "time", f), n, "time", df, integer=True)
    if np.isnan(time).any():
        i = int(np.flatnonzero(np.isnan(time))[0])
        raise InputError("missing time", file=df["_file"].iloc[i], obj=f"row {i + 1}",
                         field="time")
    etype = _numbers(_col(df, "type", f), n, "type", df, names=EVENT_TYPES, integer=True)
    job = _numbers(_col(df, "collection_id", f), n, "collection_id", df, integer=True)
    index = _numbers(_col(df, "instance_index", f), n, "instance_index", df, integer=True,
                     default=0)
    prio = _numbers(_col(df, "priority", f, required=False), n, "priority", df, integer=True)
    ctype = _numbers(_col(df, "collection_type", f, required=False), n, "collection_type", df,
                     names=COLLECTION_TYPES, integer=True)
    if collections is not None and len(collections):
        cprio = collections.groupby("collection_id")["priority"].last()
        ctyp = collections.groupby("collection_id")["collection_type"].last()
        jobs = pd.Series(job)
        prio = np.where(np.isnan(prio), jobs.map(cprio).to_numpy(dtype=np.float64), prio)
        ctype = np.where(np.isnan(ctype), jobs.map(ctyp).to_numpy(dtype=np.float64), ctype)
    out = pd.DataFrame({
        "time": time.astype(np.int64),
        "kind": _kinds(etype, INSTANCE_KINDS, df, "type"),
        "job": job.astype(np.int64), "index": index.astype(np.int64),
        "cpu": _numbers(_col(df, "resource_request.cpus", f, required=False), n,
                        "resource_request.cpus", df),
        "mem": _numbers(_col(df, "resource_request.memory", f, required=False), n,
                        "resource_request.memory", df),
        "priority": np.nan_to_num(prio).astype(np.int64),
        "sclass": np.nan_to_num(_numbers(_col(df, "scheduling_class", f, required=False), n,
                                         "scheduling_class", df, integer=True), nan=-1
                                ).astype(np.int64)})
    return out[~(ctype == 1)].reset_index(drop=True)


def read_collection_events(directory: Path) -> pd.DataFrame | None:
    files = _files(directory, "collection_events", False)
    if not files:
        return None
    df = _read_table(files)
    n = len(df)
    if n == 0:
        return None
    f = str(directory / "collection_events")
    return pd.DataFrame({
        "collection_id": _numbers(_col(df, "collection_id", f), n, "collection_id", df,
                                  integer=True).astype(np.int64),
        "priority": _numbers(_col(df, "priority", f, required=False), n, "priority", df,
                             integer=True),
        "collection_type": _numbers(_col(df, "collection_type", f, required=False), n,
                                    "collection_type", df, names=COLLECTION_TYPES,
                                    integer=True)})


def read_machine_events(directory: Path) -> pd.DataFrame:
    df = _read_table(_files(directory, "machine_events", True))
    n = len(df)
    f = str(directory / "machine_events")
    if n == 0:
        return pd.DataFrame({"time": np.array([], np.int64), "machine": np.array([], np.int64),
                             "kind": np.array([], np.int8), "platform": [], "cpu": [], "mem": []})
    plat = _col(df, "platform_id", f, required=False)
    return pd.DataFrame({
        "time": _numbers(_col(df, "time", f), n, "time", df, integer=True, default=0
                         ).astype(np.int64),
        "machine": _numbers(_col(df, "machine_id", f), n, "machine_id", df, integer=True
                            ).astype(np.int64),
        "kind": _kinds(_numbers(_col(df, "type", f), n, "type", df, names=MACHINE_TYPES,
                                integer=True), MACHINE_KINDS, df, "type"),
        "platform": (plat.fillna("").astype(str) if plat is not None else ""),
        "cpu": _numbers(_col(df, "capacity.cpus", f, required=False), n, "capacity.cpus", df),
        "mem": _numbers(_col(df, "capacity.memory", f, required=False), n, "capacity.memory",
                        df)})


def read_google2019(path: str | Path, *, cpu_milli: float = _borg.DEFAULT_CPU_MILLI,
                    memory_mib: float = _borg.DEFAULT_MEMORY_MIB) -> Trace:
    d = Path(path)
    if not d.is_dir():
        raise InputError("google2019:PATH names a directory holding instance_events and "
                         "machine_events exports", file=str(d))
    collections = read_collection_events(d)
    tasks = read_instance_events(d, collections)
    machines = read_machine_events(d)
    pods, meta = _borg.pods_from_events(tasks, cpu_milli=cpu_milli, memory_mib=memory_mib)
    submits = tasks["time"].to_numpy()[tasks["kind"].to_numpy() == _borg.SUBMIT]
    at = int(submits.min()) if len(submits) else None
    nodes = _borg.nodes_from_events(machines, at, cpu_milli=cpu_milli, memory_mib=memory_mib,
                                    source=str(d / "machine_events"))
    meta.update({"cpu_milli_per_unit": cpu_milli, "memory_mib_per_unit": memory_mib,
                 "nodes_at_us": at})
    return Trace(f"google2019-{d.resolve().name}",
                 normalise_nodes(nodes, str(d / "machine_events")),
                 normalise_pods(pods, str(d / "instance_events")), f"google2019:{path}", meta)


def write_sample(directory: str | Path, *, seed: int = 0, machines: int = 6, jobs: int = 4,
                 fmt: str = "json") -> Path:
    """Write a small synthetic trace in the 2019 export schema (for tests and examples; the
    values are made up, only the shape of the records follows the published schema)."""
    rng = np.random.default_rng(seed)
    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    t0 = _borg.WINDOW_OFFSET_US
    mach = []
    for m in range(machines):
        cap = {"cpus": float(rng.choice([0.25, 0.5, 1.0])),
               "memory": float(rng.choice([0.25, 0.5]))}
        mach.append({"time": "0", "machine_id": str(1000 + m), "type": 1,
                     "switch_id": f"sw{m % 2}", "capacity": cap, "platform_id": f"plat{m % 2}"})
    mach.append({"time": str(t0 + 5_000_000), "machine_id": "1000", "type": 2,
                 "capacity": None, "platform_id": "plat0"})
    inst, coll = [], []
    t = t0 + 10_000_000
    for j in range(jobs):
        cid = 5000 + j
        ctype = 1 if j == jobs - 1 else 0
        coll.append({"time": str(t), "type": 0, "collection_id": str(cid), "priority": 100 + j,
                     "collection_type": ctype, "scheduling_class": j % 4, "user": "u"})
        for i in range(3):
            req = {"cpus": round(float(rng.uniform(0.01, 0.05)), 4),
                   "memory": round(float(rng.uniform(0.01, 0.05)), 4)}
            base = {"collection_id": str(cid), "instance_index": i, "priority": 100 + j,
                    "scheduling_class": j % 4, "collection_type": ctype,
                    "resource_request": req}
            ts = t + i * 1_000_000
            inst.append({**base, "time": str(ts), "type": 0, "machine_id": "0"})
            inst.append({**base, "time": str(ts + 2_000_000), "type": 3,
                         "machine_id": str(1001 + i)})
            if i < 2:
                inst.append({**base, "time": str(ts + 62_000_000), "type": 6 if i == 0 else 5,
                             "machine_id": str(1001 + i)})
        t += 30_000_000
    for name, rows in (("machine_events", mach), ("instance_events", inst),
                       ("collection_events", coll)):
        if fmt == "json":
            (d / f"{name}.json").write_text("".join(json.dumps(r) + "\n" for r in rows))
        else:
            flat = pd.json_normalize(rows)
            flat.to_csv(d / f"{name}.csv", index=False)
    return d
