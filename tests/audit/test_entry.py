"""Audit entries: canonical bytes (known answer), the field rules, a strict parser
(one defect per case, exact error code), keyed digests, round trips under hypothesis."""

from __future__ import annotations

import gc
import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from broker.audit.entry import (
    MAX_ENTRY_SIZE,
    AuditEntry,
    Scalar,
    _parse_plain,
    _parse_strict,
    _plain_time,
    entry_bytes,
    entry_leaf_hash,
    keyed_digest,
    parse_entry,
    paused_gc,
)
from broker.errors import AuditBundle

AT = datetime(2025, 3, 1, 10, 0, 0, 123_000, tzinfo=UTC)
CASE_KEY = bytes(range(32))
MESSAGE_ID = "01956a3b-7c00-7abc-8def-0123456789ab"
CASE_ID = "01956a3b-7c00-7abc-8def-ba9876543210"
DIGEST = keyed_digest(CASE_KEY, b"form bytes")
ENTRY = AuditEntry(
    index=41,
    at=AT,
    event="message.sent",
    message_id=MESSAGE_ID,
    case_id=CASE_ID,
    peer="DE.CA",
    details={"type": "eevidence.epoc", "attempt": 2, "emergency": False, "note": None},
    digests={"form": DIGEST},
)
ENTRY_BYTES = (
    '{"at":"2025-03-01T10:00:00.123Z","case_id":"01956a3b-7c00-7abc-8def-ba9876543210",'
    '"code":null,"details":{"attempt":2,"emergency":false,"note":null,'
    '"type":"eevidence.epoc"},"digests":{"form":"' + DIGEST + '"},"event":"message.sent",'
    '"index":41,"message_id":"01956a3b-7c00-7abc-8def-0123456789ab","peer":"DE.CA","v":1}'
).encode()


def test_canonical_bytes_known_answer() -> None:
    assert entry_bytes(ENTRY) == ENTRY_BYTES
    assert entry_leaf_hash(ENTRY) == hashlib.sha256(b"\x00" + ENTRY_BYTES).digest()
    assert parse_entry(ENTRY_BYTES) == ENTRY


def test_keyed_digest_is_hmac_sha256() -> None:
    # RFC 4231 test case 6.
    assert (
        keyed_digest(b"\xaa" * 131, b"Test Using Larger Than Block-Size Key - Hash Key First")
        == "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"
    )
    assert keyed_digest(CASE_KEY, b"x") != keyed_digest(bytes(32), b"x")
    with pytest.raises(ValueError, match="32 bytes"):
        keyed_digest(b"short key", b"x")


def test_time_is_utc_milliseconds() -> None:
    local = datetime(2025, 3, 1, 11, 0, 0, 123_999, tzinfo=timezone(timedelta(hours=1)))
    entry = AuditEntry(index=0, at=local, event="node.started")
    assert entry.at == AT
    assert entry.at.tzinfo is UTC
    assert parse_entry(entry_bytes(entry)) == entry


def test_entry_is_immutable() -> None:
    details: dict[str, Scalar] = {"type": "x"}
    entry = AuditEntry(index=0, at=AT, event="message.sent", details=details)
    details["type"] = "changed"
    assert entry.details == {"type": "x"}
    with pytest.raises(TypeError):
        entry.details["type"] = "y"  # type: ignore[index]
    assert hash(entry) == hash(AuditEntry(index=0, at=AT, event="message.sent"))


@dataclass(frozen=True)
class _StoreEvent:
    """Stands in for broker.store.base.AuditEvent (same fields)."""

    event: str
    at: datetime
    message_id: str | None = None
    case_id: str | None = None
    peer: str | None = None
    code: str | None = None
    details: Mapping[str, Scalar] = field(default_factory=dict)


def test_from_event() -> None:
    event = _StoreEvent(
        "message.rejected", AT, MESSAGE_ID, CASE_ID, "DE.CA", "E_SIG_INVALID", {"size": 10}
    )
    entry = AuditEntry.from_event(7, event, {"envelope": DIGEST})
    assert entry == AuditEntry(
        7, AT, "message.rejected", MESSAGE_ID, CASE_ID, "DE.CA", "E_SIG_INVALID",
        {"size": 10}, {"envelope": DIGEST},
    )  # fmt: skip


BAD_FIELDS: dict[str, dict[str, Any]] = {
    "negative index": {"index": -1},
    "boolean index": {"index": True},
    "index beyond 2**53 - 1": {"index": 2**53},
    "naive time": {"at": datetime(2025, 3, 1)},
    "time as text": {"at": "2025-03-01T10:00:00.000Z"},
    "event in capitals": {"event": "Message.Sent"},
    "event with a space": {"event": "message sent"},
    "event with an empty part": {"event": "message..sent"},
    "event too long": {"event": "a" * 65},
    "message id with a space": {"message_id": "a b"},
    "case id empty": {"case_id": ""},
    "peer not a participant id": {"peer": "de.ca"},
    "code without E_": {"code": "SIG_INVALID"},
    "details key in capitals": {"details": {"Type": "x"}},
    "details value a float": {"details": {"ratio": 0.5}},
    "details value a list": {"details": {"ids": ["a"]}},
    "details value a mapping": {"details": {"nested": {"a": 1}}},
    "details value too long": {"details": {"text": "x" * 257}},
    "details value with a newline": {"details": {"text": "a\nb"}},
    "details integer beyond 2**53 - 1": {"details": {"n": 2**53}},
    "too many details": {"details": {f"k{i}": i for i in range(33)}},
    "details not a mapping": {"details": [("a", 1)]},
    "digest in upper case": {"digests": {"form": DIGEST.upper()}},
    "digest too short": {"digests": {"form": DIGEST[:-1]}},
    "digest name in capitals": {"digests": {"Form": DIGEST}},
    "digest as bytes": {"digests": {"form": bytes.fromhex(DIGEST)}},
}


@pytest.mark.parametrize("changes", BAD_FIELDS.values(), ids=BAD_FIELDS.keys())
def test_field_rules(changes: dict[str, Any]) -> None:
    fields: dict[str, Any] = {"index": 0, "at": AT, "event": "message.sent", **changes}
    with pytest.raises(ValueError, match=r"."):
        AuditEntry(**fields)


def _mutate(**changes: Any) -> bytes:
    obj = {**ENTRY.to_json_obj(), **changes}
    return json.dumps(obj, sort_keys=True, separators=(",", ":")).encode()


MALFORMED_ENTRIES: dict[str, bytes] = {
    "not JSON": b"{",
    "not UTF-8": ENTRY_BYTES.replace(b"DE.CA", b"DE.\xff"),
    "an array": b"[]",
    "whitespace": ENTRY_BYTES.replace(b'":', b'": '),
    "members unsorted": b'{"v":1,' + ENTRY_BYTES[1:].replace(b',"v":1', b""),
    "escaped ASCII": ENTRY_BYTES.replace(b"message.sent", b"message\\u002esent"),
    "a trailing newline": ENTRY_BYTES + b"\n",
    "a duplicate member": ENTRY_BYTES[:-1] + b',"v":1}',
    "a float": _mutate(index=41.0),
    "an exponent": ENTRY_BYTES.replace(b'"index":41', b'"index":4.1e1'),
    "NaN": ENTRY_BYTES.replace(b'"attempt":2', b'"attempt":NaN'),
    "a member missing": _mutate(v=1).replace(b',"peer":"DE.CA"', b""),
    "an unknown member": _mutate(extra=1),
    "version 2": _mutate(v=2),
    "version as text": _mutate(v="1"),
    "time without milliseconds": _mutate(at="2025-03-01T10:00:00Z"),
    "time with an offset": _mutate(at="2025-03-01T11:00:00.123+01:00"),
    "time as a number": _mutate(at=1740823200),
    "index as text": _mutate(index="41"),
    "index negative": _mutate(index=-1),
    "index a boolean": _mutate(index=True),
    "event not a name": _mutate(event="sent!"),
    "peer not a participant": _mutate(peer="nobody"),
    "details nested": _mutate(details={"a": {"b": 1}}),
    "digest not hex": _mutate(digests={"form": "z" * 64}),
    "a number of 5000 digits": ENTRY_BYTES.replace(b'"attempt":2', b'"attempt":' + b"1" * 5000),
    "a lone surrogate": ENTRY_BYTES.replace(b"eevidence.epoc", b"\\ud800"),
    "larger than the limit": _mutate(details={"pad": "x" * 200}).replace(
        b'"x', b'"' + b"x" * MAX_ENTRY_SIZE
    ),
}


# What each case must be refused for, so that no case passes by failing another check.
REASONS = {
    "not JSON": "not UTF-8 JSON",
    "not UTF-8": "not UTF-8 JSON",
    "an array": "exactly the entry members",
    "whitespace": "canonical form",
    "members unsorted": "canonical form",
    "escaped ASCII": "canonical form",
    "a trailing newline": "canonical form",
    "a duplicate member": "duplicate member",
    "a float": "non-integer number",
    "an exponent": "non-integer number",
    "NaN": "non-integer number",
    "a member missing": "exactly the entry members",
    "an unknown member": "exactly the entry members",
    "version 2": "unknown version",
    "version as text": "unknown version",
    "time without milliseconds": "not a wire time",
    "time with an offset": "not a wire time",
    "time as a number": "time is not a string",
    "index as text": "index is not an integer",
    "index negative": "index is not an integer",
    "index a boolean": "index is not an integer",
    "event not a name": "event is not well formed",
    "peer not a participant": "peer is not a participant id",
    "details nested": "details.a is not a string",
    "digest not hex": "digests.form is not 64",
    "a number of 5000 digits": "not UTF-8 JSON",
    "a lone surrogate": "canonical form",
    "larger than the limit": "larger than 16384 bytes",
}


@pytest.mark.parametrize("name", MALFORMED_ENTRIES)
def test_malformed_entry_is_refused(name: str) -> None:
    with pytest.raises(AuditBundle, match=REASONS[name]) as caught:
        parse_entry(MALFORMED_ENTRIES[name])
    assert caught.value.code == "E_AUDIT_BUNDLE"


def test_every_malformed_case_has_a_reason() -> None:
    assert REASONS.keys() == MALFORMED_ENTRIES.keys()


def test_the_mutations_start_from_a_valid_entry() -> None:
    assert _mutate() == ENTRY_BYTES
    assert parse_entry(_mutate()) == ENTRY


# -- hypothesis: every valid entry survives its own bytes ------------------------------------

_names = st.from_regex(r"[a-z][a-z0-9_]{0,15}", fullmatch=True)
_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**53) + 1, 2**53 - 1),
    st.text(st.characters(min_codepoint=0x20, exclude_categories=["Cs"]), max_size=40),
)
_entries = st.builds(
    AuditEntry,
    index=st.integers(0, 2**53 - 1),
    at=st.datetimes(
        min_value=datetime(2000, 1, 1),
        max_value=datetime(2200, 1, 1),
        timezones=st.just(UTC),
    ),
    event=st.from_regex(r"[a-z][a-z0-9_]{0,10}(\.[a-z][a-z0-9_]{0,10}){0,2}", fullmatch=True),
    message_id=st.none() | st.uuids().map(str),
    case_id=st.none() | st.uuids().map(str),
    peer=st.none() | st.from_regex(r"[A-Z]{2,3}\.[A-Za-z0-9_-]{1,8}", fullmatch=True),
    code=st.none() | st.from_regex(r"E_[A-Z0-9_]{1,20}", fullmatch=True),
    details=st.dictionaries(_names, _scalars, max_size=8),
    digests=st.dictionaries(_names, st.binary(min_size=32, max_size=32).map(bytes.hex), max_size=3),
)


@settings(max_examples=200, deadline=None)
@given(_entries)
def test_round_trip(entry: AuditEntry) -> None:
    data = entry_bytes(entry)
    assert parse_entry(data) == entry
    assert entry_leaf_hash(parse_entry(data)) == entry_leaf_hash(entry)


# -- the fast path: never accepts what the strict parser refuses, nor reads it otherwise ----


def _same_outcome(data: bytes) -> AuditEntry | None:
    """Assert that the fast path accepts ``data`` only as the strict parser reads it."""
    fast = _parse_plain(data)
    try:
        strict = _parse_strict(data)
    except AuditBundle:
        assert fast is None, data
        return None
    if fast is not None:
        assert fast == strict
        assert list(vars(fast).items()) == list(vars(strict).items())
        assert fast.details == strict.details and type(fast.details) is type(strict.details)
        assert type(fast.digests) is type(strict.digests)
        assert hash(fast) == hash(strict) and repr(fast) == repr(strict)
        assert entry_bytes(fast) == data
    return fast


def test_the_fast_path_takes_the_entries_the_node_writes() -> None:
    # If it declined everything, the tests below could not fail: it must take these.
    assert _same_outcome(ENTRY_BYTES) == ENTRY
    node_started = AuditEntry(index=0, at=AT, event="node.started")
    assert _same_outcome(entry_bytes(node_started)) == node_started
    assert parse_entry(ENTRY_BYTES) == ENTRY


def _with_details(text: str) -> bytes:
    start = ENTRY_BYTES.index(b'"details":{') + len(b'"details":{')
    end = ENTRY_BYTES.index(b'},"digests"')
    return ENTRY_BYTES[:start] + text.encode() + ENTRY_BYTES[end:]


# Lines at the edges of the fast grammar: each is decided as the strict parser decides.
EDGES: dict[str, tuple[bytes, bool]] = {
    "non-ASCII text": (_with_details('"note":"Straße \u2013 ✓ \U0001f600"'), True),
    "DEL and U+2028, written raw": (_with_details('"note":"a\x7fb\u2028c"'), True),
    "a text of 256 characters": (_with_details('"note":"' + "é" * 256 + '"'), True),
    "a text of 257 characters": (_with_details('"note":"' + "é" * 257 + '"'), False),
    "an empty text": (_with_details('"note":""'), True),
    "the largest integers": (_with_details(f'"a":{2**53 - 1},"b":-{2**53 - 1}'), True),
    "an integer beyond 2**53 - 1": (_with_details(f'"a":{2**53}'), False),
    "a negative one beyond": (_with_details(f'"a":-{2**53}'), False),
    "minus zero": (_with_details('"a":-0'), False),
    "a leading zero": (_with_details('"a":01'), False),
    "zero": (_with_details('"a":0'), True),
    "literals": (_with_details('"a":true,"b":false,"c":null'), True),
    "32 details": (_with_details(",".join(f'"k{i:02}":{i}' for i in range(32))), True),
    "33 details": (_with_details(",".join(f'"k{i:02}":{i}' for i in range(33))), False),
    "details unsorted": (_with_details('"b":1,"a":2'), False),
    "details duplicated": (_with_details('"a":1,"a":1'), False),
    "'_' sorts before letters": (_with_details('"a_":1,"ab":2'), True),
    "a text escaping a quote": (_with_details('"note":"a\\"b"'), True),
    "a text escaping a control character": (_with_details('"note":"a\\nb"'), False),
    "a text with a raw tab": (_with_details('"note":"a\tb"'), False),
    "braces in a text": (_with_details('"note":"{}"'), True),
    "no details": (_with_details(""), True),
    "digests unsorted": (
        ENTRY_BYTES.replace(b'{"form":"', b'{"zz":"' + DIGEST.encode() + b'","form":"'),
        False,
    ),
    "digests duplicated": (
        ENTRY_BYTES.replace(b'{"form":"', b'{"form":"' + DIGEST.encode() + b'","form":"'),
        False,
    ),
    "two digests": (
        ENTRY_BYTES.replace(b'{"form":"', b'{"a":"' + DIGEST.encode() + b'","form":"'),
        True,
    ),
    "no digests": (ENTRY_BYTES.replace(b'{"form":"' + DIGEST.encode() + b'"}', b"{}"), True),
    "an event of 64 characters": (ENTRY_BYTES.replace(b"message.sent", b"e" * 64), True),
    "an event of 65 characters": (ENTRY_BYTES.replace(b"message.sent", b"e" * 65), False),
    "the largest index": (
        ENTRY_BYTES.replace(b'"index":41', f'"index":{2**53 - 1}'.encode()),
        True,
    ),
    "an index beyond": (ENTRY_BYTES.replace(b'"index":41', f'"index":{2**53}'.encode()), False),
    "index 0": (ENTRY_BYTES.replace(b'"index":41', b'"index":0'), True),
    "index 00": (ENTRY_BYTES.replace(b'"index":41', b'"index":00'), False),
    "a year before 1000": (ENTRY_BYTES.replace(b'"2025-03-01T', b'"0999-03-01T'), False),
    "the year 1000": (ENTRY_BYTES.replace(b'"2025-03-01T', b'"1000-03-01T'), True),
    "a day that does not exist": (ENTRY_BYTES.replace(b"2025-03-01T", b"2025-02-30T"), False),
    "hour 24": (ENTRY_BYTES.replace(b"T10:00:00.123Z", b"T24:00:00.000Z"), False),
    "a second 60": (ENTRY_BYTES.replace(b"T10:00:00.123Z", b"T10:00:60.000Z"), False),
    "Unicode digits in the time": (
        ENTRY_BYTES.replace(b'"2025-03-01T', '"202\u0665-03-01T'.encode()),
        False,
    ),
    "a code": (ENTRY_BYTES.replace(b'"code":null', b'"code":"E_SIG_INVALID"'), True),
    "a code not E_": (ENTRY_BYTES.replace(b'"code":null', b'"code":"SIG_INVALID"'), False),
    "no ids": (
        ENTRY_BYTES.replace(f'"{MESSAGE_ID}"'.encode(), b"null")
        .replace(f'"{CASE_ID}"'.encode(), b"null")
        .replace(b'"DE.CA"', b"null"),
        True,
    ),
    "a BOM": (b"\xef\xbb\xbf" + ENTRY_BYTES, False),
    "not UTF-8": (ENTRY_BYTES.replace(b"DE.CA", b"DE.\xff"), False),
    "a surrogate escaped": (_with_details('"note":"\\ud800"'), False),
    "a number of 5000 digits": (_with_details('"a":' + "1" * 5000), False),
}


@pytest.mark.parametrize(("data", "accepted"), EDGES.values(), ids=EDGES.keys())
def test_the_fast_path_at_its_edges(data: bytes, accepted: bool) -> None:
    _same_outcome(data)
    if accepted:
        assert parse_entry(data) == _parse_strict(data)
    else:
        with pytest.raises(AuditBundle):
            parse_entry(data)


def _mutations(data: bytes) -> list[bytes]:
    """Every one-byte change, deletion and duplication of ``data``."""
    alphabet = b'"\\{}[],:-.0129aeEfnrtuvzAZ_ \x00\x1f\x7f\xc3\xff'
    out: list[bytes] = []
    for i in range(len(data)):
        out.extend(data[:i] + bytes([b]) + data[i + 1 :] for b in alphabet if b != data[i])
        out.append(data[:i] + data[i + 1 :])
        out.append(data[: i + 1] + data[i:])
    return out


def test_the_fast_path_under_mutation() -> None:
    samples = [
        ENTRY_BYTES,
        _with_details('"a":-12,"b":true,"c":null,"d":"x"'),
        ENTRY_BYTES.replace(b'"code":null', b'"code":"E_SIG_INVALID"'),
    ]
    taken = 0
    for sample in samples:
        for data in _mutations(sample):
            taken += _same_outcome(data) is not None
    assert taken > 100  # some mutations stay valid entries (a digit or a letter changed)


@settings(max_examples=200, deadline=None)
@given(_entries)
def test_the_fast_path_on_any_entry(entry: AuditEntry) -> None:
    data = entry_bytes(entry)
    fast = _same_outcome(data)
    texts = [v for v in entry.details.values() if isinstance(v, str)]
    needs_escape = any(ch in '"\\' or ch < " " for text in texts for ch in text)
    assert (fast is None) == needs_escape


def _at(text: str) -> bytes:
    return ENTRY_BYTES.replace(b"2025-03-01T10:00:00.123Z", text.encode())


TIME_FIELDS = {
    "year": (0, ("0000", "0999", "1000", "1969", "2025", "9999")),
    "month": (1, ("00", "01", "02", "09", "10", "12", "13", "19", "99")),
    "day": (2, ("00", "01", "09", "10", "28", "29", "30", "31", "32", "39", "40")),
    "hour": (3, ("00", "09", "19", "20", "23", "24", "29", "99")),
    "minute": (4, ("00", "09", "59", "60", "99")),
    "second": (5, ("00", "59", "60", "61", "99")),
}


@pytest.mark.parametrize(("position", "values"), TIME_FIELDS.values(), ids=TIME_FIELDS.keys())
def test_the_fast_path_reads_times_as_the_strict_parser(
    position: int, values: tuple[str, ...]
) -> None:
    for value in values:
        for day in ("2024-02-29", "2025-04-30", "2025-12-31"):
            parts = [*day.split("-"), "10", "00", "00"]
            parts[position] = value
            y, mo, d, h, mi, sec = parts
            _same_outcome(_at(f"{y}-{mo}-{d}T{h}:{mi}:{sec}.123Z"))


def test_the_time_cache_answers_as_parse_wire_time() -> None:
    assert _plain_time("2025-03-01T10:00:00.123Z") == AT
    assert _plain_time("2025-03-01T10:00:00.123Z") is _plain_time("2025-03-01T10:00:00.123Z")
    assert _plain_time("2025-02-30T10:00:00.123Z") is None
    assert _same_outcome(_at("2024-02-29T23:59:59.999Z")) is not None
    assert _same_outcome(_at("2023-02-29T23:59:59.999Z")) is None


@pytest.mark.parametrize("enabled", [True, False])
def test_paused_gc_restores_the_collector(enabled: bool) -> None:
    was = gc.isenabled()
    try:
        (gc.enable if enabled else gc.disable)()
        with paused_gc():
            assert not gc.isenabled()
        assert gc.isenabled() is enabled
        with pytest.raises(RuntimeError), paused_gc():
            raise RuntimeError
        assert gc.isenabled() is enabled
        assert gc.get_freeze_count() == 0
    finally:
        (gc.enable if was else gc.disable)()


def test_paused_gc_moves_a_bulk_to_the_oldest_generation() -> None:
    with paused_gc():  # lists are tracked by the collector, as entries are
        made: list[list[int]] = [[] for _ in range(200_000)]
    assert gc.isenabled()
    # Not left young, for the next collections to walk on its way there.
    assert any(o is made for o in gc.get_objects(generation=2))
    assert gc.get_freeze_count() == 0


def test_paused_gc_leaves_frozen_objects_frozen() -> None:
    gc.freeze()
    try:
        frozen = gc.get_freeze_count()
        assert frozen > 0
        with paused_gc():
            pass
        assert gc.get_freeze_count() == frozen
    finally:
        gc.unfreeze()
