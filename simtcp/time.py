"""Time as integer microseconds: absolute instants and durations, never floats.

The core never reads a clock. Every call that can change state receives
``now`` (an :data:`Instant`), and deadlines come back as instants too.
"""

from __future__ import annotations

import re

Instant = int
"""An absolute point in time, in microseconds since an arbitrary epoch."""

Duration = int
"""A span of time, in microseconds."""

MICROSECOND: Duration = 1
MILLISECOND: Duration = 1_000
SECOND: Duration = 1_000_000

_DURATION_UNITS = {"us": MICROSECOND, "ms": MILLISECOND, "s": SECOND, "": SECOND}
_DURATION_RE = re.compile(r"^\s*(\d+(?:\.\d*)?|\.\d+)\s*(us|ms|s|)\s*$")


def parse_duration(text: str) -> Duration:
    """Parse ``"20ms"``, ``"1.5s"``, ``"250us"`` or ``"2"`` (seconds) into microseconds.

    Raises ValueError with a message fit for a command line.
    """
    match = _DURATION_RE.match(text)
    if match is None:
        raise ValueError(f"not a duration: {text!r} (use e.g. 20ms, 1.5s, 250us)")
    number, unit = match.groups()
    return round(float(number) * _DURATION_UNITS[unit])


def format_duration(duration: Duration) -> str:
    """Render a duration for humans: ``1.500s``, ``20.000ms``, ``250us``."""
    if abs(duration) >= SECOND:
        return f"{duration / SECOND:.3f}s"
    if abs(duration) >= MILLISECOND:
        return f"{duration / MILLISECOND:.3f}ms"
    return f"{duration}us"
