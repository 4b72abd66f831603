"""The SQLite store's worker thread runs emergency work before waiting routine work."""

from __future__ import annotations

import asyncio
import threading

import pytest

from broker.store.base import URGENT
from broker.store.sqlite import _UrgentFirstExecutor


async def _run(executor: _UrgentFirstExecutor, order: list[str], name: str, urgent: bool) -> None:
    token = URGENT.set(urgent)
    try:
        await asyncio.get_running_loop().run_in_executor(executor, order.append, name)
    finally:
        URGENT.reset(token)


async def test_urgent_calls_overtake_waiting_routine_calls() -> None:
    executor = _UrgentFirstExecutor("evb-test")
    gate, started = threading.Event(), threading.Event()
    order: list[str] = []

    def hold() -> None:
        started.set()
        gate.wait()

    try:
        loop = asyncio.get_running_loop()
        busy = loop.run_in_executor(executor, hold)  # a routine call in progress
        await loop.run_in_executor(None, started.wait)
        tasks = [asyncio.create_task(_run(executor, order, f"r{n}", False)) for n in range(3)]
        await asyncio.sleep(0)
        tasks += [asyncio.create_task(_run(executor, order, f"e{n}", True)) for n in range(2)]
        await asyncio.sleep(0.05)
        assert order == []  # the call in progress is never interrupted
        gate.set()
        await busy
        await asyncio.gather(*tasks)
        # Urgent first, each kind in its own order.
        assert order == ["e0", "e1", "r0", "r1", "r2"]
    finally:
        gate.set()
        executor.shutdown()


async def test_errors_reach_the_caller_and_the_worker_lives_on() -> None:
    executor = _UrgentFirstExecutor("evb-test")
    try:
        loop = asyncio.get_running_loop()
        with pytest.raises(ZeroDivisionError):
            await loop.run_in_executor(executor, divmod, 1, 0)
        assert await loop.run_in_executor(executor, divmod, 7, 2) == (3, 1)
    finally:
        executor.shutdown()


async def test_shutdown_runs_what_is_queued_then_refuses() -> None:
    executor = _UrgentFirstExecutor("evb-test")
    done: list[int] = []
    futures = [executor.submit(done.append, n) for n in range(5)]
    executor.shutdown(wait=True)
    assert done == [0, 1, 2, 3, 4]
    assert all(f.done() for f in futures)
    with pytest.raises(RuntimeError):
        executor.submit(done.append, 5)
    executor.shutdown()  # twice is harmless
