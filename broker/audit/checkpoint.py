"""Signed notes, log checkpoints and witness cosignatures, as C2SP specifies them.

The specifications: c2sp.org/signed-note, c2sp.org/tlog-checkpoint and
c2sp.org/tlog-cosignature (v1, Ed25519). Pure: bytes in, verdict out; no files, no
network. This module owns the text formats a node's signed tree head travels in and the
checks a peer applies to one; the tree arithmetic lives in :mod:`broker.audit.merkle`.
A checkpoint of node ``AT.247`` looks so::

    evb/AT.247
    1048576
    CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=

    — AT.247#sig-eb8f1cccda423f9d Az3grlgt…
    — DE.CA#sig-0123456789abcdef jWbPPwAAAABkGFDL…

The first signature is the log's own (Ed25519 note signature, type 0x01, key name = the
node's signing key id); the second a peer's cosignature (timestamped Ed25519, type 0x04).

The parser is strict where the specifications allow leniency, and where other parsers
are lax: the note must be UTF-8 without control characters, end in a newline and have
its blank line; every signature line must be well formed, its base64 canonical (padded,
no stray bits), and no key may sign twice; the size is ``0`` or digits without a leading
zero (no ``+``, ``_`` or spaces); the root hash is canonical base64 of exactly 32 bytes;
origins follow the key-name rules (no spaces, no ``+``). Errors, all fail-closed:

* :class:`~broker.errors.AuditBundle` — the note or checkpoint text is malformed.
* :class:`UnverifiedNote` (an :class:`~broker.errors.AuditSignature`) — no signature
  is from a known key; the unknown key names are listed on the error.
* :class:`InvalidNoteSignature` (an :class:`~broker.errors.AuditSignature`) — a
  signature whose key *is* known does not verify: the whole note is rejected, even if
  another known key signed it (as golang.org/x/mod/sumdb/note does).
* :class:`~broker.errors.AuditFork` — :func:`check_fork` found two checkpoints of one log
  that no consistency proof joins.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric import ed25519

from broker.audit.merkle import HASH_SIZE, verify_consistency
from broker.errors import AuditBundle, AuditFork, AuditProof, AuditSignature
from broker.ids import is_participant_id

__all__ = [
    "COSIGNATURE_V1",
    "MAX_NOTE_SIZE",
    "MAX_SIGNATURES",
    "ORIGIN_PREFIX",
    "SIG_ED25519",
    "Checkpoint",
    "InvalidNoteSignature",
    "Note",
    "NoteSignature",
    "UnverifiedNote",
    "add_signatures",
    "check_fork",
    "cosign",
    "cosignature_message",
    "is_valid_key_name",
    "key_id",
    "open_checkpoint",
    "open_note",
    "origin_for",
    "parse_note",
    "sign_checkpoint",
    "verify_cosignature",
    "verify_cosignatures",
]

#: Signature type of an Ed25519 note signature (c2sp.org/signed-note).
SIG_ED25519 = 0x01
#: Signature type of a timestamped Ed25519 cosignature (c2sp.org/tlog-cosignature).
COSIGNATURE_V1 = 0x04
#: The most signature lines a note may carry (the specification requires at least 16).
MAX_SIGNATURES = 100
#: The largest note accepted, in bytes (a checkpoint with 100 cosignatures is ~12 kB).
MAX_NOTE_SIZE = 65_536
#: Every origin of this network: ``evb/<participant id>`` (see :func:`origin_for`).
ORIGIN_PREFIX = "evb/"

_SIG_PREFIX = "\u2014 "  # em dash, space
_KEY_ID_SIZE = 4
_ED25519_SIG_SIZE = 64
_TIMESTAMP_SIZE = 8
_MAX_TIMESTAMP = 2**63 - 1
_MAX_TREE_SIZE = 2**64 - 1
_SIZE = re.compile(r"0|[1-9][0-9]*")  # ASCII only: str.isdigit and int() accept far more
_COSIGNATURE_HEADER = b"cosignature/v1\n"


class UnverifiedNote(AuditSignature):
    """No signature on the note is from a known key.

    Attributes:
        unknown: the names on the signature lines that were ignored (unknown name, or a
            known name with another key id), in note order.
    """

    def __init__(self, message: str, unknown: tuple[str, ...]) -> None:
        super().__init__(message)
        self.unknown = unknown


class InvalidNoteSignature(AuditSignature):
    """A signature from a known key (name and key id match) does not verify.

    Attributes:
        name: the key name on the failing signature line.
    """

    def __init__(self, message: str, name: str) -> None:
        super().__init__(message)
        self.name = name


# -- names, key ids, base64 -----------------------------------------------------------


def is_valid_key_name(name: str) -> bool:
    """Whether ``name`` may name a key: non-empty, no Unicode spaces, no ``+``, no controls.

    A node's signing key id such as ``AT.247#sig-eb8f1cccda423f9d`` is valid (``#`` and
    ``-`` are ordinary characters in a note).
    """
    return (
        bool(name)
        and "+" not in name
        and not any(ch.isspace() or ch < " " or ch == "\x7f" for ch in name)
    )


def key_id(name: str, public_key: ed25519.Ed25519PublicKey, sig_type: int = SIG_ED25519) -> bytes:
    """Return the 4-byte key id: SHA-256(name || 0x0A || sig_type || public key)[:4].

    Args:
        name: the key name.
        public_key: the Ed25519 public key.
        sig_type: :data:`SIG_ED25519` for note signatures, :data:`COSIGNATURE_V1` for
            witness cosignatures (the same key gets a different id for each).
    """
    raw = public_key.public_bytes_raw()
    material = name.encode("utf-8") + b"\n" + bytes([sig_type]) + raw
    return hashlib.sha256(material).digest()[:_KEY_ID_SIZE]


def _b64encode(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _b64decode(text: str, what: str) -> bytes:
    """Decode canonical standard base64 (padded, RFC 4648 §4, unused bits zero).

    Raises:
        AuditBundle: anything else, including encodings that decode but do not
            re-encode to the same text (so a signed value has one spelling only).
    """
    try:
        data = base64.b64decode(text.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError) as exc:
        raise AuditBundle(f"the {what} is not base64") from exc
    if _b64encode(data) != text:
        raise AuditBundle(f"the {what} is not canonical base64")
    return data


def _decode_text(data: bytes, what: str) -> str:
    """Decode UTF-8 and refuse ASCII control characters other than newline."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise AuditBundle(f"the {what} is not UTF-8") from exc
    if any(ch < " " and ch != "\n" for ch in text):
        raise AuditBundle(f"the {what} contains a control character")
    return text


# -- the signed note ------------------------------------------------------------------


@dataclass(frozen=True)
class NoteSignature:
    """One signature line of a note: ``— <name> base64(key id || signature)``.

    Attributes:
        name: the key name.
        key_id: the 4-byte key id.
        signature: what follows the key id (64 bytes for Ed25519; timestamp and
            signature, 72 bytes, for a cosignature).
    """

    name: str
    key_id: bytes
    signature: bytes

    def __post_init__(self) -> None:
        if not is_valid_key_name(self.name):
            raise ValueError("not a valid key name")
        if len(self.key_id) != _KEY_ID_SIZE or not self.signature:
            raise ValueError("a note signature is a 4-byte key id and a non-empty signature")

    def line(self) -> bytes:
        """Return the signature line, newline included."""
        payload = _b64encode(self.key_id + self.signature)
        return f"{_SIG_PREFIX}{self.name} {payload}\n".encode()


@dataclass(frozen=True)
class Note:
    """A parsed, not yet verified, signed note.

    Attributes:
        text: the signed text, final newline included, separating blank line excluded.
        signatures: the signature lines in note order (no key twice).
    """

    text: bytes
    signatures: tuple[NoteSignature, ...]

    def to_bytes(self) -> bytes:
        """Serialise: text, blank line, signature lines."""
        return self.text + b"\n" + b"".join(s.line() for s in self.signatures)


def _parse_signature_line(line: str) -> NoteSignature:
    if not line.startswith(_SIG_PREFIX):
        raise AuditBundle("a signature line does not start with an em dash and a space")
    fields = line[len(_SIG_PREFIX) :].split(" ")
    if len(fields) != 2:
        raise AuditBundle("a signature line is not '— <name> <signature>'")
    name, payload = fields
    if not is_valid_key_name(name):
        raise AuditBundle("a signature line has an invalid key name")
    raw = _b64decode(payload, "signature")
    if len(raw) <= _KEY_ID_SIZE:
        raise AuditBundle("a signature is shorter than a key id and one byte")
    return NoteSignature(name, raw[:_KEY_ID_SIZE], raw[_KEY_ID_SIZE:])


def _check_unique(signatures: Sequence[NoteSignature]) -> None:
    if len(signatures) > MAX_SIGNATURES:
        raise AuditBundle(f"more than {MAX_SIGNATURES} signatures")
    seen = {(s.name, s.key_id) for s in signatures}
    if len(seen) != len(signatures):
        raise AuditBundle("a key signed the note twice")


def parse_note(data: bytes) -> Note:
    """Parse a signed note, checking its syntax only (no signature is verified).

    Raises:
        AuditBundle: too large; not UTF-8; a control character; no final newline; no
            blank line before the signatures; no signature; a malformed signature line
            (prefix, name, base64, length); more than :data:`MAX_SIGNATURES`; the same
            key (name and key id) twice.
    """
    # 1. Bounded, UTF-8, no control characters but newline.
    if len(data) > MAX_NOTE_SIZE:
        raise AuditBundle(f"the note is larger than {MAX_NOTE_SIZE} bytes")
    text = _decode_text(data, "note")
    # 2. A final newline, and the last blank line separating text and signatures.
    if not text.endswith("\n"):
        raise AuditBundle("the note does not end in a newline")
    split = text.rfind("\n\n")
    if split < 0:
        raise AuditBundle("the note has no blank line before its signatures")
    body, block = text[: split + 1], text[split + 2 :]
    if not block:
        raise AuditBundle("the note has no signature")
    # 3. Each signature line well formed, no key twice.
    signatures = tuple(_parse_signature_line(line) for line in block[:-1].split("\n"))
    _check_unique(signatures)
    return Note(body.encode("utf-8"), signatures)


def open_note(data: bytes, verifiers: Mapping[str, ed25519.Ed25519PublicKey]) -> Note:
    """Parse a note and verify its Ed25519 signatures against known keys.

    A signature line counts as from a known key when its name is in ``verifiers`` and
    its key id is that key's (:func:`key_id` with :data:`SIG_ED25519`); every other
    line (cosignatures, other keys, another key of the same name) is ignored.

    Args:
        data: the note.
        verifiers: key name → Ed25519 public key.

    Returns:
        the parsed note (its text is now authenticated).

    Raises:
        AuditBundle: the note is malformed (see :func:`parse_note`).
        InvalidNoteSignature: a known key's signature does not verify.
        UnverifiedNote: no signature is from a known key.
    """
    # 1. Syntax.
    note = parse_note(data)
    # 2. Every signature from a known key must verify; others are set aside.
    verified = 0
    unknown: list[str] = []
    for sig in note.signatures:
        public_key = verifiers.get(sig.name)
        if public_key is None or sig.key_id != key_id(sig.name, public_key, SIG_ED25519):
            unknown.append(sig.name)
            continue
        if len(sig.signature) != _ED25519_SIG_SIZE:
            raise InvalidNoteSignature(f"the signature of {sig.name} has the wrong size", sig.name)
        try:
            public_key.verify(sig.signature, note.text)
        except InvalidSignature as exc:
            raise InvalidNoteSignature(
                f"the signature of {sig.name} does not verify", sig.name
            ) from exc
        verified += 1
    # 3. At least one must have been known (and so verified).
    if not verified:
        raise UnverifiedNote("no signature on the note is from a known key", tuple(unknown))
    return note


def add_signatures(data: bytes, signatures: Iterable[bytes | NoteSignature]) -> bytes:
    """Return the note with more signature lines (a cosignature, a second log key).

    A new signature replaces an existing one by the same key (name and key id). No
    signature is verified here.

    Args:
        data: the note.
        signatures: signature lines (as :func:`cosign` returns them) or parsed ones.

    Raises:
        AuditBundle: the note or a signature line is malformed, or too many signatures.
    """
    note = parse_note(data)
    added: list[NoteSignature] = []
    for item in signatures:
        sig = _parse_one_line(item) if isinstance(item, bytes) else item
        added = [s for s in added if (s.name, s.key_id) != (sig.name, sig.key_id)]
        added.append(sig)
    replaced = {(s.name, s.key_id) for s in added}
    kept = [s for s in note.signatures if (s.name, s.key_id) not in replaced]
    result = (*kept, *added)
    _check_unique(result)
    return Note(note.text, result).to_bytes()


def _parse_one_line(data: bytes) -> NoteSignature:
    """Parse exactly one signature line, ending in a newline."""
    text = _decode_text(data, "signature line")
    if not text.endswith("\n") or "\n" in text[:-1]:
        raise AuditBundle("not exactly one signature line ending in a newline")
    return _parse_signature_line(text[:-1])


# -- checkpoints ----------------------------------------------------------------------


def origin_for(participant: str) -> str:
    """Return the origin of a participant's audit log: ``evb/<participant id>``.

    Raises:
        ValueError: not a participant id.
    """
    if not is_participant_id(participant):
        raise ValueError("not a participant id")
    return ORIGIN_PREFIX + participant


@dataclass(frozen=True)
class Checkpoint:
    """A log's signed tree head, as the body of a note (c2sp.org/tlog-checkpoint).

    Attributes:
        origin: the log's identity, ``evb/<participant id>`` in this network; any
            string valid as a key name is accepted.
        size: the number of leaves.
        root_hash: the RFC 9162 root at that size (32 bytes).
        extensions: further lines, opaque, each non-empty (not recommended).

    Raises:
        ValueError: a field that the body format cannot carry.
    """

    origin: str
    size: int
    root_hash: bytes
    extensions: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not is_valid_key_name(self.origin):
            raise ValueError("the origin is empty or has spaces, '+' or control characters")
        if isinstance(self.size, bool) or not 0 <= self.size <= _MAX_TREE_SIZE:
            raise ValueError("the tree size is not a 64-bit unsigned integer")
        if len(self.root_hash) != HASH_SIZE:
            raise ValueError(f"the root hash is not {HASH_SIZE} bytes")
        for line in self.extensions:
            if not line or any(ch < " " for ch in line):
                raise ValueError("an extension line is empty or has control characters")

    def body(self) -> bytes:
        """Return the note text: origin, size, base64 root hash, extensions; each + newline."""
        lines = [self.origin, str(self.size), _b64encode(self.root_hash), *self.extensions]
        return "".join(line + "\n" for line in lines).encode("utf-8")

    @classmethod
    def from_body(cls, data: bytes) -> Checkpoint:
        """Parse a checkpoint body strictly.

        Raises:
            AuditBundle: not UTF-8; control characters; no final newline; fewer than
                three lines; an empty line; an invalid origin; a size that is not
                ``0`` or ASCII digits without a leading zero, or beyond 2**64 - 1; a
                root hash that is not canonical base64 of 32 bytes.
        """
        text = _decode_text(data, "checkpoint")
        if not text.endswith("\n"):
            raise AuditBundle("the checkpoint does not end in a newline")
        lines = text[:-1].split("\n")
        if len(lines) < 3:
            raise AuditBundle("the checkpoint has fewer than three lines")
        if not all(lines):
            raise AuditBundle("the checkpoint has an empty line")
        origin, size_text, root_text, *extensions = lines
        if not is_valid_key_name(origin):
            raise AuditBundle("the checkpoint origin has spaces, '+' or control characters")
        if not _SIZE.fullmatch(size_text):
            raise AuditBundle("the tree size is not a decimal without leading zeros")
        size = int(size_text)
        if size > _MAX_TREE_SIZE:
            raise AuditBundle("the tree size is beyond 2**64 - 1")
        root_hash = _b64decode(root_text, "root hash")
        if len(root_hash) != HASH_SIZE:
            raise AuditBundle(f"the root hash is not {HASH_SIZE} bytes")
        return cls(origin, size, root_hash, tuple(extensions))


def sign_checkpoint(
    checkpoint: Checkpoint, key_name: str, private_key: ed25519.Ed25519PrivateKey
) -> bytes:
    """Sign a checkpoint as a note with the log's Ed25519 key.

    Args:
        checkpoint: the tree head.
        key_name: the name verifiers know the key by: the node's signing key id.
        private_key: the node's Ed25519 signing key.

    Returns:
        the signed note.

    Raises:
        ValueError: ``key_name`` is not a valid key name.
    """
    if not is_valid_key_name(key_name):
        raise ValueError("not a valid key name")
    body = checkpoint.body()
    kid = key_id(key_name, private_key.public_key(), SIG_ED25519)
    return Note(body, (NoteSignature(key_name, kid, private_key.sign(body)),)).to_bytes()


def open_checkpoint(
    data: bytes,
    verifiers: Mapping[str, ed25519.Ed25519PublicKey],
    *,
    origin: str | None = None,
) -> Checkpoint:
    """Verify a signed checkpoint and return it.

    Args:
        data: the note.
        verifiers: key name → Ed25519 public key of the log (its current signing
            keys); cosignature lines and other keys' lines are ignored.
        origin: if given, the origin the checkpoint must carry.

    Raises:
        AuditBundle: the note or its checkpoint body is malformed.
        InvalidNoteSignature: a known key's signature does not verify.
        UnverifiedNote: no signature is from a known key.
        AuditSignature: a validly signed checkpoint of another log than ``origin``.
    """
    # 1.-3. Syntax, then signatures; the text means nothing until they verify.
    note = open_note(data, verifiers)
    # 4. The authenticated text must be a checkpoint.
    checkpoint = Checkpoint.from_body(note.text)
    # 5. Of the log the caller asked about.
    if origin is not None and checkpoint.origin != origin:
        raise AuditSignature("the checkpoint is signed for another log")
    return checkpoint


# -- cosignatures ---------------------------------------------------------------------


def _checkpoint_body(checkpoint: Checkpoint | bytes) -> bytes:
    """The checkpoint body of a Checkpoint, a body, or a signed note (its text)."""
    if isinstance(checkpoint, Checkpoint):
        return checkpoint.body()
    text = parse_note(checkpoint).text if b"\n\n" in checkpoint else checkpoint
    return Checkpoint.from_body(text).body()


def cosignature_message(body: bytes, timestamp: int) -> bytes:
    r"""Return what a v1 cosignature signs: header, time line, checkpoint body.

    ``cosignature/v1\\ntime <timestamp>\\n`` followed by the body (c2sp.org/tlog-cosignature).
    """
    if isinstance(timestamp, bool) or not 0 <= timestamp <= _MAX_TIMESTAMP:
        raise ValueError("the timestamp is not between 0 and 2**63 - 1")
    return _COSIGNATURE_HEADER + b"time %d\n" % timestamp + body


def cosign(
    checkpoint: Checkpoint | bytes,
    witness_name: str,
    witness_key: ed25519.Ed25519PrivateKey,
    timestamp: int,
) -> bytes:
    """Cosign a checkpoint as a witness (timestamped Ed25519, type 0x04).

    This only signs. A witness must first have opened the checkpoint under the log's
    keys and checked it is consistent with the last one it cosigned (:func:`check_fork`):
    the cosignature states that this is the largest consistent tree it has seen.

    Args:
        checkpoint: the checkpoint, its body, or the signed note.
        witness_name: the witness's key name (a node's signing key id).
        witness_key: the witness's Ed25519 key.
        timestamp: seconds since the epoch, at signing.

    Returns:
        the signature line, newline included, ready for :func:`add_signatures`.

    Raises:
        AuditBundle: ``checkpoint`` is bytes that are not a checkpoint (or its note).
        ValueError: an invalid witness name or timestamp.
    """
    if not is_valid_key_name(witness_name):
        raise ValueError("not a valid key name")
    message = cosignature_message(_checkpoint_body(checkpoint), timestamp)
    kid = key_id(witness_name, witness_key.public_key(), COSIGNATURE_V1)
    payload = timestamp.to_bytes(_TIMESTAMP_SIZE, "big") + witness_key.sign(message)
    return NoteSignature(witness_name, kid, payload).line()


def _verify_cosignature(
    body: bytes,
    sig: NoteSignature,
    public_key: ed25519.Ed25519PublicKey,
    not_after: int | None,
) -> int:
    """Verify a cosignature whose name and key id already match; return its timestamp."""
    if len(sig.signature) != _TIMESTAMP_SIZE + _ED25519_SIG_SIZE:
        raise InvalidNoteSignature(f"the cosignature of {sig.name} has the wrong size", sig.name)
    timestamp = int.from_bytes(sig.signature[:_TIMESTAMP_SIZE], "big")
    if timestamp > _MAX_TIMESTAMP:
        raise InvalidNoteSignature(f"the cosignature of {sig.name} is beyond 2**63 - 1", sig.name)
    try:
        public_key.verify(sig.signature[_TIMESTAMP_SIZE:], cosignature_message(body, timestamp))
    except InvalidSignature as exc:
        raise InvalidNoteSignature(
            f"the cosignature of {sig.name} does not verify", sig.name
        ) from exc
    if not_after is not None and timestamp > not_after:
        raise AuditSignature(f"the cosignature of {sig.name} is dated in the future")
    return timestamp


def verify_cosignature(
    checkpoint: Checkpoint | bytes,
    signature: bytes | NoteSignature,
    witness_name: str,
    witness_key: ed25519.Ed25519PublicKey,
    *,
    not_after: int | None = None,
) -> int:
    """Verify one witness's cosignature on a checkpoint.

    Only the cosignature is checked: when ``checkpoint`` is a signed note, its log
    signature is not (open it with :func:`open_checkpoint`).

    Args:
        checkpoint: the checkpoint, its body, or a signed note of it.
        signature: the signature line (as :func:`cosign` returns it) or a parsed one.
        witness_name: the key name the witness is known by.
        witness_key: its Ed25519 public key.
        not_after: if given, reject cosignatures dated later (seconds since the epoch).

    Returns:
        the cosignature's timestamp.

    Raises:
        AuditBundle: the checkpoint or the line is malformed.
        AuditSignature: the line is another key's (name or key id), or dated after
            ``not_after``.
        InvalidNoteSignature: the cosignature does not verify.
    """
    # 1. Parse both.
    body = _checkpoint_body(checkpoint)
    sig = _parse_one_line(signature) if isinstance(signature, bytes) else signature
    # 2. The line must be this witness's, for the cosignature type.
    if sig.name != witness_name:
        raise AuditSignature("the cosignature is by another key name")
    if sig.key_id != key_id(witness_name, witness_key, COSIGNATURE_V1):
        raise AuditSignature("the cosignature is by another key (key id)")
    # 3. Timestamped signature over header, time and body.
    return _verify_cosignature(body, sig, witness_key, not_after)


def verify_cosignatures(
    data: bytes,
    witnesses: Mapping[str, ed25519.Ed25519PublicKey],
    *,
    not_after: int | None = None,
) -> dict[str, int]:
    """Verify every cosignature on a note by a known witness.

    Lines whose name is not a witness's, or whose key id is not that witness's
    cosignature key id (the log's own signature among them), are ignored. The log's
    signature is not checked here: open the checkpoint with :func:`open_checkpoint`.

    Args:
        data: the signed checkpoint note.
        witnesses: witness key name → Ed25519 public key.
        not_after: if given, reject cosignatures dated later (seconds since the epoch).

    Returns:
        witness name → timestamp, for each witness that cosigned (count them for a quorum).

    Raises:
        AuditBundle: the note or its checkpoint body is malformed.
        InvalidNoteSignature: a known witness's cosignature does not verify.
        AuditSignature: a known witness's cosignature is dated after ``not_after``.
    """
    note = parse_note(data)
    body = Checkpoint.from_body(note.text).body()
    cosigned: dict[str, int] = {}
    for sig in note.signatures:
        public_key = witnesses.get(sig.name)
        if public_key is None or sig.key_id != key_id(sig.name, public_key, COSIGNATURE_V1):
            continue
        cosigned[sig.name] = _verify_cosignature(body, sig, public_key, not_after)
    return cosigned


# -- forks ----------------------------------------------------------------------------


def check_fork(a: Checkpoint, b: Checkpoint, consistency_proof: Sequence[bytes]) -> None:
    """Check that two checkpoints of one log are consistent: the larger extends the smaller.

    The order of ``a`` and ``b`` does not matter. The proof is the log's own
    (RFC 9162 consistency proof from the smaller size to the larger): a log that
    cannot show consistency is treated as forked, fail closed.

    Args:
        a: a verified checkpoint.
        b: another verified checkpoint of the same log.
        consistency_proof: from the smaller tree to the larger (empty for equal sizes).

    Raises:
        ValueError: the checkpoints are of different logs (origins).
        AuditFork: equal sizes with different roots, or the proof does not join them.
        AuditProof: equal sizes and roots, but a non-empty proof.
    """
    if a.origin != b.origin:
        raise ValueError("the checkpoints are of different logs")
    old, new = (a, b) if a.size <= b.size else (b, a)
    if old.size == new.size:
        if old.root_hash != new.root_hash:
            raise AuditFork(f"two roots for size {old.size} of {old.origin}")
        if consistency_proof:
            raise AuditProof("a consistency proof between equal trees must be empty")
        return
    try:
        verify_consistency(old.size, new.size, old.root_hash, new.root_hash, consistency_proof)
    except AuditProof as exc:
        raise AuditFork(
            f"{old.origin} at {new.size} is not shown to extend its tree at {old.size}"
        ) from exc
