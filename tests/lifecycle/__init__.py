"""Tests of the case lifecycles and deadlines (broker.lifecycle), with a builder of events.

:func:`make` builds the event a machine names (``make("eu.eio.a", "eio_b", at)``) so
that tests speak the table's vocabulary instead of repeating message types and roles.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from broker.lifecycle import Event, machine

#: The simulated clock's origin: every test time is T0 plus a delta.
T0 = datetime(2026, 9, 1, 9, 0, tzinfo=UTC)


def at(days: float = 0, hours: float = 0, minutes: float = 0) -> datetime:
    """Return T0 plus the given delta."""
    return T0 + timedelta(days=days, hours=hours, minutes=minutes)


def make(instrument: str, name: str, when: datetime, **extra: Any) -> Event:
    """Build an event of the kind ``name`` names in the instrument's machine."""
    m = machine(instrument).events[name]
    fields: dict[str, Any] = {
        "type": m.type,
        "by": m.by,
        "to": m.to,
        "status": m.status,
        "kind": m.kind or ("grant" if m.type == "case.extension" else None),
        "rule": m.rule,
    }
    fields.update(extra)
    return Event(at=when, **fields)
