"""The scheduler as a controller of the simulated control plane (schedbench/sim/schedulerctl):
driven only by store writes, on a bare engine + store (no other controller)."""

from __future__ import annotations

from collections import Counter

import pytest

from schedbench.manifests import object_from_dict
from schedbench.sim import Context, Engine, SimConfig, Store
from schedbench.sim.schedulerctl import SchedulerController


class Bench:
    """An engine, a store with the scheduler controller, and every mutation recorded."""

    def __init__(self, seed: int = 1) -> None:
        self.engine = Engine(seed)
        self.store = Store(self.engine)
        self.mutations = []
        self.store.on_mutation.append(
            lambda ev: self.mutations.append((self.engine.now, ev.type, ev.obj.KIND,
                                              ev.obj.key, ev.cause)))
        self.sched = SchedulerController(Context(self.engine, self.store, SimConfig()))
        self.sched.start()

    def node(self, name, cpu="2", zone=None, taints=(), unschedulable=False):
        labels = {"kubernetes.io/hostname": name}
        if zone:
            labels["topology.kubernetes.io/zone"] = zone
        doc = {"apiVersion": "v1", "kind": "Node", "metadata": {"name": name, "labels": labels},
               "spec": {"taints": list(taints), "unschedulable": unschedulable},
               "status": {"capacity": {"cpu": cpu, "memory": "8Gi", "pods": "110"}}}
        return self.store.create(object_from_dict(doc))

    def pod(self, name, cpu="1", priority=None, owner=None, labels=None, node=None):
        meta = {"name": name, "labels": labels or {}}
        if owner is not None:
            meta["ownerReferences"] = [{"apiVersion": "apps/v1", "kind": "ReplicaSet",
                                        "name": owner.metadata.name, "uid": owner.metadata.uid,
                                        "controller": True}]
        spec = {"containers": [{"name": "c", "resources": {"requests": {"cpu": cpu}}}]}
        if priority is not None:
            spec["priority"] = priority
        if node:
            spec["nodeName"] = node
        return self.store.create(object_from_dict({"apiVersion": "v1", "kind": "Pod",
                                                   "metadata": meta, "spec": spec}))

    def get(self, name):
        return self.store.get("Pod", "default", name)

    def run(self, until):
        self.engine.run(until)


def condition(pod, type_="PodScheduled"):
    return next((c for c in pod.status.conditions if c.type == type_), None)


def test_binds_and_marks_unschedulable_with_the_fit_error():
    b = Bench()
    b.node("n1")
    b.node("n2")
    for i in range(5):
        b.pod(f"p{i}")
    b.run(1)
    placed = [b.get(f"p{i}") for i in range(5)]
    bound = [p for p in placed if p.spec.node_name]
    assert len(bound) == 4
    assert Counter(p.spec.node_name for p in bound) == {"n1": 2, "n2": 2}
    for p in bound:
        c = condition(p)
        assert c.status == "True" and c.last_transition_time == "2026-01-01T00:00:00.000Z"
    waiting = next(p for p in placed if not p.spec.node_name)
    c = condition(waiting)
    assert (c.status, c.reason) == ("False", "Unschedulable")
    assert c.message.startswith("0/2 nodes are available: 2 Insufficient cpu.")
    # the scheduled ones were bound with cause "scheduled", the other marked once
    causes = Counter(m[4] for m in b.mutations if m[1] == "MODIFIED")
    assert causes == {"scheduled": 4, "unschedulable": 1}


def test_a_failed_pod_is_not_retried_while_nothing_changes():
    b = Bench()
    b.node("n1", cpu="1")
    b.pod("big", cpu="2")
    b.run(1)
    steps = b.engine.steps
    b.run(3600)
    # no cluster change: no retry, no status churn, no busy engine
    assert b.engine.steps - steps <= 2
    assert b.sched.attempts == 1
    assert not b.get("big").spec.node_name


def test_deleted_and_finished_pods_free_their_room():
    b = Bench()
    b.node("n1", cpu="2")
    b.pod("a")
    b.pod("b")
    b.pod("c")
    b.pod("d")
    b.run(1)
    waiting = sorted(p.metadata.name for p in b.store.list("Pod") if not p.spec.node_name)
    assert len(waiting) == 2
    bound = sorted(p.metadata.name for p in b.store.list("Pod") if p.spec.node_name)
    b.engine.at(10, lambda: b.store.delete("Pod", "default", bound[0], cause="deleted by test"))
    b.run(11)
    assert sum(1 for p in b.store.list("Pod") if p.spec.node_name) == 2
    still = [p for p in b.store.list("Pod") if not p.spec.node_name]
    assert len(still) == 1
    done = b.store.edit(b.get(bound[1]))
    done.status.phase = "Succeeded"
    b.engine.at(20, b.store.update, done)
    b.run(21)
    assert b.get(still[0].metadata.name).spec.node_name == "n1"
    # the snapshot holds what is running: two pods of 1 CPU
    snap = b.sched.snapshot
    assert int(snap.requested[snap.node_index["n1"], 0]) == 2000


def test_preemption_deletes_victims_with_the_cause():
    b = Bench()
    b.node("n1", cpu="2")
    b.pod("low1", priority=1)
    b.pod("low2", priority=1)
    b.run(1)
    b.engine.at(5, b.pod, "high", "2", 1000)
    b.run(30)
    deleted = {m[3]: m[4] for m in b.mutations if m[1] == "DELETED"}
    assert deleted == {"default/low1": "preempted by default/high",
                       "default/low2": "preempted by default/high"}
    assert b.get("high").spec.node_name == "n1"
    assert b.sched.preemptions == 2


def test_node_updates_and_additions_requeue_pending_pods():
    b = Bench()
    taint = {"key": "dedicated", "value": "x", "effect": "NoSchedule"}
    b.node("n1", taints=[taint])
    b.node("n2", unschedulable=True)
    b.pod("p")
    b.run(1)
    msg = condition(b.get("p")).message
    assert "1 node(s) had untolerated taint" in msg and "1 node(s) were unschedulable" in msg
    n1 = b.store.edit(b.store.get("Node", "", "n1"))
    n1.spec.taints = []
    b.engine.at(60, b.store.update, n1)
    b.run(61)
    assert b.get("p").spec.node_name == "n1"
    b.pod("q", cpu="2")
    b.run(62)
    assert not b.get("q").spec.node_name
    b.engine.at(100, b.node, "n3", "4")
    b.run(101)
    assert b.get("q").spec.node_name == "n3"


def test_a_deleted_node_leaves_the_snapshot():
    b = Bench()
    b.node("n1")
    b.pod("p")
    b.run(1)
    assert b.get("p").spec.node_name == "n1"
    b.engine.at(5, lambda: b.store.delete("Node", "", "n1", cause="test"))
    b.run(6)
    snap = b.sched.snapshot
    assert snap.alive_nodes().size == 0
    b.pod("q")
    b.run(7)
    c = condition(b.get("q"))
    assert c.reason == "Unschedulable"
    assert c.message.startswith("no nodes available") or "0/0" in c.message


def test_replicaset_pods_get_the_system_default_spreading():
    """A big node and two small ones in three zones: LeastAllocated alone piles the pods on
    the big node; the pods of a ReplicaSet are spread over nodes and zones (PodTopologySpread's
    system defaults, through the ReplicaSet the scheduler sees)."""

    def placement(owned: bool) -> Counter:
        b = Bench()
        for name, cpu, zone in (("n0", "16", "a"), ("n1", "4", "b"), ("n2", "4", "c")):
            b.node(name, cpu, zone)
        rs = b.store.create(object_from_dict({
            "apiVersion": "apps/v1", "kind": "ReplicaSet", "metadata": {"name": "rs"},
            "spec": {"replicas": 6, "selector": {"matchLabels": {"app": "w"}},
                     "template": {"metadata": {"labels": {"app": "w"}},
                                  "spec": {"containers": [{"name": "c"}]}}}}))
        for i in range(6):
            b.pod(f"p{i}", cpu="200m", labels={"app": "w"}, owner=rs if owned else None)
        b.run(1)
        return Counter(p.spec.node_name for p in b.store.list("Pod"))

    assert placement(True) == {"n0": 2, "n1": 2, "n2": 2}
    assert placement(False)["n0"] > 2


def test_pods_for_another_scheduler_and_prebound_pods():
    b = Bench()
    b.node("n1", cpu="2")
    b.pod("bound", node="n1", cpu="2")
    other = object_from_dict({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "o"},
                              "spec": {"schedulerName": "other", "containers": [
                                  {"name": "c", "resources": {"requests": {"cpu": "1"}}}]}})
    b.store.create(other)
    b.pod("p")
    b.run(1)
    assert not b.get("o").status.conditions  # not ours: untouched
    assert "Insufficient cpu" in condition(b.get("p")).message  # the prebound pod counts


@pytest.mark.parametrize("seed", [0, 5])
def test_same_seed_same_decisions(seed):
    def run():
        b = Bench(seed)
        for i in range(6):
            b.node(f"n{i}", cpu="8", zone=f"z{i % 3}")
        for i in range(30):
            b.pod(f"p{i}", cpu="300m")
        b.run(1)
        return [(p.key, p.spec.node_name) for p in b.store.list("Pod")]

    assert run() == run()
