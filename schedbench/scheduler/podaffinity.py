"""Inter-pod (anti-)affinity terms, compiled, and the bound pods indexed by them.

kube-scheduler turns every ``PodAffinityTerm`` into an ``AffinityTerm``: a label selector, a set
of namespaces, a namespace selector and a topology key. schedbench does the same with
:class:`Term` (hashable, so that the identical terms of the replicas of one workload are one
dictionary key), built by :func:`compile_pod_terms`:

- ``labelSelector``: a null selector matches nothing, ``{}`` matches everything.
  ``matchLabelKeys`` / ``mismatchLabelKeys`` are merged into it from the labels *of the pod
  carrying the term* (``key in (value)`` / ``key notin (value)``, keys the pod lacks are
  skipped, nothing is merged into a null selector). In Kubernetes the API server does this once,
  when the pod is created (``mutatePodAffinity`` in the pod registry strategy; the scheduler
  only ever sees merged selectors); schedbench pods never pass an API server, so it happens here,
  when a pod's terms are first compiled. Merging twice adds the same requirements again, which
  changes no match, so manifests exported from a live cluster give the same results.
- namespaces: the listed ones; the pod's own namespace when the list is empty and
  ``namespaceSelector`` is null. ``namespaceSelector`` null matches no namespace, ``{}`` every
  namespace, otherwise namespaces by their labels.
- A term matches a pod when (its namespace is listed, or the namespace selector matches the
  labels of the pod's namespace) and the label selector matches the pod's labels.

The *incoming* pod's terms have their namespace selector resolved against the Namespace objects
first (:func:`resolve_namespaces`, kube's ``mergeAffinityTermNamespacesIfNotEmpty``): a selector
other than ``{}`` and null is replaced by the names of the namespaces it selects, and the
existing pods are then matched without looking at their namespaces' labels. A pod in a namespace
that has no Namespace object is therefore only matched by name (or by ``{}``). Terms of existing
pods are matched against the incoming pod with the labels of the incoming pod's namespace
(empty when it has no Namespace object).

:class:`AffinityIndex` is a snapshot listener that keeps, as pods are bound and removed:

- the bound pods grouped by *label class* (namespace + labels; the replicas of a workload share
  one), per class the number of its pods on each node (counted from the first incoming pod
  with affinity terms on: before one comes, nothing reads them);
- per distinct required anti-affinity term of bound pods, the number of bound pods carrying it
  on each node (InterPodAffinity's PreFilter asks which of them match the incoming pod);
- per distinct required affinity term and per distinct preferred (anti-)affinity term with its
  signed weight, the same (for PreScore's symmetric terms).

Per incoming pod the plugin tests each distinct term (or each label class) once, and turns the
matching groups into counts per topology domain with :func:`accumulate_domains`, a Numba kernel
over the groups' per-node counts; a topology domain is the value id of the term's topology key on
the node (``snapshot.labels``).
"""

from __future__ import annotations

import weakref
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace

import numpy as np
from numba import njit

from ..model.labels import Operator, Requirement, Selector
from ..model.objects import Pod, PodAffinityTerm
from .snapshot import NodeSnapshot, PodInfo

_CACHE_KEY = "InterPodAffinity.terms"
_EMPTY: dict[str, str] = {}


@dataclass(frozen=True, slots=True)
class Term:
    """A compiled PodAffinityTerm (kube's ``AffinityTerm``)."""

    selector: Selector
    namespaces: frozenset[str]
    namespace_selector: Selector
    topology_key: str

    def matches(self, namespace: str, labels: Mapping[str, str],
                namespace_labels: Mapping[str, str]) -> bool:
        """``AffinityTerm.Matches``: namespace listed or selected, then the label selector."""
        if namespace in self.namespaces or self.namespace_selector.matches(namespace_labels):
            return self.selector.matches(labels)
        return False


@dataclass(frozen=True, slots=True)
class PodTerms:
    """A pod's compiled terms: required affinity and anti-affinity, preferred ones with their
    weights."""

    required_affinity: tuple[Term, ...] = ()
    required_anti_affinity: tuple[Term, ...] = ()
    preferred_affinity: tuple[tuple[Term, int], ...] = ()
    preferred_anti_affinity: tuple[tuple[Term, int], ...] = ()

    @property
    def empty(self) -> bool:
        return not (self.required_affinity or self.required_anti_affinity
                    or self.preferred_affinity or self.preferred_anti_affinity)


NO_TERMS = PodTerms()


def compile_term(term: PodAffinityTerm, namespace: str, labels: Mapping[str, str]) -> Term:
    """Compile one term of a pod in ``namespace`` with ``labels`` (see the module docstring)."""
    selector = term.label_selector
    if selector is None or selector.is_nothing:
        selector = Selector.nothing()
    elif term.match_label_keys or term.mismatch_label_keys:
        extra = [Requirement(k, Operator.IN, (labels[k],))
                 for k in term.match_label_keys if k in labels]
        extra += [Requirement(k, Operator.NOT_IN, (labels[k],))
                  for k in term.mismatch_label_keys if k in labels]
        if extra:
            selector = selector.add(*extra)
    if not term.namespaces and term.namespace_selector is None:
        namespaces = frozenset((namespace,))
    else:
        namespaces = frozenset(term.namespaces)
    ns_selector = Selector.nothing() if term.namespace_selector is None \
        else term.namespace_selector
    return Term(selector, namespaces, ns_selector, term.topology_key)


def compile_pod_terms(pod: Pod) -> PodTerms:
    """All (anti-)affinity terms of ``pod``, compiled."""
    affinity = pod.spec.affinity
    if affinity is None or (affinity.pod_affinity is None
                            and affinity.pod_anti_affinity is None):
        return NO_TERMS
    ns = pod.metadata.namespace
    labels = pod.metadata.labels

    def required(a) -> tuple[Term, ...]:
        return () if a is None else tuple(compile_term(t, ns, labels) for t in a.required)

    def preferred(a) -> tuple[tuple[Term, int], ...]:
        return () if a is None else tuple(
            (compile_term(w.pod_affinity_term, ns, labels), int(w.weight)) for w in a.preferred)

    return PodTerms(required(affinity.pod_affinity), required(affinity.pod_anti_affinity),
                    preferred(affinity.pod_affinity), preferred(affinity.pod_anti_affinity))


def pod_terms(pod: PodInfo) -> PodTerms:
    """The compiled terms of a pod, cached in ``pod.cache``."""
    terms = pod.cache.get(_CACHE_KEY)
    if terms is None:
        terms = pod.cache[_CACHE_KEY] = compile_pod_terms(pod.pod)
    return terms


def resolve_namespaces(term: Term, namespace_labels: Mapping[str, Mapping[str, str]]) -> Term:
    """kube's ``mergeAffinityTermNamespacesIfNotEmpty`` for a term of the incoming pod: unless
    its namespace selector is ``{}`` (every namespace, kept as it is) or null, add the names of
    the namespaces (``namespace_labels``: name -> labels of the Namespace objects) it selects to
    the term's namespaces and make the selector match nothing."""
    sel = term.namespace_selector
    if sel.empty or sel.is_nothing:
        return term
    selected = {name for name, labels in namespace_labels.items() if sel.matches(labels)}
    return replace(term, namespaces=term.namespaces | selected,
                   namespace_selector=Selector.nothing())


# ------------------------------------------------------------------------------ the index


class NodeCounts:
    """How many of something (pods of a label class, carriers of a term) each node holds, with
    the (nodes, counts) arrays the kernels read rebuilt lazily after a change."""

    __slots__ = ("by_node", "_arrays")

    def __init__(self) -> None:
        self.by_node: dict[int, int] = {}
        self._arrays: tuple[np.ndarray, np.ndarray] | None = None

    def add(self, node: int, delta: int) -> None:
        c = self.by_node.get(node, 0) + delta
        if c:
            self.by_node[node] = c
        else:
            del self.by_node[node]
        self._arrays = None

    def __bool__(self) -> bool:
        return bool(self.by_node)

    def arrays(self) -> tuple[np.ndarray, np.ndarray]:
        if self._arrays is None:
            n = len(self.by_node)
            self._arrays = (np.fromiter(self.by_node.keys(), np.int64, n),
                            np.fromiter(self.by_node.values(), np.int64, n))
        return self._arrays


HARD = 0       # an existing pod's required affinity term (weighted by hardPodAffinityWeight)
PREFERRED = 1  # an existing pod's preferred term, with its signed weight


class AffinityIndex:
    """Bound pods by label class and by (anti-)affinity term, kept up to date as a snapshot
    listener (see the module docstring). ``version`` counts the changes."""

    def __init__(self) -> None:
        self.version = 0
        self._class_ids: dict[tuple[str, frozenset], int] = {}
        self.class_namespace: list[str] = []
        self.class_labels: list[dict[str, str]] = []
        self.class_nodes: list[NodeCounts] = []
        #: distinct required anti-affinity terms of bound pods -> carriers per node
        self.anti_terms: dict[Term, NodeCounts] = {}
        #: (term, HARD, 0) and (term, PREFERRED, signed weight) -> carriers per node
        self.score_terms: dict[tuple[Term, int, int], NodeCounts] = {}
        # incoming-pod term -> [classes examined, matching class ids]
        self._class_matches: dict[Term, list] = {}
        # the label classes are only read for incoming pods with affinity terms, and many
        # runs have none: they are counted from the snapshot's bound pods on the first read,
        # and kept up to date from then on
        self._snapshot: weakref.ref | None = None
        self._classes_live = False

    @property
    def class_ids(self) -> dict[tuple[str, frozenset], int]:
        """(namespace, labels) -> label class id."""
        self._classify()
        return self._class_ids

    # --------------------------------------------------------------------- listener

    def pod_added(self, snapshot: NodeSnapshot, pod: PodInfo, node: int) -> None:
        if self._snapshot is None:
            self._snapshot = weakref.ref(snapshot)
        self._update(pod, node, 1)

    def pod_removed(self, snapshot: NodeSnapshot, pod: PodInfo, node: int) -> None:
        self._update(pod, node, -1)

    def _class_of(self, namespace: str, labels: Mapping[str, str]) -> int:
        key = (namespace, frozenset(labels.items()))
        c = self._class_ids.get(key)
        if c is None:
            c = self._class_ids[key] = len(self.class_namespace)
            self.class_namespace.append(namespace)
            self.class_labels.append(dict(labels))
            self.class_nodes.append(NodeCounts())
        return c

    def _classify(self) -> None:
        """Start counting pods by label class (on the first read): the snapshot's bound pods."""
        if self._classes_live:
            return
        self._classes_live = True
        snapshot = self._snapshot() if self._snapshot is not None else None
        for pod in snapshot.pods.values() if snapshot is not None else ():
            self._count_class(pod, pod.node, 1)

    def _count_class(self, pod: PodInfo, node: int, delta: int) -> None:
        labels = pod.labels
        got = pod.cache.get("affinity_class")  # (kept while the pod's labels are the same)
        if got is None or got[0] is not self or got[1] is not labels:
            got = pod.cache["affinity_class"] = (self, labels,
                                                 self._class_of(pod.namespace, labels))
        self.class_nodes[got[2]].add(node, delta)

    def _update(self, pod: PodInfo, node: int, delta: int) -> None:
        self.version += 1
        if self._classes_live:
            self._count_class(pod, node, delta)
        terms = pod_terms(pod)
        if terms is NO_TERMS:
            return
        for t in terms.required_anti_affinity:
            _bump(self.anti_terms, t, node, delta)
        for t in terms.required_affinity:
            _bump(self.score_terms, (t, HARD, 0), node, delta)
        for t, w in terms.preferred_affinity:
            _bump(self.score_terms, (t, PREFERRED, w), node, delta)
        for t, w in terms.preferred_anti_affinity:
            _bump(self.score_terms, (t, PREFERRED, -w), node, delta)

    # ---------------------------------------------------------------------- queries

    def matching_classes(self, term: Term) -> list[int]:
        """Label classes matched by a resolved term of an incoming pod (no namespace labels are
        looked at: see :func:`resolve_namespaces`). Memoised per term; classes that appeared
        since are examined on the next call."""
        self._classify()
        entry = self._class_matches.get(term)
        if entry is None:
            entry = self._class_matches[term] = [0, []]
        n = len(self.class_namespace)
        if entry[0] < n:
            for c in range(entry[0], n):
                if term.matches(self.class_namespace[c], self.class_labels[c], _EMPTY):
                    entry[1].append(c)
            entry[0] = n
        return entry[1]

    def populated(self, classes: Iterable[int]) -> list[NodeCounts]:
        self._classify()
        return [g for g in (self.class_nodes[c] for c in classes) if g]


_INDEXES: weakref.WeakKeyDictionary[NodeSnapshot, AffinityIndex] = weakref.WeakKeyDictionary()


def affinity_index(snapshot: NodeSnapshot) -> AffinityIndex:
    """The snapshot's :class:`AffinityIndex`, registered as its listener on first use (one per
    snapshot, shared by every InterPodAffinity instance over it)."""
    index = _INDEXES.get(snapshot)
    if index is None:
        index = _INDEXES[snapshot] = AffinityIndex()
        snapshot.add_listener(index)
    return index


def _bump(table: dict, key, node: int, delta: int) -> None:
    g = table.get(key)
    if g is None:
        g = table[key] = NodeCounts()
    g.add(node, delta)
    if not g:
        del table[key]


def recount(snapshot: NodeSnapshot) -> AffinityIndex:
    """A fresh index of the snapshot's bound pods (what the incremental one must equal)."""
    index = AffinityIndex()
    for pod in snapshot.pods.values():
        index.pod_added(snapshot, pod, pod.node)
    return index


def index_contents(index: AffinityIndex) -> dict:
    """The index as plain data, empty entries dropped (to compare two indexes)."""
    classes = {}
    for key, c in index.class_ids.items():  # (starts the class counts if need be)
        if index.class_nodes[c]:
            classes[key] = dict(index.class_nodes[c].by_node)
    return {"classes": classes,
            "anti": {t: dict(g.by_node) for t, g in index.anti_terms.items()},
            "score": {k: dict(g.by_node) for k, g in index.score_terms.items()}}


# ----------------------------------------------------------------------------- domains


class Segments:
    """Groups of (node, count) to add into a domain table ``out[table, slot, value]`` with a
    multiplier, where ``value`` is the node's value of label column ``col``."""

    def __init__(self) -> None:
        self.nodes: list[np.ndarray] = []
        self.counts: list[np.ndarray] = []
        self.meta: list[tuple[int, int, int, int]] = []  # (col, table, slot, multiplier)

    def add(self, group: NodeCounts, col: int, table: int, slot: int, mult: int) -> None:
        if col < 0 or not group:
            return
        n, c = group.arrays()
        self.nodes.append(n)
        self.counts.append(c)
        self.meta.append((col, table, slot, mult))

    def accumulate(self, labels: np.ndarray, out: np.ndarray) -> int:
        """Add every group into ``out``; returns how many counted items sat on a node that has
        the label (kube's "processed terms" for PreScore's Skip)."""
        if not self.meta:
            return 0
        ptr = np.zeros(len(self.nodes) + 1, np.int64)
        np.cumsum([a.size for a in self.nodes], out=ptr[1:])
        meta = np.array(self.meta, np.int64)
        return int(_accumulate(labels, ptr, np.concatenate(self.nodes),
                               np.concatenate(self.counts), np.ascontiguousarray(meta[:, 0]),
                               np.ascontiguousarray(meta[:, 1]), np.ascontiguousarray(meta[:, 2]),
                               np.ascontiguousarray(meta[:, 3]), out))


@njit(cache=True)
def _accumulate(labels, ptr, nodes, counts, seg_col, seg_table, seg_slot, seg_mult, out):
    width = out.shape[2]
    hits = 0
    for s in range(seg_col.size):
        col = seg_col[s]
        t = seg_table[s]
        slot = seg_slot[s]
        mult = seg_mult[s]
        for i in range(ptr[s], ptr[s + 1]):
            v = labels[nodes[i], col]
            if 0 <= v < width:
                out[t, slot, v] += mult * counts[i]
                hits += counts[i]
    return hits


def accumulate_domains(snapshot: NodeSnapshot, segments: Segments, out: np.ndarray) -> int:
    """Public wrapper of the accumulation kernel: ``out`` is int64 ``[tables, slots, width]``."""
    if out.dtype != np.int64 or out.ndim != 3:
        raise ValueError("out must be an int64 array of shape (tables, slots, width)")
    return segments.accumulate(snapshot.labels, out)


@njit(cache=True)
def _filter_reasons(nodes, labels, table, aff_cols, aff_slots, allow_self, anti_cols,
                    anti_slots, ex_cols, ex_slots):
    """Per node: 0 fits, 1 the pod's affinity fails, 2 its anti-affinity fails, 3 an existing
    pod's anti-affinity fails (kube's order). ``table[0]`` existing anti-affinity counts,
    ``table[1]`` affinity counts, ``table[2]`` anti-affinity counts, by [slot, value]."""
    width = table.shape[2]
    out = np.zeros(nodes.size, np.int8)
    for i in range(nodes.size):
        n = nodes[i]
        exist = True
        lacking = False
        for j in range(aff_cols.size):
            c = aff_cols[j]
            v = labels[n, c] if c >= 0 else -1
            if v < 0:
                lacking = True
                break
            if v >= width or table[1, aff_slots[j], v] <= 0:
                exist = False
        if lacking or not (exist or allow_self):
            out[i] = 1
            continue
        for j in range(anti_cols.size):
            c = anti_cols[j]
            if c >= 0:
                v = labels[n, c]
                if 0 <= v < width and table[2, anti_slots[j], v] > 0:
                    out[i] = 2
                    break
        if out[i] != 0:
            continue
        for j in range(ex_cols.size):
            c = ex_cols[j]
            if c >= 0:
                v = labels[n, c]
                if 0 <= v < width and table[0, ex_slots[j], v] > 0:
                    out[i] = 3
                    break
    return out


@njit(cache=True)
def _domain_scores(nodes, labels, cols, table):
    """Per node: the sum over slots of ``table[slot, value of the node's label cols[slot]]``."""
    width = table.shape[1]
    out = np.zeros(nodes.size, np.int64)
    for i in range(nodes.size):
        n = nodes[i]
        s = 0
        for j in range(cols.size):
            c = cols[j]
            if c >= 0:
                v = labels[n, c]
                if 0 <= v < width:
                    s += table[j, v]
        out[i] = s
    return out


def filter_reasons(snapshot: NodeSnapshot, nodes: np.ndarray, table: np.ndarray,
                   aff_cols: np.ndarray, aff_slots: np.ndarray, allow_self: bool,
                   anti_cols: np.ndarray, anti_slots: np.ndarray, ex_cols: np.ndarray,
                   ex_slots: np.ndarray) -> np.ndarray:
    """Validated wrapper of the filter kernel (see :func:`_filter_reasons`)."""
    nodes = np.ascontiguousarray(nodes, np.int64)
    if table.dtype != np.int64 or table.ndim != 3 or table.shape[0] != 3:
        raise ValueError("table must be int64 of shape (3, slots, width)")
    return _filter_reasons(nodes, snapshot.labels, table, aff_cols, aff_slots, bool(allow_self),
                           anti_cols, anti_slots, ex_cols, ex_slots)


def domain_scores(snapshot: NodeSnapshot, nodes: np.ndarray, cols: np.ndarray,
                  table: np.ndarray) -> np.ndarray:
    """Validated wrapper of the score kernel: ``table`` is int64 ``[len(cols), width]``."""
    nodes = np.ascontiguousarray(nodes, np.int64)
    if table.dtype != np.int64 or table.ndim != 2 or table.shape[0] != cols.size:
        raise ValueError("table must be int64 of shape (len(cols), width)")
    return _domain_scores(nodes, snapshot.labels, cols, table)


def affinity_term_matches(term, owner: PodInfo, pod: PodInfo,
                           ns_labels: dict[str, dict[str, str]]) -> bool:
    """AffinityTerm.Matches: ``pod`` is in the term's namespaces (the owner's namespace when
    neither namespaces nor a namespace selector are given) and its labels match the selector
    (with matchLabelKeys / mismatchLabelKeys taken from the owner's labels)."""
    if term.namespaces or term.namespace_selector is not None:
        in_ns = pod.namespace in term.namespaces or (
            term.namespace_selector is not None
            and term.namespace_selector.matches(ns_labels.get(pod.namespace, {})))
    else:
        in_ns = pod.namespace == owner.namespace
    if not in_ns or term.label_selector is None:
        return False
    labels = pod.labels
    if not term.label_selector.matches(labels):
        return False
    own = owner.labels
    for key in term.match_label_keys:
        if key in own and labels.get(key) != own[key]:
            return False
    for key in term.mismatch_label_keys:
        if key in own and key in labels and labels[key] == own[key]:
            return False
    return True
