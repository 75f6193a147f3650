"""DefaultPreemption (PostFilter), the preemption evaluator, RunPostFilterPlugins, nominated
pods, and preemption end to end through the Scheduler.

The kube cases (default_preemption_test.go: TestPostFilter, TestDryRunPreemption,
TestSelectBestCandidate, TestPodEligibleToPreemptOthers) are ported where they fit the model
(no PodDisruptionBudgets, no extenders): same clusters, same expectations. The property test
compares the chosen node, the victims and the messages with the plain reference in
``tests/reference/preemption.py``.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import event, given
from hypothesis import strategies as st

from schedbench.config import parse_scheduler_config
from schedbench.model.objects import ObjectMeta, PodCondition, PriorityClass
from schedbench.scheduler.framework import SKIP_FILTER_KEY, Code, CycleState, Status
from schedbench.scheduler.preemption import (Candidate, importance_key,
                                             pick_one_node_for_preemption)
from schedbench.scheduler.scheduler import Diagnosis, PostFilterResult, Scheduler
from tests.reference import preemption as ref
from tests.scheduler_helpers import make_cluster, make_node, make_pod

NEG, LOW, MID, HIGH, VERY_HIGH = -100, 0, 100, 1000, 10000
SMALL, MEDIUM, LARGE, VERY_LARGE = ("100m", "100"), ("200m", "200"), ("300m", "300"), \
    ("500m", "500")
BASE = ("PrioritySort", "NodeResourcesFit", "DefaultBinder", "DefaultPreemption")


def config(plugins=BASE, preemption_args: dict | None = None, percentage: int | None = None):
    profile = {"schedulerName": "default-scheduler",
               "plugins": {"multiPoint": {"enabled": [{"name": n} for n in plugins],
                                          "disabled": [{"name": "*"}]}}}
    if preemption_args:
        profile["pluginConfig"] = [{"name": "DefaultPreemption", "args": preemption_args}]
    doc = {"apiVersion": "kubescheduler.config.k8s.io/v1", "kind": "KubeSchedulerConfiguration",
           "profiles": [profile]}
    if percentage is not None:
        doc["percentageOfNodesToScore"] = percentage
    return parse_scheduler_config(doc)


def scheduler(nodes, pods=(), plugins=BASE, seed=0, **kw) -> Scheduler:
    cfg = config(plugins, **kw)
    return Scheduler(make_cluster(nodes, list(pods)), cfg.profile(), config=cfg, seed=seed)


def pod(name, res=None, priority=None, node="", start=None, **spec):
    cpu, mem = res if res else (None, None)
    if priority is not None:
        spec["priority"] = priority
    p = make_pod(name, cpu=cpu, memory=mem, node=node, **spec)
    if start is not None:
        p.status.start_time = f"1970-01-01T00:00:{start:02d}Z"
    return p


def node(name, res=VERY_LARGE, pods=110, labels=None):
    return make_node(name, cpu=res[0], memory=res[1], pods=pods, labels=labels)


def one_pod_node(name):
    return make_node(name, cpu="0", memory="0", pods=1)


def prepared(s: Scheduler, p) -> tuple[CycleState, object]:
    """A cycle state with PreFilter run, as the scheduling cycle leaves it for PostFilter."""
    info = s.snapshot.pod_info(p)
    state = CycleState()
    pre = s.framework.run_pre_filter(state, info, s.snapshot.evaluation_order())
    state[SKIP_FILTER_KEY] = pre.skipped
    return state, info


def post_filter(s: Scheduler, p, statuses: dict[str, Code]) -> PostFilterResult:
    """The DefaultPreemption PostFilter with the given filter statuses (absent nodes:
    kube's default UnschedulableAndUnresolvable)."""
    state, info = prepared(s, p)
    d = Diagnosis(num_all_nodes=int(s.snapshot.evaluation_order().size))
    for name, code in statuses.items():
        d.node_status[s.snapshot.node_index[name]] = Status(code)
    return s.framework.instances["DefaultPreemption"].post_filter(state, info, d)


def names(s: Scheduler, victims) -> list[str]:
    return [v.name for v in victims]


# ------------------------------------------------------------------ kube: TestPostFilter

U, UU = Code.UNSCHEDULABLE, Code.UNSCHEDULABLE_AND_UNRESOLVABLE


def test_higher_priority_pod_can_be_made_schedulable():
    s = scheduler([one_pod_node("node1")], [pod("p1", node="node1")])
    r = post_filter(s, pod("p", priority=HIGH), {"node1": U})
    assert r.status.is_success and r.mode == "override"
    assert s.snapshot.node_names[r.nominated_node] == "node1"
    assert names(s, r.victims) == ["p1"]


@pytest.mark.parametrize("statuses, message", [
    ({"node1": U}, "1 No preemption victims found for incoming pod."),
])
def test_tied_priority_is_still_unschedulable(statuses, message):
    s = scheduler([one_pod_node("node1")], [pod("p1", node="node1")])
    r = post_filter(s, pod("p"), statuses)
    assert r.status.code == U and r.mode == "override" and r.nominated_node == -1
    assert r.status.message() == f"preemption: 0/1 nodes are available: {message}"


@pytest.mark.parametrize("statuses", [{"node1": UU}, {}])
def test_preemption_respects_the_filter_statuses(statuses):
    # an UnschedulableAndUnresolvable node, or an absent one (the default status), is skipped
    s = scheduler([one_pod_node("node1")], [pod("p1", node="node1")])
    r = post_filter(s, pod("p", priority=HIGH), statuses)
    assert r.status.code == U and r.nominated_node == -1 and r.mode == "override"
    assert r.status.message() == ("preemption: 0/1 nodes are available: 1 Preemption is not "
                                  "helpful for scheduling.")


def test_pod_can_be_made_schedulable_on_one_node():
    s = scheduler([one_pod_node("node1"), one_pod_node("node2")],
                  [pod("p1", priority=HIGH, node="node1"), pod("p2", priority=LOW, node="node2")])
    r = post_filter(s, pod("p", priority=MID), {"node1": U, "node2": U})
    assert r.status.is_success and s.snapshot.node_names[r.nominated_node] == "node2"


def test_pod_can_be_made_schedulable_on_min_highest_priority_node():
    s = scheduler([one_pod_node("node1"), one_pod_node("node2")],
                  [pod("p1", priority=HIGH, node="node1"), pod("p2", priority=LOW, node="node1"),
                   pod("p3", priority=MID, node="node2")])
    r = post_filter(s, pod("p", priority=VERY_HIGH), {"node1": U, "node2": U})
    assert r.status.is_success and s.snapshot.node_names[r.nominated_node] == "node2"
    assert names(s, r.victims) == ["p3"]


NODE_RES = ("200m", "400")


def test_no_candidate_when_resources_are_short_even_without_the_low_priority_pods():
    s = scheduler([node("node1", NODE_RES), node("node2", NODE_RES)],
                  [pod("p1", node="node1"), pod("p2", node="node2")])
    r = post_filter(s, pod("p", LARGE, priority=HIGH), {"node1": U, "node2": U})
    assert r.status.code == U and r.nominated_node == -1 and r.mode == "override"
    assert r.status.message() == "preemption: 0/2 nodes are available: 2 Insufficient cpu."


def test_no_candidate_with_mixed_reasons():
    s = scheduler([one_pod_node("node1"), node("node2", NODE_RES), one_pod_node("node3")],
                  [pod("p1", priority=HIGH, node="node1"), pod("p2", node="node2"),
                   pod("p3", priority=HIGH, node="node3")])
    r = post_filter(s, pod("p", LARGE, priority=HIGH), {"node1": U, "node2": U, "node3": U})
    assert r.status.message() == ("preemption: 0/3 nodes are available: 1 Insufficient cpu, "
                                  "2 No preemption victims found for incoming pod.")


def test_no_candidate_with_unresolvable_and_absent_nodes():
    s = scheduler([node(f"node{i}", NODE_RES) for i in (1, 2, 3, 4)],
                  [pod("p1", node="node1"), pod("p2", node="node2")])
    r = post_filter(s, pod("p", LARGE, priority=HIGH), {"node1": U, "node2": U, "node4": UU})
    assert r.status.message() == ("preemption: 0/4 nodes are available: 2 Insufficient cpu, "
                                  "2 Preemption is not helpful for scheduling.")


# ---------------------------------------------------------- kube: TestDryRunPreemption


def dry_run(s: Scheduler, p, offset: int | None = None):
    """DryRunPreemption over every node sorted by name (as kube's test does), with the offset
    given or drawn; candidates as {node: sorted victim names}."""
    state, info = prepared(s, p)
    plugin = s.framework.instances["DefaultPreemption"]
    potential = sorted((int(n) for n in s.snapshot.evaluation_order()),
                       key=lambda n: s.snapshot.node_names[n])
    drawn, num = plugin.get_offset_and_num_candidates(len(potential))
    got, statuses, errors = plugin.evaluator.dry_run_preemption(
        state, info, potential, drawn if offset is None else offset, num)
    assert not errors
    return {s.snapshot.node_names[c.node]: sorted(v.name for v in c.victims) for c in got}


def dry_nodes(names_=("node1", "node2")):
    return [node(n) for n in names_]


def test_dry_run_fits_on_both_nodes_when_lower_priority_pods_are_preempted():
    s = scheduler(dry_nodes(), [pod("p1", LARGE, MID, "node1"), pod("p2", LARGE, MID, "node2")])
    assert dry_run(s, pod("p", LARGE, HIGH)) == {"node1": ["p1"], "node2": ["p2"]}


def test_dry_run_no_preemption_of_higher_priority_pods():
    s = scheduler(dry_nodes(), [pod("p1", LARGE, MID, "node1"), pod("p2", LARGE, MID, "node2")])
    assert dry_run(s, pod("p", LARGE, LOW)) == {}


def test_dry_run_medium_priority_pod_preempted_small_low_priority_one_stays():
    s = scheduler(dry_nodes(), [pod("p1.1", SMALL, LOW, "node1"), pod("p1.2", LARGE, MID, "node1"),
                                pod("p2", LARGE, MID, "node2")])
    assert dry_run(s, pod("p", LARGE, HIGH)) == {"node1": ["p1.2"], "node2": ["p2"]}


def test_dry_run_mixed_priority_pods_are_preempted():
    s = scheduler(dry_nodes(), [
        pod("p1.1", SMALL, MID, "node1"), pod("p1.2", SMALL, LOW, "node1"),
        pod("p1.3", MEDIUM, MID, "node1"), pod("p1.4", SMALL, HIGH, "node1"),
        pod("p2", LARGE, HIGH, "node2")])
    assert dry_run(s, pod("p", LARGE, HIGH)) == {"node1": ["p1.2", "p1.3"]}


def test_dry_run_picks_later_start_time_when_priorities_are_equal():
    s = scheduler(dry_nodes(), [
        pod("p1.1", SMALL, LOW, "node1", start=5), pod("p1.2", SMALL, LOW, "node1", start=4),
        pod("p1.3", MEDIUM, MID, "node1", start=3), pod("p1.4", SMALL, HIGH, "node1", start=2),
        pod("p2", LARGE, HIGH, "node2", start=1)])
    assert dry_run(s, pod("p", LARGE, HIGH)) == {"node1": ["p1.1", "p1.3"]}


FIVE = ("node1", "node2", "node3", "node4", "node5")
LIMIT_TWO = {"minCandidateNodesPercentage": 40, "minCandidateNodesAbsolute": 1}


def test_dry_run_all_nodes_possible_but_args_limit_to_two():
    s = scheduler(dry_nodes(FIVE), [pod(f"p{i}", LARGE, MID, f"node{i}") for i in range(1, 6)],
                  preemption_args=LIMIT_TWO)
    assert dry_run(s, pod("p", LARGE, HIGH), offset=4) == {"node1": ["p1"], "node5": ["p5"]}


def test_dry_run_some_nodes_not_possible_args_limit_to_two():
    prios = {1: MID, 2: VERY_HIGH, 3: MID, 4: MID, 5: VERY_HIGH}
    s = scheduler(dry_nodes(FIVE), [pod(f"p{i}", LARGE, prios[i], f"node{i}")
                                    for i in range(1, 6)], preemption_args=LIMIT_TWO)
    # offset 4: node5 (no), node1 (yes), node2 (no), node3 (yes)
    assert dry_run(s, pod("p", LARGE, HIGH), offset=4) == {"node1": ["p1"], "node3": ["p3"]}


@pytest.mark.parametrize("offset, expected", [(4, {"node1": ["p1"], "node5": ["p5"]}),
                                              (1, {"node2": ["p2"], "node3": ["p3"]}),
                                              (3, {"node4": ["p4"], "node5": ["p5"]})])
def test_dry_run_offset_wraps_around(offset, expected):
    s = scheduler(dry_nodes(FIVE), [pod(f"p{i}", LARGE, MID, f"node{i}") for i in range(1, 6)],
                  preemption_args=LIMIT_TWO)
    assert dry_run(s, pod("tp", LARGE, HIGH), offset=offset) == expected


def test_dry_run_pod_with_anti_affinity_is_preempted():
    anti = {"podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [
        {"labelSelector": {"matchExpressions": [{"key": "foo", "operator": "Exists"}]},
         "topologyKey": "hostname"}]}}
    nodes = [node(n, labels={"hostname": n}) for n in ("node1", "node2")]
    s = scheduler(nodes, [pod("p1.1", SMALL, LOW, "node1", labels={"foo": ""}, affinity=anti),
                          pod("p1.2", SMALL, MID, "node1"), pod("p1.3", SMALL, HIGH, "node1"),
                          pod("p2", SMALL, HIGH, "node2")],
                  plugins=BASE + ("InterPodAffinity",))
    assert dry_run(s, pod("p", SMALL, HIGH, labels={"foo": ""})) == {"node1": ["p1.1"]}


def test_dry_run_resolves_pod_topology_spread():
    sel = {"matchExpressions": [{"key": "foo", "operator": "Exists"}]}
    spread = [{"maxSkew": 1, "topologyKey": k, "whenUnsatisfiable": "DoNotSchedule",
               "labelSelector": sel} for k in ("zone", "hostname")]
    nodes = [node(n, labels={"hostname": n, "zone": z})
             for n, z in (("node-a", "zone1"), ("node-b", "zone1"), ("node-x", "zone2"))]
    foo = {"foo": ""}
    s = scheduler(nodes, [pod("pod-a1", None, MID, "node-a", labels=foo),
                          pod("pod-a2", None, LOW, "node-a", labels=foo),
                          pod("pod-b1", None, LOW, "node-b", labels=foo),
                          pod("pod-x1", None, HIGH, "node-x", labels=foo),
                          pod("pod-x2", None, HIGH, "node-x", labels=foo)],
                  plugins=("PrioritySort", "PodTopologySpread", "DefaultBinder",
                           "DefaultPreemption"))
    p = pod("p", None, HIGH, labels=foo, topologySpreadConstraints=spread)
    assert dry_run(s, p) == {"node-a": ["pod-a2"], "node-b": ["pod-b1"]}


# ------------------------------------------------------- kube: TestSelectBestCandidate

E = 0  # epochTime: every pod started at the same time


@pytest.mark.parametrize("pods, expected", [
    # node with min highest priority pod is picked
    ([("p1.1", MEDIUM, MID, 1, E), ("p1.2", LARGE, MID, 1, E), ("p2.1", MEDIUM, MID, 2, E),
      ("p2.2", MEDIUM, LOW, 2, E), ("p3.1", MEDIUM, LOW, 3, E), ("p3.2", MEDIUM, LOW, 3, E)],
     {"node3"}),
    # when highest priorities are the same, minimum sum of priorities is picked
    ([("p1.1", MEDIUM, MID, 1, E), ("p1.2", LARGE, MID, 1, E), ("p2.1", LARGE, MID, 2, E),
      ("p2.2", MEDIUM, LOW, 2, E), ("p3.1", MEDIUM, MID, 3, E), ("p3.2", MEDIUM, MID, 3, E)],
     {"node2"}),
    # when highest priority and sum are the same, minimum number of pods is picked
    ([("p1.1", SMALL, MID, 1, E), ("p1.2", SMALL, NEG, 1, E), ("p1.3", SMALL, MID, 1, E),
      ("p1.4", SMALL, NEG, 1, E), ("p2.1", LARGE, MID, 2, E), ("p2.2", MEDIUM, NEG, 2, E),
      ("p3.1", MEDIUM, MID, 3, E), ("p3.2", SMALL, NEG, 3, E), ("p3.3", SMALL, LOW, 3, E)],
     {"node2"}),
    # sum of adjusted priorities is considered
    ([("p1.1", SMALL, MID, 1, E), ("p1.2", SMALL, NEG, 1, E), ("p1.3", SMALL, NEG, 1, E),
      ("p2.1", LARGE, MID, 2, E), ("p2.2", MEDIUM, NEG, 2, E), ("p3.1", MEDIUM, MID, 3, E),
      ("p3.2", SMALL, NEG, 3, E), ("p3.3", SMALL, LOW, 3, E)],
     {"node2"}),
    # same priority, same number of victims, different start time for each node's pod
    ([("p1.1", MEDIUM, MID, 1, 2), ("p1.2", MEDIUM, MID, 1, 2), ("p2.1", MEDIUM, MID, 2, 3),
      ("p2.2", MEDIUM, MID, 2, 3), ("p3.1", MEDIUM, MID, 3, 1), ("p3.2", MEDIUM, MID, 3, 1)],
     {"node2"}),
    # same priority, same number of victims, different start time for all pods
    ([("p1.1", MEDIUM, MID, 1, 4), ("p1.2", MEDIUM, MID, 1, 2), ("p2.1", MEDIUM, MID, 2, 5),
      ("p2.2", MEDIUM, MID, 2, 1), ("p3.1", MEDIUM, MID, 3, 3), ("p3.2", MEDIUM, MID, 3, 6)],
     {"node3"}),
    # different priority, same number of victims, different start time for all pods
    ([("p1.1", MEDIUM, LOW, 1, 4), ("p1.2", MEDIUM, MID, 1, 2), ("p2.1", MEDIUM, MID, 2, 6),
      ("p2.2", MEDIUM, LOW, 2, 1), ("p3.1", MEDIUM, LOW, 3, 3), ("p3.2", MEDIUM, MID, 3, 5)],
     {"node2"}),
    # a pod that fits on both nodes when lower priority pods are preempted: either
    ([("p1", LARGE, MID, 1, E), ("p2", LARGE, MID, 2, E)], {"node1", "node2"}),
])
def test_select_best_candidate(pods, expected):
    n = max(p[3] for p in pods)
    s = scheduler([node(f"node{i}") for i in range(1, n + 1)],
                  [pod(name, res, prio, f"node{k}", start=t) for name, res, prio, k, t in pods])
    big = LARGE if len(pods) == 2 else VERY_LARGE
    r = post_filter(s, pod("p", big, HIGH), {f"node{i}": U for i in range(1, n + 1)})
    assert r.status.is_success
    assert s.snapshot.node_names[r.nominated_node] in expected


def test_non_overlapping_lowest_high_priority_sum_and_count():
    pods = [("p1.1", SMALL, MID, 1), ("p1.2", SMALL, LOW, 1), ("p1.3", SMALL, LOW, 1),
            ("p2.1", LARGE, HIGH, 2), ("p3.1", MEDIUM, MID, 3), ("p3.2", SMALL, LOW, 3),
            ("p3.3", SMALL, LOW, 3), ("p3.4", MEDIUM, LOW, 3), ("p4.1", MEDIUM, MID, 4),
            ("p4.2", SMALL, MID, 4), ("p4.3", SMALL, MID, 4), ("p4.4", SMALL, NEG, 4)]
    s = scheduler([node(f"node{i}") for i in range(1, 5)],
                  [pod(name, res, prio, f"node{k}", start=0) for name, res, prio, k in pods])
    r = post_filter(s, pod("p", VERY_LARGE, VERY_HIGH), {f"node{i}": U for i in range(1, 5)})
    assert s.snapshot.node_names[r.nominated_node] == "node1"


def test_pick_one_node_criteria_directly():
    s = scheduler([node("n")], [pod("a", priority=5, start=3), pod("b", priority=5, start=1),
                                pod("c", priority=1), pod("d", priority=-7)])
    infos = {p.name: s.snapshot.pod_info(p) for p in s.cluster.pods}

    def cand(n, *victims):
        return Candidate(n, sorted((infos[v] for v in victims), key=importance_key))

    # fewer PDB violations first, then lowest highest priority
    assert pick_one_node_for_preemption([Candidate(0, [infos["d"]], 1),
                                         Candidate(1, [infos["a"]], 0)]).node == 1
    assert pick_one_node_for_preemption([cand(0, "a"), cand(1, "c", "d")]).node == 1
    # sums use priorities shifted by 2^31: one pod at -7 beats two at -7 and ... (fewer is less)
    assert pick_one_node_for_preemption([cand(0, "c", "d"), cand(1, "c")]).node == 1
    # latest start among the highest-priority victims; a pod never started counts as latest
    assert pick_one_node_for_preemption([cand(0, "b"), cand(1, "a")]).node == 1
    assert pick_one_node_for_preemption([cand(0, "a"), cand(1, "c")]).node == 1
    # full tie: the first
    assert pick_one_node_for_preemption([cand(3, "a"), cand(2, "a")]).node == 3


# ------------------------------------------------ kube: TestPodEligibleToPreemptOthers


def terminating(p, preempted=True):
    p.metadata.deletion_timestamp = "2024-01-01T00:00:00Z"
    if preempted:
        p.status.conditions.append(PodCondition(type="DisruptionTarget", status="True",
                                                reason="PreemptionByScheduler"))
    return p


@pytest.mark.parametrize("victim, nominated, status, expected", [
    # the nominated node is UnschedulableAndUnresolvable: try again
    (terminating(pod("p1", priority=LOW, node="node1")), "node1", UU, True),
    # a lower-priority pod terminating by preemption on the nominated node: wait
    (terminating(pod("p1", priority=LOW, node="node1")), "node1", U, False),
    # no nominated node
    (terminating(pod("p1", priority=LOW, node="node1")), "", U, True),
    # a terminating pod that is not being preempted
    (terminating(pod("p1", priority=LOW, node="node1"), preempted=False), "node1", U, True),
    # a terminating pod of higher priority is not a victim
    (terminating(pod("p1", priority=VERY_HIGH, node="node1")), "node1", U, True),
    # a nominated node that is gone
    (terminating(pod("p1", priority=LOW, node="node1")), "node9", U, True),
])
def test_pod_eligible_to_preempt_others(victim, nominated, status, expected):
    s = scheduler([node("node1")], [victim])
    plugin = s.framework.instances["DefaultPreemption"]
    p = pod("p", priority=HIGH)
    p.status.nominated_node_name = nominated
    ok, msg = plugin.pod_eligible_to_preempt_others(s.snapshot.pod_info(p), Status(status))
    assert ok is expected
    assert msg == ("" if expected else
                   "not eligible due to a terminating pod on the nominated node.")


def test_preemption_policy_never_from_spec_and_from_priority_class():
    s = scheduler([node("node1")], [pod("p1", priority=LOW, node="node1")])
    s.snapshot.priority_classes["never"] = PriorityClass(
        metadata=ObjectMeta(name="never"), value=HIGH, preemption_policy="Never")
    plugin = s.framework.instances["DefaultPreemption"]
    for p in (pod("a", priority=HIGH, preemptionPolicy="Never"),
              pod("b", priorityClassName="never")):
        ok, msg = plugin.pod_eligible_to_preempt_others(s.snapshot.pod_info(p), Status(U))
        assert (ok, msg) == (False, "not eligible due to preemptionPolicy=Never.")
    ok, _ = plugin.pod_eligible_to_preempt_others(
        s.snapshot.pod_info(pod("c", priority=HIGH, preemptionPolicy="PreemptLowerPriority")),
        Status(U))
    assert ok


# ------------------------------------------------------------ RunPostFilterPlugins


class FakePostFilter:
    def __init__(self, name, status, mode="noop", node=-1):
        self.name, self.result = name, (status, mode, node)

    def post_filter(self, state, pod, diagnosis):
        status, mode, node = self.result
        return PostFilterResult(status, node, mode=mode)


def run_post_filter(*plugins):
    s = scheduler([node("node1")])
    s.framework.post_filter_plugins = list(plugins)
    info = s.snapshot.pod_info(pod("p"))
    return s.framework.run_post_filter(CycleState(), info, Diagnosis(num_all_nodes=1))


def test_run_post_filter_merges_unschedulable_reasons_and_keeps_last_nominating_result():
    r = run_post_filter(FakePostFilter("A", Status(U, ("a1", "a2"))),
                        FakePostFilter("B", Status(U, ("b",)), mode="override", node=-1),
                        FakePostFilter("C", Status(U, ("c",))))
    assert r.status == Status(U, ("a1", "a2", "b", "c"), "A")
    assert r.status.message() == "a1, a2, b, c"
    assert r.mode == "override" and r.nominated_node == -1


def test_run_post_filter_stops_at_success_unresolvable_or_error():
    ok = run_post_filter(FakePostFilter("A", Status(U, ("a",))),
                         FakePostFilter("B", Status.success(), "override", 0),
                         FakePostFilter("C", Status(UU, ("c",))))
    assert ok.status.is_success and ok.nominated_node == 0
    stop = run_post_filter(FakePostFilter("A", Status(U, ("a",))),
                           FakePostFilter("B", Status(UU, ("b",))),
                           FakePostFilter("C", Status.success(), "override", 0))
    assert stop.status == Status(UU, ("b",), "B")
    err = run_post_filter(FakePostFilter("A", Status(Code.ERROR, ("boom",))),
                          FakePostFilter("C", Status.success(), "override", 0))
    assert err.status == Status(Code.ERROR, ("boom",), "A") and err.mode == "noop"


def test_dynamic_resources_and_preemption_messages_are_joined():
    s = scheduler([node("n1", ("1", "1Gi"))], [pod("low", ("1", None), HIGH, "n1")],
                  plugins=("PrioritySort", "NodeResourcesFit", "DefaultBinder",
                           "DynamicResources", "DefaultPreemption"))
    assert s.profile.names("postFilter") == ["DynamicResources", "DefaultPreemption"]
    s.enqueue(pod("p", ("1", None), HIGH))
    r = s.schedule_one()
    assert r.message == ("0/1 nodes are available: 1 Insufficient cpu. no new claims to "
                         "deallocate, preemption: 0/1 nodes are available: 1 No preemption "
                         "victims found for incoming pod.")


# ------------------------------------------------------------------------ end to end


def test_preemptor_is_nominated_victims_evicted_then_scheduled_there():
    s = scheduler([node("n1", ("1", "1Gi")), node("n2", ("1", "1Gi"))],
                  [pod("low1", ("800m", None), LOW, "n1"), pod("low2", ("600m", None), 5, "n2")])
    high = pod("high", ("500m", None), MID)
    s.enqueue(high)
    first = s.schedule_one()
    assert (first.node, first.nominated_node, first.victims) == (None, "n1", ["default/low1"])
    assert first.message == "0/2 nodes are available: 2 Insufficient cpu."
    victim = s.cluster.pods[0]
    assert victim.status.phase == "Failed"
    assert [(c.type, c.status, c.reason) for c in victim.status.conditions] == [
        ("DisruptionTarget", "True", "PreemptionByScheduler")]
    assert s.queue.where("default/high") == "backoff"
    second = s.schedule_one()  # activeQ is empty: popped from backoffQ at once
    assert (second.node, second.evaluated_nodes, second.feasible_nodes) == ("n1", 1, 1)
    assert s.outcomes() == {"default/high": {"status": "scheduled", "node": "n1"},
                            "default/low1": {"status": "failed",
                                             "reason": "Preempted by pod default/high"}}
    assert high.status.nominated_node_name == "" and high.spec.node_name == "n1"


def test_lower_priority_pod_cannot_take_the_room_freed_for_a_nominated_pod():
    s = scheduler([node("n1", ("1", "1Gi"))], [pod("low", ("1", None), LOW, "n1")])
    s.enqueue(pod("high", ("1", None), HIGH))
    s.enqueue(pod("mid", ("1", None), MID))
    s.run()
    out = s.outcomes()
    assert out["default/high"] == {"status": "scheduled", "node": "n1"}
    assert out["default/mid"]["status"] == "pending"
    mid_first = next(r for r in s.results if r.pod == "default/mid")
    # n1 is empty, but "high" (nominated there, higher priority) is counted on it
    assert mid_first.message == ("0/1 nodes are available: 1 Insufficient cpu. preemption: 0/1 "
                                 "nodes are available: 1 No preemption victims found for "
                                 "incoming pod.")


def test_higher_priority_pod_ignores_lower_priority_nominations():
    s = scheduler([node("n1", ("1", "1Gi"))], [pod("low", ("1", None), LOW, "n1")])
    mid = pod("mid", ("1", None), MID)
    s.enqueue(mid)
    assert s.schedule_one().nominated_node == "n1"
    assert mid.status.nominated_node_name == "n1"
    s.enqueue(pod("high", ("1", None), HIGH))
    r = s.schedule_one()
    assert (r.pod, r.node) == ("default/high", "n1")
    r = s.schedule_one()  # mid: no room, no lower-priority victims: nomination cleared
    assert r.pod == "default/mid" and r.node is None
    assert mid.status.nominated_node_name == ""
    assert s.queue.nominator.node_of("default/mid") is None


def test_preemption_clears_lower_priority_nominations_on_the_node():
    s = scheduler([node("n1", ("2", "1Gi"))], [pod("low1", ("1", None), 0, "n1"),
                                               pod("low2", ("1", None), 10, "n1")])
    mid = pod("mid", ("1", None), 50)
    s.enqueue(mid)
    r = s.schedule_one()
    assert (r.nominated_node, r.victims) == ("n1", ["default/low1"])  # low2 reprieved
    assert mid.status.nominated_node_name == "n1"
    s.enqueue(pod("high", ("2", None), 100))
    r = s.schedule_one()
    assert (r.pod, r.nominated_node, r.victims) == ("default/high", "n1", ["default/low2"])
    assert mid.status.nominated_node_name == ""
    assert s.schedule_one().node == "n1"  # high, from backoffQ (mid waits behind it)


def test_preemption_policy_never_keeps_the_pod_pending_without_victims():
    s = scheduler([node("n1", ("1", "1Gi"))], [pod("low", ("1", None), LOW, "n1")])
    s.enqueue(pod("p", ("1", None), HIGH, preemptionPolicy="Never"))
    r = s.schedule_one()
    assert r.victims == [] and r.nominated_node is None
    assert r.message == ("0/1 nodes are available: 1 Insufficient cpu. preemption: not eligible "
                         "due to preemptionPolicy=Never.")
    assert s.queue.where("default/p") == "unschedulable"


def test_a_pod_is_only_ever_preempted_by_a_higher_priority_pod():
    s = scheduler([node("n1", ("1", "1Gi"))], [pod("same", ("1", None), MID, "n1")])
    s.enqueue(pod("p", ("1", None), MID))
    s.run()
    assert s.preempted == {}
    assert s.outcomes()["default/p"]["status"] == "pending"


# ---------------------------------------------------- property: against the reference


@st.composite
def scenarios(draw):
    n_nodes = draw(st.integers(1, 6))
    zoned = draw(st.booleans())
    nodes, pods = [], []
    for i in range(n_nodes):
        labels = {"topology.kubernetes.io/zone": f"z{draw(st.integers(0, 2))}"} if zoned else {}
        nodes.append(make_node(f"n{i}", cpu=f"{draw(st.sampled_from([1000, 2000, 3000]))}m",
                               memory=f"{draw(st.sampled_from([1, 2, 4]))}Gi",
                               pods=draw(st.integers(1, 4)), labels=labels))
        for j in range(draw(st.integers(1, 5))):
            p = make_pod(f"p{i}-{j}", cpu=f"{draw(st.sampled_from([100, 300, 500, 800]))}m",
                         memory=f"{draw(st.sampled_from([128, 512, 1024]))}Mi", node=f"n{i}",
                         priority=draw(st.sampled_from([-10, 0, 5, 10])))
            start = draw(st.sampled_from([None, 1, 2, 3]))
            if start is not None:
                p.status.start_time = f"2024-01-01T00:00:0{start}Z"
            pods.append(p)
    pre = make_pod("pre", cpu=f"{draw(st.sampled_from([800, 1200, 2000]))}m",
                   memory=f"{draw(st.sampled_from([256, 1024, 2048]))}Mi",
                   priority=draw(st.sampled_from([0, 5, 10, 20])))
    pct = draw(st.integers(0, 100))
    absolute = draw(st.integers(0 if pct else 1, 6))
    return nodes, pods, pre, pct, absolute, draw(st.integers(0, 2 ** 16))


@given(scenarios())
def test_preemption_matches_the_reference(scenario):
    nodes, pods, pre, pct, absolute, seed = scenario
    s = scheduler(nodes, pods, seed=seed, preemption_args={
        "minCandidateNodesPercentage": pct, "minCandidateNodesAbsolute": absolute})
    plugin = s.framework.instances["DefaultPreemption"]
    drawn = []
    real = plugin.get_offset_and_num_candidates

    def recording(n):
        got = real(n)
        drawn.append((n, got))
        return got

    plugin.get_offset_and_num_candidates = recording
    s.enqueue(pre)
    r = s.schedule_one()
    bound = {}
    for p in pods:
        bound.setdefault(p.spec.node_name, []).append(p)

    def prio(p):
        return p.spec.priority

    fits_now = [n.metadata.name for n in nodes
                if not ref.fit_reasons(n, bound.get(n.metadata.name, []), pre)]
    if fits_now:
        event("fits without preemption")
        assert r.node in fits_now
        return
    main = ref.histogram_message(len(nodes), [ref.fit_reasons(n, bound.get(n.metadata.name, []),
                                                               pre) for n in nodes], None, 0)
    potential = [x for x in nodes if not ref.never_fits(x, pre)]
    if not potential:  # nothing to draw: preemption cannot help anywhere
        assert drawn == []
        offset = 0
    else:
        assert len(drawn) == 1
        n, (offset, num) = drawn[0]
        assert n == len(potential) and num == ref.num_candidates(n, pct, absolute)
    want_node, want_victims, want_msg = ref.preempt(nodes, bound, pre, prio, offset, pct,
                                                    absolute)
    assert r.nominated_node == want_node
    assert r.victims == want_victims
    assert r.message == main + (f" preemption: {want_msg}" if want_msg else "")
    event("preempts" if want_node else "no candidate")
    if want_node is None:
        assert s.preempted == {}
        return
    # invariants: victims of lower priority only; minimal (each victim, put back, is too
    # much); after the eviction the preemptor fits its nominated node and goes there
    node_obj = next(x for x in nodes if x.metadata.name == want_node)
    victims = [p for p in pods if p.key in r.victims]
    assert all(prio(v) < prio(pre) for v in victims)
    remaining = [p for p in bound.get(want_node, []) if p.key not in r.victims]
    assert not ref.fit_reasons(node_obj, remaining, pre)
    for v in victims:
        assert ref.fit_reasons(node_obj, remaining + [v], pre)
    again = s.schedule_one()
    assert (again.pod, again.node) == ("default/pre", want_node)


def test_dry_run_restores_the_snapshot_and_node_order():
    s = scheduler([node("n1", ("1", "1Gi"))],
                  [pod(f"p{i}", ("300m", None), i, "n1") for i in range(3)])
    before = list(s.snapshot.pods_on_node[0])
    requested = s.snapshot.requested.copy()
    r = post_filter(s, pod("x", ("500m", None), 10), {"n1": U})
    assert names(s, r.victims) == ["p1", "p0"]  # p2 (priority 2) reprieved first
    assert list(s.snapshot.pods_on_node[0]) == before
    assert np.array_equal(s.snapshot.requested, requested)
