"""The deadline scheduler against a real store: reminders, escalation, lapses, restarts."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from broker.cases import event_of, history_of, plan_event, recompute_deadlines
from broker.clock import FixedClock
from broker.ids import uuid7
from broker.scheduler import Alert, DeadlineScheduler
from broker.store import StorageKey, Store, open_store

T0 = datetime(2026, 11, 2, 3, 0, tzinfo=UTC)
HOUR = timedelta(hours=1)
DAY = timedelta(days=1)


@pytest.fixture
async def store(tmp_path: Path, clock: FixedClock) -> AsyncIterator[Store]:
    async with open_store(f"sqlite://{tmp_path}/at.db", StorageKey.generate(), clock) as opened:
        yield opened


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(T0)


async def _open_art29(store: Store, at: datetime, days: int = 60) -> str:
    """AT.247 received DE.247's Art 29 request at ``at``."""
    case_id = uuid7()
    form = {"preservation_days": days}
    plan = plan_event(
        None,
        [],
        event_of("coe.art29.preservation", form, by="requester", at=at),
        case_id=case_id,
        message_id=uuid7(),
        peer="DE.247",
        opening=(
            "coe.art29.preservation", "normal", "DE.247", "AT.247", {},
            {"preservation_period": f"P{days}D"},
        ),
    )  # fmt: skip
    await store.record_case_change(plan.change, plan.audit)
    return case_id


async def _reply(
    store: Store, case_id: str, form_type: str, form: dict[str, object], at: datetime
) -> None:
    found = await store.get_case(case_id)
    assert found is not None
    record, events = found
    plan = plan_event(
        record,
        history_of(events),
        event_of(form_type, form, by="requested", at=at),
        case_id=case_id,
        message_id=uuid7(),
        peer="DE.247",
    )
    await store.record_case_change(plan.change, plan.audit)


def _scheduler(store: Store, clock: FixedClock, alerts: list[Alert]) -> DeadlineScheduler:
    async def alert(payload: Alert) -> None:
        alerts.append(payload)

    return DeadlineScheduler(store, clock, "AT.247", alert)


async def test_reminders_then_one_escalation_that_survives_a_restart(
    store: Store, clock: FixedClock
) -> None:
    case_id = await _open_art29(store, T0)
    alerts: list[Alert] = []
    scheduler = _scheduler(store, clock, alerts)
    assert await scheduler.tick() == 0
    clock.advance(13 * HOUR)  # past 50 % of the 24-hour acknowledgement target
    assert await scheduler.tick() == 1
    assert await scheduler.tick() == 0  # once per reminder
    clock.advance(9 * HOUR)  # past 90 %
    assert await scheduler.tick() == 1
    clock.advance(3 * HOUR)  # overdue
    assert await scheduler.tick() == 1
    [alert] = alerts
    assert (alert["alert"], alert["case"], alert["rule"], alert["we_owe"]) == (
        "deadline_missed", case_id, "bc29.acknowledge", True,
    )  # fmt: skip
    assert "Art 29" in str(alert["article"])
    # A new scheduler (a restarted node) does not escalate it again.
    again: list[Alert] = []
    assert await _scheduler(store, clock, again).tick() == 0
    assert again == []
    audit = [e.event for _, e in await store.list_audit(case_id=case_id)]
    assert audit.count("deadline.reminder") == 2
    assert audit.count("deadline.missed") == 1
    [missed] = await store.list_deadlines(case_id=case_id, pending_only=False)
    assert (missed.rule, missed.state, missed.escalated_at) == (
        "bc29.acknowledge",
        "missed",
        clock.now(),
    )
    assert scheduler.stats.total("deadlines_missed") == 1
    assert 'evb_deadlines_missed_total{instrument="coe.art29.preservation"' in (
        scheduler.stats.exposition()
    )


async def test_an_answer_in_time_meets_the_deadline_and_nothing_escalates(
    store: Store, clock: FixedClock
) -> None:
    case_id = await _open_art29(store, T0)
    await _reply(store, case_id, "case.ack", {}, T0 + 2 * HOUR)
    alerts: list[Alert] = []
    clock.advance(30 * HOUR)
    await _scheduler(store, clock, alerts).tick()
    assert alerts == []
    audit = [e.event for _, e in await store.list_audit(case_id=case_id)]
    assert "deadline.met" in audit and "deadline.missed" not in audit


async def test_a_preservation_period_lapses_and_the_case_expires(
    store: Store, clock: FixedClock
) -> None:
    case_id = await _open_art29(store, T0, days=90)
    await _reply(store, case_id, "case.ack", {}, T0 + HOUR)
    preserved = (T0 + 2 * HOUR + 90 * DAY).isoformat()
    await _reply(
        store, case_id, "case.status", {"status": "preserved", "preserved_until": preserved},
        T0 + 2 * HOUR,
    )  # fmt: skip
    pending = {d.rule: d for d in await store.list_deadlines(case_id=case_id)}
    # The requester's own 90 days (longer than the 60-day minimum) are the period.
    assert pending["bc29.preserve"].due_at == T0 + 2 * HOUR + 90 * DAY
    alerts: list[Alert] = []
    scheduler = _scheduler(store, clock, alerts)
    clock.advance(91 * DAY)
    while await scheduler.tick():
        pass
    found = await store.get_case(case_id)
    assert found is not None and found[0].state == "expired"
    audit = [e.event for _, e in await store.list_audit(case_id=case_id)]
    assert "deadline.lapsed" in audit
    assert scheduler.stats.total("deadlines_lapsed") == 1


async def test_recomputing_from_the_histories_agrees_with_the_stored_deadlines(
    store: Store, clock: FixedClock
) -> None:
    first = await _open_art29(store, T0)
    second = await _open_art29(store, T0 + HOUR, days=120)
    await _reply(store, second, "case.ack", {}, T0 + 2 * HOUR)
    recomputed = {c: d async for c, d in recompute_deadlines(store, T0 + 3 * HOUR, page=1)}
    assert set(recomputed) == {first, second}
    for case_id, found in recomputed.items():
        stored = await store.list_deadlines(case_id=case_id, pending_only=False)
        assert {(d.rule, d.due_at) for d in found} == {(d.rule, d.due_at) for d in stored}
