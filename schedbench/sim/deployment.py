"""The Deployment controller (kube-controller-manager, ``pkg/controller/deployment``) and the
``kubectl`` verbs that drive it (``scale``, ``set image``, ``rollout undo|pause|resume``).

A Deployment owns one ReplicaSet per pod template: the template's hash (FNV-32a, written
with Kubernetes' safe alphabet) becomes the label ``pod-template-hash`` added to the
ReplicaSet's selector and template, and its name ``<deployment>-<hash>``. A reconcile
(``syncDeployment``):

* claims ReplicaSets (adopts orphans that match the selector, releases its own that stop
  matching);
* paused, or the replicas changed (an active ReplicaSet's ``desired-replicas`` annotation
  differs from ``spec.replicas``): only **scales** - one active ReplicaSet takes the whole
  count; during a rollout the difference to ``replicas + maxSurge`` is spread over the
  active ReplicaSets in proportion to their size (``max-replicas`` annotation), larger first,
  leftovers to the first; old ReplicaSets are cleaned up while paused;
* **RollingUpdate**: scale the new ReplicaSet up to ``replicas + maxSurge`` pods in total
  (maxSurge rounded up), then old ones down, never below ``replicas - maxUnavailable``
  available pods (maxUnavailable rounded down; both 0 -> maxUnavailable 1): unhealthy old
  replicas first, then oldest ReplicaSets first;
* **Recreate**: scale every old ReplicaSet to 0, wait until none of their pods is left
  (terminal pods excepted), then create / scale up the new one;
* revisions: the new ReplicaSet's ``deployment.kubernetes.io/revision`` is 1 + the highest
  old one (a ReplicaSet brought back by a rollback keeps its earlier numbers in
  ``revision-history``); the Deployment carries its new ReplicaSet's revision;
  when the rollout is complete, old ReplicaSets with no pods beyond ``revisionHistoryLimit``
  (default 10) are deleted, lowest revision first;
* status: ``replicas``, ``updatedReplicas``, ``readyReplicas``, ``availableReplicas``,
  ``unavailableReplicas``, ``observedGeneration``, conditions ``Available``
  (MinimumReplicasAvailable / MinimumReplicasUnavailable) and ``Progressing``
  (NewReplicaSetCreated, FoundNewReplicaSet, ReplicaSetUpdated, NewReplicaSetAvailable,
  DeploymentPaused, DeploymentResumed, ProgressDeadlineExceeded after
  ``progressDeadlineSeconds`` without progress; a stuck rollout is re-checked at the
  deadline).

The conditions and ``collisionCount`` live in ``status`` fields the object model keeps as
unmodelled keys (``status.extra["conditions"]`` as Kubernetes' camelCase mappings).
"""

from __future__ import annotations

import copy
import json
from typing import Any

from schedbench.errors import InputError
from schedbench.model.codec import encode_object
from schedbench.model.labels import Operator, Requirement, Selector
from schedbench.model.objects import (DeploymentStatus, ObjectMeta, ReplicaSet, ReplicaSetSpec)

from . import podutil
from .controller import Controller, split_key
from .store import AlreadyExists, WatchEvent
from .timefmt import seconds, stamp

__all__ = [
    "DeploymentController", "compute_hash", "max_surge", "max_unavailable", "pause",
    "resolve_fenceposts", "resume", "rollback", "scale", "scaled_value", "set_image",
]

POD_TEMPLATE_HASH = "pod-template-hash"
REVISION = "deployment.kubernetes.io/revision"
REVISION_HISTORY = "deployment.kubernetes.io/revision-history"
DESIRED_REPLICAS = "deployment.kubernetes.io/desired-replicas"
MAX_REPLICAS = "deployment.kubernetes.io/max-replicas"
LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"
ROLLBACK_TO = "deprecated.deployment.rollback.to"
# deploymentutil annotationsToSkip: never copied between a Deployment and its ReplicaSets
ANNOTATIONS_TO_SKIP = frozenset({LAST_APPLIED, REVISION, REVISION_HISTORY, DESIRED_REPLICAS,
                                 MAX_REPLICAS, ROLLBACK_TO})
MAX_REVISION_HISTORY_CHARS = 2000
NO_LIMIT = 2 ** 31 - 1  # math.MaxInt32: "no progress deadline" / "no history limit"

# condition reasons (deploymentutil)
REASON_NEW_RS = "NewReplicaSetCreated"
REASON_FOUND_NEW_RS = "FoundNewReplicaSet"
REASON_RS_UPDATED = "ReplicaSetUpdated"
REASON_NEW_RS_AVAILABLE = "NewReplicaSetAvailable"
REASON_TIMED_OUT = "ProgressDeadlineExceeded"
REASON_PAUSED = "DeploymentPaused"
REASON_RESUMED = "DeploymentResumed"
REASON_MIN_AVAILABLE = "MinimumReplicasAvailable"
REASON_MIN_UNAVAILABLE = "MinimumReplicasUnavailable"
REASON_FAILED_RS_CREATE = "ReplicaSetCreateError"

_SAFE_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"  # apimachinery util/rand alphanums


# ---- arithmetic -----------------------------------------------------------------------------

def scaled_value(value: int | str, total: int, round_up: bool) -> int:
    """An int-or-percent against ``total`` (intstr.GetScaledValueFromIntOrPercent): an int as
    is, ``"25%"`` as 25% of total rounded up or down."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and value.endswith("%") and value[:-1].isdigit():
        pct = int(value[:-1])
        return -(-pct * total // 100) if round_up else pct * total // 100
    raise InputError(f"expected an integer or a percentage such as '25%', got {value!r}")


def resolve_fenceposts(surge: int | str, unavailable: int | str, desired: int) -> tuple[int, int]:
    """(maxSurge, maxUnavailable) as pod counts (deploymentutil.ResolveFenceposts): surge
    rounds up, unavailable down; when both come out 0, unavailable is 1."""
    s = scaled_value(surge, desired, True)
    u = scaled_value(unavailable, desired, False)
    if s == 0 and u == 0:
        u = 1
    return s, u


def _is_rolling(d: Any) -> bool:
    return d.spec.strategy.type == "RollingUpdate"


def max_surge(d: Any) -> int:
    """deploymentutil.MaxSurge: 0 unless RollingUpdate."""
    if not _is_rolling(d):
        return 0
    ru = d.spec.strategy.effective_rolling_update
    return resolve_fenceposts(ru.max_surge, ru.max_unavailable, d.spec.replicas)[0]


def max_unavailable(d: Any) -> int:
    """deploymentutil.MaxUnavailable: 0 unless RollingUpdate with replicas > 0; at most
    replicas."""
    if not _is_rolling(d) or d.spec.replicas == 0:
        return 0
    ru = d.spec.strategy.effective_rolling_update
    u = resolve_fenceposts(ru.max_surge, ru.max_unavailable, d.spec.replicas)[1]
    return min(u, d.spec.replicas)


def _round_half_away(x: float) -> int:
    """integer.RoundToInt32."""
    return int(x - 0.5) if x < 0 else int(x + 0.5)


# ---- hashing --------------------------------------------------------------------------------

def _fnv32a(data: bytes, h: int = 0x811C9DC5) -> int:
    for b in data:
        h = ((h ^ b) * 0x01000193) & 0xFFFFFFFF
    return h


def compute_hash(template: Any, collision_count: int | None = None) -> str:
    """The ``pod-template-hash`` of a PodTemplateSpec (controller.ComputeHash): FNV-32a of the
    template (here its canonical JSON encoding, sorted keys; Kubernetes hashes Go's
    printed struct, so the values differ from a real cluster's), then the collision count
    as 4 little-endian bytes when set; the decimal digits mapped onto the safe alphabet."""
    text = json.dumps(encode_object(template), sort_keys=True, separators=(",", ":"),
                      ensure_ascii=False, default=str)
    h = _fnv32a(text.encode())
    if collision_count is not None:
        h = _fnv32a(int(collision_count).to_bytes(4, "little"), h)
    return "".join(_SAFE_ALPHABET[b % len(_SAFE_ALPHABET)] for b in str(h).encode())


def _without_hash(template: Any) -> Any:
    labels = template.metadata.labels
    if POD_TEMPLATE_HASH not in labels:
        return template
    t = copy.copy(template)
    t.metadata = copy.copy(template.metadata)
    t.metadata.labels = {k: v for k, v in labels.items() if k != POD_TEMPLATE_HASH}
    return t


def equal_ignore_hash(a: Any, b: Any) -> bool:
    """Two pod templates are equal apart from the pod-template-hash label
    (deploymentutil.EqualIgnoreHash)."""
    return _without_hash(a) == _without_hash(b)


# ---- ReplicaSet helpers ---------------------------------------------------------------------

def revision(obj: Any) -> int | None:
    """The revision annotation as an int; None when absent or not a number."""
    return _int_annotation(obj, REVISION)


_revision_of = revision  # rollback()'s parameter is called revision


def _max_revision(rss: list[Any]) -> int:
    return max((r for r in (revision(rs) for rs in rss) if r is not None), default=0)


def _by_creation(rs: Any) -> tuple:
    return (seconds(rs.metadata.creation_timestamp) if rs.metadata.creation_timestamp else 0.0,
            rs.metadata.name)


def _active(rss: list[Any]) -> list[Any]:
    """controller.FilterActiveReplicaSets: not None and spec.replicas > 0."""
    return [rs for rs in rss if rs is not None and rs.spec.replicas > 0]


def _sum_spec(rss: list[Any]) -> int:
    return sum(rs.spec.replicas for rs in rss if rs is not None)


def _sum_status(rss: list[Any], field: str) -> int:
    return sum(getattr(rs.status, field) for rs in rss if rs is not None)


def _int_annotation(rs: Any, key: str) -> int | None:
    text = rs.metadata.annotations.get(key)
    if text is None:
        return None
    try:
        return int(text)
    except ValueError:
        return None


def find_new_replicaset(d: Any, rss: list[Any]) -> Any | None:
    """The oldest ReplicaSet whose template equals the Deployment's apart from the hash
    (deploymentutil.FindNewReplicaSet)."""
    for rs in sorted(rss, key=_by_creation):
        if equal_ignore_hash(rs.spec.template, d.spec.template):
            return rs
    return None


def new_rs_new_replicas(d: Any, all_rss: list[Any], new_rs: Any) -> int:
    """The new ReplicaSet's next size (deploymentutil.NewRSNewReplicas): RollingUpdate fills up
    to replicas + maxSurge pods in total (counting spec.replicas), at most replicas;
    Recreate takes replicas at once."""
    if _is_rolling(d):
        max_total = d.spec.replicas + max_surge(d)
        current = _sum_spec(all_rss)
        if current >= max_total:
            return new_rs.spec.replicas
        up = min(max_total - current, d.spec.replicas - new_rs.spec.replicas)
        return new_rs.spec.replicas + up
    return d.spec.replicas


def replicaset_proportion(rs: Any, d: Any, to_add: int, added: int) -> int:
    """How many replicas ``rs`` gains (loses) of ``to_add`` in a proportional scale
    (deploymentutil.GetReplicaSetProportion / getReplicaSetFraction)."""
    if rs is None or rs.spec.replicas == 0 or to_add == 0 or to_add == added:
        return 0
    if d.spec.replicas == 0:
        fraction = -rs.spec.replicas
    else:
        max_now = d.spec.replicas + max_surge(d)
        before = _int_annotation(rs, MAX_REPLICAS)
        if before is None:
            before = d.status.replicas
        fraction = (0 if before == 0 else
                    _round_half_away(rs.spec.replicas * max_now / before) - rs.spec.replicas)
    allowed = to_add - added
    return min(fraction, allowed) if to_add > 0 else max(fraction, allowed)


def _replicas_annotations_need_update(rs: Any, desired: int, max_replicas: int) -> bool:
    a = rs.metadata.annotations
    return a.get(DESIRED_REPLICAS) != str(desired) or a.get(MAX_REPLICAS) != str(max_replicas)


def _set_replicas_annotations(rs: Any, desired: int, max_replicas: int) -> bool:
    a = rs.metadata.annotations
    changed = False
    for key, value in ((DESIRED_REPLICAS, str(desired)), (MAX_REPLICAS, str(max_replicas))):
        if a.get(key) != value:
            a[key] = value
            changed = True
    return changed


def _set_new_rs_annotations(d: Any, rs: Any, new_revision: str, exists: bool) -> bool:
    """deploymentutil.SetNewReplicaSetAnnotations on ``rs`` (an edit copy): copy the
    Deployment's annotations, raise the revision (keeping the old one in revision-history),
    and for a new ReplicaSet the replica annotations. Returns whether anything changed."""
    a = rs.metadata.annotations
    changed = False
    for k, v in d.metadata.annotations.items():
        if k in ANNOTATIONS_TO_SKIP or a.get(k) == v:
            continue
        a[k] = v
        changed = True
    old_text = a.get(REVISION)
    had = old_text is not None
    try:
        old_rev = int(old_text) if had else 0
    except ValueError:
        return changed
    new_rev = int(new_revision)
    if old_rev < new_rev:
        a[REVISION] = new_revision
        changed = True
        if had:
            history = a.get(REVISION_HISTORY, "")
            olds = history.split(",")
            if not olds[0]:
                a[REVISION_HISTORY] = old_text
            else:
                total = len(history) + len(old_text) + 1
                start = 0
                while total > MAX_REVISION_HISTORY_CHARS and start < len(olds):
                    total -= len(olds[start]) + 1
                    start += 1
                if total <= MAX_REVISION_HISTORY_CHARS:
                    a[REVISION_HISTORY] = ",".join(olds[start:] + [old_text])
    if not exists and _set_replicas_annotations(rs, d.spec.replicas,
                                                d.spec.replicas + max_surge(d)):
        changed = True
    return changed


def _has_progress_deadline(d: Any) -> bool:
    pds = d.spec.progress_deadline_seconds
    return pds is not None and pds != NO_LIMIT


def _has_history_limit(d: Any) -> bool:
    limit = d.spec.revision_history_limit
    return limit is not None and limit != NO_LIMIT


# ---- conditions -----------------------------------------------------------------------------

def conditions(status: Any) -> list[dict]:
    """A status' conditions (Kubernetes' camelCase mappings), as a new list."""
    return list(status.extra.get("conditions") or ())


def get_condition(status: Any, type_: str) -> dict | None:
    return next((c for c in status.extra.get("conditions") or () if c.get("type") == type_),
                None)


def _new_condition(type_: str, status: str, reason: str, message: str, now: float) -> dict:
    t = stamp(now)
    return {"type": type_, "status": status, "lastUpdateTime": t, "lastTransitionTime": t,
            "reason": reason, "message": message}


def _set_condition(status: Any, cond: dict) -> None:
    """deploymentutil.SetDeploymentCondition on ``status`` (a private copy): same status and
    reason -> unchanged; same status -> keep lastTransitionTime; the condition moves last."""
    current = get_condition(status, cond["type"])
    if current is not None and current.get("status") == cond["status"] \
            and current.get("reason") == cond["reason"]:
        return
    if current is not None and current.get("status") == cond["status"]:
        cond = {**cond, "lastTransitionTime": current.get("lastTransitionTime")}
    kept = [c for c in conditions(status) if c.get("type") != cond["type"]]
    status.extra["conditions"] = kept + [cond]


def _remove_condition(status: Any, type_: str) -> None:
    kept = [c for c in conditions(status) if c.get("type") != type_]
    if kept:
        status.extra["conditions"] = kept
    else:
        status.extra.pop("conditions", None)


def _status_copy(status: Any) -> Any:
    new = copy.copy(status)
    new.extra = dict(status.extra)
    return new


def _deployment_complete(d: Any, st: Any) -> bool:
    r = d.spec.replicas
    return (st.updated_replicas == r and st.replicas == r and st.available_replicas == r
            and st.observed_generation >= d.metadata.generation)


def _deployment_progressing(d: Any, st: Any) -> bool:
    old = d.status
    return (st.updated_replicas > old.updated_replicas
            or (st.replicas - st.updated_replicas) < (old.replicas - old.updated_replicas)
            or st.ready_replicas > old.ready_replicas
            or st.available_replicas > old.available_replicas)


def _deployment_timed_out(d: Any, st: Any, now: float) -> bool:
    if not _has_progress_deadline(d):
        return False
    cond = get_condition(st, "Progressing")
    if cond is None or cond.get("reason") == REASON_NEW_RS_AVAILABLE:
        return False
    if cond.get("reason") == REASON_TIMED_OUT:
        return True
    since = seconds(cond["lastUpdateTime"])
    return round((since + d.spec.progress_deadline_seconds) * 1e9) < round(now * 1e9)


def calculate_status(all_rss: list[Any], new_rs: Any | None, d: Any, now: float) -> Any:
    """The Deployment status from its ReplicaSets (deployment sync.go calculateStatus)."""
    rss = [rs for rs in all_rss if rs is not None]
    available = _sum_status(rss, "available_replicas")
    unavailable = max(_sum_spec(rss) - available, 0)
    extra = dict(d.status.extra)
    st = DeploymentStatus(
        observed_generation=d.metadata.generation,
        replicas=_sum_status(rss, "replicas"),
        updated_replicas=new_rs.status.replicas if new_rs is not None else 0,
        ready_replicas=_sum_status(rss, "ready_replicas"),
        available_replicas=available, unavailable_replicas=unavailable, extra=extra)
    if available >= d.spec.replicas - max_unavailable(d):
        _set_condition(st, _new_condition("Available", "True", REASON_MIN_AVAILABLE,
                                          "Deployment has minimum availability.", now))
    else:
        _set_condition(st, _new_condition("Available", "False", REASON_MIN_UNAVAILABLE,
                                          "Deployment does not have minimum availability.",
                                          now))
    return st


class _Requeue(Exception):
    """Abort this sync; the key was queued again."""


# ---- the controller -------------------------------------------------------------------------

class DeploymentController(Controller):
    """kube-controller-manager's Deployment controller on the simulation's store (module
    docstring). Start it after the ReplicaSet controller: at one instant the ReplicaSet
    controller then removes an old ReplicaSet's excess pods before the Deployment controller
    scales the new one up."""

    name = "deployment"

    def __init__(self, sim_ctx: Any) -> None:
        super().__init__(sim_ctx)
        #: re-queues of a Deployment waiting for its progress deadline (rate-limited)
        self._stuck_backoff: dict[str, int] = {}

    # ---- watches ---------------------------------------------------------------------------

    def start(self) -> None:
        self.store.watch("Deployment", self._on_deployment)
        self.store.watch("ReplicaSet", self._on_replicaset)
        self.store.watch("Pod", self._on_pod)
        for d in self.store.list("Deployment"):
            self.enqueue(d.key)

    def _on_deployment(self, ev: WatchEvent) -> None:
        if ev.type != "DELETED":
            self.enqueue(ev.obj.key)

    def _owner_deployment(self, obj: Any, ref: Any) -> Any | None:
        if ref is None or ref.kind != "Deployment":
            return None
        d = self.store.try_get("Deployment", obj.metadata.namespace, ref.name)
        if d is None or d.metadata.uid != ref.uid:
            return None
        return d

    def _matching(self, rs: Any) -> list[Any]:
        """Deployments whose selector matches the ReplicaSet's labels
        (getDeploymentsForReplicaSet)."""
        return [d for d in self.store.list("Deployment", rs.metadata.namespace)
                if not d.spec.selector.empty and d.spec.selector.matches(rs.metadata.labels)]

    def _on_replicaset(self, ev: WatchEvent) -> None:
        rs, old = ev.obj, ev.old
        ref = podutil.controller_ref(rs)
        if ev.type != "MODIFIED":
            d = self._owner_deployment(rs, ref)
            if d is not None:
                self.enqueue(d.key)
            elif ref is None and ev.type == "ADDED":
                for d in self._matching(rs):
                    self.enqueue(d.key)
            return
        old_ref = podutil.controller_ref(old)
        ref_changed = (old_ref.uid if old_ref else None) != (ref.uid if ref else None)
        if ref_changed and old_ref is not None:
            d = self._owner_deployment(old, old_ref)
            if d is not None:
                self.enqueue(d.key)
        if ref is not None:
            d = self._owner_deployment(rs, ref)
            if d is not None:
                self.enqueue(d.key)
            return
        if ref_changed or old.metadata.labels != rs.metadata.labels:
            for d in self._matching(rs):
                self.enqueue(d.key)

    def _on_pod(self, ev: WatchEvent) -> None:
        """deletePod: a Recreate Deployment whose last pod went is synced (it may now create
        its new ReplicaSet)."""
        if ev.type != "DELETED":
            return
        pod = ev.obj
        ref = podutil.controller_ref(pod)
        if ref is None or ref.kind != "ReplicaSet":
            return
        rs = self.store.try_get("ReplicaSet", pod.metadata.namespace, ref.name)
        if rs is None or rs.metadata.uid != ref.uid:
            return
        d = self._owner_deployment(rs, podutil.controller_ref(rs))
        if d is None or d.spec.strategy.type != "Recreate":
            return
        rss = [x for x in self.store.dependents(d.metadata.uid) if x.KIND == "ReplicaSet"]
        if not any(self._pod_map(d, rss).values()):
            self.enqueue(d.key)

    # ---- reading ---------------------------------------------------------------------------

    def _claim_replicasets(self, d: Any) -> list[Any]:
        """getReplicaSetsForDeployment: adopt / release by the selector."""
        candidates = self.store.list("ReplicaSet", d.metadata.namespace)
        return podutil.claim_objects(self.store, d, d.spec.selector, candidates,
                                     cause="selector matches",
                                     can_adopt=d.metadata.deletion_timestamp is None)

    def _pod_map(self, d: Any, rss: list[Any]) -> dict[str, list[Any]]:
        """Pods matching the Deployment's selector by the uid of the listed ReplicaSet that
        controls them (getPodMapForDeployment)."""
        out: dict[str, list[Any]] = {rs.metadata.uid: [] for rs in rss}
        for pod in self.store.list("Pod", d.metadata.namespace,
                                   label_selector=d.spec.selector):
            ref = podutil.controller_ref(pod)
            if ref is not None and ref.uid in out:
                out[ref.uid].append(pod)
        return out

    def _refresh(self, rss: list[Any]) -> list[Any]:
        out = []
        for rs in rss:
            cur = self.store.try_get("ReplicaSet", rs.metadata.namespace, rs.metadata.name)
            if cur is not None and cur.metadata.uid == rs.metadata.uid:
                out.append(cur)
        return out

    # ---- writing ---------------------------------------------------------------------------

    def _write_deployment(self, new: Any) -> Any:
        return self.store.update(new, cause="deployment controller")

    def _status_edit(self, d: Any) -> Any:
        """An editable copy of ``d`` with a private copy of its status."""
        new = self.store.edit(d, spec=False)
        new.status = _status_copy(d.status)
        return new

    def _record_revision(self, d: Any, revision: str, progressing: tuple[str, str] | None,
                         now: float) -> Any:
        """The deployment's revision annotation set to ``revision`` and, with
        ``progressing`` (reason, message), its Progressing condition True; written only when
        something changed (getNewReplicaSet's closing update)."""
        new = self._status_edit(d)
        needs = self._set_revision(new, revision)
        if progressing is not None:
            _set_condition(new.status, _new_condition("Progressing", "True", *progressing, now))
            needs = True
        return self._write_deployment(new) if needs else d

    def _scale_rs(self, rs: Any, new_scale: int, d: Any, operation: str) -> tuple[bool, Any]:
        """scaleReplicaSet: set replicas and the desired/max-replicas annotations."""
        max_total = d.spec.replicas + max_surge(d)
        size_changes = rs.spec.replicas != new_scale
        if not size_changes and not _replicas_annotations_need_update(rs, d.spec.replicas,
                                                                      max_total):
            return False, rs
        new = self.store.edit(rs)
        old_scale = rs.spec.replicas
        new.spec.replicas = new_scale
        new.metadata.annotations = dict(new.metadata.annotations)
        _set_replicas_annotations(new, d.spec.replicas, max_total)
        new = self.store.update(new, cause=f"scaled {operation} by Deployment {d.key}")
        if size_changes:
            self.log("scaled", kind="ReplicaSet", name=new.key, deployment=d.key,
                     direction=operation, **{"from": old_scale, "to": new_scale})
        return size_changes, new

    def _scale_rs_and_record(self, rs: Any, new_scale: int, d: Any) -> tuple[bool, Any]:
        if rs.spec.replicas == new_scale:
            return False, rs
        return self._scale_rs(rs, new_scale, d, "up" if rs.spec.replicas < new_scale else "down")

    # ---- reconcile -------------------------------------------------------------------------

    def reconcile(self, key: str) -> None:
        ns, name = split_key(key)
        d = self.store.try_get("Deployment", ns, name)
        if d is None:
            return
        try:
            self._sync(d)
        except _Requeue:
            self.enqueue(key)

    def _sync(self, d: Any) -> None:
        if d.spec.selector.empty:  # selects everything: refuse, as Kubernetes does
            if d.status.observed_generation < d.metadata.generation:
                new = self.store.edit(d, spec=False)
                new.status.observed_generation = d.metadata.generation
                self._write_deployment(new)
            return
        rss = self._claim_replicasets(d)
        if d.metadata.deletion_timestamp is not None:
            d, new_rs, old_rss = self._get_all_and_sync_revision(d, rss, False)
            self._sync_deployment_status(old_rss + [new_rs], new_rs, d)
            return
        d = self._check_paused_conditions(d)
        if d.spec.paused:
            self._sync_scale(d, rss)
            return
        if self._is_scaling_event(d, rss):
            self._sync_scale(self.store.get("Deployment", d.metadata.namespace, d.metadata.name),
                             self._refresh(rss))
            return
        d = self.store.get("Deployment", d.metadata.namespace, d.metadata.name)
        rss = self._refresh(rss)
        if d.spec.strategy.type == "Recreate":
            self._rollout_recreate(d, rss)
        else:
            self._rollout_rolling(d, rss)

    def _check_paused_conditions(self, d: Any) -> Any:
        if not _has_progress_deadline(d):
            return d
        cond = get_condition(d.status, "Progressing")
        if cond is not None and cond.get("reason") == REASON_TIMED_OUT:
            return d
        paused_cond = cond is not None and cond.get("reason") == REASON_PAUSED
        now = self.engine.now
        if d.spec.paused and not paused_cond:
            c = _new_condition("Progressing", "Unknown", REASON_PAUSED, "Deployment is paused",
                               now)
        elif not d.spec.paused and paused_cond:
            c = _new_condition("Progressing", "Unknown", REASON_RESUMED,
                               "Deployment is resumed", now)
        else:
            return d
        new = self._status_edit(d)
        _set_condition(new.status, c)
        return self._write_deployment(new)

    def _get_all_and_sync_revision(self, d: Any, rss: list[Any],
                                   create: bool) -> tuple[Any, Any, list[Any]]:
        """getAllReplicaSetsAndSyncRevision: (deployment, new ReplicaSet or None, old ones)."""
        new_rs = find_new_replicaset(d, rss)
        old_rss = [rs for rs in rss if rs is not new_rs]
        d, new_rs = self._get_new_replicaset(d, rss, old_rss, new_rs, create)
        return d, new_rs, old_rss

    def _get_new_replicaset(self, d: Any, rss: list[Any], old_rss: list[Any],
                            existing: Any | None, create: bool) -> tuple[Any, Any | None]:
        now = self.engine.now
        new_revision = str(_max_revision(old_rss) + 1)
        if existing is not None:
            rs_copy = self.store.edit(existing)
            rs_copy.metadata.annotations = dict(rs_copy.metadata.annotations)
            changed = _set_new_rs_annotations(d, rs_copy, new_revision, True)
            if changed or rs_copy.spec.min_ready_seconds != d.spec.min_ready_seconds:
                rs_copy.spec.min_ready_seconds = d.spec.min_ready_seconds
                return d, self.store.update(rs_copy, cause=f"revision of Deployment {d.key}")
            unset = _has_progress_deadline(d) and get_condition(d.status, "Progressing") is None
            d = self._record_revision(
                d, existing.metadata.annotations.get(REVISION, ""),
                (REASON_FOUND_NEW_RS, f'Found new replica set "{existing.metadata.name}"')
                if unset else None, now)
            return d, existing
        if not create:
            return d, None
        template = copy.deepcopy(d.spec.template)
        collision = d.status.extra.get("collisionCount")
        h = compute_hash(template, collision)
        template.metadata.labels = {**d.spec.template.metadata.labels, POD_TEMPLATE_HASH: h}
        selector = Selector([r for r in d.spec.selector.requirements
                             if r.key != POD_TEMPLATE_HASH]
                            + [Requirement(POD_TEMPLATE_HASH, Operator.EQUALS, (h,))])
        rs = ReplicaSet(
            metadata=ObjectMeta(name=f"{d.metadata.name}-{h}", namespace=d.metadata.namespace,
                                owner_references=[podutil.new_controller_ref(d)],
                                labels=dict(template.metadata.labels)),
            spec=ReplicaSetSpec(replicas=0, min_ready_seconds=d.spec.min_ready_seconds,
                                selector=selector, template=template))
        rs.spec.replicas = new_rs_new_replicas(d, old_rss + [rs], rs)
        _set_new_rs_annotations(d, rs, new_revision, False)
        already = False
        try:
            created = self.store.create(rs, cause=f"new ReplicaSet of Deployment {d.key}")
        except AlreadyExists:
            found = self.store.get("ReplicaSet", d.metadata.namespace, rs.metadata.name)
            ref = podutil.controller_ref(found)
            if ref is not None and ref.uid == d.metadata.uid \
                    and equal_ignore_hash(d.spec.template, found.spec.template):
                created, already = found, True
            else:  # a hash collision: bump collisionCount and try again
                new = self._status_edit(d)
                new.status.extra["collisionCount"] = (collision or 0) + 1
                self._write_deployment(new)
                raise _Requeue() from None
        if not already and created.spec.replicas > 0:
            self.log("scaled", kind="ReplicaSet", name=created.key, deployment=d.key,
                     direction="up", **{"from": 0, "to": created.spec.replicas})
        d = self._record_revision(
            d, new_revision,
            (REASON_NEW_RS, f'Created new replica set "{created.metadata.name}"')
            if not already and _has_progress_deadline(d) else None, now)
        return d, created

    @staticmethod
    def _set_revision(d: Any, rev: str) -> bool:
        if d.metadata.annotations.get(REVISION) == rev:
            return False
        d.metadata.annotations = {**d.metadata.annotations, REVISION: rev}
        return True

    def _is_scaling_event(self, d: Any, rss: list[Any]) -> bool:
        d, new_rs, old_rss = self._get_all_and_sync_revision(d, rss, False)
        for rs in _active(old_rss + [new_rs]):
            desired = _int_annotation(rs, DESIRED_REPLICAS)
            if desired is not None and desired != d.spec.replicas:
                return True
        return False

    # ---- scaling (sync) ----------------------------------------------------------------

    def _sync_scale(self, d: Any, rss: list[Any]) -> None:
        """sync: scale, clean up while paused, status."""
        d, new_rs, old_rss = self._get_all_and_sync_revision(d, rss, False)
        self._scale(d, new_rs, old_rss)
        if d.spec.paused:
            self._cleanup(old_rss, d)
        self._sync_deployment_status(old_rss + [new_rs], new_rs, d)

    def _scale(self, d: Any, new_rs: Any | None, old_rss: list[Any]) -> None:
        active_or_latest = self._active_or_latest(new_rs, old_rss)
        if active_or_latest is not None:
            if active_or_latest.spec.replicas != d.spec.replicas:
                self._scale_rs_and_record(active_or_latest, d.spec.replicas, d)
            return
        if self._is_saturated(d, new_rs):
            for old in _active(old_rss):
                self._scale_rs_and_record(old, 0, d)
            return
        if not _is_rolling(d):
            return
        all_rss = _active(old_rss + [new_rs])
        allowed = d.spec.replicas + max_surge(d) if d.spec.replicas > 0 else 0
        to_add = allowed - _sum_spec(all_rss)
        operation = ""
        if to_add > 0:  # ReplicaSetsBySizeNewer: larger first, newer first on ties
            all_rss = sorted(all_rss, key=_by_creation, reverse=True)
            all_rss.sort(key=lambda rs: -rs.spec.replicas)
            operation = "up"
        elif to_add < 0:  # ReplicaSetsBySizeOlder: larger first, older first on ties
            all_rss = sorted(all_rss, key=_by_creation)
            all_rss.sort(key=lambda rs: -rs.spec.replicas)
            operation = "down"
        sizes: dict[str, int] = {}
        added = 0
        for rs in all_rss:
            if to_add != 0:
                p = replicaset_proportion(rs, d, to_add, added)
                sizes[rs.metadata.name] = rs.spec.replicas + p
                added += p
            else:
                sizes[rs.metadata.name] = rs.spec.replicas
        for i, rs in enumerate(all_rss):
            if i == 0 and to_add != 0:
                sizes[rs.metadata.name] = max(sizes[rs.metadata.name] + to_add - added, 0)
            self._scale_rs(rs, sizes[rs.metadata.name], d, operation)

    @staticmethod
    def _active_or_latest(new_rs: Any | None, old_rss: list[Any]) -> Any | None:
        """deploymentutil.FindActiveOrLatest."""
        if new_rs is None and not old_rss:
            return None
        olds = sorted(old_rss, key=_by_creation, reverse=True)
        active = _active(olds + [new_rs])
        if not active:
            return new_rs if new_rs is not None else olds[0]
        if len(active) == 1:
            return active[0]
        return None

    @staticmethod
    def _is_saturated(d: Any, rs: Any | None) -> bool:
        if rs is None:
            return False
        desired = _int_annotation(rs, DESIRED_REPLICAS)
        if desired is None:
            return False
        r = d.spec.replicas
        return rs.spec.replicas == r and desired == r and rs.status.available_replicas == r

    # ---- rolling update ----------------------------------------------------------------

    def _rollout_rolling(self, d: Any, rss: list[Any]) -> None:
        d, new_rs, old_rss = self._get_all_and_sync_revision(d, rss, True)
        all_rss = old_rss + [new_rs]
        if self._reconcile_new_rs(all_rss, new_rs, d):
            self._sync_rollout_status(all_rss, new_rs, d)
            return
        if self._reconcile_old_rss(all_rss, _active(old_rss), new_rs, d):
            self._sync_rollout_status(all_rss, new_rs, d)
            return
        if _deployment_complete(d, d.status):
            self._cleanup(old_rss, d)
        self._sync_rollout_status(all_rss, new_rs, d)

    def _reconcile_new_rs(self, all_rss: list[Any], new_rs: Any, d: Any) -> bool:
        if new_rs.spec.replicas == d.spec.replicas:
            return False
        if new_rs.spec.replicas > d.spec.replicas:
            return self._scale_rs_and_record(new_rs, d.spec.replicas, d)[0]
        return self._scale_rs_and_record(new_rs, new_rs_new_replicas(d, all_rss, new_rs), d)[0]

    def _reconcile_old_rss(self, all_rss: list[Any], old_rss: list[Any], new_rs: Any,
                           d: Any) -> bool:
        old_pods = _sum_spec(old_rss)
        if old_pods == 0:
            return False
        all_pods = _sum_spec(all_rss)
        min_available = d.spec.replicas - max_unavailable(d)
        new_unavailable = new_rs.spec.replicas - new_rs.status.available_replicas
        max_scaled_down = all_pods - min_available - new_unavailable
        if max_scaled_down <= 0:
            return False
        old_rss, cleaned = self._cleanup_unhealthy(old_rss, d, max_scaled_down)
        scaled = self._scale_down_old_for_rolling(old_rss + [new_rs], old_rss, d)
        return cleaned + scaled > 0

    def _cleanup_unhealthy(self, old_rss: list[Any], d: Any,
                           max_cleanup: int) -> tuple[list[Any], int]:
        """cleanupUnhealthyReplicas: old ReplicaSets shed their unavailable replicas first,
        oldest first."""
        old_rss = sorted(old_rss, key=_by_creation)
        total = 0
        for i, rs in enumerate(old_rss):
            if total >= max_cleanup:
                break
            if rs.spec.replicas == 0 or rs.spec.replicas == rs.status.available_replicas:
                continue
            count = min(max_cleanup - total, rs.spec.replicas - rs.status.available_replicas)
            _, old_rss[i] = self._scale_rs_and_record(rs, rs.spec.replicas - count, d)
            total += count
        return old_rss, total

    def _scale_down_old_for_rolling(self, all_rss: list[Any], old_rss: list[Any],
                                    d: Any) -> int:
        min_available = d.spec.replicas - max_unavailable(d)
        available = _sum_status(all_rss, "available_replicas")
        if available <= min_available:
            return 0
        total, budget = 0, available - min_available
        for rs in sorted(old_rss, key=_by_creation):
            if total >= budget:
                break
            if rs.spec.replicas == 0:
                continue
            count = min(rs.spec.replicas, budget - total)
            self._scale_rs_and_record(rs, rs.spec.replicas - count, d)
            total += count
        return total

    # ---- recreate ----------------------------------------------------------------------

    def _rollout_recreate(self, d: Any, rss: list[Any]) -> None:
        d, new_rs, old_rss = self._get_all_and_sync_revision(d, rss, False)
        all_rss = old_rss + [new_rs]
        scaled = False
        for rs in _active(old_rss):
            if self._scale_rs_and_record(rs, 0, d)[0]:
                scaled = True
        if scaled:
            self._sync_rollout_status(all_rss, new_rs, d)
            return
        if self._old_pods_running(d, new_rs, old_rss, rss):
            self._sync_rollout_status(all_rss, new_rs, d)
            return
        if new_rs is None:
            d, new_rs, old_rss = self._get_all_and_sync_revision(d, self._refresh(rss), True)
            all_rss = old_rss + [new_rs]
        if new_rs.spec.replicas != d.spec.replicas:
            self._scale_rs_and_record(new_rs, d.spec.replicas, d)
        if _deployment_complete(d, d.status):
            self._cleanup(old_rss, d)
        self._sync_rollout_status(all_rss, new_rs, d)

    def _old_pods_running(self, d: Any, new_rs: Any | None, old_rss: list[Any],
                          rss: list[Any]) -> bool:
        if _sum_status(old_rss, "replicas") > 0:
            return True
        new_uid = new_rs.metadata.uid if new_rs is not None else None
        for uid, pods in self._pod_map(d, rss).items():
            if uid == new_uid:
                continue
            for pod in pods:
                if pod.status.phase not in ("Succeeded", "Failed"):
                    return True
        return False

    # ---- history -----------------------------------------------------------------------

    def _cleanup(self, old_rss: list[Any], d: Any) -> None:
        """cleanupDeployment: delete the oldest revisions beyond revisionHistoryLimit that have
        no replicas."""
        if not _has_history_limit(d):
            return
        alive = [rs for rs in old_rss if rs is not None and rs.metadata.deletion_timestamp is None]
        diff = len(alive) - d.spec.revision_history_limit
        if diff <= 0:
            return

        def by_revision(rs: Any) -> tuple:
            r = revision(rs)
            return (0 if r is None else 1, r or 0, _by_creation(rs))

        # ReplicaSetsByRevision: unparseable revisions compare by creation time
        ordered = sorted(alive, key=by_revision)
        for rs in ordered[:diff]:
            if rs.status.replicas != 0 or rs.spec.replicas != 0 \
                    or rs.metadata.generation > rs.status.observed_generation \
                    or rs.metadata.deletion_timestamp is not None:
                continue
            self.store.delete("ReplicaSet", rs.metadata.namespace, rs.metadata.name,
                              cause=f"revision history limit of Deployment {d.key}")

    # ---- status ------------------------------------------------------------------------

    def _sync_deployment_status(self, all_rss: list[Any], new_rs: Any | None, d: Any) -> None:
        st = calculate_status(all_rss, new_rs, d, self.engine.now)
        if st != d.status:
            new = self.store.edit(d, spec=False)
            new.status = st
            self._write_deployment(new)

    def _sync_rollout_status(self, all_rss: list[Any], new_rs: Any | None, d: Any) -> None:
        now = self.engine.now
        st = calculate_status(all_rss, new_rs, d, now)
        if not _has_progress_deadline(d):
            _remove_condition(st, "Progressing")
        current = get_condition(d.status, "Progressing")
        complete = (st.replicas == st.updated_replicas and current is not None
                    and current.get("reason") == REASON_NEW_RS_AVAILABLE)
        if _has_progress_deadline(d) and not complete:
            rs_name = new_rs.metadata.name if new_rs is not None else None
            if _deployment_complete(d, st):
                msg = (f'ReplicaSet "{rs_name}" has successfully progressed.' if rs_name
                       else f'Deployment "{d.metadata.name}" has successfully progressed.')
                _set_condition(st, _new_condition("Progressing", "True",
                                                  REASON_NEW_RS_AVAILABLE, msg, now))
            elif _deployment_progressing(d, st):
                msg = (f'ReplicaSet "{rs_name}" is progressing.' if rs_name
                       else f'Deployment "{d.metadata.name}" is progressing.')
                cond = _new_condition("Progressing", "True", REASON_RS_UPDATED, msg, now)
                if current is not None:
                    if current.get("status") == "True":
                        cond["lastTransitionTime"] = current.get("lastTransitionTime")
                    _remove_condition(st, "Progressing")
                _set_condition(st, cond)
            elif _deployment_timed_out(d, st, now):
                msg = (f'ReplicaSet "{rs_name}" has timed out progressing.' if rs_name
                       else f'Deployment "{d.metadata.name}" has timed out progressing.')
                _set_condition(st, _new_condition("Progressing", "False", REASON_TIMED_OUT,
                                                  msg, now))
                self.log("progress-deadline-exceeded", kind="Deployment", name=d.key,
                         message=msg)
        failure = None  # getReplicaFailures: the new ReplicaSet's first, then the old ones'
        for rs in [new_rs] + [x for x in all_rss if x is not new_rs]:
            if rs is not None:
                c = next((c for c in rs.status.extra.get("conditions") or ()
                          if c.get("type") == "ReplicaFailure"), None)
                if c is not None:
                    failure = c
                    break
        if failure is not None:
            since = failure.get("lastTransitionTime") or stamp(now)
            _set_condition(st, {"type": "ReplicaFailure", "status": failure.get("status", "True"),
                                "lastUpdateTime": since, "lastTransitionTime": since,
                                "reason": failure.get("reason", ""),
                                "message": failure.get("message", "")})
        else:
            _remove_condition(st, "ReplicaFailure")
        if st == d.status:
            self._requeue_stuck(d, st)
            return
        new = self.store.edit(d, spec=False)
        new.status = st
        self._write_deployment(new)

    def _requeue_stuck(self, d: Any, st: Any) -> None:
        """requeueStuckDeployment: look again when the progress deadline can pass."""
        cond = get_condition(d.status, "Progressing")
        if not _has_progress_deadline(d) or cond is None:
            return
        if _deployment_complete(d, st) or cond.get("reason") == REASON_TIMED_OUT:
            return
        after = seconds(cond["lastUpdateTime"]) + d.spec.progress_deadline_seconds \
            - self.engine.now
        backoff = self._stuck_backoff
        if after < 1.0:
            # Kubernetes re-queues rate-limited (client-go's per-item limiter: 5 ms, doubling,
            # at most 1000 s) until the deadline passes
            k = backoff.get(d.key, 0)
            backoff[d.key] = k + 1
            self.enqueue(d.key, max(after, 0.0) + min(0.005 * 2.0 ** k, 1000.0))
        else:
            backoff.pop(d.key, None)
            self.enqueue(d.key, after + 1.0)


# ---- kubectl verbs --------------------------------------------------------------------------

def _split(key: str) -> tuple[str, str]:
    ns, name = split_key(key)
    return ns or "default", name


def _get(store: Any, kind: str, key: str) -> Any:
    ns, name = _split(key)
    obj = store.try_get(kind, ns, name)
    if obj is None:
        raise InputError(f"{kind} {ns}/{name} not found", obj=f"{kind}/{ns}/{name}")
    return obj


def scale(store: Any, kind: str, key: str, replicas: int) -> Any:
    """``kubectl scale``: set ``spec.replicas`` of a Deployment or ReplicaSet; returns the
    stored object."""
    if kind not in ("Deployment", "ReplicaSet"):
        raise InputError(f"cannot scale a {kind}: only Deployment and ReplicaSet")
    if isinstance(replicas, bool) or not isinstance(replicas, int) or replicas < 0:
        raise InputError(f"replicas must be an integer >= 0, got {replicas!r}",
                         obj=f"{kind}/{key}", field="spec.replicas")
    obj = _get(store, kind, key)
    new = store.edit(obj)
    new.spec.replicas = replicas
    return store.update(new, cause=f"scaled to {replicas}")


def set_image(store: Any, deployment_key: str, container: str | None, image: str) -> Any:
    """``kubectl set image deployment/NAME CONTAINER=IMAGE``: change the image of the named
    container (init containers included; ``None`` or ``"*"``: every container), which starts
    a rollout. Returns the stored Deployment."""
    if not isinstance(image, str) or not image:
        raise InputError("image must be a non-empty string", field="image")
    d = _get(store, "Deployment", deployment_key)
    new = store.edit(d)
    spec = copy.copy(new.spec)
    template = copy.copy(spec.template)
    pod_spec = copy.copy(template.spec)
    found = False
    for attr in ("init_containers", "containers"):
        out = []
        for c in getattr(pod_spec, attr):
            if container in (None, "", "*") or c.name == container:
                c = copy.copy(c)
                c.image = image
                found = True
            out.append(c)
        setattr(pod_spec, attr, out)
    if not found:
        raise InputError(f"unable to find container named {container!r}",
                         obj=f"Deployment/{d.key}", field="spec.template.spec.containers")
    template.spec = pod_spec
    spec.template = template
    new.spec = spec
    return store.update(new, cause=f"set image {container or '*'}={image}")


def _set_paused(store: Any, key: str, paused: bool) -> Any:
    d = _get(store, "Deployment", key)
    if d.spec.paused == paused:
        return d
    new = store.edit(d)
    new.spec.paused = paused
    return store.update(new, cause="paused" if paused else "resumed")


def pause(store: Any, deployment_key: str) -> Any:
    """``kubectl rollout pause``: template changes no longer roll out (scaling still does)."""
    return _set_paused(store, deployment_key, True)


def resume(store: Any, deployment_key: str) -> Any:
    """``kubectl rollout resume``."""
    return _set_paused(store, deployment_key, False)


def rollback(store: Any, deployment_key: str, revision: int = 0) -> Any:
    """``kubectl rollout undo [--to-revision=N]``: put the pod template of the ReplicaSet with
    revision N (0: the one before the newest) back into the Deployment, with that
    ReplicaSet's annotations (except the revision bookkeeping ones). Refused while paused;
    nothing happens when the template already matches. Returns the stored Deployment."""
    if isinstance(revision, bool) or not isinstance(revision, int) or revision < 0:
        raise InputError(f"unable to find specified revision {revision} in history",
                         field="revision")
    d = _get(store, "Deployment", deployment_key)
    if d.spec.paused:
        raise InputError("you cannot rollback a paused deployment; resume it first",
                         obj=f"Deployment/{d.key}")
    owned = [rs for rs in store.dependents(d.metadata.uid)
             if rs.KIND == "ReplicaSet" and podutil.is_controlled_by(rs, d)
             and d.spec.selector.matches(rs.metadata.labels)]
    owned.sort(key=_by_creation)
    target = None
    if revision > 0:
        target = next((rs for rs in owned if _revision_of(rs) == revision), None)
        if target is None:
            raise InputError(f"unable to find specified revision {revision} in history",
                             obj=f"Deployment/{d.key}")
    else:
        latest, latest_rev, previous, previous_rev = None, -1, None, -1
        for rs in owned:
            v = _revision_of(rs)
            if v is None:
                continue
            if latest_rev < v:
                previous, previous_rev = latest, latest_rev
                latest, latest_rev = rs, v
            elif previous_rev < v:
                previous, previous_rev = rs, v
        if previous is None:
            raise InputError(f"no rollout history found for deployment {d.metadata.name!r}",
                             obj=f"Deployment/{d.key}")
        target = previous
    if equal_ignore_hash(target.spec.template, d.spec.template):
        return d
    template = copy.deepcopy(target.spec.template)
    template.metadata.labels = {k: v for k, v in template.metadata.labels.items()
                                if k != POD_TEMPLATE_HASH}
    annotations = dict(d.metadata.annotations)
    annotations.update({k: v for k, v in target.metadata.annotations.items()
                        if k not in ANNOTATIONS_TO_SKIP})
    new = store.edit(d)
    new.metadata.annotations = annotations
    new.spec = copy.copy(new.spec)
    new.spec.template = template
    return store.update(new, cause=f"rollback to revision {_revision_of(target)}")

