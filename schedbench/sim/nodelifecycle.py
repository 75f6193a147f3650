"""Node lifecycle and taint-based eviction (kube-controller-manager v1.35).

:class:`NodeLifecycleController` (pkg/controller/nodelifecycle):

* **Health.** A node whose kubelet stopped renewing its lease is noticed at
  ``last_renew + node_monitor_grace_seconds`` (50 s): its ``Ready`` condition (and any
  MemoryPressure / DiskPressure / PIDPressure condition) becomes ``Unknown``, reason
  ``NodeStatusUnknown``. Kubernetes checks every ``--node-monitor-period`` (5 s), so it notices
  up to 5 s later; here the check is exact.
* **Pods not ready.** When a node leaves Ready=True, the Ready condition of its pods is set to
  False (``MarkPodsNotReady``), as for a pod bound later to a node that is not ready.
* **NoSchedule taints by condition** (``doNoScheduleTaintingPass``): Ready False ->
  ``node.kubernetes.io/not-ready``, Unknown -> ``node.kubernetes.io/unreachable``,
  MemoryPressure / DiskPressure / PIDPressure / NetworkUnavailable True -> the matching
  pressure taint, ``spec.unschedulable`` -> ``node.kubernetes.io/unschedulable``.
* **NoExecute taints** (``processTaintBaseEviction``): not-ready / unreachable ``NoExecute``
  (``timeAdded`` set), added through a per-zone rate-limited queue (token bucket,
  ``--node-eviction-rate`` 0.1 nodes/s, burst 1: a single failure is tainted at once, further
  nodes of the zone 10 s apart); swapped at once between not-ready and unreachable; removed
  at once when the node is Ready again. Zone states (``ComputeZoneState``): FullDisruption
  when no node of the zone is ready; PartialDisruption when more than 2 nodes and at least 55 %
  are not ready (rate 0.01/s if the zone has more than 50 nodes, else tainting stops);
  Normal otherwise. When every zone is fully disrupted the controller assumes a control-plane
  problem: it removes all not-ready/unreachable taints and stops tainting until a node is
  ready again. Zones are ``topology.kubernetes.io/region`` + ``zone`` labels. Nodes
  without conditions count as ready (hand-written cluster files rarely state them).

:class:`TaintEvictionController` (pkg/controller/tainteviction, the separate
``taint-eviction-controller`` of kube-controller-manager; create and start it next to the node
lifecycle controller): for each pod on a node with ``NoExecute`` taints, a pod that does not tolerate
all of them is deleted at once; otherwise it is deleted after the smallest
``tolerationSeconds`` of the tolerations used (none: never; <= 0: at once), counted from
when the taint was seen; a pending eviction keeps its start time while taints change, and is
cancelled when the taints go away. The pod first gets the condition ``DisruptionTarget=True``
(reason ``DeletionByTaintManager``), then is deleted with cause
``evicted: taint <key>``.
"""

from __future__ import annotations

import math
from typing import Any

from schedbench.model.objects import NodeCondition, PodCondition, Taint

from .controller import Context, Controller
from .engine import PRIO_CONTROLLER, Event
from .kubelet import Kubelet, set_condition
from .store import TAINT_NOT_READY, TAINT_UNREACHABLE, WatchEvent
from .timefmt import stamp

__all__ = ["NodeLifecycleController", "TaintEvictionController", "TAINT_NOT_READY",
           "TAINT_UNREACHABLE", "TAINT_UNSCHEDULABLE", "zone_key"]

TAINT_UNSCHEDULABLE = "node.kubernetes.io/unschedulable"
# nodeConditionToTaintKeyStatusMap
_CONDITION_TAINTS: dict[str, dict[str, str]] = {
    "Ready": {"False": TAINT_NOT_READY, "Unknown": TAINT_UNREACHABLE},
    "MemoryPressure": {"True": "node.kubernetes.io/memory-pressure"},
    "DiskPressure": {"True": "node.kubernetes.io/disk-pressure"},
    "NetworkUnavailable": {"True": "node.kubernetes.io/network-unavailable"},
    "PIDPressure": {"True": "node.kubernetes.io/pid-pressure"},
}
_MANAGED_NO_SCHEDULE = frozenset(
    [TAINT_UNSCHEDULABLE] + [k for m in _CONDITION_TAINTS.values() for k in m.values()])
_UNKNOWN_ON_TIMEOUT = ("Ready", "MemoryPressure", "DiskPressure", "PIDPressure")

EVICTION_QPS = 0.1             # --node-eviction-rate
SECONDARY_EVICTION_QPS = 0.01  # --secondary-node-eviction-rate
LARGE_CLUSTER_THRESHOLD = 50   # --large-cluster-size-threshold
UNHEALTHY_ZONE_THRESHOLD = 0.55  # --unhealthy-zone-threshold

_NORMAL, _PARTIAL, _FULL = "Normal", "PartialDisruption", "FullDisruption"


def zone_key(node: Any) -> str:
    """The node's zone as the controller groups it: region and zone labels
    (``topology.kubernetes.io/*``, else the deprecated ``failure-domain.beta`` ones)."""
    labels = node.metadata.labels
    region = labels.get("topology.kubernetes.io/region",
                        labels.get("failure-domain.beta.kubernetes.io/region", ""))
    zone = labels.get("topology.kubernetes.io/zone",
                      labels.get("failure-domain.beta.kubernetes.io/zone", ""))
    if not region and not zone:
        return ""
    return f"{region}:\x00:{zone}"


def ready_status(node: Any) -> str:
    """The node's Ready condition status ("True" when it has none)."""
    for c in node.status.conditions:
        if c.type == "Ready":
            return c.status
    return "True"


class _Zone:
    """A zone's NoExecute tainting queue and its token bucket."""

    __slots__ = ("state", "qps", "next_token", "queue", "timer")

    def __init__(self) -> None:
        self.state = _NORMAL
        self.qps = EVICTION_QPS
        self.next_token = -math.inf
        self.queue: dict[str, None] = {}
        self.timer: Event | None = None


class NodeLifecycleController(Controller):
    """Node health, condition taints and rate-limited NoExecute tainting (module
    docstring). ``kubelet`` provides the (analytic) lease renewal times. Evictions are the
    job of a :class:`TaintEvictionController` running beside it."""

    name = "node-lifecycle-controller"

    def __init__(self, sim_ctx: Context, kubelet: Kubelet) -> None:
        super().__init__(sim_ctx)
        self.kubelet = kubelet
        self._lease_checks: dict[str, Event] = {}
        self._observed: dict[str, tuple[str, str]] = {}  # node -> (zone, Ready status)
        self._zones: dict[str, _Zone] = {}
        self._master_disruption = False

    def start(self) -> None:
        self.store.watch("Node", self._on_node)
        self.store.watch("Pod", self._on_pod)
        self.kubelet.node_listeners.append(self._on_kubelet)
        for node in self.store.list("Node"):
            self.enqueue(node.metadata.name)

    # ---- events --------------------------------------------------------------------------

    def _on_node(self, ev: WatchEvent) -> None:
        if ev.type == "MODIFIED":
            old, new = ev.old, ev.obj
            if (old.status.conditions == new.status.conditions
                    and old.spec.unschedulable == new.spec.unschedulable
                    and old.spec.taints == new.spec.taints
                    and old.metadata.labels == new.metadata.labels):
                return
        self.enqueue(ev.obj.metadata.name)

    def _on_pod(self, ev: WatchEvent) -> None:
        """processPod: a pod newly bound to a node that is not ready is marked not ready."""
        pod = ev.obj
        node_name = pod.spec.node_name
        if ev.type == "DELETED" or not node_name:
            return
        if ev.old is not None and ev.old.spec.node_name == node_name:
            return
        seen = self._observed.get(node_name)
        if seen is not None and seen[1] != "True":
            self._mark_pods_not_ready([pod])

    def _on_kubelet(self, name: str) -> None:
        self.engine.cancel(self._lease_checks.pop(name, None))
        if self.kubelet.is_alive(name):
            return
        deadline = self.kubelet.last_renew(name) + self.config.node_monitor_grace_seconds
        self._lease_checks[name] = self.engine.at(max(deadline, self.engine.now),
                                                  self._lease_expired, name,
                                                  priority=PRIO_CONTROLLER)

    def _lease_expired(self, name: str) -> None:
        """tryUpdateNodeHealth: no lease renewal within the grace period -> Unknown."""
        self._lease_checks.pop(name, None)
        if self.kubelet.is_alive(name):
            return
        node = self.store.try_get("Node", "", name)
        if node is None:
            return
        now = self.engine.now
        new = self.store.edit(node)
        conds = new.status.conditions
        if not any(c.type == "Ready" for c in conds):
            conds.append(NodeCondition(type="Ready", status="Unknown",
                                       reason="NodeStatusNeverUpdated",
                                       message="Kubelet never posted node status.",
                                       last_heartbeat_time=node.metadata.creation_timestamp,
                                       last_transition_time=stamp(now)))
        for c in conds:
            if c.type in _UNKNOWN_ON_TIMEOUT and c.status != "Unknown":
                set_condition(conds, NodeCondition, c.type, "Unknown", now,
                              "NodeStatusUnknown", "Kubelet stopped posting node status.")
        self.store.update(new, cause="node lifecycle: kubelet stopped posting node status")
        self.log("node-unknown", kind="Node", name=name,
                 last_renew=self.kubelet.last_renew(name))

    # ---- reconcile -----------------------------------------------------------------------

    def reconcile(self, key: str) -> None:
        node = self.store.try_get("Node", "", key)
        if node is None:
            seen = self._observed.pop(key, None)
            if seen is not None:
                zone = self._zones.get(seen[0])
                if zone is not None:
                    zone.queue.pop(key, None)
                self._handle_disruption()
            return
        zone = zone_key(node)
        status = ready_status(node)
        previous = self._observed.get(key)
        self._observed[key] = (zone, status)
        self._zones.setdefault(zone, _Zone())
        if previous is not None and previous[0] != zone:
            old_zone = self._zones.get(previous[0])
            if old_zone is not None:
                old_zone.queue.pop(key, None)
        if status != "True" and (previous is None or previous[1] == "True"):
            self._mark_pods_not_ready(self.store.pods_on_node(key))
        self._taint_pass(node, status)
        if previous is None or previous != (zone, status):
            self._handle_disruption()

    def _taint_pass(self, node: Any, status: str) -> None:
        """doNoScheduleTaintingPass and processTaintBaseEviction for one node."""
        name = node.metadata.name
        want = []
        for c in node.status.conditions:
            key = _CONDITION_TAINTS.get(c.type, {}).get(c.status)
            if key is not None:
                want.append(key)
        if node.spec.unschedulable:
            want.append(TAINT_UNSCHEDULABLE)
        taints = node.spec.taints
        have = [t.key for t in taints if t.effect == "NoSchedule" and t.key in
                _MANAGED_NO_SCHEDULE]
        new_taints = [t for t in taints if not (t.effect == "NoSchedule"
                                                and t.key in _MANAGED_NO_SCHEDULE
                                                and t.key not in want)]
        now_stamp = stamp(self.engine.now)
        for key in want:
            if key not in have:
                new_taints.append(Taint(key=key, effect="NoSchedule", time_added=now_stamp))
        zone = self._zones[zone_key(node)]
        no_exec = {t.key for t in new_taints if t.effect == "NoExecute"}
        if status == "True" or self._master_disruption:
            # markNodeAsReachable
            new_taints = [t for t in new_taints if not (
                t.effect == "NoExecute" and t.key in (TAINT_NOT_READY, TAINT_UNREACHABLE))]
            zone.queue.pop(name, None)
        else:
            wanted, opposite = ((TAINT_NOT_READY, TAINT_UNREACHABLE) if status == "False"
                                else (TAINT_UNREACHABLE, TAINT_NOT_READY))
            if opposite in no_exec:  # swap at once
                new_taints = [t for t in new_taints
                              if not (t.effect == "NoExecute" and t.key == opposite)]
                new_taints.append(Taint(key=wanted, effect="NoExecute", time_added=now_stamp))
                zone.queue.pop(name, None)
            elif wanted not in no_exec:
                zone.queue[name] = None  # markNodeForTainting (idempotent)
                self.engine.at(self.engine.now, self._drain_zone, zone_key(node),
                               priority=PRIO_CONTROLLER)
        if new_taints != taints:
            new = self.store.edit(node)
            new.spec.taints = new_taints
            self.store.update(new, cause="node lifecycle: taints")

    # ---- NoExecute tainting queue --------------------------------------------------------

    def _drain_zone(self, zone_name: str) -> None:
        """doNoExecuteTaintingPass for one zone: taint queued nodes while tokens last."""
        zone = self._zones.get(zone_name)
        if zone is None:
            return
        now = self.engine.now
        if zone.timer is not None:
            self.engine.cancel(zone.timer)
            zone.timer = None
        while zone.queue:
            if zone.qps <= 0 or self._master_disruption:
                return
            if now < zone.next_token:
                zone.timer = self.engine.at(zone.next_token, self._drain_zone, zone_name,
                                            priority=PRIO_CONTROLLER)
                return
            name = next(iter(zone.queue))
            del zone.queue[name]
            node = self.store.try_get("Node", "", name)
            if node is None:
                continue
            status = ready_status(node)
            if status == "True":
                continue
            wanted, opposite = ((TAINT_NOT_READY, TAINT_UNREACHABLE) if status == "False"
                                else (TAINT_UNREACHABLE, TAINT_NOT_READY))
            new = self.store.edit(node)
            new.spec.taints = [t for t in new.spec.taints if not (
                t.effect == "NoExecute" and t.key in (wanted, opposite))]
            new.spec.taints.append(Taint(key=wanted, effect="NoExecute", time_added=stamp(now)))
            zone.next_token = now + 1.0 / zone.qps
            self.store.update(new, cause="node lifecycle: NoExecute taint")
            self.log("tainted", kind="Node", name=name, taint=f"{wanted}:NoExecute")

    def _zone_state(self, statuses: list[str]) -> str:
        """ComputeZoneState."""
        not_ready = sum(1 for s in statuses if s != "True")
        ready = len(statuses) - not_ready
        if ready == 0 and not_ready > 0:
            return _FULL
        if not_ready > 2 and not_ready / len(statuses) >= UNHEALTHY_ZONE_THRESHOLD:
            return _PARTIAL
        return _NORMAL

    def _handle_disruption(self) -> None:
        """handleDisruption: zone states, eviction rates, the all-zones-down mode."""
        by_zone: dict[str, list[str]] = {}
        for zone, status in self._observed.values():
            by_zone.setdefault(zone, []).append(status)
        states = {z: self._zone_state(s) for z, s in by_zone.items()}
        all_full = bool(states) and all(s == _FULL for s in states.values())
        if all_full != self._master_disruption:
            self._master_disruption = all_full
            self.log("node-lifecycle", detail=("all nodes are not ready: entering master "
                                               "disruption mode, evictions stop")
                     if all_full else "some nodes are ready: leaving master disruption mode")
            for name in self._observed:
                self.enqueue(name)  # remove (or restore) NoExecute taints
        for zone_name, state in states.items():
            zone = self._zones.setdefault(zone_name, _Zone())
            if state == zone.state:
                continue
            zone.state = state
            if state == _PARTIAL:
                qps = (SECONDARY_EVICTION_QPS if len(by_zone[zone_name]) >
                       LARGE_CLUSTER_THRESHOLD else 0.0)
            else:
                qps = EVICTION_QPS
            if qps > 0 and self.engine.now < zone.next_token:
                zone.next_token = self.engine.now + 1.0 / qps  # SwapLimiter drains a busy one
            zone.qps = qps
            if zone.queue:
                self.engine.at(self.engine.now, self._drain_zone, zone_name,
                               priority=PRIO_CONTROLLER)

    # ---- pods ----------------------------------------------------------------------------

    def _mark_pods_not_ready(self, pods: list[Any]) -> None:
        """MarkPodsNotReady: the Ready condition of each pod becomes False."""
        now = self.engine.now
        for pod in pods:
            if not any(c.type == "Ready" and c.status != "False"
                       for c in pod.status.conditions):
                continue
            new = self.store.edit(pod, spec=False)
            set_condition(new.status.conditions, PodCondition, "Ready", "False", now)
            self.store.update(new, cause="node lifecycle: node not ready")


def _no_execute(taints: list[Any]) -> list[Any]:
    return [t for t in taints if t.effect == "NoExecute"]


class TaintEvictionController(Controller):
    """Deletes pods from nodes with NoExecute taints they do not tolerate (module
    docstring)."""

    name = "taint-eviction-controller"

    def __init__(self, sim_ctx: Context) -> None:
        super().__init__(sim_ctx)
        # pod key -> (uid, created_at, event)
        self._scheduled: dict[tuple[str, str], tuple[str, float, Event]] = {}
        self._tainted: dict[str, list[Any]] = {}  # node -> its NoExecute taints

    def start(self) -> None:
        self.store.watch("Node", self._on_node)
        self.store.watch("Pod", self._on_pod)
        for node in self.store.list("Node"):
            taints = _no_execute(node.spec.taints)
            if taints:
                self._tainted[node.metadata.name] = taints
                for pod in self.store.pods_on_node(node.metadata.name):
                    self._process(pod, taints)

    def reconcile(self, key: str) -> None:  # everything happens in the handlers
        return None

    def _on_node(self, ev: WatchEvent) -> None:
        name = ev.obj.metadata.name
        if ev.type == "DELETED":
            self._tainted.pop(name, None)
            return
        taints = _no_execute(ev.obj.spec.taints)
        old = _no_execute(ev.old.spec.taints) if ev.old is not None else []
        if ev.type == "MODIFIED" and taints == old:
            return
        if taints:
            self._tainted[name] = taints
        else:
            self._tainted.pop(name, None)
        for pod in self.store.pods_on_node(name):
            if not taints:
                self._cancel((pod.metadata.namespace, pod.metadata.name))
            else:
                self._process(pod, taints)

    def _on_pod(self, ev: WatchEvent) -> None:
        pod = ev.obj
        key = (pod.metadata.namespace, pod.metadata.name)
        if ev.type == "DELETED":
            self._cancel(key)
            return
        old = ev.old
        if old is not None and old.spec.node_name == pod.spec.node_name and \
                old.spec.tolerations == pod.spec.tolerations:
            return
        if not pod.spec.node_name:
            return
        taints = self._tainted.get(pod.spec.node_name)
        if taints:
            self._process(pod, taints)

    def _cancel(self, key: tuple[str, str]) -> None:
        entry = self._scheduled.pop(key, None)
        if entry is not None:
            self.engine.cancel(entry[2])

    def _process(self, pod: Any, taints: list[Any]) -> None:
        """processPodOnNode."""
        key = (pod.metadata.namespace, pod.metadata.name)
        now = self.engine.now
        used = []
        for taint in taints:
            match = next((t for t in pod.spec.tolerations if t.tolerates(taint)), None)
            if match is None:
                self._cancel(key)
                self._schedule(pod, key, now, now)
                return
            used.append(match)
        seconds = _min_toleration_seconds(used)
        if seconds < 0:
            self._cancel(key)
            return
        start = now
        existing = self._scheduled.get(key)
        if existing is not None:
            start = existing[1]
            if start + seconds < now + seconds:
                return
            self._cancel(key)
        self._schedule(pod, key, start, start + seconds)

    def _schedule(self, pod: Any, key: tuple[str, str], start: float, at: float) -> None:
        ev = self.engine.at(max(at, self.engine.now), self._evict, key, pod.metadata.uid,
                            priority=PRIO_CONTROLLER)
        self._scheduled[key] = (pod.metadata.uid, start, ev)

    def _evict(self, key: tuple[str, str], uid: str) -> None:
        self._scheduled.pop(key, None)
        pod = self.store.try_get("Pod", *key)
        if pod is None or pod.metadata.uid != uid:
            return
        taints = self._tainted.get(pod.spec.node_name, [])
        cause_taint = _responsible_taint(pod, taints)
        new = self.store.edit(pod, spec=False)
        set_condition(new.status.conditions, PodCondition, "DisruptionTarget", "True",
                      self.engine.now, "DeletionByTaintManager",
                      "Taint manager: deleting due to NoExecute taint")
        pod = self.store.update(new, cause="taint eviction: DisruptionTarget")
        self.log("evicted", kind="Pod", name=f"{key[0]}/{key[1]}", node=pod.spec.node_name,
                 taint=cause_taint)
        self.store.delete("Pod", key[0], key[1], cause=f"evicted: taint {cause_taint}")


def _min_toleration_seconds(tolerations: list[Any]) -> float:
    """getMinTolerationTime: the smallest tolerationSeconds (<= 0 counts as 0); -1 when none
    of the tolerations has one (tolerated forever); 0 for no tolerations."""
    if not tolerations:
        return 0.0
    best = math.inf
    for t in tolerations:
        if t.toleration_seconds is not None:
            if t.toleration_seconds <= 0:
                return 0.0
            best = min(best, t.toleration_seconds)
    return -1.0 if best == math.inf else float(best)


def _responsible_taint(pod: Any, taints: list[Any]) -> str:
    """The taint that evicts the pod: the first it does not tolerate, else the one whose
    toleration expires first."""
    best_key, best = "", math.inf
    for taint in taints:
        match = next((t for t in pod.spec.tolerations if t.tolerates(taint)), None)
        if match is None:
            return taint.key
        seconds = match.toleration_seconds
        if seconds is not None and seconds < best:
            best_key, best = taint.key, seconds
    return best_key or (taints[0].key if taints else "unknown")
