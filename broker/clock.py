"""Time, injected: every piece of code that needs "now" takes a :class:`Clock`.

Deadline and validity tests then run with a :class:`FixedClock` in microseconds.
Times on the wire are RFC 3339 in UTC with millisecond precision (:func:`wire_time`).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Protocol

__all__ = ["Clock", "FixedClock", "SystemClock", "parse_wire_time", "wire_time"]

_WIRE_TIME = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{3}Z")


class Clock(Protocol):
    """Where the current time comes from."""

    def now(self) -> datetime:
        """Return the current time, timezone-aware, in UTC."""
        ...


class SystemClock:
    """The machine's clock."""

    def now(self) -> datetime:
        """Return the current UTC time."""
        return datetime.now(UTC)


class FixedClock:
    """A clock that only moves when told to (tests, replay)."""

    def __init__(self, at: datetime) -> None:
        if at.tzinfo is None:
            raise ValueError("a FixedClock needs a timezone-aware time")
        self._at = at.astimezone(UTC)

    def now(self) -> datetime:
        """Return the fixed time."""
        return self._at

    def advance(self, delta: timedelta) -> None:
        """Move the clock forward (or back, with a negative delta)."""
        self._at += delta


def wire_time(at: datetime) -> str:
    """Format a time as on the wire: RFC 3339, UTC, milliseconds, ``Z``."""
    if at.tzinfo is None:
        raise ValueError("wire times must be timezone-aware")
    utc = at.astimezone(UTC)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"


def parse_wire_time(text: str) -> datetime:
    """Parse a wire time (as :func:`wire_time` writes it) back to a UTC datetime.

    Raises:
        ValueError: not exactly ``YYYY-MM-DDTHH:MM:SS.mmmZ``, or not a real time.
    """
    if not _WIRE_TIME.fullmatch(text):
        raise ValueError("not a wire time (RFC 3339 UTC with milliseconds)")
    return datetime.fromisoformat(text)
