"""The scheduling queue (kube v1.35's PriorityQueue with queueing hints and
SchedulerPopFromBackoffQ): ordering, backoff, event moves, the 5-minute flush, gating,
in-flight events and the nominator."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from schedbench.scheduler.queue import Nominator, SchedulingQueue, align_to_window
from schedbench.scheduler.snapshot import NodeSnapshot
from tests.scheduler_helpers import make_node, make_pod

FIT = frozenset({"NodeResourcesFit"})  # registered for AssignedPodDelete, NodeAdd, NodeUpdate


@pytest.fixture
def snap():
    return NodeSnapshot([make_node("n1")])


def info(snap, name, priority=0, **spec):
    return snap.pod_info(make_pod(name, priority=priority, **spec))


def drain(q, now=0.0):
    out = []
    while (qp := q.pop(now)) is not None:
        out.append(qp.key.split("/")[1])
        q.done(qp.key)
    return out


# -------------------------------------------------------------------------- ordering


def test_active_queue_orders_by_priority_then_timestamp_then_arrival(snap):
    q = SchedulingQueue()
    q.add(info(snap, "a", 1), 5.0)
    q.add(info(snap, "b", 10), 7.0)
    q.add(info(snap, "c", 1), 3.0)
    q.add(info(snap, "d", 1), 3.0)
    q.add(info(snap, "e", -5), 0.0)
    assert drain(q, 10.0) == ["b", "c", "d", "a", "e"]


@given(st.lists(st.tuples(st.integers(-3, 3), st.integers(0, 3)), min_size=1, max_size=25))
def test_pop_order_is_priority_sort(pods):
    snap = NodeSnapshot([make_node("n1")])
    q = SchedulingQueue()
    for i, (prio, ts) in enumerate(pods):
        q.add(info(snap, f"p{i}", prio), float(ts))
    want = [f"p{i}" for i, _ in sorted(enumerate(pods), key=lambda t: (-t[1][0], t[1][1], t[0]))]
    assert drain(q, 100.0) == want


# --------------------------------------------------------------------------- backoff


def test_backoff_durations_double_from_one_second_to_ten():
    q = SchedulingQueue()
    assert [q.backoff_duration(a) for a in range(0, 8)] == [0, 1, 2, 4, 8, 10, 10, 10]
    q = SchedulingQueue(initial_backoff=3, max_backoff=20)
    assert [q.backoff_duration(a) for a in range(1, 6)] == [3, 6, 12, 20, 20]
    assert SchedulingQueue(initial_backoff=1, max_backoff=1).backoff_duration(40) == 1


def test_backoff_expiry_is_aligned_to_whole_seconds(snap):
    q = SchedulingQueue()
    p = q.add(info(snap, "a"), 0.0)
    qp = q.pop(0.0)
    assert qp is p and qp.attempts == 1
    q.add_unschedulable(qp, 0.5, frozenset(), "error")  # an error: error backoff queue
    assert q.where(p.key) == "error_backoff"
    assert q.backoff_expiration(qp) == 1.0            # floor(0.5 + 1)
    for t in (0.5, 1.0, 1.99):                         # still in the expiry's window
        assert q.is_backing_off(qp, t) and q.pop(t) is None
    assert q.next_backoff_expiry() == 2.0
    assert q.pop(2.0) is qp and qp.attempts == 2


@pytest.mark.parametrize("attempts, expires", [(1, 11.0), (2, 12.0), (3, 14.0), (4, 18.0),
                                               (5, 20.0), (9, 20.0)])
def test_backoff_grows_with_attempts(snap, attempts, expires):
    q = SchedulingQueue()
    qp = q.add(info(snap, "a"), 0.0)
    for _ in range(attempts):
        qp = q.pop(1e6)
        q.add_unschedulable(qp, 10.0, frozenset(), "error")
    assert qp.attempts == attempts
    assert q.backoff_expiration(qp) == expires
    assert qp.consecutive_errors == attempts and qp.unschedulable_count == 0


def test_backoff_queue_is_popped_when_active_queue_is_empty(snap):
    q = SchedulingQueue()
    for name, prio in (("low", 0), ("high", 9)):
        q.add(info(snap, name, prio), 0.0)
    for _ in range(2):
        qp = q.pop(0.0)
        q.add_unschedulable(qp, 0.0, FIT, "no fit")
    assert q.move_on_event("AssignedPodDelete", 0.0) == 2
    assert q.backoff_count == 2 and q.active_count == 0
    # both still back off (expiry window 1.0 at t=0), yet activeQ is empty: backoffQ's head,
    # by expiry window then priority, is popped at once
    assert q.pop(0.0).key == "default/high"
    q.add(info(snap, "new", -1), 0.0)
    assert q.pop(0.0).key == "default/new"  # activeQ first
    assert q.pop(0.0).key == "default/low"


def test_error_backoff_queue_is_not_popped_early(snap):
    q = SchedulingQueue()
    q.add(info(snap, "a"), 0.0)
    q.add_unschedulable(q.pop(0.0), 0.0, frozenset(), "error")
    assert q.pop(1.5) is None
    assert q.pop(2.0).key == "default/a"


def test_pop_from_backoff_can_be_disabled(snap):
    q = SchedulingQueue(pop_from_backoff=False)
    q.add(info(snap, "a"), 0.0)
    q.add_unschedulable(q.pop(0.0), 0.0, FIT, "no fit")
    q.move_on_event("AssignedPodDelete", 0.0)
    assert q.pop(1.0) is None and q.pop(2.0).key == "default/a"


# ------------------------------------------------------------------------ event moves


def test_events_move_only_pods_whose_rejecting_plugin_registered_them(snap):
    q = SchedulingQueue()
    q.add(info(snap, "fit"), 0.0)
    q.add(info(snap, "taint"), 0.0)
    q.add_unschedulable(q.pop(0.0), 0.0, FIT, "no fit")
    q.add_unschedulable(q.pop(0.0), 0.0, frozenset({"TaintToleration"}), "taint")
    assert q.move_on_event("AssignedPodAdd", 0.0) == 0
    assert q.move_on_event("AssignedPodDelete", 0.0) == 1
    assert q.where("default/fit") == "backoff" and q.where("default/taint") == "unschedulable"
    assert q.move_on_event("NodeUpdate", 30.0) == 1  # TaintToleration: NodeAdd, NodeUpdate
    assert q.where("default/taint") == "active"       # backoff over by t=30
    assert q.moves == 2


def test_event_move_respects_precheck_and_queueing_hints(snap):
    class Picky:
        events = frozenset({"AssignedPodDelete"})

        def queueing_hint(self, pod, event, obj):
            return obj == "helpful"

    q = SchedulingQueue(plugins={"Picky": Picky()})
    q.add(info(snap, "a"), 0.0)
    q.add_unschedulable(q.pop(0.0), 0.0, frozenset({"Picky"}), "no")
    assert q.move_on_event("AssignedPodDelete", 0.0, obj="useless") == 0
    assert q.move_on_event("AssignedPodDelete", 0.0, obj="helpful",
                           precheck=lambda qp: False) == 0
    assert q.move_on_event("AssignedPodDelete", 0.0, obj="helpful") == 1


def test_events_during_the_cycle_requeue_the_pod_when_it_fails(snap):
    q = SchedulingQueue()
    q.add(info(snap, "a"), 0.0)
    qp = q.pop(0.0)
    q.move_on_event("AssignedPodDelete", 0.0)  # while "a" is being scheduled
    assert q.add_unschedulable(qp, 0.0, FIT, "no fit") == "backoff"
    q.add(info(snap, "b"), 0.0)
    qp = q.pop(0.0)
    q.move_on_event("AssignedPodAdd", 0.0)     # not registered by NodeResourcesFit
    assert q.add_unschedulable(qp, 0.0, FIT, "no fit") == "unschedulable"


def test_failed_pod_timestamp_is_refreshed(snap):
    q = SchedulingQueue()
    q.add(info(snap, "first", 1), 0.0)
    qp = q.pop(0.0)
    q.add_unschedulable(qp, 50.0, FIT, "no fit")
    assert qp.timestamp == 50.0 and qp.unschedulable_count == 1 and qp.last_failure == "no fit"
    q.add(info(snap, "second", 1), 20.0)
    q.move_on_event("NodeAdd", 60.0)
    assert drain(q, 60.0) == ["second", "first"]


# ---------------------------------------------------------------------------- flush


def test_unschedulable_pods_are_flushed_after_five_minutes(snap):
    q = SchedulingQueue()
    q.add(info(snap, "a"), 0.0)
    qp = q.pop(0.0)
    q.add_unschedulable(qp, 10.0, frozenset({"TaintToleration"}), "taint", version=3)
    assert q.flush_unschedulable_leftover(310.0) == 0  # not more than 300 s
    assert q.next_leftover_flush() == 330.0           # the first 30 s tick after 310
    assert q.next_leftover_flush(newer_than=3) is None
    assert q.next_leftover_flush(newer_than=4) == 330.0
    assert q.pop(329.0) is None
    assert q.pop(330.0) is qp and qp.attempts == 2


def test_flush_ticks_are_every_thirty_seconds(snap):
    q = SchedulingQueue()
    q.add(info(snap, "a"), 0.0)
    q.add_unschedulable(q.pop(0.0), 0.0, FIT, "no fit")
    assert q.pop(300.0) is None   # the tick at 300 s sees exactly 300 s
    assert q.pop(329.9) is None   # no tick in between
    assert q.pop(330.0) is not None


# ---------------------------------------------------------------------------- gating


def test_gated_pods_wait_until_ungated_and_keep_their_timestamp(snap):
    q = SchedulingQueue()
    q.add(info(snap, "gated", 0, schedulingGates=[{"name": "wait"}]), 0.0)
    q.add(info(snap, "later", 0), 5.0)
    assert q.where("default/gated") == "gated"
    assert q.gated["default/gated"].unschedulable_plugins == {"SchedulingGates"}
    assert q.move_on_event("NodeAdd", 1.0) == 0 and q.flush_unschedulable_leftover(1e6) == 0
    q.ungate("default/gated", 10.0)
    assert drain(q, 10.0) == ["gated", "later"]  # timestamp 0 < 5


# ---------------------------------------------------------------- nominator & misc


def test_nominator(snap):
    n = Nominator()
    a, b = info(snap, "a"), info(snap, "b")
    n.add(a, "n1")
    n.add(b, "n1")
    n.add(a, "n2")
    assert [p.name for p in n.pods_for_node("n1")] == ["b"] and n.node_of("default/a") == "n2"
    n.add(b, "")
    assert not n.pods_for_node("n1") and len(n) == 1 and set(n.node_names()) == {"n2"}
    n.delete("default/a")
    assert len(n) == 0


def test_added_pod_with_a_nominated_node_is_nominated(snap):
    q = SchedulingQueue()
    p = info(snap, "a")
    p.pod.status.nominated_node_name = "n1"
    q.add(p, 0.0)
    assert q.nominator.node_of("default/a") == "n1"
    q.delete("default/a")
    assert q.nominator.node_of("default/a") is None and q.pop(0.0) is None


def test_align_to_window():
    assert align_to_window(1.7) == 1.0 and align_to_window(2.0) == 2.0
    assert align_to_window(59.0, 30.0) == 30.0


def test_duplicate_add_is_refused(snap):
    q = SchedulingQueue()
    p = info(snap, "a")
    q.add(p, 0.0)
    with pytest.raises(ValueError):
        q.add(p, 0.0)


@given(st.floats(0, 1000, allow_nan=False), st.integers(1, 12), st.floats(0, 30))
def test_backoff_window_property(failed_at, attempts, later):
    snap = NodeSnapshot([make_node("n1")])
    q = SchedulingQueue()
    qp = q.add(info(snap, "a"), 0.0)
    for _ in range(attempts):
        qp = q.pop(1e9)
        q.add_unschedulable(qp, failed_at, frozenset(), "error")
    expiry = float(int(failed_at + min(2 ** (attempts - 1), 10)))  # floor, whole seconds
    assert q.backoff_expiration(qp) == expiry
    now = failed_at + later
    backing_off = q.is_backing_off(qp, now)
    assert backing_off == (expiry >= float(int(now)))
    assert (q.pop(now) is qp) == (not backing_off)


# ----------------------------------------------------------- the node-event queueing hints
# kube v1.35's hint functions of the filter plugins (their test tables' cases, in our terms):
# True is Queue, False is QueueSkip. A NodeUpdate carries (old node, new node).

def _hint(name: str, pod, event: str, other, args=None) -> bool:
    from tests.scheduler_helpers import make_cluster, plugin_on

    plugin, snap = plugin_on(name, make_cluster([make_node("seed")]), args)
    return plugin.queueing_hint(snap.pod_info(pod), event, other)


SELECTED = make_pod("p", cpu="1", nodeSelector={"disk": "ssd"})


@pytest.mark.parametrize("event, other, want", [
    ("NodeAdd", make_node("n", labels={"disk": "ssd"}), True),
    ("NodeAdd", make_node("n", labels={"disk": "hdd"}), False),
    ("NodeUpdate", (make_node("n", labels={"disk": "hdd"}),
                    make_node("n", labels={"disk": "ssd"})), True),  # unmatched -> matched
    ("NodeUpdate", (make_node("n", labels={"disk": "ssd"}),
                    make_node("n", labels={"disk": "ssd", "x": "y"})), False),  # was matched
    ("NodeUpdate", (make_node("n", labels={"disk": "hdd"}),
                    make_node("n", labels={"disk": "nvme"})), False),  # still unmatched
    ("NodeUpdate", make_node("n", labels={"disk": "ssd"}), True),  # old node unknown: queue
])
def test_node_affinity_hint(event, other, want):
    assert _hint("NodeAffinity", SELECTED, event, other) is want


def test_node_affinity_hint_honours_added_affinity():
    from schedbench.config import NodeAffinityArgs

    args = NodeAffinityArgs(added_affinity={"requiredDuringSchedulingIgnoredDuringExecution": {
        "nodeSelectorTerms": [{"matchExpressions": [
            {"key": "pool", "operator": "In", "values": ["a"]}]}]}})
    pod = make_pod("p", cpu="1")
    assert _hint("NodeAffinity", pod, "NodeAdd", make_node("n", labels={"pool": "a"}), args)
    assert not _hint("NodeAffinity", pod, "NodeAdd", make_node("n", labels={"pool": "b"}), args)


NO_SCHEDULE = [{"key": "k", "value": "v", "effect": "NoSchedule"}]
PREFER = [{"key": "k", "value": "v", "effect": "PreferNoSchedule"}]
TOLERANT = make_pod("p", cpu="1", tolerations=[{"key": "k", "operator": "Equal", "value": "v",
                                                 "effect": "NoSchedule"}])


@pytest.mark.parametrize("pod, event, other, want", [
    (make_pod("p"), "NodeAdd", make_node("n"), True),
    (make_pod("p"), "NodeAdd", make_node("n", taints=NO_SCHEDULE), False),
    (make_pod("p"), "NodeAdd", make_node("n", taints=PREFER), True),  # not a filter taint
    (TOLERANT, "NodeAdd", make_node("n", taints=NO_SCHEDULE), True),
    (make_pod("p"), "NodeUpdate", (make_node("n", taints=NO_SCHEDULE), make_node("n")), True),
    (make_pod("p"), "NodeUpdate", (make_node("n"), make_node("n", labels={"a": "b"})), False),
    (make_pod("p"), "NodeUpdate", (make_node("n"), make_node("n", taints=NO_SCHEDULE)), False),
])
def test_taint_toleration_hint(pod, event, other, want):
    assert _hint("TaintToleration", pod, event, other) is want


@pytest.mark.parametrize("event, other, want", [
    ("NodeAdd", make_node("n"), True),
    ("NodeAdd", make_node("n", unschedulable=True), False),
    ("NodeUpdate", (make_node("n", unschedulable=True), make_node("n")), True),  # uncordoned
    ("NodeUpdate", (make_node("n"), make_node("n", labels={"a": "b"})), False),
    ("NodeUpdate", (make_node("n"), make_node("n", unschedulable=True)), False),
])
def test_node_unschedulable_hint(event, other, want):
    assert _hint("NodeUnschedulable", make_pod("p"), event, other) is want


BIG = make_pod("p", cpu="3", memory="1Gi")


@pytest.mark.parametrize("event, other, want", [
    ("NodeAdd", make_node("n", cpu="4"), True),
    ("NodeAdd", make_node("n", cpu="2"), False),                 # never fits
    ("NodeAdd", make_node("n", cpu="4", pods=0), False),         # no pod slot
    ("NodeUpdate", (make_node("n", cpu="2"), make_node("n", cpu="4")), True),
    ("NodeUpdate", (make_node("n", cpu="4"), make_node("n", cpu="4", labels={"a": "b"})),
     False),                                                     # nothing grew
    ("NodeUpdate", (make_node("n", cpu="4"), make_node("n", cpu="4", memory="32Gi")), True),
    ("NodeUpdate", (make_node("n", cpu="4", pods=3), make_node("n", cpu="4", pods=5)), True),
    ("NodeUpdate", (make_node("n", cpu="2"), make_node("n", cpu="2", memory="64Gi")), False),
])
def test_node_resources_fit_hint(event, other, want):
    assert _hint("NodeResourcesFit", BIG, event, other) is want


def test_node_resources_fit_hint_on_pod_deletion():
    from tests.scheduler_helpers import make_cluster, plugin_on

    plugin, snap = plugin_on("NodeResourcesFit", make_cluster([make_node("n")]))
    bound = snap.pod_info(make_pod("b", cpu="1", node="n"))
    snap.add_pod(bound, 0)
    assert plugin.queueing_hint(snap.pod_info(BIG), "AssignedPodDelete", bound)
    unbound = snap.pod_info(make_pod("u", cpu="1"))
    assert not plugin.queueing_hint(snap.pod_info(BIG), "AssignedPodDelete", unbound)


def _with_port(name: str, port: int, host_ip: str = "", node: str = ""):
    c = {"name": "c", "image": "img",
         "ports": [{"containerPort": 80, "hostPort": port, **({"hostIP": host_ip} if host_ip
                                                            else {})}]}
    return make_pod(name, containers=[c], node=node)


@pytest.mark.parametrize("deleted, want", [
    (_with_port("d", 8080, node="n"), True),                    # frees the wanted port
    (_with_port("d", 9090, node="n"), False),                   # another port
    (make_pod("d", node="n"), False),                           # no host port
    (_with_port("d", 8080, host_ip="10.0.0.1", node="n"), True),  # 0.0.0.0 overlaps any IP
    (_with_port("d", 8080), False),                             # was never bound
])
def test_node_ports_hint(deleted, want):
    from tests.scheduler_helpers import make_cluster, plugin_on

    plugin, snap = plugin_on("NodePorts", make_cluster([make_node("n")]))
    pod = snap.pod_info(_with_port("p", 8080))
    other = snap.pod_info(deleted)
    if deleted.spec.node_name:
        snap.add_pod(other, 0)
    assert plugin.queueing_hint(pod, "AssignedPodDelete", other) is want


def test_node_name_hint():
    pod = make_pod("p", nodeName="wanted")
    assert _hint("NodeName", pod, "NodeAdd", make_node("wanted"))
    assert not _hint("NodeName", pod, "NodeAdd", make_node("other"))
