"""The sender's side: seal a form, keep it in the outbox, and sign receipts.

Submitting a message seals it (form seal, HPKE, node signature) and writes the
envelope and an audit record in one store transaction; the node's publisher loop
(:mod:`broker.node`) sends outbox rows with publisher confirms. Nothing here talks to
RabbitMQ, so ``evb send`` works against the store of a node that may be running in
another process: the node picks the row up at once (LISTEN/NOTIFY or a short poll).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any, Literal

from broker import delivery
from broker.canonical import canonical
from broker.clock import Clock
from broker.envelope import Envelope, Priority
from broker.forms.base import Form
from broker.forms.receipt import Receipt
from broker.identity import Identity
from broker.store.base import AuditEvent, OutboundMessage, Store

__all__ = [
    "RECEIPT_TYPE",
    "lane",
    "outbound_row",
    "routing_key",
    "seal_receipt",
    "submit",
]

#: The catalogue type of receipts.
RECEIPT_TYPE = "msg.receipt"


def outbound_row(envelope: Envelope, *, expects_receipt: bool, clock: Clock) -> OutboundMessage:
    """Return the outbox row (state ``queued``, due now) of a sealed envelope."""
    raw = envelope.to_bytes()
    now = clock.now()
    state = delivery.start(delivery.Submitted(at=now))
    return OutboundMessage(
        id=envelope.id,
        case_id=envelope.case,
        type=envelope.type,
        recipient=envelope.to,
        priority=envelope.priority,
        in_reply_to=envelope.in_reply_to,
        envelope=raw,
        digest=hashlib.sha256(raw).hexdigest(),
        expects_receipt=expects_receipt,
        state=state.state,
        attempts=state.attempts,
        next_attempt_at=state.next_attempt_at,
        code=state.code,
        receipt=None,
        created_at=now,
        updated_at=now,
    )


async def submit(
    store: Store,
    identity: Identity,
    clock: Clock,
    *,
    form_type: str,
    form: Form | Mapping[str, Any],
    recipient: str,
    case: str | None = None,
    in_reply_to: str | None = None,
    priority: Priority = "normal",
) -> OutboundMessage:
    """Seal a form and queue it in the outbox with its audit record (one transaction).

    Returns:
        The outbox row; its ``id`` is the message id.

    Raises:
        SchemaError, SemanticError, UnknownTypeError: the form is not valid.
        PolicyError: the policy forbids this route.
        TrustError: a key is unknown, revoked or expired.
        StoreError: the store failed.
    """
    envelope = identity.seal(
        form_type=form_type,
        form=form,
        recipient=recipient,
        clock=clock,
        case=case,
        in_reply_to=in_reply_to,
        priority=priority,
    )
    row = outbound_row(envelope, expects_receipt=form_type != RECEIPT_TYPE, clock=clock)
    form_data = form.to_json_obj() if isinstance(form, Form) else dict(form)
    event = AuditEvent(
        event="message.submitted",
        at=row.created_at,
        message_id=row.id,
        case_id=row.case_id,
        peer=recipient,
        details={"type": form_type, "priority": priority, "digest": row.digest},
    )
    await store.submit(row, canonical(form_data), [event])
    return row


def seal_receipt(
    identity: Identity,
    clock: Clock,
    *,
    envelope: Envelope,
    digest: str,
    code: str | None = None,
    reason: str | None = None,
) -> OutboundMessage:
    """Sign a receipt for ``envelope`` and return its outbox row (not yet stored).

    The receipt travels in the lane of the message it answers, in the same case.

    Raises:
        PolicyError: no route lets this node answer the sender (the receipt is withheld).
    """
    form = (
        Receipt.accepted(message_id=envelope.id, envelope_digest=digest, received_at=clock.now())
        if code is None
        else Receipt.rejected(
            message_id=envelope.id,
            envelope_digest=digest,
            received_at=clock.now(),
            code=code,
            reason=reason,
        )
    )
    sealed = identity.seal(
        form_type=RECEIPT_TYPE,
        form=form,
        recipient=envelope.from_,
        clock=clock,
        case=envelope.case,
        in_reply_to=envelope.id,
        priority=envelope.priority,
    )
    return outbound_row(sealed, expects_receipt=False, clock=clock)


def lane(priority: Literal["emergency", "normal"]) -> str:
    """Return the AMQP lane (routing-key suffix) of a priority."""
    return "emergency" if priority == "emergency" else "normal"


def routing_key(recipient: str, priority: Literal["emergency", "normal"]) -> str:
    """Return the routing key of a message to ``recipient`` in the lane of ``priority``."""
    return f"{recipient}.{lane(priority)}"
