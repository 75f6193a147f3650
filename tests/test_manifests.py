"""Loading and writing Kubernetes manifests: documents, lists, directories, errors, round trips."""

from __future__ import annotations

import warnings

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from schedbench.cluster import Cluster, example_cluster_path
from schedbench.errors import InputError, ManifestError
from schedbench.manifests import (
    atomic_write_text,
    dump_manifests,
    dumps_manifests,
    load_manifests,
    object_to_dict,
)
from schedbench.model.codec import ManifestWarning

POD = """\
apiVersion: v1
kind: Pod
metadata:
  name: {name}
  namespace: {ns}
spec:
  containers:
  - name: c
    image: nginx
    resources:
      requests:
        cpu: {cpu}
"""


def write(tmp_path, name, text):
    p = tmp_path / name
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(text)
    return p


def test_multi_document_file_and_list_kind(tmp_path):
    text = POD.format(name="a", ns="x", cpu="1") + "---\n" + yaml.safe_dump({
        "apiVersion": "v1", "kind": "List", "items": [
            {"apiVersion": "v1", "kind": "Node", "metadata": {"name": "n1"}},
            {"apiVersion": "v1", "kind": "PodList", "items": [yaml.safe_load(
                POD.format(name="b", ns="y", cpu="250m"))]},
        ]}) + "---\n"  # trailing empty document is ignored
    objs = load_manifests(write(tmp_path, "m.yaml", text))
    assert [o.ref for o in objs] == ["Pod/x/a", "Node/n1", "Pod/y/b"]
    assert objs[2].requests() == {"cpu": 250}


def test_directory_is_read_recursively_in_sorted_order(tmp_path):
    write(tmp_path, "b/2.yaml", POD.format(name="p2", ns="d", cpu="1"))
    write(tmp_path, "a.yml", POD.format(name="p1", ns="d", cpu="1"))
    write(tmp_path, "c.json", '{"apiVersion": "v1", "kind": "Node", "metadata": {"name": "n"}}')
    write(tmp_path, "notes.txt", "not a manifest")
    assert [o.ref for o in load_manifests(tmp_path)] == ["Pod/d/p1", "Pod/d/p2", "Node/n"]


def test_unknown_kind_is_skipped_with_a_warning(tmp_path):
    text = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: cm}\ndata: {a: b}\n---\n" + \
        POD.format(name="a", ns="d", cpu="1")
    with pytest.warns(ManifestWarning, match=r"ConfigMap/cm.*skipping kind 'ConfigMap'"):
        objs = load_manifests(write(tmp_path, "m.yaml", text))
    assert [o.ref for o in objs] == ["Pod/d/a"]


def test_unknown_field_is_kept_and_warned_about(tmp_path):
    text = POD.format(name="a", ns="d", cpu="1").replace(
        "spec:\n", "spec:\n  nodeSelecter: {disk: ssd}\n  volumes: []\n")
    with pytest.warns(ManifestWarning, match="spec.nodeSelecter: unknown field"):
        (p,) = load_manifests(write(tmp_path, "m.yaml", text))
    assert p.spec.node_selector == {}
    # unmodelled fields survive a dump: nothing the user wrote is lost
    assert object_to_dict(p)["spec"]["nodeSelecter"] == {"disk": "ssd"}
    assert object_to_dict(p)["spec"]["volumes"] == []


def test_known_passthrough_fields_do_not_warn(tmp_path):
    text = POD.format(name="a", ns="d", cpu="1").replace(
        "    image: nginx\n", "    image: nginx\n    env: [{name: A, value: b}]\n"
        "    volumeMounts: []\n")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        (p,) = load_manifests(write(tmp_path, "m.yaml", text))
    assert p.spec.containers[0].extra["env"] == [{"name": "A", "value": "b"}]


@pytest.mark.parametrize("text, obj, field, message", [
    (POD.format(name="a", ns="d", cpu="-2"), "Pod/d/a",
     "spec.containers[0].resources.requests.cpu", "negative quantity"),
    (POD.format(name="a", ns="d", cpu="2x"), "Pod/d/a",
     "spec.containers[0].resources.requests.cpu", "invalid quantity"),
    (POD.format(name="A_b", ns="d", cpu="1"), "Pod/d/A_b", "metadata.name", "DNS-1123"),
    ("apiVersion: apps/v1beta1\nkind: Deployment\nmetadata: {name: d}\n", "Deployment/default/d",
     "apiVersion", "use apps/v1"),
    ("kind: Pod\nmetadata: {name: p}\n", "Pod/default/p", "apiVersion", "missing required"),
    ("apiVersion: v1\nkind: Pod\nmetadata: {name: p}\n", "Pod/default/p", "spec",
     "missing required field"),
    ("apiVersion: v1\nkind: Node\nmetadata: {name: n}\nspec:\n  taints: [{key: k}]\n",
     "Node/n", "spec.taints[0].effect", "missing required field"),
    ("apiVersion: v1\nkind: Node\nmetadata: {name: n, labels: {zone: true}}\n", "Node/n",
     "metadata.labels", "quote it"),
])
def test_errors_name_file_object_and_field(tmp_path, text, obj, field, message):
    path = write(tmp_path, "bad.yaml", text)
    with pytest.raises(ManifestError if "quantity" not in message else InputError) as err:
        load_manifests(path)
    e = err.value
    assert (e.file, e.obj, e.field) == (str(path), obj, field)
    assert message in str(e)
    line = str(e)
    assert "\n" not in line and line.startswith(f"{path}: {obj}: {field}: ")


def test_yaml_syntax_error_names_line_and_column(tmp_path):
    path = write(tmp_path, "bad.yaml", "apiVersion: v1\nkind: Pod\nmetadata: {name: [\n")
    with pytest.raises(ManifestError, match=r"invalid YAML at line \d+, column \d+") as err:
        load_manifests(path)
    assert err.value.file == str(path)


def test_duplicate_objects_are_an_error(tmp_path):
    write(tmp_path, "a.yaml", POD.format(name="a", ns="d", cpu="1"))
    write(tmp_path, "b.yaml", POD.format(name="a", ns="d", cpu="2"))
    with pytest.raises(ManifestError, match=r"duplicate object \(first defined in .*a.yaml\)"):
        load_manifests(tmp_path)


def test_same_name_in_other_namespace_is_fine(tmp_path):
    write(tmp_path, "a.yaml", POD.format(name="a", ns="d", cpu="1"))
    write(tmp_path, "b.yaml", POD.format(name="a", ns="e", cpu="2"))
    assert len(load_manifests(tmp_path)) == 2


def test_missing_path_is_an_input_error(tmp_path):
    with pytest.raises(InputError, match="no such file"):
        load_manifests(tmp_path / "nope.yaml")


def test_example_cluster_round_trips_through_yaml(tmp_path):
    objs = load_manifests(example_cluster_path())
    out = tmp_path / "out.yaml"
    dump_manifests(objs, out)
    again = load_manifests(out)
    assert again == objs
    assert dumps_manifests(again) == out.read_text()  # the canonical form is a fixed point


def test_dump_writes_kubernetes_shapes():
    (p,) = [o for o in load_manifests(example_cluster_path()) if o.name == "trainer"]
    d = object_to_dict(p)
    assert list(d)[:3] == ["apiVersion", "kind", "metadata"]
    assert d["spec"]["containers"][0]["resources"]["requests"] == {
        "cpu": "6", "memory": "32Gi", "nvidia.com/gpu": "1"}
    terms = d["spec"]["affinity"]["nodeAffinity"][
        "requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"]
    assert terms[0]["matchExpressions"][0]["operator"] == "In"
    assert sorted(terms[0]["matchExpressions"][0]["values"]) == ["A100", "Tesla-V100"]


def test_atomic_write_leaves_no_temporary_files(tmp_path):
    target = tmp_path / "sub" / "x.yaml"
    atomic_write_text(target, "a: 1\n")
    atomic_write_text(target, "a: 2\n")
    assert target.read_text() == "a: 2\n"
    assert [p.name for p in target.parent.iterdir()] == ["x.yaml"]


def test_cluster_summary_counts_example():
    cluster = Cluster.load(example_cluster_path())
    s = cluster.summary()
    assert s["nodes"]["total"] == len(cluster.nodes) == 6
    assert s["pods"]["bound"] + s["pods"]["pending"] + s["pods"]["terminated"] == len(cluster.pods)
    # requested = sum of the effective requests of bound, non-terminated pods
    expected_cpu = sum(p.requests().get("cpu", 0) for p in cluster.bound_pods())
    assert s["resources"]["cpu"]["requested"] == expected_cpu
    assert s["resources"]["cpu"]["allocatable"] == sum(n.allocatable["cpu"] for n in cluster.nodes)


def test_pod_bound_to_missing_node_warns(tmp_path):
    text = POD.format(name="a", ns="d", cpu="1").replace("spec:\n", "spec:\n  nodeName: ghost\n")
    with pytest.warns(ManifestWarning, match="ghost"):
        cluster = Cluster.load(write(tmp_path, "m.yaml", text))
    assert cluster.bound_pods() == []


def test_unknown_priority_class_is_an_error(tmp_path):
    text = POD.format(name="a", ns="d", cpu="1").replace(
        "spec:\n", "spec:\n  priorityClassName: gold\n")
    with pytest.raises(InputError) as err:
        Cluster.load(write(tmp_path, "m.yaml", text))
    assert err.value.field == "spec.priorityClassName" and err.value.obj == "Pod/d/a"


# ------------------------------------------------------------------ generated round trips

_name = st.from_regex(r"[a-z][a-z0-9-]{0,10}[a-z0-9]", fullmatch=True)
_label_value = st.from_regex(r"([A-Za-z0-9]([-A-Za-z0-9_.]{0,8}[A-Za-z0-9])?)?", fullmatch=True)
_labels = st.dictionaries(st.sampled_from(["app", "tier", "example.com/team", "zone"]),
                          _label_value, max_size=3)
_cpu = st.one_of(st.integers(0, 64).map(str), st.integers(1, 64000).map(lambda m: f"{m}m"))
_mem = st.one_of(st.integers(0, 2 ** 40).map(str),
                 st.integers(1, 4096).map(lambda x: f"{x}Mi"),
                 st.integers(1, 100).map(lambda x: f"{x}G"))
_requests = st.fixed_dictionaries({}, optional={"cpu": _cpu, "memory": _mem,
                                                "nvidia.com/gpu": st.integers(0, 8).map(str)})
_expr = st.one_of(
    st.fixed_dictionaries({"key": st.sampled_from(["app", "tier"]),
                           "operator": st.sampled_from(["In", "NotIn"]),
                           "values": st.lists(_label_value, min_size=1, max_size=3)}),
    st.fixed_dictionaries({"key": st.sampled_from(["app", "tier"]),
                           "operator": st.sampled_from(["Exists", "DoesNotExist"])}))
_selector = st.fixed_dictionaries({}, optional={"matchLabels": _labels,
                                                "matchExpressions": st.lists(_expr, max_size=2)})
_toleration = st.one_of(
    st.fixed_dictionaries({"key": st.sampled_from(["dedicated", "gpu"]), "operator": st.just("Equal"),
                           "value": _label_value},
                          optional={"effect": st.sampled_from(["NoSchedule", "PreferNoSchedule"])}),
    st.fixed_dictionaries({"operator": st.just("Exists")}),
    st.fixed_dictionaries({"operator": st.just("Exists"), "effect": st.just("NoExecute")},
                          optional={"tolerationSeconds": st.integers(0, 600)}))
_spread = st.fixed_dictionaries(
    {"maxSkew": st.integers(1, 5), "topologyKey": st.just("topology.kubernetes.io/zone"),
     "whenUnsatisfiable": st.just("ScheduleAnyway")},
    optional={"labelSelector": _selector, "nodeTaintsPolicy": st.sampled_from(["Honor", "Ignore"])})


@st.composite
def pod_docs(draw):
    spec = {"containers": [
        {"name": f"c{i}", "image": "img", "resources": {"requests": draw(_requests)}}
        for i in range(draw(st.integers(1, 3)))]}
    if draw(st.booleans()):
        spec["initContainers"] = [{"name": "init", "resources": {"requests": draw(_requests)},
                                   **({"restartPolicy": "Always"} if draw(st.booleans()) else {})}]
    if draw(st.booleans()):
        spec["nodeSelector"] = {"zone": draw(_label_value)}
    spec["tolerations"] = draw(st.lists(_toleration, max_size=2))
    spec["topologySpreadConstraints"] = draw(st.lists(_spread, max_size=1))
    if draw(st.booleans()):
        spec["affinity"] = {"podAntiAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": [
                {"labelSelector": draw(_selector), "topologyKey": "kubernetes.io/hostname"}],
            "preferredDuringSchedulingIgnoredDuringExecution": [
                {"weight": draw(st.integers(1, 100)), "podAffinityTerm": {
                    "labelSelector": draw(_selector), "topologyKey": "zone",
                    "namespaces": draw(st.lists(_name, max_size=2))}}]},
            "nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
                "nodeSelectorTerms": [{"matchExpressions": [
                    {"key": "zone", "operator": "In", "values": [draw(_label_value)]}]}]}}}
    if draw(st.booleans()):
        spec["priority"] = draw(st.integers(-100, 10 ** 9))
    if draw(st.booleans()):
        spec["nodeName"] = draw(_name)
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": draw(_name), "namespace": draw(_name), "labels": draw(_labels)},
            "spec": spec}


@st.composite
def node_docs(draw):
    cap = {"cpu": draw(_cpu), "memory": draw(_mem), "pods": str(draw(st.integers(0, 250)))}
    return {"apiVersion": "v1", "kind": "Node",
            "metadata": {"name": draw(_name), "labels": draw(_labels)},
            "spec": {"unschedulable": draw(st.booleans()), "taints": draw(st.lists(
                st.fixed_dictionaries({"key": st.sampled_from(["a", "example.com/b"]),
                                       "effect": st.sampled_from(["NoSchedule", "NoExecute"])},
                                      optional={"value": _label_value}),
                max_size=2, unique_by=lambda t: (t["key"], t["effect"])))},
            "status": {"capacity": cap, "allocatable": cap}}


@given(st.lists(st.one_of(pod_docs(), node_docs()), min_size=1, max_size=4,
                unique_by=lambda d: (d["kind"], d["metadata"]["name"])))
def test_load_dump_load_is_identity(tmp_path_factory, docs):
    path = tmp_path_factory.mktemp("rt") / "in.yaml"
    path.write_text(yaml.safe_dump_all(docs))
    first = load_manifests(path)
    out = path.with_name("out.yaml")
    dump_manifests(first, out)
    second = load_manifests(out)
    assert second == first
    # and the effective requests survive the trip, quantity by quantity
    for a, b in zip(first, second):
        if a.KIND == "Pod":
            assert a.requests() == b.requests()
