"""The command line as a user meets it: exit codes, one-line errors, outputs."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import yaml

from schedbench.cli import main
from schedbench.cluster import example_cluster_path
from schedbench.manifests import load_manifests


def run(*args: str, cwd=None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "schedbench", *args], capture_output=True,
                          text=True, cwd=cwd, timeout=120)


def test_help_lists_subcommands():
    r = run("--help")
    assert r.returncode == 0
    for cmd in ("summary", "validate", "get", "fmt", "config"):
        assert cmd in r.stdout


def test_version():
    r = run("--version")
    assert r.returncode == 0 and r.stdout.startswith("schedbench ")


def test_summary_of_bundled_example(capsys):
    assert main(["summary"]) == 0
    out = capsys.readouterr().out
    assert "Nodes: 6" in out and "pending" in out
    assert "default/trainer" in out


def test_summary_json_is_consistent(capsys):
    assert main(["summary", "--format", "json"]) == 0
    s = json.loads(capsys.readouterr().out)
    assert s["pods"]["pending"] == len(s["pending_pods"])
    assert s["nodes"]["total"] == len(s["node_details"])


def test_bad_manifest_gives_one_line_exit_2_no_traceback(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("apiVersion: v1\nkind: Pod\nmetadata: {name: p, namespace: ns}\nspec:\n"
                   "  containers:\n  - name: c\n    resources: {requests: {memory: 1Gb}}\n")
    r = run("summary", "--cluster", str(bad))
    assert r.returncode == 2
    assert "Traceback" not in r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith(f"schedbench: error: {bad}: Pod/ns/p: "
                               "spec.containers[0].resources.requests.memory: ")


def test_bad_yaml_and_missing_file_exit_2(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("a: [\n")
    for args in (["validate", str(bad)], ["summary", "--cluster", str(tmp_path / "none.yaml")]):
        r = run(*args)
        assert r.returncode == 2 and "Traceback" not in r.stderr
        assert len(r.stderr.strip().splitlines()) == 1


def test_bad_selector_exit_2(capsys):
    assert main(["get", "pods", "-l", "app in (web"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("schedbench: error: --selector: ") and "\n" not in err.strip()


def test_get_filters_by_label_selector(capsys):
    assert main(["get", "pods", "-l", "app=web,tier in (frontend)", "-o", "name"]) == 0
    names = capsys.readouterr().out.split()
    expected = sorted(f"pod/{o.name}" for o in load_manifests(example_cluster_path())
                      if o.KIND == "Pod" and o.labels.get("app") == "web")
    assert sorted(names) == expected and len(names) == 4
    assert main(["get", "nodes", "-l", "!workload,topology.kubernetes.io/zone notin (zone-a)",
                 "-o", "name"]) == 0
    assert capsys.readouterr().out.split() == ["node/node-b1", "node/node-b2-gpu", "node/node-c2"]


def test_unknown_kind_for_get(capsys):
    assert main(["get", "widgets"]) == 2
    assert "unknown resource type 'widgets'" in capsys.readouterr().err


def test_fmt_round_trips(tmp_path, capsys):
    out = tmp_path / "out.yaml"
    assert main(["fmt", str(example_cluster_path()), "-o", str(out)]) == 0
    assert load_manifests(out) == sorted(load_manifests(example_cluster_path()),
                                         key=lambda o: _order(o))


def _order(o):
    kinds = ["Namespace", "PriorityClass", "Node", "Service", "Deployment", "ReplicaSet",
             "HorizontalPodAutoscaler", "Pod"]
    return kinds.index(o.KIND)


def test_warnings_are_one_line_on_stderr(tmp_path):
    f = tmp_path / "m.yaml"
    f.write_text("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: cm}\n---\n"
                 "apiVersion: v1\nkind: Node\nmetadata: {name: n}\n")
    r = run("validate", str(f))
    assert r.returncode == 0, r.stderr
    assert r.stderr.strip() == (f"schedbench: warning: {f}: ConfigMap/cm: skipping kind "
                                "'ConfigMap' (v1): schedbench does not model it")
    assert "ok: 1 objects" in r.stdout


def test_no_command_prints_help_and_exits_2(capsys):
    assert main([]) == 2
    assert "usage:" in capsys.readouterr().out


@pytest.mark.parametrize("fmt", ["table", "yaml"])
def test_config_shows_default_profile(capsys, fmt):
    assert main(["config", "--format", fmt]) == 0
    out = capsys.readouterr().out
    assert "default-scheduler" in out
    if fmt == "yaml":
        doc = yaml.safe_load(out)
        assert doc["kind"] == "KubeSchedulerConfiguration"
    else:
        assert "NodeResourcesFit" in out and "TaintToleration" in out


def test_config_unknown_plugin_exit_2(tmp_path):
    f = tmp_path / "sched.yaml"
    f.write_text("apiVersion: kubescheduler.config.k8s.io/v1\nkind: KubeSchedulerConfiguration\n"
                 "profiles:\n- schedulerName: s\n  plugins:\n    score:\n      enabled:\n"
                 "      - name: NodeResourcesFitt\n")
    for args in (["config", "--config", str(f)], ["validate", str(f)]):
        r = run(*args)
        assert r.returncode == 2 and "Traceback" not in r.stderr
        assert "NodeResourcesFitt" in r.stderr and str(f) in r.stderr
        assert len(r.stderr.strip().splitlines()) == 1
