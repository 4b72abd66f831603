"""The audit log's pure core: entries, the Merkle tree and proofs, signed checkpoints.

No I/O here (the store keeps entries and tree state; the node exchanges checkpoints):

* :mod:`broker.audit.entry` — what an audit record says and the bytes that are hashed.
* :mod:`broker.audit.merkle` — RFC 9162 hashing, the incremental tree, proofs.
* :mod:`broker.audit.checkpoint` — signed notes, checkpoints, cosignatures, forks.
"""

from __future__ import annotations

from broker.audit.checkpoint import (
    Checkpoint,
    InvalidNoteSignature,
    Note,
    NoteSignature,
    UnverifiedNote,
    add_signatures,
    check_fork,
    cosign,
    open_checkpoint,
    open_note,
    origin_for,
    parse_note,
    sign_checkpoint,
    verify_cosignature,
    verify_cosignatures,
)
from broker.audit.entry import (
    AuditEntry,
    entry_bytes,
    entry_leaf_hash,
    keyed_digest,
    parse_entry,
)
from broker.audit.merkle import (
    EMPTY_ROOT,
    MerkleLevels,
    MerkleTree,
    TreeState,
    consistency_proof,
    inclusion_proof,
    leaf_hash,
    node_hash,
    root_from_leaf_hashes,
    verify_consistency,
    verify_inclusion,
)

__all__ = [
    "EMPTY_ROOT",
    "AuditEntry",
    "Checkpoint",
    "InvalidNoteSignature",
    "MerkleLevels",
    "MerkleTree",
    "Note",
    "NoteSignature",
    "TreeState",
    "UnverifiedNote",
    "add_signatures",
    "check_fork",
    "consistency_proof",
    "cosign",
    "entry_bytes",
    "entry_leaf_hash",
    "inclusion_proof",
    "keyed_digest",
    "leaf_hash",
    "node_hash",
    "open_checkpoint",
    "open_note",
    "origin_for",
    "parse_entry",
    "parse_note",
    "root_from_leaf_hashes",
    "sign_checkpoint",
    "verify_consistency",
    "verify_cosignature",
    "verify_cosignatures",
    "verify_inclusion",
]
