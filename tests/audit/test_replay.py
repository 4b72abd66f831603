"""Replaying a log: states, deadlines, refusals, parties and message facts of known cases.

:func:`build_log` is the shared synthetic log (three cases, the events the node writes);
``test_report`` and ``test_bundle`` use it too.
"""

from __future__ import annotations

import gc
from collections.abc import Mapping
from dataclasses import fields
from datetime import UTC, datetime, timedelta

from broker.audit.entry import AuditEntry, Scalar
from broker.audit.replay import CaseReplay, DeadlineFact, MessageFact, RefusalFact, replay

T0 = datetime(2025, 3, 3, 9, 0, tzinfo=UTC)
NOW = T0 + timedelta(days=6, hours=2)
DIGEST = "ab" * 32


class _Log:
    def __init__(self) -> None:
        self.entries: list[AuditEntry] = []

    def add(
        self,
        event: str,
        at: datetime,
        *,
        case: str | None = None,
        message: str | None = None,
        peer: str | None = None,
        code: str | None = None,
        extra: Mapping[str, Scalar] | None = None,
        **details: Scalar,
    ) -> None:
        self.entries.append(
            AuditEntry(
                index=len(self.entries),
                at=at,
                event=event,
                message_id=message,
                case_id=case,
                peer=peer,
                code=code,
                details={**details, **(extra or {})},
            )
        )

    def state(self, at: datetime, case: str, instrument: str, before: str, after: str) -> None:
        self.add(
            "case.state", at, case=case, instrument=instrument, extra={"from": before, "to": after}
        )

    def deadline(
        self,
        event: str,
        at: datetime,
        case: str,
        rule: str,
        step: str,
        due: datetime,
        **more: Scalar,
    ) -> None:
        self.add(
            event,
            at,
            case=case,
            rule=rule,
            step=step,
            owed_by="requested",
            started_at=T0.isoformat(),
            due_at=due.isoformat(),
            extra=more,
        )


def build_log() -> list[AuditEntry]:
    """Three cases seen from AT.247.

    * case-1, eu.epoc, sent to DE.CA: acknowledged after 5 h, executed after 3 days
      (epoc.produce met).
    * case-2, eu.eio.a, received from FR.PNAT: acknowledged by us after 9 h
      (eio.acknowledge met), eio.recognise missed (reminded once), eio.execute pending
      and due 20 h after NOW (at risk); one inbound message rejected (E_SCHEMA).
    * case-3, coe.p2.art7.subscriber, sent to DE.BKA: refused after 20 h, ground
      ``art7.5<b>`` (hostile text for the HTML), p2art7.disclose met.
    """
    log = _Log()
    h = timedelta(hours=1)
    # case-1
    log.add("message.submitted", T0, case="case-1", message="m1", peer="DE.CA",
            type="eu.epoc", priority="normal", digest=DIGEST)  # fmt: skip
    log.state(T0, "case-1", "eu.epoc", "new", "requested")
    log.deadline("deadline.set", T0, "case-1", "epoc.produce", "produce", T0 + 240 * h)
    log.add("message.sent", T0 + h / 60, case="case-1", message="m1", peer="DE.CA",
            attempt=1, type="eu.epoc")  # fmt: skip
    log.add("message.delivered", T0 + h / 30, case="case-1", message="m1", peer="DE.CA",
            receipt="r1")  # fmt: skip
    log.add("message.received", T0 + 5 * h, case="case-1", message="m2", peer="DE.CA",
            type="case.ack", digest=DIGEST)  # fmt: skip
    log.state(T0 + 5 * h, "case-1", "eu.epoc", "requested", "acknowledged")
    log.add("message.received", T0 + 72 * h, case="case-1", message="m3", peer="DE.CA",
            type="case.response", digest=DIGEST)  # fmt: skip
    log.state(T0 + 72 * h, "case-1", "eu.epoc", "acknowledged", "executed")
    log.deadline("deadline.met", T0 + 72 * h, "case-1", "epoc.produce", "produce",
                 T0 + 240 * h, met_at=(T0 + 72 * h).isoformat())  # fmt: skip
    # case-2
    t1 = T0 + 2 * h
    log.add("message.received", t1, case="case-2", message="m4", peer="FR.PNAT",
            type="eu.eio.a", digest=DIGEST)  # fmt: skip
    log.state(t1, "case-2", "eu.eio.a", "new", "requested")
    log.deadline("deadline.set", t1, "case-2", "eio.acknowledge", "acknowledge", t1 + 168 * h)
    log.deadline("deadline.set", t1, "case-2", "eio.recognise", "recognise", t1 + 24 * h)
    log.deadline("deadline.set", t1, "case-2", "eio.execute", "execute", NOW + 20 * h)
    log.add("message.submitted", t1 + 9 * h, case="case-2", message="m5", peer="FR.PNAT",
            type="case.ack", priority="normal", digest=DIGEST)  # fmt: skip
    log.state(t1 + 9 * h, "case-2", "eu.eio.a", "requested", "acknowledged")
    log.deadline("deadline.met", t1 + 9 * h, "case-2", "eio.acknowledge", "acknowledge",
                 t1 + 168 * h, met_at=(t1 + 9 * h).isoformat())  # fmt: skip
    log.add("deadline.reminder", t1 + 20 * h, case="case-2", rule="eio.recognise",
            step="recognise", owed_by="requested", due_at=(t1 + 24 * h).isoformat())  # fmt: skip
    log.add("deadline.missed", t1 + 24 * h, case="case-2", rule="eio.recognise",
            step="recognise", owed_by="requested", due_at=(t1 + 24 * h).isoformat(),
            escalation="notify_owner", we_owe=True)  # fmt: skip
    log.add("message.rejected", t1 + 30 * h, case="case-2", message="m6", peer="FR.PNAT",
            code="E_SCHEMA", type="case.clarification", quarantine_id="q1")  # fmt: skip
    # case-3
    t2 = T0 + 4 * h
    log.add("message.submitted", t2, case="case-3", message="m7", peer="DE.BKA",
            type="coe.p2.art7.subscriber", priority="normal", digest=DIGEST)  # fmt: skip
    log.state(t2, "case-3", "coe.p2.art7.subscriber", "new", "requested")
    log.deadline("deadline.set", t2, "case-3", "p2art7.disclose", "disclose", t2 + 720 * h)
    log.add("message.received", t2 + 20 * h, case="case-3", message="m8", peer="DE.BKA",
            type="case.refusal", ground="art7.5<b>", digest=DIGEST)  # fmt: skip
    log.state(t2 + 20 * h, "case-3", "coe.p2.art7.subscriber", "requested", "refused")
    log.deadline("deadline.met", t2 + 20 * h, "case-3", "p2art7.disclose", "disclose",
                 t2 + 720 * h, met_at=(t2 + 20 * h).isoformat())  # fmt: skip
    # not of a case, and an event replay does not interpret
    log.add("key.rotated", t2 + 30 * h, detail="x")
    log.add("audit.exported", t2 + 31 * h, case="case-3")
    return log.entries


def test_states_instruments_and_parties() -> None:
    result = replay(build_log())
    assert list(result.cases) == ["case-1", "case-2", "case-3"]
    c1, c2, c3 = result.cases.values()
    assert (c1.instrument, c1.state, c1.role, c1.counterpart) == (
        "eu.epoc", "executed", "requester", "DE.CA"
    )  # fmt: skip
    assert (c2.instrument, c2.state, c2.role, c2.counterpart) == (
        "eu.eio.a", "acknowledged", "requested", "FR.PNAT"
    )  # fmt: skip
    assert (c3.state, c3.peers) == ("refused", ("DE.BKA",))
    assert [t[1:] for t in c1.transitions] == [
        ("new", "requested"), ("requested", "acknowledged"), ("acknowledged", "executed")
    ]  # fmt: skip
    assert result.entries == len(build_log())
    assert result.unknown_events == {"audit.exported": 1}


def test_deadlines() -> None:
    c1, c2, c3 = replay(build_log()).cases.values()
    (produce,) = c1.deadlines
    assert (produce.rule, produce.state, produce.met_at) == (
        "epoc.produce", "met", T0 + timedelta(hours=72)
    )  # fmt: skip
    assert produce.due_at == T0 + timedelta(days=10)
    by_rule = {d.rule: d for d in c2.deadlines}
    assert [d.rule for d in c2.deadlines] == sorted(by_rule)
    assert by_rule["eio.acknowledge"].state == "met"
    recognise = by_rule["eio.recognise"]
    assert (recognise.state, recognise.escalation, recognise.reminders) == (
        "missed", "notify_owner", 1
    )  # fmt: skip
    assert recognise.started_at == T0  # kept from deadline.set: the scheduler omits it
    assert by_rule["eio.execute"].state == "pending"
    assert by_rule["eio.execute"].due_at == NOW + timedelta(hours=20)
    assert c3.deadlines[0].state == "met"


def test_refusals_and_messages() -> None:
    c1, c2, c3 = replay(build_log()).cases.values()
    (refusal,) = c3.refusals
    assert (refusal.kind, refusal.refused_by, refusal.ground, refusal.message_id) == (
        "case.refusal", "peer", "art7.5<b>", "m8"
    )  # fmt: skip
    (rejected,) = c2.refusals
    assert (rejected.kind, rejected.refused_by, rejected.code) == (
        "message.rejected", "self", "E_SCHEMA"
    )  # fmt: skip
    m1 = c1.messages[0]
    assert (m1.direction, m1.type, m1.status) == ("out", "eu.epoc", "delivered")
    assert m1.submitted_at == T0
    assert m1.sent_at == T0 + timedelta(minutes=1)
    assert m1.delivered_at == T0 + timedelta(minutes=2)
    assert c1.opened_at == T0
    assert c1.first_reply_at == T0 + timedelta(hours=5)
    assert c2.first_reply_at is not None and c2.opened_at is not None
    assert c2.first_reply_at - c2.opened_at == timedelta(hours=9)
    assert c3.first_reply_at - c3.opened_at == timedelta(hours=20)  # type: ignore[operator]


def test_rejection_by_receipt_is_the_peers() -> None:
    log = _Log()
    log.add("message.submitted", T0, case="c", message="m", peer="DE.CA", type="eu.epoc")
    log.add("message.rejected", T0, case="c", message="m", peer="DE.CA", code="E_SIG",
            receipt="r")  # fmt: skip
    (case,) = replay(log.entries).cases.values()
    (refusal,) = case.refusals
    assert (refusal.refused_by, refusal.code, case.messages[0].direction) == (
        "peer",
        "E_SIG",
        "out",
    )


def test_deterministic_whatever_the_order() -> None:
    entries = build_log()
    shuffled = entries[1::2] + entries[::-2]
    assert replay(shuffled) == replay(entries)


def test_empty_log() -> None:
    result = replay([])
    assert (dict(result.cases), result.entries, result.first_at) == ({}, 0, None)


def test_what_replay_does_not_interpret_is_counted() -> None:
    log = _Log()
    log.add("message.submitted", T0, case="c", message="m", peer="DE.CA", type="eu.epoc")
    log.add("deadline.set", T0, case="c", step="produce")  # no rule
    log.add("deadline.extended", T0, case="c", rule="epoc.produce")  # unknown deadline event
    log.add("message.sent", T0, case="c")  # no message
    log.add("receipt.queued", T0, case="c", message="m")
    log.add("receipt.received", T0, case="c", receipted="unknown", outcome="ok")
    log.add("receipt.received", T0, case="c", receipted="m", outcome="rejected")
    log.add("deadline.reminder", T0, case="c", rule="never.set")
    result = replay(log.entries)
    assert result.unknown_events == {
        "deadline.extended": 1, "deadline.set": 1, "message.sent": 1, "receipt.queued": 1
    }  # fmt: skip
    (case,) = result.cases.values()
    assert (case.deadlines, case.messages[0].receipt, case.messages[0].status) == (
        (), "rejected", "submitted"
    )  # fmt: skip


def test_a_refusal_takes_a_ground_recorded_later() -> None:
    log = _Log()
    log.add("message.rejected", T0, case="c", message="m", peer="DE.CA", code="E_SCHEMA")
    log.add("message.quarantined", T0, case="c", message="m", ground="art.11")
    (case,) = replay(log.entries).cases.values()
    (refusal,) = case.refusals
    assert (refusal.ground, refusal.refused_by, case.messages[0].status) == (
        "art.11", "self", "quarantined"
    )  # fmt: skip


def test_replay_restores_the_garbage_collector() -> None:
    assert gc.isenabled()
    replay(build_log())
    assert gc.isenabled()
    assert gc.get_freeze_count() == 0


def test_the_facts_are_what_their_constructors_make() -> None:
    facts: list[CaseReplay | DeadlineFact | MessageFact | RefusalFact] = []
    for case in replay(build_log()).cases.values():
        facts += [case, *case.deadlines, *case.messages, *case.refusals]
    assert {type(fact).__name__ for fact in facts} == {
        "CaseReplay", "DeadlineFact", "MessageFact", "RefusalFact"
    }  # fmt: skip
    for fact in facts:
        made = type(fact)(**vars(fact))
        assert list(vars(fact).items()) == list(vars(made).items())
        assert [f.name for f in fields(fact)] == list(vars(fact))
        assert fact == made and hash(fact) == hash(made) and repr(fact) == repr(made)
