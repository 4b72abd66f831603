"""Keys, signatures and HPKE: the cryptographic primitives of envelopes and the directory.

Pure: no files, no network. Key files are read and written by :mod:`broker.keys`.

Algorithms (the names are the wire contract):

====================  =====  ================================================
``alg``               use    what
====================  =====  ================================================
``Ed25519``           sig,   RFC 8032 signatures (the classic suite)
                      seal
``ML-DSA-65``         sig,   FIPS 204 signatures (the post-quantum half of
                      seal   the hybrid suite, carried in ``sig_pq``)
``X25519``            enc    HPKE DHKEM(X25519, HKDF-SHA256)
``ML-KEM-768+X25519`` enc    HPKE hybrid KEM (FIPS 203 ML-KEM-768 + X25519)
====================  =====  ================================================

HPKE (RFC 9180, base mode) always uses HKDF-SHA256 and AES-256-GCM; the suite names
on the wire are :data:`SUITE_CLASSIC` and :data:`SUITE_HYBRID`. A key id is
``<participant>#<use>-<first 16 hex digits of SHA-256 of the raw public key>``.
Binary values are base64url without padding everywhere (:func:`b64u_encode`).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from dataclasses import dataclass
from typing import Literal

from cryptography.exceptions import InvalidSignature, InvalidTag
from cryptography.hazmat.primitives import hpke, serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, mldsa, mlkem, x25519

from broker.errors import DecryptionFailed, SignatureInvalid

__all__ = [
    "ENC_ALGORITHMS",
    "ENC_HYBRID",
    "ENC_X25519",
    "SIG_ALGORITHMS",
    "SIG_ED25519",
    "SIG_MLDSA65",
    "SUITE_CLASSIC",
    "SUITE_HYBRID",
    "DecryptionKey",
    "PublicKey",
    "SigningKey",
    "Use",
    "b64u_decode",
    "b64u_encode",
    "generate_decryption_key",
    "generate_signing_key",
    "hpke_open",
    "hpke_seal",
    "is_b64u",
    "key_id",
]

Use = Literal["sig", "seal", "enc"]

SIG_ED25519 = "Ed25519"
SIG_MLDSA65 = "ML-DSA-65"
ENC_X25519 = "X25519"
ENC_HYBRID = "ML-KEM-768+X25519"
SIG_ALGORITHMS = frozenset({SIG_ED25519, SIG_MLDSA65})
ENC_ALGORITHMS = frozenset({ENC_X25519, ENC_HYBRID})

SUITE_CLASSIC = "DHKEM-X25519-HKDF-SHA256/HKDF-SHA256/AES-256-GCM"
SUITE_HYBRID = "ML-KEM-768-X25519/HKDF-SHA256/AES-256-GCM"
_SUITE_OF_ALG = {ENC_X25519: SUITE_CLASSIC, ENC_HYBRID: SUITE_HYBRID}
_HPKE = {
    SUITE_CLASSIC: hpke.Suite(hpke.KEM.X25519, hpke.KDF.HKDF_SHA256, hpke.AEAD.AES_256_GCM),
    SUITE_HYBRID: hpke.Suite(hpke.KEM.MLKEM768_X25519, hpke.KDF.HKDF_SHA256, hpke.AEAD.AES_256_GCM),
}
_ENC_LENGTH = {
    SUITE_CLASSIC: hpke.KEM.X25519.enc_length(),
    SUITE_HYBRID: hpke.KEM.MLKEM768_X25519.enc_length(),
}
_MLKEM768_PUBLIC = 1184
_RAW_LENGTH = {
    SIG_ED25519: 32,
    SIG_MLDSA65: 1952,
    ENC_X25519: 32,
    ENC_HYBRID: _MLKEM768_PUBLIC + 32,
}

_B64U = re.compile(r"[A-Za-z0-9_-]*")
_B64U_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"


def b64u_encode(data: bytes) -> str:
    """Encode bytes as base64url without padding."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def is_b64u(text: str) -> bool:
    """Return whether ``text`` is canonical base64url without padding (without decoding).

    Canonical: the alphabet only, a possible length, and the unused low bits of the
    last character zero, so that two texts never decode to the same bytes and a
    signed value cannot be re-encoded unnoticed.
    """
    if not _B64U.fullmatch(text):
        return False
    rest = len(text) % 4
    if rest == 1:
        return False
    if rest == 0:
        return True
    unused = 0b1111 if rest == 2 else 0b11
    return _B64U_ALPHABET.index(text[-1]) & unused == 0


def b64u_decode(text: str) -> bytes:
    """Decode canonical base64url without padding.

    Raises:
        ValueError: padding, characters outside the alphabet, or a non-canonical
            encoding (see :func:`is_b64u`).
    """
    if not is_b64u(text):
        raise ValueError("not base64url without padding")
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except binascii.Error as exc:  # unreachable after is_b64u; kept fail-closed
        raise ValueError("not base64url without padding") from exc


def key_id(participant: str, use: Use, raw_public: bytes) -> str:
    """Return ``<participant>#<use>-<16 hex digits of SHA-256(raw public key)>``."""
    return f"{participant}#{use}-{hashlib.sha256(raw_public).hexdigest()[:16]}"


@dataclass(frozen=True)
class PublicKey:
    """A public key as the trust directory lists it.

    Attributes:
        kid: the key id.
        use: ``sig`` (envelopes), ``seal`` (documents) or ``enc`` (HPKE).
        alg: one of the algorithms in the module table.
        raw: the raw public key (hybrid: the ML-KEM-768 key followed by the X25519 key).
    """

    kid: str
    use: Use
    alg: str
    raw: bytes

    def __post_init__(self) -> None:
        allowed = ENC_ALGORITHMS if self.use == "enc" else SIG_ALGORITHMS
        if self.alg not in allowed:
            raise ValueError(f"{self.alg} is not an algorithm for use {self.use}")
        if len(self.raw) != _RAW_LENGTH[self.alg]:
            raise ValueError(f"a raw {self.alg} public key has {_RAW_LENGTH[self.alg]} bytes")

    @property
    def suite(self) -> str:
        """The HPKE suite name for an encryption key."""
        return _SUITE_OF_ALG[self.alg]

    def verify(self, signature: bytes, message: bytes) -> None:
        """Verify a signature made with the private half of this key.

        Raises:
            SignatureInvalid: the signature does not verify (never returns False).
        """
        try:
            if self.alg == SIG_ED25519:
                ed25519.Ed25519PublicKey.from_public_bytes(self.raw).verify(signature, message)
            elif self.alg == SIG_MLDSA65:
                mldsa.MLDSA65PublicKey.from_public_bytes(self.raw).verify(signature, message)
            else:
                raise SignatureInvalid(f"{self.kid} is not a signature key")
        except InvalidSignature as exc:
            raise SignatureInvalid(f"the signature does not verify under {self.kid}") from exc
        except ValueError as exc:  # malformed key material or signature length
            raise SignatureInvalid(f"the signature does not verify under {self.kid}") from exc


SigningPrivate = ed25519.Ed25519PrivateKey | mldsa.MLDSA65PrivateKey


@dataclass(frozen=True)
class SigningKey:
    """A private signature or seal key with its id."""

    kid: str
    use: Use
    alg: str
    private: SigningPrivate

    def sign(self, message: bytes) -> bytes:
        """Sign ``message``."""
        return self.private.sign(message)

    def public(self) -> PublicKey:
        """Return the public half as the directory lists it."""
        return PublicKey(self.kid, self.use, self.alg, self.private.public_key().public_bytes_raw())

    def parts(self) -> dict[str, SigningPrivate]:
        """Return the private key by file-name part (one PKCS#8 file each)."""
        return {"": self.private}


@dataclass(frozen=True)
class DecryptionKey:
    """A private HPKE key with its id; hybrid keys hold their two parts."""

    kid: str
    alg: str
    classic: x25519.X25519PrivateKey
    pq: mlkem.MLKEM768PrivateKey | None = None

    def __post_init__(self) -> None:
        if (self.alg == ENC_HYBRID) != (self.pq is not None):
            raise ValueError("a hybrid key has an ML-KEM part, a classic key none")

    def public(self) -> PublicKey:
        """Return the public half as the directory lists it."""
        raw = self.classic.public_key().public_bytes_raw()
        if self.pq is not None:
            raw = self.pq.public_key().public_bytes_raw() + raw
        return PublicKey(self.kid, "enc", self.alg, raw)

    def parts(self) -> dict[str, x25519.X25519PrivateKey | mlkem.MLKEM768PrivateKey]:
        """Return the private parts by file-name part: hybrid keys have no single form."""
        parts: dict[str, x25519.X25519PrivateKey | mlkem.MLKEM768PrivateKey] = {"": self.classic}
        if self.pq is not None:
            parts["mlkem"] = self.pq
        return parts

    def _hpke_private(self) -> x25519.X25519PrivateKey | hpke.MLKEM768X25519PrivateKey:
        if self.pq is None:
            return self.classic
        return hpke.MLKEM768X25519PrivateKey(self.pq, self.classic)


def generate_signing_key(participant: str, use: Use = "sig", alg: str = SIG_ED25519) -> SigningKey:
    """Generate a new signature or seal key for a participant."""
    if use == "enc" or alg not in SIG_ALGORITHMS:
        raise ValueError(f"{alg} cannot be used for {use}")
    private: SigningPrivate = (
        ed25519.Ed25519PrivateKey.generate()
        if alg == SIG_ED25519
        else mldsa.MLDSA65PrivateKey.generate()
    )
    raw = private.public_key().public_bytes_raw()
    return SigningKey(key_id(participant, use, raw), use, alg, private)


def generate_decryption_key(participant: str, alg: str = ENC_X25519) -> DecryptionKey:
    """Generate a new HPKE key for a participant (classic or hybrid)."""
    if alg not in ENC_ALGORITHMS:
        raise ValueError(f"{alg} is not an encryption algorithm")
    classic = x25519.X25519PrivateKey.generate()
    pq = mlkem.MLKEM768PrivateKey.generate() if alg == ENC_HYBRID else None
    probe = DecryptionKey("", alg, classic, pq).public()
    return DecryptionKey(key_id(participant, "enc", probe.raw), alg, classic, pq)


def _hpke_public(key: PublicKey) -> x25519.X25519PublicKey | hpke.MLKEM768X25519PublicKey:
    if key.alg == ENC_X25519:
        return x25519.X25519PublicKey.from_public_bytes(key.raw)
    return hpke.MLKEM768X25519PublicKey(
        mlkem.MLKEM768PublicKey.from_public_bytes(key.raw[:_MLKEM768_PUBLIC]),
        x25519.X25519PublicKey.from_public_bytes(key.raw[_MLKEM768_PUBLIC:]),
    )


def hpke_seal(recipient: PublicKey, plaintext: bytes, info: bytes) -> tuple[bytes, bytes]:
    """Encrypt to a recipient's key with HPKE base mode.

    Returns:
        the encapsulated key and the ciphertext (``cryptography`` returns them
        concatenated; they are split at the KEM's encapsulated-key length).
    """
    if recipient.use != "enc":
        raise ValueError(f"{recipient.kid} is not an encryption key")
    sealed = _HPKE[recipient.suite].encrypt(plaintext, _hpke_public(recipient), info=info)
    cut = _ENC_LENGTH[recipient.suite]
    return sealed[:cut], sealed[cut:]


def hpke_open(key: DecryptionKey, suite: str, enc: bytes, ciphertext: bytes, info: bytes) -> bytes:
    """Decrypt what :func:`hpke_seal` produced.

    Raises:
        DecryptionFailed: wrong key or suite, altered ciphertext, or a different ``info``
            (the header the ciphertext was bound to).
    """
    if suite != _SUITE_OF_ALG[key.alg] or len(enc) != _ENC_LENGTH[suite]:
        raise DecryptionFailed(f"the payload was not sealed to {key.kid} with {suite}")
    try:
        return _HPKE[suite].decrypt(enc + ciphertext, key._hpke_private(), info=info)
    except (InvalidTag, ValueError) as exc:
        # InvalidTag: wrong key, altered ciphertext or encapsulated key, other `info`;
        # ValueError: an encapsulated key that is not a valid public value.
        raise DecryptionFailed("the payload cannot be decrypted") from exc


def private_key_pem(
    private: SigningPrivate | x25519.X25519PrivateKey | mlkem.MLKEM768PrivateKey,
    passphrase: bytes | None,
) -> bytes:
    """Serialise one private key (or one part of a hybrid key) as PKCS#8 PEM."""
    encryption: serialization.KeySerializationEncryption = (
        serialization.BestAvailableEncryption(passphrase)
        if passphrase
        else serialization.NoEncryption()
    )
    return private.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption
    )
