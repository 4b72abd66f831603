"""Rows for the store tests: valid by default, any field overridable."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta
from typing import Any

from broker.ids import uuid7
from broker.store import AuditEvent, InboundMessage, OutboundMessage, QuarantineEntry

# Microseconds on purpose: times must round-trip exactly, not to the millisecond.
T0 = datetime(2026, 9, 1, 3, 0, 0, 123457, tzinfo=UTC)
SECOND = timedelta(seconds=1)


def outbound(**fields: Any) -> OutboundMessage:
    """A queued outbox row, due at T0, addressed to AT.247."""
    envelope = fields.pop("envelope", b'{"envelope":"' + uuid7().encode() + b'"}')
    at = fields.pop("at", T0)
    row: dict[str, Any] = {
        "id": uuid7(),
        "case_id": uuid7(),
        "type": "budapest.art29",
        "recipient": "AT.247",
        "priority": "normal",
        "in_reply_to": None,
        "envelope": envelope,
        "digest": hashlib.sha256(envelope).hexdigest(),
        "expects_receipt": True,
        "state": "queued",
        "attempts": 0,
        "next_attempt_at": at,
        "code": None,
        "receipt": None,
        "created_at": at,
        "updated_at": at,
    }
    row.update(fields)
    return OutboundMessage(**row)


def inbound(**fields: Any) -> InboundMessage:
    """An accepted inbox row from DE.247."""
    row: dict[str, Any] = {
        "id": uuid7(),
        "case_id": uuid7(),
        "type": "budapest.art29",
        "sender": "DE.247",
        "priority": "normal",
        "in_reply_to": None,
        "digest": hashlib.sha256(b"in").hexdigest(),
        "sent_at": T0 - SECOND,
        "received_at": T0,
        "status": "accepted",
        "code": None,
        "sealed_by": "DE.CA",
        "receipt_id": None,
    }
    row.update(fields)
    return InboundMessage(**row)


def receipt_for(message: InboundMessage, **fields: Any) -> OutboundMessage:
    """The receipt row a node queues for an inbound message (expects no receipt itself)."""
    defaults: dict[str, Any] = {
        "case_id": message.case_id,
        "type": "msg.receipt",
        "recipient": message.sender,
        "in_reply_to": message.id,
        "expects_receipt": False,
        "at": message.received_at,
    }
    defaults.update(fields)
    return outbound(**defaults)


def entry(**fields: Any) -> QuarantineEntry:
    """A held quarantine entry with raw bytes."""
    raw = fields.pop("raw", b"\x00garbage\xff" + uuid7().encode())
    row: dict[str, Any] = {
        "id": uuid7(),
        "received_at": T0,
        "code": "E_PARSE",
        "reason": "not JSON",
        "message_id": None,
        "peer": None,
        "authenticated": False,
        "size": 0 if raw is None else len(raw),
        "state": "held",
        "raw": raw,
    }
    row.update(fields)
    return QuarantineEntry(**row)


def event(name: str, **fields: Any) -> AuditEvent:
    """An audit event at T0."""
    fields.setdefault("at", T0)
    return AuditEvent(event=name, **fields)
