"""The scheduler's commands: schedule, explain, bench, and the built-in policies."""

from __future__ import annotations

import json

import pytest

from schedbench.cli import main
from schedbench.cluster import Cluster, example_cluster_path
from schedbench.manifests import load_manifests
from schedbench.scheduler.profiles import BUILTIN_POLICIES, resolve_profile
from schedbench.scheduler.scheduler import Scheduler
from schedbench.synthetic import synthetic_cluster

EXAMPLE = str(example_cluster_path())


@pytest.mark.parametrize("name", sorted(BUILTIN_POLICIES))
def test_every_builtin_policy_schedules_the_example(name):
    cfg, profile, _ = resolve_profile(name)
    cluster = Cluster.load(EXAMPLE)
    s = Scheduler(cluster, profile, config=cfg, seed=1)
    assert s.enqueue_pending() == 4
    s.run()
    out = s.outcomes()
    assert set(out) == {p.key for p in cluster.pods if not p.is_bound or p.key in out}
    # the constraints are the same for every policy: the GPU trainer only fits the GPU node,
    # batch-etl only the batch node; nothing is lost
    assert out["default/trainer"] == {"status": "scheduled", "node": "node-b2-gpu"}
    assert out["default/batch-etl"] == {"status": "scheduled", "node": "node-c1"}
    assert all(o["status"] in ("scheduled", "pending", "failed") for o in out.values())


def test_builtin_policies_score_every_node():
    for name in BUILTIN_POLICIES:
        cfg, profile, _ = resolve_profile(name)
        expected = 0 if name == "default" else 100
        assert cfg.effective_percentage_of_nodes_to_score(profile.scheduler_name) == expected


def test_best_fit_packs_and_worst_fit_spreads():
    def placements(policy):
        cfg, profile, _ = resolve_profile(policy)
        cluster = synthetic_cluster(20, 60, seed=3)
        s = Scheduler(cluster, profile, config=cfg, seed=3)
        s.enqueue_pending()
        s.run()
        return {o["node"] for o in s.outcomes().values() if o["status"] == "scheduled"}

    assert len(placements("best-fit")) < len(placements("worst-fit"))


def test_unknown_policy_is_a_one_line_error(capsys):
    assert main(["schedule", "--cluster", EXAMPLE, "--profile", "tightest-fit"]) == 2
    err = capsys.readouterr().err.strip()
    assert "not a built-in policy" in err and "tightest-fit" in err
    assert err.count("\n") == 0


def test_schedule_writes_cluster_with_node_names(tmp_path, capsys):
    out = tmp_path / "scheduled.yaml"
    assert main(["schedule", "--cluster", EXAMPLE, "-o", str(out), "--seed", "4"]) == 0
    summary = capsys.readouterr().out
    assert "3 placed" in summary and "shop/web-7d4b9c-new01" in summary
    objs = {o.ref: o for o in load_manifests(out)}
    assert objs["Pod/default/trainer"].spec.node_name == "node-b2-gpu"
    # the new web replica cannot satisfy its zone spread (zone-c's nodes still count as a
    # domain but are tainted or cordoned), exactly as kube-scheduler would leave it
    assert objs["Pod/shop/web-7d4b9c-new01"].spec.node_name == ""
    assert all(o.spec.node_name for o in objs.values()
               if o.KIND == "Pod" and o.name != "web-7d4b9c-new01")
    assert not list(tmp_path.glob(".*.tmp"))


def test_schedule_is_deterministic_for_a_seed(capsys):
    runs = []
    for _ in range(2):
        assert main(["schedule", "--cluster", EXAMPLE, "--format", "json", "--seed", "9"]) == 0
        runs.append(json.loads(capsys.readouterr().out))
    assert runs[0] == runs[1]


def test_schedule_reports_unschedulable_with_kube_message(tmp_path, capsys):
    pod = tmp_path / "big.yaml"
    pod.write_text("apiVersion: v1\nkind: Pod\nmetadata: {name: huge}\nspec:\n  containers:\n"
                   "  - name: c\n    resources: {requests: {cpu: '100'}}\n")
    assert main(["schedule", "--cluster", EXAMPLE, "--pods", str(pod), "--format",
                 "json"]) == 0
    result = json.loads(capsys.readouterr().out)
    reason = result["pods"]["default/huge"]["reason"]
    assert result["pods"]["default/huge"]["status"] == "pending"
    assert reason.startswith("0/6 nodes are available: ")
    assert "Insufficient cpu" in reason


def test_explain_json_has_the_documented_shape(tmp_path, capsys):
    pod = tmp_path / "pod.yaml"
    pod.write_text("apiVersion: v1\nkind: Pod\nmetadata: {name: probe, namespace: shop, "
                   "labels: {app: web}}\nspec:\n  containers:\n  - name: c\n"
                   "    resources: {requests: {cpu: 200m, memory: 100Mi}}\n")
    assert main(["explain", "--cluster", EXAMPLE, "--pod", str(pod), "--format", "json"]) == 0
    r = json.loads(capsys.readouterr().out)
    assert set(r) == {"pod", "profile", "selected", "nodes"}
    assert r["pod"] == "shop/probe" and r["profile"] == "default"
    codes = {"Success", "Unschedulable", "UnschedulableAndUnresolvable", "Skip"}
    for node, entry in r["nodes"].items():
        assert set(entry) == {"feasible", "filter", "score", "total"}
        for verdict in entry["filter"].values():
            assert verdict["code"] in codes and isinstance(verdict["reasons"], list)
        assert entry["feasible"] == all(v["code"] in ("Success", "Skip")
                                        for v in entry["filter"].values())
        if entry["feasible"]:
            total = 0
            for s in entry["score"].values():
                if not s.get("skipped"):
                    assert 0 <= s["normalized"] <= 100
                    total += s["normalized"] * s["weight"]
            assert total == entry["total"]
    # every filter ran on every node, so a tainted and cordoned node shows both failures
    c2 = r["nodes"]["node-c2"]["filter"]
    assert c2["NodeUnschedulable"]["code"] == "UnschedulableAndUnresolvable"
    assert c2["TaintToleration"]["code"] == "UnschedulableAndUnresolvable"
    feasible = [n for n, e in r["nodes"].items() if e["feasible"]]
    best = max(r["nodes"][n]["total"] for n in feasible)
    assert r["selected"] in feasible and r["nodes"][r["selected"]]["total"] == best


def test_explain_table_and_pod_file_errors(tmp_path, capsys):
    two = tmp_path / "two.yaml"
    two.write_text("apiVersion: v1\nkind: Node\nmetadata: {name: n}\n")
    assert main(["explain", "--cluster", EXAMPLE, "--pod", str(two)]) == 2
    assert "expected exactly one Pod, found 0" in capsys.readouterr().err


def test_bench_prints_the_documented_record(capsys):
    assert main(["bench", "--nodes", "50", "--pods", "120", "--profile", "best-fit"]) == 0
    r = json.loads(capsys.readouterr().out)
    assert list(r) == ["nodes", "pods", "profile", "placed", "seconds", "pods_per_second",
                       "us_per_pod"]
    assert r["nodes"] == 50 and r["pods"] == 120 and r["profile"] == "best-fit"
    assert 0 < r["placed"] <= 120
    assert r["us_per_pod"] == pytest.approx(r["seconds"] / 120 * 1e6, rel=1e-3)


def test_bench_rejects_non_positive_sizes(capsys):
    with pytest.raises(SystemExit) as err:
        main(["bench", "--nodes", "0"])
    assert err.value.code == 2


def test_random_policy_picks_uniformly_among_feasible_nodes():
    """Every feasible node ties under ``random``; across seeds each one gets chosen (a profile
    with no Score plugin would always take the first feasible node instead)."""
    from schedbench.model.objects import Node, NodeStatus, ObjectMeta
    from schedbench.synthetic import synthetic_pods

    cfg, profile, _ = resolve_profile("random")
    chosen = set()
    for seed in range(40):
        nodes = [Node(metadata=ObjectMeta(name=f"n{i}"),
                      status=NodeStatus(allocatable={"cpu": 4000, "memory": 8 * 2 ** 30,
                                                     "pods": 10})) for i in range(4)]
        cluster = Cluster(nodes=nodes, pods=synthetic_pods(1, seed=1))
        s = Scheduler(cluster, profile, config=cfg, seed=seed)
        s.enqueue_pending()
        s.run()
        (outcome,) = s.outcomes().values()
        chosen.add(outcome["node"])
    assert chosen == {"n0", "n1", "n2", "n3"}


GPU_CLUSTER = """\
apiVersion: v1
kind: Node
metadata:
  name: gpu-t4
  labels: {alibabacloud.com/gpu-card-model: T4}
status:
  allocatable: {cpu: "16", memory: 64Gi, pods: "110", alibabacloud.com/gpu-count: "4"}
---
apiVersion: v1
kind: Node
metadata:
  name: cpu-only
status:
  allocatable: {cpu: "64", memory: 256Gi, pods: "110"}
"""


def _gpu_pod(name: str, milli: int, count: int = 1, model: str = "") -> str:
    ann = {"alibabacloud.com/gpu-count": str(count), "alibabacloud.com/gpu-milli": str(milli)}
    if model:
        ann["alibabacloud.com/gpu-card-model"] = model
    return json.dumps({"apiVersion": "v1", "kind": "Pod",
                       "metadata": {"name": name, "annotations": ann},
                       "spec": {"containers": [{"name": "c", "resources": {
                           "requests": {"cpu": "1", "memory": "1Gi"}}}]}})


def test_schedule_enables_gpu_sharing_for_gpu_clusters(tmp_path, capsys):
    """`schedule` on a cluster with shared GPUs adds the GpuShare filter: GPU pods go to the
    GPU node only, share GPUs up to 1000 milli each, and a wrong model or four more whole GPUs
    stays pending with the reasons; the written pods carry their GPU indices."""
    (tmp_path / "cluster.yaml").write_text(GPU_CLUSTER)
    pods = [_gpu_pod("a-v100", 100, model="V100M16"), _gpu_pod("half-a", 500),
            _gpu_pod("half-b", 500), _gpu_pod("whole", 1000), _gpu_pod("too-many", 1000, count=4)]
    (tmp_path / "pods.yaml").write_text("\n---\n".join(pods))
    out = tmp_path / "out.yaml"
    assert main(["schedule", "--cluster", str(tmp_path / "cluster.yaml"), "--pods",
                 str(tmp_path / "pods.yaml"), "--profile", "best-fit", "-o", str(out),
                 "--format", "json"]) == 0
    result = json.loads(capsys.readouterr().out)["pods"]
    assert {k for k, o in result.items() if o["status"] == "scheduled"} == \
        {"default/half-a", "default/half-b", "default/whole"}
    assert all(result[k]["node"] == "gpu-t4" for k in ("default/half-a", "default/half-b",
                                                        "default/whole"))
    # NodeResourcesFit sees the GPU milli total (a resource column) before GpuShare runs
    assert "2 Insufficient alibabacloud.com/gpu-milli" in result["default/too-many"]["reason"]
    assert "1 node(s) didn't match GPU model" in result["default/a-v100"]["reason"]
    written = {o.metadata.name: o for o in load_manifests(str(out)) if o.KIND == "Pod"}
    indices = {n: written[n].metadata.annotations["alibabacloud.com/gpu-index"]
               for n in ("half-a", "half-b", "whole")}
    assert indices["half-a"] == indices["half-b"] != indices["whole"]
