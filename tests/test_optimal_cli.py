"""``schedbench optimal``: the JSON keys, the table, -o, exit statuses."""

from __future__ import annotations

import json

import pytest

from schedbench.cli import main
from schedbench.cluster import Cluster, example_cluster_path
from schedbench.manifests import dump_manifests
from schedbench.optimal.cli import EXIT_INFEASIBLE
from tests.scheduler_helpers import make_cluster, make_node, make_pod

KEYS = ["status", "placed", "unplaced", "nodes_used", "objective", "bound", "gap",
        "wall_seconds", "assignments"]


def _write(tmp_path, cluster: Cluster, name: str = "cluster.yaml") -> str:
    path = tmp_path / name
    dump_manifests(cluster.objects(), path)
    return str(path)


def test_json_output_has_exactly_the_issue_keys(capsys):
    rc = main(["optimal", "--cluster", str(example_cluster_path()), "--time-limit", "5"])
    out = json.loads(capsys.readouterr().out)
    assert rc == 0
    assert list(out) == KEYS
    assert out["status"] == "OPTIMAL"
    assert isinstance(out["placed"], int) and out["placed"] == len(out["assignments"])
    assert all(isinstance(out[k], float) for k in ("objective", "bound", "gap",
                                                     "wall_seconds"))
    pending = [p.key for p in Cluster.load(example_cluster_path()).pending_pods()]
    assert sorted(list(out["assignments"]) + out["unplaced"]) == sorted(pending)


def test_table_and_output_file(tmp_path, capsys):
    nodes = [make_node(f"n{i}", cpu="4", memory="8Gi") for i in range(3)]
    pods = [make_pod(f"p{i}", cpu="2", memory="1Gi") for i in range(4)]
    path = _write(tmp_path, make_cluster(nodes, pods))
    out_path = tmp_path / "placed.yaml"
    rc = main(["optimal", "--cluster", path, "--format", "table", "-o", str(out_path),
               "--time-limit", "5"])
    text = capsys.readouterr().out
    assert rc == 0
    assert text.startswith("OPTIMAL: 4 placed, 0 unplaced, 2 nodes used")
    assert "default/p3" in text
    written = Cluster.load(out_path)
    # two per node, and interchangeable nodes fill in node order (symmetry breaking)
    assert sorted(p.spec.node_name for p in written.pods) == ["n0", "n0", "n1", "n1"]
    assert not written.pending_pods()
    assert not list(tmp_path.glob("*.tmp*"))  # written atomically: no temporary left


def test_infeasible_has_its_own_exit_status(tmp_path, capsys):
    nodes = [make_node("n0", cpu="1", memory="1Gi")]
    path = _write(tmp_path, make_cluster(nodes, [make_pod("big", cpu="2")]))
    rc = main(["optimal", "--cluster", path, "--objective", "nodes"])
    out = json.loads(capsys.readouterr().out)
    assert rc == EXIT_INFEASIBLE == 3
    assert out["status"] == "INFEASIBLE" and out["unplaced"] == ["default/big"]


@pytest.mark.parametrize("args", [
    ["--cluster", "/no/such/file.yaml"],
    ["--cluster", "EXAMPLE", "--objective", "placed,fastest"],
    ["--cluster", "EXAMPLE", "--time-limit", "-1"],
    ["--cluster", "EXAMPLE", "--workers", "0"],
    ["--cluster", "EXAMPLE", "--hint", "no-such-policy"],
    ["--cluster", "EXAMPLE", "--profile", "no-such-policy"],
])
def test_bad_input_is_one_line_and_exit_2(args, capsys):
    args = [str(example_cluster_path()) if a == "EXAMPLE" else a for a in args]
    rc = main(["optimal", *args])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2
    assert len(err) == 1 and err[0].startswith("schedbench: error:")
