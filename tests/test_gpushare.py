"""The GPU-sharing engine (schedbench.gpushare) against the plain-Python reference
(tests/reference/gpushare.py): typical pods, fragmentation, every atc23 policy's node score and
GPU choice, and whole fill runs, bit for bit; plus facts about the openb trace."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from reference import gpushare as ref
from schedbench.gpushare import (ATC23_POLICIES, fragmentation_summary, node_fragmentation,
                                 normalize_scores, prepare_fill, run_fill, score_node,
                                 typical_pods)
from schedbench.gpushare.fill import sample_arrived
from schedbench.gpushare.policies import _sigmoid_score


@dataclass
class FakeTrace:
    name: str
    nodes: pd.DataFrame
    pods: pd.DataFrame
    source: str = ""


MODELS = ["A", "B", ""]
SPECS = ["", "", "", "A", "B", "A|B", "C", "B|A|A"]
GPU_REQ = [(0, 0), (1, 100), (1, 250), (1, 500), (1, 700), (1, 1000), (1, 1000), (2, 1000),
           (4, 1000)]

node_st = st.fixed_dictionaries({
    "cpu_milli": st.sampled_from([4000, 8000, 16000, 32000, 130000]),
    "memory_mib": st.sampled_from([8000, 16000, 64000]),
    "gpu": st.sampled_from([0, 1, 2, 4, 8, 8]),
    "gpu_model": st.sampled_from(MODELS),
    "max_pods": st.sampled_from([2, 5, 110, 110]),
})
pod_st = st.fixed_dictionaries({
    "cpu_milli": st.sampled_from([0, 1000, 2000, 4000, 12000]),
    "memory_mib": st.sampled_from([0, 1000, 4000]),
    "req": st.sampled_from(GPU_REQ),
    "gpu_models": st.sampled_from(SPECS),
})


def make_trace(nodes: list[dict], pods: list[dict]) -> FakeTrace:
    ndf = pd.DataFrame({
        "name": [f"n{i:02d}" for i in range(len(nodes))][::-1],
        "cpu_milli": [n["cpu_milli"] for n in nodes],
        "memory_mib": [n["memory_mib"] for n in nodes],
        "gpu": [n["gpu"] for n in nodes],
        "gpu_model": [n["gpu_model"] if n["gpu"] else "" for n in nodes],
        "max_pods": [n["max_pods"] for n in nodes],
        "labels": "", "taints": ""})
    pdf = pd.DataFrame({
        "id": [f"p{i:03d}" for i in range(len(pods))],
        "arrival": 0.0, "duration": np.nan,
        "cpu_milli": pd.array([p["cpu_milli"] for p in pods], dtype="int64"),
        "memory_mib": pd.array([p["memory_mib"] for p in pods], dtype="int64"),
        "num_gpu": pd.array([p["req"][0] for p in pods], dtype="int64"),
        "gpu_milli": pd.array([p["req"][1] for p in pods], dtype="int64"),
        "priority": 0, "labels": "", "group": "",
        "gpu_models": [p["gpu_models"] if p["req"][0] else "" for p in pods]})
    return FakeTrace("t", ndf, pdf)


def ref_nodes(trace, plan) -> list[dict]:
    nodes = trace.nodes.iloc[np.argsort(trace.nodes["name"].to_numpy(), kind="stable")]
    nodes = nodes.reset_index(drop=True).iloc[plan.node_order]
    return [{"name": r.name, "cpu": int(r.cpu_milli), "mem": int(r.memory_mib),
             "pods": int(r.max_pods), "model": r.gpu_model if r.gpu else "",
             "gpus": [1000] * int(r.gpu), "tags": {}} for r in nodes.itertuples()]


def ref_pods(df: pd.DataFrame) -> list[dict]:
    return [{"id": r.id, "cpu": int(r.cpu_milli), "mem": int(r.memory_mib),
             "num_gpu": int(r.num_gpu), "gpu_milli": int(r.gpu_milli),
             "gpu_models": r.gpu_models} for r in df.itertuples()]


# ------------------------------------------------------------------ facts and units

def test_sigmoid_score_facts():
    assert _sigmoid_score(0.0) == 50
    assert _sigmoid_score(1000.0) == 73
    assert _sigmoid_score(-1000.0) == 26
    assert _sigmoid_score(-1e-9) == 49   # truncation: any loss scores below 50


def test_fragmentation_by_hand():
    # one node, 2 GPUs with 300 and 1000 milli left, 8 cores left
    pods = pd.DataFrame({"id": ["a", "b", "c", "d"], "cpu_milli": [1000, 1000, 1000, 9000],
                         "memory_mib": 0, "num_gpu": [1, 1, 0, 1], "gpu_milli": [500, 500, 0, 200],
                         "gpu_models": ""})
    typ = typical_pods(pods, ["A"], threshold=1.0)
    assert list(typ.prob) == [0.5, 0.25, 0.25]  # (1000, 500, 1) x2 first, then larger specs first
    assert list(typ.cpu) == [1000, 9000, 1000]
    f = node_fragmentation([8000], [[300, 1000]], [0], typ)
    # share 500: fits, frag = 300 (GPU with 300 < 500); 9-core pod: lacks CPU -> 1300;
    # CPU-only pod: all idle 1300
    assert f[0] == 0.5 * 300 + 0.25 * 1300 + 0.25 * 1300
    frag, idle = fragmentation_summary([8000], [[300, 1000]], [0], typ)
    assert (frag, idle) == (f[0], 1300.0)


@given(st.lists(pod_st, min_size=1, max_size=60), st.sampled_from([0.5, 0.8, 0.95, 1.0]))
def test_typical_pods_match_reference(pods, threshold):
    trace = make_trace([], pods)
    typ = typical_pods(trace.pods, ["A", "B"], threshold=threshold)
    want = ref.typical_pods(ref_pods(trace.pods), int(round(threshold * 100)))
    assert [(int(c), int(r), int(k), s) for c, r, k, s in
            zip(typ.cpu, typ.gpu_milli, typ.num_gpu, typ.gpu_models)] == \
        [(w["cpu"], w["gpu_milli"], w["num_gpu"], w["gpu_models"]) for w in want]
    assert list(typ.prob) == [w["prob"] for w in want]


gpu_row_st = st.integers(0, 8).flatmap(
    lambda n: st.lists(st.sampled_from([0, 50, 100, 250, 300, 500, 700, 900, 1000, 1000]),
                       min_size=n, max_size=n))


@given(node=st.fixed_dictionaries({"cpu": st.sampled_from([0, 1000, 4000, 16000, 140000]),
                                   "model": st.sampled_from(MODELS), "gpus": gpu_row_st,
                                   "tags": st.dictionaries(st.sampled_from(
                                       ["share-gpu", "1-gpu", "2-gpu", "4-gpu"]),
                                       st.integers(0, 3), max_size=3)}),
       pods=st.lists(pod_st, min_size=1, max_size=12), pod=pod_st, u=st.floats(0, 0.999))
def test_node_kernels_match_reference(node, pods, pod, u):
    trace = make_trace([], pods + [pod])
    names = ["", "A", "B"]
    typ = typical_pods(trace.pods, names)
    rtyp = ref.typical_pods(ref_pods(trace.pods))
    rpod = ref_pods(trace.pods)[-1]
    model = names.index(node["model"]) if node["gpus"] else -1
    rnode = {"cpu": node["cpu"], "mem": 10 ** 6, "pods": 110,
             "model": node["model"] if node["gpus"] else "", "gpus": node["gpus"],
             "tags": node["tags"]}
    f = node_fragmentation([node["cpu"]], [node["gpus"] + [-1] * (8 - len(node["gpus"]))],
                           [model], typ)
    assert f[0] == ref.node_frag(rnode, rtyp)
    if not ref.feasible(rnode, rpod):
        return
    tag_row = np.zeros(9, np.int64)
    for t, c in node["tags"].items():
        tag_row[0 if t == "share-gpu" else int(t[0])] = c
    for policy in ATC23_POLICIES:
        s, gpus = score_node(policy, node["cpu"], node["gpus"], rpod["cpu"], rpod["num_gpu"],
                             rpod["gpu_milli"], mem=rpod["mem"], model=model, tag_row=tag_row,
                             typical=typ, u=u)
        want_s, fgd_gpu = ref.score(policy, rnode, rpod, rtyp)
        assert s == want_s, policy
        assert list(gpus) == ref.choose_gpus(policy, rnode, rpod, fgd_gpu, u), policy


@given(st.lists(st.integers(-50, 150), max_size=20))
def test_normalize_scores_match_reference(scores):
    assert list(normalize_scores(np.array(scores, np.int64))) == ref.normalize(scores)


# ------------------------------------------------------------------------ fill runs

@given(nodes=st.lists(node_st, min_size=1, max_size=7), pods=st.lists(pod_st, max_size=45),
       seed=st.integers(0, 2 ** 32 - 1), tune=st.sampled_from([0.0, 0.5, 1.3]))
def test_fill_matches_reference_for_every_policy(nodes, pods, seed, tune):
    trace = make_trace(nodes, pods)
    plan = prepare_fill(trace, seed, tune)
    rn = ref_nodes(trace, plan)
    rp = ref_pods(plan.pods)
    rtyp = ref.typical_pods(ref_pods(trace.pods.sort_values("id")))
    for policy in ATC23_POLICIES:
        out = run_fill(plan, trace.nodes, policy)
        want = ref.fill(policy, rn, rp, rtyp, [tuple(u) for u in plan.uniforms])
        assert list(out.node) == want["node"], policy
        got_gpus = [[int(g) for g in row if g >= 0] for row in out.gpus]
        assert got_gpus == want["gpus"], policy
        ev = [list(map(int, e)) + [f] for e, f in zip(out.events, out.frag)]
        assert ev == want["events"], policy
        # final state: no over-commitment anywhere
        c = out.cluster
        assert (c.cpu_free >= 0).all() and (c.mem_free >= 0).all() and (c.pods_free >= 0).all()
        assert ((c.gpu_free >= 0) | (c.gpu_free == -1)).all()


def test_prepare_fill_order_and_tuning():
    nodes = [{"cpu_milli": 32000, "memory_mib": 64000, "gpu": 8, "gpu_model": "A",
              "max_pods": 110}] * 3
    pods = [{"cpu_milli": 1000, "memory_mib": 0, "req": GPU_REQ[i % len(GPU_REQ)],
             "gpu_models": ""} for i in range(30)]
    trace = make_trace(nodes, pods)
    plan = prepare_fill(trace, 7, 1.3)
    assert plan.target_milli == 1.3 * 24000
    ids = list(plan.pods["id"])
    assert sorted(ids[:30]) == sorted(trace.pods["id"])
    clones = ids[30:]
    assert clones and all(c.split("-tuned-")[1] == str(i) for i, c in enumerate(clones))
    tot = (plan.pods["num_gpu"] * plan.pods["gpu_milli"]).sum()
    last = plan.pods.iloc[-1]
    # the simulator's quirk: the stop test adds the per-GPU milli, the total adds num_gpu x milli
    assert tot - last.num_gpu * last.gpu_milli + last.gpu_milli <= plan.target_milli
    assert sorted(plan.node_rank) == [0, 1, 2]
    labels = [f"{r:04d}-{n}" for r, n in zip(plan.node_rank, plan.node_names)]
    assert [labels[i] for i in plan.node_order] == sorted(labels)
    again = prepare_fill(trace, 7, 1.3)
    assert list(again.pods["id"]) == ids and (again.uniforms == plan.uniforms).all()
    # above target: pods are removed at random until the total is at most the target
    low = prepare_fill(trace, 7, 0.5)
    assert (low.pods["num_gpu"] * low.pods["gpu_milli"]).sum() <= 12000
    assert len(low.pods) < 30


def test_timeseries_sampling_rule():
    ev = pd.DataFrame({"time": [0, 1, 2, 3, 4], "arrived_gpu_pct": [0.0, 0.4, 1.6, 2.4, 5.0],
                       "placed": [0, 1, 2, 3, 4], "failed": 0, "pending": 0,
                       "gpu_alloc_pct": [0.0, 1.0, 2.0, 3.0, 4.0], "cpu_alloc_pct": 0.0,
                       "mem_alloc_pct": 0.0, "unallocated_gpu_pct": 0.0, "frag_amount_pct": 0.0,
                       "frag_ratio_pct": 0.0, "nodes_used": 1})
    ts = sample_arrived(ev, range(0, 7))
    # 0 <- event 1; 1 <- none, fallback 0 and 2 (events 1, 2, 3); 2 <- events 2, 3; 3 <- none,
    # fallback 2 and 4 (events 2, 3); 4 <- fallback 5 (event 4); 5 <- event 4; 6 <- fallback 5
    assert list(ts["arrived_gpu_pct"]) == [0, 1, 2, 3, 4, 5, 6]
    assert list(ts["gpu_alloc_pct"]) == [1.0, 2.0, 2.5, 2.5, 4.0, 4.0, 4.0]
    assert list(ts["time"]) == [1, 3, 3, 3, 4, 4, 4]


@pytest.mark.parametrize("gpus, n_pods", [(0, 12), (2, 0), (0, 0)])
def test_fill_without_gpus_or_pods(gpus, n_pods):
    from schedbench.gpushare import fill_experiment, replay_fast
    from schedbench.replay.result import METRIC_KEYS, RunSpec

    nodes = [{"cpu_milli": 8000, "memory_mib": 8000, "gpu": gpus, "gpu_model": "A",
              "max_pods": 110}] * 3
    pods = [{"cpu_milli": 1000, "memory_mib": 100, "req": GPU_REQ[i % 3], "gpu_models": ""}
            for i in range(n_pods)]
    trace = make_trace(nodes, pods)
    for policy in ATC23_POLICIES:
        for run in (fill_experiment, replay_fast):
            r = run(trace, RunSpec("t", policy, 1, "fill"))
            assert tuple(r.metrics) == METRIC_KEYS
            if gpus == 0:
                assert r.metrics["gpu_alloc_pct"] == 0.0
                assert r.metrics["unallocated_gpu_pct"] == 0.0
                assert r.metrics["frag_amount_pct"] == 0.0


@given(nodes=st.lists(node_st, min_size=1, max_size=6), pods=st.lists(pod_st, max_size=30),
       pod=pod_st, seed=st.integers(0, 1000))
def test_score_nodes_matches_reference_on_filled_clusters(nodes, pods, pod, seed):
    from schedbench.gpushare import score_nodes
    from schedbench.gpushare.state import model_mask

    trace = make_trace(nodes, pods + [pod])
    filled = make_trace(nodes, pods)
    plan = prepare_fill(filled, seed, 0.0)
    typ = typical_pods(trace.pods, plan.model_names)  # scoring: typical pods incl. the new pod
    rtyp = ref.typical_pods(ref_pods(trace.pods))
    rpod = ref_pods(trace.pods)[-1]
    fill_typ = ref.typical_pods(ref_pods(filled.pods.sort_values("id")))
    for policy in ATC23_POLICIES:
        out = run_fill(plan, trace.nodes, policy)
        want = ref.fill(policy, ref_nodes(trace, plan), ref_pods(plan.pods), fill_typ,
                        [tuple(u) for u in plan.uniforms])
        assert list(out.node) == want["node"]
        rnodes = want["nodes"]
        tags = np.zeros((len(rnodes), 9), np.int64)
        for i, n in enumerate(rnodes):
            for t, c in n["tags"].items():
                tags[i, 0 if t == "share-gpu" else int(t[0])] = c
        allowed = model_mask(rpod["gpu_models"], plan.model_names) if rpod["num_gpu"] else None
        scores, gpus = score_nodes(policy, out.cluster, rpod["cpu"], rpod["mem"],
                                   rpod["num_gpu"], rpod["gpu_milli"], allowed, typical=typ,
                                   tags=tags)
        feas = [ref.feasible(n, rpod) for n in rnodes]
        raw = [ref.score(policy, n, rpod, rtyp) for n, f in zip(rnodes, feas) if f]
        vals = [s for s, _ in raw]
        if policy == "atc23-bestfit":
            vals = ref.normalize(vals)
        it = iter(vals)
        assert list(scores) == [next(it) if f else -1 for f in feas], policy
        if policy == "atc23-fgd":
            it = iter(g for _, g in raw)
            assert [int(g) for g in gpus] == [
                (-1 if (x := next(it)) is None else x) if f else -2 for f in feas]
