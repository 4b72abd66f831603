"""The case-lifecycle rows both backends write: columns, the deadline upsert, row values.

SQLite and PostgreSQL differ in placeholders and in how a time is stored (see
:mod:`broker.store.migrations`); what a row holds and how a recomputed deadline merges
with the scheduler's progress is the same, and is written once, here.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Final

from broker.store.base import StoredDeadline

__all__ = [
    "CASE_COLUMNS",
    "DEADLINE_COLUMNS",
    "DEADLINE_FIELDS",
    "DEADLINE_UPSERT",
    "deadline_values",
]

CASE_COLUMNS: Final = (
    "c.case_id, c.instrument, c.priority, c.requester, c.requested, c.state, c.events,"
    " c.facts, c.overrides, c.updated_at"
)
DEADLINE_FIELDS: Final = (
    "case_id",
    "rule",
    "instrument",
    "step",
    "article",
    "owed_by",
    "priority",
    "escalation",
    "started_at",
    "due_at",
    "state",
    "met_at",
    "reminders",
    "next_reminder_at",
    "escalated_at",
)
DEADLINE_COLUMNS: Final = ", ".join(DEADLINE_FIELDS)
#: Appended to ``INSERT INTO deadlines (…) VALUES (…)``: the scheduler's progress
#: (next reminder, escalation) survives a recomputation that leaves the due time as it was.
DEADLINE_UPSERT: Final = (
    " ON CONFLICT (case_id, rule) DO UPDATE SET step = excluded.step,"
    " article = excluded.article, owed_by = excluded.owed_by,"
    " escalation = excluded.escalation, started_at = excluded.started_at,"
    " state = excluded.state, met_at = excluded.met_at, reminders = excluded.reminders,"
    " next_reminder_at = CASE WHEN deadlines.due_at = excluded.due_at"
    " AND deadlines.state = excluded.state THEN deadlines.next_reminder_at"
    " ELSE excluded.next_reminder_at END,"
    " escalated_at = CASE WHEN deadlines.due_at = excluded.due_at"
    " THEN deadlines.escalated_at END,"
    " due_at = excluded.due_at"
)


def deadline_values(
    d: StoredDeadline,
    time: Callable[[datetime], object],
    reminders: Callable[[tuple[datetime, ...]], str],
) -> tuple[object, ...]:
    """Return the values of the first 14 deadline columns (``escalated_at`` starts NULL)."""
    return (
        d.case_id,
        d.rule,
        d.instrument,
        d.step,
        d.article,
        d.owed_by,
        d.priority,
        d.escalation,
        time(d.started_at),
        time(d.due_at),
        d.state,
        None if d.met_at is None else time(d.met_at),
        reminders(d.reminders),
        None if d.next_reminder_at is None else time(d.next_reminder_at),
    )
