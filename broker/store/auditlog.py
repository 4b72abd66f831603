"""The audit table as a Merkle log: each record a leaf, the tree head kept with it.

Both backends call :func:`append` inside the transaction that writes the records: it
turns each :class:`~broker.store.base.AuditEvent` into its :class:`~broker.audit.entry.
AuditEntry` (leaf index = the tree's size), hashes the entry's RFC 8785 bytes
(RFC 9162 leaf hash) and advances the tree's frontier. The caller stores each record
with its index and leaf hash and saves the new tree state in the same transaction,
after locking the tree head (SQLite: the write lock of ``BEGIN IMMEDIATE``;
PostgreSQL: ``SELECT … FOR UPDATE`` on the one ``audit_tree`` row), so the log has one
order however many workers write. Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

from broker.audit.entry import AuditEntry, entry_bytes
from broker.audit.merkle import MerkleTree, TreeState, leaf_hash
from broker.errors import StoreError
from broker.store.base import AuditEvent

__all__ = ["EMPTY_STATE", "FORM_EVENTS", "Appended", "append", "entry_of", "with_form_digest"]

#: The saved state of an empty tree (size 0, no frontier).
EMPTY_STATE = TreeState(0, ()).to_bytes()


@dataclass(frozen=True)
class Appended:
    """The leaves appended for some records, and the tree state after them."""

    leaves: list[tuple[int, bytes]]
    state: bytes
    size: int


#: The records that carry the keyed digest of their message's form (``digests.form``).
FORM_EVENTS = frozenset({"message.received", "message.submitted"})


def with_form_digest(
    events: Sequence[AuditEvent], message_id: str, digest: str | None
) -> Sequence[AuditEvent]:
    """Return ``events`` with the form's keyed digest on the message's own record.

    The store computes the digest (:meth:`~broker.store.atrest.CaseKey.audit_digest`)
    in the transaction that encrypts the form: the plaintext and the case key never
    leave it. Other records are returned unchanged.
    """
    if digest is None:
        return events
    return [
        replace(e, digests={**e.digests, "form": digest})
        if e.message_id == message_id and e.event in FORM_EVENTS
        else e
        for e in events
    ]


def entry_of(index: int, event: AuditEvent) -> AuditEntry:
    """Return the log entry of a record at leaf ``index``.

    Raises:
        StoreError: the record breaks the entry rules (a programming error upstream:
            e.g. a detail too long to log, a malformed code or peer).
    """
    try:
        return AuditEntry.from_event(index, event, event.digests)
    except ValueError as exc:
        raise StoreError(f"audit record {event.event!r} cannot be logged: {exc}") from exc


def append(state: bytes, events: Sequence[AuditEvent]) -> Appended:
    """Append ``events`` to the tree saved as ``state``; return their leaves and the new state."""
    tree = MerkleTree.from_state(TreeState.from_bytes(state))
    leaves = []
    for event in events:
        index = tree.size
        digest = leaf_hash(entry_bytes(entry_of(index, event)))
        tree.append(digest)
        leaves.append((index, digest))
    return Appended(leaves, tree.to_state().to_bytes(), tree.size)
