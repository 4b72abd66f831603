"""A running node: the outbox publisher, the inbox consumer and their owner.

:func:`open_node` loads what a node is (configuration, private keys, the signed trust
directory, the store); :meth:`Node.run` connects to the site's RabbitMQ, declares the
node's topology and runs, in one task group:

* the **publisher loop**: claims due outbox rows (emergency first), publishes them to
  the node's outbound exchange with ``mandatory=True`` and publisher confirms, and
  moves each row through :mod:`broker.delivery` — ``sent`` only on a confirm; a
  return, nack or lost connection schedules a retry from the route's profile; a
  receipt that does not come in time re-sends the same bytes; an exhausted profile
  is ``failed`` and raises an alert (``evb outbox retry`` resumes it);
* the **consumer** of the node's emergency, inbound and quarantine queues, which hands
  every delivery to :class:`~broker.inbox.Inbox` and acks it only after the store
  committed (a store failure requeues it);
* the **release loop**, which reprocesses quarantine entries an operator released.

Shutdown (SIGTERM / SIGINT → the ``stop`` event): consumers are cancelled, in-flight
deliveries finish and are acked, the publisher finishes its round, then the channels
and the store close. Deadlines are never kept by holding deliveries unacked.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

import structlog

from broker import delivery, ids
from broker.audit.issuer import issue_checkpoint, latest_checkpoint_size
from broker.canonical import canonical
from broker.cases import peer_of, role_of
from broker.clock import Clock, SystemClock
from broker.config import NodeConfig
from broker.errors import (
    BrokerError,
    CaseError,
    CaseUnknown,
    NotParty,
    StoreError,
    TransportError,
)
from broker.forms import Form
from broker.identity import Identity, load_identity
from broker.inbox import Inbox, InboxResult
from broker.outbox import submit
from broker.replies import ReplyContext, build_reply
from broker.retention import shred_expired
from broker.scheduler import Alert, DeadlineScheduler
from broker.store import open_store
from broker.store.atrest import load_storage_key
from broker.store.base import (
    URGENT,
    AuditEvent,
    DeliveryUpdate,
    OutboundMessage,
    Priority,
    Store,
)
from broker.transport import (
    ALERT_KEY,
    AmqpSettings,
    Consumer,
    Delivery,
    Lanes,
    Outcome,
    Outgoing,
    Publisher,
    connect,
    node_names,
    routing_key,
)
from broker.witnessing import Witnessing

__all__ = ["Node", "NodeStats", "open_node", "run_until_signalled"]

log = structlog.get_logger(__name__)

#: How often the publisher loop looks for due rows when nothing wakes it.
_IDLE_POLL_SECONDS = 0.5
#: How often the emergency publisher looks for due rows when nothing wakes it (rows
#: written by other processes, e.g. ``evb send --priority emergency``, are also found
#: by the main publisher within its poll).
_EMERGENCY_POLL_SECONDS = 1.0
#: How often the checkpoint loop looks at the size of the audit log.
_CHECKPOINT_POLL_SECONDS = 1.0
#: Every this many checkpoint polls, unanswered witnesses are looked at again.
_WITNESS_POLLS = 5
#: The log cursor that remembers the directory version last recorded.
_DIRECTORY_CURSOR = "directory_version"
#: Most cases one retention sweep shreds (the rest wait for the next sweep).
_RETENTION_BATCH = 1000
#: How often released quarantine entries are looked for.
_RELEASE_POLL_SECONDS = 1.0


@dataclass
class NodeStats:
    """Counters of a running node (for logs, the demo and benchmarks)."""

    published: int = 0
    publish_failed: int = 0
    results: dict[str, int] = field(default_factory=dict)

    def count(self, result: InboxResult) -> None:
        """Count one inbox result by status."""
        self.results[result.status] = self.results.get(result.status, 0) + 1


class Node:
    """One participant's node (see the module docstring)."""

    def __init__(self, config: NodeConfig, identity: Identity, store: Store, clock: Clock) -> None:
        """Wire a node from its parts (use :func:`open_node`)."""
        self.config = config
        self.identity = identity
        self.store = store
        self.clock = clock
        # Emergency first, across the node: the consumer's deliveries, the inbox
        # pipeline's steps and the routine publisher all wait while it is held.
        self.lanes = Lanes()
        self.witnessing = Witnessing(store, identity, clock, config.audit, alert=self._alert)
        self.inbox = Inbox(
            store,
            identity,
            clock,
            config.limits,
            config.retry_for,
            self._routine_turn,
            ack_targets=config.deadlines.ack_targets(),
            witnessing=self.witnessing,
        )
        self.stats = NodeStats()
        self.ready = asyncio.Event()
        self._publisher: Publisher | None = None
        # Set when emergency work may have queued an emergency outbox row (a receipt).
        self._emergency_due = asyncio.Event()
        # Emergency deliveries handed over to the emergency publisher: each holds the
        # lanes until the round that publishes its receipt is over.
        self._handed_over = 0
        self.scheduler: DeadlineScheduler | None = None
        self._exchange = node_names(config.participant).exchange

    @property
    def participant(self) -> str:
        """The node's participant id."""
        return self.config.participant

    def amqp_settings(self) -> AmqpSettings:
        """Return the transport settings of this node."""
        amqp = self.config.amqp
        return AmqpSettings(
            url=amqp.url,
            prefetch=amqp.prefetch,
            heartbeat=amqp.heartbeat,
            ca_file=amqp.ca_file,
            cert_file=amqp.cert_file,
            key_file=amqp.key_file,
            connection_name=f"evb node {self.participant}",
        )

    async def run(self, stop: asyncio.Event) -> None:
        """Run until ``stop`` is set, then drain and close.

        Raises:
            TransportError: RabbitMQ cannot be reached at start.
        """
        settings = self.amqp_settings()
        connection = await connect(settings)
        try:
            # The site administrator declared the node's topology (evb site setup);
            # the node, under its own restricted user, checks it passively.
            async with (
                Publisher(connection, window=self.config.publisher.window) as publisher,
                Consumer(
                    connection,
                    self.participant,
                    self._on_delivery,
                    prefetch=settings.prefetch,
                    concurrency=self.config.amqp.concurrency,
                    lanes=self.lanes,
                ) as consumer,
            ):
                await self.log_trust()
                log.info("node.started", participant=self.participant)
                self._publisher = publisher
                self.ready.set()
                async with asyncio.TaskGroup() as tasks:
                    tasks.create_task(self._publish_loop(publisher, stop))
                    tasks.create_task(self._publish_loop(publisher, stop, "emergency"))
                    tasks.create_task(self._release_loop(stop))
                    tasks.create_task(self._scheduler_loop(publisher, stop))
                    tasks.create_task(self._checkpoint_loop(stop))
                    if self.config.retention.closed_case_period is not None:
                        tasks.create_task(self._retention_loop(stop))
                    await stop.wait()
                    # Drain: stop taking deliveries, finish those in flight.
                    await consumer.stop()
        finally:
            self.ready.clear()
            self._publisher = None
            with contextlib.suppress(TransportError):
                await connection.close()
            log.info("node.stopped", participant=self.participant)

    async def log_trust(self) -> None:
        """Record the trust directory in force and this node's keys, when they changed.

        One ``directory.loaded`` record per directory version the node starts with
        (details: version, the previous one, this node's signature and encryption key
        ids): key rotations and revocations reach a node as a new directory version,
        so the log shows under which keys and policy every later record was made.
        """
        directory = self.identity.directory
        previous = await self.store.audit_cursor(_DIRECTORY_CURSOR)
        if previous == directory.version:
            return
        keyset = self.identity.keyset
        event = AuditEvent(
            event="directory.loaded",
            at=self.clock.now(),
            details={
                "version": directory.version,
                "previous": previous or None,
                "participants": len(directory.participants),
                "sig_kid": keyset.sig.kid,
                "enc_kid": keyset.enc.kid,
            },
        )
        await self.store.audit([event])
        await self.store.set_audit_cursor(_DIRECTORY_CURSOR, directory.version)
        log.info("directory.loaded", version=directory.version, previous=previous or None)

    async def submit(
        self,
        *,
        form_type: str,
        form: Form | Mapping[str, Any],
        recipient: str,
        case: str | None = None,
        in_reply_to: str | None = None,
        priority: Priority = "normal",
    ) -> OutboundMessage:
        """Seal a form and queue it in this node's outbox (see :func:`broker.outbox.submit`).

        An emergency message submitted here is published by the emergency publisher
        at once; one queued by another process (``evb send``) is found by the
        publisher's poll (SQLite) or notification (PostgreSQL).

        Raises:
            SchemaError, SemanticError, UnknownTypeError: the form is not valid.
            PolicyError: the policy forbids this route.
            TrustError: a key is unknown, revoked or expired.
            StoreError: the store failed.
        """
        token = URGENT.set(priority == "emergency")
        try:
            row = await submit(
                self.store,
                self.identity,
                self.clock,
                form_type=form_type,
                form=form,
                recipient=recipient,
                case=case,
                in_reply_to=in_reply_to,
                priority=priority,
                ack_targets=self.config.deadlines.ack_targets(),
            )
        finally:
            URGENT.reset(token)
        if priority == "emergency":
            self._emergency_due.set()
        return row

    async def reply(
        self,
        kind: str,
        case_id: str,
        *,
        form: Mapping[str, Any] | None = None,
        ground: str | None = None,
        motivation: str | None = None,
        status: str | None = None,
        until: datetime | None = None,
        period: str | None = None,
        article: str | None = None,
    ) -> OutboundMessage:
        """Build a case reply (``evb reply KIND CASE``) and queue it to the other party.

        Raises:
            CaseUnknown: this node holds no such case.
            SchemaError, GroundError, UnknownTypeError: the reply cannot be built.
            CaseError: the reply does not fit the case (see :func:`broker.outbox.submit`).
        """
        found = await self.store.get_case(case_id)
        if found is None:
            raise CaseUnknown(f"no case {case_id} at this node")
        record, _ = found
        role = role_of(record, self.participant)
        if role is None:
            raise NotParty("this node is not a party to the case")
        peer = peer_of(record, self.participant)
        inbound, outbound = await self.store.case_messages(case_id)
        requests = [m.id for m in inbound if m.type == record.instrument]
        requests += [m.id for m in outbound if m.type == record.instrument]
        received = next((m.received_at for m in inbound if m.type == record.instrument), None)
        context = ReplyContext(
            case_id=case_id,
            instrument=record.instrument,
            request_id=requests[0] if requests else case_id,
            me=self.participant,
            peer=peer,
            role=role,
            now=self.clock.now(),
            received_at=received,
        )
        try:
            form_type, built = build_reply(
                kind,
                context,
                form=form,
                ground=ground,
                motivation=motivation,
                status=status,
                until=until,
                period=period,
                article=article,
            )
        except CaseError as exc:
            # Refused before it was built (e.g. no valid ground): audited all the same.
            await self.store.audit(
                [
                    AuditEvent(
                        event="message.refused",
                        at=self.clock.now(),
                        case_id=case_id,
                        peer=peer,
                        code=exc.code,
                        details={"reply": kind},
                    )
                ]
            )
            raise
        return await self.submit(
            form_type=form_type,
            form=built,
            recipient=peer,
            case=case_id,
            in_reply_to=requests[0] if requests else None,
            priority=record.priority,
        )

    # -- inbox ----------------------------------------------------------------------------

    async def _on_delivery(self, item: Delivery) -> Outcome:
        """Handle one delivery: ack it once stored, requeue it on store trouble."""
        emergency = item.lane == "emergency"
        token = URGENT.set(emergency)
        try:
            result = await self.inbox.handle(item.body, dead_lettered=item.lane == "quarantine")
        except StoreError as exc:
            log.error("inbox.store_failed", code=exc.code, redelivered=item.redelivered)
            return Outcome.REQUEUE
        finally:
            URGENT.reset(token)
        if emergency:
            # Its receipt is an emergency outbox row: publish it now, not after the
            # routine round in progress, and keep routine work parked until then.
            self.lanes.emergency_arrived()
            self._handed_over += 1
            self._emergency_due.set()
        self.stats.count(result)
        return Outcome.ACK

    async def _alert(self, payload: Alert) -> None:
        """Publish an alert on the node's alert queue (the audit trail holds its record)."""
        publisher = self._publisher
        if publisher is None:
            log.error("alert.not_published", alert=payload.get("alert"), reason="not running")
            return
        body = canonical(dict(payload))
        try:
            await publisher.publish(
                self._exchange, ALERT_KEY, body, message_id=ids.uuid7(), emergency=False
            )
        except TransportError as exc:
            # The audit trail holds the record; the alert is its echo.
            log.error("alert.publish_failed", code=exc.code, alert=payload.get("alert"))

    async def _scheduler_loop(self, publisher: Publisher, stop: asyncio.Event) -> None:
        """Run the deadline scheduler every ``deadlines.scheduler_interval``."""
        self.scheduler = DeadlineScheduler(
            self.store,
            self.clock,
            self.participant,
            self._alert,
            ack_targets=self.config.deadlines.ack_targets(),
        )
        interval = self.config.deadlines.scheduler_interval.total_seconds()
        while not stop.is_set():
            try:
                await self.scheduler.tick()
            except StoreError as exc:
                log.error("scheduler.store_failed", code=exc.code)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), interval)

    async def _checkpoint_loop(self, stop: asyncio.Event) -> None:
        """Sign a checkpoint of the audit log every interval, or every N new records.

        After each (and every few polls, for witnesses that did not answer), the
        checkpoint goes to the witnesses and the proofs to the senders.
        """
        settings = self.config.audit
        last_size = await latest_checkpoint_size(self.store)
        last_at = self.clock.now()
        polls = 0
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), _CHECKPOINT_POLL_SECONDS)
            polls += 1
            issued = None
            try:
                size, _ = await self.store.audit_head()
                now = self.clock.now()
                due = size - last_size >= settings.checkpoint_every or (
                    size > last_size and now - last_at >= settings.checkpoint_interval
                )
                if due or (stop.is_set() and size > last_size):
                    issued = await issue_checkpoint(
                        self.store, self.participant, self.identity.keyset.sig
                    )
                    if issued is not None:
                        last_size, last_at = issued, now
                        log.info("audit.checkpoint", size=issued)
            except StoreError as exc:
                log.error("audit.checkpoint_failed", code=exc.code)
            if issued is not None or polls % _WITNESS_POLLS == 0:
                try:
                    await self.witnessing.after_checkpoint()
                except BrokerError as exc:
                    # A store outage, or a peer's or this log's trouble: logged, and
                    # the next poll tries again (the node keeps running).
                    log.error("audit.witnessing_failed", code=exc.code)

    async def _retention_loop(self, stop: asyncio.Event) -> None:
        """Shred cases closed longer than ``retention.closed_case_period``, every sweep."""
        settings = self.config.retention
        period = settings.closed_case_period
        if period is None:
            return
        while not stop.is_set():
            try:
                shredded = await shred_expired(
                    self.store, self.clock.now(), period, _RETENTION_BATCH
                )
                if shredded:
                    log.info("retention.shredded", cases=shredded)
            except BrokerError as exc:
                # A store outage or a history that no longer replays: logged, retried.
                log.error("retention.sweep_failed", code=exc.code)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), settings.sweep_interval.total_seconds())

    async def _release_loop(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                entries = await self.store.claim_released(limit=16)
                for entry in entries:
                    if entry.raw is not None:
                        result = await self.inbox.handle(entry.raw)
                        self.stats.count(result)
                        log.info(
                            "quarantine.reprocessed",
                            quarantine_id=entry.id,
                            status=result.status,
                            code=result.code,
                        )
            except StoreError as exc:
                log.error("release.store_failed", code=exc.code)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), _RELEASE_POLL_SECONDS)

    # -- outbox ---------------------------------------------------------------------------

    async def _publish_loop(
        self, publisher: Publisher, stop: asyncio.Event, priority: Priority | None = None
    ) -> None:
        """Publish due outbox rows until ``stop``.

        The node runs two: one for every row (emergency first), and one for emergency
        rows only, so that an emergency message never waits for a routine round's
        confirms. The latter's store calls are marked urgent (this task's context).
        """
        emergency = priority == "emergency"
        URGENT.set(emergency)
        try:
            while not stop.is_set():
                handed_over = 0
                if emergency:
                    self._emergency_due.clear()
                    handed_over, self._handed_over = self._handed_over, 0
                try:
                    published = await self._round(publisher, priority)
                except StoreError as exc:
                    log.error("outbox.store_failed", code=exc.code)
                    published = 0
                finally:
                    for _ in range(handed_over):
                        self.lanes.emergency_done()
                if published == 0 and not stop.is_set():
                    await self._idle(stop, emergency)
        finally:
            if emergency:
                for _ in range(self._handed_over):
                    self.lanes.emergency_done()
                self._handed_over = 0

    async def _round(self, publisher: Publisher, priority: Priority | None) -> int:
        if priority != "emergency":
            await self._routine_turn()
            return await self.publish_round(publisher, priority)
        # The emergency publisher holds the lanes while it publishes.
        self.lanes.emergency_arrived()
        try:
            return await self.publish_round(publisher, priority)
        finally:
            self.lanes.emergency_done()

    async def _idle(self, stop: asyncio.Event, emergency: bool) -> None:
        waiter = asyncio.ensure_future(
            _wait_event(self._emergency_due, _EMERGENCY_POLL_SECONDS)
            if emergency
            else self.store.wait_outbox(_IDLE_POLL_SECONDS)
        )
        stopper = asyncio.ensure_future(stop.wait())
        try:
            await asyncio.wait({waiter, stopper}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (waiter, stopper):
                task.cancel()
            await asyncio.gather(waiter, stopper, return_exceptions=True)

    async def _routine_turn(self) -> None:
        """Park routine work while emergency work is pending (emergency work passes)."""
        if self.lanes.emergency_pending and not URGENT.get():
            await self.lanes.routine_turn()

    async def publish_round(self, publisher: Publisher, priority: Priority | None = None) -> int:
        """Publish the outbox rows due now (of ``priority`` only, if given); return how many."""
        now = self.clock.now()
        rows = await self.store.claim_due(
            now,
            self.config.publisher.batch,
            self.config.publisher.lease.total_seconds(),
            priority=priority,
        )
        if not rows:
            return 0
        to_send: list[tuple[OutboundMessage, delivery.Delivery]] = []
        for row in rows:
            current = _delivery(row)
            if row.state == "sent" and not row.expects_receipt:
                # A receipt requeued because its message arrived again: send it again.
                current = replace(current, state="queued")
            elif row.state == "sent":
                # Claimed while sent: the receipt is overdue (the claim moved
                # next_attempt_at by the lease; it was due now).
                after = delivery.step(
                    replace(current, next_attempt_at=now),
                    delivery.Due(at=now),
                    self.config.retry_for(row.recipient),
                    expects_receipt=row.expects_receipt,
                )
                if after.state == "failed":
                    await self._fail(row, current, after)
                    continue
                current = after
            to_send.append((row, current))
        if not to_send:
            return 0
        outcomes = await publisher.publish_many(
            [
                Outgoing(
                    exchange=self._exchange,
                    routing_key=routing_key(row.recipient, row.priority),
                    body=row.envelope,
                    message_id=row.id,
                    emergency=row.priority == "emergency",
                )
                for row, _ in to_send
            ]
        )
        done = self.clock.now()
        published = 0
        updates: list[DeliveryUpdate] = []
        for (row, before), outcome in zip(to_send, outcomes, strict=True):
            event: delivery.Event
            if outcome is None:
                published += 1
                event = delivery.Published(at=done)
            else:
                event = delivery.PublishFailed(at=done, code=outcome.code)
            after = delivery.step(
                before, event, self.config.retry_for(row.recipient), row.expects_receipt
            )
            if after.state == "failed":
                await self._fail(row, _delivery(row), after)
                continue
            audit = AuditEvent(
                event="message.sent" if outcome is None else "message.publish_failed",
                at=done,
                message_id=row.id,
                case_id=row.case_id,
                peer=row.recipient,
                code=None if outcome is None else outcome.code,
                details={"attempt": after.attempts, "type": row.type},
            )
            # Compare-and-set: a receipt that overtook this round wins.
            updates.append(
                DeliveryUpdate(
                    row.id,
                    state=after.state,
                    attempts=after.attempts,
                    next_attempt_at=after.next_attempt_at,
                    code=after.code,
                    events=[audit],
                    expect_state=[row.state],
                )
            )
        # One transaction for the round, not one per row.
        await self.store.update_deliveries(updates)
        self.stats.published += published
        self.stats.publish_failed += len(to_send) - published
        return len(to_send)

    async def _fail(
        self, row: OutboundMessage, before: delivery.Delivery, after: delivery.Delivery
    ) -> None:
        now = self.clock.now()
        events = [
            AuditEvent(
                event="delivery.failed",
                at=now,
                message_id=row.id,
                case_id=row.case_id,
                peer=row.recipient,
                code=after.code,
                details={"attempts": after.attempts, "type": row.type},
            ),
            AuditEvent(
                event="alert.raised",
                at=now,
                message_id=row.id,
                case_id=row.case_id,
                peer=row.recipient,
                code=after.code,
                details={"alert": "delivery_failed", "resume": f"evb outbox retry {row.id}"},
            ),
        ]
        updated = await self.store.update_delivery(
            row.id,
            state="failed",
            attempts=after.attempts,
            next_attempt_at=None,
            code=after.code,
            events=events,
            expect_state=[before.state],
        )
        if updated:
            log.error(
                "alert.delivery_failed",
                message_id=row.id,
                peer=row.recipient,
                code=after.code,
                attempts=after.attempts,
            )


async def _wait_event(event: asyncio.Event, timeout: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(event.wait(), timeout)


def _delivery(row: OutboundMessage) -> delivery.Delivery:
    return delivery.Delivery(
        state=row.state, attempts=row.attempts, next_attempt_at=row.next_attempt_at, code=row.code
    )


@contextlib.asynccontextmanager
async def open_node(config: NodeConfig, *, clock: Clock | None = None) -> AsyncIterator[Node]:
    """Load a node's identity and open its store; close the store on exit.

    Raises:
        ConfigError, TrustError, StoreError: the node cannot be set up.
    """
    clock = clock or SystemClock()
    identity = load_identity(config, clock)
    storage_key = load_storage_key(config.storage_key_file)
    async with open_store(config.store, storage_key, clock) as store:
        yield Node(config, identity, store, clock)


async def run_until_signalled(node: Node, signals: Sequence[int]) -> None:
    """Run ``node`` until one of ``signals`` arrives (SIGTERM, SIGINT), then drain."""
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for signum in signals:
        loop.add_signal_handler(signum, stop.set)
    try:
        await node.run(stop)
    finally:
        for signum in signals:
            loop.remove_signal_handler(signum)


def describe_error(exc: BrokerError) -> str:
    """Return ``CODE: message`` for an error (for logs and the CLI)."""
    return f"{exc.code}: {exc.message}"
