"""The store's schema, as an ordered list of versioned migrations for both backends.

This module owns the table definitions. Each :class:`Migration` has a version
(1, 2, 3 … with no gaps), a name, and the statements that apply it on SQLite and on
PostgreSQL. The backends apply every pending migration once, in order, each in its
own transaction, and record it in ``schema_migrations (version, name, applied_at)``;
PostgreSQL serialises concurrent migrators with ``pg_advisory_xact_lock``, SQLite
with ``BEGIN IMMEDIATE``. A migration, once released, is never edited: a change is a
new migration.

Column types differ by backend only where the engines do:

==================  ==============================  ===========================
value               SQLite                          PostgreSQL
==================  ==============================  ===========================
time (UTC)          INTEGER microseconds since      timestamptz
                    the Unix epoch (exact)
bytes               BLOB                            bytea
boolean             INTEGER 0 / 1                   boolean
audit sequence      INTEGER PRIMARY KEY             bigserial
                    AUTOINCREMENT
==================  ==============================  ===========================

Audit ``details`` are JSON text (sorted keys) on both. The foreign keys to ``cases``
are ``DEFERRABLE INITIALLY DEFERRED`` (checked at commit) because ``record_inbound``
inserts the inbox row first — the insert that decides, on its unique key, whether
anything is written at all — and only then creates or touches the case.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

__all__ = ["LATEST_VERSION", "MIGRATIONS", "Migration"]


@dataclass(frozen=True)
class Migration:
    """One schema change.

    Attributes:
        version: its number; applied in increasing order.
        name: a short description, recorded with the version.
        sqlite: the statements for SQLite, run in order in one transaction.
        postgres: the statements for PostgreSQL, likewise.
    """

    version: int
    name: str
    sqlite: tuple[str, ...]
    postgres: tuple[str, ...]


# The values that CHECK constraints admit; they mirror the Literal types of base.py.
_PRIORITY = "('emergency', 'normal')"
_DELIVERY = "('queued', 'sent', 'delivered', 'rejected', 'failed')"
_INBOUND = "('accepted', 'rejected')"
_QUARANTINE = "('held', 'released', 'reprocessed', 'purged')"


def _tables(time: str, blob: str, boolean: str, serial: str) -> tuple[str, ...]:
    """Version 1 for either engine, from its names for the four column kinds."""
    return (
        f"""CREATE TABLE cases (
            id TEXT PRIMARY KEY,
            wrapped_key {blob},
            created_at {time} NOT NULL,
            updated_at {time} NOT NULL,
            first_type TEXT NOT NULL,
            peer TEXT NOT NULL,
            shredded_at {time}
        )""",
        "CREATE INDEX cases_updated ON cases (updated_at)",
        f"""CREATE TABLE outbox (
            id TEXT PRIMARY KEY,
            case_id TEXT NOT NULL REFERENCES cases (id) DEFERRABLE INITIALLY DEFERRED,
            type TEXT NOT NULL,
            recipient TEXT NOT NULL,
            priority TEXT NOT NULL CHECK (priority IN {_PRIORITY}),
            in_reply_to TEXT,
            envelope {blob} NOT NULL,
            digest TEXT NOT NULL,
            expects_receipt {boolean} NOT NULL,
            state TEXT NOT NULL CHECK (state IN {_DELIVERY}),
            attempts INTEGER NOT NULL CHECK (attempts >= 0),
            next_attempt_at {time},
            code TEXT,
            receipt {blob},
            created_at {time} NOT NULL,
            updated_at {time} NOT NULL
        )""",
        # The publisher loop's query: due rows by state and time.
        "CREATE INDEX outbox_due ON outbox (state, next_attempt_at)",
        "CREATE INDEX outbox_case ON outbox (case_id)",
        "CREATE INDEX outbox_created ON outbox (created_at)",
        f"""CREATE TABLE inbox (
            id TEXT PRIMARY KEY,
            case_id TEXT NOT NULL REFERENCES cases (id) DEFERRABLE INITIALLY DEFERRED,
            type TEXT NOT NULL,
            sender TEXT NOT NULL,
            priority TEXT NOT NULL CHECK (priority IN {_PRIORITY}),
            in_reply_to TEXT,
            digest TEXT NOT NULL,
            sent_at {time} NOT NULL,
            received_at {time} NOT NULL,
            status TEXT NOT NULL CHECK (status IN {_INBOUND}),
            code TEXT,
            sealed_by TEXT,
            receipt_id TEXT
        )""",
        "CREATE INDEX inbox_case ON inbox (case_id)",
        "CREATE INDEX inbox_received ON inbox (received_at)",
        f"""CREATE TABLE forms (
            direction TEXT NOT NULL CHECK (direction IN ('in', 'out')),
            message_id TEXT NOT NULL,
            case_id TEXT NOT NULL REFERENCES cases (id) DEFERRABLE INITIALLY DEFERRED,
            ciphertext {blob} NOT NULL,
            PRIMARY KEY (direction, message_id)
        )""",
        "CREATE INDEX forms_case ON forms (case_id)",
        f"""CREATE TABLE quarantine (
            id TEXT PRIMARY KEY,
            received_at {time} NOT NULL,
            code TEXT NOT NULL,
            reason TEXT NOT NULL,
            message_id TEXT,
            peer TEXT,
            authenticated {boolean} NOT NULL,
            size INTEGER NOT NULL CHECK (size >= 0),
            state TEXT NOT NULL CHECK (state IN {_QUARANTINE}),
            raw {blob}
        )""",
        "CREATE INDEX quarantine_state ON quarantine (state, received_at)",
        "CREATE INDEX quarantine_received ON quarantine (received_at)",
        f"""CREATE TABLE audit (
            seq {serial},
            event TEXT NOT NULL,
            at {time} NOT NULL,
            message_id TEXT,
            case_id TEXT,
            peer TEXT,
            code TEXT,
            details TEXT NOT NULL
        )""",
        "CREATE INDEX audit_message ON audit (message_id)",
        "CREATE INDEX audit_case ON audit (case_id)",
    )


def _lifecycle(time: str) -> tuple[str, ...]:
    return (
        f"""CREATE TABLE case_lifecycle (
            case_id TEXT PRIMARY KEY,
            instrument TEXT NOT NULL,
            priority TEXT NOT NULL CHECK (priority IN {_PRIORITY}),
            requester TEXT NOT NULL,
            requested TEXT NOT NULL,
            state TEXT NOT NULL,
            events INTEGER NOT NULL CHECK (events >= 1),
            facts TEXT NOT NULL,
            overrides TEXT NOT NULL,
            updated_at {time} NOT NULL
        )""",
        "CREATE INDEX case_lifecycle_state ON case_lifecycle (state, instrument)",
        "CREATE INDEX case_lifecycle_updated ON case_lifecycle (updated_at)",
        # One row per lifecycle event: roles, codes and dates (JSON), never a form.
        """CREATE TABLE case_events (
            case_id TEXT NOT NULL,
            seq INTEGER NOT NULL CHECK (seq >= 1),
            message_id TEXT,
            data TEXT NOT NULL,
            PRIMARY KEY (case_id, seq)
        )""",
        f"""CREATE TABLE deadlines (
            case_id TEXT NOT NULL,
            rule TEXT NOT NULL,
            instrument TEXT NOT NULL,
            step TEXT NOT NULL,
            article TEXT NOT NULL,
            owed_by TEXT NOT NULL,
            priority TEXT NOT NULL CHECK (priority IN {_PRIORITY}),
            escalation TEXT NOT NULL,
            started_at {time} NOT NULL,
            due_at {time} NOT NULL,
            state TEXT NOT NULL,
            met_at {time},
            reminders TEXT NOT NULL,
            next_reminder_at {time},
            escalated_at {time},
            PRIMARY KEY (case_id, rule)
        )""",
        "CREATE INDEX deadlines_due ON deadlines (state, due_at)",
        "CREATE INDEX deadlines_remind ON deadlines (state, next_reminder_at)",
    )


def _merkle(blob: str, empty: str, time: str) -> tuple[str, ...]:
    return (
        # Each record is a leaf of the node's Merkle log (RFC 9162): its index in the
        # tree and the hash of its RFC 8785 entry (broker.store.auditlog).
        "ALTER TABLE audit ADD COLUMN leaf_index INTEGER",
        f"ALTER TABLE audit ADD COLUMN leaf_hash {blob}",
        "CREATE UNIQUE INDEX audit_leaf ON audit (leaf_index)",
        # The tree head: one row, locked by every writer, so the log has one order.
        f"""CREATE TABLE audit_tree (
            id INTEGER PRIMARY KEY CHECK (id = 1),
            size INTEGER NOT NULL CHECK (size >= 0),
            state {blob} NOT NULL
        )""",
        f"INSERT INTO audit_tree (id, size, state) VALUES (1, 0, {empty})",  # noqa: S608 - constants
        # Signed checkpoints of the tree (C2SP signed notes), one per tree size.
        f"""CREATE TABLE audit_checkpoints (
            size INTEGER PRIMARY KEY CHECK (size >= 1),
            note {blob} NOT NULL,
            created_at {time} NOT NULL
        )""",
    )


def _witnessing(blob: str, time: str) -> tuple[str, ...]:
    return (
        # Keyed digests of an entry (JSON, NULL for none): HMACs under the case's key,
        # computed by the store in the transaction that holds the plaintext.
        "ALTER TABLE audit ADD COLUMN digests TEXT",
        # Witnesses' cosignatures of this node's checkpoints (C2SP tlog-cosignature lines).
        f"""CREATE TABLE audit_cosignatures (
            witness TEXT NOT NULL,
            size INTEGER NOT NULL CHECK (size >= 1),
            line {blob} NOT NULL,
            received_at {time} NOT NULL,
            PRIMARY KEY (witness, size)
        )""",
        # What each witness last said it verified of this node's log: the next
        # consistency proof sent to it starts there.
        f"""CREATE TABLE audit_witnesses (
            witness TEXT PRIMARY KEY,
            known_size INTEGER NOT NULL CHECK (known_size >= 0),
            updated_at {time} NOT NULL
        )""",
        # Other nodes' checkpoints this node verified and cosigned as their witness.
        f"""CREATE TABLE audit_peer_checkpoints (
            peer TEXT NOT NULL,
            size INTEGER NOT NULL CHECK (size >= 1),
            root {blob} NOT NULL,
            note {blob} NOT NULL,
            received_at {time} NOT NULL,
            PRIMARY KEY (peer, size)
        )""",
        # Positions of the node's own passes over its log (e.g. receipt proofs sent).
        """CREATE TABLE audit_cursors (
            name TEXT PRIMARY KEY,
            position INTEGER NOT NULL CHECK (position >= 0)
        )""",
    )


#: Every migration, oldest first.
MIGRATIONS: Final[tuple[Migration, ...]] = (
    Migration(
        version=1,
        name="cases, outbox, inbox, forms, quarantine, audit",
        sqlite=_tables("INTEGER", "BLOB", "INTEGER", "INTEGER PRIMARY KEY AUTOINCREMENT"),
        postgres=_tables("timestamptz", "bytea", "boolean", "bigserial PRIMARY KEY"),
    ),
    Migration(
        version=2,
        name="case lifecycles, case events, deadlines",
        sqlite=_lifecycle("INTEGER"),
        postgres=_lifecycle("timestamptz"),
    ),
    Migration(
        version=3,
        name="the audit table as a Merkle log",
        sqlite=_merkle("BLOB", "X'0000000000000000'", "INTEGER"),
        postgres=_merkle("bytea", "'\\x0000000000000000'::bytea", "timestamptz"),
    ),
    Migration(
        version=4,
        name="keyed digests, witnesses and cosignatures",
        sqlite=_witnessing("BLOB", "INTEGER"),
        postgres=_witnessing("bytea", "timestamptz"),
    ),
)

#: The schema version a fully migrated store is at.
LATEST_VERSION: Final = MIGRATIONS[-1].version

if [m.version for m in MIGRATIONS] != list(range(1, len(MIGRATIONS) + 1)):  # pragma: no cover
    raise RuntimeError("migration versions must be 1, 2, 3 … without gaps")
