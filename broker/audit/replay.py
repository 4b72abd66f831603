"""Replaying an audit log: every case's story rebuilt from the log's entries alone.

Pure and deterministic: entries in, facts out; no payload, no store, no clock. An
auditor runs it on a verified bundle's entries (:func:`broker.audit.bundle.verify_and_read`)
to see, per case, the instrument, the state it reached, every deadline with its outcome,
the refusals, the parties and the messages; :mod:`broker.audit.report` turns that into
figures. What it reads is what the node records:

* ``case.state`` (details ``instrument``, ``from``, ``to``) — the case's instrument and state;
* ``deadline.set`` / ``deadline.met`` / ``deadline.missed`` / ``deadline.lapsed`` (details
  ``rule``, ``step``, ``owed_by``, ``started_at``, ``due_at``, ``met_at``, ``escalation``)
  and ``deadline.reminder`` — each deadline's latest state;
* ``message.submitted`` / ``message.sent`` / ``message.delivered`` / ``message.received`` /
  ``message.rejected`` / ``message.refused`` / ``receipt.received`` (details ``type``,
  ``outcome``, ``receipted``) — per-message facts, and refusals (a ``case.refusal``
  message, an inbound message rejected, an outbound one refused) with the ``code`` and,
  where recorded, the ``ground``.

Events it does not know are counted, not guessed at. The log is trusted as verified:
a detail that is not what the node writes (a time that does not parse) reads as absent.
The fold keeps one mutable record per case, message and deadline, and freezes them into
the dataclasses below once, at the end.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from operator import attrgetter
from types import MappingProxyType
from typing import Literal

from broker.audit.entry import AuditEntry, Scalar, paused_gc

__all__ = [
    "CaseReplay",
    "DeadlineFact",
    "DeadlineStatus",
    "MessageFact",
    "RefusalFact",
    "Replay",
    "replay",
]

#: A deadline's state as the log last recorded it.
DeadlineStatus = Literal["pending", "met", "missed", "lapsed"]
#: Whether this node sent (``out``) or received (``in``) a message.
Direction = Literal["in", "out"]

_REFUSAL_TYPE = "case.refusal"
#: ``message.*`` events about an incoming message (``message.rejected`` also records a
#: negative receipt for an outgoing one: that carries a ``receipt`` detail).
_INBOUND = frozenset({"received", "rejected", "duplicate", "quarantined"})
_DEADLINE_STATES: Mapping[str, DeadlineStatus] = {
    "deadline.set": "pending",
    "deadline.met": "met",
    "deadline.missed": "missed",
    "deadline.lapsed": "lapsed",
}


@dataclass(frozen=True)
class DeadlineFact:
    """One deadline of a case, as its last ``deadline.*`` event left it.

    Attributes:
        rule: the rule id (``schemas/data/deadline_rules.json``).
        step: the step the rule times (``acknowledge``, ``produce`` …).
        owed_by: the party that owes the step (``requester``, ``requested`` …).
        started_at: when the period started, if recorded.
        due_at: when it is (or was) due.
        state: pending, met, missed or lapsed.
        met_at: when the step was taken (late for a missed deadline met afterwards).
        escalation: the escalation recorded when it was missed or lapsed.
        reminders: how many reminders the scheduler recorded.
        updated_at: the time of the last event about it.
    """

    rule: str
    step: str | None
    owed_by: str | None
    started_at: datetime | None
    due_at: datetime | None
    state: DeadlineStatus
    met_at: datetime | None
    escalation: str | None
    reminders: int
    updated_at: datetime


@dataclass(frozen=True)
class MessageFact:
    """What the log says about one message of a case.

    Attributes:
        message_id: the message id.
        direction: ``out`` when this node submitted it, ``in`` when it received it.
        type: the message (form) type, if recorded.
        peer: the other participant.
        submitted_at: when it was submitted here (outgoing).
        sent_at: when it was first published (outgoing).
        delivered_at: when its positive receipt arrived (outgoing).
        received_at: when it was accepted here (incoming).
        status: the last ``message.*`` event's name without the prefix.
        code: the last error code recorded for it.
        receipt: the outcome of its receipt, if one arrived.
    """

    message_id: str
    direction: Direction
    type: str | None
    peer: str | None
    submitted_at: datetime | None = None
    sent_at: datetime | None = None
    delivered_at: datetime | None = None
    received_at: datetime | None = None
    status: str = ""
    code: str | None = None
    receipt: str | None = None


@dataclass(frozen=True)
class RefusalFact:
    """A refusal: a ``case.refusal`` message, or a message rejected or refused with a code.

    Attributes:
        at: when it was recorded.
        kind: ``case.refusal`` (a party refused the request), ``message.rejected``
            (this node rejected an incoming message) or ``message.refused`` (this node
            refused to send one).
        message_id: the message concerned.
        peer: the other participant.
        refused_by: ``self`` when this node refused (it rejected an incoming message,
            refused to send one, or sent a ``case.refusal``), ``peer`` when the other
            side did (a ``case.refusal`` received, a message of ours rejected by receipt).
        code: the error code, if recorded.
        ground: the refusal ground, if recorded.
    """

    at: datetime
    kind: str
    message_id: str | None
    peer: str | None
    refused_by: Literal["self", "peer"]
    code: str | None
    ground: str | None


@dataclass(frozen=True)
class CaseReplay:
    """One case, rebuilt from the log.

    Attributes:
        case_id: the case id.
        instrument: the request type that opened it (from ``case.state``), if recorded.
        state: the state the last ``case.state`` moved it to.
        role: ``requester`` when this node submitted the opening request, ``requested``
            when it received it, None if the log does not show the request.
        counterpart: the other party of the opening request.
        opened_at: when the opening request was submitted or received.
        first_reply_at: when the first message from the other side followed it.
        updated_at: the time of the case's last entry.
        peers: every participant the case's entries name, sorted.
        deadlines: the case's deadlines, by rule id.
        refusals: its refusals, in log order.
        messages: its messages, in order of first appearance.
        transitions: ``(at, from, to)`` of each ``case.state`` event.
    """

    case_id: str
    instrument: str | None
    state: str | None
    role: Literal["requester", "requested"] | None
    counterpart: str | None
    opened_at: datetime | None
    first_reply_at: datetime | None
    updated_at: datetime
    peers: tuple[str, ...]
    deadlines: tuple[DeadlineFact, ...]
    refusals: tuple[RefusalFact, ...]
    messages: tuple[MessageFact, ...]
    transitions: tuple[tuple[datetime, str, str], ...]


@dataclass(frozen=True)
class Replay:
    """Every case of a log, and what was read.

    Attributes:
        cases: case id → its replay, sorted by case id.
        entries: the number of entries read.
        first_at: the first entry's time (None for an empty log).
        last_at: the last entry's time.
        unknown_events: event name → how many entries of a case had a name replay
            does not interpret.
    """

    cases: Mapping[str, CaseReplay] = field(hash=False)
    entries: int
    first_at: datetime | None
    last_at: datetime | None
    unknown_events: Mapping[str, int] = field(hash=False)


# -- the fold ---------------------------------------------------------------------------


def _text(details: Mapping[str, Scalar], key: str) -> str | None:
    value = details.get(key)
    return value if isinstance(value, str) else None


def _time(details: Mapping[str, Scalar], key: str) -> datetime | None:
    value = details.get(key)
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else None


# Hundreds of thousands of facts are frozen at the end of a large log: these build a
# frozen dataclass from all its fields without running its __init__, one object.__setattr__
# per field (test_replay checks that the result is what the constructor makes).
_new = object.__new__
_set = object.__setattr__


class _Deadline:
    """A deadline during the fold (mutable: one object per rule, frozen at the end)."""

    __slots__ = (
        "due_at",
        "escalation",
        "met_at",
        "owed_by",
        "reminders",
        "rule",
        "started_at",
        "state",
        "step",
        "updated_at",
    )

    def __init__(self, rule: str, state: DeadlineStatus, updated_at: datetime) -> None:
        self.rule = rule
        self.step: str | None = None
        self.owed_by: str | None = None
        self.started_at: datetime | None = None
        self.due_at: datetime | None = None
        self.state = state
        self.met_at: datetime | None = None
        self.escalation: str | None = None
        self.reminders = 0
        self.updated_at = updated_at

    def freeze(self) -> DeadlineFact:
        fact = _new(DeadlineFact)
        _set(  # what DeadlineFact(...) sets, in its order, at a third of the cost
            fact,
            "__dict__",
            {
                "rule": self.rule,
                "step": self.step,
                "owed_by": self.owed_by,
                "started_at": self.started_at,
                "due_at": self.due_at,
                "state": self.state,
                "met_at": self.met_at,
                "escalation": self.escalation,
                "reminders": self.reminders,
                "updated_at": self.updated_at,
            },
        )
        return fact


class _Message:
    """A message during the fold (mutable: one object per message, frozen at the end)."""

    __slots__ = (
        "code",
        "delivered_at",
        "direction",
        "message_id",
        "peer",
        "receipt",
        "received_at",
        "sent_at",
        "status",
        "submitted_at",
        "type",
    )

    def __init__(self, message_id: str, direction: Direction, peer: str | None) -> None:
        self.message_id = message_id
        self.direction: Direction = direction
        self.type: str | None = None
        self.peer = peer
        self.submitted_at: datetime | None = None
        self.sent_at: datetime | None = None
        self.delivered_at: datetime | None = None
        self.received_at: datetime | None = None
        self.status = ""
        self.code: str | None = None
        self.receipt: str | None = None

    def freeze(self) -> MessageFact:
        fact = _new(MessageFact)
        _set(  # what MessageFact(...) sets, in its order, at a third of the cost
            fact,
            "__dict__",
            {
                "message_id": self.message_id,
                "direction": self.direction,
                "type": self.type,
                "peer": self.peer,
                "submitted_at": self.submitted_at,
                "sent_at": self.sent_at,
                "delivered_at": self.delivered_at,
                "received_at": self.received_at,
                "status": self.status,
                "code": self.code,
                "receipt": self.receipt,
            },
        )
        return fact


#: A refusal during the fold: a RefusalFact's fields, its ground completed at the end.
_Refusal = tuple[datetime, str, str, str | None, Literal["self", "peer"], str | None, str | None]


class _Case:
    """The mutable state of one case during the fold."""

    __slots__ = (
        "case_id",
        "deadlines",
        "grounds",
        "instrument",
        "messages",
        "peers",
        "refusals",
        "state",
        "transitions",
        "updated_at",
    )

    def __init__(self, case_id: str, at: datetime) -> None:
        self.case_id = case_id
        self.instrument: str | None = None
        self.state: str | None = None
        self.updated_at = at
        self.peers: set[str] = set()
        self.deadlines: dict[str, _Deadline] = {}
        self.refusals: list[_Refusal] = []
        self.messages: dict[str, _Message] = {}
        self.grounds: dict[str, str] = {}
        self.transitions: list[tuple[datetime, str, str]] = []


def _deadline(case: _Case, entry: AuditEntry) -> bool:
    """Fold a ``deadline.*`` event; return whether it was one (with a rule)."""
    details = entry.details
    rule = _text(details, "rule")
    if rule is None or not entry.event.startswith("deadline."):
        return False
    old = case.deadlines.get(rule)
    if entry.event == "deadline.reminder":
        if old is not None:
            old.reminders += 1
        return True
    state = _DEADLINE_STATES.get(entry.event)
    if state is None:
        return False
    met_at = _time(details, "met_at")
    if old is None:
        old = case.deadlines[rule] = _Deadline(rule, state, entry.at)
    # Each recorded detail replaces the last; one not recorded this time is kept.
    old.step = _text(details, "step") or old.step
    old.owed_by = _text(details, "owed_by") or old.owed_by
    old.started_at = _time(details, "started_at") or old.started_at
    old.due_at = _time(details, "due_at") or old.due_at
    old.state = state
    old.met_at = met_at if state in ("met", "missed") else None
    old.escalation = _text(details, "escalation") or old.escalation
    old.updated_at = entry.at
    return True


def _refused_by(status: str, direction: Direction) -> Literal["self", "peer"]:
    """Who refused: ``self`` (this node) or ``peer``.

    A rejection by receipt of our message is the peer's; a refusal message is its
    sender's; the rest (rejecting input, refusing to send) is ours.
    """
    if status == "rejected":
        return "self" if direction == "in" else "peer"
    if status == "refused":
        return "self"
    return "self" if direction == "out" else "peer"


def _message(case: _Case, entry: AuditEntry) -> bool:
    """Fold a ``message.*`` or ``receipt.received`` event; return whether it was one."""
    event, details, message_id = entry.event, entry.details, entry.message_id
    if event == "receipt.received":
        receipted = _text(details, "receipted")
        if receipted is not None and receipted in case.messages:
            case.messages[receipted].receipt = _text(details, "outcome")
        return True
    if not event.startswith("message.") or message_id is None:
        return False
    status = event.removeprefix("message.")
    fact = case.messages.get(message_id)
    if fact is None:
        inbound = status in _INBOUND and "receipt" not in details
        fact = case.messages[message_id] = _Message(
            message_id, "in" if inbound else "out", entry.peer
        )
    direction = fact.direction
    fact.type = _text(details, "type") or fact.type
    fact.peer = fact.peer or entry.peer
    fact.status = status
    fact.code = entry.code or fact.code
    if status == "submitted":
        fact.submitted_at = entry.at
    elif status == "sent" and fact.sent_at is None:
        fact.sent_at = entry.at
    elif status == "delivered":
        fact.delivered_at = entry.at
    elif status == "received":
        fact.received_at = entry.at
    ground = _text(details, "ground")
    if ground is not None:
        case.grounds[message_id] = ground
    refused = status in ("rejected", "refused")
    if refused or (fact.type == _REFUSAL_TYPE and status in ("received", "submitted")):
        case.refusals.append(
            (
                entry.at,
                event if refused else _REFUSAL_TYPE,
                message_id,
                fact.peer,
                _refused_by(status, direction),
                entry.code,
                ground,
            )
        )
    return True


def _finish(case: _Case) -> CaseReplay:
    """Freeze a case: grounds recorded later, the opening request and the first reply."""
    refusals = tuple(
        RefusalFact(
            at=at,
            kind=kind,
            message_id=message_id,
            peer=peer,
            refused_by=refused_by,
            code=code,
            ground=ground or case.grounds.get(message_id),
        )
        for at, kind, message_id, peer, refused_by, code, ground in case.refusals
    )
    messages = tuple(m.freeze() for m in case.messages.values())
    request = next((m for m in messages if m.type is not None and m.type == case.instrument), None)
    role: Literal["requester", "requested"] | None = None
    opened_at = first_reply_at = None
    counterpart = None
    if request is not None:
        role = "requester" if request.direction == "out" else "requested"
        opened_at = request.submitted_at if request.direction == "out" else request.received_at
        counterpart = request.peer
        if opened_at is not None:
            replies = [
                m.received_at if request.direction == "out" else m.submitted_at
                for m in messages
                if m.direction != request.direction
            ]
            after = [at for at in replies if at is not None and at >= opened_at]
            first_reply_at = min(after, default=None)
    return CaseReplay(
        case_id=case.case_id,
        instrument=case.instrument,
        state=case.state,
        role=role,
        counterpart=counterpart,
        opened_at=opened_at,
        first_reply_at=first_reply_at,
        updated_at=case.updated_at,
        peers=tuple(sorted(case.peers)),
        deadlines=tuple(case.deadlines[rule].freeze() for rule in sorted(case.deadlines)),
        refusals=refusals,
        messages=messages,
        transitions=tuple(case.transitions),
    )


def replay(entries: Iterable[AuditEntry]) -> Replay:
    """Rebuild every case from a log's entries (read in index order).

    Args:
        entries: the log's entries, or a one-case bundle's; any order (they are
            sorted by index).

    Returns:
        the cases, sorted by id, and what was read.
    """
    with paused_gc():
        return _replay(sorted(entries, key=attrgetter("index")))


def _replay(ordered: Sequence[AuditEntry]) -> Replay:
    cases: dict[str, _Case] = {}
    unknown: dict[str, int] = {}
    for entry in ordered:
        case_id = entry.case_id
        if case_id is None:
            continue
        at, event = entry.at, entry.event
        case = cases.get(case_id)
        if case is None:
            case = cases[case_id] = _Case(case_id, at)
        case.updated_at = at
        if entry.peer is not None:
            case.peers.add(entry.peer)
        if event == "case.state":
            details = entry.details
            case.instrument = _text(details, "instrument") or case.instrument
            before, after = _text(details, "from"), _text(details, "to")
            if after is not None:
                case.state = after
                case.transitions.append((at, before or "", after))
            continue
        # Dispatched on the name: each fold also says whether it knew the event.
        if event.startswith("deadline."):
            known = _deadline(case, entry)
        elif event.startswith("message.") or event == "receipt.received":
            known = _message(case, entry)
        else:
            known = False
        if not known:
            unknown[event] = unknown.get(event, 0) + 1
    return Replay(
        cases=MappingProxyType({cid: _finish(cases[cid]) for cid in sorted(cases)}),
        entries=len(ordered),
        first_at=ordered[0].at if ordered else None,
        last_at=ordered[-1].at if ordered else None,
        unknown_events=MappingProxyType(dict(sorted(unknown.items()))),
    )
