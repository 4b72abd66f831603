"""Verifying, reading and editing the trust directory.

This module owns the directory's trust: :func:`verify_directory` turns bytes into a
:class:`TrustDirectory` only if a threshold of root keys signed them (and, on an
update, a threshold of the previous version's roots too), the version went up and
the version has not expired — the python-tuf ``update_root`` model. A
:class:`TrustDirectory` then answers what envelopes ask: whose key a kid is and
whether it was valid when a message was sent, which key to encrypt to, which suite a
participant uses, and whether the policy allows a route.

The editing operations (:func:`init_directory`, :func:`add_participant`,
:func:`revoke_key`, :func:`set_roots`, :func:`set_policy`) return a new, unsigned
document: every change of content bumps the version, sets ``issued_at`` and drops the
signatures; the new version keeps the validity period (``expires_at - issued_at``)
of the one it replaces. :func:`sign_directory` adds one signature without changing
anything else.

Pure: bytes and times in, verdicts and documents out; no file or network I/O.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any, Literal, Protocol

from broker import crypto
from broker.canonical import canonical
from broker.clock import wire_time
from broker.errors import (
    ConfigError,
    DirectoryExpired,
    DirectoryRollback,
    DirectoryUnsigned,
    KeyExpired,
    KeyRevoked,
    KeyUnknown,
    PolicyError,
    SchemaError,
    SignatureInvalid,
    TooLargeError,
    TrustError,
)
from broker.forms.directory import (
    DirectoryDocument,
    DirectoryKey,
    Participant,
    Policy,
    RevocationReason,
    Role,
    RootKey,
)
from broker.schema import catalogue, load_json
from broker.trust import policy as _policy

__all__ = [
    "DEFAULT_MAX_BYTES",
    "KeyListing",
    "TrustDirectory",
    "add_participant",
    "default_routing",
    "dump_directory",
    "init_directory",
    "parse_directory",
    "revoke_key",
    "set_policy",
    "set_roots",
    "sign_directory",
    "trusted_directory",
    "verify_directory",
]

#: Size limit of a directory document (a hybrid participant takes about 6 KB).
DEFAULT_MAX_BYTES = 8 * 1024 * 1024

_TYPE = DirectoryDocument.form_type
_TOKEN = object()


def _aware(at: datetime, what: str) -> datetime:
    if at.tzinfo is None:
        raise TrustError(f"{what} must be a timezone-aware time")
    return at


# -- reading and verifying ---------------------------------------------------------------


def parse_directory(raw: bytes, *, max_bytes: int = DEFAULT_MAX_BYTES) -> DirectoryDocument:
    """Check a directory document's size and shape — and nothing about its trust.

    For tools that edit or sign a document; a node trusts only what
    :func:`verify_directory` returns.

    Raises:
        TooLargeError: over ``max_bytes`` (checked before parsing).
        ParseError: not strict UTF-8 JSON.
        SchemaError, SemanticError: not a valid ``trust.directory`` document, with
            every problem and its pointer.
    """
    # 1. Size, before anything is parsed.
    if len(raw) > max_bytes:
        raise TooLargeError(f"the directory is larger than {max_bytes} bytes")
    # 2. Strict JSON, then the catalogue's schema and model (rules beyond the schema).
    #    Parsed here rather than by catalogue().parse: the directory has its own limit.
    value, _ = load_json(raw)
    return _document(value)


def _document(value: Any) -> DirectoryDocument:
    document = catalogue().parse_obj(_TYPE, value)
    if not isinstance(document, DirectoryDocument):  # pragma: no cover - catalogue contract
        raise SchemaError("not a trust directory")
    return document


def _signed_by(document: DirectoryDocument, roots: Sequence[RootKey], threshold: int) -> int:
    """Return how many distinct ``roots`` validly signed ``document``; raise below threshold."""
    message = canonical(document.unsigned())
    keys = {root.kid: root.public_key() for root in roots}
    valid: set[str] = set()
    for signature in document.signatures:
        key = keys.get(signature.kid)
        # Unknown signers and a second signature by the same root never count.
        if key is None or signature.kid in valid:
            continue
        try:
            key.verify(crypto.b64u_decode(signature.value), message)
        except SignatureInvalid:
            continue
        valid.add(signature.kid)
    if len(valid) < threshold:
        raise DirectoryUnsigned(
            f"{len(valid)} valid root signature(s), {threshold} required"
            if valid
            else f"no valid root signature, {threshold} required"
        )
    return len(valid)


def verify_directory(
    raw: bytes,
    *,
    now: datetime,
    previous: TrustDirectory | None = None,
    max_bytes: int = DEFAULT_MAX_BYTES,
) -> TrustDirectory:
    """Verify a directory version and return it as trusted.

    Steps, each failing closed (the first failure raises):

    1. size (``E_TOO_LARGE``), before parsing;
    2. strict JSON, the catalogue schema and the model's rules (``E_PARSE``,
       ``E_SCHEMA``, ``E_SEMANTIC``);
    3. a threshold of distinct roots *of this version* signed the canonical bytes of
       the document without ``signatures``; signatures by other keys, a second
       signature by the same root and invalid signatures never count
       (``E_DIRECTORY_UNSIGNED``);
    4. with ``previous``: a threshold of the *previous* version's roots signed it too,
       so a new set of roots is only accepted from the old one
       (``E_DIRECTORY_UNSIGNED``);
    5. with ``previous``: the version is higher (``E_DIRECTORY_ROLLBACK``);
    6. it has not expired at ``now`` (``E_DIRECTORY_EXPIRED``).

    Args:
        raw: the document's bytes.
        now: the current time (timezone-aware).
        previous: the version trusted so far, if any.
        max_bytes: size limit.

    Raises:
        TooLargeError, ParseError, SchemaError, SemanticError, DirectoryUnsigned,
        DirectoryRollback, DirectoryExpired: as above.
    """
    _aware(now, "now")
    # 1-2. Size, parse, schema and model.
    document = parse_directory(raw, max_bytes=max_bytes)
    # 3. Its own roots.
    _signed_by(document, document.roots, document.threshold)
    if previous is not None:
        # 4. The roots trusted so far (python-tuf update_root: old threshold first).
        try:
            _signed_by(document, previous.roots, previous.threshold)
        except DirectoryUnsigned as exc:
            raise DirectoryUnsigned(
                f"not signed by the roots of trusted version {previous.version}: {exc.message}"
            ) from exc
        # 5. No rollback, no replay of the same version.
        if document.version <= previous.version:
            raise DirectoryRollback(
                f"version {document.version} is not higher than the trusted {previous.version}"
            )
    # 6. Not expired.
    if now >= document.expires_at:
        raise DirectoryExpired(
            f"version {document.version} expired at {wire_time(document.expires_at)}"
        )
    return TrustDirectory(document, _TOKEN)


def trusted_directory(raw: bytes, *, max_bytes: int = DEFAULT_MAX_BYTES) -> TrustDirectory:
    """Load a version that was trusted before, as the anchor for :func:`verify_directory`.

    For a node's stored copy, or ``evb directory verify --previous OLD``: steps 1-3 of
    :func:`verify_directory` (size, shape, a threshold of its own roots), but no
    expiry — a version being replaced is expected to be old — and nothing to roll
    back from. Use the result only as ``previous``; judge keys with the newest version.

    Raises:
        TooLargeError, ParseError, SchemaError, SemanticError, DirectoryUnsigned.
    """
    document = parse_directory(raw, max_bytes=max_bytes)
    _signed_by(document, document.roots, document.threshold)
    return TrustDirectory(document, _TOKEN)


class TrustDirectory:
    """A verified directory version: what the network trusts right now.

    Only :func:`verify_directory` and :func:`trusted_directory` make one.
    """

    __slots__ = ("_document", "_keys", "_participants", "_policy")

    def __init__(self, document: DirectoryDocument, token: object) -> None:
        if token is not _TOKEN:
            raise TrustError("a TrustDirectory is only made by verify_directory")
        self._document = document
        self._participants = {p.id: p for p in document.participants}
        self._keys = {key.kid: (p.id, key) for p in document.participants for key in p.keys}
        self._policy = document.policy if document.policy is not None else _policy.default_policy()

    @property
    def document(self) -> DirectoryDocument:
        """The verified document."""
        return self._document

    @property
    def version(self) -> int:
        """The version number."""
        return self._document.version

    @property
    def expires_at(self) -> datetime:
        """When this version expires."""
        return self._document.expires_at

    @property
    def roots(self) -> tuple[RootKey, ...]:
        """The root keys that signed this version."""
        return self._document.roots

    @property
    def threshold(self) -> int:
        """How many distinct roots must sign the next version."""
        return self._document.threshold

    @property
    def participants(self) -> tuple[Participant, ...]:
        """Every participant, in document order."""
        return self._document.participants

    @property
    def policy(self) -> Policy:
        """The policy in force: the directory's own, else the default policy."""
        return self._policy

    def participant(self, participant: str) -> Participant:
        """Return a participant.

        Raises:
            KeyUnknown: not in the directory.
        """
        try:
            return self._participants[participant]
        except KeyError:
            raise KeyUnknown(f"{participant} is not in the trust directory") from None

    def suite(self, participant: str) -> Literal["classic", "hybrid"]:
        """Return the participant's suite.

        Raises:
            KeyUnknown: not in the directory.
        """
        return self.participant(participant).suite

    def verification_key(
        self, kid: str, *, use: crypto.Use, at: datetime
    ) -> tuple[str, crypto.PublicKey]:
        """Return the owner and the key of ``kid``, judged at ``at`` (e.g. an envelope's sent_at).

        Checks, in order:

        1. the kid is a participant's key (root keys sign only directories) of this
           ``use`` (``sig`` or ``seal``) — else ``E_KEY_UNKNOWN``;
        2. it is not revoked: for compromise whatever ``at``, when retired from
           ``revoked_at`` on — else ``E_KEY_REVOKED``;
        3. ``not_before <= at < not_after`` — else ``E_KEY_EXPIRED``.

        Raises:
            KeyUnknown, KeyRevoked, KeyExpired: as above.
            TrustError: ``at`` is not timezone-aware.
        """
        _aware(at, "the time a key is judged at")
        # 1. Known, and meant for this use.
        entry = self._keys.get(kid)
        if entry is None:
            raise KeyUnknown(f"{kid} is not a participant key in the trust directory")
        owner, key = entry
        if use == "enc" or key.use != use:
            raise KeyUnknown(f"{kid} is not a {use} key")
        # 2. Revocation.
        if key.revocation_reason == "compromise":
            raise KeyRevoked(f"{kid} was revoked: compromised")
        if key.revoked_at is not None and at >= key.revoked_at:
            raise KeyRevoked(f"{kid} was retired at {wire_time(key.revoked_at)}")
        # 3. Validity window.
        if not key.not_before <= at < key.not_after:
            raise KeyExpired(
                f"{kid} is valid from {wire_time(key.not_before)} until {wire_time(key.not_after)}"
            )
        return owner, key.public_key()

    def encryption_key(self, participant: str, at: datetime) -> crypto.PublicKey:
        """Return the key to encrypt to: the participant's newest usable enc key of its suite.

        Usable means not revoked (retired keys: before ``revoked_at``) and
        ``not_before <= at < not_after``; newest means the latest ``not_before``.

        Raises:
            KeyUnknown: not in the directory, or no usable encryption key at ``at``.
            TrustError: ``at`` is not timezone-aware.
        """
        _aware(at, "the time a key is judged at")
        owner = self.participant(participant)
        alg = crypto.ENC_HYBRID if owner.suite == "hybrid" else crypto.ENC_X25519
        usable = [
            (key.not_before, index, key)
            for index, key in enumerate(owner.keys)
            if key.use == "enc" and key.alg == alg and _usable(key, at)
        ]
        if not usable:
            raise KeyUnknown(f"{participant} has no usable {alg} encryption key at {wire_time(at)}")
        return max(usable, key=lambda item: (item[0], item[1]))[2].public_key()

    def check_route(self, sender: str, recipient: str, message_type: str) -> None:
        """Allow a message from ``sender`` to ``recipient``, or refuse it.

        A participant that is not in the directory has no role, so no rule can allow
        a route from or to it: that is a policy refusal too (an unknown *sender's key*
        is reported as ``E_KEY_UNKNOWN`` earlier, when its signature is checked).

        Raises:
            PolicyError: the policy forbids the route, or a participant is unknown.
        """
        roles: list[Role] = []
        for who in (sender, recipient):
            found = self._participants.get(who)
            if found is None:
                raise PolicyError(f"{who} is not in the trust directory")
            roles.append(found.role)
        try:
            _policy.check_route(self._policy, roles[0], roles[1], message_type)
        except PolicyError as exc:
            raise PolicyError(
                f"{sender} may not send {message_type} to {recipient}: {exc.message}"
            ) from None


def _usable(key: DirectoryKey, at: datetime) -> bool:
    if key.revocation_reason == "compromise":
        return False
    if key.revoked_at is not None and at >= key.revoked_at:
        return False
    return key.not_before <= at < key.not_after


# -- editing -----------------------------------------------------------------------------


class _Validity(Protocol):
    @property
    def not_before(self) -> datetime: ...

    @property
    def not_after(self) -> datetime: ...


class KeyListing(Protocol):
    """A participant's public keys as ``ID.pub.json`` holds them.

    :class:`broker.keys.PublicKeySet` is one; the trust core does not import the key
    files' module.
    """

    @property
    def participant(self) -> str:
        """The participant id."""
        ...

    @property
    def suite(self) -> Literal["classic", "hybrid"]:
        """``classic`` or ``hybrid``."""
        ...

    @property
    def keys(self) -> Sequence[tuple[crypto.PublicKey, _Validity]]:
        """Each public key with its validity."""
        ...


def dump_directory(document: DirectoryDocument) -> bytes:
    """Return a document as the bytes of a directory file (indented JSON, final newline)."""
    return (json.dumps(document.to_json_obj(), indent=2, ensure_ascii=False) + "\n").encode()


def default_routing(participant: str, country: str) -> dict[str, str]:
    """Return the routing a participant gets unless told otherwise.

    The site is the participant's country (one RabbitMQ site per country), the vhost
    ``evb-<country in lower case>`` and the exchange ``evb.<participant id>``:
    ``AT.247`` in ``AT`` → ``{"site": "AT", "vhost": "evb-at", "exchange": "evb.AT.247"}``.
    """
    return {"site": country, "vhost": f"evb-{country.lower()}", "exchange": f"evb.{participant}"}


def _root(key: crypto.PublicKey) -> dict[str, str]:
    return {"kid": key.kid, "alg": key.alg, "public": crypto.b64u_encode(key.raw)}


def _reissue(document: DirectoryDocument, data: dict[str, Any], now: datetime) -> DirectoryDocument:
    _aware(now, "now")
    validity = document.expires_at - document.issued_at
    data["version"] = document.version + 1
    data["issued_at"] = wire_time(now)
    data["expires_at"] = wire_time(now + validity)
    data["signatures"] = []
    return _document(data)


def init_directory(
    roots: Sequence[crypto.PublicKey],
    threshold: int,
    expires_in: timedelta,
    now: datetime,
    *,
    policy: Policy | None = None,
) -> DirectoryDocument:
    """Start a directory: version 1, no participants, these roots, the default policy.

    Args:
        roots: the roots' Ed25519 ``sig`` keys (from their ``ID.pub.json``).
        threshold: how many distinct roots must sign.
        expires_in: the validity period (kept by later versions).
        now: the issue time.
        policy: the policy to embed; the default policy if None.

    Raises:
        SchemaError, SemanticError: e.g. a threshold above the number of roots, a
            root that is not an Ed25519 key, a non-positive validity.
    """
    _aware(now, "now")
    chosen = policy if policy is not None else _policy.default_policy()
    data: dict[str, Any] = {
        "version": 1,
        "issued_at": wire_time(now),
        "expires_at": wire_time(now + expires_in),
        "participants": [],
        "roots": [_root(key) for key in roots],
        "threshold": threshold,
        "policy": chosen.model_dump(mode="json", exclude_none=True),
        "signatures": [],
    }
    return _document(data)


def add_participant(
    document: DirectoryDocument,
    listing: KeyListing,
    role: Role,
    country: str,
    name: str | None = None,
    routing: Mapping[str, str] | None = None,
    *,
    now: datetime,
) -> DirectoryDocument:
    """Add a participant from its public keys, or update one that is listed.

    A new participant is named ``name`` (default: its id) and routed by ``routing``
    (default: :func:`default_routing`). For a listed participant, role, country and
    suite are replaced, ``name`` and ``routing`` only when given, and keys not listed
    yet are appended — that is how a key rotation enters the directory; keys already
    listed keep their entry (and revocation).

    Raises:
        SchemaError, SemanticError: the result is not a valid directory (e.g. a kid
            another participant has, a root name as participant id).
    """
    data = document.to_json_obj()
    keys = [
        {
            "kid": key.kid,
            "use": key.use,
            "alg": key.alg,
            "public": crypto.b64u_encode(key.raw),
            "not_before": wire_time(validity.not_before),
            "not_after": wire_time(validity.not_after),
        }
        for key, validity in listing.keys
    ]
    entries: list[dict[str, Any]] = data["participants"]
    existing = next((e for e in entries if e["id"] == listing.participant), None)
    if existing is None:
        entries.append(
            {
                "id": listing.participant,
                "name": name if name is not None else listing.participant,
                "country": country,
                "role": role,
                "suite": listing.suite,
                "keys": keys,
                "routing": dict(routing or default_routing(listing.participant, country)),
            }
        )
    else:
        known = {key["kid"] for key in existing["keys"]}
        existing["keys"].extend(key for key in keys if key["kid"] not in known)
        existing.update(role=role, country=country, suite=listing.suite)
        if name is not None:
            existing["name"] = name
        if routing is not None:
            existing["routing"] = dict(routing)
    return _reissue(document, data, now)


def revoke_key(
    document: DirectoryDocument,
    participant: str,
    kid: str,
    reason: RevocationReason,
    at: datetime,
    *,
    now: datetime | None = None,
) -> DirectoryDocument:
    """Revoke a participant's key.

    A key revoked for compromise is refused whatever the date; a retired key from
    ``at`` on. A retired key may later be marked compromised, never the reverse.

    Args:
        document: the directory.
        participant: the key's owner.
        kid: the key.
        reason: ``compromise`` or ``retired``.
        at: when the key stops being valid (``revoked_at``).
        now: the issue time of the new version (default: ``at``).

    Raises:
        KeyUnknown: the participant is not listed, or the kid is not one of its keys.
        KeyRevoked: the key was already revoked for compromise.
    """
    _aware(at, "the revocation time")
    data = document.to_json_obj()
    entry = next((e for e in data["participants"] if e["id"] == participant), None)
    if entry is None:
        raise KeyUnknown(f"{participant} is not in the trust directory")
    key = next((k for k in entry["keys"] if k["kid"] == kid), None)
    if key is None:
        raise KeyUnknown(f"{kid} is not a key of {participant}")
    if key.get("revocation_reason") == "compromise":
        raise KeyRevoked(f"{kid} is already revoked for compromise")
    key["revoked_at"] = wire_time(at)
    key["revocation_reason"] = reason
    return _reissue(document, data, now if now is not None else at)


def set_roots(
    document: DirectoryDocument,
    roots: Sequence[crypto.PublicKey],
    threshold: int,
    *,
    now: datetime,
) -> DirectoryDocument:
    """Replace the roots and the threshold (root rotation).

    The new version must then be signed by a threshold of the *old* roots as well as
    of the new ones before nodes accept it.

    Raises:
        SchemaError, SemanticError: e.g. a threshold above the number of roots.
    """
    data = document.to_json_obj()
    data["roots"] = [_root(key) for key in roots]
    data["threshold"] = threshold
    return _reissue(document, data, now)


def set_policy(document: DirectoryDocument, policy: Policy, *, now: datetime) -> DirectoryDocument:
    """Replace the authorisation policy."""
    data = document.to_json_obj()
    data["policy"] = policy.model_dump(mode="json", exclude_none=True)
    return _reissue(document, data, now)


def sign_directory(
    document: DirectoryDocument, signing_key: crypto.SigningKey
) -> DirectoryDocument:
    """Add (or replace) one signature; the version and content stay as they are.

    Any Ed25519 ``sig`` key may sign, because during a root rotation the old roots,
    which the new version no longer lists, must sign it too; signatures by keys that
    are no root of the version being checked simply do not count.

    Raises:
        ConfigError: not an Ed25519 ``sig`` key (roots sign with Ed25519).
    """
    if signing_key.use != "sig" or signing_key.alg != crypto.SIG_ED25519:
        raise ConfigError(f"{signing_key.kid} is not an Ed25519 sig key: roots sign with Ed25519")
    value = crypto.b64u_encode(signing_key.sign(canonical(document.unsigned())))
    data = document.to_json_obj()
    kept = [s for s in data["signatures"] if s["kid"] != signing_key.kid]
    data["signatures"] = sorted(
        [*kept, {"kid": signing_key.kid, "value": value}], key=lambda s: s["kid"]
    )
    return _document(data)
