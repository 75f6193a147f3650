"""Reports of a sweep, from RunResults with known numbers: summary.json's exact shape, the
per-policy mean ± sd, the ranking and the winner sentence, the Parquet/CSV tables, a
self-contained HTML file, and byte-identical files for the same results."""

from __future__ import annotations

import base64
import json
import math
import re

import numpy as np
import pandas as pd
import pytest

from schedbench import report
from schedbench.compare import RunFailure
from schedbench.replay.result import METRIC_KEYS, TIMESERIES_COLUMNS, RunResult, RunSpec

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def timeseries(n: int, unalloc_end: float, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    arrived = np.linspace(0.0, 130.0, n)
    unalloc = np.clip(100.0 - arrived, unalloc_end, 100.0) + rng.uniform(0, 0.5, n)
    return pd.DataFrame({
        "time": np.arange(n, dtype=float), "arrived_gpu_pct": arrived,
        "placed": np.arange(n), "failed": np.maximum(0, np.arange(n) - n // 2),
        "pending": np.zeros(n, dtype=int), "gpu_alloc_pct": 100.0 - unalloc,
        "cpu_alloc_pct": arrived / 2, "mem_alloc_pct": arrived / 3,
        "unallocated_gpu_pct": unalloc, "frag_amount_pct": unalloc / 4,
        "frag_ratio_pct": unalloc / 2, "nodes_used": np.arange(n)})


def result(policy: str, seed: int, primary: float, *, trace: str = "openb-default",
           experiment: str = "fill", gpu: bool = True, pending: int = 0, failed: int = 3,
           extra: dict | None = None, n: int = 40) -> RunResult:
    m = {"placed": 100, "failed": failed, "pending": pending,
         "unallocated_gpu_pct": primary if gpu else 0.0,
         "gpu_alloc_pct": 100.0 - primary if gpu else 0.0, "cpu_alloc_pct": 50.0 + seed % 2,
         "mem_alloc_pct": 30.0, "frag_amount_pct": primary / 2 if gpu else 0.0,
         "frag_ratio_pct": 40.0 if gpu else 0.0, "nodes_used": 10, "wall_seconds": 0.5}
    ts = timeseries(n, primary, seed)
    if not gpu:
        ts[["arrived_gpu_pct", "gpu_alloc_pct", "unallocated_gpu_pct", "frag_amount_pct",
            "frag_ratio_pct"]] = 0.0
    return RunResult(RunSpec(f"/traces/{trace}", policy, seed, experiment), trace, m,
                     {"delay_p95": 2.0, "pods_per_second": 1000.0} if extra is None else extra,
                     ts)


def gpu_sweep() -> list[RunResult]:
    # fgd: 10, 14 (mean 12, sd 2.83); bestfit: 15, 17 (mean 16, sd 1.41); random: 20, 11
    values = {"atc23-fgd": (10.0, 14.0), "atc23-bestfit": (15.0, 17.0),
              "atc23-random": (20.0, 11.0)}
    return [result(p, s, v) for p, vs in values.items() for s, v in zip((42, 43), vs)]


def cpu_sweep() -> list[RunResult]:
    return [result("spread", 42, 0, trace="small", experiment="replay", gpu=False, pending=4,
                   failed=1, extra={"delay_p95": 9.0}),
            result("best-fit", 42, 0, trace="small", experiment="replay", gpu=False,
                   pending=2, failed=1, extra={"delay_p95": 5.0}),
            result("worst-fit", 42, 0, trace="small", experiment="replay", gpu=False,
                   pending=2, failed=1, extra={"delay_p95": 3.0})]


# ------------------------------------------------------------------------------ summary.json


def test_summary_json_has_exactly_the_documented_shape(tmp_path):
    results = gpu_sweep() + cpu_sweep()
    report.write_report(results, tmp_path)
    data = json.loads((tmp_path / "summary.json").read_text())
    assert list(data) == ["runs"]
    assert len(data["runs"]) == len(results)
    for run, r in zip(data["runs"], results):      # in the order of the results
        assert list(run) == ["policy", "seed", "trace", "experiment", "metrics"]
        assert (run["policy"], run["seed"], run["trace"], run["experiment"]) == (
            r.spec.policy, r.spec.seed, r.trace_name, r.spec.experiment)
        assert list(run["metrics"]) == list(METRIC_KEYS)
        for k, v in run["metrics"].items():
            if k in ("placed", "failed", "pending", "nodes_used"):
                assert type(v) is int
            else:
                assert type(v) is float
            assert v == r.metrics[k]
        assert run["experiment"] in ("replay", "fill")


# ------------------------------------------------------------------------ statistics, rank


def test_mean_sd_and_ranking_by_unallocated_gpu():
    (g,) = report.group_results(gpu_sweep())
    assert g.gpu and g.primary == "unallocated_gpu_pct"
    assert [s.policy for s in g.policies] == ["atc23-fgd", "atc23-random", "atc23-bestfit"]
    fgd, rnd, bf = g.policies
    assert fgd.mean["unallocated_gpu_pct"] == pytest.approx(12.0)
    assert fgd.sd["unallocated_gpu_pct"] == pytest.approx(math.sqrt(8.0))   # sample sd
    assert rnd.mean["unallocated_gpu_pct"] == pytest.approx(15.5)
    assert bf.sd["unallocated_gpu_pct"] == pytest.approx(math.sqrt(2.0))
    assert fgd.mean["cpu_alloc_pct"] == pytest.approx(50.5)
    assert g.seeds == [42, 43]


def test_winner_sentence_names_the_margin_and_the_seeds_won():
    (g,) = report.group_results(gpu_sweep())
    text = report.winner_sentence(g)
    assert text.startswith("atc23-fgd wins on openb-default (fill)")
    assert "12.00% vs 15.50%" in text and "atc23-random" in text
    assert "3.50 percentage points lower (22.6% lower)" in text
    assert "better on 1 of 2 seeds" in text          # 10 < 20 but 14 > 11


def test_without_gpus_the_unscheduled_pods_rank_then_the_delay():
    (g,) = report.group_results(cpu_sweep())
    assert not g.gpu and g.primary == "unscheduled"
    # best-fit and worst-fit both leave 3 pods unscheduled; worst-fit's p95 delay is lower
    assert [s.policy for s in g.policies] == ["worst-fit", "best-fit", "spread"]
    assert "unallocated_gpu_pct" not in g.keys and "delay_p95" in g.keys
    text = report.winner_sentence(g)
    assert text == ("worst-fit and best-fit tie on small (replay) with unscheduled pods 3 "
                    "(seed 42); worst-fit ranks first on delay p95 s: 3.00 vs 5.00.")


def test_equal_results_rank_by_policy_name():
    rs = [result(p, 42, 7.0) for p in ("zeta", "alpha", "mid")]
    (g,) = report.group_results(rs)
    assert [s.policy for s in g.policies] == ["alpha", "mid", "zeta"]


def test_groups_by_trace_and_experiment_in_order_of_appearance():
    groups = report.group_results(cpu_sweep() + gpu_sweep())
    assert [(g.trace, g.experiment) for g in groups] == [("small", "replay"),
                                                         ("openb-default", "fill")]
    # two different trace specs with the same name are told apart by their spec
    a = result("p", 42, 5.0, trace="x")
    b = RunResult(RunSpec("/elsewhere/x", "p", 42, "fill"), "x", dict(a.metrics), {},
                  a.timeseries)
    assert [g.trace for g in report.group_results([a, b])] == ["/traces/x", "/elsewhere/x"]


def test_summary_text_is_a_ranked_table_per_group():
    text = report.summary_text(gpu_sweep() + cpu_sweep(),
                               [RunFailure(RunSpec("t", "p", 1), "RuntimeError: boom")])
    lines = text.splitlines()
    assert lines[0] == "openb-default (fill, 2 seeds)"
    assert lines[1].split()[:4] == ["RANK", "POLICY", "UNALLOCATED", "GPU"]
    assert lines[2].split()[:5] == ["1", "atc23-fgd", "12.00", "±", "2.83"]
    assert "small (replay, 1 seed)" in lines
    assert lines[-1] == "FAILED p seed 1 on t (replay): RuntimeError: boom"


# ---------------------------------------------------------------------------------- files


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    out = tmp_path_factory.mktemp("report")
    results = gpu_sweep() + cpu_sweep()
    failures = [RunFailure(RunSpec("/traces/small", "broken", 42), "RuntimeError: boom")]
    files = report.write_report(results, out, failures)
    return out, results, files


def test_every_file_is_written_and_no_temporary_is_left(written):
    out, _, files = written
    for name in ("summary.json", "metrics.parquet", "metrics.csv", "timeseries.parquet",
                 "timeseries.csv", "report.md", "report.html"):
        assert (out / name).is_file() and files[name] == out / name
    assert not [p for p in out.rglob("*") if p.name.startswith(".") or p.suffix == ".tmp"]


def test_metrics_tables_hold_every_run_with_its_extras(written):
    out, results, _ = written
    csv = pd.read_csv(out / "metrics.csv")
    pq = pd.read_parquet(out / "metrics.parquet")
    assert list(csv.columns) == list(pq.columns)
    assert list(pq.columns[:5]) == ["trace", "trace_spec", "experiment", "policy", "seed"]
    assert list(pq.columns[5:16]) == list(METRIC_KEYS)
    assert {"delay_p95", "pods_per_second"} <= set(pq.columns)
    assert len(pq) == len(results)
    assert pq["unallocated_gpu_pct"].tolist() == [r.metrics["unallocated_gpu_pct"]
                                                  for r in results]
    assert pq["placed"].dtype == np.int64 and pq["seed"].dtype == np.int64
    assert np.isnan(pq.loc[pq.policy == "spread", "pods_per_second"]).all()


def test_timeseries_tables_stack_every_run_with_its_keys(written):
    out, results, _ = written
    for ts in (pd.read_parquet(out / "timeseries.parquet"),
               pd.read_csv(out / "timeseries.csv")):
        assert list(ts.columns) == ["trace", "experiment", "policy", "seed",
                                    *TIMESERIES_COLUMNS]
        assert len(ts) == sum(len(r.timeseries) for r in results)
        one = ts[(ts.policy == "atc23-fgd") & (ts.seed == 43)]
        ref = results[1].timeseries
        assert np.allclose(one["unallocated_gpu_pct"].to_numpy(),
                           ref["unallocated_gpu_pct"].to_numpy())


def test_markdown_has_tables_winner_failures_and_linked_plots(written):
    out, _, _ = written
    md = (out / "report.md").read_text()
    assert "## openb-default (fill, 2 seeds)" in md
    assert "**atc23-fgd wins on openb-default (fill)" in md
    row = next(line for line in md.splitlines() if line.startswith("| 1 | atc23-fgd |"))
    cells = [c.strip() for c in row.strip("|").split("|")]
    assert cells[2] == "2" and cells[3] == "12.00 ± 2.83"
    assert "| atc23-fgd | 43 | 14.00 |" in md        # per-run table
    links = re.findall(r"!\[[^\]]*\]\((plots/[^)]+\.png)\)", md)
    assert len(links) == 3 + 2           # fill+GPU: time, unallocated, bars; replay: 2
    for link in links:
        assert (out / link).read_bytes().startswith(PNG_MAGIC)
    assert "## Failed runs" in md and "RuntimeError: boom" in md


def test_html_is_self_contained_with_embedded_png_plots(written):
    out, _, _ = written
    page = (out / "report.html").read_text()
    assert page.startswith("<!DOCTYPE html>")
    assert "<link" not in page and "<script" not in page and "url(" not in page
    srcs = re.findall(r'src="([^"]*)"', page)
    assert len(srcs) == 5
    for src in srcs:
        assert src.startswith("data:image/png;base64,")
        assert base64.b64decode(src.split(",", 1)[1]).startswith(PNG_MAGIC)
    assert "http://" not in page and "https://" not in page
    assert "12.00 ± 2.83" in page and "atc23-fgd wins" in page


def test_same_results_give_byte_identical_files(tmp_path):
    a = report.write_report(gpu_sweep(), tmp_path / "a")
    b = report.write_report(gpu_sweep(), tmp_path / "b")     # equal results, new objects
    assert set(a) == set(b)
    for name in a:
        assert a[name].read_bytes() == b[name].read_bytes(), name


def test_rewriting_a_report_replaces_it(tmp_path):
    report.write_report(gpu_sweep(), tmp_path)
    report.write_report(cpu_sweep(), tmp_path)
    data = json.loads((tmp_path / "summary.json").read_text())
    assert {r["policy"] for r in data["runs"]} == {"spread", "best-fit", "worst-fit"}


def test_single_run_and_empty_timeseries_are_reported(tmp_path):
    r = result("best-fit", 42, 5.0, experiment="replay")
    r.timeseries = r.timeseries.iloc[:0]
    report.write_report([r], tmp_path)
    md = (tmp_path / "report.md").read_text()
    assert "Only best-fit ran on openb-default (replay)" in md
    assert "![Per-policy means" in md and "over time" not in md


def test_extra_figures_that_clash_with_columns_get_a_prefix():
    r = result("p", 42, 5.0, extra={"placed": "x", "nested": {"b": 1, "a": [1, 2]}})
    df = report.metrics_frame([r])
    assert df["extra_placed"].tolist() == ["x"]
    assert df["nested"].tolist() == ['{"a": [1, 2], "b": 1}']


def test_extra_figures_of_mixed_types_still_make_a_parquet_file(tmp_path):
    rs = [result("p", 42, 5.0, extra={"note": 1}), result("q", 42, 6.0, extra={"note": "n/a"}),
          result("r", 42, 7.0, extra={})]
    report.write_report(rs, tmp_path)
    note = pd.read_parquet(tmp_path / "metrics.parquet")["note"]
    assert note.tolist()[:2] == ["1", "n/a"] and pd.isna(note.iloc[2])
