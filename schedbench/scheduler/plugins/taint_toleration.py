"""TaintToleration: a node's NoSchedule/NoExecute taints must all be tolerated (Filter); nodes
with fewer untolerated PreferNoSchedule taints score higher (Score).

Filter (kube v1.35): the first NoSchedule/NoExecute taint no toleration tolerates makes the node
UnschedulableAndUnresolvable with "node(s) had untolerated taint(s)" (v1.35 no longer prints the
taint's key and value). Score counts the node's PreferNoSchedule taints not tolerated by the
pod's tolerations whose effect is PreferNoSchedule or empty; NormalizeScore is
DefaultNormalizeScore reversed (no untolerated taint: 100)."""

from __future__ import annotations

import numpy as np

from ..framework import (
    UNRESOLVABLE,
    CycleState,
    Plugin,
    Status,
    default_normalize_score,
    node_change,
    register,
)
from ..snapshot import PodInfo
from ..taints import (
    CompiledTolerations,
    compile_tolerations,
    count_untolerated_taints,
    refresh,
    tolerations_tolerate,
    untolerated_taints,
)

ERR_REASON_UNTOLERATED = "node(s) had untolerated taint(s)"
DO_NOT_SCHEDULE = frozenset({"NoSchedule", "NoExecute"})
PREFER_NO_SCHEDULE = frozenset({"PreferNoSchedule"})


@register
class TaintToleration(Plugin):
    name = "TaintToleration"
    # kube (queueing hints on): Node/Add | Node/UpdateNodeTaint, Pod/UpdatePodToleration.
    events = frozenset({"NodeAdd", "NodeUpdate"})

    def queueing_hint(self, pod: PodInfo, event: str, other) -> bool:
        """kube's ``isSchedulableAfterNodeChange``: the new node's NoSchedule/NoExecute taints
        are all tolerated and the old node's were not (an added node: were not, by
        definition)."""
        change = node_change(event, other)
        if change is None:
            return True
        old, new = change
        tols = pod.pod.spec.tolerations

        def untolerated(node) -> bool:
            return any(t.effect in DO_NOT_SCHEDULE and not tolerations_tolerate(tols, t)
                       for t in node.spec.taints)

        return (old is None or untolerated(old)) and not untolerated(new)

    def _compiled(self, pod: PodInfo, which: str) -> CompiledTolerations:
        key = f"TaintToleration/{which}"
        snap = self.handle.snapshot
        c = pod.cache.get(key)
        if c is None or c.stale(snap):
            tols = pod.pod.spec.tolerations
            if which == "prefer":
                tols = [t for t in tols if not t.effect or t.effect == "PreferNoSchedule"]
            c = pod.cache[key] = refresh(snap, c) if c is not None else compile_tolerations(
                snap, tols)
        return c

    def filter(self, state: CycleState, pod: PodInfo, nodes: np.ndarray) -> np.ndarray:
        nodes = np.asarray(nodes, np.int64)
        bad = untolerated_taints(self.handle.snapshot, self._compiled(pod, "all"), nodes,
                                 DO_NOT_SCHEDULE)
        out = np.zeros(nodes.size, np.int8)
        out[bad] = UNRESOLVABLE
        return out

    def filter_reasons(self, state: CycleState, pod: PodInfo, node: int) -> list[str]:
        bad = untolerated_taints(self.handle.snapshot, self._compiled(pod, "all"),
                                 np.array([node], np.int64), DO_NOT_SCHEDULE)
        return [ERR_REASON_UNTOLERATED] if bad[0] else []

    def filter_reasons_batch(self, state: CycleState, pod: PodInfo, nodes: np.ndarray
                             ) -> list[list[str]]:
        bad = untolerated_taints(self.handle.snapshot, self._compiled(pod, "all"),
                                 np.asarray(nodes, np.int64), DO_NOT_SCHEDULE)
        return [[ERR_REASON_UNTOLERATED] if b else [] for b in bad.tolist()]

    def pre_score(self, state: CycleState, pod: PodInfo, nodes: np.ndarray) -> Status:
        state[self.name] = self._compiled(pod, "prefer")
        return Status.success()

    def score(self, state: CycleState, pod: PodInfo, nodes: np.ndarray) -> np.ndarray:
        compiled = state.get(self.name)
        if not isinstance(compiled, CompiledTolerations):
            compiled = self._compiled(pod, "prefer")
        return count_untolerated_taints(self.handle.snapshot, compiled,
                                        np.asarray(nodes, np.int64), PREFER_NO_SCHEDULE)

    def normalize_score(self, state: CycleState, pod: PodInfo, nodes: np.ndarray,
                        scores: np.ndarray) -> None:
        default_normalize_score(scores, reverse=True)
