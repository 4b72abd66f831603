"""Several store instances (connections, processes) on one database at once."""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack
from dataclasses import replace
from pathlib import Path

import pytest

from broker.clock import FixedClock
from broker.ids import uuid7
from broker.store import StorageKey, Store, connect_store, open_store
from broker.store.migrations import LATEST_VERSION
from tests.store.builders import SECOND, T0, entry, event, inbound, outbound, receipt_for
from tests.store.conftest import Raw

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
async def stores(
    store: Store, store_url: str, storage_key: StorageKey, clock: FixedClock
) -> AsyncIterator[list[Store]]:
    """The test's store and a second instance on the same database (other connections)."""
    async with open_store(store_url, storage_key, clock) as second:
        yield [store, second]


async def test_twenty_concurrent_records_of_one_message_create_it_once(
    stores: list[Store], raw: Raw
) -> None:
    message = inbound()
    attempts = []
    for i in range(20):
        receipt = receipt_for(message)
        attempts.append(
            stores[i % 2].record_inbound(
                replace(message, receipt_id=receipt.id),
                b'{"attempt":%d}' % i,
                receipt,
                [event("message.received", message_id=message.id, details={"attempt": i})],
            )
        )
    results = await asyncio.gather(*attempts)

    winners = [i for i, (_, created) in enumerate(results) if created]
    assert len(winners) == 1
    [winner] = winners
    stored = results[winner][0]
    assert all(row == stored for row, _ in results)
    assert await stores[0].get_inbound(message.id) == stored
    assert await raw.fetch("SELECT count(*) FROM inbox") == [(1,)]
    # Only the winner's receipt, form and event were written.
    assert await raw.fetch("SELECT id FROM outbox") == [(stored.receipt_id,)]
    assert await stores[1].read_form("in", message.id) == b'{"attempt":%d}' % winner
    audit = await stores[0].list_audit()
    assert [e.details for _, e in audit] == [{"attempt": winner}]


async def test_concurrent_first_messages_of_a_case_share_one_case_key(
    stores: list[Store], raw: Raw
) -> None:
    case_id = uuid7()
    messages = [outbound(case_id=case_id) for _ in range(12)]
    await asyncio.gather(
        *(stores[i % 2].submit(m, b'{"n":%d}' % i, []) for i, m in enumerate(messages))
    )
    assert await raw.fetch("SELECT count(*) FROM cases") == [(1,)]
    for i, message in enumerate(messages):
        assert await stores[(i + 1) % 2].read_form("out", message.id) == b'{"n":%d}' % i
    [case] = await stores[0].list_cases()
    assert (case.id, case.messages_out) == (case_id, 12)


async def test_concurrent_claims_never_take_the_same_row(stores: list[Store]) -> None:
    messages = [outbound(at=T0 - i * SECOND) for i in range(10)]
    for message in messages:
        await stores[0].submit(message, None, [])
    first, second = await asyncio.gather(
        stores[0].claim_due(T0, 6, 30), stores[1].claim_due(T0, 6, 30)
    )
    ids_first, ids_second = {m.id for m in first}, {m.id for m in second}
    assert ids_first.isdisjoint(ids_second)
    assert ids_first | ids_second == {m.id for m in messages}
    assert sorted([len(first), len(second)]) == [4, 6]


async def test_concurrent_claims_of_released_entries_are_disjoint(stores: list[Store]) -> None:
    entries = [entry(received_at=T0 + i * SECOND, state="released") for i in range(8)]
    for refused in entries:
        await stores[0].quarantine(refused, [])
    first, second = await asyncio.gather(stores[0].claim_released(5), stores[1].claim_released(5))
    ids = [e.id for e in first] + [e.id for e in second]
    assert sorted(ids) == sorted(e.id for e in entries)
    assert {e.state for e in first + second} == {"reprocessed"}
    assert await stores[0].list_quarantine(state="released") == []


async def test_concurrent_migrations_apply_once(
    store_url: str, storage_key: StorageKey, clock: FixedClock, raw: Raw
) -> None:
    async with AsyncExitStack() as stack:
        opened = await asyncio.gather(
            *(connect_store(store_url, storage_key, clock) for _ in range(3)),
            return_exceptions=True,
        )
        for result in opened:
            if not isinstance(result, BaseException):
                stack.push_async_callback(result.close)
        assert [r for r in opened if isinstance(r, BaseException)] == []
        versions = [await s.migrate() for s in opened if not isinstance(s, BaseException)]
    assert versions == [LATEST_VERSION] * 3
    rows = await raw.fetch("SELECT version FROM schema_migrations")
    assert rows == [(v,) for v in range(1, LATEST_VERSION + 1)]


async def _timed_wait(store: Store, timeout: float) -> float:
    await store.wait_outbox(timeout)
    return asyncio.get_running_loop().time()


async def _delay_to_wake(waiter: Store, write: Callable[[], Awaitable[object]]) -> float:
    """Seconds from the end of ``write()`` until ``waiter.wait_outbox`` returned."""
    await waiter.wait_outbox(0)  # absorb anything the set-up wrote
    async with asyncio.TaskGroup() as group:
        waiting = group.create_task(_timed_wait(waiter, 10))
        await asyncio.sleep(0.3)
        assert not waiting.done(), "wait_outbox returned before anything was written"
        await write()
        written_at = asyncio.get_running_loop().time()
    return waiting.result() - written_at


async def test_wait_outbox_wakes_on_another_instances_write(stores: list[Store]) -> None:
    waiter, writer = stores
    message = outbound()
    delay = await _delay_to_wake(waiter, lambda: writer.submit(message, None, []))
    # Negative by a hair when the waiter runs before the writer's coroutine resumes.
    assert -0.1 < delay < 1.0
    delay = await _delay_to_wake(
        waiter,
        lambda: writer.update_delivery(
            message.id, state="sent", attempts=1, next_attempt_at=T0, code=None, events=[]
        ),
    )
    assert -0.1 < delay < 1.0
    delay = await _delay_to_wake(waiter, lambda: writer.requeue(message.id, T0, []))
    assert -0.1 < delay < 1.0


# The other process prints the monotonic clock (system-wide on Linux, as the event
# loop's) once its write has committed.
_SUBMIT = """
import asyncio, sys, time
from broker.clock import SystemClock
from broker.store import StorageKey, open_store
from tests.store.builders import outbound

async def main():
    key = StorageKey.from_text(sys.stdin.read())
    async with open_store(sys.argv[1], key, SystemClock()) as store:
        await store.submit(outbound(), None, [])
        print(time.monotonic(), flush=True)

asyncio.run(main())
"""


@pytest.mark.slow
async def test_wait_outbox_wakes_on_another_processs_write(
    store: Store, store_url: str, storage_key: StorageKey
) -> None:
    await store.wait_outbox(0)
    async with asyncio.TaskGroup() as group:
        waiting = group.create_task(_timed_wait(store, 30))
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-c",
            _SUBMIT,
            store_url,
            cwd=ROOT,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
        )
        out, _ = await process.communicate(storage_key.to_text().encode())
        assert process.returncode == 0
    delay = waiting.result() - float(out.split()[-1])  # after any log lines
    assert -0.1 < delay < 1.0
    assert [m.type for m in await store.list_outbound()] == ["budapest.art29"]


@pytest.mark.parametrize(
    "store_url", [pytest.param("postgres", marks=pytest.mark.integration)], indirect=True
)
async def test_a_lost_listen_connection_is_reopened(stores: list[Store], raw: Raw) -> None:
    waiter, writer = stores
    await waiter.wait_outbox(0)
    loop = asyncio.get_running_loop()
    start = loop.time()
    async with asyncio.TaskGroup() as group:
        waiting = group.create_task(_timed_wait(waiter, 10))
        await asyncio.sleep(0.2)
        # Both instances LISTEN on the schema's channel; cut both.
        killed = await raw.fetch(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE datname = current_database() AND query LIKE ?",
            "LISTEN %",
        )
        assert killed == [(True,), (True,)]
    # The loss wakes the waiter (notifications may have been missed) ...
    assert waiting.result() - start < 1.5
    # ... and the next call reopens the connection and returns at once.
    start = loop.time()
    await waiter.wait_outbox(10)
    assert loop.time() - start < 1.0
    delay = await _delay_to_wake(waiter, lambda: writer.submit(outbound(), None, []))
    assert -0.1 < delay < 1.0
