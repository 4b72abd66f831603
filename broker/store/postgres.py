"""The PostgreSQL store: the production backend, shared by a node's worker processes.

:class:`PostgresStore` implements :class:`broker.store.base.Store` over an asyncpg
pool. Each operation is one transaction on one pooled connection (READ COMMITTED),
and the operations that several workers may run at once are written for it:

- ``claim_due`` and ``claim_released`` pick rows with ``FOR UPDATE SKIP LOCKED`` and
  change them in the same statement: two workers never claim the same row.
- ``record_inbound`` starts with ``INSERT … ON CONFLICT (id) DO NOTHING RETURNING``
  into the inbox: of several workers inserting one message id, exactly one inserts;
  the others wait for it to commit, then read its row and write nothing.
- ``update_delivery``, ``requeue`` and ``set_quarantine_state`` lock the row
  (``SELECT … FOR UPDATE``) before they compare its state.

Outbox writes (``submit``, ``update_delivery``, ``requeue``, a receipt recorded by
``record_inbound``) send ``NOTIFY`` on the channel ``evb_outbox`` (``evb_outbox.SCHEMA``
with a schema) in their transaction, so the notification leaves at commit;
:meth:`PostgresStore.wait_outbox` LISTENs on a dedicated connection.

Several nodes may share one database, each in its own schema: the URL query
parameter ``?schema=NAME`` (lower-case letters, digits, ``_``) sets the connections'
``search_path`` and creates the schema if needed.

Every asyncpg error (and a lost connection) is translated to
:class:`~broker.errors.StoreError`, keeping the driver's exception as the cause.
"""

# SQL text here is assembled only from this module's constants (column lists, fixed
# clauses, placeholder counts); every value goes through a driver placeholder.
# ruff: noqa: S608

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import uuid
from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Final
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import asyncpg
import structlog

from broker.clock import Clock
from broker.errors import ConfigError, StoreError
from broker.store import auditlog
from broker.store.atrest import CaseKey, StorageKey
from broker.store.auditlog import with_form_digest
from broker.store.base import (
    AuditEvent,
    CaseChange,
    CaseRecord,
    CaseSummary,
    DeliveryState,
    DeliveryUpdate,
    Direction,
    InboundMessage,
    InboundStatus,
    OutboundMessage,
    Priority,
    QuarantineEntry,
    QuarantineState,
    StoredDeadline,
)
from broker.store.migrations import LATEST_VERSION, MIGRATIONS
from broker.store.rows import (
    CASE_COLUMNS,
    DEADLINE_COLUMNS,
    DEADLINE_FIELDS,
    DEADLINE_UPSERT,
    deadline_values,
)

__all__ = ["PostgresStore"]

_log = structlog.get_logger(__name__)

#: The NOTIFY channel of outbox writes (suffixed with ``.SCHEMA`` in a schema).
CHANNEL: Final = "evb_outbox"
# Leaves room for the channel prefix within PostgreSQL's 63-byte identifiers.
_SCHEMA_NAME: Final = re.compile(r"[a-z_][a-z0-9_]{0,49}")
_CONNECT_TIMEOUT: Final = 10.0
_POOL_MAX: Final = 10

_OUT: Final = (
    "id",
    "case_id",
    "type",
    "recipient",
    "priority",
    "in_reply_to",
    "envelope",
    "digest",
    "expects_receipt",
    "state",
    "attempts",
    "next_attempt_at",
    "code",
    "receipt",
    "created_at",
    "updated_at",
)
_IN: Final = (
    "id",
    "case_id",
    "type",
    "sender",
    "priority",
    "in_reply_to",
    "digest",
    "sent_at",
    "received_at",
    "status",
    "code",
    "sealed_by",
    "receipt_id",
)
_Q: Final = (
    "id",
    "received_at",
    "code",
    "reason",
    "message_id",
    "peer",
    "authenticated",
    "size",
    "state",
)
_OUT_COLUMNS: Final = ", ".join(_OUT)
_IN_COLUMNS: Final = ", ".join(_IN)
_Q_COLUMNS: Final = ", ".join(_Q)
_AUDIT_COLUMNS: Final = "seq, event, at, message_id, case_id, peer, code, details, digests"
# Emergency rows first (false sorts before true), then the oldest.
_DUE_ORDER: Final = "(priority <> 'emergency'), created_at, id"
_TERMINAL: Final = frozenset({"delivered", "rejected"})

_DRIVER_ERRORS: Final = (
    asyncpg.PostgresError,
    asyncpg.InterfaceError,
    asyncpg.InternalClientError,
    OSError,
    TimeoutError,
)


def _placeholders(count: int, start: int = 1) -> str:
    return ", ".join(f"${i}" for i in range(start, start + count))


def _utc(at: datetime) -> datetime:
    if at.tzinfo is None or at.utcoffset() is None:
        raise StoreError("times given to the store must be timezone-aware")
    return at


def _opt_utc(at: datetime | None) -> datetime | None:
    return None if at is None else _utc(at)


def _details_text(details: Mapping[str, str | int | bool | None]) -> str:
    return json.dumps(dict(details), sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def _outbound(row: asyncpg.Record) -> OutboundMessage:
    return OutboundMessage(**{name: row[name] for name in _OUT})


def _inbound(row: asyncpg.Record) -> InboundMessage:
    return InboundMessage(**{name: row[name] for name in _IN})


def _quarantined(row: asyncpg.Record, raw: bytes | None = None) -> QuarantineEntry:
    return QuarantineEntry(**{name: row[name] for name in _Q}, raw=raw)


@contextlib.contextmanager
def _translated(operation: str) -> Iterator[None]:
    """Turn a driver error into a StoreError that keeps it as the cause."""
    try:
        yield
    except _DRIVER_ERRORS as exc:
        # Only the class, SQLSTATE and primary message: a DETAIL may quote row values.
        sqlstate = getattr(exc, "sqlstate", None)
        state = f" [{sqlstate}]" if sqlstate else ""
        message = exc.args[0] if exc.args else ""
        raise StoreError(f"{operation} failed: {type(exc).__name__}{state}: {message}") from exc


@contextlib.contextmanager
def _connecting() -> Iterator[None]:
    """Like :func:`_translated`, but a malformed URL or option is a ConfigError."""
    try:
        with _translated("open"):
            try:
                yield
            except asyncpg.ClientConfigurationError as exc:
                # Names the option and its allowed values; never the URL itself.
                raise ConfigError(f"the PostgreSQL store URL is invalid: {exc}") from exc
    except ValueError:
        # asyncpg's DSN parser; its message may quote the URL, password included, so
        # it is not chained.
        raise ConfigError("the PostgreSQL store URL is invalid") from None


def parse_url(url: str) -> tuple[str, str | None]:
    """Split a store URL into the asyncpg DSN and the ``schema`` query parameter.

    Raises:
        ConfigError: the URL does not parse, or the schema name is not
            ``[a-z_][a-z0-9_]{0,49}`` or is given twice.
    """
    try:
        parts = urlsplit(url)
    except ValueError:
        raise ConfigError("the PostgreSQL store URL is invalid") from None  # as above
    query = parse_qsl(parts.query, keep_blank_values=True)
    schemas = [value for key, value in query if key == "schema"]
    if len(schemas) > 1:
        raise ConfigError("the store URL gives 'schema' more than once")
    schema = schemas[0] if schemas else None
    if schema is not None and not _SCHEMA_NAME.fullmatch(schema):
        raise ConfigError(
            "a store schema name is 1-50 of lower-case letters, digits and '_', not a digit first"
        )
    rest = urlencode([(key, value) for key, value in query if key != "schema"])
    return urlunsplit(parts._replace(query=rest)), schema


class PostgresStore:
    """A node's store in a PostgreSQL database (optionally in one schema of it).

    Open it with :meth:`open` (or :func:`broker.store.open_store`), which also
    migrates the schema; close it with :meth:`close`.
    """

    def __init__(
        self,
        pool: asyncpg.Pool,
        dsn: str,
        settings: Mapping[str, str],
        schema: str | None,
        storage_key: StorageKey,
        clock: Clock,
    ) -> None:
        self._pool: asyncpg.Pool | None = pool
        self._dsn = dsn
        # Connection settings (search_path) shared by the pool and the listener.
        self._settings = dict(settings)
        self._key = storage_key
        self._clock = clock
        self._channel = CHANNEL if schema is None else f"{CHANNEL}.{schema}"
        # Our own notifications carry this token: the local write already woke us,
        # and its echo arriving later must not end a wait for other writers' rows.
        self._token = uuid.uuid4().hex
        self._listener: asyncpg.Connection | None = None
        # Set by notifications (and this process's own outbox writes).
        self._wake = asyncio.Event()

    @classmethod
    async def open(
        cls, url: str, storage_key: StorageKey, clock: Clock, *, max_size: int = _POOL_MAX
    ) -> PostgresStore:
        """Connect (a pool of up to ``max_size`` connections), migrate, and start listening.

        Raises:
            ConfigError: the URL is not a usable PostgreSQL URL.
            StoreError: the server cannot be reached, or migration failed.
        """
        dsn, schema = parse_url(url)
        settings = {"application_name": "evidence-broker"}
        if schema is not None:
            await _create_schema(dsn, schema)
            settings["search_path"] = schema
        with _connecting():
            pool = await asyncpg.create_pool(
                dsn,
                min_size=1,
                max_size=max_size,
                timeout=_CONNECT_TIMEOUT,
                server_settings=settings,
            )
        store = cls(pool, dsn, settings, schema, storage_key, clock)
        try:
            await store.migrate()
            await store._listen()
        except BaseException:
            await store.close()
            raise
        _log.info("store.opened", backend="postgres", schema=schema)
        return store

    # -- plumbing -----------------------------------------------------------------------

    def _get_pool(self) -> asyncpg.Pool:
        if self._pool is None:
            raise StoreError("the store is closed")
        return self._pool

    @contextlib.asynccontextmanager
    async def _tx(self, operation: str) -> AsyncIterator[asyncpg.Connection]:
        """One transaction on a pooled connection; driver errors become StoreError."""
        pool = self._get_pool()
        with _translated(operation):
            async with pool.acquire() as conn, conn.transaction():
                yield conn

    @contextlib.asynccontextmanager
    async def _conn(self, operation: str) -> AsyncIterator[asyncpg.Connection]:
        """A pooled connection for one read statement."""
        pool = self._get_pool()
        with _translated(operation):
            async with pool.acquire() as conn:
                yield conn

    async def _notify(self, conn: asyncpg.Connection) -> None:
        await conn.execute("SELECT pg_notify($1, $2)", self._channel, self._token)

    async def _listen(self) -> None:
        """(Re)open the LISTEN connection."""
        with _translated("listen"):
            listener = await asyncpg.connect(
                self._dsn, timeout=_CONNECT_TIMEOUT, server_settings=self._settings
            )
            try:
                await listener.add_listener(self._channel, self._on_notify)
            except BaseException:
                await listener.close()
                raise
        # A lost listener wakes the waiter, whose next call reconnects.
        listener.add_termination_listener(self._on_listener_lost)
        self._listener = listener

    def _on_notify(self, conn: object, pid: int, channel: str, payload: object) -> None:
        if payload != self._token:
            self._wake.set()

    def _on_listener_lost(self, conn: object) -> None:
        self._wake.set()

    @staticmethod
    async def _insert_audit(conn: asyncpg.Connection, events: Sequence[AuditEvent]) -> None:
        if not events:
            return
        # One named lock on the tree head: every writer of this node appends in turn.
        state = await conn.fetchval("SELECT state FROM audit_tree WHERE id = 1 FOR UPDATE")
        if state is None:
            raise StoreError("the audit tree head is missing")
        appended = auditlog.append(bytes(state), events)
        await conn.executemany(
            "INSERT INTO audit (event, at, message_id, case_id, peer, code, details, digests,"
            " leaf_index, leaf_hash) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
            [
                (
                    e.event,
                    _utc(e.at),
                    e.message_id,
                    e.case_id,
                    e.peer,
                    e.code,
                    _details_text(e.details),
                    _details_text(e.digests) if e.digests else None,
                    index,
                    digest,
                )
                for e, (index, digest) in zip(events, appended.leaves, strict=True)
            ],
        )
        await conn.execute(
            "UPDATE audit_tree SET size = $1, state = $2 WHERE id = 1",
            appended.size,
            appended.state,
        )

    async def _log_unlogged(self, conn: asyncpg.Connection) -> int:
        """Add records written before the audit table was a Merkle log to the tree."""
        state = await conn.fetchval("SELECT state FROM audit_tree WHERE id = 1 FOR UPDATE")
        rows = await conn.fetch(
            f"SELECT {_AUDIT_COLUMNS} FROM audit WHERE leaf_index IS NULL ORDER BY seq"
        )
        if not rows or state is None:
            return 0
        events = [_audited(row) for row in rows]
        appended = auditlog.append(bytes(state), [event for _, event in events])
        await conn.executemany(
            "UPDATE audit SET leaf_index = $1, leaf_hash = $2 WHERE seq = $3",
            [(i, h, seq) for (seq, _), (i, h) in zip(events, appended.leaves, strict=True)],
        )
        await conn.execute(
            "UPDATE audit_tree SET size = $1, state = $2 WHERE id = 1",
            appended.size,
            appended.state,
        )
        return len(rows)

    async def _touch_case(
        self, conn: asyncpg.Connection, case_id: str, first_type: str, peer: str, at: datetime
    ) -> bytes | None:
        """Create the case (with a new wrapped key) or move its ``updated_at``.

        Returns:
            The case's wrapped key; None if the case was shredded.
        """
        wrapped = self._key.wrap(case_id, CaseKey.generate())
        key: bytes | None = await conn.fetchval(
            "INSERT INTO cases (id, wrapped_key, created_at, updated_at, first_type, peer)"
            " VALUES ($1, $2, $3, $3, $4, $5)"
            " ON CONFLICT (id) DO UPDATE"
            " SET updated_at = greatest(cases.updated_at, excluded.updated_at)"
            " RETURNING wrapped_key",
            case_id,
            wrapped,
            _utc(at),
            first_type,
            peer,
        )
        return key

    async def _insert_form(
        self,
        conn: asyncpg.Connection,
        direction: Direction,
        message_id: str,
        case_id: str,
        wrapped: bytes | None,
        form: bytes,
    ) -> str:
        """Encrypt and store a form; return its keyed digest for the audit log."""
        if wrapped is None:
            raise StoreError(f"case {case_id} was shredded: no form can be stored in it")
        case_key = self._key.unwrap(case_id, wrapped)
        blob = case_key.seal_form(direction, message_id, form)
        await conn.execute(
            "INSERT INTO forms (direction, message_id, case_id, ciphertext)"
            " VALUES ($1, $2, $3, $4)",
            direction,
            message_id,
            case_id,
            blob,
        )
        return case_key.audit_digest(form)

    async def _insert_outbound(
        self, conn: asyncpg.Connection, message: OutboundMessage, form: bytes | None
    ) -> str | None:
        """Insert an outbox row (and its form); return the form's keyed digest."""
        m = message
        wrapped = await self._touch_case(conn, m.case_id, m.type, m.recipient, m.created_at)
        inserted = await conn.fetchval(
            f"INSERT INTO outbox ({_OUT_COLUMNS}) VALUES ({_placeholders(len(_OUT))})"
            " ON CONFLICT (id) DO NOTHING RETURNING id",
            m.id,
            m.case_id,
            m.type,
            m.recipient,
            m.priority,
            m.in_reply_to,
            m.envelope,
            m.digest,
            m.expects_receipt,
            m.state,
            m.attempts,
            _opt_utc(m.next_attempt_at),
            m.code,
            m.receipt,
            _utc(m.created_at),
            _utc(m.updated_at),
        )
        if inserted is None:
            raise StoreError(f"outbox message {m.id} exists")
        if form is None:
            return None
        return await self._insert_form(conn, "out", m.id, m.case_id, wrapped, form)

    async def _insert_quarantine(self, conn: asyncpg.Connection, entry: QuarantineEntry) -> None:
        e = entry
        await conn.execute(
            f"INSERT INTO quarantine ({_Q_COLUMNS}, raw) VALUES ({_placeholders(len(_Q) + 1)})",
            e.id,
            _utc(e.received_at),
            e.code,
            e.reason,
            e.message_id,
            e.peer,
            e.authenticated,
            e.size,
            e.state,
            e.raw,
        )

    # -- lifecycle ----------------------------------------------------------------------

    async def migrate(self) -> int:
        """Apply pending schema migrations; return the schema version now in force.

        Concurrent migrators (several worker processes starting at once) queue on an
        advisory lock of this schema; each migration runs once, in its transaction.

        Raises:
            StoreError: the database was migrated by a newer version of this software,
                or a migration failed (it is rolled back).
        """
        lock = "SELECT pg_advisory_xact_lock(hashtext('evb.migrate'), hashtext(current_schema()))"
        async with self._tx("migrate") as conn:
            await conn.execute(lock)
            await conn.execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations ("
                " version integer PRIMARY KEY, name text NOT NULL,"
                " applied_at timestamptz NOT NULL)"
            )
        for migration in MIGRATIONS:
            async with self._tx("migrate") as conn:
                await conn.execute(lock)
                done = await conn.fetchval(
                    "SELECT 1 FROM schema_migrations WHERE version = $1", migration.version
                )
                if done:
                    continue
                for statement in migration.postgres:
                    await conn.execute(statement)
                await conn.execute(
                    "INSERT INTO schema_migrations (version, name, applied_at) VALUES ($1, $2, $3)",
                    migration.version,
                    migration.name,
                    _utc(self._clock.now()),
                )
                _log.info("store.migrated", backend="postgres", version=migration.version)
        async with self._conn("migrate") as conn:
            version: int = await conn.fetchval("SELECT max(version) FROM schema_migrations")
        if version >= 3:
            async with self._tx("migrate") as conn:
                logged = await self._log_unlogged(conn)
            if logged:
                _log.info("store.audit_backfilled", backend="postgres", records=logged)
        if version > LATEST_VERSION:
            raise StoreError(
                f"the database is at schema version {version}, newer than this software"
                f" ({LATEST_VERSION})"
            )
        return version

    async def close(self) -> None:
        """Close the listener and the pool. Idempotent."""
        listener, self._listener = self._listener, None
        pool, self._pool = self._pool, None
        with _translated("close"):
            if listener is not None:
                listener.remove_termination_listener(self._on_listener_lost)
                await listener.close()
            if pool is not None:
                await pool.close()

    # -- outbox -------------------------------------------------------------------------

    async def submit(
        self,
        message: OutboundMessage,
        form: bytes | None,
        events: Sequence[AuditEvent],
        case_change: CaseChange | None = None,
    ) -> None:
        """Insert an outbox row, its case if new, its encrypted form and audit events.

        Raises:
            StoreError: a row with this id exists, the case was shredded (with a form),
                the case changed meanwhile, or the database failed.
        """
        async with self._tx("submit") as conn:
            digest = await self._insert_outbound(conn, message, form)
            if case_change is not None:
                await _apply_case_change(conn, case_change)
            await self._insert_audit(conn, with_form_digest(events, message.id, digest))
            await self._notify(conn)
        self._wake.set()

    async def claim_due(
        self,
        now: datetime,
        limit: int,
        lease_seconds: float,
        *,
        priority: Priority | None = None,
    ) -> list[OutboundMessage]:
        """Return up to ``limit`` due outbox rows, emergency then oldest first, leased.

        Rows locked by another worker's claim are skipped (``SKIP LOCKED``).
        """
        until = _utc(now) + timedelta(seconds=lease_seconds)
        returning = ", ".join(f"o.{name}" for name in _OUT)
        async with self._tx("claim_due") as conn:
            rows = await conn.fetch(
                "WITH due AS ("
                " SELECT id FROM outbox"
                " WHERE state IN ('queued', 'sent') AND next_attempt_at <= $2"
                " AND ($4::text IS NULL OR priority = $4)"
                f" ORDER BY {_DUE_ORDER} LIMIT $3 FOR UPDATE SKIP LOCKED)"
                " UPDATE outbox AS o SET next_attempt_at = $1 FROM due WHERE o.id = due.id"
                f" RETURNING {returning}",
                until,
                now,
                limit,
                priority,
            )
        claimed = [_outbound(row) for row in rows]
        claimed.sort(key=lambda m: (m.priority != "emergency", m.created_at, m.id))
        return claimed

    async def update_delivery(
        self,
        message_id: str,
        *,
        state: DeliveryState,
        attempts: int,
        next_attempt_at: datetime | None,
        code: str | None,
        events: Sequence[AuditEvent],
        receipt: bytes | None = None,
        expect_state: Sequence[DeliveryState] | None = None,
    ) -> bool:
        """Set an outbox row's delivery state (compare-and-set with ``expect_state``).

        A ``receipt`` of None keeps the stored one. ``updated_at`` becomes the clock's now.

        Returns:
            Whether the row was updated (False: its state was not in ``expect_state``).

        Raises:
            StoreError: no such row, or the database failed.
        """
        update = DeliveryUpdate(
            message_id, state, attempts, next_attempt_at, code, events, receipt, expect_state
        )
        return (await self.update_deliveries([update]))[0]

    async def update_deliveries(self, updates: Sequence[DeliveryUpdate]) -> list[bool]:
        """Apply several delivery updates in one transaction (see :class:`Store`)."""
        if not updates:
            return []
        results: list[bool] = []
        now = _utc(self._clock.now())
        async with self._tx("update_delivery") as conn:
            # Lock in id order: two workers updating overlapping rounds cannot deadlock.
            order = sorted(range(len(updates)), key=lambda i: updates[i].message_id)
            states = {}
            for i in order:
                message_id = updates[i].message_id
                current = await conn.fetchval(
                    "SELECT state FROM outbox WHERE id = $1 FOR UPDATE", message_id
                )
                if current is None:
                    raise StoreError(f"no outbox message {message_id}")
                states[i] = current
            for i, update in enumerate(updates):
                if update.expect_state is not None and states[i] not in update.expect_state:
                    results.append(False)
                    continue
                await conn.execute(
                    "UPDATE outbox SET state = $2, attempts = $3, next_attempt_at = $4,"
                    " code = $5, receipt = coalesce($6, receipt), updated_at = $7 WHERE id = $1",
                    update.message_id,
                    update.state,
                    update.attempts,
                    _opt_utc(update.next_attempt_at),
                    update.code,
                    update.receipt,
                    now,
                )
                await self._insert_audit(conn, update.events)
                results.append(True)
            if any(results):
                await self._notify(conn)
        if any(results):
            self._wake.set()
        return results

    async def get_outbound(self, message_id: str) -> OutboundMessage | None:
        """Return an outbox row by id."""
        async with self._conn("get_outbound") as conn:
            row = await conn.fetchrow(
                f"SELECT {_OUT_COLUMNS} FROM outbox WHERE id = $1", message_id
            )
        return None if row is None else _outbound(row)

    async def list_outbound(
        self, *, state: DeliveryState | None = None, limit: int = 100
    ) -> list[OutboundMessage]:
        """Return outbox rows, newest first, optionally in one state (receipts included)."""
        async with self._conn("list_outbound") as conn:
            rows = await conn.fetch(
                f"SELECT {_OUT_COLUMNS} FROM outbox WHERE ($1::text IS NULL OR state = $1)"
                " ORDER BY created_at DESC, id DESC LIMIT $2",
                state,
                limit,
            )
        return [_outbound(row) for row in rows]

    async def wait_outbox(self, timeout: float) -> None:
        """Return on an outbox notification (any process), or after ``timeout`` seconds.

        If the LISTEN connection was lost, it is reopened and the call returns at once:
        notifications sent meanwhile were not heard.

        Raises:
            StoreError: the LISTEN connection cannot be reopened.
        """
        if self._wake.is_set():
            self._wake.clear()
            return
        if self._listener is None or self._listener.is_closed():
            self._get_pool()
            await self._listen()
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), timeout)
        self._wake.clear()

    # -- inbox --------------------------------------------------------------------------

    async def record_inbound(
        self,
        message: InboundMessage,
        form: bytes | None,
        receipt: OutboundMessage | None,
        events: Sequence[AuditEvent],
        quarantine: QuarantineEntry | None = None,
        case_change: CaseChange | None = None,
    ) -> tuple[InboundMessage, bool]:
        """Record an authenticated inbound message exactly once per id (see the protocol).

        Returns:
            ``(message, True)`` if inserted; ``(existing, False)`` if the id was stored
            already (by this or another worker), in which case nothing was written.

        Raises:
            StoreError: the receipt's id exists in the outbox, the case was shredded
                (with a form), or the database failed; nothing is written.
        """
        m = message
        async with self._tx("record_inbound") as conn:
            inserted = await conn.fetchval(
                f"INSERT INTO inbox ({_IN_COLUMNS}) VALUES ({_placeholders(len(_IN))})"
                " ON CONFLICT (id) DO NOTHING RETURNING id",
                m.id,
                m.case_id,
                m.type,
                m.sender,
                m.priority,
                m.in_reply_to,
                m.digest,
                _utc(m.sent_at),
                _utc(m.received_at),
                m.status,
                m.code,
                m.sealed_by,
                m.receipt_id,
            )
            if inserted is None:
                # The conflicting insert has committed (ON CONFLICT waited for it), so
                # this new statement sees its row.
                row = await conn.fetchrow(f"SELECT {_IN_COLUMNS} FROM inbox WHERE id = $1", m.id)
                if row is None:
                    raise StoreError(f"inbox message {m.id} vanished during deduplication")
                return _inbound(row), False
            wrapped = await self._touch_case(conn, m.case_id, m.type, m.sender, m.received_at)
            if case_change is not None:
                await _apply_case_change(conn, case_change)
            digest = None
            if form is not None:
                digest = await self._insert_form(conn, "in", m.id, m.case_id, wrapped, form)
            if receipt is not None:
                await self._insert_outbound(conn, receipt, None)
                await self._notify(conn)
            if quarantine is not None:
                await self._insert_quarantine(conn, quarantine)
            await self._insert_audit(conn, with_form_digest(events, m.id, digest))
        if receipt is not None:
            self._wake.set()
        return m, True

    async def get_inbound(self, message_id: str) -> InboundMessage | None:
        """Return an inbox row by id."""
        async with self._conn("get_inbound") as conn:
            row = await conn.fetchrow(f"SELECT {_IN_COLUMNS} FROM inbox WHERE id = $1", message_id)
        return None if row is None else _inbound(row)

    async def list_inbound(
        self, *, status: InboundStatus | None = None, limit: int = 100
    ) -> list[InboundMessage]:
        """Return inbox rows, newest first."""
        async with self._conn("list_inbound") as conn:
            rows = await conn.fetch(
                f"SELECT {_IN_COLUMNS} FROM inbox WHERE ($1::text IS NULL OR status = $1)"
                " ORDER BY received_at DESC, id DESC LIMIT $2",
                status,
                limit,
            )
        return [_inbound(row) for row in rows]

    async def requeue(self, message_id: str, now: datetime, events: Sequence[AuditEvent]) -> None:
        """Make an outbox row due at ``now``; a ``failed`` row becomes ``queued``, attempts 0.

        A ``delivered`` or ``rejected`` row is left as it is (the peer has receipted it:
        nothing to re-send); the events are recorded all the same.

        Raises:
            StoreError: no such row, or the database failed.
        """
        async with self._tx("requeue") as conn:
            current = await conn.fetchval(
                "SELECT state FROM outbox WHERE id = $1 FOR UPDATE", message_id
            )
            if current is None:
                raise StoreError(f"no outbox message {message_id}")
            if current == "failed":
                await conn.execute(
                    "UPDATE outbox SET state = 'queued', attempts = 0, code = NULL,"
                    " next_attempt_at = $2, updated_at = $2 WHERE id = $1",
                    message_id,
                    _utc(now),
                )
            elif current not in _TERMINAL:
                await conn.execute(
                    "UPDATE outbox SET next_attempt_at = $2 WHERE id = $1", message_id, _utc(now)
                )
            await self._insert_audit(conn, events)
            await self._notify(conn)
        self._wake.set()

    # -- forms and cases ----------------------------------------------------------------

    async def read_form(self, direction: Direction, message_id: str) -> bytes | None:
        """Return the decrypted form of a message; None if none is stored or it was shredded.

        Raises:
            StoreError: the form or its case key does not decrypt (wrong storage key,
                altered bytes), or the database failed.
        """
        async with self._conn("read_form") as conn:
            row = await conn.fetchrow(
                "SELECT f.case_id, f.ciphertext, c.wrapped_key FROM forms f"
                " JOIN cases c ON c.id = f.case_id"
                " WHERE f.direction = $1 AND f.message_id = $2",
                direction,
                message_id,
            )
        if row is None or row["wrapped_key"] is None:
            return None
        case_key = self._key.unwrap(row["case_id"], row["wrapped_key"])
        return case_key.open_form(direction, message_id, row["ciphertext"])

    async def list_cases(self, *, limit: int = 100) -> list[CaseSummary]:
        """Return cases, most recently updated first."""
        async with self._conn("list_cases") as conn:
            rows = await conn.fetch(
                "SELECT c.id, c.created_at, c.first_type, c.peer, c.updated_at,"
                " c.shredded_at IS NOT NULL AS shredded,"
                " (SELECT count(*) FROM inbox i WHERE i.case_id = c.id) AS messages_in,"
                " (SELECT count(*) FROM outbox o WHERE o.case_id = c.id) AS messages_out"
                " FROM cases c ORDER BY c.updated_at DESC, c.id DESC LIMIT $1",
                limit,
            )
        return [CaseSummary(**dict(row)) for row in rows]

    # -- case lifecycles and deadlines ----------------------------------------------------

    async def get_case(self, case_id: str) -> tuple[CaseRecord, list[dict[str, object]]] | None:
        """Return a case's lifecycle record and its events (oldest first), or None."""
        async with self._tx("get_case") as conn:
            row = await conn.fetchrow(
                f"SELECT {CASE_COLUMNS} FROM case_lifecycle c WHERE c.case_id = $1", case_id
            )
            if row is None:
                return None
            events = await conn.fetch(
                "SELECT data FROM case_events WHERE case_id = $1 ORDER BY seq", case_id
            )
        return _case_record(row), [json.loads(e["data"]) for e in events]

    async def record_case_change(self, change: CaseChange, events: Sequence[AuditEvent]) -> None:
        """Record a lifecycle event that no message carries (see the protocol)."""
        async with self._tx("record_case_change") as conn:
            await _apply_case_change(conn, change)
            await self._insert_audit(conn, events)

    async def list_case_records(
        self,
        *,
        state: str | None = None,
        instrument: str | None = None,
        due_before: datetime | None = None,
        limit: int = 100,
    ) -> list[CaseRecord]:
        """Return case lifecycles, most recently updated first (see the protocol)."""
        async with self._conn("list_case_records") as conn:
            rows = await conn.fetch(
                f"SELECT {CASE_COLUMNS} FROM case_lifecycle c"
                " WHERE ($1::text IS NULL OR c.state = $1)"
                " AND ($2::text IS NULL OR c.instrument = $2)"
                " AND ($3::timestamptz IS NULL OR EXISTS (SELECT 1 FROM deadlines d"
                " WHERE d.case_id = c.case_id AND d.state = 'pending' AND d.due_at < $3))"
                " ORDER BY c.updated_at DESC, c.case_id DESC LIMIT $4",
                state,
                instrument,
                _opt_utc(due_before),
                limit,
            )
        return [_case_record(row) for row in rows]

    async def list_deadlines(
        self, *, case_id: str | None = None, pending_only: bool = True, limit: int = 1000
    ) -> list[StoredDeadline]:
        """Return deadlines, emergency first, then by due time."""
        async with self._conn("list_deadlines") as conn:
            rows = await conn.fetch(
                f"SELECT {DEADLINE_COLUMNS} FROM deadlines"
                " WHERE ($1::text IS NULL OR case_id = $1) AND (NOT $2 OR state = 'pending')"
                f" ORDER BY {_DEADLINE_ORDER} LIMIT $3",
                case_id,
                pending_only,
                limit,
            )
        return [_deadline(row) for row in rows]

    async def audit_head(self) -> tuple[int, bytes]:
        """Return the audit log's tree size and saved tree state."""
        async with self._conn("audit_head") as conn:
            row = await conn.fetchrow("SELECT size, state FROM audit_tree WHERE id = 1")
        if row is None:
            raise StoreError("the audit tree head is missing")
        return int(row["size"]), bytes(row["state"])

    async def audit_leaves(self, *, start: int, limit: int) -> list[tuple[int, AuditEvent, bytes]]:
        """Return log records from leaf ``start`` on, in leaf order."""
        async with self._conn("audit_leaves") as conn:
            rows = await conn.fetch(
                f"SELECT {_AUDIT_COLUMNS}, leaf_index, leaf_hash FROM audit"
                " WHERE leaf_index >= $1 ORDER BY leaf_index LIMIT $2",
                start,
                limit,
            )
        return [(row["leaf_index"], _audited(row)[1], bytes(row["leaf_hash"])) for row in rows]

    async def audit_leaf_hashes(self, *, start: int, limit: int) -> list[bytes]:
        """Return the leaf hashes from leaf ``start`` on, in leaf order (no records)."""
        async with self._conn("audit_leaf_hashes") as conn:
            rows = await conn.fetch(
                "SELECT leaf_hash FROM audit WHERE leaf_index >= $1 ORDER BY leaf_index LIMIT $2",
                start,
                limit,
            )
        return [bytes(row[0]) for row in rows]

    async def add_checkpoint(self, size: int, note: bytes) -> bool:
        """Keep a signed checkpoint of the log at ``size``; False if one was kept already."""
        async with self._tx("add_checkpoint") as conn:
            kept = await conn.fetchval(
                "INSERT INTO audit_checkpoints (size, note, created_at) VALUES ($1, $2, $3)"
                " ON CONFLICT (size) DO NOTHING RETURNING size",
                size,
                note,
                _utc(self._clock.now()),
            )
        return kept is not None

    async def list_checkpoints(
        self, *, newest_first: bool = False, limit: int = 100_000
    ) -> list[tuple[int, bytes]]:
        """Return the kept checkpoints (size, signed note), oldest (or newest) first."""
        order = "DESC" if newest_first else "ASC"
        async with self._conn("list_checkpoints") as conn:
            rows = await conn.fetch(
                f"SELECT size, note FROM audit_checkpoints ORDER BY size {order} LIMIT $1", limit
            )
        return [(int(row["size"]), bytes(row["note"])) for row in rows]

    async def list_cosignatures(self) -> list[tuple[str, int, bytes]]:
        """Return every kept cosignature of this node's checkpoints: (witness, size, line)."""
        async with self._conn("list_cosignatures") as conn:
            rows = await conn.fetch(
                "SELECT witness, size, line FROM audit_cosignatures ORDER BY size, witness"
            )
        return [(row["witness"], int(row["size"]), bytes(row["line"])) for row in rows]

    async def record_witness_answer(
        self,
        witness: str,
        known_size: int,
        cosignature: tuple[int, bytes] | None,
        events: Sequence[AuditEvent],
    ) -> None:
        """Keep a witness's answer: its cosignature (size, line) if any, and what it knows."""
        now = _utc(self._clock.now())
        async with self._tx("record_witness_answer") as conn:
            if cosignature is not None:
                await conn.execute(
                    "INSERT INTO audit_cosignatures (witness, size, line, received_at)"
                    " VALUES ($1, $2, $3, $4) ON CONFLICT (witness, size) DO NOTHING",
                    witness,
                    cosignature[0],
                    cosignature[1],
                    now,
                )
            await conn.execute(
                "INSERT INTO audit_witnesses (witness, known_size, updated_at) VALUES ($1, $2, $3)"
                " ON CONFLICT (witness) DO UPDATE SET known_size = excluded.known_size,"
                " updated_at = excluded.updated_at",
                witness,
                known_size,
                now,
            )
            await self._insert_audit(conn, events)

    async def witness_sizes(self) -> dict[str, int]:
        """Return each witness's known size of this node's log."""
        async with self._conn("witness_sizes") as conn:
            rows = await conn.fetch("SELECT witness, known_size FROM audit_witnesses")
        return {row["witness"]: int(row["known_size"]) for row in rows}

    async def peer_checkpoint(
        self, peer: str, size: int | None = None
    ) -> tuple[int, bytes, bytes] | None:
        """Return a peer's checkpoint this node cosigned: (size, root, note)."""
        async with self._conn("peer_checkpoint") as conn:
            row = await conn.fetchrow(
                "SELECT size, root, note FROM audit_peer_checkpoints"
                " WHERE peer = $1 AND ($2::bigint IS NULL OR size = $2)"
                " ORDER BY size DESC LIMIT 1",
                peer,
                size,
            )
        if row is None:
            return None
        return int(row["size"]), bytes(row["root"]), bytes(row["note"])

    async def add_peer_checkpoint(
        self, peer: str, size: int, root: bytes, note: bytes, events: Sequence[AuditEvent]
    ) -> bytes | None:
        """Keep a peer's verified checkpoint, with audit; return the root kept before."""
        async with self._tx("add_peer_checkpoint") as conn:
            inserted = await conn.fetchval(
                "INSERT INTO audit_peer_checkpoints (peer, size, root, note, received_at)"
                " VALUES ($1, $2, $3, $4, $5) ON CONFLICT (peer, size) DO NOTHING"
                " RETURNING size",
                peer,
                size,
                root,
                note,
                _utc(self._clock.now()),
            )
            if inserted is None:
                kept = await conn.fetchval(
                    "SELECT root FROM audit_peer_checkpoints WHERE peer = $1 AND size = $2",
                    peer,
                    size,
                )
                return bytes(kept)
            await self._insert_audit(conn, events)
        return None

    async def audit_cursor(self, name: str) -> int:
        """Return the position of a named pass over the log (0 if it never ran)."""
        async with self._conn("audit_cursor") as conn:
            position = await conn.fetchval(
                "SELECT position FROM audit_cursors WHERE name = $1", name
            )
        return 0 if position is None else int(position)

    async def set_audit_cursor(self, name: str, position: int) -> None:
        """Move a named pass over the log to ``position``."""
        async with self._tx("set_audit_cursor") as conn:
            await conn.execute(
                "INSERT INTO audit_cursors (name, position) VALUES ($1, $2)"
                " ON CONFLICT (name) DO UPDATE SET position = excluded.position",
                name,
                position,
            )

    async def case_histories(
        self, *, after: str | None, limit: int
    ) -> list[tuple[CaseRecord, list[dict[str, object]]]]:
        """Return a page of cases in id order, with their events (see the protocol)."""
        async with self._tx("case_histories") as conn:
            rows = await conn.fetch(
                f"SELECT {CASE_COLUMNS} FROM case_lifecycle c WHERE c.case_id > $1"
                " ORDER BY c.case_id LIMIT $2",
                after or "",
                limit,
            )
            if not rows:
                return []
            events = await conn.fetch(
                "SELECT case_id, data FROM case_events WHERE case_id >= $1 AND case_id <= $2"
                " ORDER BY case_id, seq",
                rows[0]["case_id"],
                rows[-1]["case_id"],
            )
        grouped: dict[str, list[dict[str, object]]] = {}
        for event in events:
            grouped.setdefault(event["case_id"], []).append(json.loads(event["data"]))
        return [(_case_record(row), grouped.get(row["case_id"], [])) for row in rows]

    async def due_deadlines(self, now: datetime, limit: int) -> list[StoredDeadline]:
        """Return pending deadlines whose reminder or escalation is due at ``now``."""
        async with self._conn("due_deadlines") as conn:
            rows = await conn.fetch(
                f"SELECT {DEADLINE_COLUMNS} FROM deadlines WHERE state = 'pending' AND"
                " ((due_at <= $1 AND escalated_at IS NULL) OR next_reminder_at <= $1)"
                f" ORDER BY {_DEADLINE_ORDER} LIMIT $2",
                _utc(now),
                limit,
            )
        return [_deadline(row) for row in rows]

    async def update_deadline(
        self,
        case_id: str,
        rule: str,
        *,
        state: str,
        next_reminder_at: datetime | None,
        escalated_at: datetime | None,
        events: Sequence[AuditEvent],
    ) -> None:
        """Record the scheduler's progress on one deadline, with its audit events."""
        async with self._tx("update_deadline") as conn:
            await conn.execute(
                "UPDATE deadlines SET state = $3, next_reminder_at = $4, escalated_at = $5"
                " WHERE case_id = $1 AND rule = $2",
                case_id,
                rule,
                state,
                _opt_utc(next_reminder_at),
                _opt_utc(escalated_at),
            )
            await self._insert_audit(conn, events)

    async def case_messages(
        self, case_id: str
    ) -> tuple[list[InboundMessage], list[OutboundMessage]]:
        """Return every message of a case, oldest first (one consistent snapshot)."""
        pool = self._get_pool()
        with _translated("case_messages"):
            async with (
                pool.acquire() as conn,
                conn.transaction(isolation="repeatable_read", readonly=True),
            ):
                inbound = await conn.fetch(
                    f"SELECT {_IN_COLUMNS} FROM inbox WHERE case_id = $1 ORDER BY received_at, id",
                    case_id,
                )
                outbound = await conn.fetch(
                    f"SELECT {_OUT_COLUMNS} FROM outbox WHERE case_id = $1 ORDER BY created_at, id",
                    case_id,
                )
        return [_inbound(row) for row in inbound], [_outbound(row) for row in outbound]

    async def shred_case(self, case_id: str, events: Sequence[AuditEvent]) -> None:
        """Erase a case's key and its encrypted forms (crypto-shredding), with audit.

        The case row, its messages' metadata and the audit trail stay. Shredding a
        shredded case only records the events. (The erased values stay in dead tuples
        until PostgreSQL vacuums the tables.)

        Raises:
            StoreError: no such case, or the database failed.
        """
        async with self._tx("shred_case") as conn:
            row = await conn.fetchrow(
                "SELECT shredded_at FROM cases WHERE id = $1 FOR UPDATE", case_id
            )
            if row is None:
                raise StoreError(f"no case {case_id}")
            if row["shredded_at"] is None:
                await conn.execute(
                    "UPDATE cases SET wrapped_key = NULL, shredded_at = $2 WHERE id = $1",
                    case_id,
                    _utc(self._clock.now()),
                )
                await conn.execute("DELETE FROM forms WHERE case_id = $1", case_id)
            await self._insert_audit(conn, events)

    # -- quarantine ---------------------------------------------------------------------

    async def quarantine(self, entry: QuarantineEntry, events: Sequence[AuditEvent]) -> None:
        """Keep a refused delivery (with ``entry.raw``) and its audit events."""
        async with self._tx("quarantine") as conn:
            await self._insert_quarantine(conn, entry)
            await self._insert_audit(conn, events)

    async def list_quarantine(
        self, *, state: QuarantineState | None = None, limit: int = 100
    ) -> list[QuarantineEntry]:
        """Return quarantine entries without raw bytes, newest first."""
        async with self._conn("list_quarantine") as conn:
            rows = await conn.fetch(
                f"SELECT {_Q_COLUMNS} FROM quarantine WHERE ($1::text IS NULL OR state = $1)"
                " ORDER BY received_at DESC, id DESC LIMIT $2",
                state,
                limit,
            )
        return [_quarantined(row) for row in rows]

    async def get_quarantine(self, entry_id: str) -> QuarantineEntry | None:
        """Return one entry with its raw bytes (None after a purge)."""
        async with self._conn("get_quarantine") as conn:
            row = await conn.fetchrow(
                f"SELECT {_Q_COLUMNS}, raw FROM quarantine WHERE id = $1", entry_id
            )
        return None if row is None else _quarantined(row, row["raw"])

    async def set_quarantine_state(
        self, entry_id: str, state: QuarantineState, events: Sequence[AuditEvent]
    ) -> None:
        """Change an entry's state (``purged`` also erases its raw bytes), with audit.

        Raises:
            StoreError: no such entry, or it is ``purged`` already (a final state).
        """
        async with self._tx("set_quarantine_state") as conn:
            current = await conn.fetchval(
                "SELECT state FROM quarantine WHERE id = $1 FOR UPDATE", entry_id
            )
            if current is None:
                raise StoreError(f"no quarantine entry {entry_id}")
            if current == "purged":
                raise StoreError(f"quarantine entry {entry_id} is purged: its state is final")
            await conn.execute(
                "UPDATE quarantine SET state = $2,"
                " raw = CASE WHEN $2 = 'purged' THEN NULL ELSE raw END WHERE id = $1",
                entry_id,
                state,
            )
            await self._insert_audit(conn, events)

    async def claim_released(self, limit: int) -> list[QuarantineEntry]:
        """Return up to ``limit`` released entries (oldest first, with raw bytes).

        They are marked ``reprocessed`` in the same transaction, and the returned
        entries carry that state. Entries another worker is claiming are skipped.
        """
        returning = ", ".join(f"q.{name}" for name in _Q)
        async with self._tx("claim_released") as conn:
            rows = await conn.fetch(
                "WITH r AS ("
                " SELECT id FROM quarantine WHERE state = 'released'"
                " ORDER BY received_at, id LIMIT $1 FOR UPDATE SKIP LOCKED)"
                " UPDATE quarantine AS q SET state = 'reprocessed' FROM r WHERE q.id = r.id"
                f" RETURNING {returning}, q.raw",
                limit,
            )
        claimed = [_quarantined(row, row["raw"]) for row in rows]
        claimed.sort(key=lambda e: (e.received_at, e.id))
        return claimed

    # -- audit --------------------------------------------------------------------------

    async def audit(self, events: Sequence[AuditEvent]) -> None:
        """Append audit events on their own."""
        async with self._tx("audit") as conn:
            await self._insert_audit(conn, events)

    async def list_audit(
        self,
        *,
        message_id: str | None = None,
        case_id: str | None = None,
        limit: int = 1000,
    ) -> list[tuple[int, AuditEvent]]:
        """Return audit events with their sequence numbers, in order (both filters apply)."""
        async with self._conn("list_audit") as conn:
            rows = await conn.fetch(
                f"SELECT {_AUDIT_COLUMNS} FROM audit"
                " WHERE ($1::text IS NULL OR message_id = $1)"
                " AND ($2::text IS NULL OR case_id = $2)"
                " ORDER BY seq LIMIT $3",
                message_id,
                case_id,
                limit,
            )
        return [_audited(row) for row in rows]


def _audited(row: asyncpg.Record) -> tuple[int, AuditEvent]:
    return row["seq"], AuditEvent(
        event=row["event"],
        at=row["at"],
        message_id=row["message_id"],
        case_id=row["case_id"],
        peer=row["peer"],
        code=row["code"],
        details=json.loads(row["details"]),
        digests=json.loads(row["digests"]) if row.get("digests") else {},
    )


async def _create_schema(dsn: str, schema: str) -> None:
    """Create ``schema`` if missing (serialised: concurrent creators would collide)."""
    with _connecting():
        conn = await asyncpg.connect(dsn, timeout=_CONNECT_TIMEOUT)
        try:
            async with conn.transaction():
                await conn.execute(
                    "SELECT pg_advisory_xact_lock(hashtext('evb.schema'), hashtext($1))",
                    schema,
                )
                # The name matched _SCHEMA_NAME: safe to quote into the statement.
                await conn.execute(f'CREATE SCHEMA IF NOT EXISTS "{schema}"')
        finally:
            await conn.close()


# -- case lifecycles ---------------------------------------------------------------------

_DEADLINE_ORDER: Final = "(priority <> 'emergency'), due_at, case_id, rule"


def _case_record(row: asyncpg.Record) -> CaseRecord:
    return CaseRecord(
        case_id=row["case_id"],
        instrument=row["instrument"],
        priority=row["priority"],
        requester=row["requester"],
        requested=row["requested"],
        state=row["state"],
        events=row["events"],
        facts=json.loads(row["facts"]),
        overrides=json.loads(row["overrides"]),
        updated_at=row["updated_at"],
    )


def _deadline(row: asyncpg.Record) -> StoredDeadline:
    values = {name: row[name] for name in DEADLINE_FIELDS}
    values["reminders"] = tuple(datetime.fromisoformat(t) for t in json.loads(row["reminders"]))
    return StoredDeadline(**values)


def _json(value: object) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


async def _apply_case_change(conn: asyncpg.Connection, change: CaseChange) -> None:
    r = change.record
    if r.updated_at is None:
        raise StoreError("a case change needs its updated_at")
    values = (r.state, r.events, _json(dict(r.facts)), _json(dict(r.overrides)), _utc(r.updated_at))
    if r.events == 1:
        inserted = await conn.fetchval(
            "INSERT INTO case_lifecycle (state, events, facts, overrides, updated_at, case_id,"
            " instrument, priority, requester, requested)"
            " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)"
            " ON CONFLICT (case_id) DO NOTHING RETURNING case_id",
            *values,
            r.case_id,
            r.instrument,
            r.priority,
            r.requester,
            r.requested,
        )
        if inserted is None:
            raise StoreError(f"case {r.case_id} was opened meanwhile")
    else:
        status = await conn.execute(
            "UPDATE case_lifecycle SET state = $1, events = $2, facts = $3, overrides = $4,"
            " updated_at = $5 WHERE case_id = $6 AND events = $7",
            *values,
            r.case_id,
            r.events - 1,
        )
        if status != "UPDATE 1":
            raise StoreError(f"case {r.case_id} changed meanwhile")
    await conn.execute(
        "INSERT INTO case_events (case_id, seq, message_id, data) VALUES ($1, $2, $3, $4)",
        r.case_id,
        r.events,
        change.message_id,
        _json(dict(change.event)),
    )
    await conn.execute(
        "DELETE FROM deadlines WHERE case_id = $1 AND NOT (rule = ANY($2::text[]))",
        r.case_id,
        [d.rule for d in change.deadlines],
    )
    # The scheduler's progress survives a recomputation that leaves the due time as it was.
    await conn.executemany(
        f"INSERT INTO deadlines ({DEADLINE_COLUMNS})"
        " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, NULL)"
        + DEADLINE_UPSERT,
        [
            deadline_values(d, _utc, lambda ts: _json([_utc(t).isoformat() for t in ts]))
            for d in change.deadlines
        ],
    )


def _reminders_text(times: tuple[datetime, ...]) -> str:
    return _json([_utc(t).isoformat() for t in times])
