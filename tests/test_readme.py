"""The README stays true: its two set-up commands and its Python example."""

from __future__ import annotations

import re

from conftest import REPO_ROOT

README = (REPO_ROOT / "README.md").read_text()


def test_readme_opens_with_the_two_setup_commands():
    block = re.search(r"```sh\n(.*?)```", README, re.S).group(1).strip().splitlines()
    assert len(block) == 2
    assert block[0].endswith("pip install . && schedbench summary")
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
