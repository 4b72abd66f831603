"""The consumer: acks only after the handler, survives bugs and cuts, emergency first."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

import pytest
from aio_pika.abc import AbstractRobustConnection
from structlog.testing import capture_logs

from broker.errors import ConfigError
from broker.transport import (
    AmqpSettings,
    Consumer,
    Delivery,
    Lanes,
    Outcome,
    Outgoing,
    Publisher,
    TopologySettings,
    connect,
)
from tests.support.rabbit import RabbitSession
from tests.support.tcpproxy import TcpProxy
from tests.transport.net import admin, eventually, make_sites, queue_depth

EXCHANGE = "evb.AT.247"
INBOX = "evb.AT.247.inbox"


def _items(count: int, lane: str = "normal", prefix: str = "m") -> list[Outgoing]:
    return [
        Outgoing(EXCHANGE, f"AT.247.{lane}", b"{}", f"{prefix}-{n}", emergency=lane == "emergency")
        for n in range(count)
    ]


async def _publish(connection: AbstractRobustConnection, items: list[Outgoing]) -> None:
    async with Publisher(connection) as publisher:
        assert set(await publisher.publish_many(items)) == {None}


class Recorder:
    """A handler that records every delivery and answers with ``decide`` (default: ack)."""

    def __init__(self, decide: Callable[[Delivery], Awaitable[Any]] | None = None) -> None:
        self.seen: list[Delivery] = []
        self.decide = decide

    async def __call__(self, delivery: Delivery) -> Outcome:
        self.seen.append(delivery)
        if self.decide is not None:
            result: Outcome = await self.decide(delivery)
            return result
        return Outcome.ACK

    def ids(self, lane: str | None = None) -> list[str]:
        return [d.message_id or "" for d in self.seen if lane is None or d.lane == lane]

    async def count(self, n: int, timeout: float = 10.0) -> None:
        async def reached() -> bool:
            return len(self.seen) >= n

        await eventually(reached, timeout)


async def _depth_is(connection: AbstractRobustConnection, queue: str, n: int) -> None:
    async def check() -> bool:
        return await queue_depth(connection, queue) == n

    await eventually(check)


def _events(logs: Sequence[Mapping[str, Any]], name: str) -> list[Mapping[str, Any]]:
    return [entry for entry in logs if entry["event"] == name]


async def test_lanes_hold_routine_work_while_emergency_work_is_pending() -> None:
    lanes = Lanes()
    await asyncio.wait_for(lanes.routine_turn(), 1)  # nothing pending: no wait
    lanes.emergency_arrived()
    lanes.emergency_arrived()
    waiting = asyncio.ensure_future(lanes.routine_turn())
    await asyncio.sleep(0.01)
    lanes.emergency_done()
    await asyncio.sleep(0.01)
    assert (waiting.done(), lanes.emergency_pending) == (False, 1)
    lanes.emergency_done()
    await asyncio.wait_for(waiting, 1)
    assert lanes.emergency_pending == 0


@pytest.mark.integration
async def test_acks_only_after_the_handler_returned(rabbit: RabbitSession) -> None:
    sites = make_sites(rabbit, "AT")
    async with admin(sites, "AT", "AT.247") as connection:
        await _publish(connection, _items(3))
        gate = asyncio.Event()

        async def hold(delivery: Delivery) -> Outcome:
            await gate.wait()
            return Outcome.ACK

        handler = Recorder(hold)
        node = await connect(sites.settings("AT"))
        with capture_logs() as logs:
            consumer = Consumer(node, "AT.247", handler, topology=TopologySettings())
            await consumer.start()
            await handler.count(3)
            # The node dies while its handlers run: their deliveries were never acked.
            await node.close()
            gate.set()
            await consumer.stop()
        assert [e["action"] for e in _events(logs, "delivery_settle_lost")] == ["ack"] * 3
        await _depth_is(connection, INBOX, 3)

        again = Recorder()
        async with Consumer(connection, "AT.247", again) as consumer:
            await again.count(3)
            assert consumer.consumers_ready()
        assert sorted(again.ids()) == ["m-0", "m-1", "m-2"]
        assert {(d.redelivered, d.lane, d.queue) for d in again.seen} == {(True, "normal", INBOX)}
        # stop() drained: all three acked, none went back.
        assert await queue_depth(connection, INBOX) == 0


@pytest.mark.integration
async def test_delivery_fields(rabbit: RabbitSession) -> None:
    sites = make_sites(rabbit, "AT")
    async with admin(sites, "AT", "AT.247") as connection:
        async with Publisher(connection) as publisher:
            await publisher.publish(
                EXCHANGE,
                "AT.247.emergency",
                b'{"e": 1}',
                message_id="e-1",
                headers={"x-evb-type": "msg.receipt"},
                emergency=True,
            )
        handler = Recorder()
        async with Consumer(connection, "AT.247", handler):
            await handler.count(1)
        (delivery,) = handler.seen
        assert delivery == Delivery(
            body=b'{"e": 1}',
            queue="evb.AT.247.emergency",
            lane="emergency",
            redelivered=False,
            message_id="e-1",
            headers={"x-evb-type": "msg.receipt"},
            routing_key="AT.247.emergency",
            delivery_count=0,
        )


@pytest.mark.integration
async def test_a_raising_handler_gets_a_redelivery_and_the_consumer_lives_on(
    rabbit: RabbitSession,
) -> None:
    sites = make_sites(rabbit, "AT")
    async with admin(sites, "AT", "AT.247") as connection:
        await _publish(connection, _items(3))

        async def buggy(delivery: Delivery) -> Any:
            if delivery.message_id == "m-0" and not delivery.redelivered:
                raise RuntimeError("secret payload detail")
            if delivery.message_id == "m-1" and not delivery.redelivered:
                return None  # not an Outcome: treated as a requeue
            return Outcome.ACK

        handler = Recorder(buggy)
        with capture_logs() as logs:
            async with Consumer(connection, "AT.247", handler, requeue_delay=0.01) as consumer:
                await handler.count(5)
                assert consumer.consumers_ready()
        assert sorted(handler.ids()) == ["m-0", "m-0", "m-1", "m-1", "m-2"]
        retried = [d for d in handler.seen if d.redelivered]
        assert sorted((d.message_id, d.delivery_count) for d in retried) == [
            ("m-0", 1),
            ("m-1", 1),
        ]
        (failed,) = _events(logs, "handler_failed")
        assert (failed["error"], failed["message_id"], failed["code"]) == (
            "RuntimeError",
            "m-0",
            None,
        )
        assert [e["message_id"] for e in _events(logs, "handler_bad_outcome")] == ["m-1"]
        assert "secret payload detail" not in repr(logs)
        assert await queue_depth(connection, INBOX) == 0


@pytest.mark.integration
async def test_delivery_limit_dead_letters_into_quarantine(rabbit: RabbitSession) -> None:
    sites = make_sites(rabbit, "AT")
    async with admin(sites, "AT", "AT.247", settings=TopologySettings(delivery_limit=2)) as conn:
        await _publish(conn, [Outgoing(EXCHANGE, "AT.247.normal", b'{"raw": true}', "m-poison")])

        async def store_down(delivery: Delivery) -> Outcome:
            return Outcome.ACK if delivery.lane == "quarantine" else Outcome.REQUEUE

        handler = Recorder(store_down)
        async with Consumer(conn, "AT.247", handler, requeue_delay=0.01):
            await eventually(lambda: _has_lane(handler, "quarantine"))
        attempts = [d.delivery_count for d in handler.seen if d.lane == "normal"]
        assert attempts == [0, 1, 2]
        (dead,) = [d for d in handler.seen if d.lane == "quarantine"]
        assert (dead.queue, dead.body, dead.message_id) == (
            "evb.AT.247.quarantine",
            b'{"raw": true}',
            "m-poison",
        )
        assert dead.dead_letter_reason == "delivery_limit"
        assert dead.headers["x-death"][0]["queue"] == INBOX
        assert await queue_depth(conn, INBOX) == 0
        assert await queue_depth(conn, "evb.AT.247.quarantine") == 0


async def _has_lane(handler: Recorder, lane: str) -> bool:
    return any(d.lane == lane for d in handler.seen)


@pytest.mark.integration
async def test_emergency_backlog_goes_before_a_routine_backlog(rabbit: RabbitSession) -> None:
    sites = make_sites(rabbit, "AT")
    async with admin(sites, "AT", "AT.247") as connection:
        await _publish(connection, _items(200))
        await _publish(connection, _items(3, "emergency", "e"))
        handler = Recorder()
        async with Consumer(connection, "AT.247", handler, concurrency=2):
            await handler.count(203)
        positions = [n for n, d in enumerate(handler.seen) if d.lane == "emergency"]
        assert positions == [0, 1, 2]


@pytest.mark.integration
async def test_emergency_overtakes_routine_work_in_progress(rabbit: RabbitSession) -> None:
    sites = make_sites(rabbit, "AT")
    async with admin(sites, "AT", "AT.247") as connection:
        await _publish(connection, _items(200))

        async def slow(delivery: Delivery) -> Outcome:
            if delivery.lane == "normal":
                await asyncio.sleep(0.01)
            return Outcome.ACK

        handler = Recorder(slow)
        async with Consumer(connection, "AT.247", handler, concurrency=2, prefetch=32):
            await handler.count(20)
            async with Publisher(connection) as publisher:
                await publisher.publish(
                    EXCHANGE, "AT.247.emergency", b"{}", message_id="urgent", emergency=True
                )
            published_at = len(handler.seen)
            await eventually(lambda: _has_lane(handler, "emergency"))
        position = handler.ids().index("urgent")
        # At most the two routine deliveries in progress finish first (and one that
        # started while the confirm was on its way).
        assert position - published_at <= 3, (published_at, position)


@pytest.mark.integration
async def test_consumer_survives_a_cut_connection(rabbit: RabbitSession) -> None:
    sites = make_sites(rabbit, "AT")
    async with (
        admin(sites, "AT", "AT.247") as connection,
        TcpProxy(rabbit.amqp_host, rabbit.amqp_port) as proxy,
    ):
        settings = AmqpSettings(
            url=sites.url("AT", host="127.0.0.1", port=proxy.port), reconnect_interval=0.3
        )
        node = await connect(settings)
        handler = Recorder()
        with capture_logs() as logs:
            async with node, Consumer(node, "AT.247", handler, retry_delay=0.2) as consumer:
                await _publish(connection, _items(50, prefix="a"))
                await handler.count(50)
                assert proxy.cut() == 1
                # The loss is logged (the not-ready state itself may last only an
                # instant: a robust connection comes back within reconnect_interval).
                await eventually(lambda: _true(bool(_events(logs, "consumers_lost"))), timeout=10)
                await _publish(connection, _items(50, prefix="b"))
                started = time.monotonic()
                assert await consumer.wait_ready(10.0)
                assert time.monotonic() - started < 10.0
                await _publish(connection, _items(50, prefix="c"))
                await handler.count(150)
        ids = set(handler.ids())
        expected = {f"{p}-{n}" for p in "abc" for n in range(50)}
        assert ids == expected  # nothing lost (a redelivery may repeat one: dedup's job)
        ready = _events(logs, "consumers_ready")
        assert ready[0]["after"] == 0.0
        assert len(ready) >= 2 and ready[-1]["after"] < 10.0
        assert _events(logs, "consumers_lost") != []
        assert _events(logs, "consumers_not_ready") == []
        assert await queue_depth(connection, INBOX) == 0


async def _true(value: bool) -> bool:
    return value


@pytest.mark.integration
async def test_consumer_comes_back_when_the_broker_cancels_it(rabbit: RabbitSession) -> None:
    sites = make_sites(rabbit, "AT")
    vhost = sites.vhosts["AT"]
    async with admin(sites, "AT", "AT.247") as connection:
        handler = Recorder()
        with capture_logs() as logs:
            async with Consumer(
                connection, "AT.247", handler, topology=TopologySettings(), retry_delay=0.2
            ) as consumer:
                # An operator deletes the inbox: the broker cancels the consumer.
                rabbit.api("DELETE", f"queues/{vhost}/{INBOX}")
                await eventually(
                    lambda: _true(bool(_events(logs, "consumer_cancelled_by_broker"))), timeout=5
                )
                # The watchdog may restore it within milliseconds: wait for the log line.
                await eventually(lambda: _true(len(_events(logs, "consumers_ready")) == 2))
                assert consumer.consumers_ready()
                # Re-declared with its binding: traffic flows again.
                await _publish(connection, _items(2))
                await handler.count(2)
        assert sorted(handler.ids()) == ["m-0", "m-1"]
        assert len(_events(logs, "consumer_cancelled_by_broker")) == 1
        assert len(_events(logs, "consumers_ready")) == 2


@pytest.mark.integration
async def test_a_node_user_without_topology_cannot_start(rabbit: RabbitSession) -> None:
    sites = make_sites(rabbit, "AT")
    connection = await connect(sites.settings("AT"))
    async with connection:
        with pytest.raises(ConfigError) as caught:
            await Consumer(connection, "AT.247", Recorder()).start()
        assert caught.value.code == "E_CONFIG"
        assert "NOT_FOUND" in caught.value.message


@pytest.mark.integration
async def test_stop_drains_work_in_progress_and_takes_nothing_new(rabbit: RabbitSession) -> None:
    sites = make_sites(rabbit, "AT")
    async with admin(sites, "AT", "AT.247") as connection:
        await _publish(connection, _items(4))
        finished: list[str] = []

        async def slow(delivery: Delivery) -> Outcome:
            await asyncio.sleep(0.3)
            finished.append(delivery.message_id or "")
            return Outcome.ACK

        handler = Recorder(slow)
        consumer = Consumer(connection, "AT.247", handler, concurrency=4)
        await consumer.start()
        await handler.count(4)
        await consumer.stop()
        assert sorted(finished) == ["m-0", "m-1", "m-2", "m-3"]
        assert not consumer.consumers_ready()
        await _publish(connection, _items(2, prefix="late"))
        await asyncio.sleep(0.2)
        assert len(handler.seen) == 4
        assert await queue_depth(connection, INBOX) == 2
        await consumer.stop()  # idempotent


@pytest.mark.integration
async def test_watchdog_alarms_when_it_cannot_restore_and_recovers_later(
    rabbit: RabbitSession,
) -> None:
    sites = make_sites(rabbit, "AT")
    vhost = sites.vhosts["AT"]
    async with admin(sites, "AT", "AT.247") as connection:
        handler = Recorder()
        with capture_logs() as logs:
            # A node user's consumer: it only checks the topology, it cannot re-create it.
            async with Consumer(
                connection, "AT.247", handler, ready_timeout=0.5, retry_delay=0.1
            ) as consumer:
                rabbit.api("DELETE", f"queues/{vhost}/{INBOX}")
                await eventually(lambda: _true(bool(_events(logs, "consumers_not_ready"))))
                assert not consumer.consumers_ready()
                failed = _events(logs, "consumer_restore_failed")
                assert failed[0]["code"] == "E_CONFIG"
                # The administrator declares the topology again: the watchdog resumes.
                async with admin(sites, "AT", "AT.247"):
                    pass
                assert await consumer.wait_ready(10.0)
                await _publish(connection, _items(1))
                await handler.count(1)
        (alarm,) = _events(logs, "consumers_not_ready")
        assert (alarm["log_level"], alarm["timeout"]) == ("error", 0.5)
        assert handler.ids() == ["m-0"]
