"""Pod readiness and availability, controller references, and the ReplicaSet controller's
ranking of pods for deletion.

The rules are kube-controller-manager's (v1.35):

* active, ready, available: ``pkg/controller/controller_utils.go`` ``IsPodActive`` and
  ``pkg/api/v1/pod`` ``IsPodReady`` / ``IsPodAvailable`` (ready, and the Ready condition's
  ``lastTransitionTime + minReadySeconds`` strictly before now);
* deletion order: ``ActivePodsWithRanks.Less`` as ``pkg/controller/replicaset``
  ``getPodsToDelete`` uses it, with the LogarithmicScaleDown (GA in v1.31) and
  PodDeletionCost features on;
* controller references: ``metav1.NewControllerRef`` and the adopt / release rules of
  ``pkg/controller/controller_ref_manager.go`` ``ClaimObject``.

Timestamps are the store's RFC 3339 text (:mod:`schedbench.sim.timefmt`); durations are
compared in integer nanoseconds, as Go's ``time.Duration``.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from schedbench.model.objects import OwnerReference

from .timefmt import seconds as _parse_seconds

__all__ = [
    "POD_DELETION_COST_ANNOTATION", "claim_objects", "controller_ref", "deletion_cost",
    "is_controlled_by", "is_pod_active", "is_pod_available", "is_pod_ready",
    "log2_bucket", "max_container_restarts", "new_controller_ref", "pod_available_at",
    "pod_deletion_less", "pod_ready_time", "pods_to_delete", "rank_pods_for_deletion",
]

POD_DELETION_COST_ANNOTATION = "controller.kubernetes.io/pod-deletion-cost"
# controller_utils.go podPhaseToOrdinal: Pending < Unknown < Running; other phases count 0.
_PHASE_ORDINAL = {"Pending": 0, "Unknown": 1, "Running": 2}
_INT32_MIN, _INT32_MAX = -(2 ** 31), 2 ** 31 - 1


# Timestamps repeat (every pod of a batch gets the same ones) and parsing is the hot spot of a
# ReplicaSet status computation: memoise.
seconds = functools.lru_cache(maxsize=1 << 16)(_parse_seconds)


def _ns(t: float) -> int:
    """Virtual seconds as integer nanoseconds (Go's time.Duration unit)."""
    return round(t * 1_000_000_000)


# ---- pod state ------------------------------------------------------------------------------

def is_pod_active(pod: Any) -> bool:
    """Not Succeeded, not Failed, not being deleted (controller.IsPodActive)."""
    return (pod.status.phase not in ("Succeeded", "Failed")
            and pod.metadata.deletion_timestamp is None)


def _ready_condition(pod: Any) -> Any | None:
    for c in pod.status.conditions:
        if c.type == "Ready":
            return c
    return None


def is_pod_ready(pod: Any) -> bool:
    """The Ready condition is True (podutil.IsPodReady)."""
    c = _ready_condition(pod)
    return c is not None and c.status == "True"


def pod_ready_time(pod: Any) -> float | None:
    """When a ready pod became ready (its Ready condition's lastTransitionTime) in virtual
    seconds; None when the pod is not ready or the time is unset (Go's zero time)."""
    c = _ready_condition(pod)
    if c is None or c.status != "True" or not c.last_transition_time:
        return None
    return seconds(c.last_transition_time)


def is_pod_available(pod: Any, min_ready_seconds: int | float, now: float) -> bool:
    """Ready, and (minReadySeconds is 0, or it has been ready for minReadySeconds: the Ready
    transition + minReadySeconds is strictly before ``now``) (podutil.IsPodAvailable)."""
    c = _ready_condition(pod)
    if c is None or c.status != "True":
        return False
    if not min_ready_seconds:
        return True
    if not c.last_transition_time:
        return False
    since = seconds(c.last_transition_time)
    return _ns(since) + _ns(min_ready_seconds) < _ns(now)


def pod_available_at(pod: Any, min_ready_seconds: int | float) -> float | None:
    """The earliest virtual time from which a ready pod counts as available (just after
    ready time + minReadySeconds); None for a pod that is not ready or has no ready time."""
    t = pod_ready_time(pod)
    if t is None:
        return None
    return t + min_ready_seconds


def max_container_restarts(pod: Any) -> int:
    """The highest ``restartCount`` among ``status.containerStatuses`` (kept in the status'
    unmodelled fields; 0 when absent)."""
    best = 0
    for cs in pod.status.extra.get("containerStatuses") or ():
        if isinstance(cs, dict):
            n = cs.get("restartCount", 0)
            if isinstance(n, int) and not isinstance(n, bool) and n > best:
                best = n
    return best


def deletion_cost(pod: Any) -> int:
    """The ``controller.kubernetes.io/pod-deletion-cost`` annotation as an int32; 0 when
    absent or invalid (helper.GetDeletionCostFromPodAnnotations, errors ignored as the
    ranking does)."""
    text = pod.metadata.annotations.get(POD_DELETION_COST_ANNOTATION)
    if text is None:
        return 0
    try:
        value = int(text, 10)
    except ValueError:
        return 0
    if not _INT32_MIN <= value <= _INT32_MAX or text.strip() != text or "_" in text:
        return 0
    return value


# ---- deletion ranking -----------------------------------------------------------------------

def log2_bucket(t: float, now: float) -> int:
    """floor(log2(now - t)) with the difference in nanoseconds, -1 when not positive
    (controller_utils.go logarithmicRankDiff: pods in one power-of-two age bucket tie)."""
    d = _ns(now) - _ns(t)
    return d.bit_length() - 1 if d > 0 else -1


class _Facts:
    """What the deletion ranking reads of one pod, extracted once per sort."""

    __slots__ = ("pod", "assigned", "phase", "ready", "cost", "rank", "ready_ns", "restarts",
                 "created_ns", "uid")

    def __init__(self, pod: Any, rank: int) -> None:
        self.pod = pod
        self.assigned = bool(pod.spec.node_name)
        self.phase = _PHASE_ORDINAL.get(pod.status.phase, 0)
        c = _ready_condition(pod)
        self.ready = c is not None and c.status == "True"
        self.ready_ns = (_ns(seconds(c.last_transition_time))
                         if self.ready and c.last_transition_time else None)
        self.cost = deletion_cost(pod)
        self.rank = rank
        self.restarts = max_container_restarts(pod)
        ts = pod.metadata.creation_timestamp
        self.created_ns = _ns(seconds(ts)) if ts else None
        self.uid = pod.metadata.uid


def _bucket_ns(t_ns: int, now_ns: int) -> int:
    d = now_ns - t_ns
    return d.bit_length() - 1 if d > 0 else -1


def _time_less(t1: int | None, t2: int | None, a: _Facts, b: _Facts, now_ns: int) -> bool:
    """Rules 6 and 8 for two different times: an unset one first (afterOrZero), else the
    younger power-of-two age bucket first, uid order within a bucket."""
    if t1 is None or t2 is None:
        return t1 is None
    diff = _bucket_ns(t1, now_ns) - _bucket_ns(t2, now_ns)
    if diff == 0:
        return a.uid < b.uid
    return diff < 0


def _less(a: _Facts, b: _Facts, now_ns: int) -> bool:
    if a.assigned != b.assigned:
        return not a.assigned
    if a.phase != b.phase:
        return a.phase < b.phase
    if a.ready != b.ready:
        return not a.ready
    if a.cost != b.cost:
        return a.cost < b.cost
    if a.rank != b.rank:
        return a.rank > b.rank
    if a.ready and b.ready and a.ready_ns != b.ready_ns:
        return _time_less(a.ready_ns, b.ready_ns, a, b, now_ns)
    if a.restarts != b.restarts:
        return a.restarts > b.restarts
    if a.created_ns != b.created_ns:
        return _time_less(a.created_ns, b.created_ns, a, b, now_ns)
    return False


def pod_deletion_less(a: Any, b: Any, rank_a: int, rank_b: int, now: float) -> bool:
    """Whether pod ``a`` is preferred for deletion over ``b`` (ActivePodsWithRanks.Less):

    1. unassigned before assigned; 2. Pending < Unknown < Running; 3. not ready before
    ready; 4. lower pod-deletion-cost first; 5. higher rank (more active pods of the same
    controller on its node) first; 6. both ready: the more recently ready first, compared in
    power-of-two buckets of age with ties broken by uid; 7. more container restarts first;
    8. newer first, bucketed the same way (unset timestamps first).
    """
    return _less(_Facts(a, rank_a), _Facts(b, rank_b), _ns(now))


def rank_pods_for_deletion(pods: Sequence[Any], related_pods: Iterable[Any],
                           now: float) -> list[Any]:
    """``pods`` sorted most-deletable first. A pod's rank is the number of active pods of
    ``related_pods`` (the pods of every ReplicaSet with the same controller) on its node
    (replica_set.go getPodsRankedByRelatedPodsOnSameNode). Python's sort is stable: pods
    that tie on every rule keep their input order."""
    on_node: dict[str, int] = {}
    for p in related_pods:
        if is_pod_active(p):
            on_node[p.spec.node_name] = on_node.get(p.spec.node_name, 0) + 1
    facts = [_Facts(p, on_node.get(p.spec.node_name, 0)) for p in pods]
    now_ns = _ns(now)

    def cmp(x: _Facts, y: _Facts) -> int:
        if _less(x, y, now_ns):
            return -1
        if _less(y, x, now_ns):
            return 1
        return 0

    facts.sort(key=functools.cmp_to_key(cmp))
    return [f.pod for f in facts]


def pods_to_delete(pods: Sequence[Any], related_pods: Iterable[Any], diff: int,
                   now: float) -> list[Any]:
    """The ``diff`` pods to delete (replica_set.go getPodsToDelete): all of them without
    sorting when ``diff`` covers every pod, else the first ``diff`` of the ranking."""
    if diff >= len(pods):
        return list(pods)
    return rank_pods_for_deletion(pods, related_pods, now)[:diff]


# ---- controller references ------------------------------------------------------------------

def controller_ref(obj: Any) -> OwnerReference | None:
    """The ownerReference with ``controller: true`` (metav1.GetControllerOf)."""
    for ref in obj.metadata.owner_references:
        if ref.controller:
            return ref
    return None


def is_controlled_by(obj: Any, owner: Any) -> bool:
    ref = controller_ref(obj)
    return ref is not None and ref.uid == owner.metadata.uid


def new_controller_ref(owner: Any) -> OwnerReference:
    """metav1.NewControllerRef: controller and blockOwnerDeletion true."""
    return OwnerReference(api_version=type(owner).API_VERSIONS[0], kind=owner.KIND,
                          name=owner.metadata.name, uid=owner.metadata.uid, controller=True,
                          block_owner_deletion=True)


def claim_objects(store: Any, owner: Any, selector: Any, candidates: Iterable[Any],
                  *, cause: str, can_adopt: bool = True,
                  on_change: Callable[[str, Any], None] | None = None) -> list[Any]:
    """The objects ``owner`` controls after adopting and releasing (ClaimObject):

    * controlled by another owner: ignored;
    * controlled by ``owner``: kept while the selector matches, else released (its
      controller reference removed) unless the owner is being deleted;
    * orphan: adopted (a controller reference added) when the selector matches, the owner
      is not being deleted (``can_adopt``) and the object is not being deleted.

    ``candidates`` are stored objects of the owner's namespace; writes go through ``store``
    with ``cause``; ``on_change("adopted" | "released", obj)`` reports each write. Returns
    the claimed objects (the updated ones where written) in the candidates' order.
    """
    uid = owner.metadata.uid
    owner_deleting = owner.metadata.deletion_timestamp is not None
    claimed = []
    for obj in candidates:
        ref = controller_ref(obj)
        matches = selector.matches(obj.metadata.labels)
        if ref is not None:
            if ref.uid != uid:
                continue
            if matches:
                claimed.append(obj)
                continue
            if owner_deleting:
                continue
            new = store.edit(obj, spec=False)
            new.metadata.owner_references = [r for r in new.metadata.owner_references
                                             if r.uid != uid]
            store.update(new, cause=f"released by {owner.KIND}/{owner.key}: {cause}")
            if on_change is not None:
                on_change("released", new)
            continue
        if not matches or not can_adopt or owner_deleting \
                or obj.metadata.deletion_timestamp is not None:
            continue
        new = store.edit(obj, spec=False)
        new.metadata.owner_references = [*new.metadata.owner_references,
                                         new_controller_ref(owner)]
        new = store.update(new, cause=f"adopted by {owner.KIND}/{owner.key}: {cause}")
        if on_change is not None:
            on_change("adopted", new)
        claimed.append(new)
    return claimed
