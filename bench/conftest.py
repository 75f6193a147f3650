"""Benchmarks (pytest-benchmark). Run: ``python -m pytest bench/ --benchmark-only``.

Sizes: ``SCHEDBENCH_BENCH_NODES`` (comma-separated, default 1000,10000,100000). The pure-Python
reference implementations live in ``tests/reference`` and are imported from there.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))


def node_sizes() -> list[int]:
    raw = os.environ.get("SCHEDBENCH_BENCH_NODES", "1000,10000,100000")
    return [int(x) for x in raw.split(",") if x.strip()]
