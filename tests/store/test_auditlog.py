"""The audit table as a Merkle log, on SQLite and PostgreSQL: one order, verifiable."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from structlog.testing import capture_logs

from broker.audit.entry import entry_bytes
from broker.audit.merkle import MerkleTree, TreeState, leaf_hash, root_from_leaf_hashes
from broker.clock import FixedClock
from broker.errors import StoreError
from broker.store import StorageKey, Store, open_store
from broker.store.auditlog import entry_of
from broker.store.base import AuditEvent
from tests.store.builders import event, outbound
from tests.store.conftest import Raw


async def _leaves(store: Store) -> list[tuple[int, AuditEvent, bytes]]:
    return await store.audit_leaves(start=0, limit=1_000_000)


async def _check_log(store: Store) -> int:
    """Every stored leaf hash is its record's entry hash, and the head's root is theirs."""
    leaves = await _leaves(store)
    assert [index for index, _, _ in leaves] == list(range(len(leaves)))
    for index, record, digest in leaves:
        assert leaf_hash(entry_bytes(entry_of(index, record))) == digest
    size, state = await store.audit_head()
    assert size == len(leaves)
    root = MerkleTree.from_state(TreeState.from_bytes(state)).root()
    assert root == root_from_leaf_hashes([digest for _, _, digest in leaves])
    return size


async def test_every_write_appends_its_records_to_the_tree(store: Store) -> None:
    assert await _check_log(store) == 0
    await store.submit(outbound(), None, [event("message.submitted"), event("message.sent")])
    await store.audit([event("quarantine.released", code="E_PARSE")])
    assert await _check_log(store) == 3


async def test_a_record_that_cannot_be_logged_writes_nothing(store: Store) -> None:
    message = outbound()
    with pytest.raises(StoreError, match="cannot be logged"):
        await store.submit(message, None, [event("message.submitted", details={"x": "a" * 300})])
    assert await store.get_outbound(message.id) is None
    assert await _check_log(store) == 0


@pytest.fixture
async def second(
    store_url: str, storage_key: StorageKey, clock: FixedClock
) -> AsyncIterator[Store]:
    async with open_store(store_url, storage_key, clock) as other:
        yield other


async def test_concurrent_writers_share_one_order(store: Store, second: Store) -> None:
    writes = [
        s.audit([event("message.sent", details={"n": n}), event("message.delivered")])
        for n in range(20)
        for s in (store, second)
    ]
    await asyncio.gather(*writes)
    assert await _check_log(store) == 80


async def test_records_from_before_the_log_are_added_in_order_at_open(
    store: Store, raw: Raw, store_url: str, storage_key: StorageKey, clock: FixedClock
) -> None:
    await store.audit([event(f"old.event{n}") for n in range(5)])
    # As a store migrated from schema 2 has them: no leaves, an empty tree.
    await raw.execute("UPDATE audit SET leaf_index = NULL, leaf_hash = NULL")
    await raw.execute("UPDATE audit_tree SET size = 0, state = ?", bytes(8))
    with capture_logs() as logs:
        async with open_store(store_url, storage_key, clock) as reopened:
            leaves = await _leaves(reopened)
            assert [r.event for _, r, _ in leaves] == [f"old.event{n}" for n in range(5)]
            assert await _check_log(reopened) == 5
    assert [log["records"] for log in logs if log["event"] == "store.audit_backfilled"] == [5]
