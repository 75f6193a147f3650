"""The README stays true: its two set-up commands and its Python example."""

from __future__ import annotations

import re

from conftest import REPO_ROOT

README = (REPO_ROOT / "README.md").read_text()


def test_readme_opens_with_the_two_setup_commands():
    block = re.search(r"```sh\n(.*?)```", README, re.S).group(1).strip().splitlines()
    assert len(block) == 2
    assert block[0].endswith("pip install . && schedbench compare")
    assert block[1].endswith("pip install -e '.[test]' && python -m pytest")
    assert README.index("```sh") < 40  # first thing after the title


def test_readme_python_example_results_hold():
    code = re.search(r"```python\n(.*?)```", README, re.S).group(1)
    namespace: dict = {}
    checked = 0
    for line in code.splitlines():
        statement, _, comment = line.partition("  # ")
        if "Cluster.load" in statement or statement.startswith(("for ", "    ")):
            continue  # needs a user's files
        if not statement.strip():
            continue
        if comment and not statement.lstrip().startswith(("import", "sel =")):
            expected = re.sub(r"\s+\([a-z][^)]*\)$", "", comment.strip())  # drop a remark
            assert eval(statement, namespace) == eval(expected), line
            checked += 1
        else:
            exec(statement, namespace)
    assert checked == 4


def test_readme_main_job_runs_on_the_bundled_trace(tmp_path, monkeypatch, capsys):
    """`schedbench compare` with no arguments: the four default policies on the bundled
    trace, the report files in ./schedbench-report, and a summary.json that agrees with the
    printed table's policies."""
    import json

    from schedbench.cli import main

    monkeypatch.chdir(tmp_path)
    assert main(["compare"]) == 0
    out = tmp_path / "schedbench-report"
    for name in ("report.md", "report.html", "summary.json", "metrics.csv", "metrics.parquet",
                 "timeseries.csv", "timeseries.parquet"):
        assert (out / name).stat().st_size > 0, name
    runs = json.loads((out / "summary.json").read_text())["runs"]
    assert [r["policy"] for r in runs] == ["best-fit", "worst-fit", "spread", "default"]
    assert {r["trace"] for r in runs} == {"default"} and {r["seed"] for r in runs} == {42}
    for r in runs:
        m = r["metrics"]
        assert m["placed"] + m["failed"] + m["pending"] == 600
        assert 0 <= m["gpu_alloc_pct"] <= 100
    printed = capsys.readouterr().out
    assert all(p in printed for p in ("best-fit", "worst-fit", "spread", "default"))


def test_readme_optimal_and_simulation_example_runs(capsys):
    """The second Python example (the optimal baseline and the simulation) runs as written."""
    code = re.findall(r"```python\n(.*?)```", README, re.S)[1]
    exec(compile(code, "README.md", "exec"), {})
    status, placed = capsys.readouterr().out.split()[:2]
    assert status in ("OPTIMAL", "FEASIBLE") and int(placed) >= 1
