"""The audit log's pure core: entries, the Merkle tree and proofs, signed checkpoints.

No I/O here (the store keeps entries and tree state; the node exchanges checkpoints):

* :mod:`broker.audit.entry` — what an audit record says and the bytes that are hashed.
* :mod:`broker.audit.merkle` — RFC 9162 hashing, the incremental tree, proofs.
* :mod:`broker.audit.checkpoint` — signed notes, checkpoints, cosignatures, forks.

And the auditor's side, over an exported bundle directory (no node, no database):

* :mod:`broker.audit.bundle` — the bundle format, writing one, verifying one.
* :mod:`broker.audit.replay` — every case rebuilt from the entries alone.
* :mod:`broker.audit.report` — compliance figures, as JSON, CSV and HTML.
"""

from __future__ import annotations

from broker.audit.bundle import (
    BundleMeta,
    BundleReport,
    case_proofs,
    read_bundle_entries,
    verify_and_read,
    verify_bundle,
    write_bundle,
)
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
from broker.audit.replay import (
    CaseReplay,
    DeadlineFact,
    MessageFact,
    RefusalFact,
    Replay,
    replay,
)
from broker.audit.report import Report, compliance_report, to_csv, to_html, to_json

__all__ = [
    "EMPTY_ROOT",
    "AuditEntry",
    "BundleMeta",
    "BundleReport",
    "CaseReplay",
    "Checkpoint",
    "DeadlineFact",
    "InvalidNoteSignature",
    "MerkleLevels",
    "MerkleTree",
    "MessageFact",
    "Note",
    "NoteSignature",
    "RefusalFact",
    "Replay",
    "Report",
    "TreeState",
    "UnverifiedNote",
    "add_signatures",
    "case_proofs",
    "check_fork",
    "compliance_report",
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
    "read_bundle_entries",
    "replay",
    "root_from_leaf_hashes",
    "sign_checkpoint",
    "to_csv",
    "to_html",
    "to_json",
    "verify_and_read",
    "verify_bundle",
    "verify_consistency",
    "verify_cosignature",
    "verify_cosignatures",
    "verify_inclusion",
    "write_bundle",
]
