"""Fixtures of the store suite: one fresh store per test, on SQLite and on PostgreSQL.

SQLite stores live in the test's ``tmp_path``. PostgreSQL tests (marked
``integration``) share one database per session, ``evb_test_<hex>``, created on the
server at ``EVB_PG_DSN`` and dropped at the end; each test gets its own schema in it
(``?schema=t_<hex>``). An unreachable server skips them, or fails them under
``CI=true``.
"""

from __future__ import annotations

import asyncio
import os
import re
import secrets
import sqlite3
from collections.abc import AsyncIterator, Coroutine, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest

from broker.clock import FixedClock
from broker.store import StorageKey, Store, open_store, sqlite_path
from broker.store.postgres import parse_url
from tests.store.builders import T0

PG_DSN = os.environ.get("EVB_PG_DSN", "postgresql://postgres@127.0.0.1:5432/test")

_T = TypeVar("_T")


def run_aside(coro: Coroutine[Any, Any, _T]) -> _T:
    """Run a coroutine on its own loop in another thread (session set-up and tear-down).

    Keeps ``asyncio.run`` away from the thread whose loop pytest-asyncio manages.
    """
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coro).result()


async def _admin(statement: str) -> None:
    conn = await asyncpg.connect(PG_DSN, timeout=5)
    try:
        await conn.execute(statement)
    finally:
        await conn.close()


def _with_database(dsn: str, name: str) -> str:
    parts = urlsplit(dsn)
    return urlunsplit(parts._replace(path=f"/{name}"))


@pytest.fixture(scope="session")
def pg_database() -> Iterator[str]:
    """A fresh PostgreSQL database for this session: its URL."""
    name = f"evb_test_{secrets.token_hex(6)}"
    try:
        run_aside(_admin(f'CREATE DATABASE "{name}"'))
    except (OSError, TimeoutError, asyncpg.PostgresError) as exc:
        reason = f"PostgreSQL unreachable at {PG_DSN}: {type(exc).__name__}"
        if os.environ.get("CI") == "true":
            pytest.fail(reason)
        pytest.skip(reason)
    yield _with_database(PG_DSN, name)
    run_aside(_admin(f'DROP DATABASE "{name}" WITH (FORCE)'))


def backend_of(url: str) -> str:
    return "sqlite" if url.startswith("sqlite:") else "postgres"


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.integration)])
def store_url(request: pytest.FixtureRequest, tmp_path: Any) -> str:
    """The URL of a fresh, empty store (not yet opened)."""
    if request.param == "sqlite":
        return f"sqlite://{tmp_path}/node.db"
    database: str = request.getfixturevalue("pg_database")
    return f"{database}?schema=t_{secrets.token_hex(6)}"


@pytest.fixture
def storage_key() -> StorageKey:
    return StorageKey.generate()


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(T0)


@pytest.fixture
async def store(store_url: str, storage_key: StorageKey, clock: FixedClock) -> AsyncIterator[Store]:
    async with open_store(store_url, storage_key, clock) as opened:
        yield opened


class Raw:
    """Direct access to a store's database, behind the store's back (tamper, inspect).

    SQL is written with ``?`` placeholders; they become ``$n`` on PostgreSQL.
    """

    def __init__(self, url: str) -> None:
        self.url = url
        self.backend = backend_of(url)

    async def fetch(self, sql: str, *params: Any) -> list[tuple[Any, ...]]:
        if self.backend == "sqlite":
            db = sqlite3.connect(sqlite_path(self.url))
            try:
                return list(db.execute(sql, params).fetchall())
            finally:
                db.close()
        conn = await self._pg()
        try:
            return [tuple(row) for row in await conn.fetch(self._numbered(sql), *params)]
        finally:
            await conn.close()

    async def execute(self, sql: str, *params: Any) -> None:
        if self.backend == "sqlite":
            db = sqlite3.connect(sqlite_path(self.url), isolation_level=None)
            try:
                db.execute(sql, params)
            finally:
                db.close()
            return
        conn = await self._pg()
        try:
            await conn.execute(self._numbered(sql), *params)
        finally:
            await conn.close()

    async def _pg(self) -> asyncpg.Connection:
        dsn, schema = parse_url(self.url)
        assert schema is not None
        return await asyncpg.connect(dsn, server_settings={"search_path": schema})

    @staticmethod
    def _numbered(sql: str) -> str:
        count = iter(range(1, 1000))
        return re.sub(r"\?", lambda _: f"${next(count)}", sql)


@pytest.fixture
def raw(store_url: str) -> Raw:
    return Raw(store_url)
