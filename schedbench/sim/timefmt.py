"""Virtual time as Kubernetes writes it, and durations as users write them.

Virtual second 0 is :data:`EPOCH` (2026-01-01T00:00:00Z). Timestamps in object metadata and
conditions are RFC 3339 with millisecond precision (``2026-01-01T00:00:05.000Z``), the
``metav1.MicroTime``-like form; Kubernetes' ``metav1.Time`` has second precision, but
simulated transitions often happen within one second, and milliseconds keep them ordered.
"""

from __future__ import annotations

import math
import re
from functools import lru_cache
from datetime import UTC, datetime, timedelta

from schedbench.errors import InputError

EPOCH = datetime(2026, 1, 1, tzinfo=UTC)
_EPOCH_NAIVE = EPOCH.replace(tzinfo=None)

_STAMP_RE = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?(Z|z|[+-]\d{2}:\d{2})")


_DAY_MS = 86_400_000
_day_prefix: dict[int, str] = {}


def stamp(t: float) -> str:
    """RFC 3339 text of virtual time ``t`` (seconds since :data:`EPOCH`), rounded to the
    millisecond: ``stamp(5) == "2026-01-01T00:00:05.000Z"``."""
    ms = round(t * 1000)
    day, rem = divmod(ms, _DAY_MS)
    prefix = _day_prefix.get(day)
    if prefix is None:
        prefix = _day_prefix[day] = f"{_EPOCH_NAIVE + timedelta(days=day):%Y-%m-%d}T"
    sec, milli = divmod(rem, 1000)
    hour, sec = divmod(sec, 3600)
    minute, sec = divmod(sec, 60)
    return f"{prefix}{hour:02d}:{minute:02d}:{sec:02d}.{milli:03d}Z"


def seconds(text: str) -> float:
    """Virtual seconds of an RFC 3339 timestamp (any offset, 0-9 fraction digits); the
    inverse of :func:`stamp` to the millisecond. Bad text raises InputError. (Memoised:
    controllers read the same condition timestamps at every sync.)"""
    if not isinstance(text, str):
        raise InputError(f"expected an RFC 3339 timestamp, got {text!r}")
    return _seconds(text)


@lru_cache(maxsize=1 << 16)
def _seconds(text: str) -> float:
    m = _STAMP_RE.fullmatch(text.strip())
    if m is None:
        raise InputError(f"invalid RFC 3339 timestamp {text!r} (expected e.g. "
                         "2026-01-01T00:00:05.000Z)")
    year, month, day, hour, minute, sec = (int(g) for g in m.groups()[:6])
    frac = m.group(7) or ""
    zone = m.group(8)
    try:
        moment = datetime(year, month, day, hour, minute, sec, tzinfo=UTC)
    except ValueError as err:
        raise InputError(f"invalid RFC 3339 timestamp {text!r}: {err}") from None
    if zone not in ("Z", "z"):
        sign = 1 if zone[0] == "+" else -1
        moment -= sign * timedelta(hours=int(zone[1:3]), minutes=int(zone[4:6]))
    whole = (moment - EPOCH) // timedelta(seconds=1)
    return whole + (int(frac) / 10 ** len(frac) if frac else 0.0)


_DURATION_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h)")
_UNIT_SECONDS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0,
                 "h": 3600.0}


def parse_duration(value: str | int | float, *, field: str | None = None) -> float:
    """Seconds of a duration: a number (seconds) or Go ``time.ParseDuration`` text such as
    ``"90s"``, ``"5m"``, ``"2h"``, ``"1h30m"``, ``"1.5s"``, ``"250ms"``; a bare number in a
    string (``"30"``) is seconds too. Negative, non-finite or malformed input raises
    InputError (with ``field`` when given)."""
    if isinstance(value, bool):
        raise InputError(f"expected a duration such as 90s, 5m or 1h30m, got {value!r}",
                         field=field)
    if isinstance(value, int | float):
        out = float(value)
    elif isinstance(value, str):
        text = value.strip()
        try:
            out = float(text)
        except ValueError:
            pos, out = 0, 0.0
            if not text:
                raise InputError("empty duration", field=field) from None
            while pos < len(text):
                m = _DURATION_PART.match(text, pos)
                if m is None:
                    raise InputError(f"invalid duration {value!r}: expected a number and a "
                                     "unit (h, m, s, ms), e.g. 90s, 5m, 1h30m",
                                     field=field) from None
                out += float(m.group(1)) * _UNIT_SECONDS[m.group(2)]
                pos = m.end()
    else:
        raise InputError(f"expected a duration such as 90s, 5m or 1h30m, got "
                         f"{type(value).__name__}", field=field)
    if not math.isfinite(out) or out < 0:
        raise InputError(f"duration must be finite and >= 0, got {value!r}", field=field)
    return out
