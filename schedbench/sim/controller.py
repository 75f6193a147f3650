"""The controller base: a client-go style work queue on the virtual clock.

Every controller of the simulation (ReplicaSet, Deployment, Endpoints, HPA, node lifecycle,
the scheduler) reacts to watch events by enqueueing a key (``namespace/name``) and reconciles
that key later, as kube-controller-manager's controllers do
(k8s.io/client-go/util/workqueue):

* a key already queued is not queued again (the queue's "dirty" set), so a burst of events
  about one object gives one reconcile;
* ``enqueue(key, delay)`` is ``AddAfter``: the key waits ``delay`` seconds, and of several
  waiting requests for one key the earliest wins;
* a key enqueued while it is being reconciled is queued again, and runs after;
* a reconcile that raises :class:`~schedbench.sim.store.Conflict` is retried with
  per-item exponential backoff (``AddRateLimited``: 5 ms doubling to 1000 s), as controllers
  do when an update hits a stale resourceVersion; success resets the backoff (``Forget``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .engine import PRIO_CONTROLLER, Engine, Event
from .store import Conflict, Store

__all__ = ["Context", "Controller", "SimConfig"]

_BACKOFF_BASE = 0.005  # client-go DefaultControllerRateLimiter: 5 ms .. 1000 s per item
_BACKOFF_MAX = 1000.0


@dataclass
class SimConfig:
    """Timing and tuning of the simulated control plane, in seconds (Kubernetes v1.35
    defaults where Kubernetes has one)."""

    pod_startup_seconds: float = 2.0          # ContainerCreating -> Running
    pod_ready_seconds: float = 1.0            # Running -> Ready
    node_heartbeat_seconds: float = 10.0      # kubelet lease renew interval (40 s lease / 4)
    node_monitor_grace_seconds: float = 50.0  # --node-monitor-grace-period (50 s since v1.32)
    default_toleration_seconds: int = 300     # DefaultTolerationSeconds admission
    hpa_sync_seconds: float = 15.0            # --horizontal-pod-autoscaler-sync-period
    hpa_tolerance: float = 0.1
    hpa_downscale_stabilization_seconds: float = 300.0
    deployment_progress_deadline_default: int = 600
    sample_seconds: float = 60.0              # timeline sample interval


def _no_log(record: dict) -> None:
    return None


@dataclass
class Context:
    """What every controller gets: the engine (clock, rng), the store, the configuration
    and ``log(record)``, which appends a dict (``"t"`` first, JSON-serialisable) to the
    event log."""

    engine: Engine
    store: Store
    config: SimConfig = field(default_factory=SimConfig)
    log: Callable[[dict], None] = _no_log


class Controller:
    """Base class: subclasses set ``name``, register watches in :meth:`start`, call
    :meth:`enqueue` from their handlers and implement :meth:`reconcile`."""

    name: str = "controller"

    def __init__(self, sim_ctx: Context) -> None:
        self.ctx = sim_ctx
        self.engine = sim_ctx.engine
        self.store = sim_ctx.store
        self.config = sim_ctx.config
        self._queued: dict[str, Event] = {}    # ready to run (the dirty set)
        self._waiting: dict[str, Event] = {}   # AddAfter: the earliest pending timer per key
        self._failures: dict[str, int] = {}
        self.reconciles = 0

    # ---- to override ---------------------------------------------------------------------

    def start(self) -> None:
        """Register watches (and initial enqueues). Called once by the simulation."""

    def reconcile(self, key: str) -> None:
        """Bring the object named by ``key`` to its desired state."""
        raise NotImplementedError

    # ---- the queue -----------------------------------------------------------------------

    def enqueue(self, key: str, delay: float = 0.0) -> None:
        """Queue ``key`` for a reconcile at now + ``delay`` (PRIO_CONTROLLER), deduplicated
        as client-go's work queue does (module docstring)."""
        if delay > 0:
            at = self.engine.now + delay
            waiting = self._waiting.get(key)
            if waiting is not None:
                if waiting[0] <= at:
                    return
                self.engine.cancel(waiting)
            self._waiting[key] = self.engine.at(at, self._ready, key,
                                                priority=PRIO_CONTROLLER)
            return
        if key in self._queued:
            return
        self._queued[key] = self.engine.at(self.engine.now, self._process, key,
                                           priority=PRIO_CONTROLLER)

    def is_queued(self, key: str) -> bool:
        """Whether a reconcile of ``key`` is queued or waiting."""
        return key in self._queued or key in self._waiting

    def _ready(self, key: str) -> None:
        self._waiting.pop(key, None)
        self.enqueue(key)

    def _process(self, key: str) -> None:
        self._queued.pop(key, None)
        self.reconciles += 1
        try:
            self.reconcile(key)
        except Conflict:
            n = self._failures.get(key, 0)
            self._failures[key] = n + 1
            self.enqueue(key, min(_BACKOFF_BASE * 2 ** n, _BACKOFF_MAX))
            return
        if self._failures:
            self._failures.pop(key, None)

    # ---- helpers -------------------------------------------------------------------------

    def log(self, event: str, **details: Any) -> None:
        """Append ``{"t": now, "event": event, **details}`` to the event log."""
        self.ctx.log({"t": self.engine.now, "event": event, **details})


def split_key(key: str) -> tuple[str, str]:
    """``"ns/name"`` -> ``("ns", "name")``; ``"name"`` -> ``("", "name")``
    (client-go cache.SplitMetaNamespaceKey)."""
    ns, sep, name = key.partition("/")
    return (ns, name) if sep else ("", ns)
