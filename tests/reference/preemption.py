"""Plain-Python reference of kube-scheduler v1.35's preemption (DefaultPreemption) for a
profile whose only filter is NodeResourcesFit, on the model objects, node by node.

Written from the rules, sharing nothing with the scheduler's code: requests are summed here per
node from the pods' effective requests, fitting is ``requested + request <= allocatable`` for
every requested resource plus a pod slot, the filter statuses, the candidate walk, the reprieve
loop, the choice among candidates and the messages are all recomputed from scratch.

- ``fit_reasons`` - NodeResourcesFit's reasons ("Too many pods", "Insufficient <resource>")
- ``node_tree_order`` - nodes zone by zone in round robin (zones in order of first appearance)
- ``select_victims`` - SelectVictimsOnNode
- ``pick_one`` - pickOneNodeForPreemption
- ``preempt`` - the whole PostFilter: (nominated node, victims, message)
"""

from __future__ import annotations

import math
from datetime import datetime

UNSCHEDULABLE, UNRESOLVABLE = 2, 3
NO_VICTIMS = "No preemption victims found for incoming pod"
NOT_HELPFUL = "Preemption is not helpful for scheduling"
_FIRST = ("cpu", "memory", "ephemeral-storage")


def start_time(pod) -> float:
    """Seconds since the epoch; a pod that has not started counts as the latest."""
    s = pod.status.start_time
    if not s:
        return math.inf
    if s.endswith("Z"):
        s = s[:-1] + "+00:00"
    return datetime.fromisoformat(s).timestamp()


def fit_reasons(node, pods_on_node: list, pod) -> list[str]:
    """Why ``pod`` does not fit ``node`` already running ``pods_on_node`` ([] if it fits)."""
    alloc = node.allocatable
    reasons = []
    if len(pods_on_node) + 1 > alloc.get("pods", 0):
        reasons.append("Too many pods")
    used: dict[str, int] = {}
    for p in pods_on_node:
        for r, q in p.requests().items():
            used[r] = used.get(r, 0) + q
    short = [r for r, q in pod.requests().items()
             if r != "pods" and q > 0 and q > alloc.get(r, 0) - used.get(r, 0)]
    ordered = [r for r in _FIRST if r in short] + sorted(r for r in short if r not in _FIRST)
    reasons += [f"Insufficient {r}" for r in ordered]
    return reasons


def node_tree_order(nodes: list) -> list:
    """Nodes zone by zone, one from each zone in turn (zone = region + zone labels, the
    deprecated beta labels first as kube reads them)."""
    zones: dict[str, list] = {}
    for n in nodes:
        lb = n.metadata.labels
        # kube's GetZoneKey: the failure-domain.beta labels win over topology.kubernetes.io
        region = lb.get("failure-domain.beta.kubernetes.io/region",
                        lb.get("topology.kubernetes.io/region", ""))
        zone = lb.get("failure-domain.beta.kubernetes.io/zone",
                      lb.get("topology.kubernetes.io/zone", ""))
        key = (region, zone)
        zones.setdefault(key, []).append(n)
    out = []
    for i in range(max((len(v) for v in zones.values()), default=0)):
        for v in zones.values():
            if i < len(v):
                out.append(v[i])
    return out


def select_victims(node, pods_on_node: list, pod, priority) -> tuple[list | None, int, list]:
    """(victims or None, status code, reasons) for preempting on ``node``."""
    lower = [p for p in pods_on_node if priority(p) < priority(pod)]
    if not lower:
        return None, UNRESOLVABLE, [NO_VICTIMS]
    kept = [p for p in pods_on_node if priority(p) >= priority(pod)]
    why = fit_reasons(node, kept, pod)
    if why:
        return None, UNSCHEDULABLE, why
    # most important first: higher priority, then earlier start; node order on ties
    ranked = sorted(lower, key=lambda p: (-priority(p), start_time(p)))
    victims = []
    for p in ranked:
        if fit_reasons(node, kept + [p], pod):
            victims.append(p)
        else:
            kept.append(p)
    return victims, 0, []


def pick_one(candidates: list[tuple], priority) -> tuple:
    """Among (node, victims) candidates (victims most important first)."""
    def highest(c):
        return -priority(c[1][0])

    def total(c):
        return -sum(priority(v) + 2 ** 31 for v in c[1])

    def count(c):
        return -len(c[1])

    def latest_start(c):
        top = max(priority(v) for v in c[1])
        return min(start_time(v) for v in c[1] if priority(v) == top)

    pool = list(candidates)
    for f in (highest, total, count, latest_start):  # (no PDBs: no violations anywhere)
        best = max(f(c) for c in pool)
        pool = [c for c in pool if f(c) == best]
        if len(pool) == 1:
            break
    return pool[0]


def histogram_message(num_nodes: int, reasons_by_node: list[list[str]],
                      absent_reason: str | None, num_absent: int) -> str:
    counts: dict[str, int] = {}
    for rs in reasons_by_node:
        for r in rs:
            counts[r] = counts.get(r, 0) + 1
    if absent_reason and num_absent:
        counts[absent_reason] = counts.get(absent_reason, 0) + num_absent
    parts = sorted(f"{v} {k}" for k, v in counts.items())
    msg = f"0/{num_nodes} nodes are available:"
    if parts:
        msg += " " + ", ".join(parts) + "."
    return msg


def num_candidates(n: int, percentage: int, absolute: int) -> int:
    return min(max(n * percentage // 100, absolute), n)


def never_fits(node, pod) -> bool:
    """NodeResourcesFit's UnschedulableAndUnresolvable: the pod requests more of a resource
    than the node's whole allocatable (no eviction can help)."""
    alloc = node.allocatable
    return any(r != "pods" and q > 0 and q > alloc.get(r, 0) for r, q in pod.requests().items())


def preempt(nodes: list, bound: dict[str, list], pod, priority, offset: int,
            percentage: int = 10, absolute: int = 100):
    """The PostFilter of ``pod`` on nodes that all reject it for resources: (nominated node
    name or None, victim keys, message without the "preemption: " prefix). Only nodes that
    reject it as Unschedulable (not :func:`never_fits`) are potential ones; ``offset`` indexes
    them. ``bound``: node name -> pods on it, in node order."""
    order = [n for n in node_tree_order(nodes) if not never_fits(n, pod)]
    if not order:
        return None, [], histogram_message(len(nodes), [], NOT_HELPFUL, len(nodes))
    want = num_candidates(len(order), percentage, absolute)
    candidates = []
    failed: dict[str, list[str]] = {}
    for i in range(len(order)):
        node = order[(offset + i) % len(order)]
        victims, code, why = select_victims(node, bound.get(node.metadata.name, []), pod,
                                            priority)
        if victims:
            if len(candidates) < want:  # room for ``want`` candidates only
                candidates.append((node.metadata.name, victims))
            if candidates and len(candidates) >= want:
                break
        else:
            failed[node.metadata.name] = why
    if not candidates:
        return None, [], histogram_message(len(nodes), list(failed.values()), NOT_HELPFUL,
                                           len(nodes) - len(failed))
    name, victims = candidates[0] if len(candidates) == 1 else pick_one(candidates, priority)
    return name, [v.key for v in victims], ""
