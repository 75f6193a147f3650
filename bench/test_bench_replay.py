"""Event-driven replays: the bundled default trace through the kube engine (one run per policy
of ``schedbench compare``'s default sweep), and a synthetic trace fitted to it on the fast
engine (atc23-fgd, atc23-bestfit) and the kube engine (best-fit, default).

Synthetic size: ``SCHEDBENCH_BENCH_REPLAY`` as ``NODES:PODS`` (default ``1000:100000``; the
README's 1,000,000-pod figure is ``10000:1000000``, which takes minutes per run)."""

from __future__ import annotations

import dataclasses
import os

import pytest

from schedbench.replay import RunSpec
from schedbench.replay.kube_engine import replay as kube_replay
from schedbench.gpushare import replay_fast
from schedbench.traces import load_trace
from schedbench.traces.synthetic import fit, generate


def _size() -> tuple[int, int]:
    nodes, pods = os.environ.get("SCHEDBENCH_BENCH_REPLAY", "1000:100000").split(":")
    return int(nodes), int(pods)


@pytest.fixture(scope="module")
def default_trace():
    return load_trace("default")


@pytest.fixture(scope="module")
def synthetic(default_trace):
    """The default trace's shapes at the benchmark's size, with the arrival rate scaled by the
    node count so that the load per node (and so the contention) stays the default trace's."""
    nodes, pods = _size()
    model = fit(default_trace)
    rate = model.arrival_rate * nodes / len(default_trace.nodes)
    return generate(dataclasses.replace(model, arrival_rate=rate), nodes, pods, seed=1)


def _record(benchmark, result, pods: int) -> None:
    median = benchmark.stats.stats.median
    benchmark.extra_info.update({
        "pods": pods, "pods_per_second": pods / median,
        "placed": result.metrics["placed"], "pending": result.metrics["pending"],
        "unallocated_gpu_pct": result.metrics["unallocated_gpu_pct"]})


@pytest.mark.parametrize("policy", ["best-fit", "worst-fit", "spread", "default"])
def test_kube_replay_default_trace(benchmark, default_trace, policy):
    spec = RunSpec("default", policy, 42)
    kube_replay(default_trace, spec)  # compile / load the kernels' cache
    result = benchmark.pedantic(kube_replay, args=(default_trace, spec), rounds=3, iterations=1)
    _record(benchmark, result, len(default_trace.pods))
    assert result.metrics["placed"] + result.metrics["pending"] == len(default_trace.pods)


@pytest.mark.parametrize("policy", ["atc23-fgd", "atc23-bestfit"])
def test_fast_replay_synthetic(benchmark, synthetic, policy):
    spec = RunSpec("synthetic", policy, 42)
    replay_fast(synthetic, spec)
    result = benchmark.pedantic(replay_fast, args=(synthetic, spec), rounds=1, iterations=1)
    _record(benchmark, result, len(synthetic.pods))
    assert result.metrics["placed"] > 0


@pytest.mark.parametrize("policy", ["best-fit", "default"])
def test_kube_replay_synthetic(benchmark, synthetic, policy):
    spec = RunSpec("synthetic", policy, 42)
    result = benchmark.pedantic(kube_replay, args=(synthetic, spec), rounds=1, iterations=1)
    _record(benchmark, result, len(synthetic.pods))
    assert result.metrics["placed"] > 0
