"""NodeResourcesFit's PreFilter/Filter as kube-scheduler v1.35 has them (noderesources/fit.go).

- property: random clusters (tens to hundreds of nodes; cpu, memory, ephemeral-storage,
  extended resources, hugepages, ``kubernetes.io/*``, ``attachable-volumes-*`` and an untracked
  name; bound pods filling and overcommitting nodes; pod-count limits; ignoredResources /
  ignoredResourceGroups) compared node for node, code and reasons, with the plain reference in
  ``tests/reference/fit_filter.py``, also after pods are bound and removed;
- kube's own Filter cases of fit_test.go (TestEnoughRequests, TestNotEnoughRequests,
  TestStorageRequests, TestRestartableInitContainers), ported with their expected statuses;
- where v1.35 tells Unschedulable (2) from UnschedulableAndUnresolvable (3): a request above
  what is free but within the node's allocatable is 2 (preemption may help), a request above
  the whole allocatable is 3; "Too many pods" is always 2; and what that means for preemption.
"""

from __future__ import annotations

import random

import numpy as np
import pytest
from hypothesis import event, given
from hypothesis import strategies as st
from reference import fit_filter as ref
from scheduler_helpers import make_cluster, make_node, make_pod, plugin_on, run_filter

from schedbench.config import parse_scheduler_config
from schedbench.scheduler.framework import Code, CycleState
from schedbench.scheduler.plugins.node_resources_fit import (
    fit_codes,
    is_extended_resource,
    is_fit_checked_resource,
    scalar_reason_order,
)
from schedbench.scheduler.scheduler import Scheduler

OK, U, UU = int(Code.SUCCESS), int(Code.UNSCHEDULABLE), int(Code.UNSCHEDULABLE_AND_UNRESOLVABLE)
FIT = "NodeResourcesFit"


def verdicts(plugin, snap, pod) -> dict[str, tuple[int, list[str]]]:
    """{node name: (code, reasons)} from the plugin (reasons only for failing nodes)."""
    codes, state = run_filter(plugin, snap, pod)
    info = snap.pod_info(pod)
    out = {}
    for name, code in codes.items():
        reasons = plugin.filter_reasons(state, info, snap.node_index[name]) if code else []
        out[name] = (code, reasons)
    return out


def reference_verdicts(nodes, bound: dict[str, list], pod, args: dict | None = None):
    args = args or {}
    return {n.metadata.name: ref.fit_filter(n, bound.get(n.metadata.name, []), pod,
                                            args.get("ignoredResources", ()),
                                            args.get("ignoredResourceGroups", ()))
            for n in nodes}


def filter_one(node, pod, bound=(), args=None) -> tuple[int, list[str]]:
    """(code, reasons) of the plugin for ``pod`` on a one-node cluster."""
    plugin, snap = plugin_on(FIT, make_cluster([node], list(bound)), args)
    return verdicts(plugin, snap, pod)[node.metadata.name]


# ------------------------------------------------------------------------ random clusters

EXTENDED = ["example.com/gpu", "nvidia.com/gpu", "acme.io/fpga"]
OTHER_SCALAR = ["hugepages-2Mi", "kubernetes.io/batteries", "attachable-volumes-csi-x"]
UNTRACKED = "foo"
NODE_CPU = ["1", "2", "4", "8", "16"]
NODE_MEMORY = ["1Gi", "4Gi", "16Gi", "64Gi"]
NODE_STORAGE = [None, "10Gi", "50Gi", "100Gi"]
NODE_SCALAR = ["0", "1", "2", "4", "8"]
NODE_HUGEPAGES = ["0", "4Mi", "64Mi", "1Gi"]
NODE_PODS = [0, 1, 2, 3, 5, 8, 110]
# per resource: (usual amounts, amounts that rarely fit any node); None: not requested
POD_MENU = {
    "cpu": ([None, "0", "100m", "250m", "500m", "1", "2"], ["12", "20"]),
    "memory": ([None, "0", "64Mi", "256Mi", "1Gi", "2Gi"], ["32Gi", "100Gi"]),
    "ephemeral-storage": ([None, None, None, "0", "500Mi", "5Gi"], ["80Gi", "200Gi"]),
    "hugepages-2Mi": (["0", "2Mi", "8Mi", "32Mi"], ["128Mi", "2Gi"]),
}
SCALAR_MENU = (["0", "1", "1", "2"], ["5", "16"])


def _random_node(rng: random.Random, name: str, weights: dict):
    extra = {}
    if (s := rng.choice(NODE_STORAGE)) is not None:
        extra["ephemeral-storage"] = s
    for r in EXTENDED + ["kubernetes.io/batteries", "attachable-volumes-csi-x"]:
        if rng.random() < weights["scalar"]:
            extra[r] = rng.choice(NODE_SCALAR)
    if rng.random() < weights["scalar"]:
        extra["hugepages-2Mi"] = rng.choice(NODE_HUGEPAGES)
    if rng.random() < 0.2:
        extra[UNTRACKED] = rng.choice(["0", "3"])
    return make_node(name, cpu=rng.choice(NODE_CPU), memory=rng.choice(NODE_MEMORY),
                     pods=rng.choice(NODE_PODS), extra=extra)


def _amount(rng: random.Random, menu, huge: float):
    usual, rare = menu
    return rng.choice(rare) if rng.random() < huge else rng.choice(usual)


def _random_requests(rng: random.Random, weights: dict) -> dict:
    req = {}
    huge = weights.get("huge", 0.0)
    for r in ("cpu", "memory", "ephemeral-storage"):
        if (q := _amount(rng, POD_MENU[r], huge)) is not None:
            req[r] = q
    for r in EXTENDED + ["kubernetes.io/batteries", "attachable-volumes-csi-x"]:
        if rng.random() < weights["scalar"] / 3:
            req[r] = _amount(rng, SCALAR_MENU, huge)
    if rng.random() < weights["scalar"] / 3:
        req["hugepages-2Mi"] = _amount(rng, POD_MENU["hugepages-2Mi"], huge)
    if rng.random() < 0.1:
        req[UNTRACKED] = rng.choice(["1", "7"])
    return req


def _container(name: str, requests: dict, sidecar: bool = False) -> dict:
    c = {"name": name, "image": "img", "resources": {"requests": requests}}
    if sidecar:
        c["restartPolicy"] = "Always"
    return c


def _random_pod(rng: random.Random, name: str, weights: dict, node: str = ""):
    containers = [_container(f"c{i}", _random_requests(rng, weights))
                  for i in range(rng.choice([1, 1, 1, 2]))]
    spec = {}
    if rng.random() < 0.15:
        spec["initContainers"] = [_container("init", _random_requests(rng, weights),
                                             sidecar=rng.random() < 0.5)]
    if rng.random() < 0.1:
        spec["overhead"] = {"cpu": "50m", "memory": "32Mi"}
    return make_pod(name, node=node, containers=containers, **spec)


@st.composite
def clusters(draw):
    """(nodes, bound pods, incoming pods, args, seed): built from a drawn seed and shape so
    that hundreds of nodes stay cheap to draw."""
    n_nodes = draw(st.integers(10, 200))
    scalar = draw(st.sampled_from([0.0, 0.2, 0.5, 0.9]))
    bound_weights = {"scalar": scalar}
    weights = {"scalar": scalar, "huge": draw(st.sampled_from([0.0, 0.02, 0.1]))}
    fill = draw(st.sampled_from([0, 2, 4, 8]))
    seed = draw(st.integers(0, 2 ** 32 - 1))
    rng = random.Random(seed)
    nodes, bound = [], []
    for i in range(n_nodes):
        nodes.append(_random_node(rng, f"n{i}", weights))
        for j in range(rng.randint(0, fill)):
            bound.append(_random_pod(rng, f"b{i}-{j}", bound_weights, node=f"n{i}"))
    incoming = [_random_pod(rng, f"in{k}", weights) for k in range(draw(st.integers(1, 3)))]
    args = {}
    if draw(st.booleans()):
        args["ignoredResources"] = draw(st.lists(st.sampled_from(
            EXTENDED + OTHER_SCALAR), unique=True, max_size=3))
    if draw(st.booleans()):
        args["ignoredResourceGroups"] = draw(st.lists(st.sampled_from(
            ["example.com", "acme.io", "nvidia.com", "kubernetes.io"]), unique=True, max_size=2))
    return nodes, bound, incoming, args, seed


def _by_node(pods) -> dict[str, list]:
    out: dict[str, list] = {}
    for p in pods:
        out.setdefault(p.spec.node_name, []).append(p)
    return out


@given(clusters())
def test_filter_matches_the_reference_node_for_node(cluster):
    nodes, bound, incoming, args, seed = cluster
    plugin, snap = plugin_on(FIT, make_cluster(nodes, bound), args or None)
    by_node = _by_node(bound)
    rng = random.Random(seed)
    for pod in incoming:
        got = verdicts(plugin, snap, pod)
        want = reference_verdicts(nodes, by_node, pod, args)
        assert got == want
        for code in {c for c, _ in got.values()}:
            event(f"code {code}")
        if any(c == UU and len(r) > 1 for c, r in got.values()):
            event("unresolvable with several reasons")
        # the kernel on a shuffled subset of nodes gives the same codes
        info = snap.pod_info(pod)
        state = CycleState()
        plugin.pre_filter(state, info, snap.alive_nodes())
        subset = np.array(rng.sample(range(len(nodes)), k=max(1, len(nodes) // 3)), np.int64)
        codes = plugin.filter(state, info, subset)
        assert [int(c) for c in codes] == [want[nodes[i].metadata.name][0] for i in subset]
        # bind the pod where it fits (or anywhere, overcommitting), then check the next one
        fitting = [n for n in nodes if want[n.metadata.name][0] == OK]
        target = rng.choice(fitting or nodes).metadata.name
        pod.spec.node_name = target
        snap.add_pod(snap.pod_info(pod), snap.node_index[target])
        by_node.setdefault(target, []).append(pod)
    # remove a few bound pods: the verdicts follow
    removed = rng.sample(sorted(snap.pods), k=min(5, len(snap.pods)))
    for key in removed:
        info = snap.pods[key]
        by_node[info.pod.spec.node_name].remove(info.pod)
        snap.remove_pod(info)
    probe = _random_pod(rng, "probe", {"scalar": 0.5})
    assert verdicts(plugin, snap, probe) == reference_verdicts(nodes, by_node, probe, args)


# ------------------------------------------------------------------ resource name classes

NAMES = ["cpu", "memory", "ephemeral-storage", "pods", "storage", "foo", "nvidia.com/gpu",
         "example.com/aaa", "acme.io/fpga", "kubernetes.io/something",
         "subdomain.kubernetes.io/something", "xkubernetes.io/thing", "hugepages-2Mi",
         "hugepages-1Gi", "attachable-volumes-aws-ebs", "requests.example.com/x",
         "example.com/" + "a" * 63, "example.com/" + "a" * 64, "a" * 250 + ".com/x",
         "deviceclass.resource.kubernetes.io/gpu", "extended.resource.dra.io/something"]


@pytest.mark.parametrize("name", NAMES)
def test_resource_classes_follow_kube_helpers(name):
    assert is_extended_resource(name) == ref.extended(name)
    assert is_fit_checked_resource(name) == (ref.kind(name) in ("fixed", "scalar"))


def test_resource_classes_examples():
    assert is_extended_resource("nvidia.com/gpu")
    assert not is_extended_resource("kubernetes.io/something")
    assert not is_extended_resource("xkubernetes.io/thing")  # kubernetes.io/ anywhere: native
    assert not is_extended_resource("hugepages-2Mi")
    assert not is_extended_resource("requests.example.com/x")
    assert not is_extended_resource("example.com/" + "a" * 64)  # name part over 63 characters
    assert is_fit_checked_resource("hugepages-2Mi") and is_fit_checked_resource("xkubernetes.io/t")
    assert not is_fit_checked_resource("foo") and not is_fit_checked_resource("pods")


def test_reason_order_is_fixed_first_then_scalars_sorted():
    assert scalar_reason_order(["nvidia.com/gpu", "memory", "acme.io/fpga", "cpu",
                                "hugepages-2Mi", "ephemeral-storage"]) == [
        "cpu", "memory", "ephemeral-storage", "acme.io/fpga", "hugepages-2Mi", "nvidia.com/gpu"]


# --------------------------------------------------------------- kube's fit_test.go cases

def kube_node(cpu=10, memory=20, pods=32, aaa=5, storage=20, hugepages=5, extra=None):
    """makeAllocatableResources(milliCPU, memory, pods, extendedA, storage, hugePageA)."""
    return make_node("node", cpu=f"{cpu}m", memory=str(memory), pods=pods,
                     extra={"example.com/aaa": str(aaa), "ephemeral-storage": str(storage),
                            "hugepages-2Mi": str(hugepages), **(extra or {})})


def res(cpu=0, memory=0, storage=0, **scalar) -> dict:
    """newResourcePod's per-container list: cpu (milli), memory, ephemeral-storage always
    stated (zero included); scalar resources by keyword (``aaa``, ``bbb``, ``hp``, or a
    quoted full name)."""
    alias = {"aaa": "example.com/aaa", "bbb": "example.com/bbb", "hp": "hugepages-2Mi"}
    out = {"cpu": f"{cpu}m", "memory": str(memory), "ephemeral-storage": str(storage)}
    for k, v in scalar.items():
        out[alias.get(k, k)] = str(v)
    return out


def kpod(name, *containers, init=(), overhead=None, pod_level=None, node=""):
    """A pod with a container per request list in ``containers`` and init containers."""
    spec = {}
    if init:
        spec["initContainers"] = [_container(f"i{i}", r) for i, r in enumerate(init)]
    if overhead:
        spec["overhead"] = overhead
    if pod_level:
        spec["resources"] = {"requests": pod_level}
    cs = [_container(f"c{i}", r) for i, r in enumerate(containers)] or [_container("c", {})]
    return make_pod(name, node=node, containers=cs, **spec)


GPU_DRA = "extended.resource.dra.io/something"
KUBE_IO_A, KUBE_IO_B = "kubernetes.io/something", "subdomain.kubernetes.io/something"

# (name, incoming pod, pod on the node, args, code, reasons) - TestEnoughRequests
ENOUGH = [
    ("no resources requested always fits", kpod("p"), res(10, 20), None, OK, []),
    ("too many resources fails", kpod("p", res(1, 1)), res(10, 20), None, U,
     ["Insufficient cpu", "Insufficient memory"]),
    ("too many resources fails due to init container cpu",
     kpod("p", res(1, 1), init=[res(3, 1)]), res(8, 19), None, U, ["Insufficient cpu"]),
    ("too many resources fails due to highest init container cpu",
     kpod("p", res(1, 1), init=[res(3, 1), res(2, 1)]), res(8, 19), None, U,
     ["Insufficient cpu"]),
    ("too many resources fails due to init container memory",
     kpod("p", res(1, 1), init=[res(1, 3)]), res(9, 19), None, U, ["Insufficient memory"]),
    ("too many resources fails due to highest init container memory",
     kpod("p", res(1, 1), init=[res(1, 3), res(1, 2)]), res(9, 19), None, U,
     ["Insufficient memory"]),
    ("init container fits because it's the max, not sum, of containers and init containers",
     kpod("p", res(1, 1), init=[res(1, 1)]), res(9, 19), None, OK, []),
    ("multiple init containers fit because it's the max, not sum, of containers and init "
     "containers", kpod("p", res(1, 1), init=[res(1, 1), res(1, 1)]), res(9, 19), None, OK, []),
    ("both resources fit", kpod("p", res(1, 1)), res(5, 5), None, OK, []),
    ("one resource memory fits", kpod("p", res(2, 1)), res(9, 5), None, U,
     ["Insufficient cpu"]),
    ("one resource cpu fits", kpod("p", res(1, 2)), res(5, 19), None, U,
     ["Insufficient memory"]),
    ("equal edge case", kpod("p", res(5, 1)), res(5, 19), None, OK, []),
    ("equal edge case for init container", kpod("p", res(4, 1), init=[res(5, 1)]), res(5, 19),
     None, OK, []),
    ("extended resource fits", kpod("p", res(aaa=1)), res(), None, OK, []),
    ("extended resource fits for init container", kpod("p", res(), init=[res(aaa=1)]), res(),
     None, OK, []),
    ("extended resource capacity enforced", kpod("p", res(1, 1, aaa=10)), res(aaa=0), None, UU,
     ["Insufficient example.com/aaa"]),
    ("extended resource capacity enforced for init container",
     kpod("p", res(), init=[res(1, 1, aaa=10)]), res(aaa=0), None, UU,
     ["Insufficient example.com/aaa"]),
    ("extended resource allocatable enforced", kpod("p", res(1, 1, aaa=1)), res(aaa=5), None, U,
     ["Insufficient example.com/aaa"]),
    ("extended resource allocatable enforced for init container",
     kpod("p", res(), init=[res(1, 1, aaa=1)]), res(aaa=5), None, U,
     ["Insufficient example.com/aaa"]),
    ("extended resource allocatable enforced for multiple containers",
     kpod("p", res(1, 1, aaa=3), res(1, 1, aaa=3)), res(aaa=2), None, UU,
     ["Insufficient example.com/aaa"]),
    ("extended resource allocatable admits multiple init containers",
     kpod("p", res(), init=[res(1, 1, aaa=3), res(1, 1, aaa=3)]), res(aaa=2), None, OK, []),
    ("extended resource allocatable enforced for multiple init containers",
     kpod("p", res(), init=[res(1, 1, aaa=6), res(1, 1, aaa=3)]), res(aaa=2), None, UU,
     ["Insufficient example.com/aaa"]),
    ("extended resource allocatable enforced for unknown resource",
     kpod("p", res(1, 1, bbb=1)), res(), None, UU, ["Insufficient example.com/bbb"]),
    ("extended resource allocatable enforced for unknown resource for init container",
     kpod("p", res(), init=[res(1, 1, bbb=1)]), res(), None, UU,
     ["Insufficient example.com/bbb"]),
    ("kubernetes.io resource capacity enforced", kpod("p", res(1, 1, **{KUBE_IO_A: 10})), res(),
     None, UU, [f"Insufficient {KUBE_IO_A}"]),
    ("kubernetes.io resource capacity enforced for init container",
     kpod("p", res(), init=[res(1, 1, **{KUBE_IO_B: 10})]), res(), None, UU,
     [f"Insufficient {KUBE_IO_B}"]),
    ("hugepages resource capacity enforced", kpod("p", res(1, 1, hp=10)), res(hp=0), None, UU,
     ["Insufficient hugepages-2Mi"]),
    ("hugepages resource capacity enforced for init container",
     kpod("p", res(), init=[res(1, 1, hp=10)]), res(hp=0), None, UU,
     ["Insufficient hugepages-2Mi"]),
    ("hugepages resource allocatable enforced for multiple containers",
     kpod("p", res(1, 1, hp=3), res(1, 1, hp=3)), res(hp=2), None, UU,
     ["Insufficient hugepages-2Mi"]),
    ("skip checking ignored extended resource", kpod("p", res(1, 1, bbb=1)), res(),
     {"ignoredResources": ["example.com/bbb"]}, OK, []),
    ("resources + pod overhead fits",
     kpod("p", res(1, 1), overhead={"cpu": "3m", "memory": "13"}), res(5, 5), None, OK, []),
    ("requests + overhead does not fit for memory",
     kpod("p", res(1, 1), overhead={"cpu": "1m", "memory": "15"}), res(5, 5), None, U,
     ["Insufficient memory"]),
    ("skip checking ignored extended resource via resource groups",
     kpod("p", res(1, 1, bbb=1, **{KUBE_IO_A: 1})), res(),
     {"ignoredResourceGroups": ["example.com"]}, UU, [f"Insufficient {KUBE_IO_A}"]),
    ("skip checking extended resource request with quantity zero via resource groups",
     kpod("p", res(1, 1, aaa=0)), res(aaa=6), None, OK, []),
    ("skip checking resource request with quantity zero", kpod("p", res(aaa=1)),
     res(20, 30, aaa=1), None, OK, []),
    ("both pod-level and container-level resources fit",
     kpod("p", res(1, 1), pod_level={"cpu": "1m", "memory": "2"}), res(5, 5), None, OK, []),
    ("pod-level cpu resource not fit", kpod("p", res(1, 1), pod_level={"cpu": "7m",
                                                                       "memory": "2"}),
     res(5, 5), None, U, ["Insufficient cpu"]),
    ("pod-level memory resource not fit", kpod("p", res(1, 1), pod_level={"cpu": "3m",
                                                                          "memory": "2"}),
     res(5, 19), None, U, ["Insufficient memory"]),
    ("pod-level hugepages resource fit",
     kpod("p", pod_level={"cpu": "3m", "memory": "2", "hugepages-2Mi": "5"}), None, None, OK, []),
    ("both pod-level and container-level hugepages resource fit",
     kpod("p", res(1, 1, hp=3), pod_level={"cpu": "3m", "memory": "2", "hugepages-2Mi": "5"}),
     None, None, OK, []),
    ("pod-level hugepages resource not fit",
     kpod("p", pod_level={"cpu": "3m", "memory": "2", "hugepages-2Mi": "10"}), None, None, UU,
     ["Insufficient hugepages-2Mi"]),
    ("one pod-level cpu resource fits and all init and non-init containers resources fit",
     kpod("p", res(1, 1), init=[res(1, 1)], pod_level={"cpu": "3m", "memory": "2"}),
     res(5, 19), None, U, ["Insufficient memory"]),
    # DRAExtendedResource: no DeviceClass maps these names, so nothing is delegated to DRA
    ("extended resource backed by DRA not enabled", kpod("p", res(1, 1, **{GPU_DRA: 1})), res(),
     None, UU, [f"Insufficient {GPU_DRA}"]),
    ("extended resource NOT backed by DRA", kpod("p", res(1, 1, bbb=1)), res(), None, UU,
     ["Insufficient example.com/bbb"]),
    ("extended resource backed by device plugin", kpod("p", res(aaa=1)), res(), None, OK, []),
]


@pytest.mark.parametrize("name,pod,on_node,args,code,reasons", ENOUGH,
                         ids=[c[0] for c in ENOUGH])
def test_kube_enough_requests(name, pod, on_node, args, code, reasons):
    bound = [kpod("existing", on_node, node="node")] if on_node is not None else []
    node = kube_node()
    assert filter_one(node, pod, bound, args) == (code, reasons)
    assert ref.fit_filter(node, bound, pod, **_ref_args(args)) == (code, reasons)


def _ref_args(args):
    args = args or {}
    return {"ignored_resources": args.get("ignoredResources", ()),
            "ignored_groups": args.get("ignoredResourceGroups", ())}


NOT_ENOUGH = [  # TestNotEnoughRequests: node allocatable (10m, 20, 1 pod, 0, 0, 0)
    ("even without specified resources, predicate fails when there's no space for additional "
     "pod", kpod("p"), res(10, 20)),
    ("even if both resources fit, predicate fails when there's no space for additional pod",
     kpod("p", res(1, 1)), res(5, 5)),
    ("even for equal edge case, predicate fails when there's no space for additional pod",
     kpod("p", res(5, 1)), res(5, 19)),
    ("even for equal edge case, predicate fails when there's no space for additional pod due "
     "to init container", kpod("p", res(5, 1), init=[res(5, 1)]), res(5, 19)),
]


@pytest.mark.parametrize("name,pod,on_node", NOT_ENOUGH, ids=[c[0] for c in NOT_ENOUGH])
def test_kube_not_enough_requests(name, pod, on_node):
    node = kube_node(pods=1, aaa=0, storage=0, hugepages=0)
    assert filter_one(node, pod, [kpod("existing", on_node, node="node")]) == (
        U, ["Too many pods"])


STORAGE = [  # TestStorageRequests
    ("empty storage requested, and pod fits", kpod("p", res(1, 1)), res(2, 10), OK, []),
    ("storage ephemeral local storage request exceeds allocatable",
     kpod("p", res(storage=25)), res(2, 2), UU, ["Insufficient ephemeral-storage"]),
    ("ephemeral local storage is sufficient", kpod("p", res(storage=5)), res(2, 2, 10), OK, []),
    ("pod fits", kpod("p", res(storage=10)), res(2, 2), OK, []),
]


@pytest.mark.parametrize("name,pod,on_node,code,reasons", STORAGE, ids=[c[0] for c in STORAGE])
def test_kube_storage_requests(name, pod, on_node, code, reasons):
    assert filter_one(kube_node(), pod, [kpod("existing", on_node, node="node")]) == (
        code, reasons)


@pytest.mark.parametrize("sidecar_cpu,want", [
    ("1m", (OK, [])),  # the total requested resources do not exceed the node's allocatable
    ("2m", (UU, ["Insufficient cpu"])),  # they do: 1m + 2m > 2m
])
def test_kube_restartable_init_containers(sidecar_cpu, want):
    node = kube_node(cpu=2, memory=0, pods=1, aaa=0, storage=0, hugepages=0)
    pod = make_pod("p", containers=[_container("regular", {"cpu": "1m"})],
                   initContainers=[_container("restartable-init", {"cpu": sidecar_cpu},
                                              sidecar=True)])
    assert filter_one(node, pod) == want


# ------------------------------------------------- Unschedulable vs UnschedulableAndUnresolvable

def test_request_above_free_but_within_allocatable_is_unschedulable():
    node = make_node("n", cpu="4", memory="8Gi")
    bound = [make_pod("b", cpu="3", node="n")]
    assert filter_one(node, make_pod("p", cpu="2"), bound) == (U, ["Insufficient cpu"])
    # the whole allocatable is fine on an empty node, and on a full one it is resolvable
    assert filter_one(node, make_pod("p", cpu="4")) == (OK, [])
    assert filter_one(node, make_pod("p", cpu="4"), bound) == (U, ["Insufficient cpu"])


def test_request_above_allocatable_is_unresolvable():
    node = make_node("n", cpu="4", memory="8Gi")
    assert filter_one(node, make_pod("p", cpu="4001m")) == (UU, ["Insufficient cpu"])
    assert filter_one(node, make_pod("p", memory="9Gi")) == (UU, ["Insufficient memory"])
    # a resource the node does not have at all: allocatable 0
    assert filter_one(node, make_pod("p", extra_requests={"nvidia.com/gpu": "1"})) == (
        UU, ["Insufficient nvidia.com/gpu"])


def test_one_unresolvable_resource_makes_the_node_unresolvable_with_all_reasons():
    node = make_node("n", cpu="4", memory="8Gi", pods=1,
                     extra={"example.com/gpu": "2", "hugepages-2Mi": "64Mi"})
    bound = [make_pod("b", cpu="3", memory="1Gi", node="n",
                      extra_requests={"example.com/gpu": "2"})]
    pod = make_pod("p", cpu="2", memory="1Gi",
                   extra_requests={"example.com/gpu": "1", "hugepages-2Mi": "128Mi"})
    # pods and cpu and the gpu could be freed; hugepages can never fit: 3, every reason kept
    assert filter_one(node, pod, bound) == (UU, [
        "Too many pods", "Insufficient cpu", "Insufficient example.com/gpu",
        "Insufficient hugepages-2Mi"])
    assert filter_one(node, make_pod("q", cpu="2", extra_requests={"example.com/gpu": "1"}),
                      bound) == (U, ["Too many pods", "Insufficient cpu",
                                     "Insufficient example.com/gpu"])


def test_too_many_pods_is_never_unresolvable():
    assert filter_one(make_node("n", pods=0), make_pod("p")) == (U, ["Too many pods"])
    assert filter_one(make_node("n", pods=0), make_pod("p", cpu="1")) == (U, ["Too many pods"])
    assert filter_one(make_node("n", pods=0), make_pod("p", cpu="5")) == (
        UU, ["Too many pods", "Insufficient cpu"])


def test_overcommitted_node_stays_resolvable_for_requests_within_allocatable():
    node = make_node("n", cpu="2", memory="1Gi")
    bound = [make_pod("b1", cpu="2", node="n"), make_pod("b2", cpu="1", node="n")]  # 3 of 2
    assert filter_one(node, make_pod("p", cpu="1m"), bound) == (U, ["Insufficient cpu"])
    assert filter_one(node, make_pod("p", memory="1Gi"), bound) == (OK, [])


def test_pod_requesting_nothing_only_needs_a_pod_slot():
    node = make_node("n", cpu="0", memory="0", pods=1)
    assert filter_one(node, make_pod("p")) == (OK, [])
    assert filter_one(node, make_pod("p", cpu="0", memory="0",
                                     extra_requests={"example.com/gpu": "0"})) == (OK, [])
    assert filter_one(node, make_pod("p"), [make_pod("b", node="n")]) == (U, ["Too many pods"])


def test_untracked_names_and_the_pods_request_are_not_checked():
    node = make_node("n", cpu="1", memory="1Gi")
    assert filter_one(node, make_pod("p", extra_requests={"foo": "5", "storage": "1"})) == (
        OK, [])
    assert filter_one(node, make_pod("p", extra_requests={"pods": "3"})) == (OK, [])


def test_ignored_resources_apply_to_extended_resources_only():
    node = make_node("n", cpu="1", memory="1Gi")
    pod = make_pod("p", extra_requests={"example.com/gpu": "1", "hugepages-2Mi": "2Mi",
                                        "kubernetes.io/batteries": "1",
                                        "attachable-volumes-csi-x": "1"})
    args = {"ignoredResources": ["example.com/gpu", "hugepages-2Mi", "kubernetes.io/batteries",
                                 "attachable-volumes-csi-x"]}
    assert filter_one(node, pod, args=args) == (UU, [
        "Insufficient attachable-volumes-csi-x", "Insufficient hugepages-2Mi",
        "Insufficient kubernetes.io/batteries"])
    assert filter_one(node, pod, args={"ignoredResourceGroups": ["example.com",
                                                                 "kubernetes.io"]}) == (UU, [
        "Insufficient attachable-volumes-csi-x", "Insufficient hugepages-2Mi",
        "Insufficient kubernetes.io/batteries"])


def test_fit_codes_kernel_on_a_subset_in_any_order():
    nodes = [make_node("small", cpu="1"), make_node("busy", cpu="4"), make_node("free", cpu="4")]
    plugin, snap = plugin_on(FIT, make_cluster(nodes, [make_pod("b", cpu="3", node="busy")]))
    info = snap.pod_info(make_pod("p", cpu="2"))
    request, _ = snap.request_vectors(info)
    check = request > 0
    order = np.array([2, 0, 1, 0], np.int64)
    assert fit_codes(snap, order, request, check).tolist() == [OK, UU, U, UU]
    with pytest.raises(ValueError):
        fit_codes(snap, order, request[:1], check[:1])


def test_a_resource_column_added_after_prefilter():
    nodes = [make_node("n", cpu="4")]
    plugin, snap = plugin_on(FIT, make_cluster(nodes))
    pod = make_pod("p", cpu="1")
    info = snap.pod_info(pod)
    state = CycleState()
    plugin.pre_filter(state, info, snap.alive_nodes())
    snap.pod_info(make_pod("other", extra_requests={"example.com/new": "1"}))  # new column
    assert plugin.filter(state, info, snap.alive_nodes()).tolist() == [OK]
    # Filter without PreFilter (as preemption's dry runs may call it)
    assert plugin.filter(CycleState(), info, snap.alive_nodes()).tolist() == [OK]


# ------------------------------------------------------------- what it means for preemption


def _scheduler(nodes, pods):
    plugins = ("PrioritySort", "NodeResourcesFit", "DefaultBinder", "DefaultPreemption")
    doc = {"apiVersion": "kubescheduler.config.k8s.io/v1", "kind": "KubeSchedulerConfiguration",
           "profiles": [{"schedulerName": "default-scheduler",
                         "plugins": {"multiPoint": {"enabled": [{"name": n} for n in plugins],
                                                    "disabled": [{"name": "*"}]}}}]}
    cfg = parse_scheduler_config(doc)
    return Scheduler(make_cluster(nodes, pods), cfg.profile(), config=cfg, seed=0)


def test_preemption_skips_nodes_too_small_for_the_pod():
    """v1.35: a node whose allocatable is below the pod's request is
    UnschedulableAndUnresolvable, so it is not a preemption candidate; with no other node the
    PostFilter says preemption is not helpful."""
    low = dict(priority=-10)
    s = _scheduler([make_node("small", cpu="1", pods=1)],
                   [make_pod("a", cpu="100m", node="small", **low)])
    s.enqueue(make_pod("pre", cpu="1200m", priority=0))
    r = s.schedule_one()
    assert r.nominated_node is None and r.victims == []
    assert r.message == ("0/1 nodes are available: 1 Insufficient cpu, 1 Too many pods. "
                         "preemption: 0/1 nodes are available: 1 Preemption is not helpful for "
                         "scheduling.")
    s = _scheduler([make_node("small", cpu="1", pods=1), make_node("big", cpu="2", pods=1)],
                   [make_pod("a", cpu="100m", node="small", **low),
                    make_pod("b", cpu="100m", node="big", **low)])
    s.enqueue(make_pod("pre", cpu="1200m", priority=0))
    r = s.schedule_one()
    assert (r.nominated_node, r.victims) == ("big", ["default/b"])
