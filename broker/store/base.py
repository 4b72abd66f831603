"""The Store protocol: what a node keeps, and the atomic operations on it.

A node's store holds its outbox (messages it sends, with their delivery state), its
inbox (every authenticated message it received, accepted or rejected: the dedup table),
the cases those messages belong to (with each case's payload key, wrapped by the
node's storage key), the quarantine (raw bytes of everything refused) and the audit
trail. Two backends implement it: SQLite (embedded default) and PostgreSQL
(production); ``tests/store`` runs one suite against both.

Every method is one transaction. Operations that the message path needs to be atomic
(``submit``, ``record_inbound``, ``update_delivery``) take the audit events they
record, so an event and its record commit or roll back together.

Forms are stored encrypted under their case's key (:mod:`broker.store.atrest`); the
store encrypts on write and decrypts in :meth:`Store.read_form`. Rows never hold
plaintext forms. Envelopes are stored as received (they are already encrypted).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal, Protocol

__all__ = [
    "URGENT",
    "AuditEvent",
    "CaseChange",
    "CaseRecord",
    "CaseSummary",
    "DeliveryState",
    "DeliveryUpdate",
    "Direction",
    "InboundMessage",
    "InboundStatus",
    "OutboundMessage",
    "Priority",
    "QuarantineEntry",
    "QuarantineState",
    "Store",
    "StoredDeadline",
]

#: Delivery states of an outbound message (see :mod:`broker.delivery`).
DeliveryState = Literal["queued", "sent", "delivered", "rejected", "failed"]
#: Whether an authenticated inbound message took effect.
InboundStatus = Literal["accepted", "rejected"]
#: ``held``: waiting for an operator; ``released``: to be processed again by the node;
#: ``reprocessed``: released and processed (see the audit trail for the outcome);
#: ``purged``: raw bytes erased by an operator, the metadata kept.
QuarantineState = Literal["held", "released", "reprocessed", "purged"]
Direction = Literal["in", "out"]
#: A message's priority (as on the envelope).
Priority = Literal["emergency", "normal"]

#: True while the current task does emergency work. Stores that serialise their
#: operations (SQLite: one connection, one thread) run such operations first, so an
#: emergency message never waits behind a queue of routine writes.
URGENT: ContextVar[bool] = ContextVar("evb_store_urgent", default=False)


@dataclass(frozen=True)
class AuditEvent:
    """One audit record: ids, codes and times, never payloads or personal data.

    Attributes:
        event: what happened, dotted (``message.submitted``, ``message.sent``,
            ``message.received``, ``message.rejected``, ``receipt.received``,
            ``delivery.failed``, ``quarantine.released`` …).
        at: when (UTC).
        message_id: the message concerned, if any.
        case_id: its case, if any.
        peer: the other participant, if any.
        code: an error code (``E_…``), if the event is a failure.
        details: further non-personal facts (types, states, counts, digests).
        digests: keyed digests (name → HMAC-SHA256 hex under the case's audit key);
            set by the store, which alone holds the plaintext and the case key in the
            transaction (``form``: the message's form, on ``message.received`` and
            ``message.submitted``).
    """

    event: str
    at: datetime
    message_id: str | None = None
    case_id: str | None = None
    peer: str | None = None
    code: str | None = None
    details: Mapping[str, str | int | bool | None] = field(default_factory=dict)
    digests: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class DeliveryUpdate:
    """One outbox row's new delivery state, for :meth:`Store.update_deliveries`.

    The fields mean what the keyword arguments of :meth:`Store.update_delivery` mean.
    """

    message_id: str
    state: DeliveryState
    attempts: int
    next_attempt_at: datetime | None
    code: str | None
    events: Sequence[AuditEvent] = ()
    receipt: bytes | None = None
    expect_state: Sequence[DeliveryState] | None = None


@dataclass(frozen=True)
class OutboundMessage:
    """A message in the outbox and its delivery state.

    Attributes:
        id: the message id (UUIDv7), also the envelope's ``id``.
        case_id: the envelope's ``case``.
        type: the catalogue type.
        recipient: the participant it is addressed to.
        priority: ``emergency`` or ``normal`` (which lane it travels in).
        in_reply_to: the message it answers, if any (for a receipt: the receipted one).
        envelope: the signed envelope bytes; re-sends publish exactly these bytes.
        digest: SHA-256 hex of ``envelope``.
        expects_receipt: False for receipts themselves (a receipt gets no receipt).
        state: the delivery state.
        attempts: how many times it was published.
        next_attempt_at: when the publisher loop next looks at it (None: never).
        code: the rejection code (state ``rejected``) or the last error.
        receipt: the signed receipt envelope received for it, if any.
        created_at: when it was submitted.
        updated_at: when its state last changed.
    """

    id: str
    case_id: str
    type: str
    recipient: str
    priority: Literal["emergency", "normal"]
    in_reply_to: str | None
    envelope: bytes
    digest: str
    expects_receipt: bool
    state: DeliveryState
    attempts: int
    next_attempt_at: datetime | None
    code: str | None
    receipt: bytes | None
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True)
class InboundMessage:
    """An authenticated message received (the dedup row, keyed by message id).

    Attributes:
        id: the envelope's ``id``.
        case_id: the envelope's ``case``.
        type: the catalogue type.
        sender: the authenticated ``from``.
        priority: the envelope's ``priority``.
        in_reply_to: the envelope's ``in_reply_to``.
        digest: SHA-256 hex of the envelope's RFC 8785 bytes (a replay with other bytes
            under the same id is ``E_REPLAY``).
        sent_at: the envelope's ``sent_at``.
        received_at: when this node recorded it.
        status: ``accepted`` (took effect) or ``rejected`` (with ``code``).
        code: the rejection code.
        sealed_by: the issuing authority whose seal verified (accepted messages).
        receipt_id: the id of the receipt this node sent for it (an outbox row), if any.
    """

    id: str
    case_id: str
    type: str
    sender: str
    priority: Literal["emergency", "normal"]
    in_reply_to: str | None
    digest: str
    sent_at: datetime
    received_at: datetime
    status: InboundStatus
    code: str | None
    sealed_by: str | None
    receipt_id: str | None


@dataclass(frozen=True)
class QuarantineEntry:
    """A refused delivery, kept with its raw bytes until an operator purges it.

    Attributes:
        id: the entry id (UUIDv7).
        received_at: when it was refused.
        code: the error code.
        reason: a short explanation (never the payload or personal data).
        message_id: the envelope id, when it could be read (untrusted unless authenticated).
        peer: the sender, when it could be read (untrusted unless authenticated).
        authenticated: whether the envelope signature verified.
        size: the number of raw bytes.
        state: see :data:`QuarantineState`.
        raw: the raw bytes (None in listings and after a purge).
    """

    id: str
    received_at: datetime
    code: str
    reason: str
    message_id: str | None
    peer: str | None
    authenticated: bool
    size: int
    state: QuarantineState
    raw: bytes | None = None


@dataclass(frozen=True)
class CaseSummary:
    """A case as the store sees it: the messages that share a case id.

    Attributes:
        id: the case id.
        created_at: when the node first saw it.
        first_type: the type of its first message (the request, usually).
        peer: the other participant of its first message.
        messages_in: how many messages were received in it.
        messages_out: how many were sent in it.
        updated_at: when its last message was recorded.
        shredded: whether its payload key was erased.
    """

    id: str
    created_at: datetime
    first_type: str
    peer: str
    messages_in: int
    messages_out: int
    updated_at: datetime
    shredded: bool


@dataclass(frozen=True)
class CaseRecord:
    """Where a case stands in its instrument's lifecycle (:mod:`broker.lifecycle`).

    Attributes:
        case_id: the case id.
        instrument: the catalogue type of the request that opened it.
        priority: the request's priority.
        requester: the participant that sent the request.
        requested: the participant it was sent to.
        state: the state machine's current state.
        events: how many lifecycle events are recorded (each change adds one; a
            change made against an older count is refused: optimistic locking).
        facts: facts of the case some deadline rules depend on (``data_kind`` …).
        overrides: case-level periods or dates by override key (ISO 8601 text).
        updated_at: when the last event was recorded.
    """

    case_id: str
    instrument: str
    priority: Priority
    requester: str
    requested: str
    state: str
    events: int
    facts: Mapping[str, str] = field(default_factory=dict)
    overrides: Mapping[str, str] = field(default_factory=dict)
    updated_at: datetime | None = None


@dataclass(frozen=True)
class StoredDeadline:
    """One deadline of a case as the store keeps it for the scheduler and the views.

    The fields mirror :class:`broker.lifecycle.Deadline`; ``next_reminder_at`` and
    ``escalated_at`` are the scheduler's progress (kept while ``due_at`` is unchanged).
    """

    case_id: str
    rule: str
    instrument: str
    step: str
    article: str
    owed_by: str
    priority: Priority
    escalation: str
    started_at: datetime
    due_at: datetime
    state: str
    met_at: datetime | None
    reminders: tuple[datetime, ...]
    next_reminder_at: datetime | None
    escalated_at: datetime | None = None


@dataclass(frozen=True)
class CaseChange:
    """One lifecycle event of a case, to be recorded with the message that caused it.

    Attributes:
        record: the case after the event (``events`` counts it).
        event: the lifecycle event, JSON-ready (codes, roles and times; no personal data).
        message_id: the message that carried it (None for the scheduler's lapses).
        deadlines: every deadline of the case after the event (rows for other rules
            are deleted).
    """

    record: CaseRecord
    event: Mapping[str, object]
    message_id: str | None
    deadlines: Sequence[StoredDeadline]


class Store(Protocol):
    """A node's persistent state. Every method is one transaction.

    Errors from the database driver are translated to
    :class:`~broker.errors.StoreError` (code ``E_STORE``).
    """

    async def migrate(self) -> int:
        """Apply pending schema migrations; return the schema version now in force."""
        ...

    async def close(self) -> None:
        """Close the connections."""
        ...

    # -- outbox -----------------------------------------------------------------------

    async def submit(
        self,
        message: OutboundMessage,
        form: bytes | None,
        events: Sequence[AuditEvent],
        case_change: CaseChange | None = None,
    ) -> None:
        """Insert an outbox row (state ``queued``), its case if new, and audit events.

        Args:
            message: the row to insert.
            form: the plaintext form (RFC 8785 bytes), stored encrypted under the case
                key; None for messages whose form need not be kept (receipts).
            events: audit events committed with the row.
            case_change: the case lifecycle change the message makes, if any.

        Raises:
            StoreError: a row with this id exists, the case changed meanwhile, or the
                database failed.
        """
        ...

    async def claim_due(
        self,
        now: datetime,
        limit: int,
        lease_seconds: float,
        *,
        priority: Priority | None = None,
    ) -> list[OutboundMessage]:
        """Return up to ``limit`` outbox rows to publish now, oldest and emergency first.

        A row is due when its state is ``queued`` or ``sent`` and ``next_attempt_at``
        is at or before ``now``. Claimed rows get ``next_attempt_at = now + lease``
        so that another worker (PostgreSQL: ``FOR UPDATE SKIP LOCKED``) or the next
        loop does not take them while they are being published. ``priority`` claims
        rows of that priority only (the node's emergency publisher).
        """
        ...

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
        """Set an outbox row's delivery state (and its receipt) with audit events.

        Args:
            message_id: the outbox row.
            state: the new state.
            attempts: the new publish count.
            next_attempt_at: when the publisher loop looks at it next (None: never).
            code: the rejection code or last error.
            events: audit events committed with the change.
            receipt: the receipt envelope received, if this change is a receipt's.
            expect_state: if given, only update when the row's current state is one of
                these (compare-and-set); return False and write nothing otherwise.

        Returns:
            Whether the row was updated.

        Raises:
            StoreError: no such row, or the database failed.
        """
        ...

    async def update_deliveries(self, updates: Sequence[DeliveryUpdate]) -> list[bool]:
        """Apply several :meth:`update_delivery` changes in one transaction.

        The publisher loop moves a whole round of rows at once: one commit instead of
        one per row. Each update is compared-and-set on its own.

        Returns:
            For each update, whether its row was updated.

        Raises:
            StoreError: a row does not exist, or the database failed (nothing is written).
        """
        ...

    async def get_outbound(self, message_id: str) -> OutboundMessage | None:
        """Return an outbox row by id."""
        ...

    async def list_outbound(
        self, *, state: DeliveryState | None = None, limit: int = 100
    ) -> list[OutboundMessage]:
        """Return outbox rows, newest first, optionally in one state (receipts included)."""
        ...

    async def wait_outbox(self, timeout: float) -> None:
        """Return when new outbox rows may be due, or after ``timeout`` seconds.

        PostgreSQL: LISTEN/NOTIFY; SQLite: a short poll of ``PRAGMA data_version``.
        """
        ...

    # -- inbox ------------------------------------------------------------------------

    async def record_inbound(
        self,
        message: InboundMessage,
        form: bytes | None,
        receipt: OutboundMessage | None,
        events: Sequence[AuditEvent],
        quarantine: QuarantineEntry | None = None,
        case_change: CaseChange | None = None,
    ) -> tuple[InboundMessage, bool]:
        """Record an authenticated inbound message, exactly once per message id.

        ``case_change`` (accepted messages of a case) is applied in the same
        transaction; a case changed meanwhile by another worker raises StoreError and
        nothing is written (the delivery is retried against the new history).

        In one transaction: the inbox row (unique on ``id``), its case if new, the
        encrypted form (accepted messages), the receipt as an outbox row (state
        ``queued``), the quarantine entry (rejected messages) and the audit events.

        Returns:
            ``(row, True)`` when this call inserted the row; ``(existing, False)`` when
            the id was already stored — then nothing at all was written (the caller
            compares digests: same → re-send the existing receipt, other → E_REPLAY).
        """
        ...

    async def get_inbound(self, message_id: str) -> InboundMessage | None:
        """Return an inbox row by id."""
        ...

    async def list_inbound(
        self, *, status: InboundStatus | None = None, limit: int = 100
    ) -> list[InboundMessage]:
        """Return inbox rows, newest first."""
        ...

    async def requeue(self, message_id: str, now: datetime, events: Sequence[AuditEvent]) -> None:
        """Make an outbox row due again now (re-send the same bytes), keeping its state.

        Used to re-send a stored receipt when a duplicate arrives. A ``failed`` row
        becomes ``queued`` with ``attempts`` reset (operator retry).
        """
        ...

    # -- forms and cases ----------------------------------------------------------------

    async def read_form(self, direction: Direction, message_id: str) -> bytes | None:
        """Return the decrypted form of a message.

        None if no form is stored for it, or its case was shredded.
        """
        ...

    async def list_cases(self, *, limit: int = 100) -> list[CaseSummary]:
        """Return cases, most recently updated first."""
        ...

    # -- case lifecycles and deadlines ----------------------------------------------------

    async def get_case(self, case_id: str) -> tuple[CaseRecord, list[dict[str, object]]] | None:
        """Return a case's lifecycle record and its events (oldest first), or None."""
        ...

    async def record_case_change(self, change: CaseChange, events: Sequence[AuditEvent]) -> None:
        """Record a lifecycle event that no message carries (the scheduler's lapses).

        Raises:
            StoreError: the case changed meanwhile (``record.events`` is not one more
                than the stored count), or the database failed.
        """
        ...

    async def list_case_records(
        self,
        *,
        state: str | None = None,
        instrument: str | None = None,
        due_before: datetime | None = None,
        limit: int = 100,
    ) -> list[CaseRecord]:
        """Return case lifecycles, most recently updated first.

        ``due_before`` keeps cases with a pending deadline due before that time.
        """
        ...

    async def list_deadlines(
        self, *, case_id: str | None = None, pending_only: bool = True, limit: int = 1000
    ) -> list[StoredDeadline]:
        """Return deadlines, emergency first, then by due time."""
        ...

    async def audit_head(self) -> tuple[int, bytes]:
        """Return the audit log's tree size and saved tree state (see broker.audit.merkle)."""
        ...

    async def audit_leaves(self, *, start: int, limit: int) -> list[tuple[int, AuditEvent, bytes]]:
        """Return up to ``limit`` log records from leaf ``start`` on: index, record, leaf hash."""
        ...

    async def audit_leaf_hashes(self, *, start: int, limit: int) -> list[bytes]:
        """Return the leaf hashes from leaf ``start`` on, in leaf order (no records)."""
        ...

    async def add_checkpoint(self, size: int, note: bytes) -> bool:
        """Keep a signed checkpoint of the log at ``size``; False if one was kept already."""
        ...

    async def list_checkpoints(
        self, *, newest_first: bool = False, limit: int = 100_000
    ) -> list[tuple[int, bytes]]:
        """Return the kept checkpoints (size, signed note), oldest (or newest) first."""
        ...

    async def list_cosignatures(self) -> list[tuple[str, int, bytes]]:
        """Return every kept cosignature of this node's checkpoints: (witness, size, line).

        In tree-size order, then witness order.
        """
        ...

    async def record_witness_answer(
        self,
        witness: str,
        known_size: int,
        cosignature: tuple[int, bytes] | None,
        events: Sequence[AuditEvent],
    ) -> None:
        """Keep a witness's answer: its cosignature (size, line) if any, and what it knows.

        ``known_size`` becomes the witness's known size of this log (the next
        consistency proof sent to it starts there).
        """
        ...

    async def witness_sizes(self) -> dict[str, int]:
        """Return each witness's known size of this node's log."""
        ...

    async def peer_checkpoint(
        self, peer: str, size: int | None = None
    ) -> tuple[int, bytes, bytes] | None:
        """Return a peer's checkpoint this node cosigned: (size, root, note).

        The one of ``size``, or the largest when ``size`` is None; None if none is kept.
        """
        ...

    async def add_peer_checkpoint(
        self, peer: str, size: int, root: bytes, note: bytes, events: Sequence[AuditEvent]
    ) -> bytes | None:
        """Keep a peer's verified checkpoint, with audit; return the root kept before.

        Returns:
            None if it was new; else the root already kept for this peer and size
            (a different one is a fork: nothing is written).
        """
        ...

    async def audit_cursor(self, name: str) -> int:
        """Return the position of a named pass over the log (0 if it never ran)."""
        ...

    async def set_audit_cursor(self, name: str, position: int) -> None:
        """Move a named pass over the log to ``position``."""
        ...

    async def case_histories(
        self, *, after: str | None, limit: int
    ) -> list[tuple[CaseRecord, list[dict[str, object]]]]:
        """Return up to ``limit`` cases with ids after ``after`` (in id order), with events.

        Pages through every case (e.g. to recompute every deadline after a restart).
        """
        ...

    async def due_deadlines(self, now: datetime, limit: int) -> list[StoredDeadline]:
        """Return pending deadlines whose reminder or escalation is due at ``now``."""
        ...

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
        ...

    async def case_messages(
        self, case_id: str
    ) -> tuple[list[InboundMessage], list[OutboundMessage]]:
        """Return every message of a case, oldest first."""
        ...

    async def shred_case(self, case_id: str, events: Sequence[AuditEvent]) -> None:
        """Erase a case's payload key and stored forms (crypto-shredding), with audit.

        The message rows, their digests and the audit trail stay; the forms can no
        longer be read (:meth:`read_form` returns None).
        """
        ...

    # -- quarantine ---------------------------------------------------------------------

    async def quarantine(self, entry: QuarantineEntry, events: Sequence[AuditEvent]) -> None:
        """Keep a refused delivery (with ``entry.raw``) and its audit events."""
        ...

    async def list_quarantine(
        self, *, state: QuarantineState | None = None, limit: int = 100
    ) -> list[QuarantineEntry]:
        """Return quarantine entries without raw bytes, newest first."""
        ...

    async def get_quarantine(self, entry_id: str) -> QuarantineEntry | None:
        """Return one entry with its raw bytes (None after a purge)."""
        ...

    async def set_quarantine_state(
        self,
        entry_id: str,
        state: QuarantineState,
        events: Sequence[AuditEvent],
    ) -> None:
        """Change an entry's state (``purged`` also erases its raw bytes), with audit.

        Raises:
            StoreError: no such entry, or a transition from ``purged``.
        """
        ...

    async def claim_released(self, limit: int) -> list[QuarantineEntry]:
        """Return released entries (with raw bytes) and mark them ``reprocessed``."""
        ...

    # -- audit --------------------------------------------------------------------------

    async def audit(self, events: Sequence[AuditEvent]) -> None:
        """Append audit events on their own."""
        ...

    async def list_audit(
        self,
        *,
        message_id: str | None = None,
        case_id: str | None = None,
        limit: int = 1000,
    ) -> list[tuple[int, AuditEvent]]:
        """Return audit events with their sequence numbers, in order."""
        ...
