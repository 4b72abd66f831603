"""The fast canonical JSON path is byte for byte RFC 8785 (the reference library)."""

from __future__ import annotations

from typing import Any

import pytest
import rfc8785
from hypothesis import given, settings
from hypothesis import strategies as st

from broker.canonical import canonical

_SAFE = 2**53 - 1
_leaves = st.none() | st.booleans() | st.integers(-_SAFE, _SAFE) | st.text()
_json = st.recursive(
    _leaves,
    lambda children: (
        st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=8), children, max_size=5)
    ),
    max_leaves=30,
)


@settings(max_examples=400, deadline=None, database=None)
@given(_json)
def test_same_bytes_as_the_reference(value: Any) -> None:
    try:
        expected = rfc8785.dumps(value)
    except (rfc8785.CanonicalizationError, UnicodeEncodeError):
        with pytest.raises(ValueError, match="canonicalisable"):
            canonical(value)
        return
    assert canonical(value) == expected


@settings(max_examples=200, deadline=None, database=None)
@given(st.dictionaries(st.text(), st.floats(allow_nan=False, allow_infinity=False), max_size=4))
def test_floats_take_the_reference_path(value: dict[str, float]) -> None:
    assert canonical(value) == rfc8785.dumps(value)


@pytest.mark.parametrize(
    "value",
    [
        {"a": '\u0000\u001f\u007f\b\t\n\f\r"\\/'},
        {"\u00e9": 1, "e": 2, "\U0001f600": 3, "\ufb01": 4},  # UTF-16 order of names
        {"big": 2**53},
        [1e21, 0.1, -0.0, 5e-324],
        {"emoji": "\U0001f600", "line": "\u2028\u2029"},
    ],
)
def test_tricky_values(value: Any) -> None:
    try:
        expected = rfc8785.dumps(value)
    except rfc8785.CanonicalizationError:
        with pytest.raises(ValueError, match="canonicalisable"):
            canonical(value)
        return
    assert canonical(value) == expected


@pytest.mark.parametrize("value", [{"a": float("nan")}, {"a": "\ud800"}, {1: "x"}, {"a": object()}])
def test_refusals(value: Any) -> None:
    with pytest.raises(ValueError, match="canonicalisable"):
        canonical(value)
