"""The scheduling cycle (kube-scheduler v1.35's ``ScheduleOne``), on a virtual clock.

``schedule_one`` (schedule_one.go): pop the queue's head; PreFilter; a node nominated by an
earlier preemption is evaluated first (and taken if it passes the filters, without scoring);
otherwise Filter runs over the nodes in NodeTree order starting at a rotating index until
``numFeasibleNodesToFind`` feasible nodes are found (1 when the profile has no Score plugin);
a node to which pods of higher or equal priority are nominated must fit both with and without
them (``RunFilterPluginsWithNominatedPods``). One feasible node is taken without scoring;
several go through PreScore, Score, NormalizeScore and weights, and the highest total wins,
ties broken uniformly by the seeded generator. The pod is assumed (the snapshot updated) and
bound (``spec.nodeName``). When no node fits, the PostFilter plugins run
(``RunPostFilterPlugins``: DefaultPreemption may nominate a node and evict victims), the pod
goes back to the queue with its rejecting plugins, and the FitError message is
``0/N nodes are available: <histogram>. <PostFilter message>``.

Differences from kube-scheduler, all deterministic by design: filters run as if sequentially
(kube runs 16 goroutines and may examine a few extra nodes before it stops; the preemption dry
run likewise), nodes narrowed by a PreFilter result and preemption's candidate nodes are taken
in NodeTree order (kube iterates Go maps), a scheduling cycle takes no virtual time, binding
and preemption are immediate (no API server, no graceful termination), and the final tie
among equally good preemption candidates goes to the first in dry-run order (kube: map order).
"""

from __future__ import annotations

import gc
import math
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from operator import attrgetter

import numpy as np

from ..cluster import Cluster
from ..config import Profile, SchedulerConfiguration, default_configuration
from ..model.objects import Pod, PodCondition
from .framework import (
    SKIP_FILTER_KEY,
    SUCCESS,
    Code,
    CycleState,
    FilterOutcome,
    Framework,
    Handle,
    Status,
)
from . import fused as _fused
from .draws import Draws
from .queue import QueuedPod, SchedulingQueue
from .snapshot import NodeSnapshot, PodInfo

MIN_FEASIBLE_NODES_TO_FIND = 100
FILTER_CHUNK = 512  # nodes filtered at once when only some of them need to be found
MIN_FEASIBLE_NODES_PERCENTAGE_TO_FIND = 5
NO_NODE_AVAILABLE = "0/{} nodes are available"
ERR_NO_NODES_AVAILABLE = "no nodes available to schedule pods"


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


def fit_error_message(num_all_nodes: int, prefilter_msg: str,
                      node_reasons: Iterable[Sequence[str]], absent_reasons: Sequence[str],
                      num_absent: int, postfilter_msg: str) -> str:
    """FitError.Error(): ``0/N nodes are available:`` then the PreFilter message, or else the
    reasons counted over nodes (``node_reasons``: each node's, or a Counter of them; absent
    nodes count with the absent status' reasons) as
    ``"<count> <reason>"`` sorted as strings, each part ending with ``.``; then the PostFilter
    message as it is."""
    msg = NO_NODE_AVAILABLE.format(num_all_nodes) + ":"
    if prefilter_msg:
        msg += f" {prefilter_msg}."
    else:
        counts: dict[str, int] = {}
        # nodes mostly share their statuses' reason tuples: count the tuples first
        if isinstance(node_reasons, Counter):
            tally = node_reasons
        else:
            node_reasons = list(node_reasons)
            try:
                tally = Counter(node_reasons)
            except TypeError:  # lists of reasons
                tally = Counter(map(tuple, node_reasons))
        for reasons, k in tally.items():
            for r in reasons:
                counts[r] = counts.get(r, 0) + k
        if num_absent > 0:
            for r in absent_reasons:
                counts[r] = counts.get(r, 0) + num_absent
        histogram = sorted(f"{v} {k}" for k, v in counts.items())
        if histogram:
            msg += f" {', '.join(histogram)}."
    if postfilter_msg:
        msg += f" {postfilter_msg}"
    return msg


_REASONS_OF = attrgetter("reasons")


class NodeStatuses:
    """kube's ``NodeToStatus`` explicit entries, node index -> :class:`Status`, read like a
    dict. A FitError records every rejected node (thousands on a large cluster, over and over
    in a contended replay) with a few distinct statuses: :meth:`set_many` keeps them as one
    status index per node, so recording, counting the reasons (:meth:`reason_tally`) and
    looking up codes (:meth:`codes_of`) cost no Python work per node."""

    __slots__ = ("_one", "_nodes", "_which", "_statuses", "_pos")

    def __init__(self) -> None:
        self._one: dict[int, Status] = {}   # set one at a time (and the bulk once mixed)
        self._nodes: np.ndarray | None = None   # set in bulk: node indices,
        self._which: np.ndarray | None = None   # each one's index into _statuses
        self._statuses: list[Status] = []
        self._pos: np.ndarray | None = None     # node -> position in _nodes (-1), lazily

    def set_many(self, nodes: np.ndarray, which: np.ndarray, statuses: list[Status]) -> None:
        """``self[nodes[i]] = statuses[which[i]]`` for every ``i`` (distinct nodes)."""
        if self._nodes is not None:  # (a second bulk: kept one at a time)
            self._flatten()
        if self._one:
            for node in set(self._one).intersection(nodes.tolist()):
                del self._one[node]
        self._nodes = np.asarray(nodes, np.int64)
        self._which = np.asarray(which, np.int64)
        self._statuses = statuses
        self._pos = None

    def _flatten(self) -> None:
        nodes, which, statuses = self._nodes, self._which, self._statuses
        self._nodes = self._which = self._pos = None
        self._statuses = []
        bulk = dict(zip(nodes.tolist(), map(statuses.__getitem__, which.tolist())))
        bulk.update(self._one)
        self._one = bulk

    def _position(self, node: int) -> int:
        if self._nodes is None or node < 0:
            return -1
        if self._pos is None:
            pos = np.full(int(self._nodes.max()) + 1 if self._nodes.size else 0, -1, np.int64)
            pos[self._nodes] = np.arange(self._nodes.size)
            self._pos = pos
        return int(self._pos[node]) if node < self._pos.size else -1

    def get(self, node: int, default: Status | None = None) -> Status | None:
        got = self._one.get(node)
        if got is not None:
            return got
        i = self._position(node)
        return self._statuses[self._which[i]] if i >= 0 else default

    def __getitem__(self, node: int) -> Status:
        got = self.get(node)
        if got is None:
            raise KeyError(node)
        return got

    def __setitem__(self, node: int, status: Status) -> None:
        if self._position(node) >= 0:
            self._flatten()
        self._one[node] = status

    def __contains__(self, node: object) -> bool:
        return node in self._one or (isinstance(node, (int, np.integer))
                                     and self._position(int(node)) >= 0)

    def __len__(self) -> int:
        return len(self._one) + (self._nodes.size if self._nodes is not None else 0)

    def __iter__(self):
        yield from self._one
        if self._nodes is not None:
            yield from self._nodes.tolist()

    def keys(self):
        return iter(self)

    def values(self):
        yield from self._one.values()
        if self._nodes is not None:
            yield from map(self._statuses.__getitem__, self._which.tolist())

    def items(self):
        return zip(self, self.values())

    def reason_tally(self) -> Counter:
        """The number of nodes with each tuple of reasons."""
        tally = Counter(map(_REASONS_OF, self._one.values()))
        if self._nodes is not None and self._nodes.size:
            counts = np.bincount(self._which, minlength=len(self._statuses)).tolist()
            for status, k in zip(self._statuses, counts):
                if k:
                    tally[status.reasons] += k
        return tally

    def codes_of(self, nodes: np.ndarray, absent: int) -> np.ndarray:
        """The status code of each of ``nodes`` (``absent`` for nodes without a status)."""
        nodes = np.asarray(nodes, np.int64)
        out = np.full(nodes.size, absent, np.int64)
        if self._nodes is not None and self._nodes.size:
            self._position(0)  # (builds the index)
            pos = self._pos
            inside = nodes < pos.size
            at = np.where(inside, pos[np.where(inside, nodes, 0)], -1)
            codes = np.array([int(st.code) for st in self._statuses], np.int64)
            hit = at >= 0
            out[hit] = codes[self._which[at[hit]]]
        if self._one:
            for i, node in enumerate(nodes.tolist()):
                st = self._one.get(node)
                if st is not None:
                    out[i] = int(st.code)
        return out


@dataclass
class Diagnosis:
    """Why a pod did not fit (kube's Diagnosis): per-node statuses (``NodeToStatus``'s
    explicit entries, by node index), the status of the nodes absent from them (None: kube's
    default, UnschedulableAndUnresolvable without reasons), the PreFilter status when PreFilter
    rejected the pod, and the plugins that rejected it (which cluster events may requeue it)."""

    node_status: NodeStatuses = field(default_factory=NodeStatuses)
    absent_status: Status | None = None     # nodes a PreFilter result excluded, or all
    prefilter_status: Status | None = None
    unschedulable_plugins: set[str] = field(default_factory=set)
    num_all_nodes: int = 0

    def status_of(self, node: int) -> Status:
        """``NodeToStatus.Get``: the node's status, else the absent nodes' status."""
        s = self.node_status.get(node)
        if s is not None:
            return s
        return self.absent_status or _DEFAULT_ABSENT

    def add_plugin_status(self, status: Status) -> None:
        """``Diagnosis.AddPluginStatus``: a rejecting plugin is recorded."""
        if status.plugin and status.is_rejected:
            self.unschedulable_plugins.add(status.plugin)


_DEFAULT_ABSENT = Status(Code.UNSCHEDULABLE_AND_UNRESOLVABLE)


@dataclass
class ScheduleResult:
    """One scheduling attempt. ``code``: SUCCESS; UNSCHEDULABLE (a FitError);
    UNSCHEDULABLE_AND_UNRESOLVABLE (no nodes at all); ERROR; SKIP (a pod being deleted)."""

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
    """What a PostFilter plugin (preemption) returned: its status, and kube's NominatingInfo:
    ``mode`` "noop" leaves the pod's nominated node as it is, "override" sets it to
    ``nominated_node`` (-1: clears it); ``victims`` are the pods to evict."""

    status: Status
    nominated_node: int = -1
    victims: list[PodInfo] = field(default_factory=list)
    mode: str = "noop"


class Scheduler:
    """One profile of kube-scheduler over a cluster.

    ``Scheduler(cluster, profile=None, config=None, seed=0)``: the cluster's nodes and bound
    pods form the snapshot; its pending pods are queued in file order (call
    :meth:`enqueue_pending`). :meth:`run` schedules until the queue has nothing it can make
    progress on; :attr:`outcomes` says, per pod, where it went or why it waits.
    """

    def __init__(self, cluster: Cluster, profile: Profile | None = None, *,
                 config: SchedulerConfiguration | None = None, seed: int = 0,
                 fused: bool = True) -> None:
        self.config = config or default_configuration()
        self.profile = profile or self.config.profile()
        self.cluster = cluster
        self.percentage = (self.profile.percentage_of_nodes_to_score
                           if self.profile.percentage_of_nodes_to_score is not None
                           else self.config.percentage_of_nodes_to_score)
        self.snapshot = NodeSnapshot(cluster.nodes,
                                     priority_classes=cluster.priority_class_map())
        self.rng = np.random.default_rng(seed)
        #: tie-breaks and preemption's random offset (:mod:`.draws`), all from ``rng``
        self.draws = Draws(self.rng)
        self.handle = Handle(self.snapshot, cluster, self.rng, draws=self.draws)
        self.framework = Framework(self.profile, self.handle)
        self.queue = SchedulingQueue(float(self.config.pod_initial_backoff_seconds),
                                     float(self.config.pod_max_backoff_seconds),
                                     plugins=self.framework.instances)
        self.handle.nominator = self.queue.nominator
        #: The fused fast path (:mod:`.fused`), None when disabled or when a plugin of the
        #: profile is not fusable; results are the same either way.
        self.fused: _fused.FusedPath | None = None
        cls = type(self)
        if cls._find_nodes_that_pass_filters is not Scheduler._find_nodes_that_pass_filters \
                or cls._filter_until_found is not Scheduler._filter_until_found:
            fused = False  # a subclass filters its own way
        if fused:
            path = _fused.FusedPath(self.framework)
            if path.supported:
                self.fused = path
        self.clock = 0.0
        self._plain_select_host = type(self).select_host is Scheduler.select_host
        #: (nodes, numFeasibleNodesToFind, percentage) of the fused path
        self._to_find = (-1, 0, None)
        self.next_start_node_index = 0
        #: Bumped whenever what filters see may have changed (a bind, an eviction, a
        #: nomination): a parked pod that failed at the current version would fail again.
        self.version = 0
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
        if self.fused is not None and _fused.ENABLED:
            # the pod's fused inputs compiled now, while its objects are fresh in the caches
            # (kept in the pod's cache while the snapshot's nodes stay the same)
            self.fused.prepare(info)
        self.queue.add(info, self.clock)
        return info

    def enqueue_pending(self) -> int:
        """Queue every pending pod of the cluster for this profile's schedulerName (with
        the cluster's objects out of the garbage collector's generations, as in :meth:`run`)."""
        n = 0
        frozen = gc.isenabled() and gc.get_freeze_count() == 0
        if frozen:
            gc.freeze()
        try:
            for pod in self.cluster.pending_pods():
                if pod.spec.scheduler_name == self.profile.scheduler_name:
                    self.enqueue(pod)
                    n += 1
        finally:
            if frozen:
                gc.unfreeze()
        return n

    # ------------------------------------------------------------------------------ run

    def run(self, max_attempts: int | None = None,
            on_result: Callable[[ScheduleResult], None] | None = None) -> list[ScheduleResult]:
        """Schedule until nothing can make progress. When nothing can be popped, the virtual
        clock advances to the next backoff completion (of a pod in the error backoff queue:
        backoffQ is popped at once when activeQ is empty) or to the 30 s tick at which pods
        parked in the unschedulable pool for 5 minutes are flushed back; only pods that
        failed before the cluster or the nominations last changed count (the others would
        fail again the same way, so kube's endless retries of them are not simulated).
        ``on_result(result)`` is called after every attempt (progress display)."""
        # The nodes, pods and cluster objects live through the run: moved out of the cyclic
        # garbage collector's generations, they are not rescanned by every full collection
        # (most of a cycle's cost on big clusters otherwise). Restored afterwards.
        frozen = gc.isenabled() and gc.get_freeze_count() == 0
        if frozen:
            gc.freeze()
        try:
            return self._run(max_attempts, on_result)
        finally:
            if frozen:
                gc.unfreeze()

    def _run(self, max_attempts, on_result) -> list[ScheduleResult]:
        done = 0
        while max_attempts is None or done < max_attempts:
            result = self.schedule_one()
            if result is None:
                wake = [t for t in (self.queue.next_backoff_expiry(newer_than=self.version),
                                    self.queue.next_leftover_flush(newer_than=self.version))
                        if t is not None]
                if not wake:
                    break
                self.clock = max(self.clock, min(wake))
                continue
            done += 1
            if on_result is not None:
                on_result(result)
        return self.results

    def next_retry_time(self) -> float:
        """When the queue would next let a pod that failed before the cluster last changed
        retry (inf if never): its error backoff completing, or the 30 s flush of pods parked
        for 5 minutes (the unschedulable pool is in parking order, so its first pod is the
        only candidate). For event-driven callers (replays, the simulation)."""
        q = self.queue
        best = math.inf
        t = q.next_backoff_expiry(newer_than=self.version)
        if t is not None:
            best = t
        for qp in q.unschedulable.values():
            if qp.version < self.version:
                due = qp.timestamp + q.max_in_unschedulable
                period = 30.0
                best = min(best, (math.floor(due / period) + 1) * period)
            break
        return best

    def schedule_one(self) -> ScheduleResult | None:
        """One scheduling cycle for the head of the queue; None if nothing can be popped
        now."""
        qp = self.queue.pop(self.clock)
        if qp is None:
            return None
        pod = qp.info
        if pod.pod.metadata.deletion_timestamp:  # skipPodSchedule: being deleted
            self.queue.done(pod.key)
            result = ScheduleResult(pod.key, None, Code.SKIP,
                                    f"skip schedule deleting pod: {pod.key}",
                                    attempt=qp.attempts, time=self.clock)
            self._record(result)
            return result
        state = CycleState()
        result, diagnosis, post = self._schedule_pod(state, pod)
        result.attempt = qp.attempts
        result.time = self.clock
        if result.node is not None:
            self._assume_and_bind(pod, self.snapshot.node_index[result.node])
            self.queue.done(pod.key)
            # v1.35 (QueueingHints GA): every parked pod, filtered by its rejecting plugins'
            # hints (AssignedPodAdded's cross-topology precheck is the pre-hints path)
            self.queue.move_on_event("AssignedPodAdd", self.clock, obj=pod)
        else:
            self._handle_failure(qp, result, diagnosis, post)
        self._record(result)
        return result

    def _record(self, result: ScheduleResult) -> None:
        self.results.append(result)
        self.last_result[result.pod] = result

    # -------------------------------------------------------------------------- the cycle

    def _schedule_pod(self, state: CycleState, pod: PodInfo
                      ) -> tuple[ScheduleResult, Diagnosis | None, PostFilterResult | None]:
        """schedulePod + findNodesThatFitPod (+ PostFilter on a FitError)."""
        snap, fw = self.snapshot, self.framework
        all_nodes = snap.evaluation_order()
        n_all = int(all_nodes.size)
        if n_all == 0:
            return (ScheduleResult(pod.key, None, Code.UNSCHEDULABLE_AND_UNRESOLVABLE,
                                   ERR_NO_NODES_AVAILABLE), None, None)
        if self.fused is not None and _fused.ENABLED:
            result = self._schedule_fused(pod, all_nodes)
            if result is not None:
                return result
        diagnosis = Diagnosis(num_all_nodes=n_all)
        pre = fw.run_pre_filter(state, pod, all_nodes)
        state[SKIP_FILTER_KEY] = pre.skipped
        if not (pre.status.code == Code.UNSCHEDULABLE_AND_UNRESOLVABLE and pre.status.plugin):
            # RunPreFilterPlugins returns pluginsWithNodes, except after a plugin's own
            # UnschedulableAndUnresolvable
            diagnosis.unschedulable_plugins.update(pre.narrowing)
        if not pre.status.is_success:
            if not pre.status.is_rejected:  # an error: retried from the error backoff queue
                msg = pre.status.message()
                if pre.status.plugin:
                    msg = f'running PreFilter plugin "{pre.status.plugin}": {msg}'
                return ScheduleResult(pod.key, None, Code.ERROR, msg), None, None
            diagnosis.absent_status = pre.status
            diagnosis.prefilter_status = pre.status
            diagnosis.add_plugin_status(pre.status)
            return self._fail(state, pod, diagnosis)

        # "NominatedNodeName" set by an earlier preemption: tried first, on its own (the
        # PreFilter result is not consulted); a failure stays in the diagnosis
        nominated = pod.pod.status.nominated_node_name
        if nominated:
            idx = snap.node_index.get(nominated)
            if idx is not None and snap.alive[idx]:
                feasible, _ = self._find_nodes_that_pass_filters(
                    state, pod, np.array([idx], np.int64), pre.skipped, diagnosis,
                    explain=True)
                if feasible.size:
                    return (ScheduleResult(pod.key, nominated, Code.SUCCESS,
                                           evaluated_nodes=1 + len(diagnosis.node_status),
                                           feasible_nodes=1), diagnosis, None)

        nodes = all_nodes
        if pre.allowed is not None:
            allowed = np.zeros(snap.num_nodes, np.bool_)
            allowed[pre.allowed] = True
            nodes = all_nodes[allowed[all_nodes]]
            # kube formats the plugin set it shares with the diagnosis, which by now also
            # holds a plugin that rejected the nominated node
            diagnosis.absent_status = Status(
                Code.UNSCHEDULABLE_AND_UNRESOLVABLE,
                (f"node(s) didn't satisfy plugin(s) "
                 f"[{' '.join(sorted(diagnosis.unschedulable_plugins))}]",))
        feasible, new_failures = self._find_nodes_that_pass_filters(
            state, pod, nodes, pre.skipped, diagnosis)
        # processed = feasible nodes + NodeToStatus.Len() (which includes a failed nominated
        # node even when the pass did not reach it)
        rejected = len(diagnosis.node_status) if feasible.size == 0 else \
            len(diagnosis.node_status) + new_failures
        processed = int(feasible.size) + rejected
        self.next_start_node_index = (self.next_start_node_index + processed) % n_all
        if feasible.size == 0:
            return self._fail(state, pod, diagnosis)
        if feasible.size == 1:
            return (ScheduleResult(pod.key, snap.node_names[feasible[0]], Code.SUCCESS,
                                   evaluated_nodes=1 + rejected, feasible_nodes=1),
                    diagnosis, None)
        if fw.score_plugins:
            skipped = fw.run_pre_score(state, pod, feasible)
            totals = fw.run_scores(state, pod, feasible, skipped).total
        else:  # prioritizeNodes without Score plugins: every node scores 1
            totals = np.ones(feasible.size, np.int64)
        best = self.select_host(feasible, totals)
        return (ScheduleResult(pod.key, snap.node_names[best], Code.SUCCESS,
                               evaluated_nodes=processed, feasible_nodes=int(feasible.size)),
                diagnosis, None)

    def _schedule_fused(self, pod: PodInfo, all_nodes: np.ndarray):
        """The cycle as one kernel call (:mod:`.fused`) when the pod and the cluster allow it:
        (result, diagnosis, post) as :meth:`_schedule_pod` returns them, when a node fits or
        (see :meth:`_fused_failure`) when none does; None otherwise (the per-plugin path then
        runs, and explains)."""
        if pod.pod.status.nominated_node_name or self.queue.nominator.node_names():
            return None
        n_all = int(all_nodes.size)
        cached = self._to_find
        if cached[0] == n_all and cached[2] == self.percentage:
            to_find = cached[1]
        else:
            to_find = num_feasible_nodes_to_find(self.percentage, n_all) \
                if self.framework.score_plugins else 1
            self._to_find = (n_all, to_find, self.percentage)
        out = self.fused.run(pod, all_nodes, self.next_start_node_index % n_all, to_find)
        if out is None:
            return None
        found, processed, status, top = out
        if status != _fused.OK:
            return None
        if found == 0:
            return self._fused_failure(pod, all_nodes)
        self.next_start_node_index = (self.next_start_node_index + processed) % n_all
        if len(top) == 1:
            best = int(top[0])
        elif self._plain_select_host:
            best = int(top[self.draws.below(len(top))])  # select_host, as it draws
        else:  # a subclass' own tie-break, among the tied top nodes
            best = self.select_host(top, np.zeros(top.size, np.int64))
        return ScheduleResult(pod.key, self.snapshot.node_names[best], Code.SUCCESS,
                              evaluated_nodes=processed, feasible_nodes=found), None, None

    def _fused_failure(self, pod: PodInfo, all_nodes: np.ndarray):
        """No node fits: the FitError from the kernel's per-node failed checks, for a
        framework that explains rejections by plugin only (quiet replays: its
        ``filter_reason_groups``) and has no PostFilter plugin (whose dry runs need the
        per-plugin cycle state). Each node's status is that of the first filter plugin, in
        the profile's order, whose check it fails, with that plugin's code; the per-plugin
        path gives the same diagnosis (property-tested). None when it does not apply."""
        fw = self.framework
        if getattr(fw, "filter_reason_groups", None) is None or fw.post_filter_plugins:
            return None
        n_all = int(all_nodes.size)
        start = self.next_start_node_index % n_all
        fails = self.fused.failures(pod, all_nodes, start)
        if fails is None:
            return None
        checks = self.fused.filter_checks
        distinct = np.flatnonzero(np.bincount(fails))
        index = np.empty(int(distinct[-1]) + 1, np.int64)
        statuses = []
        diagnosis = Diagnosis(num_all_nodes=n_all)
        for i, v in enumerate(distinct.tolist()):
            first = next(((name, bit) for name, bit in checks if v & bit), None)
            if first is None:  # (a node no check rejects: not a failure after all)
                return None
            name, bit = first
            unresolvable = bit not in (_fused.FAIL_BITS["NodeResourcesFit"],
                                       _fused.FAIL_BITS["GpuShare"]) or \
                v & (_fused.FIT_UNRESOLVABLE if bit == _fused.FAIL_BITS["NodeResourcesFit"]
                     else _fused.GPU_UNRESOLVABLE)
            status = Status(Code.UNSCHEDULABLE_AND_UNRESOLVABLE if unresolvable
                            else Code.UNSCHEDULABLE, (), name)
            statuses.append(status)
            index[v] = i
            diagnosis.add_plugin_status(status)
        rotated = np.concatenate([all_nodes[start:], all_nodes[:start]]) if start \
            else all_nodes
        diagnosis.node_status.set_many(rotated, index[fails], statuses)
        # (processed = every node: the rotating start index comes back where it was)
        return self._fail(CycleState(), pod, diagnosis)

    def _find_nodes_that_pass_filters(self, state: CycleState, pod: PodInfo,
                                      nodes: np.ndarray, skipped: frozenset[str],
                                      diagnosis: Diagnosis, *, explain: bool = False
                                      ) -> tuple[np.ndarray, int]:
        """findNodesThatPassFilters: from the rotating start index, the first
        ``numFeasibleNodesToFind`` feasible nodes (1 without Score plugins). The plugins that
        rejected the nodes examined on the way go to the diagnosis; so do those nodes'
        statuses, with reasons, when ``explain`` or when no node is feasible (a FitError).
        Returns (feasible nodes, number of rejected nodes not already in the diagnosis)."""
        fw = self.framework
        n = int(nodes.size)
        to_find = num_feasible_nodes_to_find(self.percentage, n)
        if not fw.score_plugins:
            to_find = 1
        if n == 0:
            return np.empty(0, np.int64), 0
        start = self.next_start_node_index % n
        if not fw.filter_plugins:
            return np.array([nodes[(start + i) % n] for i in range(min(to_find, n))],
                            np.int64), 0
        rotated = np.concatenate([nodes[start:], nodes[:start]]) if start else nodes
        outcome = self._filter_until_found(state, pod, rotated, skipped, to_find)
        rotated = outcome.nodes  # the examined prefix of the rotation
        ok = outcome.codes == SUCCESS
        positions = np.flatnonzero(ok)
        processed = int(positions[to_find - 1]) + 1 if positions.size >= to_find > 0 \
            else int(rotated.size)
        feasible = rotated[:processed][ok[:processed]]
        failed = np.flatnonzero(~ok[:processed])
        if failed.size == 0:
            return feasible, 0
        known = diagnosis.node_status
        new = int(failed.size)
        if known:
            failed_nodes = set(rotated[failed].tolist())
            new -= sum(1 for node in known if node in failed_nodes)
        if not explain and feasible.size:
            # the statuses themselves are not needed: only who rejected (queueing)
            for j in np.unique(outcome.failed_by[failed]):
                if j >= 0:
                    diagnosis.unschedulable_plugins.add(fw.filter_plugins[j].name)
            if outcome.explained:
                for node in rotated[failed].tolist():
                    if node in outcome.explained:
                        diagnosis.unschedulable_plugins.add(outcome.explained[node][0])
            return feasible, new
        grouped = getattr(fw, "filter_reason_groups", None)
        if grouped is not None and not known:
            # reasons already grouped (quiet replays): statuses per (group, code), by numpy
            groups, whys = grouped(state, pod, _restrict(outcome, processed))
            keys = groups * 256 + outcome.codes[failed].astype(np.int64)  # (codes < 256)
            present = np.flatnonzero(np.bincount(keys))  # (a few small keys: no sorting)
            index = np.empty(int(present[-1]) + 1, np.int64)
            index[present] = np.arange(present.size)
            statuses_list = []
            for key in present.tolist():
                group, code = divmod(key, 256)
                plugin, why = whys[group]
                status = Status(Code(code), why if type(why) is tuple else tuple(why), plugin)
                statuses_list.append(status)
                diagnosis.add_plugin_status(status)
            known.set_many(rotated[failed], index[keys], statuses_list)
            return feasible, new
        reasons = fw.filter_reasons(state, pod, _restrict(outcome, processed))
        failed_nodes = rotated[failed].tolist()
        # (code, (plugin, reasons)) per node; nodes mostly share a few of them, so the
        # statuses are made per distinct key and handed out without a Python loop per node
        keys = list(zip(outcome.codes[failed].tolist(), map(reasons.__getitem__, failed_nodes)))
        try:
            distinct = dict.fromkeys(keys)
        except TypeError:  # reasons given as lists: one at a time
            distinct = None
        if distinct is not None:
            statuses_list = []
            for i, key in enumerate(distinct):  # (in node order, as kube's Diagnosis does)
                code, (plugin, why) = key
                status = Status(Code(code), why if type(why) is tuple else tuple(why), plugin)
                statuses_list.append(status)
                distinct[key] = i
                diagnosis.add_plugin_status(status)
            known.set_many(rotated[failed], np.fromiter(map(distinct.__getitem__, keys),
                                                        np.int64, len(keys)), statuses_list)
            return feasible, new
        statuses: dict[tuple, Status] = {}  # equal statuses shared (Status is immutable)
        for node, (code, (plugin, why)) in zip(failed_nodes, keys):
            key = (code, why if type(why) is tuple else tuple(why), plugin)
            status = statuses.get(key)
            if status is None:
                status = statuses[key] = Status(Code(key[0]), key[1], plugin)
                diagnosis.add_plugin_status(status)
            known[node] = status
        return feasible, new

    def _filter_until_found(self, state: CycleState, pod: PodInfo, rotated: np.ndarray,
                            skipped: frozenset[str], to_find: int) -> FilterOutcome:
        """Filter ``rotated`` in growing chunks until ``to_find`` nodes passed or all were
        examined. Verdicts are per node, so this equals filtering every node and keeping the
        prefix kube examines; it only spares the work past that prefix."""
        fw, n = self.framework, int(rotated.size)
        if to_find >= n:
            return fw.run_filters_with_nominated_pods(state, pod, rotated, skipped)
        parts: list[FilterOutcome] = []
        found, pos, chunk = 0, 0, max(2 * to_find, FILTER_CHUNK)
        while pos < n and found < to_find:
            part = fw.run_filters_with_nominated_pods(state, pod, rotated[pos:pos + chunk],
                                                      skipped)
            parts.append(part)
            found += int(np.count_nonzero(part.codes == SUCCESS))
            pos += part.nodes.size
            chunk *= 2
        if len(parts) == 1:
            return parts[0]
        explained: dict = {}
        for part in parts:
            explained.update(part.explained)
        return FilterOutcome(np.concatenate([p.nodes for p in parts]),
                             np.concatenate([p.codes for p in parts]),
                             np.concatenate([p.failed_by for p in parts]), explained=explained)

    def select_host(self, nodes: np.ndarray, totals: np.ndarray) -> int:
        """The node with the highest total; ties uniformly at random (seeded)."""
        top = np.flatnonzero(totals == totals.max())
        if top.size == 1:
            return int(nodes[top[0]])
        return int(nodes[top[self.draws.below(top.size)]])

    def _fail(self, state: CycleState, pod: PodInfo, diagnosis: Diagnosis
              ) -> tuple[ScheduleResult, Diagnosis, PostFilterResult]:
        """A FitError: run the PostFilter plugins and build the message (schedulingCycle).
        Without PostFilter plugins the nomination is cleared."""
        if self.framework.post_filter_plugins:
            post = self.framework.run_post_filter(state, pod, diagnosis)
            post_msg = post.status.message()
        else:
            post = PostFilterResult(Status(Code.UNSCHEDULABLE), mode="override")
            post_msg = ""
        n_absent = diagnosis.num_all_nodes - len(diagnosis.node_status)
        absent = diagnosis.absent_status
        message = fit_error_message(
            diagnosis.num_all_nodes,
            diagnosis.prefilter_status.message() if diagnosis.prefilter_status else "",
            diagnosis.node_status.reason_tally(),
            list(absent.reasons) if absent else [], n_absent, post_msg)
        nominated = None
        if post.status.is_success and post.nominated_node >= 0:
            nominated = self.snapshot.node_names[post.nominated_node]
        result = ScheduleResult(pod.key, None, Code.UNSCHEDULABLE, message,
                                evaluated_nodes=len(diagnosis.node_status),
                                nominated_node=nominated,
                                victims=[v.key for v in post.victims]
                                if post.status.is_success else [])
        return result, diagnosis, post

    # ---------------------------------------------------------------------------- failure

    def _handle_failure(self, qp: QueuedPod, result: ScheduleResult,
                        diagnosis: Diagnosis | None, post: PostFilterResult | None) -> None:
        """handleSchedulingFailure: back to the queue (a FitError carries the rejecting
        plugins; other failures keep the pod's previous ones), the nomination updated
        (PostFilter's NominatingInfo; cleared on errors), then the preemption carried out."""
        pod = qp.info
        if result.code == Code.UNSCHEDULABLE and diagnosis is not None:
            plugins = frozenset(diagnosis.unschedulable_plugins)
        else:
            plugins = qp.unschedulable_plugins
        if post is None or post.mode == "override":
            node = (self.snapshot.node_names[post.nominated_node]
                    if post is not None and post.nominated_node >= 0 else "")
            self._nominate(pod, node)
        else:  # noop: kept as the pod's status says
            self.queue.nominator.add(pod, pod.pod.status.nominated_node_name)
        # (kube updates the nomination right after requeueing; stamping the version after
        # the pod's own nomination change keeps that change from looking like news to it)
        self.queue.add_unschedulable(qp, self.clock, plugins, result.message,
                                     version=self.version)
        if post is not None and post.status.is_success and post.victims:
            self._prepare_candidate(pod, post.nominated_node, post.victims)

    def _nominate(self, pod: PodInfo, node_name: str) -> None:
        if pod.pod.status.nominated_node_name != node_name:
            self.version += 1
        pod.pod.status.nominated_node_name = node_name
        self.queue.nominator.add(pod, node_name)

    def _prepare_candidate(self, preemptor: PodInfo, node: int,
                           victims: list[PodInfo]) -> None:
        """prepareCandidate: pods of lower priority nominated to the node lose their
        nomination, then the victims are evicted."""
        name = self.snapshot.node_names[node]
        for other in self.queue.nominator.pods_for_node(name):
            if other.priority < preemptor.priority:
                self._nominate(other, "")
        self._evict(victims, preemptor)

    # ----------------------------------------------------------------------- assume & bind

    def _assume_and_bind(self, pod: PodInfo, node: int) -> None:
        self.snapshot.add_pod(pod, node)
        pod.pod.spec.node_name = self.snapshot.node_names[node]
        if pod.pod.status.nominated_node_name:
            pod.pod.status.nominated_node_name = ""
        self.queue.nominator.delete(pod.key)
        self.version += 1

    def _evict(self, victims: list[PodInfo], preemptor: PodInfo) -> None:
        """Delete preemption victims (kube marks them with a DisruptionTarget condition and
        deletes them through the API server); each deletion is an AssignedPodDelete event."""
        for v in victims:
            self.snapshot.remove_pod(v)
            status = v.pod.status
            status.conditions = [c for c in status.conditions if c.type != "DisruptionTarget"]
            status.conditions.append(PodCondition(
                type="DisruptionTarget", status="True", reason="PreemptionByScheduler",
                message=f"{preemptor.pod.spec.scheduler_name}: preempting to accommodate a "
                        "higher priority pod"))
            status.phase = "Failed"
            status.reason = "Preempted"
            status.message = f"Preempted by pod {preemptor.key}"
            self.preempted[v.key] = preemptor.key
            self.version += 1
            self.queue.move_on_event("AssignedPodDelete", self.clock, obj=v)

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

    nodes = outcome.nodes[:processed]
    kept = {}
    if outcome.explained:
        examined = set(nodes.tolist())
        kept = {n: v for n, v in outcome.explained.items() if n in examined}
    return FilterOutcome(nodes, outcome.codes[:processed], outcome.failed_by[:processed],
                         explained=kept)
