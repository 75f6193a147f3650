"""Seeded uniform draws for tie-breaks, cheap enough to take one per scheduling cycle.

kube-scheduler's selectHost picks uniformly among the tied top nodes, and DefaultPreemption
starts its candidate search at a random offset. ``numpy.random.Generator.integers`` costs a
few microseconds per call, a tenth of a whole fused cycle, so :class:`Draws` takes the
generator's raw 64-bit outputs 256 at a time and maps each to ``[0, k)`` by
``(x * k) >> 64`` (Lemire's multiply-shift: for ``x`` uniform over 64 bits every value is
drawn with probability within ``k / 2**64`` of ``1 / k``). Same seed, same draws.
"""

from __future__ import annotations

import numpy as np

_BATCH = 256


class Draws:
    """``below(k)``: a uniform integer in ``[0, k)`` from ``rng``'s bit stream."""

    __slots__ = ("rng", "_buffer")

    def __init__(self, rng: np.random.Generator) -> None:
        self.rng = rng
        self._buffer: list[int] = []

    def below(self, k: int) -> int:
        if k <= 1:
            return 0
        buffer = self._buffer
        if not buffer:
            buffer.extend(reversed(self.rng.bit_generator.random_raw(_BATCH).tolist()))
        return (buffer.pop() * k) >> 64

    def state(self) -> tuple:
        """What the next draws depend on (for tests: two runs drew alike)."""
        return (len(self._buffer), tuple(self._buffer[-4:]),
                self.rng.bit_generator.state["state"]["state"])
