"""The FGD paper's fill experiment (``--experiment fill``) on openb default: one run per
``atc23-*`` policy (goal: FGD under 2 s on one core after compilation), and the Numba engine
against the plain-Python reference on a small instance (the ratio shows what the kernels and
the score cache buy). Skipped when ../shared/traces is absent."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from schedbench.gpushare import ATC23_POLICIES, fill_experiment, prepare_fill, run_fill
from schedbench.replay.result import RunSpec

ROOT = Path(__file__).resolve().parent.parent
CSV = ROOT.parent / "shared" / "traces" / "alibaba-gpu-v2023" / "csv"
PODS = CSV / "openb_pod_list_default.csv"


@pytest.fixture(scope="module")
def openb():
    if not PODS.exists():
        pytest.skip(f"{PODS} not present (../shared/traces is not checked out)")
    from schedbench.traces import load_trace

    return load_trace(f"openb:{PODS}")


@pytest.mark.parametrize("policy", ATC23_POLICIES)
def test_fill_openb_default(benchmark, openb, policy):
    spec = RunSpec(f"openb:{PODS}", policy, 42, "fill")
    fill_experiment(openb, spec)  # compile / load the kernels' cache
    result = benchmark.pedantic(fill_experiment, args=(openb, spec), rounds=3, iterations=1)
    benchmark.extra_info.update({
        "attempted_pods": result.extra["attempted"], "nodes": len(openb.nodes),
        "pods_per_second": result.extra["attempted"] / benchmark.stats.stats.median,
        "unallocated_gpu_pct_at_100": result.metrics["unallocated_gpu_pct"]})
    assert result.metrics["placed"] > 0


def _small(openb, n_nodes=40, n_pods=300):
    rng = np.random.default_rng(0)

    class T:
        pass

    t = T()
    t.name = "openb-small"
    t.nodes = openb.nodes.iloc[np.sort(rng.choice(len(openb.nodes), n_nodes, replace=False))] \
        .reset_index(drop=True)
    t.pods = openb.pods.iloc[np.sort(rng.choice(len(openb.pods), n_pods, replace=False))] \
        .reset_index(drop=True)
    return t


@pytest.mark.parametrize("policy", ["atc23-fgd", "atc23-bestfit"])
def test_fill_engine_vs_reference(benchmark, openb, policy):
    import sys

    sys.path.insert(0, str(ROOT / "tests"))
    from reference import gpushare as ref

    small = _small(openb)
    plan = prepare_fill(small, 42, 1.3)
    nodes = small.nodes.iloc[np.argsort(small.nodes["name"].to_numpy(), kind="stable")] \
        .reset_index(drop=True).iloc[plan.node_order]
    rnodes = [{"name": r.name, "cpu": int(r.cpu_milli), "mem": int(r.memory_mib),
               "pods": int(r.max_pods), "model": r.gpu_model, "gpus": [1000] * int(r.gpu),
               "tags": {}} for r in nodes.itertuples()]

    def pods_of(df: pd.DataFrame):
        return [{"id": r.id, "cpu": int(r.cpu_milli), "mem": int(r.memory_mib),
                 "num_gpu": int(r.num_gpu), "gpu_milli": int(r.gpu_milli),
                 "gpu_models": r.gpu_models} for r in df.itertuples()]

    rtyp = ref.typical_pods(pods_of(small.pods.sort_values("id")))
    t0 = time.perf_counter()
    want = ref.fill(policy, rnodes, pods_of(plan.pods), rtyp, [tuple(u) for u in plan.uniforms])
    ref_seconds = time.perf_counter() - t0
    run_fill(plan, small.nodes, policy)
    out = benchmark.pedantic(run_fill, args=(plan, small.nodes, policy), rounds=5, iterations=1)
    assert list(out.node) == want["node"]
    fast = benchmark.stats.stats.median
    benchmark.extra_info.update({"nodes": len(rnodes), "pods": len(plan.pods),
                                 "reference_seconds": ref_seconds,
                                 "speedup_vs_reference": ref_seconds / fast})
