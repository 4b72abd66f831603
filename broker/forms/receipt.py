"""The signed receipt a node returns for every authenticated message (``msg.receipt``).

This module owns the receipt's *shape* and the rules one receipt must obey on its own
(``schemas/json/msg.receipt.json`` plus the ``E_SEMANTIC`` rules below). A receipt
travels in an envelope whose ``in_reply_to`` is the receipted message's id and whose
``case`` is that message's case, so neither is repeated here; that ``message_id``
equals ``in_reply_to`` and that ``envelope_digest`` matches the bytes the sender kept
are the node's checks, not the model's (they need the envelope and the outbox).

Schema rules the model re-checks (``E_SCHEMA``): ``code`` is present exactly when
the outcome is ``rejected``; ``reason`` only with ``rejected``.

Rules beyond the schema (``E_SEMANTIC``), each reported at the offending member:

* ``proof.leaf_index < proof.tree_size``;
* every hash of a proof uses one encoding (all hex, or all base64);
* ``proof.checkpoint`` is at most 8192 bytes of UTF-8 (the schema can only count
  characters, and a signed note's signature lines start with a three-byte em dash).

``proof`` is filled in by a follow-up receipt once the receiver has signed a checkpoint
covering the message's log entry (:mod:`broker.receipt_proofs`): it carries that entry,
its inclusion proof and the checkpoint, so the sender holds offline proof that the
receiver logged the message. This module fixes its shape; the sender's node checks it.
"""

from __future__ import annotations

import hashlib
from datetime import datetime
from typing import Annotated, ClassVar, Literal, Self

from pydantic import Field, StringConstraints, model_validator

from broker.clock import wire_time
from broker.forms.base import (
    Form,
    Model,
    ShortText,
    Uuid,
    build_form,
    not_allowed_error,
    required_error,
    semantic_error,
)
from broker.forms.directory import WireTime

__all__ = [
    "FORMS",
    "MAX_CHECKPOINT_BYTES",
    "MAX_PROOF_HASHES",
    "ErrorCode",
    "Outcome",
    "Proof",
    "Receipt",
    "envelope_digest",
]

Outcome = Literal["accepted", "rejected"]
#: A stable error code as :mod:`broker.errors` defines them (``E_SIG_INVALID`` …).
ErrorCode = Annotated[str, StringConstraints(pattern=r"^E_[A-Z0-9_]{2,40}$")]
Digest = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{64}$")]
#: A SHA-256 hash as 64 lower-case hex digits or as canonical padded base64.
ProofHash = Annotated[
    str, StringConstraints(pattern=r"^([0-9a-f]{64}|[A-Za-z0-9+/]{42}[AEIMQUYcgkosw048]=)$")
]

#: Most hashes an audit path holds (RFC 9162: a path is at most 63 hashes long).
MAX_PROOF_HASHES = 64
#: Size limit of a checkpoint, in bytes of UTF-8.
MAX_CHECKPOINT_BYTES = 8192
#: Size limit of a log entry (broker.audit.entry.MAX_ENTRY_SIZE).
MAX_ENTRY_BYTES = 16_384
_MAX_SAFE_INTEGER = 2**53 - 1
_HEX_LENGTH = 64


def envelope_digest(wire: bytes) -> str:
    """Return what ``envelope_digest`` holds for an envelope: SHA-256, lower-case hex.

    Args:
        wire: the receipted envelope's RFC 8785 canonical bytes, signatures included
            (``broker.envelope.Envelope.to_bytes()``; what travelled).
    """
    return hashlib.sha256(wire).hexdigest()


def _escape(part: str | int) -> str:
    return str(part).replace("~", "~0").replace("/", "~1")


class Proof(Model):
    """Where the receiver logged the message: its entry, an inclusion proof, a checkpoint.

    ``entry`` is the receiver's log entry (RFC 8785 JSON, as hashed): ids, codes,
    times and keyed digests only, never payload. It is optional in the shape (older
    receipts) and required by the node that checks a proof.
    """

    leaf_index: Annotated[int, Field(ge=0, le=_MAX_SAFE_INTEGER - 1)]
    tree_size: Annotated[int, Field(ge=1, le=_MAX_SAFE_INTEGER)]
    hashes: Annotated[tuple[ProofHash, ...], Field(max_length=MAX_PROOF_HASHES)]
    checkpoint: Annotated[str, StringConstraints(min_length=1, max_length=MAX_CHECKPOINT_BYTES)]
    entry: Annotated[str, StringConstraints(min_length=2, max_length=MAX_ENTRY_BYTES)] | None = None

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if self.leaf_index >= self.tree_size:
            raise semantic_error("leaf_index must be lower than tree_size", "leaf_index")
        if self.hashes:
            hex_first = len(self.hashes[0]) == _HEX_LENGTH
            for index, value in enumerate(self.hashes):
                if (len(value) == _HEX_LENGTH) != hex_first:
                    raise semantic_error(
                        "every hash of a proof uses the same encoding", "hashes", index
                    )
        if len(self.checkpoint.encode("utf-8")) > MAX_CHECKPOINT_BYTES:
            raise semantic_error(
                f"the checkpoint is longer than {MAX_CHECKPOINT_BYTES} bytes of UTF-8",
                "checkpoint",
            )
        return self


class Receipt(Form):
    """A receipt: the receiver's signed word that a message arrived, and how it fared.

    Build one with :meth:`accepted` or :meth:`rejected`; the receiving node puts it
    in an envelope addressed to the sender, with ``in_reply_to`` = ``message_id``.
    """

    form_type: ClassVar[str] = "msg.receipt"

    message_id: Uuid
    envelope_digest: Digest
    outcome: Outcome
    code: ErrorCode | None = None
    received_at: WireTime
    reason: ShortText | None = None
    proof: Proof | None = None

    @model_validator(mode="after")
    def _code_iff_rejected(self) -> Self:
        if self.outcome == "rejected":
            if self.code is None:
                raise required_error("code", when="the outcome is rejected")
            return self
        if self.code is not None:
            raise not_allowed_error("code", unless="the outcome is rejected")
        if self.reason is not None:
            raise not_allowed_error("reason", unless="the outcome is rejected")
        return self

    @classmethod
    def accepted(
        cls,
        *,
        message_id: str,
        envelope_digest: str,
        received_at: datetime,
        proof: Proof | None = None,
    ) -> Self:
        """Build a positive receipt.

        Args:
            message_id: the receipted message's id.
            envelope_digest: :func:`envelope_digest` of the receipted envelope.
            received_at: when the node recorded the message (timezone-aware).
            proof: where the node logged the message (issue #7).

        Raises:
            SchemaError: a value does not fit, with every problem and its pointer.
            ValueError: ``received_at`` is not timezone-aware.
        """
        return cls._build(
            {
                "message_id": message_id,
                "envelope_digest": envelope_digest,
                "outcome": "accepted",
                "received_at": wire_time(received_at),
                **({"proof": proof} if proof is not None else {}),
            }
        )

    @classmethod
    def rejected(
        cls,
        *,
        message_id: str,
        envelope_digest: str,
        received_at: datetime,
        code: str,
        reason: str | None = None,
        proof: Proof | None = None,
    ) -> Self:
        """Build a negative receipt carrying the stable error ``code`` of the refusal.

        Args:
            message_id: the refused message's id.
            envelope_digest: :func:`envelope_digest` of the refused envelope.
            received_at: when the node recorded the message.
            code: the stable error code of the check that refused it.
            reason: a short text for people; never personal data or a value taken
                from the refused message.
            proof: where the node logged the refusal (issue #7).

        Raises:
            SchemaError: as :meth:`accepted`.
        """
        optional = {"reason": reason, "proof": proof}
        return cls._build(
            {
                "message_id": message_id,
                "envelope_digest": envelope_digest,
                "outcome": "rejected",
                "code": code,
                "received_at": wire_time(received_at),
                **{name: value for name, value in optional.items() if value is not None},
            }
        )

    @classmethod
    def _build(cls, data: dict[str, object]) -> Self:
        return build_form(cls, data, "the receipt")


#: The form models this module defines.
FORMS: tuple[type[Form], ...] = (Receipt,)
