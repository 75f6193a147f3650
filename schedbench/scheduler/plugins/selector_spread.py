"""SelectorSpread: the legacy default spreading score (removed from kube-scheduler in v1.27;
semantics of its last version, ``pkg/scheduler/framework/plugins/selectorspread``).

Not in the default profile; enable it explicitly. A pod with ``topologySpreadConstraints`` of
its own is skipped (PreScore Skip; kube scored 0 everywhere, which weighs the same).

PreScore: the pod's default selector (:func:`~schedbench.scheduler.spreading.default_selector`:
its Services' selectors and its ReplicaSet's / StatefulSet's / ReplicationController's).
Score: the number of pods on the node in the pod's namespace, not terminating, that match it (0
for a selector without requirements). NormalizeScore, over the scored nodes: with ``maxNode``
the highest count and, for nodes with a zone (``GetZoneKey``: region and zone, the
failure-domain.beta labels first), ``zoneCount`` the sum of the counts of the scored nodes of
the zone and ``maxZone`` the highest zone sum::

    f = 100 * ((maxNode - count) / maxNode)            (100 when maxNode is 0)
    if the node has a zone (and any scored node has one):
        z = 100 * ((maxZone - zoneCount) / maxZone)    (100 when maxZone is 0)
        f = f * (1 - 2/3) + 2/3 * z
    score = int(f)                                     (truncated, float64 throughout)
"""

from __future__ import annotations

import numpy as np
from numba import njit

from ..framework import MAX_NODE_SCORE, CycleState, Plugin, Status, register
from ..snapshot import NodeSnapshot, PodInfo
from ..spreading import default_selector, selector_counts, zone_key

NAME = "SelectorSpread"
ZONE_WEIGHTING = 2.0 / 3.0


@njit(cache=True)
def _normalize(scores, zones, n_zones, max_score, zone_weighting):
    """In place: ``zones[i]`` the zone id of the i-th scored node (-1 without a zone)."""
    by_zone = np.zeros(n_zones, np.int64)
    has_zone = np.zeros(n_zones, np.bool_)
    max_node = 0
    for i in range(scores.size):
        if scores[i] > max_node:
            max_node = scores[i]
        z = zones[i]
        if z >= 0:
            by_zone[z] += scores[i]
            has_zone[z] = True
    max_zone = 0
    have_zones = False
    for z in range(n_zones):
        if has_zone[z]:
            have_zones = True
            if by_zone[z] > max_zone:
                max_zone = by_zone[z]
    top = float(max_score)
    for i in range(scores.size):
        f = top
        if max_node > 0:
            f = top * (float(max_node - scores[i]) / float(max_node))
        if have_zones and zones[i] >= 0:
            zs = top
            if max_zone > 0:
                zs = top * (float(max_zone - by_zone[zones[i]]) / float(max_zone))
            f = (f * (1.0 - zone_weighting)) + (zone_weighting * zs)
        scores[i] = np.int64(f)


class _ZoneIds:
    """Zone id (GetZoneKey, interned) per node slot, rebuilt when the snapshot's nodes change."""

    def __init__(self) -> None:
        self.generation = -1
        self.ids = np.zeros(0, np.int64)
        self.count = 0

    def of(self, snapshot: NodeSnapshot) -> np.ndarray:
        if self.generation != snapshot.generation or self.ids.shape[0] != snapshot.num_nodes:
            names: dict[str, int] = {}
            ids = np.full(snapshot.num_nodes, -1, np.int64)
            for n, node in enumerate(snapshot.nodes):
                key = zone_key(node.metadata.labels)
                if key:
                    ids[n] = names.setdefault(key, len(names))
            self.ids, self.count, self.generation = ids, len(names), snapshot.generation
        return self.ids


@register
class SelectorSpread(Plugin):
    name = NAME

    def __init__(self, args, handle) -> None:
        super().__init__(args, handle)
        self._zones = _ZoneIds()

    def pre_score(self, state: CycleState, pod: PodInfo, nodes: np.ndarray) -> Status:
        state.pop(self.name, None)
        if pod.pod.spec.topology_spread_constraints:
            return Status.skip()
        state[self.name] = default_selector(pod.pod, self.handle.cluster)
        return Status.success()

    def score(self, state: CycleState, pod: PodInfo, nodes: np.ndarray) -> np.ndarray:
        selector = state[self.name]
        counts = selector_counts(self.handle.snapshot).counts(pod.namespace, selector)
        return counts[np.asarray(nodes, np.int64)].astype(np.int64)

    def normalize_score(self, state: CycleState, pod: PodInfo, nodes: np.ndarray,
                        scores: np.ndarray) -> None:
        if self.name not in state:
            return
        snap = self.handle.snapshot
        zones = self._zones.of(snap)[np.asarray(nodes, np.int64)]
        _normalize(scores, zones, self._zones.count, MAX_NODE_SCORE, ZONE_WEIGHTING)
