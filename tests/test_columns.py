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
def column_cases(draw, resources: int = 2):
    n = draw(st.integers(1, 40))
    alloc = np.array([[draw(quantity) for _ in range(n)] for _ in range(resources)], np.int64)
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


@given(column_cases(resources=2), st.sampled_from([C.LEAST, C.MOST]), st.integers(0, 5),
       st.integers(0, 5), st.data())
def test_fit_and_balanced_in_one_pass_equal_reference(case, strategy, w_fit, w_bal, data):
    """The one-pass kernel, over every node and over a subset in any order."""
    alloc, req, nz, cols, request, nonzero, weights = case
    n = alloc.shape[1]
    ref = least_allocated if strategy == C.LEAST else most_allocated
    bal_nonzero = np.array([False, False])
    want = [w_fit * ref(_pairs(alloc, req, nz, request, nonzero, j), list(weights))
            + w_bal * balanced(_pairs(alloc, req, nz, request, bal_nonzero, j))
            for j in range(n)]
    columns = np.arange(2)
    out = np.full(n, 7, np.int64)
    C.add_resource_scores(cols, np.zeros(0, np.int64), strategy, columns, nonzero, request,
                          weights, w_fit, columns, bal_nonzero, request, w_bal, out)
    assert (out - 7).tolist() == want
    nodes = np.array(data.draw(st.lists(st.integers(0, n - 1), unique=True)), np.int64)
    out = np.zeros(nodes.size, np.int64)
    C.add_resource_scores(cols, nodes, strategy, columns, nonzero, request, weights, w_fit,
                          columns, bal_nonzero, request, w_bal, out)
    assert out.tolist() == [want[j] for j in nodes.tolist()]


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
    lowest = [min((p.priority for p in on.values()), default=np.iinfo(np.int64).max)
              for on in snap.pods_on_node]
    assert snap.lowest_priority.tolist() == lowest


def test_a_quantity_beyond_the_limit_marks_the_columns_inexact():
    snap = NodeSnapshot([_node("small", 4000, 2**30)])
    assert snap.columns_exact
    snap.add_node(_node("huge", 4000, LIMIT))  # 16 TiB of memory: beyond the exact range
    assert not snap.columns_exact
