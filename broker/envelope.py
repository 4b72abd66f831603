r"""Envelope v1: a signed header around an HPKE-sealed, authority-sealed form.

The wire contract (``docs/protocol.md`` is its reference)::

    {"evb": 1, "id": UUIDv7, "type": catalogue type, "case": UUID, "in_reply_to": UUID | null,
     "from": participant, "to": participant, "sent_at": RFC 3339 UTC ms, "priority":
     "emergency" | "normal", "schema": the type's schema $id,
     "payload": {"suite", "kid", "enc", "ct"},        # HPKE to the recipient
     "sig": {"alg": "Ed25519", "kid", "value"},       # the sending node
     "sig_pq": {"alg": "ML-DSA-65", "kid", "value"}}  # hybrid senders only

* ``sig.value`` (and ``sig_pq.value``) sign the RFC 8785 bytes of the envelope without
  ``sig`` and ``sig_pq``: the header *and* the ciphertext.
* The payload is HPKE base mode to the recipient's current encryption key, with
  ``info = b"evb/1 payload\n" + SHA-256(RFC 8785 bytes of the envelope without
  payload, sig and sig_pq)``: a ciphertext cannot be moved under another header.
* The plaintext is ``{"form": …, "seal": {"alg", "kid", "value"}}``, the seal being the
  issuing authority's signature over the RFC 8785 bytes of the form; it survives
  forwarding, the envelope signature does not need to.

This module is pure: keys, the trust directory and the time are passed in. Checks
raise a :class:`~broker.errors.BrokerError` with a stable code and fail closed, in the
order of the numbered steps in :func:`verify_envelope` and :func:`open_envelope`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any, ClassVar, Literal, Protocol

from pydantic import AfterValidator, BeforeValidator, Field, PrivateAttr
from pydantic import ValidationError as PydanticValidationError
from pydantic_core import PydanticCustomError

from broker import crypto, ids
from broker.canonical import canonical
from broker.clock import parse_wire_time, wire_time
from broker.errors import (
    DecryptionFailed,
    NotRecipient,
    Problem,
    SchemaError,
    SealInvalid,
    SignatureInvalid,
    TooLargeError,
    TrustError,
    UnknownTypeError,
)
from broker.forms.base import Form, Model, Uuid
from broker.schema import catalogue, load_json, pointer

__all__ = [
    "DEFAULT_MAX_ENVELOPE_BYTES",
    "ENVELOPE_VERSION",
    "AuthenticatedEnvelope",
    "Directory",
    "Envelope",
    "OpenedEnvelope",
    "Payload",
    "Priority",
    "Signature",
    "authenticate_envelope",
    "hpke_info",
    "open_authenticated",
    "open_envelope",
    "seal_envelope",
    "signed_bytes",
    "verify_envelope",
]

ENVELOPE_VERSION = 1
#: Default size limit of one envelope: a 1 MiB form, sealed and base64url-encoded,
#: with room for the header and signatures.
DEFAULT_MAX_ENVELOPE_BYTES = 2 * 1024 * 1024
_INFO_PREFIX = b"evb/1 payload\n"
_NESTED = frozenset({"payload", "sig", "sig_pq"})

Priority = Literal["emergency", "normal"]


class Directory(Protocol):
    """What envelopes need from the trust directory (see :mod:`broker.trust`)."""

    def verification_key(
        self, kid: str, *, use: crypto.Use, at: datetime
    ) -> tuple[str, crypto.PublicKey]:
        """Return the owner and key of ``kid``, judged at ``at``; raise a TrustError."""
        ...

    def encryption_key(self, participant: str, at: datetime) -> crypto.PublicKey:
        """Return the participant's current encryption key at ``at``."""
        ...

    def suite(self, participant: str) -> Literal["classic", "hybrid"]:
        """Return whether the participant signs with the classic or the hybrid suite."""
        ...

    def check_route(self, sender: str, recipient: str, message_type: str) -> None:
        """Raise PolicyError unless the policy lets sender send this type to recipient."""
        ...


def _participant(value: str) -> str:
    if not ids.is_participant_id(value):
        raise PydanticCustomError("evb_format", "not a valid participant id")
    return value


def _wire_time(value: object) -> object:
    if not isinstance(value, str):
        raise PydanticCustomError("evb_format", "not a valid wire time")
    try:
        parse_wire_time(value)
    except ValueError:
        raise PydanticCustomError(
            "evb_format", "not a wire time (RFC 3339, UTC, milliseconds)"
        ) from None
    return value


def _b64u(value: str) -> str:
    if not crypto.is_b64u(value):
        raise PydanticCustomError("evb_format", "not base64url without padding")
    return value


def _uuid7(value: str) -> str:
    if not ids.is_uuid7(value):
        raise PydanticCustomError("evb_format", "not a UUIDv7")
    return value


Participant = Annotated[str, AfterValidator(_participant)]
WireTime = Annotated[str, BeforeValidator(_wire_time)]
B64u = Annotated[str, Field(max_length=4 * 1024 * 1024), AfterValidator(_b64u)]
Kid = Annotated[str, Field(min_length=1, max_length=128)]


class Payload(Model):
    """The HPKE-sealed plaintext: suite, recipient key id, encapsulated key, ciphertext."""

    suite: Literal[
        "DHKEM-X25519-HKDF-SHA256/HKDF-SHA256/AES-256-GCM",
        "ML-KEM-768-X25519/HKDF-SHA256/AES-256-GCM",
    ]
    kid: Kid
    enc: B64u
    ct: B64u


class Signature(Model):
    """A signature with its algorithm and key id."""

    alg: Literal["Ed25519", "ML-DSA-65"]
    kid: Kid
    value: B64u


class Envelope(Model):
    """Envelope v1 (field names are the wire contract; see the module docstring)."""

    nullable: ClassVar[frozenset[str]] = frozenset({"in_reply_to"})

    evb: Literal[1]
    id: Annotated[str, AfterValidator(_uuid7)]
    type: Annotated[str, Field(min_length=1, max_length=100)]
    case: Uuid
    in_reply_to: Uuid | None
    from_: Participant = Field(alias="from")
    to: Participant
    sent_at: WireTime
    priority: Priority
    schema_: Annotated[str, Field(alias="schema", min_length=1, max_length=200)]
    payload: Payload
    sig: Signature
    sig_pq: Signature | None = None

    @property
    def sent_time(self) -> datetime:
        """``sent_at`` as a datetime."""
        return parse_wire_time(self.sent_at)

    def to_json_obj(self) -> dict[str, Any]:
        """Return the envelope as JSON data (``in_reply_to`` kept as null)."""
        data = self.model_dump(mode="json", by_alias=True, exclude_none=True)
        data["in_reply_to"] = self.in_reply_to
        return data

    _wire: bytes | None = PrivateAttr(default=None)

    def to_bytes(self) -> bytes:
        """Return the envelope's canonical (RFC 8785) bytes, as it travels."""
        return self._wire if self._wire is not None else canonical(self.to_json_obj())


@dataclass(frozen=True)
class OpenedEnvelope:
    """An envelope that passed every check, with its decrypted, validated form.

    Attributes:
        envelope: the verified envelope.
        form: the form, validated against its schema and model.
        sealed_by: the participant whose key sealed the form (the issuing authority).
        seal_kid: the key id of that seal.
    """

    envelope: Envelope
    form: Form
    sealed_by: str
    seal_kid: str


def signed_bytes(envelope: Mapping[str, Any]) -> bytes:
    """Return what ``sig`` and ``sig_pq`` cover: RFC 8785 of the envelope without them."""
    return canonical({k: v for k, v in envelope.items() if k not in ("sig", "sig_pq")})


def hpke_info(envelope: Mapping[str, Any]) -> bytes:
    """Return the HPKE ``info`` binding the payload to the header."""
    header = {k: v for k, v in envelope.items() if k not in ("payload", "sig", "sig_pq")}
    return _INFO_PREFIX + hashlib.sha256(canonical(header)).digest()


def seal_envelope(
    *,
    form_type: str,
    form: Form | Mapping[str, Any],
    sender: str,
    recipient: str,
    directory: Directory,
    signer: crypto.SigningKey,
    sealer: crypto.SigningKey,
    now: datetime,
    case: str | None = None,
    in_reply_to: str | None = None,
    priority: Priority = "normal",
    signer_pq: crypto.SigningKey | None = None,
    message_id: str | None = None,
) -> Envelope:
    """Seal a form into a signed, encrypted envelope.

    Args:
        form_type: the catalogue type of the form.
        form: the form (a model, or JSON data that is validated here).
        sender: the sending node's participant id (``from``).
        recipient: the recipient's participant id (``to``).
        directory: the verified trust directory.
        signer: the sending node's envelope signing key (Ed25519).
        sealer: the issuing authority's seal key (its seal key, or its signing key).
        now: the sending time (``sent_at``).
        case: the case id; a new one (UUIDv7) if omitted.
        in_reply_to: the message this one answers, if any.
        priority: ``emergency`` or ``normal``.
        signer_pq: the ML-DSA-65 key, required when the sender uses the hybrid suite.
        message_id: the message id (for re-sending the same message); new if omitted.

    Raises:
        SchemaError, SemanticError, UnknownTypeError: the form is not valid.
        PolicyError: the policy forbids this route.
        TrustError: a key is unknown, revoked or expired at ``now``.
    """
    # 1. The form is valid (a sender never sends what a receiver must refuse).
    form_data = form.to_json_obj() if isinstance(form, Form) else dict(form)
    catalogue().parse_obj(form_type, form_data)
    return _seal_form(
        form_type=form_type,
        form_data=form_data,
        sender=sender,
        recipient=recipient,
        directory=directory,
        signer=signer,
        sealer=sealer,
        now=now,
        case=case,
        in_reply_to=in_reply_to,
        priority=priority,
        signer_pq=signer_pq,
        message_id=message_id,
    )


def _seal_form(
    *,
    form_type: str,
    form_data: Mapping[str, Any],
    sender: str,
    recipient: str,
    directory: Directory,
    signer: crypto.SigningKey,
    sealer: crypto.SigningKey,
    now: datetime,
    case: str | None,
    in_reply_to: str | None,
    priority: Priority,
    signer_pq: crypto.SigningKey | None,
    message_id: str | None,
) -> Envelope:
    # Steps 2-5 of seal_envelope, for a form already validated (the benchmark times
    # this part alone: the issue measures envelopes without schema validation).
    # 2. The route is allowed, and our own keys are the directory's, valid now.
    directory.check_route(sender, recipient, form_type)
    _own_key(directory, signer, sender, "sig", now)
    _own_key(directory, sealer, None, None, now)
    hybrid = directory.suite(sender) == "hybrid"
    if hybrid and signer_pq is None:
        raise TrustError(f"{sender} uses the hybrid suite: an ML-DSA-65 key is needed")
    if signer_pq is not None:
        _own_key(directory, signer_pq, sender, "sig", now)
    # 3. Seal the form; build the header. JCS of {"form", "seal"} is the two members'
    #    canonical bytes in that (sorted) order, so the form is canonicalised once.
    form_bytes = canonical(form_data)
    seal = {
        "alg": sealer.alg,
        "kid": sealer.kid,
        "value": crypto.b64u_encode(sealer.sign(form_bytes)),
    }
    plaintext = b'{"form":' + form_bytes + b',"seal":' + canonical(seal) + b"}"
    envelope: dict[str, Any] = {
        "evb": ENVELOPE_VERSION,
        "id": message_id or ids.uuid7(int(now.timestamp() * 1000)),
        "type": form_type,
        "case": case or ids.uuid7(int(now.timestamp() * 1000)),
        "in_reply_to": in_reply_to,
        "from": sender,
        "to": recipient,
        "sent_at": wire_time(now),
        "priority": priority,
        "schema": catalogue().get(form_type).schema_id,
    }
    # 4. Encrypt to the recipient's current key, bound to the header.
    key = directory.encryption_key(recipient, now)
    enc, ct = crypto.hpke_seal(key, plaintext, hpke_info(envelope))
    envelope["payload"] = {
        "suite": key.suite,
        "kid": key.kid,
        "enc": crypto.b64u_encode(enc),
        "ct": crypto.b64u_encode(ct),
    }
    # 5. Sign header and ciphertext.
    message = signed_bytes(envelope)
    envelope["sig"] = {
        "alg": signer.alg,
        "kid": signer.kid,
        "value": crypto.b64u_encode(signer.sign(message)),
    }
    if signer_pq is not None:
        envelope["sig_pq"] = {
            "alg": signer_pq.alg,
            "kid": signer_pq.kid,
            "value": crypto.b64u_encode(signer_pq.sign(message)),
        }
    # Built here from checked parts: constructed without validating again, and the
    # canonical bytes kept for to_bytes().
    sealed = Envelope.model_construct(
        **{name: value for name, value in envelope.items() if name not in _NESTED},
        payload=Payload.model_construct(**envelope["payload"]),
        sig=Signature.model_construct(**envelope["sig"]),
        sig_pq=Signature.model_construct(**envelope["sig_pq"]) if "sig_pq" in envelope else None,
    )
    sealed._wire = canonical(envelope)
    return sealed


def _own_key(
    directory: Directory,
    key: crypto.SigningKey,
    owner: str | None,
    use: crypto.Use | None,
    at: datetime,
) -> str:
    found_owner, public = directory.verification_key(key.kid, use=use or key.use, at=at)
    if public.raw != key.public().raw or (owner is not None and found_owner != owner):
        raise SignatureInvalid(f"{key.kid} is not the directory's key of {owner or found_owner}")
    return found_owner


def _parse(raw: bytes, max_bytes: int) -> tuple[Envelope, dict[str, Any]]:
    if len(raw) > max_bytes:
        raise TooLargeError(f"the envelope is larger than {max_bytes} bytes")
    data, _ = load_json(raw)
    if not isinstance(data, dict):
        raise SchemaError(
            "an envelope is a JSON object", (Problem("", "E_SCHEMA", "must be of type object"),)
        )
    try:
        # Strict validation of the parsed data: the envelope holds only strings,
        # integers, null and objects, which strict mode reads the same from either.
        envelope = Envelope.model_validate(data)
    except PydanticValidationError as exc:
        problems = tuple(
            Problem(pointer(list(e["loc"])), "E_SCHEMA", e["msg"])
            for e in exc.errors(include_input=False, include_url=False)
        )
        raise SchemaError("the envelope does not match envelope v1", problems) from exc
    return envelope, data


def _check_signature(
    directory: Directory, data: Mapping[str, Any], signature: Signature, sender: str, at: datetime
) -> None:
    owner, key = directory.verification_key(signature.kid, use="sig", at=at)
    if owner != sender or key.alg != signature.alg:
        raise SignatureInvalid(f"{signature.kid} is not a signing key of {sender}")
    key.verify(crypto.b64u_decode(signature.value), signed_bytes(data))


def verify_envelope(
    raw: bytes,
    directory: Directory,
    *,
    max_bytes: int = DEFAULT_MAX_ENVELOPE_BYTES,
) -> Envelope:
    """Check an envelope without decrypting it.

    Steps, each failing closed with its code:

    1. size (``E_TOO_LARGE``);
    2. strict JSON and the envelope v1 shape (``E_PARSE``, ``E_SCHEMA``); the type is
       a catalogue type and ``schema`` its schema id (``E_SCHEMA``);
    3. the signing key: known, owned by ``from``, valid and not revoked at
       ``sent_at`` (``E_KEY_UNKNOWN``, ``E_SIG_INVALID``, ``E_KEY_EXPIRED``,
       ``E_KEY_REVOKED``);
    4. the signature over header and ciphertext (``E_SIG_INVALID``); for a hybrid
       sender also ``sig_pq``, which must be present; a ``sig_pq`` that is present
       must verify whatever the suite;
    5. the policy: may ``from`` send ``type`` to ``to`` (``E_POLICY_FORBIDDEN``).

    The document seal lies inside the ciphertext: :func:`open_envelope` checks it.
    """
    return _verify(raw, directory, max_bytes)[0]


def _verify(raw: bytes, directory: Directory, max_bytes: int) -> tuple[Envelope, dict[str, Any]]:
    authenticated = authenticate_envelope(raw, directory, max_bytes=max_bytes)
    # 5. Authorisation.
    _authorise(directory, authenticated.envelope)
    return authenticated.envelope, authenticated.data


@dataclass(frozen=True)
class AuthenticatedEnvelope:
    """An envelope whose node signature verified (steps 1-4), not yet authorised or opened.

    Attributes:
        envelope: the parsed envelope.
        data: its JSON data, as parsed.
        digest: SHA-256 (lowercase hex) of its RFC 8785 bytes: two encodings of the same
            signed envelope have one digest, two different envelopes never share one.
    """

    envelope: Envelope
    data: dict[str, Any]
    digest: str


def authenticate_envelope(
    raw: bytes,
    directory: Directory,
    *,
    max_bytes: int = DEFAULT_MAX_ENVELOPE_BYTES,
) -> AuthenticatedEnvelope:
    """Run steps 1-4 of :func:`verify_envelope`: size, shape, key, signature.

    A node's inbox authenticates first, then deduplicates by message id, then calls
    :func:`open_authenticated` (policy, recipient, decryption, form, seal): a replay
    of a known message is answered before any further work is spent on it.
    """
    # 1-2. Size, syntax, shape.
    envelope, data = _parse(raw, max_bytes)
    try:
        schema_id = catalogue().get(envelope.type).schema_id
    except UnknownTypeError as exc:
        raise SchemaError(
            "not a catalogue type", (Problem("/type", "E_SCHEMA", "unknown message type"),)
        ) from exc
    if schema_id != envelope.schema_:
        raise SchemaError(
            "not the type's schema id", (Problem("/schema", "E_SCHEMA", "wrong schema id"),)
        )
    at = envelope.sent_time
    # 3-4. The classic signature, then the post-quantum one.
    if envelope.sig.alg != crypto.SIG_ED25519 or (
        envelope.sig_pq is not None and envelope.sig_pq.alg != crypto.SIG_MLDSA65
    ):
        raise SignatureInvalid("sig must be Ed25519 and sig_pq ML-DSA-65")
    _check_signature(directory, data, envelope.sig, envelope.from_, at)
    if envelope.sig_pq is not None:
        _check_signature(directory, data, envelope.sig_pq, envelope.from_, at)
    elif directory.suite(envelope.from_) == "hybrid":
        raise SignatureInvalid(f"{envelope.from_} uses the hybrid suite: sig_pq is missing")
    digest = hashlib.sha256(canonical(data)).hexdigest()
    return AuthenticatedEnvelope(envelope=envelope, data=data, digest=digest)


def _authorise(directory: Directory, envelope: Envelope) -> None:
    directory.check_route(envelope.from_, envelope.to, envelope.type)


def open_envelope(
    raw: bytes,
    directory: Directory,
    *,
    recipient: str,
    decryption_keys: Sequence[crypto.DecryptionKey],
    max_bytes: int = DEFAULT_MAX_ENVELOPE_BYTES,
) -> OpenedEnvelope:
    """Verify an envelope, decrypt it, and check the form and its seal.

    Steps 1-5 are :func:`verify_envelope`'s; then:

    6. the envelope is addressed to ``recipient`` (``E_NOT_RECIPIENT``);
    7. decrypt with the key named by ``payload.kid`` under the header-bound ``info``
       (``E_DECRYPT``: unknown key, wrong suite, moved or altered ciphertext);
    8. the plaintext is ``{"form", "seal"}`` and the form is valid for ``type``
       (``E_SCHEMA``, ``E_SEMANTIC``);
    9. the seal: a seal or signing key valid at ``sent_at`` (trust codes) whose
       signature over the form verifies (``E_SEAL_INVALID``).
    """
    authenticated = authenticate_envelope(raw, directory, max_bytes=max_bytes)
    return open_authenticated(
        authenticated, directory, recipient=recipient, decryption_keys=decryption_keys
    )


def open_authenticated(
    authenticated: AuthenticatedEnvelope,
    directory: Directory,
    *,
    recipient: str,
    decryption_keys: Sequence[crypto.DecryptionKey],
) -> OpenedEnvelope:
    """Run steps 5-9 of :func:`open_envelope` on an authenticated envelope."""
    envelope = authenticated.envelope
    # 5. Authorisation.
    _authorise(directory, envelope)
    form_data, seal = _decrypt(authenticated, recipient, decryption_keys)
    # 8. The form.
    form = catalogue().parse_obj(envelope.type, form_data)
    # 9. The seal of the issuing authority.
    sealed_by = _check_seal(directory, envelope, form_data, seal)
    return OpenedEnvelope(envelope=envelope, form=form, sealed_by=sealed_by, seal_kid=seal.kid)


def _decrypt(
    authenticated: AuthenticatedEnvelope,
    recipient: str,
    decryption_keys: Sequence[crypto.DecryptionKey],
) -> tuple[Any, Signature]:
    # Steps 6-7 of open_envelope, and the plaintext's shape.
    envelope = authenticated.envelope
    # 6. Ours?
    if envelope.to != recipient:
        raise NotRecipient(f"the envelope is addressed to {envelope.to}")
    # 7. Decrypt.
    keys = {key.kid: key for key in decryption_keys}
    key = keys.get(envelope.payload.kid)
    if key is None:
        raise DecryptionFailed(f"no decryption key {envelope.payload.kid} here")
    plaintext = crypto.hpke_open(
        key,
        envelope.payload.suite,
        crypto.b64u_decode(envelope.payload.enc),
        crypto.b64u_decode(envelope.payload.ct),
        hpke_info(authenticated.data),
    )
    inner, _ = load_json(plaintext)
    if not isinstance(inner, dict) or set(inner) != {"form", "seal"}:
        raise SchemaError(
            "the plaintext must hold exactly a form and its seal",
            (Problem("", "E_SCHEMA", "expected the members form and seal"),),
        )
    try:
        seal = Signature.model_validate(inner["seal"])
    except PydanticValidationError as exc:
        raise SealInvalid("the seal is malformed") from exc
    return inner["form"], seal


def _check_seal(directory: Directory, envelope: Envelope, form_data: Any, seal: Signature) -> str:
    sealed_by, seal_key = _seal_key(directory, seal.kid, envelope.sent_time)
    if seal_key.alg != seal.alg:
        raise SealInvalid(f"{seal.kid} is not an {seal.alg} key")
    try:
        seal_key.verify(crypto.b64u_decode(seal.value), canonical(form_data))
    except SignatureInvalid as exc:
        raise SealInvalid(f"the form's seal does not verify under {seal.kid}") from exc
    return sealed_by


def _seal_key(directory: Directory, kid: str, at: datetime) -> tuple[str, crypto.PublicKey]:
    # A participant without a seal key seals with its signing key.
    use: crypto.Use = "seal" if "#seal-" in kid else "sig"
    return directory.verification_key(kid, use=use, at=at)
