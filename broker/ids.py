"""Identifiers: participant ids and UUIDv7 message ids.

A participant id names a country (or a network-wide body such as ``EU``) and a
point of contact: ``AT.247``, ``DE.CA``, ``ISP.mailhost``. Message ids are UUIDv7
(RFC 9562): time-ordered, so stores index them well and logs sort by them.
"""

from __future__ import annotations

import os
import re
import time
import uuid

__all__ = ["PARTICIPANT_ID", "is_participant_id", "is_uuid7", "uuid7"]

#: The form of a participant id.
PARTICIPANT_ID = re.compile(r"[A-Z]{2,3}\.[A-Za-z0-9_-]{1,32}")


def is_participant_id(value: str) -> bool:
    """Return whether ``value`` is a well-formed participant id."""
    return bool(PARTICIPANT_ID.fullmatch(value))


def uuid7(unix_ms: int | None = None) -> str:
    """Return a new UUIDv7 (RFC 9562 §5.7) in canonical lower-case form.

    Args:
        unix_ms: the timestamp to embed (milliseconds since the epoch); now if omitted.
    """
    ms = time.time_ns() // 1_000_000 if unix_ms is None else unix_ms
    if not 0 <= ms < 1 << 48:
        raise ValueError("timestamp out of range for UUIDv7")
    rand = int.from_bytes(os.urandom(10), "big")
    value = (ms << 80) | (0x7 << 76) | ((rand >> 62) & 0xFFF) << 64 | (0b10 << 62)
    value |= rand & ((1 << 62) - 1)
    return str(uuid.UUID(int=value))


def is_uuid7(value: str) -> bool:
    """Return whether ``value`` is a canonical lower-case UUID of version 7."""
    try:
        parsed = uuid.UUID(value)
    except ValueError:
        return False
    return str(parsed) == value and parsed.version == 7 and parsed.variant == uuid.RFC_4122
