"""The error tree: stable, unique codes and the documented hierarchy."""

from __future__ import annotations

import pytest

from broker import errors

CODES = {
    errors.BrokerError: "E_INTERNAL",
    errors.ParseError: "E_PARSE",
    errors.TooLargeError: "E_TOO_LARGE",
    errors.SchemaError: "E_SCHEMA",
    errors.SemanticError: "E_SEMANTIC",
    errors.UnknownTypeError: "E_UNKNOWN_TYPE",
    errors.TransportClosed: "E_TRANSPORT_CLOSED",
    errors.TransportBroken: "E_TRANSPORT_BROKEN",
}


@pytest.mark.parametrize(("cls", "code"), CODES.items())
def test_stable_codes(cls: type[errors.BrokerError], code: str) -> None:
    assert cls.code == code


def test_codes_are_unique() -> None:
    classes = [
        v
        for v in vars(errors).values()
        if isinstance(v, type) and issubclass(v, errors.BrokerError)
    ]
    codes = [c.code for c in classes]
    assert len(codes) == len(set(codes))


def test_hierarchy() -> None:
    assert issubclass(errors.SemanticError, errors.SchemaError)
    assert issubclass(errors.SchemaError, errors.InputError)
    assert issubclass(errors.TransportBroken, errors.TransportError)
    assert not issubclass(errors.TransportClosed, errors.TransportBroken)


def test_input_error_always_has_a_problem() -> None:
    error = errors.ParseError("not JSON")
    assert error.problems == (errors.Problem("", "E_PARSE", "not JSON"),)
    assert str(error) == "E_PARSE: not JSON"
