r"""Encryption at rest: the node's storage key, per-case keys and encrypted forms.

This module owns the key hierarchy that makes crypto-shredding possible
(DESIGN §4, data protection)::

    StorageKey (32 random bytes, one per node, outside the database)
      └── wraps CaseKey (32 random bytes, one per case; stored wrapped in ``cases``)
            └── encrypts each form (stored in ``forms``)

Every encryption is AES-256-GCM with a fresh random 12-byte nonce, stored as
``nonce || ciphertext || tag``. The associated data binds each blob to its place,
so that a blob copied to another row does not decrypt:

- a wrapped case key: ``b"evb/1 case key\n" + case_id``;
- a form: ``b"evb/1 form\n" + direction + b"\n" + message_id``.

Erasing a case's wrapped key erases its forms (they can no longer be decrypted)
without touching the audit trail.

The storage key lives in a file of its own (mode 0600), written by
:func:`generate_storage_key`: one line, the key in base64url (RFC 4648 §5, no
padding). :func:`load_storage_key` reads it, or takes the key from the environment
variable ``EVB_STORAGE_KEY`` (same base64url text) when that is set — for
deployments that inject secrets through the environment; the variable wins over the
file. Keys never appear in reprs, logs or error messages.

Everything here is pure except :func:`generate_storage_key` and
:func:`load_storage_key`, which read and write the key file.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Final, Literal

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from broker.errors import ConfigError, StoreError
from broker.files import atomic_write

__all__ = [
    "KEY_BYTES",
    "STORAGE_KEY_ENV",
    "CaseKey",
    "StorageKey",
    "generate_storage_key",
    "load_storage_key",
]

#: The size of storage and case keys (AES-256).
KEY_BYTES: Final = 32
#: The environment variable that may hold the storage key (base64url).
STORAGE_KEY_ENV: Final = "EVB_STORAGE_KEY"

_NONCE_BYTES: Final = 12
_TAG_BYTES: Final = 16
_CASE_KEY_AAD: Final = b"evb/1 case key\n"
_FORM_AAD: Final = b"evb/1 form\n"
# 32 bytes are 43 base64url characters; one "=" of padding is tolerated.
_KEY_TEXT: Final = re.compile(r"[A-Za-z0-9_-]{43}=?")
# A key file is one short line; anything much longer is not a key file.
_MAX_KEY_FILE_BYTES: Final = 256


def _seal(key: bytes, plaintext: bytes, aad: bytes) -> bytes:
    nonce = os.urandom(_NONCE_BYTES)
    return nonce + AESGCM(key).encrypt(nonce, plaintext, aad)


def _open(key: bytes, blob: bytes, aad: bytes, what: str) -> bytes:
    if len(blob) < _NONCE_BYTES + _TAG_BYTES:
        raise StoreError(f"{what} is truncated: the stored bytes are damaged")
    try:
        return AESGCM(key).decrypt(blob[:_NONCE_BYTES], blob[_NONCE_BYTES:], aad)
    except InvalidTag as exc:
        raise StoreError(
            f"{what} does not decrypt: wrong storage key, or the stored bytes were altered"
        ) from exc


class CaseKey:
    """The key of one case: encrypts and decrypts that case's forms.

    Args:
        key: 32 secret bytes.

    Raises:
        ValueError: not 32 bytes.
    """

    __slots__ = ("_key",)

    def __init__(self, key: bytes) -> None:
        if len(key) != KEY_BYTES:
            raise ValueError(f"a case key has {KEY_BYTES} bytes")
        self._key = bytes(key)

    @classmethod
    def generate(cls) -> CaseKey:
        """Return a new random case key."""
        return cls(os.urandom(KEY_BYTES))

    def __repr__(self) -> str:
        return "CaseKey(<secret>)"

    def seal_form(self, direction: Literal["in", "out"], message_id: str, form: bytes) -> bytes:
        """Encrypt a form, bound to its direction and message id.

        Returns:
            ``nonce || ciphertext || tag``.
        """
        return _seal(self._key, form, _form_aad(direction, message_id))

    def open_form(self, direction: Literal["in", "out"], message_id: str, blob: bytes) -> bytes:
        """Decrypt a form sealed by :meth:`seal_form` for this direction and message id.

        Raises:
            StoreError: wrong key, or the blob was altered, truncated or moved.
        """
        return _open(self._key, blob, _form_aad(direction, message_id), f"form of {message_id}")

    def audit_digest(self, data: bytes) -> str:
        """Return the keyed digest of ``data`` for the audit log (64 lower-case hex).

        HMAC-SHA256 under a key derived from the case key for this one use, so a
        digest confirms a guess about the data only to whoever holds the case key;
        once the key is shredded, nobody can (DESIGN §4; issue #7).
        """
        audit_key = hmac.new(self._key, _AUDIT_KEY_INFO, hashlib.sha256).digest()
        return hmac.new(audit_key, data, hashlib.sha256).hexdigest()


class StorageKey:
    """A node's storage key: wraps the case keys.

    Args:
        key: 32 secret bytes.

    Raises:
        ValueError: not 32 bytes.
    """

    __slots__ = ("_key",)

    def __init__(self, key: bytes) -> None:
        if len(key) != KEY_BYTES:
            raise ValueError(f"a storage key has {KEY_BYTES} bytes")
        self._key = bytes(key)

    @classmethod
    def generate(cls) -> StorageKey:
        """Return a new random storage key (not saved anywhere)."""
        return cls(os.urandom(KEY_BYTES))

    @classmethod
    def from_text(cls, text: str) -> StorageKey:
        """Parse a storage key written as base64url (as in the key file or the environment).

        Raises:
            ConfigError: not 43 base64url characters (32 bytes).
        """
        text = text.strip()
        if not _KEY_TEXT.fullmatch(text):
            raise ConfigError(f"a storage key is {KEY_BYTES} bytes in base64url (43 characters)")
        return cls(base64.urlsafe_b64decode(text.rstrip("=") + "="))

    def to_text(self) -> str:
        """Return the key as base64url without padding (what the key file holds)."""
        return base64.urlsafe_b64encode(self._key).rstrip(b"=").decode("ascii")

    def __repr__(self) -> str:
        return "StorageKey(<secret>)"

    def wrap(self, case_id: str, case_key: CaseKey) -> bytes:
        """Encrypt a case key for storage in the ``cases`` table, bound to its case id."""
        return _seal(self._key, case_key._key, _CASE_KEY_AAD + case_id.encode("utf-8"))

    def unwrap(self, case_id: str, wrapped: bytes) -> CaseKey:
        """Decrypt a case key wrapped by :meth:`wrap` for this case id.

        Raises:
            StoreError: wrong storage key, or the wrapped key was altered or moved.
        """
        aad = _CASE_KEY_AAD + case_id.encode("utf-8")
        return CaseKey(_open(self._key, wrapped, aad, f"the key of case {case_id}"))


#: The derivation label of a case's audit-digest key.
_AUDIT_KEY_INFO: Final = b"evb/1 audit digest key"


def _form_aad(direction: str, message_id: str) -> bytes:
    if direction not in ("in", "out"):
        raise ValueError("direction is 'in' or 'out'")
    return _FORM_AAD + direction.encode("ascii") + b"\n" + message_id.encode("utf-8")


def generate_storage_key(path: Path) -> StorageKey:
    """Create a new storage key and write it to ``path`` (mode 0600, atomically).

    An existing file is never replaced: losing a storage key loses every form
    stored under it.

    Raises:
        ConfigError: ``path`` exists, or cannot be written.
    """
    if path.exists():
        raise ConfigError(f"{path} exists; refusing to replace a storage key")
    key = StorageKey.generate()
    try:
        atomic_write(path, (key.to_text() + "\n").encode("ascii"), mode=0o600)
    except OSError as exc:
        raise ConfigError(f"cannot write the storage key to {path}: {exc.strerror}") from exc
    return key


def load_storage_key(
    path: Path | None = None, *, environ: Mapping[str, str] | None = None
) -> StorageKey:
    """Load the node's storage key from ``EVB_STORAGE_KEY`` if set, else from ``path``.

    Args:
        path: the key file written by :func:`generate_storage_key`.
        environ: the environment to read (default: ``os.environ``).

    Raises:
        ConfigError: neither is given, the file cannot be read, or the text is not a key.
    """
    env = os.environ if environ is None else environ
    text = env.get(STORAGE_KEY_ENV)
    if text:
        try:
            return StorageKey.from_text(text)
        except ConfigError as exc:
            raise ConfigError(f"{STORAGE_KEY_ENV}: {exc.message}") from None
    if path is None:
        raise ConfigError(f"no storage key: set {STORAGE_KEY_ENV} or give a key file")
    try:
        with path.open("rb") as handle:
            data = handle.read(_MAX_KEY_FILE_BYTES + 1)
    except OSError as exc:
        raise ConfigError(f"cannot read the storage key {path}: {exc.strerror}") from exc
    if len(data) > _MAX_KEY_FILE_BYTES:
        raise ConfigError(f"{path} is not a storage key file (too long)")
    try:
        return StorageKey.from_text(data.decode("ascii"))
    except (UnicodeDecodeError, ConfigError):
        raise ConfigError(f"{path} is not a storage key file") from None
