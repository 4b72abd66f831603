"""RFC 8785 (JCS) canonical JSON: the bytes every signature in the project covers.

Fast path: for JSON data without floats, with integers an IEEE 754 double holds
exactly and ASCII member names (everything the network signs: envelopes, forms,
directories), JCS output is byte for byte what the C JSON encoder writes with sorted
keys, no whitespace and UTF-8 output, since JCS escapes strings as ECMAScript's
``JSON.stringify`` does and sorts members by UTF-16 code units, which for ASCII names
is plain sorting. Anything else goes to the reference implementation (``rfc8785``).
``tests/test_canonical.py`` proves the two agree on generated data.
"""

from __future__ import annotations

import json
from typing import Any

import rfc8785

__all__ = ["canonical"]

_MAX_SAFE_INTEGER = 2**53 - 1
_ENCODER = json.JSONEncoder(
    ensure_ascii=False, allow_nan=False, sort_keys=True, separators=(",", ":")
)


def _plain(value: Any) -> bool:
    """Whether the fast path gives exactly RFC 8785 for ``value``."""
    stack = [value]
    while stack:
        node = stack.pop()
        if isinstance(node, str) or node is None or isinstance(node, bool):
            continue
        if isinstance(node, int):
            if -_MAX_SAFE_INTEGER <= node <= _MAX_SAFE_INTEGER:
                continue
            return False
        if isinstance(node, dict):
            for key in node:
                if not isinstance(key, str) or not key.isascii():
                    return False
            stack.extend(node.values())
        elif isinstance(node, list | tuple):
            stack.extend(node)
        else:  # floats and anything that is not JSON
            return False
    return True


def canonical(value: Any) -> bytes:
    """Return the RFC 8785 canonical UTF-8 bytes of JSON data.

    Raises:
        ValueError: the data cannot be canonicalised (a float that is not finite, an
            integer beyond what an IEEE 754 double holds exactly, a non-string key, a
            lone surrogate …).
    """
    if _plain(value):
        try:
            return _ENCODER.encode(value).encode("utf-8")
        except UnicodeEncodeError:
            pass  # a lone surrogate: the reference implementation reports it
    try:
        return rfc8785.dumps(value)
    except (rfc8785.CanonicalizationError, TypeError, UnicodeEncodeError) as exc:
        raise ValueError(f"not canonicalisable JSON: {exc}") from exc
