"""A progress line for long work: redrawn in place on a terminal, silent when stderr is piped
(so logs and CI output stay clean). No dependency."""

from __future__ import annotations

import sys
import time


class Progress:
    """``with Progress(total, "scheduling") as p: ... p.advance(k)``."""

    def __init__(self, total: int, label: str, *, stream=None, min_interval: float = 0.1,
                 enabled: bool | None = None) -> None:
        self.total = max(total, 0)
        self.label = label
        self.stream = stream or sys.stderr
        self.enabled = self.stream.isatty() if enabled is None else enabled
        self.done = 0
        self.min_interval = min_interval
        self._last = 0.0
        self._start = time.perf_counter()

    def __enter__(self) -> Progress:
        return self

    def advance(self, k: int = 1) -> None:
        self.done += k
        if self.enabled:
            now = time.perf_counter()
            if now - self._last >= self.min_interval or self.done >= self.total:
                self._last = now
                self._draw(now)

    def _draw(self, now: float) -> None:
        width = 30
        frac = self.done / self.total if self.total else 1.0
        filled = int(width * min(frac, 1.0))
        rate = self.done / max(now - self._start, 1e-9)
        self.stream.write(f"\r{self.label} [{'#' * filled}{'.' * (width - filled)}] "
                          f"{self.done}/{self.total} ({rate:,.0f}/s)")
        self.stream.flush()

    def __exit__(self, *exc) -> None:
        if self.enabled:
            self._draw(time.perf_counter())
            self.stream.write("\n")
            self.stream.flush()
