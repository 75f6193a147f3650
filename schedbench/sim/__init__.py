"""The control-plane simulation: a cluster on a virtual clock.

The core (this package's ``engine``, ``store``, ``controller``, ``kubelet``,
``nodelifecycle``) plays the API server, etcd, the kubelets and the node lifecycle controller;
the workload controllers, the scheduler and scenarios build on it. Everything is
single-threaded and deterministic: the same scenario and seed give the same event log.
"""

from .controller import Context, Controller, SimConfig
from .engine import (PRIO_ACTION, PRIO_CONTROLLER, PRIO_KUBELET, PRIO_SAMPLE, PRIO_SCHEDULER,
                     PRIO_WATCH, Engine, Event)
from .store import AlreadyExists, Conflict, NotFound, Store, Watch, WatchEvent

__all__ = [
    "PRIO_ACTION", "PRIO_CONTROLLER", "PRIO_KUBELET", "PRIO_SAMPLE", "PRIO_SCHEDULER",
    "PRIO_WATCH", "AlreadyExists", "Conflict", "Context", "Controller", "Engine", "Event",
    "NotFound", "SimConfig", "Store", "Watch", "WatchEvent",
]
