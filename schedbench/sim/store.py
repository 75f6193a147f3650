"""The object store: the API server and etcd of a simulated cluster.

What it keeps from Kubernetes' API machinery:

* **Identity.** ``metadata.uid`` (deterministic ``uid-N``), ``resourceVersion`` (one global
  counter, as etcd's revision, written as a decimal string), ``creationTimestamp``,
  ``generation`` (1 on create, +1 on every change of ``spec``), ``generateName`` (the prefix,
  cut to 58 characters, plus 5 characters of Kubernetes' random-suffix alphabet drawn from
  ``engine.rng``; a collision is retried, as the API server does since v1.32).
* **Optimistic concurrency.** ``update`` must carry the resourceVersion it read; a stale one
  raises :class:`Conflict`. An update that changes nothing is a no-op (no new
  resourceVersion, no event), as in Kubernetes.
* **Admission for pods.** DefaultTolerationSeconds (plugin/pkg/admission/
  defaulttolerationseconds): ``node.kubernetes.io/not-ready`` and ``.../unreachable``
  ``Exists:NoExecute`` tolerations for 300 s, unless the pod already tolerates that taint
  (a toleration with that key or an empty key, and effect NoExecute or empty); status.phase
  ``Pending``.
* **Selectors.** Label selectors in Kubernetes syntax (``app=web,tier in (a,b)``) or as
  :class:`~schedbench.model.labels.Selector` objects; field selectors on ``metadata.name``,
  ``metadata.namespace``, and for pods ``spec.nodeName``, ``spec.schedulerName``,
  ``status.phase`` (for nodes ``spec.unschedulable``), with ``=``, ``==`` and ``!=``.
* **Garbage collection** (kube-controller-manager, pkg/controller/garbagecollector):
  ``propagation="Background"`` deletes the owner now and its dependents right after, at the
  same virtual time (a dependent that still has another live owner only loses the dangling
  ownerReference); ``"Foreground"`` marks the owner (deletionTimestamp, finalizer
  ``foregroundDeletion``), deletes the dependents first, then the owner; ``"Orphan"``
  removes the ownerReference from the dependents, then deletes the owner. Deleting a
  Namespace deletes the objects in it first (the namespace controller).
* **Watches.** ADDED / MODIFIED / DELETED events are queued in mutation order and delivered
  through the engine (:data:`~schedbench.sim.engine.PRIO_WATCH`, same virtual time) to the
  watchers of the kind, in registration order. A handler may write to the store: its events
  are appended and delivered after the current ones; delivery is never re-entrant.

Deletion is immediate (no graceful termination period, no finalizers other than the
foreground one). Objects returned by ``get``/``list`` and passed to watchers are the stored
instances: never modify them; ``edit()`` gives a copy to change and ``update()``.
"""

from __future__ import annotations

import copy
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from typing import Any, NamedTuple

from schedbench.errors import InputError, SchedbenchError
from schedbench.model import labels as _labels
from schedbench.model.objects import KINDS, KubeObject, Toleration

from .engine import PRIO_WATCH, Engine
from .timefmt import stamp

__all__ = ["AlreadyExists", "Conflict", "NotFound", "Store", "Watch", "WatchEvent",
           "DEFAULT_TOLERATION_KEYS", "GENERATE_NAME_ALPHABET", "PROPAGATION_POLICIES"]

TAINT_NOT_READY = "node.kubernetes.io/not-ready"
TAINT_UNREACHABLE = "node.kubernetes.io/unreachable"
DEFAULT_TOLERATION_KEYS = (TAINT_NOT_READY, TAINT_UNREACHABLE)
# k8s.io/apimachinery/pkg/util/rand: no vowels (no words), no confusable 0/1/3/l.
GENERATE_NAME_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"
_GENERATE_SUFFIX = 5
_MAX_GENERATE_PREFIX = 63 - _GENERATE_SUFFIX
_GENERATE_RETRIES = 8
PROPAGATION_POLICIES = ("Background", "Foreground", "Orphan")
_NARROWING_OPS = frozenset({_labels.Operator.EQUALS, _labels.Operator.DOUBLE_EQUALS,
                            _labels.Operator.IN})
FOREGROUND_FINALIZER = "foregroundDeletion"


class Conflict(SchedbenchError):
    """An update carried a stale resourceVersion (HTTP 409 Conflict): re-read and retry."""


class NotFound(SchedbenchError):
    """The object does not exist (HTTP 404)."""


class AlreadyExists(SchedbenchError):
    """An object of that kind, namespace and name exists already (HTTP 409)."""


class WatchEvent(NamedTuple):
    """One change: ``type`` ADDED, MODIFIED or DELETED; ``obj`` the new (or last) state;
    ``old`` the previous state for MODIFIED (else None); ``cause`` why it happened."""

    type: str
    obj: Any
    old: Any
    cause: str


class Watch:
    """A registered watch; :meth:`stop` ends it (events still queued are not delivered)."""

    __slots__ = ("kind", "handler", "namespace", "active", "_store")

    def __init__(self, store: Store, kind: str, handler: Callable[[WatchEvent], None],
                 namespace: str | None) -> None:
        self._store = store
        self.kind = kind
        self.handler = handler
        self.namespace = namespace
        self.active = True

    def stop(self) -> None:
        if self.active:
            self.active = False
            self._store._drop_watch(self)


class _Table:
    """The objects of one kind: by (namespace, name) in creation order, by namespace, and
    the watchers."""

    __slots__ = ("kind", "namespaced", "objects", "by_ns", "order", "watchers", "by_label")

    def __init__(self, kind: str, namespaced: bool) -> None:
        self.kind = kind
        self.namespaced = namespaced
        self.objects: dict[tuple[str, str], Any] = {}
        self.by_ns: dict[str, dict[str, Any]] = {}
        self.order: dict[tuple[str, str], int] = {}
        self.watchers: tuple[Watch, ...] = ()
        # (label key, value) -> keys of the objects with that label (an index for selectors)
        self.by_label: dict[tuple[str, str], dict[tuple[str, str], None]] = {}

    def index_labels(self, key: tuple[str, str], labels: dict[str, str]) -> None:
        by_label = self.by_label
        for item in labels.items():
            bucket = by_label.get(item)
            if bucket is None:
                bucket = by_label[item] = {}
            bucket[key] = None

    def unindex_labels(self, key: tuple[str, str], labels: dict[str, str]) -> None:
        by_label = self.by_label
        for item in labels.items():
            bucket = by_label.get(item)
            if bucket is not None:
                bucket.pop(key, None)
                if not bucket:
                    del by_label[item]


# ---- copies ---------------------------------------------------------------------------------

_DATACLASS_TYPES: dict[type, bool] = {}


def _is_dataclass_obj(value: Any) -> bool:
    t = type(value)
    known = _DATACLASS_TYPES.get(t)
    if known is None:
        known = _DATACLASS_TYPES[t] = hasattr(t, "__dataclass_fields__")
    return known


def _copy_dataclass(obj: Any) -> Any:
    new = object.__new__(type(obj))
    new.__dict__.update(obj.__dict__)
    return new


def _copy_part(part: Any, copy_elements: bool) -> Any:
    """A metadata/spec/status copied one level deep: its lists and dicts are new (flat
    copies); with ``copy_elements`` the dataclass objects in its lists (conditions, owner
    references) are copied shallowly too."""
    if part is None:
        return None
    if type(part) is dict:
        return copy.deepcopy(part)
    if not _is_dataclass_obj(part):
        return part
    new = object.__new__(type(part))
    d = new.__dict__
    for k, v in part.__dict__.items():
        t = type(v)
        if t is list:
            if copy_elements and v and _is_dataclass_obj(v[0]):
                v = [_copy_dataclass(x) for x in v]
            else:
                v = v.copy()
        elif t is dict:
            v = v.copy()
        d[k] = v
    return new


def _differs(a: Any, b: Any) -> bool:
    """``a != b`` for objects of the model, comparing attribute dicts (identical members,
    as an edit copy shares them, compare by identity first: cheap)."""
    if a is b:
        return False
    if type(a) is not type(b):
        return True
    d = getattr(a, "__dict__", None)
    if d is not None:
        return d != b.__dict__
    return a != b


def edit_copy(obj: Any, spec: bool = True) -> Any:
    """A copy of ``obj`` safe to modify and pass to ``Store.update`` (see Store.edit)."""
    new = _copy_dataclass(obj)
    d = new.__dict__
    d["metadata"] = _copy_part(obj.metadata, True)
    if spec and "spec" in d:
        d["spec"] = _copy_part(d["spec"], False)
    if "status" in d:
        d["status"] = _copy_part(d["status"], True)
    if "extra" in d:
        d["extra"] = dict(d["extra"])
    return new


# ---- field selectors ------------------------------------------------------------------------

def _split_unescaped(text: str, sep: str) -> list[str]:
    """Split on ``sep`` not preceded by a backslash (fields.ParseSelector's escaping)."""
    parts, cur, i = [], [], 0
    while i < len(text):
        ch = text[i]
        if ch == "\\" and i + 1 < len(text):
            cur.append(text[i:i + 2])
            i += 2
            continue
        if ch == sep:
            parts.append("".join(cur))
            cur = []
        else:
            cur.append(ch)
        i += 1
    parts.append("".join(cur))
    return parts


def _unescape(text: str, where: str) -> str:
    out, i = [], 0
    while i < len(text):
        ch = text[i]
        if ch == "\\":
            if i + 1 >= len(text) or text[i + 1] not in "\\,=!":
                raise InputError(f"invalid field selector {where!r}: bad escape in {text!r}")
            out.append(text[i + 1])
            i += 2
            continue
        if ch in ",=!":
            raise InputError(f"invalid field selector {where!r}: unescaped {ch!r} in value "
                             f"{text!r}")
        out.append(ch)
        i += 1
    return "".join(out)


def _get_name(o: Any) -> str:
    return o.metadata.name


def _get_namespace(o: Any) -> str:
    return o.metadata.namespace


_COMMON_FIELDS: dict[str, Callable[[Any], str]] = {
    "metadata.name": _get_name,
    "metadata.namespace": _get_namespace,
}
_KIND_FIELDS: dict[str, dict[str, Callable[[Any], str]]] = {
    "Pod": {
        "spec.nodeName": lambda o: o.spec.node_name,
        "spec.schedulerName": lambda o: o.spec.scheduler_name,
        "status.phase": lambda o: o.status.phase,
    },
    "Node": {
        "spec.unschedulable": lambda o: "true" if o.spec.unschedulable else "false",
    },
}


def parse_field_selector(kind: str, text: str) -> list[tuple[str, bool, str]]:
    """``"a=x,b!=y"`` as ``[(field, equal, value)]``; unknown fields or operators raise
    InputError (apimachinery fields.ParseSelector, with the fields the API server supports
    for the kind)."""
    if not isinstance(text, str):
        raise InputError(f"a field selector must be a string, not {type(text).__name__}")
    out: list[tuple[str, bool, str]] = []
    if not text.strip():
        return out
    allowed = dict(_COMMON_FIELDS)
    allowed.update(_KIND_FIELDS.get(kind, {}))
    for term in _split_unescaped(text, ","):
        if "!=" in term:
            field, value, equal = *term.split("!=", 1), False
        elif "==" in term:
            field, value, equal = *term.split("==", 1), True
        elif "=" in term:
            field, value, equal = *term.split("=", 1), True
        else:
            raise InputError(f"invalid field selector {text!r}: {term!r} is not "
                             "field=value, field==value or field!=value")
        field = field.strip()
        if field not in allowed:
            raise InputError(f"field selector {text!r}: field {field!r} is not supported for "
                             f"{kind} (supported: {', '.join(allowed)})")
        out.append((field, equal, _unescape(value, text)))
    return out


# ---- the store ------------------------------------------------------------------------------

class Store:
    """The API server and etcd: see the module docstring.

    ``on_mutation`` listeners are called synchronously with every WatchEvent, in mutation
    order (the event log uses them; they must not write to the store).
    ``default_toleration_seconds`` is the DefaultTolerationSeconds admission value (300).
    """

    def __init__(self, engine: Engine, *, default_toleration_seconds: int = 300) -> None:
        self.engine = engine
        self.default_toleration_seconds = int(default_toleration_seconds)
        self.on_mutation: list[Callable[[WatchEvent], None]] = []
        self._tables: dict[str, _Table] = {}
        self._rv = 0
        self._uid_counter = 0
        self._by_uid: dict[str, Any] = {}
        self._dependents: dict[str, dict[tuple[str, str, str], None]] = {}
        self._pods_by_node: dict[str, dict[tuple[str, str], Any]] = {}
        self._queue: deque[tuple[WatchEvent, tuple[Watch, ...]]] = deque()
        self._delivery_scheduled = False
        self._selector_cache: dict[str, _labels.Selector] = {}
        self._field_cache: dict[tuple[str, str], list[tuple[str, bool, str]]] = {}

    # ---- basics --------------------------------------------------------------------------

    @property
    def resource_version(self) -> int:
        """The global resourceVersion counter (the last one handed out)."""
        return self._rv

    def _table(self, kind: str, create: bool = True) -> _Table | None:
        table = self._tables.get(kind)
        if table is None and create:
            cls = KINDS.get(kind)
            namespaced = True if cls is None else cls.NAMESPACED
            table = self._tables[kind] = _Table(kind, namespaced)
        return table

    @staticmethod
    def _check_kind(kind: Any) -> str:
        if not isinstance(kind, str) or not kind:
            raise InputError(f"expected a kind name such as 'Pod', got {kind!r}")
        return kind

    def _key(self, table: _Table, namespace: str | None, name: str) -> tuple[str, str]:
        if table.namespaced:
            return (namespace or "default", name)
        return ("", name)

    def edit(self, obj: Any, *, spec: bool = True) -> Any:
        """A copy of ``obj`` safe to modify and pass to :meth:`update`: the object, its
        metadata, spec and status are new objects whose lists and dicts are new (flat)
        copies; the objects in the lists of metadata and status (owner references,
        conditions) are copied too. So assigning fields of those four, adding to or removing
        from their lists and dicts, and modifying a condition in place never touch the stored
        object. Deeper objects are shared: replace them (``dataclasses.replace``) rather than
        modify them in place, e.g. a container of ``spec.containers`` or a taint of
        ``spec.taints``. ``spec=False`` shares the spec with the stored object (cheaper, for
        writers of status and metadata only: never touch ``spec`` of such a copy)."""
        return edit_copy(obj, spec)

    def get(self, kind: str, namespace: str | None, name: str) -> Any:
        """The stored object; :class:`NotFound` when absent."""
        obj = self.try_get(kind, namespace, name)
        if obj is None:
            where = f"{namespace}/{name}" if namespace else name
            raise NotFound(f"{kind} {where} not found")
        return obj

    def try_get(self, kind: str, namespace: str | None, name: str) -> Any | None:
        """The stored object or None."""
        table = self._tables.get(kind)
        if table is None:
            return None
        return table.objects.get(self._key(table, namespace, name))

    def get_by_uid(self, uid: str) -> Any | None:
        """The live object with this uid, or None."""
        return self._by_uid.get(uid)

    def count(self, kind: str) -> int:
        table = self._tables.get(kind)
        return 0 if table is None else len(table.objects)

    def kinds(self) -> list[str]:
        """The kinds that have (or had) objects, in first-use order."""
        return list(self._tables)

    def pods_on_node(self, node_name: str) -> list[Any]:
        """The pods bound to ``node_name``, in creation order (an index: no scan)."""
        pods = self._pods_by_node.get(node_name)
        if not pods:
            return []
        table = self._tables["Pod"]
        order = table.order
        return sorted(pods.values(), key=lambda p: order[(p.metadata.namespace,
                                                          p.metadata.name)])

    def dependents(self, owner_uid: str) -> list[Any]:
        """Objects with an ownerReference to ``owner_uid``, in the order they got it."""
        out = []
        for kind, ns, name in self._dependents.get(owner_uid, ()):
            obj = self.try_get(kind, ns, name)
            if obj is not None:
                out.append(obj)
        return out

    # ---- list ----------------------------------------------------------------------------

    def _selector(self, label_selector: Any) -> _labels.Selector | None:
        if label_selector is None:
            return None
        if isinstance(label_selector, _labels.Selector):
            return None if label_selector.empty else label_selector
        if isinstance(label_selector, str):
            sel = self._selector_cache.get(label_selector)
            if sel is None:
                sel = _labels.parse_selector(label_selector)
                self._selector_cache[label_selector] = sel
            return None if sel.empty else sel
        if isinstance(label_selector, Mapping):
            return _labels.selector_from_set(label_selector)
        raise InputError(f"a label selector must be a string, a Selector or a mapping, not "
                         f"{type(label_selector).__name__}")

    def list(self, kind: str, namespace: str | None = None, label_selector: Any = None,
             field_selector: str | None = None) -> list[Any]:
        """Objects of ``kind`` (in ``namespace``, or all namespaces when None; ``""`` is the
        default namespace) matching both selectors, in creation order. Equality selectors
        use a label index; ``spec.nodeName=X`` uses the pods-by-node index."""
        self._check_kind(kind)
        sel = self._selector(label_selector)
        fields: list[tuple[str, bool, str]] = []
        if field_selector:
            cache_key = (kind, field_selector)
            fields = self._field_cache.get(cache_key)  # type: ignore[assignment]
            if fields is None:
                fields = parse_field_selector(kind, field_selector)
                self._field_cache[cache_key] = fields
        table = self._tables.get(kind)
        if table is None:
            return []
        candidates: Iterable[Any]
        node_eq = next((v for f, eq, v in fields if f == "spec.nodeName" and eq and v), None)
        if node_eq is not None:
            candidates = self.pods_on_node(node_eq)
        else:
            candidates = table.objects.values()
            if namespace is not None and table.namespaced:
                candidates = table.by_ns.get(namespace or "default", {}).values()
            if sel is not None:
                indexed = self._label_candidates(table, sel, len(candidates))
                if indexed is not None:
                    candidates = indexed
        getters = [(_COMMON_FIELDS.get(f) or _KIND_FIELDS[kind][f], eq, v)
                   for f, eq, v in fields]
        out = []
        for obj in candidates:
            if namespace is not None and table.namespaced and \
                    obj.metadata.namespace != (namespace or "default"):
                continue
            if sel is not None and not sel.matches(obj.metadata.labels):
                continue
            ok = True
            for get, eq, value in getters:
                if (get(obj) == value) != eq:
                    ok = False
                    break
            if ok:
                out.append(obj)
        return out

    @staticmethod
    def _label_candidates(table: _Table, sel: _labels.Selector, scan: int) -> list[Any] | None:
        """The objects that can match ``sel``, from the label index, in creation order: the
        smallest set an equality (or ``in``) requirement allows; None when no requirement
        narrows the search much below ``scan`` objects."""
        best: list[dict[tuple[str, str], None]] | None = None
        best_size = -1
        by_label = table.by_label
        for r in sel.requirements:
            if r.operator not in _NARROWING_OPS:
                continue
            buckets = [b for b in (by_label.get((r.key, v)) for v in r.values) if b]
            size = sum(len(b) for b in buckets)
            if best is None or size < best_size:
                best, best_size = buckets, size
                if size == 0:
                    return []
        if best is None or best_size * 4 > scan:
            return None  # a scan in creation order is cheaper than sorting most objects
        objects, order = table.objects, table.order
        if len(best) == 1:
            keys = list(best[0])
        else:
            keys = list(dict.fromkeys(k for b in best for k in b))
        keys.sort(key=order.__getitem__)
        return [objects[k] for k in keys]

    # ---- create --------------------------------------------------------------------------

    def _generate_name(self, table: _Table, namespace: str, prefix: str) -> str:
        prefix = prefix[:_MAX_GENERATE_PREFIX]
        alphabet = GENERATE_NAME_ALPHABET
        for _ in range(_GENERATE_RETRIES):
            draws = self.engine.rng.integers(0, len(alphabet), size=_GENERATE_SUFFIX)
            name = prefix + "".join(alphabet[int(i)] for i in draws)
            if (namespace, name) not in table.objects:
                return name
        raise AlreadyExists(f"{table.kind}: could not generate a unique name from "
                            f"generateName {prefix!r}")

    def _admit_pod(self, pod: Any) -> None:
        """DefaultTolerationSeconds admission and the Pending phase."""
        tolerations = pod.spec.tolerations
        covered = {key: False for key in DEFAULT_TOLERATION_KEYS}
        for t in tolerations:
            if t.effect in ("NoExecute", ""):
                for key in DEFAULT_TOLERATION_KEYS:
                    if t.key in (key, ""):
                        covered[key] = True
        for key in DEFAULT_TOLERATION_KEYS:
            if not covered[key]:
                tolerations.append(Toleration(key=key, operator="Exists", effect="NoExecute",
                                              toleration_seconds=self.default_toleration_seconds))
        if not pod.status.phase:
            pod.status.phase = "Pending"

    def create(self, obj: Any, *, cause: str = "") -> Any:
        """Store a copy of ``obj`` as a new object and return the stored copy (see the module
        docstring for what the API server fills in)."""
        if not isinstance(obj, KubeObject):
            raise InputError(f"can only store Kubernetes objects, not {type(obj).__name__}")
        kind = self._check_kind(obj.KIND)
        table = self._table(kind)
        new = edit_copy(obj)
        meta = new.metadata
        if table.namespaced:
            meta.namespace = meta.namespace or "default"
        elif meta.namespace:
            raise InputError(f"{kind} is cluster-scoped: metadata.namespace must be empty, "
                             f"got {meta.namespace!r}", field="metadata.namespace")
        if not meta.name:
            if not meta.generate_name:
                raise InputError(f"{kind}: metadata.name or metadata.generateName is required",
                                 field="metadata.name")
            meta.name = self._generate_name(table, meta.namespace, meta.generate_name)
        key = (meta.namespace, meta.name)
        if key in table.objects:
            raise AlreadyExists(f"{kind} {new.key} already exists")
        self._uid_counter += 1
        meta.uid = f"uid-{self._uid_counter}"
        self._rv += 1
        meta.resource_version = str(self._rv)
        meta.creation_timestamp = stamp(self.engine.now)
        meta.deletion_timestamp = None
        meta.generation = 1
        for ref in meta.owner_references:
            if not ref.uid:  # a hand-written reference by name: resolve it like kubectl would
                owner = self.try_get(ref.kind, meta.namespace, ref.name)
                if owner is not None:
                    ref.uid = owner.metadata.uid
        if kind == "Pod":
            self._admit_pod(new)
        table.objects[key] = new
        table.by_ns.setdefault(meta.namespace, {})[meta.name] = new
        table.order[key] = self._uid_counter
        table.index_labels(key, meta.labels)
        self._index(kind, None, new)
        self._emit("ADDED", new, None, cause, table)
        return new

    # ---- indexes -------------------------------------------------------------------------

    def _index(self, kind: str, old: Any, new: Any) -> None:
        """Keep uid, owner and pod-by-node indexes in step with a write (old -> new; None
        for a create or delete)."""
        if old is not None:
            del self._by_uid[old.metadata.uid]
        if new is not None:
            self._by_uid[new.metadata.uid] = new
        ref = old if old is not None else new
        key3 = (kind, ref.metadata.namespace, ref.metadata.name)
        old_owners = [r.uid for r in old.metadata.owner_references] if old is not None else []
        new_owners = [r.uid for r in new.metadata.owner_references] if new is not None else []
        if old_owners != new_owners:
            for uid in old_owners:
                if uid not in new_owners:
                    deps = self._dependents.get(uid)
                    if deps is not None:
                        deps.pop(key3, None)
                        if not deps:
                            del self._dependents[uid]
            for uid in new_owners:
                if uid and uid not in old_owners:
                    self._dependents.setdefault(uid, {})[key3] = None
        if kind == "Pod":
            old_node = old.spec.node_name if old is not None else ""
            new_node = new.spec.node_name if new is not None else ""
            key2 = key3[1:]
            if old_node and old_node != new_node:
                pods = self._pods_by_node[old_node]
                del pods[key2]
                if not pods:
                    del self._pods_by_node[old_node]
            if new_node:
                self._pods_by_node.setdefault(new_node, {})[key2] = new

    # ---- update --------------------------------------------------------------------------

    def update(self, obj: Any, *, cause: str = "") -> Any:
        """Replace the stored object by ``obj`` (a copy from :meth:`edit`), which becomes the
        stored instance: do not modify it afterwards. Raises :class:`Conflict` when
        ``obj.metadata.resource_version`` is stale (an empty one means unconditional, as in
        Kubernetes) or the uid differs, :class:`NotFound` when the object is gone. uid, name,
        namespace, creationTimestamp and deletionTimestamp cannot be changed; ``generation``
        is bumped when ``spec`` changed. An update that changes nothing returns the stored
        object without a new resourceVersion or event."""
        kind = self._check_kind(obj.KIND)
        table = self._tables.get(kind)
        meta = obj.metadata
        key = self._key(table, meta.namespace, meta.name) if table is not None else None
        stored = table.objects.get(key) if table is not None else None
        if stored is None:
            raise NotFound(f"{kind} {meta.namespace + '/' if meta.namespace else ''}"
                           f"{meta.name} not found")
        if obj is stored or meta is stored.metadata:
            raise SchedbenchError(f"update of {stored.ref}: pass a copy from Store.edit(), "
                                  "not the stored object")
        smeta = stored.metadata
        if meta.resource_version and meta.resource_version != smeta.resource_version:
            raise Conflict(f"{stored.ref}: the object has been modified (resourceVersion "
                           f"{meta.resource_version}, now {smeta.resource_version}); re-read "
                           "it and try again")
        if meta.uid and meta.uid != smeta.uid:
            raise Conflict(f"{stored.ref}: uid precondition failed ({meta.uid} != "
                           f"{smeta.uid})")
        meta.namespace = smeta.namespace
        meta.uid = smeta.uid
        meta.creation_timestamp = smeta.creation_timestamp
        meta.deletion_timestamp = smeta.deletion_timestamp
        meta.generation = smeta.generation
        meta.resource_version = smeta.resource_version
        new_parts, old_parts = obj.__dict__, stored.__dict__
        spec_changed = "spec" in new_parts and _differs(new_parts["spec"], old_parts["spec"])
        if not spec_changed and not any(_differs(v, old_parts[k])
                                        for k, v in new_parts.items() if k != "spec"):
            return stored
        if spec_changed:
            meta.generation = smeta.generation + 1
        self._rv += 1
        meta.resource_version = str(self._rv)
        table.objects[key] = obj
        table.by_ns[key[0]][key[1]] = obj
        if meta.labels != smeta.labels:
            table.unindex_labels(key, smeta.labels)
            table.index_labels(key, meta.labels)
        self._index(kind, stored, obj)
        self._emit("MODIFIED", obj, stored, cause, table)
        return obj

    # ---- delete --------------------------------------------------------------------------

    def delete(self, kind: str, namespace: str | None, name: str, *, cause: str = "",
               propagation: str = "Background") -> Any | None:
        """Delete an object with Kubernetes' propagation policies (module docstring); returns
        the deleted object (its last state), None when it did not exist."""
        self._check_kind(kind)
        if propagation not in PROPAGATION_POLICIES:
            raise InputError(f"propagation policy must be one of "
                             f"{', '.join(PROPAGATION_POLICIES)}, got {propagation!r}")
        table = self._tables.get(kind)
        if table is None:
            return None
        key = self._key(table, namespace, name)
        obj = table.objects.get(key)
        if obj is None:
            return None
        uid = obj.metadata.uid
        owner_desc = f"{kind}/{obj.key}"
        if kind == "Namespace":
            self._empty_namespace(obj.metadata.name)
        if propagation == "Orphan":
            for dep in self.dependents(uid):
                new = edit_copy(dep)
                new.metadata.owner_references = [r for r in new.metadata.owner_references
                                                 if r.uid != uid]
                self.update(new, cause=f"orphaned (owner {owner_desc} deleted)")
            return self._remove(table, key, cause)
        if propagation == "Foreground":
            if obj.metadata.deletion_timestamp is None and self._dependents.get(uid):
                marked = edit_copy(obj)
                marked.metadata.finalizers = [*marked.metadata.finalizers,
                                              FOREGROUND_FINALIZER]
                self._rv += 1
                marked.metadata.resource_version = str(self._rv)
                marked.metadata.deletion_timestamp = stamp(self.engine.now)
                table.objects[key] = marked
                table.by_ns[key[0]][key[1]] = marked
                self._index(kind, obj, marked)
                self._emit("MODIFIED", marked, obj, f"foreground deletion: {cause}".rstrip(": "),
                           table)
            self._collect(uid, owner_desc, "Foreground")
            return self._remove(table, key, cause)
        gone = self._remove(table, key, cause)
        if uid in self._dependents:
            self.engine.at(self.engine.now, self._collect, uid, owner_desc, "Background",
                           priority=PRIO_WATCH)
        return gone

    def _empty_namespace(self, namespace: str) -> None:
        """The namespace controller: deleting a Namespace deletes everything in it first
        (kind by kind, each in creation order)."""
        for table in list(self._tables.values()):
            if not table.namespaced:
                continue
            for obj in list(table.by_ns.get(namespace, {}).values()):
                if table.objects.get((namespace, obj.metadata.name)) is obj:
                    self.delete(table.kind, namespace, obj.metadata.name,
                                cause=f"namespace {namespace} deleted")

    def _remove(self, table: _Table, key: tuple[str, str], cause: str) -> Any:
        obj = table.objects.pop(key)
        ns_objects = table.by_ns[key[0]]
        del ns_objects[key[1]]
        if not ns_objects:
            del table.by_ns[key[0]]
        del table.order[key]
        table.unindex_labels(key, obj.metadata.labels)
        self._index(table.kind, obj, None)
        gone = _copy_dataclass(obj)
        gone.metadata = _copy_dataclass(obj.metadata)
        self._rv += 1
        gone.metadata.resource_version = str(self._rv)
        if gone.metadata.deletion_timestamp is None:
            gone.metadata.deletion_timestamp = stamp(self.engine.now)
        self._emit("DELETED", gone, None, cause, table)
        return gone

    def _collect(self, owner_uid: str, owner_desc: str, propagation: str) -> None:
        """The garbage collector for a deleted owner: delete each dependent whose owners are
        all gone, remove the dangling reference from the others."""
        by_uid = self._by_uid
        for kind, ns, name in list(self._dependents.get(owner_uid, ())):
            dep = self.try_get(kind, ns, name)
            if dep is None:
                continue
            refs = dep.metadata.owner_references
            if any(r.uid != owner_uid and r.uid in by_uid for r in refs):
                new = edit_copy(dep)
                new.metadata.owner_references = [
                    r for r in refs if r.uid != owner_uid and (not r.uid or r.uid in by_uid)]
                self.update(new, cause=f"garbage collector: owner {owner_desc} deleted")
            else:
                self.delete(kind, ns, name, propagation=propagation,
                            cause=f"garbage collected (owner {owner_desc} deleted)")

    # ---- watches -------------------------------------------------------------------------

    def watch(self, kind: str, handler: Callable[[WatchEvent], None],
              namespace: str | None = None) -> Watch:
        """Deliver future changes of ``kind`` (in ``namespace``, or all) to ``handler``."""
        table = self._table(self._check_kind(kind))
        w = Watch(self, kind, handler, namespace)
        table.watchers = (*table.watchers, w)
        return w

    def _drop_watch(self, w: Watch) -> None:
        table = self._tables[w.kind]
        table.watchers = tuple(x for x in table.watchers if x is not w)

    def _emit(self, type_: str, obj: Any, old: Any, cause: str, table: _Table) -> None:
        ev = WatchEvent(type_, obj, old, cause)
        for fn in self.on_mutation:
            fn(ev)
        if table.watchers:
            self._queue.append((ev, table.watchers))
            if not self._delivery_scheduled:
                self._delivery_scheduled = True
                self.engine.at(self.engine.now, self._deliver, priority=PRIO_WATCH)

    def _deliver(self) -> None:
        queue = self._queue
        try:
            while queue:
                ev, watchers = queue.popleft()
                ns = ev.obj.metadata.namespace
                for w in watchers:
                    if w.active and (w.namespace is None or w.namespace == ns):
                        w.handler(ev)
        finally:
            self._delivery_scheduled = False
            if queue:  # a handler raised: deliver the rest later rather than never
                self._delivery_scheduled = True
                self.engine.at(self.engine.now, self._deliver, priority=PRIO_WATCH)
