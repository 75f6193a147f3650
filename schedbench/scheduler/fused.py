"""The fused fast path: one ``@njit`` call per scheduling cycle for the common case.

kube's cycle, run plugin by plugin (:mod:`.framework`), costs ~25 Python-level calls per pod
(PreFilter, Filter, PreScore, Score, NormalizeScore of each plugin), each allocating arrays.
When every plugin a profile enables is one this module knows and, for the pod at hand, the
plugins whose work is not fused here would skip (no host ports, no topology spread
constraints - system defaults included - that resolve to something, no inter-pod affinity of
the pod and no bound pod with required anti-affinity or scored terms, no nominated pods, no
node-name pinning), the whole of findNodesThatFitPod + prioritizeNodes + the top of selectHost
is one kernel call (:func:`_fused_cycle`) over the snapshot's arrays:

- Filter: the nodes from the rotating start index in NodeTree order, until
  ``numFeasibleNodesToFind`` feasible nodes are found (a node is feasible when every enabled
  filter passes, GpuShare's single-GPU check included; which plugin rejected a node only
  matters for a failure, and failures go through the per-plugin path, which explains them);
- Score: every enabled score plugin over the feasible nodes, its NormalizeScore, the range
  check, weights; the tied top nodes in evaluation order, from which the scheduler draws with
  its seeded generator exactly as :meth:`Scheduler.select_host` does. (A score plugin whose
  normalized score is the same on every node - TaintToleration when no node has a
  PreferNoSchedule taint - is left out: it moves every total by the same amount.)

The per-pod inputs (request vectors and checked columns, compiled tolerations, node selector
and preferred terms, scorer columns, image ids) are the plugins' own, packed once per pod into
one int64 array (and one bool array of label masks) cached in ``PodInfo.cache``, refreshed when
the snapshot's nodes or resource columns change.

Anything else - an unknown plugin (e.g. a plugin added later), a pod that needs PodTopologySpread,
InterPodAffinity or NodePorts work, a failure (no feasible node: the diagnosis with reasons is
built by the per-plugin path), an out-of-range score (the per-plugin path raises) - falls back
to the per-plugin path, which remains the definition. ``explain`` never uses this path.
The results are bit-identical; ``tests/test_fused.py`` compares whole runs of both paths.
"""

from __future__ import annotations

import os

import numpy as np
from numba import njit, types
from numba.experimental import structref

from ..model.objects import pod_level_requests
from .framework import MAX_NODE_SCORE
from .nodeselector import _canon_term, _term_matches, pod_required_terms, refresh
from .plugins.dot_product import _alignment
from .plugins.gpu_share import gpu_filter_code, model_mask
from .plugins.image_locality import _image_scores, normalized_image_name
from .plugins.node_affinity import _required, pinned_node_names
from .plugins.node_ports import pod_host_ports
from .plugins.node_unschedulable import tolerates_unschedulable
from .podaffinity import pod_terms
from .columns import (EXACT_LIMIT, WEIGHT_LIMIT, _prefer_wide_vectors, allocation_scores_all,
                      balanced_scores_all, resource_scores_into)
from .resource_scoring import _allocation_scores, pod_score_input
from .snapshot import COLS_NONZERO_DIFFERS, COLS_ZERO_ALLOC
from .spreading import (HOSTNAME_LABEL, _controller, _service_index, default_selector,
                        go_log_jit, go_round, selector_counts)
from .taints import _count_untolerated, _tolerated

#: Module switch (tests flip it; ``Scheduler(fused=False)`` disables it per scheduler;
#: the environment variable ``SCHEDBENCH_FUSED=0`` turns it off for a whole process).
ENABLED = os.environ.get("SCHEDBENCH_FUSED", "1") != "0"

# ---------------------------------------------------------------- header of the pod pack
H_UNSCHED = 0        # 1: reject nodes with spec.unschedulable
H_NODENAME = 1       # 1: only node H_NODENAME_TARGET passes
H_NODENAME_TARGET = 2
H_TAINT = 3          # 1: NoSchedule/NoExecute taints must be tolerated
H_AFF_GROUPS = 4     # number of required selector groups (each an OR of terms), ANDed
H_FIT = 5            # 1: NodeResourcesFit filter
H_W_TAINT = 6        # score weights; -1: plugin absent (or its score is zero for this pod)
H_W_AFF = 7
H_W_FIT = 8
H_W_BAL = 9
H_W_IMG = 10
H_W_FIRST = 11
H_W_DOT = 12
H_OFF_TOL = 13
H_OFF_SEL = 14
H_OFF_FIT = 15
H_OFF_SFIT = 16
H_OFF_SBAL = 17
H_OFF_IMG = 18
H_IMG_TOTAL = 19     # live nodes (ImageLocality's totalNodes)
H_DOT_CPU = 20
H_DOT_MEM = 21
H_GPU = 22           # GpuShare: GPUs asked for (0: PreFilter skips)
H_GPU_MILLI = 23     # milli-GPU per GPU
H_GPU_ANY = 24       # 1: any GPU model
H_OFF_GPU = 25       # [number of models, allowed (0/1) per model id]
H_PNS = 26           # 1: some node has a PreferNoSchedule taint (else TaintToleration's
                     # normalized score is 100 on every node: no node ranks differently)
H_W_PTS = 27         # PodTopologySpread's weight when its system default constraints are
                     # fused (they score when the pod's spread counts are passed in)
H_OFF_PTS = 28       # [constraints, then per constraint: label key id (-1: no node has
                     # it), id of the value "" (or the vocabulary size), vocabulary size,
                     # 1 for the hostname key, maxSkew]
HEADER = 29

_EXACT_LIMIT_INT = int(EXACT_LIMIT)

#: status codes of the kernel
OK, OUT_OF_RANGE = 0, 1

#: Positions the cycle's filter takes at a time (see :func:`_fused_cycle`).
FILTER_BLOCK = 64


# ------------------------------------------------------------------------------- kernel


@njit(cache=True)
def _default_normalize(scores, reverse):
    """helper.DefaultNormalizeScore in place (as framework.default_normalize_score)."""
    if scores.size == 0:
        return
    max_count = 0
    for i in range(scores.size):
        if scores[i] > max_count:
            max_count = scores[i]
    if max_count == 0:
        if reverse:
            for i in range(scores.size):
                scores[i] = MAX_NODE_SCORE
        return
    for i in range(scores.size):
        s = scores[i] * MAX_NODE_SCORE // max_count
        if reverse:
            s = MAX_NODE_SCORE - s
        scores[i] = s


@njit(cache=True)
def _add(total, scores, weight):
    """``total += scores * weight`` after the 0..MaxNodeScore check; False if out of range."""
    for i in range(scores.size):
        if scores[i] < 0 or scores[i] > MAX_NODE_SCORE:
            return False
    for i in range(scores.size):
        total[i] += scores[i] * weight
    return True


@njit(cache=True)
def _scorer(P, o, nodes, allocatable, requested, nonzero_requested):
    """A resource-allocation scorer packed at ``P[o:]`` (see :func:`_pack_scorer`)."""
    strategy = P[o]
    r = P[o + 1]
    a = o + 2
    columns = P[a:a + r]
    nonzero = P[a + r:a + 2 * r] != 0
    request = P[a + 2 * r:a + 3 * r]
    weights = P[a + 3 * r:a + 4 * r]
    ns = P[a + 4 * r]
    b = a + 4 * r + 1
    return _allocation_scores(nodes, allocatable, requested, nonzero_requested, columns,
                              nonzero, request, weights, strategy, P[b:b + ns],
                              P[b + ns:b + 2 * ns])


#: The filter checks of :func:`_fused_failures` (bits of its result), by plugin.
FAIL_BITS = {"NodeUnschedulable": 1, "NodeName": 2, "TaintToleration": 4, "NodeAffinity": 8,
             "NodeResourcesFit": 16, "GpuShare": 32}
#: Set beside the NodeResourcesFit / GpuShare bit when that rejection is
#: UnschedulableAndUnresolvable (a request beyond the node's allocatable; no such GPU).
FIT_UNRESOLVABLE, GPU_UNRESOLVABLE = 64, 128


@njit(cache=True, inline="always")
def _filter_inputs(P):
    """The pod's filter inputs packed in ``P`` (see :meth:`FusedPath._pack`): tolerations
    (key, exists, value, effect), required node selector terms (count, term_ptr, term_group,
    req_key, req_absent, mask_ptr), the NodeResourcesFit columns (count, columns, requests)
    and the allowed GPU models (a 0/1 mask by model id)."""
    o = P[H_OFF_TOL]
    ta = P[o]
    a = o + 2
    tol_key = P[a:a + ta]
    tol_exists = P[a + ta:a + 2 * ta] != 0
    tol_value = P[a + 2 * ta:a + 3 * ta]
    tol_effect = P[a + 3 * ta:a + 4 * ta]
    o = P[H_OFF_SEL]
    n_terms = P[o]
    n_reqs = P[o + 1]
    a = o + 2
    term_ptr = P[a:a + n_terms + 1]
    a += n_terms + 1
    term_group = P[a:a + n_terms]
    a += 2 * n_terms  # (the terms' weights: Score)
    req_key = P[a:a + n_reqs]
    a += n_reqs
    req_absent = P[a:a + n_reqs] != 0
    a += n_reqs
    mask_ptr = P[a:a + n_reqs + 1]
    o = P[H_OFF_FIT]
    n_cols = P[o]
    cols = P[o + 1:o + 1 + n_cols]
    request = P[o + 1 + n_cols:o + 1 + n_cols + n_cols]
    o = P[H_OFF_GPU]
    n_models = P[o] if P[H_GPU] > 0 else 0
    models = P[o + 1:o + 1 + n_models]
    return (tol_key, tol_exists, tol_value, tol_effect, n_terms, term_ptr, term_group, req_key,
            req_absent, mask_ptr, n_cols, cols, request, models)


@njit(cache=True)
def _fused_failures(order, start, P, mask, c):
    """Every filter check each node fails (FAIL_BITS, with FIT_UNRESOLVABLE /
    GPU_UNRESOLVABLE), the nodes in ``order`` from ``start``: what a cycle that found no
    feasible node examined. The checks are :func:`_fused_cycle`'s, all of them rather than up
    to the first failure (kept in step by ``tests/test_fused.py``, which compares the
    resulting diagnosis with the per-plugin path's)."""
    (tol_key, tol_exists, tol_value, tol_effect, n_terms, term_ptr, term_group, req_key,
     req_absent, mask_ptr, n_cols, cols, request, models) = _filter_inputs(P)
    gpu_n = P[H_GPU]
    n_groups = P[H_AFF_GROUPS]
    allocatable, requested, taint_ptr = c.allocatable, c.requested, c.taint_ptr
    n = order.size
    out = np.zeros(n, np.int64)
    for i in range(n):
        pos = start + i
        if pos >= n:
            pos -= n
        node = order[pos]
        f = 0
        if P[H_UNSCHED] != 0 and c.unschedulable[node]:
            f |= 1
        if P[H_NODENAME] != 0 and node != P[H_NODENAME_TARGET]:
            f |= 2
        if P[H_TAINT] != 0:
            for t in range(taint_ptr[node], taint_ptr[node + 1]):
                e = c.taint_effect[t]
                if e != 1 and not _tolerated(c.taint_key[t], c.taint_value[t], e, tol_key,
                                             tol_exists, tol_value, tol_effect):
                    f |= 4
                    break
        for g in range(n_groups):
            matched = False
            for t in range(n_terms):
                if term_group[t] == g and _term_matches(node, t, c.labels, term_ptr, req_key,
                                                        req_absent, mask_ptr, mask):
                    matched = True
                    break
            if not matched:
                f |= 8
                break
        if P[H_FIT] != 0:
            bad = c.pod_count[node] + 1 > c.allowed_pods[node]
            for k in range(n_cols):
                r = cols[k]
                q = request[k]
                if q > allocatable[node, r] - requested[node, r]:
                    bad = True
                    if q > allocatable[node, r]:  # (kube's _fit_codes: unresolvable)
                        f |= FIT_UNRESOLVABLE
                        break
            if bad:
                f |= 16
        if gpu_n > 0:  # GpuShare
            code = gpu_filter_code(node, c.gpu_free, c.gpu_count, c.gpu_model, gpu_n,
                                   P[H_GPU_MILLI], models, P[H_GPU_ANY] != 0)
            if code != 0:
                f |= 32 | (GPU_UNRESOLVABLE if code == 3 else 0)
        out[i] = f
    return out


@njit(cache=True)
def _match_groups_block(passed, m, labels, n_groups, n_terms, term_ptr, term_group, req_key,
                        req_absent, mask_ptr, mask, group_ok, term_ok):
    """``passed[k] &=`` node ``k`` of a block (``labels``: its rows) satisfies every required
    selector group (some term of the group matches: every requirement of the term does),
    as :func:`.nodeselector._term_matches` decides for one node."""
    for g in range(n_groups):
        for k in range(m):
            group_ok[k] = False
        for t in range(n_terms):
            if term_group[t] != g:
                continue
            for k in range(m):
                term_ok[k] = True
            for r in range(term_ptr[t], term_ptr[t + 1]):
                key = req_key[r]
                lo = mask_ptr[r]
                width = mask_ptr[r + 1] - lo
                absent = req_absent[r]
                for k in range(m):
                    v = labels[k, key]
                    term_ok[k] &= absent if v < 0 else (v < width and mask[lo + v])
            for k in range(m):
                group_ok[k] |= term_ok[k]
        for k in range(m):
            passed[k] &= group_ok[k]


@njit(cache=True)
def _fused_cycle(order, start, to_find, P, mask, allocatable, requested, nonzero_requested,
                 pod_count, allowed_pods, unschedulable, labels, taint_ptr, taint_key,
                 taint_value, taint_effect, gpu_free, gpu_count, gpu_model, img_ptr, img_image,
                 img_size, img_num_nodes, columns, n_slots, cols_state, spread_counts):
    """One cycle: returns (feasible found, nodes processed, status, top nodes).
    ``spread_counts``: per node slot, the pods the pod's default spreading selector matches
    (empty: PodTopologySpread's PreScore skips the pod)."""
    _prefer_wide_vectors()
    n = order.size
    # ---- unpack the pod
    f_unsched = P[H_UNSCHED] != 0
    f_nodename = P[H_NODENAME] != 0
    target = P[H_NODENAME_TARGET]
    f_taint = P[H_TAINT] != 0
    n_groups = P[H_AFF_GROUPS]
    f_fit = P[H_FIT] != 0
    (tol_key, tol_exists, tol_value, tol_effect, n_terms, term_ptr, term_group, req_key,
     req_absent, mask_ptr, n_cols, cols, request, models) = _filter_inputs(P)
    gpu_n = P[H_GPU]
    gpu_milli = P[H_GPU_MILLI]
    gpu_any = P[H_GPU_ANY] != 0
    # ---- Filter, from the rotating start index, until to_find feasible nodes: per block of
    # positions, the checks on plain per-node numbers first (vectorised when the block's
    # nodes are consecutive slots, as when the snapshot keeps them in evaluation order),
    # then the rest on the nodes that passed
    feasible = np.empty(min(to_find, n), np.int64)
    passed = np.empty(FILTER_BLOCK, np.bool_)
    group_ok = np.empty(FILTER_BLOCK, np.bool_)
    term_ok = np.empty(FILTER_BLOCK, np.bool_)
    exact = cols_state[0] == 0  # (the float columns hold the int64 rows exactly)
    no_fit = not f_fit
    found = 0
    i = 0
    while i < n and found < to_find:
        pos = start + i
        if pos >= n:
            pos -= n
        m = min(FILTER_BLOCK, n - pos, n - i)  # (a block ends where the positions wrap)
        base = order[pos]
        consecutive = exact
        for k in range(m):
            consecutive &= order[pos + k] == base + k
        if consecutive:
            # one loop over the block (its columns as contiguous slices: it vectorises)
            # for the pod count, spec.unschedulable and two requested resources (a check
            # not asked for always holds: -inf <= anything), then one a further resource
            pods = pod_count[base:base + m]
            room = allowed_pods[base:base + m]
            cordoned = unschedulable[base:base + m]
            a0 = columns[0, cols[0] if n_cols > 0 else 0, base:base + m]
            u0 = columns[1, cols[0] if n_cols > 0 else 0, base:base + m]
            a1 = columns[0, cols[1] if n_cols > 1 else 0, base:base + m]
            u1 = columns[1, cols[1] if n_cols > 1 else 0, base:base + m]
            q0 = np.float64(request[0]) if f_fit and n_cols > 0 else -np.inf
            q1 = np.float64(request[1]) if f_fit and n_cols > 1 else -np.inf
            for k in range(m):
                passed[k] = ((pods[k] + 1 <= room[k]) | no_fit) \
                    & (not (f_unsched and cordoned[k])) \
                    & (q0 <= a0[k] - u0[k]) & (q1 <= a1[k] - u1[k])
            for c in range(2, n_cols if f_fit else 0):
                q = np.float64(request[c])
                alloc = columns[0, cols[c], base:base + m]
                used = columns[1, cols[c], base:base + m]
                for k in range(m):
                    passed[k] &= q <= alloc[k] - used[k]
            if n_groups > 0:  # NodeAffinity's required terms, requirement by requirement
                _match_groups_block(passed, m, labels[base:base + m], n_groups, n_terms,
                                    term_ptr, term_group, req_key, req_absent, mask_ptr, mask,
                                    group_ok, term_ok)
        else:
            for k in range(m):
                node = order[pos + k]
                ok = not (f_unsched and unschedulable[node])
                if f_fit and ok:
                    ok = pod_count[node] + 1 <= allowed_pods[node]
                    for c in range(n_cols):
                        r = cols[c]
                        ok &= request[c] <= allocatable[node, r] - requested[node, r]
                passed[k] = ok
        for k in range(m):
            if not passed[k]:
                continue
            node = order[pos + k]
            if f_nodename and node != target:
                continue
            if f_taint:
                bad = False
                for t in range(taint_ptr[node], taint_ptr[node + 1]):
                    e = taint_effect[t]
                    if e == 1:  # PreferNoSchedule: not a filter matter
                        continue
                    if not _tolerated(taint_key[t], taint_value[t], e, tol_key, tol_exists,
                                      tol_value, tol_effect):
                        bad = True
                        break
                if bad:
                    continue
            if n_groups > 0 and not consecutive:
                bad = False
                for g in range(n_groups):
                    matched = False
                    for t in range(n_terms):
                        if term_group[t] == g and _term_matches(node, t, labels, term_ptr,
                                                                req_key, req_absent, mask_ptr,
                                                                mask):
                            matched = True
                            break
                    if not matched:
                        bad = True
                        break
                if bad:
                    continue
            if gpu_n > 0 and gpu_filter_code(node, gpu_free, gpu_count, gpu_model, gpu_n,
                                             gpu_milli, models, gpu_any) != 0:
                continue
            feasible[found] = node
            found += 1
            if found == to_find:
                m = k + 1  # (the nodes after it are not examined)
                break
        i += m
    processed = i
    if found <= 1:
        return found, processed, OK, feasible[:found].copy()

    # ---- Score, NormalizeScore, weights; then the top (selectHost draws among these)
    nodes = feasible[:found]
    status, total = _score_nodes(nodes, P, mask, allocatable, requested, nonzero_requested,
                                 labels, taint_ptr, taint_key, taint_value, taint_effect,
                                 img_ptr, img_image, img_size, img_num_nodes, columns,
                                 n_slots, cols_state, order, spread_counts, True)
    if status != OK:
        return found, processed, status, nodes[:0].copy()
    return found, processed, OK, _top(nodes, total)


@structref.register
class _ClusterArraysType(types.StructRef):
    def preprocess_fields(self, fields):
        return tuple((name, types.unliteral(t)) for name, t in fields)


class _ClusterArrays(structref.StructRefProxy):
    """The snapshot arrays :func:`_fused_cycle` reads, as one object (a kernel call then
    unboxes one argument instead of eighteen). The arrays are the snapshot's own (shared)."""


_CLUSTER_FIELDS = ("allocatable", "requested", "nonzero_requested", "pod_count",
                   "allowed_pods", "unschedulable", "labels", "taint_ptr", "taint_key",
                   "taint_value", "taint_effect", "gpu_free", "gpu_count", "gpu_model",
                   "img_ptr", "img_image", "img_size", "img_num_nodes", "cols", "n_slots",
                   "cols_state")
structref.define_proxy(_ClusterArrays, _ClusterArraysType, list(_CLUSTER_FIELDS))


@njit(cache=True)
def _fused_cycle_of(order, start, to_find, P, mask, c, spread_counts):
    """:func:`_fused_cycle` over the arrays of ``c`` (a :class:`_ClusterArrays`)."""
    _prefer_wide_vectors()
    return _fused_cycle(order, start, to_find, P, mask, c.allocatable, c.requested,
                        c.nonzero_requested, c.pod_count, c.allowed_pods, c.unschedulable,
                        c.labels, c.taint_ptr, c.taint_key, c.taint_value, c.taint_effect,
                        c.gpu_free, c.gpu_count, c.gpu_model, c.img_ptr, c.img_image,
                        c.img_size, c.img_num_nodes, c.cols, c.n_slots, c.cols_state,
                        spread_counts)


@njit(cache=True)
def _score_nodes_of(nodes, P, mask, c, alive, spread_counts):
    """:func:`_score_nodes` (all weighted totals) over the arrays of ``c``."""
    _prefer_wide_vectors()
    return _score_nodes(nodes, P, mask, c.allocatable, c.requested, c.nonzero_requested,
                        c.labels, c.taint_ptr, c.taint_key, c.taint_value, c.taint_effect,
                        c.img_ptr, c.img_image, c.img_size, c.img_num_nodes, c.cols, c.n_slots,
                        c.cols_state, alive, spread_counts, False)


@njit(cache=True)
def _top(nodes, total):
    """The nodes with the highest total, in order."""
    best = total[0]
    for i in range(1, total.size):
        if total[i] > best:
            best = total[i]
    k = 0
    for i in range(total.size):
        if total[i] == best:
            k += 1
    top = np.empty(k, np.int64)
    k = 0
    for i in range(total.size):
        if total[i] == best:
            top[k] = nodes[i]
            k += 1
    return top


#: Above this, allocatable quantities go through the general kernel (the fast one's float
#: quotients are exact far beyond any real quantity; this keeps products within int64).
_FAST_LIMIT = 1 << 55


@njit(cache=True, error_model="numpy")
def _floor_div(x, y):
    """``x // y`` for 0 <= x, 0 < y <= 2**55, x / y <= 2**20, through a float quotient
    corrected to the exact integer (vectorisable, unlike integer division)."""
    q = np.int64(np.float64(x) / np.float64(y))
    if q * y > x:
        q -= 1
    if (q + 1) * y <= x:
        q += 1
    return q


@njit(cache=True)
def _gather_column(allocatable, src, nodes, c, q, alloc, req):
    """``alloc[j]``, ``req[j]``: resource column ``c`` of node ``nodes[j]``, allocatable and
    requested (from ``src``) plus the pod's ``q``, contiguous for the scoring loops."""
    for j in range(nodes.size):
        n = nodes[j]
        alloc[j] = allocatable[n, c]
        req[j] = src[n, c] + q


@njit(cache=True, error_model="numpy")
def _fast_scores(nodes, allocatable, requested, nonzero_requested, columns, nonzero, request,
                 weights, strategy):
    """LeastAllocated (0), MostAllocated (1) and two-resource BalancedAllocation (3) as
    :func:`~.resource_scoring._allocation_scores` computes them, in loops over the nodes per
    resource without integer division. Returns (ok, scores); ok is False when a quantity is
    out of the range where that is exact (the caller then uses the general kernel)."""
    f = nodes.size
    r = columns.size
    out = np.zeros(f, np.int64)
    alloc = np.empty(f, np.int64)
    req = np.empty(f, np.int64)
    if strategy == 3:
        frac = np.zeros((2, f), np.float64)
        valid = np.zeros((2, f), np.bool_)
        for i in range(r):
            c = columns[i]
            if c < 0:
                continue
            src = nonzero_requested if nonzero[i] else requested
            _gather_column(allocatable, src, nodes, c, request[i], alloc, req)
            for j in range(f):
                a = alloc[j]
                v = np.float64(req[j]) / np.float64(a)
                frac[i, j] = v if v <= 1.0 else 1.0
                valid[i, j] = a != 0
        for j in range(f):
            if valid[0, j] and valid[1, j]:
                std = abs((frac[0, j] - frac[1, j]) / 2.0)
                out[j] = np.int64((1.0 - std) * 100.0)
            else:
                out[j] = 100
        return True, out
    score = np.zeros(f, np.int64)
    wsum = np.zeros(f, np.int64)
    bad = False
    for i in range(r):
        c = columns[i]
        if c < 0:
            continue
        src = nonzero_requested if nonzero[i] else requested
        _gather_column(allocatable, src, nodes, c, request[i], alloc, req)
        w = weights[i]
        for j in range(f):
            a = alloc[j]
            rq = req[j]
            bad |= (a < 0) | (a > _FAST_LIMIT) | (rq < 0) | (rq > _FAST_LIMIT)
            has = a != 0
            d = a if has else 1
            if strategy == 0:
                x = (a - rq) * 100 if rq <= a else 0
            else:
                x = (rq if rq <= a else a) * 100
            s = _floor_div(x if x >= 0 else 0, d)
            score[j] += s * w if has else 0
            wsum[j] += w if has else 0
    if bad:
        return False, out
    for j in range(f):
        ws = wsum[j]
        out[j] = _floor_div(score[j], ws if ws > 0 else 1) if ws > 0 else 0
    return True, out


@njit(cache=True)
def _score_nodes(nodes, P, mask, allocatable, requested, nonzero_requested, labels, taint_ptr,
                 taint_key, taint_value, taint_effect, img_ptr, img_image, img_size,
                 img_num_nodes, cols, n_slots, cols_state, alive, spread_counts, ranking):
    """RunScorePlugins of the pod packed in ``P`` over ``nodes``: (status, weighted totals).
    ``alive``: every live node (PodTopologySpread counts over them); ``spread_counts`` as in
    :func:`_fused_cycle`.
    With ``ranking`` (only the top nodes matter) a plugin whose score is the same in-range
    value on every node is left out (the totals then differ from kube's by that constant).
    When ``nodes`` are most of the ``n_slots`` nodes, the resource scores are computed for
    every node at once from the float columns ``cols`` (:mod:`.columns`; exact unless
    ``cols_state[0]``) and picked for ``nodes``; likewise over the spans of slots ``nodes``
    cover when those are few (:func:`_ascending_spans`)."""
    _prefer_wide_vectors()
    found = nodes.size
    total = np.empty(found, np.int64)
    dense = cols_state[0] == 0 and 2 * found >= n_slots
    # resource scores of every node (``total`` itself when ``nodes`` are all nodes in order)
    identity = dense and _is_prefix(nodes, n_slots)
    dense_total = total if identity else np.empty(n_slots if dense else 0, np.int64)
    constant = 0  # a weighted score that is the same on every node
    w = P[H_W_TAINT]
    if w >= 0 and P[H_PNS] == 0 and not ranking:
        # no node has a PreferNoSchedule taint: every count is 0, every normalized score 100
        constant = MAX_NODE_SCORE * w
    # NodeResourcesFit (Least/MostAllocated) + BalancedAllocation over CPU and memory, the
    # usual pair, in one pass over the float columns, written first (the other plugins add
    # to it) with the constant: every node at once when most are asked for (vectorised),
    # else the nodes asked for
    of = P[H_OFF_SFIT] + 2
    ob = P[H_OFF_SBAL] + 2
    both = cols_state[0] == 0 and 0 <= P[H_W_FIT] < WEIGHT_LIMIT \
        and 0 <= P[H_W_BAL] < WEIGHT_LIMIT and constant < MAX_NODE_SCORE * WEIGHT_LIMIT \
        and P[of - 1] == 2 and P[of] >= 0 and P[of + 1] >= 0 and P[ob - 1] == 2 \
        and P[ob - 2] == 3 and _columns_apply(P, of, 2, P[of - 2]) and _columns_apply(P, ob, 2, 3)
    # fewer nodes, but in at most two ascending runs (the rotating window over nodes kept in
    # evaluation order) spanning few more slots: the vectorised pass over those spans
    lo1, hi1, lo2, hi2 = _ascending_spans(nodes) if both and not dense else (0, -1, 0, -1)
    spans = hi1 >= lo1 and (hi1 - lo1) + (hi2 - lo2) + 2 <= SPAN_SLACK * found
    if spans:
        dense_total = np.empty(n_slots, np.int64)
    if both:
        # (the constant is added here, once)
        if spans and hi2 >= lo2:
            _resource_scores_packed(P, of, ob, cols, cols_state, nodes[:0], lo2, constant,
                                    dense_total[lo2:hi2 + 1])
        if spans:
            _resource_scores_packed(P, of, ob, cols, cols_state, nodes[:0], lo1, constant,
                                    dense_total[lo1:hi1 + 1])
        else:
            _resource_scores_packed(P, of, ob, cols, cols_state, nodes[:0] if dense else nodes,
                                    0, constant, dense_total if dense else total)
        constant = 0  # (added)
    else:
        dense_total[:] = 0
    have_dense = both and (dense or spans)
    if not (both and (identity or not have_dense)):
        total[:] = 0
    if w >= 0 and P[H_PNS] != 0:
        o = P[H_OFF_TOL]
        ta = P[o]
        tp = P[o + 1]
        a = o + 2 + 4 * ta
        s = np.zeros(found, np.int64)
        if tp == 0:  # nothing tolerated: count the PreferNoSchedule taints
            for i in range(found):
                n = nodes[i]
                c = 0
                for t in range(taint_ptr[n], taint_ptr[n + 1]):
                    if taint_effect[t] == 1:
                        c += 1
                s[i] = c
        else:
            effect_mask = np.zeros(3, np.bool_)
            effect_mask[1] = True
            s = _count_untolerated(nodes, taint_ptr, taint_key, taint_value, taint_effect,
                                   effect_mask, False, P[a:a + tp], P[a + tp:a + 2 * tp] != 0,
                                   P[a + 2 * tp:a + 3 * tp], P[a + 3 * tp:a + 4 * tp])
        _default_normalize(s, True)
        if not _add(total, s, w):
            return OUT_OF_RANGE, total
    w = P[H_W_AFF]
    o = P[H_OFF_SEL]
    n_terms = P[o]
    if w >= 0 and n_terms > 0:
        n_reqs = P[o + 1]
        a = o + 2
        term_ptr = P[a:a + n_terms + 1]
        a += n_terms + 1
        term_group = P[a:a + n_terms]
        a += n_terms
        term_weight = P[a:a + n_terms]
        a += n_terms
        req_key = P[a:a + n_reqs]
        a += n_reqs
        req_absent = P[a:a + n_reqs] != 0
        a += n_reqs
        mask_ptr = P[a:a + n_reqs + 1]
        s = np.zeros(found, np.int64)
        for i in range(found):
            v = 0
            for t in range(n_terms):
                if term_group[t] < 0 and _term_matches(nodes[i], t, labels, term_ptr, req_key,
                                                       req_absent, mask_ptr, mask):
                    v += term_weight[t]
            s[i] = v
        _default_normalize(s, False)
        if not _add(total, s, w):
            return OUT_OF_RANGE, total
    for h, ho in ((H_W_FIT, H_OFF_SFIT), (H_W_BAL, H_OFF_SBAL)):
        w = P[h]
        if w < 0 or both:
            continue
        o = P[ho]
        strategy = P[o]
        r = P[o + 1]
        a = o + 2
        ok = False
        s = total  # (typed; replaced below)
        if dense and _columns_apply(P, a, r, strategy):
            # (these scores are within 0..MaxNodeScore by construction: no range check)
            if strategy == 3:
                s_all = balanced_scores_all(cols, n_slots, P[a:a + r], P[a + r:a + 2 * r] != 0,
                                            P[a + 2 * r:a + 3 * r])
            else:
                s_all = allocation_scores_all(cols, n_slots, strategy, P[a:a + r],
                                              P[a + r:a + 2 * r] != 0, P[a + 2 * r:a + 3 * r],
                                              P[a + 3 * r:a + 4 * r])
            for j in range(n_slots):
                dense_total[j] += s_all[j] * w
            have_dense = True
            continue
        if strategy == 0 or strategy == 1 or (strategy == 3 and r == 2):
            ok, s = _fast_scores(nodes, allocatable, requested, nonzero_requested,
                                 P[a:a + r], P[a + r:a + 2 * r] != 0, P[a + 2 * r:a + 3 * r],
                                 P[a + 3 * r:a + 4 * r], strategy)
        if not ok:
            s = _scorer(P, o, nodes, allocatable, requested, nonzero_requested)
        if not _add(total, s, w):
            return OUT_OF_RANGE, total
    w = P[H_W_IMG]
    if w >= 0:
        o = P[H_OFF_IMG]
        ni = P[o]
        if ni > 0 and P[H_IMG_TOTAL] > 0:
            s = _image_scores(nodes, img_ptr, img_image, img_size, img_num_nodes,
                              P[H_IMG_TOTAL], P[o + 1:o + 1 + ni])
            if not _add(total, s, w):
                return OUT_OF_RANGE, total
    w = P[H_W_FIRST]
    if w >= 0:
        s = np.zeros(found, np.int64)
        s[np.argmin(nodes)] = MAX_NODE_SCORE
        _add(total, s, w)
    w = P[H_W_PTS]
    if w >= 0 and spread_counts.size > 0:
        s = _default_spread_scores(nodes, alive, labels, spread_counts, P, P[H_OFF_PTS])
        if not _add(total, s, w):
            return OUT_OF_RANGE, total
    w = P[H_W_DOT]
    if w >= 0:
        req = np.empty(2, np.float64)
        req[0] = np.float64(P[H_DOT_CPU])
        req[1] = np.float64(P[H_DOT_MEM])
        columns = np.arange(2)
        s = _alignment(nodes, allocatable, requested, req, columns)
        _default_normalize(s, False)
        if not _add(total, s, w):
            return OUT_OF_RANGE, total
    if have_dense and not identity:
        for i in range(found):
            total[i] += dense_total[nodes[i]] + constant
    elif constant:
        for i in range(found):
            total[i] += constant
    return OK, total


@njit(cache=True)
def _default_spread_scores(nodes, alive, labels, counts, P, o):
    """PodTopologySpread's PreScore + Score + NormalizeScore (``plugins.pod_topology_spread``:
    ``_prescore``, ``_scores``, ``_normalize``; kube's ``scoring.go``) for its system default
    constraints (ScheduleAnyway, every live node eligible: the pod has no required node
    affinity, no node is ignored), from the label columns. ``counts[n]``: the pods on node
    slot ``n`` that the pod's default selector matches; constraints packed at ``P[o]``."""
    found = nodes.size
    raw = np.zeros(found, np.float64)
    for c in range(P[o]):
        b = o + 1 + 5 * c
        k, empty, n_values, is_host, max_skew = P[b], P[b + 1], P[b + 2], P[b + 3], P[b + 4]
        extra = np.float64(max_skew - 1)
        if is_host:
            weight = go_log_jit(np.float64(found + 2))
            for i in range(found):
                n = nodes[i]
                if k >= 0 and labels[n, k] >= 0:
                    raw[i] += np.float64(counts[n]) * weight + extra
            continue
        # the domains of the filtered nodes (a missing label is the domain ""), and the
        # matching pods of each over every live node
        seen = np.zeros(n_values + 1, np.bool_)
        size = 0
        for i in range(found):
            d = labels[nodes[i], k] if k >= 0 else -1
            d = empty if d < 0 else d
            if not seen[d]:
                seen[d] = True
                size += 1
        sums = np.zeros(n_values + 1, np.int64)
        for i in range(alive.size):
            n = alive[i]
            d = labels[n, k] if k >= 0 else -1
            d = empty if d < 0 else d
            if seen[d]:
                sums[d] += counts[n]
        weight = go_log_jit(np.float64(size + 2))
        for i in range(found):
            d = labels[nodes[i], k] if k >= 0 else -1
            if d >= 0:
                raw[i] += np.float64(sums[d]) * weight + extra
    out = np.empty(found, np.int64)
    lo = np.iinfo(np.int64).max
    hi = 0
    for i in range(found):
        v = np.int64(go_round(raw[i]))
        out[i] = v
        lo = min(lo, v)
        hi = max(hi, v)
    for i in range(found):
        out[i] = MAX_NODE_SCORE if hi == 0 else MAX_NODE_SCORE * (hi + lo - out[i]) // hi
    return out


@njit(cache=True)
def _resource_scores_packed(P, of, ob, cols, cols_state, nodes, lo, constant, out):
    """:func:`~.columns.resource_scores_into` of the NodeResourcesFit and BalancedAllocation
    scorers packed at ``P[of - 2]`` and ``P[ob - 2]``, plus ``constant``."""
    _prefer_wide_vectors()
    resource_scores_into(cols, cols_state[COLS_ZERO_ALLOC:], nodes, lo, P[of - 2],
                         P[of:of + 2], _nonzero_read(P[of:of + 2], P[of + 2:of + 4], cols_state),
                         P[of + 4:of + 6], P[of + 6:of + 8], P[H_W_FIT], P[ob:ob + 2],
                         _nonzero_read(P[ob:ob + 2], P[ob + 2:ob + 4], cols_state),
                         P[ob + 4:ob + 6], P[H_W_BAL], np.float64(constant), out)


@njit(cache=True, inline="always")
def _nonzero_read(columns, nonzero, cols_state):
    """Which of ``columns`` a scorer reads from the non-zero requested column (``nonzero``)
    and that differs from the requested one: the others read the requested column (the two
    are equal where no bound pod's non-zero request differs from its request, always beyond
    CPU and memory), one stream of memory fewer."""
    out = nonzero != 0
    for i in range(columns.size):
        c = columns[i]
        if c < 0 or c >= 2 or cols_state[COLS_NONZERO_DIFFERS + c] == 0:
            out[i] = False
    return out


#: The vectorised pass over the spans of a node subset when they hold at most this many slots
#: a node of the subset (it costs about a sixth of the gathered pass a node).
SPAN_SLACK = 4


@njit(cache=True)
def _ascending_spans(nodes):
    """``(lo1, hi1, lo2, hi2)``: the slots ``nodes`` span as at most two ascending runs
    (``hi < lo`` for an empty second run); ``(0, -1, 0, -1)`` when they are not."""
    n = nodes.size
    if n == 0:
        return 0, -1, 0, -1
    cut = n
    for i in range(1, n):
        if nodes[i] <= nodes[i - 1]:
            cut = i
            break
    for i in range(cut + 1, n):
        if nodes[i] <= nodes[i - 1]:
            return 0, -1, 0, -1
    if cut == n:
        return nodes[0], nodes[n - 1], 0, -1
    if nodes[n - 1] >= nodes[0]:  # the runs overlap
        return 0, -1, 0, -1
    return nodes[0], nodes[cut - 1], nodes[cut], nodes[n - 1]


@njit(cache=True)
def _is_prefix(nodes, n):
    """``nodes`` is ``0, 1, ..., n - 1``."""
    if nodes.size != n:
        return False
    ok = True
    for i in range(n):
        ok &= nodes[i] == i
    return ok


@njit(cache=True)
def _columns_apply(P, a, r, strategy):
    """Whether the :mod:`.columns` kernels compute the scorer packed at ``P[a - 2:]``:
    LeastAllocated, MostAllocated, or two-resource BalancedAllocation over known columns,
    with requests within the exact range."""
    if strategy == 3:
        if r != 2 or P[a] < 0 or P[a + 1] < 0:
            return False
    elif strategy != 0 and strategy != 1:
        return False
    for i in range(r):
        q = P[a + 2 * r + i]
        if q < 0 or q >= _EXACT_LIMIT_INT:
            return False
    return True


# --------------------------------------------------------------------------- the plan

_EMPTY_I64 = np.zeros(0, np.int64)
_EMPTY_BOOL = np.zeros(0, np.bool_)
_EMPTY_IMAGES = (np.zeros(1, np.int64), _EMPTY_I64, _EMPTY_I64, _EMPTY_I64)
_HEAD0 = [0] * HEADER
for _h in (H_W_TAINT, H_W_AFF, H_W_FIT, H_W_BAL, H_W_IMG, H_W_FIRST, H_W_DOT, H_W_PTS):
    _HEAD0[_h] = -1


def _classes() -> dict:
    """The plugin classes this module fuses, by name (exact classes: a subclass or another
    plugin registered under the same name is not fused)."""
    from .plugins.dot_product import DotProduct
    from .plugins.first_fit import FirstFit
    from .plugins.gpu_share import GpuShare
    from .plugins.image_locality import ImageLocality
    from .plugins.inter_pod_affinity import InterPodAffinity
    from .plugins.node_affinity import NodeAffinity
    from .plugins.node_name import NodeName
    from .plugins.node_ports import NodePorts
    from .plugins.node_resources_balanced_allocation import NodeResourcesBalancedAllocation
    from .plugins.node_resources_fit import NodeResourcesFit
    from .plugins.node_unschedulable import NodeUnschedulable
    from .plugins.pod_topology_spread import PodTopologySpread
    from .plugins.random_choice import Random
    from .plugins.taint_toleration import TaintToleration

    return {c.name: c for c in (DotProduct, FirstFit, GpuShare, ImageLocality, InterPodAffinity,
                                NodeAffinity, NodeName, NodePorts,
                                NodeResourcesBalancedAllocation, NodeResourcesFit,
                                NodeUnschedulable, PodTopologySpread, Random, TaintToleration)}


def _inert(plugin) -> bool:
    """A plugin of a feature schedbench does not model: PreFilter and PreScore skip, Filter
    passes, Score is 0 (:class:`~.plugins.not_modelled.NotModelledPlugin`, not overridden)."""
    from .plugins.not_modelled import NotModelledPlugin

    cls = type(plugin)
    return isinstance(plugin, NotModelledPlugin) and all(
        getattr(cls, m) is getattr(NotModelledPlugin, m)
        for m in ("pre_filter", "filter", "pre_score", "score"))


_EXTENSION_POINTS = frozenset({"pre_filter", "filter", "filter_reasons", "pre_score", "score",
                               "normalize_score"})
_PRE_FILTER = frozenset({"NodeAffinity", "NodePorts", "NodeResourcesFit", "PodTopologySpread",
                         "InterPodAffinity", "GpuShare"})
_FILTER = frozenset({"NodeUnschedulable", "NodeName", "TaintToleration", "NodeAffinity",
                     "NodePorts", "NodeResourcesFit", "PodTopologySpread", "InterPodAffinity",
                     "GpuShare"})
_SCORE = frozenset({"TaintToleration", "NodeAffinity", "NodeResourcesFit",
                    "NodeResourcesBalancedAllocation", "ImageLocality", "PodTopologySpread",
                    "InterPodAffinity", "FirstFit", "Random", "DotProduct"})


class FusedPath:
    """The fused cycle of one framework (profile). ``supported`` says whether its plugins
    are all fusable at all; :meth:`schedule` then decides per pod."""

    def __init__(self, framework) -> None:
        self.fw = framework
        self.snapshot = framework.handle.snapshot
        known = _classes()
        self.supported = True
        self.why_not = ""

        def check(plugins, allowed, point):
            for p in plugins:
                if _inert(p):
                    continue
                if p.name not in allowed or type(p) is not known.get(p.name):
                    self.supported = False
                    self.why_not = f"{point} plugin {p.name} is not fused"
                    return

        check(framework.pre_filter_plugins, _PRE_FILTER, "PreFilter")
        check(framework.filter_plugins, _FILTER, "Filter")
        check(framework.score_plugins, _SCORE, "Score")
        if not framework.filter_plugins:
            self.supported, self.why_not = False, "no Filter plugin"
        inst = framework.instances
        pre_score = {p.name for p in framework.pre_score_plugins}
        pre_filter = {p.name for p in framework.pre_filter_plugins}
        filters = {p.name for p in framework.filter_plugins if not _inert(p)}
        #: (plugin name, FAIL_BITS bit) of the filter plugins the kernel checks, in the
        #: profile's order (the first one a node fails is the one kube reports)
        self.filter_checks = [(p.name, FAIL_BITS[p.name]) for p in framework.filter_plugins
                              if p.name in filters and p.name in FAIL_BITS]
        self.weights = {p.name: framework.score_weights[p.name]
                        for p in framework.score_plugins if not _inert(p)}
        self.filters = filters
        self.pre_filter = pre_filter
        self.pre_score = pre_score
        for name in ("NodeResourcesFit", "NodeResourcesBalancedAllocation"):
            if name in self.weights and not inst[name].scorer.names:
                self.supported, self.why_not = False, f"{name} has no resources"
        if "PodTopologySpread" in self.weights and "PodTopologySpread" not in pre_score:
            # its Score needs its PreScore state (the per-plugin path raises)
            self.supported, self.why_not = False, "PodTopologySpread scores without PreScore"
        self.inst = inst
        # ImageLocality / InterPodAffinity / PodTopologySpread / NodeAffinity instances
        self.img = inst.get("ImageLocality") if "ImageLocality" in self.weights else None
        self.ipa = inst.get("InterPodAffinity")
        self.pts = inst.get("PodTopologySpread")
        # which per-pod conditions need checking
        self.ipa_filter = "InterPodAffinity" in filters or "InterPodAffinity" in pre_filter
        self.ipa_score = "InterPodAffinity" in self.weights and "InterPodAffinity" in pre_score
        self.pts_filter = "PodTopologySpread" in filters or "PodTopologySpread" in pre_filter
        self.pts_score = "PodTopologySpread" in self.weights
        self.ports = "NodePorts" in filters or "NodePorts" in pre_filter
        self.aff_prefilter = "NodeAffinity" in pre_filter
        self._key_base = id(framework)
        #: (instance __dict__, its size) of every plugin: an extension point replaced on an
        #: instance (tests do it) turns the fused path off for this framework
        self._plugin_dicts = [(vars(p), len(vars(p))) for p in inst.values()]
        self._dicts = [d for d, _ in self._plugin_dicts]
        self._sizes = [size for _, size in self._plugin_dicts]
        self.patched = False
        self._arrays = None
        self.na = inst.get("NodeAffinity")
        self._memo: dict = {}
        fit = inst.get("NodeResourcesFit")
        #: the pod's non-zero requests are the fit scorer's requests when no pod-level
        #: requests are set and the scorer looks at cpu/memory/other plain resources only
        self._nonzero_is_scoring = fit is not None and set(fit.scorer.names) <= {"cpu",
                                                                                 "memory"}
        bal = inst.get("NodeResourcesBalancedAllocation")
        self._fit_scores = "NodeResourcesFit" in self.weights
        self._fit_names = fit.scorer.names if fit is not None else ()
        self._bal_names = bal.scorer.names if bal is not None else ()
        self._f_unsched = "NodeUnschedulable" in filters
        self._f_nodename = "NodeName" in filters
        self._gpu = "GpuShare" in filters
        self._image_ids: tuple = (None, {})  # (ImageIndex, image name -> its id)
        self._pns = (-1, True)  # (snapshot generation, some PreferNoSchedule taint)
        # the header's constant part: the flags and weights that do not depend on the pod
        self._head0 = list(_HEAD0)
        if "TaintToleration" in filters:
            self._head0[H_TAINT] = 1
        if "TaintToleration" in self.weights:
            self._head0[H_W_TAINT] = self.weights["TaintToleration"]
        if self.na is not None and "NodeAffinity" in self.weights:
            self._head0[H_W_AFF] = self.weights["NodeAffinity"]
        if "FirstFit" in self.weights:
            self._head0[H_W_FIRST] = self.weights["FirstFit"]
        self._pts_defaults = self.pts is not None and any(
            c.when_unsatisfiable in ((("DoNotSchedule",) if self.pts_filter else ())
                                     + (("ScheduleAnyway",) if self.pts_score else ()))
            for c in self.pts.defaults)
        #: the default constraints the kernel scores (pods a Service or controller selects):
        #: kube's system defaults, ScheduleAnyway only, node taints ignored
        self._spread_fused = self._pts_defaults and self.pts_score and \
            self.pts.system_defaulted and all(
                c.when_unsatisfiable == "ScheduleAnyway"
                and (c.node_taints_policy or "Ignore") == "Ignore" for c in self.pts.defaults)
        if self._spread_fused:
            self._head0[H_W_PTS] = self.weights["PodTopologySpread"]

    # ------------------------------------------------------------------ per-pod checks

    def _static_ok(self, pod) -> bool:
        """Conditions that depend on the pod only (cached in the pod's pack entry)."""
        spec = pod.pod.spec
        if self.ports:
            if pod_host_ports(pod):
                return False
        if self.aff_prefilter and spec.affinity is not None:
            required = _required(pod.pod)
            if required is not None and required.terms and \
                    pinned_node_names(required) is not None:
                return False  # a PreFilter node set (or a conflict)
        if self.pts_filter or self.pts_score:
            if spec.topology_spread_constraints:
                return False
        if (self.ipa_filter or self.ipa_score) and spec.affinity is not None:
            terms = pod_terms(pod)
            if self.ipa_filter and (terms.required_affinity or terms.required_anti_affinity):
                return False
            if self.ipa_score and (terms.preferred_affinity or terms.preferred_anti_affinity):
                return False
        return True

    def _check_patched(self) -> bool:
        """Whether an extension point was replaced on a plugin instance since (checked when
        an instance's attribute set changed)."""
        if self.patched:
            return True
        if list(map(len, self._dicts)) == self._sizes:  # (the common case, in C)
            return False
        for i, (d, size) in enumerate(self._plugin_dicts):
            if len(d) != size:
                self._plugin_dicts[i] = (d, len(d))
                self._sizes[i] = len(d)
                if not _EXTENSION_POINTS.isdisjoint(d):
                    self.patched = True
        return self.patched

    def _dynamic_ok(self, pod) -> bool:
        """Conditions on the cluster's state now."""
        if self.patched or list(map(len, self._dicts)) != self._sizes:
            if self._check_patched():
                return False
        if self.ipa_filter and self.ipa.index.anti_terms:
            return False
        if self.ipa_score and self.ipa.index.score_terms and \
                not self.ipa.args.ignore_preferred_terms_of_existing_pods:
            return False
        if self._pts_defaults and not self._default_selector_ok(pod):
            return self._spread_fused and self._spread_eligible_everywhere(pod)
        return True

    @staticmethod
    def _spread_eligible_everywhere(pod) -> bool:
        """No required node affinity (nodeSelector or required terms): with the default
        nodeAffinityPolicy Honor every node then counts for the default constraints."""
        spec = pod.pod.spec
        if spec.node_selector:
            return False
        aff = spec.affinity
        return aff is None or aff.node_affinity is None or aff.node_affinity.required is None

    def _spread_counts(self, pod) -> np.ndarray:
        """Per node slot, the bound pods the pod's default selector matches (empty when no
        default constraint applies: the selector is empty, or spreading is not fused)."""
        if not self._spread_fused or self._default_selector_ok(pod):
            return _EMPTY_I64
        cluster = self.fw.handle.cluster
        selector = default_selector(pod.pod, cluster)
        if selector.empty:
            return _EMPTY_I64
        return selector_counts(self.snapshot).counts(pod.namespace, selector)

    def _default_selector_ok(self, pod) -> bool:
        """:func:`_default_selector_empty`, cached in the pod while the cluster's Services
        list is the same object of the same length (as :func:`.spreading._service_index`)."""
        cluster = self.fw.handle.cluster
        services = getattr(cluster, "services", None)
        n_services = len(services) if services else 0
        got = pod.cache.get("fused/default-selector")
        if got is None or got[0] is not services or got[1] != n_services:
            got = (services, n_services, _default_selector_empty(pod, cluster))
            pod.cache["fused/default-selector"] = got
        return got[2]

    # -------------------------------------------------------------------------- packing

    def _scorer_part(self, plugin, requests: dict) -> tuple[list[int], bool]:
        """The packed scorer of ``plugin`` for a pod whose scoring request is ``requests``
        (memoised by the request values of the scorer's resources), and whether the pod
        requests any of them."""
        snap = self.snapshot
        spec = plugin.scorer
        values = tuple(requests.get(n, 0) for n in spec.names)
        key = (id(spec), snap.num_resources, values)
        got = self._memo.get(key)
        if got is None:
            s = pod_score_input(snap, spec, requests)
            body: list[int] = []
            _pack_scorer(body, spec, s)
            got = self._memo[key] = (body, bool(s.request.any()))
            if len(self._memo) > 4096:
                self._memo.clear()
        return got

    def _selector_part(self, pod) -> tuple[int, list[int], np.ndarray]:
        """(required groups, packed selectors, masks) of the pod: its nodeSelector + required
        node affinity and the added required affinity (Filter), the added and the pod's
        preferred terms (Score). Memoised by the canonical terms (pods of one template
        share them)."""
        na = self.na
        if na is None:
            return 0, [0, 0, 0, 0], _EMPTY_BOOL
        spec = pod.pod.spec
        snap = self.snapshot
        filters = "NodeAffinity" in self.filters
        scores = "NodeAffinity" in self.weights
        required = pod_required_terms(pod.pod) if filters and (
            spec.node_selector or spec.affinity is not None) else None
        preferred = None
        if scores and spec.affinity is not None and spec.affinity.node_affinity is not None:
            preferred = tuple((t.weight, _canon_term(t.preference))
                              for t in spec.affinity.node_affinity.preferred)
        if required is None and preferred is None and na.added_required is None \
                and na.added_preferred is None:
            return 0, [0, 0, 0, 0], _EMPTY_BOOL
        key = ("sel", snap.generation, filters, scores, required, preferred)
        got = self._memo.get(key)
        if got is not None:
            return got
        groups = []
        scored = []
        if filters:
            compiled = na._pod_selector(pod) if required is not None else None
            if compiled is not None:
                groups.append(compiled)
            if na.added_required is not None:
                groups.append(na._added_selector())
        if scores:
            wts = [na._added_weighted()]
            if preferred is not None:
                wts.append(na._pod_weighted(pod))
            for wt in wts:
                if wt is not None and not wt.empty:
                    wt.compiled = refresh(snap, wt.compiled)
                    scored.append(wt)
        part: list[int] = []
        mask = _pack_selectors(part, groups, scored) if groups or scored else _EMPTY_BOOL
        if not (groups or scored):
            part = [0, 0, 0, 0]
        if len(self._memo) > 4096:
            self._memo.clear()
        got = self._memo[key] = (len(groups), part, mask)
        return got

    def _fit_part(self, request: np.ndarray) -> list[int]:
        """[columns checked, the columns, the pod's request of each] (memoised)."""
        snap = self.snapshot
        key = (snap.num_resources, request.tobytes())
        got = self._memo.get(key)
        if got is None:
            check = self.inst["NodeResourcesFit"]._checked_columns(snap, request)
            cols = np.flatnonzero(check)
            got = self._memo[key] = [int(cols.size)] + cols.tolist() + request[cols].tolist()
        return got

    def _resource_key(self, pod):
        """(memo key of the resource part, request vector, the fit scorer's requests)."""
        snap = self.snapshot
        spec = pod.pod.spec
        nres = len(snap.resources.names)
        request = pod.request_vector
        if request.shape[0] < nres:
            request, _ = snap.request_vectors(pod)
        fit_reqs = None
        fit_vals = None
        if self._fit_scores:
            if self._nonzero_is_scoring and (spec.resources is None
                                             or pod_level_requests(spec) == {}):
                fit_reqs = pod.nonzero_requests  # = pod_requests(spec, SCORING_DEFAULTS)
                fit_vals = tuple(fit_reqs.items())  # (finer than the scorer's values)
            else:
                fit_reqs = self.inst["NodeResourcesFit"].score_requests(pod)
                get = fit_reqs.get
                fit_vals = tuple([get(n, 0) for n in self._fit_names])
        # (the request vector and the balanced scorer's values follow from the requests)
        bal_vals = tuple(pod.requests.items())
        images = None
        if self.img is not None:
            # the image ids (ImageLocality's pod_images: -1 for an image on no node)
            idx = self.img.index()
            if self._image_ids[0] is not idx:
                self._image_ids = (idx, {})
            ids = self._image_ids[1]
            names = [c.image for c in spec.init_containers] + \
                [c.image for c in spec.containers] if spec.init_containers \
                else [c.image for c in spec.containers]
            out = []
            for name in names:
                i = ids.get(name)
                if i is None:
                    i = ids[name] = idx.ids.get(normalized_image_name(name), -1)
                out.append(i)
            images = tuple(out)
        gpu = (pod.num_gpu, pod.gpu_milli, pod.gpu_models) if self._gpu and pod.num_gpu \
            else None
        key = (snap.generation, nres, fit_vals, bal_vals, images, gpu)
        return key, request, fit_reqs

    def _resource_part(self, pod, head: list[int], key, request, fit_reqs) -> list[int]:
        """The NodeResourcesFit filter, the resource scorers, ImageLocality and DotProduct
        inputs, packed right after the header (memoised by what they depend on: the pod's
        request vector, the scorers' request values, its images)."""
        mkey = ("res", key)
        got = self._memo.get(mkey)
        if got is None:
            got = self._memo[mkey] = self._compute_resource_part(pod, request, fit_reqs)
            if len(self._memo) > 4096:
                self._memo.clear()
        updates, body = got
        for i, v in updates:
            head[i] = v
        return list(body)

    def _compute_resource_part(self, pod, request, fit_reqs):
        snap = self.snapshot
        inst = self.inst
        filters = self.filters
        weights = self.weights
        head = list(_HEAD0)
        body: list[int] = []
        head[H_OFF_FIT] = HEADER
        if "NodeResourcesFit" in filters:
            head[H_FIT] = 1
            check = inst["NodeResourcesFit"]._checked_columns(snap, request)
            cols = np.flatnonzero(check)
            body += [int(cols.size)] + cols.tolist() + request[cols].tolist()
        else:
            body.append(0)
        if fit_reqs is not None:
            fit = inst["NodeResourcesFit"]
            head[H_OFF_SFIT] = HEADER + len(body)
            head[H_W_FIT] = weights["NodeResourcesFit"]
            _pack_scorer(body, fit.scorer, pod_score_input(snap, fit.scorer, fit_reqs))
        if "NodeResourcesBalancedAllocation" in weights:
            bal = inst["NodeResourcesBalancedAllocation"]
            sc = pod_score_input(snap, bal.scorer, pod.requests)
            if sc.request.any():  # else PreScore skips / Score is 0 everywhere
                head[H_OFF_SBAL] = HEADER + len(body)
                head[H_W_BAL] = weights["NodeResourcesBalancedAllocation"]
                _pack_scorer(body, bal.scorer, sc)
        if self.img is not None:
            idx = self.img.index()
            images = idx.pod_images(pod)
            head[H_OFF_IMG] = HEADER + len(body)
            head[H_IMG_TOTAL] = idx.total_nodes
            if (images >= 0).any():  # else the score is 0 on every node
                head[H_W_IMG] = weights["ImageLocality"]
                body.append(int(images.size))
                body += images.tolist()
            else:
                body.append(0)
        head[H_OFF_GPU] = HEADER + len(body)
        if self._gpu and pod.num_gpu > 0:  # (GpuShare's PreFilter skips pods without)
            head[H_GPU] = pod.num_gpu
            head[H_GPU_MILLI] = pod.gpu_milli
            head[H_GPU_ANY] = 0 if pod.gpu_models else 1
            models = model_mask(snap, pod.gpu_models)
            body.append(int(models.size))
            body += models.astype(np.int64).tolist()
        else:
            body.append(0)
        if "DotProduct" in weights and (request[0] != 0 or request[1] != 0):
            head[H_W_DOT] = weights["DotProduct"]
            head[H_DOT_CPU] = int(request[0])
            head[H_DOT_MEM] = int(request[1])
        updates = [(i, v) for i, v in enumerate(head) if v != _HEAD0[i]]
        return updates, body

    def _pack(self, pod):
        """(P, mask) for the pod (its plugins' kernel inputs, packed). Pods without
        tolerations, node selector, affinity or node name share the pack of their resource
        part (memoised whole)."""
        snap = self.snapshot
        filters = self.filters
        spec = pod.pod.spec
        rkey, request, fit_reqs = self._resource_key(pod)
        plain = not spec.tolerations and not spec.node_selector and spec.affinity is None \
            and not spec.node_name
        key = ("plain", rkey) if plain else self._shape_key(pod, rkey)
        got = self._memo.get(key)
        if got is not None:
            return got
        head = list(self._head0)
        head[H_PNS] = 1 if self._has_prefer_no_schedule() else 0
        body = self._resource_part(pod, head, rkey, request, fit_reqs)
        if self._f_unsched:
            head[H_UNSCHED] = 0 if spec.tolerations and tolerates_unschedulable(pod) else 1
        if self._f_nodename and spec.node_name:
            head[H_NODENAME] = 1
            head[H_NODENAME_TARGET] = snap.node_index.get(spec.node_name, -1)
        # tolerations: all of them (Filter), and those of PreferNoSchedule or no effect
        head[H_OFF_TOL] = HEADER + len(body)
        if not spec.tolerations:
            body += (0, 0)
        else:
            tt = self.inst["TaintToleration"]
            tol_all = tt._compiled(pod, "all") if "TaintToleration" in filters else None
            tol_pref = tt._compiled(pod, "prefer") if "TaintToleration" in self.weights \
                else None
            body += (tol_all.key.size if tol_all is not None else 0,
                     tol_pref.key.size if tol_pref is not None else 0)
            for c in (tol_all, tol_pref):
                if c is not None:
                    body += c.key.tolist()
                    body += c.exists.astype(np.int64).tolist()
                    body += c.value.tolist()
                    body += c.effect.tolist()
        # node selectors: required groups, then weighted terms (group -1)
        head[H_OFF_SEL] = HEADER + len(body)
        n_groups, part, mask = self._selector_part(pod)
        head[H_AFF_GROUPS] = n_groups
        body += part
        head[H_OFF_PTS] = HEADER + len(body)
        body += self._spread_part()
        head += body
        packed = np.array(head, np.int64), mask
        if len(self._memo) > 4096:
            self._memo.clear()
        self._memo[key] = packed
        return packed

    def _spread_part(self) -> list[int]:
        """The default constraints as :func:`_default_spread_scores` reads them (their label
        key and value ids: per snapshot generation, as the pack)."""
        if not self._spread_fused:
            return [0]
        snap = self.snapshot
        out = [len(self.pts.defaults)]
        for c in self.pts.defaults:
            k = snap.vocab.key_id(c.topology_key)
            n_values = len(snap.vocab.values[k]) if k >= 0 else 0
            e = snap.vocab.value_id(k, "") if k >= 0 else -1
            out += [k, e if e >= 0 else n_values, n_values,
                    1 if c.topology_key == HOSTNAME_LABEL else 0, c.max_skew]
        return out

    def _has_prefer_no_schedule(self) -> bool:
        """Whether some node has a PreferNoSchedule taint (per snapshot generation)."""
        snap = self.snapshot
        got = self._pns
        if got[0] != snap.generation:
            got = self._pns = (snap.generation, bool((snap.taint_arrays[3] == 1).any()))
        return got[1]

    def _shape_key(self, pod, rkey) -> tuple:
        """Memo key of the whole pack of a pod with tolerations, node selector, affinity or
        node name: everything the pack is made of (see :meth:`_pack`)."""
        spec = pod.pod.spec
        tols = tuple([(t.key, t.operator, t.value, t.effect) for t in spec.tolerations]) \
            if spec.tolerations else ()
        required = preferred = None
        if self.na is not None:
            if "NodeAffinity" in self.filters and (spec.node_selector
                                                   or spec.affinity is not None):
                required = pod_required_terms(pod.pod)
            if "NodeAffinity" in self.weights and spec.affinity is not None \
                    and spec.affinity.node_affinity is not None:
                preferred = tuple((t.weight, _canon_term(t.preference))
                                  for t in spec.affinity.node_affinity.preferred)
        return ("shape", rkey, tols, len(self.snapshot.taint_strings), spec.node_name,
                required, preferred)

    def inputs(self, pod):
        """The pod's (P, mask), cached per snapshot state; None if the pod is not fusable."""
        snap = self.snapshot
        key = (self._key_base, snap.generation, len(snap.resources.names))
        entry = pod.cache.get("fused")
        if entry is not None and entry[0] == key:
            return entry[1]
        packed = self._pack(pod) if self._static_ok(pod) else None
        pod.cache["fused"] = (key, packed)
        return packed

    def prepare(self, pod) -> None:
        """Compile the pod's inputs ahead of its cycle (what :meth:`run` would compute and
        cache first). Errors are left for the cycle to raise, where they always did."""
        try:
            if not self._pts_defaults or self._spread_fused or self._default_selector_ok(pod):
                self.inputs(pod)
        except Exception:  # noqa: BLE001  (raised again, in place, by the cycle)
            pod.cache.pop("fused", None)

    # ------------------------------------------------------------------------- the cycle

    def _inputs_now(self, pod):
        """The pod's (P, mask) when it is fusable in the cluster's state now, else None."""
        if not self._dynamic_ok(pod):
            return None
        return self.inputs(pod)

    def run(self, pod, order: np.ndarray, start: int, to_find: int):
        """The kernel over ``order`` from ``start``: (found, processed, status, top) or None
        when the pod is not fusable now."""
        packed = self._inputs_now(pod)
        if packed is None:
            return None
        P, mask = packed
        return _fused_cycle_of(order, start, to_find, P, mask, self._cluster_arrays(),
                               self._spread_counts(pod))

    def failures(self, pod, order: np.ndarray, start: int) -> np.ndarray | None:
        """Per node of ``order`` from ``start``, the filter checks it fails (FAIL_BITS), or
        None when the pod is not fusable now."""
        packed = self._inputs_now(pod)
        if packed is None:
            return None
        return _fused_failures(order, start, packed[0], packed[1], self._cluster_arrays())

    def _cluster_arrays(self) -> _ClusterArrays:
        """The snapshot's arrays the kernel reads (kept while the snapshot's generation and
        views are the same)."""
        snap = self.snapshot
        got = self._arrays
        if got is not None and got[0] == snap.generation and got[1] is snap.allocatable \
                and got[2] is snap.labels:
            return got[3]
        ptr, t_key, t_value, t_effect = snap.taint_arrays
        if self.img is not None:
            idx = self.img.index()
            images = (idx.ptr, idx.image, idx.size, idx.num_nodes)
        else:
            images = _EMPTY_IMAGES
        arrays = _ClusterArrays(snap.allocatable, snap.requested, snap.nonzero_requested,
                                snap.pod_count, snap.allowed_pods, snap.unschedulable,
                                snap.labels, ptr, t_key, t_value, t_effect, snap.gpu_free,
                                snap.gpu_count, snap.gpu_model, *images, snap.columns,
                                snap.num_nodes, snap._cols_state)
        self._arrays = (snap.generation, snap.allocatable, snap.labels, arrays)
        return arrays


    def score(self, pod, nodes: np.ndarray):
        """PreScore + Score + NormalizeScore + weights of ``nodes`` in one kernel call: the
        weighted totals (what :meth:`Framework.run_scores` sums), or None when the pod is not
        fusable or a score is out of range (the per-plugin path then decides)."""
        packed = self.inputs(pod)
        if packed is None or not self._dynamic_ok(pod):
            return None
        P, mask = packed
        status, total = _score_nodes_of(np.ascontiguousarray(nodes, np.int64), P, mask,
                                        self._cluster_arrays(),
                                        self.snapshot.evaluation_order(),  # (cached)
                                        self._spread_counts(pod))
        return total if status == OK else None


def _pack_selectors(body: list[int], groups: list, scored: list) -> np.ndarray:
    """Append [terms, reqs, term_ptr, term_group, term_weight, req_key, req_absent,
    mask_ptr] for the required selectors (group g) and weighted terms (group -1); returns the
    concatenated masks."""
    term_ptr = [0]
    term_group: list[int] = []
    term_weight: list[int] = []
    req_key: list[int] = []
    req_absent: list[int] = []
    mask_ptr = [0]
    masks = []
    base = 0

    def add(compiled, group, weights):
        nonlocal base
        n_terms = compiled.term_ptr.size - 1
        r0 = len(req_key)
        for t in range(n_terms):
            term_ptr.append(r0 + int(compiled.term_ptr[t + 1]))
            term_group.append(group)
            term_weight.append(int(weights[t]) if weights is not None else 0)
        req_key.extend(compiled.req_key.tolist())
        req_absent.extend(compiled.req_absent.astype(np.int64).tolist())
        mask_ptr.extend((base + compiled.mask_ptr[1:]).tolist())
        base += int(compiled.mask_ptr[-1])
        masks.append(compiled.mask)

    for g, compiled in enumerate(groups):
        add(compiled, g, None)
    for wt in scored:
        add(wt.compiled, -1, wt.weights)
    body += [len(term_group), len(req_key)] + term_ptr + term_group + term_weight + req_key \
        + req_absent + mask_ptr
    return np.concatenate(masks) if masks else _EMPTY_BOOL


def _pack_scorer(body: list[int], spec, s) -> None:
    body += [spec.strategy, int(spec.weights.size)] + s.columns.tolist() \
        + s.nonzero.astype(np.int64).tolist() + s.request.tolist() + spec.weights.tolist() \
        + [int(spec.shape_utilization.size)] + spec.shape_utilization.tolist() \
        + spec.shape_score.tolist()


def _default_selector_empty(pod, cluster) -> bool:
    """Whether kube's DefaultSelector of the pod has no requirement (then no default spread
    constraint applies): no Service of its namespace with a non-empty selector selects it and
    it has no controller (else :func:`~.spreading.default_selector` decides)."""
    if _controller(pod.pod) is None:
        index = _service_index(cluster)  # (the Services with a non-empty selector)
        if not index:
            return True
        ns = pod.namespace
        labels = pod.labels
        services = cluster.services
        for k, v in labels.items():
            for pos in index.get((ns, k, v), ()):
                sel = services[pos].spec.selector
                if all(k2 in labels and labels[k2] == v2 for k2, v2 in sel.items()):
                    return False
        return True
    return default_selector(pod.pod, cluster).empty
