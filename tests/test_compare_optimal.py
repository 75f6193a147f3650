"""``schedbench compare --policies ...,optimal``: the sweep's specs, the re-optimised snapshots
of replays and the fill optimum, each policy's gap to the optimum (arithmetic checked on
hand-made results), the report's gap tables, the process pool, and end-to-end runs with the
CP-SAT solver on a tiny trace (the optimum places at least as many pods as the policy on the
same snapshot)."""

from __future__ import annotations

import json
import math
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from schedbench import compare, report
from schedbench.cli import main
from schedbench.errors import InputError
from schedbench.replay import run as run_spec
from schedbench.replay.gaps import combine, comparison_points, run_gap, run_gaps
from schedbench.replay.result import (METRIC_KEYS, OPTIMAL_POINT_KEYS, OptimalOptions,
                                      RunResult, RunSpec)
from schedbench.scheduler.snapshot import choose_gpus
from test_compare import tiny_trace

# ---------------------------------------------------------------- a stand-in for the solver


def first_fit_solve(snapshot, pods, *, framework=None, objective=("placed", "nodes"),
                    time_limit=10.0, workers=1, seed=0, hint=None, **kw):
    """A feasible placement by first fit over the snapshot's free resources, pod slots and
    GPUs (OptimalResult's fields; status FEASIBLE, bound: every pod); records its calls in
    CALLS."""
    CALLS.append({"pods": [p.key for p in pods], "hint": dict(hint) if isinstance(hint, dict)
                  else hint, "time_limit": time_limit, "workers": workers, "seed": seed})
    alive = snapshot.alive
    free = snapshot.allocatable - snapshot.requested
    slots = snapshot.allowed_pods - snapshot.pod_count
    gfree = snapshot.gpu_free.copy() if snapshot.max_gpus else None
    used = set(np.flatnonzero(snapshot.pod_count > 0).tolist())
    assignments, gpu_indices, unplaced = {}, {}, []
    for p in pods:
        req, _ = snapshot.request_vectors(p)
        req = np.pad(req, (0, free.shape[1] - req.size))
        for n in range(snapshot.num_nodes):
            if not alive[n] or slots[n] < 1 or (req > free[n]).any():
                continue
            idx = ()
            if p.num_gpu:
                idx = choose_gpus(gfree[n], int(snapshot.gpu_count[n]), p.num_gpu, p.gpu_milli)
                if not idx:
                    continue
                for j in idx:
                    gfree[n, j] -= p.gpu_milli
                gpu_indices[p.key] = idx
            free[n] -= req
            slots[n] -= 1
            used.add(n)
            assignments[p.key] = snapshot.node_names[n]
            break
        else:
            unplaced.append(p.key)
    placed = len(assignments)
    return SimpleNamespace(status="FEASIBLE", placed=placed, unplaced=unplaced,
                           nodes_used=len(used), objective=float(placed),
                           bound=float(len(pods)), gap=(len(pods) - placed) / max(1, placed),
                           wall_seconds=0.0, assignments=assignments, gpu_indices=gpu_indices,
                           objectives={}, moved={})


CALLS: list[dict] = []


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> str:
    return tiny_trace(tmp_path_factory.mktemp("traces") / "tiny")


@pytest.fixture(scope="module")
def crowded(tmp_path_factory) -> str:
    """More pods than the tiny cluster holds at once (long durations): pods wait."""
    from schedbench.traces import load_trace

    d = tmp_path_factory.mktemp("traces") / "crowded"
    tiny_trace(d, n=40, seed=3)
    pods = pd.read_csv(d / "pods.csv")
    pods["duration"] = pods["duration"] * 5
    (d / "pods.csv").write_text(pods.to_csv(index=False))
    load_trace(str(d))
    return str(d)


# ------------------------------------------------------------------------------ the specs


def test_fill_sweeps_get_one_optimal_run_per_trace_and_seed_in_policy_order():
    opts = OptimalOptions(every=0, time_limit=3.0, workers=2)
    ss = compare.expand_specs(["t"], ["best-fit", "optimal", "atc23-fgd"], [1, 2],
                              experiment="fill", optimal=opts)
    assert [(s.policy, s.seed) for s in ss] == [
        ("best-fit", 1), ("best-fit", 2), ("optimal", 1), ("optimal", 2),
        ("atc23-fgd", 1), ("atc23-fgd", 2)]
    assert {s.optimal for s in ss if s.policy != "optimal"} == {opts}
    # the optimum starts from the best of the other policies' placements
    assert {s.optimal for s in ss if s.policy == "optimal"} == {
        OptimalOptions(0, 3.0, 2, hints=("best-fit", "atc23-fgd"))}
    # without the policy nothing changes
    assert all(s.optimal is None for s in compare.expand_specs(["t"], ["best-fit"], [1]))


def test_replay_sweeps_re_optimise_inside_each_kube_run():
    ss = compare.expand_specs(["t"], ["optimal", "best-fit", "atc23-fgd"], [7])
    assert [s.policy for s in ss] == ["best-fit", "atc23-fgd"]
    assert all(s.optimal == OptimalOptions() for s in ss)
    with pytest.raises(InputError, match="needs a kube policy"):
        compare.expand_specs(["t"], ["optimal", "atc23-fgd"], [7])
    with pytest.raises(InputError, match="only in the fill experiment"):
        run_spec(RunSpec("default", "optimal", 1))


def test_optimal_options_defaults_and_errors():
    assert compare.optimal_options(["a", "optimal"]) == OptimalOptions(0, 10.0, 1)
    assert compare.optimal_options(["optimal"], 5, 2.5, 3) == OptimalOptions(5, 2.5, 3)
    assert compare.optimal_options(["a"]) is None
    with pytest.raises(InputError, match="--optimal-every needs the optimal policy"):
        compare.optimal_options(["a"], every=3)
    with pytest.raises(InputError, match="positive number of seconds"):
        compare.optimal_options(["optimal"], time_limit=0.0)
    with pytest.raises(InputError, match="positive number of seconds"):
        compare.optimal_options(["optimal"], time_limit=math.inf)


def test_cli_validates_and_wires_the_optimal_options(tmp_path, capsys, monkeypatch):
    seen = {}
    monkeypatch.setattr(compare, "validate_traces", lambda traces, nodes: {})
    monkeypatch.setattr(compare, "validate_policies", lambda policies: None)

    def spy(ss, **kw):
        seen["specs"] = ss
        return []

    monkeypatch.setattr(compare, "run_sweep", spy)
    assert main(["compare", "--trace", "t", "--policies", "best-fit,optimal",
                 "--optimal-every", "25", "--optimal-time-limit", "2.5", "--optimal-workers",
                 "2", "--out", str(tmp_path / "r")]) == 0
    assert [s.optimal for s in seen["specs"]] == [OptimalOptions(25, 2.5, 2)]
    assert main(["compare", "--trace", "t", "--policies", "best-fit",
                 "--optimal-time-limit", "2", "--out", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err
    assert "--optimal-time-limit needs the optimal policy" in err and err.count("\n") == 1
    with pytest.raises(SystemExit):
        main(["compare", "--optimal-every", "0"])
    assert "expected a positive integer" in capsys.readouterr().err


# ------------------------------------------------------------------ gaps, from known numbers


def pt(status="OPTIMAL", placed=10, upper=None, nodes=3, frag=5.0, run_placed=None,
       run_nodes=None, run_frag=None, at="end", bound=None) -> dict:
    values = {"at": at, "time": None, "arrived": 12, "pods": 12, "status": status,
              "placed": placed, "placed_upper": placed if upper is None else upper,
              "nodes_used": nodes, "frag_amount_pct": frag, "objective": float(placed or 0),
              "bound": float(bound if bound is not None else (upper or placed or 0)),
              "gap": 0.0, "wall_seconds": 0.1, "run_placed": run_placed,
              "run_nodes_used": run_nodes, "run_frag_amount_pct": run_frag}
    return {k: values[k] for k in OPTIMAL_POINT_KEYS}


def metrics(**kw) -> dict:
    m = {k: 0 for k in METRIC_KEYS}
    m.update(gpu_alloc_pct=60.0, unallocated_gpu_pct=40.0)
    m.update(kw)
    return m


def fill_result(policy, seed, placed_total, nodes_end, frag_end) -> RunResult:
    spec = RunSpec("/t/tiny", policy, seed, "fill", optimal=OptimalOptions(time_limit=3))
    return RunResult(spec, "tiny", metrics(placed=placed_total - 1, unallocated_gpu_pct=30.0 +
                                           placed_total),
                     {"placed_total": placed_total, "nodes_used_end": nodes_end,
                      "frag_amount_pct_end": frag_end, "attempted": 20})


def optimum_result(seed, status, placed, nodes, frag, upper=None) -> RunResult:
    spec = RunSpec("/t/tiny", "optimal", seed, "fill", optimal=OptimalOptions(time_limit=3))
    return RunResult(spec, "tiny", metrics(placed=placed, nodes_used=nodes,
                                           frag_amount_pct=frag),
                     {"status": status, "attempted": 20, "objective": float(placed),
                      "bound": float(upper or placed), "solver_gap": 0.0,
                      "solve_seconds": 0.5, "unallocated_gpu_pct_end": 20.0},
                     optimal=[pt(status, placed, upper, nodes, frag)])


def fill_sweep() -> list[RunResult]:
    return [fill_result("best-fit", 42, 15, 4, 7.5), fill_result("best-fit", 43, 17, 3, 6.0),
            optimum_result(42, "OPTIMAL", 18, 3, 5.0),
            optimum_result(43, "FEASIBLE", 18, 4, 4.0, upper=20),
            fill_result("worst-fit", 42, 12, 4, 9.0), fill_result("worst-fit", 43, 18, 4, 3.0)]


def test_fill_gap_is_optimum_minus_run_for_pods_and_run_minus_optimum_otherwise():
    results = fill_sweep()
    gaps = run_gaps(results)
    bf42, bf43, o42, o43, wf42, wf43 = gaps
    assert o42 is None and o43 is None                 # the optimum is not compared with itself
    assert (bf42.run_placed, bf42.optimal_placed, bf42.placed_gap) == (15, 18, 3)
    assert bf42.placed_gap_pct == pytest.approx(100 * 3 / 18)
    assert (bf42.nodes_used_gap, bf42.nodes_used_gap_pct) == (1, pytest.approx(100 / 3))
    assert bf42.frag_amount_gap == pytest.approx(2.5)
    assert bf42.frag_amount_gap_pct == pytest.approx(50.0)
    assert bf42.proven and bf42.status_text() == "OPTIMAL"
    assert bf42.placed_gap_max == 3                     # proven: the bound is the optimum
    # FEASIBLE: the bound (20 pods) caps the true gap; the status says so
    assert (bf43.placed_gap, bf43.placed_gap_max) == (1, 3)
    assert not bf43.proven and bf43.status_text() == "FEASIBLE"
    assert wf43.placed_gap == 0 and wf43.nodes_used_gap == 0
    assert wf43.frag_amount_gap == pytest.approx(-1.0)  # less fragmented than the optimum
    both = combine([bf42, bf43])
    assert both.snapshots == 2 and both.statuses == {"OPTIMAL": 1, "FEASIBLE": 1}
    assert both.placed_gap == pytest.approx(2.0)
    assert both.placed_gap_pct == pytest.approx(100 * 2 / 18)
    assert both.status_text() == "OPTIMAL 1, FEASIBLE 1 of 2"
    # a fill run is compared with the optimum of its own seed only
    points = comparison_points(results)
    assert points[0][0]["run_placed"] == 15 and points[0][0]["placed"] == 18
    assert points[1][0]["status"] == "FEASIBLE"


def test_replay_gap_averages_the_solved_snapshots_only():
    points = [pt("OPTIMAL", 10, nodes=3, frag=None, run_placed=8, run_nodes=4, run_frag=None),
              pt("OPTIMAL", 6, nodes=2, frag=None, run_placed=6, run_nodes=2, run_frag=None),
              pt("UNKNOWN", None, None, None, None, run_placed=5, run_nodes=2, bound=9)]
    points[2]["placed_upper"] = None
    g = run_gap(points)
    assert (g.snapshots, g.solved) == (3, 2)
    assert (g.run_placed, g.optimal_placed, g.placed_gap) == (7, 8, 1)
    assert g.placed_gap_pct == pytest.approx(12.5)
    assert g.nodes_used_gap == pytest.approx(0.5)
    assert math.isnan(g.frag_amount_gap)                # no GPUs: no fragmentation figure
    assert g.status_text() == "OPTIMAL 2, UNKNOWN 1 of 3"
    assert run_gap([]) is None
    # FEASIBLE as a whole (nodes unproven) while the pods placed met the bound
    g = run_gap([pt("FEASIBLE", 10, upper=10, run_placed=9, run_nodes=4),
                 pt("FEASIBLE", 10, upper=12, run_placed=9, run_nodes=4)])
    assert (g.placed_proven, g.placed_gap, g.placed_gap_max) == (1, 1, 2)
    assert g.status_text() == "FEASIBLE 2 of 2; pods placed proven optimal in 1"


def test_report_shows_the_gaps_in_every_format(tmp_path):
    results = fill_sweep()
    written = report.write_report(results, tmp_path)
    summary = json.loads((tmp_path / "summary.json").read_text())
    runs = summary["runs"]
    assert [r["policy"] for r in runs] == [r.spec.policy for r in results]
    bf42 = runs[0]["gap_to_optimal"]
    assert (bf42["placed_gap"], bf42["nodes_used_gap"]) == (3, 1)
    assert bf42["frag_amount_gap"] == pytest.approx(2.5)
    assert "gap_to_optimal" not in runs[2] and runs[2]["optimal"][0]["status"] == "OPTIMAL"
    assert list(runs[2]["optimal"][0]) == list(OPTIMAL_POINT_KEYS)
    md = (tmp_path / "report.md").read_text()
    assert "### Gap to the optimum" in md
    header = next(line for line in md.splitlines() if line.startswith("| policy | snapshots"))
    for col in ("placed gap", "placed gap %", "placed gap at most (bound)", "nodes gap",
                "nodes gap %", "frag gap (pp)", "frag gap %"):
        assert f"| {col} |" in header
    # best-fit over both seeds: placed 16 vs 18 -> gap 2 (11.11%), bound gap (3 + 3) / 2 = 3
    row = next(line for line in md.splitlines() if line.startswith("| best-fit | 2 |"))
    cells = [c.strip() for c in row.strip("|").split("|")]
    assert cells[2] == "OPTIMAL 1, FEASIBLE 1 of 2"
    assert cells[3:8] == ["16", "18", "2", "11.11", "3"]
    assert "FEASIBLE is the best placement found within the time limit, not proven" in md
    assert "Optimum of seed 43: FEASIBLE, 18 of 20 pods placed on 4 nodes (best found" in md
    html = (tmp_path / "report.html").read_text()
    assert "<h3>Gap to the optimum</h3>" in html and "placed gap at most (bound)" in html
    # the optimum is not ranked with the policies (its figures are the whole workload's)
    (g,) = report.group_results(results)
    assert sorted(s.policy for s in g.policies) == ["best-fit", "worst-fit"]
    assert [r.spec.seed for r in g.optimum] == [42, 43]
    text = report.summary_text(results)
    assert "Gap to the optimum (end of the fill run" in text
    assert "2 (11.11%)" in text and "Not every snapshot was solved" in text
    frame = pd.read_parquet(written["metrics.parquet"])
    assert list(frame["gap_placed_gap"].iloc[[0, 1, 4, 5]]) == [3, 1, 6, 0]
    assert frame["gap_placed_gap"].iloc[2:4].isna().all()


def test_reports_without_the_optimal_policy_are_unchanged(tmp_path):
    plain = [fill_result("best-fit", 42, 15, 4, 7.5), fill_result("worst-fit", 42, 12, 4, 9.0)]
    report.write_report(plain, tmp_path)
    assert "Gap to the optimum" not in (tmp_path / "report.md").read_text()
    run = json.loads((tmp_path / "summary.json").read_text())["runs"][0]
    assert list(run) == ["policy", "seed", "trace", "experiment", "metrics"]
    assert "gap_placed_gap" not in pd.read_parquet(tmp_path / "metrics.parquet")


# ---------------------------------------------------------------- the plumbing, stand-in solver


def test_replay_snapshots_every_k_arrivals_and_at_the_last(crowded):
    from schedbench.replay.kube_engine import KubeReplay
    from schedbench.traces import load_trace

    trace = load_trace(crowded)
    spec = RunSpec(crowded, "best-fit", 42, optimal=OptimalOptions(every=12, time_limit=1))
    CALLS.clear()
    rep = KubeReplay(trace, spec, solver=first_fit_solve)
    result = rep.run()
    pts = result.optimal
    assert [p["arrived"] for p in pts] == [12, 24, 36, 40]
    assert len(CALLS) == 4 and {c["time_limit"] for c in CALLS} == {1}
    for p, call in zip(pts, CALLS):
        t = p["time"]
        # the run's own figures: pods bound at that instant, from the event log
        binds = {e.pod for e in rep.log if e.kind == "bind" and e.time <= t}
        gone = {e.pod for e in rep.log if e.kind in ("depart", "evict") and e.time <= t}
        assert p["run_placed"] == len(binds - gone)
        arrived = set(trace.pods["id"][trace.pods["arrival"] <= t])
        assert len(arrived) == p["arrived"]
        # re-placed: the bound and the waiting pods (arrived, not bound, not gone)
        assert {k.split("/", 1)[1] for k in call["pods"]} == arrived - gone
        assert p["pods"] == len(call["pods"])
        # the hint is the run's own placement of its bound pods
        assert sorted(call["hint"]) == sorted(f"default/{k}" for k in binds - gone)
        assert p["status"] == "FEASIBLE" and p["placed_upper"] == p["pods"]
    assert any(p["pods"] > p["run_placed"] for p in pts)    # some pods were waiting
    # the solves are left out of the replay's own time; the same replay without them
    plain = KubeReplay(trace, RunSpec(crowded, "best-fit", 42)).run()
    assert {k: v for k, v in plain.metrics.items() if k != "wall_seconds"} == \
        {k: v for k, v in result.metrics.items() if k != "wall_seconds"}
    assert result.extra["optimal_every"] == 12


def test_fill_optimum_measures_its_placement(tiny):
    spec = RunSpec(tiny, "optimal", 42, "fill", optimal=OptimalOptions(time_limit=1))
    r = run_spec(spec, solver=first_fit_solve)
    (p,) = r.optimal
    assert p["pods"] == r.extra["attempted"] and p["placed"] == r.metrics["placed"]
    assert r.metrics["failed"] == p["pods"] - p["placed"]
    assert r.metrics["nodes_used"] == len(set(r.placements.values())) == p["nodes_used"]
    assert 0 < r.metrics["gpu_alloc_pct"] <= 100
    assert r.metrics["frag_amount_pct"] == pytest.approx(p["frag_amount_pct"])
    # the same workload as the fill runs of that seed
    heuristic = run_spec(RunSpec(tiny, "best-fit", 42, "fill", optimal=OptimalOptions()))
    assert r.extra["attempted"] == heuristic.extra["attempted"]
    assert heuristic.extra["nodes_used_end"] == len(set(heuristic.placements.values()))


# ------------------------------------------------------------- end to end, the CP-SAT solver


def test_replay_optimum_places_at_least_the_policy_on_each_snapshot(crowded):
    r = run_spec(RunSpec(crowded, "best-fit", 42, optimal=OptimalOptions(every=8,
                                                                          time_limit=2)))
    pts = r.optimal
    assert [p["arrived"] for p in pts] == [8, 16, 24, 32, 40]
    proven = [p for p in pts if p["status"] == "OPTIMAL"]
    assert len(proven) >= 3                   # the small snapshots are proven within 2 s
    for p in proven:
        assert p["run_placed"] <= p["placed"] == p["placed_upper"] <= p["pods"]
        if p["run_placed"] == p["pods"]:       # nothing waiting: all fit
            assert p["placed"] == p["pods"]
    for p in pts:
        assert p["status"] in ("OPTIMAL", "FEASIBLE")
        assert p["placed"] <= p["placed_upper"] <= p["pods"]
        assert p["nodes_used"] <= 4 and p["frag_amount_pct"] is not None
    assert any(p["placed"] > p["run_placed"] for p in pts)   # pods waited that fitted
    gap = run_gap(pts)
    assert gap.placed_gap == pytest.approx(np.mean([p["placed"] - p["run_placed"]
                                                    for p in pts]))
    assert gap.proven == (len(proven) == len(pts))


def test_fill_optimum_places_at_least_every_policy(tiny):
    policies = ["best-fit", "worst-fit", "atc23-fgd", "optimal"]
    specs = compare.expand_specs([tiny], policies, [42, 43], experiment="fill",
                                 optimal=OptimalOptions(time_limit=5))
    results = [run_spec(s) for s in specs]
    optimum = {r.spec.seed: r for r in results if r.spec.policy == "optimal"}
    assert {r.extra["status"] for r in optimum.values()} == {"OPTIMAL"}
    for r, gap in zip(results, run_gaps(results)):
        if r.spec.policy == "optimal":
            assert gap is None
            continue
        o = optimum[r.spec.seed]
        assert r.extra["attempted"] == o.extra["attempted"]     # the same workload
        assert o.metrics["placed"] >= r.extra["placed_total"]
        assert gap.placed_gap == o.metrics["placed"] - r.extra["placed_total"]
        assert gap.nodes_used_gap == r.extra["nodes_used_end"] - o.metrics["nodes_used"]
        assert gap.frag_amount_gap == pytest.approx(r.extra["frag_amount_pct_end"]
                                                    - o.metrics["frag_amount_pct"])


def test_compare_cli_end_to_end_through_the_process_pool(tiny, tmp_path, capsys):
    out = tmp_path / "rep"
    rc = main(["compare", "--trace", tiny, "--policies", "best-fit,optimal", "--seed-list",
               "43", "--experiment", "fill", "--jobs", "2", "--optimal-time-limit", "5",
               "--out", str(out)])
    assert rc == 0
    stdout = capsys.readouterr().out
    assert "Gap to the optimum (end of the fill run" in stdout
    runs = json.loads((out / "summary.json").read_text())["runs"]
    assert [(r["policy"], r["seed"]) for r in runs] == [("best-fit", 43), ("optimal", 43)]
    # the same numbers as in this process (deterministic solver)
    ref = [run_spec(s) for s in compare.expand_specs(
        [tiny], ["best-fit", "optimal"], [43], experiment="fill",
        optimal=OptimalOptions(time_limit=5))]
    for got, want in zip(runs, report.summary_dict(ref)["runs"]):
        assert got.get("gap_to_optimal") == want.get("gap_to_optimal")
        assert [dict(p, wall_seconds=0) for p in got.get("optimal", [])] == \
            [dict(p, wall_seconds=0) for p in want.get("optimal", [])]
    gap = runs[0]["gap_to_optimal"]
    assert gap["placed_gap"] == runs[1]["metrics"]["placed"] - gap["run_placed"] >= 0
    md = (out / "report.md").read_text()
    assert "| placed gap | placed gap % |" in md and "frag gap (pp)" in md


def test_cpu_only_replay_has_no_fragmentation_and_is_deterministic(tmp_path):
    from schedbench.traces import load_trace

    d = tmp_path / "cpu"
    d.mkdir()
    rng = np.random.default_rng(5)
    n = 24
    pd.DataFrame({"name": ["a", "b", "c"], "cpu_milli": [4000, 4000, 8000],
                  "memory_mib": [8192, 8192, 16384]}).to_csv(d / "nodes.csv", index=False)
    pd.DataFrame({"id": [f"q{i:02d}" for i in range(n)],
                  "arrival": np.sort(rng.uniform(0, 50, n)).round(1),
                  "duration": rng.uniform(30, 300, n).round(1),
                  "cpu_milli": rng.choice([500, 1500, 3000], n),
                  "memory_mib": rng.choice([512, 4096], n)}).to_csv(d / "pods.csv", index=False)
    load_trace(str(d))
    spec = RunSpec(str(d), "spread", 42, optimal=OptimalOptions(every=6, time_limit=2))
    first, second = run_spec(spec), run_spec(spec)
    assert [dict(p, wall_seconds=0) for p in first.optimal] == \
        [dict(p, wall_seconds=0) for p in second.optimal]
    for p in first.optimal:
        assert p["frag_amount_pct"] is None and p["run_frag_amount_pct"] is None
        if p["status"] == "OPTIMAL":
            assert p["run_placed"] <= p["placed"] and p["nodes_used"] <= 3
    report.write_report([first], tmp_path / "rep")
    md = (tmp_path / "rep" / "report.md").read_text()
    header = next(line for line in md.splitlines() if line.startswith("| policy | snapshots"))
    assert "| placed gap |" in header and "frag" not in header
