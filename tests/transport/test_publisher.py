"""Publishing with confirms: exact outcomes, pipelining, and failures of the connection."""

from __future__ import annotations

import asyncio

import pytest

from broker.errors import (
    PublishNacked,
    TransportBroken,
    TransportClosed,
    Unroutable,
)
from broker.transport import AmqpSettings, Outgoing, Publisher, TopologySettings, connect
from tests.support.rabbit import RabbitSession
from tests.support.tcpproxy import TcpProxy
from tests.transport.net import admin, make_sites, queue_depth

pytestmark = pytest.mark.integration


async def test_confirmed_publish_lands_in_the_recipients_queue(rabbit: RabbitSession) -> None:
    sites = make_sites(rabbit, "AT")
    async with admin(sites, "AT", "AT.247") as connection, Publisher(connection) as publisher:
        await publisher.publish(
            "evb.AT.247", "AT.247.normal", b'{"n": 1}', message_id="m-1", headers={"x-evb": "1"}
        )
        await publisher.publish(
            "evb.AT.247", "AT.247.emergency", b'{"n": 2}', message_id="m-2", emergency=True
        )
        channel = await connection.channel()
        async with channel:
            inbox = await channel.declare_queue("evb.AT.247.inbox", passive=True, robust=False)
            message = await inbox.get(timeout=5)
            assert (message.body, message.message_id) == (b'{"n": 1}', "m-1")
            assert (message.content_type, message.delivery_mode.value) == ("application/json", 2)
            assert message.headers == {"x-evb": "1"} | {"x-delivery-count": 0}
            await message.ack()
            emergency = await channel.declare_queue(
                "evb.AT.247.emergency", passive=True, robust=False
            )
            urgent = await emergency.get(timeout=5)
            assert (urgent.body, urgent.routing_key) == (b'{"n": 2}', "AT.247.emergency")
            await urgent.ack()


async def test_unroutable_publish_raises(rabbit: RabbitSession) -> None:
    sites = make_sites(rabbit, "AT")
    async with admin(sites, "AT", "AT.247") as connection, Publisher(connection) as publisher:
        with pytest.raises(Unroutable) as caught:
            await publisher.publish("evb.AT.247", "XX.nobody.normal", b"{}", message_id="m-u")
        assert caught.value.code == "E_UNROUTABLE"
        # A missing exchange is unroutable too, and the channel recovers from it.
        with pytest.raises(Unroutable, match="does not exist") as missing:
            await publisher.publish("evb.XX.nobody", "AT.247.normal", b"{}", message_id="m-x")
        assert missing.value.code == "E_UNROUTABLE"
        await publisher.publish("evb.AT.247", "AT.247.normal", b"{}", message_id="m-ok")
        assert await queue_depth(connection, "evb.AT.247.inbox") == 1


async def test_full_queue_nacks_and_drops_nothing(rabbit: RabbitSession) -> None:
    sites = make_sites(rabbit, "AT")
    tiny = TopologySettings(max_length=3)
    async with (
        admin(sites, "AT", "AT.247", settings=tiny) as connection,
        Publisher(connection) as publisher,
    ):

        async def attempt(n: int) -> str:
            try:
                await publisher.publish("evb.AT.247", "AT.247.normal", b"{}", message_id=f"m-{n}")
            except PublishNacked as exc:
                return exc.code
            return "ok"

        outcomes = [await attempt(n) for n in range(8)]
        confirmed = outcomes.count("ok")
        # A quorum queue rejects once it is over its limit: the first few are confirmed,
        # every later one is nacked, none confirmed-then-dropped.
        assert outcomes == ["ok"] * confirmed + ["E_NACK"] * (8 - confirmed)
        assert 3 <= confirmed <= 4
        assert await queue_depth(connection, "evb.AT.247.inbox") == confirmed
        channel = await connection.channel()
        async with channel:
            inbox = await channel.declare_queue("evb.AT.247.inbox", passive=True, robust=False)
            ids = []
            for _ in range(confirmed):
                message = await inbox.get(timeout=5)
                ids.append(message.message_id)
                await message.ack()
        assert ids == [f"m-{n}" for n in range(confirmed)]


async def test_publish_many_pipelines_and_reports_each_outcome(rabbit: RabbitSession) -> None:
    sites = make_sites(rabbit, "AT")
    async with (
        admin(sites, "AT", "AT.247", settings=TopologySettings(max_length=1000)) as connection,
        Publisher(connection, window=16) as publisher,
    ):
        items = [Outgoing("evb.AT.247", "AT.247.normal", b"{}", f"m-{n}") for n in range(200)]
        items[17] = Outgoing("evb.AT.247", "XX.nobody.normal", b"{}", "m-17")
        items[99] = Outgoing("evb.AT.247", "AT.247.emergency", b"{}", "m-99", emergency=True)
        items[150] = Outgoing("evb.AT.247", "AT.247.emergency", b"{}", "m-150", emergency=False)
        outcomes = await publisher.publish_many(items)
        codes = {n: outcome.code for n, outcome in enumerate(outcomes) if outcome is not None}
        assert codes == {17: "E_UNROUTABLE", 150: "E_CONFIG"}
        assert await queue_depth(connection, "evb.AT.247.inbox") == 197
        assert await queue_depth(connection, "evb.AT.247.emergency") == 1


async def test_same_message_id_twice_in_a_batch_is_serialised(rabbit: RabbitSession) -> None:
    sites = make_sites(rabbit, "AT")
    async with admin(sites, "AT", "AT.247") as connection, Publisher(connection) as publisher:
        # The broker's returns are matched by message id: two in flight would mix up.
        items = [
            Outgoing("evb.AT.247", "XX.nobody.normal", b"{}", "same"),
            Outgoing("evb.AT.247", "AT.247.normal", b"{}", "same"),
        ]
        outcomes = await publisher.publish_many(items)
        assert [None if o is None else o.code for o in outcomes] == ["E_UNROUTABLE", None]


async def test_closed_publisher_raises_transport_closed(rabbit: RabbitSession) -> None:
    sites = make_sites(rabbit, "AT")
    async with admin(sites, "AT", "AT.247") as connection:
        publisher = Publisher(connection)
        with pytest.raises(TransportClosed, match="not open"):
            await publisher.publish("evb.AT.247", "AT.247.normal", b"{}", message_id="m")
        async with publisher:
            pass
        with pytest.raises(TransportClosed) as caught:
            await publisher.publish("evb.AT.247", "AT.247.normal", b"{}", message_id="m")
        assert caught.value.code == "E_TRANSPORT_CLOSED"
        with pytest.raises(TransportClosed):
            await publisher.open()


async def test_lost_connection_is_transport_broken_then_recovers(rabbit: RabbitSession) -> None:
    sites = make_sites(rabbit, "AT")
    async with (
        admin(sites, "AT", "AT.247"),
        TcpProxy(rabbit.amqp_host, rabbit.amqp_port) as proxy,
    ):
        settings = AmqpSettings(
            url=sites.url("AT", host="127.0.0.1", port=proxy.port), reconnect_interval=0.2
        )
        connection = await connect(settings)
        async with connection, Publisher(connection, ready_timeout=0.5) as publisher:
            await publisher.publish("evb.AT.247", "AT.247.normal", b"{}", message_id="m-1")
            proxy.pause()
            assert proxy.cut() == 1
            with pytest.raises(TransportBroken) as caught:
                await publisher.publish("evb.AT.247", "AT.247.normal", b"{}", message_id="m-2")
            assert caught.value.code == "E_TRANSPORT_BROKEN"
            await proxy.resume()
            for _ in range(50):  # the robust connection comes back by itself
                try:
                    await publisher.publish("evb.AT.247", "AT.247.normal", b"{}", message_id="m-3")
                    break
                except TransportBroken:
                    await asyncio.sleep(0.1)
            else:
                pytest.fail("the publisher never recovered")
            assert await queue_depth(connection, "evb.AT.247.inbox") == 2


async def test_in_flight_publishes_fail_as_transport_broken_when_cut(rabbit: RabbitSession) -> None:
    sites = make_sites(rabbit, "AT")
    async with (
        admin(sites, "AT", "AT.247", settings=TopologySettings(max_length=10_000)),
        TcpProxy(rabbit.amqp_host, rabbit.amqp_port) as proxy,
    ):
        settings = AmqpSettings(url=sites.url("AT", host="127.0.0.1", port=proxy.port))
        connection = await connect(settings)
        async with connection, Publisher(connection, ready_timeout=0.5) as publisher:
            items = [
                Outgoing("evb.AT.247", "AT.247.normal", b"x" * 2048, f"m-{n}") for n in range(2000)
            ]
            proxy.pause()
            batch = asyncio.create_task(publisher.publish_many(items))
            await asyncio.sleep(0.05)
            proxy.cut()
            outcomes = await batch
            codes = {None if o is None else o.code for o in outcomes}
            # Confirmed before the cut, or broken: never anything else, never silent.
            assert codes <= {None, "E_TRANSPORT_BROKEN"}
            assert "E_TRANSPORT_BROKEN" in codes
