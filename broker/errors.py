"""The exception tree of evidence-broker and the stable error codes it carries.

Every error the package raises is a :class:`BrokerError`. Each class has a stable,
machine-readable ``code`` that also travels on negative receipts, in audit entries
and in logs; messages are for humans and may change, codes never do::

    BrokerError                     E_INTERNAL
    ├── InputError                  (a document or message that cannot be accepted)
    │   ├── ParseError              E_PARSE         malformed JSON / XML, forbidden XML constructs
    │   ├── TooLargeError           E_TOO_LARGE     over the configured size limit
    │   ├── SchemaError             E_SCHEMA        violates its JSON Schema / XSD
    │   │   └── SemanticError       E_SEMANTIC      schema-valid, but breaks a rule beyond it
    │   └── UnknownTypeError        E_UNKNOWN_TYPE  not a catalogue message type
    ├── VerificationError
    │   ├── SignatureInvalid        E_SIG_INVALID   envelope signature (or its key's owner) wrong
    │   ├── SealInvalid             E_SEAL_INVALID  the issuing authority's document seal
    │   └── DecryptionFailed        E_DECRYPT       HPKE open failed (wrong key, moved ciphertext)
    ├── TrustError
    │   ├── KeyUnknown              E_KEY_UNKNOWN   no such key id in the trust directory
    │   ├── KeyRevoked              E_KEY_REVOKED   revoked (compromise: always; retired: after)
    │   ├── KeyExpired              E_KEY_EXPIRED   outside not_before / not_after
    │   ├── DirectoryUnsigned       E_DIRECTORY_UNSIGNED  too few valid root signatures
    │   ├── DirectoryRollback       E_DIRECTORY_ROLLBACK  version not higher than the trusted one
    │   └── DirectoryExpired        E_DIRECTORY_EXPIRED
    ├── PolicyError                 E_POLICY_FORBIDDEN  the policy forbids this route
    │   └── NotRecipient            E_NOT_RECIPIENT     addressed to another participant
    ├── DeliveryError               (an authentic message that cannot take effect)
    │   ├── ReplayError             E_REPLAY        a known message id with a different envelope
    │   ├── ClockSkew               E_CLOCK_SKEW    sent_at too far ahead or older than the window
    │   ├── ReceiptUnknown          E_RECEIPT_UNKNOWN   a receipt for a message never sent
    │   ├── ReceiptMismatch         E_RECEIPT_MISMATCH  from the wrong peer, or for other bytes
    │   └── DeliveryLimit           E_DELIVERY_LIMIT    dead-lettered by the broker (too many tries)
    ├── CaseError                   (a message or reply that does not fit its case)
    │   ├── CaseUnknown             E_CASE_UNKNOWN  a reply to a case this node does not hold
    │   ├── NotParty                E_NOT_PARTY     the sender is not a party to the case
    │   ├── StateError              E_STATE         the state machine forbids this step
    │   ├── GroundError             E_GROUND        no ground, or one not valid for the instrument
    │   └── ExtensionError          E_EXTENSION     extension beyond what the instrument allows
    ├── AuditError                  (the audit log or a bundle does not verify)
    │   ├── AuditTampered           E_AUDIT_TAMPERED  an entry altered, removed, inserted, moved
    │   ├── AuditFork               E_AUDIT_FORK    two inconsistent checkpoints of one log
    │   ├── AuditSignature          E_AUDIT_SIG     a checkpoint signature or cosignature is bad
    │   ├── AuditProof              E_AUDIT_PROOF   an inclusion or consistency proof does not match
    │   └── AuditBundle             E_AUDIT_BUNDLE  a bundle is truncated or malformed
    ├── TransportError
    │   ├── TransportClosed         E_TRANSPORT_CLOSED  closed on purpose (shutdown)
    │   ├── TransportBroken         E_TRANSPORT_BROKEN  lost (network, broker restart)
    │   ├── Unroutable              E_UNROUTABLE    returned by the broker: no queue bound
    │   └── PublishNacked           E_NACK          the broker refused to take the message
    ├── StoreError                  E_STORE
    ├── AdapterError                E_ADAPTER
    └── ConfigError                 E_CONFIG

Input errors carry a tuple of :class:`Problem` (code, RFC 6901 pointer, message) so
that a caller can show every problem of a document at once, not just the first.
Errors from dependencies (``jsonschema``, ``lxml``, ``pydantic`` …) are translated at
the boundary and chained with ``raise … from exc``; they never leak out of the package.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

__all__ = [
    "AdapterError",
    "AuditBundle",
    "AuditError",
    "AuditFork",
    "AuditProof",
    "AuditSignature",
    "AuditTampered",
    "BrokerError",
    "CaseError",
    "CaseUnknown",
    "ClockSkew",
    "ConfigError",
    "DecryptionFailed",
    "DeliveryError",
    "DeliveryLimit",
    "DirectoryExpired",
    "DirectoryRollback",
    "DirectoryUnsigned",
    "ExtensionError",
    "GroundError",
    "InputError",
    "KeyExpired",
    "KeyRevoked",
    "KeyUnknown",
    "NotParty",
    "NotRecipient",
    "ParseError",
    "PolicyError",
    "PublishNacked",
    "ReceiptMismatch",
    "ReceiptUnknown",
    "ReplayError",
    "SchemaError",
    "SealInvalid",
    "SemanticError",
    "SignatureInvalid",
    "StateError",
    "StoreError",
    "TooLargeError",
    "TransportBroken",
    "TransportClosed",
    "TransportError",
    "TrustError",
    "UnknownTypeError",
    "Unroutable",
    "VerificationError",
]


@dataclass(frozen=True, order=True)
class Problem:
    """One problem found in a document.

    Attributes:
        pointer: RFC 6901 JSON Pointer to the offending value ("" is the whole
            document). For a missing or unknown member it points at that member.
            For XML input it points into the mapped model, not into the XML.
        code: the stable error code (``E_SCHEMA``, ``E_SEMANTIC``, ``E_PARSE`` …).
        message: a human-readable explanation; never contains the offending value,
            which may be personal data.
    """

    pointer: str
    code: str
    message: str

    def as_dict(self) -> dict[str, str]:
        """Return the problem as the ``{code, pointer, message}`` object the CLI prints."""
        return {"code": self.code, "pointer": self.pointer, "message": self.message}


class BrokerError(Exception):
    """Root of every error raised by evidence-broker.

    Attributes:
        code: the stable machine-readable code of this error.
    """

    code: ClassVar[str] = "E_INTERNAL"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return f"{self.code}: {self.message}"


class InputError(BrokerError):
    """A document or message that cannot be accepted as it is.

    Attributes:
        problems: every problem found, sorted by pointer.
    """

    code: ClassVar[str] = "E_INPUT"

    def __init__(self, message: str, problems: tuple[Problem, ...] = ()) -> None:
        super().__init__(message)
        self.problems = tuple(sorted(problems)) or (Problem("", self.code, message),)


class ParseError(InputError):
    """Malformed input: not JSON, not well-formed XML, or forbidden XML constructs."""

    code: ClassVar[str] = "E_PARSE"


class TooLargeError(InputError):
    """Input over the configured size limit; it was not parsed."""

    code: ClassVar[str] = "E_TOO_LARGE"


class SchemaError(InputError):
    """The document violates the JSON Schema (or XSD) of its type."""

    code: ClassVar[str] = "E_SCHEMA"


class SemanticError(SchemaError):
    """The document is schema-valid but breaks a rule the schema cannot express."""

    code: ClassVar[str] = "E_SEMANTIC"


class UnknownTypeError(InputError):
    """The message type is not in the catalogue."""

    code: ClassVar[str] = "E_UNKNOWN_TYPE"


class VerificationError(BrokerError):
    """A signature, seal or ciphertext did not verify."""

    code: ClassVar[str] = "E_VERIFICATION"


class SignatureInvalid(VerificationError):
    """An envelope signature does not verify, or its key belongs to someone else."""

    code: ClassVar[str] = "E_SIG_INVALID"


class SealInvalid(VerificationError):
    """The issuing authority's seal on a form does not verify."""

    code: ClassVar[str] = "E_SEAL_INVALID"


class DecryptionFailed(VerificationError):
    """The payload could not be decrypted (wrong key, or ciphertext moved under another header)."""

    code: ClassVar[str] = "E_DECRYPT"


class TrustError(BrokerError):
    """A key or trust directory cannot be trusted."""

    code: ClassVar[str] = "E_TRUST"


class KeyUnknown(TrustError):
    """No key with this id is in the trust directory."""

    code: ClassVar[str] = "E_KEY_UNKNOWN"


class KeyRevoked(TrustError):
    """The key was revoked (for compromise: whatever the date; retired: from then on)."""

    code: ClassVar[str] = "E_KEY_REVOKED"


class KeyExpired(TrustError):
    """The key was not valid at the time in question (before not_before or after not_after)."""

    code: ClassVar[str] = "E_KEY_EXPIRED"


class DirectoryUnsigned(TrustError):
    """The trust directory lacks a threshold of valid root signatures."""

    code: ClassVar[str] = "E_DIRECTORY_UNSIGNED"


class DirectoryRollback(TrustError):
    """The trust directory's version is not higher than the trusted one."""

    code: ClassVar[str] = "E_DIRECTORY_ROLLBACK"


class DirectoryExpired(TrustError):
    """The trust directory has expired."""

    code: ClassVar[str] = "E_DIRECTORY_EXPIRED"


class PolicyError(BrokerError):
    """The authorisation policy forbids this message."""

    code: ClassVar[str] = "E_POLICY_FORBIDDEN"


class NotRecipient(PolicyError):
    """The message is addressed to another participant."""

    code: ClassVar[str] = "E_NOT_RECIPIENT"


class DeliveryError(BrokerError):
    """An authentic message that cannot take effect here."""

    code: ClassVar[str] = "E_DELIVERY"


class ReplayError(DeliveryError):
    """A known message id arrived with a different envelope (a replay or a forgery)."""

    code: ClassVar[str] = "E_REPLAY"


class ClockSkew(DeliveryError):
    """``sent_at`` lies too far in the future, or before the node's age window."""

    code: ClassVar[str] = "E_CLOCK_SKEW"


class ReceiptUnknown(DeliveryError):
    """A receipt for a message this node never sent."""

    code: ClassVar[str] = "E_RECEIPT_UNKNOWN"


class ReceiptMismatch(DeliveryError):
    """A receipt from another participant than the recipient, or for other bytes."""

    code: ClassVar[str] = "E_RECEIPT_MISMATCH"


class DeliveryLimit(DeliveryError):
    """The broker dead-lettered the delivery after too many failed attempts."""

    code: ClassVar[str] = "E_DELIVERY_LIMIT"


class CaseError(BrokerError):
    """A message or reply that does not fit the case it belongs to."""

    code: ClassVar[str] = "E_CASE"


class CaseUnknown(CaseError):
    """A reply names a case this node does not hold."""

    code: ClassVar[str] = "E_CASE_UNKNOWN"


class NotParty(CaseError):
    """The sender of a case message is not a party to the case."""

    code: ClassVar[str] = "E_NOT_PARTY"


class StateError(CaseError):
    """The instrument's state machine does not allow this step in the case's state."""

    code: ClassVar[str] = "E_STATE"


class GroundError(CaseError):
    """A refusal without a ground, or with a ground not valid for the instrument."""

    code: ClassVar[str] = "E_GROUND"


class ExtensionError(CaseError):
    """An extension beyond what the instrument allows (length or number)."""

    code: ClassVar[str] = "E_EXTENSION"


class AuditError(BrokerError):
    """The audit log, a checkpoint or an exported bundle does not verify."""

    code: ClassVar[str] = "E_AUDIT"


class AuditTampered(AuditError):
    """An entry was altered, removed, inserted or reordered."""

    code: ClassVar[str] = "E_AUDIT_TAMPERED"


class AuditFork(AuditError):
    """Two checkpoints of one log that no consistency proof can join (a fork)."""

    code: ClassVar[str] = "E_AUDIT_FORK"


class AuditSignature(AuditError):
    """A checkpoint signature or a cosignature does not verify under the directory."""

    code: ClassVar[str] = "E_AUDIT_SIG"


class AuditProof(AuditError):
    """An inclusion or consistency proof does not match the tree it claims."""

    code: ClassVar[str] = "E_AUDIT_PROOF"


class AuditBundle(AuditError):
    """An audit bundle is truncated, malformed or incomplete."""

    code: ClassVar[str] = "E_AUDIT_BUNDLE"


class TransportError(BrokerError):
    """The message transport failed."""

    code: ClassVar[str] = "E_TRANSPORT"


class TransportClosed(TransportError):
    """The transport was closed on purpose (shutdown); not a fault."""

    code: ClassVar[str] = "E_TRANSPORT_CLOSED"


class TransportBroken(TransportError):
    """The transport was lost (network failure, broker restart)."""

    code: ClassVar[str] = "E_TRANSPORT_BROKEN"


class Unroutable(TransportError):
    """The broker returned a mandatory message: no queue is bound for its route."""

    code: ClassVar[str] = "E_UNROUTABLE"


class PublishNacked(TransportError):
    """The broker refused a message (negative publisher confirm, e.g. a full queue)."""

    code: ClassVar[str] = "E_NACK"


class StoreError(BrokerError):
    """The store failed to read or write."""

    code: ClassVar[str] = "E_STORE"


class AdapterError(BrokerError):
    """A service-provider adapter failed."""

    code: ClassVar[str] = "E_ADAPTER"


class ConfigError(BrokerError):
    """The configuration is invalid or incomplete."""

    code: ClassVar[str] = "E_CONFIG"
