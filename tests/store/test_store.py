"""The Store contract, run against SQLite and PostgreSQL alike."""

from __future__ import annotations

import asyncio
import sqlite3
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import asyncpg
import pytest
from structlog.testing import capture_logs

from broker.clock import FixedClock
from broker.errors import StoreError
from broker.ids import uuid7
from broker.store import StorageKey, Store, connect_store, open_store
from broker.store.base import DeliveryUpdate
from broker.store.migrations import LATEST_VERSION
from tests.store.builders import SECOND, T0, entry, event, inbound, outbound, receipt_for
from tests.store.conftest import Raw

FORM = b'{"subscriber":"SECRET-MARKER-6f1d","service":"mail"}'
MARKER = b"SECRET-MARKER-6f1d"

# -- schema -----------------------------------------------------------------------------


async def test_migrate_is_idempotent_and_recorded(store: Store, raw: Raw) -> None:
    assert await store.migrate() == LATEST_VERSION
    assert await store.migrate() == LATEST_VERSION
    rows = await raw.fetch("SELECT version, name FROM schema_migrations ORDER BY version")
    assert [row[0] for row in rows] == list(range(1, LATEST_VERSION + 1))
    assert rows[0][1] == "cases, outbox, inbox, forms, quarantine, audit"


async def test_reopen_keeps_data_and_logs_no_migration(
    store_url: str, storage_key: StorageKey, clock: FixedClock
) -> None:
    message = outbound()
    with capture_logs() as logs:
        async with open_store(store_url, storage_key, clock) as first:
            await first.submit(message, FORM, [])
    migrated = [log for log in logs if log["event"] == "store.migrated"]
    assert [log["version"] for log in migrated] == list(range(1, LATEST_VERSION + 1))
    assert all(storage_key.to_text() not in repr(log) for log in logs)
    with capture_logs() as logs:
        async with open_store(store_url, storage_key, clock) as second:
            assert await second.get_outbound(message.id) == message
            assert await second.read_form("out", message.id) == FORM
    assert [log for log in logs if log["event"] == "store.migrated"] == []


async def test_a_newer_schema_is_refused(
    store: Store, raw: Raw, store_url: str, storage_key: StorageKey, clock: FixedClock
) -> None:
    await raw.execute(
        "INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)",
        LATEST_VERSION + 1,
        "from the future",
        T0 if raw.backend == "postgres" else 0,
    )
    with pytest.raises(StoreError, match=f"schema version {LATEST_VERSION + 1}, newer"):
        await connect_store(store_url, storage_key, clock)


# -- outbox -----------------------------------------------------------------------------


async def test_submit_round_trips_exactly(store: Store, raw: Raw) -> None:
    at = datetime(2026, 9, 1, 5, 0, 0, 999_999, tzinfo=timezone(timedelta(hours=2)))
    message = outbound(at=at, priority="emergency", in_reply_to=uuid7(), code="E_X")
    await store.submit(message, FORM, [event("message.submitted", message_id=message.id)])
    stored = await store.get_outbound(message.id)
    assert stored == message
    assert stored is not None
    assert stored.created_at.utcoffset() == timedelta(0)
    assert stored.created_at.tzinfo == UTC
    assert stored.created_at.microsecond == 999_999
    assert await store.get_outbound(uuid7()) is None
    assert await store.read_form("out", message.id) == FORM
    assert await store.read_form("in", message.id) is None


async def test_submit_existing_id_is_refused_and_writes_nothing(store: Store) -> None:
    message = outbound()
    await store.submit(message, FORM, [event("message.submitted")])
    again = replace(message, case_id=uuid7(), envelope=b"other")
    with pytest.raises(StoreError, match=f"outbox message {message.id} exists") as caught:
        await store.submit(again, FORM, [event("message.submitted")])
    assert caught.value.code == "E_STORE"
    assert await store.get_outbound(message.id) == message
    assert len(await store.list_audit()) == 1
    assert [case.id for case in await store.list_cases()] == [message.case_id]


async def test_naive_times_are_refused(store: Store) -> None:
    with pytest.raises(StoreError, match="timezone-aware"):
        await store.submit(outbound(at=datetime(2026, 9, 1, 3, 0)), None, [])
    assert await store.list_outbound() == []


async def test_claim_due_orders_emergency_then_oldest_and_leases(store: Store) -> None:
    old = outbound(at=T0 - 10 * SECOND)
    newer = outbound(at=T0 - 5 * SECOND)
    urgent = outbound(at=T0 - SECOND, priority="emergency")
    later = outbound(at=T0 + SECOND)  # not due yet
    sent = outbound(at=T0 - 20 * SECOND, state="sent")  # receipt overdue: due again
    done = outbound(at=T0 - 30 * SECOND, state="delivered")
    never = outbound(at=T0 - 30 * SECOND, next_attempt_at=None)
    for message in (old, newer, urgent, later, sent, done, never):
        await store.submit(message, None, [])

    claimed = await store.claim_due(T0, limit=3, lease_seconds=30)
    assert [m.id for m in claimed] == [urgent.id, sent.id, old.id]
    assert {m.next_attempt_at for m in claimed} == {T0 + 30 * SECOND}
    assert (await store.get_outbound(old.id)) == replace(old, next_attempt_at=T0 + 30 * SECOND)

    # Leased rows are not claimed again until the lease ends.
    assert [m.id for m in await store.claim_due(T0, limit=10, lease_seconds=30)] == [newer.id]
    assert [m.id for m in await store.claim_due(T0, limit=10, lease_seconds=30)] == []
    # `later` fell due meanwhile; the others' leases end at T0 + 30 s.
    soon = await store.claim_due(T0 + 29 * SECOND, limit=10, lease_seconds=30)
    assert [m.id for m in soon] == [later.id]
    again = await store.claim_due(T0 + 30 * SECOND, limit=10, lease_seconds=30)
    assert [m.id for m in again] == [urgent.id, sent.id, old.id, newer.id]


async def test_claim_due_of_one_priority(store: Store) -> None:
    routine = outbound(at=T0 - 10 * SECOND)
    urgent = outbound(at=T0 - SECOND, priority="emergency")
    for message in (routine, urgent):
        await store.submit(message, None, [])
    emergency = await store.claim_due(T0, limit=10, lease_seconds=30, priority="emergency")
    assert [m.id for m in emergency] == [urgent.id]
    assert await store.claim_due(T0, limit=10, lease_seconds=30, priority="emergency") == []
    normal = await store.claim_due(T0, limit=10, lease_seconds=30, priority="normal")
    assert [m.id for m in normal] == [routine.id]


async def test_update_delivery_compare_and_set(store: Store, clock: FixedClock) -> None:
    message = outbound()
    await store.submit(message, None, [])
    clock.advance(5 * SECOND)
    updated = await store.update_delivery(
        message.id,
        state="sent",
        attempts=1,
        next_attempt_at=T0 + 60 * SECOND,
        code=None,
        events=[event("message.sent", message_id=message.id)],
        expect_state=["queued"],
    )
    assert updated is True
    row = await store.get_outbound(message.id)
    assert row == replace(
        message,
        state="sent",
        attempts=1,
        next_attempt_at=T0 + 60 * SECOND,
        updated_at=T0 + 5 * SECOND,
    )

    # The state moved on: a second "queued -> sent" writes nothing, not even its event.
    lost = await store.update_delivery(
        message.id,
        state="sent",
        attempts=2,
        next_attempt_at=None,
        code=None,
        events=[event("message.sent", message_id=message.id)],
        expect_state=["queued"],
    )
    assert lost is False
    assert await store.get_outbound(message.id) == row
    assert [e.event for _, e in await store.list_audit()] == ["message.sent"]

    receipt = b'{"receipt":"signed"}'
    assert await store.update_delivery(
        message.id,
        state="delivered",
        attempts=1,
        next_attempt_at=None,
        code=None,
        events=[],
        receipt=receipt,
        expect_state=["queued", "sent", "failed"],
    )
    # Without a receipt argument the stored receipt is kept.
    assert await store.update_delivery(
        message.id, state="delivered", attempts=1, next_attempt_at=None, code="E_LATE", events=[]
    )
    final = await store.get_outbound(message.id)
    assert final is not None
    assert (final.state, final.receipt, final.code, final.next_attempt_at) == (
        "delivered",
        receipt,
        "E_LATE",
        None,
    )


async def test_update_delivery_of_a_missing_row(store: Store) -> None:
    missing = uuid7()
    with pytest.raises(StoreError, match=f"no outbox message {missing}"):
        await store.update_delivery(
            missing,
            state="sent",
            attempts=1,
            next_attempt_at=None,
            code=None,
            events=[event("message.sent")],
            expect_state=["queued"],
        )
    assert await store.list_audit() == []


async def test_update_deliveries_is_one_transaction_of_compare_and_sets(store: Store) -> None:
    first, second = outbound(), outbound()
    for message in (first, second):
        await store.submit(message, None, [])
    results = await store.update_deliveries(
        [
            DeliveryUpdate(
                first.id,
                state="sent",
                attempts=1,
                next_attempt_at=None,
                code=None,
                events=[event("message.sent", message_id=first.id)],
                expect_state=["queued"],
            ),
            # Lost its compare-and-set: nothing of it is written, not even its event.
            DeliveryUpdate(
                second.id,
                state="sent",
                attempts=1,
                next_attempt_at=None,
                code=None,
                events=[event("message.sent", message_id=second.id)],
                expect_state=["sent"],
            ),
        ]
    )
    assert results == [True, False]
    states = [(await store.get_outbound(m.id)) for m in (first, second)]
    assert [(r.state if r else None) for r in states] == ["sent", "queued"]
    assert [e.message_id for _, e in await store.list_audit()] == [first.id]
    assert await store.update_deliveries([]) == []

    # A missing row fails the whole batch: the update before it is rolled back too.
    with pytest.raises(StoreError, match="no outbox message"):
        await store.update_deliveries(
            [
                DeliveryUpdate(second.id, "sent", 1, None, None, [event("message.sent")]),
                DeliveryUpdate(uuid7(), "sent", 1, None, None, []),
            ]
        )
    row = await store.get_outbound(second.id)
    assert row is not None and row.state == "queued"
    assert len(await store.list_audit()) == 1


async def test_requeue(store: Store) -> None:
    failed = outbound(state="failed", attempts=5, code="E_NO_RECEIPT", next_attempt_at=None)
    sent_receipt = outbound(state="sent", attempts=1, expects_receipt=False, next_attempt_at=None)
    delivered = outbound(state="delivered", next_attempt_at=None)
    for message in (failed, sent_receipt, delivered):
        await store.submit(message, None, [])
    now = T0 + 3600 * SECOND

    await store.requeue(failed.id, now, [event("outbox.retry", message_id=failed.id)])
    assert await store.get_outbound(failed.id) == replace(
        failed, state="queued", attempts=0, code=None, next_attempt_at=now, updated_at=now
    )
    await store.requeue(sent_receipt.id, now, [])
    assert await store.get_outbound(sent_receipt.id) == replace(sent_receipt, next_attempt_at=now)
    assert {m.id for m in await store.claim_due(now, 10, 30)} == {failed.id, sent_receipt.id}

    # A receipted row has nothing to re-send: it stays as it is, the event is kept.
    await store.requeue(delivered.id, now, [event("outbox.duplicate")])
    assert await store.get_outbound(delivered.id) == delivered
    with pytest.raises(StoreError, match="no outbox message"):
        await store.requeue(uuid7(), now, [event("outbox.retry")])
    assert [e.event for _, e in await store.list_audit()] == ["outbox.retry", "outbox.duplicate"]


async def test_list_outbound_newest_first(store: Store) -> None:
    messages = [outbound(at=T0 + i * SECOND) for i in range(4)]
    messages[1] = replace(messages[1], state="sent")
    for message in messages:
        await store.submit(message, None, [])
    assert [m.id for m in await store.list_outbound()] == [m.id for m in reversed(messages)]
    assert [m.id for m in await store.list_outbound(limit=2)] == [messages[3].id, messages[2].id]
    assert [m.id for m in await store.list_outbound(state="sent")] == [messages[1].id]
    assert await store.list_outbound(state="failed") == []


# -- inbox ------------------------------------------------------------------------------


async def test_record_inbound_once(store: Store) -> None:
    message = inbound()
    receipt = receipt_for(message)
    message = replace(message, receipt_id=receipt.id)
    row, created = await store.record_inbound(
        message, FORM, receipt, [event("message.received", message_id=message.id)]
    )
    assert (row, created) == (message, True)
    assert await store.get_inbound(message.id) == message
    assert await store.get_outbound(receipt.id) == receipt
    assert await store.read_form("in", message.id) == FORM

    # The same id again (a redelivery, or a replay with other bytes): nothing written.
    replay = replace(message, digest="0" * 64, case_id=uuid7())
    other_receipt = receipt_for(replay)
    row, created = await store.record_inbound(
        replay, b'{"other":1}', other_receipt, [event("message.received")], entry()
    )
    assert (row, created) == (message, False)
    assert await store.get_outbound(other_receipt.id) is None
    assert await store.read_form("in", message.id) == FORM
    assert len(await store.list_audit()) == 1
    assert await store.list_quarantine() == []
    assert [case.id for case in await store.list_cases()] == [message.case_id]


async def test_record_rejected_inbound_with_quarantine(store: Store) -> None:
    message = inbound(status="rejected", code="E_POLICY_FORBIDDEN", sealed_by=None)
    receipt = receipt_for(message)
    refused = entry(
        code="E_POLICY_FORBIDDEN", message_id=message.id, peer="DE.247", authenticated=True
    )
    _, created = await store.record_inbound(
        message, None, receipt, [event("message.rejected", code="E_POLICY_FORBIDDEN")], refused
    )
    assert created is True
    assert await store.read_form("in", message.id) is None
    assert await store.get_quarantine(refused.id) == refused
    assert [m.id for m in await store.list_inbound(status="rejected")] == [message.id]
    assert await store.list_inbound(status="accepted") == []


async def test_record_inbound_with_an_existing_receipt_id_writes_nothing(store: Store) -> None:
    taken = outbound()
    await store.submit(taken, None, [])
    message = inbound()
    with pytest.raises(StoreError, match=f"outbox message {taken.id} exists"):
        await store.record_inbound(
            message, FORM, replace(receipt_for(message), id=taken.id), [event("x")]
        )
    assert await store.get_inbound(message.id) is None
    assert await store.read_form("in", message.id) is None
    assert await store.list_audit() == []
    assert [case.id for case in await store.list_cases()] == [taken.case_id]


async def test_list_inbound_newest_first(store: Store) -> None:
    messages = [inbound(received_at=T0 + i * SECOND) for i in range(3)]
    for message in messages:
        await store.record_inbound(message, None, None, [])
    assert [m.id for m in await store.list_inbound()] == [m.id for m in reversed(messages)]
    assert [m.id for m in await store.list_inbound(limit=1)] == [messages[2].id]


# -- forms and cases --------------------------------------------------------------------


async def test_forms_are_encrypted_at_rest(
    store: Store, raw: Raw, store_url: str, tmp_path: Path
) -> None:
    out = outbound()
    await store.submit(out, FORM, [])
    message = inbound(case_id=out.case_id)
    await store.record_inbound(message, FORM, None, [])
    rows = await raw.fetch("SELECT direction, message_id, ciphertext FROM forms ORDER BY direction")
    assert [(row[0], row[1]) for row in rows] == [("in", message.id), ("out", out.id)]
    for row in rows:
        assert MARKER not in bytes(row[2])
        assert len(row[2]) == 12 + len(FORM) + 16
    wrapped = await raw.fetch("SELECT wrapped_key FROM cases")
    assert [len(row[0]) for row in wrapped] == [12 + 32 + 16]
    if raw.backend == "sqlite":
        await store.close()
        for path in tmp_path.iterdir():  # the database, its WAL and shared memory
            assert MARKER not in path.read_bytes(), path.name


async def test_a_wrong_storage_key_cannot_read_or_add_forms(
    store: Store, store_url: str, clock: FixedClock
) -> None:
    message = outbound()
    await store.submit(message, FORM, [])
    async with open_store(store_url, StorageKey.generate(), clock) as stranger:
        with pytest.raises(StoreError, match="wrong storage key") as caught:
            await stranger.read_form("out", message.id)
        assert caught.value.code == "E_STORE"
        with pytest.raises(StoreError, match="wrong storage key"):
            await stranger.submit(outbound(case_id=message.case_id), FORM, [])
        # Metadata needs no key.
        assert await stranger.get_outbound(message.id) == message


@pytest.mark.parametrize("tamper", ["flip-form", "truncate-form", "swap-forms", "flip-case-key"])
async def test_altered_bytes_at_rest_are_store_errors(store: Store, raw: Raw, tamper: str) -> None:
    first = outbound()
    second = outbound(case_id=first.case_id)
    await store.submit(first, FORM, [])
    await store.submit(second, b'{"other":"form"}', [])
    [[blob]] = await raw.fetch("SELECT ciphertext FROM forms WHERE message_id = ?", first.id)
    blob = bytes(blob)
    if tamper == "flip-form":
        new = blob[:-1] + bytes([blob[-1] ^ 0x80])
        await raw.execute("UPDATE forms SET ciphertext = ? WHERE message_id = ?", new, first.id)
    elif tamper == "truncate-form":
        await raw.execute("UPDATE forms SET ciphertext = ? WHERE message_id = ?", b"x", first.id)
    elif tamper == "swap-forms":
        [[other]] = await raw.fetch("SELECT ciphertext FROM forms WHERE message_id = ?", second.id)
        await raw.execute(
            "UPDATE forms SET ciphertext = ? WHERE message_id = ?", bytes(other), first.id
        )
    else:
        [[key]] = await raw.fetch("SELECT wrapped_key FROM cases WHERE id = ?", first.case_id)
        new = bytes(key)[:20] + bytes([key[20] ^ 1]) + bytes(key)[21:]
        await raw.execute("UPDATE cases SET wrapped_key = ? WHERE id = ?", new, first.case_id)
    with pytest.raises(StoreError) as caught:
        await store.read_form("out", first.id)
    expected = "truncated" if tamper == "truncate-form" else "does not decrypt"
    assert expected in caught.value.message
    assert caught.value.code == "E_STORE"


async def test_cases(store: Store) -> None:
    request = outbound(at=T0, recipient="AT.247", type="budapest.art29")
    await store.submit(request, FORM, [])
    answer = inbound(
        case_id=request.case_id,
        sender="AT.247",
        type="msg.receipt",
        received_at=T0 + 10 * SECOND,
        in_reply_to=request.id,
    )
    ack = receipt_for(answer, at=T0 + 11 * SECOND)
    await store.record_inbound(answer, None, ack, [])
    other = inbound(received_at=T0 + 5 * SECOND, type="protocol2.art7")
    await store.record_inbound(other, FORM, None, [])
    # A late message recorded with an older time does not move updated_at back.
    late = inbound(case_id=request.case_id, received_at=T0 + SECOND)
    await store.record_inbound(late, None, None, [])

    cases = await store.list_cases()
    assert [(c.id, c.first_type, c.peer) for c in cases] == [
        (request.case_id, "budapest.art29", "AT.247"),
        (other.case_id, "protocol2.art7", "DE.247"),
    ]
    assert (cases[0].created_at, cases[0].updated_at) == (T0, T0 + 11 * SECOND)
    assert (cases[0].messages_in, cases[0].messages_out, cases[0].shredded) == (2, 2, False)
    assert (cases[1].messages_in, cases[1].messages_out) == (1, 0)
    assert [c.id for c in await store.list_cases(limit=1)] == [request.case_id]

    inbound_rows, outbound_rows = await store.case_messages(request.case_id)
    assert [m.id for m in inbound_rows] == [late.id, answer.id]
    assert [m.id for m in outbound_rows] == [request.id, ack.id]
    assert await store.case_messages(uuid7()) == ([], [])


async def test_shred_case(store: Store, raw: Raw, clock: FixedClock) -> None:
    shred_case = store.shred_case
    message = outbound()
    await store.submit(message, FORM, [])
    reply = inbound(case_id=message.case_id)
    await store.record_inbound(reply, FORM, None, [])
    kept = outbound()
    await store.submit(kept, FORM, [])

    clock.advance(SECOND)
    await shred_case(message.case_id, [event("case.shredded", case_id=message.case_id)])
    assert await store.read_form("out", message.id) is None
    assert await store.read_form("in", reply.id) is None
    assert await store.read_form("out", kept.id) == FORM
    assert await raw.fetch("SELECT message_id FROM forms") == [(kept.id,)]
    [[wrapped, shredded_at]] = await raw.fetch(
        "SELECT wrapped_key, shredded_at FROM cases WHERE id = ?", message.case_id
    )
    assert wrapped is None
    assert shredded_at is not None
    shredded = {c.id: c.shredded for c in await store.list_cases()}
    assert shredded == {message.case_id: True, kept.case_id: False}
    # Metadata and the audit trail stay; no new form can enter the shredded case.
    assert await store.get_outbound(message.id) == message
    assert [e.event for _, e in await store.list_audit(case_id=message.case_id)] == [
        "case.shredded"
    ]
    with pytest.raises(StoreError, match="was shredded"):
        await store.submit(outbound(case_id=message.case_id), FORM, [])
    await store.submit(outbound(case_id=message.case_id), None, [])
    await shred_case(message.case_id, [])  # again: nothing left to erase
    with pytest.raises(StoreError, match="no case"):
        await shred_case(uuid7(), [])


# -- quarantine -------------------------------------------------------------------------


async def test_quarantine_lifecycle(store: Store) -> None:
    first = entry(received_at=T0)
    second = entry(received_at=T0 + SECOND, code="E_TOO_LARGE", reason="over 1 MiB")
    for refused in (first, second):
        await store.quarantine(refused, [event("quarantine.held", code=refused.code)])

    listed = await store.list_quarantine()
    assert listed == [replace(second, raw=None), replace(first, raw=None)]
    assert await store.list_quarantine(state="released") == []
    assert await store.get_quarantine(first.id) == first
    assert await store.get_quarantine(uuid7()) is None

    await store.set_quarantine_state(first.id, "released", [event("quarantine.released")])
    await store.set_quarantine_state(second.id, "released", [])
    claimed = await store.claim_released(limit=1)
    assert claimed == [replace(first, state="reprocessed")]
    assert claimed[0].raw == first.raw
    assert await store.claim_released(limit=10) == [replace(second, state="reprocessed")]
    assert await store.claim_released(limit=10) == []

    await store.set_quarantine_state(first.id, "purged", [event("quarantine.purged")])
    purged = await store.get_quarantine(first.id)
    assert purged == replace(first, state="purged", raw=None)
    assert [e.id for e in await store.list_quarantine(state="purged")] == [first.id]

    for state in ("held", "released", "purged"):
        with pytest.raises(StoreError, match="is purged: its state is final"):
            await store.set_quarantine_state(first.id, state, [event("nope")])
    with pytest.raises(StoreError, match="no quarantine entry"):
        await store.set_quarantine_state(uuid7(), "released", [event("nope")])
    assert [e.event for _, e in await store.list_audit()] == [
        "quarantine.held",
        "quarantine.held",
        "quarantine.released",
        "quarantine.purged",
    ]


async def test_quarantine_without_raw_bytes(store: Store) -> None:
    refused = entry(raw=None, size=12_000_000, code="E_TOO_LARGE")
    await store.quarantine(refused, [])
    assert await store.get_quarantine(refused.id) == refused


# -- audit ------------------------------------------------------------------------------


async def test_audit_order_filters_and_details(store: Store) -> None:
    case_id, message_id = uuid7(), uuid7()
    events = [
        event("message.submitted", message_id=message_id, case_id=case_id, peer="AT.247"),
        event(
            "message.rejected",
            at=T0 + SECOND,
            message_id=message_id,
            case_id=case_id,
            code="E_SCHEMA",
            details={"type": "budapest.art29", "count": 3, "emergency": True, "note": None},
        ),
        event("directory.updated", details={"version": 7}),
        event("message.sent", message_id=uuid7(), case_id=case_id),
    ]
    await store.audit(events[:2])
    await store.audit(events[2:])
    everything = await store.list_audit()
    assert [e for _, e in everything] == events
    seqs = [seq for seq, _ in everything]
    assert seqs == sorted(seqs)
    assert len(set(seqs)) == 4
    assert [e for _, e in await store.list_audit(message_id=message_id)] == events[:2]
    assert [e for _, e in await store.list_audit(case_id=case_id)] == [
        events[0],
        events[1],
        events[3],
    ]
    assert [e for _, e in await store.list_audit(case_id=case_id, message_id=message_id)] == (
        events[:2]
    )
    assert [e for _, e in await store.list_audit(limit=2)] == events[:2]
    assert everything[1][1].details == {
        "count": 3,
        "emergency": True,
        "note": None,
        "type": "budapest.art29",
    }


# -- wait_outbox ------------------------------------------------------------------------


async def test_wait_outbox_returns_at_once_after_a_local_write(store: Store) -> None:
    await store.submit(outbound(), None, [])
    loop = asyncio.get_running_loop()
    start = loop.time()
    await store.wait_outbox(5)
    assert loop.time() - start < 0.5
    # The wake-up was consumed: with nothing new, the wait lasts its timeout.
    start = loop.time()
    await store.wait_outbox(0.3)
    assert 0.29 <= loop.time() - start < 1.0


# -- driver errors ----------------------------------------------------------------------


async def test_driver_errors_become_store_errors(store: Store, raw: Raw) -> None:
    await raw.execute("DROP TABLE audit")
    with pytest.raises(StoreError) as caught:
        await store.audit([event("message.sent")])
    assert caught.value.code == "E_STORE"
    assert "audit failed" in caught.value.message
    driver_errors = (sqlite3.Error, asyncpg.PostgresError, asyncpg.InterfaceError)
    assert isinstance(caught.value.__cause__, driver_errors)
    # The failed transaction left nothing behind and the store still works.
    message = outbound()
    with pytest.raises(StoreError, match="submit failed"):
        await store.submit(message, FORM, [event("message.submitted")])
    assert await store.get_outbound(message.id) is None
    await store.submit(message, FORM, [])
    assert await store.read_form("out", message.id) == FORM


async def test_a_closed_store_raises_store_error(
    store_url: str, storage_key: StorageKey, clock: FixedClock
) -> None:
    store = await connect_store(store_url, storage_key, clock)
    await store.close()
    await store.close()  # idempotent
    with pytest.raises(StoreError, match="the store is closed"):
        await store.get_outbound(uuid7())
    with pytest.raises(StoreError, match="the store is closed"):
        await store.submit(outbound(), None, [])
    with pytest.raises(StoreError, match="the store is closed"):
        await store.wait_outbox(0.1)
