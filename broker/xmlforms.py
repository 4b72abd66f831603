"""XML forms: hardened parsing and the XML <-> model mapping (filled in by the EIO work)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from broker.errors import ParseError

__all__ = ["XML_TYPES", "decode", "encode"]

#: Catalogue types that have an XML form.
XML_TYPES: frozenset[str] = frozenset()


def decode(form_type: str, raw: bytes) -> dict[str, Any]:
    """Parse an XML form into the JSON model of its type."""
    raise ParseError(f"{form_type} has no XML form")


def encode(form_type: str, doc: Mapping[str, Any]) -> bytes:
    """Render a valid document of a type as XML."""
    raise ParseError(f"{form_type} has no XML form")
