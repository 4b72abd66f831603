"""Cases: the lifecycle rules applied to the messages a node sends and receives.

The pure core (:mod:`broker.lifecycle`) knows instruments, states and deadline rules;
the store keeps each case's record, events and deadlines. This module joins them:
it turns a message into a lifecycle :class:`~broker.lifecycle.Event` (the sender's
*role* in the case, the status code, the extension, the dates a reply states), checks
that the event may join the case, and plans the :class:`~broker.store.base.CaseChange`
and the audit records (``case.state``, ``deadline.set``, ``deadline.met``,
``deadline.missed``) that commit with the message.

Only messages of a case lifecycle take part (the requests that open cases and the
replies the state machines name); receipts, directories and audit traffic do not.
Lifecycle events hold roles, codes and dates: never a form's personal data.
"""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from broker import lifecycle
from broker.errors import CaseUnknown, NotParty, StateError
from broker.forms import Form
from broker.forms.responses import Refusal
from broker.lifecycle import Deadline, Event, check_refusal_form
from broker.store.base import (
    AuditEvent,
    CaseChange,
    CaseRecord,
    Priority,
    Store,
    StoredDeadline,
)

__all__ = [
    "CasePlan",
    "belongs_to_lifecycle",
    "event_from_json",
    "event_json",
    "event_of",
    "facts_and_overrides",
    "history_of",
    "logged_facts",
    "next_reminder",
    "peer_of",
    "plan_event",
    "plan_message",
    "recompute_deadlines",
    "role_of",
    "stored_deadlines",
]

#: ``case.status`` / ``case.extension`` members that state a date the rules read.
_UNTIL_MEMBERS = ("preserved_until", "new_until", "expected_by")


@functools.cache
def _lifecycle_types() -> frozenset[str]:
    types: set[str] = set()
    for instrument in lifecycle.instruments():
        types.add(instrument)
        found = lifecycle.machine(instrument)
        types.update(m.type for m in found.events.values() if m.type != lifecycle.LAPSED)
    return frozenset(types)


def belongs_to_lifecycle(form_type: str) -> bool:
    """Whether messages of ``form_type`` open or move a case (receipts etc. do not)."""
    return form_type in _lifecycle_types()


def role_of(record: CaseRecord, participant: str) -> str | None:
    """Return ``participant``'s role in the case (``requester``, ``requested``), or None."""
    if participant == record.requester:
        return "requester"
    if participant == record.requested:
        return "requested"
    return None


def peer_of(record: CaseRecord, participant: str) -> str:
    """Return the other party of the case, seen from ``participant`` (one of the two)."""
    return record.requested if participant == record.requester else record.requester


def _data(form: Form | Mapping[str, Any]) -> Mapping[str, Any]:
    return form.to_json_obj() if isinstance(form, Form) else form


def _time(value: object) -> datetime | None:
    if isinstance(value, datetime):
        return value
    if isinstance(value, str):
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    return None


def event_of(form_type: str, form: Form | Mapping[str, Any], *, by: str, at: datetime) -> Event:
    """Return the lifecycle event a message of ``form_type`` makes (roles and codes only)."""
    data = _data(form)
    until = next((_time(data[m]) for m in _UNTIL_MEMBERS if data.get(m) is not None), None)
    return Event(
        type=form_type,
        by=by,
        at=at,
        status=data.get("status") if form_type == "case.status" else None,
        kind=data.get("kind") if form_type == "case.extension" else None,
        until=until if form_type in ("case.status", "case.extension") else None,
        period=data.get("period") if form_type == "case.extension" else None,
        clock_suspended=(
            bool(data.get("clock_suspended")) if form_type == "case.clarification_request" else None
        ),
    )


def event_json(event: Event) -> dict[str, object]:
    """Return ``event`` as the JSON object the store keeps (no empty members)."""
    values: dict[str, object] = {"type": event.type, "by": event.by, "at": event.at.isoformat()}
    for name in ("to", "status", "kind", "rule", "period", "clock_suspended"):
        value = getattr(event, name)
        if value is not None:
            values[name] = value
    if event.until is not None:
        values["until"] = event.until.isoformat()
    return values


def event_from_json(data: Mapping[str, object]) -> Event:
    """Rebuild an event from :func:`event_json`'s object."""
    at = _time(data["at"])
    if at is None:
        raise ValueError("a stored case event has no time")
    return Event(
        type=str(data["type"]),
        by=str(data["by"]),
        at=at,
        to=_opt_str(data.get("to")),
        status=_opt_str(data.get("status")),
        kind=_opt_str(data.get("kind")),
        rule=_opt_str(data.get("rule")),
        until=_time(data.get("until")),
        period=_opt_str(data.get("period")),
        clock_suspended=(
            bool(data["clock_suspended"]) if data.get("clock_suspended") is not None else None
        ),
    )


def _opt_str(value: object) -> str | None:
    return None if value is None else str(value)


def history_of(events: Sequence[Mapping[str, object]]) -> list[Event]:
    """Rebuild a case history from the store's event objects."""
    return [event_from_json(e) for e in events]


def facts_and_overrides(
    instrument: str, form: Form | Mapping[str, Any]
) -> tuple[dict[str, str], dict[str, str]]:
    """Return the facts and case-level periods the request form states.

    ``coe.art29.preservation``'s ``preservation_days`` (Art 29(7): not less than 60)
    becomes the ``preservation_period`` override; ``coe.p2.art8.order``'s
    ``data_kind`` the fact the return deadline depends on; an EIO asking for
    provisional measures the ``provisional_measures`` fact.
    """
    data = _data(form)
    facts: dict[str, str] = {}
    overrides: dict[str, str] = {}
    if instrument == "coe.art29.preservation" and isinstance(data.get("preservation_days"), int):
        overrides["preservation_period"] = f"P{data['preservation_days']}D"
    if instrument == "coe.p2.art8.order" and isinstance(data.get("data_kind"), str):
        facts["data_kind"] = data["data_kind"]
    if instrument == "eu.eio.a":
        measures = data.get("measures") or ()
        kinds = {m.get("kind") for m in measures if isinstance(m, Mapping)}
        if "provisional_measures" in kinds:
            facts["provisional_measures"] = "requested"
    return facts, overrides


def _parsed_overrides(overrides: Mapping[str, str]) -> dict[str, timedelta | datetime]:
    parsed: dict[str, timedelta | datetime] = {}
    for key, text in overrides.items():
        parsed[key] = (
            lifecycle.parse_duration(text) if text.startswith("P") else datetime.fromisoformat(text)
        )
    return parsed


def next_reminder(deadline: Deadline, after: datetime) -> datetime | None:
    """Return the first reminder of an open deadline later than ``after``, if any."""
    if deadline.state != "pending":
        return None
    return next((t for t in deadline.reminders if t > after), None)


def stored_deadlines(
    case_id: str, priority: Priority, found: Sequence[Deadline], now: datetime
) -> list[StoredDeadline]:
    """Return the store's rows for the deadlines of a case as they stand at ``now``."""
    return [
        StoredDeadline(
            case_id=case_id,
            rule=d.rule,
            instrument=d.instrument,
            step=d.step,
            article=d.article,
            owed_by=d.owed_by,
            priority=priority,
            escalation=d.escalation,
            started_at=d.started_at,
            due_at=d.due_at,
            state=d.state,
            met_at=d.met_at,
            reminders=tuple(d.reminders),
            next_reminder_at=next_reminder(d, now),
        )
        for d in found
    ]


def logged_facts(form_type: str, form: Form | Mapping[str, Any]) -> dict[str, str | bool]:
    """Return the facts of a message its audit record keeps beyond its type.

    A refusal's ground (a code of the grounds table, never free text) and whether it
    is partial: an auditor's report counts refusals by ground from the log alone.
    """
    if form_type != "case.refusal":
        return {}
    refusal = form if isinstance(form, Refusal) else Refusal.model_validate(form)
    return {"ground": refusal.ground, "partial": refusal.partial}


@dataclass(frozen=True)
class CasePlan:
    """What recording one lifecycle event does.

    Attributes:
        change: the store change (record, event, deadlines).
        audit: the audit records that commit with it.
        state_before: the case's state before the event (``None`` for a new case).
    """

    change: CaseChange
    audit: list[AuditEvent]
    state_before: str | None


def plan_event(
    record: CaseRecord | None,
    history: Sequence[Event],
    event: Event,
    *,
    case_id: str,
    message_id: str | None,
    peer: str | None,
    opening: tuple[str, Priority, str, str, Mapping[str, str], Mapping[str, str]] | None = None,
    ack_targets: Mapping[str, timedelta] | None = None,
) -> CasePlan:
    """Check that ``event`` may join the case and plan its change.

    Args:
        record: the case's record, or None when ``event`` opens it.
        history: the case's events so far.
        event: the new event.
        case_id: the case id.
        message_id: the message carrying the event (None for a lapse).
        peer: the other participant (for the audit records).
        opening: for a new case: instrument, priority, requester, requested, facts,
            overrides.
        ack_targets: the node's acknowledgement targets per priority.

    Raises:
        CaseUnknown, NotParty, StateError, ExtensionError, UnknownTypeError: the event
            does not fit the case (see :func:`broker.lifecycle.check_event`).
    """
    if record is None:
        if opening is None or event.type not in lifecycle.instruments():
            raise CaseUnknown(f"{event.type} names a case this node does not hold")
        instrument, priority, requester, requested, facts, overrides = opening
        base = CaseRecord(
            case_id=case_id,
            instrument=instrument,
            priority=priority,
            requester=requester,
            requested=requested,
            state=lifecycle.NEW,
            events=0,
            facts=dict(facts),
            overrides=dict(overrides),
        )
    else:
        base = record
    if event.by not in ("requester", "requested", "clock"):
        raise NotParty("the sender is not a party to this case")
    options: dict[str, Any] = {
        "priority": base.priority,
        "overrides": _parsed_overrides(base.overrides),
        "ack_targets": dict(ack_targets or {}),
        "facts": dict(base.facts),
    }
    new_state = lifecycle.check_event(base.instrument, history, event, **options)
    now = event.at
    before = (
        {d.rule: d for d in lifecycle.deadlines(base.instrument, base.priority, history, now=now,
                                                 **_without_priority(options))}
        if history
        else {}
    )  # fmt: skip
    after = lifecycle.deadlines(
        base.instrument, base.priority, [*history, event], now=now, **_without_priority(options)
    )
    new_record = CaseRecord(
        case_id=base.case_id,
        instrument=base.instrument,
        priority=base.priority,
        requester=base.requester,
        requested=base.requested,
        state=new_state,
        events=base.events + 1,
        facts=base.facts,
        overrides=base.overrides,
        updated_at=now,
    )
    audit = _audit(base, new_state, before, after, case_id, message_id, peer, now)
    change = CaseChange(
        record=new_record,
        event=event_json(event),
        message_id=message_id,
        deadlines=stored_deadlines(case_id, base.priority, after, now),
    )
    return CasePlan(change, audit, None if record is None else record.state)


def _without_priority(options: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in options.items() if k != "priority"}


def _audit(
    base: CaseRecord,
    new_state: str,
    before: Mapping[str, Deadline],
    after: Sequence[Deadline],
    case_id: str,
    message_id: str | None,
    peer: str | None,
    now: datetime,
) -> list[AuditEvent]:
    events = [
        AuditEvent(
            event="case.state",
            at=now,
            message_id=message_id,
            case_id=case_id,
            peer=peer,
            details={
                "instrument": base.instrument,
                "from": base.state,
                "to": new_state,
            },
        )
    ]
    for d in after:
        old = before.get(d.rule)
        details: dict[str, str | int | bool | None] = {
            "rule": d.rule,
            "step": d.step,
            "owed_by": d.owed_by,
            "started_at": d.started_at.isoformat(),
            "due_at": d.due_at.isoformat(),
        }
        name: str | None = None
        if d.state == "pending" and (old is None or old.due_at != d.due_at or not old.open):
            name = "deadline.set"
        elif d.state == "met" and (old is None or old.state != "met"):
            name = "deadline.met"
            details["met_at"] = d.met_at.isoformat() if d.met_at else None
        elif d.state == "missed" and (old is None or old.state not in ("missed",)):
            name = "deadline.missed"
            details["met_at"] = d.met_at.isoformat() if d.met_at else None
        if name is not None:
            events.append(
                AuditEvent(
                    event=name,
                    at=now,
                    message_id=message_id,
                    case_id=case_id,
                    peer=peer,
                    details=details,
                )
            )
    return events


async def recompute_deadlines(
    store: Store,
    now: datetime,
    *,
    ack_targets: Mapping[str, timedelta] | None = None,
    page: int = 2000,
) -> AsyncIterator[tuple[str, list[Deadline]]]:
    """Compute every case's deadlines from its stored history alone, as of ``now``.

    What a node (or an auditor's tool) does after a restart or a rules-table change:
    nothing but the case records and their events is read. The cases come one by one
    (in id order, a page of ``page`` read at a time), so a caller going through a
    hundred thousand of them keeps only what it needs.

    Yields:
        ``(case id, its deadlines)``.
    """
    targets = dict(ack_targets or {})
    after: str | None = None
    while batch := await store.case_histories(after=after, limit=page):
        for record, events in batch:
            history = history_of(events)
            at = max(now, history[-1].at) if history else now
            yield (
                record.case_id,
                lifecycle.deadlines(
                    record.instrument,
                    record.priority,
                    history,
                    now=at,
                    overrides=_parsed_overrides(record.overrides),
                    ack_targets=targets,
                    facts=dict(record.facts),
                ),
            )
        after = batch[-1][0].case_id


async def plan_message(
    store: Store,
    *,
    me: str,
    sender: str,
    recipient: str,
    form_type: str,
    form: Form | Mapping[str, Any],
    case_id: str,
    message_id: str,
    priority: Priority,
    at: datetime,
    known_case: bool = True,
    ack_targets: Mapping[str, timedelta] | None = None,
) -> CasePlan:
    """Check a message of a case lifecycle against its case; plan the case's change.

    The same rules on both sides: a request opens a case (``sender`` the requester,
    ``recipient`` the requested party); any other message must go from one party of
    the case to the other, be a step its state allows, and (a refusal) carry a ground
    valid for the instrument and the sender's role.

    Args:
        store: the node's store (the case is read from it).
        me: this node's participant id (the sender or the recipient).
        sender: who sends the message.
        recipient: who it is for.
        form_type: its catalogue type.
        form: its form.
        case_id: its case.
        message_id: its id.
        priority: its priority.
        at: this node's time of record.
        known_case: False when the sender's node generated a new case id (nothing to
            look up).
        ack_targets: the node's acknowledgement targets per priority.

    Raises:
        CaseUnknown, NotParty, StateError, GroundError, ExtensionError: the message
            does not fit its case.
    """
    peer = recipient if me == sender else sender
    found = await store.get_case(case_id) if known_case else None
    try:
        if found is None:
            facts, overrides = facts_and_overrides(form_type, form)
            return plan_event(
                None,
                [],
                event_of(form_type, form, by="requester", at=at),
                case_id=case_id,
                message_id=message_id,
                peer=peer,
                opening=(form_type, priority, sender, recipient, facts, overrides),
                ack_targets=ack_targets,
            )
        record, events = found
        role = role_of(record, sender)
        other = role_of(record, recipient)
        if role is None or other is None or role == other:
            raise NotParty("the sender and the recipient are not the two parties of the case")
        if form_type == "case.refusal":
            refusal = form if isinstance(form, Refusal) else Refusal.model_validate(form)
            check_refusal_form(record.instrument, refusal, by=role)
        return plan_event(
            record,
            history_of(events),
            event_of(form_type, form, by=role, at=at),
            case_id=case_id,
            message_id=message_id,
            peer=peer,
            ack_targets=ack_targets,
        )
    except ValueError as exc:
        # The rules refuse what the history cannot hold (e.g. a missing fact).
        raise StateError(f"the case cannot take this message: {exc}") from exc
