"""The scheduling cycle (kube-scheduler's ``ScheduleOne``), on a virtual clock.

``schedule_one``: pop the queue's head; PreFilter; evaluate a nominated node first; Filter over
the nodes in NodeTree order starting at a rotating index until ``numFeasibleNodesToFind``
feasible nodes are found (all of them when the profile scores every node); on failure
PostFilter (preemption) and requeue; PreScore, Score, NormalizeScore, weights; select the
highest total, ties broken uniformly by the seeded generator; assume (update the snapshot) and
bind (set ``spec.nodeName``).

Differences from kube-scheduler, all deterministic by design: filters run as if sequentially
(kube runs 16 goroutines and may examine a few extra nodes before it stops), nodes narrowed by
a PreFilter result are taken in NodeTree order (kube iterates a Go map), and binding is
immediate (no API server).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..cluster import Cluster
from ..config import Profile, SchedulerConfiguration, default_configuration
from ..model.objects import Pod
from .framework import SUCCESS, Code, CycleState, Framework, Handle, Status
from .queue import SchedulingQueue
from .snapshot import NodeSnapshot, PodInfo

MIN_FEASIBLE_NODES_TO_FIND = 100
MIN_FEASIBLE_NODES_PERCENTAGE_TO_FIND = 5
NO_NODE_AVAILABLE = "0/{} nodes are available"


def num_feasible_nodes_to_find(percentage: int, num_all_nodes: int) -> int:
    """schedule_one.go numFeasibleNodesToFind: all nodes below 100; else ``percentage`` of them
    (0 = adaptive: 50% minus 1% per 125 nodes, at least 5%), but never fewer than 100."""
    if num_all_nodes < MIN_FEASIBLE_NODES_TO_FIND:
        return num_all_nodes
    if percentage == 0:
        percentage = 50 - num_all_nodes // 125
        if percentage < MIN_FEASIBLE_NODES_PERCENTAGE_TO_FIND:
            percentage = MIN_FEASIBLE_NODES_PERCENTAGE_TO_FIND
    num = num_all_nodes * percentage // 100
    return max(num, MIN_FEASIBLE_NODES_TO_FIND)


def fit_error_message(num_all_nodes: int, prefilter_msg: str, node_reasons: list[list[str]],
                      absent_reasons: list[str], num_absent: int, postfilter_msg: str) -> str:
    """FitError.Error(): ``0/N nodes are available: <histogram>.`` with the reasons counted
    over nodes and sorted as strings, then the PostFilter (preemption) message."""
    msg = NO_NODE_AVAILABLE.format(num_all_nodes) + ":"
    if prefilter_msg:
        msg += f" {prefilter_msg}."
    else:
        counts: dict[str, int] = {}
        for reasons in node_reasons:
            for r in reasons:
                counts[r] = counts.get(r, 0) + 1
        if num_absent > 0:
            for r in absent_reasons:
                counts[r] = counts.get(r, 0) + num_absent
        histogram = sorted(f"{v} {k}" for k, v in counts.items())
        if histogram:
            msg += f" {', '.join(histogram)}."
    if postfilter_msg:
        msg += f" {postfilter_msg}"
    return msg


@dataclass
class Diagnosis:
    """Why a pod did not fit: per-node statuses, for PostFilter and the FitError message."""

    node_status: dict[int, Status] = field(default_factory=dict)
    absent_status: Status | None = None     # nodes a PreFilter result excluded
    prefilter_status: Status | None = None
    unschedulable_plugins: set[str] = field(default_factory=set)
    num_all_nodes: int = 0


@dataclass
class ScheduleResult:
    """One scheduling attempt."""

    pod: str
    node: str | None
    code: Code
    message: str = ""
    evaluated_nodes: int = 0
    feasible_nodes: int = 0
    attempt: int = 1
    time: float = 0.0
    nominated_node: str | None = None
    victims: list[str] = field(default_factory=list)

    @property
    def scheduled(self) -> bool:
        return self.node is not None


@dataclass
class PostFilterResult:
    """What PostFilter (preemption) decided: a nominated node and the pods to evict."""

    status: Status
    nominated_node: int = -1
    victims: list[PodInfo] = field(default_factory=list)


class Scheduler:
    """One profile of kube-scheduler over a cluster.

    ``Scheduler(cluster, profile=None, config=None, seed=0)``: the cluster's nodes and bound
    pods form the snapshot; its pending pods are queued in file order (call
    :meth:`enqueue_pending`). :meth:`run` schedules until the queue has nothing it can make
    progress on; :attr:`outcomes` says, per pod, where it went or why it waits.
    """

    def __init__(self, cluster: Cluster, profile: Profile | None = None, *,
                 config: SchedulerConfiguration | None = None, seed: int = 0) -> None:
        self.config = config or default_configuration()
        self.profile = profile or self.config.profile()
        self.cluster = cluster
        self.percentage = (self.profile.percentage_of_nodes_to_score
                           if self.profile.percentage_of_nodes_to_score is not None
                           else self.config.percentage_of_nodes_to_score)
        self.snapshot = NodeSnapshot(cluster.nodes,
                                     priority_classes=cluster.priority_class_map())
        self.rng = np.random.default_rng(seed)
        self.handle = Handle(self.snapshot, cluster, self.rng)
        self.framework = Framework(self.profile, self.handle)
        self.queue = SchedulingQueue(float(self.config.pod_initial_backoff_seconds),
                                     float(self.config.pod_max_backoff_seconds))
        self.clock = 0.0
        self.next_start_node_index = 0
        self.results: list[ScheduleResult] = []
        self.last_result: dict[str, ScheduleResult] = {}
        self.preempted: dict[str, str] = {}  # victim key -> preemptor key
        self._arrivals = 0
        for pod in cluster.bound_pods():
            self.snapshot.add_pod(self.snapshot.pod_info(pod),
                                  self.snapshot.node_index[pod.node_name])

    # -------------------------------------------------------------------------- queueing

    def enqueue(self, pod: Pod) -> PodInfo:
        """Queue a pending pod (its arrival order breaks priority ties)."""
        info = self.snapshot.pod_info(pod, arrival=self._arrivals)
        self._arrivals += 1
        self.queue.add(info, self.clock)
        return info

    def enqueue_pending(self) -> int:
        """Queue every pending pod of the cluster for this profile's schedulerName."""
        n = 0
        for pod in self.cluster.pending_pods():
            if pod.spec.scheduler_name == self.profile.scheduler_name:
                self.enqueue(pod)
                n += 1
        return n

    # ------------------------------------------------------------------------------ run

    def run(self, max_attempts: int | None = None) -> list[ScheduleResult]:
        """Schedule until activeQ and backoffQ are empty, advancing the virtual clock over
        backoffs. Pods left in the unschedulable pool stay pending (no event can help)."""
        done = 0
        while max_attempts is None or done < max_attempts:
            result = self.schedule_one()
            if result is None:
                expiry = self.queue.next_backoff_expiry()
                if expiry is None:
                    break
                self.clock = max(self.clock, expiry)
                continue
            done += 1
        return self.results

    def schedule_one(self) -> ScheduleResult | None:
        """One scheduling cycle for the head of activeQ; None if activeQ is empty now."""
        qp = self.queue.pop(self.clock)
        if qp is None:
            return None
        pod = qp.info
        state = CycleState()
        result, diagnosis, post = self._schedule_pod(state, pod)
        result.attempt = qp.attempts
        result.time = self.clock
        if result.node is not None:
            self._assume_and_bind(pod, self.snapshot.node_index[result.node])
            self.queue.done(pod.key)
            self.queue.move_on_event("AssignedPodAdd", self.clock)
        else:
            plugins = frozenset(diagnosis.unschedulable_plugins) if diagnosis else frozenset()
            self.queue.add_unschedulable(qp, self.clock, plugins, result.message,
                                         error=result.code == Code.ERROR)
            if post is not None and post.victims:
                self._evict(post.victims, preemptor=pod)
        self.results.append(result)
        self.last_result[pod.key] = result
        return result

    # -------------------------------------------------------------------------- the cycle

    def _schedule_pod(self, state: CycleState, pod: PodInfo
                      ) -> tuple[ScheduleResult, Diagnosis | None, PostFilterResult | None]:
        snap, fw = self.snapshot, self.framework
        all_nodes = snap.evaluation_order()
        n_all = int(all_nodes.size)
        if n_all == 0:
            return (ScheduleResult(pod.key, None, Code.ERROR, "no nodes available to schedule "
                                   "pods"), None, None)
        diagnosis = Diagnosis(num_all_nodes=n_all)
        pre = fw.run_pre_filter(state, pod, all_nodes)
        if not pre.status.is_success:
            if not pre.status.is_rejected:
                return ScheduleResult(pod.key, None, Code.ERROR, pre.status.message()), None, None
            diagnosis.prefilter_status = pre.status
            diagnosis.absent_status = pre.status
            if pre.status.plugin:
                diagnosis.unschedulable_plugins.add(pre.status.plugin)
            return self._fail(state, pod, diagnosis)

        # a node nominated by an earlier preemption is tried first
        nominated = pod.pod.status.nominated_node_name
        if nominated and nominated in snap.node_index:
            idx = snap.node_index[nominated]
            if snap.alive[idx] and (pre.allowed is None or idx in set(pre.allowed.tolist())):
                out = fw.run_filters(state, pod, np.array([idx], np.int64), pre.skipped)
                if out.codes[0] == SUCCESS:
                    return (ScheduleResult(pod.key, nominated, Code.SUCCESS, evaluated_nodes=1,
                                           feasible_nodes=1), diagnosis, None)

        nodes = all_nodes
        if pre.allowed is not None:
            allowed = np.zeros(snap.num_nodes, np.bool_)
            allowed[pre.allowed] = True
            nodes = all_nodes[allowed[all_nodes]]
            diagnosis.absent_status = Status(Code.UNSCHEDULABLE_AND_UNRESOLVABLE,
                                             ("node(s) didn't satisfy plugin(s) PreFilter",))
        n = int(nodes.size)
        to_find = num_feasible_nodes_to_find(self.percentage, n)
        start = self.next_start_node_index % n if n else 0
        rotated = np.concatenate([nodes[start:], nodes[:start]]) if start else nodes
        outcome = fw.run_filters(state, pod, rotated, pre.skipped)
        ok = outcome.codes == SUCCESS
        if to_find < n:
            positions = np.flatnonzero(ok)
            if positions.size >= to_find:
                processed = int(positions[to_find - 1]) + 1
            else:
                processed = n
        else:
            processed = n
        feasible = rotated[:processed][ok[:processed]]
        self.next_start_node_index = (self.next_start_node_index + processed) % n_all
        failed = np.flatnonzero(~ok[:processed])
        for i in failed:
            plugin = fw.filter_plugins[outcome.failed_by[i]]
            diagnosis.unschedulable_plugins.add(plugin.name)
        if feasible.size == 0:
            reasons = fw.filter_reasons(state, pod, _restrict(outcome, processed))
            for node, (plugin, why) in reasons.items():
                code = Code(int(outcome.codes[np.flatnonzero(rotated == node)[0]]))
                diagnosis.node_status[node] = Status(code, tuple(why), plugin)
            return self._fail(state, pod, diagnosis)
        if feasible.size == 1:
            return (ScheduleResult(pod.key, snap.node_names[feasible[0]], Code.SUCCESS,
                                   evaluated_nodes=processed, feasible_nodes=1), diagnosis, None)
        skipped = fw.run_pre_score(state, pod, feasible)
        scores = fw.run_scores(state, pod, feasible, skipped)
        best = self.select_host(feasible, scores.total)
        return (ScheduleResult(pod.key, snap.node_names[best], Code.SUCCESS,
                               evaluated_nodes=processed, feasible_nodes=int(feasible.size)),
                diagnosis, None)

    def select_host(self, nodes: np.ndarray, totals: np.ndarray) -> int:
        """The node with the highest total; ties uniformly at random (seeded)."""
        top = np.flatnonzero(totals == totals.max())
        if top.size == 1:
            return int(nodes[top[0]])
        return int(nodes[top[int(self.rng.integers(top.size))]])

    def _fail(self, state: CycleState, pod: PodInfo, diagnosis: Diagnosis
              ) -> tuple[ScheduleResult, Diagnosis, PostFilterResult | None]:
        post: PostFilterResult | None = None
        post_msg = ""
        resolvable = any(s.code == Code.UNSCHEDULABLE for s in diagnosis.node_status.values())
        if diagnosis.absent_status is not None and \
                diagnosis.absent_status.code == Code.UNSCHEDULABLE:
            resolvable = True
        for plugin in self.framework.post_filter_plugins:
            post = plugin.post_filter(state, pod, diagnosis) if resolvable else \
                PostFilterResult(Status(Code.UNSCHEDULABLE, (
                    "preemption: 0/{} nodes are available: {}".format(
                        diagnosis.num_all_nodes,
                        "Preemption is not helpful for scheduling."),)))
            post_msg = post.status.message()
            if post.status.is_success:
                break
        n_absent = diagnosis.num_all_nodes - len(diagnosis.node_status)
        message = fit_error_message(
            diagnosis.num_all_nodes,
            diagnosis.prefilter_status.message() if diagnosis.prefilter_status else "",
            [list(s.reasons) for s in diagnosis.node_status.values()],
            list(diagnosis.absent_status.reasons) if diagnosis.absent_status else [],
            n_absent if diagnosis.absent_status else 0, post_msg)
        nominated = None
        if post is not None and post.status.is_success and post.nominated_node >= 0:
            nominated = self.snapshot.node_names[post.nominated_node]
            pod.pod.status.nominated_node_name = nominated
        result = ScheduleResult(pod.key, None, Code.UNSCHEDULABLE, message,
                                evaluated_nodes=len(diagnosis.node_status),
                                nominated_node=nominated,
                                victims=[v.key for v in (post.victims if post else [])])
        return result, diagnosis, post

    # ----------------------------------------------------------------------- assume & bind

    def _assume_and_bind(self, pod: PodInfo, node: int) -> None:
        self.snapshot.add_pod(pod, node)
        pod.pod.spec.node_name = self.snapshot.node_names[node]
        pod.pod.status.nominated_node_name = ""

    def _evict(self, victims: list[PodInfo], preemptor: PodInfo) -> None:
        """Delete preemption victims (kube deletes them through the API server)."""
        for v in victims:
            self.snapshot.remove_pod(v)
            v.pod.status.phase = "Failed"
            v.pod.status.reason = "Preempted"
            v.pod.status.message = f"Preempted by pod {preemptor.key}"
            self.preempted[v.key] = preemptor.key
        self.queue.move_on_event("AssignedPodDelete", self.clock)

    # ---------------------------------------------------------------------------- results

    def outcomes(self) -> dict[str, dict]:
        """Every pod the scheduler saw: ``scheduled`` (node), ``pending`` (reason) or
        ``failed`` (preempted, with the preemptor)."""
        out: dict[str, dict] = {}
        for key, res in self.last_result.items():
            out[key] = {"status": "scheduled", "node": res.node} if res.scheduled else \
                {"status": "pending", "reason": res.message}
        for qp in self.queue.pending():
            if qp.key not in out:
                out[qp.key] = {"status": "pending",
                               "reason": "SchedulingGated" if qp.gated else "not yet attempted"}
        for key, by in self.preempted.items():
            out[key] = {"status": "failed", "reason": f"Preempted by pod {by}"}
        return out


def _restrict(outcome, processed: int):
    """The part of a filter outcome that was examined (the first ``processed`` nodes)."""
    from .framework import FilterOutcome

    return FilterOutcome(outcome.nodes[:processed], outcome.codes[:processed],
                         outcome.failed_by[:processed])
