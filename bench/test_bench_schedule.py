"""End-to-end scheduling throughput (``schedbench bench``): pods/s and µs per pod."""

from __future__ import annotations

import pytest
from conftest import node_sizes

from schedbench.scheduler.bench import run_bench


@pytest.mark.parametrize("profile", ["default", "best-fit"])
@pytest.mark.parametrize("nodes", node_sizes())
def test_schedule_throughput(benchmark, nodes, profile):
    pods = 10000 if nodes <= 10000 else 20000
    record = benchmark.pedantic(run_bench, args=(nodes, pods, profile, 0), rounds=1,
                                iterations=1)
    benchmark.extra_info.update(record)
    assert record["placed"] > 0
