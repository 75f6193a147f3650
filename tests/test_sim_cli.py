"""``schedbench simulate``: the bundled example scenarios end to end through main([...]), the
files written, and one-line errors (exit 2) for bad scenarios."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
import yaml

from schedbench.cli import main

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "schedbench" / "data" / "scenarios"


def run(capsys, *argv):
    code = main(["simulate", *map(str, argv)])
    out = capsys.readouterr()
    return code, out.out, out.err


def read_csv(path: Path) -> list[dict]:
    with path.open() as fh:
        return list(csv.DictReader(fh))


def deployment_rows(out: Path, name: str) -> list[dict]:
    return [r for r in read_csv(out / "deployments.csv") if r["deployment"] == name]


def test_rolling_update_example(tmp_path, capsys):
    out = tmp_path / "ru"
    code, stdout, stderr = run(capsys, EXAMPLES / "rolling-update.yaml", "--out", out,
                               "--no-plot")
    assert code == 0, stderr
    assert "no pod lost: yes" in stdout and "default/web" in stdout
    summary = json.loads((out / "summary.json").read_text())
    assert summary["no_pod_lost"] and summary["end"] == 900.0
    assert summary["events"] == len((out / "events.jsonl").read_text().splitlines())
    (dep,) = summary["deployments"]
    assert dep["desired"] == dep["updated"] == dep["available"] == 12
    # maxUnavailable 2: after the first complete rollout, never fewer than 10 available;
    # maxSurge 3: never more than 15 pods
    rows = deployment_rows(out, "default/web")
    assert summary["min_available"]["default/web"] >= 10
    assert max(int(r["replicas"]) for r in rows) <= 15
    # three templates rolled out (two images, then a rollback): pods were replaced
    assert summary["pods_created"] >= 12 * 3
    assert summary["deletions_by_cause"]["scaled down"] >= 24
    timeline = read_csv(out / "timeline.csv")
    assert len(timeline) == 91  # every 10 s from 0 to 900
    assert not (out / "timeline.png").exists()
    events = [json.loads(line) for line in (out / "events.jsonl").read_text().splitlines()]
    actions = [e["action"] for e in events if e["event"] == "action"]
    assert actions == ["set-image", "pause", "set-image", "resume", "rollback"]


def test_node_failure_example(tmp_path, capsys):
    out = tmp_path / "nf"
    code, stdout, stderr = run(capsys, EXAMPLES / "node-failure.yaml", "--out", out,
                               "--format", "json")
    assert code == 0, stderr
    summary = json.loads(stdout)
    assert summary == json.loads((out / "summary.json").read_text())
    evicted = summary["deletions_by_cause"].get("evicted: taint node.kubernetes.io/unreachable")
    assert evicted and evicted >= 1
    assert summary["deployments"][0]["available"] == 11
    events = [json.loads(line) for line in (out / "events.jsonl").read_text().splitlines()]
    deleted = [e for e in events if e["event"] == "DELETED" and e["kind"] == "Pod"]
    # evicted 300 s (default toleration) after the node went NotReady (grace 50 s after the
    # last heartbeat before 2m)
    assert deleted and all(420 <= e["t"] <= 480 for e in deleted)
    assert all(e.get("node") == "node-2" for e in deleted)
    nodes = read_csv(out / "nodes.csv")
    assert {r["node"] for r in nodes} == {"node-1", "node-2", "node-3", "node-4"}
    assert (out / "timeline.png").stat().st_size > 1000


def test_hpa_example(tmp_path, capsys):
    out = tmp_path / "hpa"
    code, stdout, stderr = run(capsys, EXAMPLES / "hpa-scale-out.yaml", "--out", out,
                               "--no-plot")
    assert code == 0, stderr
    rows = deployment_rows(out, "default/shop")
    desired = [int(r["desired"]) for r in rows]
    peak = max(desired)
    assert peak > 2                       # scaled out under 600 requests/s
    assert desired[-1] < peak             # and back in after the traffic fell
    t_peak = next(float(r["t"]) for r in rows if int(r["desired"]) == peak)
    t_down = next(float(r["t"]) for r in rows
                  if float(r["t"]) > t_peak and int(r["desired"]) < peak)
    assert t_down >= 720 + 300 - 15       # not before the 300 s stabilisation window
    summary = json.loads((out / "summary.json").read_text())
    assert summary["no_pod_lost"]


def test_until_and_seed_override(tmp_path, capsys):
    a, b = tmp_path / "a", tmp_path / "b"
    code, _, err = run(capsys, EXAMPLES / "node-failure.yaml", "--until", "3m", "--out", a,
                       "--no-plot", "--seed", "11")
    assert code == 0, err
    code, _, err = run(capsys, EXAMPLES / "node-failure.yaml", "--until", "180", "--out", b,
                       "--no-plot", "--seed", "11")
    assert code == 0, err
    sa = json.loads((a / "summary.json").read_text())
    assert sa["end"] == 180.0 and sa["seed"] == 11
    assert (a / "events.jsonl").read_bytes() == (b / "events.jsonl").read_bytes()


def bad(tmp_path: Path, doc) -> Path:
    p = tmp_path / "bad.yaml"
    p.write_text(yaml.safe_dump(doc) if not isinstance(doc, str) else doc)
    return p


@pytest.mark.parametrize("doc,needle", [
    ({"timeline": [{"at": "1m", "action": "teleport"}]}, "timeline[0].action"),
    ({"cluster": {"nodes": {"count": "three"}}}, "cluster.nodes.count"),
    ("timeline: [unclosed", "invalid YAML"),
    ({"cluster": {"nodes": {"count": 1}}, "until": "5m",
      "timeline": [{"at": "1m", "action": "fail-node", "node": "ghost"}]}, "Node/ghost"),
])
def test_bad_scenario_is_one_line_exit_2(tmp_path, capsys, doc, needle):
    path = bad(tmp_path, doc)
    code, stdout, stderr = run(capsys, path, "--out", tmp_path / "o")
    assert code == 2
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("schedbench: error: ")
    assert needle in lines[0] and str(path) in lines[0]
    assert "Traceback" not in stderr
    assert not (tmp_path / "o" / "events.jsonl").exists()  # no partial log left behind


def test_bad_until(tmp_path, capsys):
    code, _, stderr = run(capsys, EXAMPLES / "node-failure.yaml", "--until", "soon", "--out",
                          tmp_path)
    assert code == 2 and "--until" in stderr and len(stderr.strip().splitlines()) == 1


def test_progress_bar_only_on_a_terminal(tmp_path, monkeypatch, capsys):
    import io
    import sys

    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    code, _, err = run(capsys, EXAMPLES / "node-failure.yaml", "--until", "2m", "--out",
                       tmp_path / "a", "--no-plot")
    assert code == 0 and "simulating" not in err  # piped: silent
    tty = Tty()
    monkeypatch.setattr(sys, "stderr", tty)
    code = main(["simulate", str(EXAMPLES / "node-failure.yaml"), "--until", "2m", "--out",
                 str(tmp_path / "b"), "--no-plot"])
    assert code == 0
    text = tty.getvalue()
    assert "\rsimulating node-failure [" in text and "120/120" in text
