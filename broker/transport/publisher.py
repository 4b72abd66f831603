"""Publishing with publisher confirms: a message is "sent" only when the broker says so.

This module owns the outbound half of the transport. A :class:`Publisher` holds one
channel of a robust connection, opened with publisher confirms and
``on_return_raises=True``, and publishes every message ``mandatory``, persistent,
``application/json``. Its outcome is exact — the node marks an outbox row sent only
on ``None``:

* confirmed (``basic.ack``)                         -> returns / ``None``
* returned: no queue bound for the routing key,
  or the exchange does not exist                    -> :class:`Unroutable`   E_UNROUTABLE
* refused (``basic.nack``, e.g. a full queue)       -> :class:`PublishNacked` E_NACK
* connection lost, not reconnected within
  ``ready_timeout``, no confirm within
  ``confirm_timeout``                               -> :class:`TransportBroken`
* the publisher or its connection was closed        -> :class:`TransportClosed`
* ACCESS_REFUSED (the node user may not publish
  to that exchange)                                 -> :class:`ConfigError`

A lost confirm does not mean the broker refused the message: ``TransportBroken`` means
"unknown", and re-sending with the same message id is the receiver's dedup's job.

:meth:`Publisher.publish_many` pipelines: up to ``window`` publishes wait for their
confirms at once on the one channel (aio-pika's tutorial 7, "handling confirms
asynchronously"), so throughput is not one round trip per message. An emergency
message takes no window slot: a window full of routine publishes never delays it.
Two publishes with the same message id are never in flight together (the broker's
returns are matched to publishes by message id).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass

import aio_pika
import aiormq.exceptions
import structlog
from aio_pika.abc import AbstractExchange, AbstractRobustChannel, AbstractRobustConnection

from broker.errors import (
    BrokerError,
    ConfigError,
    PublishNacked,
    TransportBroken,
    TransportClosed,
    Unroutable,
)
from broker.transport.connection import close_quietly, open_channel, translate_amqp_errors

__all__ = ["Outgoing", "Publisher"]

_log = structlog.get_logger(__name__)

_EMERGENCY_SUFFIX = ".emergency"


@dataclass(frozen=True)
class Outgoing:
    """One message for :meth:`Publisher.publish_many` (the arguments of ``publish``)."""

    exchange: str
    routing_key: str
    body: bytes
    message_id: str
    headers: Mapping[str, str] | None = None
    emergency: bool = False


class Publisher:
    """Publishes on its own confirm channel of a robust connection (an async context manager).

    Args:
        connection: the node's robust connection (the caller owns and closes it).
        window: publishes awaiting their confirms at once.
        confirm_timeout: seconds to wait for a confirm before ``TransportBroken``.
        ready_timeout: seconds to wait for a lost connection to come back before a
            publish gives up with ``TransportBroken``.
    """

    def __init__(
        self,
        connection: AbstractRobustConnection,
        *,
        window: int = 64,
        confirm_timeout: float = 30.0,
        ready_timeout: float = 5.0,
    ) -> None:
        if window < 1:
            raise ConfigError("the publish window must be at least 1")
        self._connection = connection
        self._window = asyncio.Semaphore(window)
        self._confirm_timeout = confirm_timeout
        self._ready_timeout = ready_timeout
        self._channel: AbstractRobustChannel | None = None
        self._exchanges: dict[str, AbstractExchange] = {}
        self._busy: dict[str, asyncio.Event] = {}
        self._closing = False
        self._down = False

    async def __aenter__(self) -> Publisher:
        await self.open()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def open(self) -> None:
        """Open the confirm channel.

        Raises:
            TransportBroken: the connection is lost.
            TransportClosed: the publisher was closed.
        """
        if self._closing:
            raise TransportClosed("the publisher is closed")
        self._channel = await open_channel(
            self._connection,
            "open the publisher channel",
            publisher_confirms=True,
            on_return_raises=True,
            timeout=self._ready_timeout,
        )

    async def close(self) -> None:
        """Close the channel; later publishes raise ``TransportClosed``."""
        self._closing = True
        channel, self._channel = self._channel, None
        if channel is not None:
            await close_quietly(channel)

    async def publish(
        self,
        exchange: str,
        routing_key: str,
        body: bytes,
        *,
        message_id: str,
        headers: Mapping[str, str] | None = None,
        emergency: bool = False,
    ) -> None:
        """Publish one message and wait for the broker's confirm.

        Args:
            exchange: the node's outbound exchange (``evb.<participant>``).
            routing_key: ``<recipient>.<lane>``.
            body: the envelope bytes.
            message_id: the envelope's message id (also the AMQP ``message_id``).
            headers: extra AMQP headers (ids and codes only, never personal data).
            emergency: an emergency message: it does not wait for a window slot. Must
                agree with the lane of ``routing_key``.

        Raises:
            Unroutable: returned by the broker (no queue for the key, or no such exchange).
            PublishNacked: refused by the broker (e.g. the queue is full).
            TransportBroken: the connection is lost, or no confirm came in time.
            TransportClosed: the publisher was closed.
            ConfigError: the lane disagrees with ``emergency``, or the user may not
                publish to ``exchange``.
        """
        if routing_key.endswith(_EMERGENCY_SUFFIX) != emergency:
            raise ConfigError(
                f"routing key {routing_key!r} and emergency={emergency} name different lanes"
            )
        async with self._slot(emergency), self._exclusive(message_id):
            await self._publish(exchange, routing_key, body, message_id, headers)

    async def publish_many(self, items: Sequence[Outgoing]) -> list[BrokerError | None]:
        """Publish several messages, up to ``window`` confirms in flight at once.

        Returns:
            One outcome per item, in order: ``None`` when the broker confirmed it, else
            the error :meth:`publish` would have raised.
        """

        async def one(item: Outgoing) -> BrokerError | None:
            try:
                await self.publish(
                    item.exchange,
                    item.routing_key,
                    item.body,
                    message_id=item.message_id,
                    headers=item.headers,
                    emergency=item.emergency,
                )
            except BrokerError as exc:
                return exc
            return None

        return list(await asyncio.gather(*(one(item) for item in items)))

    @asynccontextmanager
    async def _slot(self, emergency: bool) -> AsyncIterator[None]:
        if emergency:
            yield
            return
        async with self._window:
            yield

    @asynccontextmanager
    async def _exclusive(self, message_id: str) -> AsyncIterator[None]:
        while (busy := self._busy.get(message_id)) is not None:
            await busy.wait()
        done = self._busy[message_id] = asyncio.Event()
        try:
            yield
        finally:
            del self._busy[message_id]
            done.set()

    def _closed(self) -> bool:
        return self._closing or self._connection.is_closed

    async def _ready(self, channel: AbstractRobustChannel) -> None:
        """Return when the channel is open; raise ``TransportBroken`` if it stays closed.

        While the robust connection reconnects (or the channel reopens after a channel
        error) publishes wait, but at most ``ready_timeout``; once one wait timed out,
        later publishes fail at once until the channel is back, so a batch of a thousand
        does not wait a thousand timeouts.
        """
        if _is_open(channel):
            self._down = False
            return
        if self._closed():
            raise TransportClosed("the connection was closed")
        if self._down:
            raise TransportBroken("not connected (the connection is being restored)")
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._ready_timeout
        while not _is_open(channel):
            remaining = deadline - loop.time()
            if remaining <= 0:
                self._down = True
                raise TransportBroken(f"not connected within {self._ready_timeout} s")
            try:
                await asyncio.wait_for(channel.ready(), remaining)
            except TimeoutError:
                continue
            if not _is_open(channel):
                # ready() can return before a channel closed by an error is reopened.
                await asyncio.sleep(min(0.02, max(0.0, deadline - loop.time())))
        self._down = False

    async def _publish(
        self,
        exchange: str,
        routing_key: str,
        body: bytes,
        message_id: str,
        headers: Mapping[str, str] | None,
    ) -> None:
        channel = self._channel
        if channel is None or self._closed():
            raise TransportClosed("the publisher is closed" if self._closing else "not open")
        log = _log.bind(message_id=message_id, exchange=exchange, routing_key=routing_key)
        await self._ready(channel)
        message = aio_pika.Message(
            body,
            message_id=message_id,
            headers=dict(headers or {}),
            content_type="application/json",
            delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
        )
        try:
            with translate_amqp_errors(f"publish to {exchange}"):
                target = self._exchanges.get(exchange)
                if target is None:
                    target = await channel.get_exchange(exchange, ensure=False)
                    self._exchanges[exchange] = target
                try:
                    await target.publish(
                        message, routing_key, mandatory=True, timeout=self._confirm_timeout
                    )
                except aiormq.exceptions.PublishError as exc:
                    log.warning("publish_unroutable", code=Unroutable.code)
                    raise Unroutable(f"no queue is bound for {routing_key} at {exchange}") from exc
                except aiormq.exceptions.DeliveryError as exc:
                    log.warning("publish_nacked", code=PublishNacked.code)
                    raise PublishNacked(
                        f"the broker refused the message for {routing_key}"
                    ) from exc
        except TransportBroken as exc:
            if self._closed():
                raise TransportClosed("the connection was closed") from exc.__cause__
            if isinstance(exc.__cause__, TimeoutError):
                raise TransportBroken(f"no confirm within {self._confirm_timeout} s") from exc
            raise
        except ConfigError as exc:
            if isinstance(exc.__cause__, aiormq.exceptions.ChannelNotFoundEntity):
                log.warning("publish_unroutable", code=Unroutable.code, reason="no exchange")
                raise Unroutable(f"exchange {exchange} does not exist") from exc.__cause__
            raise


def _is_open(channel: AbstractRobustChannel) -> bool:
    # A function, not the property inline: the state changes across awaits, and a
    # type checker would otherwise narrow it once for the whole loop.
    return not channel.is_closed
