"""``schedbench compare``: the sweep (policies x traces x seeds), its executors (in-process,
local processes, Dask) giving the same results in the same order, early validation with
one-line errors, per-run failures, and end-to-end runs of the real engines on a tiny trace."""

from __future__ import annotations

import json
import time
import zlib

import numpy as np
import pandas as pd
import pytest

from schedbench import compare
from schedbench.cli import main
from schedbench.errors import InputError
from schedbench.replay.result import METRIC_KEYS, RunResult, RunSpec

# ------------------------------------------------------------------------ a stand-in engine


def fake_run(spec: RunSpec) -> RunResult:
    """Deterministic numbers from the spec; the first seed is slow so that runs finish out of
    order; policy ``boom`` crashes and ``bad-input`` meets bad input. Top level, so worker
    processes import it."""
    if spec.policy == "boom":
        raise RuntimeError("engine exploded\non two lines")
    if spec.policy == "bad-input":
        raise InputError("bad row", file=spec.trace, field="pods.csv:3")
    if spec.seed == 42:
        time.sleep(0.1)
    h = zlib.crc32(f"{spec.trace}|{spec.policy}|{spec.seed}".encode())
    metrics = {k: (h % 97 if k in ("placed", "failed", "pending", "nodes_used")
                   else (h % 1000) / 10.0) for k in METRIC_KEYS}
    ts = pd.DataFrame({"time": [0.0, 1.0], "placed": [0, h % 97]})
    return RunResult(spec, spec.trace.upper(), metrics, {"h": h}, ts, {"pod": "node"})


def specs(policies=("a", "b"), seeds=(42, 43), traces=("t1", "t2")) -> list[RunSpec]:
    return compare.expand_specs(list(traces), list(policies), list(seeds))


def key(r) -> tuple:
    return (r.spec, r.trace_name, r.metrics, r.extra)


# ------------------------------------------------------------------------------ the sweep


def test_expand_specs_orders_trace_policy_seed():
    out = compare.expand_specs(["x", "y"], ["p", "q"], [1, 2], experiment="fill",
                               nodes="n.csv", tune=1.2, fail_unschedulable=True)
    assert [(s.trace, s.policy, s.seed) for s in out] == [
        ("x", "p", 1), ("x", "p", 2), ("x", "q", 1), ("x", "q", 2),
        ("y", "p", 1), ("y", "p", 2), ("y", "q", 1), ("y", "q", 2)]
    assert {(s.experiment, s.nodes, s.tune, s.fail_unschedulable) for s in out} == {
        ("fill", "n.csv", 1.2, True)}
    with pytest.raises(InputError, match="unknown experiment 'both'"):
        compare.expand_specs(["x"], ["p"], [1], experiment="both")


def test_lists_and_seeds():
    assert compare.split_list(["a,b", " c ,a", ""]) == ["a", "b", "c"]
    assert compare.seed_list() == [42]
    assert compare.seed_list(10) == list(range(42, 52))        # the FGD paper's seeds
    assert compare.seed_list(2, first=7) == [7, 8]
    assert compare.seed_list(3, [5, 1, 5]) == [5, 1]
    with pytest.raises(InputError, match="positive number of seeds"):
        compare.seed_list(0)


def test_known_policies_are_kube_and_atc23():
    known = compare.known_policies()
    for p in ("default", "best-fit", "worst-fit", "spread", "atc23-fgd", "atc23-random"):
        assert p in known
    compare.validate_policies(["best-fit", "atc23-fgd"])
    with pytest.raises(InputError, match=r"unknown policy 'nope'; known policies: default, "
                       r"best-fit, .*atc23-fgd"):
        compare.validate_policies(["best-fit", "nope"])


def test_a_policy_file_is_validated(tmp_path):
    good = tmp_path / "good.yaml"
    good.write_text("apiVersion: kubescheduler.config.k8s.io/v1\n"
                    "kind: KubeSchedulerConfiguration\n")
    compare.validate_policies([str(good)])
    bad = tmp_path / "bad.yaml"
    bad.write_text("apiVersion: kubescheduler.config.k8s.io/v1\n"
                   "kind: KubeSchedulerConfiguration\nprofiles: [{plugins: {score: "
                   "{enabled: [{name: NoSuchPlugin}]}}}]\n")
    with pytest.raises(InputError) as err:
        compare.validate_policies([str(bad)])
    assert str(bad) in str(err.value) and "\n" not in str(err.value)


# ----------------------------------------------------------------------------- executors


def test_in_process_sweep_keeps_spec_order_and_drops_placements():
    ss = specs()
    out = compare.run_sweep(ss, jobs=1, runner=fake_run, progress=False)
    assert [r.spec for r in out] == ss
    assert all(r.placements is None for r in out)
    kept = compare.run_sweep(ss[:1], jobs=1, runner=fake_run, keep_placements=True)
    assert kept[0].placements == {"pod": "node"}


def test_process_pool_gives_the_in_process_results_in_spec_order():
    ss = specs()
    ref = compare.run_sweep(ss, jobs=1, runner=fake_run, progress=False)
    pooled = compare.run_sweep(ss, jobs=2, runner=fake_run, progress=False)
    assert [key(r) for r in pooled] == [key(r) for r in ref]


def test_failed_runs_are_reported_per_run_and_bad_input_aborts():
    ss = specs(policies=("a", "boom"), seeds=(43,), traces=("t",))
    out = compare.run_sweep(ss, jobs=2, runner=fake_run, progress=False)
    assert isinstance(out[0], RunResult)
    assert isinstance(out[1], compare.RunFailure) and out[1].spec == ss[1]
    assert out[1].error == "RuntimeError: engine exploded on two lines"
    assert "Traceback" in out[1].details
    bad = specs(policies=("a", "bad-input"), seeds=(43,), traces=("t",))
    for jobs in (1, 2):
        with pytest.raises(InputError) as err:
            compare.run_sweep(bad, jobs=jobs, runner=fake_run, progress=False)
        assert str(err.value) == "t: pods.csv:3: bad row"


def test_progress_bar_counts_runs_and_is_quiet_when_piped(capsys):
    compare.run_sweep(specs(seeds=(43,)), jobs=1, runner=fake_run, progress=True)
    err = capsys.readouterr().err
    assert "runs [" in err and "4/4" in err
    compare.run_sweep(specs(seeds=(43,)), jobs=1, runner=fake_run)   # stderr is no terminal
    assert capsys.readouterr().err == ""


def test_unwritable_report_directory_is_one_line(tmp_path, capsys, monkeypatch):
    real = compare.run_sweep
    monkeypatch.setattr(compare, "validate_traces", lambda traces, nodes: {})
    monkeypatch.setattr(compare, "run_sweep",
                        lambda ss, **kw: real(ss, jobs=1, runner=fake_run, progress=False))
    blocker = tmp_path / "file"
    blocker.write_text("")
    assert main(["compare", "--trace", "t", "--out", str(blocker / "sub")]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"schedbench: error: {blocker / 'sub'}: --out: cannot write the "
                          "report") and err.count("\n") == 1


@pytest.fixture(scope="module")
def dask_client():
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=False,
                                  dashboard_address=":0") as cluster, \
            distributed.Client(cluster) as client:
        yield client


def test_dask_gives_the_in_process_results_in_spec_order(dask_client):
    ss = specs()
    ref = compare.run_sweep(ss, jobs=1, runner=fake_run, progress=False)
    out = compare.run_sweep(ss, dask=dask_client, runner=fake_run, progress=False)
    assert [key(r) for r in out] == [key(r) for r in ref]
    bad = specs(policies=("bad-input",), seeds=(43,), traces=("t",))
    with pytest.raises(InputError, match="bad row"):
        compare.run_sweep(bad, dask=dask_client, runner=fake_run, progress=False)


def test_missing_dask_is_one_line_naming_the_extra(monkeypatch, tmp_path, capsys):
    import builtins

    real_import = builtins.__import__

    def no_distributed(name, *args, **kwargs):
        if name == "distributed" or name.startswith("distributed."):
            raise ImportError("No module named 'distributed'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_distributed)
    with pytest.raises(InputError, match=r"schedbench\[dask\]"):
        compare.run_sweep(specs(), dask="tcp://127.0.0.1:1", runner=fake_run)


# ------------------------------------------------------------------------------------ CLI


def test_unknown_policy_fails_before_any_run(tmp_path, capsys, monkeypatch):
    def never(*a, **k):
        raise AssertionError("a run started")

    monkeypatch.setattr(compare, "run_sweep", never)
    out = tmp_path / "rep"
    assert main(["compare", "--policies", "best-fit,nope", "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("schedbench: error: --policies: unknown policy 'nope'; known "
                          "policies: default, best-fit")
    assert "atc23-fgd" in err and "\n" not in err
    assert not out.exists()


@pytest.mark.parametrize("argv, message", [
    (["--seeds", "0"], "expected a positive integer"),
    (["--seeds", "2", "--seed-list", "1,2"], "not allowed with argument"),
    (["--jobs", "0"], "expected a positive integer"),
    (["--experiment", "both"], "invalid choice"),
])
def test_bad_options_are_usage_errors(argv, message, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["compare", *argv])
    assert exit_.value.code == 2
    assert message in capsys.readouterr().err


def test_bad_trace_fails_before_any_run(tmp_path, capsys, monkeypatch):
    pytest.importorskip("schedbench.traces")

    def never(*a, **k):
        raise AssertionError("a run started")

    monkeypatch.setattr(compare, "run_sweep", never)
    assert main(["compare", "--trace", str(tmp_path / "missing"), "--out",
                 str(tmp_path / "rep")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("schedbench: error: ") and err.count("\n") == 1


def test_cli_wires_options_into_the_sweep(tmp_path, capsys, monkeypatch):
    seen = {}
    real = compare.run_sweep

    def spy(ss, **kw):
        seen["specs"], seen["kw"] = ss, kw
        return real(ss, jobs=1, runner=fake_run, progress=False)

    monkeypatch.setattr(compare, "run_sweep", spy)
    monkeypatch.setattr(compare, "validate_traces", lambda traces, nodes: {})
    out = tmp_path / "rep"
    rc = main(["compare", "--trace", "t1,t2", "--trace", "t3", "--policies", "best-fit,spread",
               "--seeds", "2", "--experiment", "fill", "--tune", "1.1", "--jobs", "3",
               "--nodes", "n.csv", "--fail-unschedulable", "--out", str(out),
               "--format", "json"])
    assert rc == 0
    ss = seen["specs"]
    assert len(ss) == 3 * 2 * 2
    assert ss[0] == RunSpec("t1", "best-fit", 42, "fill", "n.csv", 1.1, True)
    assert ss[-1].trace == "t3" and ss[-1].seed == 43
    assert seen["kw"] == {"jobs": 3, "dask": None}
    printed = json.loads(capsys.readouterr().out)
    assert printed == json.loads((out / "summary.json").read_text())
    assert [r["trace"] for r in printed["runs"]][:4] == ["T1"] * 4


def test_cli_reports_failed_runs_and_exits_1(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(compare, "known_policies", lambda: ("a", "boom"))
    monkeypatch.setattr(compare, "validate_traces", lambda traces, nodes: {})
    real = compare.run_sweep
    monkeypatch.setattr(compare, "run_sweep",
                        lambda ss, **kw: real(ss, jobs=1, runner=fake_run, progress=False))
    out = tmp_path / "rep"
    assert main(["compare", "--trace", "t", "--policies", "a,boom", "--seed-list", "43",
                 "--out", str(out)]) == 1
    cap = capsys.readouterr()
    assert "FAILED boom seed 43 on t (replay): RuntimeError: engine exploded" in cap.out
    assert "schedbench: run failed: boom seed 43 on t: RuntimeError" in cap.err
    assert [r["policy"] for r in json.loads((out / "summary.json").read_text())["runs"]] == ["a"]


# ----------------------------------------------------------------- the real engines, end to end


def tiny_trace(directory, n: int = 16, seed: int = 0) -> str:
    """A native trace: 4 GPU nodes, ``n`` pods with fractional and whole GPUs, arrivals and
    departures (also used by tests/test_compare_optimal.py)."""
    traces = pytest.importorskip("schedbench.traces")
    directory.mkdir(parents=True, exist_ok=True)
    nodes = pd.DataFrame({"name": [f"n{i}" for i in range(4)],
                          "cpu_milli": [8000, 8000, 16000, 16000],
                          "memory_mib": [32768] * 4, "gpu": [2, 2, 4, 4],
                          "gpu_model": ["T4", "T4", "V100", "V100"]})
    rng = np.random.default_rng(seed)
    num_gpu = rng.choice([0, 1, 1, 2], n)
    gpu_milli = np.where(num_gpu == 1, rng.choice([250, 500, 1000], n),
                         np.where(num_gpu > 1, 1000, 0))
    pods = pd.DataFrame({"id": [f"p{i:02d}" for i in range(n)],
                         "arrival": np.sort(rng.uniform(0, 100, n)).round(1),
                         "duration": rng.uniform(20, 200, n).round(1),
                         "cpu_milli": rng.choice([500, 1000, 4000], n),
                         "memory_mib": rng.choice([1024, 4096], n),
                         "num_gpu": num_gpu, "gpu_milli": gpu_milli})
    (directory / "nodes.csv").write_text(nodes.to_csv(index=False))
    (directory / "pods.csv").write_text(pods.to_csv(index=False))
    traces.load_trace(str(directory))       # the reader accepts it
    return str(directory)


def strip_wall(summary: dict) -> dict:
    for run in summary["runs"]:
        run["metrics"]["wall_seconds"] = 0.0
    return summary


def in_process(trace: str, policies, seeds, experiment: str) -> list[RunResult]:
    from schedbench.replay import run

    return [run(s) for s in compare.expand_specs([trace], policies, seeds,
                                                 experiment=experiment)]


def in_process_summary(trace: str, policies, seeds, experiment: str) -> dict:
    from schedbench.report import summary_dict

    return strip_wall(summary_dict(in_process(trace, policies, seeds, experiment)))


TIMING = ["wall_seconds", "pods_per_second"]


def test_compare_end_to_end_through_the_process_pool(tmp_path, capsys):
    # fill with both engines here; replay with both engines on Dask below
    experiment, policies = "fill", ["atc23-fgd", "worst-fit"]
    trace = tiny_trace(tmp_path / "tiny")
    out = tmp_path / "rep"
    rc = main(["compare", "--trace", trace, "--policies", ",".join(policies), "--seeds", "2",
               "--experiment", experiment, "--jobs", "2", "--out", str(out)])
    assert rc == 0
    stdout = capsys.readouterr().out
    assert f"tiny ({experiment}, 2 seeds)" in stdout and " wins on " in stdout
    from schedbench import report

    ref = in_process(trace, policies, [42, 43], experiment)
    got = strip_wall(json.loads((out / "summary.json").read_text()))
    assert got == strip_wall(report.summary_dict(ref))
    # the same numbers in the tables (all but the timings), the same time series
    metrics = pd.read_parquet(out / "metrics.parquet")
    expected = report.metrics_frame(ref)
    timing = [c for c in TIMING if c in expected]
    pd.testing.assert_frame_equal(metrics.drop(columns=timing), expected.drop(columns=timing),
                                  check_dtype=False)
    pd.testing.assert_frame_equal(pd.read_parquet(out / "timeseries.parquet"),
                                  report.timeseries_frame(ref), check_dtype=False)
    for name in ("report.md", "report.html", "metrics.csv", "timeseries.csv"):
        assert (out / name).is_file()


def test_compare_end_to_end_on_a_local_dask_cluster(tmp_path, capsys):
    distributed = pytest.importorskip("distributed")
    trace = tiny_trace(tmp_path / "tiny")
    policies = ["best-fit", "atc23-bestfit"]
    with distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=True,
                                  dashboard_address=":0") as cluster:
        out = tmp_path / "rep"
        rc = main(["compare", "--trace", trace, "--policies", ",".join(policies),
                   "--seed-list", "42,43", "--dask", cluster.scheduler_address,
                   "--out", str(out), "--format", "json"])
    assert rc == 0
    got = strip_wall(json.loads((out / "summary.json").read_text()))
    assert strip_wall(json.loads(capsys.readouterr().out)) == got
    assert got == in_process_summary(trace, policies, [42, 43], "replay")


def test_no_argument_compare_sweeps_the_default_trace(tmp_path, capsys, monkeypatch):
    """The README's ``schedbench compare``: bundled trace, four policies, seed 42, local
    processes, ./schedbench-report. (The engines themselves run in the tests above, on a
    smaller trace: the default trace takes minutes under the kube engine.)"""
    seen = {}
    real = compare.run_sweep

    def spy(ss, **kw):
        seen["specs"], seen["kw"] = ss, kw
        return real(ss, jobs=1, runner=fake_run, progress=False)

    monkeypatch.setattr(compare, "run_sweep", spy)
    monkeypatch.chdir(tmp_path)
    assert main(["compare"]) == 0
    assert seen["specs"] == [RunSpec("default", p, 42) for p in
                             ("best-fit", "worst-fit", "spread", "default")]
    assert seen["kw"] == {"jobs": None, "dask": None}      # one process per CPU
    out = tmp_path / "schedbench-report"
    data = json.loads((out / "summary.json").read_text())
    assert [r["policy"] for r in data["runs"]] == ["best-fit", "worst-fit", "spread",
                                                   "default"]
    assert (out / "report.html").is_file() and (out / "report.md").is_file()
    assert "wins on" in capsys.readouterr().out


def test_help_lists_compare_and_trace(capsys):
    with pytest.raises(SystemExit):
        main(["--help"])
    out = capsys.readouterr().out
    assert "compare" in out and "trace" in out
    with pytest.raises(SystemExit):
        main(["compare", "--help"])
    assert "i.e. 42..51 for --seeds 10" in " ".join(capsys.readouterr().out.split())
