"""SQLite's group commit: writes queued together commit together, each alone in effect."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from broker.audit.entry import entry_leaf_hash
from broker.audit.merkle import MerkleTree, TreeState, root_from_leaf_hashes
from broker.clock import FixedClock
from broker.errors import StoreError
from broker.store import StorageKey, Store, open_store
from broker.store import sqlite as sqlite_store
from broker.store.auditlog import entry_of
from tests.store.builders import T0, event, outbound


async def _verified_size(store: Store) -> int:
    leaves = await store.audit_leaves(start=0, limit=100_000)
    assert [i for i, _, _ in leaves] == list(range(len(leaves)))
    for index, record, digest in leaves:
        assert entry_leaf_hash(entry_of(index, record)) == digest
    size, state = await store.audit_head()
    assert size == len(leaves)
    root = MerkleTree.from_state(TreeState.from_bytes(state)).root()
    assert root == root_from_leaf_hashes([d for _, _, d in leaves])
    return size


async def test_a_failing_write_in_a_group_leaves_the_others_and_the_tree_intact(
    tmp_path: Path,
) -> None:
    async with open_store(
        f"sqlite:///{tmp_path}/g.db", StorageKey.generate(), FixedClock(T0)
    ) as store:
        rows = [outbound() for _ in range(40)]
        # Every fourth write repeats an id already written: it fails (the row exists)
        # after its audit records were appended inside its savepoint.
        writes = []
        for n, row in enumerate(rows):
            writes.append(store.submit(row, b"{}", [event("message.submitted"), event("x.y")]))
            if n % 4 == 3:
                writes.append(store.submit(row, b"{}", [event("message.submitted")]))
        results = await asyncio.gather(*writes, return_exceptions=True)
        failures = [r for r in results if isinstance(r, BaseException)]
        assert len(failures) == 10
        assert all(isinstance(f, StoreError) and "exists" in str(f) for f in failures)
        for row in rows:
            assert await store.get_outbound(row.id) is not None
        # Only the successful writes' records are in the log, and the head is theirs.
        assert await _verified_size(store) == 2 * len(rows)


async def test_groups_really_form_under_concurrent_writers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sizes: list[int] = []
    run_writes = sqlite_store._run_writes

    def counting(group: list[Any]) -> None:
        sizes.append(len(group))
        run_writes(group)

    monkeypatch.setattr(sqlite_store, "_run_writes", counting)
    async with open_store(
        f"sqlite:///{tmp_path}/g.db", StorageKey.generate(), FixedClock(T0)
    ) as store:
        await asyncio.gather(*(store.audit([event("a.b"), event("c.d")]) for _ in range(200)))
        assert await _verified_size(store) == 400
    # 200 writes queued at once: far fewer commits, none above the cap.
    assert sum(sizes) >= 200
    assert max(sizes) > 1
    assert max(sizes) <= sqlite_store._GROUP_MAX
    assert len(sizes) < 100


@pytest.mark.parametrize("writers", [1, 8])
async def test_reads_after_writes_see_them(tmp_path: Path, writers: int) -> None:
    async with open_store(
        f"sqlite:///{tmp_path}/g.db", StorageKey.generate(), FixedClock(T0)
    ) as store:

        async def write_then_read() -> None:
            row = outbound()
            await store.submit(row, None, [event("message.submitted")])
            assert await store.get_outbound(row.id) is not None

        await asyncio.gather(*(write_then_read() for _ in range(writers * 10)))
        assert await _verified_size(store) == writers * 10


async def test_a_write_failing_after_it_logged_takes_its_records_back(tmp_path: Path) -> None:
    def logs_then_fails(db: Any) -> None:
        sqlite_store._insert_audit(db, [event("a.b"), event("a.c")])
        raise sqlite3.IntegrityError("a constraint failed after the records were appended")

    async with open_store(
        f"sqlite:///{tmp_path}/g.db", StorageKey.generate(), FixedClock(T0)
    ) as store:
        writes: list[Any] = []
        for n in range(60):
            writes.append(store.audit([event("good.one")]))
            if n % 3 == 0:
                writes.append(store._write("test", logs_then_fails))  # type: ignore[attr-defined]
        results = await asyncio.gather(*writes, return_exceptions=True)
        assert sum(isinstance(r, StoreError) for r in results) == 20
        assert await _verified_size(store) == 60
        assert {e.event for _, e, _ in await store.audit_leaves(start=0, limit=100)} == {"good.one"}
