"""kube-scheduler v1.35 in schedbench: snapshot, framework, plugins, queue and cycle.

- :mod:`.snapshot`  - the nodes as struct-of-arrays, pods compiled once (:class:`PodInfo`)
- :mod:`.framework` - status codes, the plugin contract, the registry, the runners
- :mod:`.plugins`   - one module per plugin, hot loops as Numba kernels
- :mod:`.queue`     - activeQ / backoffQ / unschedulable pods on a virtual clock
- :mod:`.scheduler` - the scheduling cycle (``schedule_one``) and :class:`Scheduler`
"""

from .framework import Code, CycleState, Framework, Handle, Plugin, Status, register
from .scheduler import ScheduleResult, Scheduler
from .snapshot import NodeSnapshot, PodInfo

__all__ = ["Code", "CycleState", "Framework", "Handle", "NodeSnapshot", "Plugin", "PodInfo",
           "ScheduleResult", "Scheduler", "Status", "register"]
