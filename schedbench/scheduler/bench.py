"""``schedbench bench``: scheduling throughput on a synthetic cluster.

Kernels are compiled first on a small cluster with the same profile (Numba caches them on disk
too), then the timed part is what a user waits for: compiling the pending pods (PodInfo) and
scheduling them all through the queue. Building the cluster and the snapshot is not timed.
Pods go through the fused path (:mod:`.fused`: one kernel call per cycle) where it applies.
"""

from __future__ import annotations

import time

from ..synthetic import synthetic_cluster
from .profiles import resolve_profile
from .scheduler import Scheduler


def warm_up(profile_spec: str | None, seed: int = 0) -> None:
    """Compile every kernel the profile uses by scheduling a small synthetic cluster."""
    cfg, profile, _ = resolve_profile(profile_spec)
    s = Scheduler(synthetic_cluster(60, 200, seed), profile, config=cfg, seed=seed)
    s.enqueue_pending()
    s.run()


def run_bench(nodes: int, pods: int, profile_spec: str | None = "default", seed: int = 0,
              *, fused: bool = True) -> dict:
    """Schedule ``pods`` synthetic pods on ``nodes`` synthetic nodes; the benchmark record.
    ``fused=False`` times the per-plugin path (the same placements, for comparison)."""
    warm_up(profile_spec, seed)
    cfg, profile, name = resolve_profile(profile_spec)
    cluster = synthetic_cluster(nodes, pods, seed)
    scheduler = Scheduler(cluster, profile, config=cfg, seed=seed, fused=fused)
    start = time.perf_counter()
    scheduler.enqueue_pending()
    scheduler.run()
    seconds = time.perf_counter() - start
    placed = sum(1 for r in scheduler.last_result.values() if r.scheduled)
    return {"nodes": nodes, "pods": pods, "profile": name, "placed": placed,
            "seconds": round(seconds, 6), "pods_per_second": round(pods / seconds, 1),
            "us_per_pod": round(seconds / pods * 1e6, 2)}
