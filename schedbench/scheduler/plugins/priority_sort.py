"""PrioritySort (QueueSort): higher priority first, then the earlier queue timestamp.
:class:`~schedbench.scheduler.queue.SchedulingQueue` orders activeQ this way."""

from __future__ import annotations

from ..framework import Plugin, register


@register
class PrioritySort(Plugin):
    name = "PrioritySort"

    @staticmethod
    def less(priority_a: int, timestamp_a: float, priority_b: int, timestamp_b: float) -> bool:
        """queuesort.PrioritySort.Less."""
        if priority_a != priority_b:
            return priority_a > priority_b
        return timestamp_a < timestamp_b
