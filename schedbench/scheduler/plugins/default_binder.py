"""DefaultBinder (Bind): sets ``spec.nodeName``. With no API server, binding cannot fail; the
scheduler applies it right after assuming the pod (see ``Scheduler._assume_and_bind``)."""

from __future__ import annotations

from ..framework import Plugin, register


@register
class DefaultBinder(Plugin):
    name = "DefaultBinder"

    def bind(self, pod, node_name: str) -> None:
        pod.pod.spec.node_name = node_name
