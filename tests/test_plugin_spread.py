"""PodTopologySpread and SelectorSpread: kube-scheduler's own test cases (ported as facts:
nodes, pods and expected verdicts / counts / scores), and Hypothesis properties checking the
vectorised plugins against the plain-Python reference in ``tests/reference/spread.py``, node
for node, including after random binds, removals and node changes (incremental counts)."""

from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from schedbench.config import PodTopologySpreadArgs, TopologySpreadDefault
from schedbench.manifests import object_from_dict
from schedbench.model.labels import label_selector_from_dict
from schedbench.model.objects import OwnerReference
from schedbench.scheduler.framework import CycleState
from schedbench.scheduler.plugins.pod_topology_spread import (
    ERR_CONSTRAINTS_NOT_MATCH,
    ERR_NODE_LABEL_NOT_MATCH,
)
from schedbench.scheduler.spreading import (
    go_log,
    go_log_jit,
    go_round,
    selector_counts,
    zone_key,
)
from tests.reference import spread as ref
from tests.scheduler_helpers import make_cluster, make_node, make_pod, plugin_on

HOST = "kubernetes.io/hostname"
ZONE = "topology.kubernetes.io/zone"
UNSCHED_TAINT = [{"key": "node.kubernetes.io/unschedulable", "effect": "NoSchedule"}]
FOO = {"matchExpressions": [{"key": "foo", "operator": "Exists"}]}
BAR = {"matchExpressions": [{"key": "bar", "operator": "Exists"}]}
LIST = PodTopologySpreadArgs(defaulting_type="List")
SYSTEM = PodTopologySpreadArgs()
TERMINATING = "2024-01-01T00:00:00Z"

# ----------------------------------------------------------------------------------- builders


def _labels(spec: str) -> dict[str, str]:
    out = {}
    for item in spec.split():
        k, _, v = item.partition("=")
        out[k] = v
    return out


def N(name: str, labels: str = "", taints=None):
    return make_node(name, labels=_labels(labels), taints=taints)


def P(name: str, node: str = "", labels: str = "", ns: str = "default", terminating=False,
      owner: tuple[str, str, str] | None = None, **spec):
    p = make_pod(name, namespace=ns, labels=_labels(labels), node=node, **spec)
    if terminating:
        p.metadata.deletion_timestamp = TERMINATING
    if owner is not None:
        api, kind, oname = owner
        p.metadata.owner_references = [OwnerReference(api_version=api, kind=kind, name=oname,
                                                      controller=True)]
    return p


def C(max_skew, key, when, selector=None, min_domains=None, aff=None, taints=None, mlk=None):
    c = {"maxSkew": max_skew, "topologyKey": key, "whenUnsatisfiable": when}
    if selector is not None:
        c["labelSelector"] = selector
    if min_domains is not None:
        c["minDomains"] = min_domains
    if aff is not None:
        c["nodeAffinityPolicy"] = aff
    if taints is not None:
        c["nodeTaintsPolicy"] = taints
    if mlk is not None:
        c["matchLabelKeys"] = mlk
    return c


def DNS(*a, **kw):
    return C(a[0], a[1], "DoNotSchedule", *a[2:], **kw)


def SA(*a, **kw):
    return C(a[0], a[1], "ScheduleAnyway", *a[2:], **kw)


def node_affinity(key, op, values):
    return {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
        "nodeSelectorTerms": [{"matchExpressions": [
            {"key": key, "operator": op, "values": values}]}]}}}


def service(name, selector, ns="default"):
    return object_from_dict({"apiVersion": "v1", "kind": "Service",
                             "metadata": {"name": name, "namespace": ns},
                             "spec": {} if selector is None else {"selector": selector}})


def replica_set(name, selector: dict, template_labels: dict, ns="default"):
    return object_from_dict({
        "apiVersion": "apps/v1", "kind": "ReplicaSet",
        "metadata": {"name": name, "namespace": ns},
        "spec": {"replicas": 1, "selector": selector,
                 "template": {"metadata": {"labels": template_labels},
                              "spec": {"containers": [{"name": "c", "image": "i"}]}}}})


RS_OWNER = ("apps/v1", "ReplicaSet")


def _min_domains(pod, value):
    """Set minDomains after validation (kube's test sets it on a ScheduleAnyway constraint,
    which the API server would reject)."""
    pod.spec.topology_spread_constraints[0].min_domains = value
    return pod

FOUR = [N("node-a", "zone=zone1 node=node-a"), N("node-b", "zone=zone1 node=node-b"),
        N("node-x", "zone=zone2 node=node-x"), N("node-y", "zone=zone2 node=node-y")]


def four(**overrides):
    """The four-node layout (a, b in zone1; x, y in zone2) with some nodes replaced."""
    return [overrides.get(n.name.replace("-", "_"), n) for n in FOUR]


# ------------------------------------------------------------------------------------ runners


def _setup(name, nodes, pods, args, services=(), replica_sets=(), cluster=None):
    cluster = cluster or make_cluster(nodes, pods, services=list(services),
                                      replica_sets=list(replica_sets))
    return plugin_on(name, cluster, args)


def run_filter(nodes, pods, pod, args=LIST, services=(), replica_sets=(), check_ref=True):
    """{node: (code, reason)} of PreFilter + Filter (None when PreFilter skips), checked
    against the reference as well."""
    plugin, snap = _setup("PodTopologySpread", nodes, pods, args, services, replica_sets)
    got = _filter(plugin, snap, pod)
    if check_ref:
        want = ref.filter_verdicts(nodes, pods, pod, args.effective_default_constraints,
                                   services, replica_sets)
        assert got == want
    return got


def _filter(plugin, snap, pod):
    info = snap.pod_info(pod)
    state = CycleState()
    nodes = snap.alive_nodes()
    status, allowed = plugin.pre_filter(state, info, nodes)
    assert allowed is None
    if status.is_skip:
        return None
    assert status.is_success
    codes = plugin.filter(state, info, nodes)
    out = {}
    for n, c in zip(nodes.tolist(), codes.tolist()):
        reasons = plugin.filter_reasons(state, info, n) if c else []
        assert len(reasons) == (1 if c else 0)
        out[snap.node_names[n]] = (c, reasons[0] if reasons else "")
    return out


def codes_of(verdicts):
    return {k: v[0] for k, v in verdicts.items()}


def run_score(nodes, pods, pod, filtered=None, args=SYSTEM, services=(), replica_sets=(),
              check_ref=True, plugin_name="PodTopologySpread"):
    """{node: normalised score} for the filtered nodes (None when PreScore skips)."""
    plugin, snap = _setup(plugin_name, nodes, pods, args, services, replica_sets)
    filtered = [n.name for n in nodes] if filtered is None else filtered
    got = _score(plugin, snap, pod, filtered)
    if check_ref:
        if plugin_name == "PodTopologySpread":
            want = ref.normalized_scores(nodes, pods, pod, filtered,
                                         args.effective_default_constraints,
                                         args.defaulting_type == "System", services,
                                         replica_sets)
        else:
            want = ref.selector_spread_scores(nodes, pods, pod, filtered, services,
                                              replica_sets)
        assert got == want
    return got


def _score(plugin, snap, pod, filtered):
    info = snap.pod_info(pod)
    state = CycleState()
    idx = np.array([snap.node_index[n] for n in filtered], np.int64)
    if plugin.pre_score(state, info, idx).is_skip:
        return None
    scores = np.array(plugin.score(state, info, idx), np.int64)
    plugin.normalize_score(state, info, idx, scores)
    return dict(zip(filtered, scores.tolist()))


def prefilter_tables(nodes, pods, pod, args=LIST, services=()):
    """Per constraint: ({domain value: matching pods}, global minimum (critical path 0))."""
    plugin, snap = _setup("PodTopologySpread", nodes, pods, args, services)
    state = CycleState()
    status, _ = plugin.pre_filter(state, snap.pod_info(pod), snap.alive_nodes())
    if status.is_skip:
        return None
    s = state["PodTopologySpread"]
    return _tables(snap, s)


def _tables(snap, s):
    out = []
    for c, con in enumerate(s.constraints):
        k = snap.vocab.key_id(con.topology_key)
        names = snap.vocab.values[k].names if k >= 0 else []
        table = {names[d]: int(s.sums[c, d]) for d in np.flatnonzero(s.seen[c])}
        out.append((table, int(s.paths[c, 1])))
    return out


# ===================================================================== kube: PreFilter state

MAXI = 2**31 - 1

PREFILTER_CASES = [
    # (name, pod, nodes, existing pods, expected [(counts, min)] or None for Skip, services)
    ("clean cluster with one spreadConstraint",
     P("p", labels="foo=", topologySpreadConstraints=[
         DNS(5, "zone", {"matchLabels": {"foo": "bar"}})]),
     FOUR, [], [({"zone1": 0, "zone2": 0}, 0)], ()),
    ("normal case with one spreadConstraint",
     P("p", labels="foo=", topologySpreadConstraints=[DNS(1, "zone", FOO)]),
     FOUR, [P("p-a1", "node-a", "foo="), P("p-a2", "node-a", "foo="),
            P("p-b1", "node-b", "foo="), P("p-y1", "node-y", "foo="),
            P("p-y2", "node-y", "foo=")],
     [({"zone1": 3, "zone2": 2}, 2)], ()),
    ("normal case with null label selector",
     P("p", labels="foo=", topologySpreadConstraints=[DNS(1, "zone")]),
     FOUR, [P("p-a1", "node-a", "foo="), P("p-y1", "node-y", "foo=")],
     [({"zone1": 0, "zone2": 0}, 0)], ()),
    ("normal case with one spreadConstraint, on a 3-zone cluster",
     P("p", labels="foo=", topologySpreadConstraints=[DNS(1, "zone", FOO)]),
     FOUR + [N("node-o", "zone=zone3 node=node-o"), N("node-p", "zone=zone3 node=node-p")],
     [P("p-a1", "node-a", "foo="), P("p-a2", "node-a", "foo="), P("p-b1", "node-b", "foo="),
      P("p-y1", "node-y", "foo="), P("p-y2", "node-y", "foo=")],
     [({"zone1": 3, "zone2": 2, "zone3": 0}, 0)], ()),
    ("namespace mismatch doesn't count",
     P("p", labels="foo=", topologySpreadConstraints=[DNS(1, "zone", FOO)]),
     FOUR, [P("p-a1", "node-a", "foo="), P("p-a2", "node-a", "foo=", ns="ns1"),
            P("p-b1", "node-b", "foo="), P("p-y1", "node-y", "foo=", ns="ns2"),
            P("p-y2", "node-y", "foo=")],
     [({"zone1": 2, "zone2": 1}, 1)], ()),
    ("normal case with two spreadConstraints",
     P("p", labels="foo=", topologySpreadConstraints=[DNS(1, "zone", FOO),
                                                      DNS(1, "node", FOO)]),
     FOUR, [P("p-a1", "node-a", "foo="), P("p-a2", "node-a", "foo="),
            P("p-b1", "node-b", "foo=")] + [P(f"p-y{i}", "node-y", "foo=") for i in range(4)],
     [({"zone1": 3, "zone2": 4}, 3),
      ({"node-a": 2, "node-b": 1, "node-x": 0, "node-y": 4}, 0)], ()),
    ("soft spreadConstraints should be bypassed",
     P("p", labels="foo=", topologySpreadConstraints=[
         SA(1, "zone", FOO), DNS(1, "zone", FOO), SA(1, "node", FOO), DNS(1, "node", FOO)]),
     [FOUR[0], FOUR[1], FOUR[3]],
     [P("p-a1", "node-a", "foo="), P("p-a2", "node-a", "foo="),
      P("p-b1", "node-b", "foo=")] + [P(f"p-y{i}", "node-y", "foo=") for i in range(4)],
     [({"zone1": 3, "zone2": 4}, 3), ({"node-a": 2, "node-b": 1, "node-y": 4}, 1)], ()),
    ("different labelSelectors - simple version",
     P("p", labels="foo= bar=", topologySpreadConstraints=[DNS(1, "zone", FOO),
                                                           DNS(1, "node", BAR)]),
     [FOUR[0], FOUR[1], FOUR[3]],
     [P("p-a", "node-a", "foo="), P("p-b", "node-b", "bar=")],
     [({"zone1": 1, "zone2": 0}, 0), ({"node-a": 0, "node-b": 1, "node-y": 0}, 0)], ()),
    ("different labelSelectors - complex pods",
     P("p", labels="foo= bar=", topologySpreadConstraints=[DNS(1, "zone", FOO),
                                                           DNS(1, "node", BAR)]),
     [FOUR[0], FOUR[1], FOUR[3]],
     [P("p-a1", "node-a", "foo="), P("p-a2", "node-a", "foo= bar="),
      P("p-b1", "node-b", "foo="), P("p-y1", "node-y", "foo="),
      P("p-y2", "node-y", "foo= bar="), P("p-y3", "node-y", "foo="),
      P("p-y4", "node-y", "foo= bar=")],
     [({"zone1": 3, "zone2": 4}, 3), ({"node-a": 1, "node-b": 0, "node-y": 2}, 0)], ()),
    ("two spreadConstraints, and with podAffinity",
     P("p", labels="foo=", affinity=node_affinity("node", "NotIn", ["node-x"]),
       topologySpreadConstraints=[DNS(1, "zone", FOO), DNS(1, "node", FOO)]),
     FOUR, [P("p-a1", "node-a", "foo="), P("p-a2", "node-a", "foo="),
            P("p-b1", "node-b", "foo=")] + [P(f"p-y{i}", "node-y", "foo=") for i in range(4)],
     [({"zone1": 3, "zone2": 4}, 3), ({"node-a": 2, "node-b": 1, "node-y": 4}, 1)], ()),
    ("default constraints and a service",
     P("p", labels="foo=bar baz=kar"), [], [],
     [({}, MAXI), ({}, MAXI)], (service("s", {"foo": "bar"}),)),
    ("default constraints and a service that doesn't match",
     P("p", labels="foo=bar"), [], [], None, (service("s", {"baz": "kep"}),)),
    ("default constraints and a service, but pod has constraints",
     P("p", labels="foo=bar baz=tar", topologySpreadConstraints=[
         DNS(1, "zone", {"matchLabels": {"baz": "tar"}}),
         SA(2, "planet", {"matchLabels": {"fot": "rok"}})]),
     [], [], [({}, MAXI)], (service("s", {"foo": "bar"}),)),
    ("NodeAffinityPolicy honored with labelSelectors",
     P("p", labels="foo=", nodeSelector={"foo": ""},
       topologySpreadConstraints=[DNS(1, "node", BAR)]),
     [N("node-a", "node=node-a foo="), N("node-b", "node=node-b foo="),
      N("node-c", "node=node-c bar=")],
     [P("p-a", "node-a", "bar="), P("p-b", "node-b", "bar="), P("p-c", "node-b", "bar="),
      P("p-d", "node-c")],
     [({"node-a": 1, "node-b": 2}, 1)], ()),
    ("NodeAffinityPolicy ignored with labelSelectors",
     P("p", labels="foo=", nodeSelector={"foo": ""},
       topologySpreadConstraints=[DNS(1, "node", BAR, aff="Ignore")]),
     [N("node-a", "node=node-a foo="), N("node-b", "node=node-b foo="),
      N("node-c", "node=node-c bar=")],
     [P("p-a", "node-a", "bar="), P("p-b", "node-b", "bar="), P("p-c", "node-b", "bar="),
      P("p-d", "node-c")],
     [({"node-a": 1, "node-b": 2, "node-c": 0}, 0)], ()),
    ("NodeAffinityPolicy honored with nodeAffinity",
     P("p", labels="foo=", affinity=node_affinity("foo", "In", [""]),
       topologySpreadConstraints=[DNS(1, "node", BAR)]),
     [N("node-a", "node=node-a foo="), N("node-b", "node=node-b foo="),
      N("node-c", "node=node-c bar=")],
     [P("p-a", "node-a", "bar="), P("p-c", "node-b", "bar="), P("p-d", "node-b", "bar="),
      P("p-e", "node-c")],
     [({"node-a": 1, "node-b": 2}, 1)], ()),
    ("NodeAffinityPolicy ignored with nodeAffinity",
     P("p", labels="foo=", affinity=node_affinity("foo", "In", [""]),
       topologySpreadConstraints=[DNS(1, "node", BAR, aff="Ignore")]),
     [N("node-a", "node=node-a foo="), N("node-b", "node=node-b foo="),
      N("node-c", "node=node-c bar=")],
     [P("p-a", "node-a", "bar="), P("p-b", "node-b", "bar="), P("p-c", "node-b", "bar="),
      P("p-d", "node-c")],
     [({"node-a": 1, "node-b": 2, "node-c": 0}, 0)], ()),
    ("NodeTaintsPolicy ignored",
     P("p", labels="foo=", topologySpreadConstraints=[DNS(1, "node", BAR)]),
     [N("node-a", "node=node-a"), N("node-b", "node=node-b"),
      N("node-c", "node=node-c bar=", UNSCHED_TAINT)],
     [P("p-a", "node-a", "bar="), P("p-b", "node-b", "bar="), P("p-c", "node-b", "bar="),
      P("p-d", "node-c")],
     [({"node-a": 1, "node-b": 2, "node-c": 0}, 0)], ()),
    ("NodeTaintsPolicy honored",
     P("p", labels="foo=", topologySpreadConstraints=[DNS(1, "node", BAR, taints="Honor")]),
     [N("node-a", "node=node-a"), N("node-b", "node=node-b"),
      N("node-c", "node=node-c bar=", UNSCHED_TAINT)],
     [P("p-a", "node-a", "bar="), P("p-b", "node-b", "bar="), P("p-c", "node-b", "bar="),
      P("p-d", "node-c")],
     [({"node-a": 1, "node-b": 2}, 1)], ()),
    ("NodeTaintsPolicy honored with tolerated taints",
     P("p", labels="foo=", tolerations=[{"key": "node.kubernetes.io/unschedulable",
                                         "operator": "Exists", "effect": "NoSchedule"}],
       topologySpreadConstraints=[DNS(1, "node", BAR, taints="Honor")]),
     [N("node-a", "node=node-a"), N("node-b", "node=node-b"),
      N("node-c", "node=node-c bar=", UNSCHED_TAINT)],
     [P("p-a", "node-a", "bar="), P("p-b", "node-b", "bar="), P("p-c", "node-b", "bar="),
      P("p-d", "node-c")],
     [({"node-a": 1, "node-b": 2, "node-c": 0}, 0)], ()),
    ("two node inclusion Constraints, zone: honor/ignore, node: ignore/ignore",
     P("p", labels="foo=", nodeSelector={"foo": ""}, topologySpreadConstraints=[
         DNS(1, "zone", FOO), DNS(1, "node", FOO, aff="Ignore")]),
     [N("node-a", "zone=zone1 node=node-a foo="), N("node-b", "zone=zone1 node=node-b"),
      N("node-x", "zone=zone2 node=node-x foo=")],
     [P("p-b1", "node-b", "foo="), P("p-b2", "node-b", "foo="), P("p-x1", "node-x", "foo=")],
     [({"zone1": 0, "zone2": 1}, 0), ({"node-a": 0, "node-b": 2, "node-x": 1}, 0)], ()),
    ("two node inclusion Constraints, zone: honor/honor, node: honor/ignore",
     P("p", labels="foo=", topologySpreadConstraints=[
         DNS(1, "zone", FOO, taints="Honor"), DNS(1, "node", FOO)]),
     [N("node-a", "zone=zone1 node=node-a foo="),
      N("node-b", "zone=zone1 node=node-b", UNSCHED_TAINT),
      N("node-x", "zone=zone2 node=node-x foo=")],
     [P("p-b1", "node-b", "foo="), P("p-b2", "node-b", "foo="), P("p-x1", "node-x", "foo=")],
     [({"zone1": 0, "zone2": 1}, 0), ({"node-a": 0, "node-b": 2, "node-x": 1}, 0)], ()),
    ("two node inclusion Constraints, zone: honor/ignore, node: honor/ignore",
     P("p", labels="foo=", nodeSelector={"foo": ""}, topologySpreadConstraints=[
         DNS(1, "zone", FOO), DNS(1, "node", FOO)]),
     [N("node-a", "zone=zone1 node=node-a"),
      N("node-b", "zone=zone1 node=node-b foo=", UNSCHED_TAINT),
      N("node-x", "zone=zone2 node=node-x foo="), N("node-y", "zone=zone2 node=node-y")],
     [P("p-a1", "node-a", "foo="), P("p-a2", "node-a", "foo="), P("p-x1", "node-x", "foo="),
      P("p-y1", "node-y", "foo=")],
     [({"zone1": 0, "zone2": 1}, 0), ({"node-b": 0, "node-x": 1}, 0)], ()),
    ("two node inclusion Constraints, zone: ignore/ignore, node: honor/honor",
     P("p", labels="foo=", nodeSelector={"foo": ""}, topologySpreadConstraints=[
         DNS(1, "zone", FOO, aff="Ignore"), DNS(1, "node", FOO, taints="Honor")]),
     [N("node-a", "zone=zone1 node=node-a"),
      N("node-b", "zone=zone1 node=node-b foo=", UNSCHED_TAINT),
      N("node-x", "zone=zone2 node=node-x foo="), N("node-y", "zone=zone2 node=node-y foo=")],
     [P("p-a1", "node-a", "foo="), P("p-a2", "node-a", "foo="), P("p-x1", "node-x", "foo="),
      P("p-x2", "node-x", "foo="), P("p-y1", "node-y", "foo=")],
     [({"zone1": 2, "zone2": 3}, 2), ({"node-x": 2, "node-y": 1}, 1)], ()),
    ("matchLabelKeys ANDed with LabelSelector when LabelSelector isn't empty",
     P("p", labels="foo= bar=a", topologySpreadConstraints=[
         DNS(1, "zone", FOO, mlk=["bar"])]),
     FOUR, [P("p-a1", "node-a", "foo="), P("p-a2", "node-a", "foo= bar=a"),
            P("p-b1", "node-b", "foo="), P("p-y1", "node-y", "foo= bar=a"),
            P("p-y2", "node-y", "bar=")],
     [({"zone1": 1, "zone2": 1}, 1)], ()),
    ("matchLabelKeys ANDed with LabelSelector when LabelSelector is empty",
     P("p", labels="foo=a", topologySpreadConstraints=[DNS(1, "zone", {}, mlk=["foo"])]),
     FOUR, [P("p-a1", "node-a", "foo=a"), P("p-a2", "node-a", "foo=a"),
            P("p-b1", "node-b", "foo=a"), P("p-y1", "node-y", "foo=a"),
            P("p-y2", "node-y", "foo=a")],
     [({"zone1": 3, "zone2": 2}, 2)], ()),
    ("key in matchLabelKeys is ignored when LabelSelector is nil",
     P("p", labels="foo=", topologySpreadConstraints=[DNS(1, "zone", mlk=["bar"])]),
     FOUR, [P("p-a1", "node-a", "foo=a"), P("p-y1", "node-y", "foo=a")],
     [({"zone1": 0, "zone2": 0}, 0)], ()),
    ("key in matchLabelKeys is ignored when it isn't exist in pod.labels",
     P("p", labels="foo=", topologySpreadConstraints=[DNS(1, "zone", FOO, mlk=["bar"])]),
     FOUR, [P("p-a1", "node-a", "foo=a"), P("p-a2", "node-a", "foo=a"),
            P("p-b1", "node-b", "foo=a"), P("p-y1", "node-y", "foo=a"),
            P("p-y2", "node-y", "foo=a")],
     [({"zone1": 3, "zone2": 2}, 2)], ()),
    ("skip if not specified", P("p", labels="foo="), [FOUR[0]], [], None, ()),
]


@pytest.mark.parametrize("case", PREFILTER_CASES, ids=[c[0] for c in PREFILTER_CASES])
def test_kube_prefilter_state(case):
    _, pod, nodes, pods, want, services = case
    defaults = PodTopologySpreadArgs(defaulting_type="List", default_constraints=(
        TopologySpreadDefault(3, "node", "DoNotSchedule"),
        TopologySpreadDefault(2, "node", "ScheduleAnyway"),
        TopologySpreadDefault(5, "rack", "DoNotSchedule")))
    got = prefilter_tables(nodes, pods, pod, defaults, services)
    assert got == want
    # the reference agrees on counts and minimum (0 when no domain: it treats that as
    # fewer domains than minDomains, as Filter does)
    state = ref.prefilter_state(nodes, pods, pod, defaults.effective_default_constraints,
                                services)
    if want is None:
        assert state is None
    else:
        _, tables, _ = state
        assert [t for t, _ in got] == tables


# ============================================================================ kube: Filter

U, UU, S = 2, 3, 0
FILTER_CASES = [
    ("no existing pods", P("p", labels="foo=", topologySpreadConstraints=[
        DNS(1, "zone", FOO)]), FOUR, [], dict(a=S, b=S, x=S, y=S)),
    ("no existing pods, incoming pod doesn't match itself",
     P("p", labels="foo=", topologySpreadConstraints=[DNS(1, "zone", BAR)]), FOUR, [],
     dict(a=S, b=S, x=S, y=S)),
    ("existing pods in a different namespace do not count",
     P("p", labels="foo=", topologySpreadConstraints=[DNS(1, "zone", FOO)]), FOUR,
     [P("p-a1", "node-a", "foo=", ns="ns1"), P("p-b1", "node-a", "foo=", ns="ns2"),
      P("p-x1", "node-x", "foo="), P("p-y1", "node-y", "foo=")],
     dict(a=S, b=S, x=U, y=U)),
    ("existing pods do not match null selector",
     P("p", labels="foo=", topologySpreadConstraints=[DNS(1, "zone")]), FOUR,
     [P("p-x1", "node-x", "foo="), P("p-y1", "node-y", "foo=")], dict(a=S, b=S, x=S, y=S)),
    ("pods spread across zones as 3/3, all nodes fit",
     P("p", labels="foo=", topologySpreadConstraints=[DNS(1, "zone", FOO)]), FOUR,
     [P("p-a1", "node-a", "foo="), P("p-a2", "node-a", "foo="), P("p-b1", "node-b", "foo="),
      P("p-y1", "node-y", "foo="), P("p-y2", "node-y", "foo="), P("p-y3", "node-y", "foo=")],
     dict(a=S, b=S, x=S, y=S)),
    ("pods spread across zones as 1/2 due to absence of label 'zone' on node-b",
     P("p", labels="foo=", topologySpreadConstraints=[DNS(1, "zone", FOO)]),
     four(node_b=N("node-b", "zon=zone1 node=node-b")),
     [P("p-a1", "node-a", "foo="), P("p-b1", "node-b", "foo="), P("p-x1", "node-x", "foo="),
      P("p-y1", "node-y", "foo=")], dict(a=S, b=UU, x=U, y=U)),
    ("pod cannot be scheduled as all nodes don't have label 'rack'",
     P("p", labels="foo=", topologySpreadConstraints=[DNS(1, "rack", FOO)]),
     [FOUR[0], FOUR[2]], [], dict(a=UU, x=UU)),
    ("pods spread across nodes as 2/1/0/3, only node-x fits",
     P("p", labels="foo=", topologySpreadConstraints=[DNS(1, "node", FOO)]), FOUR,
     [P("p-a1", "node-a", "foo="), P("p-a2", "node-a", "foo="), P("p-b1", "node-b", "foo="),
      P("p-y1", "node-y", "foo="), P("p-y2", "node-y", "foo="), P("p-y3", "node-y", "foo=")],
     dict(a=U, b=U, x=S, y=U)),
    ("pods spread across nodes as 2/1/0/3, maxSkew is 2, node-b and node-x fit",
     P("p", labels="foo=", topologySpreadConstraints=[DNS(2, "node", FOO)]), FOUR,
     [P("p-a1", "node-a", "foo="), P("p-a2", "node-a", "foo="), P("p-b1", "node-b", "foo="),
      P("p-y1", "node-y", "foo="), P("p-y2", "node-y", "foo="), P("p-y3", "node-y", "foo=")],
     dict(a=U, b=S, x=S, y=U)),
    ("pods spread across nodes as 2/1/0/3, but pod doesn't match itself",
     P("p", labels="bar=", topologySpreadConstraints=[DNS(1, "node", FOO)]), FOUR,
     [P("p-a1", "node-a", "foo="), P("p-a2", "node-a", "foo="), P("p-b1", "node-b", "foo="),
      P("p-y1", "node-y", "foo="), P("p-y2", "node-y", "foo="), P("p-y3", "node-y", "foo=")],
     dict(a=U, b=S, x=S, y=U)),
    ("incoming pod has nodeAffinity, pods spread as 2/~1~/~0~/3, hence node-a fits",
     P("p", labels="foo=", affinity=node_affinity("node", "In", ["node-a", "node-y"]),
       topologySpreadConstraints=[DNS(1, "node", FOO)]), FOUR,
     [P("p-a1", "node-a", "foo="), P("p-a2", "node-a", "foo="), P("p-b1", "node-b", "foo="),
      P("p-y1", "node-y", "foo="), P("p-y2", "node-y", "foo="), P("p-y3", "node-y", "foo=")],
     dict(a=S, b=S, x=S, y=U)),
    ("terminating Pods should be excluded",
     P("p", labels="foo=", topologySpreadConstraints=[DNS(1, "node", FOO)]),
     [N("node-a", "node=node-a"), N("node-b", "node=node-b")],
     [P("p-a", "node-a", "foo=", terminating=True), P("p-b", "node-b", "foo=")],
     dict(a=S, b=U)),
    ("incoming pod has nodeAffinity, pods spread as 0/~2~/0/1, hence node-a fits",
     P("p", labels="foo=", affinity=node_affinity("node", "NotIn", ["node-b"]),
       topologySpreadConstraints=[DNS(1, "zone", FOO)]), FOUR,
     [P("p-b1", "node-b", "foo="), P("p-b2", "node-b", "foo="), P("p-y1", "node-y", "foo=")],
     dict(a=S, b=S, x=U, y=U)),
    ("pods spread across nodes as 2/2/1, maxSkew is 2, domains < minDomains",
     P("p", labels="foo=", topologySpreadConstraints=[DNS(2, "node", FOO, 4)]),
     [N("node-a", "node=node-a"), N("node-b", "node=node-b"), N("node-c", "node=node-c")],
     [P("p-a1", "node-a", "foo="), P("p-a2", "node-a", "foo="), P("p-b1", "node-b", "foo="),
      P("p-b2", "node-b", "foo="), P("p-c1", "node-c", "foo=")], dict(a=U, b=U, c=S)),
    ("pods spread across nodes as 2/2/1, maxSkew is 2, domains > minDomains",
     P("p", labels="foo=", topologySpreadConstraints=[DNS(2, "node", FOO, 2)]),
     [N("node-a", "node=node-a"), N("node-b", "node=node-b"), N("node-c", "node=node-c")],
     [P("p-a1", "node-a", "foo="), P("p-a2", "node-a", "foo="), P("p-b1", "node-b", "foo="),
      P("p-b2", "node-b", "foo="), P("p-c1", "node-c", "foo=")], dict(a=S, b=S, c=S)),
    ("pods spread across zone as 2/1, maxSkew is 2 and domains < minDomains",
     P("p", labels="foo=", topologySpreadConstraints=[DNS(2, "zone", FOO, 3)]), FOUR,
     [P("p-b1", "node-a", "foo="), P("p-b2", "node-b", "foo="), P("p-y1", "node-y", "foo=")],
     dict(a=U, b=U, x=S, y=S)),
    ("pods spread across zone as 2/1, maxSkew is 2 and domains > minDomains",
     P("p", labels="foo=", topologySpreadConstraints=[DNS(2, "zone", FOO, 1)]), FOUR,
     [P("p-b1", "node-a", "foo="), P("p-b2", "node-b", "foo="), P("p-y1", "node-y", "foo=")],
     dict(a=S, b=S, x=S, y=S)),
    ("NodeAffinityPolicy honored with labelSelectors",
     P("p", labels="foo=", nodeSelector={"foo": ""},
       topologySpreadConstraints=[DNS(1, "node", FOO)]),
     [N("node-a", "node=node-a foo="), N("node-b", "node=node-b foo="),
      N("node-x", "node=node-x foo="), N("node-y", "node=node-y")],
     [P("p-b1", "node-a", "foo="), P("p-b2", "node-b", "foo="), P("p-y1", "node-y", "foo=")],
     dict(a=U, b=U, x=S, y=S)),
    ("NodeAffinityPolicy ignored with labelSelectors",
     P("p", labels="foo=", nodeSelector={"foo": ""},
       topologySpreadConstraints=[DNS(1, "node", FOO, aff="Ignore")]),
     [N("node-a", "node=node-a foo="), N("node-b", "node=node-b foo="),
      N("node-x", "node=node-x foo="), N("node-y", "node=node-y")],
     [P("p-b1", "node-a", "foo="), P("p-b2", "node-b", "foo="), P("p-y1", "node-y", "foo=")],
     dict(a=U, b=U, x=S, y=U)),
    ("NodeAffinityPolicy honored with nodeAffinity",
     P("p", labels="foo=", affinity=node_affinity("foo", "In", [""]),
       topologySpreadConstraints=[DNS(1, "node", FOO)]),
     [N("node-a", "node=node-a foo="), N("node-b", "node=node-b foo="),
      N("node-x", "node=node-x foo="), N("node-y", "node=node-y")],
     [P("p-b1", "node-a", "foo="), P("p-b2", "node-b", "foo="), P("p-y1", "node-y", "foo=")],
     dict(a=U, b=U, x=S, y=S)),
    ("NodeTaintsPolicy honored",
     P("p", labels="foo=", topologySpreadConstraints=[DNS(1, "node", FOO, taints="Honor")]),
     [N("node-a", "node=node-a foo="), N("node-b", "node=node-b foo="),
      N("node-x", "node=node-x foo="), N("node-y", "node=node-y", UNSCHED_TAINT)],
     [P("p-b1", "node-a", "foo="), P("p-b2", "node-b", "foo="), P("p-y1", "node-y", "foo=")],
     dict(a=U, b=U, x=S, y=S)),
    ("NodeTaintsPolicy ignored",
     P("p", labels="foo=", topologySpreadConstraints=[DNS(1, "node", FOO)]),
     [N("node-a", "node=node-a foo="), N("node-b", "node=node-b foo="),
      N("node-x", "node=node-x foo="), N("node-y", "node=node-y", UNSCHED_TAINT)],
     [P("p-b1", "node-a", "foo="), P("p-b2", "node-b", "foo="), P("p-y1", "node-y", "foo=")],
     dict(a=U, b=U, x=S, y=U)),
    # TestMultipleConstraints
    ("two Constraints on zone and node, spreads = [3/3, 2/1/0/3]",
     P("p", labels="foo=", topologySpreadConstraints=[DNS(1, "zone", FOO),
                                                      DNS(1, "node", FOO)]), FOUR,
     [P("p-a1", "node-a", "foo="), P("p-a2", "node-a", "foo="), P("p-b1", "node-b", "foo="),
      P("p-y1", "node-y", "foo="), P("p-y2", "node-y", "foo="), P("p-y3", "node-y", "foo=")],
     dict(a=U, b=U, x=S, y=U)),
    ("two Constraints on zone and node, spreads = [3/4, 2/1/0/4]",
     P("p", labels="foo=", topologySpreadConstraints=[DNS(1, "zone", FOO),
                                                      DNS(1, "node", FOO)]), FOUR,
     [P("p-a1", "node-a", "foo="), P("p-a2", "node-a", "foo="), P("p-b1", "node-b", "foo=")]
     + [P(f"p-y{i}", "node-y", "foo=") for i in range(4)], dict(a=U, b=U, x=U, y=U)),
    ("Constraints hold different labelSelectors, spreads = [1/0, 1/0/0/1]",
     P("p", labels="foo= bar=", topologySpreadConstraints=[DNS(1, "zone", FOO),
                                                           DNS(1, "node", BAR)]), FOUR,
     [P("p-a1", "node-a", "foo="), P("p-y1", "node-y", "bar=")], dict(a=U, b=U, x=S, y=U)),
    ("Constraints hold different labelSelectors, spreads = [1/0, 0/0/1/1]",
     P("p", labels="foo= bar=", topologySpreadConstraints=[DNS(1, "zone", FOO),
                                                           DNS(1, "node", BAR)]), FOUR,
     [P("p-a1", "node-a", "foo="), P("p-x1", "node-x", "bar="), P("p-y1", "node-y", "bar=")],
     dict(a=U, b=U, x=U, y=U)),
    ("Constraints hold different labelSelectors, spreads = [2/3, 1/0/0/1]",
     P("p", labels="foo= bar=", topologySpreadConstraints=[DNS(1, "zone", FOO),
                                                           DNS(1, "node", BAR)]), FOUR,
     [P("p-a1", "node-a", "foo="), P("p-a2", "node-a", "foo= bar="),
      P("p-y1", "node-y", "foo="), P("p-y2", "node-y", "foo= bar="),
      P("p-y3", "node-y", "foo=")], dict(a=U, b=S, x=U, y=U)),
    ("Constraints hold different labelSelectors but pod doesn't match itself on 'zone'",
     P("p", labels="bar=", topologySpreadConstraints=[DNS(1, "zone", FOO),
                                                      DNS(1, "node", BAR)]), FOUR,
     [P("p-a1", "node-a", "foo="), P("p-x1", "node-x", "bar="), P("p-y1", "node-y", "bar=")],
     dict(a=S, b=S, x=U, y=U)),
    ("two Constraints on zone and node, absence of label 'node' on node-x",
     P("p", labels="foo=", topologySpreadConstraints=[DNS(1, "zone", FOO),
                                                      DNS(1, "node", FOO)]),
     four(node_x=N("node-x", "zone=zone2")),
     [P("p-a1", "node-a", "foo="), P("p-y3", "node-y", "foo=")], dict(a=U, b=S, x=UU, y=U)),
    ("two node inclusion Constraints, zone: honor/ignore, node: ignore/ignore",
     P("p", labels="foo=", nodeSelector={"foo": ""}, topologySpreadConstraints=[
         DNS(1, "zone", FOO), DNS(1, "node", FOO, aff="Ignore")]),
     [N("node-a", "zone=zone1 node=node-a foo="), N("node-b", "zone=zone1 node=node-b foo="),
      N("node-x", "zone=zone2 node=node-x foo="), N("node-y", "zone=zone2 node=node-y")],
     [P("p-a1", "node-a", "foo="), P("p-b1", "node-b", "foo="), P("p-y1", "node-y", "foo=")],
     dict(a=U, b=U, x=S, y=U)),
    ("two node inclusion Constraints, zone: honor/honor, node: honor/ignore",
     P("p", labels="foo=", topologySpreadConstraints=[
         DNS(1, "zone", FOO, taints="Honor"), DNS(1, "node", FOO)]),
     [N("node-a", "zone=zone1 node=node-a foo="), N("node-b", "zone=zone1 node=node-b foo="),
      N("node-x", "zone=zone2 node=node-x foo="),
      N("node-y", "zone=zone2 node=node-y", UNSCHED_TAINT)],
     [P("p-a1", "node-a", "foo="), P("p-b1", "node-b", "foo="), P("p-y1", "node-y", "foo=")],
     dict(a=U, b=U, x=S, y=U)),
    ("two node inclusion Constraints, zone: honor/ignore, node: honor/ignore",
     P("p", labels="foo=", nodeSelector={"foo": ""}, topologySpreadConstraints=[
         DNS(1, "zone", FOO), DNS(1, "node", FOO)]),
     [N("node-a", "zone=zone1 node=node-a foo="), N("node-b", "zone=zone1 node=node-b"),
      N("node-x", "zone=zone2 node=node-x foo="),
      N("node-y", "zone=zone2 node=node-y foo=", UNSCHED_TAINT)],
     [P("p-a1", "node-a", "foo="), P("p-b1", "node-b", "foo="), P("p-y1", "node-y", "foo=")],
     dict(a=U, b=S, x=S, y=U)),
    ("two node inclusion Constraints, zone: honor/honor, node: ignore/ignore",
     P("p", labels="foo=", nodeSelector={"foo": ""}, topologySpreadConstraints=[
         DNS(1, "zone", FOO, taints="Honor"), DNS(1, "node", FOO, aff="Ignore")]),
     [N("node-a", "zone=zone1 node=node-a foo="), N("node-b", "zone=zone1 node=node-b"),
      N("node-x", "zone=zone2 node=node-x foo="),
      N("node-y", "zone=zone2 node=node-y foo=", UNSCHED_TAINT)],
     [P("p-a1", "node-a", "foo="), P("p-b1", "node-b", "foo="), P("p-y1", "node-y", "foo=")],
     dict(a=U, b=U, x=S, y=U)),
]


@pytest.mark.parametrize("case", FILTER_CASES, ids=[c[0] for c in FILTER_CASES])
def test_kube_filter(case):
    _, pod, nodes, pods, want = case
    got = run_filter(nodes, pods, pod)
    assert codes_of(got) == {f"node-{k}": v for k, v in want.items()}
    reasons = {S: "", U: ERR_CONSTRAINTS_NOT_MATCH, UU: ERR_NODE_LABEL_NOT_MATCH}
    for code, reason in got.values():
        assert reason == reasons[code]


def test_reason_strings_are_kubes():
    assert ERR_CONSTRAINTS_NOT_MATCH == "node(s) didn't match pod topology spread constraints"
    assert ERR_NODE_LABEL_NOT_MATCH == ("node(s) didn't match pod topology spread constraints "
                                        "(missing required label)")


def test_empty_selector_counts_no_pod_but_matches_the_pod_itself():
    """kube v1.35's countPodsMatchSelector returns 0 for ``labelSelector: {}``; the incoming
    pod still matches it (selfMatch 1)."""
    pods = [P(f"p{i}", "node-a", "foo=") for i in range(5)]
    pod = P("p", labels="foo=", topologySpreadConstraints=[DNS(1, "zone", {})])
    assert codes_of(run_filter(FOUR, pods, pod)) == {n.name: S for n in FOUR}
    pod = P("p", labels="foo=", topologySpreadConstraints=[DNS(1, "zone", {}, 3)])
    # 2 domains < minDomains 3: min 0; 0 + 1 - 0 <= 1 everywhere
    assert codes_of(run_filter(FOUR, pods, pod)) == {n.name: S for n in FOUR}


def test_prefilter_skips_without_hard_constraints():
    pod = P("p", labels="foo=", topologySpreadConstraints=[SA(1, "zone", FOO)])
    assert run_filter(FOUR, [], pod) is None
    # System defaults are ScheduleAnyway only: nothing to filter
    assert run_filter(FOUR, [], P("p", labels="app=a"), SYSTEM,
                      services=[service("s", {"app": "a"})]) is None


def test_list_default_hard_constraints_filter_with_the_service_selector():
    args = PodTopologySpreadArgs(defaulting_type="List", default_constraints=(
        TopologySpreadDefault(1, "zone", "DoNotSchedule"),))
    pods = [P("p1", "node-a", "app=a"), P("p2", "node-b", "app=a"), P("p3", "node-x", "app=b")]
    pod = P("p", labels="app=a")
    got = run_filter(FOUR, pods, pod, args, services=[service("s", {"app": "a"})])
    assert codes_of(got) == {"node-a": U, "node-b": U, "node-x": S, "node-y": S}
    # a Service of another namespace does not select the pod: no default constraint
    assert run_filter(FOUR, pods, pod, args, services=[service("s", {"app": "a"}, "x")]) \
        is None


# ====================================================================== kube: AddPod/RemovePod

ADD_CASES = [
    ("node a and b both impact current min match",
     P("p", labels="foo=", topologySpreadConstraints=[DNS(1, "node", FOO)]),
     P("p-a1", "node-a", "foo="), [], 0,
     [N("node-a", "zone=zone1 node=node-a"), N("node-b", "zone=zone1 node=node-b")],
     [({"node-a": 1, "node-b": 0}, 0)]),
    ("only node a impacts current min match",
     P("p", labels="foo=", topologySpreadConstraints=[DNS(1, "node", FOO)]),
     P("p-a1", "node-a", "foo="), [P("p-b1", "node-b", "foo=")], 0,
     [N("node-a", "zone=zone1 node=node-a"), N("node-b", "zone=zone1 node=node-b")],
     [({"node-a": 1, "node-b": 1}, 1)]),
    ("add a pod in a different namespace doesn't change topologyKeyToMinPodsMap",
     P("p", labels="foo=", topologySpreadConstraints=[DNS(1, "node", FOO)]),
     P("p-a1", "node-a", "foo=", ns="ns1"), [P("p-b1", "node-b", "foo=")], 0,
     [N("node-a", "zone=zone1 node=node-a"), N("node-b", "zone=zone1 node=node-b")],
     [({"node-a": 0, "node-b": 1}, 0)]),
    ("add pod on non-critical node won't trigger re-calculation",
     P("p", labels="foo=", topologySpreadConstraints=[DNS(1, "node", FOO)]),
     P("p-b2", "node-b", "foo="), [P("p-b1", "node-b", "foo=")], 1,
     [N("node-a", "zone=zone1 node=node-a"), N("node-b", "zone=zone1 node=node-b")],
     [({"node-a": 0, "node-b": 2}, 0)]),
    ("node a and x both impact topologyKeyToMinPodsMap on zone and node",
     P("p", labels="foo=", topologySpreadConstraints=[DNS(1, "zone", FOO),
                                                      DNS(1, "node", FOO)]),
     P("p-a1", "node-a", "foo="), [], 0, [FOUR[0], FOUR[2]],
     [({"zone1": 1, "zone2": 0}, 0), ({"node-a": 1, "node-x": 0}, 0)]),
    ("only node a impacts topologyKeyToMinPodsMap on zone and node",
     P("p", labels="foo=", topologySpreadConstraints=[DNS(1, "zone", FOO),
                                                      DNS(1, "node", FOO)]),
     P("p-a1", "node-a", "foo="), [P("p-x1", "node-x", "foo=")], 0, [FOUR[0], FOUR[2]],
     [({"zone1": 1, "zone2": 1}, 1), ({"node-a": 1, "node-x": 1}, 1)]),
    ("node a impacts node, node x impacts zone",
     P("p", labels="foo=", topologySpreadConstraints=[DNS(1, "zone", FOO),
                                                      DNS(1, "node", FOO)]),
     P("p-a1", "node-a", "foo="),
     [P("p-b1", "node-b", "foo="), P("p-b2", "node-b", "foo="), P("p-x1", "node-x", "foo=")],
     0, [FOUR[0], FOUR[1], FOUR[2]],
     [({"zone1": 3, "zone2": 1}, 1), ({"node-a": 1, "node-b": 2, "node-x": 1}, 1)]),
    ("Constraints hold different labelSelectors, node a impacts zone",
     P("p", labels="foo= bar=", topologySpreadConstraints=[DNS(1, "zone", FOO),
                                                           DNS(1, "node", BAR)]),
     P("p-a1", "node-a", "foo="),
     [P("p-b1", "node-b", "foo= bar="), P("p-x1", "node-x", "foo= bar="),
      P("p-x2", "node-x", "bar=")], 0, [FOUR[0], FOUR[1], FOUR[2]],
     [({"zone1": 2, "zone2": 1}, 1), ({"node-a": 0, "node-b": 1, "node-x": 2}, 0)]),
    ("Constraints hold different labelSelectors, node a impacts zone and node",
     P("p", labels="foo= bar=", topologySpreadConstraints=[DNS(1, "zone", FOO),
                                                           DNS(1, "node", BAR)]),
     P("p-a1", "node-a", "foo= bar="),
     [P("p-b1", "node-b", "bar="), P("p-x1", "node-x", "foo= bar="),
      P("p-x2", "node-x", "bar=")], 0, [FOUR[0], FOUR[1], FOUR[2]],
     [({"zone1": 1, "zone2": 1}, 1), ({"node-a": 1, "node-b": 1, "node-x": 2}, 1)]),
    ("add a pod when scheduling node affinity unmatched pod",
     P("p", labels="foo=", affinity=node_affinity("foo", "NotIn", ["bar"]),
       topologySpreadConstraints=[DNS(1, "zone", FOO)]),
     P("p-a1", "node-a", "foo= zone=zone1"),
     [P("p-a2", "node-a", "foo= zone=zone1"), P("p-b1", "node-b", "foo= zone=zone2")], 0,
     [N("node-a", "zone=zone1 node=node-a foo=bar"), N("node-b", "zone=zone2 node=node-b foo=")],
     [({"zone2": 1}, 1)]),
    ("add a pod when scheduling node affinity matched pod",
     P("p", labels="foo=", topologySpreadConstraints=[DNS(1, "zone", FOO)]),
     P("p-b1", "node-b", "foo= zone=zone2"),
     [P("p-a1", "node-a", "foo= zone=zone1"), P("p-b2", "node-b", "foo= zone=zone2")], 1,
     [N("node-a", "zone=zone1 node=node-a foo=bar"), N("node-b", "zone=zone2 node=node-b foo=")],
     [({"zone1": 1, "zone2": 2}, 1)]),
]


@pytest.mark.parametrize("case", ADD_CASES, ids=[c[0] for c in ADD_CASES])
def test_kube_prefilter_add_pod(case):
    _, pod, added, pods, node_idx, nodes, want = case
    plugin, snap = _setup("PodTopologySpread", nodes, pods, LIST)
    state = CycleState()
    info = snap.pod_info(pod)
    assert plugin.pre_filter(state, info, snap.alive_nodes())[0].is_success
    before = state["PodTopologySpread"].clone()
    assert plugin.pre_filter_add_pod(state, info, snap.pod_info(added), node_idx).is_success
    assert _tables(snap, state["PodTopologySpread"]) == want
    # removing it again restores the counts (the clone was not touched)
    plugin.pre_filter_remove_pod(state, info, snap.pod_info(added), node_idx)
    assert state["PodTopologySpread"].sums.tolist() == before.sums.tolist()


def test_kube_prefilter_remove_pod():
    """RemovePod cases: a pod deleted from node-a / node-b changes the zone counts."""
    pod = P("p", labels="foo=", topologySpreadConstraints=[DNS(1, "zone", FOO),
                                                           DNS(1, "node", FOO)])
    pods = [P("p-a1", "node-a", "foo="), P("p-a2", "node-a", "foo="),
            P("p-b1", "node-b", "foo="), P("p-x1", "node-x", "foo=")]
    nodes = [FOUR[0], FOUR[1], FOUR[2]]
    plugin, snap = _setup("PodTopologySpread", nodes, pods, LIST)
    state = CycleState()
    info = snap.pod_info(pod)
    plugin.pre_filter(state, info, snap.alive_nodes())
    # "node a and b both impact current min match" style: delete p-a1 then p-b1
    plugin.pre_filter_remove_pod(state, info, snap.pods["default/p-a1"], 0)
    assert _tables(snap, state["PodTopologySpread"]) == [
        ({"zone1": 2, "zone2": 1}, 1), ({"node-a": 1, "node-b": 1, "node-x": 1}, 1)]
    plugin.pre_filter_remove_pod(state, info, snap.pods["default/p-b1"], 1)
    assert _tables(snap, state["PodTopologySpread"]) == [
        ({"zone1": 1, "zone2": 1}, 1), ({"node-a": 1, "node-b": 0, "node-x": 1}, 0)]
    # a pod of another namespace changes nothing
    other = snap.pod_info(P("q", "node-a", "foo=", ns="ns1"))
    plugin.pre_filter_remove_pod(state, info, other, 0)
    assert _tables(snap, state["PodTopologySpread"])[1][1] == 0


# ============================================================================== kube: Score

SCORE_CASES = [
    # (name, pod, candidate nodes, failed nodes, existing pods, expected, services)
    ("one constraint on node, no existing pods",
     P("p", labels="foo=", topologySpreadConstraints=[SA(1, HOST, FOO)]),
     [N("node-a", f"{HOST}=node-a"), N("node-b", f"{HOST}=node-b")], [], [],
     {"node-a": 100, "node-b": 100}, ()),
    ("one constraint on node, only one node is candidate",
     P("p", labels="foo=", topologySpreadConstraints=[SA(1, HOST, FOO)]),
     [N("node-a", f"{HOST}=node-a")], [N("node-b", f"{HOST}=node-b")],
     [P("p-a1", "node-a", "foo="), P("p-a2", "node-a", "foo="), P("p-b1", "node-b", "foo=")],
     {"node-a": 100}, ()),
    ("one constraint on node, all nodes have the same number of matching pods",
     P("p", labels="foo=", topologySpreadConstraints=[SA(1, HOST, FOO)]),
     [N("node-a", f"{HOST}=node-a"), N("node-b", f"{HOST}=node-b")], [],
     [P("p-a1", "node-a", "foo="), P("p-b1", "node-b", "foo=")],
     {"node-a": 100, "node-b": 100}, ()),
    ("one constraint on node, all 4 nodes are candidates",
     P("p", labels="foo=", topologySpreadConstraints=[SA(1, HOST, FOO)]),
     [N(f"node-{c}", f"{HOST}=node-{c}") for c in "abcd"], [],
     [P("p-a1", "node-a", "foo="), P("p-a2", "node-a", "foo="), P("p-b1", "node-b", "foo="),
      P("p-d1", "node-d", "foo="), P("p-d2", "node-d", "foo="), P("p-d3", "node-d", "foo=")],
     {"node-a": 20, "node-b": 60, "node-c": 100, "node-d": 0}, ()),
    ("one constraint on node, null selector",
     P("p", labels="foo=", topologySpreadConstraints=[SA(1, HOST)]),
     [N(f"node-{c}", f"{HOST}=node-{c}") for c in "abcd"], [],
     [P("p-a1", "node-a", "foo="), P("p-a2", "node-a", "foo="), P("p-b1", "node-b", "foo="),
      P("p-d1", "node-d", "foo="), P("p-d2", "node-d", "foo="), P("p-d3", "node-d", "foo=")],
     {"node-a": 100, "node-b": 100, "node-c": 100, "node-d": 100}, ()),
    ("one constraint on node, all 4 nodes are candidates, maxSkew=2",
     P("p", labels="foo=", topologySpreadConstraints=[SA(2, HOST, FOO)]),
     [N(f"node-{c}", f"{HOST}=node-{c}") for c in "abcd"], [],
     [P("p-a1", "node-a", "foo="), P("p-a2", "node-a", "foo="), P("p-b1", "node-b", "foo="),
      P("p-d1", "node-d", "foo="), P("p-d2", "node-d", "foo="), P("p-d3", "node-d", "foo=")],
     {"node-a": 33, "node-b": 66, "node-c": 100, "node-d": 16}, ()),
    ("one constraint on node, all 4 nodes are candidates, maxSkew=3",
     P("p", labels="foo=", topologySpreadConstraints=[SA(3, HOST, FOO)]),
     [N(f"node-{c}", f"{HOST}=node-{c}") for c in "abcd"], [],
     [P(f"p-a{i}", "node-a", "foo=") for i in range(4)]
     + [P(f"p-b{i}", "node-b", "foo=") for i in range(3)]
     + [P(f"p-c{i}", "node-c", "foo=") for i in range(2)] + [P("p-d1", "node-d", "foo=")],
     {"node-a": 44, "node-b": 66, "node-c": 77, "node-d": 100}, ()),
    ("system defaulting, nodes don't have zone, pods match service",
     P("p", labels="foo="),
     [N(f"node-{c}", f"{HOST}=node-{c}") for c in "abcd"], [],
     [P(f"p-a{i}", "node-a", "foo=") for i in range(4)]
     + [P(f"p-b{i}", "node-b", "foo=") for i in range(3)]
     + [P(f"p-c{i}", "node-c", "foo=") for i in range(2)] + [P("p-d1", "node-d", "foo=")],
     {"node-a": 44, "node-b": 66, "node-c": 77, "node-d": 100},
     (service("s", {"foo": ""}),)),
    ("one constraint on node, 3 out of 4 nodes are candidates",
     P("p", labels="foo=", topologySpreadConstraints=[SA(1, HOST, FOO)]),
     [N("node-a", f"{HOST}=node-a"), N("node-b", f"{HOST}=node-b"),
      N("node-x", f"{HOST}=node-x")], [N("node-y", f"{HOST}=node-y")],
     [P(f"p-a{i}", "node-a", "foo=") for i in range(4)]
     + [P(f"p-b{i}", "node-b", "foo=") for i in range(2)] + [P("p-x1", "node-x", "foo=")]
     + [P(f"p-y{i}", "node-y", "foo=") for i in range(3)],
     {"node-a": 33, "node-b": 83, "node-x": 100}, ()),
    ("one constraint on node, 3 out of 4 nodes are candidates, one node lacks the key",
     P("p", labels="foo=", topologySpreadConstraints=[SA(1, HOST, FOO)]),
     [N("node-a", f"{HOST}=node-a"), N("node-b", "n=node-b"),
      N("node-x", f"{HOST}=node-x")], [N("node-y", f"{HOST}=node-y")],
     [P(f"p-a{i}", "node-a", "foo=") for i in range(4)]
     + [P(f"p-b{i}", "node-b", "foo=") for i in range(2)] + [P("p-x1", "node-x", "foo=")]
     + [P(f"p-y{i}", "node-y", "foo=") for i in range(3)],
     {"node-a": 16, "node-b": 0, "node-x": 100}, ()),
    ("one constraint on zone, 3 out of 4 nodes are candidates",
     P("p", labels="foo=", topologySpreadConstraints=[SA(1, "zone", FOO)]),
     [N("node-a", f"zone=zone1 {HOST}=node-a"), N("node-b", f"zone=zone1 {HOST}=node-b"),
      N("node-x", f"zone=zone2 {HOST}=node-x")], [N("node-y", f"zone=zone2 {HOST}=node-y")],
     [P(f"p-a{i}", "node-a", "foo=") for i in range(4)]
     + [P(f"p-b{i}", "node-b", "foo=") for i in range(2)] + [P("p-x1", "node-x", "foo=")]
     + [P(f"p-y{i}", "node-y", "foo=") for i in range(3)],
     {"node-a": 75, "node-b": 75, "node-x": 100}, ()),
    ("two Constraints on zone and node, 2 out of 4 nodes are candidates",
     P("p", labels="foo=", topologySpreadConstraints=[SA(1, "zone", FOO), SA(1, HOST, FOO)]),
     [N("node-a", f"zone=zone1 {HOST}=node-a"), N("node-x", f"zone=zone2 {HOST}=node-x")],
     [N("node-b", f"zone=zone1 {HOST}=node-b"), N("node-y", f"zone=zone2 {HOST}=node-y")],
     [P("p-a1", "node-a", "foo="), P("p-a2", "node-a", "foo="), P("p-b1", "node-b", "foo="),
      P("p-x1", "node-x", "foo="), P("p-x2", "node-x", "foo=")]
     + [P(f"p-y{i}", "node-y", "foo=") for i in range(4)],
     {"node-a": 100, "node-x": 63}, ()),
    ("two Constraints on zone and node, with different labelSelectors",
     P("p", labels="foo= bar=", topologySpreadConstraints=[SA(1, "zone", FOO),
                                                           SA(1, HOST, BAR)]),
     [N(f"node-{c}", f"zone=zone{1 if c in 'ab' else 2} {HOST}=node-{c}") for c in "abxy"],
     [], [P("p-a1", "node-a", "foo="), P("p-b1", "node-b", "foo= bar="),
          P("p-y1", "node-y", "foo="), P("p-y2", "node-y", "bar=")],
     {"node-a": 60, "node-b": 20, "node-x": 100, "node-y": 60}, ()),
    ("two Constraints on zone and node, with different labelSelectors, some nodes have 0",
     P("p", labels="foo= bar=", topologySpreadConstraints=[SA(1, "zone", FOO),
                                                           SA(1, HOST, BAR)]),
     [N(f"node-{c}", f"zone=zone{1 if c in 'ab' else 2} {HOST}=node-{c}") for c in "abxy"],
     [], [P("p-b1", "node-b", "bar="), P("p-x1", "node-x", "foo="),
          P("p-y1", "node-y", "foo= bar=")],
     {"node-a": 100, "node-b": 60, "node-x": 40, "node-y": 0}, ()),
    ("two Constraints on zone and node, with different labelSelectors, 3 of 4 candidates",
     P("p", labels="foo= bar=", topologySpreadConstraints=[SA(1, "zone", FOO),
                                                           SA(1, HOST, BAR)]),
     [N(f"node-{c}", f"zone=zone{1 if c in 'ab' else 2} {HOST}=node-{c}") for c in "abx"],
     [N("node-y", f"zone=zone2 {HOST}=node-y")],
     [P("p-a1", "node-a", "foo="), P("p-b1", "node-b", "foo= bar="),
      P("p-y1", "node-y", "foo="), P("p-y2", "node-y", "bar=")],
     {"node-a": 50, "node-b": 25, "node-x": 100}, ()),
    ("existing pods in a different namespace do not count",
     P("p", labels="foo=", topologySpreadConstraints=[SA(1, HOST, FOO)]),
     [N("node-a", f"{HOST}=node-a"), N("node-b", f"{HOST}=node-b")], [],
     [P("p-a1", "node-a", "foo=", ns="ns1"), P("p-a2", "node-a", "foo="),
      P("p-b1", "node-b", "foo="), P("p-b2", "node-b", "foo=")],
     {"node-a": 100, "node-b": 33}, ()),
    ("terminating Pods should be excluded",
     P("p", labels="foo=", topologySpreadConstraints=[SA(1, HOST, FOO)]),
     [N("node-a", f"{HOST}=node-a"), N("node-b", f"{HOST}=node-b")], [],
     [P("p-a", "node-a", "foo=", terminating=True), P("p-b", "node-b", "foo=")],
     {"node-a": 100, "node-b": 0}, ()),
    ("minDomains has no effect when ScheduleAnyway",
     _min_domains(P("p", labels="foo=", topologySpreadConstraints=[SA(2, "node", FOO)]), 10),
     [N("node-a", "node=node-a"), N("node-b", "node=node-b"), N("node-c", "node=node-c")], [],
     [P("p-a1", "node-a", "foo="), P("p-a2", "node-a", "foo="), P("p-b1", "node-b", "foo="),
      P("p-b2", "node-b", "foo="), P("p-c1", "node-c", "foo=")],
     {"node-a": 75, "node-b": 75, "node-c": 100}, ()),
    ("NodeAffinityPolicy honored with labelSelectors",
     P("p", labels="foo=", nodeSelector={"foo": ""},
       topologySpreadConstraints=[SA(1, "node", FOO)]),
     [N("node-a", "node=node-a foo="), N("node-b", "node=node-b foo="),
      N("node-c", "node=node-c")], [],
     [P("p-a1", "node-a", "foo="), P("p-a2", "node-a", "foo="), P("p-b1", "node-b", "foo="),
      P("p-c1", "node-c", "foo=")],
     {"node-a": 0, "node-b": 33, "node-c": 100}, ()),
    ("NodeAffinityPolicy ignored with labelSelectors",
     P("p", labels="foo=", nodeSelector={"foo": ""},
       topologySpreadConstraints=[SA(1, "node", FOO, aff="Ignore")]),
     [N("node-a", "node=node-a foo="), N("node-b", "node=node-b foo="),
      N("node-c", "node=node-c")], [],
     [P("p-a1", "node-a", "foo="), P("p-a2", "node-a", "foo="), P("p-b1", "node-b", "foo="),
      P("p-c1", "node-c", "foo=")],
     {"node-a": 66, "node-b": 100, "node-c": 100}, ()),
    ("NodeAffinityPolicy honored with nodeAffinity",
     P("p", labels="foo=", affinity=node_affinity("foo", "In", [""]),
       topologySpreadConstraints=[SA(1, "node", FOO)]),
     [N("node-a", "node=node-a foo="), N("node-b", "node=node-b foo="),
      N("node-c", "node=node-c")], [],
     [P("p-a1", "node-a", "foo="), P("p-a2", "node-a", "foo="), P("p-b1", "node-b", "foo="),
      P("p-c1", "node-c", "foo=")],
     {"node-a": 0, "node-b": 33, "node-c": 100}, ()),
    ("NodeTaintsPolicy honored",
     P("p", labels="foo=", topologySpreadConstraints=[SA(1, "node", FOO, taints="Honor")]),
     [N("node-a", "node=node-a"), N("node-b", "node=node-b"),
      N("node-c", "node=node-c", UNSCHED_TAINT)], [],
     [P("p-a1", "node-a", "foo="), P("p-a2", "node-a", "foo="), P("p-b1", "node-b", "foo="),
      P("p-c1", "node-c", "foo=")],
     {"node-a": 0, "node-b": 33, "node-c": 100}, ()),
    ("NodeTaintsPolicy ignored",
     P("p", labels="foo=", topologySpreadConstraints=[SA(1, "node", FOO)]),
     [N("node-a", "node=node-a"), N("node-b", "node=node-b"),
      N("node-c", "node=node-c", UNSCHED_TAINT)], [],
     [P("p-a1", "node-a", "foo="), P("p-a2", "node-a", "foo="), P("p-b1", "node-b", "foo="),
      P("p-c1", "node-c", "foo=")],
     {"node-a": 66, "node-b": 100, "node-c": 100}, ()),
    ("matchLabelKeys ANDed with LabelSelector when LabelSelector is empty",
     P("p", labels="foo= bar=", topologySpreadConstraints=[
         SA(1, "zone", {}, mlk=["foo"]), SA(1, HOST, {}, mlk=["bar"])]),
     [N(f"node-{c}", f"zone=zone{1 if c in 'ab' else 2} {HOST}=node-{c}") for c in "abcd"],
     [], [P("p-a1", "node-a", "foo="), P("p-b1", "node-b", "foo= bar="),
          P("p-y1", "node-c", "foo="), P("p-y2", "node-c", "bar=")],
     {"node-a": 60, "node-b": 20, "node-c": 60, "node-d": 100}, ()),
    ("matchLabelKeys ANDed with LabelSelector when LabelSelector isn't empty",
     P("p", labels="foo= bar= baz=", topologySpreadConstraints=[
         SA(1, "zone", FOO), SA(1, HOST, BAR, mlk=["baz"])]),
     [N(f"node-{c}", f"zone=zone{1 if c in 'ab' else 2} {HOST}=node-{c}") for c in "abcd"],
     [], [P("p-a1", "node-a", "foo="), P("p-b1", "node-b", "foo= bar= baz="),
          P("p-c1", "node-c", "foo="), P("p-c2", "node-c", "bar="),
          P("p-d3", "node-c", "bar= baz=")],
     {"node-a": 60, "node-b": 20, "node-c": 60, "node-d": 100}, ()),
]


@pytest.mark.parametrize("case", SCORE_CASES, ids=[c[0] for c in SCORE_CASES])
def test_kube_score(case):
    _, pod, candidates, failed, pods, want, services = case
    got = run_score(candidates + failed, pods, pod, [n.name for n in candidates], SYSTEM,
                    services)
    assert got == want


PRESCORE_SKIP_CASES = [
    ("the pod doesn't have soft topology spread Constraints", P("p"), LIST, ()),
    ("default constraints and a replicaset that doesn't match",
     P("p", labels="foo=bar baz=sup", owner=(*RS_OWNER, "rs2")),
     PodTopologySpreadArgs(defaulting_type="List", default_constraints=(
         TopologySpreadDefault(2, "planet", "ScheduleAnyway"),)),
     (replica_set("rs1", {"matchExpressions": [{"key": "tar", "operator": "Exists"}]},
                  {"tar": "x"}),)),
]


@pytest.mark.parametrize("case", PRESCORE_SKIP_CASES, ids=[c[0] for c in PRESCORE_SKIP_CASES])
def test_kube_prescore_skip(case):
    _, pod, args, rss = case
    nodes = [N("node-a", f"{HOST}=node-a planet=mars"), N("node-b", f"{HOST}=node-b")]
    assert run_score(nodes, [], pod, args=args, replica_sets=rss) is None


def _prescore_state(nodes, pod, args, rss=(), filtered=None):
    plugin, snap = _setup("PodTopologySpread", nodes, [], args, replica_sets=rss)
    state = CycleState()
    idx = snap.alive_nodes() if filtered is None else \
        np.array([snap.node_index[n] for n in filtered], np.int64)
    assert plugin.pre_score(state, snap.pod_info(pod), idx).is_success
    s = state["PodTopologySpread/score"]
    domains = []
    for c, con in enumerate(s.constraints):
        if s.is_host[c]:
            continue
        k = snap.vocab.key_id(con.topology_key)
        names = list(snap.vocab.values[k].names) + [""]
        empty = names.index("")
        # domains the kernel registered: count the distinct (value or '') of scored nodes
        vals = {names[empty if v < 0 else v] for n, v in enumerate(s.dom[c].tolist())
                if n in idx and not s.ignored[n]}
        domains.append(vals)
    ignored = {snap.node_names[n] for n in np.flatnonzero(s.ignored)}
    return s, domains, ignored


def test_kube_prescore_state_weights():
    """TestPreScoreStateEmptyNodes: which domains exist, ignored nodes, and the normalising
    weights (log(size + 2), hostname: the number of filtered, not ignored nodes)."""
    three = [N("node-a", f"zone=zone1 {HOST}=node-a"), N("node-b", f"zone=zone1 {HOST}=node-b"),
             N("node-x", f"zone=zone2 {HOST}=node-x")]
    s, domains, ignored = _prescore_state(three, P("p", labels="foo=", topologySpreadConstraints=[
        SA(1, "zone", FOO), SA(1, HOST, FOO)]), LIST)
    assert s.weights.tolist() == [go_log(4), go_log(5)]
    assert domains == [{"zone1", "zone2"}] and ignored == set()
    # node-x lacks zone: ignored; weights log(1+2) and log(2+2)
    three[2] = N("node-x", f"{HOST}=node-x")
    s, domains, ignored = _prescore_state(three, P("p", labels="foo=", topologySpreadConstraints=[
        SA(1, "zone", FOO), SA(1, HOST, BAR)]), LIST)
    assert s.weights.tolist() == [go_log(3), go_log(4)]
    assert domains == [{"zone1"}] and ignored == {"node-x"}
    # system defaults and a replicaset: nodes without zone form the '' domain
    nodes = [N("node-a", f"{HOST}=node-a {ZONE}=mars"), N("node-b", f"{HOST}=node-b {ZONE}=mars"),
             N("node-c", f"{HOST}=node-c"), N("node-d", f"{HOST}=node-d")]
    rs = replica_set("rs1", FOO, {"foo": "tar"})
    s, domains, ignored = _prescore_state(
        nodes, P("p", labels="foo=tar baz=sup", owner=(*RS_OWNER, "rs1")), SYSTEM, (rs,))
    assert [c.max_skew for c in s.constraints] == [3, 5]
    assert s.weights.tolist() == [go_log(6), go_log(4)]
    assert domains == [{"mars", ""}] and ignored == set()
    # List defaults: the DoNotSchedule one is not a score constraint
    args = PodTopologySpreadArgs(defaulting_type="List", default_constraints=(
        TopologySpreadDefault(1, HOST, "ScheduleAnyway"),
        TopologySpreadDefault(2, "rack", "DoNotSchedule"),
        TopologySpreadDefault(2, "planet", "ScheduleAnyway")))
    s, domains, _ = _prescore_state([N("node-a", f"rack=rack1 {HOST}=node-a planet=mars")],
                                    P("p", labels="foo=tar baz=sup", owner=(*RS_OWNER, "rs1")),
                                    args, (rs,))
    assert [(c.topology_key, c.max_skew) for c in s.constraints] == [(HOST, 1), ("planet", 2)]
    assert s.weights.tolist() == [go_log(3), go_log(3)]
    assert domains == [{"mars"}]


def test_prescore_counts_only_nodes_with_every_key():
    """Pods are summed into a domain only from nodes carrying every constraint's key: node-c
    (rack r1, no zone, 5 matching pods) adds nothing to rack r1. By hand: zone {z1: 1, z2: 2},
    rack {r1: 1, r2: 2}, weights log(4); raw a = round(2 log 4) = 3, b = round(4 log 4) = 6;
    normalised a = 100 * (9 - 3) / 6 = 100, b = 100 * (9 - 6) / 6 = 50."""
    nodes = [N("node-a", "zone=z1 rack=r1"), N("node-b", "zone=z2 rack=r2"),
             N("node-c", "rack=r1")]
    pods = ([P("a1", "node-a", "foo=")] + [P(f"b{i}", "node-b", "foo=") for i in range(2)]
            + [P(f"c{i}", "node-c", "foo=") for i in range(5)])
    pod = P("p", labels="foo=", topologySpreadConstraints=[SA(1, "zone", FOO),
                                                           SA(1, "rack", FOO)])
    assert run_score(nodes, pods, pod, ["node-a", "node-b"]) == {"node-a": 100, "node-b": 50}


def test_hostname_weight_counts_filtered_nodes_that_are_not_ignored():
    """Hostname's weight is log(filtered - ignored + 2): node-c (no zone) is filtered but
    ignored, so log(4), not log(5). By hand: zone {z1: 10}, weight log(3); raw a =
    round(10 log 4 + 10 log 3) = 25, b = round(10 log 3) = 11, c ignored (0); normalised
    a = 100 * (36 - 25) / 25 = 44, b = 100, c = 0."""
    nodes = [N("node-a", f"{HOST}=node-a zone=z1"), N("node-b", f"{HOST}=node-b zone=z1"),
             N("node-c", f"{HOST}=node-c")]
    pods = [P(f"a{i}", "node-a", "foo=") for i in range(10)]
    pod = P("p", labels="foo=", topologySpreadConstraints=[SA(1, HOST, FOO),
                                                           SA(1, "zone", FOO)])
    assert run_score(nodes, pods, pod) == {"node-a": 44, "node-b": 100, "node-c": 0}


def test_go_log_differs_from_libm_and_round_is_half_away():
    # Go's math.Log is not the C library's: they differ in the last bit for some integers,
    # which can move a rounded score by one.
    assert any(go_log(float(n)) != math.log(n) for n in range(2, 50))
    assert all(abs(go_log(float(n)) - math.log(n)) <= 2 * math.ulp(math.log(n))
               for n in range(2, 5000))
    assert go_round(2.5) == 3.0 and go_round(0.5) == 1.0 and go_round(0.49999999999999994) == 0
    assert go_round(-2.5) == -3.0 and go_round(4.4999) == 4.0


@given(st.one_of(st.integers(2, 10**6).map(float),
                 st.floats(min_value=1e-300, max_value=1e300, allow_nan=False)))
def test_compiled_go_log_equals_the_reference(x):
    """The kernels' compiled go_log (the fused default spreading) and the plugin's are the
    reference's Go algorithm bit for bit."""
    assert go_log_jit(x) == go_log(x) == ref.go_log(x)


# ======================================================================= kube: SelectorSpread

L1 = "foo=bar baz=blah"
L2 = "bar=foo baz=blah"


def _rc(name, selector, ns="default"):
    return SimpleNamespace(metadata=SimpleNamespace(name=name, namespace=ns),
                           spec=SimpleNamespace(selector=selector))


def _ss(name, match_labels, ns="default"):
    return SimpleNamespace(metadata=SimpleNamespace(name=name, namespace=ns),
                           spec=SimpleNamespace(selector=label_selector_from_dict(
                               {"matchLabels": match_labels})))


SS_CASES = [
    ("nothing scheduled", P("p"), [], {}, (100, 100)),
    ("no services", P("p", labels=L1), [P("q", "node1")], {}, (100, 100)),
    ("different services", P("p", labels=L1), [P("q", "node1", L2)],
     {"services": [service("s1", {"key": "value"})]}, (100, 100)),
    ("two pods, one service pod", P("p", labels=L1),
     [P("q1", "node1", L2), P("q2", "node2", L1)],
     {"services": [service("s1", _labels(L1))]}, (100, 0)),
    ("five pods, one service pod in no namespace", P("p", labels=L1),
     [P("q1", "node1", L2), P("q2", "node1", L1), P("q3", "node1", L1, ns="ns1"),
      P("q4", "node2", L1), P("q5", "node2", L2)],
     {"services": [service("s1", _labels(L1))]}, (0, 0)),
    ("five pods, one service pod in specific namespace", P("p", labels=L1, ns="ns1"),
     [P("q1", "node1", L2), P("q2", "node1", L1), P("q3", "node1", L1, ns="ns2"),
      P("q4", "node2", L1, ns="ns1"), P("q5", "node2", L2)],
     {"services": [service("s1", _labels(L1), "ns1")]}, (100, 0)),
    ("three pods, two service pods on different nodes", P("p", labels=L1),
     [P("q1", "node1", L2), P("q2", "node1", L1), P("q3", "node2", L1)],
     {"services": [service("s1", _labels(L1))]}, (0, 0)),
    ("four pods, three service pods", P("p", labels=L1),
     [P("q1", "node1", L2), P("q2", "node1", L1), P("q3", "node2", L1), P("q4", "node2", L1)],
     {"services": [service("s1", _labels(L1))]}, (50, 0)),
    ("service with partial pod label matches", P("p", labels=L1),
     [P("q1", "node1", L2), P("q2", "node1", L1), P("q3", "node2", L1)],
     {"services": [service("s1", {"baz": "blah"})]}, (0, 50)),
    ("service with partial pod label matches with service and replication controller",
     P("p", labels=L1, owner=("v1", "ReplicationController", "rc1")),
     [P("q1", "node1", L2), P("q2", "node1", L1), P("q3", "node2", L1)],
     {"services": [service("s1", {"baz": "blah"})],
      "replication_controllers": [_rc("rc1", {"foo": "bar"}), _rc("rc2", {"bar": "foo"})]},
     (0, 0)),
    ("service with partial pod label matches with service and replica set",
     P("p", labels=L1, owner=(*RS_OWNER, "rs1")),
     [P("q1", "node1", L2), P("q2", "node1", L1), P("q3", "node2", L1)],
     {"services": [service("s1", {"baz": "blah"})],
      "replica_sets": [replica_set("rs1", {"matchLabels": {"foo": "bar"}}, {"foo": "bar"}),
                       replica_set("rs2", {"matchLabels": {"bar": "foo"}}, {"bar": "foo"})]},
     (0, 0)),
    ("service with partial pod label matches with service and statefulset",
     P("p", labels=L1, owner=("apps/v1", "StatefulSet", "ss1")),
     [P("q1", "node1", L2), P("q2", "node1", L1), P("q3", "node2", L1)],
     {"services": [service("s1", {"baz": "blah"})],
      "stateful_sets": [_ss("ss1", {"foo": "bar"}), _ss("ss2", {"bar": "foo"})]}, (0, 0)),
    ("disjoined service and replication controller matches no pods",
     P("p", labels="foo=bar bar=foo", owner=("v1", "ReplicationController", "rc3")),
     [P("q1", "node1", L2), P("q2", "node1", L1), P("q3", "node2", L1)],
     {"services": [service("s1", {"bar": "foo"})],
      "replication_controllers": [_rc("rc3", {"foo": "bar"})]}, (100, 100)),
    ("disjoined service and replica set matches no pods",
     P("p", labels="foo=bar bar=foo", owner=(*RS_OWNER, "rs3")),
     [P("q1", "node1", L2), P("q2", "node1", L1), P("q3", "node2", L1)],
     {"services": [service("s1", {"bar": "foo"})],
      "replica_sets": [replica_set("rs3", {"matchLabels": {"foo": "bar"}}, {"foo": "bar"})]},
     (100, 100)),
    ("Another replication set with partial pod label matches",
     P("p", labels=L1, owner=(*RS_OWNER, "rs3")),
     [P("q1", "node1", L2), P("q2", "node1", L1), P("q3", "node2", L1)],
     {"replica_sets": [replica_set("rs3", {"matchLabels": {"baz": "blah"}}, {"baz": "blah"})]},
     (0, 50)),
    ("Another stateful set with partial pod label matches",
     P("p", labels=L1, owner=("apps/v1", "StatefulSet", "ss3")),
     [P("q1", "node1", L2), P("q2", "node1", L1), P("q3", "node2", L1)],
     {"stateful_sets": [_ss("ss3", {"baz": "blah"})]}, (0, 50)),
]


@pytest.mark.parametrize("case", SS_CASES, ids=[c[0] for c in SS_CASES])
def test_kube_selector_spread(case):
    _, pod, pods, objs, want = case
    nodes = [N("node1"), N("node2")]
    cluster = make_cluster(nodes, pods, services=objs.get("services", []),
                           replica_sets=objs.get("replica_sets", []))
    cluster.replication_controllers = objs.get("replication_controllers", [])
    cluster.stateful_sets = objs.get("stateful_sets", [])
    plugin, snap = plugin_on("SelectorSpread", cluster)
    got = _score(plugin, snap, pod, ["node1", "node2"])
    assert (got["node1"], got["node2"]) == want
    if not objs.get("replication_controllers") and not objs.get("stateful_sets"):
        assert got == ref.selector_spread_scores(nodes, pods, pod, ["node1", "node2"],
                                                 objs.get("services", ()),
                                                 objs.get("replica_sets", ()))


def test_kube_selector_spread_skips_pods_with_constraints():
    pod = P("p", labels=L1, owner=("apps/v1", "StatefulSet", "ss1"),
            topologySpreadConstraints=[DNS(1, "foo")])
    assert run_score([N("node1"), N("node2")], [P("q", "node1", L1)], pod,
                     plugin_name="SelectorSpread") is None


ZONED = [("node1.zone1", "zone1"), ("node1.zone2", "zone2"), ("node2.zone2", "zone2"),
         ("node1.zone3", "zone3"), ("node2.zone3", "zone3"), ("node3.zone3", "zone3")]
Z1 = "label1=l1 baz=blah"
Z2 = "label2=l2 baz=blah"
ZONE_CASES = [
    ("nothing scheduled", P("p"), [], (100,) * 6),
    ("no services", P("p", labels=Z1), [("node1.zone1", "")], (100,) * 6),
    ("two pods, 0 matching", P("p", labels=Z1), [("node1.zone1", Z2), ("node1.zone2", Z2)],
     (100,) * 6),
    ("two pods, 1 matching (in z2)", P("p", labels=Z1),
     [("node1.zone1", Z2), ("node1.zone2", Z1)], (100, 0, 33, 100, 100, 100)),
    ("five pods, 3 matching (z2=2, z3=1)", P("p", labels=Z1),
     [("node1.zone1", Z2), ("node1.zone2", Z1), ("node2.zone2", Z1), ("node1.zone3", Z2),
      ("node2.zone3", Z1)], (100, 0, 0, 66, 33, 66)),
    ("four pods, 3 matching (z1=1, z2=1, z3=1)", P("p", labels=Z1),
     [("node1.zone1", Z1), ("node1.zone2", Z1), ("node2.zone2", Z2), ("node1.zone3", Z1)],
     (0, 0, 33, 0, 33, 33)),
    ("five pods, 4 matching (z1=1, z2=2, z3=1)", P("p", labels=Z1),
     [("node1.zone1", Z1), ("node1.zone2", Z1), ("node2.zone2", Z1), ("node2.zone2", Z2),
      ("node1.zone3", Z1)], (33, 0, 0, 33, 66, 66)),
]


@pytest.mark.parametrize("case", ZONE_CASES, ids=[c[0] for c in ZONE_CASES])
def test_kube_zone_selector_spread(case):
    _, pod, placed, want = case
    nodes = [N(name, f"{ZONE}={zone}") for name, zone in ZONED]
    pods = [P(f"q{i}", node, labels) for i, (node, labels) in enumerate(placed)]
    services = [service("s1", _labels(Z1))] if case[0] not in ("nothing scheduled",
                                                               "no services") else []
    got = run_score(nodes, pods, pod, services=services, plugin_name="SelectorSpread")
    assert tuple(got[name] for name, _ in ZONED) == want


def test_zone_key_prefers_the_beta_labels():
    beta, ga = "failure-domain.beta.kubernetes.io/zone", ZONE
    assert zone_key({ga: "a", beta: "b"}) == ":\x00:b"
    assert zone_key({ga: "a", "topology.kubernetes.io/region": "r"}) == "r:\x00:a"
    assert zone_key({ga: ""}) == "" and zone_key({}) == ""


# ======================================================================== Hypothesis: model

APPS = ("a", "b", "c")
NAMESPACES = ("default", "other")
RACKS = ("r0", "r1", "r2")
SPREAD_KEYS = (ZONE, ZONE, HOST, HOST, "rack", "rack", "missing")
TOLERATIONS = (
    [],
    [{"key": "dedicated", "operator": "Exists"}],
    [{"key": "dedicated", "operator": "Equal", "value": "x", "effect": "NoSchedule"}],
    [{"operator": "Exists"}],
)
NODE_TAINTS = (
    [], [], [],
    [{"key": "dedicated", "value": "x", "effect": "NoSchedule"}],
    [{"key": "dedicated", "value": "y", "effect": "NoSchedule"}],
    [{"key": "gpu", "effect": "NoExecute"}],
    [{"key": "spot", "effect": "PreferNoSchedule"}],
)


def _selectors(draw, avoid: set[str]):
    options = [None, {}, {"matchLabels": {"app": draw(st.sampled_from(APPS))}},
               {"matchExpressions": [{"key": "app", "operator": "In",
                                      "values": sorted(draw(st.sets(st.sampled_from(APPS),
                                                                    min_size=1)))}]},
               {"matchExpressions": [{"key": "tier", "operator": "Exists"}]},
               {"matchExpressions": [{"key": "app", "operator": "NotIn", "values": ["c"]}]}]
    sel = draw(st.sampled_from(options))
    keys = set()
    if sel:
        keys = set(sel.get("matchLabels", {})) | {e["key"] for e in
                                                  sel.get("matchExpressions", [])}
    return sel, keys


@st.composite
def pod_labels(draw):
    labels = {}
    if draw(st.integers(0, 9)) < 8:
        labels["app"] = draw(st.sampled_from(APPS))
    if draw(st.booleans()):
        labels["tier"] = draw(st.sampled_from(("web", "db")))
    if draw(st.booleans()):
        labels["pod-template-hash"] = draw(st.sampled_from(("h1", "h2")))
    return labels


@st.composite
def clusters(draw):
    size = draw(st.sampled_from((1, 3, 8, 20, 60, 150, 300)))
    n_nodes = draw(st.integers(1, size))
    zones = [f"z{i}" for i in range(draw(st.integers(1, 4)))] + [""]
    nodes = []
    for i in range(n_nodes):
        labels = {}
        if draw(st.integers(0, 9)) < 8:
            labels[ZONE] = draw(st.sampled_from(zones))
        if draw(st.integers(0, 9)) < 9:
            labels[HOST] = f"n{i}" if draw(st.integers(0, 9)) else f"n{i // 2}"
        if draw(st.booleans()):
            labels["rack"] = draw(st.sampled_from(RACKS))
        if draw(st.booleans()):
            labels["disk"] = draw(st.sampled_from(("ssd", "hdd")))
        if draw(st.integers(0, 4)) == 0:
            labels["failure-domain.beta.kubernetes.io/zone"] = draw(st.sampled_from(zones))
        if draw(st.integers(0, 4)) == 0:
            labels["topology.kubernetes.io/region"] = draw(st.sampled_from(("east", "west")))
        nodes.append(make_node(f"n{i}", labels=labels,
                               taints=draw(st.sampled_from(NODE_TAINTS))))
    n_pods = draw(st.integers(0, min(3 * n_nodes, 300)))
    pods = []
    for j in range(n_pods):
        p = make_pod(f"b{j}", namespace=draw(st.sampled_from(NAMESPACES)),
                     labels=draw(pod_labels()), node=f"n{draw(st.integers(0, n_nodes - 1))}")
        if draw(st.integers(0, 9)) == 0:
            p.metadata.deletion_timestamp = TERMINATING
        pods.append(p)
    services = []
    for k in range(draw(st.integers(0, 3))):
        sel = draw(st.sampled_from((None, {}, {"app": "a"}, {"app": "b"}, {"tier": "web"},
                                    {"app": "a", "tier": "web"})))
        services.append(service(f"s{k}", sel, draw(st.sampled_from(NAMESPACES))))
    rss = []
    for k in range(draw(st.integers(0, 2))):
        app = draw(st.sampled_from(APPS))
        sel = draw(st.sampled_from((
            {"matchLabels": {"app": app}},
            {"matchExpressions": [{"key": "app", "operator": "In", "values": [app, "c"]}]})))
        rss.append(replica_set(f"rs{k}", sel, {"app": app}, draw(st.sampled_from(NAMESPACES))))
    return nodes, pods, services, rss


@st.composite
def pending_pods(draw):
    labels = draw(pod_labels())
    spec = {}
    constraints = []
    used = set()
    for _ in range(draw(st.sampled_from((0, 1, 1, 2, 2, 3, 3, 4)))):
        key = draw(st.sampled_from(SPREAD_KEYS))
        when = draw(st.sampled_from(("DoNotSchedule", "ScheduleAnyway")))
        if (key, when) in used:
            continue
        used.add((key, when))
        sel, sel_keys = _selectors(draw, set())
        c = C(draw(st.integers(1, 4)), key, when, sel)
        if when == "DoNotSchedule" and draw(st.booleans()):
            c["minDomains"] = draw(st.integers(1, 6))
        for field in ("nodeAffinityPolicy", "nodeTaintsPolicy"):
            pol = draw(st.sampled_from((None, "Honor", "Ignore")))
            if pol:
                c[field] = pol
        if sel is not None and draw(st.booleans()):
            mlk = [k for k in ("pod-template-hash", "app", "tier")
                   if k not in sel_keys and draw(st.booleans())]
            if mlk:
                c["matchLabelKeys"] = mlk
        constraints.append(c)
    if constraints:
        spec["topologySpreadConstraints"] = constraints
    choice = draw(st.integers(0, 5))
    if choice == 1:
        spec["nodeSelector"] = {"disk": "ssd"}
    elif choice == 2:
        spec["affinity"] = node_affinity(ZONE, "In", ["z0", "z1"])
    elif choice == 3:
        spec["affinity"] = node_affinity("rack", "NotIn", ["r0"])
    tol = draw(st.sampled_from(TOLERATIONS))
    if tol:
        spec["tolerations"] = tol
    pod = make_pod("pending", namespace=draw(st.sampled_from(NAMESPACES)), labels=labels,
                   **spec)
    if draw(st.booleans()):
        pod.metadata.owner_references = [OwnerReference(
            api_version="apps/v1", kind="ReplicaSet", name=f"rs{draw(st.integers(0, 2))}",
            controller=True)]
    return pod


@st.composite
def plugin_args(draw):
    if draw(st.booleans()):
        return SYSTEM
    defaults = []
    used = set()
    for _ in range(draw(st.integers(0, 3))):
        key = draw(st.sampled_from(SPREAD_KEYS))
        when = draw(st.sampled_from(("DoNotSchedule", "ScheduleAnyway")))
        if (key, when) in used:
            continue
        used.add((key, when))
        min_domains = draw(st.sampled_from((None, 2, 4))) if when == "DoNotSchedule" else None
        defaults.append(TopologySpreadDefault(
            draw(st.integers(1, 4)), key, when, min_domains,
            draw(st.sampled_from((None, "Honor", "Ignore"))),
            draw(st.sampled_from((None, "Honor", "Ignore")))))
    return PodTopologySpreadArgs(default_constraints=tuple(defaults), defaulting_type="List")


def _current(snap):
    """(alive nodes, bound pods) of the snapshot as model objects, for the reference."""
    nodes = [snap.nodes[i] for i in snap.alive_nodes().tolist()]
    pods = [p.pod for p in snap.pods.values()]
    for p in snap.pods.values():
        assert p.pod.spec.node_name == snap.node_names[p.node]
    return nodes, pods


def _check_all(snap, cluster, pts, sspread, args, pod, filtered_pick):
    nodes, pods = _current(snap)
    services, rss = cluster.services, cluster.replica_sets
    defaults = args.effective_default_constraints
    assert _filter(pts, snap, pod) == ref.filter_verdicts(nodes, pods, pod, defaults,
                                                          services, rss)
    names = [n.name for n in nodes]
    filtered = [names[i % len(names)] for i in filtered_pick] or names
    filtered = list(dict.fromkeys(filtered))
    assert _score(pts, snap, pod, filtered) == ref.normalized_scores(
        nodes, pods, pod, filtered, defaults, args.defaulting_type == "System", services, rss)
    assert _score(sspread, snap, pod, filtered) == ref.selector_spread_scores(
        nodes, pods, pod, filtered, services, rss)


def _make(cluster_parts, args):
    nodes, pods, services, rss = cluster_parts
    cluster = make_cluster(nodes, pods, services=services, replica_sets=rss)
    pts, snap = plugin_on("PodTopologySpread", cluster, args)
    sspread, _ = plugin_on("SelectorSpread", cluster)
    sspread.handle.snapshot = snap
    return cluster, snap, pts, sspread


@given(clusters(), st.lists(pending_pods(), min_size=1, max_size=4), plugin_args(),
       st.lists(st.integers(0, 10**6), max_size=40))
def test_matches_reference(cluster_parts, pods, args, filtered_pick):
    """Filter verdicts and reasons, normalised PodTopologySpread and SelectorSpread scores
    equal the reference's, node for node, for several pending pods on one cluster."""
    cluster, snap, pts, sspread = _make(cluster_parts, args)
    for i, pod in enumerate(pods):
        _check_all(snap, cluster, pts, sspread, args, pod, filtered_pick[i:])


@st.composite
def mutations(draw):
    ops = []
    for k in range(draw(st.integers(1, 30))):
        kind = draw(st.sampled_from(("bind", "bind", "bind", "remove", "remove",
                                     "relabel", "drop")))
        ops.append((kind, k, draw(st.integers(0, 10**6)), draw(pod_labels()),
                    draw(st.sampled_from(NAMESPACES)), draw(st.integers(0, 9)) == 0,
                    draw(st.sampled_from(("z0", "z1", "z9", None)))))
    return ops


@given(clusters(), pending_pods(), plugin_args(), mutations(),
       st.lists(st.integers(0, 10**6), max_size=40))
def test_incremental_counts_follow_binds_and_removals(cluster_parts, pod, args, ops,
                                                      filtered_pick):
    cluster, snap, pts, sspread = _make(cluster_parts, args)
    _check_all(snap, cluster, pts, sspread, args, pod, filtered_pick)  # starts tracking
    tracker = selector_counts(snap)
    for kind, k, pick, labels, ns, terminating, zone in ops:
        alive = snap.alive_nodes().tolist()
        if not alive:
            break
        node = alive[pick % len(alive)]
        if kind == "bind":
            p = make_pod(f"m{k}", namespace=ns, labels=labels, node=snap.node_names[node])
            if terminating:
                p.metadata.deletion_timestamp = TERMINATING
            snap.add_pod(snap.pod_info(p), node)
        elif kind == "remove" and snap.pods:
            keys = sorted(snap.pods)
            snap.remove_pod(snap.pods[keys[pick % len(keys)]])
        elif kind == "relabel":
            old = snap.nodes[node]
            labels = dict(old.metadata.labels)
            if zone is None:
                labels.pop(ZONE, None)
            else:
                labels[ZONE] = zone
            snap.update_node(make_node(old.name, labels=labels,
                                       taints=[{"key": t.key, "value": t.value,
                                                "effect": t.effect} for t in old.taints]))
        elif kind == "drop" and len(alive) > 1:
            snap.remove_node(snap.node_names[node])
    for ns, selector in tracker.tracked():
        assert tracker.counts(ns, selector).tolist() == tracker.recount(ns, selector).tolist()
        # and an independent count from the model objects
        want = [0] * snap.num_nodes
        for p in snap.pods.values():
            if p.namespace == ns and p.pod.metadata.deletion_timestamp is None and \
                    selector.matches(p.labels):
                want[p.node] += 1
        assert tracker.counts(ns, selector).tolist() == want
    if snap.alive_nodes().size:
        _check_all(snap, cluster, pts, sspread, args, pod, filtered_pick)


def test_tracker_is_incremental_and_bounded():
    """Per-selector counts are tracked from their first use: a bind touches the tracked arrays
    without recounting, and the least recently used selector is dropped past capacity."""
    nodes = [N(f"n{i}", f"{HOST}=n{i}") for i in range(3)]
    cluster = make_cluster(nodes, [P("a", "n0", "app=a"), P("b", "n1", "app=a")])
    _, snap = plugin_on("PodTopologySpread", cluster, SYSTEM)
    tracker = selector_counts(snap)
    sel_a = label_selector_from_dict({"matchLabels": {"app": "a"}})
    assert tracker.counts("default", sel_a).tolist() == [1, 1, 0]
    calls = []
    orig = tracker.recount
    tracker.recount = lambda *a, **kw: calls.append(a) or orig(*a, **kw)
    p = P("c", "n2", "app=a")
    snap.add_pod(snap.pod_info(p), 2)
    assert tracker.counts("default", sel_a).tolist() == [1, 1, 1]
    assert calls == []
    tracker.recount = orig
    assert tracker.counts("default", label_selector_from_dict({})).tolist() == [0, 0, 0]
    old_capacity = tracker.capacity
    try:
        tracker.capacity = 2
        for app in ("x", "y", "z"):
            tracker.counts("default", label_selector_from_dict({"matchLabels": {"app": app}}))
        assert len(tracker.tracked()) == 2
        assert ("default", sel_a) not in tracker.tracked()
        # binds after an eviction: the evicted selector is no longer updated, the tracked
        # ones are (through their label index), and re-tracking recounts
        sel_z = label_selector_from_dict({"matchLabels": {"app": "z"}})
        snap.add_pod(snap.pod_info(P("d", "n0", "app=z")), 0)
        snap.add_pod(snap.pod_info(P("e", "n1", "app=a")), 1)
        assert tracker.counts("default", sel_z).tolist() == [1, 0, 0]
        assert tracker.counts("default", sel_a).tolist() == [1, 2, 1]
        sel_in = label_selector_from_dict({"matchExpressions": [
            {"key": "app", "operator": "In", "values": ["a", "z"]}]})
        assert tracker.counts("default", sel_in).tolist() == [2, 2, 1]
        snap.remove_pod(snap.pods["default/d"])
        assert tracker.counts("default", sel_in).tolist() == [1, 2, 1]
    finally:
        tracker.capacity = old_capacity
