"""Node plugins (NodeUnschedulable, NodeName, NodeAffinity, TaintToleration, NodePorts) and
their kernels (nodeselector, taints): property tests against the plain-Python reference in
tests/reference/node_plugins.py, and cases ported from kube-scheduler's own unit tests."""

from __future__ import annotations

import random

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from reference import node_plugins as ref
from scheduler_helpers import make_cluster, make_node, make_pod, plugin_on, snapshot_of

from schedbench.config import NodeAffinityArgs
from schedbench.model.labels import (
    NodeSelector,
    Requirement,
    Selector,
    node_selector_from_dict,
    node_selector_term_from_dict,
)
from schedbench.scheduler.framework import CycleState, Framework
from schedbench.scheduler.nodeselector import (
    compile_node_selector,
    compile_pod_node_affinity,
    compile_selector,
    compile_weighted_terms,
    match_nodes,
    weighted_scores,
)
from schedbench.scheduler.snapshot import NODE_NAME_KEY
from schedbench.scheduler.taints import (
    compile_tolerations,
    count_untolerated_taints,
    first_untolerated_taint,
    untolerated_taints,
)

# ------------------------------------------------------------------------------ strategies

LABEL_VALUES = {
    "topology.kubernetes.io/zone": ["z1", "z2", "z3"],
    "tier": ["web", "db", "cache"],
    "gen": ["1", "2", "3", "10", "007"],
    "num": ["0", "5", "42", "100", "x1", "9223372036854775807"],
    "disk": ["ssd", "hdd"],
}
LABEL_KEYS = list(LABEL_VALUES)
INT_BOUNDS = ["0", "1", "3", "9", "10", "41", "100", "-5"]
TAINT_KEYS = ["dedicated", "gpu", "node.kubernetes.io/unschedulable", "spot"]
TAINT_VALUES = ["", "a", "b"]
EFFECTS = ["NoSchedule", "PreferNoSchedule", "NoExecute"]
NODE_NAMES = [f"n{i}" for i in range(60)]
HOST_IPS = ["", "0.0.0.0", "127.0.0.1", "10.0.0.1"]


@st.composite
def node_specs(draw):
    labels = {k: draw(st.sampled_from(v)) for k, v in LABEL_VALUES.items()
              if draw(st.integers(0, 3)) > 0}
    taints = draw(st.lists(st.tuples(st.sampled_from(TAINT_KEYS), st.sampled_from(TAINT_VALUES),
                                     st.sampled_from(EFFECTS)),
                           max_size=3, unique_by=lambda t: (t[0], t[2])))
    return labels, taints, draw(st.integers(0, 4)) == 0


def _random_node_spec(rng: random.Random):
    labels = {k: rng.choice(v) for k, v in LABEL_VALUES.items() if rng.random() < 0.7}
    taints, seen = [], set()
    for _ in range(rng.choice([0, 0, 0, 1, 1, 2])):
        t = (rng.choice(TAINT_KEYS), rng.choice(TAINT_VALUES), rng.choice(EFFECTS))
        if (t[0], t[2]) not in seen:
            seen.add((t[0], t[2]))
            taints.append(t)
    return labels, taints, rng.random() < 0.15


def _node(i: int, spec):
    labels, taints, unsched = spec
    return make_node(f"n{i}", labels=labels, unschedulable=unsched,
                     taints=[{"key": k, "value": v, "effect": e} for k, v, e in taints])


@st.composite
def node_lists(draw, max_drawn=30, max_bulk=170):
    """Tens to hundreds of nodes: some drawn (shrinkable), the bulk from a seeded generator."""
    specs = draw(st.lists(node_specs(), min_size=1, max_size=max_drawn))
    bulk = draw(st.integers(0, max_bulk))
    rng = random.Random(draw(st.integers(0, 2 ** 32)))
    specs += [_random_node_spec(rng) for _ in range(bulk)]
    return [_node(i, s) for i, s in enumerate(specs)]


@st.composite
def expressions(draw):
    key = draw(st.sampled_from(LABEL_KEYS + ["missing"]))
    op = draw(st.sampled_from(["In", "NotIn", "Exists", "DoesNotExist", "Gt", "Lt"]))
    if op in ("In", "NotIn"):
        pool = LABEL_VALUES.get(key, []) + ["zz"]
        values = draw(st.lists(st.sampled_from(pool), min_size=1, max_size=3, unique=True))
    elif op in ("Gt", "Lt"):
        values = [draw(st.sampled_from([b for b in INT_BOUNDS if not b.startswith("-")]))]
    else:
        values = []
    d = {"key": key, "operator": op}
    if values:
        d["values"] = values
    return d


@st.composite
def fields(draw):
    return {"key": "metadata.name", "operator": draw(st.sampled_from(["In", "NotIn"])),
            "values": [draw(st.sampled_from(NODE_NAMES[:40]))]}


@st.composite
def terms(draw, allow_empty=True):
    d = {}
    exprs = draw(st.lists(expressions(), max_size=3))
    flds = draw(st.lists(fields(), max_size=2))
    if exprs:
        d["matchExpressions"] = exprs
    if flds:
        d["matchFields"] = flds
    if not allow_empty and not d:
        d["matchExpressions"] = [draw(expressions())]
    return d


@st.composite
def node_selector_dicts(draw):
    return {"nodeSelectorTerms": draw(st.lists(terms(), min_size=1, max_size=3))}


@st.composite
def tolerations(draw):
    out = []
    for _ in range(draw(st.integers(0, 4))):
        effect = draw(st.sampled_from([""] + EFFECTS))
        kind = draw(st.integers(0, 5))
        if kind == 0:
            t = {"operator": "Exists"}
        elif kind in (1, 2):
            t = {"key": draw(st.sampled_from(TAINT_KEYS)), "operator": "Exists"}
        else:
            t = {"key": draw(st.sampled_from(TAINT_KEYS)), "operator": "Equal",
                 "value": draw(st.sampled_from(TAINT_VALUES))}
        if effect:
            t["effect"] = effect
        out.append(t)
    return out


@st.composite
def port_lists(draw, max_size=3):
    return [{"containerPort": 80, "hostPort": draw(st.sampled_from([80, 443, 8080])),
             "protocol": draw(st.sampled_from(["TCP", "UDP"])),
             "hostIP": draw(st.sampled_from(HOST_IPS))}
            for _ in range(draw(st.integers(0, max_size)))]


def _pod_with_ports(name, ports, sidecar_ports=(), node="", **spec):
    containers = [{"name": "c", "image": "img", "ports": list(ports)}]
    if sidecar_ports:
        spec["initContainers"] = [{"name": "s", "image": "img", "restartPolicy": "Always",
                                   "ports": list(sidecar_ports)},
                                  {"name": "init", "image": "img",
                                   "ports": [{"containerPort": 1, "hostPort": 9999}]}]
    return make_pod(name, containers=containers, node=node, **spec)


@st.composite
def pods(draw):
    spec = {}
    if draw(st.booleans()):
        spec["nodeSelector"] = {k: draw(st.sampled_from(LABEL_VALUES[k]))
                                for k in draw(st.lists(st.sampled_from(LABEL_KEYS),
                                                       max_size=2, unique=True))}
    na = {}
    if draw(st.integers(0, 2)) > 0:
        na["requiredDuringSchedulingIgnoredDuringExecution"] = draw(node_selector_dicts())
    if draw(st.booleans()):
        na["preferredDuringSchedulingIgnoredDuringExecution"] = [
            {"weight": draw(st.integers(1, 100)), "preference": draw(terms())}
            for _ in range(draw(st.integers(1, 3)))]
    if na:
        spec["affinity"] = {"nodeAffinity": na}
    spec["tolerations"] = draw(tolerations())
    if draw(st.integers(0, 3)) == 0:
        spec["nodeName"] = draw(st.sampled_from(NODE_NAMES[:40]))
    node_name = spec.pop("nodeName", "")
    pod = _pod_with_ports("p", draw(port_lists()), draw(port_lists(max_size=1)), **spec)
    pod.spec.node_name = node_name  # unbound pod naming a node
    return pod


@st.composite
def bound_pod_lists(draw, n_nodes):
    out = []
    for i in range(draw(st.integers(0, 30))):
        node = f"n{draw(st.integers(0, n_nodes - 1))}"
        out.append(_pod_with_ports(f"b{i}", draw(port_lists(max_size=2)),
                                   draw(port_lists(max_size=1)), node=node))
    return out


@st.composite
def added_affinities(draw):
    a = {}
    if draw(st.booleans()):
        a["requiredDuringSchedulingIgnoredDuringExecution"] = {
            "nodeSelectorTerms": draw(st.lists(terms(allow_empty=False), min_size=1,
                                               max_size=2))}
    if draw(st.booleans()):
        a["preferredDuringSchedulingIgnoredDuringExecution"] = [
            {"weight": draw(st.integers(1, 50)), "preference": draw(terms())}
            for _ in range(draw(st.integers(1, 2)))]
    return a or None


# ---------------------------------------------------------------------------------- helpers


def _labels_of(snap, n):
    return snap.nodes[n].metadata.labels


def _filter_all(plugin, snap, pod_obj):
    """(pre_filter status, allowed, {name: (code, reasons)}) over all live nodes."""
    info = snap.pod_info(pod_obj)
    state = CycleState()
    nodes = snap.alive_nodes()
    status, allowed = (plugin.pre_filter(state, info, nodes) if hasattr(plugin, "pre_filter")
                       else (None, None))
    if status is not None and status.is_skip:
        return status, allowed, None
    codes = plugin.filter(state, info, nodes)
    out = {}
    for n, c in zip(nodes, codes):
        reasons = plugin.filter_reasons(state, info, int(n)) if c else []
        out[snap.node_names[n]] = (int(c), reasons)
    return status, allowed, out


def _scores(plugin, snap, pod_obj, nodes=None):
    info = snap.pod_info(pod_obj)
    state = CycleState()
    nodes = snap.alive_nodes() if nodes is None else np.asarray(nodes, np.int64)
    if hasattr(plugin, "pre_score") and plugin.pre_score(state, info, nodes).is_skip:
        return None
    s = np.array(plugin.score(state, info, nodes), np.int64)
    plugin.normalize_score(state, info, nodes, s)
    return [int(x) for x in s]


# ------------------------------------------------------------------- nodeselector / taints


@given(nodes=node_lists(max_bulk=60), sel=node_selector_dicts())
def test_compiled_node_selector_equals_model_semantics(nodes, sel):
    snap = snapshot_of(make_cluster(nodes))
    ns = node_selector_from_dict(sel)
    got = match_nodes(snap, compile_node_selector(snap, ns), snap.alive_nodes())
    want = [ns.matches(n.metadata.labels, n.metadata.name) for n in nodes]
    assert got.tolist() == want
    assert got.tolist() == [ref.node_selector_matches(ns, n) for n in nodes]


_SELECTOR_OPS = ["in", "notin", "=", "==", "!=", "exists", "!", "gt", "lt"]


@st.composite
def label_selectors(draw):
    reqs = []
    for _ in range(draw(st.integers(0, 3))):
        key = draw(st.sampled_from(LABEL_KEYS + ["missing"]))
        op = draw(st.sampled_from(_SELECTOR_OPS))
        pool = LABEL_VALUES.get(key, []) + ["zz"]
        if op in ("in", "notin"):
            values = draw(st.lists(st.sampled_from(pool), min_size=1, max_size=3, unique=True))
        elif op in ("=", "==", "!="):
            values = [draw(st.sampled_from(pool))]
        elif op in ("gt", "lt"):
            values = [draw(st.sampled_from(INT_BOUNDS[:-1]))]
        else:
            values = []
        reqs.append(Requirement(key, op, tuple(values)))
    if draw(st.integers(0, 9)) == 0:
        return Selector.nothing()
    return Selector(reqs)


@given(nodes=node_lists(max_bulk=40), sel=label_selectors())
def test_compiled_label_selector_equals_selector_matches(nodes, sel):
    snap = snapshot_of(make_cluster(nodes))
    got = match_nodes(snap, compile_selector(snap, sel), snap.alive_nodes())
    assert got.tolist() == [sel.matches(n.metadata.labels) for n in nodes]
    if not sel.is_nothing:
        assert got.tolist() == [all(ref.requirement_matches(r, n.metadata.labels)
                                    for r in sel.requirements) for n in nodes]


@given(nodes=node_lists(max_bulk=60), pod=pods())
def test_compile_pod_node_affinity_equals_required_node_affinity(nodes, pod):
    snap = snapshot_of(make_cluster(nodes))
    compiled = compile_pod_node_affinity(snap, pod)
    got = match_nodes(snap, compiled, snap.alive_nodes())
    assert got.tolist() == [ref.required_node_affinity_matches(pod, n) for n in nodes]
    if not pod.spec.node_selector and (pod.spec.affinity is None or
                                       pod.spec.affinity.node_affinity.required is None):
        assert compiled is None


@given(nodes=node_lists(max_bulk=60), tols=tolerations())
def test_taint_kernels_equal_reference(nodes, tols):
    snap = snapshot_of(make_cluster(nodes))
    pod = make_pod("p", tolerations=tols)
    c = compile_tolerations(snap, pod.spec.tolerations)
    all_nodes = snap.alive_nodes()
    for effects in ({"NoSchedule", "NoExecute"}, {"PreferNoSchedule"}, set(EFFECTS)):
        want_count = [sum(1 for t in n.spec.taints if t.effect in effects
                          and not ref.tolerated(pod.spec.tolerations, t)) for n in nodes]
        assert count_untolerated_taints(snap, c, all_nodes, effects).tolist() == want_count
        assert untolerated_taints(snap, c, all_nodes, effects).tolist() == [
            x > 0 for x in want_count]
        for i, n in enumerate(nodes):
            first = first_untolerated_taint(snap, c, i, effects)
            want = next((t for t in n.spec.taints if t.effect in effects
                         and not ref.tolerated(pod.spec.tolerations, t)), None)
            assert first is want


def test_vocabulary_growth_after_compile():
    """Masks are sized to the vocabulary: values and keys interned after compiling (new label
    values, new integers for Gt/Lt, new node names, a key no node had) still match."""
    snap = snapshot_of(make_cluster([make_node("n0", labels={"gen": "1", "tier": "web"})]))
    sel = node_selector_from_dict({"nodeSelectorTerms": [
        {"matchExpressions": [{"key": "gen", "operator": "Gt", "values": ["5"]}]},
        {"matchExpressions": [{"key": "tier", "operator": "NotIn", "values": ["web"]},
                              {"key": "fresh", "operator": "In", "values": ["yes"]}]},
        {"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["late"]}]},
    ]})
    compiled = compile_node_selector(snap, sel)
    assert compiled.req_key.size == 4
    assert snap.vocab.key_id("fresh") >= 0  # a column for a key no node has
    before = match_nodes(snap, compiled, snap.alive_nodes())
    assert before.tolist() == [False]
    snap.add_node(make_node("n1", labels={"gen": "12"}))
    snap.add_node(make_node("n2", labels={"gen": "4", "tier": "db", "fresh": "yes"}))
    snap.add_node(make_node("late", labels={"gen": "abc"}))
    snap.add_node(make_node("n4", labels={"tier": "batch", "fresh": "no"}))
    assert compiled.stale(snap)
    got = match_nodes(snap, compiled, snap.alive_nodes())
    assert got.tolist() == [False, True, True, True, False]
    assert got.tolist() == [sel.matches(n.metadata.labels, n.metadata.name) for n in snap.nodes]
    # the node-name pseudo label is matched like any label
    assert snap.vocab.key_id(NODE_NAME_KEY) >= 0


def test_tolerations_recompiled_when_taint_strings_grow():
    snap = snapshot_of(make_cluster([make_node("n0")]))
    pod = make_pod("p", tolerations=[{"key": "late", "operator": "Equal", "value": "v"}])
    c = compile_tolerations(snap, pod.spec.tolerations)
    snap.add_node(make_node("n1", taints=[{"key": "late", "value": "v", "effect": "NoSchedule"}]))
    snap.add_node(make_node("n2", taints=[{"key": "late", "value": "w", "effect": "NoSchedule"}]))
    assert c.stale(snap)
    got = untolerated_taints(snap, c, snap.alive_nodes(), {"NoSchedule"})
    assert got.tolist() == [False, False, True]


def test_weighted_terms_drop_zero_weight_and_empty_terms():
    snap = snapshot_of(make_cluster([make_node("n0", labels={"a": "x"}),
                                     make_node("n1", labels={"a": "y"})]))
    term = node_selector_term_from_dict({"matchExpressions": [
        {"key": "a", "operator": "In", "values": ["x"]}]})
    wt = compile_weighted_terms(snap, [(0, term), (7, node_selector_term_from_dict({})),
                                       (3, term), (2, term)])
    assert wt.weights.tolist() == [3, 2]
    assert weighted_scores(snap, wt, snap.alive_nodes()).tolist() == [5, 0]


# ------------------------------------------------------------------- plugins vs reference


@given(data=st.data())
def test_plugins_equal_reference(data):
    nodes = data.draw(node_lists())
    bound = data.draw(bound_pod_lists(len(nodes)))
    pod = data.draw(pods())
    added = data.draw(added_affinities())
    cluster = make_cluster(nodes, bound)
    bound_on = {n.metadata.name: [p for p in bound if p.spec.node_name == n.metadata.name]
                for n in nodes}

    # NodeUnschedulable, NodeName, TaintToleration: Filter only on each node
    for name, fn in (("NodeUnschedulable", ref.node_unschedulable_filter),
                     ("NodeName", ref.node_name_filter),
                     ("TaintToleration", ref.taint_toleration_filter)):
        plugin, snap = plugin_on(name, cluster)
        _, _, got = _filter_all(plugin, snap, pod)
        assert got == {n.metadata.name: fn(pod, n) for n in nodes}, name

    # NodePorts
    plugin, snap = plugin_on("NodePorts", cluster)
    status, _, got = _filter_all(plugin, snap, pod)
    code, _ = ref.node_ports_pre_filter(pod)
    if code == ref.SKIP:
        assert status.is_skip
    else:
        assert got == {n.metadata.name: ref.node_ports_filter(pod, bound_on[n.metadata.name])
                       for n in nodes}

    # NodeAffinity, with and without addedAffinity
    for args in (None, NodeAffinityArgs.from_dict({"addedAffinity": added}) if added else None):
        plugin, snap = plugin_on("NodeAffinity", cluster, args)
        added_req = added_pref = None
        if args is not None:
            a = args.added_affinity
            if "requiredDuringSchedulingIgnoredDuringExecution" in a:
                added_req = node_selector_from_dict(
                    a["requiredDuringSchedulingIgnoredDuringExecution"])
            if a.get("preferredDuringSchedulingIgnoredDuringExecution"):
                added_pref = [(t["weight"], node_selector_term_from_dict(t["preference"]))
                              for t in a["preferredDuringSchedulingIgnoredDuringExecution"]]
        status, allowed, got = _filter_all(plugin, snap, pod)
        code, reasons, names = ref.node_affinity_pre_filter(pod, added_req)
        assert int(status.code) == code and list(status.reasons) == reasons
        if code == ref.SUCCESS:
            if names is None:
                assert allowed is None
            else:
                assert [snap.node_names[i] for i in allowed] == sorted(
                    (n for n in names if n in snap.node_index), key=snap.node_index.get)
        if got is not None:
            assert got == {n.metadata.name: ref.node_affinity_filter(pod, n, added_req)
                           for n in nodes}
        # Score over all nodes and over the Filter-feasible ones
        assert _scores(plugin, snap, pod) == ref.node_affinity_scores(pod, nodes, added_pref)
        feasible = [i for i, n in enumerate(nodes)
                    if ref.node_affinity_filter(pod, n, added_req)[0] == ref.SUCCESS]
        assert _scores(plugin, snap, pod, feasible) == ref.node_affinity_scores(
            pod, [nodes[i] for i in feasible], added_pref)

    # TaintToleration score
    plugin, snap = plugin_on("TaintToleration", cluster)
    assert _scores(plugin, snap, pod) == ref.taint_toleration_scores(pod, nodes)
    sub = [i for i, n in enumerate(nodes) if ref.taint_toleration_filter(pod, n)[0] == 0]
    assert _scores(plugin, snap, pod, sub) == ref.taint_toleration_scores(
        pod, [nodes[i] for i in sub])


@given(data=st.data())
def test_node_ports_incremental_listener_equals_reference(data):
    """Pods bound and removed one by one: the listener's used ports equal the union of the
    remaining pods' host ports whenever no two pods on a node share an entry."""
    n_nodes = data.draw(st.integers(1, 6))
    nodes = [make_node(f"n{i}") for i in range(n_nodes)]
    plugin, snap = plugin_on("NodePorts", make_cluster(nodes))
    pool = data.draw(bound_pod_lists(n_nodes))
    infos = []
    for p in pool:
        used = {hp for i in infos if i.pod.spec.node_name == p.spec.node_name
                for hp in ref.pod_host_ports(i.pod)}
        if used & set(ref.pod_host_ports(p)):
            continue  # shared entries follow kube's set semantics (tested separately)
        info = snap.pod_info(p)
        snap.add_pod(info, snap.node_index[p.spec.node_name])
        infos.append(info)
    for info in data.draw(st.permutations(infos))[: data.draw(st.integers(0, len(infos)))]:
        snap.remove_pod(info)
        infos.remove(info)
    probe = data.draw(pods())
    _, _, got = _filter_all(plugin, snap, probe)
    if got is not None:
        want = {n.metadata.name: ref.node_ports_filter(
            probe, [i.pod for i in infos if i.pod.spec.node_name == n.metadata.name])
            for n in nodes}
        assert got == want
    for n in range(n_nodes):
        assert plugin.used.node_ports(n) == {
            hp for i in infos if i.node == n for hp in ref.pod_host_ports(i.pod)}


def test_node_ports_removal_follows_kube_set_semantics():
    """HostPortInfo is a set: removing one of two pods sharing (ip, protocol, port) frees it."""
    port = [{"containerPort": 80, "hostPort": 80}]
    a = _pod_with_ports("a", port, node="n0")
    b = _pod_with_ports("b", port, node="n0")
    plugin, snap = plugin_on("NodePorts", make_cluster([make_node("n0")], [a, b]))
    probe = _pod_with_ports("p", port)
    assert _filter_all(plugin, snap, probe)[2]["n0"][0] == ref.UNSCHEDULABLE
    snap.remove_pod(snap.pods["default/a"])
    assert _filter_all(plugin, snap, probe)[2]["n0"][0] == ref.SUCCESS
    assert plugin.used.node_ports(0) == set()


def test_plugins_through_framework_profile():
    """The plugins load by name from a profile and the framework runs them together."""
    from schedbench.config import API_VERSION, KIND, parse_scheduler_config
    from schedbench.scheduler.framework import Handle

    names = ["PrioritySort", "DefaultBinder", "NodeUnschedulable", "NodeName", "TaintToleration",
             "NodeAffinity", "NodePorts", "NodeResourcesFit"]
    cfg = parse_scheduler_config({"apiVersion": API_VERSION, "kind": KIND, "profiles": [{
        "schedulerName": "node-plugins", "plugins": {"multiPoint": {
            "enabled": [{"name": n} for n in names], "disabled": [{"name": "*"}]}}}]})
    nodes = [make_node("n0", labels={"zone": "a"}),
             make_node("n1", labels={"zone": "b"},
                       taints=[{"key": "k", "effect": "NoSchedule"}]),
             make_node("n2", labels={"zone": "a"}, unschedulable=True)]
    cluster = make_cluster(nodes)
    snap = snapshot_of(cluster)
    fw = Framework(cfg.profiles[0], Handle(snap, cluster, np.random.default_rng(0)))
    pod = snap.pod_info(make_pod("p", cpu="100m", affinity={"nodeAffinity": {
        "preferredDuringSchedulingIgnoredDuringExecution": [
            {"weight": 10, "preference": {"matchExpressions": [
                {"key": "zone", "operator": "In", "values": ["a"]}]}}]}}))
    state = CycleState()
    pre = fw.run_pre_filter(state, pod, snap.alive_nodes())
    out = fw.run_filters(state, pod, snap.alive_nodes(), pre.skipped)
    reasons = fw.filter_reasons(state, pod, out)
    assert out.feasible.tolist() == [0]
    assert reasons[1] == ("TaintToleration", ["node(s) had untolerated taint(s)"])
    assert reasons[2] == ("NodeUnschedulable", ["node(s) were unschedulable"])
    skipped = fw.run_pre_score(state, pod, out.feasible)
    assert "NodeAffinity" not in skipped
    scores = fw.run_scores(state, pod, snap.alive_nodes(), skipped, keep=True)
    assert scores.normalized["NodeAffinity"].tolist() == [100, 0, 100]
    assert scores.normalized["TaintToleration"].tolist() == [100, 100, 100]


# ---------------------------------------------------------------- ported kube-scheduler cases

# node_affinity_test.go TestNodeAffinity: (name, pod spec, node labels, node name, args,
# want prefilter (code, reason, allowed names | None), want filter (code, reason))
_IN = "In"


def _req(*terms_):
    return {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution":
                             {"nodeSelectorTerms": list(terms_)}}}


def _expr(key, op, *values):
    d = {"key": key, "operator": op}
    if values:
        d["values"] = list(values)
    return d


def _name_field(name):
    return {"key": "metadata.name", "operator": "In", "values": [name]}


_POD_REASON = "node(s) didn't match Pod's node affinity/selector"
_ENFORCED = "node(s) didn't match scheduler-enforced node affinity"
_OK = (0, None)
_NO = (3, _POD_REASON)
_PF_OK = (0, None, None)

NODE_AFFINITY_CASES = [
    ("missing labels", {"nodeSelector": {"foo": "bar"}}, {}, "node", None, _PF_OK, _NO),
    ("same labels", {"nodeSelector": {"foo": "bar"}}, {"foo": "bar"}, "node", None, _PF_OK, _OK),
    ("node labels are superset", {"nodeSelector": {"foo": "bar"}},
     {"foo": "bar", "baz": "blah"}, "node", None, _PF_OK, _OK),
    ("node labels are subset", {"nodeSelector": {"foo": "bar", "baz": "blah"}},
     {"foo": "bar"}, "node", None, _PF_OK, _NO),
    ("In matches", {"affinity": _req({"matchExpressions": [_expr("foo", _IN, "bar", "value2")]})},
     {"foo": "bar"}, "node", None, _PF_OK, _OK),
    ("Gt matches", {"affinity": _req({"matchExpressions": [
        _expr("kernel-version", "Gt", "0204")]})},
     {"kernel-version": "0206"}, "node", None, _PF_OK, _OK),
    ("NotIn matches", {"affinity": _req({"matchExpressions": [
        _expr("mem-type", "NotIn", "DDR", "DDR2")]})},
     {"mem-type": "DDR3"}, "node", None, _PF_OK, _OK),
    ("Exists matches", {"affinity": _req({"matchExpressions": [_expr("GPU", "Exists")]})},
     {"GPU": "NVIDIA-GRID-K1"}, "node", None, _PF_OK, _OK),
    ("affinity does not match labels", {"affinity": _req({"matchExpressions": [
        _expr("foo", _IN, "value1", "value2")]})}, {"foo": "bar"}, "node", None, _PF_OK, _NO),
    ("empty MatchExpressions matches nothing", {"affinity": _req({"matchExpressions": []})},
     {"foo": "bar"}, "node", None, _PF_OK, _NO),
    ("no affinity", {}, {"foo": "bar"}, "node", None, (5, None, None), None),
    ("affinity with nil required", {"affinity": {"nodeAffinity": {}}}, {"foo": "bar"}, "node",
     None, (5, None, None), None),
    ("multiple expressions ANDed match", {"affinity": _req({"matchExpressions": [
        _expr("GPU", "Exists"), _expr("GPU", "NotIn", "AMD", "INTER")]})},
     {"GPU": "NVIDIA-GRID-K1"}, "node", None, _PF_OK, _OK),
    ("multiple expressions ANDed do not match", {"affinity": _req({"matchExpressions": [
        _expr("GPU", "Exists"), _expr("GPU", _IN, "AMD", "INTER")]})},
     {"GPU": "NVIDIA-GRID-K1"}, "node", None, _PF_OK, _NO),
    ("terms ORed", {"affinity": _req(
        {"matchExpressions": [_expr("foo", _IN, "bar", "value2")]},
        {"matchExpressions": [_expr("diffkey", _IN, "wrong", "value2")]})},
     {"foo": "bar"}, "node", None, _PF_OK, _OK),
    ("affinity and nodeSelector both satisfied",
     {"nodeSelector": {"foo": "bar"}, "affinity": _req({"matchExpressions": [
         _expr("foo", "Exists")]})}, {"foo": "bar"}, "node", None, _PF_OK, _OK),
    ("affinity satisfied but nodeSelector not",
     {"nodeSelector": {"foo": "bar"}, "affinity": _req({"matchExpressions": [
         _expr("foo", "Exists")]})}, {"foo": "barrrrrr"}, "node", None, _PF_OK, _NO),
    ("matchFields In matches", {"affinity": _req({"matchFields": [_name_field("node1")]})},
     {}, "node1", None, (0, None, {"node1"}), _OK),
    ("matchFields In does not match", {"affinity": _req({"matchFields": [_name_field("node1")]})},
     {}, "node2", None, (0, None, {"node1"}), _NO),
    ("two terms: fields do not match, expressions match", {"affinity": _req(
        {"matchFields": [_name_field("node1"), _name_field("node2")]},
        {"matchExpressions": [_expr("foo", _IN, "bar")]})},
     {"foo": "bar"}, "node2", None, _PF_OK, _OK),
    ("one term: fields do not match, expressions match", {"affinity": _req(
        {"matchFields": [_name_field("node1")], "matchExpressions": [_expr("foo", _IN, "bar")]})},
     {"foo": "bar"}, "node2", None, (0, None, {"node1"}), _NO),
    ("one term: fields and expressions match", {"affinity": _req(
        {"matchFields": [_name_field("node1")], "matchExpressions": [_expr("foo", _IN, "bar")]})},
     {"foo": "bar"}, "node1", None, (0, None, {"node1"}), _OK),
    ("two terms: neither matches", {"affinity": _req(
        {"matchFields": [_name_field("node1")]},
        {"matchExpressions": [_expr("foo", _IN, "not-match-to-bar")]})},
     {"foo": "bar"}, "node2", None, _PF_OK, _NO),
    ("two terms of node name affinity", {"affinity": _req(
        {"matchFields": [_name_field("node1")]}, {"matchFields": [_name_field("node2")]})},
     {}, "node2", None, (0, None, {"node1", "node2"}), _OK),
    ("two conflicting field requirements", {"affinity": _req(
        {"matchFields": [_name_field("node1"), _name_field("node2")]})},
     {"foo": "bar"}, "node2", None, (3, "pod affinity terms conflict", None), _NO),
    ("matches added affinity and pod affinity",
     {"affinity": _req({"matchExpressions": [_expr("zone", _IN, "foo")]})}, {"zone": "foo"},
     "node2", _req({"matchFields": [_name_field("node2")]})["nodeAffinity"], _PF_OK, _OK),
    ("matches added affinity but not pod affinity",
     {"affinity": _req({"matchExpressions": [_expr("zone", _IN, "bar")]})}, {"zone": "foo"},
     "node2", _req({"matchFields": [_name_field("node2")]})["nodeAffinity"], _PF_OK, _NO),
    ("does not match added affinity", {}, {"zone": "foo"}, "node2",
     _req({"matchExpressions": [_expr("zone", _IN, "bar")]})["nodeAffinity"], _PF_OK,
     (3, _ENFORCED)),
]


@pytest.mark.parametrize("case", NODE_AFFINITY_CASES, ids=[c[0] for c in NODE_AFFINITY_CASES])
def test_kube_node_affinity_filter(case):
    _, spec, labels, node_name, added, want_pf, want_filter = case
    nodes = [make_node(node_name, labels=labels)]
    if node_name != "node1":
        nodes.append(make_node("node1"))  # so that a pinned node1 exists
    args = NodeAffinityArgs.from_dict({"addedAffinity": added}) if added else None
    plugin, snap = plugin_on("NodeAffinity", make_cluster(nodes), args)
    info = snap.pod_info(make_pod("p", **spec))
    state = CycleState()
    status, allowed = plugin.pre_filter(state, info, snap.alive_nodes())
    assert int(status.code) == want_pf[0]
    assert list(status.reasons) == ([want_pf[1]] if want_pf[1] else [])
    if want_pf[2] is None:
        assert allowed is None
    else:
        assert {snap.node_names[i] for i in allowed} == want_pf[2] & set(snap.node_index)
    if want_filter is None:
        return
    node = snap.node_index[node_name]
    code = int(plugin.filter(state, info, np.array([node]))[0])
    assert code == want_filter[0]
    assert plugin.filter_reasons(state, info, node) == ([want_filter[1]] if want_filter[1]
                                                         else [])
    # Filter without PreFilter (the fallback kube has too) gives the same verdict
    assert int(plugin.filter(CycleState(), info, np.array([node]))[0]) == code


_L1, _L2, _L3 = {"foo": "bar"}, {"key": "value"}, {"az": "az1"}
_L4, _L5 = {"abc": "az11", "def": "az22"}, {"foo": "bar", "key": "value", "az": "az1"}


def _pref(*weighted):
    return {"nodeAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [
        {"weight": w, "preference": {"matchExpressions": exprs}} for w, exprs in weighted]}}


_AFF1 = _pref((2, [_expr("foo", _IN, "bar")]))
_AFF2 = _pref((2, [_expr("foo", _IN, "bar")]), (4, [_expr("key", _IN, "value")]),
              (5, [_expr("foo", _IN, "bar"), _expr("key", _IN, "value"),
                   _expr("az", _IN, "az1")]))

# node_affinity_test.go TestNodeAffinityPriority: (name, pod spec, node labels, args,
# want normalised scores or None for a PreScore Skip)
NODE_AFFINITY_SCORE_CASES = [
    ("no affinity: skip", {}, [_L1, _L2, _L3], None, None),
    ("no node matches", {"affinity": _AFF1}, [_L4, _L2, _L3], None, [0, 0, 0]),
    ("only node1 matches", {"affinity": _AFF1}, [_L1, _L2, _L3], None, [100, 0, 0]),
    ("different priorities", {"affinity": _AFF2}, [_L1, _L5, _L2], None, [18, 100, 36]),
    ("added affinity", {}, [_L1, _L2], _AFF1["nodeAffinity"], [100, 0]),
    ("added affinity and pod affinity", {"affinity": _AFF1}, [_L1, _L2, _L5],
     _pref((3, [_expr("key", _IN, "value")]))["nodeAffinity"], [40, 60, 100]),
]


@pytest.mark.parametrize("case", NODE_AFFINITY_SCORE_CASES,
                         ids=[c[0] for c in NODE_AFFINITY_SCORE_CASES])
def test_kube_node_affinity_score(case):
    _, spec, labels, added, want = case
    nodes = [make_node(f"node{i}", labels=lb) for i, lb in enumerate(labels)]
    args = NodeAffinityArgs.from_dict({"addedAffinity": added}) if added else None
    plugin, snap = plugin_on("NodeAffinity", make_cluster(nodes), args)
    pod = make_pod("p", **spec)
    assert _scores(plugin, snap, pod) == want
    # Score without PreScore (kube's fallback) gives the same
    info = snap.pod_info(pod)
    s = np.array(plugin.score(CycleState(), info, snap.alive_nodes()))
    plugin.normalize_score(CycleState(), info, snap.alive_nodes(), s)
    assert s.tolist() == (want if want is not None else [0] * len(nodes))


def _taint(key, value, effect):
    return {"key": key, "value": value, "effect": effect}


def _tol(key, value="", effect="", op="Equal"):
    d = {"key": key, "operator": op}
    if value:
        d["value"] = value
    if effect:
        d["effect"] = effect
    return d


_PNS = "PreferNoSchedule"
# taint_toleration_test.go TestTaintTolerationScore: (name, tolerations, node taints, scores)
TAINT_SCORE_CASES = [
    ("tolerated taint scores higher", [_tol("foo", "bar", _PNS)],
     [[_taint("foo", "bar", _PNS)], [_taint("foo", "blah", _PNS)]], [100, 0]),
    ("count of tolerated taints does not matter",
     [_tol("cpu-type", "arm64", _PNS), _tol("disk-type", "ssd", _PNS)],
     [[], [_taint("cpu-type", "arm64", _PNS)],
      [_taint("cpu-type", "arm64", _PNS), _taint("disk-type", "ssd", _PNS)]], [100, 100, 100]),
    ("more intolerable taints, lower score", [_tol("foo", "bar", _PNS)],
     [[], [_taint("cpu-type", "arm64", _PNS)],
      [_taint("cpu-type", "arm64", _PNS), _taint("disk-type", "ssd", _PNS)]], [100, 50, 0]),
    ("only PreferNoSchedule counts",
     [_tol("cpu-type", "arm64", "NoSchedule"), _tol("disk-type", "ssd", "NoSchedule")],
     [[], [_taint("cpu-type", "arm64", "NoSchedule")],
      [_taint("cpu-type", "arm64", _PNS), _taint("disk-type", "ssd", _PNS)]], [100, 100, 0]),
    ("no tolerations: node without taints", [],
     [[], [_taint("cpu-type", "arm64", _PNS)]], [100, 0]),
]


@pytest.mark.parametrize("case", TAINT_SCORE_CASES, ids=[c[0] for c in TAINT_SCORE_CASES])
def test_kube_taint_toleration_score(case):
    _, tols, taints, want = case
    nodes = [make_node(f"node{i}", taints=t) for i, t in enumerate(taints)]
    plugin, snap = plugin_on("TaintToleration", make_cluster(nodes))
    assert _scores(plugin, snap, make_pod("p", tolerations=tols)) == want


_UNTOL = "node(s) had untolerated taint(s)"
# taint_toleration_test.go TestTaintTolerationFilter: (name, tolerations, taints, rejected)
TAINT_FILTER_CASES = [
    ("no tolerations, NoSchedule taint", [], [_taint("dedicated", "user1", "NoSchedule")], True),
    ("tolerates dedicated user1", [_tol("dedicated", "user1", "NoSchedule")],
     [_taint("dedicated", "user1", "NoSchedule")], False),
    ("toleration for user2 on user1 taint", [_tol("dedicated", "user2", "NoSchedule")],
     [_taint("dedicated", "user1", "NoSchedule")], True),
    ("Exists tolerates", [_tol("foo", effect="NoSchedule", op="Exists")],
     [_taint("foo", "bar", "NoSchedule")], False),
    ("all of multiple taints tolerated",
     [_tol("dedicated", "user2", "NoSchedule"), _tol("foo", effect="NoSchedule", op="Exists")],
     [_taint("dedicated", "user2", "NoSchedule"), _taint("foo", "bar", "NoSchedule")], False),
    ("effect mismatch", [_tol("foo", "bar", _PNS)], [_taint("foo", "bar", "NoSchedule")], True),
    ("empty effect tolerates NoSchedule", [_tol("foo", "bar")],
     [_taint("foo", "bar", "NoSchedule")], False),
    ("untolerated PreferNoSchedule does not filter", [_tol("dedicated", "user2", "NoSchedule")],
     [_taint("dedicated", "user1", _PNS)], False),
    ("no tolerations, PreferNoSchedule taint", [], [_taint("dedicated", "user1", _PNS)], False),
]


@pytest.mark.parametrize("case", TAINT_FILTER_CASES, ids=[c[0] for c in TAINT_FILTER_CASES])
def test_kube_taint_toleration_filter(case):
    _, tols, taints, rejected = case
    plugin, snap = plugin_on("TaintToleration", make_cluster([make_node("node-a", taints=taints)]))
    _, _, got = _filter_all(plugin, snap, make_pod("p", tolerations=tols))
    assert got["node-a"] == ((3, [_UNTOL]) if rejected else (0, []))


def _hp(spec):
    proto, ip, port = spec.split("/")
    return {"containerPort": int(port), "hostPort": int(port), "protocol": proto, "hostIP": ip}


# node_ports_test.go TestNodePorts: (name, wanted ports, ports of the pod on the node, rejected;
# None = PreFilter Skip)
NODE_PORTS_CASES = [
    ("skip filter", [], [], None),
    ("other port", ["UDP/127.0.0.1/8080"], ["UDP/127.0.0.1/9090"], False),
    ("same udp port", ["UDP/127.0.0.1/8080"], ["UDP/127.0.0.1/8080"], True),
    ("same tcp port", ["TCP/127.0.0.1/8080"], ["TCP/127.0.0.1/8080"], True),
    ("different host ip", ["TCP/127.0.0.1/8080"], ["TCP/127.0.0.2/8080"], False),
    ("different protocol", ["UDP/127.0.0.1/8080"], ["TCP/127.0.0.1/8080"], False),
    ("second udp port conflict", ["UDP/127.0.0.1/8000", "UDP/127.0.0.1/8080"],
     ["UDP/127.0.0.1/8080"], True),
    ("first tcp port conflict", ["TCP/127.0.0.1/8001", "UDP/127.0.0.1/8080"],
     ["TCP/127.0.0.1/8001", "UDP/127.0.0.1/8081"], True),
    ("first tcp port conflict due to 0.0.0.0", ["TCP/0.0.0.0/8001"], ["TCP/127.0.0.1/8001"], True),
    ("TCP conflict due to 0.0.0.0", ["TCP/10.0.10.10/8001", "TCP/0.0.0.0/8001"],
     ["TCP/127.0.0.1/8001"], True),
    ("second tcp port conflict to 0.0.0.0", ["TCP/127.0.0.1/8001"], ["TCP/0.0.0.0/8001"], True),
    ("second different protocol", ["UDP/127.0.0.1/8001"], ["TCP/0.0.0.0/8001"], False),
    ("UDP conflict due to 0.0.0.0", ["UDP/127.0.0.1/8001"],
     ["TCP/0.0.0.0/8001", "UDP/0.0.0.0/8001"], True),
]


@pytest.mark.parametrize("case", NODE_PORTS_CASES, ids=[c[0] for c in NODE_PORTS_CASES])
def test_kube_node_ports(case):
    _, wanted, used, rejected = case
    existing = _pod_with_ports("existing", [_hp(s) for s in used], node="m1")
    plugin, snap = plugin_on("NodePorts", make_cluster([make_node("m1")], [existing]))
    status, _, got = _filter_all(plugin, snap, _pod_with_ports("p", [_hp(s) for s in wanted]))
    if rejected is None:
        assert status.is_skip
        return
    assert status.is_success
    assert got["m1"] == ((2, ["node(s) didn't have free ports for the requested pod ports"])
                         if rejected else (0, []))


def test_kube_get_container_ports():
    """TestGetContainerPorts: only ports with a host port count, in container order; plus
    (GetHostPorts) restartable init containers first, other init containers never."""
    from schedbench.scheduler.plugins.node_ports import host_ports

    def tcp(*ports):
        return [{"containerPort": p, "hostPort": p, "protocol": "TCP"} for p in ports]

    pod = make_pod("p", containers=[
        {"name": "a", "image": "i", "ports": tcp(8001, 8002)},
        {"name": "b", "image": "i", "ports": tcp(8003, 8004)},
        {"name": "c", "image": "i", "ports": [{"containerPort": 8005, "protocol": "TCP"}]}])
    assert [p for _, _, p in host_ports(pod)] == [8001, 8002, 8003, 8004]
    side = _pod_with_ports("s", tcp(8011), sidecar_ports=tcp(8010))
    assert host_ports(side) == [("0.0.0.0", "TCP", 8010), ("0.0.0.0", "TCP", 8011)]


_UNSCHED_TOL = {"key": "node.kubernetes.io/unschedulable", "operator": "Exists",
                "effect": "NoSchedule"}
# node_unschedulable_test.go TestNodeUnschedulable: (unschedulable, tolerations, rejected)
NODE_UNSCHEDULABLE_CASES = [
    (False, [], False),
    (True, [], True),
    (False, [], False),
    (True, [_UNSCHED_TOL], False),
]


@pytest.mark.parametrize("case", NODE_UNSCHEDULABLE_CASES)
def test_kube_node_unschedulable(case):
    unsched, tols, rejected = case
    plugin, snap = plugin_on("NodeUnschedulable",
                             make_cluster([make_node("n", unschedulable=unsched)]))
    _, _, got = _filter_all(plugin, snap, make_pod("p", tolerations=tols))
    assert got["n"] == ((3, ["node(s) were unschedulable"]) if rejected else (0, []))


# node_name_test.go TestNodeName: (pod nodeName, node name, rejected)
NODE_NAME_CASES = [("", "foo", False), ("foo", "foo", False), ("bar", "foo", True)]


@pytest.mark.parametrize("case", NODE_NAME_CASES)
def test_kube_node_name(case):
    wanted, node_name, rejected = case
    plugin, snap = plugin_on("NodeName", make_cluster([make_node(node_name)]))
    assert not hasattr(plugin, "pre_filter")  # v1.35: Filter only
    pod = make_pod("p")
    pod.spec.node_name = wanted
    _, _, got = _filter_all(plugin, snap, pod)
    assert got[node_name] == ((3, ["node(s) didn't match the requested node name"]) if rejected
                              else (0, []))


def test_node_affinity_pinned_names_missing_from_cluster():
    """PreFilter node names that no node has are dropped from the allowed indices."""
    plugin, snap = plugin_on("NodeAffinity", make_cluster([make_node("a"), make_node("b")]))
    pod = make_pod("p", affinity=_req({"matchFields": [_name_field("b")]},
                                      {"matchFields": [_name_field("ghost")]}))
    status, allowed = plugin.pre_filter(CycleState(), snap.pod_info(pod), snap.alive_nodes())
    assert status.is_success and allowed.tolist() == [1]


def test_node_name_after_node_readded():
    plugin, snap = plugin_on("NodeName", make_cluster([make_node("a"), make_node("b")]))
    snap.remove_node("a")
    snap.add_node(make_node("a"))
    pod = make_pod("p")
    pod.spec.node_name = "a"
    _, _, got = _filter_all(plugin, snap, pod)
    assert got == {"b": (3, ["node(s) didn't match the requested node name"]), "a": (0, [])}


def test_selector_nothing_and_everything():
    snap = snapshot_of(make_cluster([make_node("a", labels={"x": "1"})]))
    assert compile_selector(snap, Selector.everything()) is None
    assert match_nodes(snap, None, snap.alive_nodes()).tolist() == [True]
    nothing = compile_selector(snap, Selector.nothing())
    assert match_nodes(snap, nothing, snap.alive_nodes()).tolist() == [False]
    empty_terms = compile_node_selector(snap, NodeSelector(()))
    assert match_nodes(snap, empty_terms, snap.alive_nodes()).tolist() == [False]
