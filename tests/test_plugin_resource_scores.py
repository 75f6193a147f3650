"""Scores of NodeResourcesFit (LeastAllocated, MostAllocated, RequestedToCapacityRatio),
NodeResourcesBalancedAllocation and ImageLocality.

Three kinds of tests:

- kube-scheduler's own test tables (least_allocated_test.go, most_allocated_test.go,
  requested_to_capacity_ratio_test.go, balanced_allocation_test.go, image_locality_test.go),
  their inputs and expected scores re-stated here case by case;
- targeted cases for details those tables do not pin down (Go truncation of negative slopes,
  the scorer's own pod request with pod-level resources, untracked names, ...);
- Hypothesis: random clusters and pods, every plugin equal, node for node, to the plain-Python
  reference in ``tests/reference/resource_scores.py``.

kube's tables use pods without containers (``st.MakePod().Obj()``); schedbench pods need one, so
those pods are written here as one container requesting ``cpu: 0, memory: 0``: the same request
and the same non-zero request (an explicit 0 is not defaulted).
"""

from __future__ import annotations

import itertools
import random

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from reference import resource_scores as ref
from scheduler_helpers import make_cluster, make_node, make_pod, plugin_on

from schedbench.config import (NodeResourcesBalancedAllocationArgs, NodeResourcesFitArgs,
                               RequestedToCapacityRatioParam, ResourceSpec, ScoringStrategy,
                               UtilizationShapePoint)
from schedbench.errors import ConfigError
from schedbench.scheduler.framework import PLUGINS, CycleState
from schedbench.scheduler.plugins.image_locality import normalized_image_name
from schedbench.scheduler.resource_scoring import broken_linear, is_scalar_resource_name

MB = 1024 * 1024
EXT = "abc.com/xyz"  # kube's extendedRes
_names = itertools.count()


# ---------------------------------------------------------------------------------- helpers

def kpod(*containers: dict, node: str = ""):
    """A pod with one container per requests dict; no dict: kube's container-less pod."""
    if not containers:
        containers = ({"cpu": "0", "memory": "0"},)
    cs = [{"name": f"c{i}", "image": "img", "resources": {"requests": dict(r)}}
          for i, r in enumerate(containers)]
    return make_pod(f"p{next(_names)}", node=node, containers=cs)


def cpu_mem(cpu: str, memory: str, **extra) -> dict:
    return {"cpu": cpu, "memory": memory, **extra}


def knode(name: str, cpu, memory, extra: dict | None = None):
    """st.MakeNode().Capacity({"cpu": cpu, "memory": memory, ...}) / makeNode(...)."""
    return make_node(name, cpu=cpu, memory=str(memory), pods=1000, extra=extra)


def fit_args(strategy: str, resources=None, shape=None) -> NodeResourcesFitArgs:
    res = tuple(ResourceSpec(n, w) for n, w in resources) if resources is not None else \
        (ResourceSpec("cpu", 1), ResourceSpec("memory", 1))
    rtcr = None
    if shape is not None:
        rtcr = RequestedToCapacityRatioParam(tuple(UtilizationShapePoint(u, s) for u, s in shape))
    return NodeResourcesFitArgs(scoring_strategy=ScoringStrategy(strategy, res, rtcr))


def run_score(plugin, snap, pod, nodes=None, pre_score: bool = True):
    """PreScore (unless told not to) and Score of ``pod`` on ``nodes`` (default: every live
    node): {node name: score}, or None when PreScore skips."""
    info = snap.pod_info(pod)
    state = CycleState()
    nodes = snap.alive_nodes() if nodes is None else np.asarray(nodes, np.int64)
    if pre_score and hasattr(plugin, "pre_score"):
        status = plugin.pre_score(state, info, nodes)
        if status.is_skip:
            return None
        assert status.is_success
    scores = plugin.score(state, info, nodes)
    assert scores.dtype == np.int64 and scores.shape == nodes.shape
    return {snap.node_names[n]: int(s) for n, s in zip(nodes, scores)}


def scores_of(plugin_name, nodes, existing, pod, args=None, pre_score=True):
    plugin, snap = plugin_on(plugin_name, make_cluster(nodes, existing), args)
    return run_score(plugin, snap, pod, pre_score=pre_score)


def as_list(scores: dict[str, int]) -> list[int]:
    return list(scores.values())


# ------------------------------------------------------------------ kube: LeastAllocated

# The two-container pod most kube cases schedule: cpu 1000+2000, memory 2000+3000.
P = (cpu_mem("1000", "2000"), cpu_mem("2000", "3000"))
EXT_SET = [("cpu", 1), ("memory", 1), (EXT, 1)]


def _n(cpu1, mem1, cpu2, mem2, ext1=None, ext2=None):
    return [knode("node1", cpu1, mem1, ext1), knode("node2", cpu2, mem2, ext2)]


LEAST_CASES = [
    ("nothing scheduled, nothing requested",
     _n("4000", 10000, "4000", 10000), [], (), None, [100, 100]),
    ("nothing scheduled, resources requested, differently sized nodes",
     _n("4000", 10000, "6000", 10000), [], P, None, [37, 50]),
    ("no resources requested, pods scheduled",
     _n("4000", 10000, "4000", 10000),
     [dict(node="node1"), dict(node="node1"), dict(node="node2"), dict(node="node2")],
     (), None, [100, 100]),
    ("no resources requested, pods scheduled with resources",
     _n("10000", 20000, "10000", 20000),
     [dict(node="node1", c=cpu_mem("3000", "0")), dict(node="node1", c=cpu_mem("3000", "0")),
      dict(node="node2", c=cpu_mem("3000", "0")), dict(node="node2", c=cpu_mem("3000", "5000"))],
     (), None, [70, 57]),
    ("resources requested, pods scheduled with resources",
     _n("10000", 20000, "10000", 20000),
     [dict(node="node1", c=cpu_mem("3000", "0")), dict(node="node2", c=cpu_mem("3000", "5000"))],
     P, None, [57, 45]),
    ("resources requested, pods scheduled with resources, differently sized nodes",
     _n("10000", 20000, "10000", 50000),
     [dict(node="node1", c=cpu_mem("3000", "0")), dict(node="node2", c=cpu_mem("3000", "5000"))],
     P, None, [57, 60]),
    ("requested resources exceed node capacity",
     _n("4000", 10000, "4000", 10000),
     [dict(node="node1", c=cpu_mem("3000", "0")), dict(node="node2", c=cpu_mem("3000", "5000"))],
     (cpu_mem("3000", "0"),), None, [50, 25]),
    ("zero node resources, pods scheduled with resources",
     _n("0", 0, "0", 0),
     [dict(node="node1", c=cpu_mem("3000", "0")), dict(node="node2", c=cpu_mem("3000", "5000"))],
     (), None, [0, 0]),
    ("nothing scheduled, resources requested with different weight on CPU and memory, "
     "differently sized nodes",
     _n("4000", 10000, "6000", 10000), [], P, [("memory", 2), ("cpu", 1)], [41, 50]),
    ("bypass extended resource if the pod does not request",
     _n("6000", 10000, "6000", 10000, None, {EXT: "4"}), [], P, EXT_SET, [50, 50]),
    ("honor extended resource if the pod requests",
     _n("6000", 10000, "6000", 10000, {EXT: "4"}, {EXT: "10"}), [],
     (cpu_mem("3000", "5000", **{EXT: "2"}),), EXT_SET, [50, 60]),
    ("if the node doesn't have a resource",
     _n("6000", 10000, "6000", 10000, None, {EXT: "4"}), [], (cpu_mem("3000", "4000"),),
     [(EXT, 2), ("cpu", 1), ("memory", 1)], [55, 55]),
]

MOST_CASES = [
    ("nothing scheduled, nothing requested",
     _n("4000", 10000, "4000", 10000), [], (), None, [0, 0]),
    ("nothing scheduled, resources requested, differently sized nodes",
     _n("4000", 10000, "6000", 10000), [], P, None, [62, 50]),
    ("no resources requested, pods scheduled with resources",
     _n("10000", 20000, "10000", 20000),
     [dict(node="node1", c=cpu_mem("3000", "0")), dict(node="node1", c=cpu_mem("3000", "0")),
      dict(node="node2", c=cpu_mem("3000", "0")), dict(node="node2", c=cpu_mem("3000", "5000"))],
     (), None, [30, 42]),
    ("resources requested, pods scheduled with resources",
     _n("10000", 20000, "10000", 20000),
     [dict(node="node1", c=cpu_mem("3000", "0")), dict(node="node2", c=cpu_mem("3000", "5000"))],
     P, None, [42, 55]),
    ("resources requested equal node capacity",
     _n("5000", 10000, "10000", 9000), [],
     (cpu_mem("2000", "4000"), cpu_mem("3000", "5000")), None, [95, 75]),
    ("nothing scheduled, resources requested, differently sized nodes, weighted",
     _n("4000", 10000, "6000", 10000), [], P, [("memory", 2), ("cpu", 1)], [58, 50]),
    ("no resources requested, pods scheduled, nonzero request for resource",
     _n("250m", "1000Mi", "250m", "1000Mi"),
     [dict(node="node1", c={}), dict(node="node1", c={})], ({},), None, [80, 30]),
    ("bypass extended resource if the pod does not request",
     _n("6000", 10000, "6000", 10000, None, {EXT: "4"}), [], P, EXT_SET, [50, 50]),
    ("honor extended resource if the pod request",
     _n("6000", 10000, "6000", 10000, {EXT: "4"}, {EXT: "10"}), [],
     (cpu_mem("3000", "5000", **{EXT: "2"}),), EXT_SET, [50, 40]),
    ("if the node doesn't have a resource",
     _n("6000", 10000, "6000", 10000, None, {EXT: "4"}), [], (cpu_mem("3000", "4000"),),
     [(EXT, 2), ("cpu", 1), ("memory", 1)], [45, 45]),
]


def _existing(specs):
    return [kpod(*((s["c"],) if "c" in s else ()), node=s["node"]) for s in specs]


FIT_CASES = ([("LeastAllocated", *c) for c in LEAST_CASES]
             + [("MostAllocated", *c) for c in MOST_CASES])


@pytest.mark.parametrize("case", FIT_CASES, ids=[f"{c[0]}: {c[1]}" for c in FIT_CASES])
def test_kube_least_and_most_allocated(case):
    strategy, name, nodes, existing, pod_containers, resources, expected = case
    pod = kpod(*pod_containers)
    bound = _existing(existing)
    got = scores_of("NodeResourcesFit", nodes, bound, pod, fit_args(strategy, resources))
    assert as_list(got) == expected
    # the reference agrees on kube's own cases too
    res = resources if resources is not None else [("cpu", 1), ("memory", 1)]
    assert as_list(ref.fit_scores(nodes, bound, pod, strategy, res)) == expected


@pytest.mark.parametrize("resources,field", [
    ([("memory", -1), ("cpu", 1)], "scoringStrategy.resources[0].weight"),  # negative weight
    ([("memory", 1), ("cpu", 0)], "scoringStrategy.resources[1].weight"),   # zero weight
    ([("memory", 1), ("cpu", 101)], "scoringStrategy.resources[1].weight"),  # > MaxNodeScore
    ([("memory", 101)], "scoringStrategy.resources[0].weight"),
], ids=["negative weight", "zero weight", "weight larger than MaxNodeScore (least)",
        "weight larger than MaxNodeScore (most)"])
def test_kube_invalid_weights_are_rejected(resources, field):
    for strategy in ("LeastAllocated", "MostAllocated"):
        with pytest.raises(ConfigError) as err:
            fit_args(strategy, resources).validate()
        assert field in str(err.value)


def test_kube_resources_not_set_is_an_error():
    """kube: an empty resources list makes Score fail ("resources not found")."""
    for strategy in ("LeastAllocated", "MostAllocated"):
        plugin, snap = plugin_on("NodeResourcesFit",
                                 make_cluster(_n("4000", 10000, "6000", 10000)),
                                 fit_args(strategy, []))
        with pytest.raises(RuntimeError, match="resources not found"):
            run_score(plugin, snap, kpod(*P))


# ------------------------------------------------------------ kube: RequestedToCapacityRatio

LEAST_SHAPE = [(0, 10), (100, 0)]
ONE_SHAPE = [(0, 0), (100, 1)]


def _ext_node(name, foo=None, bar=None):
    extra = {k: str(v) for k, v in (("intel.com/foo", foo), ("intel.com/bar", bar)) if v}
    return knode(name, "4000m", f"{10000 * MB}", extra)


RTCR_CASES = [
    ("nothing scheduled, nothing requested (default - least requested nodes have priority)",
     _n("4000", 10000, "4000", 10000), [dict(node="node1"), dict(node="node1")], (),
     None, LEAST_SHAPE, [100, 100]),
    ("nothing scheduled, resources requested, differently sized nodes (default - least "
     "requested nodes have priority)",
     _n("4000", 10000, "6000", 10000), [dict(node="node1"), dict(node="node1")], P,
     None, LEAST_SHAPE, [38, 50]),
    ("no resources requested, pods scheduled with resources (default - least requested nodes "
     "have priority)",
     _n("4000", 10000, "6000", 10000),
     [dict(node="node1", c=cpu_mem("3000", "5000")), dict(node="node2", c=cpu_mem("3000", "5000"))],
     (), None, LEAST_SHAPE, [38, 50]),
    # TestResourceBinPackingSingleExtended
    ("single extended: nothing scheduled, nothing requested",
     [_ext_node("node1", foo=8), _ext_node("node2", foo=4)], [], (),
     [("intel.com/foo", 1)], ONE_SHAPE, [0, 0]),
    ("single extended: resources requested, pods scheduled with less resources",
     [_ext_node("node1", foo=8), _ext_node("node2", foo=4)], [], ({"intel.com/foo": "2"},),
     [("intel.com/foo", 1)], ONE_SHAPE, [2, 5]),
    ("single extended: resources requested, pods scheduled with resources, on node with "
     "existing pod running",
     [_ext_node("node1", foo=8), _ext_node("node2", foo=4)],
     [dict(node="node2", c={"intel.com/foo": "2"})], ({"intel.com/foo": "2"},),
     [("intel.com/foo", 1)], ONE_SHAPE, [2, 10]),
    ("single extended: resources requested, pods scheduled with more resources",
     [_ext_node("node1", foo=8), _ext_node("node2", foo=4)], [], ({"intel.com/foo": "4"},),
     [("intel.com/foo", 1)], ONE_SHAPE, [5, 10]),
    # TestResourceBinPackingMultipleExtended
    ("multiple extended: nothing scheduled, nothing requested",
     [_ext_node("node1", foo=8, bar=4), _ext_node("node2", foo=4, bar=8)], [], (),
     [("intel.com/foo", 3), ("intel.com/bar", 5)], ONE_SHAPE, [0, 0]),
    ("multiple extended: resources requested, pods scheduled with less resources",
     [_ext_node("node1", foo=8, bar=4), _ext_node("node2", foo=4, bar=8)], [],
     ({"intel.com/foo": "2", "intel.com/bar": "2"},),
     [("intel.com/foo", 3), ("intel.com/bar", 5)], ONE_SHAPE, [4, 3]),
    ("multiple extended: resources requested, pods scheduled with resources, on node with "
     "existing pod running",
     [_ext_node("node1", foo=8, bar=4), _ext_node("node2", foo=4, bar=8)],
     [dict(node="node2", c={"intel.com/foo": "4", "intel.com/bar": "2"})],
     ({"intel.com/foo": "2", "intel.com/bar": "2"},),
     [("intel.com/foo", 3), ("intel.com/bar", 5)], ONE_SHAPE, [4, 7]),
    ("multiple extended: resources requested, pods scheduled with more resources",
     [_ext_node("node1", foo=8, bar=4), _ext_node("node2", foo=4, bar=8)], [],
     ({"intel.com/foo": "4", "intel.com/bar": "2"},),
     [("intel.com/foo", 3), ("intel.com/bar", 5)], ONE_SHAPE, [5, 5]),
]


@pytest.mark.parametrize("case", RTCR_CASES, ids=[c[0] for c in RTCR_CASES])
def test_kube_requested_to_capacity_ratio(case):
    name, nodes, existing, pod_containers, resources, shape, expected = case
    pod = kpod(*pod_containers)
    args = fit_args("RequestedToCapacityRatio", resources, shape)
    assert as_list(scores_of("NodeResourcesFit", nodes, _existing(existing), pod, args)) \
        == expected
    res = resources if resources is not None else [("cpu", 1), ("memory", 1)]
    assert as_list(ref.fit_scores(nodes, _existing(existing), pod, "RequestedToCapacityRatio",
                                  res, shape)) == expected


BROKEN_LINEAR_CASES = [
    ([(10, 1), (90, 9)],
     [(-10, 1), (0, 1), (9, 1), (10, 1), (15, 1), (19, 1), (20, 2), (89, 8), (90, 9), (99, 9),
      (100, 9), (110, 9)]),
    ([(0, 2), (40, 10), (100, 0)],
     [(-10, 2), (0, 2), (20, 6), (30, 8), (40, 10), (70, 5), (100, 0), (110, 0)]),
    ([(0, 2), (40, 2), (100, 2)],
     [(-10, 2), (0, 2), (20, 2), (30, 2), (40, 2), (70, 2), (100, 2), (110, 2)]),
]


@pytest.mark.parametrize("points,assertions", BROKEN_LINEAR_CASES, ids=["case_0", "case_1",
                                                                        "case_2"])
def test_kube_broken_linear_function(points, assertions):
    u = np.array([p[0] for p in points], np.int64)
    s = np.array([p[1] for p in points], np.int64)
    for p, expected in assertions:
        assert broken_linear(p, u, s) == expected, p
        assert ref.shape_value(points, p) == expected, p


# ------------------------------------------------------------ kube: BalancedAllocation

def _bnode(name, milli_cpu, memory, gpu=None):
    """kube's makeNode(name, milliCPU, memory, extended)."""
    return knode(name, f"{milli_cpu}m", memory, {"nvidia.com/gpu": str(gpu)} if gpu else None)


CPU_ONLY = (cpu_mem("1000m", "0"), cpu_mem("2000m", "0"))
CPU_AND_MEMORY = (cpu_mem("1000m", "2000"), cpu_mem("2000m", "3000"))
CPU_AND_MEMORY_AND_GPU = (cpu_mem("1000m", "2000"),
                          cpu_mem("2000m", "3000", **{"nvidia.com/gpu": "3"}))
CPU_MEM = ["cpu", "memory"]
CPU_MEM_GPU = ["cpu", "memory", "nvidia.com/gpu"]

BALANCED_CASES = [
    ("nothing scheduled, nothing requested, skip in PreScore",
     [_bnode("node1", 4000, 10000), _bnode("node2", 4000, 10000)], [], (), CPU_MEM, True,
     None),
    ("nothing scheduled, resources requested, differently sized nodes",
     [_bnode("node1", 4000, 10000), _bnode("node2", 6000, 10000)], [], CPU_AND_MEMORY, CPU_MEM,
     True, [87, 100]),
    ("resources requested, pods scheduled with resources",
     [_bnode("node1", 10000, 20000), _bnode("node2", 10000, 20000)],
     [("node1", CPU_ONLY), ("node2", CPU_AND_MEMORY)], CPU_AND_MEMORY, CPU_MEM, True, [82, 95]),
    ("resources requested, pods scheduled with resources, differently sized nodes",
     [_bnode("node1", 10000, 20000), _bnode("node2", 10000, 50000)],
     [("node1", CPU_ONLY), ("node2", CPU_AND_MEMORY)], CPU_AND_MEMORY, CPU_MEM, True, [82, 80]),
    ("requested resources at node capacity",
     [_bnode("node1", 6000, 10000), _bnode("node2", 6000, 10000)],
     [("node1", CPU_ONLY), ("node2", CPU_AND_MEMORY)], CPU_ONLY, CPU_MEM, True, [50, 75]),
    ("include scalar resource on a node for balanced resource allocation",
     [_bnode("node1", 3500, 40000, gpu=8), _bnode("node2", 3500, 40000, gpu=8)],
     [("node2", CPU_AND_MEMORY), ("node1", CPU_AND_MEMORY_AND_GPU)],
     ({"memory": "0", "nvidia.com/gpu": "1"},), CPU_MEM_GPU, True, [70, 65]),
    ("node without the scalar resource should skip the scalar resource",
     [_bnode("node1", 3500, 40000, gpu=8), _bnode("node2", 3500, 40000)], [], CPU_AND_MEMORY,
     CPU_MEM_GPU, True, [63, 63]),
    ("resources requested, pods scheduled with resources if PreScore not called",
     [_bnode("node1", 10000, 20000), _bnode("node2", 10000, 20000)],
     [("node1", CPU_ONLY), ("node2", CPU_AND_MEMORY)], CPU_AND_MEMORY, CPU_MEM, False, [82, 95]),
]


@pytest.mark.parametrize("case", BALANCED_CASES, ids=[c[0] for c in BALANCED_CASES])
def test_kube_balanced_allocation(case):
    name, nodes, existing, pod_containers, resources, pre_score, expected = case
    bound = [kpod(*cs, node=node) for node, cs in existing]
    pod = kpod(*pod_containers)
    args = NodeResourcesBalancedAllocationArgs(tuple(ResourceSpec(r, 1) for r in resources))
    got = scores_of("NodeResourcesBalancedAllocation", nodes, bound, pod, args,
                    pre_score=pre_score)
    assert (got if got is None else as_list(got)) == expected
    want_ref = ref.balanced_scores(nodes, bound, pod, resources)
    assert (want_ref if want_ref is None else as_list(want_ref)) == expected


# ------------------------------------------------------------------- kube: ImageLocality

def _images(*pairs):
    return [{"names": list(names), "sizeBytes": size * MB} for names, size in pairs]


NODE_40_300_2000 = _images((["gcr.io/40:latest", "gcr.io/40:v1", "gcr.io/40:v1"], 40),
                           (["gcr.io/300:latest", "gcr.io/300:v1"], 300),
                           (["gcr.io/2000:latest"], 2000))
NODE_250_10 = _images((["gcr.io/250:latest"], 250), (["gcr.io/10:latest", "gcr.io/10:v1"], 10))
NODE_600_40_900 = _images((["gcr.io/600:latest"], 600), (["gcr.io/40:latest"], 40),
                          (["gcr.io/900:latest"], 900))
NODE_300_600_900 = _images((["gcr.io/300:latest"], 300), (["gcr.io/600:latest"], 600),
                           (["gcr.io/900:latest"], 900))
NODE_4000_30 = _images((["gcr.io/4000:latest"], 4000), (["gcr.io/30:latest"], 30))
NODE_20_30_40 = _images((["gcr.io/20:latest"], 20), (["gcr.io/30:latest"], 30),
                        (["gcr.io/40:latest"], 40))


def _image_pod(*images, init=()):
    cs = [{"name": f"c{i}", "image": im} for i, im in enumerate(images)]
    ics = [{"name": f"i{i}", "image": im} for i, im in enumerate(init)]
    return make_pod(f"p{next(_names)}", containers=cs, initContainers=ics)


IMAGE_CASES = [
    ("two images spread on two nodes, prefer the larger image one",
     ("gcr.io/40", "gcr.io/250"), (), [NODE_40_300_2000, NODE_250_10], [0, 5]),
    ("two images on one node, prefer this node",
     ("gcr.io/40", "gcr.io/300"), (), [NODE_40_300_2000, NODE_250_10], [7, 0]),
    ("if exceed limit, use limit",
     ("gcr.io/10", "gcr.io/4000"), (), [NODE_4000_30, NODE_250_10], [100, 0]),
    ("if exceed limit, use limit (with node which has no images present)",
     ("gcr.io/10", "gcr.io/4000"), (), [NODE_4000_30, NODE_250_10, []], [66, 0, 0]),
    ("pod with multiple large images, node2 is preferred",
     ("gcr.io/300", "gcr.io/600", "gcr.io/900"), (), [NODE_600_40_900, NODE_300_600_900, []],
     [32, 36, 0]),
    ("pod with multiple small images",
     ("gcr.io/30", "gcr.io/40"), (), [NODE_20_30_40, NODE_4000_30], [1, 0]),
    ("include InitContainers: two images spread on two nodes, prefer the larger image one",
     ("gcr.io/30",), ("gcr.io/300",), [NODE_40_300_2000, NODE_20_30_40], [6, 0]),
]


@pytest.mark.parametrize("case", IMAGE_CASES, ids=[c[0] for c in IMAGE_CASES])
def test_kube_image_locality(case):
    name, images, init, node_images, expected = case
    nodes = [make_node(f"node{i + 1}", images=imgs) for i, imgs in enumerate(node_images)]
    pod = _image_pod(*images, init=init)
    assert as_list(scores_of("ImageLocality", nodes, [], pod)) == expected
    assert as_list(ref.image_locality_scores(nodes, pod)) == expected


DIGEST = "sha256:4813494d137e1631bba301d5acab6e7bb7aa74ce1185d456565ef51d737677b2"


@pytest.mark.parametrize("image,normalized", [
    ("root", "root:latest"),                          # add :latest postfix 1
    ("gcr.io:5000/root", "gcr.io:5000/root:latest"),  # add :latest postfix 2
    ("root:tag", "root:tag"),                         # keep it as is 1
    ("root@" + DIGEST, "root@" + DIGEST),             # keep it as is 2
])
def test_kube_normalized_image_name(image, normalized):
    assert normalized_image_name(image) == normalized
    assert ref.normalized_image_name(image) == normalized


# ------------------------------------------------------------------- targeted behaviour

def test_plugins_are_registered():
    for name in ("NodeResourcesFit", "NodeResourcesBalancedAllocation", "ImageLocality"):
        assert name in PLUGINS


def test_fit_scorer_defaults_every_container_even_with_pod_level_requests():
    """The scorer's pod request is PodRequests with 100m/200Mi for each container lacking
    them, then pod-level requests: a pod-level memory request leaves the CPU default of the
    container without a CPU request in place (600m), unlike the NodeInfo non-zero view (500m)."""
    pod = make_pod("lvl", containers=[
        {"name": "a", "image": "i", "resources": {"requests": {"cpu": "500m"}}},
        {"name": "b", "image": "i"}], resources={"requests": {"memory": "1Gi"}})
    assert pod.non_zero_requests()["cpu"] == 500
    nodes = [knode("n", "1000m", "4Gi")]
    got = scores_of("NodeResourcesFit", nodes, [], pod, fit_args("LeastAllocated", [("cpu", 1)]))
    assert got == {"n": 40}  # (1000 - 600) * 100 / 1000
    assert ref.fit_scores(nodes, [], pod, "LeastAllocated", [("cpu", 1)]) == {"n": 40}
    got = scores_of("NodeResourcesFit", nodes, [], pod,
                    fit_args("MostAllocated", [("memory", 1)]))
    assert got == {"n": 25}  # the pod-level 1Gi of 4Gi


def test_rtcr_negative_slope_truncates_toward_zero():
    """(0->100 .. 30->0) at utilization 10: 100 + (-100 * 10) / 30 = 100 - 33 = 67 in Go
    (Python's floor division would give 66)."""
    nodes = [knode("n", "1000m", "1Gi")]
    pod = kpod({"cpu": "100m", "memory": "0"})
    args = fit_args("RequestedToCapacityRatio", [("cpu", 1)], [(0, 10), (30, 0)])
    assert scores_of("NodeResourcesFit", nodes, [], pod, args) == {"n": 67}


def test_rtcr_zero_scores_do_not_count_and_average_rounds_half_up():
    nodes = [knode("n", "1000m", "1000")]
    # cpu: utilization 0 -> score 0, left out of the average; memory: 50% -> 50
    pod = kpod({"cpu": "0", "memory": "500"})
    args = fit_args("RequestedToCapacityRatio", None, [(0, 0), (100, 10)])
    assert scores_of("NodeResourcesFit", nodes, [], pod, args) == {"n": 50}
    # cpu 25% -> 25 (weight 1), memory 50% -> 50 (weight 1): 37.5 rounds to 38
    pod = kpod({"cpu": "250m", "memory": "500"})
    assert scores_of("NodeResourcesFit", nodes, [], pod, args) == {"n": 38}
    # weights 1 and 3: (25 + 150) / 4 = 43.75 -> 44; LeastAllocated would truncate
    args = fit_args("RequestedToCapacityRatio", [("cpu", 1), ("memory", 3)], [(0, 0), (100, 10)])
    assert scores_of("NodeResourcesFit", nodes, [], pod, args) == {"n": 44}


def test_untracked_names_and_pods_are_left_out():
    """``foo`` (no domain) and ``pods`` are not kept by kube's NodeInfo: left out, even though
    the node reports foo (counted, foo would give (10 - 9) * 100 / 10 = 10 with weight 5)."""
    nodes = [knode("n", "1000m", "1Gi", {"foo": "10"})]
    pod = kpod({"cpu": "500m", "memory": "0", "foo": "9"})
    args = fit_args("LeastAllocated", [("cpu", 1), ("foo", 5), ("pods", 5)])
    assert scores_of("NodeResourcesFit", nodes, [], pod, args) == {"n": 50}


def test_ephemeral_storage_counts_without_request_but_scalars_do_not():
    """A resource the pod does not request: ephemeral-storage still counts (80Gi of 100Gi used:
    20), scalar resources (gpu 3 of 4 used, hugepages 768Mi of 1Gi) are left out."""
    nodes = [knode("n", "1000m", "1Gi", {"ephemeral-storage": "100Gi", "example.com/gpu": "4",
                                         "hugepages-2Mi": "1Gi"})]
    bound = [kpod({"cpu": "0", "memory": "0", "ephemeral-storage": "80Gi",
                   "example.com/gpu": "3", "hugepages-2Mi": "768Mi"}, node="n")]
    pod = kpod({"cpu": "500m", "memory": "0"})
    for name, want in (("ephemeral-storage", (50 + 20) // 2), ("example.com/gpu", 50),
                       ("hugepages-2Mi", 50)):
        args = fit_args("LeastAllocated", [("cpu", 1), (name, 1)])
        assert scores_of("NodeResourcesFit", nodes, bound, pod, args) == {"n": want}, name
    # once the pod requests the scalar it counts: gpu (4 - 3 - 1) / 4 -> 0; (50 + 0) / 2
    pod = kpod({"cpu": "500m", "memory": "0", "example.com/gpu": "1"})
    args = fit_args("LeastAllocated", [("cpu", 1), ("example.com/gpu", 1)])
    assert scores_of("NodeResourcesFit", nodes, bound, pod, args) == {"n": 25}


def test_balanced_uses_plain_requests_not_nonzero_defaults():
    """BalancedAllocation reads Requested, on both sides: neither the bound pod nor the pod,
    asking memory only, adds CPU (the non-zero view would add 100m each)."""
    nodes = [knode("n", "1000m", "2Gi")]
    bound = [kpod({"memory": "512Mi"}, node="n")]
    pod = kpod({"memory": "512Mi"})
    got = scores_of("NodeResourcesBalancedAllocation", nodes, bound, pod)
    assert got == {"n": 75}  # fractions 0 and 0.5 (non-zero view: 0.2 and 0.5 -> 85)


def test_balanced_fractions_are_capped_at_one():
    nodes = [knode("n", "1000m", "2Gi")]
    bound = [kpod({"cpu": "1500m", "memory": "0"}, node="n")]
    pod = kpod({"memory": "1Gi"})
    got = scores_of("NodeResourcesBalancedAllocation", nodes, bound, pod)
    assert got == {"n": 75}  # fractions min(1.5, 1) and 0.5 (uncapped: 50)


def test_balanced_best_effort_without_prescore_scores_zero():
    nodes = [knode("n", "1000m", "2Gi")]
    got = scores_of("NodeResourcesBalancedAllocation", nodes, [], kpod({}), pre_score=False)
    assert got == {"n": 0}
    assert scores_of("NodeResourcesBalancedAllocation", nodes, [], kpod({})) is None


def test_balanced_skips_a_pod_requesting_only_other_resources():
    nodes = [knode("n", "1000m", "2Gi", {"nvidia.com/gpu": "4"})]
    pod = kpod({"nvidia.com/gpu": "1"})
    assert scores_of("NodeResourcesBalancedAllocation", nodes, [], pod) is None
    args = NodeResourcesBalancedAllocationArgs((ResourceSpec("cpu", 1),
                                                ResourceSpec("nvidia.com/gpu", 1)))
    assert scores_of("NodeResourcesBalancedAllocation", nodes, [], pod, args) == {"n": 87}


def test_scores_follow_the_given_nodes_and_bound_pod_changes():
    nodes = [knode(f"n{i}", f"{1000 * (i + 1)}m", "4Gi") for i in range(5)]
    bound = [kpod({"cpu": "500m", "memory": "1Gi"}, node="n3")]
    plugin, snap = plugin_on("NodeResourcesFit", make_cluster(nodes, bound),
                             fit_args("MostAllocated"))
    pod = kpod({"cpu": "500m", "memory": "1Gi"})
    full = run_score(plugin, snap, pod)
    order = [4, 0, 3]
    part = run_score(plugin, snap, pod, nodes=order)
    assert part == {f"n{i}": full[f"n{i}"] for i in order}
    assert list(part) == ["n4", "n0", "n3"]
    snap.remove_pod(snap.pods[bound[0].key])
    after = run_score(plugin, snap, pod)
    assert after["n3"] < full["n3"]
    assert after == ref.fit_scores(nodes, [], pod, "MostAllocated", [("cpu", 1), ("memory", 1)])


def test_image_locality_follows_node_changes():
    img = _images((["gcr.io/big:latest"], 1500))
    nodes = [make_node("a", images=img), make_node("b")]
    pod = _image_pod("gcr.io/big")
    plugin, snap = plugin_on("ImageLocality", make_cluster(nodes))
    first = run_score(plugin, snap, pod)
    # 1500Mi * 1/2 = 750Mi: 100 * (750 - 23) / (1000 - 23) = 74
    assert first == {"a": 74, "b": 0}
    snap.add_node(make_node("c", images=img))         # 2 of 3 nodes: 1000Mi -> 100
    assert run_score(plugin, snap, pod) == {"a": 100, "b": 0, "c": 100}
    snap.update_node(make_node("c"))                  # image gone from c: 500Mi -> 48
    assert run_score(plugin, snap, pod) == {"a": 48, "b": 0, "c": 0}
    snap.update_node(make_node("c", images=img))      # back: 1000Mi -> 100
    assert run_score(plugin, snap, pod) == {"a": 100, "b": 0, "c": 100}
    snap.remove_node("c")                             # a dead node neither holds nor counts
    assert run_score(plugin, snap, pod) == {"a": 74, "b": 0}
    snap.remove_node("b")                             # 1500Mi * 1/1 -> 100
    assert run_score(plugin, snap, pod) == {"a": 100}
    live = [snap.nodes[i] for i in snap.alive_nodes()]
    assert ref.image_locality_scores(live, pod) == {"a": 100}


def test_image_locality_float_order():
    """int64(size * (numNodes / totalNodes)) in float64, in that order: 983302144 bytes on 6 of
    11 nodes gives 536346623 (exactly: 536346624), which lands just below the score boundary:
    49, where exact arithmetic gives 50."""
    size = 983302144
    img = [{"names": ["app:latest"], "sizeBytes": size}]
    nodes = [make_node(f"n{i}", images=img if i < 6 else None) for i in range(11)]
    assert int(float(size) * (6.0 / 11.0)) == size * 6 // 11 - 1
    got = scores_of("ImageLocality", nodes, [], _image_pod("app"))
    assert got == {f"n{i}": 49 if i < 6 else 0 for i in range(11)}
    assert ref.image_locality_scores(nodes, _image_pod("app")) == got


def test_image_locality_name_listed_twice_on_a_node_uses_the_last_size():
    """As kube's NewSnapshot: the node's image map keeps the last listing of a name; the name
    counts once for the node."""
    imgs = _images((["x:latest"], 100), (["x:latest", "x:v2"], 900))
    nodes = [make_node("a", images=imgs)]
    assert scores_of("ImageLocality", nodes, [], _image_pod("x")) == {"a": 89}  # 877/977
    assert ref.image_locality_scores(nodes, _image_pod("x")) == {"a": 89}


def test_scalar_resource_names():
    for name in ("nvidia.com/gpu", "example.com/foo", "hugepages-2Mi", "attachable-volumes-aws",
                 "kubernetes.io/batch", "foo.kubernetes.io/x"):
        assert is_scalar_resource_name(name), name
        assert ref.tracked_as(name) == "scalar"
    for name in ("cpu", "memory", "ephemeral-storage", "pods", "foo", "requests.example.com/x"):
        assert not is_scalar_resource_name(name), name


# ---------------------------------------------------------------- properties vs reference

EXTENDED = ["example.com/gpu", "nvidia.com/gpu", "hugepages-2Mi", "foo"]
SCORING_POOL = ["cpu", "memory", "ephemeral-storage", *EXTENDED, "pods", "absent.io/thing"]
IMAGE_POOL = ["gcr.io/a:latest", "gcr.io/a:v1", "b:latest", "b", "registry:5000/c:latest",
              "registry:5000/c", "d@sha256:abc", "e:1.0", "f:latest"]
POD_IMAGES = ["gcr.io/a", "gcr.io/a:v1", "b", "b:latest", "registry:5000/c", "d@sha256:abc",
              "e:1.0", "e", "f", "missing"]

# Strategies are built once (building them per draw dominates the run time otherwise).
milli = st.one_of(st.just(0), st.integers(1, 8000), st.sampled_from([100, 250, 500, 1000]))
mem = st.one_of(st.just(0), st.integers(1, 2 ** 34), st.sampled_from([MB, 200 * MB, 2 ** 30]))
small = st.integers(0, 6)
container_requests = st.fixed_dictionaries({}, optional={
    "cpu": milli.map(lambda v: f"{v}m"), "memory": mem.map(str),
    "ephemeral-storage": st.integers(0, 2 ** 33).map(str),
    **{name: small.map(str) for name in EXTENDED}})
container = st.tuples(container_requests, st.sampled_from(POD_IMAGES))
init_container = st.tuples(container_requests, st.sampled_from(POD_IMAGES), st.booleans())
pod_level = st.fixed_dictionaries({}, optional={"cpu": milli.map(lambda v: f"{v}m"),
                                                "memory": mem.map(str)})
pod_spec = st.tuples(
    st.lists(container, min_size=1, max_size=3),
    st.one_of(st.just([]), st.lists(init_container, min_size=1, max_size=2)),
    st.one_of(st.none(), st.tuples(milli, mem)),        # overhead
    st.one_of(st.none(), pod_level))                    # pod-level requests


def build_pod(spec, node: str = ""):
    containers, inits, overhead, level = spec
    body: dict = {}
    if inits:
        body["initContainers"] = [
            {"name": f"i{i}", "image": image, "resources": {"requests": r},
             **({"restartPolicy": "Always"} if sidecar else {})}
            for i, (r, image, sidecar) in enumerate(inits)]
    if overhead is not None:
        body["overhead"] = {"cpu": f"{overhead[0]}m", "memory": str(overhead[1])}
    if level is not None:
        body["resources"] = {"requests": level}
    return make_pod(f"p{next(_names)}", node=node,
                    containers=[{"name": f"c{i}", "image": image, "resources": {"requests": r}}
                                for i, (r, image) in enumerate(containers)], **body)


pods = pod_spec.map(build_pod)

# The clusters themselves (tens to hundreds of nodes, a few hundred bound pods) are too much
# data for Hypothesis' buffer: Hypothesis draws their size and a seed, and the content comes from
# random.Random(seed), biased towards the edges (zero allocatable, requests at or above
# capacity, resources a node lacks, containers without requests, init/sidecar containers,
# overhead, pod-level requests).


def _rand_milli(rng: random.Random) -> int:
    r = rng.random()
    if r < 0.1:
        return 0
    if r < 0.4:
        return rng.choice([100, 250, 500, 1000])
    return rng.randint(1, 8000)


def _rand_mem(rng: random.Random) -> int:
    r = rng.random()
    if r < 0.1:
        return 0
    if r < 0.4:
        return rng.choice([MB, 200 * MB, 2 ** 30])
    return rng.randint(1, 2 ** 34)


def _rand_requests(rng: random.Random) -> dict:
    out = {}
    if rng.random() < 0.6:
        out["cpu"] = f"{_rand_milli(rng)}m"
    if rng.random() < 0.6:
        out["memory"] = str(_rand_mem(rng))
    if rng.random() < 0.2:
        out["ephemeral-storage"] = str(rng.randint(0, 2 ** 33))
    for name in EXTENDED:
        if rng.random() < 0.15:
            out[name] = str(rng.randint(0, 6))
    return out


def random_pod(rng: random.Random, node: str = ""):
    containers = [(_rand_requests(rng), rng.choice(POD_IMAGES)) for _ in range(rng.randint(1, 3))]
    inits = [] if rng.random() < 0.75 else [
        (_rand_requests(rng), rng.choice(POD_IMAGES), rng.random() < 0.5)
        for _ in range(rng.randint(1, 2))]
    overhead = None if rng.random() < 0.85 else (_rand_milli(rng), _rand_mem(rng))
    level = None
    if rng.random() < 0.15:
        level = {k: v for k, v in (("cpu", f"{_rand_milli(rng)}m"), ("memory", str(_rand_mem(rng))))
                 if rng.random() < 0.6}
    return build_pod((containers, inits, overhead, level), node)


def random_node(rng: random.Random, name: str, images: bool = False):
    r = rng.random()
    cpu = 0 if r < 0.05 else rng.choice([1000, 4000]) if r < 0.3 else rng.randint(1, 64000)
    r = rng.random()
    memory = 0 if r < 0.05 else 16 * 2 ** 30 if r < 0.3 else rng.randint(1, 2 ** 37)
    extra = {}
    for res in ("ephemeral-storage", *EXTENDED):
        if rng.random() < 0.3:
            extra[res] = str(rng.randint(0, 2 ** 35) if res == "ephemeral-storage"
                             else rng.randint(0, 16))
    imgs = None
    if images:
        imgs = [{"names": rng.sample(IMAGE_POOL, rng.randint(1, 3)),
                 "sizeBytes": rng.choice([0, 23 * MB, 1000 * MB, rng.randint(0, 3000 * MB)])}
                for _ in range(rng.randint(0, 4))]
    return make_node(name, cpu=f"{cpu}m", memory=str(memory), pods=1000, extra=extra,
                     images=imgs)


def build_cluster(args):
    n_nodes, pods_per_node, seed = args
    rng = random.Random(seed)
    nodes = [random_node(rng, f"n{i}") for i in range(n_nodes)]
    bound = [random_pod(rng, node=f"n{rng.randrange(n_nodes)}")
             for _ in range(int(pods_per_node * n_nodes))]
    return nodes, bound


clusters = st.tuples(st.integers(10, 200), st.sampled_from([0, 0.5, 1, 3]),
                     st.integers(0, 2 ** 32)).map(build_cluster)
resources_st = st.lists(st.tuples(st.sampled_from(SCORING_POOL), st.integers(1, 100)),
                        min_size=1, max_size=5, unique_by=lambda t: t[0])
shape_st = st.lists(st.tuples(st.integers(0, 100), st.integers(0, 10)), min_size=1, max_size=5,
                    unique_by=lambda t: t[0]).map(sorted)


@given(clusters, pods, resources_st, shape_st, st.data())
def test_fit_scores_equal_reference(cluster, pod, resources, shape, data):
    nodes, bound = cluster
    # after some bound pods go away, the plugin follows the snapshot
    gone = data.draw(st.sets(st.integers(0, len(bound) - 1))) if bound else set()
    kept = [p for i, p in enumerate(bound) if i not in gone]
    for strategy in ("LeastAllocated", "MostAllocated", "RequestedToCapacityRatio"):
        args = fit_args(strategy, resources,
                        shape if strategy == "RequestedToCapacityRatio" else None)
        plugin, snap = plugin_on("NodeResourcesFit", make_cluster(nodes, bound), args)
        want = ref.fit_scores(nodes, bound, pod, strategy, resources, shape)
        assert run_score(plugin, snap, pod) == want, strategy
        for i in gone:
            snap.remove_pod(snap.pods[bound[i].key])
        want = ref.fit_scores(nodes, kept, pod, strategy, resources, shape)
        assert run_score(plugin, snap, pod) == want, strategy


@given(clusters, pods, st.lists(st.sampled_from(SCORING_POOL), min_size=1, max_size=5,
                                     unique=True), st.booleans())
def test_balanced_allocation_equals_reference(cluster, pod, resources, pre_score):
    nodes, bound = cluster
    args = NodeResourcesBalancedAllocationArgs(tuple(ResourceSpec(r, 1) for r in resources))
    plugin, snap = plugin_on("NodeResourcesBalancedAllocation", make_cluster(nodes, bound), args)
    want = ref.balanced_scores(nodes, bound, pod, resources)
    got = run_score(plugin, snap, pod, pre_score=pre_score)
    if pre_score:
        assert got == want
    else:  # Score without PreScore: a pod PreScore would skip scores 0 everywhere
        assert got == (want if want is not None else {n.metadata.name: 0 for n in nodes})


@given(st.integers(5, 150), st.integers(0, 2 ** 32), pods, st.data())
def test_image_locality_equals_reference(n_nodes, seed, pod, data):
    rng = random.Random(seed)
    nodes = [random_node(rng, f"n{i}", images=True) for i in range(n_nodes)]
    plugin, snap = plugin_on("ImageLocality", make_cluster(nodes))
    assert run_score(plugin, snap, pod) == ref.image_locality_scores(nodes, pod)
    # node changes bump the snapshot generation; the image data follows
    dead = data.draw(st.sets(st.integers(0, n_nodes - 1), max_size=n_nodes - 1))
    for i in dead:
        snap.remove_node(f"n{i}")
    for j in range(data.draw(st.integers(0, 5))):
        snap.add_node(random_node(rng, f"x{j}", images=True))
    live = [snap.nodes[i] for i in snap.alive_nodes()]
    assert run_score(plugin, snap, pod) == ref.image_locality_scores(live, pod)
