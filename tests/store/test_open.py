"""Opening a store by URL, and the failures of opening."""

from __future__ import annotations

from pathlib import Path

import pytest

from broker.clock import FixedClock
from broker.errors import ConfigError, StoreError
from broker.store import (
    PostgresStore,
    SqliteStore,
    StorageKey,
    connect_store,
    open_store,
    sqlite_path,
)
from broker.store.migrations import LATEST_VERSION
from broker.store.postgres import parse_url
from tests.store.builders import T0, outbound

FORM = b'{"a":1}'


@pytest.mark.parametrize(
    ("url", "path"),
    [
        ("sqlite:///var/lib/evb/at.db", "/var/lib/evb/at.db"),
        ("sqlite:/var/lib/evb/at.db", "/var/lib/evb/at.db"),
        ("sqlite:////var/lib/evb/at.db", "/var/lib/evb/at.db"),
        ("sqlite:state/at.db", "state/at.db"),
        ("sqlite::memory:", ":memory:"),
    ],
)
def test_sqlite_paths(url: str, path: str) -> None:
    assert sqlite_path(url) == path


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("sqlite:", "needs a file path"),
        ("sqlite://", "has no host"),
        ("sqlite://host/at.db", "has no host"),
        ("sqlite:///at.db?mode=ro", "takes no parameters"),
        ("mysql://root@localhost/evb", "unknown store URL scheme 'mysql'"),
        ("/var/lib/evb/at.db", "a store URL starts with sqlite: or postgresql://"),
        ("", "a store URL starts with sqlite: or postgresql://"),
        ("postgresql://h/db?schema=Bad", "a store schema name is 1-50"),
        ("postgresql://h/db?schema=1abc", "a store schema name is 1-50"),
        ("postgresql://h/db?schema=", "a store schema name is 1-50"),
        ("postgresql://h/db?schema=" + "a" * 51, "a store schema name is 1-50"),
        ("postgresql://h/db?schema=a&schema=b", "more than once"),
        ("postgresql://[::1/db", "the PostgreSQL store URL is invalid"),
        ("postgresql://u:secret@h:port/db", "the PostgreSQL store URL is invalid"),
        ("postgresql://u:secret@127.0.0.1:1/db?sslmode=bogus", "`sslmode` parameter must be"),
    ],
)
async def test_bad_urls_are_config_errors(url: str, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        await connect_store(url, StorageKey.generate(), FixedClock(T0))
    assert caught.value.code == "E_CONFIG"
    assert message in caught.value.message
    assert "secret" not in str(caught.value)
    assert caught.value.__cause__ is None or "secret" not in str(caught.value.__cause__)


def test_the_schema_parameter_is_not_passed_to_the_driver() -> None:
    assert parse_url("postgres://u@h:5/db?sslmode=disable&schema=node_at") == (
        "postgres://u@h:5/db?sslmode=disable",
        "node_at",
    )
    assert parse_url("postgresql://u@h/db") == ("postgresql://u@h/db", None)


async def test_memory_store() -> None:
    async with open_store("sqlite::memory:", StorageKey.generate(), FixedClock(T0)) as store:
        assert isinstance(store, SqliteStore)
        message = outbound()
        await store.submit(message, FORM, [])
        assert await store.read_form("out", message.id) == FORM
        assert await store.migrate() == LATEST_VERSION


async def test_relative_sqlite_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    async with open_store("sqlite:node.db", StorageKey.generate(), FixedClock(T0)) as store:
        await store.submit(outbound(), None, [])
    assert (tmp_path / "node.db").is_file()


async def test_unopenable_sqlite_file(tmp_path: Path) -> None:
    url = f"sqlite://{tmp_path}/missing/dir/node.db"
    with pytest.raises(StoreError, match="open failed: OperationalError") as caught:
        await connect_store(url, StorageKey.generate(), FixedClock(T0))
    assert caught.value.code == "E_STORE"


async def test_unreachable_postgres_is_a_store_error() -> None:
    # Port 1 on the loopback refuses at once; nothing listens there.
    with pytest.raises(StoreError, match="open failed") as caught:
        await connect_store(
            "postgresql://postgres@127.0.0.1:1/test", StorageKey.generate(), FixedClock(T0)
        )
    assert isinstance(caught.value.__cause__, OSError)


@pytest.mark.integration
async def test_postgres_without_a_schema_uses_the_default_search_path(
    pg_database: str,
) -> None:
    # The session database is private to this run, so its public schema is ours.
    async with open_store(pg_database, StorageKey.generate(), FixedClock(T0)) as store:
        assert isinstance(store, PostgresStore)
        message = outbound()
        await store.submit(message, FORM, [])
        assert await store.read_form("out", message.id) == FORM
