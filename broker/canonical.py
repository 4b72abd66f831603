"""RFC 8785 (JCS) canonical JSON: the bytes every signature in the project covers."""

from __future__ import annotations

from typing import Any

import rfc8785

__all__ = ["canonical"]


def canonical(value: Any) -> bytes:
    """Return the RFC 8785 canonical UTF-8 bytes of JSON data.

    Raises:
        ValueError: the data cannot be canonicalised (a float that is not finite, an
            integer beyond what an IEEE 754 double holds exactly, a non-string key …).
    """
    try:
        return rfc8785.dumps(value)
    except (rfc8785.CanonicalizationError, TypeError) as exc:
        raise ValueError(f"not canonicalisable JSON: {exc}") from exc
