"""A node's store, selected by URL: SQLite (embedded default) or PostgreSQL (production).

``open_store`` opens the backend a URL names and migrates its schema::

    async with open_store("sqlite:///var/lib/evb/at247.db", storage_key, clock) as store:
        await store.submit(message, form, events)

Store URLs:

- ``sqlite:///abs/path.db`` (absolute), ``sqlite:relative/path.db`` (relative to the
  working directory), ``sqlite::memory:`` (a private in-memory database, for tests);
- ``postgresql://user@host:port/db`` (also ``postgres://``), with an optional
  ``?schema=NAME`` to keep the node's tables in their own schema (created if
  missing), so that several nodes can share one database.

The contract (:class:`Store` and its row types) is :mod:`broker.store.base`; the
at-rest encryption of forms is :mod:`broker.store.atrest`; the schema is
:mod:`broker.store.migrations`.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from broker.clock import Clock
from broker.errors import ConfigError
from broker.store.atrest import StorageKey, generate_storage_key, load_storage_key
from broker.store.base import (
    AuditEvent,
    CaseSummary,
    DeliveryState,
    Direction,
    InboundMessage,
    InboundStatus,
    OutboundMessage,
    QuarantineEntry,
    QuarantineState,
    Store,
)
from broker.store.postgres import PostgresStore
from broker.store.sqlite import SqliteStore

__all__ = [
    "AuditEvent",
    "CaseSummary",
    "DeliveryState",
    "Direction",
    "InboundMessage",
    "InboundStatus",
    "OutboundMessage",
    "PostgresStore",
    "QuarantineEntry",
    "QuarantineState",
    "SqliteStore",
    "StorageKey",
    "Store",
    "connect_store",
    "generate_storage_key",
    "load_storage_key",
    "open_store",
    "sqlite_path",
]

_MEMORY = ":memory:"


def sqlite_path(url: str) -> str:
    """Return the database path of a ``sqlite:`` store URL (``:memory:`` for memory).

    Raises:
        ConfigError: not a ``sqlite:`` URL, no path, or a host in ``sqlite://host/…``.
    """
    if not url.startswith("sqlite:"):
        raise ConfigError("not a sqlite: store URL")
    rest = url.removeprefix("sqlite:")
    if rest == _MEMORY:
        return _MEMORY
    if rest.startswith("//"):
        # sqlite:///abs/path: an empty authority, then the absolute path.
        rest = rest[2:]
        if not rest.startswith("/"):
            raise ConfigError("a sqlite:// URL has no host: write sqlite:///abs/path.db")
    if rest.startswith("/"):
        # sqlite:////abs/path (a host-less URL plus an absolute path) means the same.
        rest = "/" + rest.lstrip("/")
    if not rest or "?" in rest or "#" in rest:
        raise ConfigError("a sqlite: store URL needs a file path (and takes no parameters)")
    return rest


async def connect_store(url: str, storage_key: StorageKey, clock: Clock) -> Store:
    """Open the store a URL names, migrate its schema, and return it (call ``close()``).

    Args:
        url: see the module docstring.
        storage_key: the node's storage key (:func:`load_storage_key`).
        clock: where the store takes "now" from (``updated_at`` and similar).

    Raises:
        ConfigError: unknown scheme or malformed URL.
        StoreError: the database cannot be opened or migrated.
    """
    scheme = url.partition(":")[0].lower()
    if scheme == "sqlite":
        return await SqliteStore.open(sqlite_path(url), storage_key, clock)
    if scheme in ("postgresql", "postgres"):
        return await PostgresStore.open(url, storage_key, clock)
    raise ConfigError(
        f"unknown store URL scheme {scheme!r}: use sqlite:… or postgresql://…"
        if scheme and scheme.isalnum()
        else "a store URL starts with sqlite: or postgresql://"
    )


@contextlib.asynccontextmanager
async def open_store(url: str, storage_key: StorageKey, clock: Clock) -> AsyncIterator[Store]:
    """Open (and migrate) the store a URL names for the duration of an ``async with``.

    Raises:
        ConfigError: unknown scheme or malformed URL.
        StoreError: the database cannot be opened or migrated.
    """
    store = await connect_store(url, storage_key, clock)
    try:
        yield store
    finally:
        await store.close()
