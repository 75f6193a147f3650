"""The optimal baseline (:mod:`schedbench.optimal`) against exhaustive search, the
scheduler's own filters and every heuristic policy, on small random instances; and its
options (objectives, moves, the decomposition, determinism, snapshots)."""

from __future__ import annotations

import copy

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from schedbench.cluster import Cluster
from schedbench.errors import InputError
from schedbench.optimal import OptimalResult, solve, solve_snapshot
from schedbench.replay.kube_engine import with_gpu_share, without_post_filter
from schedbench.scheduler.framework import SUCCESS, CycleState
from schedbench.scheduler.profiles import BUILTIN_POLICIES, resolve_profile
from schedbench.scheduler.scheduler import Scheduler
from schedbench.scheduler.snapshot import GPU_INDEX
from tests.scheduler_helpers import make_cluster, make_node, make_pod
from tests.test_optimal_reference import (HOST, ZONE, bound_fits, exhaustive_optimum, specs,
                                          to_cluster)

POLICIES = sorted(BUILTIN_POLICIES)


def _uses_gpus(cluster: Cluster) -> bool:
    return any("alibabacloud.com/gpu-count" in n.allocatable for n in cluster.nodes) or any(
        "alibabacloud.com/gpu-milli" in p.metadata.annotations for p in cluster.pods)


def check_placement(cluster: Cluster, result: OptimalResult) -> None:
    """Bind the placement (with its GPU choice) through a scheduler's snapshot, check every
    capacity, then take each placed pod out and run the scheduler's PreFilter and Filter
    plugins for it on its node: all must pass."""
    c = copy.deepcopy(cluster)
    by_key = {p.key: p for p in c.pods}
    for key, node in result.assignments.items():
        by_key[key].spec.node_name = node
    for key, (_src, dst) in result.moved.items():
        by_key[key].spec.node_name = dst
    for key, idx in result.gpu_indices.items():  # (with moves, pods that stay may change GPU)
        by_key[key].metadata.annotations[GPU_INDEX] = "-".join(map(str, idx))
    _, profile, _ = resolve_profile(None)
    if _uses_gpus(c):
        profile = with_gpu_share(profile)
    sched = Scheduler(c, profile, fused=False)  # binding checks the GPU indices
    snap, fw = sched.snapshot, sched.framework
    assert (snap.requested <= snap.allocatable).all()
    assert (snap.pod_count <= snap.allowed_pods).all()
    assert (snap.gpu_free[:, : snap.max_gpus] >= -1).all()
    for n in range(snap.num_nodes):
        g = int(snap.gpu_count[n])
        assert (snap.gpu_free[n, :g] >= 0).all()
    nodes = snap.evaluation_order()
    for key in list(result.assignments) + list(result.moved):
        info = snap.pods[key]
        node = info.node
        snap.remove_pod(info)
        try:
            state = CycleState()
            pre = fw.run_pre_filter(state, info, nodes)
            assert pre.status.is_success, (key, pre.status)
            if pre.allowed is not None:
                assert node in pre.allowed.tolist(), key
            out = fw.run_filters(state, info, np.array([node], np.int64), pre.skipped)
            assert out.codes[0] == SUCCESS, (key, snap.node_names[node],
                                             fw.filter_plugins[out.failed_by[0]].name)
        finally:
            snap.add_pod(info, node)


def heuristic_value(cluster: Cluster, policy: str, seed: int = 0) -> tuple[int, int]:
    """(weighted pods placed, pods placed) by ``policy`` through the scheduler, preemption off
    (the optimum never evicts)."""
    c = copy.deepcopy(cluster)
    cfg, profile, _ = resolve_profile(policy)
    if _uses_gpus(c):
        profile = with_gpu_share(profile)
    sched = Scheduler(c, without_post_filter(profile), config=cfg, seed=seed, fused=False)
    sched.enqueue_pending()
    sched.run()
    pending = cluster.pending_pods()
    levels = sorted({p.effective_priority() for p in pending})
    placed = [p for p in c.pods if p.key in {q.key for q in pending} and p.spec.node_name]
    return sum(levels.index(p.effective_priority()) + 1 for p in placed), len(placed)


# ------------------------------------------------------------------- random small instances


@settings(suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
@given(spec=specs(), policy=st.sampled_from(POLICIES))
def test_optimum_equals_exhaustive_search_and_passes_the_filters(spec, policy):
    assume(bound_fits(spec))
    cluster = to_cluster(spec)
    result = solve(cluster, time_limit=20, workers=1, hint=None)
    assert result.status == "OPTIMAL"
    weighted, nodes = exhaustive_optimum(spec)
    assert result.objectives["placed"] == weighted
    assert result.objectives["nodes"] == nodes
    assert result.objective == weighted and result.bound == weighted and result.gap == 0.0
    assert result.nodes_used == nodes
    assert result.placed == len(result.assignments)
    assert result.placed + len(result.unplaced) == len(spec.pending)
    order = [p.key for p in cluster.pending_pods()]
    assert list(result.assignments) == [k for k in order if k in result.assignments]
    assert result.unplaced == [k for k in order if k not in result.assignments]
    check_placement(cluster, result)
    # no heuristic does better on the same batch (weighted; pods when priorities are equal)
    h_weighted, h_placed = heuristic_value(cluster, policy)
    assert weighted >= h_weighted
    if len({spec.templates[t]["prio"] for t in spec.pending}) == 1:
        assert result.placed >= h_placed


@settings(max_examples=20)
@given(spec=specs(max_nodes=4, max_pods=8))
def test_policy_hint_and_solve_snapshot_agree_with_plain_solve(spec):
    assume(bound_fits(spec))
    cluster = to_cluster(spec)
    plain = solve(cluster, time_limit=20, workers=1, hint=None)
    hinted = solve(cluster, time_limit=20, workers=1, hint="best-fit")
    assert hinted.status == "OPTIMAL"
    assert hinted.objectives == plain.objectives
    check_placement(cluster, hinted)
    # on a scheduler's live snapshot: the same optimum, the snapshot left as it was
    _, profile, _ = resolve_profile(None)
    if _uses_gpus(cluster):
        profile = with_gpu_share(profile)
    sched = Scheduler(copy.deepcopy(cluster), profile, fused=False)
    snap = sched.snapshot
    infos = [snap.pod_info(p) for p in sched.cluster.pending_pods()]
    before = (snap.requested.copy(), snap.pod_count.copy(), snap.gpu_free.copy(),
              dict(snap.pods))
    res = solve_snapshot(snap, infos, framework=sched.framework, time_limit=20, workers=1,
                         hint=None)
    assert res.objectives == plain.objectives
    assert (snap.requested == before[0]).all() and (snap.pod_count == before[1]).all()
    assert (snap.gpu_free == before[2]).all() and snap.pods == before[3]


@settings(max_examples=10)
@given(spec=specs(max_nodes=4, max_pods=8))
def test_decomposition_gives_a_valid_placement_and_bound(spec):
    assume(bound_fits(spec))
    cluster = to_cluster(spec)
    result = solve(cluster, time_limit=2, workers=1, method="lns")
    assert result.method == "lns" and result.status in ("OPTIMAL", "FEASIBLE")
    weighted, _ = exhaustive_optimum(spec)
    assert result.objective <= weighted <= result.bound  # the bound is valid
    check_placement(cluster, result)


# ------------------------------------------------------------------------ hand-made cases


def _gpu_cluster(share_pods: int, whole_pods: int) -> Cluster:
    node = make_node("g0", cpu="16", memory="64Gi",
                     extra={"alibabacloud.com/gpu-count": "2"})
    pods = []
    for i in range(share_pods):
        p = make_pod(f"share{i}", cpu="100m")
        p.metadata.annotations.update({"alibabacloud.com/gpu-milli": "600",
                                       "alibabacloud.com/gpu-count": "1"})
        pods.append(p)
    for i in range(whole_pods):
        p = make_pod(f"whole{i}", cpu="100m")
        p.metadata.annotations.update({"alibabacloud.com/gpu-count": "1"})
        pods.append(p)
    return make_cluster([node], pods)


def test_gpu_share_is_per_gpu_not_per_node():
    # 3 x 600 milli on 2 GPUs: 1,800 <= 2,000 in total, but only one per GPU fits
    cluster = _gpu_cluster(3, 0)
    result = solve(cluster, time_limit=10, workers=1)
    assert result.status == "OPTIMAL" and result.placed == 2
    assert sorted(result.gpu_indices.values()) == [(0,), (1,)]
    check_placement(cluster, result)
    # whole GPUs take a GPU each; with 2 whole pods no share pod fits
    cluster = _gpu_cluster(1, 2)
    result = solve(cluster, time_limit=10, workers=1)
    assert result.placed == 2
    whole = [result.gpu_indices[k] for k in result.assignments if "whole" in k]
    share = [result.gpu_indices[k] for k in result.assignments if "share" in k]
    assert len(set(whole + share)) == 2  # no GPU holds a whole pod and another pod
    check_placement(cluster, result)


def test_moves_may_regroup_gpu_shares_within_a_node():
    # two 400-milli pods on separate GPUs block a whole-GPU pod until they share one GPU
    node = make_node("g0", cpu="16", memory="64Gi", extra={"alibabacloud.com/gpu-count": "2"})
    pods = []
    for i in range(2):
        p = make_pod(f"s{i}", cpu="100m", node="g0")
        p.metadata.annotations.update({"alibabacloud.com/gpu-milli": "400",
                                       "alibabacloud.com/gpu-count": "1",
                                       GPU_INDEX: str(i)})
        pods.append(p)
    whole = make_pod("whole", cpu="100m")
    whole.metadata.annotations["alibabacloud.com/gpu-count"] = "1"
    cluster = make_cluster([node], pods + [whole])
    assert solve(cluster, time_limit=5, workers=1).placed == 0
    result = solve(cluster, time_limit=5, workers=1, allow_moves=True)
    assert result.placed == 1 and not result.moved  # no pod changed node ...
    shares = {result.gpu_indices.get(k, (i,)) for i, k in enumerate(("default/s0",
                                                                       "default/s1"))}
    assert len(shares) == 1 and result.gpu_indices["default/whole"] not in shares  # ... GPUs
    check_placement(cluster, result)


def _tight_cluster() -> Cluster:
    nodes = [make_node(f"n{i}", cpu="4", memory="8Gi") for i in range(2)]
    pods = [make_pod("small0", cpu="2", node="n0"), make_pod("small1", cpu="2", node="n1"),
            make_pod("big", cpu="4")]
    return make_cluster(nodes, pods)


def test_moves_place_a_pod_that_fits_only_after_moving_another():
    cluster = _tight_cluster()
    stay = solve(cluster, time_limit=10, workers=1)
    assert stay.placed == 0 and stay.unplaced == ["default/big"] and not stay.moved
    moved = solve(cluster, time_limit=10, workers=1, allow_moves=True)
    assert moved.status == "OPTIMAL" and moved.placed == 1
    assert len(moved.moved) == 1 and moved.objectives["moves"] == 1
    (src, dst), = moved.moved.values()
    assert src != dst and dst != moved.assignments["default/big"]
    check_placement(cluster, moved)


def test_without_placed_every_pod_must_fit():
    cluster = _tight_cluster()
    result = solve(cluster, objective="nodes", time_limit=10, workers=1)
    assert result.status == "INFEASIBLE" and result.placed == 0
    assert result.unplaced == ["default/big"] and result.assignments == {}
    # the same pods on room enough: every pod placed, on the fewest nodes
    nodes = [make_node(f"n{i}", cpu="8", memory="8Gi") for i in range(3)]
    pods = [make_pod(f"p{i}", cpu="2") for i in range(6)]
    result = solve(make_cluster(nodes, pods), objective="nodes", time_limit=10, workers=1)
    assert result.status == "OPTIMAL" and result.placed == 6 and result.objective == 2


def test_balance_and_preferences_objectives():
    nodes = [make_node(f"n{i}", cpu="4", memory="8Gi", labels={HOST: f"n{i}", ZONE: z})
             for i, z in enumerate("aab")]
    pods = [make_pod(f"p{i}", cpu="1", memory="1Gi") for i in range(3)]
    result = solve(make_cluster(nodes, pods), objective="placed,balance", time_limit=10,
                   workers=1)
    assert result.status == "OPTIMAL" and result.placed == 3
    assert result.nodes_used == 3 and result.objectives["balance"] == 25.0  # 1 of 4 cores
    prefer_b = {"nodeAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [
        {"weight": 7, "preference": {"matchExpressions": [
            {"key": ZONE, "operator": "In", "values": ["b"]}]}}]}}
    pods = [make_pod(f"q{i}", cpu="1", memory="1Gi", affinity=prefer_b) for i in range(3)]
    result = solve(make_cluster(nodes, pods), objective="placed,preferences", time_limit=10,
                   workers=1)
    assert result.status == "OPTIMAL" and set(result.assignments.values()) == {"n2"}
    assert result.objectives["preferences"] == 21


def test_same_seed_same_result_bit_for_bit():
    cluster = _random_cluster(3)
    a = solve(cluster, time_limit=5, workers=2, seed=3)
    b = solve(cluster, time_limit=5, workers=2, seed=3)
    ja, jb = a.to_json(), b.to_json()
    ja.pop("wall_seconds"), jb.pop("wall_seconds")
    assert ja == jb


def _random_cluster(seed: int) -> Cluster:
    rng = np.random.default_rng(seed)
    nodes = [make_node(f"n{i}", cpu=str(int(rng.choice([4, 8]))), memory="16Gi",
                       labels={HOST: f"n{i}", ZONE: "ab"[i % 2]}) for i in range(8)]
    pods = [make_pod(f"p{i}", cpu=f"{int(rng.choice([500, 1000, 2000]))}m", memory="1Gi",
                     labels={"app": "web" if i % 3 else "db"}) for i in range(30)]
    return make_cluster(nodes, pods)


def test_bad_input_raises_input_error():
    cluster = _tight_cluster()
    with pytest.raises(InputError, match="unknown objective"):
        solve(cluster, objective="placed,speed")
    with pytest.raises(InputError, match="repeated"):
        solve(cluster, objective="placed,placed")
    with pytest.raises(InputError, match="positive"):
        solve(cluster, time_limit=0)
    with pytest.raises(InputError, match="bound"):
        solve(cluster, pending=[cluster.pods[0]])
    with pytest.raises(InputError):
        solve(cluster, hint="no-such-policy")
    with pytest.raises(InputError, match="not in the cluster"):
        solve(cluster, hint={"default/big": "nowhere"})


def test_solve_snapshot_builds_the_default_framework_itself():
    cluster = _random_cluster(5)
    plain = solve(cluster, time_limit=10, workers=1)
    sched = Scheduler(copy.deepcopy(cluster), fused=False)
    snap = sched.snapshot
    infos = [snap.pod_info(p) for p in sched.cluster.pending_pods()]
    res = solve_snapshot(snap, infos, time_limit=10, workers=1)
    assert res.status == plain.status == "OPTIMAL"
    assert res.objectives == plain.objectives
    assert res.assignments == plain.assignments  # the same model, seed and workers
    with pytest.raises(InputError, match="bound in the snapshot"):
        snap.add_pod(infos[0], 0)
        solve_snapshot(snap, infos, time_limit=1)


def test_decomposition_windows_improve_on_the_hint_and_stay_valid():
    # no inter-pod rules: each window is a model of its own
    rng = np.random.default_rng(7)
    nodes = [make_node(f"n{i}", cpu=str(int(rng.choice([2, 4, 8]))), memory="32Gi")
             for i in range(24)]
    pods = [make_pod(f"p{i}", cpu=f"{int(rng.choice([300, 700, 1500, 2500]))}m",
                     memory="1Gi") for i in range(90)]
    cluster = make_cluster(nodes, pods)
    _, hint_placed = heuristic_value(cluster, "worst-fit")
    result = solve(cluster, time_limit=4, workers=1, method="lns", hint="worst-fit")
    assert result.method == "lns" and result.status in ("OPTIMAL", "FEASIBLE")
    assert hint_placed <= result.placed <= result.bound
    assert result.bounds["placed"] == result.bound
    check_placement(cluster, result)
    exact = solve(cluster, time_limit=5, workers=1, method="exact")
    assert exact.placed <= result.bound  # the relaxation bounds the exact optimum too
