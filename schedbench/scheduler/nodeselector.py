"""Label requirements and node selectors compiled to arrays over the snapshot's interned labels.

Every requirement on node labels reduces to three things:

- the label key's column ``k`` in :attr:`NodeSnapshot.labels`,
- a boolean mask over the value ids of that key (``mask[v]``: does a node whose label ``k``
  has value id ``v`` satisfy the requirement?),
- the result when the node has no label ``k``.

``In``/``=``/``==`` mark the listed values; ``NotIn``/``!=`` everything else (absent:
satisfied); ``Exists`` every value; ``DoesNotExist`` none (absent: satisfied); ``Gt``/``Lt``
parse each value of the vocabulary as a base-10 int64 like Go's ``strconv.ParseInt`` (a value
that does not parse never satisfies them, nor does an absent label). ``matchFields`` on
``metadata.name`` use the same machinery over the pseudo label :data:`NODE_NAME_KEY` under
which the snapshot interns node names.

A compiled selector is an OR of terms, each an AND of requirements; it is matched by one
``@njit`` kernel over an array of node indices. As in kube's ``nodeaffinity`` package an empty
term (no expressions, no fields) matches nothing, and so does a selector without terms.

The vocabulary grows as nodes are added, so masks are sized to the vocabulary at compile time;
:func:`match_nodes` notices a grown vocabulary of any key it uses and recompiles (the masks of
single requirements are cached per snapshot and extended incrementally, so that is cheap).
"""

from __future__ import annotations

import weakref
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from numba import njit

from ..model.labels import (
    FieldRequirement,
    NodeSelector,
    NodeSelectorTerm,
    Operator,
    Requirement,
    Selector,
    _parse_int64,
)
from ..model.objects import Pod
from .snapshot import NODE_NAME_KEY, NodeSnapshot

__all__ = [
    "CompiledNodeSelector",
    "compile_node_selector",
    "compile_node_selector_term",
    "pod_required_terms",
    "refresh",
    "compile_pod_node_affinity",
    "compile_selector",
    "compile_terms",
    "match_nodes",
    "match_node",
    "WeightedTerms",
    "compile_weighted_terms",
    "weighted_scores",
]

# A requirement in canonical form: (label key, kind, values). Kinds:
_IN, _NOT_IN, _EXISTS, _NOT_EXISTS, _GT, _LT = range(6)
_KIND = {
    Operator.IN: _IN, Operator.EQUALS: _IN, Operator.DOUBLE_EQUALS: _IN,
    Operator.NOT_IN: _NOT_IN, Operator.NOT_EQUALS: _NOT_IN,
    Operator.EXISTS: _EXISTS, Operator.DOES_NOT_EXIST: _NOT_EXISTS,
    Operator.GREATER_THAN: _GT, Operator.LESS_THAN: _LT,
}
# Result of each kind when the node lacks the label.
_ABSENT = {_IN: False, _NOT_IN: True, _EXISTS: False, _NOT_EXISTS: True, _GT: False, _LT: False}

Canonical = tuple[str, int, tuple[str, ...]]


def _canon_requirement(r: Requirement) -> Canonical:
    return (r.key, _KIND[Operator(r.operator)], tuple(r.values))


def _canon_field(f: FieldRequirement) -> Canonical:
    kind = _IN if Operator(f.operator) is Operator.IN else _NOT_IN
    return (NODE_NAME_KEY, kind, (f.value,))


def _canon_term(term: NodeSelectorTerm) -> tuple[Canonical, ...] | None:
    """A term's requirements; None for the empty term (which matches nothing)."""
    if not term.match_expressions and not term.match_fields:
        return None
    return (tuple(_canon_requirement(r) for r in term.match_expressions)
            + tuple(_canon_field(f) for f in term.match_fields))


# ------------------------------------------------------------------------------ mask cache


class _MaskCache:
    """Per-snapshot masks of single requirements, extended as the key's vocabulary grows."""

    LIMIT = 8192

    def __init__(self) -> None:
        self.masks: dict[tuple[int, int, tuple[str, ...]], np.ndarray] = {}

    def mask(self, snapshot: NodeSnapshot, key_id: int, kind: int,
             values: tuple[str, ...]) -> np.ndarray:
        names = snapshot.vocab.values[key_id].names
        size = len(names)
        ck = (key_id, kind, values)
        old = self.masks.get(ck)
        if old is not None and old.shape[0] == size:
            return old
        start = 0 if old is None else old.shape[0]
        new = np.empty(size - start, np.bool_)
        if kind == _IN or kind == _NOT_IN:
            wanted = set(values)
            positive = kind == _IN
            for i in range(start, size):
                new[i - start] = (names[i] in wanted) == positive
        elif kind == _EXISTS:
            new[:] = True
        elif kind == _NOT_EXISTS:
            new[:] = False
        else:
            bound = _parse_int64(values[0]) if len(values) == 1 else None
            for i in range(start, size):
                number = _parse_int64(names[i]) if bound is not None else None
                if number is None:
                    new[i - start] = False
                elif kind == _GT:
                    new[i - start] = number > bound
                else:
                    new[i - start] = number < bound
        out = new if old is None else np.concatenate((old, new))
        if len(self.masks) >= self.LIMIT:
            self.masks.clear()
        self.masks[ck] = out
        return out


_CACHES: weakref.WeakKeyDictionary[NodeSnapshot, _MaskCache] = weakref.WeakKeyDictionary()


def _cache_of(snapshot: NodeSnapshot) -> _MaskCache:
    c = _CACHES.get(snapshot)
    if c is None:
        c = _CACHES[snapshot] = _MaskCache()
    return c


# -------------------------------------------------------------------------------- compiled


@dataclass(eq=False)
class CompiledNodeSelector:
    """An OR of AND-terms over the snapshot's label columns, ready for :func:`match_nodes`.

    ``terms`` is the canonical source (kept to recompile when the vocabulary grows); the
    arrays are: ``term_ptr[t]..term_ptr[t+1]`` index the requirements of term ``t``;
    ``req_key[r]`` the label column, ``req_absent[r]`` the result for a node without that
    label, ``mask[mask_ptr[r] + v]`` the result for value id ``v``. ``sizes[r]`` is the
    vocabulary size of ``req_key[r]`` the masks were built for.
    """

    terms: tuple[tuple[Canonical, ...], ...]
    term_ptr: np.ndarray
    req_key: np.ndarray
    req_absent: np.ndarray
    mask_ptr: np.ndarray
    mask: np.ndarray
    sizes: np.ndarray
    snapshot_id: int

    @property
    def matches_nothing(self) -> bool:
        """True when there is no (non-empty) term: no node can match."""
        return len(self.terms) == 0

    def stale(self, snapshot: NodeSnapshot) -> bool:
        """Whether the vocabulary of a used key grew since compilation (or another snapshot)."""
        if self.snapshot_id != id(snapshot):
            return True
        values = snapshot.vocab.values
        for r in range(self.req_key.shape[0]):
            if len(values[self.req_key[r]]) != self.sizes[r]:
                return True
        return False


def compile_terms(snapshot: NodeSnapshot,
                  terms: Iterable[Sequence[Canonical]]) -> CompiledNodeSelector:
    """Compile canonical terms (sequences of ``(key, kind, values)``); each term must hold at
    least one requirement. Label keys no node has get a (all absent) column."""
    terms = tuple(tuple(t) for t in terms)
    cache = _cache_of(snapshot)
    term_ptr = np.zeros(len(terms) + 1, np.int64)
    keys: list[int] = []
    absent: list[bool] = []
    masks: list[np.ndarray] = []
    for t, term in enumerate(terms):
        if not term:
            raise ValueError("a compiled term needs at least one requirement")
        for key, kind, values in term:
            k = snapshot.vocab.key_id(key)
            if k < 0 or k >= snapshot.labels.shape[1]:
                k = snapshot.label_key_id(key, create=True)
            keys.append(k)
            absent.append(_ABSENT[kind])
            masks.append(cache.mask(snapshot, k, kind, values))
        term_ptr[t + 1] = len(keys)
    sizes = np.array([m.shape[0] for m in masks], np.int64)
    mask_ptr = np.zeros(len(masks) + 1, np.int64)
    np.cumsum(sizes, out=mask_ptr[1:])
    mask = np.concatenate(masks) if masks else np.zeros(0, np.bool_)
    return CompiledNodeSelector(terms, term_ptr, np.array(keys, np.int64),
                                np.array(absent, np.bool_), mask_ptr, mask, sizes,
                                id(snapshot))


def compile_node_selector(snapshot: NodeSnapshot,
                          node_selector: NodeSelector) -> CompiledNodeSelector:
    """A v1.NodeSelector: terms ORed, each term's expressions and fields ANDed; empty terms are
    dropped (they match nothing), so a selector of empty terms matches no node."""
    terms = [c for c in (_canon_term(t) for t in node_selector.terms) if c is not None]
    return compile_terms(snapshot, terms)


def compile_node_selector_term(snapshot: NodeSnapshot,
                               term: NodeSelectorTerm) -> CompiledNodeSelector:
    """A single term (e.g. a preferred scheduling term's preference); empty matches nothing."""
    c = _canon_term(term)
    return compile_terms(snapshot, [] if c is None else [c])


def compile_selector(snapshot: NodeSnapshot, selector: Selector) -> CompiledNodeSelector | None:
    """A label Selector over node labels (one term). None when it matches every node;
    ``Selector.nothing()`` compiles to a selector without terms."""
    if selector.is_nothing:
        return compile_terms(snapshot, [])
    if selector.empty:
        return None
    return compile_terms(snapshot, [tuple(_canon_requirement(r)
                                          for r in selector.requirements)])


def _map_requirements(node_selector: Mapping[str, str] | None) -> tuple[Canonical, ...]:
    return tuple((k, _IN, (v,)) for k, v in sorted((node_selector or {}).items()))


def pod_required_terms(pod: Pod) -> tuple[tuple[Canonical, ...], ...] | None:
    """kube's ``GetRequiredNodeAffinity(pod)`` as canonical terms: ``spec.nodeSelector`` ANDed
    into every non-empty term of the required node affinity. None means every node matches."""
    base = _map_requirements(pod.spec.node_selector)
    aff = pod.spec.affinity
    required = aff.node_affinity.required if aff and aff.node_affinity else None
    if required is None:
        return (base,) if base else None
    out = []
    for t in required.terms:
        c = _canon_term(t)
        if c is not None:
            out.append(base + c)
    return tuple(out)


def compile_pod_node_affinity(snapshot: NodeSnapshot, pod: Pod) -> CompiledNodeSelector | None:
    """The pod's ``spec.nodeSelector`` AND its required node affinity
    (``nodeaffinity.GetRequiredNodeAffinity(pod).Match(node)``); None matches every node."""
    terms = pod_required_terms(pod)
    if terms is None:
        return None
    return compile_terms(snapshot, terms)


def refresh(snapshot: NodeSnapshot, compiled: CompiledNodeSelector) -> CompiledNodeSelector:
    """``compiled`` itself, or recompiled when the vocabulary of a used key has grown."""
    if compiled.stale(snapshot):
        return compile_terms(snapshot, compiled.terms)
    return compiled


# -------------------------------------------------------------------------------- matching


@njit(cache=True)
def _term_matches(n, t, labels, term_ptr, req_key, req_absent, mask_ptr, mask):
    """Whether node ``n`` satisfies every requirement of term ``t``."""
    for r in range(term_ptr[t], term_ptr[t + 1]):
        v = labels[n, req_key[r]]
        if v < 0:
            if not req_absent[r]:
                return False
        else:
            j = mask_ptr[r] + v
            if j >= mask_ptr[r + 1] or not mask[j]:
                return False
    return True


@njit(cache=True)
def _match(nodes, labels, term_ptr, req_key, req_absent, mask_ptr, mask):
    out = np.zeros(nodes.size, np.bool_)
    n_terms = term_ptr.size - 1
    for i in range(nodes.size):
        n = nodes[i]
        for t in range(n_terms):
            if _term_matches(n, t, labels, term_ptr, req_key, req_absent, mask_ptr, mask):
                out[i] = True
                break
    return out


@njit(cache=True)
def _weighted(nodes, labels, term_ptr, req_key, req_absent, mask_ptr, mask, weights):
    out = np.zeros(nodes.size, np.int64)
    n_terms = term_ptr.size - 1
    for i in range(nodes.size):
        n = nodes[i]
        s = 0
        for t in range(n_terms):
            if _term_matches(n, t, labels, term_ptr, req_key, req_absent, mask_ptr, mask):
                s += weights[t]
        out[i] = s
    return out


def match_nodes(snapshot: NodeSnapshot, compiled: CompiledNodeSelector | None,
                nodes: np.ndarray) -> np.ndarray:
    """Whether each node in ``nodes`` (int64 indices) matches; None matches every node.
    A stale ``compiled`` (grown vocabulary) is recompiled for this call (use :func:`refresh`
    to keep the recompiled version)."""
    nodes = np.ascontiguousarray(nodes, np.int64)
    if compiled is None:
        return np.ones(nodes.size, np.bool_)
    if compiled.matches_nothing:
        return np.zeros(nodes.size, np.bool_)
    compiled = refresh(snapshot, compiled)
    return _match(nodes, snapshot.labels, compiled.term_ptr, compiled.req_key,
                  compiled.req_absent, compiled.mask_ptr, compiled.mask)


def match_node(snapshot: NodeSnapshot, compiled: CompiledNodeSelector | None, node: int) -> bool:
    """:func:`match_nodes` for one node."""
    return bool(match_nodes(snapshot, compiled, np.array([node], np.int64))[0])


# ------------------------------------------------------------------------- weighted terms


@dataclass(eq=False)
class WeightedTerms:
    """Preferred scheduling terms: ``compiled`` holds one term per entry of ``weights``."""

    compiled: CompiledNodeSelector
    weights: np.ndarray

    @property
    def empty(self) -> bool:
        return self.weights.size == 0


def compile_weighted_terms(snapshot: NodeSnapshot,
                           terms: Iterable[tuple[int, NodeSelectorTerm]]) -> WeightedTerms:
    """kube's ``NewPreferredSchedulingTerms``: (weight, preference) pairs; terms of weight 0
    and empty terms are dropped."""
    kept: list[tuple[Canonical, ...]] = []
    weights: list[int] = []
    for weight, term in terms:
        c = _canon_term(term)
        if weight == 0 or c is None:
            continue
        kept.append(c)
        weights.append(int(weight))
    return WeightedTerms(compile_terms(snapshot, kept), np.array(weights, np.int64))


def weighted_scores(snapshot: NodeSnapshot, terms: WeightedTerms,
                    nodes: np.ndarray) -> np.ndarray:
    """int64 per node: the sum of the weights of the terms the node matches
    (``PreferredSchedulingTerms.Score``)."""
    nodes = np.ascontiguousarray(nodes, np.int64)
    if terms.empty:
        return np.zeros(nodes.size, np.int64)
    c = terms.compiled = refresh(snapshot, terms.compiled)
    return _weighted(nodes, snapshot.labels, c.term_ptr, c.req_key, c.req_absent, c.mask_ptr,
                     c.mask, terms.weights)
