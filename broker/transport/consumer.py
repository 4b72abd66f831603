"""Consuming a node's queues: manual acks, emergency first, and a watchdog for lost consumers.

This module owns the inbound half of the transport. A :class:`Consumer` consumes a
node's three queues — ``evb.P.emergency``, ``evb.P.inbox`` and ``evb.P.quarantine``
(dead letters) — and hands each delivery to ``handler(delivery) -> Outcome``:

* the delivery is acked **only** after the handler returned :attr:`Outcome.ACK`
  (the node returns it after its store transaction committed);
* :attr:`Outcome.REQUEUE` (a transient failure, e.g. the store is down) and a handler
  that *raises* (a bug: logged with its type and code, never the payload) both
  ``nack(requeue=True)`` after a short back-off that grows with the delivery count,
  so the quorum queue's delivery limit counts them and eventually dead-letters the
  message into the quarantine queue instead of spinning; the consumer keeps going;
* an ack or nack that cannot be sent (the channel died meanwhile) is logged; the
  broker redelivers, and the receiver's dedup makes that harmless.

Emergency first: the emergency queue has its own channel (routine prefetch never
blocks it) and its own workers; routine workers (inbox and quarantine) take a
delivery and then ``await lanes.routine_turn()``, which waits while any emergency
delivery is waiting or in progress (:class:`Lanes`). Deliveries are passed from
aio-pika's callbacks to worker tasks through local queues; all tasks belong to one
``asyncio.TaskGroup`` owned by the consumer.

Watchdog: aio-pika's robust connection reopens channels after a reconnect, but the
consumers here are not left to its replay — consumers "silently vanishing" after a
reconnect is the trap to design against. After every reconnect (the connection's
reconnect callback), every broker-side ``basic.cancel`` (queue deleted), and every
``watch_interval`` seconds, the watchdog checks each lane (channel open and its
consumer tag live on it). If one is missing it re-declares the topology — passively
for a node user (see :mod:`.topology`), fully when given :class:`TopologySettings` —
and consumes again, retrying every ``retry_delay`` seconds (while the connection is
down it waits for the reconnect instead). It logs ``consumers_lost``, then
``consumers_ready`` with ``after`` (seconds since the broker came back, or since the
loss was seen) when all are back, and ``consumers_not_ready`` (an error) if they are
not back ``ready_timeout`` (10) seconds after that.
:meth:`Consumer.consumers_ready` answers the same question at any time.

Graceful stop (:meth:`Consumer.stop`): cancel the consumers (no new deliveries),
finish the deliveries already taken (drain, bounded by ``drain_timeout``), then close
the channels — anything still unacked goes back to its queue.
"""

from __future__ import annotations

import asyncio
import enum
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from functools import partial
from typing import Any, Literal, cast

import aiormq
import aiormq.exceptions
import pamqp.exceptions
import structlog
from aio_pika.abc import (
    AbstractIncomingMessage,
    AbstractRobustChannel,
    AbstractRobustConnection,
    AbstractRobustQueue,
)

from broker.errors import BrokerError, ConfigError, TransportBroken
from broker.transport.connection import close_quietly, open_channel, translate_amqp_errors
from broker.transport.topology import (
    NodeNames,
    TopologySettings,
    declare_node_topology,
    declare_site_topology,
    node_names,
)

__all__ = ["Consumer", "ConsumerLane", "Delivery", "Handler", "Lanes", "Outcome"]

_log = structlog.get_logger(__name__)

#: Which of a node's queues a delivery came from.
ConsumerLane = Literal["emergency", "normal", "quarantine"]

# What an ack/nack on a dead channel raises; the delivery is redelivered anyway.
_SETTLE_ERRORS = (
    aiormq.exceptions.AMQPError,
    aiormq.exceptions.ChannelInvalidStateError,
    pamqp.exceptions.PAMQPException,
    ConnectionError,
    RuntimeError,
)


class Outcome(enum.Enum):
    """What the handler decided about a delivery."""

    #: Done (stored, or quarantined by the node): remove it from the queue.
    ACK = "ack"
    #: A transient failure: put it back; the delivery limit counts the attempt.
    REQUEUE = "requeue"


@dataclass(frozen=True)
class Delivery:
    """One delivery, as the handler sees it.

    Attributes:
        body: the raw bytes (an envelope, or anything a peer sent).
        queue: the queue it came from.
        lane: ``emergency``, ``normal`` or ``quarantine``.
        redelivered: the broker delivered it before (to this or another consumer).
        message_id: the AMQP message id (the envelope id when a node published it).
        headers: the AMQP headers, ``x-death`` included for dead letters.
        routing_key: the key it was published with (``<recipient>.<lane>``).
        delivery_count: earlier failed deliveries (quorum ``x-delivery-count``).
    """

    body: bytes
    queue: str
    lane: ConsumerLane
    redelivered: bool
    message_id: str | None
    headers: Mapping[str, Any]
    routing_key: str | None
    delivery_count: int = 0

    @property
    def dead_letter_reason(self) -> str | None:
        """Why the broker dead-lettered it (``delivery_limit``, ``rejected`` …), if it did."""
        deaths = self.headers.get("x-death")
        if isinstance(deaths, list) and deaths and isinstance(deaths[0], Mapping):
            reason = deaths[0].get("reason")
            if isinstance(reason, bytes):
                return reason.decode("utf-8", "replace")
            return None if reason is None else str(reason)
        return None


#: What the node gives the consumer: decide about one delivery.
Handler = Callable[[Delivery], Awaitable[Outcome]]


class Lanes:
    """Emergency first: routine work waits while emergency work waits or runs.

    The consumer reports emergency deliveries as they arrive and when they are done;
    other routine work of the node (e.g. an outbox loop) may ``await routine_turn()``
    too.
    """

    def __init__(self) -> None:
        self._emergency = 0
        self._clear = asyncio.Event()
        self._clear.set()

    @property
    def emergency_pending(self) -> int:
        """Emergency deliveries waiting or in progress."""
        return self._emergency

    def emergency_arrived(self) -> None:
        """An emergency delivery arrived: routine work waits from now on."""
        self._emergency += 1
        self._clear.clear()

    def emergency_done(self) -> None:
        """An emergency delivery was handled (acked, requeued or dropped as stale)."""
        self._emergency = max(0, self._emergency - 1)
        if self._emergency == 0:
            self._clear.set()

    async def routine_turn(self) -> None:
        """Return when no emergency delivery is waiting or in progress."""
        # Yield once even when clear, so an emergency delivery whose frames are being
        # read in this loop iteration gets registered before routine work starts.
        await asyncio.sleep(0)
        while self._emergency:
            await self._clear.wait()


@dataclass(eq=False)
class _Lane:
    """One consumed queue and its consumer's state."""

    name: ConsumerLane
    queue: str
    channel: AbstractRobustChannel
    local: asyncio.Queue[tuple[_Lane, AbstractIncomingMessage]]
    tag: str | None = None
    consuming: AbstractRobustQueue | None = None
    underlay: aiormq.Channel | None = None
    retries: int = field(default=0)

    def healthy(self) -> bool:
        underlay = self.underlay
        return (
            self.tag is not None
            and underlay is not None
            and not underlay.is_closed
            and self.tag in underlay.consumers
        )


class Consumer:
    """Consumes one node's emergency, inbox and quarantine queues (an async context manager).

    Args:
        connection: the node's robust connection (the caller owns and closes it).
        participant: the node's participant id.
        handler: decides about each delivery; see the module docstring.
        prefetch: unacknowledged deliveries per queue.
        concurrency: handlers running at once per lane group (emergency; routine).
        lanes: the emergency-first gate (share it with other routine work of the node).
        topology: declare the node's topology with these limits (an administrator's
            connection, development); ``None`` (a node user): only check it passively.
        ready_timeout: seconds after a loss within which the consumers must be back.
        watch_interval: seconds between routine checks of the consumers.
        retry_delay: seconds between attempts to restore a lost consumer.
        requeue_delay: first back-off before a requeue; doubles per delivery count.
        requeue_delay_max: the longest back-off before a requeue.
        drain_timeout: seconds :meth:`stop` waits for deliveries in progress.
    """

    def __init__(
        self,
        connection: AbstractRobustConnection,
        participant: str,
        handler: Handler,
        *,
        prefetch: int = 32,
        concurrency: int = 8,
        lanes: Lanes | None = None,
        topology: TopologySettings | None = None,
        ready_timeout: float = 10.0,
        watch_interval: float = 5.0,
        retry_delay: float = 1.0,
        requeue_delay: float = 0.1,
        requeue_delay_max: float = 5.0,
        drain_timeout: float = 30.0,
    ) -> None:
        if prefetch < 1 or concurrency < 1:
            raise ConfigError("prefetch and concurrency must be at least 1")
        self._connection = connection
        self._names: NodeNames = node_names(participant)
        self._handler = handler
        self._prefetch = prefetch
        self._concurrency = concurrency
        self.lanes = lanes or Lanes()
        self._topology = topology
        self._ready_timeout = ready_timeout
        self._watch_interval = watch_interval
        self._retry_delay = retry_delay
        self._requeue_delay = requeue_delay
        self._requeue_delay_max = requeue_delay_max
        self._drain_timeout = drain_timeout
        self._log = _log.bind(participant=participant)
        self._lanes: list[_Lane] = []
        self._emergency_local: asyncio.Queue[tuple[_Lane, AbstractIncomingMessage]] = (
            asyncio.Queue()
        )
        self._routine_local: asyncio.Queue[tuple[_Lane, AbstractIncomingMessage]] = asyncio.Queue()
        self._wake = asyncio.Event()
        self._stopping = asyncio.Event()
        self._started = asyncio.Event()
        self._runner: asyncio.Task[None] | None = None
        self._stopped = False
        self._unready_since: float | None = None
        self._alarmed = False
        self._restore_failures = 0

    @property
    def names(self) -> NodeNames:
        """The node's AMQP names."""
        return self._names

    # -- lifecycle ------------------------------------------------------------------------

    async def __aenter__(self) -> Consumer:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def start(self) -> None:
        """Check (or declare) the topology, open the channels and start consuming.

        Raises:
            ConfigError: the topology is missing or the user may not consume.
            TransportBroken: the connection is lost.
        """
        if self._runner is not None:
            raise ConfigError("a Consumer starts once")
        opened: list[AbstractRobustChannel] = []
        try:
            await self._declare()
            opened.append(await self._open_channel())
            opened.append(await self._open_channel())
            emergency, routine = opened
            self._lanes = [
                _Lane("emergency", self._names.emergency, emergency, self._emergency_local),
                _Lane("normal", self._names.inbox, routine, self._routine_local),
                _Lane("quarantine", self._names.quarantine, routine, self._routine_local),
            ]
            # Emergency first, so that its backlog is being delivered before routine's.
            for lane in self._lanes:
                await self._consume(lane)
        except BaseException:
            for channel in opened:
                await close_quietly(channel)
            self._lanes = []
            raise
        self._connection.reconnect_callbacks.add(self._on_reconnect)
        self._runner = asyncio.create_task(
            self._run(), name=f"evb-consumer-{self._names.participant}"
        )
        await self._started.wait()
        self._log.info("consumers_ready", lanes=[lane.name for lane in self._lanes], after=0.0)

    async def stop(self) -> None:
        """Stop taking deliveries, finish those in progress, then close the channels.

        Safe to call more than once. Deliveries not finished within ``drain_timeout``
        stay unacked and return to their queues when the channels close.
        """
        if self._stopped:
            return
        self._stopped = True
        self._stopping.set()
        self._connection.reconnect_callbacks.discard(self._on_reconnect)
        # 1. No new deliveries.
        for lane in self._lanes:
            if lane.healthy() and lane.consuming is not None and lane.tag is not None:
                try:
                    with translate_amqp_errors(f"cancel the consumer of {lane.queue}"):
                        await lane.consuming.cancel(lane.tag, timeout=self._ready_timeout)
                except BrokerError as exc:
                    self._log.warning("consumer_cancel_failed", lane=lane.name, code=exc.code)
        # 2. Drain what was delivered.
        left = self._emergency_local.qsize() + self._routine_local.qsize()
        try:
            async with asyncio.timeout(self._drain_timeout):
                await self._emergency_local.join()
                await self._routine_local.join()
        except TimeoutError:
            self._log.warning("consumer_drain_timeout", left=left)
        # 3. Stop the workers and the watchdog.
        if self._runner is not None:
            self._runner.cancel()
            await asyncio.gather(self._runner, return_exceptions=True)
        # 4. Close the channels: unacked deliveries go back to their queues.
        await self._close_channels()
        self._log.info("consumer_stopped")

    def consumers_ready(self) -> bool:
        """Whether every lane has a live consumer on an open channel right now."""
        return (
            bool(self._lanes)
            and not self._stopping.is_set()
            and all(lane.healthy() for lane in self._lanes)
        )

    async def wait_ready(self, timeout: float) -> bool:
        """Wait up to ``timeout`` seconds for :meth:`consumers_ready`; return it."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not self.consumers_ready():
            if loop.time() >= deadline:
                return False
            await asyncio.sleep(min(0.05, max(0.0, deadline - loop.time())))
        return True

    async def _run(self) -> None:
        async with asyncio.TaskGroup() as group:
            for index in range(self._concurrency):
                group.create_task(
                    self._work(self._emergency_local, emergency=True), name=f"e{index}"
                )
                group.create_task(
                    self._work(self._routine_local, emergency=False), name=f"r{index}"
                )
            group.create_task(self._watch(), name="watchdog")
            self._started.set()

    async def _close_channels(self) -> None:
        for channel in {id(lane.channel): lane.channel for lane in self._lanes}.values():
            # Closed even when it looks closed: a robust channel waiting to be reopened
            # must learn that nobody wants it any more.
            await close_quietly(channel)

    # -- channels and consumers -----------------------------------------------------------

    async def _open_channel(self) -> AbstractRobustChannel:
        channel = await open_channel(
            self._connection, "open a consumer channel", timeout=self._ready_timeout
        )
        try:
            with translate_amqp_errors("set the consumer prefetch"):
                # Per consumer (global_=False): each queue gets its own prefetch window.
                await channel.set_qos(prefetch_count=self._prefetch)
        except BaseException:
            await close_quietly(channel)
            raise
        return channel

    async def _declare(self) -> None:
        """(Re-)declare or check the topology on a channel of its own."""
        channel = await open_channel(
            self._connection, "open a topology channel", timeout=self._ready_timeout
        )
        try:
            if self._topology is not None:
                await declare_site_topology(channel)
            await declare_node_topology(
                channel,
                self._names.participant,
                self._topology,
                passive=self._topology is None,
            )
        finally:
            await close_quietly(channel)

    async def _consume(self, lane: _Lane) -> None:
        with translate_amqp_errors(f"consume {lane.queue}"):
            async with asyncio.timeout(self._ready_timeout):
                await lane.channel.ready()
            underlay = cast(aiormq.Channel, await lane.channel.get_underlay_channel())
            underlay.on_consumer_cancel_callbacks.add(self._on_cancel)
            queue = cast(
                AbstractRobustQueue, await lane.channel.get_queue(lane.queue, ensure=False)
            )
            # robust=False: aio-pika must not replay this consumer behind our back; the
            # watchdog restores it (and knows when it did).
            tag = await queue.consume(partial(self._on_message, lane), no_ack=False, robust=False)
        lane.tag, lane.consuming, lane.underlay = tag, queue, underlay

    async def _on_message(self, lane: _Lane, message: AbstractIncomingMessage) -> None:
        if lane.name == "emergency":
            self.lanes.emergency_arrived()
        lane.local.put_nowait((lane, message))

    def _on_cancel(self, frame: Any) -> None:
        self._log.warning(
            "consumer_cancelled_by_broker", consumer_tag=getattr(frame, "consumer_tag", None)
        )
        self._wake.set()

    def _on_reconnect(self, *args: Any) -> None:
        self._log.info("amqp_reconnected")
        if self._unready_since is not None:
            # The 10 s budget runs from the broker's return, not from the loss.
            self._unready_since = asyncio.get_running_loop().time()
        self._wake.set()

    # -- watchdog -------------------------------------------------------------------------

    async def _watch(self) -> None:
        loop = asyncio.get_running_loop()
        while not self._stopping.is_set():
            interval = self._watch_interval if self._unready_since is None else self._retry_delay
            try:
                async with asyncio.timeout(interval):
                    await self._wake.wait()
            except TimeoutError:
                pass
            self._wake.clear()
            if self._stopping.is_set():
                return
            if self.consumers_ready():
                continue
            if self._connection.is_closed:
                # Its owner closed the connection: nothing to restore; stop() follows.
                continue
            if not self._connection.connected.is_set():
                # Reconnecting: the reconnect callback wakes us the moment it is back. An
                # attempt now would only wait for the broker and make us late then.
                if self._unready_since is None:
                    self._unready_since = loop.time()
                    self._log.warning("consumers_lost", lanes=self._lost_lanes())
                continue
            if self._unready_since is None:
                self._unready_since = loop.time()
                self._log.warning("consumers_lost", lanes=self._lost_lanes())
            try:
                await self._restore()
            except BrokerError as exc:
                # Once per loss at info; every retry of a long outage at debug only.
                self._restore_failures += 1
                level = self._log.info if self._restore_failures == 1 else self._log.debug
                level("consumer_restore_failed", code=exc.code, attempt=self._restore_failures)
            except Exception as exc:  # noqa: BLE001 - the watchdog must outlive any surprise
                self._log.error("consumer_restore_crashed", error=type(exc).__name__)
            elapsed = round(loop.time() - self._unready_since, 3)
            if self.consumers_ready():
                self._log.info(
                    "consumers_ready", lanes=[lane.name for lane in self._lanes], after=elapsed
                )
                self._unready_since = None
                self._alarmed = False
                self._restore_failures = 0
            elif elapsed >= self._ready_timeout and not self._alarmed:
                self._alarmed = True
                self._log.error("consumers_not_ready", after=elapsed, timeout=self._ready_timeout)

    def _lost_lanes(self) -> list[str]:
        return [lane.name for lane in self._lanes if not lane.healthy()]

    async def _restore(self) -> None:
        """Re-declare the topology and consume again on every lane that lost its consumer."""
        await self._declare()
        for lane in self._lanes:
            if self._stopping.is_set() or lane.healthy():
                continue
            if lane.underlay is not None and not lane.underlay.is_closed and lane.tag:
                # The broker cancelled it (queue deleted and re-created): forget the tag.
                lane.underlay.consumers.pop(lane.tag, None)
            try:
                await self._consume(lane)
                lane.retries = 0
            except TransportBroken:
                lane.retries += 1
                # A robust channel that does not come back although the connection did is
                # replaced; a channel per lane group, so replace it for every lane on it.
                if lane.retries >= 3 and not self._connection.is_closed:
                    await self._replace_channel(lane.channel)
                raise

    async def _replace_channel(self, old: AbstractRobustChannel) -> None:
        new = await self._open_channel()
        for lane in self._lanes:
            if lane.channel is old:
                lane.channel, lane.retries = new, 0
        await close_quietly(old)

    # -- workers --------------------------------------------------------------------------

    async def _work(
        self, local: asyncio.Queue[tuple[_Lane, AbstractIncomingMessage]], *, emergency: bool
    ) -> None:
        while True:
            lane, message = await local.get()
            try:
                if not emergency:
                    await self.lanes.routine_turn()
                await self._process(lane, message)
            except Exception as exc:  # noqa: BLE001 - a worker never dies of one delivery
                self._log.error(
                    "delivery_processing_crashed", lane=lane.name, error=type(exc).__name__
                )
            finally:
                if emergency:
                    self.lanes.emergency_done()
                local.task_done()

    async def _process(self, lane: _Lane, message: AbstractIncomingMessage) -> None:
        delivery = _delivery(lane, message)
        log = self._log.bind(
            lane=lane.name, message_id=delivery.message_id, delivery_count=delivery.delivery_count
        )
        try:
            message.channel  # noqa: B018 - raises on a closed channel
        except aiormq.exceptions.ChannelInvalidStateError:
            # Its channel died: the broker has requeued it and will deliver it again.
            log.info("delivery_stale")
            return
        try:
            # Typed as object: a handler from untyped code may return anything.
            returned: object = await self._handler(delivery)
        except Exception as exc:  # noqa: BLE001 - a handler bug must not stop the consumer
            log.error("handler_failed", error=type(exc).__name__, code=getattr(exc, "code", None))
            returned = Outcome.REQUEUE
        if not isinstance(returned, Outcome):
            log.error("handler_bad_outcome", outcome=type(returned).__name__)
        if returned is Outcome.ACK:
            await self._settle(message.ack(), log, "ack")
            return
        await self._back_off(delivery.delivery_count)
        await self._settle(message.nack(requeue=True), log, "requeue")

    async def _back_off(self, delivery_count: int) -> None:
        delay = min(self._requeue_delay * 2 ** min(delivery_count, 30), self._requeue_delay_max)
        if delay <= 0 or self._stopping.is_set():
            return
        try:
            async with asyncio.timeout(delay):
                await self._stopping.wait()
        except TimeoutError:
            pass

    async def _settle(self, action: Awaitable[None], log: Any, what: str) -> None:
        try:
            await action
        except _SETTLE_ERRORS as exc:
            # The channel went away between handler and ack: the broker redelivers.
            log.warning("delivery_settle_lost", action=what, error=type(exc).__name__)
        else:
            log.debug("delivery_settled", action=what)


def _delivery(lane: _Lane, message: AbstractIncomingMessage) -> Delivery:
    headers = dict(message.headers or {})
    count = headers.get("x-delivery-count", 0)
    return Delivery(
        body=message.body,
        queue=lane.queue,
        lane=lane.name,
        redelivered=bool(message.redelivered),
        message_id=message.message_id,
        headers=headers,
        routing_key=message.routing_key,
        delivery_count=count if isinstance(count, int) else 0,
    )
