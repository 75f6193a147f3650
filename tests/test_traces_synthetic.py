"""The synthetic generator: deterministic for a seed, faithful to the fitted distributions,
fast, models round-trip through JSON, and the bundled default trace regenerates exactly from
its stored model."""

from __future__ import annotations

import json
import time

import numpy as np
import pandas as pd
import pytest
from conftest import SHARED_TRACES
from hypothesis import given
from hypothesis import strategies as st

from schedbench.cli import main
from schedbench.errors import InputError
from schedbench.traces import Trace, default_trace_path, load_trace, validate_trace
from schedbench.traces.synthetic import POD_SHAPE, TraceModel, fit, generate

OPENB_DEFAULT = SHARED_TRACES / "alibaba-gpu-v2023" / "csv" / "openb_pod_list_default.csv"


def small_trace() -> Trace:
    nodes = pd.DataFrame({"name": ["a", "b", "c", "d"], "cpu_milli": [8000, 8000, 8000, 4000],
                          "memory_mib": [1024] * 4, "gpu": [2, 2, 2, 0],
                          "gpu_model": ["T4", "T4", "T4", ""]})
    pods = pd.DataFrame({"id": [f"p{i}" for i in range(10)],
                         "arrival": np.arange(10) * 10.0,
                         "duration": [5.0, 6, 7, 8, 9, 10, 11, 12, np.nan, np.nan],
                         "cpu_milli": [1000] * 6 + [2000] * 4, "memory_mib": [10] * 10,
                         "num_gpu": [1] * 6 + [0] * 4, "gpu_milli": [500] * 6 + [0] * 4,
                         "gpu_models": ["T4"] * 6 + [""] * 4})
    return validate_trace(Trace("small", nodes, pods))


def test_fit_counts_shapes_rate_and_durations():
    m = fit(small_trace())
    assert m.node_shapes[["cpu_milli", "gpu", "count"]].values.tolist() == [[8000, 2, 3],
                                                                            [4000, 0, 1]]
    assert m.pod_shapes["count"].tolist() == [6, 4]
    assert m.pod_shapes.iloc[0][list(POD_SHAPE)].tolist() == [1000, 10, 1, 500, "T4"]
    assert m.arrival_rate == pytest.approx(9 / 90)
    assert m.open_share == pytest.approx(0.2)
    assert m.duration_quantiles[0] == 5 and m.duration_quantiles[-1] == 12


def test_generate_is_deterministic_and_seed_dependent():
    m = fit(small_trace())
    a = generate(m, 50, 400, seed=7)
    b = generate(m, 50, 400, seed=7)
    c = generate(m, 50, 400, seed=8)
    pd.testing.assert_frame_equal(a.nodes, b.nodes)
    pd.testing.assert_frame_equal(a.pods, b.pods)
    assert not a.pods["arrival"].equals(c.pods["arrival"])
    assert len(a.nodes) == 50 and len(a.pods) == 400
    assert a.pods["arrival"].is_monotonic_increasing and (a.pods["arrival"] > 0).all()
    # shapes come only from the model; durations inside the fitted range or open-ended
    assert set(a.pods["cpu_milli"]) <= {1000, 2000}
    d = a.pods["duration"].dropna()
    assert d.between(5, 12).all()
    assert 0.1 < a.pods["duration"].isna().mean() < 0.3
    assert set(a.nodes["labels"].str.extract(r"zone=(zone-\d)")[0]) == {"zone-0", "zone-1",
                                                                         "zone-2"}
    # pods of one shape are one app
    assert (a.pods.groupby("group")["cpu_milli"].nunique() == 1).all()


@given(seed=st.integers(0, 2 ** 32), nodes=st.integers(0, 30), pods=st.integers(0, 60))
def test_generated_traces_are_valid_native_traces(seed, nodes, pods):
    t = generate(fit(small_trace()), nodes, pods, seed)
    again = validate_trace(t)
    pd.testing.assert_frame_equal(again.pods, t.pods)
    assert (t.pods["gpu_milli"] <= 1000).all()


def test_fit_fidelity_on_openb_default():
    if not OPENB_DEFAULT.exists():
        pytest.skip(f"{OPENB_DEFAULT} not present (shared traces are outside the repo)")
    real = load_trace(f"openb:{OPENB_DEFAULT}")
    m = fit(real)
    assert len(m.pod_shapes) == real.pods.groupby(list(POD_SHAPE)).ngroups
    g = generate(m, 2000, 50_000, seed=1)
    # pod-shape frequencies of the 10 commonest shapes within 1 percentage point
    key = list(POD_SHAPE)
    want = real.pods.groupby(key).size() / len(real.pods)
    got = g.pods.groupby(key).size() / len(g.pods)
    top = want.sort_values(ascending=False).index[:10]
    assert np.abs(got.reindex(top).fillna(0) - want[top]).max() < 0.01
    # node shape shares (G2 is 549 of 1,213) and GPUs per node
    assert (g.nodes["gpu_model"] == "G2").mean() == pytest.approx(549 / 1213, abs=0.03)
    assert g.nodes["gpu"].mean() == pytest.approx(6212 / 1213, rel=0.05)
    # GPU request per pod, and the duration median
    assert (g.pods["num_gpu"] * g.pods["gpu_milli"]).mean() == pytest.approx(
        6_086_800 / 8152, rel=0.03)
    assert g.pods["duration"].median() == pytest.approx(540, rel=0.1)
    # Poisson arrivals at the fitted rate
    rate = (len(g.pods) - 1) / (g.pods["arrival"].iloc[-1] - g.pods["arrival"].iloc[0])
    assert rate == pytest.approx(m.arrival_rate, rel=0.03)


def test_model_json_round_trip_and_errors(tmp_path):
    m = fit(small_trace())
    m.max_duration, m.duration_scale = 100.0, 2.5
    path = tmp_path / "m.json"
    m.save(path)
    back = TraceModel.load(path)
    assert back.to_dict() == m.to_dict()
    pd.testing.assert_frame_equal(generate(back, 5, 30, 3).pods, generate(m, 5, 30, 3).pods)
    d = json.loads(path.read_text())
    d["pod_shapes"][0].pop("gpu_milli")
    path.write_text(json.dumps(d))
    with pytest.raises(InputError, match="shape lacks gpu_milli") as info:
        TraceModel.load(path)
    assert info.value.file == str(path) and info.value.field == "pod_shapes[0]"
    path.write_text("[1]")
    with pytest.raises(InputError, match="JSON object"):
        TraceModel.load(path)


def test_bundled_default_regenerates_from_its_model():
    """traces/README.md's command: the stored model, 48 nodes, 600 pods, seed 2023."""
    d = default_trace_path()
    model = TraceModel.load(d / "model.json")
    t = generate(model, 48, 600, 2023, name="default")
    bundled = load_trace("default")
    pd.testing.assert_frame_equal(t.nodes, bundled.nodes, check_exact=True)
    pd.testing.assert_frame_equal(t.pods, bundled.pods, check_exact=True)


def test_cli_generate_matches_the_bundled_files(tmp_path):
    d = default_trace_path()
    out = tmp_path / "regen"
    assert main(["trace", "generate", "--model", str(d / "model.json"), "--nodes", "48",
                 "--pods", "600", "--seed", "2023", "--out", str(out)]) == 0
    for f in ("nodes.csv", "pods.csv"):
        assert (out / f).read_bytes() == (d / f).read_bytes()


def test_cli_generate_fit_with_overrides(tmp_path):
    src = tmp_path / "src"
    from schedbench.traces import write_native

    write_native(small_trace(), src)
    model = tmp_path / "m.json"
    assert main(["trace", "generate", "--fit", str(src), "--arrival-rate", "2",
                 "--max-duration", "6", "--save-model", str(model), "--nodes", "3", "--pods",
                 "20", "--out", str(tmp_path / "out")]) == 0
    m = TraceModel.load(model)
    assert m.arrival_rate == 2 and m.max_duration == 6
    t = load_trace(str(tmp_path / "out"))
    assert t.pods["duration"].dropna().max() <= 6
    assert main(["trace", "generate", "--nodes", "3"]) == 2


def test_generate_large_is_fast():
    m = fit(small_trace())
    n_pods = 200_000
    start = time.perf_counter()
    t = generate(m, 20_000, n_pods, seed=0)
    elapsed = time.perf_counter() - start
    assert len(t.pods) == n_pods and t.pods["id"].is_unique
    # 1,000,000 pods take about 5x this; "well under a minute" leaves a wide margin
    assert elapsed < 8, elapsed
