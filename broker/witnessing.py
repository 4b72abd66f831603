"""Witnessing over AMQP, and receipts that carry proof: the node's side of issue #7.

Two roles in every node:

* **as a log** — after each checkpoint (:meth:`Witnessing.after_checkpoint`) the node
  sends it, as an ``audit.checkpoint`` message with a consistency proof from the size
  each witness last verified, to its witnesses (``audit.witnesses``; by default every
  other participant of the trust directory), one outstanding checkpoint per witness.
  Their ``audit.cosignature`` answers are checked (the cosignature must verify under
  the witness's signing key, over this node's real root at that size) and kept; a
  refusal moves the next proof's start to the size the witness says it knows. It
  also sends every sender of an accepted message a follow-up ``msg.receipt`` whose
  ``proof`` holds the node's log entry of that message, its inclusion proof and the
  checkpoint (``audit.receipt_proofs``).
* **as a witness** — an ``audit.checkpoint`` from a peer is checked by
  :func:`broker.audit.witness.check_peer_checkpoint`, kept, and cosigned; a
  checkpoint that fails is refused with its code (``E_AUDIT_SIG``, ``E_AUDIT_PROOF``,
  ``E_AUDIT_FORK``) and, for a fork, an alarm: an ``audit.fork`` record and an alert
  on the node's alert queue.

Messages between a log and one witness travel in one case per pair
(:func:`broker.audit.witness.channel_case`). Nothing here holds payload: checkpoints,
proofs and cosignatures are hashes and signatures.
"""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

import structlog
from cryptography.hazmat.primitives.asymmetric import ed25519

from broker.audit.checkpoint import (
    Checkpoint,
    cosign,
    origin_for,
    parse_note,
    verify_cosignature,
)
from broker.audit.entry import entry_bytes
from broker.audit.merkle import MerkleLevels
from broker.audit.witness import (
    KeptCheckpoint,
    channel_case,
    check_peer_checkpoint,
    check_receipt_proof,
    decode_hashes,
)
from broker.clock import Clock, wire_time
from broker.config import AuditConfig
from broker.crypto import SIG_ED25519
from broker.envelope import Envelope
from broker.errors import (
    AuditBundle,
    AuditError,
    AuditFork,
    AuditSignature,
    BrokerError,
    ReceiptUnknown,
)
from broker.forms import Form
from broker.forms.audit import AuditCheckpoint, AuditCosignature
from broker.forms.receipt import Proof, Receipt
from broker.identity import Identity
from broker.outbox import RECEIPT_TYPE, outbound_row, submit
from broker.scheduler import Alert
from broker.store.auditlog import entry_of
from broker.store.base import AuditEvent, InboundMessage, Store

__all__ = [
    "AUDIT_TYPES",
    "CHECKPOINT_TYPE",
    "COSIGNATURE_TYPE",
    "PROOF_CURSOR",
    "Witnessing",
    "log_verifiers",
]

log = structlog.get_logger(__name__)

#: The catalogue types of witnessing.
CHECKPOINT_TYPE = "audit.checkpoint"
COSIGNATURE_TYPE = "audit.cosignature"
AUDIT_TYPES = frozenset({CHECKPOINT_TYPE, COSIGNATURE_TYPE})
#: The log cursor of the follow-up receipts: entries before it have been proved.
PROOF_CURSOR = "receipt_proofs"

_PAGE = 5000
_SYNC_PAGE = 50_000
#: A checkpoint left unanswered by a witness is sent again after this many intervals.
_RESEND_INTERVALS = 3


def log_verifiers(
    identity: Identity, participant: str, at: datetime
) -> dict[str, ed25519.Ed25519PublicKey]:
    """Return a participant's usable Ed25519 signing keys (key id → key) at ``at``.

    Checkpoints are signed, and cosignatures made, with these keys; a revoked,
    expired or unknown key is left out (fail closed).
    """
    directory = identity.directory
    keys: dict[str, ed25519.Ed25519PublicKey] = {}
    for key in directory.participant(participant).keys:
        if key.use != "sig" or key.alg != SIG_ED25519:
            continue
        try:
            _, public = directory.verification_key(key.kid, use="sig", at=at)
        except BrokerError:
            continue
        keys[key.kid] = ed25519.Ed25519PublicKey.from_public_bytes(public.raw)
    return keys


@dataclass(frozen=True)
class CheckpointPlan:
    """A peer's checkpoint that passed: what the witness answers once it is recorded."""

    checkpoint: Checkpoint
    known_size: int


class Witnessing:
    """A node's witnessing and receipt proofs (see the module docstring)."""

    def __init__(
        self,
        store: Store,
        identity: Identity,
        clock: Clock,
        settings: AuditConfig,
        alert: Callable[[Alert], Awaitable[None]] | None = None,
    ) -> None:
        """Bind to a node's store, identity, clock and ``[audit]`` settings.

        ``alert`` publishes an alert on the node's alert queue (None: logged only).
        """
        self._store = store
        self._identity = identity
        self._clock = clock
        self._settings = settings
        self.alert = alert
        self._me = identity.participant
        self._origin = origin_for(self._me)
        # This node's own log, as far as it was read: proofs are answered from it.
        self._levels = MerkleLevels()
        # Witness → (size, sent at) of the checkpoint awaiting its answer.
        # Witness → (size, sent at, message id) of the checkpoint awaiting its answer.
        self._pending: dict[str, tuple[int, datetime, str]] = {}

    # -- as a log ---------------------------------------------------------------------

    def witnesses(self) -> list[str]:
        """Return the participants asked to cosign this node's checkpoints."""
        if self._settings.witnesses is not None:
            return [w for w in self._settings.witnesses if w != self._me]
        return [p.id for p in self._identity.directory.participants if p.id != self._me]

    async def _sync(self, size: int) -> None:
        """Read this node's log up to ``size`` leaves into the in-memory levels."""
        while self._levels.size < size:
            hashes = await self._store.audit_leaf_hashes(
                start=self._levels.size, limit=min(_SYNC_PAGE, size - self._levels.size)
            )
            if not hashes:
                raise AuditError(f"the log holds fewer than {size} entries")
            self._levels.extend(hashes)

    async def after_checkpoint(self) -> None:
        """Send the latest checkpoint to witnesses, and proofs to senders, as due.

        Raises:
            StoreError: the store failed (the next call retries).
        """
        latest = await self._store.list_checkpoints(newest_first=True, limit=1)
        if not latest:
            return
        size, note = latest[0]
        await self._sync(size)
        await self.distribute(size, note)
        if self._settings.receipt_proofs:
            await self.send_receipt_proofs(size, note)

    async def distribute(self, size: int, note: bytes) -> int:
        """Send checkpoint ``size`` to every witness that has not verified it; return how many."""
        known = await self._store.witness_sizes()
        now = self._clock.now()
        resend = _RESEND_INTERVALS * self._settings.checkpoint_interval
        sent = 0
        for witness in self.witnesses():
            from_size = min(known.get(witness, 0), size)
            if from_size >= size:
                continue
            if await self._awaiting(witness, now, resend):
                continue
            proof = self._levels.consistency_proof(from_size, size) if from_size else []
            form = {
                "checkpoint": note.decode("utf-8"),
                "proof": {"from_size": from_size, "hashes": [h.hex() for h in proof]},
            }
            try:
                row = await submit(
                    self._store,
                    self._identity,
                    self._clock,
                    form_type=CHECKPOINT_TYPE,
                    form=form,
                    recipient=witness,
                    case=channel_case(self._me, witness),
                )
            except AuditError:
                raise
            except BrokerError as exc:
                # No route or key for this witness (policy, directory): say so, go on.
                log.warning("witness.unreachable", witness=witness, code=exc.code)
                continue
            self._pending[witness] = (size, now, row.id)
            sent += 1
        return sent

    async def _awaiting(self, witness: str, now: datetime, resend: timedelta) -> bool:
        """Whether the last checkpoint sent to ``witness`` still awaits its answer.

        While the outbox still delivers it (its retry profile re-sends it), nothing new
        is sent; once delivered, the answer is awaited for ``resend``; once it failed
        or was refused, the next checkpoint may go.
        """
        pending = self._pending.get(witness)
        if pending is None:
            return False
        row = await self._store.get_outbound(pending[2])
        if row is None or row.state in ("failed", "rejected"):
            return False
        if row.state in ("queued", "sent"):
            return True
        return now - pending[1] < max(resend, timedelta(seconds=1))

    async def send_receipt_proofs(self, size: int, note: bytes) -> int:
        """Send follow-up receipts with proofs for messages logged before ``size``."""
        start = await self._store.audit_cursor(PROOF_CURSOR)
        sent = 0
        while start < size:
            leaves = await self._store.audit_leaves(start=start, limit=min(_PAGE, size - start))
            if not leaves:
                break
            for index, event, _ in leaves:
                if event.event != "message.received" or event.message_id is None:
                    continue
                if event.details.get("type") in AUDIT_TYPES:
                    continue
                row = await self._store.get_inbound(event.message_id)
                if row is None or row.status != "accepted":
                    continue
                entry = entry_bytes(entry_of(index, event)).decode("utf-8")
                hashes = [h.hex() for h in self._levels.inclusion_proof(index, size)]
                await self._queue_proof(row, index, size, hashes, note, entry)
                sent += 1
            start = leaves[-1][0] + 1
            await self._store.set_audit_cursor(PROOF_CURSOR, start)
        return sent

    async def _queue_proof(
        self,
        row: InboundMessage,
        index: int,
        size: int,
        hashes: list[str],
        note: bytes,
        entry: str,
    ) -> None:
        try:
            proof = Proof(
                leaf_index=index,
                tree_size=size,
                hashes=tuple(hashes),
                checkpoint=note.decode("utf-8"),
                entry=entry,
            )
            form = Receipt.accepted(
                message_id=row.id,
                envelope_digest=row.digest,
                received_at=row.received_at,
                proof=proof,
            )
            sealed = self._identity.seal(
                form_type=RECEIPT_TYPE,
                form=form,
                recipient=row.sender,
                clock=self._clock,
                case=row.case_id,
                in_reply_to=row.id,
            )
        except BrokerError as exc:
            log.warning("receipt.proof_withheld", message_id=row.id, code=exc.code)
            return
        receipt = outbound_row(sealed, expects_receipt=False, clock=self._clock)
        await self._store.submit(
            receipt,
            None,
            [
                AuditEvent(
                    event="receipt.proof_queued",
                    at=self._clock.now(),
                    message_id=row.id,
                    case_id=row.case_id,
                    peer=row.sender,
                    details={"receipt_id": receipt.id, "leaf_index": index, "tree_size": size},
                )
            ],
        )

    async def on_cosignature(self, envelope: Envelope, form: Form) -> None:
        """Check and keep a witness's answer to one of this node's checkpoints.

        The answer is recorded here, in its own transaction.

        Raises:
            ReceiptUnknown: an answer to no checkpoint this node sent to that witness.
            AuditSignature: about another log, or a cosignature that does not verify
                under the witness's key.
            AuditFork: a cosignature of a root this node's log never had.
        """
        if not isinstance(form, AuditCosignature):  # the catalogue's model for the type
            raise TypeError(f"the model of {COSIGNATURE_TYPE} is not AuditCosignature")
        witness = envelope.from_
        original = (
            None
            if envelope.in_reply_to is None
            else await self._store.get_outbound(envelope.in_reply_to)
        )
        if original is None or original.type != CHECKPOINT_TYPE or original.recipient != witness:
            raise ReceiptUnknown("an answer to a checkpoint this node did not send to its sender")
        if form.origin != self._origin:
            raise AuditSignature("the answer is about another log")
        head, _ = await self._store.audit_head()
        known = int(form.known_size)
        now = self._clock.now()
        if form.outcome != "cosigned":
            self._pending.pop(witness, None)
            event = AuditEvent(
                event="witness.refused",
                at=now,
                peer=witness,
                code=form.code,
                details={"tree_size": form.tree_size, "known_size": known},
            )
            await self._store.record_witness_answer(witness, min(known, head), None, [event])
            log.warning("witness.refused", witness=witness, code=form.code, known_size=known)
            if form.code == AuditFork.code or known > head:
                await self._alarm("audit_fork_reported", witness, form.tree_size, known)
            return
        size = int(form.tree_size)
        await self._sync(min(size, head))
        if size > self._levels.size or self._levels.root(size).hex() != form.root_hash:
            raise AuditFork(f"{witness} cosigned a root this log never had at size {size}")
        checkpoint = Checkpoint(self._origin, size, self._levels.root(size))
        line = form.signature_line()
        self._verify_cosignature(checkpoint, line, witness)
        event = AuditEvent(
            event="witness.cosignature",
            at=now,
            peer=witness,
            details={"tree_size": size, "known_size": known},
        )
        await self._store.record_witness_answer(
            witness, min(max(known, size), head), (size, line), [event]
        )
        if witness in self._pending and self._pending[witness][0] <= size:
            self._pending.pop(witness, None)
        log.info("witness.cosigned", witness=witness, size=size)

    def _verify_cosignature(self, checkpoint: Checkpoint, line: bytes, witness: str) -> None:
        keys = log_verifiers(self._identity, witness, self._clock.now())
        parts = line.decode("utf-8", "replace").split(" ")
        name = parts[1] if len(parts) == 3 else ""
        key = keys.get(name)
        if key is None:
            raise AuditSignature(f"the cosignature is not by a signing key of {witness}")
        try:
            verify_cosignature(checkpoint, line, name, key)
        except AuditBundle as exc:
            raise AuditSignature(f"the cosignature line is malformed: {exc}") from exc

    # -- as a witness -----------------------------------------------------------------

    async def check_checkpoint(self, envelope: Envelope, form: Form) -> CheckpointPlan:
        """Check a peer's checkpoint and keep it (before the message is recorded).

        Raises:
            AuditSignature, AuditBundle: not the sender's signed checkpoint.
            AuditProof: stale, or a proof from another size than this witness knows.
            AuditFork: the sender's log was rewritten (a second root for a size, or a
                proof that does not join the last cosigned checkpoint to this one).
        """
        if not isinstance(form, AuditCheckpoint):  # the catalogue's model for the type
            raise TypeError(f"the model of {CHECKPOINT_TYPE} is not AuditCheckpoint")
        peer = envelope.from_
        note = form.checkpoint.encode("utf-8")
        try:
            claimed = Checkpoint.from_body(parse_note(note).text)
        except AuditBundle as exc:
            raise AuditSignature(f"not a signed checkpoint: {exc}") from exc
        latest = await self._kept(peer, None)
        same = await self._kept(peer, claimed.size)
        verified = check_peer_checkpoint(
            note,
            peer=peer,
            verifiers=log_verifiers(self._identity, peer, self._clock.now()),
            from_size=int(form.proof.from_size),
            proof=decode_hashes(form.proof.hashes),
            latest=latest,
            same_size=same,
        )
        checkpoint = verified.checkpoint
        if not verified.seen:
            event = AuditEvent(
                event="witness.verified",
                at=self._clock.now(),
                message_id=envelope.id,
                case_id=envelope.case,
                peer=peer,
                details={"tree_size": checkpoint.size, "root": checkpoint.root_hash.hex()},
            )
            kept = await self._store.add_peer_checkpoint(
                peer, checkpoint.size, checkpoint.root_hash, note, [event]
            )
            if kept is not None and kept != checkpoint.root_hash:
                raise AuditFork(f"two roots for size {checkpoint.size} of {checkpoint.origin}")
        known = max(checkpoint.size, latest.size if latest else 0)
        return CheckpointPlan(checkpoint, known)

    async def _kept(self, peer: str, size: int | None) -> KeptCheckpoint | None:
        kept = await self._store.peer_checkpoint(peer, size)
        return None if kept is None else KeptCheckpoint(kept[0], kept[1])

    async def cosign(self, plan: CheckpointPlan, envelope: Envelope) -> None:
        """Answer a recorded, verified checkpoint with this node's cosignature."""
        signer = self._identity.keyset.sig
        if not isinstance(signer.private, ed25519.Ed25519PrivateKey):
            raise AuditSignature("this node's signing key cannot cosign (not Ed25519)")
        line = cosign(
            plan.checkpoint, signer.kid, signer.private, int(self._clock.now().timestamp())
        )
        await self._answer(
            envelope,
            lambda: AuditCosignature.cosigned(
                plan.checkpoint, cosignature=line, known_size=plan.known_size
            ),
        )

    async def refuse(self, envelope: Envelope, form: Form, exc: AuditError) -> None:
        """Answer a checkpoint that failed with a refusal; raise the alarm on a fork."""
        if not isinstance(form, AuditCheckpoint):
            raise TypeError(f"the model of {CHECKPOINT_TYPE} is not AuditCheckpoint")
        peer = envelope.from_
        latest = await self._kept(peer, None)
        known = latest.size if latest else 0
        claimed: Checkpoint | None = None
        with contextlib.suppress(AuditError):
            claimed = Checkpoint.from_body(parse_note(form.checkpoint.encode("utf-8")).text)
        if isinstance(exc, AuditFork):
            size = claimed.size if claimed else 0
            await self._store.audit(
                [
                    AuditEvent(
                        event="audit.fork",
                        at=self._clock.now(),
                        message_id=envelope.id,
                        case_id=envelope.case,
                        peer=peer,
                        code=exc.code,
                        details={"tree_size": size, "known_size": known},
                    )
                ]
            )
            log.error("audit.fork", peer=peer, size=size, known_size=known)
            await self._alarm("audit_fork", peer, size, known)
        if claimed is None or claimed.origin != origin_for(peer):
            return  # nothing to name in an answer: the negative receipt says it all
        about = claimed
        await self._answer(
            envelope,
            lambda: AuditCosignature.refused(
                about, code=exc.code, known_size=known, reason=exc.message[:200]
            ),
        )

    async def _answer(self, envelope: Envelope, build: Callable[[], AuditCosignature]) -> None:
        try:
            await submit(
                self._store,
                self._identity,
                self._clock,
                form_type=COSIGNATURE_TYPE,
                form=build(),
                recipient=envelope.from_,
                case=envelope.case,
                in_reply_to=envelope.id,
            )
        except AuditError:
            raise
        except BrokerError as exc:
            log.warning("witness.answer_withheld", peer=envelope.from_, code=exc.code)

    async def _alarm(self, kind: str, peer: str, size: int, known: int) -> None:
        payload: Alert = {
            "alert": kind,
            "node": self._me,
            "peer": peer,
            "tree_size": size,
            "known_size": known,
            "at": wire_time(self._clock.now()),
            "code": AuditFork.code,
        }
        if self.alert is not None:
            await self.alert(payload)

    # -- receipts with proof ----------------------------------------------------------

    def check_proof(
        self, envelope: Envelope, receipt: Receipt, original_digest: str
    ) -> tuple[int, int]:
        """Check a receipt's proof; return (leaf index, tree size).

        Raises:
            AuditSignature, AuditProof: see :func:`broker.audit.witness.check_receipt_proof`.
        """
        proof = receipt.proof
        if proof is None:
            raise AuditError("no proof to check")
        check_receipt_proof(
            receiver=envelope.from_,
            sender=self._me,
            message_id=receipt.message_id,
            envelope_digest=original_digest,
            entry=proof.entry,
            leaf_index=proof.leaf_index,
            tree_size=proof.tree_size,
            hashes=list(proof.hashes),
            checkpoint=proof.checkpoint,
            verifiers=log_verifiers(self._identity, envelope.from_, self._clock.now()),
        )
        return proof.leaf_index, proof.tree_size
