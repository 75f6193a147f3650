"""What the spreading plugins share: per-node counts of matching pods, kept incrementally, the
selector kube deduces from a pod's Services and controller, Go's ``math.Log`` / ``math.Round``
and the zone key.

Per-node counts (:class:`SelectorCounts`)
    PodTopologySpread and SelectorSpread both ask, for a (namespace, label selector), how many
    bound pods of that namespace on each node match the selector, terminating pods (those with
    a ``deletionTimestamp``) left out (kube's ``countPodsMatchSelector`` / ``countMatchingPods``).
    The first time a pair is asked for it is counted over the bound pods of the namespace; from
    then on it is *tracked*: a snapshot listener adds or removes one per bind or removal, O(1)
    per tracked selector of the pod's namespace. At most :attr:`SelectorCounts.capacity` pairs
    are tracked; the least recently used one is dropped beyond that (and counted afresh if it
    is needed again). Selectors without requirements (``{}``) and the null selector count no
    pod, as in kube's ``countPodsMatchSelector`` (``selector.Empty()`` returns 0) and
    ``countMatchingPods``; they are never tracked.

    The counts assume that a bound pod's namespace, labels and deletion timestamp do not change
    while it is bound (a change goes through remove + add, as :meth:`NodeSnapshot.update_node`
    does for nodes).

Default selector (:func:`default_selector`)
    ``helper.DefaultSelector``: the union of the selectors of the Services of the pod's
    namespace that select it (a Service without a selector selects nothing), plus the
    requirements of the ReplicaSet (or StatefulSet) named by the pod's controller reference
    (``apps/v1``), or the selector of its ReplicationController (``v1``), looked up in the pod's
    namespace. The cluster model has Services and ReplicaSets; ReplicationControllers and
    StatefulSets are used when the cluster object carries ``replication_controllers`` /
    ``stateful_sets`` lists.

Go arithmetic
    :func:`go_log` is Go's ``math.Log`` (the amd64 assembly and the pure-Go version compute
    the same FreeBSD algorithm, which differs from the C library's ``log`` in the last bit for
    some integers, ``log(3)`` among them); :func:`go_round` is ``math.Round`` (half away from
    zero), usable inside kernels.
"""

from __future__ import annotations

import math
import weakref
from collections.abc import Mapping
from typing import Any

import numpy as np
from numba import njit

from ..model.labels import Operator, Selector, selector_from_set
from ..model.objects import Pod
from .snapshot import NodeSnapshot, PodInfo

__all__ = [
    "HOSTNAME_LABEL",
    "SelectorCounts",
    "default_selector",
    "go_log",
    "go_round",
    "is_terminating",
    "selector_counts",
    "zone_key",
]

HOSTNAME_LABEL = "kubernetes.io/hostname"
ZONE_LABEL = "topology.kubernetes.io/zone"
_BETA_ZONE = "failure-domain.beta.kubernetes.io/zone"
_REGION = "topology.kubernetes.io/region"
_BETA_REGION = "failure-domain.beta.kubernetes.io/region"

# ------------------------------------------------------------------------------ Go arithmetic

_SQRT2_HALF = 7.07106781186547524401e-01
_LN2_HI = 6.93147180369123816490e-01
_LN2_LO = 1.90821492927058770002e-10
_LG = (6.666666666666735130e-01, 3.999999999940941908e-01, 2.857142874366239149e-01,
       2.222219843214978396e-01, 1.818357216161805012e-01, 1.531383769920937332e-01,
       1.479819860511658591e-01)


def go_log(x: float) -> float:
    """Go's ``math.Log(x)`` bit for bit (argument reduction to ``f1 * 2**k`` with ``f1`` in
    ``[sqrt(2)/2, sqrt(2))``, then the degree-14 minimax polynomial in ``s = f/(2+f)``)."""
    x = float(x)
    if math.isnan(x) or x == math.inf:
        return x
    if x < 0:
        return math.nan
    if x == 0:
        return -math.inf
    f1, ki = math.frexp(x)
    if f1 < _SQRT2_HALF:
        f1 *= 2
        ki -= 1
    f = f1 - 1
    k = float(ki)
    s = f / (2 + f)
    s2 = s * s
    s4 = s2 * s2
    l1, l2, l3, l4, l5, l6, l7 = _LG
    t1 = s2 * (l1 + s4 * (l3 + s4 * (l5 + s4 * l7)))
    t2 = s4 * (l2 + s4 * (l4 + s4 * l6))
    r = t1 + t2
    hfsq = 0.5 * f * f
    return k * _LN2_HI - ((hfsq - (s * (hfsq + r) + k * _LN2_LO)) - f)


#: :func:`go_log` compiled (for kernels; the same operations in the same order)
go_log_jit = njit(cache=True)(go_log)


@njit(cache=True)
def go_round(x):
    """Go's ``math.Round``: the nearest integer, halves away from zero (finite ``x``)."""
    t = math.trunc(x)
    if abs(x - t) >= 0.5:
        t += math.copysign(1.0, x)
    return t


def zone_key(labels: Mapping[str, str]) -> str:
    """``utilnode.GetZoneKey``: the failure-domain.beta labels win over the topology.kubernetes.io
    ones; '' when neither region nor zone is set (or both are empty)."""
    zone = labels[_BETA_ZONE] if _BETA_ZONE in labels else labels.get(ZONE_LABEL, "")
    region = labels[_BETA_REGION] if _BETA_REGION in labels else labels.get(_REGION, "")
    if not region and not zone:
        return ""
    return f"{region}:\x00:{zone}"


# --------------------------------------------------------------------------- default selector


def _controller(pod: Pod):
    for ref in pod.metadata.owner_references:
        if ref.controller:
            return ref
    return None


def _service_index(cluster: Any) -> dict[tuple[str, str, str], list[int]]:
    """Services by (namespace, key, value) of their selector's smallest key, in cluster order,
    so that finding the Services that select a pod costs O(pod labels), not O(services).
    Services with a nil or empty selector select nothing here (an empty set adds no
    requirement to the default selector). Cached on the cluster while its ``services`` list
    is the same object with the same length."""
    services = getattr(cluster, "services", None) or ()
    if not services:
        return {}
    cached = getattr(cluster, "_service_index_cache", None)
    if cached is not None and cached[0] is services and cached[1] == len(services):
        return cached[2]
    index: dict[tuple[str, str, str], list[int]] = {}
    for pos, svc in enumerate(services):
        sel = svc.spec.selector
        if sel:
            key = min(sel)
            index.setdefault((svc.metadata.namespace, key, sel[key]), []).append(pos)
    try:
        cluster._service_index_cache = (services, len(services), index)
    except AttributeError:  # an object that takes no attributes: index every call
        pass
    return index


def default_selector(pod: Pod, cluster: Any) -> Selector:
    """kube's ``helper.DefaultSelector(pod, services, rcs, rss, sss)`` (see module docstring).
    Without requirements (nothing selects the pod) the result is :meth:`Selector.everything`,
    which callers treat as 'no default selector'. Memoised per (namespace, labels, controller)
    while the cluster's Services and controller lists are the same objects of the same
    lengths (workload selectors are immutable, as in Kubernetes)."""
    owner = _controller(pod)
    lists = tuple(getattr(cluster, a, None) for a in _SELECTOR_SOURCES)
    version = tuple((id(x), len(x)) if x is not None else None for x in lists)
    cache = getattr(cluster, "_default_selector_cache", None)
    if cache is None or cache[0] != version:
        cache = (version, {})
        try:
            cluster._default_selector_cache = cache
        except AttributeError:  # (a cluster-like object without attributes of its own)
            return _default_selector(pod, cluster)
    key = (pod.metadata.namespace, frozenset(pod.metadata.labels.items()),
           (owner.api_version, owner.kind, owner.name) if owner is not None else None)
    got = cache[1].get(key)
    if got is None:
        got = cache[1][key] = _default_selector(pod, cluster)
    return got


_SELECTOR_SOURCES = ("services", "replication_controllers", "replica_sets", "stateful_sets")


def _default_selector(pod: Pod, cluster: Any) -> Selector:
    ns = pod.metadata.namespace
    labels = pod.metadata.labels
    merged: dict[str, str] = {}
    index = _service_index(cluster)
    if index:
        candidates = sorted({pos for k, v in labels.items()
                             for pos in index.get((ns, k, v), ())})
        services = cluster.services
        for pos in candidates:
            sel = services[pos].spec.selector
            if all(labels.get(k) == v and k in labels for k, v in sel.items()):
                merged.update(sel)
    selector = selector_from_set(merged)
    owner = _controller(pod)
    if owner is None:
        return selector
    api, kind = owner.api_version, owner.kind
    if api == "v1" and kind == "ReplicationController":
        for rc in getattr(cluster, "replication_controllers", None) or ():
            if rc.metadata.namespace == ns and rc.metadata.name == owner.name:
                rc_sel = getattr(rc.spec, "selector", None) or {}
                merged.update(rc_sel)
                selector = selector_from_set(merged)
                break
    elif api == "apps/v1" and kind in ("ReplicaSet", "StatefulSet"):
        pool = (getattr(cluster, "replica_sets", None) if kind == "ReplicaSet"
                else getattr(cluster, "stateful_sets", None)) or ()
        for obj in pool:
            if obj.metadata.namespace == ns and obj.metadata.name == owner.name:
                other = obj.spec.selector
                if other is not None and not other.is_nothing:
                    selector = selector.add(*other.requirements)
                break
    return selector


# ------------------------------------------------------------------------ per-node pod counts


def is_terminating(pod: PodInfo) -> bool:
    """The pod has a deletion timestamp (kube leaves such pods out of spreading counts)."""
    return pod.pod.metadata.deletion_timestamp is not None


class _Tracked:
    __slots__ = ("namespace", "selector", "counts", "last_used", "anchor")

    def __init__(self, namespace: str, selector: Selector, counts: np.ndarray,
                 last_used: int) -> None:
        self.namespace = namespace
        self.selector = selector
        self.counts = counts          # int64, capacity >= number of node slots
        self.last_used = last_used
        self.anchor = _anchor(selector)


_POSITIVE = frozenset({Operator.IN, Operator.EQUALS, Operator.DOUBLE_EQUALS})


def _anchor(selector: Selector) -> tuple[str, tuple[str, ...]] | None:
    """A requirement every matching pod meets by carrying one of a few label values: (key,
    values) of the ``=``/``in`` requirement with the fewest values, None without one. Only
    pods with such a label are tested against the selector."""
    best = None
    for r in selector.requirements:
        if r.operator in _POSITIVE and (best is None or len(r.values) < len(best[1])):
            best = (r.key, r.values)
    return best


class SelectorCounts:
    """Per node, the number of bound, non-terminating pods of a namespace whose labels match a
    selector, for the (namespace, selector) pairs asked for (see the module docstring).

    Registered as a listener of one snapshot (:func:`selector_counts` makes and finds it)."""

    capacity = 512

    def __init__(self, snapshot: NodeSnapshot) -> None:
        self._snapshot = weakref.ref(snapshot)
        self._tracked: dict[tuple[str, Selector], _Tracked] = {}
        self._by_namespace: dict[str, dict[Selector, _Tracked]] = {}
        self._pods_by_namespace: dict[str, dict[str, PodInfo]] = {}
        # the selectors tracked, by (namespace, anchor key, anchor value) (see _anchor), and
        # those without an anchor by namespace; the bound pods by (namespace, key, value), with
        # the label items each was indexed under
        self._anchored: dict[tuple[str, str, str], list[_Tracked]] = {}
        self._unanchored: dict[str, list[_Tracked]] = {}
        self._pods_by_label: dict[tuple[str, str, str], dict[str, PodInfo]] = {}
        self._indexed_labels: dict[str, tuple[str, tuple]] = {}
        self._clock = 0
        self._zeros = np.zeros(0, np.int64)

    # -------------------------------------------------------------------- listener

    def pod_added(self, snapshot: NodeSnapshot, pod: PodInfo, node: int) -> None:
        ns = pod.namespace
        key = pod.key
        self._pods_by_namespace.setdefault(ns, {})[key] = pod
        labels = pod.labels
        items = tuple(labels.items())
        self._indexed_labels[key] = (ns, items)
        by_label = self._pods_by_label
        for k, v in items:
            got = by_label.get((ns, k, v))
            if got is None:
                got = by_label[(ns, k, v)] = {}
            got[key] = pod
        if ns not in self._by_namespace or is_terminating(pod):
            return
        for entry in self._candidates(ns, items):
            if entry.selector.matches(labels):
                if node >= entry.counts.shape[0]:
                    entry.counts = _grown(entry.counts, node + 1)
                entry.counts[node] += 1

    def pod_removed(self, snapshot: NodeSnapshot, pod: PodInfo, node: int) -> None:
        ns = pod.namespace
        key = pod.key
        pods = self._pods_by_namespace.get(ns)
        if pods is not None:
            pods.pop(key, None)
            if not pods:
                del self._pods_by_namespace[ns]
        indexed = self._indexed_labels.pop(key, None)
        if indexed is not None:
            by_label = self._pods_by_label
            for k, v in indexed[1]:
                got = by_label.get((indexed[0], k, v))
                if got is not None:
                    got.pop(key, None)
                    if not got:
                        del by_label[(indexed[0], k, v)]
        if ns not in self._by_namespace or is_terminating(pod):
            return
        labels = pod.labels
        items = indexed[1] if indexed is not None else tuple(labels.items())
        for entry in self._candidates(ns, items):
            if entry.selector.matches(labels):
                entry.counts[node] -= 1

    def _candidates(self, ns: str, items: tuple) -> list[_Tracked]:
        """The tracked selectors of namespace ``ns`` that labels ``items`` may match: those
        anchored on one of the labels, and those without an anchor (each at most once: a
        pod has one value per key)."""
        out = list(self._unanchored.get(ns, ()))
        anchored = self._anchored
        for k, v in items:
            got = anchored.get((ns, k, v))
            if got:
                out += got
        return out

    # ----------------------------------------------------------------------- queries

    @staticmethod
    def counts_nothing(selector: Selector) -> bool:
        """True for the selectors that count no pod: the null selector and ``{}``."""
        return selector.is_nothing or selector.empty

    def counts(self, namespace: str, selector: Selector) -> np.ndarray:
        """int64 counts per node slot (length ``snapshot.num_nodes``). The array belongs to the
        tracker and changes with later binds: copy it to keep it."""
        snapshot = self._snapshot()
        n = snapshot.num_nodes if snapshot is not None else 0
        if self.counts_nothing(selector):
            if self._zeros.shape[0] < n:
                self._zeros = np.zeros(max(n, 2 * self._zeros.shape[0]), np.int64)
            return self._zeros[:n]
        self._clock += 1
        key = (namespace, selector)
        entry = self._tracked.get(key)
        if entry is None:
            entry = _Tracked(namespace, selector, self.recount(namespace, selector, n),
                             self._clock)
            if len(self._tracked) >= self.capacity:
                self._evict()
            self._tracked[key] = entry
            self._by_namespace.setdefault(namespace, {})[selector] = entry
            for slot in self._slots(entry):
                slot.append(entry)
        entry.last_used = self._clock
        if entry.counts.shape[0] < n:
            entry.counts = _grown(entry.counts, n)
        return entry.counts[:n]

    def recount(self, namespace: str, selector: Selector, n: int | None = None) -> np.ndarray:
        """The counts computed from scratch over the bound pods (what tracking must equal)."""
        if n is None:
            snapshot = self._snapshot()
            n = snapshot.num_nodes if snapshot is not None else 0
        out = np.zeros(n, np.int64)
        if self.counts_nothing(selector):
            return out
        anchor = _anchor(selector)
        if anchor is None:
            pods = list(self._pods_by_namespace.get(namespace, {}).values())
        else:  # only the pods carrying one of the anchor's values (one each: no repeats)
            pods = []
            for v in anchor[1]:
                pods += self._pods_by_label.get((namespace, anchor[0], v), {}).values()
        for pod in pods:
            if not is_terminating(pod) and selector.matches(pod.labels):
                out[pod.node] += 1
        return out

    def _slots(self, entry: _Tracked) -> list[list[_Tracked]]:
        """The index lists ``entry`` belongs in (created when missing)."""
        ns = entry.namespace
        if entry.anchor is None:
            return [self._unanchored.setdefault(ns, [])]
        key, values = entry.anchor
        return [self._anchored.setdefault((ns, key, v), []) for v in values]

    def tracked(self) -> list[tuple[str, Selector]]:
        """The (namespace, selector) pairs currently tracked."""
        return list(self._tracked)

    def _evict(self) -> None:
        key = min(self._tracked, key=lambda k: self._tracked[k].last_used)
        entry = self._tracked.pop(key)
        per_ns = self._by_namespace[entry.namespace]
        del per_ns[entry.selector]
        if not per_ns:
            del self._by_namespace[entry.namespace]
        ns = entry.namespace
        if entry.anchor is None:
            self._unanchored[ns].remove(entry)
            if not self._unanchored[ns]:
                del self._unanchored[ns]
        else:
            for v in entry.anchor[1]:
                slot = self._anchored[(ns, entry.anchor[0], v)]
                slot.remove(entry)
                if not slot:
                    del self._anchored[(ns, entry.anchor[0], v)]


def _grown(arr: np.ndarray, need: int) -> np.ndarray:
    out = np.zeros(max(need, 2 * arr.shape[0], 16), arr.dtype)
    out[: arr.shape[0]] = arr
    return out


_TRACKERS: weakref.WeakKeyDictionary[NodeSnapshot, SelectorCounts] = weakref.WeakKeyDictionary()


def selector_counts(snapshot: NodeSnapshot) -> SelectorCounts:
    """The :class:`SelectorCounts` of ``snapshot``, registered as its listener on first use."""
    tracker = _TRACKERS.get(snapshot)
    if tracker is None:
        tracker = _TRACKERS[snapshot] = SelectorCounts(snapshot)
        snapshot.add_listener(tracker)
    return tracker
