"""The kube engine: trace -> objects, the event replay through the real Scheduler and the fill
experiment. Properties on generated traces: no resource or single GPU over-committed at any
time, every pod accounted for, same seed -> same run, and the final state equals the state
rebuilt from the event log; the atc23 kube profiles place pods exactly as the fast engine."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import SHARED_TRACES
from schedbench.replay import METRIC_KEYS, TIMESERIES_COLUMNS, RunSpec
from schedbench.replay import kube_engine
from schedbench.replay.kube_engine import KubeReplay
from schedbench.replay.trace_cluster import TracePods, has_gpus, trace_nodes
from schedbench.scheduler.snapshot import CPU, GPU_COUNT, GPU_MILLI, GPU_MODEL, MEMORY, GPU_INDEX
from schedbench.traces import Trace, normalise_nodes, normalise_pods

MI = 1024 ** 2
MODELS = ("A10", "V100")


def make_trace(nodes: list[dict], pods: list[dict], name: str = "t") -> Trace:
    return Trace(name, normalise_nodes(pd.DataFrame(nodes)), normalise_pods(pd.DataFrame(pods)))


@st.composite
def traces(draw, max_pods: int = 30, priorities: bool = False):
    n = draw(st.integers(1, 5))
    nodes = []
    for i in range(n):
        g = draw(st.integers(0, 4))
        nodes.append({"name": f"node-{i}", "cpu_milli": draw(st.sampled_from((4000, 8000, 16000))),
                      "memory_mib": draw(st.sampled_from((8192, 32768))),
                      "gpu": g, "gpu_model": draw(st.sampled_from(MODELS)) if g else "",
                      "max_pods": draw(st.sampled_from((3, 110)))})
    m = draw(st.integers(1, max_pods))
    pods = []
    for j in range(m):
        k = draw(st.sampled_from((0, 0, 1, 1, 1, 2, 3)))
        milli = (draw(st.sampled_from((100, 250, 500, 700, 1000))) if k == 1 else 1000) if k \
            else 0
        dur = draw(st.sampled_from((math.nan, 5.0, 20.0, 60.0)))
        pods.append({"id": f"p{j:03d}", "arrival": float(draw(st.integers(0, 40))),
                     "duration": dur, "cpu_milli": draw(st.sampled_from((0, 500, 2000, 6000))),
                     "memory_mib": draw(st.sampled_from((0, 1024, 8192))),
                     "num_gpu": k, "gpu_milli": milli,
                     "gpu_models": draw(st.sampled_from(("",) + MODELS)) if k else "",
                     "priority": draw(st.sampled_from((0, 0, 100))) if priorities else 0})
    return make_trace(nodes, pods)


def spec(policy="best-fit", seed=0, **kw) -> RunSpec:
    return RunSpec(trace="t", policy=policy, seed=seed, **kw)


def check_log(trace: Trace, run: KubeReplay) -> None:
    """Replay the event log: no over-commitment after any event; the rebuilt final state is
    the scheduler's."""
    nodes, pods = trace.nodes, trace.pods.set_index("id")
    idx = {name: i for i, name in enumerate(nodes["name"])}
    cpu = np.zeros(len(nodes), np.int64)
    mem = np.zeros(len(nodes), np.int64)
    count = np.zeros(len(nodes), np.int64)
    gpu = [[1000] * int(g) for g in nodes["gpu"]]
    last_t = -1.0
    held: dict[str, tuple] = {}
    for ev in run.log:
        assert ev.time >= last_t
        last_t = ev.time
        if ev.kind == "fail":
            continue
        p = pods.loc[ev.pod]
        n = idx[ev.node]
        sign = 1 if ev.kind == "bind" else -1
        if ev.kind == "bind":
            assert ev.pod not in held
            assert len(ev.gpus) == p["num_gpu"]
            held[ev.pod] = (ev.node, ev.gpus)
        else:
            assert held.pop(ev.pod) == (ev.node, ev.gpus)
        cpu[n] += sign * p["cpu_milli"]
        mem[n] += sign * p["memory_mib"]
        count[n] += sign
        for j in ev.gpus:
            gpu[n][j] -= sign * int(p["gpu_milli"])
        # never over-committed
        assert cpu[n] <= nodes["cpu_milli"][n] and mem[n] <= nodes["memory_mib"][n]
        assert count[n] <= nodes["max_pods"][n]
        assert all(0 <= x <= 1000 for x in gpu[n])
        if ev.kind == "bind" and p["gpu_models"]:
            assert nodes["gpu_model"][n] in p["gpu_models"].split("|")
    snap = run.scheduler.snapshot
    assert snap.requested[:, CPU].tolist() == cpu.tolist()
    assert (snap.requested[:, MEMORY] // MI).tolist() == mem.tolist()
    assert snap.pod_count.tolist() == count.tolist()
    for n in range(len(nodes)):
        c = int(nodes["gpu"][n])
        assert snap.gpu_free[n, :c].tolist() == gpu[n]
    if GPU_MILLI in snap.resources.ids:
        col = snap.resources.get(GPU_MILLI)
        want = [sum(1000 - x for x in g) for g in gpu]
        assert snap.requested[:, col].tolist() == want


def check_result(trace: Trace, r) -> None:
    assert tuple(r.metrics) == METRIC_KEYS
    m = r.metrics
    assert m["placed"] + m["failed"] + m["pending"] == len(trace.pods)
    assert list(r.timeseries.columns) == list(TIMESERIES_COLUMNS)
    ts = r.timeseries
    assert ((ts["placed"] + ts["failed"] + ts["pending"]) <= len(trace.pods)).all()
    assert (ts["gpu_alloc_pct"] <= 100.0 + 1e-9).all() and (ts["cpu_alloc_pct"] <= 100 + 1e-9).all()
    assert ts["time"].is_monotonic_increasing


# ------------------------------------------------------------------------------- replay

@given(traces(), st.sampled_from(("best-fit", "worst-fit", "default")), st.booleans())
def test_replay_properties(trace, policy, fail):
    run = KubeReplay(trace, spec(policy, seed=3, fail_unschedulable=fail))
    r = run.run()
    check_result(trace, r)
    check_log(trace, run)
    binds = [e for e in run.log if e.kind == "bind"]
    assert r.metrics["placed"] == len(binds) - sum(e.kind == "evict" for e in run.log)
    if fail:
        assert r.metrics["pending"] == 0
    # delays: binds never precede arrivals
    arrival = trace.pods.set_index("id")["arrival"]
    assert all(e.time >= arrival[e.pod] for e in binds)
    # same seed, same run
    r2 = kube_engine.replay(trace, spec(policy, seed=3, fail_unschedulable=fail))
    assert r2.placements == r.placements
    a = {k: v for k, v in r.metrics.items() if k != "wall_seconds"}
    b = {k: v for k, v in r2.metrics.items() if k != "wall_seconds"}
    assert a == b
    pd.testing.assert_frame_equal(r.timeseries, r2.timeseries)


@settings(max_examples=15)
@given(traces(max_pods=20, priorities=True))
def test_replay_with_preemption_keeps_state_consistent(trace):
    run = KubeReplay(trace, spec("default", seed=1))
    r = run.run()
    check_result(trace, r)
    check_log(trace, run)
    assert r.extra["preempted"] == sum(e.kind == "evict" for e in run.log)


@settings(max_examples=40)
@given(st.booleans().flatmap(lambda p: traces(max_pods=30, priorities=p)),
       st.sampled_from(("best-fit", "default", "worst-fit")))
def test_grouped_quiet_reasons_equal_the_per_node_reasons(trace, policy):
    """The quiet replay records a FitError's per-node statuses grouped (by numpy, not per
    node), and without a PostFilter plugin (uniform priorities) takes them from the kernel's
    failed checks: every attempt (node, message, code, nomination, victims, nodes evaluated),
    the event log and the final placements equal those of the per-plugin, per-node path."""
    from schedbench.scheduler.scheduler import Scheduler

    def results(grouped: bool):
        run = KubeReplay(trace, spec(policy, seed=2))
        original = kube_engine.quiet_filter_reasons
        original_fail = Scheduler._fail
        diagnoses = []

        def quiet(framework):
            original(framework)
            if not grouped:
                del framework.filter_reason_groups

        def fail(self, state, pod, diagnosis):  # (every node's status, GPU nodes included)
            diagnoses.append((pod.key, sorted(diagnosis.node_status.items()),
                              sorted(diagnosis.unschedulable_plugins)))
            return original_fail(self, state, pod, diagnosis)

        kube_engine.quiet_filter_reasons = quiet
        Scheduler._fail = fail
        try:
            r = run.run()
        finally:
            kube_engine.quiet_filter_reasons = original
            Scheduler._fail = original_fail
        attempts = [(x.pod, x.node, int(x.code), x.message, x.nominated_node, tuple(x.victims),
                     x.evaluated_nodes) for x in run.scheduler.results]
        return attempts, diagnoses, [(e.kind, e.time, e.pod) for e in run.log], r.placements

    assert results(True) == results(False)


def test_departures_free_room_for_waiting_pods():
    """One whole-GPU node; three whole-GPU pods arrive together and run 10 s each: they run
    one after another, each starting when the previous one leaves."""
    trace = make_trace([{"name": "n", "cpu_milli": 8000, "memory_mib": 8192, "gpu": 1,
                         "gpu_model": "A10"}],
                       [{"id": f"p{i}", "arrival": 0.0, "duration": 10.0, "cpu_milli": 100,
                         "memory_mib": 100, "num_gpu": 1, "gpu_milli": 1000}
                        for i in range(3)])
    run = KubeReplay(trace, spec())
    r = run.run()
    binds = sorted(e.time for e in run.log if e.kind == "bind")
    assert binds == [0.0, 10.0, 20.0]
    assert r.metrics["placed"] == 3 and r.metrics["pending"] == 0
    assert r.extra["delay_p50"] == 10.0
    assert r.extra["end_time"] == 30.0
    # figures at the last arrival (t=0): one GPU of one busy
    assert r.metrics["gpu_alloc_pct"] == 100.0 and r.metrics["nodes_used"] == 1
    check_log(trace, run)


def test_fail_unschedulable_makes_failures_final():
    trace = make_trace([{"name": "n", "cpu_milli": 1000, "memory_mib": 1024}],
                       [{"id": "a", "arrival": 0.0, "duration": 5.0, "cpu_milli": 800,
                         "memory_mib": 10},
                        {"id": "b", "arrival": 1.0, "duration": 5.0, "cpu_milli": 800,
                         "memory_mib": 10}])
    r = kube_engine.replay(trace, spec(fail_unschedulable=True))
    assert (r.metrics["placed"], r.metrics["failed"], r.metrics["pending"]) == (1, 1, 0)
    r = kube_engine.replay(trace, spec())
    assert (r.metrics["placed"], r.metrics["failed"], r.metrics["pending"]) == (2, 0, 0)
    assert r.extra["delay_p99"] > 0


def test_cpu_only_trace_has_zero_gpu_figures():
    trace = make_trace([{"name": "n", "cpu_milli": 4000, "memory_mib": 4096}],
                       [{"id": "a", "cpu_milli": 1000, "memory_mib": 1024}])
    assert not has_gpus(trace)
    r = kube_engine.replay(trace, spec())
    m = r.metrics
    assert m["gpu_alloc_pct"] == m["unallocated_gpu_pct"] == m["frag_amount_pct"] == 0.0
    assert m["cpu_alloc_pct"] == 25.0 and m["mem_alloc_pct"] == 25.0


# ------------------------------------------------------------------------ trace -> objects

def test_trace_objects():
    trace = make_trace(
        [{"name": "g", "cpu_milli": 8000, "memory_mib": 1024, "gpu": 2, "gpu_model": "A10",
          "max_pods": 7, "labels": "zone=z1;disk=ssd", "taints": "gpu=yes:NoSchedule"}],
        [{"id": "p", "cpu_milli": 250, "memory_mib": 64, "num_gpu": 1, "gpu_milli": 300,
          "gpu_models": "A10|V100", "priority": 5, "labels": "app=x", "group": "job-1"}])
    node = trace_nodes(trace.nodes)[0]
    assert node.allocatable == {"cpu": 8000, "memory": 1024 * MI, "pods": 7, GPU_COUNT: 2}
    assert node.labels == {"kubernetes.io/hostname": "g", "zone": "z1", "disk": "ssd",
                           GPU_MODEL: "A10"}
    assert [(t.key, t.value, t.effect) for t in node.taints] == [("gpu", "yes", "NoSchedule")]
    pod = TracePods(trace.pods).pod(0)
    assert pod.key == "default/p" and pod.spec.priority == 5
    assert pod.labels == {"app": "x", "schedbench.io/group": "job-1"}
    assert pod.metadata.annotations["schedbench.io/group"] == "job-1"
    assert pod.requests() == {"cpu": 250, "memory": 64 * MI}
    assert pod.metadata.annotations[GPU_MILLI] == "300"
    assert pod.metadata.annotations[GPU_MODEL] == "A10|V100"
    assert GPU_INDEX not in pod.metadata.annotations


# --------------------------------------------------------------------------------- fill

def openb_like(n_nodes: int, n_pods: int, seed: int) -> Trace:
    rng = np.random.default_rng(seed)
    shapes = [(64000, 262144, 2, "P100"), (96000, 786432, 8, "G2"), (32000, 131072, 1, "T4"),
              (96000, 393216, 4, "V100M16")]
    nodes = []
    for i in range(n_nodes):
        c, m, g, model = shapes[int(rng.integers(len(shapes)))]
        nodes.append({"name": f"openb-node-{i:04d}", "cpu_milli": c, "memory_mib": m,
                      "gpu": g, "gpu_model": model})
    pods = []
    for j in range(n_pods):
        kind = rng.random()
        if kind < 0.2:
            k, milli = 0, 0
        elif kind < 0.6:
            k, milli = 1, int(rng.choice([100, 250, 500, 600, 800]))
        else:
            k, milli = int(rng.choice([1, 1, 2, 4, 8])), 1000
        pods.append({"id": f"openb-pod-{j:04d}", "cpu_milli": int(rng.choice([1000, 4000,
                                                                              12000, 32000])),
                     "memory_mib": int(rng.choice([2048, 16384, 65536])), "num_gpu": k,
                     "gpu_milli": milli,
                     "gpu_models": str(rng.choice(["", "", "", "G2", "T4|P100"])) if k else ""})
    return make_trace(nodes, pods, name="openb-like")


ATC23_KUBE = ("atc23-bestfit", "atc23-dotprod", "atc23-packing", "atc23-clustering",
              "atc23-fgd")


@pytest.mark.parametrize("policy", ATC23_KUBE)
def test_fill_atc23_kube_profiles_match_fast_engine(policy):
    from schedbench import gpushare

    for seed in (42, 43):
        trace = openb_like(30, 150, seed)
        s = RunSpec(trace="t", policy=policy, seed=seed, experiment="fill")
        kube = kube_engine.fill_experiment(trace, s)
        fast = gpushare.fill_experiment(trace, s)
        assert kube.placements == fast.placements
        for k in METRIC_KEYS[:-1]:
            assert kube.metrics[k] == pytest.approx(fast.metrics[k], abs=1e-9), k
        pd.testing.assert_frame_equal(kube.timeseries, fast.timeseries)


def test_fill_on_openb_sample_matches_fast_engine():
    from schedbench import gpushare
    from schedbench.traces import load_trace

    csv = SHARED_TRACES / "alibaba-gpu-v2023" / "csv" / "openb_pod_list_gpuspec33.csv"
    if not csv.exists():
        pytest.skip(f"{csv} not present")
    full = load_trace(f"openb:{csv}")
    nodes = full.nodes.iloc[::8].reset_index(drop=True)       # 152 nodes
    pods = full.pods.iloc[::8].reset_index(drop=True)         # ~1,000 pods
    trace = Trace("openb-sample", nodes, pods)
    for policy in ("atc23-fgd", "atc23-bestfit"):
        s = RunSpec(trace="t", policy=policy, seed=44, experiment="fill")
        assert kube_engine.fill_experiment(trace, s).placements == \
            gpushare.fill_experiment(trace, s).placements


def test_fill_kube_policy_is_deterministic_and_accounts_for_every_pod():
    trace = openb_like(20, 120, 5)
    s = RunSpec(trace="t", policy="best-fit", seed=7, experiment="fill")
    a = kube_engine.fill_experiment(trace, s)
    b = kube_engine.fill_experiment(trace, s)
    assert a.placements == b.placements
    assert a.extra["placed_total"] + a.extra["failed_total"] == a.extra["attempted"]
    assert a.metrics["pending"] == 0
    assert a.extra["arrived_gpu_pct_at_full"] <= 100.0
    assert a.placements != kube_engine.fill_experiment(
        trace, RunSpec(trace="t", policy="best-fit", seed=8, experiment="fill")).placements


def test_replay_preemption_evicts_and_accounts_victims():
    """Low-priority pods hold both GPUs; a high-priority pod arrives and preempts one: the
    victim is logged as evicted, counted as failed, and its departure never happens."""
    trace = make_trace([{"name": "n", "cpu_milli": 8000, "memory_mib": 8192, "gpu": 2,
                         "gpu_model": "A10"}],
                       [{"id": "low0", "arrival": 0.0, "duration": 100.0, "cpu_milli": 100,
                         "memory_mib": 100, "num_gpu": 1, "gpu_milli": 1000},
                        {"id": "low1", "arrival": 0.0, "duration": 100.0, "cpu_milli": 100,
                         "memory_mib": 100, "num_gpu": 1, "gpu_milli": 1000},
                        {"id": "high", "arrival": 5.0, "duration": 10.0, "cpu_milli": 100,
                         "memory_mib": 100, "num_gpu": 1, "gpu_milli": 1000,
                         "priority": 1000}])
    run = KubeReplay(trace, spec("default"))
    r = run.run()
    kinds = [(e.kind, e.pod) for e in run.log]
    assert sum(k == "evict" for k, _ in kinds) == 1
    assert ("bind", "high") in kinds
    assert (r.metrics["placed"], r.metrics["failed"], r.metrics["pending"]) == (2, 1, 0)
    assert r.extra["preempted"] == 1
    check_log(trace, run)


@given(traces(max_pods=25), st.data())
def test_fill_precheck_never_rejects_a_pod_that_fits(trace, data):
    """The fill shortcut (no node has room -> fail without a cycle) agrees with the filters."""
    from schedbench.replay.kube_engine import _profile, _surely_unschedulable
    from schedbench.replay.trace_cluster import trace_cluster
    from schedbench.scheduler.framework import CycleState
    from schedbench.scheduler.scheduler import Scheduler

    cfg, profile = _profile(trace, "best-fit")
    s = Scheduler(trace_cluster(trace), profile, config=cfg)
    snap, fw = s.snapshot, s.framework
    pods = TracePods(trace.pods)
    for i in range(len(pods)):
        info = snap.pod_info(pods.pod(i))
        state = CycleState()
        pre = fw.run_pre_filter(state, info, snap.alive_nodes())
        fits = pre.status.is_success and bool(
            fw.run_filters(state, info, snap.alive_nodes(), pre.skipped).feasible.size)
        assert _surely_unschedulable(snap, info) == (not fits)
        if fits and data.draw(st.booleans()):
            feasible = fw.run_filters(state, info, snap.alive_nodes(), pre.skipped).feasible
            snap.add_pod(info, int(feasible[data.draw(st.integers(0, feasible.size - 1))]))


def test_group_services_make_spread_spread_groups():
    from schedbench.replay.trace_cluster import GROUP_LABEL, group_label_value, trace_cluster

    nodes = [{"name": f"n{i}", "cpu_milli": 640000 if i == 0 else 4000,
              "memory_mib": 655360 if i == 0 else 4096} for i in range(4)]
    pods = [{"id": f"p{j}", "cpu_milli": 100, "memory_mib": 100, "group": "web"}
            for j in range(4)]
    trace = make_trace(nodes, pods)
    assert group_label_value("web") == "web" and group_label_value("a b").startswith("g-")
    c = trace_cluster(trace, services=True)
    assert len(c.services) == 1 and c.services[0].spec.selector == {GROUP_LABEL: "web"}
    assert TracePods(trace.pods).pod(0).labels[GROUP_LABEL] == "web"
    def nodes_used(services):
        run = KubeReplay(trace, spec("spread"), group_services=services)
        run.run()
        return len({e.node for e in run.log if e.kind == "bind"})

    assert nodes_used(True) == 4
    assert nodes_used(False) == 1  # LeastAllocated alone: the big node every time
