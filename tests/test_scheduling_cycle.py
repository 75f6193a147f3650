"""The scheduling cycle (schedule_one.go): numFeasibleNodesToFind and the rotating start index
against a sequential model, the nominated node first, one feasible node without scoring,
FitError messages, determinism and tie-breaking, and the run loop's virtual clock."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from schedbench.config import parse_scheduler_config
from schedbench.scheduler.framework import Code, Status
from schedbench.scheduler.scheduler import (NodeStatuses, Scheduler, fit_error_message,
                                            num_feasible_nodes_to_find)
from tests.scheduler_helpers import make_cluster, make_node, make_pod

BASE = ("PrioritySort", "NodeResourcesFit", "DefaultBinder", "DefaultPreemption")


def config(plugins=BASE, percentage=None, no_score=False):
    profile = {"schedulerName": "default-scheduler",
               "plugins": {"multiPoint": {"enabled": [{"name": n} for n in plugins],
                                          "disabled": [{"name": "*"}]}}}
    if no_score:
        profile["plugins"]["score"] = {"disabled": [{"name": "*"}]}
    doc = {"apiVersion": "kubescheduler.config.k8s.io/v1", "kind": "KubeSchedulerConfiguration",
           "profiles": [profile]}
    if percentage is not None:
        doc["percentageOfNodesToScore"] = percentage
    return parse_scheduler_config(doc)


def scheduler(nodes, pods=(), plugins=BASE, seed=0, **kw) -> Scheduler:
    cfg = config(plugins, **kw)
    return Scheduler(make_cluster(nodes, list(pods)), cfg.profile(), config=cfg, seed=seed)


# ------------------------------------------------------------- numFeasibleNodesToFind


@pytest.mark.parametrize("percentage, nodes, expected", [
    # kube's TestNumFeasibleNodesToFind
    (0, 10, 10), (40, 10, 10), (0, 1000, 420), (40, 1000, 400), (0, 6000, 300),
    (40, 6000, 2400),
    # edges: below 100 nodes all; never fewer than 100; at least 5% when adaptive
    (0, 99, 99), (1, 100, 100), (10, 300, 100), (100, 300, 300), (0, 5625, 281),
    (0, 20000, 1000),
])
def test_num_feasible_nodes_to_find(percentage, nodes, expected):
    assert num_feasible_nodes_to_find(percentage, nodes) == expected


# ------------------------------------------------- rotation against a sequential model


def run_against_model(n_nodes, percentage, pods, no_score=False, small_every=3):
    cpus = ["500m" if i % small_every == 0 else "8" for i in range(n_nodes)]
    nodes = [make_node(f"n{i:03d}", cpu=cpus[i]) for i in range(n_nodes)]
    s = scheduler(nodes, percentage=percentage, no_score=no_score)
    for i in range(pods):
        s.enqueue(make_pod(f"p{i}", cpu="1"))
    results = s.run()
    free = [500 if i % small_every == 0 else 8000 for i in range(n_nodes)]
    to_find = 1 if no_score else num_feasible_nodes_to_find(percentage, n_nodes)
    start = 0
    for r in results:
        order = [(start + i) % n_nodes for i in range(n_nodes)]
        feasible, processed = [], 0
        for k in order:
            processed += 1
            if free[k] >= 1000:
                feasible.append(k)
                if len(feasible) == to_find:
                    break
        assert (r.evaluated_nodes, r.feasible_nodes) == (processed, len(feasible))
        chosen = int(r.node[1:])
        assert chosen in feasible
        free[chosen] -= 1000
        start = (start + processed) % n_nodes
    assert s.next_start_node_index == start
    return results


def test_rotation_with_a_fixed_percentage():
    results = run_against_model(300, 10, 12)  # 10% of 300 < 100: 100 feasible nodes
    assert {r.feasible_nodes for r in results} == {100}


def test_rotation_with_the_adaptive_percentage():
    results = run_against_model(250, 0, 8)    # 50% - 2% = 48%: 120 feasible nodes
    assert {r.feasible_nodes for r in results} == {120}


def test_without_score_plugins_the_first_feasible_node_is_taken():
    results = run_against_model(40, 0, 10, no_score=True)
    assert {r.feasible_nodes for r in results} == {1}


@given(st.integers(100, 260), st.sampled_from([0, 5, 30, 50, 100]), st.integers(2, 7),
       st.integers(1, 6))
def test_rotation_property(n_nodes, percentage, small_every, pods):
    run_against_model(n_nodes, percentage, pods, small_every=small_every)


# -------------------------------------------------------------------- nominated node


def test_nominated_node_is_tried_first_and_taken_without_scoring():
    s = scheduler([make_node("a", cpu="64"), make_node("b", cpu="2")])
    p = make_pod("p", cpu="1")
    p.status.nominated_node_name = "b"  # LeastAllocated would prefer "a"
    s.enqueue(p)
    r = s.schedule_one()
    assert (r.node, r.evaluated_nodes, r.feasible_nodes) == ("b", 1, 1)
    assert s.next_start_node_index == 0  # the nominated path does not rotate
    assert p.status.nominated_node_name == ""


def test_a_failing_nominated_node_stays_in_the_diagnosis():
    s = scheduler([make_node("a", cpu="4"), make_node("b", cpu="1"), make_node("c", cpu="4")],
                  [make_pod("x", cpu="1", node="b", priority=100)])
    p = make_pod("p", cpu="1")
    p.status.nominated_node_name = "b"
    s.enqueue(p)
    r = s.schedule_one()
    assert r.node in ("a", "c")
    assert (r.evaluated_nodes, r.feasible_nodes) == (3, 2)


def test_one_feasible_node_is_taken_without_scoring(monkeypatch):
    s = scheduler([make_node("a", cpu="1"), make_node("b", cpu="4"), make_node("c", cpu="1")])

    def no_scoring(*args, **kwargs):
        raise AssertionError("scored")

    monkeypatch.setattr(s.framework, "run_scores", no_scoring)
    s.enqueue(make_pod("p", cpu="2"))
    r = s.schedule_one()
    assert (r.node, r.evaluated_nodes, r.feasible_nodes) == ("b", 3, 1)


# ------------------------------------------------------------------------ FitError


def test_fit_error_histogram_is_sorted_as_strings():
    nodes = [make_node(f"cpu{i}", cpu="1") for i in range(10)] + \
        [make_node(f"full{i}", cpu="8", pods=0) for i in range(2)]
    s = scheduler(nodes)
    s.enqueue(make_pod("p", cpu="2"))
    r = s.schedule_one()
    assert r.code == Code.UNSCHEDULABLE
    # the 1-CPU nodes can never hold a 2-CPU pod (UnschedulableAndUnresolvable since v1.34):
    # preemption does not consider them
    assert r.message == ("0/12 nodes are available: 10 Insufficient cpu, 2 Too many pods. "
                         "preemption: 0/12 nodes are available: 10 Preemption is not helpful "
                         "for scheduling, 2 No preemption victims found for incoming pod.")
    assert s.queue.get("default/p").unschedulable_plugins == {"NodeResourcesFit"}


def test_fit_error_counts_every_reason_of_a_node_and_has_no_post_filter_part_without_one():
    s = scheduler([make_node("a", cpu="1", memory="1Gi", pods=0), make_node("b", cpu="1")],
                  plugins=("PrioritySort", "NodeResourcesFit", "DefaultBinder"))
    s.enqueue(make_pod("p", cpu="2", memory="2Gi"))
    r = s.schedule_one()
    assert r.message == ("0/2 nodes are available: 1 Insufficient memory, 1 Too many pods, "
                         "2 Insufficient cpu.")


def test_prefilter_rejection_message(monkeypatch):
    s = scheduler([make_node("a"), make_node("b")])
    fit = s.framework.instances["NodeResourcesFit"]
    monkeypatch.setattr(fit, "pre_filter", lambda state, pod, nodes: (
        Status.unschedulable("no way", resolvable=False), None))
    s.enqueue(make_pod("p", cpu="1"))
    r = s.schedule_one()
    assert r.message == ("0/2 nodes are available: no way. preemption: 0/2 nodes are "
                         "available: 2 Preemption is not helpful for scheduling.")
    assert s.queue.get("default/p").unschedulable_plugins == {"NodeResourcesFit"}


def test_fit_error_message_function():
    assert fit_error_message(3, "", [["b"], ["a", "b"]], ["c"], 1, "post") == \
        "0/3 nodes are available: 1 a, 1 c, 2 b. post"
    assert fit_error_message(3, "pre", [["x"]], ["c"], 2, "") == "0/3 nodes are available: pre."
    assert fit_error_message(2, "", [], [], 2, "") == "0/2 nodes are available:"


def test_no_nodes_at_all():
    s = scheduler([])
    s.enqueue(make_pod("p", cpu="1"))
    results = s.run()
    assert len(results) == 1
    r = results[0]
    assert (r.code, r.message) == (Code.UNSCHEDULABLE_AND_UNRESOLVABLE,
                                   "no nodes available to schedule pods")
    assert s.queue.where("default/p") == "error_backoff"
    assert s.outcomes()["default/p"] == {"status": "pending",
                                         "reason": "no nodes available to schedule pods"}


# --------------------------------------------------------- determinism, tie-breaking


def placements(seed, n_pods=8):
    s = scheduler([make_node(f"n{i}", cpu="4") for i in range(4)], seed=seed)
    for i in range(n_pods):
        s.enqueue(make_pod(f"p{i}", cpu="1"))
    s.run()
    return {k: o["node"] for k, o in s.outcomes().items()}


def test_same_seed_same_placements():
    for seed in (0, 1, 7):
        assert placements(seed) == placements(seed)


def test_different_seeds_may_break_ties_differently():
    assert len({tuple(sorted(placements(seed).items())) for seed in range(10)}) > 1


def test_every_tied_node_is_chosen_for_some_seed():
    chosen = {placements(seed, n_pods=1)["default/p0"] for seed in range(200)}
    assert chosen == {"n0", "n1", "n2", "n3"}


def test_select_host_is_uniform_over_ties_only():
    s = scheduler([make_node("a")], seed=3)
    nodes = np.array([10, 11, 12, 13], np.int64)
    totals = np.array([5, 9, 9, 1], np.int64)
    assert {s.select_host(nodes, totals) for _ in range(100)} == {11, 12}


# ------------------------------------------------------------------ the run loop


def test_parked_pod_is_retried_at_the_flush_after_the_cluster_changed():
    s = scheduler([make_node("a", cpu="1"), make_node("b", cpu="4")],
                  [make_pod("x", cpu="1", node="a", priority=100)])
    s.enqueue(make_pod("big", cpu="8"))     # fits nowhere, parked (NodeResourcesFit)
    s.enqueue(make_pod("small", cpu="1", priority=-1))
    s.run()
    attempts = [r for r in s.results if r.pod == "default/big"]
    # "small" bound after "big" failed (an AssignedPodAdd, which NodeResourcesFit does not
    # register): only the 5-minute flush retries "big", once, then nothing changes any more
    assert len(attempts) == 2 and attempts[1].time == 330.0
    assert s.outcomes()["default/small"] == {"status": "scheduled", "node": "b"}


def test_run_stops_when_nothing_can_change():
    s = scheduler([make_node("a", cpu="1")])
    s.enqueue(make_pod("big", cpu="8"))
    results = s.run()
    assert len(results) == 1 and s.clock == 0.0
    assert s.queue.where("default/big") == "unschedulable"


def test_deleting_pod_is_skipped():
    s = scheduler([make_node("a")])
    p = make_pod("p", cpu="1")
    p.metadata.deletion_timestamp = "2024-01-01T00:00:00Z"
    s.enqueue(p)
    r = s.schedule_one()
    assert r.code == Code.SKIP and not r.scheduled and s.queue.pending() == []


# ------------------------------------------------------------ nominated pods in Filter


@pytest.fixture
def needs_company():
    """A filter that passes a node only when a pod labelled app=x runs there (a stand-in for
    required pod affinity, which is more likely to fail without the nominated pods)."""
    from schedbench.config import register_plugin, unregister_plugin
    from schedbench.scheduler.framework import PLUGINS, Plugin, register

    class NeedsCompany(Plugin):
        name = "NeedsCompany"
        events = frozenset({"AssignedPodAdd"})
        prefilter_reads_pods = True

        def filter(self, state, pod, nodes):
            snap = self.handle.snapshot
            return np.array([0 if any(p.labels.get("app") == "x"
                                      for p in snap.pods_on_node[n].values()) else 2
                             for n in nodes], np.int8)

        def filter_reasons(self, state, pod, node):
            return ["node(s) had no company"]

    register_plugin("NeedsCompany", ["Filter"])
    register(NeedsCompany)
    yield ("PrioritySort", "NodeResourcesFit", "NeedsCompany", "DefaultBinder")
    unregister_plugin("NeedsCompany")
    PLUGINS.pop("NeedsCompany")


def test_pod_must_fit_without_the_nominated_pods_too(needs_company):
    s = scheduler([make_node("n1", cpu="4")], plugins=needs_company)
    s.queue.nominator.add(s.snapshot.pod_info(make_pod("n", cpu="1", priority=10,
                                                       labels={"app": "x"})), "n1")
    s.enqueue(make_pod("p", cpu="1"))
    r = s.schedule_one()
    # with "n" added the node passes, without it NeedsCompany rejects it: rejected
    assert r.message == "0/1 nodes are available: 1 node(s) had no company."


def test_the_verdict_with_nominated_pods_added_comes_first(needs_company):
    s = scheduler([make_node("n1", cpu="1")], plugins=needs_company)
    s.queue.nominator.add(s.snapshot.pod_info(make_pod("n", cpu="1", priority=10,
                                                       labels={"app": "x"})), "n1")
    s.enqueue(make_pod("p", cpu="1"))
    r = s.schedule_one()
    assert r.message == "0/1 nodes are available: 1 Insufficient cpu."
    # a pod of higher priority ignores the nomination: only the plain pass counts
    s.enqueue(make_pod("q", cpu="1", priority=20))
    assert s.schedule_one().message == "0/1 nodes are available: 1 node(s) had no company."


def test_nominated_pods_are_added_only_on_their_node(needs_company):
    s = scheduler([make_node("n1", cpu="1"), make_node("n2", cpu="1")],
                  [make_pod("c1", cpu="0", node="n1", labels={"app": "x"}),
                   make_pod("c2", cpu="0", node="n2", labels={"app": "x"})],
                  plugins=needs_company)
    s.queue.nominator.add(s.snapshot.pod_info(make_pod("n", cpu="1", priority=10)), "n1")
    s.enqueue(make_pod("p", cpu="1"))
    r = s.schedule_one()
    assert r.node == "n2" and (r.evaluated_nodes, r.feasible_nodes) == (2, 1)
    assert list(s.snapshot.pods_on_node[0]) == ["default/c1"]


def test_prefilter_error_keeps_the_previous_plugins_and_backs_off(monkeypatch):
    s = scheduler([make_node("a")])
    fit = s.framework.instances["NodeResourcesFit"]
    monkeypatch.setattr(fit, "pre_filter", lambda state, pod, nodes: (
        Status(Code.ERROR, ("disk on fire",)), None))
    s.enqueue(make_pod("p", cpu="1"))
    r = s.schedule_one()
    assert (r.code, r.message) == (Code.ERROR,
                                   'running PreFilter plugin "NodeResourcesFit": disk on fire')
    qp = s.queue.get("default/p")
    assert s.queue.where("default/p") == "error_backoff" and qp.consecutive_errors == 1


_STATUSES = [Status(Code.UNSCHEDULABLE, ("Insufficient cpu",), "NodeResourcesFit"),
             Status(Code.UNSCHEDULABLE_AND_UNRESOLVABLE, ("node(s) didn't match",),
                    "NodeAffinity"),
             Status(Code.UNSCHEDULABLE, ("Insufficient cpu", "Too many pods"),
                    "NodeResourcesFit")]


@given(st.lists(st.tuples(st.integers(0, 30), st.integers(0, 2)), max_size=8),
       st.lists(st.integers(0, 2), max_size=40), st.data())
def test_node_statuses_read_like_the_dict_they_replace(before, which, data):
    """Entries set one at a time, then a bulk (FitError) over distinct nodes, then more one
    at a time: lookups, length, order, reason counts and codes equal a plain dict's."""
    nodes = data.draw(st.lists(st.integers(0, 40), min_size=len(which), max_size=len(which),
                               unique=True))
    after = data.draw(st.lists(st.tuples(st.integers(0, 45), st.integers(0, 2)), max_size=4))
    got, want = NodeStatuses(), {}
    for node, k in before:
        got[node] = want[node] = _STATUSES[k]
    got.set_many(np.array(nodes, np.int64), np.array(which, np.int64), list(_STATUSES))
    for node, k in zip(nodes, which):
        want.pop(node, None)
    for node, k in zip(nodes, which):
        want[node] = _STATUSES[k]
    for node, k in after:
        got[node] = want[node] = _STATUSES[k]
    assert len(got) == len(want) and bool(got) == bool(want)
    assert sorted(got.items()) == sorted(want.items())
    assert set(got) == set(want)
    for node in range(50):
        assert (node in got) == (node in want) == (np.int64(node) in got)
        assert got.get(node) == want.get(node) == got.get(np.int64(node))
    tally = {}
    for st_ in want.values():
        tally[st_.reasons] = tally.get(st_.reasons, 0) + 1
    assert dict(got.reason_tally()) == tally
    probe = np.arange(50)
    absent = int(Code.UNSCHEDULABLE_AND_UNRESOLVABLE)
    assert got.codes_of(probe, absent).tolist() == [
        int(want[n].code) if n in want else absent for n in range(50)]
