"""Plain-Python reference of the node plugins (NodeUnschedulable, NodeName, NodeAffinity,
TaintToleration, NodePorts), node by node on the model objects.

Written straight from kube-scheduler v1.35's semantics, sharing nothing with the kernels: label
requirements are matched here from their fields (own int64 parser), tolerations from their
fields, host ports from the pods bound to the node. Verdicts are ``(code, reasons)`` with
kube's codes (0 Success, 2 Unschedulable, 3 UnschedulableAndUnresolvable, 5 Skip).
"""

from __future__ import annotations

SUCCESS, UNSCHEDULABLE, UNRESOLVABLE, SKIP = 0, 2, 3, 5
MAX_NODE_SCORE = 100

_INT64_MIN, _INT64_MAX = -(2 ** 63), 2 ** 63 - 1


# ------------------------------------------------------------------------------- helpers


def parse_int64(s: str):
    """Go strconv.ParseInt(s, 10, 64): an int, or None."""
    if not s:
        return None
    body = s[1:] if s[0] in "+-" else s
    if not body or any(ch not in "0123456789" for ch in body):
        return None
    v = int(body)
    if s[0] == "-":
        v = -v
    if v < _INT64_MIN or v > _INT64_MAX:
        return None
    return v


def requirement_matches(req, labels: dict) -> bool:
    """labels.Requirement.Matches from the requirement's fields (operator by its value)."""
    op = str(getattr(req.operator, "value", req.operator))
    key, values = req.key, list(req.values)
    if op in ("in", "=", "=="):
        return key in labels and labels[key] in values
    if op in ("notin", "!="):
        return key not in labels or labels[key] not in values
    if op == "exists":
        return key in labels
    if op == "!":
        return key not in labels
    if op in ("gt", "lt"):
        if key not in labels or len(values) != 1:
            return False
        have, bound = parse_int64(labels[key]), parse_int64(values[0])
        if have is None or bound is None:
            return False
        return have > bound if op == "gt" else have < bound
    raise ValueError(f"unknown operator {op!r}")


def field_matches(f, node_name: str) -> bool:
    op = str(getattr(f.operator, "value", f.operator))
    if op == "in":
        return node_name == f.value
    return node_name != f.value


def term_matches(term, node) -> bool:
    """A NodeSelectorTerm on a node; the empty term matches nothing."""
    if not term.match_expressions and not term.match_fields:
        return False
    labels = node.metadata.labels
    if not all(requirement_matches(r, labels) for r in term.match_expressions):
        return False
    return all(field_matches(f, node.metadata.name) for f in term.match_fields)


def node_selector_matches(sel, node) -> bool:
    """A NodeSelector (terms ORed)."""
    return any(term_matches(t, node) for t in sel.terms)


def toleration_tolerates(tol, taint) -> bool:
    if tol.effect and tol.effect != taint.effect:
        return False
    if tol.key and tol.key != taint.key:
        return False
    if tol.operator == "Exists":
        return True
    if tol.operator in ("", "Equal"):
        return tol.value == taint.value
    return False


def tolerated(tolerations, taint) -> bool:
    return any(toleration_tolerates(t, taint) for t in tolerations)


def normalize(scores: list[int], reverse: bool = False) -> list[int]:
    """helper.DefaultNormalizeScore(MaxNodeScore, reverse, scores)."""
    hi = max([0] + list(scores))
    if hi == 0:
        return [MAX_NODE_SCORE if reverse else 0 for _ in scores]
    out = [s * MAX_NODE_SCORE // hi for s in scores]
    if reverse:
        out = [MAX_NODE_SCORE - s for s in out]
    return out


def _node_affinity(pod):
    aff = pod.spec.affinity
    return None if aff is None else aff.node_affinity


# ----------------------------------------------------------------------- NodeUnschedulable


class _Taint:
    def __init__(self, key, value, effect):
        self.key, self.value, self.effect = key, value, effect


def node_unschedulable_filter(pod, node):
    if not node.spec.unschedulable:
        return SUCCESS, []
    t = _Taint("node.kubernetes.io/unschedulable", "", "NoSchedule")
    if tolerated(pod.spec.tolerations, t):
        return SUCCESS, []
    return UNRESOLVABLE, ["node(s) were unschedulable"]


# ------------------------------------------------------------------------------- NodeName


def node_name_filter(pod, node):
    if not pod.spec.node_name or pod.spec.node_name == node.metadata.name:
        return SUCCESS, []
    return UNRESOLVABLE, ["node(s) didn't match the requested node name"]


# --------------------------------------------------------------------------- NodeAffinity


def node_affinity_pre_filter(pod, added_required=None):
    """(code, reasons, allowed node names or None)."""
    na = _node_affinity(pod)
    required = None if na is None else na.required_during_scheduling_ignored_during_execution
    if required is None and added_required is None and not pod.spec.node_selector:
        return SKIP, [], None
    if required is None or not required.terms:
        return SUCCESS, [], None
    union = None
    for term in required.terms:
        names = None
        for f in term.match_fields:
            if f.key == "metadata.name" and str(getattr(f.operator, "value", f.operator)) == "in":
                names = {f.value} if names is None else names & {f.value}
        if names is None:
            return SUCCESS, [], None
        union = set(names) if union is None else union | names
    if not union:
        return UNRESOLVABLE, ["pod affinity terms conflict"], None
    return SUCCESS, [], union


def required_node_affinity_matches(pod, node) -> bool:
    for k, v in (pod.spec.node_selector or {}).items():
        if node.metadata.labels.get(k) != v:
            return False
    na = _node_affinity(pod)
    required = None if na is None else na.required_during_scheduling_ignored_during_execution
    if required is None:
        return True
    return node_selector_matches(required, node)


def node_affinity_filter(pod, node, added_required=None):
    if added_required is not None and not node_selector_matches(added_required, node):
        return UNRESOLVABLE, ["node(s) didn't match scheduler-enforced node affinity"]
    if not required_node_affinity_matches(pod, node):
        return UNRESOLVABLE, ["node(s) didn't match Pod's node affinity/selector"]
    return SUCCESS, []


def _preferred_sum(terms, node) -> int:
    total = 0
    for weight, term in terms:
        if weight == 0:
            continue
        if term_matches(term, node):
            total += weight
    return total


def node_affinity_scores(pod, nodes, added_preferred=None):
    """Normalised scores, or None when PreScore skips. ``added_preferred``: (weight, term)."""
    na = _node_affinity(pod)
    pod_pref = [] if na is None else [(t.weight, t.preference) for t in
                                      na.preferred_during_scheduling_ignored_during_execution]
    if not pod_pref and not added_preferred:
        return None
    raw = [_preferred_sum(added_preferred or [], n) + _preferred_sum(pod_pref, n)
           for n in nodes]
    return normalize(raw)


# ------------------------------------------------------------------------ TaintToleration


def taint_toleration_filter(pod, node):
    for taint in node.spec.taints:
        if taint.effect in ("NoSchedule", "NoExecute") and not tolerated(
                pod.spec.tolerations, taint):
            return UNRESOLVABLE, ["node(s) had untolerated taint(s)"]
    return SUCCESS, []


def taint_toleration_raw_score(pod, node) -> int:
    tols = [t for t in pod.spec.tolerations if t.effect in ("", "PreferNoSchedule")]
    return sum(1 for taint in node.spec.taints
               if taint.effect == "PreferNoSchedule" and not tolerated(tols, taint))


def taint_toleration_scores(pod, nodes):
    return normalize([taint_toleration_raw_score(pod, n) for n in nodes], reverse=True)


# ------------------------------------------------------------------------------ NodePorts


def pod_host_ports(pod):
    out = []
    containers = [c for c in pod.spec.init_containers if c.restart_policy == "Always"]
    for c in containers + list(pod.spec.containers):
        for p in c.ports:
            if p.host_port > 0:
                out.append((p.host_ip or "0.0.0.0", p.protocol or "TCP", p.host_port))
    return out


def node_ports_pre_filter(pod):
    return (SKIP if not pod_host_ports(pod) else SUCCESS), []


def node_ports_filter(pod, bound_pods):
    """``bound_pods``: the pods on the node."""
    used = {hp for p in bound_pods for hp in pod_host_ports(p)}
    for ip, proto, port in pod_host_ports(pod):
        for uip, uproto, uport in used:
            if (uproto, uport) != (proto, port):
                continue
            if ip == "0.0.0.0" or uip == "0.0.0.0" or uip == ip:
                return UNSCHEDULABLE, [
                    "node(s) didn't have free ports for the requested pod ports"]
    return SUCCESS, []
