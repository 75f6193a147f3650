"""schedbench's :class:`~schedbench.scheduler.scheduler.Scheduler` as a controller of the
simulated control plane (kube-scheduler's informers, ``ScheduleOne`` loop and binder).

It watches Nodes, Pods and the objects plugins read through the Handle (Services,
ReplicaSets, Namespaces, PriorityClasses: default spreading, namespace selectors,
priorities), and keeps the scheduler's snapshot and :class:`~schedbench.cluster.Cluster` view
in step with the store, as kube-scheduler's cache does (pkg/scheduler/eventhandlers.go):

- an unbound, non-terminal Pod whose ``spec.schedulerName`` is the profile's enters the
  scheduling queue (a change of its spec or labels re-queues it); a bound one is added to the
  snapshot (``AssignedPodAdd``), a deleted or terminal (Succeeded/Failed) one removed
  (``AssignedPodDelete``: its resources are free again);
- Node add / update (labels, allocatable, taints, ``spec.unschedulable``, images) / delete
  update the snapshot (``NodeAdd``, ``NodeUpdate``, ``NodeDelete`` move the parked pods the
  event may help);
- scheduling cycles run as engine events at :data:`~.engine.PRIO_SCHEDULER`, at the instant
  something was queued or changed, and when the queue next lets a pod retry (a backoff
  completing; the 30 s flush of pods parked 5 minutes) - counting only pods that failed
  before the cluster last changed, as :meth:`Scheduler.run` does;
- a placed pod is bound through the store: ``spec.nodeName`` and condition
  ``PodScheduled=True`` (and the GPU indices annotation for GPU pods); a pod that fits
  nowhere gets ``PodScheduled=False``, reason ``Unschedulable``, message the FitError's
  (``0/N nodes are available: ...``), written only when it changes (kube's
  ``updatePod`` skips unchanged conditions); a scheduler error gives reason
  ``SchedulerError``; gated pods reason ``SchedulingGated``;
- preemption victims are deleted in the store with cause ``preempted by NS/POD`` and the
  preemptor's ``status.nominatedNodeName`` is written.

A cycle takes no virtual time (see the scheduler's module docstring for the other
deterministic simplifications). The pods the snapshot holds are private copies (the store's
objects are never modified in place).
"""

from __future__ import annotations

import math
from typing import Any

from ..cluster import Cluster
from ..config import SchedulerConfiguration
from ..model.objects import Pod, PodCondition
from ..scheduler.framework import Code
from ..scheduler.scheduler import ScheduleResult, Scheduler
from ..scheduler.snapshot import GPU_INDEX, PodInfo
from .engine import PRIO_SCHEDULER
from .timefmt import stamp

#: PodScheduled=False reasons (kube's v1.PodReasonUnschedulable, PodReasonSchedulerError,
#: PodReasonSchedulingGated) and the causes of the status writes that set them.
_UNSCHEDULABLE = "Unschedulable"
_SCHEDULER_ERROR = "SchedulerError"
_GATED = "SchedulingGated"
_CAUSES = {_UNSCHEDULABLE: "unschedulable", _SCHEDULER_ERROR: "scheduler error",
           _GATED: "scheduling gated"}


def _node_view(node) -> tuple:
    """The Node fields the snapshot and plugins read; a MODIFIED Node that changes none of
    them (heartbeats, conditions) is not a scheduling event."""
    return (node.metadata.labels, node.allocatable, node.spec.taints, node.spec.unschedulable,
            node.status.images)


def _pod_condition(pod: Pod, type_: str) -> PodCondition | None:
    for c in pod.status.conditions:
        if c.type == type_:
            return c
    return None


class SchedulerController:
    """The scheduler of one profile (``profile.schedulerName``) as a controller.

    ``SchedulerController(ctx, profile=None, config=None, seed=0, cluster=None)``: the
    profile and configuration as :func:`~schedbench.scheduler.profiles.resolve_profile`
    returns them (kube-scheduler's default profile when None); ``cluster``: objects the
    Handle should see that the store does not hold (e.g. the initial pods, for the atc23
    plugins' typical pods). :meth:`start` registers the watches; everything then happens
    through store events. ``explain_failures=False`` drops the per-node reason histogram
    from FitError messages (cheaper failed attempts on large clusters; the decisions are the
    same)."""

    name = "scheduler"

    def __init__(self, ctx: Any, *, profile=None, config: SchedulerConfiguration | None = None,
                 seed: int = 0, cluster: Cluster | None = None,
                 explain_failures: bool = True) -> None:
        self.ctx = ctx
        self.engine = ctx.engine
        self.store = ctx.store
        view = Cluster(pods=list(cluster.pods) if cluster is not None else [],
                       source="simulation")
        self.cluster = view
        self.scheduler = Scheduler(view, profile, config=config, seed=seed)
        if not explain_failures:
            from ..replay.kube_engine import quiet_filter_reasons

            quiet_filter_reasons(self.scheduler.framework)
        self.snapshot = self.scheduler.snapshot
        self.queue = self.scheduler.queue
        self.scheduler_name = self.scheduler.profile.scheduler_name
        self.prio = PRIO_SCHEDULER
        #: bound pods in the snapshot (and bound pods whose node the snapshot lacks)
        self.bound: dict[str, PodInfo] = {}
        self.waiting_for_node: dict[str, dict[str, Pod]] = {}   # node -> key -> pod copy
        self.queued_uid: dict[str, str] = {}                     # pending key -> uid
        self._kick = None
        self._wake = None
        self._wake_time = math.inf
        self._index: dict[str, dict[str, int]] = {}  # kind attr -> key -> position
        # counters (the simulation's summary)
        self.attempts = 0
        self.binds = 0
        self.failures = 0
        self.preemptions = 0

    # ------------------------------------------------------------------------- wiring

    def start(self) -> None:
        watch = self.store.watch
        for kind in ("Namespace", "PriorityClass", "Service", "ReplicaSet"):
            watch(kind, self._on_view_object)
        watch("Node", self._on_node)
        watch("Pod", self._on_pod)

    def _now(self) -> float:
        return self.engine.now

    def _sync_clock(self) -> None:
        self.scheduler.clock = max(self.scheduler.clock, self.engine.now)

    def kick(self) -> None:
        """Run scheduling cycles at the current instant (once, however often asked)."""
        if self._kick is None:
            self._kick = self.engine.at(self.engine.now, self._run_cycles, priority=self.prio)

    # --------------------------------------------------------------- the Cluster view

    _ATTR = {"Namespace": "namespaces", "PriorityClass": "priority_classes",
             "Service": "services", "ReplicaSet": "replica_sets"}

    def _on_view_object(self, ev) -> None:
        obj = ev.obj
        attr = self._ATTR[obj.KIND]
        index = self._index.setdefault(attr, {})
        items: list = getattr(self.cluster, attr)
        key = obj.key
        if ev.type == "DELETED":
            pos = index.pop(key, None)
            if pos is None:
                return
            items = items[:pos] + items[pos + 1:]
            for k, p in index.items():
                if p > pos:
                    index[k] = p - 1
        else:
            pos = index.get(key)
            if attr == "services":
                items = list(items)  # a new list: the default-selector index is rebuilt
            if pos is None:
                index[key] = len(items)
                items.append(obj)
            else:
                items[pos] = obj
        setattr(self.cluster, attr, items)
        if obj.KIND == "PriorityClass":
            classes = self.snapshot.priority_classes
            if ev.type == "DELETED":
                classes.pop(obj.metadata.name, None)
            else:
                classes[obj.metadata.name] = obj

    # -------------------------------------------------------------------------- nodes

    def _on_node(self, ev) -> None:
        node = ev.obj
        name = node.metadata.name
        snap = self.snapshot
        idx = snap.node_index.get(name)
        alive = idx is not None and bool(snap.alive[idx])
        sched = self.scheduler
        self._sync_clock()
        now = self._now()
        if ev.type == "DELETED":
            if not alive:
                return
            for info in snap.remove_node(name):
                # the store still binds them to the gone node: PodGC deletes them
                self.waiting_for_node.setdefault(name, {})[info.key] = info.pod
            sched.version += 1
            self.queue.move_on_event("NodeDelete", now, obj=node)
            self._sync_nodes()
            self.kick()
            return
        if not alive:
            snap.add_node(node)
            for key, pod in self.waiting_for_node.pop(name, {}).items():
                info = self.bound.get(key)
                if info is None or info.node >= 0:
                    info = snap.pod_info(pod)
                    self.bound[key] = info
                snap.add_pod(info, snap.node_index[name])
            sched.version += 1
            self.queue.move_on_event("NodeAdd", now, obj=node)
            self._sync_nodes()
            self.kick()
            return
        if _node_view(snap.nodes[idx]) == _node_view(node):
            snap.nodes[idx] = node   # (status only: heartbeats, conditions)
            return
        old = snap.nodes[idx]
        snap.update_node(node)
        sched.version += 1
        self.queue.move_on_event("NodeUpdate", now, obj=(old, node))
        self._sync_nodes()
        self.kick()

    def _sync_nodes(self) -> None:
        snap = self.snapshot
        self.cluster.nodes = [snap.nodes[i] for i in snap.alive_nodes().tolist()]

    # --------------------------------------------------------------------------- pods

    def _on_pod(self, ev) -> None:
        pod: Pod = ev.obj
        key = pod.key
        uid = pod.metadata.uid
        if ev.type == "DELETED":
            self._forget_pending(key, uid)
            self._unbind(key, uid)
            return
        if pod.spec.node_name:
            if key in self.queued_uid:
                self._forget_pending(key, uid)   # bound by someone else
            if pod.status.phase in ("Succeeded", "Failed"):
                self._unbind(key, uid)
                return
            info = self.bound.get(key)
            if info is not None and info.pod.metadata.uid == uid:
                if info.pod.metadata.labels != pod.metadata.labels and info.node >= 0:
                    # AssignedPodUpdate: per-domain counts follow the labels
                    node = info.node
                    self.snapshot.remove_pod(info)
                    info = self.snapshot.pod_info(self.store.edit(pod))
                    self.bound[key] = info
                    self.snapshot.add_pod(info, node)
                    self.scheduler.version += 1
                return
            self._add_bound(pod)
            return
        if pod.status.phase in ("Succeeded", "Failed"):
            self._forget_pending(key, uid)
            return
        if pod.spec.scheduler_name != self.scheduler_name:
            return
        queued = self.queued_uid.get(key)
        if queued == uid:
            old = ev.old
            if old is None or (old.spec == pod.spec and
                               old.metadata.labels == pod.metadata.labels):
                return  # a status change (ours, usually)
            self._forget_pending(key, uid)
        self._enqueue(pod)

    def _enqueue(self, pod: Pod) -> None:
        self._sync_clock()
        info = self.scheduler.enqueue(self.store.edit(pod))
        self.queued_uid[info.key] = pod.metadata.uid
        if pod.spec.scheduling_gates:
            names = ", ".join(g.name for g in pod.spec.scheduling_gates)
            self._set_condition(pod.key, pod.metadata.uid, "False", _GATED,
                                f"Scheduling is blocked due to non-empty scheduling gates: "
                                f"{names}" if names else "Scheduling is blocked due to "
                                "non-empty scheduling gates")
        else:
            self.kick()

    def _forget_pending(self, key: str, uid: str) -> None:
        if self.queued_uid.get(key) == uid:
            del self.queued_uid[key]
            self.queue.delete(key)
            self.scheduler.last_result.pop(key, None)

    def _add_bound(self, pod: Pod) -> None:
        """A pod bound outside this scheduler (a manifest with nodeName, another
        scheduler): accounted on its node (kube's cache adds it; AssignedPodAdd)."""
        snap = self.snapshot
        idx = snap.node_index.get(pod.spec.node_name)
        key = pod.key
        old = self.bound.get(key)
        if old is not None:
            self._unbind(key, old.pod.metadata.uid)
        copy = self.store.edit(pod)
        if idx is None or not snap.alive[idx]:
            self.waiting_for_node.setdefault(pod.spec.node_name, {})[key] = copy
            info = snap.pod_info(copy)
            self.bound[key] = info
            return
        info = snap.pod_info(copy)
        snap.add_pod(info, idx)
        self.bound[key] = info
        self._sync_clock()
        self.scheduler.version += 1
        self.queue.move_on_event("AssignedPodAdd", self._now(), obj=info)
        self.kick()

    def _unbind(self, key: str, uid: str) -> None:
        info = self.bound.get(key)
        if info is None or info.pod.metadata.uid != uid:
            return
        del self.bound[key]
        waiting = self.waiting_for_node.get(info.pod.spec.node_name)
        if waiting is not None:
            waiting.pop(key, None)
        if info.node >= 0 and self.snapshot.pods.get(key) is info:
            self.snapshot.remove_pod(info)
            self._sync_clock()
            self.scheduler.version += 1
            self.queue.move_on_event("AssignedPodDelete", self._now(), obj=info)
            self.kick()

    # ------------------------------------------------------------------------- cycles

    def _run_cycles(self) -> None:
        self._kick = None
        if self._wake is not None and self._wake_time <= self.engine.now:
            self._wake = None
            self._wake_time = math.inf
        self._sync_clock()
        sched = self.scheduler
        while True:
            result = sched.schedule_one()
            if result is None:
                break
            sched.results.clear()
            self.attempts += 1
            self._apply(result)
        self._plan_wake()

    def _on_wake(self) -> None:
        self._wake = None
        self._wake_time = math.inf
        self._run_cycles()

    def _plan_wake(self) -> None:
        t = self.next_wake()
        if t == self._wake_time:
            return
        if self._wake is not None:
            self.engine.cancel(self._wake)
            self._wake = None
        self._wake_time = t
        if t < math.inf:
            self._wake = self.engine.at(max(t, self.engine.now), self._on_wake,
                                        priority=self.prio)

    def next_wake(self) -> float:
        """When the queue next lets a pod that failed before the cluster last changed retry
        (:meth:`Scheduler.next_retry_time`)."""
        return self.scheduler.next_retry_time()

    def _apply(self, result: ScheduleResult) -> None:
        key = result.pod
        sched = self.scheduler
        for victim in result.victims:
            self._delete_victim(victim, key)
        if result.code == Code.SKIP:
            return
        uid = self.queued_uid.get(key)
        if result.node is not None:
            info = self.snapshot.pods.get(key)
            sched.last_result.pop(key, None)
            self.queued_uid.pop(key, None)
            self.binds += 1
            self.bound[key] = info
            self._bind(info, result.node)
            return
        self.failures += 1
        if uid is None:
            return
        reason = _SCHEDULER_ERROR if result.code == Code.ERROR else _UNSCHEDULABLE
        qp = self.queue.get(key)
        nominated = qp.info.pod.status.nominated_node_name if qp is not None else ""
        self._set_condition(key, uid, "False", reason, result.message, nominated=nominated)

    def _bind(self, info: PodInfo, node: str) -> None:
        """The binding (DefaultBinder): spec.nodeName, PodScheduled=True, GPU indices."""
        ns, name = info.key.split("/", 1)
        stored = self.store.try_get("Pod", ns, name)
        if stored is None or stored.metadata.uid != info.pod.metadata.uid:
            return
        pod = self.store.edit(stored)
        pod.spec.node_name = node
        pod.status.nominated_node_name = ""
        gpu = info.pod.metadata.annotations.get(GPU_INDEX)
        if gpu is not None:
            pod.metadata.annotations[GPU_INDEX] = gpu
        _put_condition(pod, "PodScheduled", "True", "", "", self._stamp())
        self.store.update(pod, cause="scheduled")

    def _delete_victim(self, victim: str, preemptor: str) -> None:
        info = self.bound.pop(victim, None)
        self.scheduler.preempted.pop(victim, None)
        self.scheduler.last_result.pop(victim, None)
        self.preemptions += 1
        ns, name = victim.split("/", 1)
        stored = self.store.try_get("Pod", ns, name)
        if stored is None or (info is not None and
                              stored.metadata.uid != info.pod.metadata.uid):
            return
        self.store.delete("Pod", ns, name, cause=f"preempted by {preemptor}")

    def _set_condition(self, key: str, uid: str, status: str, reason: str, message: str,
                       *, nominated: str | None = None) -> None:
        ns, name = key.split("/", 1)
        stored = self.store.try_get("Pod", ns, name)
        if stored is None or stored.metadata.uid != uid or stored.spec.node_name:
            return
        cur = _pod_condition(stored, "PodScheduled")
        same = cur is not None and cur.status == status and cur.reason == reason and \
            cur.message == message
        if same and (nominated is None or stored.status.nominated_node_name == nominated):
            return
        pod = self.store.edit(stored)
        if not same:
            _put_condition(pod, "PodScheduled", status, reason, message, self._stamp())
        if nominated is not None:
            pod.status.nominated_node_name = nominated
        self.store.update(pod, cause=_CAUSES.get(reason, reason))

    def _stamp(self) -> str:
        return stamp(self.engine.now)

    # ------------------------------------------------------------------------ queries

    def pending_reason(self, key: str) -> str | None:
        """Why a queued pod waits (its last failure), None if it is not queued here."""
        qp = self.queue.get(key)
        if qp is None:
            return None
        if qp.gated:
            return _GATED
        return qp.last_failure or "not yet attempted"

    def stats(self) -> dict:
        return {"attempts": self.attempts, "binds": self.binds, "failures": self.failures,
                "preemptions": self.preemptions, "queued": len(self.queue)}


def _put_condition(pod: Pod, type_: str, status: str, reason: str, message: str,
                   when: str) -> None:
    """Set a pod condition (lastTransitionTime changes only when the status does)."""
    conds = pod.status.conditions
    for i, c in enumerate(conds):
        if c.type == type_:
            t = c.last_transition_time if c.status == status else when
            conds[i] = PodCondition(type=type_, status=status, reason=reason,
                                    message=message, last_transition_time=t)
            return
    conds.append(PodCondition(type=type_, status=status, reason=reason, message=message,
                              last_transition_time=when))
