"""The SQLite store: the embedded default, one database file per node.

:class:`SqliteStore` implements :class:`broker.store.base.Store` over one ``sqlite3``
connection owned by one worker thread. Each store operation is one function run on
that thread, start to finish: its whole transaction costs one hop from the event
loop, operations never interleave (the thread runs them one at a time, in order),
and a caller cancelled while it waits does not leave a transaction half-open on the
connection (the function still ends with COMMIT or ROLLBACK). This is what aiosqlite
does per *statement*; a store transaction has up to seven statements, and one hop
instead of seven makes the message path about three times faster.

Write transactions waiting together are **group-committed**: the thread runs each in a
savepoint of one transaction and commits once, reads the audit tree head once and
writes it once, and wakes the event loop once for the whole group. Each write still
takes effect or fails alone and its caller hears of it only after the commit; under
load this more than doubles the rate of small transactions (see ``bench/audit.py``).

Writes open with ``BEGIN IMMEDIATE`` (the database write lock is taken first, so a
transaction never fails half-way for want of it); other processes on the same file
(``evb send``) wait for it up to a busy timeout of 10 s. The journal is WAL (readers
never block the writer) with ``synchronous=NORMAL`` (a commit survives a process
crash; a power cut may lose the last transactions, never corrupt the file),
``foreign_keys=ON`` and ``secure_delete=ON`` (erased case keys and purged raw bytes
are overwritten, not left in free pages).

Times are stored as integer microseconds since the Unix epoch (UTC): exact, ordered,
cheap to compare. :meth:`SqliteStore.wait_outbox` returns at once after an outbox
write by this store; otherwise it polls ``PRAGMA data_version`` every 0.1 s, which
changes when another connection (another process) commits.

Every ``sqlite3`` error is translated to :class:`~broker.errors.StoreError`.
"""

# SQL text here is assembled only from this module's constants (column lists, fixed
# clauses); every value goes through a driver placeholder.
# ruff: noqa: S608

from __future__ import annotations

import asyncio
import contextlib
import functools
import itertools
import json
import queue
import sqlite3
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Executor, Future
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Final, TypeVar

import structlog

from broker.clock import Clock
from broker.errors import StoreError
from broker.store import auditlog
from broker.store.atrest import CaseKey, StorageKey
from broker.store.auditlog import with_form_digest
from broker.store.base import (
    URGENT,
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
    DEADLINE_UPSERT,
    deadline_values,
)

__all__ = ["SqliteStore"]

_log = structlog.get_logger(__name__)

_T = TypeVar("_T")
_Db = sqlite3.Connection

_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND: Final = timedelta(microseconds=1)
#: How long a write waits for another process's write lock (seconds).
_BUSY_TIMEOUT: Final = 10.0
#: How often :meth:`SqliteStore.wait_outbox` looks for other processes' writes.
_POLL_SECONDS: Final = 0.1
#: How many times to try switching a new file to WAL (0.1 s apart) while it is busy.
_WAL_ATTEMPTS: Final = 100

_OUT_COLUMNS: Final = (
    "id, case_id, type, recipient, priority, in_reply_to, envelope, digest, expects_receipt,"
    " state, attempts, next_attempt_at, code, receipt, created_at, updated_at"
)
_IN_COLUMNS: Final = (
    "id, case_id, type, sender, priority, in_reply_to, digest, sent_at, received_at, status,"
    " code, sealed_by, receipt_id"
)
_Q_COLUMNS: Final = "id, received_at, code, reason, message_id, peer, authenticated, size, state"
_AUDIT_COLUMNS: Final = "seq, event, at, message_id, case_id, peer, code, details"
# Emergency rows first, then the oldest (ids are UUIDv7: a time-ordered tie-break).
_DUE_ORDER: Final = "CASE priority WHEN 'emergency' THEN 0 ELSE 1 END, created_at, id"
_TERMINAL: Final = frozenset({"delivered", "rejected"})


def _us(at: datetime) -> int:
    if at.tzinfo is None or at.utcoffset() is None:
        raise StoreError("times given to the store must be timezone-aware")
    return (at - _EPOCH) // _MICROSECOND


def _opt_us(at: datetime | None) -> int | None:
    return None if at is None else _us(at)


def _at(us: int) -> datetime:
    return _EPOCH + us * _MICROSECOND


def _opt_at(us: int | None) -> datetime | None:
    return None if us is None else _at(us)


def _details_text(details: Mapping[str, str | int | bool | None]) -> str:
    return json.dumps(dict(details), sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def _outbound(row: sqlite3.Row) -> OutboundMessage:
    return OutboundMessage(
        id=row["id"],
        case_id=row["case_id"],
        type=row["type"],
        recipient=row["recipient"],
        priority=row["priority"],
        in_reply_to=row["in_reply_to"],
        envelope=row["envelope"],
        digest=row["digest"],
        expects_receipt=bool(row["expects_receipt"]),
        state=row["state"],
        attempts=row["attempts"],
        next_attempt_at=_opt_at(row["next_attempt_at"]),
        code=row["code"],
        receipt=row["receipt"],
        created_at=_at(row["created_at"]),
        updated_at=_at(row["updated_at"]),
    )


def _inbound(row: sqlite3.Row) -> InboundMessage:
    return InboundMessage(
        id=row["id"],
        case_id=row["case_id"],
        type=row["type"],
        sender=row["sender"],
        priority=row["priority"],
        in_reply_to=row["in_reply_to"],
        digest=row["digest"],
        sent_at=_at(row["sent_at"]),
        received_at=_at(row["received_at"]),
        status=row["status"],
        code=row["code"],
        sealed_by=row["sealed_by"],
        receipt_id=row["receipt_id"],
    )


def _quarantined(row: sqlite3.Row, raw: bytes | None = None) -> QuarantineEntry:
    return QuarantineEntry(
        id=row["id"],
        received_at=_at(row["received_at"]),
        code=row["code"],
        reason=row["reason"],
        message_id=row["message_id"],
        peer=row["peer"],
        authenticated=bool(row["authenticated"]),
        size=row["size"],
        state=row["state"],
        raw=raw,
    )


def _audited(row: sqlite3.Row) -> tuple[int, AuditEvent]:
    digests = row["digests"] if "digests" in row.keys() else None  # noqa: SIM118 - sqlite3.Row
    return row["seq"], AuditEvent(
        event=row["event"],
        at=_at(row["at"]),
        message_id=row["message_id"],
        case_id=row["case_id"],
        peer=row["peer"],
        code=row["code"],
        details=json.loads(row["details"]),
        digests=json.loads(digests) if digests else {},
    )


#: Most write transactions committed together.
_GROUP_MAX = 32


class _UrgentFirstExecutor(Executor):
    """One worker thread for the store's connection, running emergency work first.

    SQLite's connection is used from one thread. A call submitted while
    :data:`~broker.store.base.URGENT` is set in the caller's context overtakes every
    routine call still waiting; calls of one kind keep their order. A routine call
    already running finishes first.

    Write transactions waiting together are committed together (group commit): the
    worker takes every write queued behind the first (up to :data:`_GROUP_MAX`, in
    queue order, stopping at the first read), runs each in a savepoint of one
    ``BEGIN IMMEDIATE`` transaction and commits once. Each write still succeeds or
    fails alone (a failure rolls back to its savepoint), sees the writes before it,
    and its caller hears of it only after the commit.
    """

    def __init__(self, name: str) -> None:
        self._queue: queue.PriorityQueue[tuple[int, int, _Work | None]] = queue.PriorityQueue()
        self._order = itertools.count()
        self._lock = threading.Lock()
        self._closed = False
        self._thread = threading.Thread(target=self._serve, name=name, daemon=True)
        self._thread.start()

    def submit(self, fn: Callable[..., _T], /, *args: Any, **kwargs: Any) -> Future[_T]:
        """Queue ``fn(*args, **kwargs)``: first among routine calls if URGENT is set."""
        return self._put(_Work(Future(), fn, args, kwargs))

    def submit_write(
        self,
        db: _Db,
        fn: Callable[..., _T],
        args: tuple[Any, ...],
        waiter: tuple[asyncio.AbstractEventLoop, asyncio.Future[Any]],
    ) -> Future[_T]:
        """Queue ``fn(db, *args)`` as a write transaction (grouped with its neighbours).

        Its outcome is set on ``waiter`` (an asyncio future of ``loop``) once committed.
        """
        return self._put(_Work(Future(), fn, (db, *args), {}, db, waiter))

    def _put(self, work: _Work) -> Future[Any]:
        with self._lock:
            if self._closed:
                raise RuntimeError("the store's executor is shut down")
            rank = 0 if URGENT.get() else 1
            self._queue.put((rank, next(self._order), work))
        return work.future

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        """Run what is queued, then stop the thread (after it, when ``wait``)."""
        with self._lock:
            if not self._closed:
                self._closed = True
                self._queue.put((2, next(self._order), None))
        if wait:
            self._thread.join()

    def _serve(self) -> None:
        held: list[_Work | None] = []  # taken from the queue while grouping, not yet run
        while True:
            work = held.pop() if held else self._queue.get()[2]
            if work is None:
                return
            if work.db is None:
                _run(work)
                continue
            group = [work]
            while len(group) < _GROUP_MAX:
                try:
                    _, _, queued = self._queue.get_nowait()
                except queue.Empty:
                    break
                if queued is None or queued.db is None:
                    held.append(queued)
                    break
                group.append(queued)
            _run_writes(group)


def _run(work: _Work) -> None:
    if not work.future.set_running_or_notify_cancel():
        return
    try:
        result = work.fn(*work.args, **work.kwargs)
    except BaseException as exc:  # noqa: BLE001 - handed to the caller, as a pool does
        work.future.set_exception(exc)
    else:
        work.future.set_result(result)


def _run_writes(group: list[_Work]) -> None:
    """Run write transactions as one: a savepoint each, one commit (see the executor)."""
    live = [w for w in group if w.future.set_running_or_notify_cancel()]
    if not live:
        return
    db = live[0].db
    if len(live) == 1 or db is None:
        for work in live:
            conn, *rest = work.args
            _settle(work, _outcome(functools.partial(_in_transaction, conn, work.fn, *rest)))
        _wake(live)
        return
    try:
        db.execute("BEGIN IMMEDIATE")
        # The tree head is read once and written once for the whole group.
        head = _TreeHead.read(db)
        _GROUP_HEADS[id(db)] = head
        try:
            outcomes = [_in_savepoint(db, work, head) for work in live]
        finally:
            del _GROUP_HEADS[id(db)]
        head.write(db)
        db.execute("COMMIT")
    except BaseException as exc:  # noqa: BLE001 - the whole group failed: each caller hears
        if db.in_transaction:
            db.execute("ROLLBACK")
        for work in live:
            work.future.set_exception(exc)
        _wake(live)
        return
    for work, outcome in zip(live, outcomes, strict=True):
        _settle(work, outcome)
    _wake(live)


class _TreeHead:
    """The audit tree head of a group commit, kept in memory until the group commits."""

    __slots__ = ("changed", "size", "state")

    def __init__(self, size: int, state: bytes) -> None:
        self.size, self.state, self.changed = size, state, False

    @classmethod
    def read(cls, db: _Db) -> _TreeHead:
        row = db.execute("SELECT size, state FROM audit_tree WHERE id = 1").fetchone()
        return cls(int(row["size"]), bytes(row["state"]))

    def write(self, db: _Db) -> None:
        if self.changed:
            db.execute(
                "UPDATE audit_tree SET size = ?, state = ? WHERE id = 1", (self.size, self.state)
            )


#: The tree head of the group commit running on a connection (by ``id``), if any.
_GROUP_HEADS: dict[int, _TreeHead] = {}


def _in_savepoint(db: _Db, work: _Work, head: _TreeHead) -> tuple[bool, Any]:
    db.execute("SAVEPOINT evb_write")
    before = (head.size, head.state, head.changed)
    outcome = _outcome(lambda: work.fn(*work.args, **work.kwargs))
    if not outcome[0]:
        db.execute("ROLLBACK TO evb_write")
        head.size, head.state, head.changed = before
    db.execute("RELEASE evb_write")
    return outcome


def _wake(works: list[_Work]) -> None:
    """Hand results to the waiting coroutines: one event-loop wake-up per loop."""
    by_loop: dict[asyncio.AbstractEventLoop, list[tuple[asyncio.Future[Any], Future[Any]]]] = {}
    for work in works:
        if work.waiter is not None:
            loop, waiter = work.waiter
            by_loop.setdefault(loop, []).append((waiter, work.future))
    for loop, pairs in by_loop.items():
        with contextlib.suppress(RuntimeError):  # the loop closed: nobody waits any more
            loop.call_soon_threadsafe(_deliver, pairs)


def _deliver(pairs: list[tuple[asyncio.Future[Any], Future[Any]]]) -> None:
    for waiter, done in pairs:
        if waiter.done():
            continue
        exc = done.exception()
        if exc is not None:
            waiter.set_exception(exc)
        else:
            waiter.set_result(done.result())


def _outcome(call: Callable[[], Any]) -> tuple[bool, Any]:
    try:
        return True, call()
    except BaseException as exc:  # noqa: BLE001 - kept for its caller, as a pool does
        return False, exc


def _settle(work: _Work, outcome: tuple[bool, Any]) -> None:
    ok, value = outcome
    if ok:
        work.future.set_result(value)
    else:
        work.future.set_exception(value)


@dataclass(frozen=True)
class _Work:
    future: Future[Any]
    fn: Callable[..., Any]
    args: tuple[Any, ...]
    kwargs: dict[str, Any]
    db: _Db | None = None  # set for a write transaction: fn(db, …) runs inside one
    # For a write: the loop and future of the coroutine waiting for it.
    waiter: tuple[asyncio.AbstractEventLoop, asyncio.Future[Any]] | None = None


# -- on the worker thread ----------------------------------------------------------------


def _connect(database: str) -> _Db:
    db = sqlite3.connect(database, timeout=_BUSY_TIMEOUT, isolation_level=None)
    try:
        db.row_factory = sqlite3.Row
        mode = _enable_wal(db)
        if database != ":memory:" and mode != "wal":
            _log.warning("store.sqlite.no_wal", journal_mode=mode)
        db.execute("PRAGMA synchronous = NORMAL")
        db.execute("PRAGMA foreign_keys = ON")
        db.execute("PRAGMA secure_delete = ON")
    except BaseException:
        db.close()
        raise
    return db


def _enable_wal(db: _Db) -> str:
    """Switch to WAL; return the journal mode in force.

    The switch needs a moment alone with the file and, unlike other statements, does
    not wait through the busy timeout: processes opening a new file together retry.
    """
    for _ in range(_WAL_ATTEMPTS - 1):
        try:
            mode: str = db.execute("PRAGMA journal_mode = WAL").fetchone()[0]
        except sqlite3.OperationalError as exc:
            if exc.sqlite_errorcode != sqlite3.SQLITE_BUSY:
                raise
            time.sleep(_POLL_SECONDS)
        else:
            return mode
    last: str = db.execute("PRAGMA journal_mode = WAL").fetchone()[0]
    return last


def _in_transaction(db: _Db, fn: Callable[..., _T], *args: Any) -> _T:
    """Run ``fn(db, *args)`` in a write transaction: commit, or roll back on any error."""
    db.execute("BEGIN IMMEDIATE")
    try:
        result = fn(db, *args)
        db.execute("COMMIT")
    except BaseException:
        if db.in_transaction:
            db.execute("ROLLBACK")
        raise
    return result


def _in_snapshot(db: _Db, fn: Callable[..., _T], *args: Any) -> _T:
    """Run ``fn(db, *args)`` in a read transaction (one consistent snapshot)."""
    db.execute("BEGIN")
    try:
        return fn(db, *args)
    finally:
        db.execute("COMMIT")


def _insert_audit(db: _Db, events: Sequence[AuditEvent]) -> None:
    if not events:
        return
    # The caller's BEGIN IMMEDIATE holds the write lock: the tree head is ours.
    head = _GROUP_HEADS.get(id(db))
    if head is None:
        state = db.execute("SELECT state FROM audit_tree WHERE id = 1").fetchone()["state"]
    else:
        state = head.state
    appended = auditlog.append(bytes(state), events)
    db.executemany(
        "INSERT INTO audit (event, at, message_id, case_id, peer, code, details, digests,"
        " leaf_index, leaf_hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [
            (
                e.event,
                _us(e.at),
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
    if head is None:
        db.execute(
            "UPDATE audit_tree SET size = ?, state = ? WHERE id = 1",
            (appended.size, appended.state),
        )
    else:
        head.size, head.state, head.changed = appended.size, appended.state, True


def _log_unlogged(db: _Db) -> int:
    """Add records written before the audit table was a Merkle log to the tree, in order."""
    rows = db.execute(
        "SELECT seq, event, at, message_id, case_id, peer, code, details FROM audit"
        " WHERE leaf_index IS NULL ORDER BY seq"
    ).fetchall()
    if not rows:
        return 0
    state = db.execute("SELECT state FROM audit_tree WHERE id = 1").fetchone()["state"]
    events = [_audited(row) for row in rows]
    appended = auditlog.append(bytes(state), [event for _, event in events])
    db.executemany(
        "UPDATE audit SET leaf_index = ?, leaf_hash = ? WHERE seq = ?",
        [(i, h, seq) for (seq, _), (i, h) in zip(events, appended.leaves, strict=True)],
    )
    db.execute(
        "UPDATE audit_tree SET size = ?, state = ? WHERE id = 1", (appended.size, appended.state)
    )
    return len(rows)


def _insert_quarantine(db: _Db, entry: QuarantineEntry) -> None:
    e = entry
    db.execute(
        f"INSERT INTO quarantine ({_Q_COLUMNS}, raw) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            e.id,
            _us(e.received_at),
            e.code,
            e.reason,
            e.message_id,
            e.peer,
            int(e.authenticated),
            e.size,
            e.state,
            e.raw,
        ),
    )


def _state_of(db: _Db, table: str, row_id: str) -> str | None:
    row = db.execute(f"SELECT state FROM {table} WHERE id = ?", (row_id,)).fetchone()
    return None if row is None else str(row["state"])


class SqliteStore:
    """A node's store in one SQLite file (or in memory, for tests).

    Open it with :meth:`open` (or :func:`broker.store.open_store`), which also
    migrates the schema; close it with :meth:`close`.
    """

    def __init__(
        self, executor: _UrgentFirstExecutor, db: _Db, storage_key: StorageKey, clock: Clock
    ) -> None:
        self._executor = executor
        self._db: _Db | None = db
        self._key = storage_key
        self._clock = clock
        # Set by this store's outbox writes; wait_outbox returns at once when set.
        self._wake = asyncio.Event()
        self._data_version = 0

    @classmethod
    async def open(cls, database: str, storage_key: StorageKey, clock: Clock) -> SqliteStore:
        """Connect to ``database`` (a file path or ``:memory:``) and migrate its schema.

        Raises:
            StoreError: the file cannot be opened, or migration failed.
        """
        executor = _UrgentFirstExecutor("evb-sqlite")
        try:
            db = await asyncio.get_running_loop().run_in_executor(executor, _connect, database)
        except sqlite3.Error as exc:
            executor.shutdown(wait=False)
            raise StoreError(f"open failed: {type(exc).__name__}: {exc}") from exc
        except BaseException:
            executor.shutdown(wait=False)
            raise
        store = cls(executor, db, storage_key, clock)
        try:
            await store.migrate()
            store._data_version = await store._call("open", _data_version)
        except BaseException:
            await store.close()
            raise
        _log.info("store.opened", backend="sqlite", memory=database == ":memory:")
        return store

    # -- plumbing -----------------------------------------------------------------------

    async def _call(self, operation: str, fn: Callable[..., _T], *args: Any) -> _T:
        """Run ``fn(db, *args)`` on the connection's thread; translate driver errors."""
        db = self._db
        if db is None:
            raise StoreError("the store is closed")
        call = functools.partial(fn, db, *args)
        try:
            return await asyncio.get_running_loop().run_in_executor(self._executor, call)
        except sqlite3.Error as exc:
            # sqlite3 messages name tables and constraints, never values.
            raise StoreError(f"{operation} failed: {type(exc).__name__}: {exc}") from exc

    async def _write(self, operation: str, fn: Callable[..., _T], *args: Any) -> _T:
        """Run ``fn(db, *args)`` in a write transaction (group-committed with others)."""
        db = self._db
        if db is None:
            raise StoreError("the store is closed")
        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[_T] = loop.create_future()
        submitted = self._executor.submit_write(db, fn, args, (loop, waiter))
        try:
            return await waiter
        except asyncio.CancelledError:
            submitted.cancel()  # not run if it has not started (as run_in_executor does)
            raise
        except sqlite3.Error as exc:
            # sqlite3 messages name tables and constraints, never values.
            raise StoreError(f"{operation} failed: {type(exc).__name__}: {exc}") from exc

    def _touch_case(
        self, db: _Db, case_id: str, first_type: str, peer: str, at: datetime
    ) -> bytes | None:
        """Create the case (with a new wrapped key) or move its ``updated_at``.

        Returns:
            The case's wrapped key; None if the case was shredded.
        """
        wrapped = self._key.wrap(case_id, CaseKey.generate())
        row = db.execute(
            "INSERT INTO cases (id, wrapped_key, created_at, updated_at, first_type, peer)"
            " VALUES (?, ?, ?, ?, ?, ?)"
            " ON CONFLICT (id) DO UPDATE SET updated_at = max(updated_at, excluded.updated_at)"
            " RETURNING wrapped_key",
            (case_id, wrapped, _us(at), _us(at), first_type, peer),
        ).fetchone()
        key: bytes | None = row["wrapped_key"]
        return key

    def _insert_form(
        self,
        db: _Db,
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
        db.execute(
            "INSERT INTO forms (direction, message_id, case_id, ciphertext) VALUES (?, ?, ?, ?)",
            (direction, message_id, case_id, blob),
        )
        return case_key.audit_digest(form)

    def _insert_outbound(self, db: _Db, message: OutboundMessage, form: bytes | None) -> str | None:
        """Insert an outbox row (and its form); return the form's keyed digest."""
        m = message
        wrapped = self._touch_case(db, m.case_id, m.type, m.recipient, m.created_at)
        inserted = db.execute(
            f"INSERT INTO outbox ({_OUT_COLUMNS})"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
            " ON CONFLICT (id) DO NOTHING RETURNING id",
            (
                m.id,
                m.case_id,
                m.type,
                m.recipient,
                m.priority,
                m.in_reply_to,
                m.envelope,
                m.digest,
                int(m.expects_receipt),
                m.state,
                m.attempts,
                _opt_us(m.next_attempt_at),
                m.code,
                m.receipt,
                _us(m.created_at),
                _us(m.updated_at),
            ),
        ).fetchone()
        if inserted is None:
            raise StoreError(f"outbox message {m.id} exists")
        if form is None:
            return None
        return self._insert_form(db, "out", m.id, m.case_id, wrapped, form)

    # -- lifecycle ----------------------------------------------------------------------

    async def migrate(self) -> int:
        """Apply pending schema migrations; return the schema version now in force.

        Raises:
            StoreError: the database was migrated by a newer version of this software,
                or a migration failed (it is rolled back).
        """
        await self._write("migrate", _create_migrations_table)
        for migration in MIGRATIONS:
            applied = await self._write(
                "migrate", _apply, migration.version, migration.name, migration.sqlite, self._clock
            )
            if applied:
                _log.info("store.migrated", backend="sqlite", version=migration.version)
        version = await self._call("migrate", _schema_version)
        if version >= 3:
            logged = await self._write("migrate", _log_unlogged)
            if logged:
                _log.info("store.audit_backfilled", backend="sqlite", records=logged)
        if version > LATEST_VERSION:
            raise StoreError(
                f"the database is at schema version {version}, newer than this software"
                f" ({LATEST_VERSION})"
            )
        return version

    async def close(self) -> None:
        """Close the connection after the operations already started. Idempotent."""
        db, self._db = self._db, None
        if db is None:
            return
        try:
            # Queued behind the operations in flight: they finish first.
            await asyncio.get_running_loop().run_in_executor(self._executor, db.close)
        except sqlite3.Error as exc:
            raise StoreError(f"close failed: {type(exc).__name__}: {exc}") from exc
        finally:
            self._executor.shutdown(wait=False)

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
        await self._write("submit", self._submit, message, form, events, case_change)
        self._wake.set()

    def _submit(
        self,
        db: _Db,
        message: OutboundMessage,
        form: bytes | None,
        events: Sequence[AuditEvent],
        case_change: CaseChange | None,
    ) -> None:
        digest = self._insert_outbound(db, message, form)
        if case_change is not None:
            _apply_case_change(db, case_change)
        _insert_audit(db, with_form_digest(events, message.id, digest))

    async def claim_due(
        self,
        now: datetime,
        limit: int,
        lease_seconds: float,
        *,
        priority: Priority | None = None,
    ) -> list[OutboundMessage]:
        """Return up to ``limit`` due outbox rows, emergency then oldest first, leased."""
        until = now + timedelta(seconds=lease_seconds)
        rows = await self._write("claim_due", _claim_due, _us(until), _us(now), limit, priority)
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
        now = _us(self._clock.now())
        results = await self._write(
            "update_delivery", _update_deliveries, [(u, now) for u in updates]
        )
        if any(results):
            self._wake.set()
        return results

    async def get_outbound(self, message_id: str) -> OutboundMessage | None:
        """Return an outbox row by id."""
        rows = await self._call(
            "get_outbound", _fetch, f"SELECT {_OUT_COLUMNS} FROM outbox WHERE id = ?", (message_id,)
        )
        return _outbound(rows[0]) if rows else None

    async def list_outbound(
        self, *, state: DeliveryState | None = None, limit: int = 100
    ) -> list[OutboundMessage]:
        """Return outbox rows, newest first, optionally in one state (receipts included)."""
        rows = await self._call(
            "list_outbound",
            _fetch,
            f"SELECT {_OUT_COLUMNS} FROM outbox WHERE (?1 IS NULL OR state = ?1)"
            " ORDER BY created_at DESC, id DESC LIMIT ?2",
            (state, limit),
        )
        return [_outbound(row) for row in rows]

    async def wait_outbox(self, timeout: float) -> None:
        """Return after an outbox write here or a commit elsewhere, or after ``timeout``.

        A write by this store since the last call returns at once; other connections'
        commits are seen by polling ``PRAGMA data_version`` every 0.1 s.

        Raises:
            StoreError: the store is closed, or the database failed.
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            if self._wake.is_set():
                self._wake.clear()
                return
            version = await self._call("wait_outbox", _data_version)
            if version != self._data_version:
                self._data_version = version
                return
            remaining = deadline - loop.time()
            if remaining <= 0:
                return
            try:
                await asyncio.wait_for(self._wake.wait(), min(_POLL_SECONDS, remaining))
            except TimeoutError:
                continue

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
            already, in which case nothing was written.

        Raises:
            StoreError: the receipt's id exists in the outbox, the case was shredded
                (with a form), or the database failed; nothing is written.
        """
        existing = await self._write(
            "record_inbound",
            self._record_inbound,
            message,
            form,
            receipt,
            events,
            quarantine,
            case_change,
        )
        if existing is not None:
            return existing, False
        if receipt is not None:
            self._wake.set()
        return message, True

    def _record_inbound(
        self,
        db: _Db,
        message: InboundMessage,
        form: bytes | None,
        receipt: OutboundMessage | None,
        events: Sequence[AuditEvent],
        quarantine: QuarantineEntry | None,
        case_change: CaseChange | None,
    ) -> InboundMessage | None:
        """Returns the existing row if the id was taken (then nothing is written)."""
        m = message
        # The inbox insert comes first: its unique key decides whether anything is written.
        inserted = db.execute(
            f"INSERT INTO inbox ({_IN_COLUMNS})"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
            " ON CONFLICT (id) DO NOTHING RETURNING id",
            (
                m.id,
                m.case_id,
                m.type,
                m.sender,
                m.priority,
                m.in_reply_to,
                m.digest,
                _us(m.sent_at),
                _us(m.received_at),
                m.status,
                m.code,
                m.sealed_by,
                m.receipt_id,
            ),
        ).fetchone()
        if inserted is None:
            row = db.execute(f"SELECT {_IN_COLUMNS} FROM inbox WHERE id = ?", (m.id,)).fetchone()
            return _inbound(row)
        wrapped = self._touch_case(db, m.case_id, m.type, m.sender, m.received_at)
        if case_change is not None:
            _apply_case_change(db, case_change)
        digest = None
        if form is not None:
            digest = self._insert_form(db, "in", m.id, m.case_id, wrapped, form)
        if receipt is not None:
            self._insert_outbound(db, receipt, None)
        if quarantine is not None:
            _insert_quarantine(db, quarantine)
        _insert_audit(db, with_form_digest(events, m.id, digest))
        return None

    async def get_inbound(self, message_id: str) -> InboundMessage | None:
        """Return an inbox row by id."""
        rows = await self._call(
            "get_inbound", _fetch, f"SELECT {_IN_COLUMNS} FROM inbox WHERE id = ?", (message_id,)
        )
        return _inbound(rows[0]) if rows else None

    async def list_inbound(
        self, *, status: InboundStatus | None = None, limit: int = 100
    ) -> list[InboundMessage]:
        """Return inbox rows, newest first."""
        rows = await self._call(
            "list_inbound",
            _fetch,
            f"SELECT {_IN_COLUMNS} FROM inbox WHERE (?1 IS NULL OR status = ?1)"
            " ORDER BY received_at DESC, id DESC LIMIT ?2",
            (status, limit),
        )
        return [_inbound(row) for row in rows]

    async def requeue(self, message_id: str, now: datetime, events: Sequence[AuditEvent]) -> None:
        """Make an outbox row due at ``now``; a ``failed`` row becomes ``queued``, attempts 0.

        A ``delivered`` or ``rejected`` row is left as it is (the peer has receipted it:
        nothing to re-send); the events are recorded all the same.

        Raises:
            StoreError: no such row, or the database failed.
        """
        await self._write("requeue", _requeue, message_id, _us(now), events)
        self._wake.set()

    # -- forms and cases ----------------------------------------------------------------

    async def read_form(self, direction: Direction, message_id: str) -> bytes | None:
        """Return the decrypted form of a message; None if none is stored or it was shredded.

        Raises:
            StoreError: the form or its case key does not decrypt (wrong storage key,
                altered bytes), or the database failed.
        """
        rows = await self._call(
            "read_form",
            _fetch,
            "SELECT f.case_id, f.ciphertext, c.wrapped_key FROM forms f"
            " JOIN cases c ON c.id = f.case_id WHERE f.direction = ? AND f.message_id = ?",
            (direction, message_id),
        )
        if not rows or rows[0]["wrapped_key"] is None:
            return None
        case_id, blob, wrapped = rows[0]["case_id"], rows[0]["ciphertext"], rows[0]["wrapped_key"]
        return self._key.unwrap(case_id, wrapped).open_form(direction, message_id, blob)

    async def list_cases(self, *, limit: int = 100) -> list[CaseSummary]:
        """Return cases, most recently updated first."""
        rows = await self._call(
            "list_cases",
            _fetch,
            "SELECT c.id, c.created_at, c.first_type, c.peer, c.updated_at, c.shredded_at,"
            " (SELECT count(*) FROM inbox i WHERE i.case_id = c.id) AS messages_in,"
            " (SELECT count(*) FROM outbox o WHERE o.case_id = c.id) AS messages_out"
            " FROM cases c ORDER BY c.updated_at DESC, c.id DESC LIMIT ?",
            (limit,),
        )
        return [
            CaseSummary(
                id=row["id"],
                created_at=_at(row["created_at"]),
                first_type=row["first_type"],
                peer=row["peer"],
                messages_in=row["messages_in"],
                messages_out=row["messages_out"],
                updated_at=_at(row["updated_at"]),
                shredded=row["shredded_at"] is not None,
            )
            for row in rows
        ]

    # -- case lifecycles and deadlines ----------------------------------------------------

    async def get_case(self, case_id: str) -> tuple[CaseRecord, list[dict[str, object]]] | None:
        """Return a case's lifecycle record and its events (oldest first), or None."""
        found = await self._call("get_case", _in_snapshot, _get_case, case_id)
        if found is None:
            return None
        row, events = found
        return _case_record(row), [json.loads(e["data"]) for e in events]

    async def record_case_change(self, change: CaseChange, events: Sequence[AuditEvent]) -> None:
        """Record a lifecycle event that no message carries (see the protocol)."""

        def apply(db: _Db) -> None:
            _apply_case_change(db, change)
            _insert_audit(db, events)

        await self._write("record_case_change", apply)

    async def list_case_records(
        self,
        *,
        state: str | None = None,
        instrument: str | None = None,
        due_before: datetime | None = None,
        limit: int = 100,
    ) -> list[CaseRecord]:
        """Return case lifecycles, most recently updated first (see the protocol)."""
        rows = await self._call(
            "list_case_records",
            _fetch,
            f"SELECT {CASE_COLUMNS} FROM case_lifecycle c"
            " WHERE (?1 IS NULL OR c.state = ?1) AND (?2 IS NULL OR c.instrument = ?2)"
            " AND (?3 IS NULL OR EXISTS (SELECT 1 FROM deadlines d WHERE d.case_id = c.case_id"
            " AND d.state = 'pending' AND d.due_at < ?3))"
            " ORDER BY c.updated_at DESC, c.case_id DESC LIMIT ?4",
            (state, instrument, _opt_us(due_before), limit),
        )
        return [_case_record(row) for row in rows]

    async def list_deadlines(
        self, *, case_id: str | None = None, pending_only: bool = True, limit: int = 1000
    ) -> list[StoredDeadline]:
        """Return deadlines, emergency first, then by due time."""
        rows = await self._call(
            "list_deadlines",
            _fetch,
            f"SELECT {DEADLINE_COLUMNS} FROM deadlines"
            " WHERE (?1 IS NULL OR case_id = ?1) AND (?2 = 0 OR state = 'pending')"
            f" ORDER BY {_DEADLINE_ORDER} LIMIT ?3",
            (case_id, int(pending_only), limit),
        )
        return [_deadline(row) for row in rows]

    async def audit_head(self) -> tuple[int, bytes]:
        """Return the audit log's tree size and saved tree state."""
        rows = await self._call(
            "audit_head", _fetch, "SELECT size, state FROM audit_tree WHERE id = 1", ()
        )
        return int(rows[0]["size"]), bytes(rows[0]["state"])

    async def audit_leaves(self, *, start: int, limit: int) -> list[tuple[int, AuditEvent, bytes]]:
        """Return log records from leaf ``start`` on, in leaf order."""
        rows = await self._call(
            "audit_leaves",
            _fetch,
            "SELECT seq, event, at, message_id, case_id, peer, code, details, digests, leaf_index,"
            " leaf_hash FROM audit WHERE leaf_index >= ? ORDER BY leaf_index LIMIT ?",
            (start, limit),
        )
        return [(row["leaf_index"], _audited(row)[1], bytes(row["leaf_hash"])) for row in rows]

    async def audit_leaf_hashes(self, *, start: int, limit: int) -> list[bytes]:
        """Return the leaf hashes from leaf ``start`` on, in leaf order (no records)."""
        rows = await self._call(
            "audit_leaf_hashes",
            _fetch,
            "SELECT leaf_hash FROM audit WHERE leaf_index >= ? ORDER BY leaf_index LIMIT ?",
            (start, limit),
        )
        return [bytes(row[0]) for row in rows]

    async def add_checkpoint(self, size: int, note: bytes) -> bool:
        """Keep a signed checkpoint of the log at ``size``; False if one was kept already."""
        row = await self._write(
            "add_checkpoint",
            lambda db: db.execute(
                "INSERT INTO audit_checkpoints (size, note, created_at) VALUES (?, ?, ?)"
                " ON CONFLICT (size) DO NOTHING RETURNING size",
                (size, note, _us(self._clock.now())),
            ).fetchone(),
        )
        return row is not None

    async def list_checkpoints(
        self, *, newest_first: bool = False, limit: int = 100_000
    ) -> list[tuple[int, bytes]]:
        """Return the kept checkpoints (size, signed note), oldest (or newest) first."""
        order = "DESC" if newest_first else "ASC"
        rows = await self._call(
            "list_checkpoints",
            _fetch,
            f"SELECT size, note FROM audit_checkpoints ORDER BY size {order} LIMIT ?",
            (limit,),
        )
        return [(int(row["size"]), bytes(row["note"])) for row in rows]

    async def list_cosignatures(self) -> list[tuple[str, int, bytes]]:
        """Return every kept cosignature of this node's checkpoints: (witness, size, line)."""
        rows = await self._call(
            "list_cosignatures",
            _fetch,
            "SELECT witness, size, line FROM audit_cosignatures ORDER BY size, witness",
            (),
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
        now = _us(self._clock.now())

        def write(db: _Db) -> None:
            if cosignature is not None:
                db.execute(
                    "INSERT INTO audit_cosignatures (witness, size, line, received_at)"
                    " VALUES (?, ?, ?, ?) ON CONFLICT (witness, size) DO NOTHING",
                    (witness, cosignature[0], cosignature[1], now),
                )
            db.execute(
                "INSERT INTO audit_witnesses (witness, known_size, updated_at) VALUES (?, ?, ?)"
                " ON CONFLICT (witness) DO UPDATE SET known_size = excluded.known_size,"
                " updated_at = excluded.updated_at",
                (witness, known_size, now),
            )
            _insert_audit(db, events)

        await self._write("record_witness_answer", write)

    async def witness_sizes(self) -> dict[str, int]:
        """Return each witness's known size of this node's log."""
        rows = await self._call(
            "witness_sizes", _fetch, "SELECT witness, known_size FROM audit_witnesses", ()
        )
        return {row["witness"]: int(row["known_size"]) for row in rows}

    async def peer_checkpoint(
        self, peer: str, size: int | None = None
    ) -> tuple[int, bytes, bytes] | None:
        """Return a peer's checkpoint this node cosigned: (size, root, note)."""
        rows = await self._call(
            "peer_checkpoint",
            _fetch,
            "SELECT size, root, note FROM audit_peer_checkpoints"
            " WHERE peer = ?1 AND (?2 IS NULL OR size = ?2) ORDER BY size DESC LIMIT 1",
            (peer, size),
        )
        if not rows:
            return None
        return int(rows[0]["size"]), bytes(rows[0]["root"]), bytes(rows[0]["note"])

    async def add_peer_checkpoint(
        self, peer: str, size: int, root: bytes, note: bytes, events: Sequence[AuditEvent]
    ) -> bytes | None:
        """Keep a peer's verified checkpoint, with audit; return the root kept before."""
        now = _us(self._clock.now())

        def write(db: _Db) -> bytes | None:
            kept = db.execute(
                "SELECT root FROM audit_peer_checkpoints WHERE peer = ? AND size = ?",
                (peer, size),
            ).fetchone()
            if kept is not None:
                return bytes(kept["root"])
            db.execute(
                "INSERT INTO audit_peer_checkpoints (peer, size, root, note, received_at)"
                " VALUES (?, ?, ?, ?, ?)",
                (peer, size, root, note, now),
            )
            _insert_audit(db, events)
            return None

        return await self._write("add_peer_checkpoint", write)

    async def audit_cursor(self, name: str) -> int:
        """Return the position of a named pass over the log (0 if it never ran)."""
        rows = await self._call(
            "audit_cursor",
            _fetch,
            "SELECT position FROM audit_cursors WHERE name = ?",
            (name,),
        )
        return int(rows[0]["position"]) if rows else 0

    async def set_audit_cursor(self, name: str, position: int) -> None:
        """Move a named pass over the log to ``position``."""
        await self._write(
            "set_audit_cursor",
            lambda db: db.execute(
                "INSERT INTO audit_cursors (name, position) VALUES (?, ?)"
                " ON CONFLICT (name) DO UPDATE SET position = excluded.position",
                (name, position),
            ),
        )

    async def case_histories(
        self, *, after: str | None, limit: int
    ) -> list[tuple[CaseRecord, list[dict[str, object]]]]:
        """Return a page of cases in id order, with their events (see the protocol)."""
        rows, events = await self._call(
            "case_histories", _in_snapshot, _case_histories, after or "", limit
        )
        grouped: dict[str, list[dict[str, object]]] = {}
        for event in events:
            grouped.setdefault(event["case_id"], []).append(json.loads(event["data"]))
        return [(_case_record(row), grouped.get(row["case_id"], [])) for row in rows]

    async def due_deadlines(self, now: datetime, limit: int) -> list[StoredDeadline]:
        """Return pending deadlines whose reminder or escalation is due at ``now``."""
        rows = await self._call(
            "due_deadlines",
            _fetch,
            f"SELECT {DEADLINE_COLUMNS} FROM deadlines WHERE state = 'pending' AND"
            " ((due_at <= ?1 AND escalated_at IS NULL) OR next_reminder_at <= ?1)"
            f" ORDER BY {_DEADLINE_ORDER} LIMIT ?2",
            (_us(now), limit),
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

        def apply(db: _Db) -> None:
            db.execute(
                "UPDATE deadlines SET state = ?, next_reminder_at = ?, escalated_at = ?"
                " WHERE case_id = ? AND rule = ?",
                (state, _opt_us(next_reminder_at), _opt_us(escalated_at), case_id, rule),
            )
            _insert_audit(db, events)

        await self._write("update_deadline", apply)

    async def case_messages(
        self, case_id: str
    ) -> tuple[list[InboundMessage], list[OutboundMessage]]:
        """Return every message of a case, oldest first (one consistent snapshot)."""
        inbound, outbound = await self._call("case_messages", _in_snapshot, _case_messages, case_id)
        return [_inbound(row) for row in inbound], [_outbound(row) for row in outbound]

    async def shred_case(self, case_id: str, events: Sequence[AuditEvent]) -> None:
        """Erase a case's key and its encrypted forms (crypto-shredding), with audit.

        The case row, its messages' metadata and the audit trail stay. Shredding a
        shredded case only records the events.

        Raises:
            StoreError: no such case, or the database failed.
        """
        await self._write("shred_case", _shred_case, case_id, _us(self._clock.now()), events)

    # -- quarantine ---------------------------------------------------------------------

    async def quarantine(self, entry: QuarantineEntry, events: Sequence[AuditEvent]) -> None:
        """Keep a refused delivery (with ``entry.raw``) and its audit events."""
        await self._write("quarantine", _quarantine, entry, events)

    async def list_quarantine(
        self, *, state: QuarantineState | None = None, limit: int = 100
    ) -> list[QuarantineEntry]:
        """Return quarantine entries without raw bytes, newest first."""
        rows = await self._call(
            "list_quarantine",
            _fetch,
            f"SELECT {_Q_COLUMNS} FROM quarantine WHERE (?1 IS NULL OR state = ?1)"
            " ORDER BY received_at DESC, id DESC LIMIT ?2",
            (state, limit),
        )
        return [_quarantined(row) for row in rows]

    async def get_quarantine(self, entry_id: str) -> QuarantineEntry | None:
        """Return one entry with its raw bytes (None after a purge)."""
        rows = await self._call(
            "get_quarantine",
            _fetch,
            f"SELECT {_Q_COLUMNS}, raw FROM quarantine WHERE id = ?",
            (entry_id,),
        )
        return _quarantined(rows[0], rows[0]["raw"]) if rows else None

    async def set_quarantine_state(
        self, entry_id: str, state: QuarantineState, events: Sequence[AuditEvent]
    ) -> None:
        """Change an entry's state (``purged`` also erases its raw bytes), with audit.

        Raises:
            StoreError: no such entry, or it is ``purged`` already (a final state).
        """
        await self._write("set_quarantine_state", _set_quarantine_state, entry_id, state, events)

    async def claim_released(self, limit: int) -> list[QuarantineEntry]:
        """Return up to ``limit`` released entries (oldest first, with raw bytes).

        They are marked ``reprocessed`` in the same transaction, and the returned
        entries carry that state.
        """
        rows = await self._write("claim_released", _claim_released, limit)
        claimed = [_quarantined(row, row["raw"]) for row in rows]
        claimed.sort(key=lambda e: (e.received_at, e.id))
        return claimed

    # -- audit --------------------------------------------------------------------------

    async def audit(self, events: Sequence[AuditEvent]) -> None:
        """Append audit events on their own."""
        await self._write("audit", _insert_audit, events)

    async def list_audit(
        self,
        *,
        message_id: str | None = None,
        case_id: str | None = None,
        limit: int = 1000,
    ) -> list[tuple[int, AuditEvent]]:
        """Return audit events with their sequence numbers, in order (both filters apply)."""
        rows = await self._call(
            "list_audit",
            _fetch,
            f"SELECT {_AUDIT_COLUMNS} FROM audit"
            " WHERE (?1 IS NULL OR message_id = ?1) AND (?2 IS NULL OR case_id = ?2)"
            " ORDER BY seq LIMIT ?3",
            (message_id, case_id, limit),
        )
        return [_audited(row) for row in rows]


# -- transactions (run on the worker thread) ----------------------------------------------


def _fetch(db: _Db, sql: str, params: Sequence[Any]) -> list[sqlite3.Row]:
    return db.execute(sql, params).fetchall()


def _data_version(db: _Db) -> int:
    version: int = db.execute("PRAGMA data_version").fetchone()[0]
    return version


def _create_migrations_table(db: _Db) -> None:
    db.execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations ("
        " version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at INTEGER NOT NULL)"
    )


def _apply(db: _Db, version: int, name: str, statements: Sequence[str], clock: Clock) -> bool:
    """Apply one migration unless recorded; return whether it was applied now."""
    if db.execute("SELECT 1 FROM schema_migrations WHERE version = ?", (version,)).fetchone():
        return False
    for statement in statements:
        db.execute(statement)
    db.execute(
        "INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)",
        (version, name, _us(clock.now())),
    )
    return True


def _schema_version(db: _Db) -> int:
    version: int = db.execute("SELECT max(version) FROM schema_migrations").fetchone()[0]
    return version


def _claim_due(
    db: _Db, until: int, now: int, limit: int, priority: str | None
) -> list[sqlite3.Row]:
    return db.execute(
        "UPDATE outbox SET next_attempt_at = ?1 WHERE id IN ("
        " SELECT id FROM outbox WHERE state IN ('queued', 'sent') AND next_attempt_at <= ?2"
        " AND (?4 IS NULL OR priority = ?4)"
        f" ORDER BY {_DUE_ORDER} LIMIT ?3)"
        f" RETURNING {_OUT_COLUMNS}",
        (until, now, limit, priority),
    ).fetchall()


def _update_deliveries(db: _Db, updates: Sequence[tuple[DeliveryUpdate, int]]) -> list[bool]:
    results = []
    for update, now in updates:
        current = _state_of(db, "outbox", update.message_id)
        if current is None:
            raise StoreError(f"no outbox message {update.message_id}")
        if update.expect_state is not None and current not in update.expect_state:
            results.append(False)
            continue
        db.execute(
            "UPDATE outbox SET state = ?, attempts = ?, next_attempt_at = ?, code = ?,"
            " receipt = coalesce(?, receipt), updated_at = ? WHERE id = ?",
            (
                update.state,
                update.attempts,
                _opt_us(update.next_attempt_at),
                update.code,
                update.receipt,
                now,
                update.message_id,
            ),
        )
        _insert_audit(db, update.events)
        results.append(True)
    return results


def _requeue(db: _Db, message_id: str, now: int, events: Sequence[AuditEvent]) -> None:
    current = _state_of(db, "outbox", message_id)
    if current is None:
        raise StoreError(f"no outbox message {message_id}")
    if current == "failed":
        db.execute(
            "UPDATE outbox SET state = 'queued', attempts = 0, code = NULL,"
            " next_attempt_at = ?, updated_at = ? WHERE id = ?",
            (now, now, message_id),
        )
    elif current not in _TERMINAL:
        db.execute("UPDATE outbox SET next_attempt_at = ? WHERE id = ?", (now, message_id))
    _insert_audit(db, events)


def _case_messages(db: _Db, case_id: str) -> tuple[list[sqlite3.Row], list[sqlite3.Row]]:
    inbound = db.execute(
        f"SELECT {_IN_COLUMNS} FROM inbox WHERE case_id = ? ORDER BY received_at, id", (case_id,)
    ).fetchall()
    outbound = db.execute(
        f"SELECT {_OUT_COLUMNS} FROM outbox WHERE case_id = ? ORDER BY created_at, id", (case_id,)
    ).fetchall()
    return inbound, outbound


def _shred_case(db: _Db, case_id: str, now: int, events: Sequence[AuditEvent]) -> None:
    row = db.execute("SELECT shredded_at FROM cases WHERE id = ?", (case_id,)).fetchone()
    if row is None:
        raise StoreError(f"no case {case_id}")
    if row["shredded_at"] is None:
        db.execute(
            "UPDATE cases SET wrapped_key = NULL, shredded_at = ? WHERE id = ?", (now, case_id)
        )
        db.execute("DELETE FROM forms WHERE case_id = ?", (case_id,))
    _insert_audit(db, events)


def _quarantine(db: _Db, entry: QuarantineEntry, events: Sequence[AuditEvent]) -> None:
    _insert_quarantine(db, entry)
    _insert_audit(db, events)


def _set_quarantine_state(db: _Db, entry_id: str, state: str, events: Sequence[AuditEvent]) -> None:
    current = _state_of(db, "quarantine", entry_id)
    if current is None:
        raise StoreError(f"no quarantine entry {entry_id}")
    if current == "purged":
        raise StoreError(f"quarantine entry {entry_id} is purged: its state is final")
    db.execute(
        "UPDATE quarantine SET state = ?1, raw = CASE WHEN ?1 = 'purged' THEN NULL ELSE raw END"
        " WHERE id = ?2",
        (state, entry_id),
    )
    _insert_audit(db, events)


def _claim_released(db: _Db, limit: int) -> list[sqlite3.Row]:
    return db.execute(
        "UPDATE quarantine SET state = 'reprocessed' WHERE id IN ("
        " SELECT id FROM quarantine WHERE state = 'released' ORDER BY received_at, id LIMIT ?)"
        f" RETURNING {_Q_COLUMNS}, raw",
        (limit,),
    ).fetchall()


# -- case lifecycles ---------------------------------------------------------------------

_DEADLINE_ORDER: Final = "CASE priority WHEN 'emergency' THEN 0 ELSE 1 END, due_at, case_id, rule"


def _case_record(row: sqlite3.Row) -> CaseRecord:
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
        updated_at=_at(row["updated_at"]),
    )


def _deadline(row: sqlite3.Row) -> StoredDeadline:
    return StoredDeadline(
        case_id=row["case_id"],
        rule=row["rule"],
        instrument=row["instrument"],
        step=row["step"],
        article=row["article"],
        owed_by=row["owed_by"],
        priority=row["priority"],
        escalation=row["escalation"],
        started_at=_at(row["started_at"]),
        due_at=_at(row["due_at"]),
        state=row["state"],
        met_at=_opt_at(row["met_at"]),
        reminders=tuple(_at(us) for us in json.loads(row["reminders"])),
        next_reminder_at=_opt_at(row["next_reminder_at"]),
        escalated_at=_opt_at(row["escalated_at"]),
    )


def _get_case(db: _Db, case_id: str) -> tuple[sqlite3.Row, list[sqlite3.Row]] | None:
    row = db.execute(
        f"SELECT {CASE_COLUMNS} FROM case_lifecycle c WHERE c.case_id = ?", (case_id,)
    ).fetchone()
    if row is None:
        return None
    events = db.execute(
        "SELECT data FROM case_events WHERE case_id = ? ORDER BY seq", (case_id,)
    ).fetchall()
    return row, events


def _json(value: object) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def _apply_case_change(db: _Db, change: CaseChange) -> None:
    r = change.record
    now = _us(r.updated_at) if r.updated_at is not None else None
    if now is None:
        raise StoreError("a case change needs its updated_at")
    values = (r.state, r.events, _json(dict(r.facts)), _json(dict(r.overrides)), now)
    if r.events == 1:
        inserted = db.execute(
            "INSERT INTO case_lifecycle (state, events, facts, overrides, updated_at, case_id,"
            " instrument, priority, requester, requested) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
            " ON CONFLICT (case_id) DO NOTHING RETURNING case_id",
            (*values, r.case_id, r.instrument, r.priority, r.requester, r.requested),
        ).fetchone()
        if inserted is None:
            raise StoreError(f"case {r.case_id} was opened meanwhile")
    else:
        updated = db.execute(
            "UPDATE case_lifecycle SET state = ?, events = ?, facts = ?, overrides = ?,"
            " updated_at = ? WHERE case_id = ? AND events = ?",
            (*values, r.case_id, r.events - 1),
        )
        if updated.rowcount != 1:
            raise StoreError(f"case {r.case_id} changed meanwhile")
    db.execute(
        "INSERT INTO case_events (case_id, seq, message_id, data) VALUES (?, ?, ?, ?)",
        (r.case_id, r.events, change.message_id, _json(dict(change.event))),
    )
    rules = [d.rule for d in change.deadlines]
    db.execute(
        f"DELETE FROM deadlines WHERE case_id = ? AND rule NOT IN ({', '.join('?' * len(rules))})"
        if rules
        else "DELETE FROM deadlines WHERE case_id = ?",
        (r.case_id, *rules),
    )
    # The scheduler's progress survives a recomputation that leaves the due time as it was.
    db.executemany(
        f"INSERT INTO deadlines ({DEADLINE_COLUMNS})"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, NULL)" + DEADLINE_UPSERT,
        [deadline_values(d, _us, lambda ts: _json([_us(t) for t in ts])) for d in change.deadlines],
    )


def _case_histories(db: _Db, after: str, limit: int) -> tuple[list[sqlite3.Row], list[sqlite3.Row]]:
    rows = db.execute(
        f"SELECT {CASE_COLUMNS} FROM case_lifecycle c WHERE c.case_id > ?"
        " ORDER BY c.case_id LIMIT ?",
        (after, limit),
    ).fetchall()
    if not rows:
        return [], []
    events = db.execute(
        "SELECT case_id, data FROM case_events WHERE case_id >= ? AND case_id <= ?"
        " ORDER BY case_id, seq",
        (rows[0]["case_id"], rows[-1]["case_id"]),
    ).fetchall()
    return rows, events
