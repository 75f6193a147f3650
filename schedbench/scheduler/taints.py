"""A pod's tolerations compiled to arrays, matched against the snapshot's CSR taints.

``v1.Toleration.ToleratesTaint``: a toleration with an effect only tolerates taints of that
effect; one with a key only taints with that key (an empty key with ``Exists`` tolerates every
taint); then ``Exists`` tolerates any value and ``Equal`` exactly its value.

Toleration keys and values are looked up in :attr:`NodeSnapshot.taint_strings` (ids -2 when no
taint carries them, which never equals a taint's id); when new taint strings appear the
compiled tolerations are stale and are recompiled on use.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
from numba import njit

from ..model.objects import Taint, Toleration
from .snapshot import EFFECT_IDS, EFFECT_NAMES, NodeSnapshot

__all__ = [
    "CompiledTolerations",
    "compile_tolerations",
    "untolerated_taints",
    "count_untolerated_taints",
    "first_untolerated_taint",
    "tolerations_tolerate",
]

_ANY = -1      # toleration key/effect: empty, matches every taint
_UNKNOWN = -2  # toleration key/value no taint carries


@dataclass(eq=False)
class CompiledTolerations:
    """Toleration ``i``: ``key[i]`` (taint string id, -1 any), ``exists[i]`` (operator Exists),
    ``value[i]`` (taint string id), ``effect[i]`` (EFFECT_IDS, -1 any)."""

    tolerations: tuple[Toleration, ...]
    key: np.ndarray
    exists: np.ndarray
    value: np.ndarray
    effect: np.ndarray
    strings: int          # len(snapshot.taint_strings) at compile time
    snapshot_id: int

    def stale(self, snapshot: NodeSnapshot) -> bool:
        return self.snapshot_id != id(snapshot) or len(snapshot.taint_strings) != self.strings


def _string_id(snapshot: NodeSnapshot, s: str) -> int:
    i = snapshot.taint_strings.get(s)
    return _UNKNOWN if i < 0 else i


def compile_tolerations(snapshot: NodeSnapshot,
                        tolerations: Iterable[Toleration]) -> CompiledTolerations:
    tols = tuple(tolerations)
    n = len(tols)
    key = np.empty(n, np.int64)
    exists = np.empty(n, np.bool_)
    value = np.empty(n, np.int64)
    effect = np.empty(n, np.int64)
    for i, t in enumerate(tols):
        key[i] = _string_id(snapshot, t.key) if t.key else _ANY
        exists[i] = t.operator == "Exists"
        value[i] = _string_id(snapshot, t.value)
        # an effect that is not a taint effect never matches (validation forbids it anyway)
        effect[i] = EFFECT_IDS.get(t.effect, 99) if t.effect else _ANY
    return CompiledTolerations(tols, key, exists, value, effect, len(snapshot.taint_strings),
                               id(snapshot))


def refresh(snapshot: NodeSnapshot, compiled: CompiledTolerations) -> CompiledTolerations:
    if compiled.stale(snapshot):
        return compile_tolerations(snapshot, compiled.tolerations)
    return compiled


def _effect_mask(effects: Iterable[str]) -> np.ndarray:
    m = np.zeros(len(EFFECT_IDS), np.bool_)
    for e in effects:
        m[EFFECT_IDS[e]] = True
    return m


@njit(cache=True)
def _tolerated(tk, tv, te, key, exists, value, effect):
    for j in range(key.size):
        if effect[j] != -1 and effect[j] != te:
            continue
        if key[j] != -1 and key[j] != tk:
            continue
        if exists[j] or value[j] == tv:
            return True
    return False


@njit(cache=True)
def _count_untolerated(nodes, ptr, t_key, t_value, t_effect, effect_mask, stop_at_first,
                       key, exists, value, effect):
    """Per node: the number of its taints with an effect in ``effect_mask`` that no toleration
    tolerates (at most 1 when ``stop_at_first``)."""
    out = np.zeros(nodes.size, np.int64)
    for i in range(nodes.size):
        n = nodes[i]
        c = 0
        for t in range(ptr[n], ptr[n + 1]):
            if not effect_mask[t_effect[t]]:
                continue
            if not _tolerated(t_key[t], t_value[t], t_effect[t], key, exists, value, effect):
                c += 1
                if stop_at_first:
                    break
        out[i] = c
    return out


def _run(snapshot: NodeSnapshot, compiled: CompiledTolerations, nodes: np.ndarray,
         effects: Iterable[str], first: bool) -> np.ndarray:
    compiled = refresh(snapshot, compiled)
    nodes = np.ascontiguousarray(nodes, np.int64)
    ptr, t_key, t_value, t_effect = snapshot.taint_arrays
    return _count_untolerated(nodes, ptr, t_key, t_value, t_effect, _effect_mask(effects),
                              first, compiled.key, compiled.exists, compiled.value,
                              compiled.effect)


def untolerated_taints(snapshot: NodeSnapshot, compiled: CompiledTolerations,
                       nodes: np.ndarray, effects: Iterable[str]) -> np.ndarray:
    """bool per node: the node has a taint with one of ``effects`` (effect names) that no
    toleration tolerates."""
    return _run(snapshot, compiled, nodes, effects, True) > 0


def count_untolerated_taints(snapshot: NodeSnapshot, compiled: CompiledTolerations,
                             nodes: np.ndarray, effects: Iterable[str]) -> np.ndarray:
    """int64 per node: how many of its taints with one of ``effects`` no toleration
    tolerates (TaintToleration's PreferNoSchedule score)."""
    return _run(snapshot, compiled, nodes, effects, False)


def tolerations_tolerate(tolerations: Iterable[Toleration], taint: Taint) -> bool:
    """v1helper.TolerationsTolerateTaint on model objects."""
    return any(t.tolerates(taint) for t in tolerations)


def first_untolerated_taint(snapshot: NodeSnapshot, compiled: CompiledTolerations, node: int,
                            effects: Iterable[str]) -> Taint | None:
    """v1helper.FindMatchingUntoleratedTaint: the first of the node's taints (in spec order)
    with one of ``effects`` that no toleration tolerates, or None."""
    wanted = set(effects)
    for taint in snapshot.nodes[node].spec.taints:
        if taint.effect in wanted and not tolerations_tolerate(compiled.tolerations, taint):
            return taint
    return None


EFFECTS = tuple(EFFECT_NAMES[i] for i in range(len(EFFECT_NAMES)))
