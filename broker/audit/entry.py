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

import functools
import gc
import hashlib
import hmac
import json
import re
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Any, Final, Protocol

from broker.audit.merkle import leaf_hash
from broker.canonical import canonical
from broker.clock import parse_wire_time, wire_time
from broker.errors import AuditBundle
from broker.ids import PARTICIPANT_ID, is_participant_id

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

    An entry whose strings need no escape (every entry the node writes) is read by
    a grammar of the canonical form, with no JSON parse and no re-serialisation (a
    quarter of the cost); anything else goes to the strict parser, which decides and
    words the refusal. Both accept exactly the same bytes, as the same entry.

    Raises:
        AuditBundle: too large, not UTF-8 JSON, duplicate members, a float or NaN, a
            member missing or unknown, another version, a field breaking the entry
            rules, or bytes that are not the canonical serialisation.
    """
    entry = _parse_plain(data)
    return entry if entry is not None else _parse_strict(data)


def _parse_strict(data: bytes) -> AuditEntry:
    """The reference parser: JSON, the model's checks, then the canonical bytes compared."""
    # 1. Bounded, UTF-8, JSON without duplicate members or non-integer numbers.
    if len(data) > MAX_ENTRY_SIZE:
        raise AuditBundle(f"an entry is larger than {MAX_ENTRY_SIZE} bytes")
    try:
        text = data.decode("utf-8")
        if text.startswith("\ufeff"):  # what json.loads refuses before decoding
            raise json.JSONDecodeError("Unexpected UTF-8 BOM (decode using utf-8-sig)", text, 0)
        obj = _STRICT.decode(text)
    # ValueError: also int()'s refusal of a number of more than 4300 digits.
    except (ValueError, RecursionError) as exc:
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
    try:
        spelling = entry_bytes(entry)
    except ValueError as exc:  # a lone surrogate (escaped in the JSON): no UTF-8 at all
        raise AuditBundle("an entry is not in canonical form") from exc
    if spelling != data:
        raise AuditBundle("an entry is not in canonical form")
    return entry


# -- the fast path ----------------------------------------------------------------------
#
# _parse_plain accepts a subset of what _parse_strict accepts, and returns an equal entry
# for it; anything else it declines (None) and the strict parser decides. The subset is
# a grammar of the canonical form itself, for entries whose strings need no escape (the
# entries the node writes), so that accepting a line needs neither a JSON parse nor a
# re-serialisation to compare. Why a line it accepts is one the strict parser accepts:
#
# * Canonical bytes: the members are literal and in the encoder's (sorted) order; the
#   keys of ``details`` and ``digests`` are checked to be strictly increasing (sorted,
#   no duplicate); a string holds no '"', '\\' or control character, so JSON reads it as
#   its own text and the encoder writes that text back unchanged (ensure_ascii=False
#   escapes nothing else); an integer has no sign on zero, no leading zero, fraction or
#   exponent, as ``int.__repr__`` writes it; the time has every field within its range
#   (no year before 1000, no hour 24, no second 60), so ``_wire_time`` writes back the
#   fields read, digit for digit (``_plain_time``). The line is therefore exactly
#   ``entry_bytes`` of its entry, and valid UTF-8 (decoded strictly) with no BOM.
# * The model's rules: each field's pattern is the model's own (embedded below), between
#   quotes it cannot match, so a match is that pattern's fullmatch; what a pattern does
#   not bound (the event's 64 characters, the index, integers within 2**53 - 1, at most
#   32 details, a detail text of at most 256 characters without control characters) is
#   bounded in the grammar or checked in code.
#
# tests/audit/test_entry.py compares both parsers on valid entries and on mutations.


def _field(pattern: re.Pattern[str]) -> str:
    return f"(?:{pattern.pattern})"


_PLAIN_TEXT = r'[^"\\\x00-\x1f]'  # a character JSON writes as itself
_PLAIN_INT = r"(?:0|-?[1-9][0-9]{0,15})"  # 2**53 - 1 has 16 digits; the bound is checked
_PLAIN_DETAIL_SYNTAX = (
    f'"{_field(_NAME)}":(?:"{_PLAIN_TEXT}{{0,{_MAX_TEXT}}}"|{_PLAIN_INT}|true|false|null)'
)
#: A wire time (parse_wire_time's pattern) with every field within its range.
_PLAIN_TIME = (
    r"[1-9][0-9]{3}-(?:0[1-9]|1[0-2])-(?:0[1-9]|[12][0-9]|3[01])"
    r"T(?:[01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9]\.[0-9]{3}Z"
)
_PLAIN_DIGEST_SYNTAX = f'"{_field(_NAME)}":"{_field(_HEX_DIGEST)}"'
_PLAIN_ENTRY = re.compile(
    f'\\{{"at":"({_PLAIN_TIME})",'
    f'"case_id":(?:null|"({_field(_ID)})"),'
    f'"code":(?:null|"({_field(_CODE)})"),'
    f'"details":\\{{((?:{_PLAIN_DETAIL_SYNTAX}(?:,{_PLAIN_DETAIL_SYNTAX})*)?)\\}},'
    f'"digests":\\{{((?:{_PLAIN_DIGEST_SYNTAX}(?:,{_PLAIN_DIGEST_SYNTAX})*)?)\\}},'
    f'"event":"({_field(_EVENT)})",'
    r'"index":(0|[1-9][0-9]{0,15}),'
    f'"message_id":(?:null|"({_field(_ID)})"),'
    f'"peer":(?:null|"({_field(PARTICIPANT_ID)})"),'
    r'"v":1\}'
)
#: One member of a ``details`` text the grammar accepted: name, text, integer, literal.
_PLAIN_DETAIL = re.compile(
    f'"({_field(_NAME)})":(?:"({_PLAIN_TEXT}{{0,{_MAX_TEXT}}})"|({_PLAIN_INT})|(true|false|null))'
)
_PLAIN_DIGEST = re.compile(f'"({_field(_NAME)})":"({_field(_HEX_DIGEST)})"')
_LITERALS: Final[Mapping[str, Scalar]] = MappingProxyType(
    {"true": True, "false": False, "null": None}
)
_NO_DIGESTS: Final[Mapping[str, str]] = MappingProxyType({})
_new_entry = object.__new__
_set_attribute = object.__setattr__


@functools.lru_cache(maxsize=4096)  # the entries of a transaction share their time
def _plain_time(text: str) -> datetime | None:
    """The time of a wire time the grammar accepted, or None if there is no such day.

    The grammar bounds every field (year 1000 on, hour 00 to 23 …), so the datetime
    :meth:`~datetime.datetime.fromisoformat` reads holds exactly the fields of the text,
    which ``_wire_time`` writes back digit for digit: the grammar makes that sure, for
    the price of no ``isoformat`` call (a microsecond, ten times the parse).
    """
    try:
        at = datetime.fromisoformat(text)  # what parse_wire_time does once it matched
    except ValueError:  # 30 February
        return None
    return at if at.tzinfo is UTC else None


@functools.lru_cache(maxsize=1024)  # many details recur (a state change, a rule set)
def _plain_details(text: str) -> Mapping[str, Scalar] | None:
    """The ``details`` members of a text the grammar accepted, or None if not canonical.

    Read-only, so entries with the same text may share it.
    """
    found = _PLAIN_DETAIL.findall(text)
    details: dict[str, Scalar] = {}
    for name, string, integer, literal in found:
        if integer:
            number = int(integer)
            if abs(number) > _MAX_SAFE_INTEGER:
                return None
            details[name] = number
        elif literal:
            details[name] = _LITERALS[literal]
        else:
            details[name] = string
    names = list(details)
    if len(names) != len(found) or len(names) > _MAX_DETAILS or names != sorted(names):
        return None
    return MappingProxyType(details)


def _plain_digests(text: str) -> Mapping[str, str] | None:
    """The ``digests`` members of a text the grammar accepted, or None if not canonical."""
    if not text:
        return _NO_DIGESTS
    found = _PLAIN_DIGEST.findall(text)
    digests = dict(found)
    names = list(digests)
    if len(names) != len(found) or names != sorted(names):
        return None
    return MappingProxyType(digests)


def _parse_plain(data: bytes) -> AuditEntry | None:
    """The entry of canonical bytes whose strings need no escape; None for anything else.

    Returns exactly what :func:`_parse_strict` returns for the bytes it accepts (see
    the comment above), without running ``AuditEntry.__post_init__`` again.
    """
    if len(data) > MAX_ENTRY_SIZE:
        return None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return None
    match = _PLAIN_ENTRY.fullmatch(text)
    if match is None:
        return None
    at_text, case_id, code, details_text, digests_text, event, index_text, message_id, peer = (
        match.groups()
    )
    at = _plain_time(at_text)
    index = int(index_text)
    if at is None or index > _MAX_SAFE_INTEGER or len(event) > 64:
        return None
    details = _plain_details(details_text)
    digests = _plain_digests(digests_text)
    if details is None or digests is None:
        return None
    entry = _new_entry(AuditEntry)
    # The fields AuditEntry.__init__ would set (in its order), already checked above.
    _set_attribute(
        entry,
        "__dict__",
        {
            "index": index,
            "at": at,
            "event": event,
            "message_id": message_id,
            "case_id": case_id,
            "peer": peer,
            "code": code,
            "details": details,
            "digests": digests,
        },
    )
    return entry


# -- bulk work --------------------------------------------------------------------------


@contextmanager
def paused_gc() -> Iterator[None]:
    """Pause the cyclic garbage collector for bulk work over entries, then restore it.

    A million entries are millions of small objects, none in a cycle: while they pile
    up, the collector would walk all of them again and again for nothing. Parsing a
    bundle and replaying it run under this. It is process-wide: another thread
    allocating meanwhile is not collected either. Package-internal, not in ``__all__``.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            # Many objects made meanwhile would be walked by the next young collection,
            # and again on their way to the oldest generation: move them (with whatever
            # else is young) there directly, nothing walked (freeze, then unfreeze into
            # the oldest generation), unless the application keeps frozen objects.
            if gc.get_count()[0] > _BULK and gc.get_freeze_count() == 0:
                gc.freeze()
                gc.unfreeze()
            gc.enable()


#: Objects made under :func:`paused_gc` beyond which they go to the oldest generation.
_BULK: Final = 100_000
