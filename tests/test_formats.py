"""Formats are really checked, and every engine of the project agrees on them.

``jsonschema`` skips ``format`` unless given a checker, and its stock e-mail check
only looks for an ``@``: each bad value below must be refused by the shared check,
the reference engine, the fast engine and the pydantic type alike.
"""

from __future__ import annotations

from typing import Any

import jsonschema_rs
import pytest
from pydantic import TypeAdapter, ValidationError

from broker import formats
from broker.diagnostics import REFERENCE_VALIDATOR, format_checker
from broker.forms import base

CASES: list[tuple[str, str, bool]] = [
    # date-time: RFC 3339, offset required
    ("date-time", "2026-03-02T21:14:07+01:00", True),
    ("date-time", "2026-03-02T21:14:07.250Z", True),
    ("date-time", "2026-03-02T21:14:07", False),
    ("date-time", "2026-03-02 21:14:07Z", False),
    ("date-time", "2026-02-30T00:00:00Z", False),
    ("date-time", "2026-12-31T23:59:60Z", False),
    ("date-time", "02/03/2026", False),
    # date
    ("date", "2026-03-02", True),
    ("date", "2026-13-02", False),
    ("date", "2026-3-2", False),
    # e-mail: stricter than "contains an @"
    ("email", "poc247@bka.example.de", True),
    ("email", "first.last+tag@mail.example.org", True),
    ("email", "poc247@bka", False),
    ("email", "poc247.bka.example.de", False),
    ("email", "a@@example.org", False),
    ("email", "a b@example.org", False),
    ("email", ".a@example.org", False),
    ("email", "a@example.123", False),
    ("email", "a@-example.org", False),
    # E.164
    ("e164", "+431531260", True),
    ("e164", "+4961155123456", True),
    ("e164", "0611 55123456", False),
    ("e164", "+0611551234", False),
    ("e164", "+43 1 531260", False),
    ("e164", "+1234567890123456", False),
    # IP addresses
    ("ip", "198.51.100.23", True),
    ("ip", "2001:db8::17", True),
    ("ip", "198.51.100.256", False),
    ("ip", "010.1.1.1", False),
    ("ip", "fe80::1%eth0", False),
    ("ipv4", "2001:db8::17", False),
    ("ipv6", "198.51.100.23", False),
    # URI: absolute
    ("uri", "https://secure-login-bank.example/login?x=1", True),
    ("uri", "secure login page", False),
    ("uri", "/relative/path", False),
    # ISO codes
    ("country", "AT", True),
    ("country", "XX", False),
    ("country", "at", False),
    ("country", "AUT", False),
    ("language", "de", True),
    ("language", "xx", False),
    ("language", "DE", False),
    # names
    ("domain", "secure-login-bank.example", True),
    ("domain", "localhost", False),
    ("domain", "-bad-.example", False),
    ("hostname", "localhost", True),
    ("hostname", "bad_host.example", False),
    ("uuid", "0192f3c8-7d6e-7b3a-9c1d-2e4f5a6b7c8d", True),
    ("uuid", "0192F3C8-7D6E-7B3A-9C1D-2E4F5A6B7C8D", False),
    ("uuid", "not-a-uuid", False),
]

PYDANTIC_TYPES: dict[str, Any] = {
    "date-time": base.DateTime,
    "date": base.Date,
    "email": base.Email,
    "e164": base.Phone,
    "country": base.Country,
    "language": base.Language,
    "uuid": base.Uuid,
}


@pytest.mark.parametrize(("fmt", "value", "ok"), CASES)
def test_shared_check(fmt: str, value: str, ok: bool) -> None:
    assert formats.check_format(fmt, value) is ok


@pytest.mark.parametrize(("fmt", "value", "ok"), CASES)
def test_reference_engine(fmt: str, value: str, ok: bool) -> None:
    validator = REFERENCE_VALIDATOR({"format": fmt}, format_checker=format_checker())
    assert validator.is_valid(value) is ok


@pytest.mark.parametrize(("fmt", "value", "ok"), CASES)
def test_fast_engine(fmt: str, value: str, ok: bool) -> None:
    validator = jsonschema_rs.Draft202012Validator(
        {"format": fmt}, formats=dict(formats.FORMATS), validate_formats=True
    )
    assert validator.is_valid(value) is ok


@pytest.mark.parametrize(("fmt", "value", "ok"), [c for c in CASES if c[0] in PYDANTIC_TYPES])
def test_model_types(fmt: str, value: str, ok: bool) -> None:
    adapter: TypeAdapter[Any] = TypeAdapter(PYDANTIC_TYPES[fmt])
    try:
        adapter.validate_json(f'"{value}"')
    except ValidationError:
        assert not ok
    else:
        assert ok


def test_every_format_has_cases() -> None:
    assert {fmt for fmt, _, _ in CASES} == set(formats.FORMATS)
