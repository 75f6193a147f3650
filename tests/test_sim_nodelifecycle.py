"""Node lifecycle: failure detection, condition taints, taint-based eviction, recovery."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from schedbench.model.objects import (Container, Node, NodeSpec, ObjectMeta, Pod, PodSpec,
                                      Taint, Toleration)
from schedbench.sim.controller import Context, SimConfig
from schedbench.sim.engine import Engine
from schedbench.sim.kubelet import Kubelet
from schedbench.sim.nodelifecycle import (NodeLifecycleController, TaintEvictionController,
                                          zone_key)
from schedbench.sim.store import Store
from schedbench.sim.timefmt import seconds

UNREACHABLE = "node.kubernetes.io/unreachable"
NOT_READY = "node.kubernetes.io/not-ready"


class Cluster:
    def __init__(self, nodes=("n1", "n2", "n3"), zones=None, config=None, seed=0):
        self.engine = Engine(seed=seed)
        self.store = Store(self.engine)
        self.records = []
        self.ctx = Context(self.engine, self.store, config or SimConfig(), self.records.append)
        self.deleted = {}  # pod name -> (t, cause)
        self.store.on_mutation.append(self._on_mutation)
        for i, name in enumerate(nodes):
            labels = {"topology.kubernetes.io/zone": zones[i]} if zones else {}
            self.store.create(Node(metadata=ObjectMeta(name=name, labels=labels)))
        self.kubelet = Kubelet(self.ctx)
        self.lifecycle = NodeLifecycleController(self.ctx, self.kubelet)
        self.eviction = TaintEvictionController(self.ctx)
        for controller in (self.kubelet, self.lifecycle, self.eviction):
            controller.start()

    def _on_mutation(self, ev):
        if ev.type == "DELETED" and ev.obj.KIND == "Pod":
            self.deleted[ev.obj.metadata.name] = (self.engine.now, ev.cause)

    def pod(self, name, node, tolerations=()):
        return self.store.create(Pod(metadata=ObjectMeta(name=name),
                                     spec=PodSpec(containers=[Container(name="c")],
                                                  node_name=node,
                                                  tolerations=list(tolerations))))

    def node(self, name):
        return self.store.get("Node", "", name)

    def taints(self, name):
        return sorted((t.key, t.effect) for t in self.node(name).spec.taints)

    def ready(self, name):
        return next((c.status for c in self.node(name).status.conditions
                     if c.type == "Ready"), "True")

    def taint_times(self, key, effect="NoExecute"):
        """When each node got the taint, from the mutation history (via the event log)."""
        return {r["name"]: r["t"] for r in self.records
                if r["event"] == "tainted" and r["taint"] == f"{key}:{effect}"}


def test_failure_is_detected_after_the_grace_period_and_pods_are_evicted_after_300s():
    c = Cluster()
    c.pod("a", "n1")
    c.pod("b", "n2")
    c.engine.run(until=120.0)
    assert c.store.get("Pod", "default", "a").is_ready()
    c.kubelet.fail_node("n1")
    last = c.kubelet.last_renew("n1")
    detect = last + 50.0
    c.engine.run(until=detect - 1e-6)
    assert c.ready("n1") == "True" and c.taints("n1") == []
    assert c.store.get("Pod", "default", "a").is_ready()
    c.engine.run(until=detect)
    assert c.ready("n1") == "Unknown"
    assert c.taints("n1") == [(UNREACHABLE, "NoExecute"), (UNREACHABLE, "NoSchedule")]
    for t in c.node("n1").spec.taints:
        assert seconds(t.time_added) == pytest.approx(detect, abs=1e-3)
    a = c.store.get("Pod", "default", "a")
    assert not a.is_ready() and a.status.phase == "Running"
    assert c.store.get("Pod", "default", "b").is_ready()
    c.engine.run(until=detect + 299.999)
    assert "a" not in c.deleted
    c.engine.run(until=2000.0)
    assert c.deleted["a"] == (detect + 300.0, f"evicted: taint {UNREACHABLE}")
    assert "b" not in c.deleted
    evicted = [r for r in c.records if r["event"] == "evicted"]
    assert evicted == [{"t": detect + 300.0, "event": "evicted", "kind": "Pod",
                        "name": "default/a", "node": "n1", "taint": UNREACHABLE}]


@given(st.integers(0, 600), st.sampled_from([None, 0, 1, 30, 299, 301, 10_000]))
def test_eviction_time_follows_toleration_seconds(fail_at, toleration_seconds):
    c = Cluster()
    tol = Toleration(key=UNREACHABLE, operator="Exists", effect="NoExecute",
                     toleration_seconds=toleration_seconds)
    c.pod("custom", "n1", [tol])
    c.pod("default", "n1")
    c.engine.run(until=float(fail_at))
    c.kubelet.fail_node("n1")
    detect = c.kubelet.last_renew("n1") + 50.0
    c.engine.run(until=fail_at + 20_000.0)
    assert c.deleted["default"][0] == pytest.approx(detect + 300.0)
    if toleration_seconds is None:
        assert "custom" not in c.deleted  # tolerated forever
    else:
        assert c.deleted["custom"][0] == pytest.approx(detect + max(toleration_seconds, 0))


def test_recovery_before_the_grace_period_changes_nothing():
    c = Cluster()
    c.pod("a", "n1")
    c.engine.run(until=100.0)
    c.kubelet.fail_node("n1")
    c.engine.run(until=c.kubelet.last_renew("n1") + 49.0)
    c.kubelet.recover_node("n1")
    c.engine.run(until=1000.0)
    assert c.ready("n1") == "True" and c.taints("n1") == []
    assert c.store.get("Pod", "default", "a").is_ready()
    assert c.deleted == {}


def test_recovery_after_tainting_untaints_cancels_evictions_and_readies_pods():
    c = Cluster()
    c.pod("a", "n1")
    c.engine.run(until=100.0)
    c.kubelet.fail_node("n1")
    detect = c.kubelet.last_renew("n1") + 50.0
    c.engine.run(until=detect + 100.0)
    assert c.taints("n1") != []
    c.kubelet.recover_node("n1")
    now = c.engine.now
    c.engine.run(until=now)
    assert c.ready("n1") == "True" and c.taints("n1") == []
    c.engine.run(until=5000.0)
    assert c.deleted == {}
    a = c.store.get("Pod", "default", "a")
    assert a.is_ready()
    ready = next(x for x in a.status.conditions if x.type == "Ready")
    assert seconds(ready.last_transition_time) == pytest.approx(now + 1.0, abs=1e-3)


def test_a_second_failure_is_detected_again():
    c = Cluster()
    c.pod("a", "n1")
    c.engine.run(until=100.0)
    c.kubelet.fail_node("n1")
    c.engine.run(until=200.0)
    c.kubelet.recover_node("n1")
    c.engine.run(until=300.0)
    c.kubelet.fail_node("n1")
    detect = c.kubelet.last_renew("n1") + 50.0
    c.engine.run(until=detect)
    assert c.ready("n1") == "Unknown"
    c.engine.run(until=detect + 400)
    assert c.deleted["a"][0] == pytest.approx(detect + 300.0)


def test_not_ready_node_gets_not_ready_taints_and_swaps_to_unreachable():
    c = Cluster()
    c.pod("a", "n1")
    c.engine.run(until=10.0)
    c.kubelet.set_node_ready("n1", False)
    c.engine.run(until=10.0)
    assert c.taints("n1") == [(NOT_READY, "NoExecute"), (NOT_READY, "NoSchedule")]
    assert not c.store.get("Pod", "default", "a").is_ready()
    c.engine.run(until=100.0)
    c.kubelet.fail_node("n1")
    detect = c.kubelet.last_renew("n1") + 50.0
    c.engine.run(until=detect)
    assert c.taints("n1") == [(UNREACHABLE, "NoExecute"), (UNREACHABLE, "NoSchedule")]
    c.engine.run(until=1000.0)
    # the eviction keeps the start of the first NoExecute taint (t=10)
    assert c.deleted["a"] == (310.0, f"evicted: taint {UNREACHABLE}")


def test_untolerated_no_execute_taint_evicts_at_once_and_tolerated_pods_stay():
    c = Cluster()
    c.pod("plain", "n1")
    c.pod("tolerant", "n1", [Toleration(key="example.com/maintenance", operator="Exists",
                                        effect="NoExecute")])
    c.engine.run(until=30.0)
    node = c.store.edit(c.node("n1"))
    node.spec.taints.append(Taint(key="example.com/maintenance", effect="NoExecute"))
    c.store.update(node)
    c.engine.run(until=100.0)
    assert c.deleted == {"plain": (30.0, "evicted: taint example.com/maintenance")}
    c.pod("late", "n1")  # bound to the tainted node later: evicted when seen
    c.engine.run(until=200.0)
    assert c.deleted["late"][0] == 100.0


def test_cordon_adds_and_uncordon_removes_the_unschedulable_taint():
    c = Cluster()
    node = c.store.edit(c.node("n2"))
    node.spec.unschedulable = True
    c.store.update(node)
    c.engine.run(until=1.0)
    assert c.taints("n2") == [("node.kubernetes.io/unschedulable", "NoSchedule")]
    node = c.store.edit(c.node("n2"))
    node.spec.unschedulable = False
    c.store.update(node)
    c.engine.run(until=2.0)
    assert c.taints("n2") == []


def test_user_taints_are_left_alone():
    c = Cluster(nodes=())
    c.store.create(Node(metadata=ObjectMeta(name="n1"), spec=NodeSpec(
        taints=[Taint(key="gpu", value="true", effect="NoSchedule")])))
    c.store.create(Node(metadata=ObjectMeta(name="n2")))
    c.engine.run(until=100.0)
    c.kubelet.fail_node("n1")
    c.engine.run(until=1000.0)
    assert ("gpu", "NoSchedule") in c.taints("n1")
    c.kubelet.recover_node("n1")
    c.engine.run(until=1001.0)
    assert c.taints("n1") == [("gpu", "NoSchedule")]


def test_no_execute_tainting_is_rate_limited_per_zone():
    nodes = [f"n{i}" for i in range(10)]
    zones = ["a"] * 7 + ["b"] * 3
    c = Cluster(nodes=nodes, zones=zones)
    c.engine.run(until=100.0)
    failing = ["n0", "n1", "n2", "n7"]  # 3 of 7 in zone a (Normal), 1 of 3 in zone b
    for n in failing:
        c.kubelet.fail_node(n)
    detect = {n: c.kubelet.last_renew(n) + 50.0 for n in failing}
    c.engine.run(until=1000.0)
    tainted = c.taint_times(UNREACHABLE)
    assert set(tainted) == set(failing)
    expected, free = {}, -1.0
    for n in sorted(["n0", "n1", "n2"], key=lambda n: detect[n]):
        expected[n] = max(detect[n], free)
        free = expected[n] + 10.0
    for n in ("n0", "n1", "n2"):
        assert tainted[n] == pytest.approx(expected[n])
    assert tainted["n7"] == pytest.approx(detect["n7"])  # another zone: its own bucket
    assert zone_key(c.node("n7")) == ":\x00:b"


def test_all_nodes_down_stops_evictions():
    c = Cluster(nodes=("n1", "n2"))
    c.pod("a", "n1")
    c.pod("b", "n2")
    c.engine.run(until=100.0)
    c.kubelet.fail_node("n1")
    c.kubelet.fail_node("n2")
    c.engine.run(until=2000.0)
    assert c.ready("n1") == c.ready("n2") == "Unknown"
    for n in ("n1", "n2"):
        assert c.taints(n) == [(UNREACHABLE, "NoSchedule")]
    assert c.deleted == {}
    c.kubelet.recover_node("n2")  # one node back: evictions resume for the other
    t = c.engine.now
    c.engine.run(until=3000.0)
    assert c.taints("n1") == [(UNREACHABLE, "NoExecute"), (UNREACHABLE, "NoSchedule")]
    assert c.deleted["a"][0] == pytest.approx(t + 300.0)
    assert "b" not in c.deleted


def test_partial_disruption_of_a_small_zone_stops_tainting():
    c = Cluster(nodes=[f"n{i}" for i in range(5)])
    for i in range(5):
        c.pod(f"p{i}", f"n{i}")
    detect = []
    for i in range(3):  # one failure every 100 s: each detected before the next
        c.engine.run(until=100.0 * (i + 1))
        c.kubelet.fail_node(f"n{i}")
        detect.append(c.kubelet.last_renew(f"n{i}") + 50.0)
    c.engine.run(until=3000.0)
    tainted = c.taint_times(UNREACHABLE)
    # 1 and 2 of 5 not ready: Normal; the third makes 60 % >= 55 %: tainting stops, and
    # with 5 nodes (<= 50) the partial-disruption rate is 0
    assert tainted == pytest.approx({"n0": detect[0], "n1": detect[1]})
    assert c.taints("n2") == [(UNREACHABLE, "NoSchedule")]
    assert sorted(c.deleted) == ["p0", "p1"]
    assert c.deleted["p1"][0] == pytest.approx(detect[1] + 300.0)


def test_partial_disruption_holds_back_a_queued_node():
    c = Cluster(nodes=[f"n{i}" for i in range(5)])
    c.engine.run(until=100.0)
    for i in range(3):  # detected within 10 s: the second waits for a token, then the
        c.kubelet.fail_node(f"n{i}")  # third turns the zone partial before it comes
    detect = sorted(c.kubelet.last_renew(f"n{i}") + 50.0 for i in range(3))
    assert detect[2] < detect[0] + 10.0
    c.engine.run(until=3000.0)
    assert list(c.taint_times(UNREACHABLE).values()) == pytest.approx([detect[0]])


def test_same_seed_same_history():
    def run():
        c = Cluster(nodes=[f"n{i}" for i in range(6)], seed=3)
        for i in range(12):
            c.pod(f"p{i}", f"n{i % 6}")
        c.engine.run(until=50.0)
        c.kubelet.fail_node("n2")
        c.kubelet.fail_node("n4")
        c.engine.run(until=300.0)
        c.kubelet.recover_node("n4")
        c.engine.run(until=1000.0)
        return c.records, c.deleted, [c.taints(f"n{i}") for i in range(6)]

    first = run()
    assert first == run()
    assert len(first[1]) == 2  # p2 and p8 on n2 (n4 recovered before the evictions)
