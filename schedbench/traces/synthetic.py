"""Synthetic traces fitted to a real one: :func:`fit` a :class:`TraceModel` (node shapes and pod
shapes with their frequencies, a Poisson arrival rate, an empirical duration distribution),
then :func:`generate` a trace of any size from it, reproducibly for a seed.

- Node shape = ``(cpu_milli, memory_mib, gpu, gpu_model, max_pods)``; pod shape =
  ``(cpu_milli, memory_mib, num_gpu, gpu_milli, gpu_models)``. Both are drawn i.i.d. from the
  fitted frequencies.
- Arrivals: a Poisson process of the fitted rate (pods per second over the trace's arrival
  span), or all at 0 when the trace has no times.
- Durations: inverse-CDF sampling from the fitted quantiles (linear between them), times
  ``duration_scale``, capped at ``max_duration`` when set; a fitted share of pods is
  open-ended (runs to the end).
- Labels: nodes get ``kubernetes.io/hostname`` and ``topology.kubernetes.io/zone`` (``zones``
  zones, round-robin); pods get ``app=app-K`` (and group ``app-K``) where K is the rank of the
  pod's shape in the model, so pods of one shape behave like the replicas of one application.

Everything is vectorised NumPy drawing from one ``Generator(PCG64(seed))`` in a fixed order, so
the same model, sizes and seed give the same trace, and 1,000,000 pods take seconds.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import InputError
from .native import Trace, atomic_write_text, normalise_nodes, normalise_pods

NODE_SHAPE = ("cpu_milli", "memory_mib", "gpu", "gpu_model", "max_pods")
POD_SHAPE = ("cpu_milli", "memory_mib", "num_gpu", "gpu_milli", "gpu_models")
MODEL_VERSION = 1
MIN_DURATION = 1.0


@dataclass
class TraceModel:
    """What :func:`generate` draws from. ``node_shapes``/``pod_shapes`` hold the shape columns
    plus ``count`` (frequency in the fitted trace), most frequent first."""

    node_shapes: pd.DataFrame
    pod_shapes: pd.DataFrame
    arrival_rate: float | None = None        # pods per second; None = every pod at time 0
    duration_probs: list[float] = field(default_factory=list)
    duration_quantiles: list[float] = field(default_factory=list)   # empty = all open-ended
    open_share: float = 1.0                  # share of pods that run to the end
    duration_scale: float = 1.0              # drawn durations are multiplied by this
    max_duration: float | None = None        # cap on drawn (scaled) durations (s)
    zones: int = 3
    source: str = ""

    # ------------------------------------------------------------------------------ JSON

    def to_dict(self) -> dict:
        def rows(df, cols):
            return [{c: (r[c] if isinstance(r[c], str) else int(r[c])) for c in cols}
                    for r in df.to_dict("records")]
        return {
            "version": MODEL_VERSION,
            "source": self.source,
            "node_shapes": rows(self.node_shapes, NODE_SHAPE + ("count",)),
            "pod_shapes": rows(self.pod_shapes, POD_SHAPE + ("count",)),
            "arrival_rate": self.arrival_rate,
            "duration": {"probs": list(map(float, self.duration_probs)),
                         "quantiles": list(map(float, self.duration_quantiles)),
                         "open_share": float(self.open_share),
                         "scale": float(self.duration_scale),
                         "max_duration": self.max_duration},
            "zones": int(self.zones),
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=1) + "\n"

    def save(self, path: str | Path) -> None:
        atomic_write_text(path, self.to_json())

    @classmethod
    def from_dict(cls, d: dict, file: str = "") -> TraceModel:
        try:
            if d.get("version") != MODEL_VERSION:
                raise InputError(f"unsupported model version {d.get('version')!r}",
                                 field="version")
            nodes = _shapes(d["node_shapes"], NODE_SHAPE, ("gpu_model",), "node_shapes")
            pods = _shapes(d["pod_shapes"], POD_SHAPE, ("gpu_models",), "pod_shapes")
            dur = d.get("duration") or {}
            probs = [float(x) for x in dur.get("probs", [])]
            quants = [float(x) for x in dur.get("quantiles", [])]
            if len(probs) != len(quants) or (probs and (probs[0] != 0.0 or probs[-1] != 1.0
                                                        or np.any(np.diff(probs) <= 0)
                                                        or np.any(np.diff(quants) < 0)
                                                        or quants[0] <= 0)):
                raise InputError("duration probs must rise from 0 to 1 and quantiles be "
                                 "positive and non-decreasing, of the same length",
                                 field="duration")
            rate = d.get("arrival_rate")
            if rate is not None and not (float(rate) > 0 and math.isfinite(float(rate))):
                raise InputError(f"arrival_rate must be > 0 or null, got {rate!r}",
                                 field="arrival_rate")
            open_share = float(dur.get("open_share", 1.0 if not quants else 0.0))
            if not 0.0 <= open_share <= 1.0:
                raise InputError("open_share must be in 0..1", field="duration.open_share")
            mx = dur.get("max_duration")
            if mx is not None and not float(mx) > 0:
                raise InputError("max_duration must be > 0 or null", field="duration.max_duration")
            scale = float(dur.get("scale", 1.0))
            if not (scale > 0 and math.isfinite(scale)):
                raise InputError("scale must be > 0", field="duration.scale")
            zones = int(d.get("zones", 3))
            if zones < 1:
                raise InputError("zones must be >= 1", field="zones")
            return cls(nodes, pods, None if rate is None else float(rate), probs, quants,
                       open_share, scale, None if mx is None else float(mx), zones,
                       str(d.get("source", "")))
        except InputError as err:
            raise err.located(file=file or None) from None
        except (KeyError, TypeError, ValueError, AttributeError) as err:
            raise InputError(f"malformed trace model: {err!r}", file=file or None) from None

    @classmethod
    def load(cls, path: str | Path) -> TraceModel:
        try:
            d = json.loads(Path(path).read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise InputError("no such file", file=str(path)) from None
        except (json.JSONDecodeError, UnicodeDecodeError) as err:
            raise InputError(f"not JSON: {err}", file=str(path)) from None
        if not isinstance(d, dict):
            raise InputError("a trace model is a JSON object", file=str(path))
        return cls.from_dict(d, str(path))


def _shapes(rows, cols, text_cols, where) -> pd.DataFrame:
    if not isinstance(rows, list) or not rows:
        raise InputError("needs at least one shape", field=where)
    for i, row in enumerate(rows):
        if not isinstance(row, dict):
            raise InputError("a shape is an object", field=f"{where}[{i}]")
        missing = [c for c in cols + ("count",) if c not in row]
        if missing:
            raise InputError(f"shape lacks {', '.join(missing)}", field=f"{where}[{i}]")
        for c in cols + ("count",):
            v = row[c]
            ok = isinstance(v, str) if c in text_cols else (
                isinstance(v, int) and not isinstance(v, bool) and v >= 0)
            if not ok:
                kind = "a string" if c in text_cols else "an integer >= 0"
                raise InputError(f"expected {kind}, got {v!r}", field=f"{where}[{i}].{c}")
    df = pd.DataFrame([{c: r[c] for c in cols + ("count",)} for r in rows])
    for c in df.columns:
        df[c] = df[c].astype(str) if c in text_cols else df[c].astype(np.int64)
    if (df["count"] <= 0).all():
        raise InputError("all counts are 0", field=where)
    return df


def _shape_table(df: pd.DataFrame, cols) -> pd.DataFrame:
    if len(df) == 0:
        return pd.DataFrame({**{c: [] for c in cols}, "count": []})
    g = df.groupby(list(cols), sort=True, dropna=False).size().rename("count").reset_index()
    # most frequent first; ties in the groupby's (sorted) key order
    order = np.argsort(-g["count"].to_numpy(), kind="stable")
    return g.iloc[order].reset_index(drop=True)


def fit(trace: Trace, *, quantiles: int = 201, zones: int = 3) -> TraceModel:
    """Fit a :class:`TraceModel` to ``trace`` (see the module docstring)."""
    if len(trace.nodes) == 0 or len(trace.pods) == 0:
        raise InputError("cannot fit a model to a trace without nodes or pods",
                         obj=trace.name)
    nodes = _shape_table(trace.nodes, NODE_SHAPE)
    pods = _shape_table(trace.pods, POD_SHAPE)
    arr = trace.pods["arrival"].to_numpy(dtype=np.float64)
    span = float(arr.max() - arr.min())
    rate = (len(arr) - 1) / span if len(arr) > 1 and span > 0 else None
    dur = trace.pods["duration"].to_numpy(dtype=np.float64)
    finite = dur[~np.isnan(dur)]
    if len(finite):
        probs = np.linspace(0.0, 1.0, max(2, quantiles))
        quants = np.maximum.accumulate(np.quantile(finite, probs))
        probs_l, quants_l = probs.tolist(), quants.tolist()
    else:
        probs_l, quants_l = [], []
    open_share = float(np.isnan(dur).mean())
    return TraceModel(nodes, pods, rate, probs_l, quants_l, open_share, zones=zones,
                      source=trace.source or trace.name)


def _draw(rng: np.random.Generator, counts: np.ndarray, k: int) -> np.ndarray:
    p = counts.astype(np.float64)
    cdf = np.cumsum(p / p.sum())
    cdf[-1] = 1.0
    return np.searchsorted(cdf, rng.random(k), side="right").clip(0, len(p) - 1)


def _numbered(prefix: str, k: int) -> pd.Series:
    width = max(4, len(str(max(k - 1, 0))))
    return prefix + pd.Series(np.arange(k)).astype(str).str.zfill(width)


def generate(model: TraceModel, num_nodes: int, num_pods: int, seed: int, *,
             name: str | None = None) -> Trace:
    """A trace of ``num_nodes`` nodes and ``num_pods`` pods drawn from ``model`` with
    ``Generator(PCG64(seed))``; the same arguments give the same trace."""
    if num_nodes < 0 or num_pods < 0:
        raise InputError("node and pod counts must be >= 0")
    rng = np.random.Generator(np.random.PCG64(seed))
    ns, ps = model.node_shapes, model.pod_shapes
    # draws, always in this order
    node_idx = _draw(rng, ns["count"].to_numpy(), num_nodes)
    pod_idx = _draw(rng, ps["count"].to_numpy(), num_pods)
    gaps = rng.exponential(1.0, num_pods)
    u_dur = rng.random(num_pods)
    u_open = rng.random(num_pods)

    names = _numbered("node-", num_nodes)
    zone = pd.Series(np.arange(num_nodes) % model.zones).astype(str)
    nodes = pd.DataFrame({
        "name": names,
        **{c: ns[c].to_numpy()[node_idx] for c in NODE_SHAPE},
        "labels": ("kubernetes.io/hostname=" + names + ";topology.kubernetes.io/zone=zone-"
                   + zone),
        "taints": "",
    })
    if model.arrival_rate:
        arrival = np.cumsum(gaps) / model.arrival_rate
    else:
        arrival = np.zeros(num_pods)
    if model.duration_quantiles:
        duration = np.interp(u_dur, model.duration_probs, model.duration_quantiles)
        duration = np.maximum(duration * model.duration_scale, MIN_DURATION)
        if model.max_duration:
            duration = np.minimum(duration, model.max_duration)
        duration[u_open < model.open_share] = np.nan
    else:
        duration = np.full(num_pods, np.nan)
    apps = np.array([f"app-{k}" for k in range(len(ps))], dtype=object)
    group = apps[pod_idx]
    pods = pd.DataFrame({
        "id": _numbered("pod-", num_pods),
        "arrival": arrival, "duration": duration,
        **{c: ps[c].to_numpy()[pod_idx] for c in POD_SHAPE},
        "priority": 0,
        "labels": "app=" + pd.Series(group, dtype=str),
        "group": pd.Series(group, dtype=str),
    })
    trace = Trace(name or f"synthetic-{num_nodes}x{num_pods}-s{seed}",
                  normalise_nodes(nodes, "generated nodes"),
                  normalise_pods(pods, "generated pods"),
                  f"synthetic:{model.source}", {"seed": seed})
    return trace
