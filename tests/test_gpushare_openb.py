"""Facts about the FGD fill experiment on the real openb trace (skipped without ../shared)."""

from __future__ import annotations

import pytest

from conftest import SHARED_TRACES
from schedbench.gpushare import fill_experiment, model_names_of, prepare_fill, typical_pods
from schedbench.traces import load_trace
from schedbench.replay.result import METRIC_KEYS, TIMESERIES_COLUMNS, RunSpec

CSV = SHARED_TRACES / "alibaba-gpu-v2023" / "csv"


def load_openb(pods_file: str):
    """An openb pod list with the GPU node list, through the openb reader (which keeps
    ``gpu_spec`` verbatim, repeated models included, as the simulator's annotation does)."""
    if not (CSV / pods_file).exists():
        pytest.skip(f"{CSV / pods_file} not present (../shared/traces is not checked out)")
    return load_trace(f"openb:{CSV / pods_file}")


@pytest.fixture(scope="module")
def default_trace():
    return load_openb("openb_pod_list_default.csv")


@pytest.mark.parametrize("pods_file, kept, distinct", [
    ("openb_pod_list_default.csv", 35, 91),
    ("openb_pod_list_gpushare100.csv", 21, 49),
    ("openb_pod_list_gpuspec33.csv", 127, 330)])
def test_typical_pod_counts_of_the_method_document(pods_file, kept, distinct):
    # grouped by the verbatim gpu_spec string, as the simulator does ("A|B|B" != "A|B")
    trace = load_openb(pods_file)
    typ = typical_pods(trace.pods, model_names_of(trace.nodes))
    assert (typ.m, typ.distinct_specs) == (kept, distinct)
    assert abs(typ.prob.sum() - 1) < 1e-12
    assert typ.count.sum() >= 0.95 * len(trace.pods)


def test_openb_totals_and_tune_target(default_trace):
    t = default_trace
    assert len(t.nodes) == 1213 and int(t.nodes["gpu"].sum()) == 6212
    assert int((t.pods["num_gpu"] * t.pods["gpu_milli"]).sum()) == 6_086_800
    plan = prepare_fill(t, 42, 1.3)
    assert plan.target_milli == pytest.approx(8_075_600)
    tot = int((plan.pods["num_gpu"] * plan.pods["gpu_milli"]).sum())
    assert 8_075_600 - 1000 < tot <= 8_075_600 + 7000
    assert plan.original_count == 8152 and len(plan.pods) > 10_000
    assert sorted(plan.node_rank) == list(range(1213))


def test_fgd_fill_on_openb_default(default_trace):
    spec = RunSpec("openb", "atc23-fgd", 42, "fill")
    r = fill_experiment(default_trace, spec)
    assert tuple(r.metrics) == METRIC_KEYS
    assert list(r.timeseries.columns) == list(TIMESERIES_COLUMNS)
    assert list(r.timeseries["arrived_gpu_pct"]) == list(range(131))
    m = r.metrics
    assert m["gpu_alloc_pct"] + m["unallocated_gpu_pct"] == pytest.approx(100)
    assert 0 < m["unallocated_gpu_pct"] < 10 and m["pending"] == 0
    assert r.extra["arrived_gpu_pct_at_full"] <= 100
    assert r.extra["placed_total"] + r.extra["failed_total"] == r.extra["attempted"]
    again = fill_experiment(default_trace, spec)
    assert again.placements == r.placements
    assert {k: v for k, v in again.metrics.items() if k != "wall_seconds"} == \
        {k: v for k, v in m.items() if k != "wall_seconds"}
    rnd = fill_experiment(default_trace, RunSpec("openb", "atc23-random", 42, "fill"))
    assert rnd.metrics["unallocated_gpu_pct"] > m["unallocated_gpu_pct"] + 3
