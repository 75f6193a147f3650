"""kube-scheduler's scheduling queue (pkg/scheduler/backend/queue, v1.35), on a virtual clock.

Three places a pending pod can be:

- **activeQ**: a heap ordered by the QueueSort plugin (PrioritySort: higher priority first,
  then the earlier queue timestamp);
- **backoffQ**: pods that failed and wait out their backoff, ``initial * 2^(attempts-1)``
  capped at ``max`` (1 s and 10 s by default). As in v1.35 (SchedulerPopFromBackoffQ, on by
  default) the expiry is aligned down to a 1 s window, a pod is still backing off while its
  expiry is not before the current window, pods of one window are ordered as activeQ orders
  them, and **when activeQ is empty the head of backoffQ is popped at once**. Pods that failed
  with no plugin to blame (errors) wait in a separate error backoff queue, which is never
  popped early;
- **unschedulable pods**: pods rejected by plugins, parked until a cluster event that one of
  the rejecting plugins registered for (``Plugin.events``, and its ``queueing_hint`` when it
  has one) may have made them schedulable; they then go to backoffQ if still backing off,
  else to activeQ. Every 30 s, pods parked for more than ``max_in_unschedulable`` (5 min) are
  flushed back (:meth:`flush_unschedulable_leftover`).

A failed pod's queue timestamp is refreshed (``AddUnschedulableIfNotPresent``); events received
while the pod was being scheduled count when it comes back (queueing hints' in-flight events).
Pods with scheduling gates wait in ``gated`` until their gates are removed (the SchedulingGates
PreEnqueue plugin); they keep their timestamp. :class:`Nominator` records the nodes that
preemption nominated pods to (kube's PodNominator).

Time is a float number of seconds supplied by the caller; windows and flush ticks are aligned
to whole multiples counted from time 0.
"""

from __future__ import annotations

import heapq
import itertools
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .snapshot import PodInfo

DEFAULT_INITIAL_BACKOFF = 1.0
DEFAULT_MAX_BACKOFF = 10.0
DEFAULT_MAX_IN_UNSCHEDULABLE = 300.0
#: backoffQOrderingWindowDuration: backoff expiries are aligned to (and backoffQ flushed at)
#: whole seconds.
BACKOFF_WINDOW = 1.0
#: flushUnschedulablePodsLeftover runs every 30 s.
UNSCHEDULABLE_FLUSH_PERIOD = 30.0
#: Events that move every parked pod whatever rejected it (kube's wildcard cluster events).
WILDCARD_EVENTS = frozenset({"UnschedulableTimeout", "ForceActivate", "*"})

_SKIP, _AFTER_BACKOFF = 0, 1


def align_to_window(t: float, window: float = BACKOFF_WINDOW) -> float:
    """``time.Truncate(window)``: the start of the window ``t`` is in."""
    return math.floor(t / window) * window


@dataclass(eq=False)
class QueuedPod:
    """kube's QueuedPodInfo: the pod, its queue timestamp, attempts, and who rejected it.

    ``stamp`` orders equal timestamps (kube's timestamps differ by nanoseconds in event
    order); ``version`` is the caller's cluster version when the pod last failed."""

    info: PodInfo
    timestamp: float
    attempts: int = 0
    initial_attempt_timestamp: float | None = None
    unschedulable_plugins: frozenset[str] = frozenset()
    backoff_expires: float | None = None
    last_failure: str = ""
    gated: bool = False
    extra: dict = field(default_factory=dict)
    unschedulable_count: int = 0
    consecutive_errors: int = 0
    stamp: int = 0
    version: int = 0

    @property
    def key(self) -> str:
        return self.info.key


class Nominator:
    """kube's PodNominator: which pods preemption nominated to which node, in nomination
    order per node. A pod is nominated to at most one node."""

    def __init__(self) -> None:
        self._by_node: dict[str, dict[str, PodInfo]] = {}
        self._node_of: dict[str, str] = {}

    def add(self, info: PodInfo, node_name: str) -> None:
        """Nominate ``info`` to ``node_name`` (replacing an earlier nomination); an empty
        name only removes the nomination."""
        self.delete(info.key)
        if node_name:
            self._by_node.setdefault(node_name, {})[info.key] = info
            self._node_of[info.key] = node_name

    def delete(self, key: str) -> None:
        node = self._node_of.pop(key, None)
        if node is not None:
            pods = self._by_node[node]
            del pods[key]
            if not pods:
                del self._by_node[node]

    def node_of(self, key: str) -> str | None:
        return self._node_of.get(key)

    def pods_for_node(self, node_name: str) -> list[PodInfo]:
        return list(self._by_node.get(node_name, {}).values())

    def node_names(self) -> set[str] | dict:
        """Names of the nodes that have nominated pods."""
        return self._by_node.keys()

    def __len__(self) -> int:
        return len(self._node_of)


class SchedulingQueue:
    """activeQ / backoffQ / unschedulable pods, with PrioritySort ordering.

    ``plugins`` (name -> plugin instance, the framework's) lets event moves ask a rejecting
    plugin's ``queueing_hint(pod_info, event, obj) -> bool`` when it defines one; without it
    (or without the method) an event a plugin registered for always requeues."""

    def __init__(self, initial_backoff: float = DEFAULT_INITIAL_BACKOFF,
                 max_backoff: float = DEFAULT_MAX_BACKOFF,
                 max_in_unschedulable: float = DEFAULT_MAX_IN_UNSCHEDULABLE, *,
                 pop_from_backoff: bool = True, plugins: dict[str, Any] | None = None) -> None:
        self.initial_backoff = initial_backoff
        self.max_backoff = max_backoff
        self.max_in_unschedulable = max_in_unschedulable
        self.pop_from_backoff = pop_from_backoff
        self.plugins = plugins
        self.nominator = Nominator()
        self._active: list[tuple] = []
        self._backoff: list[tuple] = []        # podBackoffQ
        self._error_backoff: list[tuple] = []  # podErrorBackoffQ
        self._seq = itertools.count()
        self._stamps = itertools.count()
        self.unschedulable: dict[str, QueuedPod] = {}
        self.gated: dict[str, QueuedPod] = {}
        # key -> "active" | "backoff" | "error_backoff" | "unschedulable" | "gated"
        self._where: dict[str, str] = {}
        self._entries: dict[str, QueuedPod] = {}
        self.in_flight: dict[str, QueuedPod] = {}
        self._in_flight_events: dict[str, list[tuple[str, Any]]] = {}
        self._interest: dict[tuple, list] = {}  # (event, rejecting plugins) -> plugins
        self.moves = 0  # cluster events that moved at least one pod
        self.cycles = 0  # pods popped (kube's scheduling cycle counter)

    # ------------------------------------------------------------------------------ state

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, key: str) -> bool:
        return key in self._entries

    @property
    def active_count(self) -> int:
        return sum(1 for w in self._where.values() if w == "active")

    @property
    def backoff_count(self) -> int:
        return sum(1 for w in self._where.values() if w in ("backoff", "error_backoff"))

    def where(self, key: str) -> str | None:
        """"active", "backoff", "error_backoff", "unschedulable", "gated", "in_flight" or
        None."""
        if key in self.in_flight:
            return "in_flight"
        return self._where.get(key)

    def get(self, key: str) -> QueuedPod | None:
        return self._entries.get(key) or self.in_flight.get(key)

    def pending(self) -> list[QueuedPod]:
        """Every pod in the queue (any sub-queue) and every pod being scheduled."""
        return list(self._entries.values()) + list(self.in_flight.values())

    def _next_stamp(self) -> int:
        return next(self._stamps)

    # -------------------------------------------------------------------------- add / pop

    def add(self, info: PodInfo, now: float) -> QueuedPod:
        """A new pending pod (Add): gated pods wait, others go to activeQ. A pod that comes
        with ``status.nominatedNodeName`` is nominated there (moveToActiveQ on a pod add)."""
        if info.key in self._entries or info.key in self.in_flight:
            raise ValueError(f"pod {info.key} is already queued")
        qp = QueuedPod(info=info, timestamp=now, stamp=self._next_stamp())
        if info.pod.spec.scheduling_gates:
            qp.gated = True
            qp.unschedulable_plugins = frozenset({"SchedulingGates"})
            self._put(qp, "gated")
        else:
            self._push_active(qp)
            if info.pod.status.nominated_node_name:
                self.nominator.add(info, info.pod.status.nominated_node_name)
        return qp

    def ungate(self, key: str, now: float) -> None:
        """The pod's scheduling gates were removed: it enters activeQ (or backoffQ if it is
        still backing off), keeping its queue timestamp."""
        qp = self.gated.get(key)
        if qp is None:
            return
        self._remove(key)
        qp.gated = False
        self._requeue(qp, _AFTER_BACKOFF, now)

    def _put(self, qp: QueuedPod, where: str) -> None:
        self._entries[qp.key] = qp
        self._where[qp.key] = where
        if where == "unschedulable":
            self.unschedulable[qp.key] = qp
        elif where == "gated":
            self.gated[qp.key] = qp

    def _remove(self, key: str) -> QueuedPod | None:
        qp = self._entries.pop(key, None)
        where = self._where.pop(key, None)
        if where == "unschedulable":
            del self.unschedulable[key]
        elif where == "gated":
            del self.gated[key]
        return qp  # heap entries of removed pods are dropped lazily

    def _live(self, qp: QueuedPod, where: str) -> bool:
        return self._where.get(qp.key) == where and self._entries.get(qp.key) is qp

    def _push_active(self, qp: QueuedPod) -> None:
        self._put(qp, "active")
        heapq.heappush(self._active, (-qp.info.priority, qp.timestamp, qp.stamp,
                                      next(self._seq), qp))

    def _push_backoff(self, qp: QueuedPod) -> None:
        expires = self.backoff_expiration(qp)
        if not qp.unschedulable_plugins:
            self._put(qp, "error_backoff")
            heapq.heappush(self._error_backoff, (expires, qp.stamp, next(self._seq), qp))
        else:
            self._put(qp, "backoff")
            heapq.heappush(self._backoff, (expires, -qp.info.priority, qp.timestamp, qp.stamp,
                                           next(self._seq), qp))

    def pop(self, now: float) -> QueuedPod | None:
        """Flush what is due (finished backoffs; pods parked too long, at the last 30 s tick),
        then pop activeQ's head, or backoffQ's head when activeQ is empty (None when both
        are)."""
        if self._backoff or self._error_backoff:
            self.flush_backoff(now)
        if self.unschedulable:
            self.flush_unschedulable_leftover(
                align_to_window(now, UNSCHEDULABLE_FLUSH_PERIOD))
        qp = self._pop_heap(self._active, "active")
        if qp is None and self.pop_from_backoff:
            qp = self._pop_heap(self._backoff, "backoff")
        if qp is None:
            return None
        self._remove(qp.key)
        qp.attempts += 1
        qp.backoff_expires = None
        if qp.initial_attempt_timestamp is None:
            qp.initial_attempt_timestamp = now
        self.in_flight[qp.key] = qp
        self._in_flight_events[qp.key] = []
        self.cycles += 1
        return qp

    def _pop_heap(self, heap: list[tuple], where: str) -> QueuedPod | None:
        while heap:
            qp = heapq.heappop(heap)[-1]
            if self._live(qp, where):
                return qp
        return None

    def done(self, key: str) -> None:
        """The scheduling cycle of ``key`` ended with the pod bound (or deleted)."""
        self.in_flight.pop(key, None)
        self._in_flight_events.pop(key, None)

    def delete(self, key: str) -> None:
        """The pod was deleted while pending."""
        self._remove(key)
        self.done(key)
        self.nominator.delete(key)

    # ---------------------------------------------------------------------------- backoff

    def backoff_duration(self, attempts: int) -> float:
        """calculateBackoffDuration: 0 before any attempt, else ``initial`` doubled per
        attempt after the first, capped at ``max``."""
        if attempts <= 0:
            return 0.0
        duration = self.initial_backoff
        for _ in range(1, attempts):
            if duration > self.max_backoff - duration:
                return self.max_backoff
            duration += duration
        return min(duration, self.max_backoff)

    def backoff_expiration(self, qp: QueuedPod) -> float | None:
        """getBackoffTime: the queue timestamp plus the backoff, aligned down to its window
        (cached until the next pop); None for a pod never attempted (no backoff at all)."""
        if qp.attempts == 0:
            return None
        if qp.backoff_expires is None:
            qp.backoff_expires = align_to_window(
                qp.timestamp + self.backoff_duration(qp.attempts))
        return qp.backoff_expires

    def is_backing_off(self, qp: QueuedPod, now: float) -> bool:
        """isPodBackingoff: the expiry is not before the current window."""
        expires = self.backoff_expiration(qp)
        return expires is not None and expires >= align_to_window(now)

    def flush_backoff(self, now: float) -> int:
        """flushBackoffQCompleted: pods whose backoff completed go to activeQ."""
        if not self._backoff and not self._error_backoff:
            return 0
        moved = 0
        for heap, where in ((self._backoff, "backoff"), (self._error_backoff, "error_backoff")):
            while heap:
                qp = heap[0][-1]
                if not self._live(qp, where):
                    heapq.heappop(heap)
                    continue
                if self.is_backing_off(qp, now):
                    break
                heapq.heappop(heap)
                self._remove(qp.key)
                self._push_active(qp)
                moved += 1
        return moved

    def next_backoff_expiry(self, newer_than: int | None = None) -> float | None:
        """The earliest time at which a pod waiting in backoffQ or the error backoffQ
        completes its backoff (the first window after its expiry's), None if none waits.
        With ``newer_than``, only pods whose ``version`` is below it count."""
        best = None
        for heap, where in ((self._backoff, "backoff"), (self._error_backoff, "error_backoff")):
            for entry in heap:
                qp = entry[-1]
                if not self._live(qp, where) or \
                        (newer_than is not None and qp.version >= newer_than):
                    continue
                t = self.backoff_expiration(qp) + BACKOFF_WINDOW
                best = t if best is None else min(best, t)
        return best

    # --------------------------------------------------------------------------- failures

    def add_unschedulable(self, qp: QueuedPod, now: float, plugins: frozenset[str],
                          message: str, *, error: bool = False, version: int = 0) -> str:
        """AddUnschedulableIfNotPresent: a failed attempt, rejected by ``plugins`` (empty for
        an error, which is then retried from the error backoff queue). The timestamp is
        refreshed; events received while the pod was in flight may requeue it at once.
        Returns where the pod went. (``error`` is accepted for compatibility; kube decides
        by the plugins.)"""
        self.in_flight.pop(qp.key, None)
        events = self._in_flight_events.pop(qp.key, [])
        if plugins:
            qp.unschedulable_count += 1
            qp.consecutive_errors = 0
        else:
            qp.consecutive_errors += 1
        qp.timestamp = now
        qp.stamp = self._next_stamp()
        qp.backoff_expires = None
        qp.unschedulable_plugins = frozenset(plugins)
        qp.last_failure = message
        qp.version = version
        strategy = _AFTER_BACKOFF if not plugins else _SKIP
        for event, obj in events:
            if strategy == _AFTER_BACKOFF:
                break
            strategy = self._worth_requeuing(qp, event, obj)
        return self._requeue(qp, strategy, now)

    def _requeue(self, qp: QueuedPod, strategy: int, now: float) -> str:
        """requeuePodWithQueueingStrategy."""
        if strategy == _SKIP:
            self._put(qp, "unschedulable")
            return "unschedulable"
        if self.is_backing_off(qp, now):
            self._push_backoff(qp)
            return self._where[qp.key]
        self._push_active(qp)
        return "active"

    def _plugin(self, name: str):
        if self.plugins is not None:
            return self.plugins.get(name)
        from . import plugins as _registered  # noqa: F401  (fills the registry)
        from .framework import PLUGINS

        return PLUGINS.get(name)

    def _worth_requeuing(self, qp: QueuedPod, event: str, obj: Any = None) -> int:
        """isPodWorthRequeuing: a pod no plugin rejected, or a wildcard event, always; else
        when one of the rejecting plugins registered for the event (and its queueing hint, if
        it has one, says Queue)."""
        if not qp.unschedulable_plugins or event in WILDCARD_EVENTS:
            return _AFTER_BACKOFF
        key = (event, qp.unschedulable_plugins)
        interested = self._interest.get(key)
        if interested is None:
            # the rejecting plugins registered for the event, in name order (plugins and
            # their events do not change; hints are asked per pod below)
            interested = []
            for name in sorted(qp.unschedulable_plugins):
                plugin = self._plugin(name)
                if plugin is None or event not in getattr(plugin, "events", ()):
                    continue
                interested.append(plugin)
            if self.plugins is not None:  # (the global registry may still grow)
                if len(self._interest) > 4096:
                    self._interest.clear()
                self._interest[key] = interested
        for plugin in interested:
            hint = getattr(plugin, "queueing_hint", None) if self.plugins is not None else None
            if hint is None or hint(qp.info, event, obj):
                return _AFTER_BACKOFF
        return _SKIP

    def move_on_event(self, event: str, now: float, obj: Any = None,
                      precheck: Callable[[QueuedPod], bool] | None = None) -> int:
        """MoveAllToActiveOrBackoffQueue / movePodsToActiveOrBackoffQueue for one cluster
        event (``obj``: the object it is about): parked pods that pass ``precheck`` and that
        the event may help (:meth:`_worth_requeuing`) go to backoffQ or activeQ. The event is
        also recorded for pods in flight. Returns how many pods moved."""
        for events in self._in_flight_events.values():
            events.append((event, obj))
        if not self.unschedulable:
            return 0
        moved = 0
        for key, qp in list(self.unschedulable.items()):
            if precheck is not None and not precheck(qp):
                continue
            strategy = self._worth_requeuing(qp, event, obj)
            if strategy == _SKIP:
                continue
            self._remove(key)
            self._requeue(qp, strategy, now)
            moved += 1
        if moved:
            self.moves += 1
        return moved

    def flush_unschedulable_leftover(self, now: float) -> int:
        """flushUnschedulablePodsLeftover at time ``now``: pods parked for more than
        ``max_in_unschedulable`` go back (an UnschedulableTimeout event, a wildcard)."""
        if not self.unschedulable:
            return 0
        moved = 0
        for key, qp in list(self.unschedulable.items()):
            if now - qp.timestamp > self.max_in_unschedulable:
                self._remove(key)
                self._requeue(qp, _AFTER_BACKOFF, now)
                moved += 1
        return moved

    def next_leftover_flush(self, newer_than: int | None = None) -> float | None:
        """The first 30 s tick at which a parked pod would be flushed back, counting only
        pods whose ``version`` is below ``newer_than`` when given (pods that failed before
        the cluster last changed); None if there is none."""
        best = None
        period = UNSCHEDULABLE_FLUSH_PERIOD
        for qp in self.unschedulable.values():
            if newer_than is not None and qp.version >= newer_than:
                continue
            due = qp.timestamp + self.max_in_unschedulable
            t = (math.floor(due / period) + 1) * period  # first tick strictly after ``due``
            best = t if best is None else min(best, t)
        return best
