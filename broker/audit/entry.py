"""Audit entries: the leaves of a node's audit log and the exact bytes that are hashed.

Pure: no files, no network. This module owns what one audit record says and its one
canonical serialisation, RFC 8785 (JCS) JSON (:func:`entry_bytes`); the leaf hash the
log commits to is SHA-256(0x00 || entry bytes) (:func:`entry_leaf_hash`). Trees,
proofs and checkpoints are :mod:`broker.audit.merkle`'s and :mod:`broker.audit.checkpoint`'s.

An entry holds ids, codes, times and *keyed* digests, never payloads or personal data
(DESIGN §4): a digest of anything derived from a case is an HMAC under that case's key
(:func:`keyed_digest`), so that once the key is shredded, the digest no longer confirms a
guess about the content, while the chain of hashes stays intact. The field rules below
keep free text small and out of the log: dotted event names, ``E_…`` codes, short flat
details.

The JSON form (members sorted by JCS)::

    {"at":"2025-03-01T10:00:00.000Z","case_id":"…","code":null,"details":{"type":"…"},
     "digests":{"form":"<64 hex>"},"event":"message.sent","index":41,"message_id":"…",
     "peer":"DE.CA","v":1}
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Any, Final, Protocol

from broker.audit.merkle import leaf_hash
from broker.canonical import canonical
from broker.clock import parse_wire_time, wire_time
from broker.errors import AuditBundle
from broker.ids import is_participant_id

__all__ = [
    "ENTRY_VERSION",
    "MAX_ENTRY_SIZE",
    "AuditEntry",
    "Scalar",
    "entry_bytes",
    "entry_leaf_hash",
    "keyed_digest",
    "parse_entry",
]

#: The entry format version (the ``v`` member).
ENTRY_VERSION: Final = 1
#: The largest serialised entry accepted by :func:`parse_entry`, in bytes.
MAX_ENTRY_SIZE: Final = 16_384
#: A value of ``details``: flat, JSON-native, no floats (JCS number formatting is a trap).
Scalar = str | int | bool | None

_MAX_SAFE_INTEGER = 2**53 - 1
_MAX_DETAILS = 32
_MAX_TEXT = 256
_MIN_CASE_KEY = 32
_EVENT = re.compile(r"[a-z][a-z0-9_]*(?:\.[a-z][a-z0-9_]*)*")
_NAME = re.compile(r"[a-z][a-z0-9_]{0,63}")
_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:#@/-]{0,127}")
_CODE = re.compile(r"E_[A-Z0-9_]{1,62}")
_HEX_DIGEST = re.compile(r"[0-9a-f]{64}")
_CONTROL = re.compile(r"[\x00-\x1f]")  # what ``ch < " "`` finds, in one C call
_MEMBERS = frozenset(
    {"v", "index", "at", "event", "message_id", "case_id", "peer", "code", "details", "digests"}
)


class _EventLike(Protocol):
    """What :meth:`AuditEntry.from_event` reads (``broker.store.base.AuditEvent`` fits)."""

    @property
    def event(self) -> str: ...
    @property
    def at(self) -> datetime: ...
    @property
    def message_id(self) -> str | None: ...
    @property
    def case_id(self) -> str | None: ...
    @property
    def peer(self) -> str | None: ...
    @property
    def code(self) -> str | None: ...
    @property
    def details(self) -> Mapping[str, Scalar]: ...


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _check_optional(value: object, pattern: re.Pattern[str], what: str) -> None:
    if value is not None and not (isinstance(value, str) and pattern.fullmatch(value)):
        raise ValueError(f"{what} is not well formed")


def _check_scalar(key: object, value: object) -> None:
    if not (isinstance(key, str) and _NAME.fullmatch(key)):
        raise ValueError("a details key is not a lower-case name")
    if type(value) is str:  # the common case first; subclasses take the checks below
        if len(value) > _MAX_TEXT or _CONTROL.search(value):
            raise ValueError(f"details.{key} is too long or has control characters")
        return
    if value is None or isinstance(value, bool):
        return
    if _is_int(value):
        if abs(value) > _MAX_SAFE_INTEGER:  # type: ignore[arg-type]
            raise ValueError(f"details.{key} is beyond what JSON numbers hold exactly")
        return
    if isinstance(value, str):
        if len(value) > _MAX_TEXT or _CONTROL.search(value):
            raise ValueError(f"details.{key} is too long or has control characters")
        return
    raise ValueError(f"details.{key} is not a string, integer, boolean or null")


@dataclass(frozen=True)
class AuditEntry:
    """One record of the audit log, leaf ``index`` of its Merkle tree.

    Attributes:
        index: the leaf index, from 0, without gaps.
        at: when it happened; stored in UTC, truncated to milliseconds (the wire
            precision, so that an entry survives its own serialisation unchanged).
        event: what happened, dotted lower case (``message.sent``, ``case.state``,
            ``deadline.missed``, ``key.rotated`` …).
        message_id: the message concerned, if any.
        case_id: its case, if any.
        peer: the other participant (a participant id), if any.
        code: an error code (``E_…``), if the event is a failure.
        details: further non-personal facts: at most 32 lower-case names to short
            strings (no control characters), integers, booleans or null.
        digests: name → keyed digest (64 lower-case hex digits, :func:`keyed_digest`).

    Raises:
        ValueError: a field breaks the rules above.
    """

    index: int
    at: datetime
    event: str
    message_id: str | None = None
    case_id: str | None = None
    peer: str | None = None
    code: str | None = None
    details: Mapping[str, Scalar] = field(default_factory=dict, hash=False)
    digests: Mapping[str, str] = field(default_factory=dict, hash=False)

    def __post_init__(self) -> None:
        if not _is_int(self.index) or not 0 <= self.index <= _MAX_SAFE_INTEGER:
            raise ValueError("the index is not an integer between 0 and 2**53 - 1")
        if not isinstance(self.at, datetime) or self.at.tzinfo is None:
            raise ValueError("the time must be a timezone-aware datetime")
        utc = self.at.astimezone(UTC)
        object.__setattr__(self, "at", utc.replace(microsecond=utc.microsecond // 1000 * 1000))
        if not (isinstance(self.event, str) and len(self.event) <= 64):
            raise ValueError("the event is not a dotted lower-case name")
        _check_optional(self.event, _EVENT, "the event")
        _check_optional(self.message_id, _ID, "the message id")
        _check_optional(self.case_id, _ID, "the case id")
        if self.peer is not None and not (
            isinstance(self.peer, str) and is_participant_id(self.peer)
        ):
            raise ValueError("the peer is not a participant id")
        _check_optional(self.code, _CODE, "the code")
        details, digests = self.details, self.digests
        # ``type(…) is dict`` first: an ABC isinstance check costs a microsecond.
        if not (type(details) is dict or isinstance(details, Mapping)) or (
            len(details) > _MAX_DETAILS
        ):
            raise ValueError(f"details must be a mapping of at most {_MAX_DETAILS} members")
        for key, value in details.items():
            _check_scalar(key, value)
        if not (type(digests) is dict or isinstance(digests, Mapping)):
            raise ValueError("digests must be a mapping")
        for key, value in digests.items():
            if not (isinstance(key, str) and _NAME.fullmatch(key)):
                raise ValueError("a digest name is not a lower-case name")
            if not (isinstance(value, str) and _HEX_DIGEST.fullmatch(value)):
                raise ValueError(f"digests.{key} is not 64 lower-case hex digits")
        # Private copies, read-only: the entry cannot change after it was hashed.
        object.__setattr__(self, "details", MappingProxyType(dict(details)))
        object.__setattr__(self, "digests", MappingProxyType(dict(digests)))

    @classmethod
    def from_event(
        cls, index: int, event: _EventLike, digests: Mapping[str, str] | None = None
    ) -> AuditEntry:
        """Make the entry for a store's audit event (same field names) at ``index``."""
        return cls(
            index=index,
            at=event.at,
            event=event.event,
            message_id=event.message_id,
            case_id=event.case_id,
            peer=event.peer,
            code=event.code,
            details=event.details,
            digests=digests or {},
        )

    def to_json_obj(self) -> dict[str, Any]:
        """Return the JSON object that :func:`entry_bytes` canonicalises."""
        return {
            "v": ENTRY_VERSION,
            "index": self.index,
            "at": _wire_time(self.at),
            "event": self.event,
            "message_id": self.message_id,
            "case_id": self.case_id,
            "peer": self.peer,
            "code": self.code,
            "details": dict(self.details),
            "digests": dict(self.digests),
        }


def _wire_time(at: datetime) -> str:
    """:func:`~broker.clock.wire_time` of an entry's time (UTC, whole milliseconds), faster.

    ``isoformat`` is one C call where ``wire_time`` converts and formats twice; the two
    agree from year 1000 on (``strftime("%Y")`` does not pad earlier years to 4 digits).
    """
    if type(at) is not datetime or at.tzinfo is not UTC or at.year < 1000:
        return wire_time(at)
    return at.isoformat(timespec="milliseconds")[:-6] + "Z"


def entry_bytes(entry: AuditEntry) -> bytes:
    """Return the entry's RFC 8785 canonical JSON: the bytes the log hashes."""
    obj = entry.to_json_obj()
    # An entry's rules (ASCII member names, integers within 2**53 - 1, no floats) are
    # exactly the conditions of canonical()'s fast path, so its walk over the data is
    # skipped; a lone surrogate still goes to canonical() and the reference encoder.
    try:
        return _ENCODER.encode(obj).encode("utf-8")
    except UnicodeEncodeError:
        return canonical(obj)


def entry_leaf_hash(entry: AuditEntry) -> bytes:
    """Return the entry's leaf hash, SHA-256(0x00 || :func:`entry_bytes`)."""
    return leaf_hash(entry_bytes(entry))


def keyed_digest(case_key: bytes, data: bytes) -> str:
    """Return HMAC-SHA256(case_key, data) in lower-case hex, for :attr:`AuditEntry.digests`.

    Raises:
        ValueError: the key is shorter than 32 bytes.
    """
    if len(case_key) < _MIN_CASE_KEY:
        raise ValueError(f"a case key has at least {_MIN_CASE_KEY} bytes")
    return hmac.new(case_key, data, hashlib.sha256).hexdigest()


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result = dict(pairs)
    if len(result) != len(pairs):
        raise AuditBundle("an entry has a duplicate member")
    return result


def _no_float(text: str) -> Any:
    raise AuditBundle("an entry holds a non-integer number")


_ENCODER = json.JSONEncoder(
    ensure_ascii=False, allow_nan=False, sort_keys=True, separators=(",", ":")
)
_STRICT = json.JSONDecoder(
    object_pairs_hook=_no_duplicates, parse_float=_no_float, parse_constant=_no_float
)


def parse_entry(data: bytes) -> AuditEntry:
    """Parse the bytes of an entry, accepting only what :func:`entry_bytes` would write.

    Raises:
        AuditBundle: too large, not UTF-8 JSON, duplicate members, a float or NaN, a
            member missing or unknown, another version, a field breaking the entry
            rules, or bytes that are not the canonical serialisation.
    """
    # 1. Bounded, UTF-8, JSON without duplicate members or non-integer numbers.
    if len(data) > MAX_ENTRY_SIZE:
        raise AuditBundle(f"an entry is larger than {MAX_ENTRY_SIZE} bytes")
    try:
        text = data.decode("utf-8")
        if text.startswith("\ufeff"):  # what json.loads refuses before decoding
            raise json.JSONDecodeError("Unexpected UTF-8 BOM (decode using utf-8-sig)", text, 0)
        obj = _STRICT.decode(text)
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise AuditBundle("an entry is not UTF-8 JSON") from exc
    # 2. Exactly the members of this version.
    if not isinstance(obj, dict) or set(obj) != _MEMBERS:
        raise AuditBundle("an entry does not have exactly the entry members")
    if not _is_int(obj["v"]) or obj["v"] != ENTRY_VERSION:
        raise AuditBundle("an entry of an unknown version")
    # 3. The field rules (the model's), the time in wire form.
    try:
        if not isinstance(obj["at"], str):
            raise ValueError("the time is not a string")
        entry = AuditEntry(
            index=obj["index"],
            at=parse_wire_time(obj["at"]),
            event=obj["event"],
            message_id=obj["message_id"],
            case_id=obj["case_id"],
            peer=obj["peer"],
            code=obj["code"],
            details=obj["details"],
            digests=obj["digests"],
        )
    except ValueError as exc:
        raise AuditBundle(f"an entry breaks the entry rules: {exc}") from exc
    # 4. One spelling only: the bytes must be the canonical ones that were hashed.
    if entry_bytes(entry) != data:
        raise AuditBundle("an entry is not in canonical form")
    return entry
