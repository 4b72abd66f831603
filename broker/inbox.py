"""The receiver's side: every delivery, in the order of DESIGN §2, takes effect once.

For one delivery (raw bytes from the node's inbound or emergency queue):

1. size limit, parse, key lookup (valid at ``sent_at``), signature
   (:func:`~broker.envelope.authenticate_envelope`) — a failure here is quarantined
   without a receipt: nobody authenticated is there to answer;
2. dedup by message id: a known id with the same envelope digest gets its original
   receipt again (positive or negative) and takes no second effect; a known id with
   another digest is ``E_REPLAY`` (quarantined);
3. age window: ``sent_at`` too far ahead or too old is ``E_CLOCK_SKEW``;
4. policy, recipient, decryption, form schema, document seal
   (:func:`~broker.envelope.open_authenticated`);
5. the case (:mod:`broker.cases`): a message of a case lifecycle must come from a
   party, be a step the case's state allows, carry a ground valid for the instrument
   (refusals) and stay within what the instrument allows (extensions) —
   ``E_CASE_UNKNOWN``, ``E_NOT_PARTY``, ``E_STATE``, ``E_GROUND``, ``E_EXTENSION``;
6. persist: inbox row (the unique dedup key), encrypted form, the signed receipt
   (as an outbox row), the case's change and recomputed deadlines, and audit events
   in one transaction — a rejection stores the negative receipt and a quarantine
   entry the same way;
7. only then is the delivery acked (by the caller), and the receipt leaves through
   the outbox like any other message.

A ``msg.receipt`` goes through the same checks and then moves the receipted outbox
row through :mod:`broker.delivery` (delivered or rejected); receipts get no receipt.
A receipt that carries a proof (a follow-up once the receiver signed a checkpoint) is
kept only if the proof shows the receiver's signed log holds its record of the message
(``E_AUDIT_PROOF`` / ``E_AUDIT_SIG`` otherwise).

Witnessing (:mod:`broker.witnessing`): in step 5, an ``audit.checkpoint`` must pass the
witness's checks (a failure is refused with its ``E_AUDIT_…`` code and answered with a
refused cosignature; a fork raises the alarm) and is cosigned once recorded; an
``audit.cosignature`` must answer a checkpoint this node sent and verify.
A :class:`~broker.errors.StoreError` means "try again" (the delivery is requeued and
RabbitMQ's delivery limit eventually dead-letters it to the quarantine queue); any
other refusal is final and audited. Nothing raises out of :meth:`Inbox.handle`
except a StoreError.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Literal

import structlog

from broker import delivery, ids
from broker.canonical import canonical
from broker.cases import CasePlan, belongs_to_lifecycle, logged_facts, plan_message
from broker.clock import Clock, wire_time
from broker.config import Limits
from broker.envelope import (
    AuthenticatedEnvelope,
    authenticate_envelope,
    open_authenticated,
)
from broker.errors import (
    AuditError,
    BrokerError,
    CaseError,
    ClockSkew,
    DeliveryLimit,
    PolicyError,
    ReceiptMismatch,
    ReceiptUnknown,
    ReplayError,
    StoreError,
    UnknownTypeError,
)
from broker.forms import Form
from broker.forms.receipt import Receipt
from broker.identity import Identity
from broker.outbox import RECEIPT_TYPE, seal_receipt
from broker.store.base import AuditEvent, InboundMessage, OutboundMessage, QuarantineEntry, Store
from broker.witnessing import CHECKPOINT_TYPE, COSIGNATURE_TYPE, CheckpointPlan, Witnessing

__all__ = ["Inbox", "InboxResult"]

log = structlog.get_logger(__name__)

#: Re-reads of an outbox row whose state changed while a receipt was applied.
_RECEIPT_CAS_ATTEMPTS = 8

Status = Literal["accepted", "rejected", "duplicate", "quarantined", "receipt"]


@dataclass(frozen=True)
class InboxResult:
    """What became of one delivery (the caller acks it in every case).

    Attributes:
        status: ``accepted`` (took effect, positive receipt queued), ``rejected``
            (negative receipt queued, quarantined), ``duplicate`` (known message:
            original receipt queued again), ``quarantined`` (refused without a receipt),
            ``receipt`` (a receipt moved one of our outbox rows).
        code: the error code of a refusal.
        message_id: the envelope id, when it was authenticated.
    """

    status: Status
    code: str | None = None
    message_id: str | None = None


def _untrusted_header(raw: bytes, limit: int) -> tuple[str | None, str | None]:
    # For an operator's eyes only (quarantine listing): the id and sender an
    # unauthenticated envelope *claims*. Never used for a decision.
    if len(raw) > limit:
        return None, None
    try:
        data = json.loads(raw)
    except (ValueError, RecursionError):
        return None, None
    if not isinstance(data, dict):
        return None, None
    message_id, sender = data.get("id"), data.get("from")
    return (
        message_id if isinstance(message_id, str) and ids.is_uuid7(message_id) else None,
        sender if isinstance(sender, str) and ids.is_participant_id(sender) else None,
    )


async def _no_pause() -> None:
    return None


class Inbox:
    """Runs the inbox pipeline of one node against its store."""

    def __init__(
        self,
        store: Store,
        identity: Identity,
        clock: Clock,
        limits: Limits,
        retry_for: Callable[[str], delivery.RetryProfile],
        checkpoint: Callable[[], Awaitable[None]] | None = None,
        ack_targets: Mapping[str, timedelta] | None = None,
        witnessing: Witnessing | None = None,
    ) -> None:
        """Bind the pipeline to a node's store, identity, clock, limits and retry profiles.

        ``witnessing`` checks audit messages and receipts' proofs (None: they are
        stored unchecked, as any other message — for tools that only read).

        ``checkpoint`` is awaited between the pipeline's steps: the node parks routine
        work there while emergency work is pending (on two cores, an emergency message
        must not share the interpreter with a backlog of routine ones).
        """
        self._checkpoint = checkpoint or _no_pause
        self._witnessing = witnessing
        self._ack_targets = dict(ack_targets or {})
        self._retry_for = retry_for
        self._store = store
        self._identity = identity
        self._clock = clock
        self._limits = limits

    async def handle(self, raw: bytes, *, dead_lettered: bool = False) -> InboxResult:
        """Process one delivery; return what became of it.

        Args:
            raw: the delivery body.
            dead_lettered: the broker dead-lettered it (delivery limit reached):
                quarantined with ``E_DELIVERY_LIMIT``, never processed again here.

        Raises:
            StoreError: the store failed; the caller requeues the delivery.
        """
        if dead_lettered:
            return await self._quarantine(raw, DeliveryLimit("dead-lettered by the broker"))
        # 1. Size, parse, key, signature.
        try:
            authenticated = authenticate_envelope(
                raw, self._identity.directory, max_bytes=self._limits.max_envelope_bytes
            )
        except StoreError:
            raise
        except BrokerError as exc:
            return await self._quarantine(raw, exc)
        envelope = authenticated.envelope
        await self._checkpoint()
        # 2. Dedup by message id.
        existing = await self._store.get_inbound(envelope.id)
        if existing is not None:
            return await self._duplicate(existing, authenticated, raw)
        # 3. Age window (after dedup: a re-send of known bytes is answered, never aged out).
        now = self._clock.now()
        sent = envelope.sent_time
        if sent > now + self._limits.future_skew or sent < now - self._limits.max_age:
            return await self._reject(
                authenticated, raw, ClockSkew("sent_at lies outside this node's age window")
            )
        # 4. Policy, recipient, decryption, form, seal.
        await self._checkpoint()
        try:
            opened = open_authenticated(
                authenticated,
                self._identity.directory,
                recipient=self._identity.participant,
                decryption_keys=[self._identity.keyset.enc],
            )
        except StoreError:
            raise
        except BrokerError as exc:
            return await self._reject(authenticated, raw, exc)
        if envelope.type == RECEIPT_TYPE:
            if not isinstance(opened.form, Receipt):  # the catalogue's model for the type
                raise TypeError(f"the model of {RECEIPT_TYPE} is not Receipt")
            return await self._receipt(authenticated, raw, opened.form, opened.sealed_by)
        # 5. The case: the message must fit its case (state, parties, grounds, extensions).
        plan: CasePlan | None = None
        witness_plan: CheckpointPlan | None = None
        if belongs_to_lifecycle(envelope.type):
            try:
                plan = await self._plan_case(authenticated, opened.form)
            except (CaseError, UnknownTypeError) as exc:
                return await self._reject(authenticated, raw, exc)
        elif envelope.type in (CHECKPOINT_TYPE, COSIGNATURE_TYPE):
            witnessed = await self._witness(authenticated, raw, opened.form)
            if isinstance(witnessed, InboxResult):
                return witnessed
            witness_plan = witnessed
        # 6. Persist with the positive receipt, in one transaction.
        await self._checkpoint()
        receipt = self._receipt_for(authenticated, None)
        row = self._row(authenticated, "accepted", None, opened.sealed_by, receipt)
        events = [
            self._event(
                "message.received",
                authenticated,
                details={"type": envelope.type, **logged_facts(envelope.type, opened.form)},
            ),
            *self._receipt_events(authenticated, receipt),
            *(plan.audit if plan is not None else ()),
        ]
        stored, created = await self._store.record_inbound(
            row,
            canonical(opened.form.to_json_obj()),
            receipt,
            events,
            case_change=None if plan is None else plan.change,
        )
        if not created:
            return await self._duplicate(stored, authenticated, raw)
        if witness_plan is not None and self._witnessing is not None:
            await self._witnessing.cosign(witness_plan, envelope)
        log.info(
            "message.accepted", message_id=envelope.id, case_id=envelope.case, peer=envelope.from_
        )
        return InboxResult("accepted", message_id=envelope.id)

    async def _witness(
        self, authenticated: AuthenticatedEnvelope, raw: bytes, form: Form
    ) -> CheckpointPlan | InboxResult | None:
        """Step 5 for audit messages: a checkpoint to cosign, or a witness's answer."""
        envelope = authenticated.envelope
        if self._witnessing is None:
            return None
        if envelope.type == COSIGNATURE_TYPE:
            try:
                await self._witnessing.on_cosignature(envelope, form)
            except (AuditError, ReceiptUnknown) as exc:
                return await self._reject(authenticated, raw, exc)
            return None
        try:
            return await self._witnessing.check_checkpoint(envelope, form)
        except AuditError as exc:
            result = await self._reject(authenticated, raw, exc)
            if result.status == "rejected":
                await self._witnessing.refuse(envelope, form, exc)
            return result

    async def _plan_case(self, authenticated: AuthenticatedEnvelope, form: Form) -> CasePlan:
        """Check that an accepted message fits its case; plan the case's change."""
        envelope = authenticated.envelope
        return await plan_message(
            self._store,
            me=self._identity.participant,
            sender=envelope.from_,
            recipient=self._identity.participant,
            form_type=envelope.type,
            form=form,
            case_id=envelope.case,
            message_id=envelope.id,
            priority=envelope.priority,
            at=self._clock.now(),
            ack_targets=self._ack_targets,
        )

    # -- refusals -------------------------------------------------------------------------

    async def _quarantine(self, raw: bytes, exc: BrokerError) -> InboxResult:
        message_id, peer = _untrusted_header(raw, self._limits.max_envelope_bytes)
        entry = QuarantineEntry(
            id=ids.uuid7(),
            received_at=self._clock.now(),
            code=exc.code,
            reason=exc.message[:500],
            message_id=message_id,
            peer=peer,
            authenticated=False,
            size=len(raw),
            state="held",
            raw=raw,
        )
        event = AuditEvent(
            event="message.quarantined",
            at=entry.received_at,
            message_id=message_id,
            peer=peer,
            code=exc.code,
            details={"quarantine_id": entry.id, "authenticated": False, "size": len(raw)},
        )
        await self._store.quarantine(entry, [event])
        log.warning("message.quarantined", code=exc.code, quarantine_id=entry.id)
        return InboxResult("quarantined", code=exc.code, message_id=None)

    async def _quarantine_authenticated(
        self, authenticated: AuthenticatedEnvelope, raw: bytes, exc: BrokerError
    ) -> InboxResult:
        envelope = authenticated.envelope
        entry = self._entry(authenticated, raw, exc)
        event = self._event(
            "message.quarantined",
            authenticated,
            code=exc.code,
            details={"quarantine_id": entry.id, "authenticated": True},
        )
        await self._store.quarantine(entry, [event])
        log.warning(
            "message.quarantined", code=exc.code, message_id=envelope.id, peer=envelope.from_
        )
        return InboxResult("quarantined", code=exc.code, message_id=envelope.id)

    async def _reject(
        self, authenticated: AuthenticatedEnvelope, raw: bytes, exc: BrokerError
    ) -> InboxResult:
        envelope = authenticated.envelope
        # A receipt is never answered with a receipt: a bad one is only quarantined.
        receipt = None if envelope.type == RECEIPT_TYPE else self._receipt_for(authenticated, exc)
        row = self._row(authenticated, "rejected", exc.code, None, receipt)
        entry = self._entry(authenticated, raw, exc)
        events = [
            self._event(
                "message.rejected",
                authenticated,
                code=exc.code,
                details={"type": envelope.type, "quarantine_id": entry.id},
            ),
            *(
                []
                if envelope.type == RECEIPT_TYPE
                else self._receipt_events(authenticated, receipt)
            ),
        ]
        stored, created = await self._store.record_inbound(row, None, receipt, events, entry)
        if not created:
            return await self._duplicate(stored, authenticated, raw)
        log.warning("message.rejected", code=exc.code, message_id=envelope.id, peer=envelope.from_)
        return InboxResult("rejected", code=exc.code, message_id=envelope.id)

    async def _duplicate(
        self, existing: InboundMessage, authenticated: AuthenticatedEnvelope, raw: bytes
    ) -> InboxResult:
        envelope = authenticated.envelope
        if existing.digest != authenticated.digest:
            return await self._quarantine_authenticated(
                authenticated, raw, ReplayError("this message id is known with another envelope")
            )
        event = self._event("message.duplicate", authenticated, details={"status": existing.status})
        if existing.receipt_id is not None:
            await self._store.requeue(existing.receipt_id, self._clock.now(), [event])
        else:
            await self._store.audit([event])
        if envelope.type == RECEIPT_TYPE and existing.status == "accepted":
            # The receipt may have been recorded before the crash that kept its
            # outbox row from moving: apply it again (idempotent).
            form = await self._store.read_form("in", envelope.id)
            if form is not None:
                receipt = Receipt.model_validate_json(form)
                await self._apply_receipt(authenticated, receipt)
        log.info("message.duplicate", message_id=envelope.id, peer=envelope.from_)
        return InboxResult("duplicate", code=existing.code, message_id=envelope.id)

    # -- receipts ------------------------------------------------------------------------

    async def _receipt(
        self,
        authenticated: AuthenticatedEnvelope,
        raw: bytes,
        receipt: Receipt,
        sealed_by: str,
    ) -> InboxResult:
        envelope = authenticated.envelope
        try:
            original = await self._check_receipt(authenticated, receipt)
        except (ReceiptUnknown, ReceiptMismatch) as exc:
            return await self._reject(authenticated, raw, exc)
        details: dict[str, str | int | bool | None] = {
            "outcome": receipt.outcome,
            "receipted": original.id,
        }
        if receipt.proof is not None and self._witnessing is not None:
            try:
                leaf, size = self._witnessing.check_proof(envelope, receipt, original.digest)
            except AuditError as exc:
                return await self._reject(authenticated, raw, exc)
            details |= {"proof_leaf": leaf, "proof_size": size}
        row = self._row(authenticated, "accepted", None, sealed_by, None)
        event = self._event(
            "receipt.proof" if "proof_leaf" in details else "receipt.received",
            authenticated,
            code=receipt.code,
            details=details,
        )
        stored, created = await self._store.record_inbound(
            row, canonical(receipt.to_json_obj()), None, [event]
        )
        if not created:
            return await self._duplicate(stored, authenticated, raw)
        await self._apply_receipt(authenticated, receipt, original)
        return InboxResult("receipt", code=receipt.code, message_id=envelope.id)

    async def _check_receipt(
        self, authenticated: AuthenticatedEnvelope, receipt: Receipt
    ) -> OutboundMessage:
        envelope = authenticated.envelope
        original = await self._store.get_outbound(receipt.message_id)
        if original is None or not original.expects_receipt:
            raise ReceiptUnknown("a receipt for a message this node did not send")
        if (
            envelope.from_ != original.recipient
            or envelope.in_reply_to != original.id
            or envelope.case != original.case_id
            or receipt.envelope_digest != original.digest
        ):
            raise ReceiptMismatch("the receipt does not match the message it names")
        return original

    async def _apply_receipt(
        self,
        authenticated: AuthenticatedEnvelope,
        receipt: Receipt,
        original: OutboundMessage | None = None,
    ) -> None:
        # The publisher loop moves the same row (queued -> sent) concurrently, and a
        # receipt can overtake that update: compare-and-set, and on a lost race read
        # the row again and re-apply, so a receipt's effect is never dropped.
        for _ in range(_RECEIPT_CAS_ATTEMPTS):
            if await self._try_apply_receipt(authenticated, receipt, original):
                return
            original = None
        # Give up this delivery: the store error requeues it, and the redelivery
        # (a duplicate of a recorded receipt) applies it again.
        raise StoreError(f"outbox row {receipt.message_id} kept changing under its receipt")

    async def _try_apply_receipt(
        self,
        authenticated: AuthenticatedEnvelope,
        receipt: Receipt,
        original: OutboundMessage | None,
    ) -> bool:
        if original is None:
            original = await self._store.get_outbound(receipt.message_id)
        if original is None:
            raise StoreError(f"outbox row {receipt.message_id} vanished")
        now = self._clock.now()
        event: delivery.Event = (
            delivery.ReceiptAccepted(at=now)
            if receipt.outcome == "accepted"
            else delivery.ReceiptRejected(at=now, code=receipt.code or "E_INTERNAL")
        )
        current = delivery.Delivery(
            state=original.state,
            attempts=original.attempts,
            next_attempt_at=original.next_attempt_at,
            code=original.code,
        )
        after = delivery.step(current, event, self._retry_for(original.recipient))
        if after == current:
            return True
        audit = AuditEvent(
            event=f"message.{after.state}",
            at=now,
            message_id=original.id,
            case_id=original.case_id,
            peer=original.recipient,
            code=after.code,
            details={"receipt": authenticated.envelope.id},
        )
        updated = await self._store.update_delivery(
            original.id,
            state=after.state,
            attempts=after.attempts,
            next_attempt_at=after.next_attempt_at,
            code=after.code,
            events=[audit],
            receipt=authenticated.envelope.to_bytes(),
            expect_state=[current.state],
        )
        if updated:
            log.info(f"message.{after.state}", message_id=original.id, peer=original.recipient)
        return updated

    # -- rows -----------------------------------------------------------------------------

    def _receipt_for(
        self, authenticated: AuthenticatedEnvelope, exc: BrokerError | None
    ) -> OutboundMessage | None:
        try:
            return seal_receipt(
                self._identity,
                self._clock,
                envelope=authenticated.envelope,
                digest=authenticated.digest,
                code=None if exc is None else exc.code,
                reason=None if exc is None else exc.message[:200],
            )
        except PolicyError:
            # No route lets us answer this sender (it sent what the policy forbids and
            # has no route back): the refusal is kept and audited, the receipt withheld.
            return None

    def _row(
        self,
        authenticated: AuthenticatedEnvelope,
        status: Literal["accepted", "rejected"],
        code: str | None,
        sealed_by: str | None,
        receipt: OutboundMessage | None,
    ) -> InboundMessage:
        envelope = authenticated.envelope
        return InboundMessage(
            id=envelope.id,
            case_id=envelope.case,
            type=envelope.type,
            sender=envelope.from_,
            priority=envelope.priority,
            in_reply_to=envelope.in_reply_to,
            digest=authenticated.digest,
            sent_at=envelope.sent_time,
            received_at=self._clock.now(),
            status=status,
            code=code,
            sealed_by=sealed_by,
            receipt_id=None if receipt is None else receipt.id,
        )

    def _entry(
        self, authenticated: AuthenticatedEnvelope, raw: bytes, exc: BrokerError
    ) -> QuarantineEntry:
        return QuarantineEntry(
            id=ids.uuid7(),
            received_at=self._clock.now(),
            code=exc.code,
            reason=exc.message[:500],
            message_id=authenticated.envelope.id,
            peer=authenticated.envelope.from_,
            authenticated=True,
            size=len(raw),
            state="held",
            raw=raw,
        )

    def _event(
        self,
        name: str,
        authenticated: AuthenticatedEnvelope,
        *,
        code: str | None = None,
        details: dict[str, str | int | bool | None] | None = None,
    ) -> AuditEvent:
        envelope = authenticated.envelope
        return AuditEvent(
            event=name,
            at=self._clock.now(),
            message_id=envelope.id,
            case_id=envelope.case,
            peer=envelope.from_,
            code=code,
            details={"digest": authenticated.digest, **(details or {})},
        )

    def _receipt_events(
        self, authenticated: AuthenticatedEnvelope, receipt: OutboundMessage | None
    ) -> list[AuditEvent]:
        if receipt is None:
            return [
                self._event(
                    "receipt.withheld",
                    authenticated,
                    code=PolicyError.code,
                    details={"sent_at": wire_time(authenticated.envelope.sent_time)},
                )
            ]
        return [
            self._event(
                "receipt.queued",
                authenticated,
                details={"receipt_id": receipt.id, "receipt_digest": receipt.digest},
            )
        ]
