"""Key generation and key files: the I/O edge over :mod:`broker.crypto`.

This module owns a participant's key directory. For a participant ``ID`` (for
example ``AT.247``, or a root such as ``root1``) in a directory ``DIR``:

==========================  ====  ==============================================
file                        mode  content
==========================  ====  ==============================================
``DIR/ID.sig.pem``          0600  Ed25519 envelope signature key (PKCS#8 PEM)
``DIR/ID.sig-pq.pem``       0600  ML-DSA-65 signature key (hybrid suite only)
``DIR/ID.seal.pem``         0600  Ed25519 document-seal key (``--seal`` only; a
                                  participant without one seals with its
                                  signing key)
``DIR/ID.enc.pem``          0600  X25519 HPKE key (for the hybrid suite: its
                                  X25519 part)
``DIR/ID.enc-mlkem.pem``    0600  ML-KEM-768 part of the hybrid HPKE key
``DIR/ID.pub.json``         0644  the public halves, for the trust directory
==========================  ====  ==============================================

Hybrid private keys that have no single serialisation are stored as their parts,
one PKCS#8 file each. Private key files may be encrypted with a passphrase
(``EVB_KEY_PASSPHRASE``, see :func:`passphrase_from_env`); every file is written
atomically (:func:`broker.files.atomic_write`) and only inside the directory given.

``ID.pub.json`` (binary values base64url without padding, times RFC 3339 UTC ms)::

    {"participant": "AT.247", "suite": "classic" | "hybrid",
     "keys": [{"kid", "use": "sig" | "seal" | "enc", "alg", "public",
               "not_before", "not_after"}]}

A classic participant has one Ed25519 ``sig`` key and one X25519 ``enc`` key (and
an Ed25519 ``seal`` key with ``--seal``); a hybrid participant additionally has an
ML-DSA-65 ``sig`` key, and its ``enc`` key is ``ML-KEM-768+X25519``.

Participant ids become file names, so only two shapes are accepted:
``CC.name`` (two or three capitals, a dot, 1-32 of ``A-Za-z0-9_-``) and plain root
names (``root1``: a lower-case letter then up to 31 of ``a-z0-9_-``).

Unreadable, undecryptable or inconsistent key files raise :class:`ConfigError`
(``E_CONFIG``); a malformed ``ID.pub.json`` raises :class:`ParseError` (``E_PARSE``)
or :class:`SchemaError` (``E_SCHEMA``).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Final, Literal, cast

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, mldsa, mlkem, x25519
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes

from broker import crypto, ids
from broker.clock import parse_wire_time, wire_time
from broker.errors import ConfigError, ParseError, Problem, SchemaError, TooLargeError
from broker.files import atomic_write, read_bounded
from broker.schema import load_json

__all__ = [
    "DEFAULT_VALIDITY",
    "PASSPHRASE_ENV",
    "KeySet",
    "KeyValidity",
    "PublicKeySet",
    "Suite",
    "check_participant_id",
    "generate_keyset",
    "is_participant_id",
    "key_files",
    "load_keyset",
    "load_signing_key",
    "parse_public",
    "passphrase_from_env",
    "read_public",
    "write_keyset",
]

Suite = Literal["classic", "hybrid"]

#: The environment variable holding the passphrase of private key files.
PASSPHRASE_ENV: Final = "EVB_KEY_PASSPHRASE"  # noqa: S105 (a variable name, not a secret)
#: How long a generated key set is valid unless told otherwise.
DEFAULT_VALIDITY: Final = timedelta(days=730)

_ROOT_ID = re.compile(r"[a-z][a-z0-9_-]{0,31}")

# File-name suffixes (after "ID") of private key files, and the use they hold.
_SIG: Final = ".sig.pem"
_SIG_PQ: Final = ".sig-pq.pem"
_SEAL: Final = ".seal.pem"
_ENC: Final = ".enc.pem"
_ENC_MLKEM: Final = ".enc-mlkem.pem"
_PUB: Final = ".pub.json"
_SIGNING_SUFFIXES: Final[dict[str, tuple[crypto.Use, str | None]]] = {
    # suffix: (use, required algorithm or None for any signature algorithm)
    _SIG_PQ: ("sig", crypto.SIG_MLDSA65),
    _SIG: ("sig", crypto.SIG_ED25519),
    _SEAL: ("seal", None),
}

# Generous bounds: a hybrid pub.json is about 5 KB, an ML-DSA-65 PEM under 1 KB.
_MAX_PUBLIC_BYTES: Final = 64 * 1024
_MAX_PEM_BYTES: Final = 64 * 1024

_PUB_MEMBERS: Final = frozenset({"participant", "suite", "keys"})
_KEY_MEMBERS: Final = frozenset({"kid", "use", "alg", "public", "not_before", "not_after"})
_USES: Final = ("sig", "seal", "enc")


def is_participant_id(text: str) -> bool:
    """Tell whether ``text`` is an acceptable participant id (and so a safe file name)."""
    return ids.is_participant_id(text) or bool(_ROOT_ID.fullmatch(text))


def check_participant_id(participant: str) -> str:
    """Return ``participant`` if it is an acceptable id.

    Raises:
        ConfigError: anything else (ids become file names: no ``/``, ``..``, spaces).
    """
    if not isinstance(participant, str) or not is_participant_id(participant):
        raise ConfigError(
            f"{participant!r} is not a participant id (expected e.g. AT.247 or root1)"
        )
    return participant


@dataclass(frozen=True)
class KeyValidity:
    """When a key may be used.

    Attributes:
        not_before: first instant of validity (UTC, millisecond precision).
        not_after: last instant of validity.
    """

    not_before: datetime
    not_after: datetime

    def to_json(self) -> dict[str, str]:
        """Return ``{"not_before", "not_after"}`` as wire times."""
        return {"not_before": wire_time(self.not_before), "not_after": wire_time(self.not_after)}


@dataclass(frozen=True)
class PublicKeySet:
    """The public keys of one participant, as ``ID.pub.json`` holds them.

    Attributes:
        participant: the participant id.
        suite: ``classic`` or ``hybrid``.
        keys: each public key with its validity, in file order.
    """

    participant: str
    suite: Suite
    keys: tuple[tuple[crypto.PublicKey, KeyValidity], ...]

    def by_use(self, use: crypto.Use) -> list[tuple[crypto.PublicKey, KeyValidity]]:
        """Return the keys with this use (``sig``, ``seal`` or ``enc``), in file order."""
        return [(key, validity) for key, validity in self.keys if key.use == use]

    def to_json(self) -> dict[str, Any]:
        """Return the ``ID.pub.json`` document."""
        return {
            "participant": self.participant,
            "suite": self.suite,
            "keys": [
                {
                    "kid": key.kid,
                    "use": key.use,
                    "alg": key.alg,
                    "public": crypto.b64u_encode(key.raw),
                    **validity.to_json(),
                }
                for key, validity in self.keys
            ],
        }


def _json_object(data: bytes, what: str) -> dict[str, Any]:
    try:
        document, _ = load_json(data)
    except ParseError as exc:
        raise ParseError(f"{what} is not valid JSON: {exc.message}") from exc
    if not isinstance(document, dict):
        raise SchemaError(f"{what} must be a JSON object")
    return cast(dict[str, Any], document)


def _members(
    obj: dict[str, Any], expected: frozenset[str], pointer: str, problems: list[Problem]
) -> bool:
    ok = True
    for name in sorted(expected - obj.keys()):
        problems.append(Problem(f"{pointer}/{name}", "E_SCHEMA", f"missing member {name!r}"))
        ok = False
    for name in sorted(obj.keys() - expected):
        problems.append(Problem(f"{pointer}/{name}", "E_SCHEMA", f"unknown member {name!r}"))
        ok = False
    return ok


def _wire_time(value: object, pointer: str, problems: list[Problem]) -> datetime | None:
    if isinstance(value, str):
        try:
            return parse_wire_time(value)
        except ValueError:
            pass
    problems.append(
        Problem(pointer, "E_SCHEMA", "not a wire time (RFC 3339, UTC, milliseconds, Z)")
    )
    return None


def _parse_key(
    entry: object, participant: str | None, pointer: str, problems: list[Problem]
) -> tuple[crypto.PublicKey, KeyValidity] | None:
    # 1. An object with exactly the documented members.
    if not isinstance(entry, dict):
        problems.append(Problem(pointer, "E_SCHEMA", "a key must be a JSON object"))
        return None
    if not _members(entry, _KEY_MEMBERS, pointer, problems):
        return None
    before = len(problems)
    # 2. Use and algorithm: a known pair.
    use, alg = entry["use"], entry["alg"]
    if not isinstance(use, str) or use not in _USES:
        problems.append(Problem(f"{pointer}/use", "E_SCHEMA", "use must be sig, seal or enc"))
    else:
        allowed = crypto.ENC_ALGORITHMS if use == "enc" else crypto.SIG_ALGORITHMS
        if not isinstance(alg, str) or alg not in allowed:
            problems.append(
                Problem(f"{pointer}/alg", "E_SCHEMA", f"not an algorithm for use {use}")
            )
    # 3. The raw public key: canonical base64url.
    raw: bytes | None = None
    if isinstance(entry["public"], str):
        with contextlib.suppress(ValueError):
            raw = crypto.b64u_decode(entry["public"])
    if raw is None:
        problems.append(Problem(f"{pointer}/public", "E_SCHEMA", "not base64url without padding"))
    # 4. Validity: two wire times, in order.
    not_before = _wire_time(entry["not_before"], f"{pointer}/not_before", problems)
    not_after = _wire_time(entry["not_after"], f"{pointer}/not_after", problems)
    if not_before is not None and not_after is not None and not_after <= not_before:
        problems.append(
            Problem(f"{pointer}/not_after", "E_SCHEMA", "not_after must be after not_before")
        )
    if not isinstance(entry["kid"], str):
        problems.append(Problem(f"{pointer}/kid", "E_SCHEMA", "kid must be a string"))
    if len(problems) > before or raw is None or not_before is None or not_after is None:
        return None
    # 5. The raw key length fits the algorithm.
    try:
        key = crypto.PublicKey(entry["kid"], use, alg, raw)
    except ValueError as exc:
        problems.append(Problem(f"{pointer}/public", "E_SCHEMA", str(exc)))
        return None
    # 6. The key id is the one derived from participant, use and raw key.
    if participant is not None and key.kid != crypto.key_id(participant, use, raw):
        problems.append(
            Problem(
                f"{pointer}/kid",
                "E_SCHEMA",
                "kid does not match the participant, use and public key",
            )
        )
        return None
    return key, KeyValidity(not_before, not_after)


# What a suite's key set holds: (use, alg) -> (minimum, maximum) count.
_COMPOSITION: Final[dict[str, dict[tuple[str, str], tuple[int, int]]]] = {
    "classic": {
        ("sig", crypto.SIG_ED25519): (1, 1),
        ("seal", crypto.SIG_ED25519): (0, 1),
        ("enc", crypto.ENC_X25519): (1, 1),
    },
    "hybrid": {
        ("sig", crypto.SIG_ED25519): (1, 1),
        ("sig", crypto.SIG_MLDSA65): (1, 1),
        ("seal", crypto.SIG_ED25519): (0, 1),
        ("enc", crypto.ENC_HYBRID): (1, 1),
    },
}


def _check_composition(suite: str, keys: list[crypto.PublicKey], problems: list[Problem]) -> None:
    wanted = _COMPOSITION[suite]
    counts: dict[tuple[str, str], int] = {}
    for key in keys:
        counts[(key.use, key.alg)] = counts.get((key.use, key.alg), 0) + 1
    for use, alg in sorted(counts):
        if (use, alg) not in wanted:
            problems.append(
                Problem("/keys", "E_SCHEMA", f"a {suite} key set has no {alg} {use} key")
            )
    for (use, alg), (low, high) in sorted(wanted.items()):
        count = counts.get((use, alg), 0)
        if not low <= count <= high:
            expected = f"exactly {low}" if low == high else f"at most {high}"
            problems.append(
                Problem("/keys", "E_SCHEMA", f"a {suite} key set has {expected} {alg} {use} key")
            )
    kids = [key.kid for key in keys]
    if len(set(kids)) != len(kids):
        problems.append(Problem("/keys", "E_SCHEMA", "a kid appears twice"))


def parse_public(data: bytes, what: str = "the public key file") -> PublicKeySet:
    """Parse the bytes of an ``ID.pub.json`` document strictly (pure, no I/O).

    Args:
        data: the document.
        what: how to name it in messages (e.g. the file name).

    Returns:
        the participant's public keys.

    Raises:
        TooLargeError: over 64 KiB.
        ParseError: not UTF-8 JSON, duplicate members, NaN/Infinity.
        SchemaError: anything else wrong, with one problem per fault: missing or
            unknown members, bad participant id or suite, unknown use or algorithm,
            bad base64url, wrong raw key length, a kid that is not
            ``key_id(participant, use, raw)``, bad or inverted validity, or keys
            that do not make up the suite (e.g. two enc keys, no sig key).
    """
    # 1. Bounded, well-formed JSON object.
    if len(data) > _MAX_PUBLIC_BYTES:
        raise TooLargeError(f"{what} is over {_MAX_PUBLIC_BYTES} bytes")
    document = _json_object(data, what)
    problems: list[Problem] = []
    if not _members(document, _PUB_MEMBERS, "", problems):
        raise SchemaError(f"{what} is not a public key file", tuple(problems))
    # 2. Participant id and suite.
    participant = document["participant"]
    if not isinstance(participant, str) or not is_participant_id(participant):
        problems.append(Problem("/participant", "E_SCHEMA", "not a participant id"))
        participant = None
    suite = document["suite"]
    if not isinstance(suite, str) or suite not in _COMPOSITION:
        problems.append(Problem("/suite", "E_SCHEMA", "suite must be classic or hybrid"))
    # 3. Each key on its own (its kid checked against the participant).
    entries = document["keys"]
    if not isinstance(entries, list) or not entries:
        problems.append(Problem("/keys", "E_SCHEMA", "keys must be a non-empty list"))
        entries = []
    parsed = [
        _parse_key(entry, participant, f"/keys/{index}", problems)
        for index, entry in enumerate(entries)
    ]
    # 4. Together, the keys make up the suite.
    if not problems:
        _check_composition(suite, [item[0] for item in parsed if item is not None], problems)
    if problems or participant is None:
        raise SchemaError(f"{what} is not a valid public key file", tuple(problems))
    keys = tuple(item for item in parsed if item is not None)
    return PublicKeySet(participant, cast(Suite, suite), keys)


def read_public(path: Path) -> PublicKeySet:
    """Read and strictly check an ``ID.pub.json`` file.

    Every key id must equal ``crypto.key_id(participant, use, raw)`` and every raw key
    must have its algorithm's length: a file with a wrong kid is refused.

    Raises:
        ConfigError: the file cannot be read.
        TooLargeError: over 64 KiB.
        ParseError: not JSON (see :func:`parse_public`).
        SchemaError: not a valid public key file (see :func:`parse_public`).
    """
    return parse_public(read_bounded(path, _MAX_PUBLIC_BYTES, "public key file"), str(path))


def _load_private(path: Path, passphrase: bytes | None) -> PrivateKeyTypes:
    """Load one PKCS#8 PEM private key, translating every failure to ConfigError."""
    data = read_bounded(path, _MAX_PEM_BYTES, "key file")
    # An encrypted PKCS#8 PEM is labelled "ENCRYPTED" (the label is not spelt out
    # whole: no file outside tests/ may contain the private-key PEM label).
    encrypted = data.lstrip().startswith(b"-----BEGIN ENCRYPTED ")
    if encrypted and not passphrase:
        raise ConfigError(f"{path} is encrypted: set {PASSPHRASE_ENV}")
    if not encrypted and passphrase:
        # Refused rather than ignored: a passphrase that protects nothing is a mistake.
        raise ConfigError(f"{path} is not encrypted, but a passphrase was given")
    try:
        return serialization.load_pem_private_key(data, password=passphrase or None)
    except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
        # ValueError: wrong passphrase, not PEM, not a key; TypeError: passphrase and
        # encryption disagree; UnsupportedAlgorithm: a key type cryptography lacks.
        if encrypted:
            reason = "wrong passphrase, or not a private key"
        else:
            reason = "not a PKCS#8 PEM private key"
        raise ConfigError(f"cannot load {path}: {reason}") from exc


def _name_convention(path: Path) -> tuple[str, crypto.Use, str | None] | None:
    for suffix, (use, alg) in _SIGNING_SUFFIXES.items():
        if path.name.endswith(suffix):
            return path.name[: -len(suffix)], use, alg
    return None


def load_signing_key(
    path: Path,
    passphrase: bytes | None,
    *,
    participant: str | None = None,
    use: crypto.Use | None = None,
) -> crypto.SigningKey:
    """Load a signature or seal key (PKCS#8 PEM, Ed25519 or ML-DSA-65) and derive its kid.

    The key id needs the participant and the use. Unless given as keyword arguments,
    they come from the file name: ``ID.sig.pem`` (Ed25519 ``sig``), ``ID.sig-pq.pem``
    (ML-DSA-65 ``sig``) or ``ID.seal.pem`` (``seal``, either algorithm). With a name
    that follows the convention, the key's algorithm must match it.

    Args:
        path: the PEM file.
        passphrase: its passphrase, or None for an unencrypted file.
        participant: the participant id, overriding the file name.
        use: ``sig`` or ``seal``, overriding the file name.

    Raises:
        ConfigError: unreadable file, wrong or missing passphrase, not a private key,
            not a signature key (e.g. an X25519 key), an algorithm the file name does
            not announce, or no participant / use to derive the kid from.
        TooLargeError: the file is over 64 KiB.
    """
    # 1. Participant and use: explicit, else from the file name.
    convention = _name_convention(path)
    required_alg: str | None = None
    if convention is not None:
        name_participant, name_use, required_alg = convention
        participant = participant if participant is not None else name_participant
        if use is not None and use != name_use:
            required_alg = None  # the caller overrides the convention
        use = use if use is not None else name_use
    if participant is None or use is None:
        raise ConfigError(
            f"{path.name} does not follow ID.sig.pem / ID.sig-pq.pem / ID.seal.pem: "
            "give the participant and use"
        )
    check_participant_id(participant)
    if use not in ("sig", "seal"):
        raise ConfigError(f"{use!r} is not a signature use (sig or seal)")
    # 2. The private key itself.
    private = _load_private(path, passphrase)
    # 3. Its algorithm: a signature algorithm, the one the file name announces.
    alg: str
    if isinstance(private, ed25519.Ed25519PrivateKey):
        alg = crypto.SIG_ED25519
    elif isinstance(private, mldsa.MLDSA65PrivateKey):
        alg = crypto.SIG_MLDSA65
    else:
        raise ConfigError(f"{path} does not hold an Ed25519 or ML-DSA-65 key")
    if required_alg is not None and alg != required_alg:
        raise ConfigError(f"{path} holds an {alg} key, its name announces {required_alg}")
    # 4. The kid, derived from participant, use and the raw public key.
    raw = private.public_key().public_bytes_raw()
    return crypto.SigningKey(crypto.key_id(participant, use, raw), use, alg, private)


@dataclass(frozen=True)
class KeySet:
    """A participant's private keys.

    Attributes:
        participant: the participant id.
        suite: ``classic`` or ``hybrid``.
        sig: the Ed25519 envelope signature key.
        sig_pq: the ML-DSA-65 signature key (hybrid suite), else None.
        seal: the document-seal key: a separate ``seal`` key if one was generated,
            otherwise the same object as ``sig`` (a participant without one seals
            with its signing key).
        enc: the HPKE decryption key (X25519, or ML-KEM-768+X25519 for hybrid).
        validity: the validity of every key in the set.
    """

    participant: str
    suite: Suite
    sig: crypto.SigningKey
    sig_pq: crypto.SigningKey | None
    seal: crypto.SigningKey
    enc: crypto.DecryptionKey
    validity: KeyValidity = field()

    def __post_init__(self) -> None:
        check_participant_id(self.participant)
        hybrid = self.suite == "hybrid"
        if self.sig.use != "sig" or self.sig.alg != crypto.SIG_ED25519:
            raise ConfigError("the sig key must be an Ed25519 sig key")
        if hybrid != (self.sig_pq is not None):
            raise ConfigError("a hybrid key set has an ML-DSA-65 key, a classic one none")
        if self.sig_pq is not None and (
            self.sig_pq.use != "sig" or self.sig_pq.alg != crypto.SIG_MLDSA65
        ):
            raise ConfigError("the sig_pq key must be an ML-DSA-65 sig key")
        if self.seal is not self.sig and self.seal.use != "seal":
            raise ConfigError("the seal key must be a seal key (or the sig key itself)")
        if self.enc.alg != (crypto.ENC_HYBRID if hybrid else crypto.ENC_X25519):
            raise ConfigError(f"the enc key does not belong to the {self.suite} suite")
        if self.validity.not_after <= self.validity.not_before:
            raise ConfigError("not_after must be after not_before")
        for key in (self.sig, self.sig_pq, self.seal, self.enc):
            if key is not None:
                public = key.public()
                if key.kid != crypto.key_id(self.participant, public.use, public.raw):
                    raise ConfigError(f"{key.kid} is not a key id of {self.participant}")

    @property
    def has_seal(self) -> bool:
        """Whether the set has a separate seal key (else it seals with ``sig``)."""
        return self.seal is not self.sig

    def public(self) -> PublicKeySet:
        """Return the public halves as ``ID.pub.json`` lists them (sig, sig_pq, seal, enc)."""
        keys = [self.sig.public()]
        if self.sig_pq is not None:
            keys.append(self.sig_pq.public())
        if self.has_seal:
            keys.append(self.seal.public())
        keys.append(self.enc.public())
        return PublicKeySet(
            self.participant, self.suite, tuple((key, self.validity) for key in keys)
        )


def _truncate_ms(at: datetime) -> datetime:
    utc = at.astimezone(UTC)
    return utc.replace(microsecond=utc.microsecond // 1000 * 1000)


def generate_keyset(
    participant: str,
    *,
    seal: bool = False,
    hybrid: bool = False,
    now: datetime,
    valid_for: timedelta = DEFAULT_VALIDITY,
) -> KeySet:
    """Generate a participant's keys (pure: nothing is written).

    Args:
        participant: the participant id (``AT.247``, or a root name like ``root1``).
        seal: also generate a separate Ed25519 document-seal key.
        hybrid: the post-quantum hybrid suite (adds ML-DSA-65, ML-KEM-768+X25519).
        now: the start of validity (timezone-aware; truncated to milliseconds).
        valid_for: how long the keys are valid.

    Raises:
        ConfigError: a bad participant id, a naive ``now``, a non-positive validity.
    """
    check_participant_id(participant)
    if now.tzinfo is None:
        raise ConfigError("now must be timezone-aware")
    if valid_for <= timedelta(0):
        raise ConfigError("the validity must be positive")
    not_before = _truncate_ms(now)
    validity = KeyValidity(not_before, _truncate_ms(not_before + valid_for))
    sig = crypto.generate_signing_key(participant, "sig", crypto.SIG_ED25519)
    return KeySet(
        participant=participant,
        suite="hybrid" if hybrid else "classic",
        sig=sig,
        sig_pq=(
            crypto.generate_signing_key(participant, "sig", crypto.SIG_MLDSA65) if hybrid else None
        ),
        seal=crypto.generate_signing_key(participant, "seal", crypto.SIG_ED25519) if seal else sig,
        enc=crypto.generate_decryption_key(
            participant, crypto.ENC_HYBRID if hybrid else crypto.ENC_X25519
        ),
        validity=validity,
    )


def key_files(directory: Path, participant: str) -> dict[str, Path]:
    """Return every file a participant's key set may use, by role.

    Roles: ``sig``, ``sig_pq``, ``seal``, ``enc``, ``enc_mlkem`` (private, 0600) and
    ``pub`` (public, 0644).

    Raises:
        ConfigError: a bad participant id.
    """
    check_participant_id(participant)
    return {
        "sig": directory / f"{participant}{_SIG}",
        "sig_pq": directory / f"{participant}{_SIG_PQ}",
        "seal": directory / f"{participant}{_SEAL}",
        "enc": directory / f"{participant}{_ENC}",
        "enc_mlkem": directory / f"{participant}{_ENC_MLKEM}",
        "pub": directory / f"{participant}{_PUB}",
    }


def _private_parts(
    keyset: KeySet,
) -> dict[str, crypto.SigningPrivate | x25519.X25519PrivateKey | mlkem.MLKEM768PrivateKey]:
    parts: dict[str, crypto.SigningPrivate | x25519.X25519PrivateKey | mlkem.MLKEM768PrivateKey] = {
        "sig": keyset.sig.private
    }
    if keyset.sig_pq is not None:
        parts["sig_pq"] = keyset.sig_pq.private
    if keyset.has_seal:
        parts["seal"] = keyset.seal.private
    enc_parts = keyset.enc.parts()
    parts["enc"] = enc_parts[""]
    if "mlkem" in enc_parts:
        parts["enc_mlkem"] = enc_parts["mlkem"]
    return parts


def write_keyset(
    keyset: KeySet,
    directory: Path,
    passphrase: bytes | None,
    *,
    overwrite: bool = False,
) -> list[Path]:
    """Write a key set's files into ``directory`` (and nowhere else).

    Private keys go to one PKCS#8 PEM file each, mode 0600, encrypted when a
    passphrase is given; the public halves go to ``ID.pub.json`` (mode 0644), written
    last so that its presence means the set is complete. Every write is atomic. The
    directory is created (mode 0700) if it does not exist.

    Args:
        keyset: the keys.
        directory: the key directory.
        passphrase: encrypts the private key files; None or empty for none.
        overwrite: replace an existing key set of the participant; private key files
            the new set does not have (e.g. an old ``ID.seal.pem``) are removed, so the
            directory never mixes two generations.

    Returns:
        the files written, private keys first, ``ID.pub.json`` last.

    Raises:
        ConfigError: a private key file of the participant already exists (and
            ``overwrite`` is false), or the directory cannot be written.
    """
    files = key_files(directory, keyset.participant)
    private_roles = ("sig", "sig_pq", "seal", "enc", "enc_mlkem")
    # 1. Refuse before writing anything if keys would be replaced.
    existing = [files[role] for role in private_roles if files[role].exists()]
    if existing and not overwrite:
        names = ", ".join(path.name for path in existing)
        raise ConfigError(f"refusing to overwrite private keys in {directory}: {names}")
    parts = _private_parts(keyset)
    pems = {role: crypto.private_key_pem(private, passphrase) for role, private in parts.items()}
    public = (json.dumps(keyset.public().to_json(), indent=2, ensure_ascii=False) + "\n").encode(
        "utf-8"
    )
    written: list[Path] = []
    try:
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        # 2. Private key files, 0600 from their first byte.
        for role, pem in pems.items():
            atomic_write(files[role], pem, mode=0o600)
            written.append(files[role])
        # 3. Stale private files of an earlier set (only reachable with overwrite).
        for role in private_roles:
            if role not in pems:
                files[role].unlink(missing_ok=True)
        # 4. The public halves, last.
        atomic_write(files["pub"], public, mode=0o644)
        written.append(files["pub"])
    except OSError as exc:
        raise ConfigError(f"cannot write keys to {directory}: {exc.strerror or exc}") from exc
    return written


def _matches(private_public: crypto.PublicKey, listed: crypto.PublicKey | None, path: Path) -> None:
    if listed is None or private_public != listed:
        raise ConfigError(f"{path} does not match the public key file")


def load_keyset(directory: Path, participant: str, passphrase: bytes | None) -> KeySet:
    """Load a participant's key set written by :func:`write_keyset`.

    ``ID.pub.json`` says which files to expect (suite, separate seal key) and the
    validity; each private key must be the private half of the key listed there.

    Raises:
        ConfigError: bad participant id, a missing or unreadable key file, wrong or
            missing passphrase, a private key that does not match ``ID.pub.json``,
            keys with differing validity.
        ParseError: ``ID.pub.json`` is not JSON.
        SchemaError: ``ID.pub.json`` is not a valid public key file.
        TooLargeError: a file over 64 KiB.
    """
    files = key_files(directory, participant)
    # 1. The public halves: suite, key list, validity.
    public = read_public(files["pub"])
    if public.participant != participant:
        raise ConfigError(f"{files['pub']} belongs to {public.participant}, not {participant}")
    validities = {validity for _, validity in public.keys}
    if len(validities) != 1:
        raise ConfigError(f"{files['pub']} lists keys with different validity")
    listed: dict[tuple[str, str], crypto.PublicKey] = {
        (key.use, key.alg): key for key, _ in public.keys
    }
    hybrid = public.suite == "hybrid"
    # 2. Signature keys, each the private half of its listed key.
    sig = load_signing_key(files["sig"], passphrase, participant=participant, use="sig")
    _matches(sig.public(), listed.get(("sig", crypto.SIG_ED25519)), files["sig"])
    sig_pq = None
    if hybrid:
        sig_pq = load_signing_key(files["sig_pq"], passphrase, participant=participant, use="sig")
        _matches(sig_pq.public(), listed.get(("sig", crypto.SIG_MLDSA65)), files["sig_pq"])
    seal = sig
    listed_seal = public.by_use("seal")
    if listed_seal:
        seal = load_signing_key(files["seal"], passphrase, participant=participant, use="seal")
        _matches(seal.public(), listed_seal[0][0], files["seal"])
    # 3. The decryption key, from its parts.
    classic = _load_private(files["enc"], passphrase)
    if not isinstance(classic, x25519.X25519PrivateKey):
        raise ConfigError(f"{files['enc']} does not hold an X25519 key")
    pq: mlkem.MLKEM768PrivateKey | None = None
    if hybrid:
        part = _load_private(files["enc_mlkem"], passphrase)
        if not isinstance(part, mlkem.MLKEM768PrivateKey):
            raise ConfigError(f"{files['enc_mlkem']} does not hold an ML-KEM-768 key")
        pq = part
    alg = crypto.ENC_HYBRID if hybrid else crypto.ENC_X25519
    raw = crypto.DecryptionKey("", alg, classic, pq).public().raw
    enc = crypto.DecryptionKey(crypto.key_id(participant, "enc", raw), alg, classic, pq)
    _matches(enc.public(), listed.get(("enc", alg)), files["enc"])
    # 4. The set, with the one validity all its keys share.
    return KeySet(participant, public.suite, sig, sig_pq, seal, enc, validities.pop())


def passphrase_from_env() -> bytes | None:
    """Return the key-file passphrase from ``EVB_KEY_PASSPHRASE`` (unset or empty: None)."""
    value = os.environ.get(PASSPHRASE_ENV)
    if not value:
        return None
    return value.encode("utf-8")
