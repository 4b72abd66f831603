"""Keyed digests, witnesses' answers, peers' checkpoints and log cursors, on both stores."""

from __future__ import annotations

import hmac

from broker.audit.entry import entry_leaf_hash
from broker.store import Store
from broker.store.auditlog import entry_of
from tests.store.builders import event, inbound, outbound


async def test_a_stored_form_leaves_its_keyed_digest_on_its_own_record(store: Store) -> None:
    message = outbound()
    await store.submit(
        message,
        b'{"form":1}',
        [event("message.submitted", message_id=message.id), event("message.sent")],
    )
    arrived = inbound()
    await store.record_inbound(
        arrived, b'{"form":2}', None, [event("message.received", message_id=arrived.id)]
    )
    leaves = await store.audit_leaves(start=0, limit=10)
    submitted, sent, received = (record for _, record, _ in leaves)
    assert set(submitted.digests) == {"form"} and len(submitted.digests["form"]) == 64
    assert sent.digests == {}
    assert set(received.digests) == {"form"}
    # Keyed: the digest is not the plain hash of the form, and differs per case key.
    assert submitted.digests["form"] != received.digests["form"]
    # What was stored is what was hashed: the entries (with digests) match the leaves.
    for index, record, digest in leaves:
        assert entry_leaf_hash(entry_of(index, record)) == digest
        assert "form" not in record.details


async def test_witness_answers_keep_cosignatures_and_known_sizes(store: Store) -> None:
    assert await store.witness_sizes() == {}
    await store.record_witness_answer("DE.247", 5, (5, b"line five\n"), [event("witness.cosigned")])
    await store.record_witness_answer("DE.247", 3, None, [event("witness.refused")])
    await store.record_witness_answer("FR.247", 5, (5, b"other\n"), [])
    # The same cosignature twice is kept once.
    await store.record_witness_answer("FR.247", 5, (5, b"other\n"), [])
    assert await store.witness_sizes() == {"DE.247": 3, "FR.247": 5}
    assert await store.list_cosignatures() == [
        ("DE.247", 5, b"line five\n"),
        ("FR.247", 5, b"other\n"),
    ]
    events = [record.event for _, record, _ in await store.audit_leaves(start=0, limit=10)]
    assert events == ["witness.cosigned", "witness.refused"]


async def test_peer_checkpoints_report_a_second_root_for_a_size(store: Store) -> None:
    assert await store.peer_checkpoint("DE.247") is None
    root = bytes(32)
    assert await store.add_peer_checkpoint("DE.247", 4, root, b"note4", [event("a.b")]) is None
    assert await store.add_peer_checkpoint("DE.247", 9, b"\1" * 32, b"note9", []) is None
    assert await store.peer_checkpoint("DE.247") == (9, b"\1" * 32, b"note9")
    assert await store.peer_checkpoint("DE.247", 4) == (4, root, b"note4")
    assert await store.peer_checkpoint("DE.247", 5) is None
    kept = await store.add_peer_checkpoint("DE.247", 4, b"\2" * 32, b"other", [event("c.d")])
    assert kept is not None and hmac.compare_digest(kept, root)
    # Nothing was written for the second root: one record only.
    assert (await store.audit_head())[0] == 1


async def test_cursors_start_at_zero_and_move(store: Store) -> None:
    assert await store.audit_cursor("receipt_proofs") == 0
    await store.set_audit_cursor("receipt_proofs", 42)
    await store.set_audit_cursor("receipt_proofs", 43)
    assert await store.audit_cursor("receipt_proofs") == 43
    assert await store.audit_cursor("other") == 0


async def test_leaf_hashes_page_through_the_log(store: Store) -> None:
    await store.audit([event(f"e.n{i}") for i in range(7)])
    leaves = await store.audit_leaves(start=0, limit=10)
    assert await store.audit_leaf_hashes(start=0, limit=10) == [d for _, _, d in leaves]
    assert await store.audit_leaf_hashes(start=5, limit=1) == [leaves[5][2]]
    assert await store.audit_leaf_hashes(start=7, limit=5) == []
