"""The vectorised resource-score kernels (:mod:`schedbench.scheduler.columns`) against the
plain-Python reference formulas, and the snapshot's float columns against its int64 rows."""

from __future__ import annotations

import numpy as np
from hypothesis import given
from hypothesis import strategies as st
from numba import njit
from reference.resource_scores import balanced, least_allocated, most_allocated

from schedbench.model.objects import Container, Node, NodeStatus, ObjectMeta, Pod, PodSpec
from schedbench.model.objects import ResourceRequirements
from schedbench.scheduler import columns as C
from schedbench.scheduler.snapshot import NodeSnapshot

LIMIT = int(C.EXACT_LIMIT)

# Quantities near the edges matter most: 0, 1, small, and just below the exact limit.
quantity = st.one_of(st.integers(0, 3), st.integers(0, 10_000),
                     st.integers(0, LIMIT - 1), st.integers(LIMIT - 1000, LIMIT - 1))


@st.composite
def column_cases(draw, resources: int = 2, positive: bool = False):
    """Columns of up to 40 nodes (allocatable above 0 everywhere when ``positive``)."""
    n = draw(st.integers(1, 40))
    alloc = np.array([[draw(quantity) for _ in range(n)] for _ in range(resources)], np.int64)
    if positive:
        alloc = np.maximum(alloc, 1)
    req = np.array([[draw(st.integers(0, max(0, 2 * int(a)))) if draw(st.booleans())
                     else draw(quantity) for a in row] for row in alloc], np.int64)
    req = np.minimum(req, LIMIT - 1)
    nz = np.minimum(req + np.array([[draw(st.integers(0, 5)) for _ in range(n)]
                                    for _ in range(resources)], np.int64), LIMIT - 1)
    cols = np.zeros((4, resources, n), np.float64)
    cols[C.ALLOC], cols[C.REQUESTED], cols[C.NONZERO] = alloc, req, nz
    with np.errstate(divide="ignore"):
        cols[C.INV_ALLOC] = np.where(alloc != 0, 1.0 / alloc, 0.0)
    request = np.array([draw(quantity) for _ in range(resources)], np.int64)
    nonzero = np.array([draw(st.booleans()) for _ in range(resources)])
    weights = np.array([draw(st.integers(1, 100)) for _ in range(resources)], np.int64)
    return alloc, req, nz, cols, request, nonzero, weights


def _pairs(alloc, req, nz, request, nonzero, node):
    return [(int(alloc[i, node]), int((nz if nonzero[i] else req)[i, node]) + int(request[i]))
            for i in range(alloc.shape[0])]


@given(st.integers(2, 3).flatmap(lambda r: column_cases(resources=r)),
       st.sampled_from([C.LEAST, C.MOST]))
def test_allocation_scores_equal_reference(case, strategy):
    """Two resources (the one-pass kernel) and three (the per-resource passes)."""
    alloc, req, nz, cols, request, nonzero, weights = case
    n, r = alloc.shape[1], alloc.shape[0]
    got = C.allocation_scores_all(cols, n, strategy, np.arange(r), nonzero, request, weights)
    ref = least_allocated if strategy == C.LEAST else most_allocated
    want = [ref(_pairs(alloc, req, nz, request, nonzero, j), list(weights)) for j in range(n)]
    assert got.tolist() == want


@given(column_cases(resources=2))
def test_balanced_scores_equal_reference(case):
    alloc, req, nz, cols, request, nonzero, _ = case
    n = alloc.shape[1]
    got = C.balanced_scores_all(cols, n, np.arange(2), nonzero, request)
    want = [balanced(_pairs(alloc, req, nz, request, nonzero, j)) for j in range(n)]
    assert got.tolist() == want


_plugin_weights = st.one_of(st.integers(0, 5), st.integers(0, C.WEIGHT_LIMIT - 1))


@given(st.booleans().flatmap(lambda p: column_cases(resources=2, positive=p)),
       st.sampled_from([C.LEAST, C.MOST]), _plugin_weights, _plugin_weights, st.booleans(),
       st.booleans(), st.one_of(st.just(0), st.integers(0, 100 * C.WEIGHT_LIMIT - 1)),
       st.data())
def test_fit_and_balanced_in_one_pass_equal_reference(case, strategy, w_fit, w_bal,
                                                      bal_same_columns, flags_known, base,
                                                      data):
    """The one-pass kernel, over every node and over a subset in any order: its plain loop
    (no node lacks a resource, one pair of columns) and its general loop (zero allocatable
    possible, or the plugins' columns swapped), plus a constant ``base``."""
    alloc, req, nz, cols, request, nonzero, weights = case
    n = alloc.shape[1]
    ref = least_allocated if strategy == C.LEAST else most_allocated
    bal_nonzero = np.array([False, False])
    columns = np.arange(2)
    bal_columns = columns if bal_same_columns else columns[::-1].copy()
    bal_request = request if bal_same_columns else request[::-1].copy()
    # the snapshot's flags: exact, or "some node may lack it" on every column
    zero_alloc = (alloc == 0).any(axis=1).astype(np.int64) if flags_known \
        else np.ones(2, np.int64)
    want = [w_fit * ref(_pairs(alloc, req, nz, request, nonzero, j), list(weights))
            + w_bal * balanced(_pairs(alloc, req, nz, request, bal_nonzero, j))
            for j in range(n)]
    args = (strategy, columns, nonzero, request, weights, w_fit, bal_columns, bal_nonzero,
            bal_request, w_bal, float(base))
    out = np.full(n, 7, np.int64)
    C.resource_scores_into(cols, zero_alloc, np.zeros(0, np.int64), 0, *args, out)
    assert out.tolist() == [base + v for v in want]
    # a span lo..hi-1 (the vectorised loop from an offset)
    lo = data.draw(st.integers(0, n))
    hi = data.draw(st.integers(lo, n))
    out = np.full(hi - lo, 7, np.int64)
    C.resource_scores_into(cols, zero_alloc, np.zeros(0, np.int64), lo, *args, out)
    assert out.tolist() == [base + v for v in want[lo:hi]]
    # a subset in any order (``lo`` is then ignored)
    nodes = np.array(data.draw(st.lists(st.integers(0, n - 1), unique=True)), np.int64)
    out = np.full(nodes.size, 7, np.int64)
    C.resource_scores_into(cols, zero_alloc, nodes, lo, *args, out)
    assert out.tolist() == [base + want[j] for j in nodes.tolist()]


@njit(cache=True, error_model="numpy")
def _quotients(num, den):
    out = np.empty(num.size, np.float64)
    for j in range(num.size):
        out[j] = C._quotient(num[j], den[j], 1.0 / den[j])
    return out


@given(st.integers(0, 2**31 - 1))
def test_markstein_quotient_is_the_rounded_quotient(seed):
    """RN(r / a) from the reciprocal, for integers below the limit (a million pairs)."""
    rng = np.random.default_rng(seed)
    top = 2 ** rng.integers(1, 45, 1_000)
    den = np.maximum(1, (rng.random((1_000, 1_000)) * top[:, None]).astype(np.int64)).ravel()
    num = (rng.random(den.size) * 2.0 * den).astype(np.int64)
    num[::7] = den[::7] * rng.integers(0, 3, num[::7].size)  # exact quotients too
    got = _quotients(num.astype(np.float64), den.astype(np.float64))
    assert np.array_equal(got, num.astype(np.float64) / den.astype(np.float64))


def _node(name: str, cpu: int, memory: int) -> Node:
    return Node(metadata=ObjectMeta(name=name),
                status=NodeStatus(allocatable={"cpu": cpu, "memory": memory, "pods": 110}))


def _pod(name: str, cpu: int, memory: int, priority: int = 0) -> Pod:
    res = ResourceRequirements(requests={k: v for k, v in (("cpu", cpu), ("memory", memory))
                                         if v})
    return Pod(metadata=ObjectMeta(name=name, namespace="default"),
               spec=PodSpec(containers=[Container(name="c", image="x", resources=res)],
                            priority=priority))


@given(st.lists(st.tuples(st.integers(0, 64_000), st.integers(0, 2**40)), min_size=1,
                max_size=12),
       st.lists(st.tuples(st.integers(0, 4_000), st.integers(0, 2**34), st.integers(0, 50),
                          st.booleans(), st.integers(-3, 3)), max_size=40))
def test_snapshot_columns_mirror_the_rows(nodes, pods):
    """After any sequence of binds and removals the float columns equal the int64 rows, and
    each node's lowest priority is the minimum over its pods."""
    snap = NodeSnapshot([_node(f"n{i}", c, m) for i, (c, m) in enumerate(nodes)])
    bound = []
    for k, (cpu, mem, where, remove, priority) in enumerate(pods):
        if remove and bound:
            snap.remove_pod(bound.pop(where % len(bound)))
            continue
        info = snap.pod_info(_pod(f"p{k}", cpu, mem, priority))
        snap.add_pod(info, where % len(nodes))
        bound.append(info)
    n, r = snap.num_nodes, snap.num_resources
    cols = snap.columns
    assert np.array_equal(cols[C.ALLOC, :r, :n], snap.allocatable.T)
    assert np.array_equal(cols[C.REQUESTED, :r, :n], snap.requested.T)
    assert np.array_equal(cols[C.NONZERO, :r, :n], snap.nonzero_requested.T)
    alloc = snap.allocatable.T.astype(np.float64)
    with np.errstate(divide="ignore"):
        inv = np.where(alloc != 0, 1.0 / alloc, 0.0)
    assert np.array_equal(cols[C.INV_ALLOC, :r, :n], inv)
    assert snap.columns_exact
    seen = snap.zero_allocatable_seen
    assert all(seen[k] for k in range(r) if (snap.allocatable[:, k] == 0).any())
    # per CPU and memory, the bound pods whose non-zero request is not their request; none:
    # the two columns are equal (the kernels then read one)
    differs = [sum(1 for p in bound if p.nonzero_vector[k] != p.request_vector[k])
               for k in range(2)]
    assert snap.nonzero_differs.tolist() == differs
    for k in range(2):
        if differs[k] == 0:
            assert np.array_equal(snap.requested[:, k], snap.nonzero_requested[:, k])
    lowest = [min((p.priority for p in on.values()), default=np.iinfo(np.int64).max)
              for on in snap.pods_on_node]
    assert snap.lowest_priority.tolist() == lowest


def test_a_quantity_beyond_the_limit_marks_the_columns_inexact():
    snap = NodeSnapshot([_node("small", 4000, 2**30)])
    assert snap.columns_exact
    snap.add_node(_node("huge", 4000, LIMIT))  # 16 TiB of memory: beyond the exact range
    assert not snap.columns_exact


def test_zero_allocatable_is_flagged_per_column():
    """A column some node lacks is flagged (so the kernels keep kube's missing-resource
    cases there): a node added without CPU, a node updated to none, and an extended resource
    that appears later (0 on the nodes before it)."""
    snap = NodeSnapshot([_node("a", 4000, 2**30), _node("b", 2000, 2**30)])
    assert snap.zero_allocatable_seen.tolist() == [0, 0]
    snap.update_node(_node("b", 0, 2**30))
    assert snap.zero_allocatable_seen.tolist() == [1, 0]
    gpu = Node(metadata=ObjectMeta(name="g"),
               status=NodeStatus(allocatable={"cpu": 8000, "memory": 2**34, "pods": 110,
                                              "example.com/fpga": 2}))
    snap.add_node(gpu)
    fpga = snap.resources.ids["example.com/fpga"]
    assert snap.zero_allocatable_seen[fpga] == 1
    assert snap.zero_allocatable_seen[1] == 0
