"""The discrete-event engine: a virtual clock and a heap of pending events.

Everything in a simulation runs on this clock, single-threaded: no wall-clock time, and the
only randomness is :attr:`Engine.rng` (numpy's PCG64 seeded from the scenario seed), so the
same scenario and seed replay the same events in the same order.

Events at equal times run in ``(time, priority, insertion sequence)`` order. The priorities
below order the components within one instant: scenario actions first, then watch delivery
(informers see a change before anyone reconciles), controllers, the scheduler, kubelets, and
timeline samples last.

An event is a heap entry ``[time, priority, seq, fn, args]`` (a plain list, so cancelling is
``entry[3] = None``: lazy deletion, no search of the heap). Throughput: see README.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable
from typing import Any

import numpy as np

from schedbench.errors import SchedbenchError

PRIO_ACTION = 0
PRIO_WATCH = 10
PRIO_CONTROLLER = 20
PRIO_SCHEDULER = 30
PRIO_KUBELET = 40
PRIO_SAMPLE = 90

PAST_TOLERANCE = 0.001  # the resolution of object timestamps (timefmt.stamp)

_TIME, _PRIO, _SEQ, _FN, _ARGS = range(5)
_INF = float("inf")
_heappush = heapq.heappush
_heappop = heapq.heappop


class SimulationError(SchedbenchError):
    """A misuse of the engine (scheduling into the past, a non-finite time)."""


Event = list
"""A scheduled call: the heap entry ``[time, priority, seq, fn, args]`` (a plain list, the
cheapest object to build); ``fn`` is None once it ran or was cancelled. The heap compares
entries as lists, so by (time, priority, seq); seq is unique, so ``fn`` is never compared.
Use :func:`event_time` / :func:`event_cancelled` rather than indexes outside the engine."""


def event_time(event: Event) -> float:
    """The virtual time an event is (or was) scheduled at."""
    return event[_TIME]


def event_cancelled(event: Event) -> bool:
    """True once the event ran or was cancelled."""
    return event[_FN] is None


class Engine:
    """A virtual clock with a heap of pending events.

    ``at(time, fn, *args)`` / ``after(delay, fn, *args)`` schedule ``fn(*args)``;
    :meth:`run` executes events in (time, priority, seq) order until none is left (or none
    is due by ``until``). ``steps`` counts executed events.
    """

    __slots__ = ("now", "rng", "seed", "steps", "_heap", "_seq")

    def __init__(self, seed: int = 0, start: float = 0.0) -> None:
        self.seed = int(seed)
        self.now = float(start)
        self.rng = np.random.default_rng(self.seed)
        self.steps = 0
        self._heap: list[Event] = []
        self._seq = 0

    # ---- scheduling ------------------------------------------------------------------------

    def at(self, time: float, fn: Callable[..., Any], *args: Any, priority: int = 0) -> Event:
        """Schedule ``fn(*args)`` at virtual ``time`` (>= now, finite). A time less than a
        millisecond in the past (a time computed from a millisecond timestamp) means now."""
        if not self.now <= time < _INF:  # also rejects NaN
            if self.now - PAST_TOLERANCE <= time < self.now:
                time = self.now
            else:
                raise SimulationError(f"cannot schedule at t={time!r}: the clock is at "
                                      f"t={self.now!r}")
        seq = self._seq
        self._seq = seq + 1
        ev = [time, priority, seq, fn, args]
        _heappush(self._heap, ev)
        return ev

    def after(self, delay: float, fn: Callable[..., Any], *args: Any,
              priority: int = 0) -> Event:
        """Schedule ``fn(*args)`` ``delay`` seconds from now (delay >= 0)."""
        time = self.now + delay
        if not (delay >= 0 and time < _INF):
            raise SimulationError(f"delay must be finite and >= 0, got {delay!r}")
        seq = self._seq
        self._seq = seq + 1
        ev = [time, priority, seq, fn, args]
        _heappush(self._heap, ev)
        return ev

    def cancel(self, event: Event | None) -> None:
        """Cancel a pending event (lazy deletion). Cancelling an event that already ran or
        was cancelled, or None, does nothing."""
        if event is not None and event[_FN] is not None:
            event[_FN] = None
            event[_ARGS] = ()

    # ---- running ---------------------------------------------------------------------------

    def peek(self) -> float | None:
        """The time of the next live event, or None when nothing is pending."""
        heap = self._heap
        while heap and heap[0][_FN] is None:
            heapq.heappop(heap)
        return heap[0][_TIME] if heap else None

    @property
    def pending(self) -> int:
        """Number of live (scheduled, not cancelled) events (counts the heap: O(n))."""
        return sum(1 for ev in self._heap if ev[_FN] is not None)

    def step(self) -> bool:
        """Run the next live event; False when there is none."""
        heap = self._heap
        while heap:
            ev = heapq.heappop(heap)
            fn = ev[_FN]
            if fn is None:
                continue
            ev[_FN] = None  # ran: a later cancel() is a no-op
            self.now = ev[_TIME]
            self.steps += 1
            fn(*ev[_ARGS])
            return True
        return False

    def run(self, until: float | None = None,
            on_step: Callable[[float], bool | None] | None = None) -> float:
        """Run events in order until none is left or the next one is later than ``until``;
        then the clock is at ``until`` (when given and not passed). ``on_step(now)`` is called
        after every event; a true return value stops the run there. Returns the clock."""
        if until is not None and not until >= self.now:
            raise SimulationError(f"cannot run until t={until!r}: the clock is at "
                                  f"t={self.now!r}")
        heap = self._heap
        pop = _heappop
        limit = _INF if until is None else until
        steps = 0
        try:
            while heap:
                ev = pop(heap)
                fn = ev[3]
                if fn is None:
                    continue
                t = ev[0]
                if t > limit:
                    _heappush(heap, ev)
                    break
                ev[3] = None  # ran: a later cancel() is a no-op
                self.now = t
                steps += 1
                fn(*ev[4])
                if on_step is not None and on_step(t):
                    return self.now
        finally:
            self.steps += steps
        if until is not None and self.now < until:
            self.now = until
        return self.now
