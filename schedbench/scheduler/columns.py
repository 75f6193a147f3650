"""Resource scores over every node at once, vectorised and without division.

The snapshot keeps, beside its int64 rows, float64 column copies (``NodeSnapshot.columns``:
``[ALLOC | REQUESTED | NONZERO | INV_ALLOC, resource, node]``, contiguous over nodes, with
``INV_ALLOC = 1 / allocatable``). Every quantity in them is an integer below
:data:`EXACT_LIMIT` (the snapshot says when one is not: ``NodeSnapshot.columns_exact``), so
float arithmetic on them is exact, and the kernels here compute kube-scheduler's integer
results bit for bit while the loops compile to SIMD code:

- LeastAllocated / MostAllocated (``noderesources/least_allocated.go``,
  ``most_allocated.go``): ``x // a`` per resource for integers ``0 <= x <= 100 a``, then
  ``sum(score * weight) // sum(weight)`` over the resources with allocatable > 0, each as
  ``floor((x + 1/2) * RN(1/a))`` (:func:`_floor_quotient`): ``(x + 1/2) / a`` lies at least
  ``1 / (2a)`` away from every integer, and the product's error is below
  ``101 * 2**-52 < 1 / (2a)`` for ``a < 2**44``;
- BalancedAllocation (``balanced_allocation.go``, two resources): each fraction
  ``requested / allocatable`` must be the correctly rounded IEEE quotient Go computes; it is
  obtained from the reciprocal with Markstein's correction (``q = r * y``;
  ``e = fma(-q, a, r)``; ``q' = fma(e, y, q)`` is ``RN(r / a)`` when ``y = RN(1 / a)``:
  P. Markstein, IBM J. Res. Dev. 34(1), 1990; Muller et al., *Handbook of Floating-Point
  Arithmetic*, 2nd ed., Theorem 4.10).

Division is what bounds a plain loop (one ``vdivpd`` lane costs about as much as the rest of
a node's arithmetic); these kernels do none per node. ``tests/test_columns.py`` checks every
kernel against the general integer kernels of :mod:`.resource_scoring` on random clusters.
"""

from __future__ import annotations

import numpy as np
from numba import njit, types
from numba.extending import intrinsic

#: Quantities below this (2**44: 16 TiB in bytes) make every float step here exact (see the
#: module docstring); a snapshot with a larger one uses the general integer kernels.
EXACT_LIMIT = float(1 << 44)

ALLOC, REQUESTED, NONZERO, INV_ALLOC = 0, 1, 2, 3

#: NodeResourcesFit strategies these kernels compute (``resource_scoring`` numbering).
LEAST, MOST = 0, 1


@intrinsic
def _fma(typingctx, a, b, c):
    """``a * b + c`` with one rounding (llvm.fma)."""
    sig = types.float64(types.float64, types.float64, types.float64)

    def codegen(context, builder, signature, args):
        return builder.fma(*args)

    return sig, codegen


@intrinsic
def _prefer_wide_vectors(typingctx):
    """Let LLVM vectorise the calling function's loops at the widest width the CPU has
    (its x86 default prefers 256 bits even on AVX-512 machines)."""
    sig = types.none()

    def codegen(context, builder, signature, args):
        set.add(builder.function.attributes, '"prefer-vector-width"="512"')
        return context.get_dummy_value()

    return sig, codegen


@njit(cache=True, error_model="numpy", inline="always")
def _quotient(r, a, y):
    """``RN(r / a)`` from ``y = RN(1 / a)`` (Markstein's correction; see module docstring)."""
    q = r * y
    e = _fma(-q, a, r)
    return _fma(e, y, q)


@njit(cache=True, error_model="numpy", inline="always")
def _floor_quotient(x, y):
    """``x // a`` for integers ``0 <= x <= 101 * a``, ``0 < a < EXACT_LIMIT``, from
    ``y = RN(1 / a)`` (see the module docstring for why it is exact)."""
    return np.floor((x + 0.5) * y)


@njit(cache=True, error_model="numpy")
def _allocation_pass(strategy, alloc, inv, req, q, w, score, wsum, n):
    """One resource of LeastAllocated (``(a - r) * 100 // a``, 0 when over-requested) or
    MostAllocated (``min(r, a) * 100 // a``), weighted into ``score`` and ``wsum``."""
    for j in range(n):
        a = alloc[j]
        s = _resource_score(strategy, a, req[j] + q, inv[j])
        has = a != 0.0
        score[j] += s * w if has else 0.0
        wsum[j] += w if has else 0.0


@njit(cache=True, error_model="numpy", inline="always")
def _resource_score(strategy, a, r, y):
    """LeastAllocated or MostAllocated of one resource: ``x // a`` via :func:`_floor_quotient`."""
    if strategy == LEAST:
        x = (a - r) * 100.0 if r <= a else 0.0
    else:
        x = (r if r <= a else a) * 100.0
    return _floor_quotient(x, y)


@njit(cache=True, error_model="numpy", inline="always")
def _pair_columns(cols, columns, nonzero, lo=0):
    """Allocatable, 1/allocatable and requested (or non-zero requested) of two resources,
    from node ``lo`` on (a slice: the loops over it keep to plain indices, which vectorise)."""
    return (cols[ALLOC, columns[0], lo:], cols[ALLOC, columns[1], lo:],
            cols[INV_ALLOC, columns[0], lo:], cols[INV_ALLOC, columns[1], lo:],
            cols[NONZERO if nonzero[0] else REQUESTED, columns[0], lo:],
            cols[NONZERO if nonzero[1] else REQUESTED, columns[1], lo:])


@njit(cache=True, error_model="numpy", inline="always")
def _weights(weights):
    """Two resource weights and the reciprocals of the weight sums a node can have."""
    w0 = np.float64(weights[0])
    w1 = np.float64(weights[1])
    return (w0, w1, 1.0 / w0 if w0 > 0.0 else 0.0, 1.0 / w1 if w1 > 0.0 else 0.0,
            1.0 / (w0 + w1) if w0 + w1 > 0.0 else 0.0)


@njit(cache=True, error_model="numpy", inline="always")
def _fit_node(strategy, a0, a1, r0, r1, y0, y1, w):
    """NodeResourcesFit of one node over two resources: ``sum(score * weight) //
    sum(weight)`` over the resources with allocatable > 0 (``w`` from :func:`_weights`), as
    an integer-valued float."""
    w0, w1, y_w0, y_w1, y_w01 = w
    s0 = _resource_score(strategy, a0, r0, y0)
    s1 = _resource_score(strategy, a1, r1, y1)
    h0 = a0 != 0.0
    h1 = a1 != 0.0
    num = (s0 * w0 if h0 else 0.0) + (s1 * w1 if h1 else 0.0)
    yw = (y_w01 if h1 else y_w0) if h0 else (y_w1 if h1 else 0.0)
    return _floor_quotient(num, yw)


@njit(cache=True, error_model="numpy", inline="always")
def _balanced_node(a0, a1, r0, r1, y0, y1):
    """BalancedAllocation of one node over two resources (see balanced_scores_all), as an
    integer-valued float (Go's ``int64`` truncation is ``floor`` here: the value is
    positive; halving is exact, so ``* 0.5`` is Go's ``/ 2``)."""
    f0 = _quotient(r0, a0, y0)
    f1 = _quotient(r1, a1, y1)
    f0 = f0 if f0 <= 1.0 else 1.0
    f1 = f1 if f1 <= 1.0 else 1.0
    std = abs((f0 - f1) * 0.5)
    return np.floor((1.0 - std) * 100.0) if (a0 != 0.0 and a1 != 0.0) else 100.0


@njit(cache=True, error_model="numpy")
def _allocation_scores_pair(cols, n, strategy, columns, nonzero, request, weights):
    """:func:`allocation_scores_all` for two resources (CPU and memory, the usual case) in
    one pass."""
    a0c, a1c, y0c, y1c, r0c, r1c = _pair_columns(cols, columns, nonzero)
    q0 = np.float64(request[0])
    q1 = np.float64(request[1])
    w = _weights(weights)
    out = np.empty(n, np.int64)
    if strategy == LEAST:
        for j in range(n):
            out[j] = np.int64(_fit_node(LEAST, a0c[j], a1c[j], r0c[j] + q0, r1c[j] + q1,
                                        y0c[j], y1c[j], w))
    else:
        for j in range(n):
            out[j] = np.int64(_fit_node(MOST, a0c[j], a1c[j], r0c[j] + q0, r1c[j] + q1,
                                        y0c[j], y1c[j], w))
    return out


@njit(cache=True, error_model="numpy")
def allocation_scores_all(cols, n, strategy, columns, nonzero, request, weights):
    """NodeResourcesFit's LeastAllocated (0) or MostAllocated (1) score of nodes ``0..n-1``
    for a pod requesting ``request[i]`` of resource column ``columns[i]`` (``nonzero[i]``:
    scored against the non-zero requested view) with ``weights[i]``. Returns int64[n]."""
    if columns.size == 2 and columns[0] >= 0 and columns[1] >= 0:
        return _allocation_scores_pair(cols, n, strategy, columns, nonzero, request, weights)
    score = np.zeros(n, np.float64)
    wsum = np.zeros(n, np.float64)
    for i in range(columns.size):
        c = columns[i]
        if c < 0:
            continue
        alloc = cols[ALLOC, c]
        inv = cols[INV_ALLOC, c]
        req = cols[NONZERO if nonzero[i] else REQUESTED, c]
        q = np.float64(request[i])
        w = np.float64(weights[i])
        _allocation_pass(strategy, alloc, inv, req, q, w, score, wsum, n)
    total_w = 0.0
    for i in range(columns.size):
        if columns[i] >= 0:
            total_w += np.float64(weights[i])
    inv_w = 1.0 / total_w if total_w > 0.0 else 0.0
    out = np.empty(n, np.int64)
    uneven = 0
    for j in range(n):
        # sum(score * weight) // sum(weight); exact with the common divisor total_w
        s = _floor_quotient(score[j], inv_w)
        out[j] = np.int64(s)
        uneven += 1 if wsum[j] != total_w else 0
    if uneven:  # nodes lacking some resource: their own weight sum
        for j in range(n):
            ws = wsum[j]
            if ws != total_w:
                out[j] = np.int64(np.floor(score[j] / ws)) if ws > 0.0 else 0
    return out


@njit(cache=True, error_model="numpy")
def balanced_scores_all(cols, n, columns, nonzero, request):
    """NodeResourcesBalancedAllocation's score over two resources of nodes ``0..n-1``:
    ``int((1 - |f0 - f1| / 2) * 100)`` with ``f = min(requested / allocatable, 1)``, 100 when
    an allocatable is zero (kube skips the resource, leaving one fraction: std 0)."""
    a0c, a1c, y0c, y1c, r0c, r1c = _pair_columns(cols, columns, nonzero)
    q0 = np.float64(request[0])
    q1 = np.float64(request[1])
    out = np.empty(n, np.int64)
    for j in range(n):
        out[j] = np.int64(_balanced_node(a0c[j], a1c[j], r0c[j] + q0, r1c[j] + q1, y0c[j],
                                         y1c[j]))
    return out


#: Plugin weights below this keep ``w_fit * fit + w_bal * balanced`` exact in float64
#: (every score is at most 100); :func:`resource_scores_into` requires them.
WEIGHT_LIMIT = 1 << 40


@njit(cache=True, error_model="numpy")
def resource_scores_into(cols, zero_alloc, nodes, lo, strategy, fit_columns, fit_nonzero,
                         fit_request, fit_weights, w_fit, bal_columns, bal_nonzero, bal_request,
                         w_bal, base, out):
    """``out[i] = base + w_fit * fit + w_bal * balanced`` of node ``nodes[i]`` (of node
    ``lo + i`` when ``nodes`` is empty: the nodes ``lo..lo+out.size-1``, the vectorised case)
    in one pass:
    NodeResourcesFit (LeastAllocated or MostAllocated over two resources) and
    BalancedAllocation over two resources, as :func:`allocation_scores_all` and
    :func:`balanced_scores_all` compute them. ``0 <= w_fit, w_bal < WEIGHT_LIMIT`` and
    ``base`` is an integer in ``[0, 100 * WEIGHT_LIMIT)``.
    ``zero_alloc[c]`` is 0 when no node has allocatable 0 in column ``c``: when that holds for
    both columns and both plugins score the same columns, a plain loop without kube's
    missing-resource cases runs (about a third fewer instructions a node)."""
    _prefer_wide_vectors()
    c0 = fit_columns[0]
    c1 = fit_columns[1]
    plain = c0 == bal_columns[0] and c1 == bal_columns[1] and zero_alloc[c0] == 0 \
        and zero_alloc[c1] == 0
    if plain and strategy == LEAST:
        _fit_and_balanced_plain(cols, nodes, lo, LEAST, fit_columns, fit_nonzero, fit_request,
                                fit_weights, w_fit, bal_nonzero, bal_request, w_bal, base, out)
    elif plain:
        _fit_and_balanced_plain(cols, nodes, lo, MOST, fit_columns, fit_nonzero, fit_request,
                                fit_weights, w_fit, bal_nonzero, bal_request, w_bal, base, out)
    elif strategy == LEAST:
        _fit_and_balanced(cols, nodes, lo, LEAST, fit_columns, fit_nonzero, fit_request,
                          fit_weights, w_fit, bal_columns, bal_nonzero, bal_request, w_bal, base,
                          out)
    else:
        _fit_and_balanced(cols, nodes, lo, MOST, fit_columns, fit_nonzero, fit_request,
                          fit_weights, w_fit, bal_columns, bal_nonzero, bal_request, w_bal, base,
                          out)


@njit(cache=True, error_model="numpy", inline="always")
def _fit_and_balanced(cols, nodes, lo, strategy, fit_columns, fit_nonzero, fit_request,
                      fit_weights, w_fit, bal_columns, bal_nonzero, bal_request, w_bal, base,
                      out):
    lo = lo if nodes.size == 0 else 0
    a0c, a1c, y0c, y1c, r0c, r1c = _pair_columns(cols, fit_columns, fit_nonzero, lo)
    b0c, b1c, z0c, z1c, t0c, t1c = _pair_columns(cols, bal_columns, bal_nonzero, lo)
    q0 = np.float64(fit_request[0])
    q1 = np.float64(fit_request[1])
    p0 = np.float64(bal_request[0])
    p1 = np.float64(bal_request[1])
    w = _weights(fit_weights)
    # weighted sums of integer-valued floats below 2**53 are exact: one conversion a node
    wf = np.float64(w_fit)
    wb = np.float64(w_bal)
    if nodes.size == 0:
        for j in range(out.size):
            out[j] = np.int64(
                base + wf * _fit_node(strategy, a0c[j], a1c[j], r0c[j] + q0, r1c[j] + q1,
                                      y0c[j], y1c[j], w)
                + wb * _balanced_node(b0c[j], b1c[j], t0c[j] + p0, t1c[j] + p1, z0c[j],
                                      z1c[j]))
    else:
        for i in range(nodes.size):
            j = nodes[i]
            out[i] = np.int64(
                base + wf * _fit_node(strategy, a0c[j], a1c[j], r0c[j] + q0, r1c[j] + q1,
                                      y0c[j], y1c[j], w)
                + wb * _balanced_node(b0c[j], b1c[j], t0c[j] + p0, t1c[j] + p1, z0c[j],
                                      z1c[j]))


@njit(cache=True, error_model="numpy", inline="always")
def _plain_score(strategy, a, r, y):
    """:func:`_resource_score` with ``max``/``min`` instead of a compare and select
    (``a - r < 0`` exactly when ``r > a``: the values are exact integers)."""
    if strategy == LEAST:
        x = max(a - r, 0.0) * 100.0
    else:
        x = min(r, a) * 100.0
    return _floor_quotient(x, y)


@njit(cache=True, error_model="numpy", inline="always")
def _fit_and_balanced_plain(cols, nodes, lo, strategy, columns, fit_nonzero, fit_request,
                            fit_weights, w_fit, bal_nonzero, bal_request, w_bal, base, out):
    """:func:`_fit_and_balanced` when every node has both resources and both plugins score
    the same two columns: ``sum(weight)`` is the same on every node and no branch is left."""
    lo = lo if nodes.size == 0 else 0
    a0c, a1c, y0c, y1c, r0c, r1c = _pair_columns(cols, columns, fit_nonzero, lo)
    t0c = cols[NONZERO if bal_nonzero[0] else REQUESTED, columns[0], lo:]
    t1c = cols[NONZERO if bal_nonzero[1] else REQUESTED, columns[1], lo:]
    q0 = np.float64(fit_request[0])
    q1 = np.float64(fit_request[1])
    p0 = np.float64(bal_request[0])
    p1 = np.float64(bal_request[1])
    w0, w1, _, _, y_w01 = _weights(fit_weights)
    wf = np.float64(w_fit)
    wb = np.float64(w_bal)
    if nodes.size == 0:
        for j in range(out.size):
            out[j] = np.int64(_plain_node(strategy, a0c[j], a1c[j], y0c[j], y1c[j],
                                          r0c[j] + q0, r1c[j] + q1, t0c[j] + p0, t1c[j] + p1,
                                          w0, w1, y_w01, wf, wb, base))
    else:
        for i in range(nodes.size):
            j = nodes[i]
            out[i] = np.int64(_plain_node(strategy, a0c[j], a1c[j], y0c[j], y1c[j],
                                          r0c[j] + q0, r1c[j] + q1, t0c[j] + p0, t1c[j] + p1,
                                          w0, w1, y_w01, wf, wb, base))


@njit(cache=True, error_model="numpy", inline="always")
def _plain_node(strategy, a0, a1, y0, y1, r0, r1, t0, t1, w0, w1, y_w01, wf, wb, base):
    """One node of :func:`_fit_and_balanced_plain` (``a0, a1 > 0``)."""
    s0 = _plain_score(strategy, a0, r0, y0)
    s1 = _plain_score(strategy, a1, r1, y1)
    fit = _floor_quotient(s0 * w0 + s1 * w1, y_w01)
    f0 = min(_quotient(t0, a0, y0), 1.0)
    f1 = min(_quotient(t1, a1, y1), 1.0)
    balanced = np.floor((1.0 - abs((f0 - f1) * 0.5)) * 100.0)
    return base + (wf * fit + wb * balanced)
