"""The kubelets of every node: pod start-up, readiness, completion, and node heartbeats.

One :class:`Kubelet` object plays the kubelet of every node. For a pod bound to a node whose
kubelet is up (pkg/kubelet: syncPod and the status manager):

* at once: ``status.startTime`` (the time the kubelet acknowledged the pod, before pulling
  images, as in Kubernetes), conditions ``Initialized=True``, ``ContainersReady=False``
  (reason ``ContainerCreating``) and ``Ready=False`` (reason ``ContainersNotReady``); phase
  stays ``Pending``;
* ``pod_startup_seconds`` later (per pod: annotation ``schedbench.io/startup-seconds``):
  phase ``Running``;
* ``pod_ready_seconds`` after that: ``ContainersReady=True`` and ``Ready=True``;
* with annotation ``schedbench.io/duration-seconds: N``, N seconds after Running: phase
  ``Succeeded`` (``Failed`` with ``schedbench.io/exit: failed``), Ready and ContainersReady
  ``False`` (reason ``PodCompleted`` / ``PodFailed``). Terminal pods stay in the store.

Node heartbeats are analytic, not events: a live kubelet renews its Lease every
``node_heartbeat_seconds`` (kubelet default: 10 s, a quarter of the 40 s lease) at times
``offset + k * interval``, the offset a fixed function of the node name (crc32), and once when
it (re)starts. :meth:`Kubelet.last_renew` answers "when did this node last renew its lease",
so a failure costs events, a healthy node costs none.

:meth:`Kubelet.fail_node` stops a node's kubelet (no renewals, no pod transitions; the pods'
status freezes). :meth:`Kubelet.recover_node` restarts it: the node reports ``Ready=True``
again, and its pods resume: pods not yet running start over (ContainerCreating), running pods
become Ready ``pod_ready_seconds`` later, pods with a duration finish at their original time
(or at once if it passed). A pod that is already ``Running`` when the kubelet first sees it
(a pod of the initial cluster) is adopted: Ready after ``pod_ready_seconds`` unless it is
ready, finishing ``duration`` after its ``startTime``. :meth:`Kubelet.set_node_ready` makes a live kubelet report
``Ready=False`` (a broken container runtime) or True again.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Callable
from typing import Any

from schedbench.errors import InputError
from schedbench.model.objects import NodeCondition, PodCondition

from .controller import Context, Controller
from .engine import PRIO_KUBELET, Event
from .store import WatchEvent
from .timefmt import parse_duration, seconds, stamp

__all__ = ["ANNOTATION_DURATION", "ANNOTATION_EXIT", "ANNOTATION_STARTUP", "Kubelet",
           "set_condition"]

ANNOTATION_DURATION = "schedbench.io/duration-seconds"
ANNOTATION_EXIT = "schedbench.io/exit"
ANNOTATION_STARTUP = "schedbench.io/startup-seconds"

# Pod stages as the kubelet tracks them.
_ADMITTING, _CREATING, _RUNNING, _READY, _DONE = range(5)


def set_condition(conditions: list, cls: type, type_: str, status: str, now: float,
                  reason: str = "", message: str = "") -> bool:
    """Set condition ``type_`` in ``conditions`` (a list from an edited copy) to ``status``;
    ``lastTransitionTime`` changes only when the status does (pkg/api/v1/pod
    UpdatePodCondition). ``cls`` is PodCondition or NodeCondition. Returns True if anything
    changed."""
    for i, c in enumerate(conditions):
        if c.type == type_:
            if c.status == status and c.reason == reason and c.message == message:
                return False
            new = object.__new__(type(c))  # a copy: the list may share it with a stored pod
            new.__dict__.update(c.__dict__)
            if c.status != status:
                new.last_transition_time = stamp(now)
            new.status, new.reason, new.message = status, reason, message
            conditions[i] = new
            return True
    conditions.append(cls(type=type_, status=status, reason=reason, message=message,
                          last_transition_time=stamp(now)))
    return True


def _annotation_seconds(pod: Any, key: str) -> float | None:
    text = pod.metadata.annotations.get(key)
    if text is None:
        return None
    try:
        return parse_duration(text)
    except InputError as err:
        raise err.located(obj=pod.ref, field=f"metadata.annotations[{key}]") from None


class _NodeAgent:
    """The kubelet of one node: up or down, and when its lease renewals are."""

    __slots__ = ("name", "alive", "started", "failed_at", "offset")

    def __init__(self, name: str, now: float, interval: float) -> None:
        self.name = name
        self.alive = True
        self.started = now
        self.failed_at = math.nan
        self.offset = (zlib.crc32(name.encode()) % 1_000_000) / 1_000_000 * interval


class _PodState:
    __slots__ = ("uid", "key", "node", "stage", "running_at", "timers")

    def __init__(self, uid: str, key: tuple[str, str], node: str) -> None:
        self.uid = uid
        self.key = key
        self.node = node
        self.stage = _ADMITTING
        self.running_at = math.nan
        self.timers: list[Event] = []


class Kubelet(Controller):
    """The kubelets of all nodes (module docstring). ``node_listeners`` are called with the
    node name whenever a kubelet stops or starts (the node lifecycle controller listens)."""

    name = "kubelet"

    def __init__(self, sim_ctx: Context) -> None:
        super().__init__(sim_ctx)
        self.node_listeners: list[Callable[[str], None]] = []
        self._agents: dict[str, _NodeAgent] = {}
        self._pods: dict[str, _PodState] = {}  # by pod uid

    # ---- wiring --------------------------------------------------------------------------

    def start(self) -> None:
        self.store.watch("Node", self._on_node)
        self.store.watch("Pod", self._on_pod)
        for node in self.store.list("Node"):
            self._add_agent(node.metadata.name)
        for pod in self.store.list("Pod"):
            self._consider(pod)

    def _add_agent(self, name: str) -> None:
        if name not in self._agents:
            self._agents[name] = _NodeAgent(name, self.engine.now,
                                            self.config.node_heartbeat_seconds)

    def _on_node(self, ev: WatchEvent) -> None:
        name = ev.obj.metadata.name
        if ev.type == "ADDED":
            self._add_agent(name)
            for pod in self.store.pods_on_node(name):
                self._consider(pod)
        elif ev.type == "DELETED":
            self._agents.pop(name, None)
            for pod in self.store.pods_on_node(name):
                state = self._pods.get(pod.metadata.uid)
                if state is not None:
                    self._cancel(state)

    def _on_pod(self, ev: WatchEvent) -> None:
        pod = ev.obj
        if ev.type == "DELETED":
            state = self._pods.pop(pod.metadata.uid, None)
            if state is not None:
                self._cancel(state)
            return
        self._consider(pod)

    def _consider(self, pod: Any) -> None:
        """Start the lifecycle of a pod newly bound to a node with a live kubelet."""
        node = pod.spec.node_name
        if not node or pod.metadata.uid in self._pods or pod.is_terminated:
            return
        agent = self._agents.get(node)
        if agent is None or not agent.alive:
            return
        state = _PodState(pod.metadata.uid, (pod.metadata.namespace, pod.metadata.name), node)
        self._pods[state.uid] = state
        if pod.status.phase == "Running":
            # already running (a pod of the initial cluster): adopt it as it is
            state.stage = _RUNNING
            start = pod.status.start_time
            state.running_at = seconds(start) if start else self.engine.now
            self._resume(pod)
            return
        self._schedule(state, 0.0, self._admit)

    # ---- pod lifecycle -------------------------------------------------------------------

    def _schedule(self, state: _PodState, delay: float, fn: Callable[[_PodState], None]) -> None:
        state.timers.append(self.engine.after(delay, fn, state, priority=PRIO_KUBELET))

    def _cancel(self, state: _PodState) -> None:
        for ev in state.timers:
            self.engine.cancel(ev)
        state.timers.clear()

    def _current(self, state: _PodState) -> Any | None:
        pod = self.store.try_get("Pod", *state.key)
        if pod is None or pod.metadata.uid != state.uid:
            self._pods.pop(state.uid, None)
            return None
        return pod

    def _write(self, pod: Any, edit: Callable[[Any], None], cause: str) -> None:
        new = self.store.edit(pod, spec=False)
        edit(new)
        self.store.update(new, cause=cause)

    def _admit(self, state: _PodState) -> None:
        pod = self._current(state)
        if pod is None:
            return
        now = self.engine.now
        def edit(p: Any) -> None:
            if p.status.start_time is None:
                p.status.start_time = stamp(now)
            p.status.phase = "Pending"
            conds = p.status.conditions
            set_condition(conds, PodCondition, "Initialized", "True", now)
            set_condition(conds, PodCondition, "Ready", "False", now, "ContainersNotReady",
                          "containers with unready status")
            set_condition(conds, PodCondition, "ContainersReady", "False", now,
                          "ContainerCreating", "containers are being created")

        self._write(pod, edit, "kubelet: ContainerCreating")
        state.stage = _CREATING
        startup = _annotation_seconds(pod, ANNOTATION_STARTUP)
        self._schedule(state, self.config.pod_startup_seconds if startup is None else startup,
                       self._run)

    def _run(self, state: _PodState) -> None:
        pod = self._current(state)
        if pod is None:
            return
        now = self.engine.now
        def edit(p: Any) -> None:
            p.status.phase = "Running"
            set_condition(p.status.conditions, PodCondition, "ContainersReady", "False", now,
                          "ContainersNotReady", "containers with unready status")

        self._write(pod, edit, "kubelet: containers started")
        state.stage = _RUNNING
        state.running_at = now
        self._schedule(state, self.config.pod_ready_seconds, self._ready)
        duration = _annotation_seconds(pod, ANNOTATION_DURATION)
        if duration is not None:
            self._schedule(state, duration, self._finish)

    def _ready(self, state: _PodState) -> None:
        pod = self._current(state)
        if pod is None or state.stage not in (_RUNNING, _READY):
            return
        now = self.engine.now
        def edit(p: Any) -> None:
            set_condition(p.status.conditions, PodCondition, "ContainersReady", "True", now)
            set_condition(p.status.conditions, PodCondition, "Ready", "True", now)

        self._write(pod, edit, "kubelet: ready")
        state.stage = _READY

    def _finish(self, state: _PodState) -> None:
        pod = self._current(state)
        if pod is None:
            return
        now = self.engine.now
        failed = pod.metadata.annotations.get(ANNOTATION_EXIT, "").lower() == "failed"
        phase, reason = ("Failed", "PodFailed") if failed else ("Succeeded", "PodCompleted")
        def edit(p: Any) -> None:
            p.status.phase = phase
            set_condition(p.status.conditions, PodCondition, "ContainersReady", "False", now,
                          reason)
            set_condition(p.status.conditions, PodCondition, "Ready", "False", now, reason)

        self._cancel(state)
        state.stage = _DONE
        self._write(pod, edit, phase.lower())
        self._pods.pop(state.uid, None)

    # ---- nodes ---------------------------------------------------------------------------

    def _agent(self, name: str) -> _NodeAgent:
        agent = self._agents.get(name)
        if agent is None:
            raise InputError(f"no node named {name!r}")
        return agent

    def is_alive(self, name: str) -> bool:
        """Whether the node's kubelet is up (False for unknown nodes)."""
        agent = self._agents.get(name)
        return agent is not None and agent.alive

    def last_renew(self, name: str) -> float:
        """The virtual time of the node's latest lease renewal, as of now."""
        agent = self._agent(name)
        t = self.engine.now if agent.alive else agent.failed_at
        interval = self.config.node_heartbeat_seconds
        grid = agent.offset + math.floor((t - agent.offset) / interval) * interval
        return max(agent.started, grid)

    def next_renew(self, name: str) -> float | None:
        """When a live node renews its lease next (None while its kubelet is down)."""
        agent = self._agent(name)
        if not agent.alive:
            return None
        interval = self.config.node_heartbeat_seconds
        now = self.engine.now
        return agent.offset + (math.floor((now - agent.offset) / interval) + 1) * interval

    def fail_node(self, name: str) -> None:
        """Stop the node's kubelet: no more lease renewals or pod transitions."""
        agent = self._agent(name)
        if not agent.alive:
            return
        agent.alive = False
        agent.failed_at = self.engine.now
        for state in self._pods.values():
            if state.node == name:
                self._cancel(state)
        for fn in self.node_listeners:
            fn(name)

    def recover_node(self, name: str) -> None:
        """Restart the node's kubelet: it renews its lease now, reports Ready=True and
        resumes its pods (module docstring)."""
        agent = self._agent(name)
        if agent.alive:
            return
        agent.alive = True
        agent.started = self.engine.now
        agent.failed_at = math.nan
        self._report_ready(name, True, "KubeletReady", "kubelet is posting ready status")
        for fn in self.node_listeners:
            fn(name)
        for pod in self.store.pods_on_node(name):
            self._resume(pod)

    def set_node_ready(self, name: str, ready: bool, reason: str = "",
                       message: str = "") -> None:
        """A live kubelet reports ``Ready=True`` or ``False`` (e.g. a broken runtime)."""
        agent = self._agent(name)
        if not agent.alive:
            raise InputError(f"node {name!r} is down: recover it before changing its Ready "
                             "condition")
        self._report_ready(name, ready, reason or ("KubeletReady" if ready else
                                                   "KubeletNotReady"), message)
        if ready:  # the node lifecycle controller marked the pods not ready meanwhile
            for pod in self.store.pods_on_node(name):
                if not pod.is_terminated and not pod.is_ready():
                    self._resume(pod)

    def _report_ready(self, name: str, ready: bool, reason: str, message: str) -> None:
        node = self.store.try_get("Node", "", name)
        if node is None:
            return
        if ready and not any(c.type == "Ready" for c in node.status.conditions):
            return  # no conditions at all counts as ready: nothing to report
        now = self.engine.now
        new = self.store.edit(node)
        status = "True" if ready else "False"
        changed = set_condition(new.status.conditions, NodeCondition, "Ready", status, now,
                                reason, message)
        if changed:
            for c in new.status.conditions:
                if c.type == "Ready":
                    c.last_heartbeat_time = stamp(now)
            self.store.update(new, cause=f"kubelet: node {'ready' if ready else 'not ready'}")

    def _resume(self, pod: Any) -> None:
        state = self._pods.get(pod.metadata.uid)
        if state is None:
            self._consider(pod)
            return
        self._cancel(state)
        if state.stage in (_ADMITTING, _CREATING):
            state.stage = _ADMITTING
            self._schedule(state, 0.0, self._admit)
            return
        if state.stage in (_RUNNING, _READY):
            state.stage = _RUNNING
            if pod.is_ready():
                state.stage = _READY
            else:
                self._schedule(state, self.config.pod_ready_seconds, self._ready)
            duration = _annotation_seconds(pod, ANNOTATION_DURATION)
            if duration is not None:
                left = max(0.0, state.running_at + duration - self.engine.now)
                self._schedule(state, left, self._finish)
