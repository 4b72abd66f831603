"""Small building blocks: UUIDv7, participant ids, wire times, JCS, atomic writes."""

from __future__ import annotations

import stat
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from broker import ids
from broker.canonical import canonical
from broker.clock import FixedClock, parse_wire_time, wire_time
from broker.files import atomic_write


def test_uuid7_is_version_7_and_time_ordered() -> None:
    first, second = ids.uuid7(1_700_000_000_000), ids.uuid7(1_700_000_000_001)
    assert first < second
    for value in (first, second, ids.uuid7()):
        parsed = uuid.UUID(value)
        assert parsed.version == 7
        assert parsed.variant == uuid.RFC_4122
        assert ids.is_uuid7(value)
    assert int(first.replace("-", "")[:12], 16) == 1_700_000_000_000


@pytest.mark.parametrize(
    ("value", "ok"),
    [
        ("AT.247", True),
        ("DE.CA", True),
        ("ISP.mailhost", True),
        ("at.247", False),
        ("AT247", False),
        ("AT./x", False),
        ("../AT.247", False),
        ("AT.", False),
        ("AT.247\n", False),
    ],
)
def test_participant_ids(value: str, ok: bool) -> None:
    assert ids.is_participant_id(value) is ok


def test_wire_time_round_trip() -> None:
    at = datetime(2026, 11, 25, 3, 14, 7, 250_999, tzinfo=UTC)
    assert wire_time(at) == "2026-11-25T03:14:07.250Z"
    assert parse_wire_time("2026-11-25T03:14:07.250Z") == at.replace(microsecond=250_000)
    local = at.astimezone(__import__("datetime").timezone(timedelta(hours=2)))
    assert wire_time(local) == "2026-11-25T03:14:07.250Z"


@pytest.mark.parametrize(
    "text",
    ["2026-11-25T03:14:07Z", "2026-11-25T03:14:07.2500Z", "2026-11-25T03:14:07.250+00:00", "x"],
)
def test_wire_time_is_strict(text: str) -> None:
    with pytest.raises(ValueError):  # noqa: PT011 - strptime's own message varies
        parse_wire_time(text)


def test_fixed_clock() -> None:
    clock = FixedClock(datetime(2026, 1, 1, tzinfo=UTC))
    clock.advance(timedelta(hours=8))
    assert clock.now() == datetime(2026, 1, 1, 8, tzinfo=UTC)
    with pytest.raises(ValueError, match="timezone"):
        FixedClock(datetime(2026, 1, 1))


def test_canonical_is_rfc8785() -> None:
    assert canonical({"b": 1, "a": [1.0, "é", None]}) == '{"a":[1,"é",null],"b":1}'.encode()
    with pytest.raises(ValueError, match="canonicalisable"):
        canonical({"a": float("nan")})


def test_atomic_write_sets_mode_and_replaces(tmp_path: Path) -> None:
    target = tmp_path / "secret.pem"
    atomic_write(target, b"one", mode=0o600)
    assert target.read_bytes() == b"one"
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    atomic_write(target, b"two", mode=0o600)
    assert target.read_bytes() == b"two"
    assert [p.name for p in tmp_path.iterdir()] == ["secret.pem"]
