"""Case lifecycles and deadlines in the store, on SQLite and PostgreSQL alike."""

from __future__ import annotations

from dataclasses import replace

import pytest

from broker.errors import StoreError
from broker.ids import uuid7
from broker.store import Store
from broker.store.base import CaseChange, CaseRecord, StoredDeadline
from tests.store.builders import SECOND, T0, event, inbound, outbound

HOUR = 3600 * SECOND


def _record(case_id: str, events: int, state: str, **fields: object) -> CaseRecord:
    values: dict[str, object] = {
        "case_id": case_id,
        "instrument": "coe.art29.preservation",
        "priority": "normal",
        "requester": "DE.247",
        "requested": "AT.247",
        "state": state,
        "events": events,
        "facts": {},
        "overrides": {"preservation_period": "P90D"},
        "updated_at": T0 + events * SECOND,
    }
    values.update(fields)
    return CaseRecord(**values)  # type: ignore[arg-type]


def _deadline(case_id: str, rule: str, due_hours: int, **fields: object) -> StoredDeadline:
    values: dict[str, object] = {
        "case_id": case_id,
        "rule": rule,
        "instrument": "coe.art29.preservation",
        "step": "acknowledge",
        "article": "ETS 185 Art 29",
        "owed_by": "requested",
        "priority": "normal",
        "escalation": "notify_supervisor",
        "started_at": T0,
        "due_at": T0 + due_hours * HOUR,
        "state": "pending",
        "met_at": None,
        "reminders": (T0 + due_hours * HOUR / 2,),
        "next_reminder_at": T0 + due_hours * HOUR / 2,
    }
    values.update(fields)
    return StoredDeadline(**values)  # type: ignore[arg-type]


def _change(
    record: CaseRecord, *deadlines: StoredDeadline, message_id: str | None = None
) -> CaseChange:
    return CaseChange(
        record=record,
        event={"type": "coe.art29.preservation", "by": "requester", "at": "2026-09-01T03:00:00Z"},
        message_id=message_id,
        deadlines=deadlines,
    )


async def test_a_case_opens_with_its_message_and_changes_in_order(store: Store) -> None:
    case_id = uuid7()
    message = inbound(case_id=case_id)
    opened = _change(_record(case_id, 1, "requested"), _deadline(case_id, "bc29.ack", 24))
    _, created = await store.record_inbound(message, None, None, [], case_change=opened)
    assert created
    found = await store.get_case(case_id)
    assert found is not None
    record, events = found
    assert record == _record(case_id, 1, "requested")
    assert events == [dict(opened.event)]
    assert await store.get_case(uuid7()) is None

    # A second event against the current count: applied, with the new deadlines.
    acked = _change(
        _record(case_id, 2, "acknowledged"),
        _deadline(case_id, "bc29.ack", 24, state="met", met_at=T0 + HOUR),
        _deadline(case_id, "bc29.preserve", 90 * 24, step="preserve"),
    )
    await store.submit(outbound(case_id=case_id), None, [], case_change=acked)
    found = await store.get_case(case_id)
    assert found is not None
    assert (found[0].state, found[0].events, len(found[1])) == ("acknowledged", 2, 2)
    all_deadlines = await store.list_deadlines(case_id=case_id, pending_only=False)
    assert [(d.rule, d.state) for d in all_deadlines] == [
        ("bc29.ack", "met"),
        ("bc29.preserve", "pending"),
    ]
    assert [d.rule for d in await store.list_deadlines()] == ["bc29.preserve"]


async def test_a_change_against_a_stale_count_writes_nothing(store: Store) -> None:
    case_id = uuid7()
    await store.record_case_change(_change(_record(case_id, 1, "requested")), [])
    # Another worker already recorded event 2: a second "event 2" is refused whole.
    await store.record_case_change(_change(_record(case_id, 2, "acknowledged")), [])
    stale = _change(_record(case_id, 2, "refused"))
    message = inbound(case_id=case_id)
    with pytest.raises(StoreError, match="changed meanwhile"):
        await store.record_inbound(
            message, None, None, [event("message.received")], case_change=stale
        )
    assert await store.get_inbound(message.id) is None
    found = await store.get_case(case_id)
    assert found is not None and found[0].state == "acknowledged"
    with pytest.raises(StoreError, match="opened meanwhile"):
        await store.record_case_change(_change(_record(case_id, 1, "requested")), [])


async def test_the_scheduler_finds_due_reminders_and_escalations(store: Store) -> None:
    first, second = uuid7(), uuid7()
    await store.record_case_change(
        _change(_record(first, 1, "requested"), _deadline(first, "bc29.ack", 24)), []
    )
    urgent = _deadline(second, "p2art9.ack", 1, priority="emergency")
    await store.record_case_change(
        _change(_record(second, 1, "requested", priority="emergency"), urgent), []
    )
    assert await store.due_deadlines(T0, limit=10) == []
    # Half an hour in: the emergency deadline's reminder is due.
    due = await store.due_deadlines(T0 + HOUR / 2, limit=10)
    assert [d.rule for d in due] == ["p2art9.ack"]
    await store.update_deadline(
        second, "p2art9.ack", state="pending", next_reminder_at=None, escalated_at=None,
        events=[event("deadline.reminder", case_id=second)],
    )  # fmt: skip
    assert await store.due_deadlines(T0 + HOUR / 2, limit=10) == []
    # Past both due times: emergency first, then the other.
    due = await store.due_deadlines(T0 + 25 * HOUR, limit=10)
    assert [d.rule for d in due] == ["p2art9.ack", "bc29.ack"]
    await store.update_deadline(
        second, "p2art9.ack", state="missed", next_reminder_at=None, escalated_at=T0 + 2 * HOUR,
        events=[event("deadline.missed", case_id=second)],
    )  # fmt: skip
    assert [d.rule for d in await store.due_deadlines(T0 + 25 * HOUR, limit=10)] == ["bc29.ack"]
    [missed] = [d for d in await store.list_deadlines(pending_only=False) if d.case_id == second]
    assert (missed.state, missed.escalated_at) == ("missed", T0 + 2 * HOUR)
    assert [e.event for _, e in await store.list_audit()] == [
        "deadline.reminder",
        "deadline.missed",
    ]


async def test_progress_survives_a_recomputation_with_the_same_due_time(store: Store) -> None:
    case_id = uuid7()
    ack = _deadline(case_id, "bc29.ack", 24)
    await store.record_case_change(_change(_record(case_id, 1, "requested"), ack), [])
    await store.update_deadline(
        case_id, "bc29.ack", state="pending", next_reminder_at=T0 + 20 * HOUR,
        escalated_at=None, events=[],
    )  # fmt: skip
    await store.record_case_change(_change(_record(case_id, 2, "requested"), ack), [])
    [kept] = await store.list_deadlines(case_id=case_id)
    assert kept.next_reminder_at == T0 + 20 * HOUR
    # A moved due time (an extension) starts the reminders afresh.
    moved = replace(ack, due_at=T0 + 48 * HOUR, next_reminder_at=T0 + 36 * HOUR)
    await store.record_case_change(_change(_record(case_id, 3, "requested"), moved), [])
    [fresh] = await store.list_deadlines(case_id=case_id)
    assert (fresh.due_at, fresh.next_reminder_at) == (T0 + 48 * HOUR, T0 + 36 * HOUR)
    # A rule that no longer applies is removed.
    await store.record_case_change(_change(_record(case_id, 4, "refused")), [])
    assert await store.list_deadlines(case_id=case_id, pending_only=False) == []


async def test_case_records_filter_by_state_instrument_and_due_time(store: Store) -> None:
    art29, eio = uuid7(), uuid7()
    await store.record_case_change(
        _change(_record(art29, 1, "requested"), _deadline(art29, "bc29.ack", 24)), []
    )
    await store.record_case_change(
        _change(
            _record(eio, 1, "requested", instrument="eu.eio.a"),
            _deadline(eio, "eio.ack", 7 * 24, instrument="eu.eio.a"),
        ),
        [],
    )
    assert {r.case_id for r in await store.list_case_records()} == {art29, eio}
    assert [r.case_id for r in await store.list_case_records(instrument="eu.eio.a")] == [eio]
    assert [r.case_id for r in await store.list_case_records(due_before=T0 + 48 * HOUR)] == [art29]
    assert await store.list_case_records(state="refused") == []


async def test_case_histories_page_through_every_case_in_id_order(store: Store) -> None:
    ids = sorted(uuid7() for _ in range(5))
    for case_id in ids:
        await store.record_case_change(_change(_record(case_id, 1, "requested")), [])
        await store.record_case_change(_change(_record(case_id, 2, "acknowledged")), [])
    seen: list[str] = []
    after = None
    while batch := await store.case_histories(after=after, limit=2):
        assert all(len(events) == 2 for _, events in batch)
        seen += [record.case_id for record, _ in batch]
        after = batch[-1][0].case_id
    assert seen == ids
