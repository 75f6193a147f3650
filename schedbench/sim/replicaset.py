"""The ReplicaSet controller (kube-controller-manager, ``pkg/controller/replicaset``).

A reconcile of one ReplicaSet (``syncReplicaSet``):

1. **Claim.** Its active pods (not Succeeded/Failed, not being deleted) are the ones it
   controls, plus orphans of its namespace that match its selector (adopted: a controller
   ``ownerReference`` is added); a pod it controls whose labels stop matching is released
   (the reference is removed). Pods controlled by someone else are never touched.
2. **Manage replicas.** Fewer pods than ``spec.replicas``: create the difference from
   ``spec.template`` (``generateName: <rs>-``, the template's labels and annotations, a
   controller reference), at most ``burstReplicas`` (500) per reconcile, in slow-start
   batches of 1, 2, 4, ... that stop at the first failed batch. More: delete the excess, at
   most 500, in the order of :func:`~schedbench.sim.podutil.rank_pods_for_deletion`
   (unscheduled, pending, not ready, low deletion cost, doubled-up, recently ready, often
   restarted, new first), with cause ``scaled down``.
3. **Status** of the pods left after step 2 (Kubernetes counts the pods it just deleted
   until its next sync, which their deletion triggers at once; the simulation's deletions
   are immediate, so it skips that stale step): ``replicas``, ``fullyLabeledReplicas`` (pods carrying all template labels),
   ``readyReplicas``, ``availableReplicas`` (ready for ``minReadySeconds``),
   ``observedGeneration``, and a ``ReplicaFailure`` condition while creates or deletes fail;
   written only when it changed. With ``minReadySeconds`` > 0 the ReplicaSet is looked at
   again when its pods can have become available: ``minReadySeconds + 1 s`` after a pod turns
   ready (``updatePod``), and, after a reconcile that found every replica ready but not all
   available, 1 ms after the next one's ready time + ``minReadySeconds`` (Kubernetes waits
   ``minReadySeconds``; its timestamps are cut to the second, the store's to the ms).

Differences from Kubernetes, none of which changes a decision: the controller reads the
store directly (always current), so it needs no expectations; creates and deletes are
immediate and never fail except on a store error; pod events of one virtual instant are
gathered into one reconcile per ReplicaSet after that instant's other events (see
:meth:`ReplicaSetController.enqueue_after_instant`), while changes of the ReplicaSet itself
are reconciled at once.
"""

from __future__ import annotations

import copy
from typing import Any

from schedbench.errors import SchedbenchError
from schedbench.model.objects import ObjectMeta, Pod, ReplicaSetStatus

from . import podutil
from .controller import Controller, split_key
from .store import WatchEvent
from .timefmt import stamp

__all__ = ["BURST_REPLICAS", "ReplicaSetController", "pod_from_template", "slow_start_batches"]

BURST_REPLICAS = 500          # replicaset.BurstReplicas
SLOW_START_INITIAL_BATCH = 1  # controller.SlowStartInitialBatchSize
CAUSE_SCALED_DOWN = "scaled down"
# Pod events of one instant are collected and their ReplicaSets queued once, after every
# component has acted at that instant (before timeline samples, PRIO_SAMPLE 90): see
# ReplicaSetController.enqueue_after_instant.
PRIO_POD_BATCH = 80
CAUSE_CREATED = "created by ReplicaSet controller"


def slow_start_batches(count: int, initial: int = SLOW_START_INITIAL_BATCH) -> list[int]:
    """The batch sizes of ``slowStartBatch(count, initial)``: ``initial``, then doubling,
    the last one cut to what remains (``slow_start_batches(10) == [1, 2, 4, 3]``)."""
    out = []
    remaining = count
    size = min(remaining, initial)
    while size > 0:
        out.append(size)
        remaining -= size
        size = min(2 * size, remaining)
    return out


def pod_from_template(owner: Any, template: Any) -> Pod:
    """A pod for ``owner`` from a PodTemplateSpec (controller.GetPodFromTemplate):
    ``generateName`` ``<owner>-``, the template's labels, annotations and finalizers, the
    owner's controller reference, a copy of the template's spec (one level deep)."""
    tmeta = template.metadata
    meta = ObjectMeta(generate_name=f"{owner.metadata.name}-",
                      namespace=owner.metadata.namespace,
                      labels=dict(tmeta.labels), annotations=dict(tmeta.annotations),
                      finalizers=list(tmeta.finalizers),
                      owner_references=[podutil.new_controller_ref(owner)])
    return Pod(metadata=meta, spec=_spec_copy(template.spec))


def _spec_copy(spec: Any) -> Any:
    """A PodSpec copied one level deep (its lists and dicts new; their elements shared, as
    :meth:`Store.edit` does: stored objects are never modified in place)."""
    new = copy.copy(spec)
    for name, value in vars(spec).items():
        if isinstance(value, list):
            setattr(new, name, [copy.copy(v) if hasattr(v, "__dataclass_fields__") else v
                                for v in value])
        elif isinstance(value, dict):
            setattr(new, name, dict(value))
    return new


def _conditions(status: Any) -> list[dict]:
    return list(status.extra.get("conditions") or ())


class ReplicaSetController(Controller):
    """kube-controller-manager's ReplicaSet controller on the simulation's store (module
    docstring). ``burst_replicas`` caps creates/deletes per reconcile."""

    name = "replicaset"

    def __init__(self, sim_ctx: Any, *, burst_replicas: int = BURST_REPLICAS) -> None:
        super().__init__(sim_ctx)
        if burst_replicas < 1:
            raise ValueError("burst_replicas must be >= 1")
        self.burst_replicas = burst_replicas
        # active pods without a controller reference (adoption candidates), from the pod
        # watch: namespace -> name -> labels, and (namespace, key, value) -> names
        self._orphans: dict[str, dict[str, dict[str, str]]] = {}
        self._orphans_by_label: dict[tuple[str, str, str], dict[str, None]] = {}
        self._batch: dict[str, None] = {}

    def enqueue_after_instant(self, key: str) -> None:
        """Queue ``key`` once the current instant's other events have run.

        Kubelets and the scheduler change many pods at one virtual instant, one event each;
        a reconcile after each would cost O(pods) per pod. Kubernetes' work queue absorbs
        such bursts while a sync runs; here the keys of an instant's pod events are collected
        and queued together at priority :data:`PRIO_POD_BATCH`, still at the same virtual
        time."""
        if not self._batch:
            self.engine.at(self.engine.now, self._flush_batch, priority=PRIO_POD_BATCH)
        self._batch[key] = None

    def _flush_batch(self) -> None:
        keys, self._batch = self._batch, {}
        for key in keys:
            self.enqueue(key)

    # ---- watches ---------------------------------------------------------------------------

    def start(self) -> None:
        for pod in self.store.list("Pod"):
            self._track_orphan(pod)
        self.store.watch("ReplicaSet", self._on_replicaset)
        self.store.watch("Pod", self._on_pod)
        for rs in self.store.list("ReplicaSet"):
            self.enqueue(rs.key)

    def _on_replicaset(self, ev: WatchEvent) -> None:
        if ev.type != "DELETED":  # a deleted ReplicaSet's pods go with the garbage collector
            self.enqueue(ev.obj.key)

    def _track_orphan(self, pod: Any, deleted: bool = False) -> None:
        """Keep the orphan index: namespace -> name -> labels, and (namespace, label,
        value) -> names, so a reconcile looks only at orphans its selector can match."""
        ns, name = pod.metadata.namespace, pod.metadata.name
        orphan = (not deleted and podutil.controller_ref(pod) is None
                  and podutil.is_pod_active(pod))
        names = self._orphans.get(ns)
        old_labels = names.get(name) if names is not None else None
        if old_labels is not None:
            for kv in old_labels.items():
                bucket = self._orphans_by_label[(ns, *kv)]
                del bucket[name]
                if not bucket:
                    del self._orphans_by_label[(ns, *kv)]
            del names[name]
            if not names:
                del self._orphans[ns]
        if orphan:
            labels = dict(pod.metadata.labels)
            self._orphans.setdefault(ns, {})[name] = labels
            for kv in labels.items():
                self._orphans_by_label.setdefault((ns, *kv), {})[name] = None

    def _orphan_candidates(self, ns: str, selector: Any) -> list[str]:
        """Names of orphans of ``ns`` that may match ``selector``, sorted."""
        for req in selector.requirements:
            value = selector.requires_exact_match(req.key)
            if value is not None:
                return sorted(self._orphans_by_label.get((ns, req.key, value), ()))
        names = self._orphans.get(ns, {})
        return sorted(n for n, labels in names.items() if selector.matches(labels))

    def _owner_of(self, pod: Any, ref: Any) -> Any | None:
        """The ReplicaSet a controller reference names, if it exists with that uid
        (resolveControllerRef)."""
        if ref is None or ref.kind != "ReplicaSet":
            return None
        rs = self.store.try_get("ReplicaSet", pod.metadata.namespace, ref.name)
        if rs is None or rs.metadata.uid != ref.uid:
            return None
        return rs

    def _matching(self, pod: Any) -> list[Any]:
        """ReplicaSets of the pod's namespace whose selector matches it
        (GetPodReplicaSets)."""
        return [rs for rs in self.store.list("ReplicaSet", pod.metadata.namespace)
                if not rs.spec.selector.empty and rs.spec.selector.matches(pod.metadata.labels)]

    def _on_pod(self, ev: WatchEvent) -> None:
        pod, old = ev.obj, ev.old
        self._track_orphan(pod, deleted=ev.type == "DELETED")
        ref = podutil.controller_ref(pod)
        if ev.type == "ADDED" or ev.type == "DELETED":
            rs = self._owner_of(pod, ref)
            if rs is not None:
                self.enqueue_after_instant(rs.key)
            elif ref is None and ev.type == "ADDED":
                for rs in self._matching(pod):
                    self.enqueue_after_instant(rs.key)
            return
        old_ref = podutil.controller_ref(old) if old is not None else None
        ref_changed = (old_ref.uid if old_ref else None) != (ref.uid if ref else None)
        if ref_changed and old_ref is not None:
            old_rs = self._owner_of(old, old_ref)
            if old_rs is not None:
                self.enqueue_after_instant(old_rs.key)
        if ref is not None:
            rs = self._owner_of(pod, ref)
            if rs is not None:
                self.enqueue_after_instant(rs.key)
                mrs = rs.spec.min_ready_seconds
                if mrs > 0 and old is not None and not podutil.is_pod_ready(old) \
                        and podutil.is_pod_ready(pod):
                    # updatePod: look again once the pod can count as available (+1 s skew)
                    self.enqueue(rs.key, mrs + 1.0)
            return
        if ref_changed or old is None or old.metadata.labels != pod.metadata.labels:
            for rs in self._matching(pod):
                self.enqueue_after_instant(rs.key)

    # ---- reconcile -------------------------------------------------------------------------

    def claimed_pods(self, rs: Any) -> list[Any]:
        """The active pods ``rs`` controls after adopting and releasing: its own in the order
        they became its own (the store's owner index), then adopted orphans by name."""
        store = self.store
        ns = rs.metadata.namespace
        seen: set[str] = set()
        candidates = []
        for obj in store.dependents(rs.metadata.uid):
            if obj.KIND == "Pod" and podutil.is_pod_active(obj):
                seen.add(obj.metadata.name)
                candidates.append(obj)
        for name in self._orphan_candidates(ns, rs.spec.selector):
            if name in seen:
                continue
            pod = store.try_get("Pod", ns, name)
            if pod is not None and podutil.is_pod_active(pod) \
                    and podutil.controller_ref(pod) is None:
                candidates.append(pod)
        return podutil.claim_objects(store, rs, rs.spec.selector, candidates,
                                     cause="selector matches",
                                     can_adopt=rs.metadata.deletion_timestamp is None)

    def related_pods(self, rs: Any) -> list[Any]:
        """The pods of every ReplicaSet with the same controller as ``rs``
        (getIndirectlyRelatedPods); none when ``rs`` has no controller."""
        ref = podutil.controller_ref(rs)
        if ref is None:
            return []
        out, seen = [], set()
        for sibling in self.store.dependents(ref.uid):
            if sibling.KIND != "ReplicaSet" or sibling.metadata.namespace != rs.metadata.namespace:
                continue
            if podutil.controller_ref(sibling) is None \
                    or podutil.controller_ref(sibling).uid != ref.uid:
                continue
            for pod in self.store.list("Pod", sibling.metadata.namespace,
                                       label_selector=sibling.spec.selector):
                if pod.metadata.uid not in seen:
                    seen.add(pod.metadata.uid)
                    out.append(pod)
        return out

    def reconcile(self, key: str) -> None:
        ns, name = split_key(key)
        rs = self.store.try_get("ReplicaSet", ns, name)
        if rs is None:
            return
        pods = self.claimed_pods(rs)
        error = None
        if rs.metadata.deletion_timestamp is None:
            error = self._manage_replicas(rs, pods)
        self._update_status(rs, pods, error)

    def _manage_replicas(self, rs: Any, pods: list[Any]) -> tuple[str, str] | None:
        """Create or delete pods towards ``spec.replicas`` (manageReplicas), updating
        ``pods`` to the pods that remain; returns ``(reason, message)`` of a failure, else
        None."""
        diff = len(pods) - rs.spec.replicas
        if diff < 0:
            count = min(-diff, self.burst_replicas)
            for size in slow_start_batches(count):
                failed = None
                for _ in range(size):
                    try:
                        pods.append(self.store.create(pod_from_template(rs, rs.spec.template),
                                                      cause=CAUSE_CREATED))
                    except SchedbenchError as err:
                        failed = failed or str(err)
                if failed is not None:
                    self.log("FailedCreate", kind="ReplicaSet", name=rs.key, message=failed)
                    return ("FailedCreate", failed)
            return None
        if diff > 0:
            count = min(diff, self.burst_replicas)
            victims = podutil.pods_to_delete(pods, self.related_pods(rs), count,
                                             self.engine.now)
            failed = None
            gone = set()
            for pod in victims:
                try:
                    self.store.delete("Pod", pod.metadata.namespace, pod.metadata.name,
                                      cause=CAUSE_SCALED_DOWN)
                    gone.add(pod.metadata.uid)
                except SchedbenchError as err:
                    failed = failed or str(err)
            pods[:] = [p for p in pods if p.metadata.uid not in gone]
            if failed is not None:
                self.log("FailedDelete", kind="ReplicaSet", name=rs.key, message=failed)
                return ("FailedDelete", failed)
        return None

    def _update_status(self, rs: Any, pods: list[Any], error: tuple[str, str] | None) -> None:
        """calculateStatus + updateReplicaSetStatus, and the minReadySeconds re-check."""
        now = self.engine.now
        template_labels = rs.spec.template.metadata.labels
        mrs = rs.spec.min_ready_seconds
        fully = ready = available = 0
        label_items = tuple(template_labels.items())
        now_ns = round(now * 1e9)
        mrs_ns = round(mrs * 1e9)
        for pod in pods:
            labels = pod.metadata.labels
            if all(labels.get(k) == v for k, v in label_items):
                fully += 1
            for c in pod.status.conditions:  # podutil.is_pod_ready / is_pod_available
                if c.type == "Ready":
                    if c.status == "True":
                        ready += 1
                        if not mrs or (c.last_transition_time and round(
                                podutil.seconds(c.last_transition_time) * 1e9) + mrs_ns < now_ns):
                            available += 1
                    break
        old = rs.status
        conditions = _conditions(old)
        failure = next((c for c in conditions if c.get("type") == "ReplicaFailure"), None)
        if error is not None and failure is None:
            conditions.append({"type": "ReplicaFailure", "status": "True",
                               "lastTransitionTime": stamp(now), "reason": error[0],
                               "message": error[1]})
        elif error is None and failure is not None:
            conditions = [c for c in conditions if c.get("type") != "ReplicaFailure"]
        extra = dict(old.extra)
        if conditions:
            extra["conditions"] = conditions
        else:
            extra.pop("conditions", None)
        new_status = ReplicaSetStatus(replicas=len(pods), fully_labeled_replicas=fully,
                                      ready_replicas=ready, available_replicas=available,
                                      observed_generation=rs.metadata.generation, extra=extra)
        if new_status != old:
            fresh = self.store.edit(rs, spec=False)
            fresh.status = new_status
            self.store.update(fresh, cause="status")
        if error is None and mrs > 0 and ready == rs.spec.replicas \
                and available != rs.spec.replicas:
            # Kubernetes re-checks minReadySeconds later, its timestamps cut to the second;
            # the store's have milliseconds: re-check at the first millisecond at which the
            # next ready pod counts as available (strictly after ready + minReadySeconds)
            soonest = min((t for t in (podutil.pod_available_at(p, mrs) for p in pods
                                       if podutil.is_pod_ready(p)
                                       and not podutil.is_pod_available(p, mrs, now))
                           if t is not None), default=now + mrs)
            self.enqueue(rs.key, max(soonest - now, 0.0) + 0.001)
