"""Scoring one pod against every node, and the resource-score kernel against a plain NumPy
version and the pure-Python reference (the ratios show what the kernels buy)."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import node_sizes

from schedbench.config import ScoringStrategy
from schedbench.scheduler.framework import CycleState
from schedbench.scheduler.profiles import resolve_profile
from schedbench.scheduler.resource_scoring import ScorerSpec, allocation_scores
from schedbench.scheduler.scheduler import Scheduler
from schedbench.synthetic import synthetic_cluster, synthetic_pods

_CACHE: dict[int, Scheduler] = {}


def loaded_scheduler(n: int) -> Scheduler:
    """A default-profile scheduler over ``n`` synthetic nodes, about 40% allocated."""
    if n not in _CACHE:
        cfg, profile, _ = resolve_profile("default")
        cluster = synthetic_cluster(n, 0, seed=1)
        s = Scheduler(cluster, profile, config=cfg, seed=1)
        pods = synthetic_pods(4 * n, seed=7)
        rng = np.random.default_rng(3)
        snap = s.snapshot
        for pod, node in zip(pods, rng.integers(0, n, len(pods))):
            info = snap.pod_info(pod)
            free = snap.allocatable[node] - snap.requested[node]
            if (info.request_vector[:2] <= free[:2]).all() and "nvidia.com/gpu" not in info.requests:
                pod.spec.node_name = snap.node_names[int(node)]
                snap.add_pod(info, int(node))
        _CACHE[n] = s
    return _CACHE[n]


def typical_pod():
    return synthetic_pods(40, seed=11)[25]  # a plain 100m-4 CPU service pod, no affinity


@pytest.mark.parametrize("nodes", node_sizes())
def test_score_one_pod_default_profile(benchmark, nodes):
    """PreScore + Score + NormalizeScore + weights of the default profile, all nodes."""
    s = loaded_scheduler(nodes)
    info = s.snapshot.pod_info(typical_pod())
    all_nodes = s.snapshot.alive_nodes()
    fw = s.framework

    def setup():
        state = CycleState()
        fw.run_pre_filter(state, info, all_nodes)
        return (state,), {}

    def score(state):
        skipped = fw.run_pre_score(state, info, all_nodes)
        return fw.run_scores(state, info, all_nodes, skipped).total

    total = benchmark.pedantic(score, setup=setup, rounds=200 if nodes < 100000 else 30,
                               warmup_rounds=2)
    assert total.shape == (nodes,)
    benchmark.extra_info["nodes"] = nodes
    benchmark.extra_info["us_per_pod"] = benchmark.stats.stats.median * 1e6


def _median_us(benchmark) -> float:
    return benchmark.stats.stats.median * 1e6


@pytest.mark.parametrize("nodes", node_sizes())
def test_score_one_pod_default_profile_fused(benchmark, nodes):
    """The same work as :func:`test_score_one_pod_default_profile` (PreScore + Score +
    NormalizeScore + weights of the default profile for one pod on every node) as the fused
    path does it: one kernel call (:meth:`FusedPath.score`). The totals must equal the
    per-plugin path's."""
    s = loaded_scheduler(nodes)
    info = s.snapshot.pod_info(typical_pod())
    all_nodes = s.snapshot.alive_nodes()
    fw = s.framework
    state = CycleState()
    fw.run_pre_filter(state, info, all_nodes)
    expected = fw.run_scores(state, info, all_nodes, fw.run_pre_score(state, info, all_nodes))
    path = s.fused
    total = benchmark.pedantic(path.score, args=(info, all_nodes),
                               rounds=500 if nodes < 100000 else 50, warmup_rounds=3)
    assert np.array_equal(total, expected.total)
    benchmark.extra_info["nodes"] = nodes
    benchmark.extra_info["us_per_pod"] = _median_us(benchmark)


def default_profile_numpy(snap, request, nonzero):
    """Plain NumPy totals of the default profile for a pod without tolerations, node
    affinity, images, spread constraints or pod affinity: TaintToleration (weight 3, reverse
    normalised PreferNoSchedule counts), LeastAllocated and BalancedAllocation over cpu and
    memory (weight 1 each); the other score plugins add 0."""
    n = snap.num_nodes
    ptr, _, _, effect = snap.taint_arrays
    owner = np.repeat(np.arange(n), np.diff(ptr))
    counts = np.bincount(owner, weights=(effect == 1), minlength=n).astype(np.int64)
    top = counts.max() if n else 0
    taint = np.full(n, 100, np.int64) if top == 0 else 100 - counts * 100 // top
    least = least_allocated_numpy(snap.allocatable, snap.nonzero_requested, nonzero)
    alloc = snap.allocatable[:, :2]
    req = snap.requested[:, :2] + request[:2]
    has = alloc > 0
    frac = np.minimum(req / np.where(has, alloc, 1), 1.0)
    both = has.all(axis=1)
    std = np.abs((frac[:, 0] - frac[:, 1]) / 2.0)
    balanced = np.where(both, ((1.0 - std) * 100.0).astype(np.int64), 100)
    if not request[:2].any():
        balanced = np.zeros(n, np.int64)
    return 3 * taint + least + balanced


@pytest.mark.parametrize("impl", ["fused", "numpy", "python"])
@pytest.mark.parametrize("nodes", [n for n in node_sizes() if n <= 10000])
def test_default_profile_scores_implementations(benchmark, nodes, impl):
    """The default profile's weighted totals of one pod on every node: the fused kernel, plain
    NumPy and the pure-Python reference (``tests/reference/scheduler.py``); all agree."""
    s = loaded_scheduler(nodes)
    snap = s.snapshot
    pod = typical_pod()
    info = snap.pod_info(pod)
    idx = snap.alive_nodes()
    expected = s.fused.score(info, idx)
    if impl == "fused":
        result = benchmark(s.fused.score, info, idx)
    elif impl == "numpy":
        request, nonzero = snap.request_vectors(info)
        result = benchmark(default_profile_numpy, snap, request, nonzero)
    else:
        if nodes > 1000:
            pytest.skip("the pure-Python reference is timed at 1,000 nodes only")
        from reference import scheduler as ref
        from test_scheduler_runs import plain_profile

        from schedbench.scheduler.profiles import builtin_configuration

        state = ref.ClusterState(list(snap.nodes))
        for p in snap.pods.values():
            state.bind(p.pod, snap.node_names[p.node])
        prof = plain_profile(builtin_configuration("default"))
        ref_nodes = [snap.nodes[i] for i in idx]
        result = np.array(benchmark.pedantic(ref.total_scores, args=(state, pod, ref_nodes, prof),
                                             rounds=3))
    benchmark.extra_info.update(nodes=nodes, impl=impl)
    assert np.array_equal(np.asarray(result), expected)


def least_allocated_numpy(allocatable, nonzero_requested, request):
    """Plain NumPy LeastAllocated (cpu and memory, weight 1 each) over every node, with kube's
    integer arithmetic: per resource (alloc - req) * 100 // alloc (0 when over), then the
    weighted average over the resources the node has."""
    alloc = allocatable[:, :2]
    req = nonzero_requested[:, :2] + request[:2]
    has = alloc > 0
    per = np.where(has & (req <= alloc), (alloc - req) * 100 // np.where(has, alloc, 1), 0)
    weight = has.sum(axis=1)
    return np.where(weight > 0, per.sum(axis=1) // np.maximum(weight, 1), 0)


@pytest.mark.parametrize("impl", ["kernel", "numpy", "python"])
@pytest.mark.parametrize("nodes", [n for n in node_sizes() if n <= 10000])
def test_least_allocated_implementations(benchmark, nodes, impl):
    """LeastAllocated scores of one pod on every node: the Numba kernel (through the plugin),
    plain NumPy, and the pure-Python reference; all three must agree."""
    from reference.resource_scores import fit_scores

    s = loaded_scheduler(nodes)
    snap = s.snapshot
    pod = typical_pod()
    info = snap.pod_info(pod)
    idx = snap.alive_nodes()
    fit = s.framework.instances["NodeResourcesFit"]
    state = CycleState()
    fit.pre_score(state, info, idx)
    expected = fit.score(state, info, idx)
    if impl == "kernel":
        result = benchmark(fit.score, state, info, idx)
    elif impl == "numpy":
        _, nonzero = snap.request_vectors(info)
        result = benchmark(least_allocated_numpy, snap.allocatable, snap.nonzero_requested,
                           nonzero)
    else:
        if nodes > 1000:
            pytest.skip("the pure-Python reference is timed at 1,000 nodes only")
        bound = [p.pod for p in snap.pods.values()]
        by_name = benchmark.pedantic(
            fit_scores, args=(snap.nodes, bound, pod, "LeastAllocated",
                              [("cpu", 1), ("memory", 1)]), rounds=3)
        result = np.array([by_name[n] for n in snap.node_names])
    benchmark.extra_info.update(nodes=nodes, impl=impl)
    assert np.array_equal(np.asarray(result), expected)
