"""The fused fast path (:mod:`schedbench.scheduler.fused`) against the per-plugin path.

Whole runs on random clusters (taints, labels, node affinity, tolerations, and pods with host
ports, spread constraints and inter-pod affinity that make the fused path fall back), every
built-in policy plus custom profiles: every attempt (pod, node or rejection, message,
nomination, victims, nodes evaluated, feasible nodes, time) must be identical with
``Scheduler(..., fused=True)`` and ``fused=False``, and so must the final snapshot. (The
reference comparisons in ``test_scheduler_runs.py`` run with the fused path on, the default.)
"""

from __future__ import annotations

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from schedbench.config import parse_scheduler_config
from schedbench.scheduler import fused
from schedbench.scheduler.framework import CycleState
from schedbench.scheduler.scheduler import Scheduler
from tests.reference import scheduler as ref
from tests.test_scheduler_runs import (
    CONFIGS,
    PLAIN,
    Shape,
    build,
    generate,
    placements,
)

#: Profiles with the fused path's other inputs: added affinity (required and preferred),
#: MostAllocated with an extended resource, weights, a percentage.
EXTRA = {
    "added-affinity": parse_scheduler_config({
        "apiVersion": "kubescheduler.config.k8s.io/v1", "kind": "KubeSchedulerConfiguration",
        "percentageOfNodesToScore": 30,
        "profiles": [{"schedulerName": "default-scheduler", "pluginConfig": [
            {"name": "NodeAffinity", "args": {"addedAffinity": {
                "requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
                    {"matchExpressions": [{"key": "disk", "operator": "NotIn",
                                           "values": ["hdd"]}]}]},
                "preferredDuringSchedulingIgnoredDuringExecution": [
                    {"weight": 7, "preference": {"matchExpressions": [
                        {"key": "pool", "operator": "In", "values": ["a", "b"]}]}}]}}},
            {"name": "NodeResourcesFit", "args": {"scoringStrategy": {
                "type": "MostAllocated",
                "resources": [{"name": "cpu", "weight": 2}, {"name": "memory", "weight": 1},
                              {"name": "example.com/gpu", "weight": 3}]}}},
        ]}]}, source="<added-affinity>"),
    "ipa-ignore-existing": parse_scheduler_config({
        "apiVersion": "kubescheduler.config.k8s.io/v1", "kind": "KubeSchedulerConfiguration",
        "profiles": [{"schedulerName": "default-scheduler", "pluginConfig": [
            {"name": "InterPodAffinity", "args": {
                "ignorePreferredTermsOfExistingPods": True}}]}]},
        source="<ipa-ignore-existing>"),
}
ALL = {**CONFIGS, **EXTRA}


def _run(docs, cfg, seed: int, use_fused: bool) -> Scheduler:
    s = Scheduler(build(docs), cfg.profile(), config=cfg, seed=seed, fused=use_fused)
    s.enqueue_pending()
    s.run()
    return s


def _trace(s: Scheduler) -> list[tuple]:
    return [(r.pod, r.node, int(r.code), r.message, r.nominated_node, tuple(r.victims),
             r.attempt, r.time, r.evaluated_nodes, r.feasible_nodes) for r in s.results]


def _final(s: Scheduler) -> tuple:
    snap = s.snapshot
    return ({k: p.node for k, p in snap.pods.items()}, snap.requested.tolist(),
            snap.nonzero_requested.tolist(), snap.pod_count.tolist(),
            s.next_start_node_index, s.outcomes())


@st.composite
def shapes(draw) -> Shape:
    big = draw(st.integers(0, 3)) == 0
    nodes = draw(st.integers(100, 180)) if big else draw(st.integers(1, 40))
    return Shape(nodes=nodes, bound=draw(st.integers(0, min(3 * nodes, 120))),
                 pending=draw(st.integers(1, 50)), zones=draw(st.integers(0, 5)),
                 taints=draw(st.booleans()), affinity=draw(st.booleans()),
                 spread=draw(st.booleans()), node_affinity=draw(st.booleans()),
                 extras=draw(st.booleans()), beta_labels=draw(st.booleans()),
                 priorities=draw(st.booleans()), preempt=draw(st.booleans()),
                 spread_groups=draw(st.integers(0, 1)),
                 overcommit=draw(st.integers(0, 5)) == 0)


@given(seed=st.integers(0, 2**32 - 1), shape=shapes(), run_seed=st.integers(0, 2**16),
       policy=st.sampled_from(sorted(ALL)))
def test_fused_runs_equal_the_per_plugin_path(seed, shape, run_seed, policy):
    docs = generate(seed, shape)
    cfg = ALL[policy]
    a = _run(docs, cfg, run_seed, True)
    b = _run(docs, cfg, run_seed, False)
    assert _trace(a) == _trace(b)
    assert _final(a) == _final(b)
    assert a.draws.state() == b.draws.state()  # same random stream used


@given(seed=st.integers(0, 2**32 - 1), shape=shapes(), run_seed=st.integers(0, 2**16))
def test_fused_default_profile_equals_the_reference(seed, shape, run_seed):
    """Without preemption the reference applies: the fused run equals it pod for pod."""
    if shape.preempt:
        shape = Shape(**{**shape.__dict__, "preempt": False, "spread_groups": 0})
    docs = generate(seed, shape)
    s = _run(docs, CONFIGS["default"], run_seed, True)
    r = ref.ReferenceScheduler(build(docs), PLAIN["default"], seed=run_seed)
    assert placements(s) == r.run()


@given(seed=st.integers(0, 2**32 - 1), shape=shapes(), data=st.data(),
       policy=st.sampled_from(["default", "best-fit", "spread", "added-affinity"]))
def test_fused_scores_equal_the_per_plugin_scores(seed, shape, data, policy):
    """The kernel's weighted totals (:meth:`FusedPath.score`) equal PreScore + Score +
    NormalizeScore + weights of the per-plugin path on any set of nodes (the Services and
    ReplicaSets of the random clusters give pods kube's default spread constraints, scored
    over the nodes given: their number and zones weigh the constraints)."""
    shape = Shape(**{**shape.__dict__, "extras": True})
    docs = generate(seed, shape)
    cfg = ALL[policy]
    s = Scheduler(build(docs), cfg.profile(), config=cfg, seed=0)
    if s.fused is None:
        return
    fw = s.framework
    alive = s.snapshot.alive_nodes()
    for pod in s.cluster.pending_pods():
        info = s.snapshot.pod_info(pod)
        picked = data.draw(st.lists(st.sampled_from(alive.tolist()), unique=True, min_size=1))
        # a rotating window of the nodes (two ascending runs: the vectorised pass over their
        # spans) and the picked nodes so arranged
        k = data.draw(st.integers(0, alive.size - 1))
        size = data.draw(st.integers(1, alive.size))
        window = np.roll(alive, -k)[:size]
        cut = data.draw(st.integers(0, len(picked)))
        ordered = sorted(picked)
        runs = np.array(ordered[cut:] + ordered[:cut], np.int64)
        for nodes in (alive, np.array(picked, np.int64), window, runs):
            got = s.fused.score(info, nodes)
            if got is None:
                continue
            state = CycleState()
            fw.run_pre_filter(state, info, alive)
            want = fw.run_scores(state, info, nodes, fw.run_pre_score(state, info, nodes))
            assert got.tolist() == want.total.tolist()


def _spans_reference(nodes: list[int]) -> tuple[int, int, int, int]:
    """The slots of ``nodes`` as at most two disjoint ascending runs, or (0, -1, 0, -1)."""
    if not nodes:
        return 0, -1, 0, -1
    for cut in range(1, len(nodes) + 1):
        first, second = nodes[:cut], nodes[cut:]
        if first != sorted(set(first)) or second != sorted(set(second)):
            continue
        if not second:
            return first[0], first[-1], 0, -1
        if second[-1] < first[0]:
            return first[0], first[-1], second[0], second[-1]
    return 0, -1, 0, -1


@given(st.lists(st.integers(0, 30), max_size=12), st.integers(0, 12))
def test_ascending_spans_equal_reference(nodes, cut):
    ordered = sorted(set(nodes))
    for case in (nodes, ordered, ordered[cut:] + ordered[:cut]):
        got = fused._ascending_spans(np.array(case, np.int64))
        assert tuple(int(v) for v in got) == _spans_reference(case), case


@given(seed=st.integers(0, 2**32 - 1), shape=shapes(), run_seed=st.integers(0, 2**16),
       policy=st.sampled_from(["default", "best-fit", "added-affinity"]))
def test_fused_failures_equal_the_per_plugin_diagnosis(seed, shape, run_seed, policy):
    """With reasons by plugin only (quiet replays) and no PostFilter, a pod no node fits gets
    its FitError from the kernel's failed checks: every node's status (code and plugin, the
    first failing plugin in the profile's order) and the rejecting plugins equal the
    per-plugin path's, attempt for attempt, and so do the runs."""
    _check_fused_failures(generate(seed, shape), ALL[policy], run_seed)


def _check_fused_failures(docs, cfg, run_seed: int) -> int:
    """Runs ``docs`` quietly without PostFilter, fused and per-plugin: the attempts and every
    FitError's per-node statuses are equal. Returns how many FitErrors there were."""
    from schedbench.replay.kube_engine import quiet_filter_reasons, without_post_filter

    runs = []
    for use_fused in (True, False):
        s = Scheduler(build(docs), without_post_filter(cfg.profile()), config=cfg,
                      seed=run_seed, fused=use_fused)
        quiet_filter_reasons(s.framework)
        seen = []
        fail = s._fail

        def record(state, pod, diagnosis, _fail=fail, _seen=seen):
            _seen.append((pod.key, sorted(diagnosis.node_status.items()),
                          sorted(diagnosis.unschedulable_plugins)))
            return _fail(state, pod, diagnosis)

        s._fail = record
        s.enqueue_pending()
        s.run()
        runs.append((_trace(s), seen))
    assert runs[0] == runs[1]
    return len(runs[0][1])


def test_fused_failure_codes_per_plugin_and_order():
    """Pods that fit nowhere on nodes that reject them for different reasons: too little CPU
    left (Unschedulable), less CPU than the pod asks in all (UnschedulableAndUnresolvable), a
    NoSchedule taint, a cordon and a full pod count; the first failing plugin in the
    profile's order is reported, with its code, as on the per-plugin path."""
    docs = _plain_cluster_docs(3, 30)  # 3 nodes x 4 CPU: 24 pods of 500m fit
    docs.append({"apiVersion": "v1", "kind": "Node", "metadata": {"name": "tiny"},
                 "status": {"allocatable": {"cpu": "250m", "memory": "8Gi", "pods": "20"}}})
    docs.append({"apiVersion": "v1", "kind": "Node", "metadata": {"name": "tainted"},
                 "spec": {"taints": [{"key": "k", "value": "v", "effect": "NoSchedule"}]},
                 "status": {"allocatable": {"cpu": "250m", "memory": "8Gi", "pods": "20"}}})
    docs.append({"apiVersion": "v1", "kind": "Node", "metadata": {"name": "cordoned"},
                 "spec": {"unschedulable": True},
                 "status": {"allocatable": {"cpu": "4", "memory": "8Gi", "pods": "20"}}})
    docs.append({"apiVersion": "v1", "kind": "Node", "metadata": {"name": "full"},
                 "status": {"allocatable": {"cpu": "4", "memory": "8Gi", "pods": "0"}}})
    for policy in ("default", "best-fit"):
        assert _check_fused_failures(docs, CONFIGS[policy], 5) >= 6


def _plain_cluster_docs(n_nodes: int, n_pods: int) -> list[dict]:
    docs = []
    for i in range(n_nodes):
        docs.append({"apiVersion": "v1", "kind": "Node",
                     "metadata": {"name": f"n{i}", "labels": {
                         "kubernetes.io/hostname": f"n{i}",
                         "topology.kubernetes.io/zone": f"z{i % 3}"}},
                     "status": {"allocatable": {"cpu": "4", "memory": "8Gi", "pods": "20"}}})
    for j in range(n_pods):
        docs.append({"apiVersion": "v1", "kind": "Pod",
                     "metadata": {"name": f"p{j}", "labels": {"app": "a"}},
                     "spec": {"containers": [{"name": "c", "resources": {
                         "requests": {"cpu": "500m", "memory": "1Gi"}}}]}})
    return docs


def test_fused_path_is_taken_for_plain_pods(monkeypatch):
    """Plain pods on a plain cluster go through the kernel (the per-plugin PreFilter never
    runs), and the module switch turns it off."""
    docs = _plain_cluster_docs(12, 30)
    calls = []
    cfg = CONFIGS["default"]
    s = Scheduler(build(docs), cfg.profile(), config=cfg, seed=1)
    assert s.fused is not None
    orig = s.framework.run_pre_filter
    monkeypatch.setattr(s.framework, "run_pre_filter",
                        lambda *a, **k: calls.append(1) or orig(*a, **k))
    s.enqueue_pending()
    s.run()
    placed = sum(1 for r in s.results if r.node)
    assert placed == 30 and not calls
    monkeypatch.setattr(fused, "ENABLED", False)
    s2 = Scheduler(build(docs), cfg.profile(), config=cfg, seed=1)
    orig2 = s2.framework.run_pre_filter
    monkeypatch.setattr(s2.framework, "run_pre_filter",
                        lambda *a, **k: calls.append(1) or orig2(*a, **k))
    s2.enqueue_pending()
    s2.run()
    assert len(calls) == 30
    assert _trace(s2) == _trace(s)


def test_pods_a_service_selects_are_fused_with_default_spreading(monkeypatch):
    """Pods a Service selects get kube's system default spread constraints: the kernel
    scores them (no per-plugin PreFilter or PreScore runs) and the run equals the per-plugin
    path's, attempt for attempt. A pod with a nodeSelector falls back (its node affinity
    decides which nodes count for spreading)."""
    docs = _plain_cluster_docs(12, 40)
    docs.append({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "svc"},
                 "spec": {"selector": {"app": "a"}, "ports": [{"port": 80}]}})
    docs.append({"apiVersion": "v1", "kind": "Pod",
                 "metadata": {"name": "pinned", "labels": {"app": "a"}},
                 "spec": {"nodeSelector": {"topology.kubernetes.io/zone": "z1"},
                          "containers": [{"name": "c", "resources": {
                              "requests": {"cpu": "100m"}}}]}})
    cfg = CONFIGS["default"]
    s = Scheduler(build(docs), cfg.profile(), config=cfg, seed=4)
    per_plugin = []
    for point in ("run_pre_filter", "run_pre_score"):
        orig = getattr(s.framework, point)
        monkeypatch.setattr(s.framework, point,
                            lambda *a, _o=orig, **k: per_plugin.append(a[1].key) or _o(*a, **k))
    s.enqueue_pending()
    s.run()
    assert sum(1 for r in s.results if r.node) == 41
    assert set(per_plugin) == {"default/pinned"}
    b = _run(docs, cfg, 4, False)
    assert _trace(s) == _trace(b)
    # the spreading score matters here: the pods spread over hosts and zones
    per_node = [len(on) for on in s.snapshot.pods_on_node]
    assert max(per_node) - min(per_node) <= 1


def test_failures_and_unknown_plugins_fall_back():
    """No node fits: the per-plugin path builds the FitError message. A profile with a plugin
    the fused path does not know (SelectorSpread) is never fused."""
    docs = _plain_cluster_docs(3, 30)  # 3 nodes x 4 CPU: 24 pods fit
    cfg = CONFIGS["default"]
    a = _run(docs, cfg, 0, True)
    b = _run(docs, cfg, 0, False)
    assert _trace(a) == _trace(b)
    failed = [r for r in a.results if r.node is None]
    assert failed and failed[0].message.startswith("0/3 nodes are available: 3 Insufficient cpu")
    spread = Scheduler(build(docs), CONFIGS["spread"].profile(), config=CONFIGS["spread"])
    assert spread.fused is None


def test_fused_inputs_follow_new_resource_columns():
    """A pod compiled before a new extended resource column appeared is re-packed."""
    docs = _plain_cluster_docs(4, 2)
    cfg = CONFIGS["best-fit"]
    s = Scheduler(build(docs), cfg.profile(), config=cfg, seed=0)
    infos = [s.enqueue(p) for p in s.cluster.pending_pods()]
    packed = s.fused.inputs(infos[0])
    assert packed is not None
    s.snapshot.resource_id("example.com/foo", create=True)
    assert s.fused.inputs(infos[0]) is not packed
    s.run()
    assert all(r.node for r in s.results)
    assert int(s.snapshot.pod_count.sum()) == 2


class _SmallestNodeWins(Scheduler):
    """A subclass with its own tie-break (as the replay's RankedScheduler has)."""

    def select_host(self, nodes, totals):
        top = nodes[totals == totals.max()]
        return int(top.min())


def test_a_subclass_tie_break_is_kept():
    docs = _plain_cluster_docs(12, 40)
    cfg = CONFIGS["random"]  # every feasible node ties
    runs = []
    for use_fused in (True, False):
        s = _SmallestNodeWins(build(docs), cfg.profile(), config=cfg, seed=3, fused=use_fused)
        s.enqueue_pending()
        s.run()
        runs.append(_trace(s))
    assert runs[0] == runs[1]
