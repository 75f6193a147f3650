"""Plain-Python reference of PodTopologySpread (kube-scheduler v1.35) and the legacy
SelectorSpread, working on the model objects directly: a list of nodes, the pods bound to
them (``spec.nodeName``), Services and ReplicaSets. No numpy, no snapshot, nothing shared with
the implementation under test; written for clarity, with kube's maps keyed by label value.

Results:

- :func:`filter_verdicts`: ``None`` when PreFilter skips, else ``{node: (code, reason)}`` with
  code 0 (Success, reason ''), 2 (Unschedulable) or 3 (UnschedulableAndUnresolvable).
- :func:`normalized_scores`: ``None`` when PreScore skips, else ``{node: score}`` after
  NormalizeScore, for the given filtered nodes.
- :func:`selector_spread_scores`: the same for SelectorSpread.
"""

from __future__ import annotations

import math

from schedbench.model.labels import Operator, Requirement, Selector

REASON = "node(s) didn't match pod topology spread constraints"
REASON_LABEL = "node(s) didn't match pod topology spread constraints (missing required label)"
HOSTNAME = "kubernetes.io/hostname"
SYSTEM_DEFAULTS = (
    {"max_skew": 3, "topology_key": "kubernetes.io/hostname",
     "when_unsatisfiable": "ScheduleAnyway"},
    {"max_skew": 5, "topology_key": "topology.kubernetes.io/zone",
     "when_unsatisfiable": "ScheduleAnyway"},
)
MAX_INT32 = 2147483647


# ----------------------------------------------------------------------------- Go numerics


def go_log(x: float) -> float:
    """Go's math.Log: frexp reduction, then the FreeBSD e_log.c polynomial."""
    lg1 = 6.666666666666735130e-01
    lg2 = 3.999999999940941908e-01
    lg3 = 2.857142874366239149e-01
    lg4 = 2.222219843214978396e-01
    lg5 = 1.818357216161805012e-01
    lg6 = 1.531383769920937332e-01
    lg7 = 1.479819860511658591e-01
    frac, exp = math.frexp(float(x))
    if frac < 7.07106781186547524401e-01:
        frac = frac * 2
        exp = exp - 1
    f = frac - 1
    k = float(exp)
    s = f / (2 + f)
    s2 = s * s
    s4 = s2 * s2
    t1 = s2 * (lg1 + s4 * (lg3 + s4 * (lg5 + s4 * lg7)))
    t2 = s4 * (lg2 + s4 * (lg4 + s4 * lg6))
    big_r = t1 + t2
    hfsq = 0.5 * f * f
    return k * 6.93147180369123816490e-01 - (
        (hfsq - (s * (hfsq + big_r) + k * 1.90821492927058770002e-10)) - f)


def go_round(x: float) -> int:
    """Go's math.Round for x >= 0 (half away from zero), exactly."""
    whole = math.floor(x)
    return int(whole) + (1 if x - whole >= 0.5 else 0)


# ------------------------------------------------------------------------------- selectors


def everything_selector_is_empty(sel: Selector) -> bool:
    return not sel.is_nothing and len(sel.requirements) == 0


def pod_default_selector(pod, services, replica_sets) -> Selector:
    """helper.DefaultSelector over Services and ReplicaSets."""
    merged = {}
    for svc in services:
        if svc.metadata.namespace != pod.metadata.namespace or svc.spec.selector is None:
            continue
        ok = True
        for k, v in svc.spec.selector.items():
            if pod.metadata.labels.get(k) != v:
                ok = False
        if ok:
            for k, v in svc.spec.selector.items():
                merged[k] = v
    reqs = [Requirement(k, Operator.EQUALS, (v,)) for k, v in merged.items()]
    owner = None
    for ref in pod.metadata.owner_references:
        if ref.controller:
            owner = ref
            break
    if owner is not None and owner.api_version == "apps/v1" and owner.kind == "ReplicaSet":
        for rs in replica_sets:
            if rs.metadata.namespace == pod.metadata.namespace and \
                    rs.metadata.name == owner.name:
                if not rs.spec.selector.is_nothing:
                    reqs.extend(rs.spec.selector.requirements)
                break
    return Selector(reqs)


def constraints_of(pod, action, defaults, services, replica_sets) -> list[dict]:
    """The pod's constraints for ``action``, parsed (kube's filterTopologySpreadConstraints /
    buildDefaultConstraints). ``defaults`` are dicts or TopologySpreadDefault objects."""
    out = []
    own = pod.spec.topology_spread_constraints
    if own:
        for c in own:
            if c.when_unsatisfiable != action:
                continue
            sel = c.label_selector if c.label_selector is not None else Selector.nothing()
            if c.match_label_keys and not sel.is_nothing:
                extra = [Requirement(k, Operator.EQUALS, (pod.metadata.labels[k],))
                         for k in c.match_label_keys if k in pod.metadata.labels]
                if extra:
                    sel = Selector(list(sel.requirements) + extra)
            out.append({"max_skew": c.max_skew, "key": c.topology_key, "selector": sel,
                        "min_domains": 1 if c.min_domains is None else c.min_domains,
                        "affinity": c.node_affinity_policy or "Honor",
                        "taints": c.node_taints_policy or "Ignore"})
        return out
    picked = []
    for d in defaults:
        get = (lambda name, d=d: d.get(name)) if isinstance(d, dict) else \
            (lambda name, d=d: getattr(d, name))
        if get("when_unsatisfiable") == action:
            picked.append({"max_skew": get("max_skew"), "key": get("topology_key"),
                           "min_domains": get("min_domains") or 1,
                           "affinity": get("node_affinity_policy") or "Honor",
                           "taints": get("node_taints_policy") or "Ignore"})
    if not picked:
        return []
    sel = pod_default_selector(pod, services, replica_sets)
    if everything_selector_is_empty(sel):
        return []
    for p in picked:
        p["selector"] = sel
    return picked


# ----------------------------------------------------------------------------- node tests


def required_affinity_matches(pod, node) -> bool:
    labels = node.metadata.labels
    for k, v in (pod.spec.node_selector or {}).items():
        if labels.get(k) != v:
            return False
    aff = pod.spec.affinity
    if aff is not None and aff.node_affinity is not None and \
            aff.node_affinity.required is not None:
        return aff.node_affinity.required.matches(labels, node.metadata.name)
    return True


def taints_tolerated(pod, node) -> bool:
    for taint in node.spec.taints:
        if taint.effect not in ("NoSchedule", "NoExecute"):
            continue
        if not any(t.tolerates(taint) for t in pod.spec.tolerations):
            return False
    return True


def included(c, pod, node) -> bool:
    if c["affinity"] == "Honor" and not required_affinity_matches(pod, node):
        return False
    if c["taints"] == "Honor" and not taints_tolerated(pod, node):
        return False
    return True


def count_matching(pods_here, selector, namespace) -> int:
    if everything_selector_is_empty(selector):
        return 0
    n = 0
    for p in pods_here:
        if p.metadata.deletion_timestamp is not None or p.metadata.namespace != namespace:
            continue
        if selector.matches(p.metadata.labels):
            n += 1
    return n


def has_all_keys(node, constraints) -> bool:
    return all(c["key"] in node.metadata.labels for c in constraints)


def _pods_by_node(nodes, pods) -> dict[str, list]:
    out = {n.metadata.name: [] for n in nodes}
    for p in pods:
        if p.spec.node_name in out:
            out[p.spec.node_name].append(p)
    return out


# --------------------------------------------------------------------------------- filter


def prefilter_state(nodes, pods, pod, defaults=SYSTEM_DEFAULTS, services=(), replica_sets=()):
    """(constraints, per-constraint {value: count}, per-constraint global minimum) or None."""
    constraints = constraints_of(pod, "DoNotSchedule", defaults, services, replica_sets)
    if not constraints:
        return None
    by_node = _pods_by_node(nodes, pods)
    tables = [dict() for _ in constraints]
    for node in nodes:
        if not has_all_keys(node, constraints):
            continue
        for i, c in enumerate(constraints):
            if not included(c, pod, node):
                continue
            value = node.metadata.labels[c["key"]]
            got = count_matching(by_node[node.metadata.name], c["selector"],
                                 pod.metadata.namespace)
            tables[i][value] = tables[i].get(value, 0) + got
    minima = []
    for i, c in enumerate(constraints):
        if len(tables[i]) < c["min_domains"]:
            minima.append(0)
        else:
            minima.append(min(tables[i].values()) if tables[i] else MAX_INT32)
    return constraints, tables, minima


def filter_verdicts(nodes, pods, pod, defaults=SYSTEM_DEFAULTS, services=(), replica_sets=()):
    state = prefilter_state(nodes, pods, pod, defaults, services, replica_sets)
    if state is None:
        return None
    constraints, tables, minima = state
    out = {}
    for node in nodes:
        verdict = (0, "")
        for i, c in enumerate(constraints):
            labels = node.metadata.labels
            if c["key"] not in labels:
                verdict = (3, REASON_LABEL)
                break
            self_match = 1 if c["selector"].matches(pod.metadata.labels) else 0
            skew = tables[i].get(labels[c["key"]], 0) + self_match - minima[i]
            if skew > c["max_skew"]:
                verdict = (2, REASON)
                break
        out[node.metadata.name] = verdict
    return out


# ---------------------------------------------------------------------------------- score


def raw_scores(nodes, pods, pod, filtered, defaults=SYSTEM_DEFAULTS, system_defaulted=True,
               services=(), replica_sets=()):
    """(raw score per filtered node, ignored node names) or None when PreScore skips.
    ``filtered``: names of the nodes that passed filtering (the ones to score)."""
    if not nodes:
        return None
    constraints = constraints_of(pod, "ScheduleAnyway", defaults, services, replica_sets)
    if not constraints:
        return None
    by_name = {n.metadata.name: n for n in nodes}
    by_node = _pods_by_node(nodes, pods)
    require_all = bool(pod.spec.topology_spread_constraints) or not system_defaulted
    ignored = set()
    tables = [dict() for _ in constraints]
    for name in filtered:
        node = by_name[name]
        if require_all and not has_all_keys(node, constraints):
            ignored.add(name)
            continue
        for i, c in enumerate(constraints):
            if c["key"] == HOSTNAME:
                continue
            tables[i].setdefault(node.metadata.labels.get(c["key"], ""), 0)
    weights = []
    for i, c in enumerate(constraints):
        size = len(tables[i])
        if c["key"] == HOSTNAME:
            size = len(filtered) - len(ignored)
        weights.append(go_log(float(size + 2)))
    for node in nodes:
        if require_all and not has_all_keys(node, constraints):
            continue
        for i, c in enumerate(constraints):
            if not included(c, pod, node):
                continue
            value = node.metadata.labels.get(c["key"], "")
            if value not in tables[i]:
                continue
            tables[i][value] += count_matching(by_node[node.metadata.name], c["selector"],
                                               pod.metadata.namespace)
    raw = {}
    for name in filtered:
        if name in ignored:
            raw[name] = 0
            continue
        node = by_name[name]
        total = 0.0
        for i, c in enumerate(constraints):
            if c["key"] not in node.metadata.labels:
                continue
            if c["key"] == HOSTNAME:
                cnt = count_matching(by_node[name], c["selector"], pod.metadata.namespace)
            else:
                cnt = tables[i][node.metadata.labels[c["key"]]]
            total += float(cnt) * weights[i] + float(c["max_skew"] - 1)
        raw[name] = go_round(total)
    return raw, ignored


def normalized_scores(nodes, pods, pod, filtered, defaults=SYSTEM_DEFAULTS,
                      system_defaulted=True, services=(), replica_sets=()):
    got = raw_scores(nodes, pods, pod, filtered, defaults, system_defaulted, services,
                     replica_sets)
    if got is None:
        return None
    raw, ignored = got
    valid = [raw[n] for n in filtered if n not in ignored]
    lo = min(valid) if valid else None
    hi = max(valid + [0])
    out = {}
    for name in filtered:
        if name in ignored:
            out[name] = 0
        elif hi == 0:
            out[name] = 100
        else:
            out[name] = 100 * (hi + lo - raw[name]) // hi
    return out


# ------------------------------------------------------------------------- SelectorSpread


def zone_id(node) -> str:
    labels = node.metadata.labels
    zone = labels.get("failure-domain.beta.kubernetes.io/zone")
    if zone is None:
        zone = labels.get("topology.kubernetes.io/zone", "")
    region = labels.get("failure-domain.beta.kubernetes.io/region")
    if region is None:
        region = labels.get("topology.kubernetes.io/region", "")
    if region == "" and zone == "":
        return ""
    return region + ":\x00:" + zone


def selector_spread_scores(nodes, pods, pod, filtered, services=(), replica_sets=()):
    if pod.spec.topology_spread_constraints:
        return None
    selector = pod_default_selector(pod, services, replica_sets)
    by_name = {n.metadata.name: n for n in nodes}
    by_node = _pods_by_node(nodes, pods)
    counts = {name: count_matching(by_node[name], selector, pod.metadata.namespace)
              for name in filtered}
    max_node = max([0] + list(counts.values()))
    zones = {}
    for name in filtered:
        z = zone_id(by_name[name])
        if z:
            zones[z] = zones.get(z, 0) + counts[name]
    max_zone = max([0] + list(zones.values()))
    out = {}
    for name in filtered:
        f = 100.0
        if max_node > 0:
            f = 100.0 * (float(max_node - counts[name]) / float(max_node))
        z = zone_id(by_name[name])
        if zones and z:
            zs = 100.0
            if max_zone > 0:
                zs = 100.0 * (float(max_zone - zones[z]) / float(max_zone))
            f = (f * (1.0 - 2.0 / 3.0)) + ((2.0 / 3.0) * zs)
        out[name] = int(f)
    return out
