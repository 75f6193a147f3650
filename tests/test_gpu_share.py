"""GPU sharing in the kube framework: per-GPU snapshot state, the GpuShare filter kernel and
the GPU choice against the plain reference, annotations, and state restored by removals and
preemption."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from schedbench.errors import InputError
from schedbench.model.objects import Node
from schedbench.scheduler.framework import CycleState
from schedbench.scheduler.plugins.gpu_share import gpu_filter_codes, gpu_filter_reason
from schedbench.scheduler.snapshot import (
    GPU_COUNT,
    GPU_INDEX,
    GPU_MILLI,
    GPU_MODEL,
    NodeSnapshot,
    choose_gpus,
    parse_gpu_request,
)
from schedbench.scheduler.scheduler import Scheduler
from schedbench.scheduler.profiles import resolve_profile
from schedbench.replay.kube_engine import with_gpu_share

from reference import gpu_share as ref
from scheduler_helpers import make_cluster, make_node, make_pod

MODELS = ("A100", "V100", "T4")


def gpu_node(name: str, gpus: int, model: str = "", cpu: str = "32", memory: str = "128Gi"
             ) -> Node:
    labels = {"kubernetes.io/hostname": name}
    if model:
        labels[GPU_MODEL] = model
    extra = {GPU_COUNT: str(gpus)} if gpus else {}
    return make_node(name, cpu=cpu, memory=memory, labels=labels, extra=extra)


def gpu_pod(name: str, num_gpu: int, milli: int = 1000, models: tuple[str, ...] = (),
            cpu: str = "1", memory: str = "1Gi", node: str = "", index: str | None = None,
            priority: int | None = None):
    pod = make_pod(name, cpu=cpu, memory=memory, node=node,
                   **({"priority": priority} if priority is not None else {}))
    ann = pod.metadata.annotations
    if num_gpu:
        ann[GPU_COUNT] = str(num_gpu)
        ann[GPU_MILLI] = str(milli)
    if models:
        ann[GPU_MODEL] = "|".join(models)
    if index is not None:
        ann[GPU_INDEX] = index
    return pod


# ------------------------------------------------------------------------- strategies

@st.composite
def gpu_nodes(draw):
    """(gpu count, model, free milli per GPU) per node."""
    n = draw(st.integers(1, 6))
    out = []
    for _ in range(n):
        c = draw(st.integers(0, 8))
        model = draw(st.sampled_from(("",) + MODELS))
        free = draw(st.lists(st.sampled_from((0, 1, 100, 250, 499, 500, 501, 750, 999, 1000))
                             | st.integers(0, 1000), min_size=c, max_size=c))
        out.append((c, model, free))
    return out


@st.composite
def gpu_requests(draw):
    k = draw(st.integers(1, 5))
    milli = draw(st.integers(1, 1000) | st.sampled_from((1, 500, 999, 1000))) if k == 1 \
        else 1000
    models = tuple(draw(st.lists(st.sampled_from(MODELS + ("H100",)), max_size=2,
                                 unique=True)))
    return k, milli, models


def snapshot_with(nodes) -> NodeSnapshot:
    snap = NodeSnapshot([gpu_node(f"n{i}", c, model) for i, (c, model, _) in enumerate(nodes)])
    for i, (c, _, free) in enumerate(nodes):
        snap.gpu_free[i, :c] = free
    return snap


# ------------------------------------------------------------------- kernel vs reference

@given(gpu_nodes(), gpu_requests())
def test_filter_kernel_matches_reference(nodes, request):
    k, milli, models = request
    snap = snapshot_with(nodes)
    idx = np.arange(len(nodes), dtype=np.int64)[::-1].copy()
    codes = gpu_filter_codes(snap, idx, k, milli, models)
    for pos, n in enumerate(idx):
        c, model, free = nodes[n]
        want, reasons = ref.filter_verdict(list(free), model if c else "", k, milli, models)
        assert codes[pos] == want, (nodes[n], request)
        assert gpu_filter_reason(snap, int(n), k, milli, models) == reasons


@given(st.lists(st.integers(0, 1000), min_size=0, max_size=8), gpu_requests())
def test_gpu_choice_matches_reference(free, request):
    k, milli, _ = request
    got = choose_gpus(np.array(free, np.int64), len(free), k, milli)
    assert got == ref.choose(free, k, milli)


@given(gpu_nodes(), st.lists(gpu_requests(), min_size=1, max_size=12), st.randoms())
def test_add_remove_restores_per_gpu_state(nodes, requests, rnd):
    """Pods added where GpuShare lets them take the reference's GPUs; removing them in any
    order gives back exactly the GPUs each took; no GPU ever goes below 0."""
    snap = snapshot_with(nodes)
    start = snap.gpu_free.copy()
    added = []
    for j, (k, milli, models) in enumerate(requests):
        info = snap.pod_info(gpu_pod(f"p{j}", k, milli, models))
        feasible = np.flatnonzero(gpu_filter_codes(snap, np.arange(snap.num_nodes), k, milli,
                                                   models) == 0)
        if feasible.size == 0:
            continue
        n = int(feasible[rnd.randrange(feasible.size)])
        c = int(snap.gpu_count[n])
        want = ref.choose([int(x) for x in snap.gpu_free[n, :c]], k, milli)
        before = snap.gpu_free[n].copy()
        snap.add_pod(info, n)
        assert info.gpu_indices == want
        assert info.pod.metadata.annotations[GPU_INDEX] == "-".join(map(str, want))
        diff = before - snap.gpu_free[n]
        assert sorted(np.flatnonzero(diff).tolist()) == sorted(want)
        assert (diff[list(want)] == milli).all()
        assert (snap.gpu_free[n, :c] >= 0).all()
        # the resource column keeps the total
        assert snap.requested[n, snap.resources.get(GPU_MILLI)] == int(
            (start[n] - snap.gpu_free[n]).sum())
        added.append(info)
    rnd.shuffle(added)
    for info in added:
        snap.remove_pod(info)
    assert (snap.gpu_free == start).all()


# ---------------------------------------------------------------------------- annotations

def test_parse_gpu_request_defaults_and_models():
    assert parse_gpu_request(make_pod("a", cpu="1")) == (0, 0, ())
    assert parse_gpu_request(gpu_pod("b", 2)) == (2, 1000, ())
    assert parse_gpu_request(gpu_pod("c", 1, 300, ("A100", "T4"))) == (1, 300, ("A100", "T4"))
    p = make_pod("d", cpu="1")
    p.metadata.annotations[GPU_MILLI] = "250"
    assert parse_gpu_request(p) == (1, 250, ())


@pytest.mark.parametrize("ann, field", [
    ({GPU_COUNT: "two"}, GPU_COUNT),
    ({GPU_COUNT: "-1"}, GPU_COUNT),
    ({GPU_COUNT: "1", GPU_MILLI: "1500"}, GPU_MILLI),
    ({GPU_COUNT: "1", GPU_MILLI: "0"}, GPU_MILLI),
    ({GPU_COUNT: "2", GPU_MILLI: "500"}, GPU_MILLI),
    ({GPU_COUNT: "1", GPU_MILLI: "0.5"}, GPU_MILLI),
])
def test_malformed_annotations_name_pod_and_field(ann, field):
    p = make_pod("bad", cpu="1")
    p.metadata.annotations.update(ann)
    with pytest.raises(InputError) as err:
        NodeSnapshot([]).pod_info(p)
    assert err.value.obj == "Pod/default/bad"
    assert err.value.field == f"metadata.annotations.{field}"


def test_bound_pods_take_annotated_gpus_and_conflicts_are_errors():
    cluster = make_cluster([gpu_node("n0", 4, "A100")], [
        gpu_pod("a", 2, node="n0", index="1-3"),
        gpu_pod("b", 1, 400, node="n0", index="0"),
        gpu_pod("c", 1, 600, node="n0"),   # no index: chosen (best fit: GPU 0, 600 left)
    ])
    s = Scheduler(cluster)
    # a: GPUs 1 and 3; b: 400 of GPU 0; c: the 600 left on GPU 0 (least left that fits)
    assert s.snapshot.gpu_free[0].tolist()[:4] == [0, 0, 1000, 0]
    assert s.snapshot.pods["default/c"].gpu_indices == (0,)
    bad = make_cluster([gpu_node("n0", 2)], [gpu_pod("a", 1, node="n0", index="0"),
                                             gpu_pod("b", 1, 500, node="n0", index="0")])
    with pytest.raises(InputError, match="GPU 0 of node n0 has 0 milli left"):
        Scheduler(bad)
    bad = make_cluster([gpu_node("n0", 2)], [gpu_pod("a", 1, node="n0", index="5")])
    with pytest.raises(InputError) as err:
        Scheduler(bad)
    assert err.value.field == f"metadata.annotations.{GPU_INDEX}"
    bad = make_cluster([gpu_node("n0", 2)], [gpu_pod("a", 1, node="n0", index="x")])
    with pytest.raises(InputError):
        Scheduler(bad)


def test_cpu_only_cluster_keeps_its_columns():
    snap = NodeSnapshot([make_node("n0")])
    snap.add_pod(snap.pod_info(make_pod("p", cpu="1")), 0)
    assert GPU_MILLI not in snap.resources.ids
    assert snap.max_gpus == 0


# ------------------------------------------------------------------- through the scheduler

def gpu_scheduler(nodes, pods, policy="best-fit", seed=0):
    cfg, profile, _ = resolve_profile(policy)
    s = Scheduler(make_cluster(nodes, pods), with_gpu_share(profile), config=cfg, seed=seed)
    s.enqueue_pending()
    return s


def test_scheduler_places_shares_and_reports_kube_style_reasons():
    nodes = [gpu_node("a100", 2, "A100"), gpu_node("t4", 1, "T4"), make_node("cpu")]
    pods = [gpu_pod("s1", 1, 600), gpu_pod("s2", 1, 300), gpu_pod("s3", 1, 400),
            gpu_pod("w", 2, models=("A100",)), gpu_pod("h", 1, models=("H100",))]
    s = gpu_scheduler(nodes, pods)
    s.run()
    out = s.outcomes()
    snap = s.snapshot
    for key, o in out.items():
        if o["status"] == "scheduled":
            info = snap.pods[key]
            assert snap.gpu_count[info.node] >= info.num_gpu
    assert (snap.gpu_free[snap.gpu_count > 0] >= -1).all()
    h = out["default/h"]
    assert h["status"] == "pending"
    assert "node(s) didn't match GPU model" in h["reason"] or \
        "Insufficient alibabacloud.com/gpu-milli" in h["reason"]
    # no single GPU over-committed
    for n in range(snap.num_nodes):
        c = snap.gpu_count[n]
        assert (snap.gpu_free[n, :c] >= 0).all()


def test_filter_reason_strings_and_codes():
    nodes = [gpu_node("a", 2, "A100"), gpu_node("t", 1, "T4")]
    cfg, profile, _ = resolve_profile("best-fit")
    s = Scheduler(make_cluster(nodes), with_gpu_share(profile), config=cfg)
    fw = s.framework
    plugin = fw.instances["GpuShare"]
    snap = s.snapshot
    for pod, want in [
        (gpu_pod("x", 1, 500, ("T4",)), {0: (3, "node(s) didn't match GPU model"), 1: (0, "")}),
        (gpu_pod("y", 2), {0: (0, ""), 1: (3, "Insufficient GPU")}),
    ]:
        info = snap.pod_info(pod)
        state = CycleState()
        plugin.pre_filter(state, info, snap.alive_nodes())
        codes = plugin.filter(state, info, np.arange(2))
        for n, (code, reason) in want.items():
            assert codes[n] == code
            if code:
                assert plugin.filter_reasons(state, info, n) == [reason]
    snap.gpu_free[0, :2] = [100, 1000]
    info = snap.pod_info(gpu_pod("z", 2))
    state = CycleState()
    plugin.pre_filter(state, info, snap.alive_nodes())
    assert plugin.filter(state, info, np.arange(1))[0] == 2  # resolvable by freeing


def test_cpu_pods_skip_gpushare():
    cfg, profile, _ = resolve_profile("best-fit")
    s = Scheduler(make_cluster([make_node("n")]), with_gpu_share(profile), config=cfg)
    plugin = s.framework.instances["GpuShare"]
    info = s.snapshot.pod_info(make_pod("p", cpu="1"))
    status, _ = plugin.pre_filter(CycleState(), info, s.snapshot.alive_nodes())
    assert status.is_skip


def test_preemption_restores_and_frees_gpus():
    """Low-priority share pods fill both GPUs; a high-priority whole-GPU pod preempts. Dry runs
    leave the per-GPU state as it was; the evicted pods' GPUs are free for the preemptor."""
    nodes = [gpu_node("n", 2, "A100")]
    low = [gpu_pod(f"l{i}", 1, 600, priority=0) for i in range(2)]
    s = gpu_scheduler(nodes, low, policy="default")
    s.run()
    snap = s.snapshot
    assert sorted(snap.gpu_free[0, :2].tolist()) == [400, 400]
    s.enqueue(gpu_pod("hi", 1, 1000, priority=100))
    s.run()
    out = s.outcomes()
    assert out["default/hi"]["status"] == "scheduled"
    # rebuilt from the pods bound now
    want = np.full(2, 1000)
    for info in snap.pods.values():
        for j in info.gpu_indices:
            want[j] -= info.gpu_milli
    assert snap.gpu_free[0, :2].tolist() == want.tolist()
    assert any(o["status"] == "failed" for o in out.values())


def test_custom_profile_file_may_name_gpushare(tmp_path):
    f = tmp_path / "cfg.yaml"
    f.write_text("apiVersion: kubescheduler.config.k8s.io/v1\nkind: KubeSchedulerConfiguration\n"
                 "profiles:\n- schedulerName: default-scheduler\n  plugins:\n"
                 "    preFilter: {enabled: [{name: GpuShare}]}\n"
                 "    filter: {enabled: [{name: GpuShare}]}\n")
    _, profile, _ = resolve_profile(str(f))
    assert "GpuShare" in profile.names("filter")


# ------------------------------------------------------- the fused path on GPU clusters

def _fused_gpu_run(nodes, pods, policy, seed, use_fused):
    cfg, profile, _ = resolve_profile(policy)
    s = Scheduler(make_cluster(nodes, pods), with_gpu_share(profile), config=cfg, seed=seed,
                  fused=use_fused)
    s.enqueue_pending()
    s.run()
    return s


def _fused_gpu_state(s):
    snap = s.snapshot
    trace = [(r.pod, r.node, int(r.code), r.message, r.nominated_node, tuple(r.victims),
              r.attempt, r.time, r.evaluated_nodes, r.feasible_nodes) for r in s.results]
    final = ({k: (p.node, p.gpu_indices) for k, p in snap.pods.items()},
             snap.requested.tolist(), snap.nonzero_requested.tolist(),
             snap.gpu_free.tolist(), s.next_start_node_index, s.outcomes())
    return trace, final


@st.composite
def gpu_clusters(draw):
    """Nodes with 0..8 GPUs of a model (or none), pending pods: CPU-only, shares, whole GPUs,
    some restricted to models, some of higher priority (preemption)."""
    n = draw(st.integers(1, 40)) if draw(st.integers(0, 3)) else draw(st.integers(100, 140))
    nodes = [gpu_node(f"n{i}", draw(st.integers(0, 8)), draw(st.sampled_from(("",) + MODELS)),
                      cpu=str(draw(st.sampled_from((4, 16, 32, 96)))))
             for i in range(n)]
    pods = []
    for j in range(draw(st.integers(1, 60))):
        kind = draw(st.integers(0, 3))
        cpu = str(draw(st.sampled_from((1, 2, 4, 8))))
        prio = draw(st.sampled_from((None, None, 0, 100)))
        if kind == 0:
            pods.append(gpu_pod(f"p{j}", 0, cpu=cpu, priority=prio))
            continue
        k, milli, models = draw(gpu_requests())
        if kind == 1:
            k, models = 1, ()
        pods.append(gpu_pod(f"p{j}", k, milli, models, cpu=cpu, priority=prio))
    return nodes, pods


@given(gpu_clusters(), st.sampled_from(("default", "best-fit", "worst-fit", "balanced")),
       st.integers(0, 2**16))
def test_fused_gpu_runs_equal_the_per_plugin_path(cluster, policy, seed):
    """GpuShare is fused: whole runs on GPU clusters are identical with and without the fused
    path (placements, GPUs taken, messages, counters, the random stream)."""
    nodes, pods = cluster
    nodes2, pods2 = gpu_clusters_copy(nodes, pods)
    a = _fused_gpu_run(nodes, pods, policy, seed, True)
    b = _fused_gpu_run(nodes2, pods2, policy, seed, False)
    assert a.fused is not None and b.fused is None
    assert _fused_gpu_state(a) == _fused_gpu_state(b)
    assert a.draws.state() == b.draws.state()


def gpu_clusters_copy(nodes, pods):
    """Fresh copies (a run writes spec.nodeName and GPU index annotations into the pods)."""
    import copy

    return copy.deepcopy(nodes), copy.deepcopy(pods)


def test_fused_gpu_replay_equals_the_per_plugin_path():
    """The default trace's replay takes the fused path and gives the same result."""
    from schedbench.replay import RunSpec
    from schedbench.replay.kube_engine import KubeReplay
    from schedbench.scheduler import fused
    from schedbench.traces import load_trace

    trace = load_trace("default")
    for policy in ("default", "best-fit"):
        spec = RunSpec("default", policy, 7)
        a = KubeReplay(trace, spec)
        ra = a.run()
        assert a.scheduler.fused is not None
        saved = fused.ENABLED
        fused.ENABLED = False
        try:
            b = KubeReplay(trace, spec)
            rb = b.run()
        finally:
            fused.ENABLED = saved
        ma = {k: v for k, v in ra.metrics.items() if k != "wall_seconds"}
        mb = {k: v for k, v in rb.metrics.items() if k != "wall_seconds"}
        assert ma == mb
        assert a.log == b.log
        assert ra.placements == rb.placements
