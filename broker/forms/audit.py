"""Witnessing of the audit log: a node's checkpoint to a peer, and the peer's answer.

Issue #7 item 4: every node sends its signed checkpoints (c2sp.org/tlog-checkpoint)
to its peers, each with the RFC 9162 consistency proof from the last tree size that
peer verified; the peer, acting as a witness, checks the proof and answers with a
cosignature (c2sp.org/tlog-cosignature) or a refusal. Both travel as catalogue types:

* ``audit.checkpoint`` (:class:`AuditCheckpoint`), node → witness;
* ``audit.cosignature`` (:class:`AuditCosignature`), witness → node, in an envelope
  whose ``in_reply_to`` is the checkpoint message's id.

This module owns their *shape* and the rules one document obeys on its own. What
needs the trust directory or the witness's state is the node's job: that the
checkpoint's signature verifies under the sender's keys and its origin is the
sender's log (:func:`broker.audit.checkpoint.open_checkpoint`), that the proof joins
the witness's last verified tree (:func:`broker.audit.checkpoint.check_fork`), and
that a cosignature verifies (:func:`broker.audit.checkpoint.verify_cosignature`).

Rules beyond the schema (``E_SEMANTIC``), each reported at the offending member:

``audit.checkpoint``

* ``checkpoint`` is at most 8192 bytes of UTF-8 and a signed note whose text is a
  checkpoint (:func:`broker.audit.checkpoint.parse_note`, then
  :meth:`~broker.audit.checkpoint.Checkpoint.from_body`: strict syntax, at least one
  signature line; no signature is verified);
* its origin is ``evb/<participant id>``;
* its tree size is between 1 and 2**53 - 1 (an empty log has nothing to witness,
  and the answer must be able to name the size in JSON);
* ``proof.from_size`` is at most that size;
* ``proof.hashes`` is empty when ``from_size`` is 0 or the size, and not otherwise.

``audit.cosignature``

* ``cosignature`` is one signature line that the signed-note parser accepts (valid
  key name, canonical base64) carrying a key id, an 8-byte timestamp and an Ed25519
  signature (c2sp.org/tlog-cosignature v1);
* a cosigned answer has ``known_size >= tree_size``.

Schema rules the cosignature model re-checks (``E_SCHEMA``): ``cosignature`` is
present exactly when the outcome is ``cosigned``, ``code`` exactly when it is
``refused``; ``reason`` only with ``refused``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Annotated, ClassVar, Literal, Self, TypeVar

from pydantic import Field, PrivateAttr, StringConstraints, model_validator

from broker.audit.checkpoint import (
    ORIGIN_PREFIX,
    Checkpoint,
    Note,
    NoteSignature,
    parse_note,
)
from broker.errors import AuditBundle, Problem, SchemaError
from broker.forms.base import (
    Form,
    Model,
    ShortText,
    build_form,
    not_allowed_error,
    required_error,
    semantic_error,
)
from broker.forms.receipt import MAX_CHECKPOINT_BYTES, ErrorCode
from broker.ids import is_participant_id

__all__ = [
    "FORMS",
    "MAX_CONSISTENCY_HASHES",
    "MAX_COSIGNATURE_CHARS",
    "AuditCheckpoint",
    "AuditCosignature",
    "ConsistencyProof",
    "CosignOutcome",
]

CosignOutcome = Literal["cosigned", "refused"]
#: A SHA-256 hash as 64 lower-case hex digits.
HexHash = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{64}$")]
#: The log of participant ``P`` is ``evb/P`` (:func:`broker.audit.checkpoint.origin_for`).
Origin = Annotated[str, StringConstraints(pattern=r"^evb/[A-Z]{2,3}\.[A-Za-z0-9_-]{1,32}$")]

#: Most hashes a consistency proof may hold (RFC 9162: about two per tree level).
MAX_CONSISTENCY_HASHES = 64
#: Longest cosignature line, in characters.
MAX_COSIGNATURE_CHARS = 4096
_MAX_SAFE_INTEGER = 2**53 - 1
_Size = Annotated[int, Field(ge=0, le=_MAX_SAFE_INTEGER)]
#: One signature line, newline included; the signed-note parser checks the rest.
CosignatureLine = Annotated[
    str,
    StringConstraints(
        max_length=MAX_COSIGNATURE_CHARS,
        pattern="^\u2014 [^ \\n]+ [A-Za-z0-9+/]+={0,2}\\n$",
    ),
]
# c2sp.org/tlog-cosignature v1: after the 4-byte key id, an 8-byte big-endian
# timestamp and a 64-byte Ed25519 signature.
_COSIGNATURE_PAYLOAD = 8 + 64
_MAX_TIMESTAMP = 2**63 - 1
# parse_note reads signature lines only inside a note: a one-line text around the
# cosignature lets the same strict parser judge it.
_PLACEHOLDER_TEXT = b"cosignature\n\n"

_F = TypeVar("_F", bound=Form)


class ConsistencyProof(Model):
    """An RFC 9162 consistency proof from the witness's last verified tree size.

    Attributes:
        from_size: the tree size the witness last verified (0: none yet).
        hashes: the proof from ``from_size`` to the checkpoint's size, as lower-case
            hex; empty when ``from_size`` is 0 or equals that size.
    """

    from_size: _Size
    hashes: Annotated[tuple[HexHash, ...], Field(max_length=MAX_CONSISTENCY_HASHES)]

    @model_validator(mode="after")
    def _empty_from_nothing(self) -> Self:
        if self.from_size == 0 and self.hashes:
            raise semantic_error("a proof from the empty tree is empty", "hashes")
        return self

    def hash_bytes(self) -> tuple[bytes, ...]:
        """Return the hashes as bytes (for :func:`broker.audit.merkle.verify_consistency`)."""
        return tuple(bytes.fromhex(value) for value in self.hashes)


class AuditCheckpoint(Form):
    """A node's signed checkpoint, sent to a witness with a consistency proof.

    Build one with :meth:`build`. The witness reads the checkpoint with
    :meth:`parsed` (syntax only: it must still open it under the sender's keys).
    """

    form_type: ClassVar[str] = "audit.checkpoint"

    checkpoint: Annotated[str, StringConstraints(min_length=1, max_length=MAX_CHECKPOINT_BYTES)]
    proof: ConsistencyProof

    _note: Note = PrivateAttr()
    _tree_head: Checkpoint = PrivateAttr()

    @model_validator(mode="after")
    def _a_checkpoint(self) -> Self:
        # 1. Bounded in bytes, as msg.receipt's proof.checkpoint (the schema counts
        #    characters; the em dash of every signature line is three bytes).
        data = self.checkpoint.encode("utf-8")
        if len(data) > MAX_CHECKPOINT_BYTES:
            raise semantic_error(
                f"the checkpoint is longer than {MAX_CHECKPOINT_BYTES} bytes of UTF-8",
                "checkpoint",
            )
        # 2. A signed note whose text is a checkpoint (no signature is verified here).
        try:
            note = parse_note(data)
            tree_head = Checkpoint.from_body(note.text)
        except AuditBundle as exc:
            raise semantic_error(f"not a signed checkpoint: {exc.message}", "checkpoint") from None
        # 3. Of a participant's log, with a size a witness can answer about.
        participant = tree_head.origin.removeprefix(ORIGIN_PREFIX)
        if participant == tree_head.origin or not is_participant_id(participant):
            raise semantic_error("the checkpoint origin is not evb/<participant id>", "checkpoint")
        if not 1 <= tree_head.size <= _MAX_SAFE_INTEGER:
            raise semantic_error(
                "the checkpoint tree size is not between 1 and 2**53 - 1", "checkpoint"
            )
        # 4. The proof leads from a size at most the checkpoint's, and is empty
        #    exactly when there is nothing to prove.
        from_size = self.proof.from_size
        if from_size > tree_head.size:
            raise semantic_error(
                "from_size is larger than the checkpoint's tree size", "proof", "from_size"
            )
        if from_size == tree_head.size and self.proof.hashes:
            raise semantic_error(
                "a proof between trees of the same size is empty", "proof", "hashes"
            )
        if 0 < from_size < tree_head.size and not self.proof.hashes:
            raise semantic_error(
                "a proof from a smaller non-empty tree is not empty", "proof", "hashes"
            )
        self._note = note
        self._tree_head = tree_head
        return self

    def parsed(self) -> tuple[Checkpoint, Note]:
        """Return the checkpoint and the signed note it came in (neither verified)."""
        return self._tree_head, self._note

    def note_bytes(self) -> bytes:
        """Return the signed note as bytes, for :func:`broker.audit.checkpoint.open_checkpoint`."""
        return self.checkpoint.encode("utf-8")

    @property
    def participant(self) -> str:
        """The participant id whose log this is, from the (unverified) origin."""
        return self._tree_head.origin.removeprefix(ORIGIN_PREFIX)

    @classmethod
    def build(cls, note: bytes, *, from_size: int, proof: Sequence[bytes]) -> Self:
        """Build the message a node sends a witness.

        Args:
            note: the signed checkpoint (:func:`broker.audit.checkpoint.sign_checkpoint`).
            from_size: the tree size the witness last verified (0: none).
            proof: the consistency proof from ``from_size`` to the checkpoint's size
                (:meth:`broker.audit.merkle.MerkleLevels.consistency_proof`).

        Raises:
            SchemaError: a value does not fit, with every problem and its pointer.
        """
        try:
            text = note.decode("utf-8")
        except UnicodeDecodeError as exc:
            problem = Problem("/checkpoint", "E_SCHEMA", "the checkpoint is not UTF-8")
            raise SchemaError(
                "the audit.checkpoint document does not match its schema", (problem,)
            ) from exc
        data = {
            "checkpoint": text,
            "proof": {"from_size": from_size, "hashes": tuple(h.hex() for h in proof)},
        }
        return _build(cls, data)


class AuditCosignature(Form):
    """A witness's answer to an ``audit.checkpoint``: a cosignature or a refusal.

    Build one with :meth:`cosigned` or :meth:`refused`; the witness puts it in an
    envelope addressed to the log's node, with ``in_reply_to`` = the checkpoint
    message's id.
    """

    form_type: ClassVar[str] = "audit.cosignature"

    origin: Origin
    tree_size: Annotated[int, Field(ge=1, le=_MAX_SAFE_INTEGER)]
    root_hash: HexHash
    outcome: CosignOutcome
    cosignature: CosignatureLine | None = None
    code: ErrorCode | None = None
    known_size: _Size
    reason: ShortText | None = None

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        # 1. The schema's conditional members (E_SCHEMA, like the schema reports them).
        if self.outcome == "refused":
            if self.code is None:
                raise required_error("code", when="the outcome is refused")
            if self.cosignature is not None:
                raise not_allowed_error("cosignature", unless="the outcome is cosigned")
            return self
        if self.cosignature is None:
            raise required_error("cosignature", when="the outcome is cosigned")
        if self.code is not None:
            raise not_allowed_error("code", unless="the outcome is refused")
        if self.reason is not None:
            raise not_allowed_error("reason", unless="the outcome is refused")
        # 2. A cosignature line as c2sp.org/tlog-cosignature v1 writes it.
        try:
            (line,) = parse_note(_PLACEHOLDER_TEXT + self.cosignature.encode("utf-8")).signatures
        except AuditBundle as exc:
            raise semantic_error(f"not a signature line: {exc.message}", "cosignature") from None
        if not _is_cosignature_v1(line):
            raise semantic_error(
                "not a key id, an 8-byte timestamp and an Ed25519 signature", "cosignature"
            )
        # 3. Having cosigned the tree, the witness has verified at least that size.
        if self.known_size < self.tree_size:
            raise semantic_error("a witness that cosigned knows at least tree_size", "known_size")
        return self

    def signature_line(self) -> bytes:
        """Return the cosignature line as bytes (for ``add_signatures``, ``verify_cosignature``).

        Raises:
            ValueError: the answer is a refusal.
        """
        if self.cosignature is None:
            raise ValueError("a refusal carries no cosignature")
        return self.cosignature.encode("utf-8")

    def root_hash_bytes(self) -> bytes:
        """Return the root hash as its 32 bytes."""
        return bytes.fromhex(self.root_hash)

    @property
    def participant(self) -> str:
        """The participant id whose log the answer is about."""
        return self.origin.removeprefix(ORIGIN_PREFIX)

    def is_about(self, checkpoint: Checkpoint) -> bool:
        """Whether the answer names this checkpoint (origin, size and root hash)."""
        return (self.origin, self.tree_size, self.root_hash_bytes()) == (
            checkpoint.origin,
            checkpoint.size,
            checkpoint.root_hash,
        )

    @classmethod
    def cosigned(cls, checkpoint: Checkpoint, *, cosignature: bytes, known_size: int) -> Self:
        """Build a positive answer.

        Args:
            checkpoint: the checkpoint cosigned (opened and checked by the witness).
            cosignature: the line :func:`broker.audit.checkpoint.cosign` returned.
            known_size: the largest tree size of this log the witness has verified.

        Raises:
            SchemaError: a value does not fit, with every problem and its pointer.
        """
        try:
            line = cosignature.decode("utf-8")
        except UnicodeDecodeError as exc:
            problem = Problem("/cosignature", "E_SCHEMA", "the cosignature is not UTF-8")
            raise SchemaError(
                "the audit.cosignature document does not match its schema", (problem,)
            ) from exc
        return _build(
            cls,
            {
                **_about(checkpoint),
                "outcome": "cosigned",
                "cosignature": line,
                "known_size": known_size,
            },
        )

    @classmethod
    def refused(
        cls, checkpoint: Checkpoint, *, code: str, known_size: int, reason: str | None = None
    ) -> Self:
        """Build a refusal carrying the stable error code of the failed check.

        Args:
            checkpoint: the checkpoint refused.
            code: the error code (``E_AUDIT_FORK``, ``E_AUDIT_PROOF``, ``E_AUDIT_SIG`` …).
            known_size: the largest tree size of this log the witness has verified,
                from which the node's next proof must start.
            reason: a short text for people; never a value taken from the message.

        Raises:
            SchemaError: as :meth:`cosigned`.
        """
        data = {**_about(checkpoint), "outcome": "refused", "code": code, "known_size": known_size}
        if reason is not None:
            data["reason"] = reason
        return _build(cls, data)


def _is_cosignature_v1(line: NoteSignature) -> bool:
    if len(line.signature) != _COSIGNATURE_PAYLOAD:
        return False
    return int.from_bytes(line.signature[:8], "big") <= _MAX_TIMESTAMP


def _about(checkpoint: Checkpoint) -> dict[str, object]:
    return {
        "origin": checkpoint.origin,
        "tree_size": checkpoint.size,
        "root_hash": checkpoint.root_hash.hex(),
    }


def _build(cls: type[_F], data: Mapping[str, object]) -> _F:
    return build_form(cls, data, f"the {cls.form_type} document")


#: The form models this module defines.
FORMS: tuple[type[Form], ...] = (AuditCheckpoint, AuditCosignature)
