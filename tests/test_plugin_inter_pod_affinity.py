"""InterPodAffinity as kube-scheduler v1.35 computes it.

- kube's own cases (interpodaffinity/filtering_test.go and scoring_test.go), restated here;
- random clusters against the plain reference in ``tests/reference/inter_pod_affinity.py``:
  filter verdicts and reasons, PreFilter/PreScore skips, raw and normalised scores, node for
  node;
- the incremental index against a recount after random binds, removals and node relabels.
"""

from __future__ import annotations

import itertools
import random

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from reference import inter_pod_affinity as ref
from scheduler_helpers import make_cluster, make_node, make_pod, plugin_on
from schedbench.config import InterPodAffinityArgs
from schedbench.manifests import object_from_dict
from schedbench.scheduler.framework import CycleState
from schedbench.scheduler.podaffinity import index_contents, recount
from schedbench.scheduler.snapshot import NodeSnapshot

AFF = (3, ref.AFFINITY_REASON)
ANTI = (2, ref.ANTI_AFFINITY_REASON)
EXIST = (2, ref.EXISTING_ANTI_AFFINITY_REASON)
OK = (0, None)
SKIP = "skip"
MAX = 100

_serial = itertools.count()


# ------------------------------------------------------------------------------ builders


def sel(*exprs, labels=None) -> dict:
    """A labelSelector from (key, operator[, values]) tuples and/or matchLabels."""
    out: dict = {}
    if labels:
        out["matchLabels"] = dict(labels)
    if exprs:
        out["matchExpressions"] = [
            {"key": e[0], "operator": e[1], **({"values": list(e[2])} if len(e) > 2 else {})}
            for e in exprs]
    return out


def term(selector, topology, **extra) -> dict:
    t = {"topologyKey": topology, **extra}
    if selector is not None:
        t["labelSelector"] = selector
    return t


def t_in(key, topology, *values, **extra) -> dict:
    return term(sel((key, "In", values)), topology, **extra)


def t_not_in(key, topology, *values, **extra) -> dict:
    return term(sel((key, "NotIn", values)), topology, **extra)


def t_exists(key, topology, **extra) -> dict:
    return term(sel((key, "Exists")), topology, **extra)


def affinity(aff=None, anti=None, pref_aff=(), pref_anti=()) -> dict:
    """An affinity stanza; ``aff``/``anti`` None leave podAffinity/podAntiAffinity unset unless
    preferred terms need them."""
    out: dict = {}
    if aff is not None or pref_aff:
        out["podAffinity"] = {
            "requiredDuringSchedulingIgnoredDuringExecution": list(aff or []),
            "preferredDuringSchedulingIgnoredDuringExecution": [
                {"weight": w, "podAffinityTerm": t} for w, t in pref_aff]}
    if anti is not None or pref_anti:
        out["podAntiAffinity"] = {
            "requiredDuringSchedulingIgnoredDuringExecution": list(anti or []),
            "preferredDuringSchedulingIgnoredDuringExecution": [
                {"weight": w, "podAffinityTerm": t} for w, t in pref_anti]}
    return out


def pod(labels=None, ns="default", node="", aff=None, anti=None, pref_aff=(), pref_anti=(),
        stanza=None):
    a = stanza if stanza is not None else affinity(aff, anti, pref_aff, pref_anti)
    spec = {"affinity": a} if a else {}
    return make_pod(f"p{next(_serial)}", namespace=ns, labels=labels, node=node.lower(), **spec)


def node(name, **labels):
    """A node; kube's test names (``nodeA``) lower-cased to valid object names."""
    return make_node(name.lower(), labels=labels)


def namespace(name, **labels):
    return object_from_dict({"apiVersion": "v1", "kind": "Namespace",
                             "metadata": {"name": name, "labels": labels}})


# kube's test namespaces (scoring_test.go)
TEAM_NAMESPACES = [namespace("subteam1-team1", team="team1"),
                   namespace("subteam2-team1", team="team1"),
                   namespace("subteam1-team2", team="team2"),
                   namespace("subteam2-team2", team="team2")]


def setup(nodes, pods, namespaces=TEAM_NAMESPACES, args=None):
    cluster = make_cluster(nodes, pods, namespaces=list(namespaces))
    plugin, snap = plugin_on("InterPodAffinity", cluster, args)
    return plugin, snap, cluster


def run_filter(plugin, snap, incoming):
    """(PreFilter skipped, {node: (code, reason or None)}) for every live node."""
    info = snap.pod_info(incoming)
    state = CycleState()
    nodes = snap.alive_nodes()
    status, allowed = plugin.pre_filter(state, info, nodes)
    assert allowed is None
    if status.is_skip:
        return True, {}
    assert status.is_success
    codes = plugin.filter(state, info, nodes)
    out = {}
    for n, c in zip(nodes, codes):
        reasons = plugin.filter_reasons(state, info, int(n)) if c else []
        assert len(reasons) == (1 if c else 0)
        out[snap.node_names[n]] = (int(c), reasons[0] if reasons else None)
    return False, out


def run_score(plugin, snap, incoming, names=None):
    """(PreScore skipped, raw {node: score}, normalised {node: score})."""
    info = snap.pod_info(incoming)
    state = CycleState()
    if names is None:
        nodes = snap.alive_nodes()
    else:
        nodes = np.array([snap.node_index[n] for n in names], np.int64)
    if plugin.pre_score(state, info, nodes).is_skip:
        return True, {}, {}
    raw = np.asarray(plugin.score(state, info, nodes), np.int64)
    norm = raw.copy()
    plugin.normalize_score(state, info, nodes, norm)
    names = [snap.node_names[n] for n in nodes]
    return False, dict(zip(names, raw.tolist())), dict(zip(names, norm.tolist()))


def world(snap, cluster):
    """The reference's view of a snapshot: nodes' labels, bound pods, namespaces."""
    nodes = {snap.node_names[i]: dict(snap.nodes[i].metadata.labels) for i in snap.alive_nodes()}
    bound = [(p.pod, snap.node_names[p.node]) for p in snap.pods.values()]
    nsmap = {ns.metadata.name: dict(ns.metadata.labels) for ns in cluster.namespaces}
    return nodes, bound, nsmap


def check_filter_expectation(nodes, pods, incoming, want, namespaces=TEAM_NAMESPACES):
    plugin, snap, cluster = setup(nodes, pods, namespaces)
    skipped, got = run_filter(plugin, snap, incoming)
    ref_skipped, ref_got = ref.filter_nodes(*world(snap, cluster), incoming)
    assert (skipped, skipped or got) == (ref_skipped, ref_skipped or ref_got)  # reference agrees
    if want == SKIP:
        assert skipped
    else:
        assert not skipped
        assert [got[n.metadata.name] for n in nodes] == list(want)


# ---------------------------------------------------- filtering_test.go: single node

SERVICE = {"service": "securityscan"}
SECURITY = {"security": "S1"}
NODE1 = node("node1", region="r1", zone="z11")


def _existing():
    return pod(SERVICE, node="node1")


SINGLE_NODE = [
    ("no required affinity, no existing pods: PreFilter skips",
     lambda: (pod(), []), SKIP),
    ("affinity In matches the existing pod",
     lambda: (pod(SECURITY, aff=[t_in("service", "region", "securityscan", "value2")]),
              [_existing()]), OK),
    ("affinity NotIn matches the existing pod",
     lambda: (pod(SECURITY, aff=[t_not_in("service", "region", "securityscan3", "value3")]),
              [_existing()]), OK),
    ("affinity restricted to another namespace",
     lambda: (pod(SECURITY, aff=[t_in("service", "region", "securityscan", "value2",
                                      namespaces=["diff-namespace"])], anti=[]),
              [pod(SERVICE, ns="ns", node="node1")]), AFF),
    ("affinity selector matches no existing pod",
     lambda: (pod(SERVICE, aff=[t_in("service", "region", "antivirusscan", "value2")]),
              [_existing()]), AFF),
    ("several affinity terms with different operators, all satisfied",
     lambda: (pod(SECURITY, anti=[], aff=[
         term(sel(("service", "Exists"), ("wrongkey", "DoesNotExist")), "region"),
         term(sel(("service", "In", ["securityscan"]), ("service", "NotIn", ["WrongValue"])),
              "region")]), [_existing()]), OK),
    ("the requirements of a selector are ANDed: one fails",
     lambda: (pod(SECURITY, anti=[], aff=[
         term(sel(("service", "Exists"), ("wrongkey", "DoesNotExist")), "region"),
         term(sel(("service", "In", ["securityscan2"]), ("service", "NotIn", ["WrongValue"])),
              "region")]), [_existing()]), AFF),
    ("affinity and anti-affinity both satisfied",
     lambda: (pod(SECURITY, aff=[t_in("service", "region", "securityscan", "value2")],
                  anti=[t_in("service", "node", "antivirusscan", "value2")]),
              [_existing()]), OK),
    ("affinity, anti-affinity and the existing pod's anti-affinity satisfied",
     lambda: (pod(SECURITY, aff=[t_in("service", "region", "securityscan", "value2")],
                  anti=[t_in("service", "node", "antivirusscan", "value2")]),
              [pod(SERVICE, node="node1",
                   anti=[t_in("service", "node", "antivirusscan", "value2")])]), OK),
    ("affinity satisfied, anti-affinity not",
     lambda: (pod(SECURITY, aff=[t_in("service", "region", "securityscan", "value2")],
                  anti=[t_in("service", "zone", "securityscan", "value2")]),
              [_existing()]), ANTI),
    ("the existing pod's anti-affinity rejects the pod",
     lambda: (pod(SERVICE, aff=[t_in("service", "region", "securityscan", "value2")],
                  anti=[t_in("service", "node", "antivirusscan", "value2")]),
              [pod(SERVICE, node="node1",
                   anti=[t_in("service", "zone", "securityscan", "value2")])]), EXIST),
    ("the pod matches its own NotIn term but no existing pod does",
     lambda: (pod(SERVICE, aff=[t_not_in("service", "region", "securityscan", "value2")]),
              [pod({"service": "securityscan"}, node="node2")]), AFF),
    ("an existing pod's anti-affinity applies to a pod without affinity",
     lambda: (pod(SERVICE),
              [pod(SERVICE, node="node1",
                   anti=[t_in("service", "zone", "securityscan", "value2")])]), EXIST),
    ("an existing pod's anti-affinity that does not match: PreFilter skips",
     lambda: (pod(SERVICE),
              [pod(SERVICE, node="node1",
                   anti=[t_not_in("service", "zone", "securityscan", "value2")])]), SKIP),
    ("the pod's anti-affinity is checked before the existing pod's",
     lambda: (pod(SERVICE, anti=[t_exists("service", "region"), t_exists("security", "region")]),
              [pod(SECURITY, node="node1", anti=[t_exists("security", "zone")])]), ANTI),
    ("symmetry a1: partial matches on both sides",
     lambda: (pod(SERVICE, anti=[t_exists("service", "zone"), t_exists("security", "zone")]),
              [pod(SECURITY, node="node1", anti=[t_exists("security", "zone")])]), ANTI),
    ("symmetry a2: only the existing pod's term matches",
     lambda: (pod(SECURITY, anti=[t_exists("security", "zone")]),
              [pod(SERVICE, node="node1",
                   anti=[t_exists("service", "zone"), t_exists("security", "zone")])]), EXIST),
    ("symmetry b1",
     lambda: (pod({"abc": "", "xyz": ""}, anti=[t_exists("abc", "zone"), t_exists("def", "zone")]),
              [pod({"def": "", "xyz": ""}, node="node1",
                   anti=[t_exists("abc", "zone"), t_exists("def", "zone")])]), ANTI),
    ("symmetry b2",
     lambda: (pod({"def": "", "xyz": ""}, anti=[t_exists("abc", "zone"), t_exists("def", "zone")]),
              [pod({"abc": "", "xyz": ""}, node="node1",
                   anti=[t_exists("abc", "zone"), t_exists("def", "zone")])]), ANTI),
    ("affinity with a matching namespaceSelector",
     lambda: (pod(SECURITY, anti=[], aff=[t_in("service", "region", "securityscan", "value2",
                                               namespaceSelector=sel(("team", "In", ["team1"])))]),
              [pod(SERVICE, ns="subteam1-team1", node="node1")]), OK),
    ("affinity with a namespaceSelector that does not match",
     lambda: (pod(SECURITY, anti=[], aff=[t_in("service", "region", "securityscan", "value2",
                                               namespaceSelector=sel(("team", "In", ["team1"])))]),
              [pod(SERVICE, ns="subteam1-team2", node="node1")]), AFF),
    ("anti-affinity with a matching namespaceSelector",
     lambda: (pod(SECURITY, ns="subteam1-team1", aff=[], anti=[
         t_in("service", "zone", "securityscan", "value2",
              namespaceSelector=sel(("team", "In", ["team1"])))]),
              [pod(SERVICE, ns="subteam2-team1", node="node1")]), ANTI),
    ("anti-affinity with the match-all namespaceSelector {}",
     lambda: (pod(SECURITY, ns="subteam1-team1", aff=[], anti=[
         t_in("service", "zone", "securityscan", "value2", namespaceSelector={})]),
              [pod(SERVICE, ns="subteam2-team1", node="node1")]), ANTI),
    ("anti-affinity with a namespaceSelector that does not match",
     lambda: (pod(SECURITY, ns="subteam1-team1", aff=[], anti=[
         t_in("service", "zone", "securityscan", "value2",
              namespaceSelector=sel(("team", "In", ["team1"])))]),
              [pod(SERVICE, ns="subteam1-team2", node="node1")]), OK),
]


@pytest.mark.parametrize("name,build,want", SINGLE_NODE, ids=[c[0] for c in SINGLE_NODE])
def test_kube_required_affinity_single_node(name, build, want):
    incoming, pods = build()
    check_filter_expectation([NODE1], pods, incoming, want if want == SKIP else [want])


# -------------------------------------------------- filtering_test.go: multiple nodes

CHINA, CHINA_AZ1, INDIA = {"region": "China"}, {"region": "China", "az": "az1"}, {
    "region": "India"}


def _abc(**z):
    return [node("nodeA", region="r1", hostname="nodeA", **z.get("a", {})),
            node("nodeB", region="r1", hostname="nodeB", **z.get("b", {}))]


def _zoned(zb="z2", zc=None):
    out = [node("nodeA", region="r1", zone="z1", hostname="nodeA"),
           node("nodeB", region="r1", zone=zb, hostname="nodeB")]
    if zc:
        out.append(node("nodeC", region="r1", zone=zc, hostname="nodeC"))
    return out


def _three(a="nodeA", b="nodeB", c="nodeC"):
    return [node(a, **CHINA), node(b, **CHINA_AZ1), node(c, **INDIA)]


MULTI_NODE = [
    ("every node of the matching topology value fits",
     lambda: (pod(aff=[t_in("foo", "region", "bar")]), [pod({"foo": "bar"}, node="node1")],
              _three("node1", "node2", "node3")), [OK, OK, AFF]),
    ("the first pod of a group with affinity to itself fits anywhere",
     lambda: (pod({"foo": "bar", "service": "securityscan"},
                  aff=[t_in("foo", "zone", "bar"), t_in("service", "zone", "securityscan")]),
              [pod({"foo": "bar"}, node="nodeA")],
              [node("nodeA", zone="az1", hostname="h1"), node("nodeB", zone="az2", hostname="h2")]),
     [OK, OK]),
    ("the first pod of a group only fits nodes with the topology keys",
     lambda: (pod({"foo": "bar", "service": "securityscan"},
                  aff=[t_in("foo", "zone", "bar"), t_in("service", "zone", "securityscan")]),
              [pod({"foo": "bar"}, node="nodeA")],
              [node("nodeA", zoneLabel="az1", hostname="h1"),
               node("nodeB", zoneLabel="az2", hostname="h2")]),
     [AFF, AFF]),
    ("anti-affinity blocks every node of the topology value",
     lambda: (pod(anti=[t_in("foo", "region", "abc")]), [pod({"foo": "abc"}, node="nodeA")],
              _abc()), [ANTI, ANTI]),
    ("anti-affinity matches when any term matches",
     lambda: (pod(anti=[t_in("foo", "region", "abc"), t_in("service", "zone", "securityscan")]),
              [pod({"foo": "abc", "service": "securityscan"}, node="nodeA")], _zoned()),
     [ANTI, ANTI]),
    ("anti-affinity leaves the other topology value",
     lambda: (pod(anti=[t_in("foo", "region", "abc")]), [pod({"foo": "abc"}, node="nodeA")],
              _three()), [ANTI, ANTI, OK]),
    ("an existing pod in another namespace does not count",
     lambda: (pod({"foo": "123"}, ns="ns1", anti=[t_in("foo", "region", "bar")]),
              [pod({"foo": "bar"}, ns="ns1", node="nodeA"),
               pod(ns="ns2", node="nodeC", anti=[t_in("foo", "region", "123")])], _three()),
     [ANTI, ANTI, OK]),
    ("an existing pod's term on a topology key no node has: PreFilter skips",
     lambda: (pod({"foo": ""}), [pod(node="nodeA", anti=[t_exists("foo", "invalid-node-label")])],
              _zoned(zb="z1")), SKIP),
    ("the pod's anti-affinity needs the topology key too",
     lambda: (pod(anti=[t_exists("foo", "invalid-node-label")]),
              [pod({"foo": ""}, node="nodeA")], _zoned(zb="z1")), [OK, OK]),
    ("each existing pod's terms reject the pod on all nodes",
     lambda: (pod({"foo": "", "bar": ""}),
              [pod(node="nodeA", anti=[t_exists("foo", "zone")]),
               pod(node="nodeA", anti=[t_exists("bar", "region")])], _zoned()),
     [EXIST, EXIST]),
    ("the pod's terms violate one existing pod each",
     lambda: (pod(anti=[t_exists("foo", "zone"), t_exists("bar", "region")]),
              [pod({"foo": ""}, node="nodeA"), pod({"bar": ""}, node="nodeB")], _zoned()),
     [ANTI, ANTI]),
    ("existing anti-affinity: a term on a missing key counts nowhere",
     lambda: (pod({"foo": "", "bar": ""}),
              [pod(node="nodeA", anti=[t_exists("foo", "invalid-node-label"),
                                       t_exists("bar", "zone")])], _zoned()),
     [EXIST, OK]),
    ("the pod's anti-affinity: a term on a missing key counts nowhere",
     lambda: (pod(anti=[t_exists("foo", "invalid-node-label"), t_exists("bar", "zone")]),
              [pod({"foo": "", "bar": ""}, node="nodeA")], _zoned()),
     [ANTI, OK]),
    ("existing anti-affinity: both terms valid",
     lambda: (pod({"foo": "", "bar": ""}),
              [pod(node="nodeA", anti=[t_exists("foo", "region"), t_exists("bar", "zone")])],
              _zoned()), [EXIST, EXIST]),
    ("the pod's anti-affinity: both terms valid",
     lambda: (pod(anti=[t_exists("foo", "region"), t_exists("bar", "zone")]),
              [pod({"foo": "", "bar": ""}, node="nodeA")], _zoned()), [ANTI, ANTI]),
    ("existing pods on two nodes reject the pod there; the third node fits",
     lambda: (pod({"foo": "", "bar": ""}),
              [pod(node="nodeA", anti=[t_exists("foo", "zone"), t_exists("labelA", "zone")]),
               pod(node="nodeB", anti=[t_exists("bar", "zone"), t_exists("labelB", "zone")])],
              _zoned(zc="z3")), [EXIST, EXIST, OK]),
    ("affinity: one pod matching all terms serves every term",
     lambda: (pod(aff=[t_exists("foo", "region"), t_exists("bar", "zone")]),
              [pod({"foo": "", "bar": ""}, node="nodeA")], _zoned(zb="z1")), [OK, OK]),
    ("affinity: all terms must be matched by the same pod",
     lambda: (pod(aff=[t_exists("foo", "region"), t_exists("bar", "zone")]),
              [pod({"foo": ""}, node="nodeA"), pod({"bar": ""}, node="nodeB")], _zoned()),
     [AFF, AFF]),
]


@pytest.mark.parametrize("name,build,want", MULTI_NODE, ids=[c[0] for c in MULTI_NODE])
def test_kube_required_affinity_multiple_nodes(name, build, want):
    incoming, pods, nodes = build()
    check_filter_expectation(nodes, pods, incoming, want,
                             namespaces=[namespace("ns1")] + TEAM_NAMESPACES)


# ----------------------------- filtering_test.go: PreFilter state, AddPod and RemovePod

FOO_BAR_ANTI = [t_in("foo", "region", "bar")]
COMPLEX = [t_in("foo", "region", "bar", "buzz"),
           t_not_in("service", "zone", "bar", "security", "test")]
ADD_REMOVE_NODES = [node("nodeA", region="r1", zone="z11"), node("nodeB", region="r1", zone="z12"),
                    node("nodeC", region="r2", zone="z21")]
ADD_REMOVE = [
    ("anti-affinity counts", dict(anti=FOO_BAR_ANTI),
     lambda: [pod({"foo": "bar"}, node="nodeA"), pod(node="nodeC", anti=FOO_BAR_ANTI)],
     lambda: pod({"foo": "bar"}, anti=FOO_BAR_ANTI), "nodeB",
     {("region", "r1"): 2}, {}),
    ("anti-affinity counts, two terms", dict(anti=COMPLEX),
     lambda: [pod({"foo": "bar"}, node="nodeA"), pod(node="nodeC", anti=FOO_BAR_ANTI)],
     lambda: pod({"foo": "bar"}, anti=COMPLEX), "nodeA",
     {("region", "r1"): 2, ("zone", "z11"): 2, ("zone", "z21"): 1}, {}),
    ("affinity counts", dict(aff=COMPLEX),
     lambda: [pod({"foo": "bar"}, node="nodeA"),
              pod(node="nodeC", anti=FOO_BAR_ANTI, aff=COMPLEX)],
     lambda: pod({"foo": "bar"}, anti=COMPLEX), "nodeA",
     {}, {("region", "r1"): 2, ("zone", "z11"): 2}),
]


@pytest.mark.parametrize("name,stanza,existing,added,where,want_anti,want_aff", ADD_REMOVE,
                         ids=[c[0] for c in ADD_REMOVE])
def test_kube_prefilter_state_follows_added_and_removed_pods(name, stanza, existing, added,
                                                             where, want_anti, want_aff):
    pending = pod({"foo": "bar"}, **stanza)
    plugin, snap, cluster = setup(ADD_REMOVE_NODES, existing())
    info = snap.pod_info(pending)
    state = CycleState()
    plugin.pre_filter(state, info, snap.alive_nodes())
    before = plugin.prefilter_counts(state, info)
    extra = snap.pod_info(added())
    snap.add_pod(extra, snap.node_index[where.lower()])
    after = plugin.prefilter_counts(state, info)  # the state follows, as AddPod makes it
    assert after["anti"] == want_anti
    assert after["affinity"] == want_aff
    # equal to a PreFilter that saw every pod from the start
    fresh_cluster = make_cluster(ADD_REMOVE_NODES, existing() + [added()],
                                 namespaces=list(TEAM_NAMESPACES))
    for p in fresh_cluster.pods[-1:]:
        p.spec.node_name = where.lower()
    fresh, fsnap = plugin_on("InterPodAffinity", fresh_cluster)
    fstate = CycleState()
    finfo = fsnap.pod_info(pending)
    fresh.pre_filter(fstate, finfo, fsnap.alive_nodes())
    assert fresh.prefilter_counts(fstate, finfo) == after
    snap.remove_pod(extra)
    assert plugin.prefilter_counts(state, info) == before


# ------------------------ filtering_test.go: getIncomingAffinityAntiAffinityCounts

def _normal(*keys):
    return pod({k: "" for k in keys}, node="nodeA")


INCOMING_COUNTS = [
    ("nil", [], pod(), {}, {}),
    ("no affinity: no-op", [_normal("aaa")], pod(), {}, {}),
    ("no existing pod matches", [_normal("bbb")],
     pod(aff=[t_exists("aaa", "hostname")], anti=[t_exists("aaa", "hostname")]), {}, {}),
    ("single term matches", [_normal("aaa")],
     pod(aff=[t_exists("aaa", "hostname")], anti=[t_exists("aaa", "hostname")]),
     {("hostname", "nodeA"): 1}, {("hostname", "nodeA"): 1}),
    ("one pod matching two affinity terms counts once per term", [_normal("aaa", "bbb")],
     pod(aff=[t_exists("aaa", "hostname"), t_exists("bbb", "hostname")],
         anti=[t_exists("aaa", "hostname")]),
     {("hostname", "nodeA"): 2}, {("hostname", "nodeA"): 1}),
    ("affinity needs all terms, anti-affinity any", [_normal("aaa")],
     pod(aff=[t_exists("aaa", "hostname"), t_exists("bbb", "hostname")],
         anti=[t_exists("aaa", "hostname"), t_exists("bbb", "hostname")]),
     {}, {("hostname", "nodeA"): 1}),
    ("partial match, case 1", [_normal("aaa", "bbb")],
     pod(aff=[t_exists("aaa", "hostname"), t_exists("ccc", "hostname")],
         anti=[t_exists("aaa", "hostname"), t_exists("ccc", "hostname")]),
     {}, {("hostname", "nodeA"): 1}),
    ("partial match, case 2", [_normal("bbb")],
     pod(aff=[t_exists("aaa", "hostname"), t_exists("bbb", "hostname")],
         anti=[t_exists("aaa", "hostname"), t_exists("bbb", "hostname")]),
     {}, {("hostname", "nodeA"): 1}),
]


@pytest.mark.parametrize("name,existing,incoming,want_aff,want_anti", INCOMING_COUNTS,
                         ids=[c[0] for c in INCOMING_COUNTS])
def test_kube_incoming_affinity_counts(name, existing, incoming, want_aff, want_anti):
    plugin, snap, cluster = setup([node("nodeA", hostname="nodeA")], existing)
    info = snap.pod_info(incoming)
    state = CycleState()
    plugin.pre_filter(state, info, snap.alive_nodes())
    counts = plugin.prefilter_counts(state, info)
    assert counts["affinity"] == want_aff
    assert counts["anti"] == want_anti
    want = ref.prefilter(*world(snap, cluster), incoming)[0]
    assert counts == want


# ------------------------------------------------------------- scoring_test.go

def _s(w, values, topology):
    return (w, t_in("security", topology, *values))


STAY_S1_REGION = dict(pref_aff=[_s(5, ["S1"], "region")])
STAY_S2_REGION = dict(pref_aff=[_s(6, ["S2"], "region")])
AFFINITY3 = dict(pref_aff=[
    (8, term(sel(("security", "NotIn", ["S1"]), ("security", "In", ["S2"])), "region")),
    (2, term(sel(("security", "Exists"), ("wrongkey", "DoesNotExist")), "region"))])
HARD = dict(aff=[t_in("security", "region", "S1", "value2"),
                 term(sel(("security", "Exists"), ("wrongkey", "DoesNotExist")), "region")])
AWAY_S1_AZ = dict(pref_anti=[_s(5, ["S1"], "az")])
AWAY_S2_AZ = dict(pref_anti=[_s(5, ["S2"], "az")])
STAY_S1_AWAY_S2 = dict(pref_aff=[_s(8, ["S1"], "region")], pref_anti=[_s(5, ["S2"], "az")])
_NS_TERM = t_in("security", "region", "S1", namespaces=["subteam2-team2"],
                namespaceSelector=sel(("team", "In", ["team1"])))
AFF_NS_SELECTOR = dict(pref_aff=[(5, _NS_TERM)])
ANTI_NS_SELECTOR = dict(pref_anti=[(5, _NS_TERM)])
S1, S2 = {"security": "S1"}, {"security": "S2"}
AZ1, AZ2 = {"az": "az1"}, {"az": "az2"}


def _nodes(*labels):
    return [node(f"node{i + 1}", **lbl) for i, lbl in enumerate(labels)]


def _on(i, labels=None, ns="default", **a):
    return pod(labels, ns=ns, node=f"node{i}", **a)


PREFERRED = [
    ("no affinity anywhere: PreScore skips", lambda: pod(S1), lambda: [],
     (CHINA, INDIA, AZ1), {}, SKIP),
    ("affinity: the topology value with matching pods scores high",
     lambda: pod(S1, **STAY_S1_REGION), lambda: [_on(1, S1), _on(2, S2), _on(3, S1)],
     (CHINA, INDIA, AZ1), {}, [MAX, 0, 0]),
    ("nodes sharing the topology value score the same",
     lambda: pod(**STAY_S1_REGION), lambda: [_on(1, S1)],
     (CHINA, CHINA_AZ1, INDIA), {}, [MAX, MAX, 0]),
    ("the region with more matching pods scores high",
     lambda: pod(S1, **STAY_S2_REGION),
     lambda: [_on(1, S2), _on(1, S2), _on(2, S2), _on(3, S2), _on(4, S2), _on(5, S2)],
     (CHINA, INDIA, CHINA, CHINA, INDIA), {}, [MAX, 0, MAX, MAX, 0]),
    ("different operators, some terms not matching",
     lambda: pod(S1, **AFFINITY3), lambda: [_on(1, S1), _on(2, S2), _on(3, S1)],
     (CHINA, INDIA, AZ1), {}, [20, MAX, 0]),
    ("symmetry: existing pods' preferred affinity",
     lambda: pod(S2),
     lambda: [_on(1, S1, **STAY_S1_REGION), _on(2, S2, **STAY_S2_REGION)],
     (CHINA, INDIA, AZ1), {}, [0, MAX, 0]),
    ("symmetry with a namespace selector",
     lambda: pod(S1, ns="subteam1-team1"),
     lambda: [_on(1, S1, **AFF_NS_SELECTOR), _on(2, S2, **STAY_S2_REGION)],
     (CHINA, INDIA, AZ1), {}, [MAX, 0, 0]),
    ("anti-affinity symmetry with a namespace selector",
     lambda: pod(S1, ns="subteam1-team1"),
     lambda: [_on(1, S1, **ANTI_NS_SELECTOR), _on(2, S2, **STAY_S2_REGION)],
     (CHINA, INDIA, AZ1), {}, [0, MAX, MAX]),
    ("symmetry: existing pods' required affinity (hardPodAffinityWeight)",
     lambda: pod(S1), lambda: [_on(1, S1, **HARD), _on(2, S2, **HARD)],
     (CHINA, INDIA, AZ1), {}, [MAX, MAX, 0]),
    ("anti-affinity: the node without matching pods scores high",
     lambda: pod(S1, **AWAY_S1_AZ), lambda: [_on(1, S1), _on(2, S2)],
     (AZ1, CHINA), {}, [0, MAX]),
    ("anti-affinity: a node without the topology key scores high",
     lambda: pod(S1, **AWAY_S1_AZ), lambda: [_on(1, S1), _on(2, S1)],
     (AZ1, CHINA), {}, [0, MAX]),
    ("anti-affinity: more matching pods score lower",
     lambda: pod(S1, **AWAY_S1_AZ), lambda: [_on(1, S1), _on(1, S1), _on(2, S2)],
     (AZ1, INDIA), {}, [0, MAX]),
    ("anti-affinity symmetry",
     lambda: pod(S2), lambda: [_on(1, S1, **AWAY_S2_AZ), _on(2, S2, **AWAY_S1_AZ)],
     (AZ1, AZ2), {}, [0, MAX]),
    ("affinity and anti-affinity",
     lambda: pod(S1, **STAY_S1_AWAY_S2), lambda: [_on(1, S1), _on(2, S1)],
     (CHINA, AZ1), {}, [MAX, 0]),
    ("affinity and anti-affinity, pods of the same service",
     lambda: pod(S1, **STAY_S1_AWAY_S2),
     lambda: [_on(1, S1), _on(1, S1), _on(2, S1), _on(3, S1), _on(3, S1), _on(4, S1),
              _on(5, S1)],
     (CHINA_AZ1, INDIA, CHINA, CHINA, INDIA), {}, [MAX, 0, MAX, MAX, 0]),
    ("affinity, anti-affinity and symmetry together",
     lambda: pod(S1, **STAY_S1_AWAY_S2),
     lambda: [_on(1, S1), _on(2, S2), _on(3, **STAY_S1_AWAY_S2), _on(4, **AWAY_S1_AZ)],
     (CHINA, AZ1, INDIA, AZ2), {}, [MAX, 0, MAX, 0]),
    ("some nodes of a topology have pods with affinity, the pod has none",
     lambda: pod(S1), lambda: [_on(1, S1), _on(2, **STAY_S1_AWAY_S2)],
     (CHINA, CHINA), {}, [0, 0]),
    ("affinity with pods matching the namespace selector",
     lambda: pod(S1, ns="subteam1-team1", **AFF_NS_SELECTOR),
     lambda: [_on(1, S1, ns="subteam1-team1"), _on(1, S1, ns="subteam1-team1"),
              _on(1, S1, ns="subteam1-team2"), _on(2, S1, ns="subteam2-team1")],
     (CHINA, INDIA), {}, [MAX, 0]),
    ("affinity with pods matching the namespace selector and the namespaces",
     lambda: pod(S1, ns="subteam1-team1", **AFF_NS_SELECTOR),
     lambda: [_on(1, S1, ns="subteam1-team1"), _on(1, S1, ns="subteam1-team1"),
              _on(1, S1, ns="subteam2-team2"), _on(2, S1, ns="subteam2-team1")],
     (CHINA, INDIA), {}, [MAX, 0]),
    ("anti-affinity with pods matching the namespace selector",
     lambda: pod(S1, ns="subteam1-team1", **ANTI_NS_SELECTOR),
     lambda: [_on(1, S1, ns="subteam1-team1"), _on(1, S1, ns="subteam1-team1"),
              _on(1, S1, ns="subteam1-team2"), _on(2, S1, ns="subteam2-team1")],
     (CHINA, INDIA), {}, [0, MAX]),
    ("anti-affinity with pods matching the namespace selector and the namespaces",
     lambda: pod(S1, ns="subteam1-team1", **ANTI_NS_SELECTOR),
     lambda: [_on(1, S1, ns="subteam1-team1"), _on(1, S1, ns="subteam1-team1"),
              _on(1, S1, ns="subteam2-team2"), _on(2, S1, ns="subteam2-team1")],
     (CHINA, INDIA), {}, [0, MAX]),
    ("ignorePreferredTermsOfExistingPods: PreScore skips",
     lambda: pod(S2), lambda: [_on(1, S1, **STAY_S1_AWAY_S2), _on(2, S2, **STAY_S2_REGION)],
     (CHINA, INDIA), {"ignore_preferred_terms_of_existing_pods": True}, SKIP),
    ("existing pods' preferred terms count by default",
     lambda: pod(S2), lambda: [_on(1, S1, **STAY_S1_AWAY_S2), _on(2, S2, **STAY_S2_REGION)],
     (CHINA, INDIA), {}, [0, MAX]),
    ("no nodes to score: PreScore skips", lambda: pod(S2), lambda: [], (), {}, SKIP),
]

_HARD_NS = dict(aff=[t_in("service", "region", "S1", namespaces=["default", "subteam2-team2"],
                          namespaceSelector=sel(("team", "In", ["team1"])))])
HARD_WEIGHT = [
    ("default weight", lambda: pod({"service": "S1"}),
     lambda: [_on(1, **_HARD_NS), _on(2, **_HARD_NS)],
     (CHINA, INDIA, AZ1), {"hard_pod_affinity_weight": 1}, [MAX, MAX, 0]),
    ("zero weight: PreScore skips", lambda: pod({"service": "S1"}),
     lambda: [_on(1, **_HARD_NS), _on(2, **_HARD_NS)],
     (CHINA, INDIA, AZ1), {"hard_pod_affinity_weight": 0}, SKIP),
    ("no matching namespace: PreScore skips", lambda: pod({"service": "S1"}, ns="subteam1-team2"),
     lambda: [_on(1, **_HARD_NS), _on(2, **_HARD_NS)],
     (CHINA, INDIA, AZ1), {"hard_pod_affinity_weight": 1}, SKIP),
    ("matching namespace selector", lambda: pod({"service": "S1"}, ns="subteam1-team1"),
     lambda: [_on(1, **_HARD_NS), _on(2, **_HARD_NS)],
     (CHINA, INDIA, AZ1), {"hard_pod_affinity_weight": 1}, [MAX, MAX, 0]),
    ("matching namespaces", lambda: pod({"service": "S1"}, ns="subteam2-team2"),
     lambda: [_on(1, **_HARD_NS), _on(2, **_HARD_NS)],
     (CHINA, INDIA, AZ1), {"hard_pod_affinity_weight": 1}, [MAX, MAX, 0]),
]


@pytest.mark.parametrize("name,incoming,pods,node_labels,args,want", PREFERRED + HARD_WEIGHT,
                         ids=[c[0] for c in PREFERRED + HARD_WEIGHT])
def test_kube_preferred_affinity_scores(name, incoming, pods, node_labels, args, want):
    nodes = _nodes(*node_labels)
    a = InterPodAffinityArgs(**args)
    plugin, snap, cluster = setup(nodes, pods(), args=a)
    p = incoming()
    names = [n.metadata.name for n in nodes]
    skipped, raw, norm = run_score(plugin, snap, p, names)
    ref_out = ref.score_nodes(*world(snap, cluster), p, names, a.hard_pod_affinity_weight,
                              a.ignore_preferred_terms_of_existing_pods)
    assert (skipped, raw, norm) == ref_out
    if want == SKIP:
        assert skipped
    else:
        assert not skipped
        assert [norm[n] for n in names] == want


# ------------------------------------------------------------------- further details


def test_normalize_divides_before_multiplying_as_kube_does():
    # raw scores 100, 29, 0: kube computes 100 * (29 / 100) = 28.999999999999996 -> 28
    nodes = [node(f"n{i}", hostname=f"h{i}") for i in range(3)]
    incoming = pod(pref_aff=[(100, t_in("app", "hostname", "a")),
                             (29, t_in("app", "hostname", "b"))])
    plugin, snap, cluster = setup(nodes, [pod({"app": "a"}, node="n0"),
                                          pod({"app": "b"}, node="n1")])
    skipped, raw, norm = run_score(plugin, snap, incoming)
    assert raw == {"n0": 100, "n1": 29, "n2": 0}
    assert norm == {"n0": 100, "n1": 28, "n2": 0}


def test_cancelling_weights_still_score_and_normalise_to_zero():
    # +5 and -5 on the same zone: the pair exists (PreScore does not skip), every node ends at 0
    nodes = [node("a", zone="z1"), node("b", zone="z2")]
    incoming = pod({"app": "x"})
    pods = [pod({"app": "y"}, node="a", pref_aff=[(5, t_in("app", "zone", "x"))]),
            pod({"app": "y"}, node="a", pref_anti=[(5, t_in("app", "zone", "x"))])]
    plugin, snap, cluster = setup(nodes, pods)
    assert run_score(plugin, snap, incoming) == (False, {"a": 0, "b": 0}, {"a": 0, "b": 0})


def test_ignore_preferred_terms_still_counts_existing_terms_when_the_pod_has_preferences():
    nodes = [node("a", zone="z1"), node("b", zone="z2"), node("c", zone="z3")]
    incoming = pod({"app": "x"}, pref_aff=[(10, t_in("app", "zone", "db"))])
    pods = [pod({"app": "db"}, node="a"),
            pod({"app": "web"}, node="b", pref_aff=[(50, t_in("app", "zone", "x"))]),
            pod({"app": "web"}, node="c", aff=[t_in("app", "zone", "x")])]
    args = InterPodAffinityArgs(5, ignore_preferred_terms_of_existing_pods=True)
    plugin, snap, cluster = setup(nodes, pods, args=args)
    skipped, raw, norm = run_score(plugin, snap, incoming)
    assert raw == {"a": 10, "b": 50, "c": 5}
    assert norm == {"a": 11, "b": 100, "c": 0}


def test_match_label_keys_merge_the_carrier_pods_own_labels():
    nodes = [node(f"n{i}", hostname=f"n{i}") for i in range(3)]
    anti = [t_in("app", "hostname", "web", matchLabelKeys=["pod-template-hash"])]
    old = [pod({"app": "web", "pod-template-hash": "v1"}, node="n0", anti=anti)]
    new = [pod({"app": "web", "pod-template-hash": "v2"}, node="n1", anti=anti)]
    plugin, snap, cluster = setup(nodes, old + new)
    # a v2 replica avoids the other v2 replica only
    skipped, got = run_filter(plugin, snap, pod({"app": "web", "pod-template-hash": "v2"},
                                                anti=anti))
    assert got == {"n0": OK, "n1": ANTI, "n2": OK}
    # without the key the merge adds nothing: every web pod counts
    skipped, got = run_filter(plugin, snap, pod({"app": "web"}, anti=anti))
    assert got == {"n0": ANTI, "n1": ANTI, "n2": OK}


def test_mismatch_label_keys_exclude_the_carriers_own_value():
    nodes = [node(f"n{i}", zone=f"z{i}") for i in range(3)]
    # existing tenants each keep other tenants out of their zone
    anti = [term(sel(("tenant", "Exists")), "zone", mismatchLabelKeys=["tenant"])]
    pods = [pod({"tenant": "a"}, node="n0", anti=anti), pod({"tenant": "b"}, node="n1", anti=anti)]
    plugin, snap, cluster = setup(nodes, pods)
    skipped, got = run_filter(plugin, snap, pod({"tenant": "a"}))
    assert got == {"n0": OK, "n1": EXIST, "n2": OK}


def test_incoming_namespace_selector_only_sees_namespace_objects():
    # DoesNotExist selects namespaces without the label - among existing Namespace objects.
    # 'ghost' has no Namespace object: the incoming pod's term does not reach its pods, while
    # an existing pod's term, matched with the (empty) labels of the incoming pod's namespace,
    # does.
    nodes = [node("n0", zone="z0"), node("n1", zone="z1")]
    dne = sel(("team", "DoesNotExist"))
    nss = [namespace("plain"), namespace("owned", team="t")]
    pods = [pod({"app": "db"}, ns="ghost", node="n0"), pod({"app": "db"}, ns="plain", node="n1")]
    plugin, snap, cluster = setup(nodes, pods, namespaces=nss)
    incoming = pod({"app": "web"}, ns="owned",
                   anti=[t_in("app", "zone", "db", namespaceSelector=dne)])
    assert run_filter(plugin, snap, incoming) == (False, {"n0": OK, "n1": ANTI})
    pods = [pod({"app": "db"}, ns="plain", node="n0",
                anti=[t_in("app", "zone", "web", namespaceSelector=dne)])]
    plugin, snap, cluster = setup(nodes, pods, namespaces=nss)
    assert run_filter(plugin, snap, pod({"app": "web"}, ns="ghost")) == (
        False, {"n0": EXIST, "n1": OK})
    assert run_filter(plugin, snap, pod({"app": "web"}, ns="owned"))[0]  # skipped


def test_replicas_share_one_index_entry():
    nodes = [node(f"n{i}", hostname=f"n{i}", zone=f"z{i % 3}") for i in range(30)]
    stanza = affinity(anti=[t_in("app", "hostname", "web")],
                      pref_aff=[(10, t_in("app", "zone", "db"))], aff=[t_exists("app", "zone")])
    pods = [pod({"app": "web"}, node=f"n{i}", stanza=stanza) for i in range(30)]
    plugin, snap, cluster = setup(nodes, pods)
    assert len(plugin.index.anti_terms) == 1
    assert len(plugin.index.score_terms) == 2
    assert len(plugin.index.class_ids) == 1
    assert sum(plugin.index.anti_terms[next(iter(plugin.index.anti_terms))].by_node.values()) == 30
    skipped, got = run_filter(plugin, snap, pod({"app": "web"}))
    assert set(got.values()) == {EXIST}


def test_filter_follows_pods_removed_after_prefilter():
    # preemption removes victims and filters again with the same cycle state
    nodes = [node("a", hostname="a"), node("b", hostname="b")]
    victim = pod({"app": "db"}, node="a", anti=[t_in("app", "hostname", "web")])
    plugin, snap, cluster = setup(nodes, [victim, pod({"app": "db"}, node="b")])
    incoming = pod({"app": "web"}, aff=[t_in("app", "hostname", "db")])
    info = snap.pod_info(incoming)
    state = CycleState()
    plugin.pre_filter(state, info, snap.alive_nodes())
    assert plugin.filter(state, info, snap.alive_nodes()).tolist() == [2, 0]
    snap.remove_pod(snap.pods[victim.key])
    assert plugin.filter(state, info, snap.alive_nodes()).tolist() == [3, 0]


def test_scheduler_spreads_replicas_with_required_anti_affinity():
    from schedbench.config import parse_scheduler_config
    from schedbench.scheduler.scheduler import Scheduler

    cfg = parse_scheduler_config({
        "apiVersion": "kubescheduler.config.k8s.io/v1", "kind": "KubeSchedulerConfiguration",
        "profiles": [{"schedulerName": "default-scheduler", "plugins": {"multiPoint": {
            "disabled": [{"name": "*"}],
            "enabled": [{"name": "PrioritySort"}, {"name": "InterPodAffinity"},
                        {"name": "DefaultBinder"}]}}}]})
    nodes = [make_node(f"n{i}", labels={"kubernetes.io/hostname": f"n{i}"}) for i in range(3)]
    stanza = affinity(anti=[t_in("app", "kubernetes.io/hostname", "web")])
    pods = [make_pod(f"web-{i}", labels={"app": "web"}, affinity=stanza) for i in range(4)]
    s = Scheduler(make_cluster(nodes, pods), config=cfg, seed=3)
    s.enqueue_pending()
    s.run()
    out = s.outcomes()
    placed = sorted(v["node"] for v in out.values() if v["status"] == "scheduled")
    assert placed == ["n0", "n1", "n2"]
    pending = [v for v in out.values() if v["status"] == "pending"]
    assert len(pending) == 1
    assert pending[0]["reason"].startswith(
        f"0/3 nodes are available: 3 {ref.ANTI_AFFINITY_REASON}")


# ------------------------------------------------------------------ random clusters

HOST, ZONE, REGION = ("kubernetes.io/hostname", "topology.kubernetes.io/zone",
                      "topology.kubernetes.io/region")
RACK, NOWHERE = "example.com/rack", "example.com/nowhere"
TOPOLOGY = [HOST, HOST, ZONE, ZONE, ZONE, REGION, REGION, RACK, NOWHERE]
NAMESPACES = ["default", "ns-a", "ns-b", "ns-c"]
APPS = ["web", "db", "cache"]
LABEL_KEYS = ["app", "tier", "version"]
VALUES = {"app": APPS, "tier": ["fe", "be"], "version": ["v1", "v2"]}


@st.composite
def label_selectors(draw):
    kind = draw(st.sampled_from(["nil", "all", "app", "app", "app", "expr", "expr"]))
    if kind == "nil":
        return None
    if kind == "all":
        return {}
    if kind == "app":
        return {"matchLabels": {"app": draw(st.sampled_from(APPS))}}
    exprs = []
    for key in draw(st.lists(st.sampled_from(LABEL_KEYS), min_size=1, max_size=2, unique=True)):
        op = draw(st.sampled_from(["In", "NotIn", "Exists", "DoesNotExist"]))
        e = {"key": key, "operator": op}
        if op in ("In", "NotIn"):
            e["values"] = draw(st.lists(st.sampled_from(VALUES[key]), min_size=1, max_size=2,
                                        unique=True))
        exprs.append(e)
    return {"matchExpressions": exprs}


NS_SELECTORS = [None, None, None, {}, {"matchLabels": {"team": "t1"}},
                {"matchExpressions": [{"key": "env", "operator": "DoesNotExist"}]},
                {"matchExpressions": [{"key": "team", "operator": "In", "values": ["t1", "t2"]}]}]


@st.composite
def affinity_terms(draw):
    selector = draw(label_selectors())
    t: dict = {"topologyKey": draw(st.sampled_from(TOPOLOGY))}
    if selector is not None:
        t["labelSelector"] = selector
    if draw(st.integers(0, 3)) == 0:
        t["namespaces"] = draw(st.lists(st.sampled_from(NAMESPACES + ["ns-ghost"]), max_size=2,
                                        unique=True))
    ns_sel = draw(st.sampled_from(NS_SELECTORS))
    if ns_sel is not None:
        t["namespaceSelector"] = ns_sel
    if selector is not None and draw(st.integers(0, 2)) == 0:
        keys = draw(st.permutations(LABEL_KEYS))
        a = draw(st.integers(0, 2))
        b = draw(st.integers(0, 3 - a))
        t["matchLabelKeys"] = keys[:a]
        t["mismatchLabelKeys"] = keys[a:a + b]
    return t


def _few(strategy):
    """No term half of the time, else one or two."""
    return st.one_of(st.just([]), st.lists(strategy, min_size=1, max_size=2))


@st.composite
def templates(draw):
    """(namespace, labels, affinity stanza) of a workload."""
    ns = draw(st.sampled_from(["default", "default", "ns-a", "ns-b", "ns-ghost"]))
    labels = {"app": draw(st.sampled_from(APPS))}
    for key in ("tier", "version"):
        if draw(st.booleans()):
            labels[key] = draw(st.sampled_from(VALUES[key]))
    weighted = st.tuples(st.integers(1, 100), affinity_terms())
    stanza = affinity(aff=draw(_few(affinity_terms())) or None,
                      anti=draw(_few(affinity_terms())) or None,
                      pref_aff=draw(_few(weighted)), pref_anti=draw(_few(weighted)))
    return ns, labels, stanza


def _node_objects(rng: random.Random, count: int):
    out = []
    for i in range(count):
        labels = {}
        if rng.random() < 0.9:
            labels[HOST] = f"node-{i}"
        if rng.random() < 0.85:
            labels[ZONE] = f"z{rng.randrange(4)}"
        if rng.random() < 0.7:
            labels[REGION] = f"r{rng.randrange(2)}"
        if rng.random() < 0.15:
            labels[RACK] = f"rack{rng.randrange(2)}"
        out.append(make_node(f"node-{i}", labels=labels))
    return out


def _namespace_objects(rng: random.Random):
    out = []
    for name in NAMESPACES:
        if rng.random() < 0.75:
            labels = {"team": rng.choice(["t1", "t2"])} if rng.random() < 0.7 else {}
            if rng.random() < 0.3:
                labels["env"] = "prod"
            out.append(namespace(name, **labels))
    return out


def _instance(template, node_name=""):
    ns, labels, stanza = template
    return pod(dict(labels), ns=ns, node=node_name, stanza=stanza)


@st.composite
def scenarios(draw):
    rng = random.Random(draw(st.integers(0, 2**32 - 1)))
    n_nodes = draw(st.one_of(st.integers(1, 12), st.integers(13, 250)))
    nodes = _node_objects(rng, n_nodes)
    workloads = draw(st.lists(templates(), min_size=1, max_size=5))
    pods = []
    for w in workloads:
        for _ in range(draw(st.integers(1, 25))):
            pods.append(_instance(w, f"node-{rng.randrange(n_nodes)}"))
    incoming = _instance(draw(st.one_of(st.sampled_from(workloads), templates())))
    args = InterPodAffinityArgs(draw(st.sampled_from([0, 1, 1, 7, 100])),
                                draw(st.sampled_from([False, False, True])))
    scored = sorted(rng.sample(range(n_nodes), 0 if rng.random() < 0.05 else
                               rng.randint(1, n_nodes)))
    return nodes, pods, _namespace_objects(rng), incoming, args, workloads, scored


def compare_with_reference(plugin, snap, cluster, incoming, args, scored):
    nodes, bound, nsmap = world(snap, cluster)
    want_skip, want = ref.filter_nodes(nodes, bound, nsmap, incoming)
    got_skip, got = run_filter(plugin, snap, incoming)
    assert got_skip == want_skip
    if not got_skip:
        assert got == want
    names = [snap.node_names[i] for i in scored if snap.alive[i]]
    want_score = ref.score_nodes(nodes, bound, nsmap, incoming, names,
                                 args.hard_pod_affinity_weight,
                                 args.ignore_preferred_terms_of_existing_pods)
    assert run_score(plugin, snap, incoming, names) == want_score


@given(scenarios())
def test_random_clusters_match_the_reference(scenario):
    nodes, pods, nss, incoming, args, _, scored = scenario
    plugin, snap, cluster = setup(nodes, pods, namespaces=nss, args=args)
    compare_with_reference(plugin, snap, cluster, incoming, args, scored)


@given(scenarios(), st.data())
def test_incremental_index_equals_a_recount(scenario, data):
    nodes, pods, nss, incoming, args, workloads, scored = scenario
    plugin, snap, cluster = setup(nodes, pods, namespaces=nss, args=args)
    rng = random.Random(data.draw(st.integers(0, 2**32 - 1)))
    for _ in range(data.draw(st.integers(1, 25))):
        op = rng.random()
        if op < 0.45:
            p = _instance(rng.choice(workloads))
            snap.add_pod(snap.pod_info(p), rng.randrange(snap.num_nodes))
        elif op < 0.9:
            if snap.pods:
                snap.remove_pod(rng.choice(list(snap.pods.values())))
        else:  # relabel a node: its pods leave and come back under the new labels
            i = rng.randrange(snap.num_nodes)
            labels = dict(snap.nodes[i].metadata.labels)
            labels[ZONE] = f"z{rng.randrange(5)}"
            if rng.random() < 0.3:
                labels.pop(HOST, None)
            snap.update_node(make_node(snap.node_names[i], labels=labels))
        assert index_contents(plugin.index) == index_contents(recount(snap))
    compare_with_reference(plugin, snap, cluster, incoming, args, scored)


def test_recount_of_an_empty_snapshot_is_empty():
    assert index_contents(recount(NodeSnapshot())) == {"classes": {}, "anti": {}, "score": {}}


def test_plugins_over_one_snapshot_share_one_index():
    plugin, snap, cluster = setup([node("a", zone="z")], [pod({"app": "db"}, node="a")])
    other = type(plugin)(InterPodAffinityArgs(hard_pod_affinity_weight=7), plugin.handle)
    assert other.index is plugin.index
    assert sum(1 for lst in snap.listeners if lst is plugin.index) == 1
