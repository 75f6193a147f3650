"""The control-plane simulation at scale: 24 simulated hours of a 1,000-node cluster running
20,000 pods (200 Deployments of 100 replicas behind Services), with a rolling update of 8
Deployments every hour, a node failure (and recovery an hour later) every 4 hours, a scale
up and down of 20 Deployments every 6 hours, and 5 HorizontalPodAutoscalers following a
daily traffic curve. Reports wall and CPU seconds of the run (building the cluster apart),
engine events and logged events.

Size: ``SCHEDBENCH_BENCH_SIM`` as ``NODES:PODS:HOURS`` (default ``1000:20000:24``).
Run: ``python -m pytest bench/test_bench_simulate.py --benchmark-only -s``, or as a script
(``python bench/test_bench_simulate.py [NODES:PODS:HOURS]``, with ``--profile`` for cProfile).
"""

from __future__ import annotations

import math
import os
import sys
import time

from schedbench.model.objects import (
    Container,
    CrossVersionObjectReference,
    Deployment,
    DeploymentSpec,
    HorizontalPodAutoscaler,
    HorizontalPodAutoscalerSpec,
    MetricSpec,
    MetricTarget,
    Node,
    NodeStatus,
    ObjectMeta,
    PodSpec,
    PodTemplateSpec,
    ResourceMetricSource,
    ResourceRequirements,
    Service,
    ServicePort,
    ServiceSpec,
)
from schedbench.model.labels import selector_from_set
from schedbench.sim.controller import SimConfig
from schedbench.sim.scenario import Action
from schedbench.sim.simulation import Simulation

GI = 2 ** 30
REPLICAS = 100
HPAS = 5


def size() -> tuple[int, int, float]:
    raw = sys.argv[1] if __name__ == "__main__" and len(sys.argv) > 1 and \
        ":" in sys.argv[1] else os.environ.get("SCHEDBENCH_BENCH_SIM", "1000:20000:24")
    nodes, pods, hours = raw.split(":")
    return int(nodes), int(pods), float(hours)


def cluster(nodes: int, pods: int) -> list:
    objs: list = []
    zones = 10
    for i in range(nodes):
        name = f"node-{i:05d}"
        alloc = {"cpu": 16000, "memory": 64 * GI, "pods": 110}
        objs.append(Node(metadata=ObjectMeta(name=name, labels={
            "kubernetes.io/hostname": name, "topology.kubernetes.io/zone": f"zone-{i % zones}"}),
            status=NodeStatus(capacity=dict(alloc), allocatable=dict(alloc))))
    n_deps = max(1, pods // REPLICAS)
    for d in range(n_deps):
        name = f"app-{d:03d}"
        labels = {"app": name}
        cpu = (250, 500, 750)[d % 3]
        tmpl = PodTemplateSpec(metadata=ObjectMeta(labels=dict(labels)), spec=PodSpec(
            containers=[Container(name="main", image=f"{name}:1", resources=ResourceRequirements(
                requests={"cpu": cpu, "memory": cpu * 2 * 2 ** 20}))]))
        objs.append(Deployment(metadata=ObjectMeta(name=name, namespace="default",
                                                   labels=dict(labels)),
                               spec=DeploymentSpec(replicas=REPLICAS,
                                                   selector=selector_from_set(labels),
                                                   template=tmpl)))
        ann = {"schedbench.io/cpu-per-request": "2", "schedbench.io/base-cpu": "20"}
        objs.append(Service(metadata=ObjectMeta(name=name, namespace="default",
                                                annotations=ann if d < HPAS else {}),
                            spec=ServiceSpec(selector=dict(labels),
                                             ports=[ServicePort(port=80)])))
        if d < HPAS:
            objs.append(HorizontalPodAutoscaler(
                metadata=ObjectMeta(name=name, namespace="default"),
                spec=HorizontalPodAutoscalerSpec(
                    scale_target_ref=CrossVersionObjectReference(
                        kind="Deployment", name=name, api_version="apps/v1"),
                    min_replicas=REPLICAS // 2, max_replicas=REPLICAS * 2,
                    metrics=[MetricSpec(type="Resource", resource=ResourceMetricSource(
                        name="cpu", target=MetricTarget(type="Utilization",
                                                        average_utilization=60)))])))
    return objs


def timeline(nodes: int, deployments: int, hours: float) -> list[Action]:
    """The day's actions (see the module docstring)."""
    acts: list[Action] = []

    def add(t: float, action: str, **args) -> None:
        acts.append(Action(len(acts), t, action, args))

    for h in range(int(math.ceil(hours))):
        base = h * 3600.0
        # traffic of the HPA'd Services: a daily curve, 5,000 to 20,000 requests/s each
        rate = 12500 - 7500 * math.cos(2 * math.pi * h / 24)
        for d in range(min(HPAS, deployments)):
            add(base + 1, "set-request-rate", service=f"app-{d:03d}", namespace="default",
                rate=rate)
        for k in range(8):
            d = (h * 8 + k) % deployments
            add(base + 300 + 60 * k, "set-image", deployment=f"app-{d:03d}",
                namespace="default", image=f"app-{d:03d}:{h + 2}")
        if h % 4 == 1:
            node = f"node-{(h * 37) % nodes:05d}"
            add(base + 600, "fail-node", node=node)
            add(base + 4200, "recover-node", node=node)
        if h % 6 == 2:
            for k in range(min(20, deployments)):
                d = (HPAS + k) % deployments
                add(base + 900, "scale", kind="Deployment", name=f"app-{d:03d}",
                    namespace="default", replicas=REPLICAS + REPLICAS // 10)
        if h % 6 == 5:
            for k in range(min(20, deployments)):
                d = (HPAS + k) % deployments
                add(base + 900, "scale", kind="Deployment", name=f"app-{d:03d}",
                    namespace="default", replicas=REPLICAS)
    end = hours * 3600.0
    acts = [a for a in acts if a.time < end]
    acts.sort(key=lambda a: (a.time, a.index))
    return acts


def simulate(nodes: int, pods: int, hours: float) -> tuple[Simulation, dict]:
    t0 = time.perf_counter()
    objs = cluster(nodes, pods)
    sim = Simulation(objs, seed=1, config=SimConfig(), name="bench",
                     explain_failures=False)
    t_build = time.perf_counter() - t0
    sim.schedule_actions(timeline(nodes, max(1, pods // REPLICAS), hours))
    t1 = time.perf_counter()
    c1 = time.process_time()
    sim.run(hours * 3600.0)
    t_run = time.perf_counter() - t1
    c_run = time.process_time() - c1
    check = sim.check_no_pod_lost()
    counts = sim.accounting.counts()
    info = {"nodes": nodes, "pods_target": pods, "hours": hours,
            "build_seconds": round(t_build, 2), "run_seconds": round(t_run, 2),
            "run_cpu_seconds": round(c_run, 2),
            "engine_events": sim.engine.steps, "log_records": sim.log.count,
            "pods_created": sim.accounting.created, "pods_end": counts["pods"],
            "pending_end": counts["pending"], "scheduler": sim.scheduler_controller.stats(),
            "no_pod_lost": check.ok}
    return sim, info


def test_bench_simulate_day(benchmark):
    nodes, pods, hours = size()
    out: dict = {}

    def run():
        _, info = simulate(nodes, pods, hours)
        out.update(info)

    benchmark.pedantic(run, rounds=1, iterations=1)
    benchmark.extra_info.update(out)
    print(f"\nsimulate {nodes} nodes / {pods} pods / {hours:g} h: {out}")
    assert out["no_pod_lost"]
    assert out["pods_end"] >= pods * 0.9


if __name__ == "__main__":
    n, p, h = size()
    if "--profile" in sys.argv:
        import cProfile
        import pstats

        prof = cProfile.Profile()
        prof.enable()
        _, info = simulate(n, p, h)
        prof.disable()
        print(info)
        pstats.Stats(prof).sort_stats("cumulative").print_stats(45)
        pstats.Stats(prof).sort_stats("tottime").print_stats(30)
    else:
        _, info = simulate(n, p, h)
        print(info)
