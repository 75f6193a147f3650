"""The kubelet model: pod start-up, readiness, completion, node failure and leases."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from schedbench.errors import InputError
from schedbench.model.objects import Container, Node, ObjectMeta, Pod, PodSpec
from schedbench.sim.controller import Context, SimConfig
from schedbench.sim.engine import Engine
from schedbench.sim.kubelet import (ANNOTATION_DURATION, ANNOTATION_EXIT, ANNOTATION_STARTUP,
                                    Kubelet)
from schedbench.sim.store import Store
from schedbench.sim.timefmt import seconds, stamp


def make(nodes=("n1",), config=None, seed=0):
    engine = Engine(seed=seed)
    store = Store(engine)
    ctx = Context(engine, store, config or SimConfig())
    for n in nodes:
        store.create(Node(metadata=ObjectMeta(name=n)))
    kubelet = Kubelet(ctx)
    kubelet.start()
    history = []  # (t, name, phase, ready, containers-ready reason)

    def record(ev):
        if ev.obj.KIND == "Pod" and ev.type != "DELETED":
            p = ev.obj
            cr = next((c for c in p.status.conditions if c.type == "ContainersReady"), None)
            history.append((engine.now, p.metadata.name, p.status.phase, p.is_ready(),
                            cr.reason if cr else None))

    store.on_mutation.append(record)
    return engine, store, kubelet, history


def new_pod(name, node="n1", annotations=None):
    return Pod(metadata=ObjectMeta(name=name, annotations=dict(annotations or {})),
               spec=PodSpec(containers=[Container(name="c")], node_name=node))


def cond(pod, type_):
    return next((c for c in pod.status.conditions if c.type == type_), None)


def test_default_lifecycle_timings():
    engine, store, _, history = make()
    engine.run(until=10.0)
    store.create(new_pod("a"))
    engine.run(until=100.0)
    a = store.get("Pod", "default", "a")
    assert history == [
        (10.0, "a", "Pending", False, None),                 # created (bound)
        (10.0, "a", "Pending", False, "ContainerCreating"),  # kubelet acknowledged
        (12.0, "a", "Running", False, "ContainersNotReady"),
        (13.0, "a", "Running", True, ""),
    ]
    assert a.status.start_time == stamp(10.0)
    assert cond(a, "Ready").last_transition_time == stamp(13.0)
    assert cond(a, "Initialized").status == "True"
    assert seconds(cond(a, "ContainersReady").last_transition_time) == 13.0


centis = st.integers(0, 5000).map(lambda x: x / 100)


@given(centis, centis, centis, centis)
def test_configured_and_per_pod_timings(startup, ready, override, duration):
    config = SimConfig(pod_startup_seconds=startup, pod_ready_seconds=ready)
    engine, store, _, history = make(config=config)
    store.create(new_pod("default"))
    store.create(new_pod("override", annotations={ANNOTATION_STARTUP: f"{override}s"}))
    store.create(new_pod("job", annotations={ANNOTATION_DURATION: str(duration)}))
    engine.run()

    def first(name, pred):
        return next(t for t, n, phase, rd, _ in history if n == name and pred(phase, rd))

    assert first("default", lambda ph, rd: ph == "Running") == pytest.approx(startup)
    assert first("default", lambda ph, rd: rd) == pytest.approx(startup + ready)
    assert first("override", lambda ph, rd: ph == "Running") == pytest.approx(override)
    assert first("job", lambda ph, rd: ph == "Succeeded") == pytest.approx(startup + duration)
    job = store.get("Pod", "default", "job")
    assert job.status.phase == "Succeeded" and not job.is_ready()
    became_ready = any(n == "job" and rd for _, n, _, rd, _ in history)
    assert became_ready == (ready <= duration)  # ready first when both are due at once


def test_failed_exit_and_terminal_pods_stay():
    engine, store, _, _ = make()
    store.create(new_pod("bad", annotations={ANNOTATION_DURATION: "1m", ANNOTATION_EXIT: "failed"}))
    engine.run()
    bad = store.get("Pod", "default", "bad")
    assert bad.status.phase == "Failed"
    assert cond(bad, "Ready").reason == "PodFailed"
    assert engine.now == pytest.approx(62.0)


def test_unbound_pods_wait_and_pods_of_unknown_nodes_start_when_the_node_appears():
    engine, store, _, history = make(nodes=())
    store.create(new_pod("unbound", node=""))
    store.create(new_pod("early", node="later"))
    engine.run(until=30.0)
    assert all(phase == "Pending" and reason is None for _, _, phase, _, reason in history)
    store.create(Node(metadata=ObjectMeta(name="later")))
    engine.run(until=100.0)
    assert store.get("Pod", "default", "early").is_ready()
    assert store.get("Pod", "default", "unbound").status.phase == "Pending"
    bind = store.edit(store.get("Pod", "default", "unbound"))
    bind.spec.node_name = "later"
    store.update(bind)
    engine.run(until=200.0)
    assert store.get("Pod", "default", "unbound").is_ready()


def test_deleted_pods_stop_their_lifecycle_and_a_new_pod_of_that_name_starts_fresh():
    engine, store, _, history = make()
    store.create(new_pod("a"))
    engine.run(until=1.0)
    store.delete("Pod", "default", "a")
    engine.run(until=1.5)
    store.create(new_pod("a"))
    engine.run()
    started = [t for t, n, phase, ready, _ in history if phase == "Running" and not ready]
    assert started == [3.5]  # the first pod's start at t=2 was cancelled


def test_pods_already_running_are_adopted_not_restarted():
    engine, store, _, history = make(nodes=())
    engine.run(until=100.0)
    running = new_pod("running", annotations={ANNOTATION_DURATION: "150"})
    running.status.phase = "Running"
    running.status.start_time = stamp(20.0)
    store.create(running)
    store.create(Node(metadata=ObjectMeta(name="n1")))
    engine.run(until=1000.0)
    phases = [(t, phase, ready) for t, n, phase, ready, _ in history]
    assert phases == [(100.0, "Running", False), (101.0, "Running", True),
                      (170.0, "Succeeded", False)]


def test_bad_annotation_is_an_input_error():
    engine, store, _, _ = make()
    store.create(new_pod("a", annotations={ANNOTATION_STARTUP: "soon"}))
    with pytest.raises(InputError, match="startup-seconds"):
        engine.run()


def test_failed_node_freezes_its_pods_and_recovery_resumes_them():
    engine, store, kubelet, history = make(nodes=("n1", "n2"))
    store.create(new_pod("ready", node="n1"))
    store.create(new_pod("job", node="n1", annotations={ANNOTATION_DURATION: "100"}))
    store.create(new_pod("other", node="n2"))
    engine.run(until=50.0)
    kubelet.fail_node("n1")
    engine.run(until=50.5)
    store.create(new_pod("late", node="n1"))  # bound to a dead node
    creating = store.create(new_pod("creating", node="n2"))
    engine.run(until=200.0)
    late = store.get("Pod", "default", "late")
    assert late.status.phase == "Pending" and cond(late, "ContainersReady") is None
    job = store.get("Pod", "default", "job")
    assert job.status.phase == "Running"  # its completion at t=102 did not happen
    assert store.get("Pod", "default", "creating").is_ready()
    assert creating.metadata.name == "creating"
    kubelet.recover_node("n1")
    engine.run(until=400.0)
    assert store.get("Pod", "default", "late").is_ready()
    job = store.get("Pod", "default", "job")
    assert job.status.phase == "Succeeded"  # overdue: finishes at recovery
    done = [t for t, n, phase, _, _ in history if n == "job" and phase == "Succeeded"]
    assert done == [200.0]
    assert kubelet.is_alive("n1")


def test_fail_and_recover_are_idempotent_and_check_the_node():
    engine, store, kubelet, _ = make()
    kubelet.fail_node("n1")
    kubelet.fail_node("n1")
    kubelet.recover_node("n1")
    kubelet.recover_node("n1")
    assert kubelet.is_alive("n1")
    with pytest.raises(InputError):
        kubelet.fail_node("nope")


@given(st.floats(0, 10_000), st.floats(0.5, 60), st.floats(0, 1000))
def test_lease_renewals_are_analytic(fail_at, interval, after):
    engine, store, kubelet, _ = make(config=SimConfig(node_heartbeat_seconds=interval))
    engine.run(until=fail_at)
    last = kubelet.last_renew("n1")
    assert 0.0 <= last <= fail_at
    assert fail_at - last < interval + 1e-9
    nxt = kubelet.next_renew("n1")
    assert nxt > fail_at and nxt - last == pytest.approx(interval) or last == 0.0
    # the renewals lie on one grid (or at the kubelet's start, t=0)
    offset = kubelet._agents["n1"].offset
    k = (last - offset) / interval
    assert last == 0.0 or abs(k - round(k)) < 1e-6
    kubelet.fail_node("n1")
    engine.run(until=fail_at + after)
    assert kubelet.last_renew("n1") == last  # a dead kubelet renews nothing
    assert kubelet.next_renew("n1") is None
    kubelet.recover_node("n1")
    assert kubelet.last_renew("n1") == engine.now  # it renews when it restarts


def test_lease_offsets_differ_between_nodes_and_cost_no_events():
    engine, store, kubelet, _ = make(nodes=[f"n{i}" for i in range(50)])
    engine.run(until=3600.0)
    assert engine.steps == 0
    renewals = {kubelet.last_renew(f"n{i}") for i in range(50)}
    assert len(renewals) > 40
    assert all(3590.0 < r <= 3600.0 for r in renewals)


def test_set_node_ready_reports_the_condition():
    engine, store, kubelet, _ = make()
    kubelet.set_node_ready("n1", False, message="runtime down")
    node = store.get("Node", "", "n1")
    ready = cond(node, "Ready")
    assert (ready.status, ready.reason, ready.message) == ("False", "KubeletNotReady",
                                                           "runtime down")
    engine.run(until=5.0)
    kubelet.set_node_ready("n1", True)
    ready = cond(store.get("Node", "", "n1"), "Ready")
    assert ready.status == "True" and ready.last_transition_time == stamp(5.0)
    kubelet.fail_node("n1")
    with pytest.raises(InputError):
        kubelet.set_node_ready("n1", True)
    assert math.isfinite(kubelet.last_renew("n1"))
