"""The trust directory as a catalogue document (``trust.directory``).

This module owns the *shape* of the directory and the rules a single document must
obey on its own (``schemas/json/trust.directory.json`` plus the ``E_SEMANTIC`` rules
below). Whether a document is *trusted* — root signatures, rollback, expiry — and
how keys are judged at a given time is :mod:`broker.trust`'s business.

Rules beyond the schema (``E_SEMANTIC``), each reported at the offending member:

* base64url values are canonical, and a public key has its algorithm's length;
* a participant key's kid is ``crypto.key_id(participant, use, raw)``; a root's kid is
  ``crypto.key_id(name, "sig", raw)`` where ``name`` — the participant id the root key
  pair was generated under (``evb keys generate root1``) — is the kid's part before
  ``#``;
* every kid is unique across the whole directory (participants' keys and roots);
* ``not_before < not_after`` and ``issued_at < expires_at``;
* participant ids are unique; the threshold is at most the number of roots;
* every participant has an Ed25519 ``sig`` key; a classic participant an X25519
  ``enc`` key; a hybrid participant an ML-DSA-65 ``sig`` key and an
  ML-KEM-768+X25519 ``enc`` key. Keys of the other suite may stay listed (a
  participant moving from classic to hybrid keeps its old keys until they retire);
  :meth:`broker.trust.TrustDirectory.encryption_key` only picks keys of the
  participant's suite.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Any, ClassVar, Literal, Self

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BeforeValidator,
    Field,
    PlainSerializer,
    StringConstraints,
    model_validator,
)
from pydantic_core import PydanticCustomError

from broker import crypto, formats
from broker.clock import parse_wire_time, wire_time
from broker.forms.base import (
    Country,
    Form,
    Model,
    ShortText,
    required_error,
    schema_rule_error,
    semantic_error,
    unique,
)

__all__ = [
    "FORMS",
    "ROLES",
    "DirectoryDocument",
    "DirectoryKey",
    "DirectorySignature",
    "Participant",
    "Policy",
    "PolicyRule",
    "RevocationReason",
    "Role",
    "RootKey",
    "Routing",
    "Suite",
    "WireTime",
]

Role = Literal[
    "contact_point", "central_authority", "judicial_authority", "service_provider", "auditor"
]
#: Every role, in schema order.
ROLES: tuple[Role, ...] = (
    "contact_point",
    "central_authority",
    "judicial_authority",
    "service_provider",
    "auditor",
)
Suite = Literal["classic", "hybrid"]
RevocationReason = Literal["compromise", "retired"]

_MAX_SAFE_INTEGER = 2**53 - 1
_WIRE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{3}Z")


def _wire_time(value: object) -> datetime:
    # The schema's pattern + format, then the one parser of wire times.
    if isinstance(value, str) and _WIRE.fullmatch(value) and formats.is_date_time(value):
        try:
            return parse_wire_time(value)
        except ValueError:
            pass
    raise PydanticCustomError("evb_format", "not a wire time (RFC 3339, UTC, milliseconds, Z)")


#: A time as on the wire: parsed to an aware UTC datetime, written back identically.
WireTime = Annotated[
    AwareDatetime, BeforeValidator(_wire_time), PlainSerializer(wire_time, return_type=str)
]


def _canonical_b64u(value: str) -> str:
    try:
        crypto.b64u_decode(value)
    except ValueError:
        raise semantic_error("not canonical base64url without padding") from None
    return value


B64u = Annotated[
    str,
    StringConstraints(min_length=1, max_length=4096, pattern=r"^[A-Za-z0-9_-]+$"),
    AfterValidator(_canonical_b64u),
]
ParticipantId = Annotated[str, StringConstraints(pattern=r"^[A-Z]{2,3}\.[A-Za-z0-9_-]{1,32}$")]
_NAME = r"([A-Z]{2,3}\.[A-Za-z0-9_-]{1,32}|[a-z][a-z0-9_-]{0,31})"
KeyId = Annotated[
    str,
    StringConstraints(pattern=r"^[A-Z]{2,3}\.[A-Za-z0-9_-]{1,32}#(sig|seal|enc)-[0-9a-f]{16}$"),
]
RootKeyId = Annotated[str, StringConstraints(pattern=rf"^{_NAME}#sig-[0-9a-f]{{16}}$")]
SignatureKeyId = Annotated[str, StringConstraints(pattern=rf"^{_NAME}#(sig|seal)-[0-9a-f]{{16}}$")]
TypePattern = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]*(\.[a-z0-9_]+)*(\.\*)?$")]


class Routing(Model):
    """Where a participant's node is reached over AMQP."""

    site: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")]
    vhost: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9/_.-]{1,128}$")]
    exchange: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_.:-]{1,255}$")]


class DirectoryKey(Model):
    """One public key of a participant, with validity and revocation."""

    kid: KeyId
    use: crypto.Use
    alg: str
    public: B64u
    not_before: WireTime
    not_after: WireTime
    revoked_at: WireTime | None = None
    revocation_reason: RevocationReason | None = None

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        # Schema rules first (if/then), reported as E_SCHEMA like the schema's own.
        allowed = crypto.ENC_ALGORITHMS if self.use == "enc" else crypto.SIG_ALGORITHMS
        if self.alg not in allowed:
            raise schema_rule_error(f"not an algorithm for use {self.use}", "alg")
        if self.revoked_at is not None and self.revocation_reason is None:
            raise required_error("revocation_reason", when="revoked_at is present")
        if self.revocation_reason is not None and self.revoked_at is None:
            raise required_error("revoked_at", when="revocation_reason is present")
        # Then the rules beyond the schema.
        try:
            self.public_key()
        except ValueError:
            raise semantic_error(f"not a raw {self.alg} public key", "public") from None
        if self.not_before >= self.not_after:
            raise semantic_error("not_after must be later than not_before", "not_after")
        return self

    @property
    def raw(self) -> bytes:
        """The raw public key."""
        return crypto.b64u_decode(self.public)

    def public_key(self) -> crypto.PublicKey:
        """Return the key as :class:`broker.crypto.PublicKey`."""
        return crypto.PublicKey(self.kid, self.use, self.alg, self.raw)


class Participant(Model):
    """One participant of the network."""

    id: ParticipantId
    name: ShortText
    country: Country
    role: Role
    suite: Suite
    keys: Annotated[tuple[DirectoryKey, ...], Field(min_length=1, max_length=64)]
    routing: Routing

    @model_validator(mode="after")
    def _keys_belong(self) -> Self:
        for index, key in enumerate(self.keys):
            if key.kid != crypto.key_id(self.id, key.use, key.raw):
                raise semantic_error(
                    "kid is not the key id of this participant, use and public key",
                    "keys",
                    index,
                    "kid",
                )
        have = {(key.use, key.alg) for key in self.keys}
        wanted = [("sig", crypto.SIG_ED25519)]
        if self.suite == "hybrid":
            wanted += [("sig", crypto.SIG_MLDSA65), ("enc", crypto.ENC_HYBRID)]
        else:
            wanted += [("enc", crypto.ENC_X25519)]
        for use, alg in wanted:
            if (use, alg) not in have:
                raise semantic_error(f"a {self.suite} participant needs an {alg} {use} key", "keys")
        return self


class RootKey(Model):
    """A root key: signs directory versions."""

    kid: RootKeyId
    alg: Literal["Ed25519"]
    public: Annotated[
        str, StringConstraints(pattern=r"^[A-Za-z0-9_-]{43}$"), AfterValidator(_canonical_b64u)
    ]

    @model_validator(mode="after")
    def _kid_matches(self) -> Self:
        if self.kid != crypto.key_id(self.name, "sig", crypto.b64u_decode(self.public)):
            raise semantic_error("kid is not the key id of this root name and public key", "kid")
        return self

    @property
    def name(self) -> str:
        """The root's name: the participant id its key pair was generated under."""
        return self.kid.split("#", 1)[0]

    def public_key(self) -> crypto.PublicKey:
        """Return the key as :class:`broker.crypto.PublicKey`."""
        return crypto.PublicKey(self.kid, "sig", self.alg, crypto.b64u_decode(self.public))


class PolicyRule(Model):
    """One rule: ``from_role`` may send these types to ``to_role``."""

    from_role: Role
    to_role: Role
    types: Annotated[
        tuple[TypePattern, ...], Field(min_length=1, max_length=200), AfterValidator(unique)
    ]
    basis: ShortText | None = None


class Policy(Model):
    """The authorisation policy: a message is allowed when any rule allows it."""

    rules: Annotated[tuple[PolicyRule, ...], Field(max_length=1000)]


class DirectorySignature(Model):
    """One signature over the document without ``signatures``."""

    kid: SignatureKeyId
    value: B64u


class DirectoryDocument(Form):
    """The trust directory (one version).

    Build or change it with :mod:`broker.trust`; trust it only as returned by
    :func:`broker.trust.verify_directory`.
    """

    form_type: ClassVar[str] = "trust.directory"

    version: Annotated[int, Field(ge=1, le=_MAX_SAFE_INTEGER)]
    issued_at: WireTime
    expires_at: WireTime
    participants: Annotated[tuple[Participant, ...], Field(max_length=10000)]
    roots: Annotated[tuple[RootKey, ...], Field(min_length=1, max_length=32)]
    threshold: Annotated[int, Field(ge=1, le=32)]
    policy: Policy | None = None
    signatures: Annotated[tuple[DirectorySignature, ...], Field(max_length=64)]

    @model_validator(mode="after")
    def _whole_directory(self) -> Self:
        if self.issued_at >= self.expires_at:
            raise semantic_error("expires_at must be later than issued_at", "expires_at")
        if self.threshold > len(self.roots):
            raise semantic_error("the threshold is higher than the number of roots", "threshold")
        seen_ids: set[str] = set()
        seen_kids: set[str] = set()
        for index, participant in enumerate(self.participants):
            if participant.id in seen_ids:
                raise semantic_error("a participant id appears twice", "participants", index, "id")
            seen_ids.add(participant.id)
            for number, key in enumerate(participant.keys):
                if key.kid in seen_kids:
                    raise semantic_error(
                        "a kid appears twice in the directory",
                        "participants",
                        index,
                        "keys",
                        number,
                        "kid",
                    )
                seen_kids.add(key.kid)
        for index, root in enumerate(self.roots):
            if root.kid in seen_kids:
                raise semantic_error("a kid appears twice in the directory", "roots", index, "kid")
            seen_kids.add(root.kid)
        return self

    def unsigned(self) -> dict[str, Any]:
        """Return the JSON data the root signatures cover: the document without signatures."""
        data = self.to_json_obj()
        del data["signatures"]
        return data


#: The form models this module defines.
FORMS: tuple[type[Form], ...] = (DirectoryDocument,)
