"""Shared test configuration: Hypothesis profiles.

- ``ci``: bounded, used when the ``CI`` environment variable is set (``.ci/run``).
- ``thorough``: more examples, the default for local runs.
- ``SCHEDBENCH_HYPOTHESIS_PROFILE`` picks one explicitly (e.g. ``quick`` while iterating).

``deadline=None`` everywhere: the first example of a test may compile Numba kernels.
"""

from __future__ import annotations

import os
from pathlib import Path

from hypothesis import HealthCheck, settings

settings.register_profile("ci", max_examples=60, deadline=None, print_blob=True,
                          suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("thorough", max_examples=400, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("quick", max_examples=15, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow])

_default = "ci" if os.environ.get("CI") else "thorough"
settings.load_profile(os.environ.get("SCHEDBENCH_HYPOTHESIS_PROFILE", _default))

REPO_ROOT = Path(__file__).resolve().parent.parent
SHARED_TRACES = REPO_ROOT.parent / "shared" / "traces"
