"""The fast event replay (schedbench.gpushare.replay_fast): same binds, departures, waits and
failures as the plain reference that rescans every node at every attempt; no over-commitment
at any time; every pod accounted for; the final state equals the state rebuilt from the log;
identical seeds give identical results."""

from __future__ import annotations

import numpy as np
import pandas as pd
from hypothesis import given
from hypothesis import strategies as st

from reference import gpushare as ref
from schedbench.gpushare import ATC23_POLICIES, replay_fast
from schedbench.gpushare.replay import run_replay
from schedbench.replay.result import METRIC_KEYS, TIMESERIES_COLUMNS, RunSpec
from test_gpushare import make_trace, node_st, pod_st, ref_pods

timed_pod_st = st.tuples(pod_st, st.sampled_from([0.0, 0.0, 1.0, 2.5, 4.0, 10.0]),
                         st.sampled_from([np.nan, 1.0, 2.0, 3.0, 5.0, 1.5]))


def timed_trace(nodes, pods):
    trace = make_trace(nodes, [p for p, _, _ in pods])
    trace.pods["arrival"] = [a for _, a, _ in pods]
    trace.pods["duration"] = [d for _, _, d in pods]
    return trace


def ref_nodes_in(out, trace) -> list[dict]:
    by_name = trace.nodes.set_index("name")
    nodes = []
    for name in out.cluster.names:
        r = by_name.loc[name]
        nodes.append({"name": name, "cpu": int(r.cpu_milli), "mem": int(r.memory_mib),
                      "pods": int(r.max_pods), "model": r.gpu_model if r.gpu else "",
                      "gpus": [1000] * int(r.gpu), "tags": {}})
    return nodes


def rebuild_and_check(out, trace):
    """Replay the event log on an empty cluster, checking capacities after every event."""
    c = out.cluster
    cpu = c.cpu_cap.copy()
    mem = c.mem_cap.copy()
    slots = c.max_pods.copy()
    gpu = np.where(c.gpu_free >= 0, 1000, -1)
    p = out.pods
    last_t = -np.inf
    for t, kind, pod, node, gpus in zip(out.ev_time, out.ev_kind, out.ev_pod, out.ev_node,
                                        out.ev_gpus):
        assert t >= last_t
        last_t = t
        if kind not in (0, 1):
            continue
        sign = 1 if kind == 0 else -1
        cpu[node] -= sign * p.cpu[pod]
        mem[node] -= sign * p.mem[pod]
        slots[node] -= sign
        used = [g for g in gpus if g >= 0]
        assert len(used) == p.num_gpu[pod]
        for g in used:
            gpu[node, g] -= sign * p.gpu_milli[pod]
        assert cpu[node] >= 0 and mem[node] >= 0 and slots[node] >= 0
        assert (gpu[node] <= 1000).all() and ((gpu[node] >= 0) | (gpu[node] == -1)).all()
    assert (cpu == c.cpu_free).all() and (mem == c.mem_free).all()
    assert (slots == c.pods_free).all() and (gpu == c.gpu_free).all()


def replay_and_reference(trace, pods, policy, seed, fail):
    """The engine's run, its event log as tuples, and the reference replay of the same pods."""
    rtyp = ref.typical_pods(ref_pods(trace.pods.sort_values("id")))
    rp = ref_pods(trace.pods)
    for q, (_, a, d) in zip(rp, pods):
        q["arrival"], q["duration"] = a, d
    out = run_replay(trace, policy, seed, fail)
    want = ref.replay(policy, ref_nodes_in(out, trace), rp, rtyp, out.rand_key, fail)
    got = [(float(t), ("bind", "depart", "wait", "fail")[k], int(p), int(n),
            tuple(int(g) for g in gg if g >= 0))
           for t, k, p, n, gg in zip(out.ev_time, out.ev_kind, out.ev_pod, out.ev_node,
                                     out.ev_gpus)]
    return out, got, want


@given(nodes=st.lists(node_st, min_size=1, max_size=5),
       pods=st.lists(timed_pod_st, max_size=30), seed=st.integers(0, 2 ** 32 - 1),
       fail=st.booleans())
def test_replay_matches_reference_and_invariants(nodes, pods, seed, fail):
    trace = timed_trace(nodes, pods)
    for policy in ATC23_POLICIES:
        out, got, want = replay_and_reference(trace, pods, policy, seed, fail)
        assert got == want["log"], policy
        rebuild_and_check(out, trace)
        placed = int((out.pod_node >= 0).sum())
        failed = int((out.ev_kind == 3).sum())
        assert placed + failed + out.pending == len(pods)
        assert out.pending == len(want["pending"])


@given(nodes=st.lists(node_st, min_size=1, max_size=3),
       specs=st.lists(pod_st, min_size=1, max_size=3),
       picks=st.lists(st.tuples(st.integers(0, 2), st.sampled_from([0.0, 1.0, 2.0]),
                                st.sampled_from([1.0, 2.0, 3.0])), min_size=5, max_size=40),
       seed=st.integers(0, 2 ** 32 - 1))
def test_replay_with_many_waiting_pods_of_few_specs_matches_reference(nodes, specs, picks,
                                                                       seed):
    """Contention with repeated requests: many pods of the same spec wait and are retried
    together after departures (the engine skips a request once it fitted nowhere in a round);
    the log must still equal the reference's, which scores every waiting pod."""
    pods = [(specs[i % len(specs)], a, d) for i, a, d in picks]
    trace = timed_trace(nodes, pods)
    for policy in ATC23_POLICIES:
        out, got, want = replay_and_reference(trace, pods, policy, seed, False)
        assert got == want["log"], policy
        assert out.pending == len(want["pending"])


@given(nodes=st.lists(node_st, min_size=1, max_size=4),
       pods=st.lists(timed_pod_st, min_size=1, max_size=25), seed=st.integers(0, 1000))
def test_replay_fast_result_is_deterministic(nodes, pods, seed):
    trace = timed_trace(nodes, pods)
    for policy in ("atc23-random", "atc23-fgd"):
        spec = RunSpec("t", policy, seed, "replay")
        a, b = replay_fast(trace, spec), replay_fast(trace, spec)
        assert tuple(a.metrics) == METRIC_KEYS
        assert {k: v for k, v in a.metrics.items() if k != "wall_seconds"} == \
            {k: v for k, v in b.metrics.items() if k != "wall_seconds"}
        assert a.placements == b.placements
        assert list(a.timeseries.columns) == list(TIMESERIES_COLUMNS)
        pd.testing.assert_frame_equal(a.timeseries, b.timeseries)
        m = a.metrics
        assert m["placed"] + m["failed"] + m["pending"] >= 0
        assert 0 <= m["gpu_alloc_pct"] <= 100 + 1e-9


def test_queue_waits_then_binds_after_departure():
    nodes = [{"cpu_milli": 8000, "memory_mib": 8000, "gpu": 1, "gpu_model": "A",
              "max_pods": 110}]
    pods = [({"cpu_milli": 1000, "memory_mib": 0, "req": (1, 1000), "gpu_models": ""}, 0.0, 5.0),
            ({"cpu_milli": 1000, "memory_mib": 0, "req": (1, 1000), "gpu_models": ""}, 1.0, 2.0),
            ({"cpu_milli": 1000, "memory_mib": 0, "req": (1, 1000), "gpu_models": "B"}, 1.0,
             2.0)]
    trace = timed_trace(nodes, pods)
    r = replay_fast(trace, RunSpec("t", "atc23-bestfit", 1, "replay"))
    assert (r.metrics["placed"], r.metrics["failed"], r.metrics["pending"]) == (2, 0, 1)
    assert r.extra["delay_p99"] > 3.9  # the second pod waited 4 s (bound at 5, arrived at 1)
    assert r.metrics["gpu_alloc_pct"] == 100.0  # at the last arrival (t = 1) the GPU is held
    assert r.extra["gpu_alloc_pct_end"] == 0.0  # both left by t = 7
    f = replay_fast(trace, RunSpec("t", "atc23-bestfit", 1, "replay", fail_unschedulable=True))
    assert (f.metrics["placed"], f.metrics["failed"], f.metrics["pending"]) == (1, 2, 0)
