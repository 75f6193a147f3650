"""Reader for Alibaba cluster-trace-gpu-v2023 ("openb"), the traces of the FGD paper (ATC '23).

A pod list (``openb_pod_list_*.csv``) plus a node list (``openb_node_list_gpu_node.csv`` beside
it unless another is named). Mapping (see ``traces/README.md``):

- nodes: ``sn`` -> name, ``cpu_milli``, ``memory_mib``, ``gpu``, ``model`` -> gpu_model;
- pods: ``name`` -> id, ``cpu_milli``, ``memory_mib``, ``num_gpu``, ``gpu_milli`` (above 1000
  becomes 1000 and <= 0 becomes 0, as the FGD authors' converter does), ``gpu_spec`` ->
  gpu_models (split on ``|``, repeats dropped, order kept), ``qos`` -> label ``qos=...``,
  ``creation_time`` -> arrival, ``deletion_time - creation_time`` -> duration (a zero lifetime
  becomes 1 s, since a native duration is > 0). Files without times (the ``multigpu`` lists)
  give arrival 0 and an open-ended duration. ``pod_phase`` and ``scheduled_time`` are dropped.
  Pods keep the file's order.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import InputError
from .native import Trace, normalise_nodes, normalise_pods

DEFAULT_NODE_LIST = "openb_node_list_gpu_node.csv"
NODE_COLUMNS = ("sn", "cpu_milli", "memory_mib", "gpu", "model")
POD_REQUIRED = ("name", "cpu_milli", "memory_mib", "num_gpu", "gpu_milli")
MIN_DURATION = 1.0


def _read_csv(path: Path, what: str) -> pd.DataFrame:
    try:
        return pd.read_csv(path, dtype=str, keep_default_na=False, na_filter=False)
    except FileNotFoundError:
        hint = (f" (the node list defaults to {DEFAULT_NODE_LIST} beside the pod list; "
                "name another with --nodes)" if what == "node list" else "")
        raise InputError(f"no such {what}{hint}", file=str(path)) from None
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as err:
        raise InputError(f"cannot read {what}: {' '.join(str(err).split())}",
                         file=str(path)) from None


def _require(df: pd.DataFrame, cols, path: Path, what: str) -> None:
    missing = [c for c in cols if c not in df.columns]
    if missing:
        raise InputError(f"not an openb {what}: missing column(s) {', '.join(missing)}",
                         file=str(path), field=missing[0])


def _models(spec: str) -> str:
    """``gpu_spec`` as the allowed-model list, kept verbatim (only blanks dropped): a repeated
    model ("A|B|B") allows the same models as "A|B", but the FGD simulator groups pods by the
    exact string, so typical pods of the gpuspec files depend on it."""
    if not spec:
        return ""
    return "|".join(p.strip() for p in spec.split("|") if p.strip())


def read_openb_nodes(path: str | Path) -> pd.DataFrame:
    """An openb node list as a native node table."""
    path = Path(path)
    raw = _read_csv(path, "node list")
    _require(raw, NODE_COLUMNS, path, "node list")
    df = pd.DataFrame({"name": raw["sn"], "cpu_milli": raw["cpu_milli"],
                       "memory_mib": raw["memory_mib"], "gpu": raw["gpu"],
                       "gpu_model": raw["model"].str.strip()})
    try:
        return normalise_nodes(df, str(path))
    except InputError as err:
        err.field = {"name": "sn", "gpu_model": "model"}.get(err.field, err.field)
        raise


def _clamped_milli(raw: pd.Series, path: Path) -> pd.Series:
    num = pd.to_numeric(raw.str.strip(), errors="coerce")
    bad = num.isna().to_numpy() | (num.to_numpy(dtype=np.float64, na_value=np.nan) % 1 != 0)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise InputError(f"expected an integer, got {raw.iloc[i]!r}", file=str(path),
                         obj=f"row {i + 1}", field="gpu_milli")
    return num.clip(lower=0, upper=1000).astype(np.int64)


def read_openb_pods(path: str | Path) -> pd.DataFrame:
    """An openb pod list as a native pod table (file order kept)."""
    path = Path(path)
    raw = _read_csv(path, "pod list")
    _require(raw, POD_REQUIRED, path, "pod list")
    df = pd.DataFrame({"id": raw["name"], "cpu_milli": raw["cpu_milli"],
                       "memory_mib": raw["memory_mib"], "num_gpu": raw["num_gpu"],
                       "gpu_milli": _clamped_milli(raw["gpu_milli"], path)})
    if "creation_time" in raw:
        created = pd.to_numeric(raw["creation_time"].str.strip().replace("", "0"),
                                errors="coerce")
        bad = created.isna().to_numpy()
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise InputError(f"expected a number, got {raw['creation_time'].iloc[i]!r}",
                             file=str(path), obj=f"row {i + 1}", field="creation_time")
        df["arrival"] = created.to_numpy(dtype=np.float64)
        if "deletion_time" in raw:
            text = raw["deletion_time"].str.strip()
            deleted = pd.to_numeric(text.replace("", "nan"), errors="coerce").to_numpy(
                dtype=np.float64)
            bad = np.isnan(deleted) & (text != "").to_numpy()
            if bad.any():
                i = int(np.flatnonzero(bad)[0])
                raise InputError(f"expected a number, got {text.iloc[i]!r}", file=str(path),
                                 obj=f"row {i + 1}", field="deletion_time")
            life = deleted - df["arrival"].to_numpy()
            early = life < 0
            if early.any():
                i = int(np.flatnonzero(early)[0])
                raise InputError(f"deletion_time {deleted[i]:g} is before creation_time "
                                 f"{df['arrival'].iloc[i]:g}", file=str(path),
                                 obj=f"row {i + 1}", field="deletion_time")
            df["duration"] = np.where(np.isnan(life), np.nan, np.maximum(life, MIN_DURATION))
    if "gpu_spec" in raw:
        specs = raw["gpu_spec"]
        mapping = {s: _models(s) for s in pd.unique(specs)}
        df["gpu_models"] = specs.map(mapping)
    if "qos" in raw:
        qos = raw["qos"].str.strip()
        df["labels"] = np.where(qos != "", "qos=" + qos, "")
    try:
        return normalise_pods(df, str(path))
    except InputError as err:
        err.field = {"id": "name", "arrival": "creation_time", "duration": "deletion_time",
                     "gpu_models": "gpu_spec", "labels": "qos"}.get(err.field, err.field)
        raise


def read_openb(path: str | Path, nodes: str | Path | None = None) -> Trace:
    """An openb pod list with its node list (default: the GPU-node list beside it)."""
    path = Path(path)
    if path.is_dir():
        raise InputError("openb:PATH names a pod list CSV (e.g. openb_pod_list_default.csv), "
                         "not a directory", file=str(path))
    node_path = Path(nodes) if nodes else path.parent / DEFAULT_NODE_LIST
    node_df = read_openb_nodes(node_path)
    pods = read_openb_pods(path)
    stem = path.stem.removeprefix("openb_pod_list_")
    return Trace(f"openb-{stem}", node_df, pods, f"openb:{path}",
                 meta={"node_list": str(node_path)})
