"""kube-scheduler's scheduling queue, on a virtual clock.

Three places a pending pod can be (pkg/scheduler/backend/queue):

- **activeQ**: a heap ordered by the QueueSort plugin (PrioritySort: higher priority first,
  then the earlier queue timestamp);
- **backoffQ**: pods that failed and wait out their backoff, ``initial * 2^(attempts-1)`` capped
  at ``max`` (1 s and 10 s by default); ordered by when the backoff ends;
- **unschedulable pods**: pods rejected by filters, parked until a cluster event that one of
  the rejecting plugins registered for (``Plugin.events``) may have made them schedulable; they
  then move to backoffQ if still backing off, else to activeQ. Pods parked longer than
  ``max_in_unschedulable`` (5 min) are flushed back by :meth:`flush_unschedulable_leftover`.

Pods with scheduling gates wait in ``gated`` until their gates are removed (the
SchedulingGates PreEnqueue plugin). Time is a float number of seconds supplied by the caller.
"""

from __future__ import annotations

import heapq
import itertools
from dataclasses import dataclass, field

from .snapshot import PodInfo

DEFAULT_INITIAL_BACKOFF = 1.0
DEFAULT_MAX_BACKOFF = 10.0
DEFAULT_MAX_IN_UNSCHEDULABLE = 300.0


@dataclass(eq=False)
class QueuedPod:
    """kube's QueuedPodInfo: the pod, its queue timestamp, attempts, and who rejected it."""

    info: PodInfo
    timestamp: float
    attempts: int = 0
    initial_attempt_timestamp: float | None = None
    unschedulable_plugins: frozenset[str] = frozenset()
    backoff_expires: float = 0.0
    last_failure: str = ""
    gated: bool = False
    extra: dict = field(default_factory=dict)

    @property
    def key(self) -> str:
        return self.info.key


class SchedulingQueue:
    """activeQ / backoffQ / unschedulable pods, with PrioritySort ordering."""

    def __init__(self, initial_backoff: float = DEFAULT_INITIAL_BACKOFF,
                 max_backoff: float = DEFAULT_MAX_BACKOFF,
                 max_in_unschedulable: float = DEFAULT_MAX_IN_UNSCHEDULABLE) -> None:
        self.initial_backoff = initial_backoff
        self.max_backoff = max_backoff
        self.max_in_unschedulable = max_in_unschedulable
        self._active: list[tuple] = []
        self._backoff: list[tuple] = []
        self._seq = itertools.count()
        self.unschedulable: dict[str, QueuedPod] = {}
        self.gated: dict[str, QueuedPod] = {}
        self._where: dict[str, str] = {}  # key -> "active" | "backoff" | "unschedulable" | "gated"
        self._entries: dict[str, QueuedPod] = {}
        self.in_flight: dict[str, QueuedPod] = {}
        self.moves = 0  # cluster events that moved at least one pod

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
        return sum(1 for w in self._where.values() if w == "backoff")

    def where(self, key: str) -> str | None:
        return self._where.get(key)

    def pending(self) -> list[QueuedPod]:
        """Every pod in the queue (any sub-queue) and every pod being scheduled."""
        return list(self._entries.values()) + list(self.in_flight.values())

    # -------------------------------------------------------------------------- add / pop

    def add(self, info: PodInfo, now: float) -> QueuedPod:
        """A new pending pod (Add): gated pods wait, others go to activeQ."""
        if info.key in self._entries or info.key in self.in_flight:
            raise ValueError(f"pod {info.key} is already queued")
        qp = QueuedPod(info=info, timestamp=now)
        if info.pod.spec.scheduling_gates:
            qp.gated = True
            self._put(qp, "gated")
        else:
            self._push_active(qp)
        return qp

    def ungate(self, key: str, now: float) -> None:
        """The pod's scheduling gates were removed: it enters activeQ."""
        qp = self.gated.get(key)
        if qp is None:
            return
        self._remove(key)
        qp.gated = False
        qp.timestamp = now
        self._push_active(qp)

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
        return qp  # heap entries of removed pods are dropped lazily on pop

    def _push_active(self, qp: QueuedPod) -> None:
        self._put(qp, "active")
        heapq.heappush(self._active, (-qp.info.priority, qp.timestamp, next(self._seq), qp))

    def _push_backoff(self, qp: QueuedPod) -> None:
        self._put(qp, "backoff")
        heapq.heappush(self._backoff, (qp.backoff_expires, next(self._seq), qp))

    def pop(self, now: float) -> QueuedPod | None:
        """Flush finished backoffs into activeQ, then pop its head (None when empty)."""
        self.flush_backoff(now)
        while self._active:
            *_, qp = heapq.heappop(self._active)
            if self._where.get(qp.key) == "active" and self._entries.get(qp.key) is qp:
                self._remove(qp.key)
                qp.attempts += 1
                if qp.initial_attempt_timestamp is None:
                    qp.initial_attempt_timestamp = now
                self.in_flight[qp.key] = qp
                return qp
        return None

    def done(self, key: str) -> None:
        """The scheduling cycle of ``key`` ended with the pod bound (or deleted)."""
        self.in_flight.pop(key, None)

    def delete(self, key: str) -> None:
        """The pod was deleted while pending."""
        self._remove(key)
        self.in_flight.pop(key, None)

    # --------------------------------------------------------------------------- failures

    def backoff_duration(self, attempts: int) -> float:
        """calculateBackoffDuration: initial doubled per attempt after the first, capped."""
        duration = self.initial_backoff
        for _ in range(1, attempts):
            if duration > self.max_backoff - duration:
                return self.max_backoff
            duration += duration
        return min(duration, self.max_backoff)

    def add_unschedulable(self, qp: QueuedPod, now: float, plugins: frozenset[str],
                          message: str, *, error: bool = False) -> None:
        """AddUnschedulableIfNotPresent: a failed attempt. Errors (no plugin to blame) back
        off; rejections wait in the unschedulable pool for an event."""
        self.in_flight.pop(qp.key, None)
        qp.timestamp = now
        qp.unschedulable_plugins = plugins
        qp.last_failure = message
        qp.backoff_expires = now + self.backoff_duration(qp.attempts)
        if error or not plugins:
            self._push_backoff(qp)
        else:
            self._put(qp, "unschedulable")

    def flush_backoff(self, now: float) -> None:
        while self._backoff and self._backoff[0][0] <= now:
            _, _, qp = heapq.heappop(self._backoff)
            if self._where.get(qp.key) == "backoff" and self._entries.get(qp.key) is qp:
                self._remove(qp.key)
                self._push_active(qp)

    def next_backoff_expiry(self) -> float | None:
        """When the earliest backoff ends (for advancing a virtual clock), None if none."""
        while self._backoff:
            expires, _, qp = self._backoff[0]
            if self._where.get(qp.key) == "backoff" and self._entries.get(qp.key) is qp:
                return expires
            heapq.heappop(self._backoff)
        return None

    def move_on_event(self, event: str, now: float) -> int:
        """MoveAllToActiveOrBackoffQueue for one cluster event: unschedulable pods that a
        plugin registered for ``event`` rejected move on; returns how many moved."""
        from .framework import PLUGINS

        moved = 0
        for key, qp in list(self.unschedulable.items()):
            if any(event in getattr(PLUGINS.get(p), "events", frozenset())
                   for p in qp.unschedulable_plugins):
                self._remove(key)
                if qp.backoff_expires > now:
                    self._push_backoff(qp)
                else:
                    self._push_active(qp)
                moved += 1
        if moved:
            self.moves += 1
        return moved

    def flush_unschedulable_leftover(self, now: float) -> int:
        """Pods parked longer than ``max_in_unschedulable`` go back to active/backoff."""
        moved = 0
        for key, qp in list(self.unschedulable.items()):
            if now - qp.timestamp >= self.max_in_unschedulable:
                self._remove(key)
                if qp.backoff_expires > now:
                    self._push_backoff(qp)
                else:
                    self._push_active(qp)
                moved += 1
        return moved
