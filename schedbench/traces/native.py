"""The native trace format: a directory with ``nodes.csv`` + ``pods.csv`` (or the same two tables
as ``.parquet``), the :class:`Trace` they load into, and the validation every reader goes through.

``traces/README.md`` documents the columns. Everything here is vectorised: a column is checked
as a whole and only a failing column is searched for the first bad row, so a million-pod trace
loads in seconds. A bad cell raises :class:`~schedbench.errors.InputError` naming the file, the
1-based data row (the header is not counted) and the column.
"""

from __future__ import annotations

import os
import re
import tempfile
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import InputError
from ..model.labels import label_key_problems, label_value_problems

#: Node columns, in order, as held in memory and written by :func:`write_native`.
NODE_COLUMNS = ("name", "cpu_milli", "memory_mib", "gpu", "gpu_model", "max_pods", "labels",
                "taints")
#: Pod columns, in order, as held in memory and written by :func:`write_native`.
POD_COLUMNS = ("id", "arrival", "duration", "cpu_milli", "memory_mib", "num_gpu", "gpu_milli",
               "priority", "labels", "group", "gpu_models")

NODE_REQUIRED = ("name", "cpu_milli", "memory_mib")
POD_REQUIRED = ("id", "cpu_milli", "memory_mib")
#: Optional columns and the value an absent column or an empty cell takes.
NODE_DEFAULTS = {"gpu": 0, "gpu_model": "", "max_pods": 110, "labels": "", "taints": ""}
POD_DEFAULTS = {"arrival": 0.0, "duration": np.nan, "num_gpu": 0, "priority": 0, "labels": "",
                "group": "", "gpu_models": ""}
#: A pod file may give ``departure`` (seconds, absolute) instead of ``duration``.
POD_EXTRA = ("departure",)

GPU_MILLI = 1000
TAINT_EFFECTS = ("NoSchedule", "PreferNoSchedule", "NoExecute")
_INT_RE = r"\s*[+-]?\d+\s*"


@dataclass
class Trace:
    """A cluster trace: ``nodes`` (:data:`NODE_COLUMNS`) and ``pods`` (:data:`POD_COLUMNS`),
    with normalised dtypes and defaults filled. Pods keep the order of their file."""

    name: str
    nodes: pd.DataFrame
    pods: pd.DataFrame
    source: str = ""
    meta: dict = field(default_factory=dict)

    @property
    def gpu_capacity_milli(self) -> int:
        return int(self.nodes["gpu"].sum()) * GPU_MILLI

    @property
    def gpu_request_milli(self) -> int:
        return int((self.pods["num_gpu"] * self.pods["gpu_milli"]).sum())

    def summary(self) -> dict:
        """Counts, capacities and request totals (what ``schedbench trace info`` prints)."""
        n, p = self.nodes, self.pods
        models = {}
        for model, g in n[n["gpu"] > 0].groupby("gpu_model", sort=True):
            models[model or "(none)"] = {"nodes": int(len(g)), "gpus": int(g["gpu"].sum())}
        finite = p["duration"].notna()
        gpu_cap = self.gpu_capacity_milli
        cpu_cap = int(n["cpu_milli"].sum())
        mem_cap = int(n["memory_mib"].sum())
        cpu_req = int(p["cpu_milli"].sum())
        mem_req = int(p["memory_mib"].sum())
        gpu_req = self.gpu_request_milli
        return {
            "name": self.name,
            "source": self.source,
            "nodes": int(len(n)),
            "gpu_nodes": int((n["gpu"] > 0).sum()),
            "gpus": int(n["gpu"].sum()),
            "gpu_models": models,
            "cpu_milli": cpu_cap,
            "memory_mib": mem_cap,
            "pods": int(len(p)),
            "gpu_pods": int((p["num_gpu"] > 0).sum()),
            "sharing_pods": int(((p["num_gpu"] == 1) & (p["gpu_milli"] < GPU_MILLI)).sum()),
            "constrained_pods": int((p["gpu_models"] != "").sum()),
            "pod_cpu_milli": cpu_req,
            "pod_memory_mib": mem_req,
            "pod_gpu_milli": gpu_req,
            "gpu_request_pct": 100.0 * gpu_req / gpu_cap if gpu_cap else 0.0,
            "cpu_request_pct": 100.0 * cpu_req / cpu_cap if cpu_cap else 0.0,
            "mem_request_pct": 100.0 * mem_req / mem_cap if mem_cap else 0.0,
            "arrival_min": float(p["arrival"].min()) if len(p) else 0.0,
            "arrival_max": float(p["arrival"].max()) if len(p) else 0.0,
            "finite_durations": int(finite.sum()),
            "duration_median": float(p.loc[finite, "duration"].median()) if finite.any()
            else None,
        }


# ------------------------------------------------------------------------------ validation


def _fail(message: str, file: str, row: int | None, column: str | None) -> InputError:
    return InputError(message, file=file or None,
                      obj=f"row {row + 1}" if row is not None else None, field=column)


def _first(mask: np.ndarray) -> int:
    return int(np.flatnonzero(mask)[0])


def _as_text(s: pd.Series) -> pd.Series:
    """A column as text, missing values as "" (CSV cells are read as text)."""
    if s.dtype == object or pd.api.types.is_string_dtype(s.dtype):
        return s.fillna("").astype(str)
    return s.astype(str)


def _int_column(s: pd.Series, column: str, file: str, default,
                minimum: int | None = 0) -> np.ndarray:
    """An integer column; ``default`` (an int, a per-row array, or None = required) fills
    missing values."""
    n = len(s)
    if pd.api.types.is_bool_dtype(s.dtype):
        raise _fail("expected an integer, got a boolean column", file, 0 if n else None, column)
    if pd.api.types.is_integer_dtype(s.dtype) and not s.isna().any():
        vals = s.to_numpy(dtype=np.int64)
    elif pd.api.types.is_numeric_dtype(s.dtype):
        f = s.to_numpy(dtype=np.float64, na_value=np.nan)
        missing = np.isnan(f)
        if default is not None:
            f = np.where(missing, np.asarray(default, dtype=np.float64), f)
        bad = np.isnan(f) | ~np.isfinite(f) | (f != np.floor(f)) | (np.abs(f) >= 2.0 ** 63)
        if bad.any():
            i = _first(bad)
            what = "a missing value" if missing[i] else repr(str(s.iloc[i]))
            raise _fail(f"expected an integer, got {what}", file, i, column)
        vals = f.astype(np.int64)
    else:
        text = _as_text(s)
        empty = (text.str.strip() == "").to_numpy()
        if empty.any():
            if default is None:
                raise _fail("missing value", file, _first(empty), column)
            fill = (pd.Series(np.broadcast_to(np.asarray(default), n).astype(str), dtype=str,
                              index=text.index))
            text = text.where(~empty, fill)
        try:
            num = pd.to_numeric(text)
            ok = pd.api.types.is_integer_dtype(num.dtype) and num.dtype != np.uint64
        except (ValueError, TypeError):
            ok = False
        if not ok:
            good = text.str.fullmatch(_INT_RE).to_numpy(dtype=bool)
            if not good.all():
                i = _first(~good)
                raise _fail(f"expected an integer, got {text.iloc[i]!r}", file, i, column)
            big = np.array([abs(int(v)) >= 2 ** 63 for v in text], dtype=bool)
            i = _first(big) if big.any() else 0
            raise _fail(f"integer out of range: {text.iloc[i]!r}", file, i, column)
        vals = num.to_numpy(dtype=np.int64)
    if minimum is not None and n and (vals < minimum).any():
        i = _first(vals < minimum)
        what = "negative" if minimum == 0 else f"below {minimum}"
        raise _fail(f"{what} value {vals[i]}", file, i, column)
    return vals


def _float_column(s: pd.Series, column: str, file: str, default: float) -> np.ndarray:
    if pd.api.types.is_bool_dtype(s.dtype):
        raise _fail("expected a number, got a boolean column", file, 0 if len(s) else None,
                    column)
    if pd.api.types.is_numeric_dtype(s.dtype):
        f = s.to_numpy(dtype=np.float64, na_value=np.nan)
        return np.where(np.isnan(f), default, f) if not np.isnan(default) else f
    text = _as_text(s).str.strip()
    empty = (text == "").to_numpy()
    num = pd.to_numeric(text.where(~empty, "nan"), errors="coerce").to_numpy(dtype=np.float64)
    lowered = text.str.lower()
    bad = np.isnan(num) & ~empty & ~lowered.isin(("nan", "")).to_numpy()
    if bad.any():
        i = _first(bad)
        raise _fail(f"expected a number, got {text.iloc[i]!r}", file, i, column)
    if not np.isnan(default):
        num = np.where(np.isnan(num), default, num)
    return num


def _str_column(s: pd.Series) -> pd.Series:
    return _as_text(s).reset_index(drop=True)


def _unique_check(values: pd.Series, column: str, file: str, kind: str) -> None:
    empty = (values.str.strip() == "").to_numpy()
    if empty.any():
        raise _fail(f"empty {kind}", file, _first(empty), column)
    dup = values.duplicated().to_numpy()
    if dup.any():
        i = _first(dup)
        j = _first((values == values.iloc[i]).to_numpy())
        raise _fail(f"duplicate {kind} {values.iloc[i]!r} (first in row {j + 1})", file, i,
                    column)
    padded = (values != values.str.strip()).to_numpy()
    if padded.any():
        raise _fail(f"{kind} {values.iloc[_first(padded)]!r} has leading or trailing spaces",
                    file, _first(padded), column)


def _labels_problem(text: str) -> str | None:
    if not text:
        return None
    seen = set()
    for part in text.split(";"):
        key, eq, value = part.partition("=")
        if not eq:
            return f"label {part!r} is not key=value"
        problems = label_key_problems(key) or label_value_problems(value)
        if problems:
            return f"label {part!r}: {problems[0]}"
        if key in seen:
            return f"label key {key!r} repeated"
        seen.add(key)
    return None


def _taints_problem(text: str) -> str | None:
    if not text:
        return None
    for part in text.split(";"):
        kv, colon, effect = part.rpartition(":")
        if not colon:
            return f"taint {part!r} is not key[=value]:Effect"
        if effect not in TAINT_EFFECTS:
            return f"taint {part!r}: unknown effect {effect!r} (known: {', '.join(TAINT_EFFECTS)})"
        key, _, value = kv.partition("=")
        problems = label_key_problems(key) or label_value_problems(value)
        if problems:
            return f"taint {part!r}: {problems[0]}"
    return None


def _models_problem(text: str) -> str | None:
    if not text:
        return None
    for part in text.split("|"):
        if not part or part != part.strip() or any(c in part for c in ",;=\n"):
            return f"malformed GPU model list {text!r} (models joined by '|')"
    return None


def _check_text(values: pd.Series, column: str, file: str, check) -> None:
    """Run ``check`` once per distinct value; raise for the first row holding a bad one."""
    bad = {}
    for v in pd.unique(values):
        problem = check(v)
        if problem:
            bad[v] = problem
    if bad:
        i = _first(values.isin(list(bad)).to_numpy())
        raise _fail(bad[values.iloc[i]], file, i, column)


def _columns(df: pd.DataFrame, required, known, file: str, what: str) -> None:
    missing = [c for c in required if c not in df.columns]
    if missing:
        raise InputError(f"{what} table lacks required column(s) {', '.join(missing)} "
                         f"(has: {', '.join(map(str, df.columns)) or 'none'})", file=file or None,
                         field=missing[0])
    unknown = [c for c in df.columns if c not in known]
    if unknown:
        warnings.warn(f"{file or what}: ignoring unknown column(s) {', '.join(map(str, unknown))}",
                      stacklevel=3)


def normalise_nodes(df: pd.DataFrame, file: str = "") -> pd.DataFrame:
    """Check a node table and return it with exactly :data:`NODE_COLUMNS`, dtypes normalised
    and defaults filled; raise :class:`InputError` at the first bad row."""
    _columns(df, NODE_REQUIRED, NODE_COLUMNS, file, "node")
    df = df.reset_index(drop=True)
    n = len(df)
    out = {}
    name = _str_column(df["name"])
    _unique_check(name, "name", file, "node name")
    out["name"] = name
    out["cpu_milli"] = _int_column(df["cpu_milli"], "cpu_milli", file, None)
    out["memory_mib"] = _int_column(df["memory_mib"], "memory_mib", file, None)
    out["gpu"] = (_int_column(df["gpu"], "gpu", file, 0) if "gpu" in df
                  else np.zeros(n, np.int64))
    out["gpu_model"] = (_str_column(df["gpu_model"]) if "gpu_model" in df
                        else pd.Series([""] * n, dtype=str))
    _check_text(out["gpu_model"], "gpu_model", file,
                lambda v: _models_problem(v) if "|" not in v else
                f"a node has one GPU model, got {v!r}")
    out["max_pods"] = (_int_column(df["max_pods"], "max_pods", file, 110, minimum=1)
                       if "max_pods" in df else np.full(n, 110, np.int64))
    for col, check in (("labels", _labels_problem), ("taints", _taints_problem)):
        out[col] = _str_column(df[col]) if col in df else pd.Series([""] * n, dtype=str)
        _check_text(out[col], col, file, check)
    res = pd.DataFrame({c: out[c] for c in NODE_COLUMNS})
    for c in ("name", "gpu_model", "labels", "taints"):
        res[c] = res[c].astype(str)
    return res


def normalise_pods(df: pd.DataFrame, file: str = "") -> pd.DataFrame:
    """Check a pod table and return it with exactly :data:`POD_COLUMNS` (``departure`` turned
    into ``duration``), dtypes normalised and defaults filled; raise :class:`InputError` at the
    first bad row."""
    _columns(df, POD_REQUIRED, POD_COLUMNS + POD_EXTRA, file, "pod")
    df = df.reset_index(drop=True)
    n = len(df)
    out = {}
    ident = _str_column(df["id"])
    _unique_check(ident, "id", file, "pod id")
    out["id"] = ident
    arrival = (_float_column(df["arrival"], "arrival", file, 0.0) if "arrival" in df
               else np.zeros(n))
    bad = ~np.isfinite(arrival) | (arrival < 0)
    if bad.any():
        i = _first(bad)
        raise _fail(f"arrival must be a finite number >= 0, got {arrival[i]!r}", file, i,
                    "arrival")
    out["arrival"] = arrival
    if "duration" in df:
        duration = _float_column(df["duration"], "duration", file, np.nan)
        col = "duration"
    elif "departure" in df:
        departure = _float_column(df["departure"], "departure", file, np.nan)
        early = departure < arrival
        if early.any():
            i = _first(early)
            raise _fail(f"departure {departure[i]!r} is before arrival {arrival[i]!r}", file, i,
                        "departure")
        duration = departure - arrival
        col = "departure"
    else:
        duration = np.full(n, np.nan)
        col = "duration"
    bad = ~np.isnan(duration) & (~np.isfinite(duration) | (duration <= 0))
    if bad.any():
        i = _first(bad)
        raise _fail(f"duration must be > 0 (empty = runs to the end), got {duration[i]!r}",
                    file, i, col)
    out["duration"] = duration
    out["cpu_milli"] = _int_column(df["cpu_milli"], "cpu_milli", file, None)
    out["memory_mib"] = _int_column(df["memory_mib"], "memory_mib", file, None)
    num_gpu = (_int_column(df["num_gpu"], "num_gpu", file, 0) if "num_gpu" in df
               else np.zeros(n, np.int64))
    if "gpu_milli" in df:
        # an empty cell means a whole GPU for a GPU pod, 0 for a CPU-only pod
        gpu_milli = _int_column(df["gpu_milli"], "gpu_milli", file,
                                np.where(num_gpu > 0, GPU_MILLI, 0))
    else:
        gpu_milli = np.where(num_gpu > 0, GPU_MILLI, 0).astype(np.int64)
    bad = gpu_milli > GPU_MILLI
    if bad.any():
        i = _first(bad)
        raise _fail(f"gpu_milli {gpu_milli[i]} is above {GPU_MILLI} (it is the share of each GPU)",
                    file, i, "gpu_milli")
    bad = (num_gpu == 0) & (gpu_milli != 0)
    if bad.any():
        i = _first(bad)
        raise _fail(f"gpu_milli {gpu_milli[i]} with num_gpu 0 (must be 0)", file, i, "gpu_milli")
    bad = (num_gpu > 0) & (gpu_milli == 0)
    if bad.any():
        raise _fail(f"gpu_milli 0 with num_gpu {num_gpu[_first(bad)]} (must be 1..1000)", file,
                    _first(bad), "gpu_milli")
    bad = (num_gpu > 1) & (gpu_milli < GPU_MILLI)
    if bad.any():
        i = _first(bad)
        raise _fail(f"gpu_milli {gpu_milli[i]} with num_gpu {num_gpu[i]}: a share below "
                    f"{GPU_MILLI} is only allowed for one GPU", file, i, "gpu_milli")
    out["num_gpu"] = num_gpu
    out["gpu_milli"] = gpu_milli
    out["priority"] = (_int_column(df["priority"], "priority", file, 0, minimum=None)
                       if "priority" in df else np.zeros(n, np.int64))
    for col, check in (("labels", _labels_problem), ("group", None),
                       ("gpu_models", _models_problem)):
        out[col] = _str_column(df[col]) if col in df else pd.Series([""] * n, dtype=str)
        if check is not None:
            _check_text(out[col], col, file, check)
    bad = out["group"].str.contains(r"[\n\r]", regex=True).to_numpy(dtype=bool)
    if bad.any():
        raise _fail("group contains a line break", file, _first(bad), "group")
    res = pd.DataFrame({c: out[c] for c in POD_COLUMNS})
    for c in ("id", "labels", "group", "gpu_models"):
        res[c] = res[c].astype(str)
    return res


def validate_trace(trace: Trace, file: str = "", *, nodes_file: str | None = None,
                   pods_file: str | None = None) -> Trace:
    """A new :class:`Trace` with both tables checked and normalised (see
    :func:`normalise_nodes`, :func:`normalise_pods`); errors name ``nodes_file``/``pods_file``
    (default: ``file``)."""
    nodes = normalise_nodes(trace.nodes, nodes_file if nodes_file is not None else file)
    pods = normalise_pods(trace.pods, pods_file if pods_file is not None else file)
    return Trace(trace.name, nodes, pods, trace.source, dict(trace.meta))


# --------------------------------------------------------------------------------- reading


_INT_COLUMNS = {"cpu_milli", "memory_mib", "gpu", "max_pods", "num_gpu", "gpu_milli", "priority"}
_FLOAT_COLUMNS = {"arrival", "duration", "departure"}


def _read_csv_typed(path: Path) -> pd.DataFrame | None:
    """Fast path: parse numeric columns in the C reader. None when any cell does not parse
    (then the caller reads text and finds the bad row)."""
    header = pd.read_csv(path, nrows=0).columns
    dtype, na = {}, {}
    for c in header:
        if c in _INT_COLUMNS:
            dtype[c] = np.int64
        elif c in _FLOAT_COLUMNS:
            dtype[c] = np.float64
            na[c] = ["", "nan", "NaN"]
        else:
            dtype[c] = str
    try:
        return pd.read_csv(path, dtype=dtype, keep_default_na=False, na_values=na)
    except (ValueError, OverflowError, TypeError):
        return None


def _read_table(path: Path) -> pd.DataFrame:
    try:
        if path.suffix == ".parquet":
            return pd.read_parquet(path)
        typed = _read_csv_typed(path)
        if typed is not None:
            return typed
        return pd.read_csv(path, dtype=str, keep_default_na=False, na_filter=False)
    except FileNotFoundError:
        raise InputError("no such file", file=str(path)) from None
    except pd.errors.EmptyDataError:
        raise InputError("empty file (a header row is required)", file=str(path)) from None
    except (pd.errors.ParserError, UnicodeDecodeError, OSError, ValueError) as err:
        msg = " ".join(str(err).split())
        m = re.search(r"line (\d+)", msg)
        obj = f"row {int(m.group(1)) - 1}" if m else None
        raise InputError(f"cannot read table: {msg}", file=str(path), obj=obj) from None


def native_files(directory: str | Path) -> tuple[Path, Path]:
    """The node and pod files of a native trace directory (CSV or Parquet)."""
    d = Path(directory)
    if not d.exists():
        raise InputError("no such trace directory", file=str(d))
    if not d.is_dir():
        raise InputError("a native trace is a directory holding nodes.csv and pods.csv "
                         "(or nodes.parquet and pods.parquet)", file=str(d))
    found = []
    for table in ("nodes", "pods"):
        have = [d / f"{table}.{ext}" for ext in ("csv", "parquet")
                if (d / f"{table}.{ext}").is_file()]
        if not have:
            raise InputError(f"missing {table}.csv (or {table}.parquet)", file=str(d))
        if len(have) > 1:
            raise InputError(f"both {table}.csv and {table}.parquet: remove one", file=str(d))
        found.append(have[0])
    return found[0], found[1]


def read_native(directory: str | Path, name: str | None = None, source: str | None = None) -> Trace:
    """Load and validate a native trace directory."""
    nodes_path, pods_path = native_files(directory)
    nodes = normalise_nodes(_read_table(nodes_path), str(nodes_path))
    pods = normalise_pods(_read_table(pods_path), str(pods_path))
    d = Path(directory)
    return Trace(name or d.resolve().name, nodes, pods, source or f"native:{directory}")


# --------------------------------------------------------------------------------- writing


#: Tables with more rows are written by Arrow's CSV writer (10x faster than pandas; it quotes
#: every string). Both write a float as the shortest text that reads back to the same double
#: and NaN as an empty cell, so either way the round trip is exact.
ARROW_CSV_ROWS = 100_000


def _write_csv(df: pd.DataFrame, target: Path, arrow_rows: int | None = None) -> None:
    limit = ARROW_CSV_ROWS if arrow_rows is None else arrow_rows
    if len(df) <= limit:
        atomic_write_text(target, df.to_csv(index=False, lineterminator="\n"))
        return
    import pyarrow as pa
    import pyarrow.csv as pacsv

    table = pa.Table.from_pandas(df, preserve_index=False)
    atomic_write(target, lambda tmp: pacsv.write_csv(table, tmp))


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def atomic_write(target: str | Path, write) -> None:
    """Call ``write(tmp_path)`` on a temporary file beside ``target``, give it the permissions
    a new file gets (0666 less the umask: ``mkstemp`` alone would leave it private), and rename
    it over ``target``; on any error the temporary file is removed and ``target`` untouched."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    os.close(fd)
    try:
        write(tmp)
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_text(target: str | Path, text: str) -> None:
    def write(tmp: str) -> None:
        with open(tmp, "w", encoding="utf-8", newline="") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
    atomic_write(target, write)


def write_native(trace: Trace, directory: str | Path, fmt: str = "csv") -> None:
    """Write ``trace`` as ``DIR/nodes.FMT`` and ``DIR/pods.FMT`` (validated first). Each file is
    written to a temporary file and renamed into place; a file of the other format left in DIR
    (which would make the directory ambiguous) is removed afterwards."""
    if fmt not in ("csv", "parquet"):
        raise InputError(f"unknown native format {fmt!r}; known: csv, parquet", field="--format")
    checked = validate_trace(trace, file=str(directory))
    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    for table, df in (("nodes", checked.nodes), ("pods", checked.pods)):
        target = d / f"{table}.{fmt}"
        if fmt == "csv":
            _write_csv(df, target)
        else:
            atomic_write(target, lambda tmp, df=df: df.to_parquet(tmp, index=False))
        other = d / f"{table}.{'parquet' if fmt == 'csv' else 'csv'}"
        other.unlink(missing_ok=True)
