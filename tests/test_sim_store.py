"""The simulated API server: identity, concurrency, selectors, garbage collection, watches."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from schedbench.errors import InputError, SchedbenchError, SelectorError
from schedbench.model.labels import parse_selector
from schedbench.model.objects import (Container, Namespace, Node, ObjectMeta, OwnerReference,
                                      Pod, PodCondition, PodSpec, ReplicaSet, ReplicaSetSpec,
                                      Toleration)
from schedbench.sim.engine import Engine
from schedbench.sim.store import (GENERATE_NAME_ALPHABET, AlreadyExists, Conflict, NotFound,
                                  Store)


def pod(name="", *, ns="", labels=None, node="", phase="", generate_name="", owners=(),
        tolerations=()):
    p = Pod(metadata=ObjectMeta(name=name, namespace=ns, labels=dict(labels or {}),
                                generate_name=generate_name, owner_references=list(owners)),
            spec=PodSpec(containers=[Container(name="c")], node_name=node,
                         tolerations=list(tolerations)))
    p.status.phase = phase
    return p


def replicaset(name, owners=()):
    return ReplicaSet(metadata=ObjectMeta(name=name, owner_references=list(owners)),
                      spec=ReplicaSetSpec(selector=parse_selector("app=x"),
                                          template=None))


def owner_ref(obj, controller=True):
    return OwnerReference(api_version="apps/v1", kind=obj.KIND, name=obj.metadata.name,
                          uid=obj.metadata.uid, controller=controller)


def new_store(seed=0):
    engine = Engine(seed=seed)
    return engine, Store(engine)


# ---- create / get ------------------------------------------------------------------------


def test_create_fills_identity_and_defaults():
    engine, store = new_store()
    engine.run(until=5.0)
    given_pod = pod("a")
    p = store.create(given_pod)
    assert p is not given_pod and given_pod.metadata.uid == ""  # the input is not touched
    assert p.metadata.namespace == "default"
    assert p.metadata.uid == "uid-1"
    assert p.metadata.resource_version == "1"
    assert p.metadata.generation == 1
    assert p.metadata.creation_timestamp == "2026-01-01T00:00:05.000Z"
    assert p.status.phase == "Pending"
    assert store.get("Pod", "default", "a") is p
    assert store.try_get("Pod", "default", "b") is None
    n = store.create(Node(metadata=ObjectMeta(name="n1")))
    assert n.metadata.namespace == "" and n.metadata.uid == "uid-2"
    assert store.resource_version == 2
    assert store.get("Node", None, "n1") is n
    with pytest.raises(NotFound):
        store.get("Pod", "default", "zzz")


def test_create_rejects_duplicates_and_missing_names():
    _, store = new_store()
    store.create(pod("a"))
    with pytest.raises(AlreadyExists):
        store.create(pod("a"))
    store.create(pod("a", ns="other"))  # another namespace: fine
    with pytest.raises(InputError):
        store.create(pod(""))
    with pytest.raises(InputError):
        store.create(Node(metadata=ObjectMeta(name="n", namespace="default")))


def test_generate_name_is_deterministic_per_seed():
    def names(seed):
        _, store = new_store(seed)
        return [store.create(pod(generate_name="web-")).metadata.name for _ in range(20)]

    a, b, c = names(3), names(3), names(4)
    assert a == b and a != c
    for name in a:
        assert name.startswith("web-") and len(name) == len("web-") + 5
        assert set(name[4:]) <= set(GENERATE_NAME_ALPHABET)
    assert len(set(a)) == 20
    _, store = new_store()
    long = store.create(pod(generate_name="x" * 70)).metadata.name
    assert len(long) == 63


@pytest.mark.parametrize(("tolerations", "added"), [
    ((), {"node.kubernetes.io/not-ready", "node.kubernetes.io/unreachable"}),
    ((Toleration(operator="Exists"),), set()),
    ((Toleration(key="node.kubernetes.io/not-ready", operator="Exists", effect="NoExecute",
                 toleration_seconds=10),), {"node.kubernetes.io/unreachable"}),
    ((Toleration(key="node.kubernetes.io/unreachable", operator="Exists"),),
     {"node.kubernetes.io/not-ready"}),
    ((Toleration(key="node.kubernetes.io/unreachable", operator="Exists",
                 effect="NoSchedule"),),
     {"node.kubernetes.io/not-ready", "node.kubernetes.io/unreachable"}),
])
def test_default_toleration_seconds_admission(tolerations, added):
    _, store = new_store()
    p = store.create(pod("a", tolerations=tolerations))
    new = p.spec.tolerations[len(tolerations):]
    assert {t.key for t in new} == added
    for t in new:
        assert (t.operator, t.effect, t.toleration_seconds) == ("Exists", "NoExecute", 300)
    assert p.spec.tolerations[:len(tolerations)] == list(tolerations)


# ---- update ------------------------------------------------------------------------------


def test_stale_update_conflicts():
    _, store = new_store()
    p = store.create(pod("a"))
    first, second = store.edit(p), store.edit(p)
    first.metadata.labels["x"] = "1"
    updated = store.update(first)
    assert updated.metadata.resource_version == "2"
    second.metadata.labels["y"] = "1"
    with pytest.raises(Conflict):
        store.update(second)
    assert store.get("Pod", "default", "a").metadata.labels == {"x": "1"}
    with pytest.raises(SchedbenchError):
        store.update(updated)  # the stored instance itself
    again = store.edit(updated)
    again.metadata.resource_version = ""  # unconditional update
    again.metadata.labels["z"] = "1"
    assert store.update(again).metadata.labels == {"x": "1", "z": "1"}


def test_generation_bumps_only_on_spec_change_and_noop_updates_are_free():
    engine, store = new_store()
    events = []
    store.on_mutation.append(events.append)
    p = store.create(pod("a"))
    status_change = store.edit(p)
    status_change.status.phase = "Running"
    p = store.update(status_change)
    assert p.metadata.generation == 1
    spec_change = store.edit(p)
    spec_change.spec.node_name = "n1"
    p = store.update(spec_change)
    assert p.metadata.generation == 2
    rv = store.resource_version
    same = store.edit(p)
    assert store.update(same) is p
    assert store.resource_version == rv
    assert [e.type for e in events] == ["ADDED", "MODIFIED", "MODIFIED"]
    assert events[1].old.status.phase == "Pending" and events[1].obj.status.phase == "Running"


def test_edit_copies_are_isolated_from_the_stored_object():
    _, store = new_store()
    p = store.create(pod("a", labels={"app": "x"}))
    with_cond = store.edit(p)
    with_cond.status.conditions.append(PodCondition(type="Ready", status="False"))
    p = store.update(with_cond)
    copy = store.edit(p)
    copy.metadata.labels["app"] = "y"
    copy.status.conditions[0].status = "True"
    copy.spec.tolerations.clear()
    copy.metadata.owner_references.append(OwnerReference(api_version="v1", kind="X", name="x"))
    assert p.metadata.labels == {"app": "x"}
    assert p.status.conditions[0].status == "False"
    assert len(p.spec.tolerations) == 2 and p.metadata.owner_references == []


def test_update_and_delete_of_missing_objects():
    _, store = new_store()
    p = store.create(pod("a"))
    copy = store.edit(p)
    assert store.delete("Pod", "default", "a", cause="test").metadata.name == "a"
    with pytest.raises(NotFound):
        store.update(copy)
    assert store.delete("Pod", "default", "a") is None
    assert store.delete("Nope", "default", "a") is None
    with pytest.raises(InputError):
        store.delete("Pod", "default", "a", propagation="Sideways")


def test_recreated_object_gets_a_new_uid_and_stale_copies_conflict():
    _, store = new_store()
    old = store.create(pod("a"))
    copy = store.edit(old)
    store.delete("Pod", "default", "a")
    new = store.create(pod("a"))
    assert new.metadata.uid != old.metadata.uid
    copy.metadata.resource_version = ""
    with pytest.raises(Conflict):
        store.update(copy)  # the uid precondition still protects it


# ---- selectors ---------------------------------------------------------------------------

KEYS = ["app", "tier", "env"]
VALUES = ["a", "b", "c"]
PHASES = ["Pending", "Running", "Succeeded"]

label_sets = st.dictionaries(st.sampled_from(KEYS), st.sampled_from(VALUES), max_size=3)
requirement = st.one_of(
    st.tuples(st.sampled_from(KEYS), st.sampled_from(["=", "==", "!="]),
              st.sampled_from(VALUES)).map(lambda r: (f"{r[0]}{r[1]}{r[2]}", r)),
    st.tuples(st.sampled_from(KEYS), st.sampled_from(["in", "notin"]),
              st.lists(st.sampled_from(VALUES), min_size=1, max_size=3)).map(
        lambda r: (f"{r[0]} {r[1]} ({','.join(r[2])})", r)),
    st.tuples(st.sampled_from(KEYS), st.sampled_from(["", "!"])).map(
        lambda r: (f"{r[1]}{r[0]}", ("exists" if r[1] == "" else "absent", r[0]))),
)


def reference_match(labels, reqs):
    """A plain reading of Kubernetes' selector semantics, independent of model.labels."""
    for _, r in reqs:
        if r[0] in ("exists", "absent"):
            if (r[1] in labels) != (r[0] == "exists"):
                return False
            continue
        key, op, val = r
        if op in ("=", "=="):
            ok = labels.get(key) == val
        elif op == "!=":
            ok = labels.get(key) != val  # a missing key matches !=
        elif op == "in":
            ok = key in labels and labels[key] in val
        else:  # notin: a missing key matches
            ok = key not in labels or labels[key] not in val
        if not ok:
            return False
    return True


@given(st.lists(st.tuples(label_sets, st.sampled_from(["", "n1", "n2"]),
                          st.sampled_from(PHASES), st.sampled_from(["default", "other"])),
                max_size=12),
       st.lists(requirement, max_size=3),
       st.sampled_from([None, "default", "other"]),
       st.lists(st.tuples(st.sampled_from(["spec.nodeName", "status.phase", "metadata.name",
                                           "metadata.namespace"]),
                          st.sampled_from(["=", "==", "!="]), st.integers(0, 2)), max_size=2),
       st.lists(st.tuples(st.integers(0, 11), label_sets, st.booleans()), max_size=6))
def test_list_selectors_match_a_reference_filter(objects, reqs, namespace, field_reqs,
                                                 changes):
    _, store = new_store()
    for i, (labels, node, phase, ns) in enumerate(objects):
        store.create(pod(f"p{i}", ns=ns, labels=labels, node=node, phase=phase))
    for i, labels, delete in changes:  # relabel or delete some: the indexes must follow
        if i >= len(objects):
            continue
        current = store.try_get("Pod", objects[i][3], f"p{i}")
        if current is None:
            continue
        if delete:
            store.delete("Pod", objects[i][3], f"p{i}")
        else:
            relabelled = store.edit(current)
            relabelled.metadata.labels = dict(labels)
            store.update(relabelled)
    created = [p for i, o in enumerate(objects)
               if (p := store.try_get("Pod", o[3], f"p{i}")) is not None]
    values = {"spec.nodeName": ["", "n1", "n2"], "status.phase": PHASES,
              "metadata.name": ["p0", "p1", "p2"],
              "metadata.namespace": ["default", "other", "third"]}
    field_terms = [(f, op, values[f][i]) for f, op, i in field_reqs]
    field_text = ",".join(f"{f}{op}{v}" for f, op, v in field_terms)
    getters = {"spec.nodeName": lambda p: p.spec.node_name,
               "status.phase": lambda p: p.status.phase,
               "metadata.name": lambda p: p.metadata.name,
               "metadata.namespace": lambda p: p.metadata.namespace}
    expected = [p for p in created
                if (namespace is None or p.metadata.namespace == namespace)
                and reference_match(p.metadata.labels, reqs)
                and all((getters[f](p) == v) == (op != "!=") for f, op, v in field_terms)]
    text = ",".join(t for t, _ in reqs)
    got = store.list("Pod", namespace, label_selector=text, field_selector=field_text)
    assert got == expected  # also in creation order
    as_object = store.list("Pod", namespace, label_selector=parse_selector(text),
                           field_selector=field_text)
    assert as_object == expected


def test_label_index_follows_relabels_and_deletes():
    _, store = new_store()
    for i in range(60):
        store.create(pod(f"p{i}", ns="a" if i % 3 else "b", labels={"app": f"x{i % 10}"}))
    for i in range(0, 60, 7):
        relabel = store.edit(store.get("Pod", "a" if i % 3 else "b", f"p{i}"))
        relabel.metadata.labels = {"app": "x1", "moved": "yes"}
        store.update(relabel)
    for i in range(0, 60, 11):
        store.delete("Pod", "a" if i % 3 else "b", f"p{i}")
    everything = store.list("Pod")
    for selector in ("app=x1", "app in (x1,x2)", "app=x1,moved=yes", "app=nope", "moved"):
        sel = parse_selector(selector)
        for ns in (None, "a", "b"):
            expected = [p for p in everything if sel.matches(p.metadata.labels)
                        and (ns is None or p.metadata.namespace == ns)]
            assert store.list("Pod", ns, label_selector=selector) == expected


def test_list_by_mapping_selector_and_bad_selectors():
    _, store = new_store()
    store.create(pod("a", labels={"app": "x"}))
    store.create(pod("b", labels={"app": "y"}))
    assert [p.name for p in store.list("Pod", label_selector={"app": "y"})] == ["b"]
    assert store.list("Deployment") == []
    with pytest.raises(SelectorError):
        store.list("Pod", label_selector="app in (")
    with pytest.raises(InputError, match="not supported"):
        store.list("Pod", field_selector="spec.hostname=x")
    with pytest.raises(InputError, match="not supported"):
        store.list("Node", field_selector="spec.nodeName=x")
    with pytest.raises(InputError):
        store.list("Pod", field_selector="spec.nodeName")
    assert [n.name for n in store.list("Pod", field_selector=r"metadata.name=a")] == ["a"]


def test_pods_on_node_index_follows_binding_and_deletion():
    _, store = new_store()
    a = store.create(pod("a"))
    store.create(pod("b", node="n1"))
    assert [p.name for p in store.pods_on_node("n1")] == ["b"]
    bind = store.edit(a)
    bind.spec.node_name = "n1"
    store.update(bind)
    assert [p.name for p in store.pods_on_node("n1")] == ["a", "b"]  # creation order
    store.delete("Pod", "default", "b")
    assert [p.name for p in store.list("Pod", field_selector="spec.nodeName=n1")] == ["a"]
    assert [p.name for p in store.list("Pod", field_selector="spec.nodeName=")] == []


# ---- garbage collection ------------------------------------------------------------------


def _family(store):
    rs = store.create(replicaset("rs"))
    pods = [store.create(pod(f"p{i}", owners=[owner_ref(rs)])) for i in range(3)]
    return rs, pods


def test_background_deletion_removes_the_owner_first_then_dependents():
    engine, store = new_store()
    events = []
    store.on_mutation.append(lambda e: events.append((engine.now, e.type, e.obj.name,
                                                      e.cause)))
    rs, _ = _family(store)
    engine.run(until=7.0)
    events.clear()
    store.delete("ReplicaSet", "default", "rs", cause="deleted by scenario")
    assert [e[1:3] for e in events] == [("DELETED", "rs")]  # dependents come after
    assert store.count("Pod") == 3
    engine.run()
    assert [e[1:3] for e in events] == [("DELETED", "rs"), ("DELETED", "p0"),
                                         ("DELETED", "p1"), ("DELETED", "p2")]
    assert all(t == 7.0 for t, *_ in events)
    assert events[1][3] == "garbage collected (owner ReplicaSet/default/rs deleted)"
    assert store.count("Pod") == 0


def test_background_gc_keeps_dependents_with_another_live_owner():
    engine, store = new_store()
    rs1 = store.create(replicaset("rs1"))
    rs2 = store.create(replicaset("rs2"))
    shared = store.create(pod("shared", owners=[owner_ref(rs1), owner_ref(rs2, False)]))
    store.create(pod("only", owners=[owner_ref(rs1)]))
    store.delete("ReplicaSet", "default", "rs1")
    engine.run()
    kept = store.get("Pod", "default", "shared")
    assert [r.uid for r in kept.metadata.owner_references] == [rs2.metadata.uid]
    assert kept.metadata.uid == shared.metadata.uid
    assert store.try_get("Pod", "default", "only") is None


def test_background_gc_cascades_through_generations():
    engine, store = new_store()
    top = store.create(replicaset("top"))
    mid = store.create(replicaset("mid", owners=[owner_ref(top)]))
    store.create(pod("leaf", owners=[owner_ref(mid)]))
    store.delete("ReplicaSet", "default", "top")
    engine.run()
    assert store.count("ReplicaSet") == 0 and store.count("Pod") == 0


def test_orphan_deletion_keeps_dependents_without_the_reference():
    engine, store = new_store()
    events = []
    store.on_mutation.append(lambda e: events.append((e.type, e.obj.name)))
    rs, pods = _family(store)
    events.clear()
    store.delete("ReplicaSet", "default", "rs", propagation="Orphan")
    engine.run()
    assert events == [("MODIFIED", "p0"), ("MODIFIED", "p1"), ("MODIFIED", "p2"),
                      ("DELETED", "rs")]
    for p in store.list("Pod"):
        assert p.metadata.owner_references == []
    assert store.dependents(rs.metadata.uid) == []


def test_foreground_deletion_removes_dependents_first():
    engine, store = new_store()
    events = []
    store.on_mutation.append(lambda e: events.append((e.type, e.obj.name)))
    top = store.create(replicaset("top"))
    mid = store.create(replicaset("mid", owners=[owner_ref(top)]))
    store.create(pod("leaf", owners=[owner_ref(mid)]))
    events.clear()
    store.delete("ReplicaSet", "default", "top", propagation="Foreground")
    assert events == [("MODIFIED", "top"), ("MODIFIED", "mid"), ("DELETED", "leaf"),
                      ("DELETED", "mid"), ("DELETED", "top")]
    engine.run()
    assert store.count("Pod") == 0 and store.count("ReplicaSet") == 0


def test_owner_reference_by_name_is_resolved():
    engine, store = new_store()
    rs = store.create(replicaset("rs"))
    p = store.create(pod("p", owners=[OwnerReference(api_version="apps/v1", kind="ReplicaSet",
                                                     name="rs")]))
    assert p.metadata.owner_references[0].uid == rs.metadata.uid
    store.delete("ReplicaSet", "default", "rs")
    engine.run()
    assert store.count("Pod") == 0


def test_deleting_a_namespace_deletes_its_objects():
    engine, store = new_store()
    store.create(Namespace(metadata=ObjectMeta(name="team")))
    rs = store.create(ReplicaSet(metadata=ObjectMeta(name="rs", namespace="team"),
                                 spec=ReplicaSetSpec(selector=parse_selector("app=x"),
                                                     template=None)))
    store.create(pod("owned", ns="team", owners=[owner_ref(rs)]))
    store.create(pod("free", ns="team"))
    store.create(pod("elsewhere"))
    causes = []
    store.on_mutation.append(lambda e: causes.append((e.type, e.obj.metadata.name, e.cause)))
    store.delete("Namespace", "", "team", cause="deleted by scenario")
    engine.run()
    assert [p.metadata.name for p in store.list("Pod")] == ["elsewhere"]
    assert store.count("ReplicaSet") == 0 and store.count("Namespace") == 0
    assert causes[-1] == ("DELETED", "team", "deleted by scenario")
    assert ("DELETED", "free", "namespace team deleted") in causes


# ---- watches -----------------------------------------------------------------------------


def test_watch_delivery_is_ordered_and_never_reentrant_when_handlers_write():
    engine, store = new_store()
    seen = []
    depth = [0]

    def writer(ev):
        depth[0] += 1
        assert depth[0] == 1
        seen.append(("writer", ev.type, ev.obj.name))
        if ev.type == "ADDED" and ev.obj.name.count("-") < 2:
            store.create(pod(ev.obj.name + "-child"))
            store.delete("Pod", "default", ev.obj.name, cause="replaced")
        depth[0] -= 1

    def reader(ev):
        seen.append(("reader", ev.type, ev.obj.name))

    store.watch("Pod", writer)
    store.watch("Pod", reader)
    store.create(pod("a"))
    store.create(pod("b"))
    assert seen == []  # nothing is delivered synchronously
    engine.run()
    names = [(t, n) for w, t, n in seen if w == "reader"]
    assert names == [("ADDED", "a"), ("ADDED", "b"), ("ADDED", "a-child"), ("DELETED", "a"),
                     ("ADDED", "b-child"), ("DELETED", "b"), ("ADDED", "a-child-child"),
                     ("DELETED", "a-child"), ("ADDED", "b-child-child"), ("DELETED", "b-child")]
    # every event reaches the watchers in registration order
    assert [w for w, *_ in seen] == ["writer", "reader"] * len(names)
    assert engine.now == 0.0


def test_watch_filters_stop_and_start_time():
    engine, store = new_store()
    early = store.create(pod("early"))
    all_pods, other_ns, nodes = [], [], []
    w = store.watch("Pod", lambda e: all_pods.append(e.obj.name))
    store.watch("Pod", lambda e: other_ns.append(e.obj.name), namespace="other")
    store.watch("Node", lambda e: nodes.append(e.obj.name))
    store.create(pod("x", ns="other"))
    store.create(Node(metadata=ObjectMeta(name="n")))
    engine.run()
    assert early.name not in all_pods
    assert all_pods == ["x"] and other_ns == ["x"] and nodes == ["n"]
    w.stop()
    w.stop()
    store.create(pod("y", ns="other"))
    engine.run()
    assert all_pods == ["x"] and other_ns == ["x", "y"]


def test_watch_events_carry_old_objects_and_causes():
    engine, store = new_store()
    got = []
    store.watch("Pod", got.append)
    p = store.create(pod("a"), cause="created by test")
    c = store.edit(p)
    c.metadata.labels["k"] = "v"
    store.update(c, cause="labelled")
    store.delete("Pod", "default", "a", cause="deleted by scenario")
    engine.run()
    assert [(e.type, e.cause) for e in got] == [("ADDED", "created by test"),
                                                ("MODIFIED", "labelled"),
                                                ("DELETED", "deleted by scenario")]
    assert got[1].old.metadata.labels == {} and got[1].obj.metadata.labels == {"k": "v"}
    assert got[2].obj.metadata.deletion_timestamp is not None
    assert int(got[2].obj.metadata.resource_version) == store.resource_version


def _scripted_run(seed):
    """A random mix of writes, with handlers that write back; returns the mutation log."""
    engine, store = new_store(seed)
    log = []
    store.on_mutation.append(lambda e: log.append(
        (engine.now, e.type, e.obj.KIND, e.obj.metadata.name, e.obj.metadata.uid,
         e.obj.metadata.resource_version, e.cause)))

    def relabel(ev):
        if ev.type == "ADDED":
            c = store.edit(ev.obj)
            c.metadata.labels["seen"] = "yes"
            store.update(c, cause="relabel")

    store.watch("Pod", relabel)
    rs = store.create(replicaset("rs"))
    rng = engine.rng
    for i in range(30):
        t = float(rng.integers(0, 20))
        engine.at(t, lambda: store.create(pod(generate_name="p-", owners=[owner_ref(rs)])))
    engine.at(25.0, lambda: store.delete("ReplicaSet", "default", "rs"))
    engine.run()
    return log


def test_same_seed_same_mutation_log():
    a, b = _scripted_run(5), _scripted_run(5)
    assert a == b
    assert len(a) == 1 + 30 * 2 + 1 + 30
    assert a != _scripted_run(6)
