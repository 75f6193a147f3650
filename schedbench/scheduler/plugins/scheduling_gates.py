"""SchedulingGates (PreEnqueue): a pod with ``spec.schedulingGates`` is not scheduled until
every gate is removed; the queue keeps it aside (reason ``SchedulingGated``)."""

from __future__ import annotations

from ..framework import Code, Plugin, Status, register


@register
class SchedulingGates(Plugin):
    name = "SchedulingGates"

    def pre_enqueue(self, pod) -> Status:
        gates = [g.name for g in pod.pod.spec.scheduling_gates]
        if not gates:
            return Status.success()
        return Status(Code.UNSCHEDULABLE_AND_UNRESOLVABLE,
                      (f"waiting for scheduling gates: {gates}",), self.name)
