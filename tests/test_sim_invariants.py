"""Invariants of the simulated control plane (issue 6), with Hypothesis:

- a stateful test applies random actions (scale a Deployment and a ReplicaSet, set a new
  image, fail / recover a node, delete pods, advance time) and checks after every step that
  no pod is lost (bound, terminal, pending with a reason, or deleted with a cause), that
  Endpoints list only ready pods matching their Service (also at every Endpoints write), that a Deployment never has more
  pods than replicas + maxSurge once its controller has acted, and at the end (every node
  back) that every ReplicaSet converges to exactly its replicas and the rollout completes;
- during a rolling update without disruptions, at every store mutation, available pods never
  fall below replicas - maxUnavailable and pods never exceed replicas + maxSurge; the update
  completes; a rollback restores the template;
- the same scenario and seed give the same event log, byte for byte (also under another
  PYTHONHASHSEED, in a subprocess).
"""

from __future__ import annotations

import math
import os
import subprocess
import sys
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from schedbench.manifests import object_from_dict
from schedbench.sim.controller import SimConfig
from schedbench.sim.podutil import is_pod_available, is_pod_ready
from schedbench.sim.scenario import load_scenario, parse_scenario
from schedbench.sim.simulation import Simulation, simulate_scenario

ROOT = Path(__file__).resolve().parent.parent
FAST = SimConfig(pod_startup_seconds=1.0, pod_ready_seconds=1.0,
                 node_monitor_grace_seconds=20.0, default_toleration_seconds=30,
                 sample_seconds=0.0)


def nodes(n: int, cpu: str = "4") -> list:
    return [object_from_dict({
        "apiVersion": "v1", "kind": "Node",
        "metadata": {"name": f"node-{i}", "labels": {
            "kubernetes.io/hostname": f"node-{i}",
            "topology.kubernetes.io/zone": f"zone-{i % 2}"}},
        "status": {"capacity": {"cpu": cpu, "memory": "16Gi", "pods": "110"}}})
        for i in range(n)]


def deployment(name="web", replicas=4, surge=1, unavailable=1, min_ready=0, image="img:1"):
    return object_from_dict({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": name, "labels": {"app": name}},
        "spec": {"replicas": replicas, "minReadySeconds": min_ready,
                 "selector": {"matchLabels": {"app": name}},
                 "strategy": {"type": "RollingUpdate",
                              "rollingUpdate": {"maxSurge": surge,
                                                "maxUnavailable": unavailable}},
                 "template": {"metadata": {"labels": {"app": name}},
                              "spec": {"containers": [{"name": "c", "image": image,
                                                       "resources": {"requests": {
                                                           "cpu": "200m"}}}]}}}})


def service(name="web"):
    return object_from_dict({"apiVersion": "v1", "kind": "Service",
                             "metadata": {"name": name},
                             "spec": {"selector": {"app": name}, "ports": [{"port": 80}]}})


def replicaset(name="batch", replicas=2):
    return object_from_dict({
        "apiVersion": "apps/v1", "kind": "ReplicaSet", "metadata": {"name": name},
        "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}},
                 "template": {"metadata": {"labels": {"app": name}},
                              "spec": {"containers": [{"name": "c", "resources": {
                                  "requests": {"cpu": "100m"}}}]}}}})


def resolve(value, replicas: int, up: bool) -> int:
    """maxSurge (rounded up) / maxUnavailable (rounded down) of an int or a percentage."""
    if isinstance(value, str):
        x = int(value[:-1]) * replicas / 100
        return math.ceil(x) if up else math.floor(x)
    return value


def fenceposts(d) -> tuple[int, int]:
    ru = d.spec.strategy.effective_rolling_update
    surge = resolve(ru.max_surge, d.spec.replicas, True)
    unavailable = resolve(ru.max_unavailable, d.spec.replicas, False)
    if surge == 0 and unavailable == 0:
        unavailable = 1
    return surge, unavailable


def active_pods(sim, selector) -> list:
    return [p for p in sim.store.list("Pod", "default", label_selector=selector)
            if p.status.phase not in ("Succeeded", "Failed")]


def check_endpoints_object(sim, ep) -> None:
    svc = sim.store.try_get("Service", ep.metadata.namespace, ep.metadata.name)
    assert svc is not None, ep.key
    for addr in ep.ready_addresses():
        ns, name = addr.pod_key.split("/", 1)
        pod = sim.store.try_get("Pod", ns, name)
        assert pod is not None, f"{ep.key} lists a deleted pod {addr.pod_key}"
        assert is_pod_ready(pod), f"{ep.key} lists a pod that is not ready"
        assert svc.selects(pod), f"{ep.key} lists a pod its Service does not select"


def check_endpoints(sim) -> None:
    """Endpoints list only ready pods that match their Service (and exist)."""
    for ep in sim.store.list("Endpoints"):
        check_endpoints_object(sim, ep)


# ----------------------------------------------------------------------- stateful test


class ControlPlane(RuleBasedStateMachine):
    """Random actions on a small cluster: a Deployment behind a Service and a bare
    ReplicaSet on three nodes."""

    @initialize(seed=st.integers(0, 2 ** 16), surge=st.sampled_from([0, 1, 2, "25%"]),
                unavailable=st.sampled_from([0, 1, "50%"]), min_ready=st.sampled_from([0, 3]))
    def setup(self, seed, surge, unavailable, min_ready):
        if surge == 0 and unavailable == 0:
            unavailable = 1  # (the API rejects both 0)
        objs = nodes(3) + [deployment(surge=surge, unavailable=unavailable,
                                      min_ready=min_ready), service(), replicaset()]
        self.sim = Simulation(objs, seed=seed, config=FAST)
        self.version = 1
        self.failed: set[str] = set()
        self.stale_endpoints: list[str] = []
        self.sim.store.on_mutation.append(self.check_endpoints_write)
        self.sim.run(10.0)

    def check_endpoints_write(self, ev):
        """Whenever Endpoints are written, the pods they list as ready are ready and
        selected by the Service at that very moment."""
        if ev.obj.KIND != "Endpoints" or ev.type == "DELETED":
            return
        try:
            check_endpoints_object(self.sim, ev.obj)
        except AssertionError as err:
            self.stale_endpoints.append(f"t={self.sim.engine.now}: {err}")

    def advance(self, dt: float) -> None:
        self.sim.run(self.sim.engine.now + dt)

    @rule(replicas=st.integers(0, 7))
    def scale_deployment(self, replicas):
        self.sim.scale("Deployment", "default", "web", replicas)
        self.advance(0.5)

    @rule(replicas=st.integers(0, 5))
    def scale_replicaset(self, replicas):
        self.sim.scale("ReplicaSet", "default", "batch", replicas)
        self.advance(0.5)

    @rule()
    def set_image(self):
        self.version += 1
        self.sim.set_image("default", "web", f"img:{self.version}")
        self.advance(0.5)

    @rule(i=st.integers(0, 2))
    def fail_node(self, i):
        name = f"node-{i}"
        if name not in self.failed:
            self.failed.add(name)
            self.sim.fail_node(name)
        self.advance(1.0)

    @rule(i=st.integers(0, 2))
    def recover_node(self, i):
        name = f"node-{i}"
        if name in self.failed:
            self.failed.discard(name)
            self.sim.recover_node(name)
        self.advance(1.0)

    @rule(k=st.integers(0, 20))
    def delete_pod(self, k):
        pods = self.sim.store.list("Pod")
        if pods:
            p = pods[k % len(pods)]
            self.sim.delete("Pod", p.metadata.namespace, p.metadata.name,
                            cause="deleted by test")
        self.advance(0.5)

    @rule(dt=st.sampled_from([1.0, 5.0, 30.0, 120.0]))
    def wait(self, dt):
        self.advance(dt)

    @invariant()
    def no_pod_lost(self):
        check = self.sim.check_no_pod_lost()
        assert check.ok, check.lost

    @invariant()
    def endpoints_only_ready_matching_pods(self):
        check_endpoints(self.sim)
        assert not self.stale_endpoints, self.stale_endpoints[:3]

    @invariant()
    def rollout_never_surges_past_the_bound(self):
        d = self.sim.store.get("Deployment", "default", "web")
        surge, _ = fenceposts(d)
        rss = [rs for rs in self.sim.store.list("ReplicaSet", "default")
               if rs.metadata.controller_ref() is not None]
        assert sum(rs.spec.replicas for rs in rss) <= d.spec.replicas + surge

    def teardown(self):
        sim = getattr(self, "sim", None)
        if sim is None:
            return
        for name in sorted(self.failed):
            sim.recover_node(name)
        self.advance(300.0)
        # every ReplicaSet has exactly its replicas, all bound; the rollout completed
        for rs in sim.store.list("ReplicaSet"):
            pods = active_pods(sim, rs.spec.selector)
            owned = [p for p in pods if p.metadata.controller_ref() is not None
                     and p.metadata.controller_ref().uid == rs.metadata.uid]
            assert len(owned) == rs.spec.replicas, rs.key
            assert all(p.spec.node_name for p in owned)
        d = sim.store.get("Deployment", "default", "web")
        pods = active_pods(sim, d.spec.selector)
        assert len(pods) == d.spec.replicas
        image = d.spec.template.spec.containers[0].image
        assert all(p.spec.containers[0].image == image for p in pods)
        assert d.status.updated_replicas == d.status.available_replicas == d.spec.replicas
        assert sim.check_no_pod_lost().ok


# (example counts from the active profile of tests/conftest.py)
ControlPlane.TestCase.settings = settings(stateful_step_count=20)
TestControlPlane = ControlPlane.TestCase


# ---------------------------------------------------------------------- rolling update


@given(replicas=st.integers(1, 8), surge=st.sampled_from([0, 1, 3, "25%", "50%"]),
       unavailable=st.sampled_from([0, 1, 2, "25%", "40%"]),
       min_ready=st.sampled_from([0, 2, 5]), seed=st.integers(0, 1000))
def test_rolling_update_bounds_and_rollback(replicas, surge, unavailable, min_ready, seed):
    if surge == 0 and unavailable == 0:
        unavailable = 1
    objs = nodes(3, cpu="8") + [deployment(replicas=replicas, surge=surge,
                                           unavailable=unavailable, min_ready=min_ready),
                                service()]
    sim = Simulation(objs, seed=seed, config=FAST)
    sim.run(60.0)
    d = sim.store.get("Deployment", "default", "web")
    assert d.status.available_replicas == replicas
    max_surge, max_unavailable = fenceposts(d)
    template_1 = d.spec.template
    violations: list[str] = []
    checking = [False]

    def check(ev):
        if not checking[0] or ev.obj.KIND not in ("Pod", "ReplicaSet"):
            return
        pods = active_pods(sim, d.spec.selector)
        now = sim.engine.now
        available = sum(is_pod_available(p, min_ready, now) for p in pods)
        if len(pods) > replicas + max_surge:
            violations.append(f"t={now}: {len(pods)} pods > {replicas} + {max_surge}")
        if available < replicas - max_unavailable:
            violations.append(f"t={now}: {available} available < {replicas} - "
                              f"{max_unavailable}")

    sim.store.on_mutation.append(check)
    checking[0] = True
    sim.set_image("default", "web", "img:2")
    sim.run(sim.engine.now + 300.0)
    assert not violations, violations[:3]
    d = sim.store.get("Deployment", "default", "web")
    pods = active_pods(sim, d.spec.selector)
    assert len(pods) == replicas
    assert all(p.spec.containers[0].image == "img:2" for p in pods)
    assert d.status.updated_replicas == d.status.available_replicas == replicas
    sim.rollback("default", "web")
    sim.run(sim.engine.now + 300.0)
    assert not violations, violations[:3]
    d = sim.store.get("Deployment", "default", "web")
    assert d.spec.template.spec == template_1.spec
    pods = active_pods(sim, d.spec.selector)
    assert len(pods) == replicas
    assert all(p.spec.containers[0].image == "img:1" for p in pods)
    assert sim.check_no_pod_lost().ok


# ------------------------------------------------------------------------- determinism

SCENARIO = ROOT / "schedbench" / "data" / "scenarios" / "node-failure.yaml"


def test_same_scenario_and_seed_same_event_log(tmp_path):
    sc = load_scenario(SCENARIO)
    a = simulate_scenario(sc, log_path=str(tmp_path / "a.jsonl"))
    b = simulate_scenario(load_scenario(SCENARIO), log_path=str(tmp_path / "b.jsonl"))
    data = (tmp_path / "a.jsonl").read_bytes()
    assert data == (tmp_path / "b.jsonl").read_bytes()
    assert a.log.sha256 == b.log.sha256 and a.log.count > 50
    c = simulate_scenario(load_scenario(SCENARIO), seed=sc.seed + 1, keep_log=True)
    assert c.log.sha256 != a.log.sha256  # the seed matters (names, heartbeat phases)


def test_event_log_does_not_depend_on_the_hash_seed():
    """A run in a subprocess with another PYTHONHASHSEED logs the same bytes (no iteration
    over hashed sets of strings decides anything)."""
    code = ("import sys; from schedbench.sim.scenario import load_scenario; "
            "from schedbench.sim.simulation import simulate_scenario; "
            "s = simulate_scenario(load_scenario(sys.argv[1]), until=400.0); "
            "print(s.log.sha256)")
    seed = "987" if os.environ.get("PYTHONHASHSEED") != "987" else "988"
    env = dict(os.environ, PYTHONHASHSEED=seed)
    out = subprocess.run([sys.executable, "-c", code, str(SCENARIO)], env=env,
                         capture_output=True, text=True, check=True)
    in_process = simulate_scenario(load_scenario(SCENARIO), until=400.0)
    assert out.stdout.strip() == in_process.log.sha256


def test_log_records_start_with_time_and_event():
    doc = {"name": "x", "until": "2m",
           "cluster": {"nodes": {"count": 2}, "objects": []},
           "timeline": [{"at": "30s", "action": "apply", "objects": [{
               "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
               "spec": {"containers": [{"name": "c"}]}}]}]}
    sim = simulate_scenario(parse_scenario(doc), keep_log=True)
    import json

    records = [json.loads(line) for line in sim.log.lines]
    assert records and all(list(r)[:2] == ["t", "event"] for r in records)
    times = [r["t"] for r in records]
    assert times == sorted(times)
    pod_events = [r["event"] for r in records if r.get("name") == "default/p"]
    assert pod_events[0] == "ADDED" and "MODIFIED" in pod_events
