"""End-to-end scheduling throughput (``schedbench bench``): pods/s and µs per pod, through the
fused path (the default) and the per-plugin path (same placements), on the node counts of
``SCHEDBENCH_BENCH_E2E_NODES`` (default 1000,5000,10000,100000; the per-plugin path up to
10,000 nodes)."""

from __future__ import annotations

import os

import pytest

from schedbench.scheduler.bench import run_bench


def e2e_sizes() -> list[int]:
    raw = os.environ.get("SCHEDBENCH_BENCH_E2E_NODES", "1000,5000,10000,100000")
    return [int(x) for x in raw.split(",") if x.strip()]


@pytest.mark.parametrize("path", ["fused", "per-plugin"])
@pytest.mark.parametrize("profile", ["default", "best-fit"])
@pytest.mark.parametrize("nodes", e2e_sizes())
def test_schedule_throughput(benchmark, nodes, profile, path):
    if path == "per-plugin" and nodes > 10000:
        pytest.skip("the per-plugin path is timed up to 10,000 nodes")
    pods = 10000 if nodes <= 10000 else 20000
    record = benchmark.pedantic(run_bench, args=(nodes, pods, profile, 0),
                                kwargs={"fused": path == "fused"}, rounds=1, iterations=1)
    benchmark.extra_info.update(record, path=path)
    assert record["placed"] > 0
