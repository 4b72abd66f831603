"""Witnessing rules: what a witness checks before it cosigns, what a sender checks in a proof.

Pure: no store, no network. The node side is :mod:`broker.witnessing`.

A witness keeps, per peer log, every checkpoint it cosigned. A new checkpoint of size
``n`` from that peer is cosigned only if (:func:`check_peer_checkpoint`):

1. it is signed by one of the peer's signing keys, for the peer's own origin
   (``evb/<peer>``) — else ``E_AUDIT_SIG``;
2. a kept checkpoint of the same size has the same root — else ``E_AUDIT_FORK``
   (two signed roots for one size: proof that the peer rewrote its log);
3. it is not older than the largest kept one (a stale checkpoint could only be
   checked with a proof the other way) — else ``E_AUDIT_PROOF``;
4. its consistency proof starts at the largest kept size (``from_size``) — else
   ``E_AUDIT_PROOF`` with the size the witness knows, so the peer can send the
   right proof next time;
5. the proof joins the kept checkpoint to the new one — else ``E_AUDIT_FORK``: an
   honest log can always prove that it only grew (fail closed, as
   :func:`~broker.audit.checkpoint.check_fork`).

The first checkpoint a witness sees of a log needs no proof (trust on first use,
as in C2SP witnessing); everything after it must extend it.

A receipt's proof (:func:`check_receipt_proof`) ties the receiver's signed checkpoint
to the receiver's log entry for the sender's message.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from cryptography.hazmat.primitives.asymmetric import ed25519

from broker.audit.checkpoint import Checkpoint, check_fork, open_checkpoint, origin_for
from broker.audit.entry import AuditEntry, entry_leaf_hash, parse_entry
from broker.audit.merkle import verify_inclusion
from broker.errors import AuditBundle, AuditProof, AuditSignature

__all__ = [
    "KeptCheckpoint",
    "PeerCheckpoint",
    "channel_case",
    "check_peer_checkpoint",
    "check_receipt_proof",
    "decode_hashes",
]

_HEX_HASH = re.compile(r"[0-9a-f]{64}")
_B64_LENGTH = 44
#: The log event a receipt's proof must point at.
RECEIVED_EVENT = "message.received"


@dataclass(frozen=True)
class KeptCheckpoint:
    """A checkpoint of a peer's log the witness cosigned before: its size and root."""

    size: int
    root: bytes


@dataclass(frozen=True)
class PeerCheckpoint:
    """A peer's checkpoint that passed the witness's checks.

    Attributes:
        checkpoint: the verified checkpoint.
        seen: it was cosigned before (same size and root): cosign again, keep nothing new.
    """

    checkpoint: Checkpoint
    seen: bool


def channel_case(origin: str, witness: str) -> str:
    """Return the case id the audit messages between a log and one witness travel in.

    A stable UUID (version 8, RFC 9562 §5.8) derived from both participant ids, so
    that witnessing adds one case per pair, not one per checkpoint.
    """
    digest = hashlib.sha256(f"evb/1 audit witness\n{origin}\n{witness}".encode()).digest()
    raw = bytearray(digest[:16])
    raw[6] = (raw[6] & 0x0F) | 0x80
    raw[8] = (raw[8] & 0x3F) | 0x80
    return str(uuid.UUID(bytes=bytes(raw)))


def decode_hashes(hashes: Sequence[str]) -> list[bytes]:
    """Decode a proof's hashes (64 lower-case hex digits each).

    Raises:
        AuditProof: a hash is not 64 lower-case hex digits.
    """
    decoded = []
    for text in hashes:
        # fullmatch, not bytes.fromhex alone: fromhex skips whitespace.
        if not (isinstance(text, str) and _HEX_HASH.fullmatch(text)):
            raise AuditProof("a proof hash is not 64 lower-case hex digits")
        decoded.append(bytes.fromhex(text))
    return decoded


def _path_hashes(hashes: Sequence[str]) -> list[bytes]:
    """Decode a receipt's audit path: all hex, or all canonical padded base64.

    Raises:
        AuditProof: a hash in neither form (or not 32 bytes, or not canonical).
    """
    if not all(isinstance(h, str) and len(h) == _B64_LENGTH for h in hashes):
        return decode_hashes(hashes)
    decoded = []
    for text in hashes:
        try:
            raw = base64.b64decode(text, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise AuditProof("a proof hash is neither hex nor base64") from exc
        if len(raw) != 32 or base64.b64encode(raw).decode("ascii") != text:
            raise AuditProof("a proof hash is not 32 bytes of canonical base64")
        decoded.append(raw)
    return decoded


def check_peer_checkpoint(
    note: bytes,
    *,
    peer: str,
    verifiers: Mapping[str, ed25519.Ed25519PublicKey],
    from_size: int,
    proof: Sequence[bytes],
    latest: KeptCheckpoint | None,
    same_size: KeptCheckpoint | None,
) -> PeerCheckpoint:
    """Check a peer's checkpoint before cosigning it (the rules of the module docstring).

    Args:
        note: the signed checkpoint note.
        peer: the sender, whose log it must be.
        verifiers: the peer's signing keys (key id → public key).
        from_size: the size the proof starts at.
        proof: the consistency proof from ``from_size`` to the checkpoint's size.
        latest: the largest checkpoint of this log the witness cosigned, if any.
        same_size: the kept checkpoint of the note's size, if any.

    Raises:
        AuditSignature: not signed by the peer's key for its origin (rule 1).
        AuditBundle: the note is not a checkpoint note (rule 1).
        AuditFork: a second root for a size, or a proof that does not join (rules 2, 5).
        AuditProof: stale, or the proof starts elsewhere (rules 3, 4).
    """
    # 1. Signed by the peer, for the peer's log.
    checkpoint = open_checkpoint(note, verifiers, origin=origin_for(peer))
    # 2. One root per size.
    if same_size is not None:
        check_fork(Checkpoint(checkpoint.origin, same_size.size, same_size.root), checkpoint, ())
        # 3. A cosignature says "the largest consistent tree seen": never an old one again.
        if latest is not None and checkpoint.size < latest.size:
            raise AuditProof(
                f"the checkpoint ({checkpoint.size}) is older than the one verified ({latest.size})"
            )
        return PeerCheckpoint(checkpoint, seen=True)
    if latest is None:
        # First sight: nothing to be consistent with.
        if from_size != 0:
            raise AuditProof("this witness holds no checkpoint of the log: prove from size 0")
        return PeerCheckpoint(checkpoint, seen=False)
    # 3. Never backwards.
    if checkpoint.size < latest.size:
        raise AuditProof(
            f"the checkpoint ({checkpoint.size}) is older than the one verified ({latest.size})"
        )
    # 4. From what the witness knows.
    if from_size != latest.size:
        raise AuditProof(
            f"the proof starts at {from_size}; this witness verified size {latest.size}"
        )
    # 5. The log only grew.
    check_fork(Checkpoint(checkpoint.origin, latest.size, latest.root), checkpoint, proof)
    return PeerCheckpoint(checkpoint, seen=False)


def check_receipt_proof(
    *,
    receiver: str,
    sender: str,
    message_id: str,
    envelope_digest: str,
    entry: str | None,
    leaf_index: int,
    tree_size: int,
    hashes: Sequence[str],
    checkpoint: str,
    verifiers: Mapping[str, ed25519.Ed25519PublicKey],
) -> tuple[AuditEntry, Checkpoint]:
    """Check that the receiver's signed log holds its record of the sender's message.

    Args:
        receiver: who sent the receipt (whose log it is).
        sender: this node (the message's sender, the entry's peer).
        message_id: the receipted message.
        envelope_digest: its envelope digest, as this node sent it.
        entry: the proof's log entry (RFC 8785 JSON text).
        leaf_index: the entry's index in the receiver's log.
        tree_size: the size of the tree the proof is for.
        hashes: the inclusion proof (hex).
        checkpoint: the receiver's signed checkpoint of that tree.
        verifiers: the receiver's signing keys (key id → public key).

    Returns:
        the receiver's entry and its verified checkpoint.

    Raises:
        AuditSignature: the checkpoint is not the receiver's, signed.
        AuditProof: no entry, an entry about something else, a checkpoint of another
            size, or an inclusion proof that does not lead to its root.
    """
    # 1. The receiver's signed checkpoint of the size the proof is for.
    try:
        signed = open_checkpoint(checkpoint.encode(), verifiers, origin=origin_for(receiver))
    except AuditBundle as exc:
        raise AuditSignature(f"the receipt's checkpoint is not a signed note: {exc}") from exc
    if signed.size != tree_size:
        raise AuditProof("the receipt's proof is for another tree size than its checkpoint")
    # 2. The entry: the receiver's record of receiving exactly this message from us.
    if entry is None:
        raise AuditProof("the receipt's proof holds no log entry")
    try:
        parsed = parse_entry(entry.encode())
    except AuditBundle as exc:
        raise AuditProof(f"the receipt's log entry is malformed: {exc}") from exc
    if (
        parsed.index != leaf_index
        or parsed.event != RECEIVED_EVENT
        or parsed.message_id != message_id
        or parsed.peer != sender
        or parsed.details.get("digest") != envelope_digest
    ):
        raise AuditProof("the receipt's log entry is not the record of this message")
    # 3. The entry is leaf leaf_index of the signed tree.
    verify_inclusion(
        entry_leaf_hash(parsed), leaf_index, tree_size, _path_hashes(hashes), signed.root_hash
    )
    return parsed, signed
