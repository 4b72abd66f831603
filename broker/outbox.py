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
from datetime import timedelta
from typing import Any, Literal

from broker import delivery
from broker.canonical import canonical
from broker.cases import CasePlan, belongs_to_lifecycle, logged_facts, plan_message
from broker.clock import Clock
from broker.envelope import Envelope, Priority
from broker.errors import CaseError
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
    ack_targets: Mapping[str, timedelta] | None = None,
) -> OutboundMessage:
    """Seal a form and queue it in the outbox with its audit record (one transaction).

    A message of a case lifecycle must fit its case here too: a request opens a case
    (this node the requester), a reply must be a step the case's state allows, sent by
    one party to the other. The case's change and deadlines commit with the row.

    Returns:
        The outbox row; its ``id`` is the message id.

    Raises:
        SchemaError, SemanticError, UnknownTypeError: the form is not valid.
        PolicyError: the policy forbids this route.
        TrustError: a key is unknown, revoked or expired.
        CaseError: the message does not fit its case (``E_CASE_UNKNOWN``,
            ``E_NOT_PARTY``, ``E_STATE``, ``E_GROUND``, ``E_EXTENSION``); nothing is
            queued and the refusal is audited.
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
    plan: CasePlan | None = None
    if belongs_to_lifecycle(form_type):
        try:
            plan = await plan_message(
                store, me=identity.participant, sender=identity.participant,
                recipient=recipient, form_type=form_type, form=form_data, case_id=row.case_id,
                message_id=row.id, priority=priority, at=row.created_at,
                known_case=case is not None, ack_targets=ack_targets,
            )  # fmt: skip
        except CaseError as exc:
            await store.audit(
                [
                    AuditEvent(
                        event="message.refused",
                        at=clock.now(),
                        message_id=row.id,
                        case_id=row.case_id,
                        peer=recipient,
                        code=exc.code,
                        details={"type": form_type},
                    )
                ]
            )
            raise
    event = AuditEvent(
        event="message.submitted",
        at=row.created_at,
        message_id=row.id,
        case_id=row.case_id,
        peer=recipient,
        details={
            "type": form_type,
            "priority": priority,
            "digest": row.digest,
            **logged_facts(form_type, form_data),
        },
    )
    events = [event, *(plan.audit if plan is not None else ())]
    await store.submit(
        row, canonical(form_data), events, case_change=None if plan is None else plan.change
    )
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
