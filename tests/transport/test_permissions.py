"""Node users: their own node's resources in their own vhost, nothing else (ACCESS_REFUSED)."""

from __future__ import annotations

import pytest

from broker.errors import ConfigError
from broker.transport import (
    AmqpSettings,
    Consumer,
    Delivery,
    Outcome,
    Publisher,
    connect,
    declare_node_topology,
    ensure_node_user,
    node_permissions,
)
from broker.transport.connection import translate_amqp_errors
from tests.support.rabbit import RabbitSession
from tests.transport.net import admin, make_sites, queue_depth

pytestmark = pytest.mark.integration


async def _ack(delivery: Delivery) -> Outcome:
    return Outcome.ACK


async def test_node_user_is_confined_to_its_own_resources(rabbit: RabbitSession) -> None:
    sites = make_sites(rabbit, "DE")
    vhost = sites.vhosts["DE"]
    async with (
        admin(sites, "DE", "DE.CA", "DE.JUD") as root,
        sites.mgmt() as mgmt,
    ):
        user = await ensure_node_user(mgmt, vhost, "DE.CA", "ca-secret")
        assert user == f"{vhost}.DE.CA"
        assert await mgmt.permissions(vhost, user) == node_permissions("DE.CA")
        settings = AmqpSettings(url=rabbit.amqp_url(vhost, user=user, password="ca-secret"))  # noqa: S106
        node = await connect(settings)
        async with node:
            # Allowed: check its topology passively, publish on its own exchange
            # (to a peer), consume its own queues.
            channel = await node.channel()
            async with channel:
                await declare_node_topology(channel, "DE.CA", passive=True)
            async with Publisher(node) as publisher:
                await publisher.publish("evb.DE.CA", "DE.JUD.normal", b"{}", message_id="to-jud")
                # Refused: another node's outbound exchange (it could speak as DE.JUD).
                with pytest.raises(ConfigError) as foreign:
                    await publisher.publish("evb.DE.JUD", "DE.CA.normal", b"{}", message_id="spoof")
                assert foreign.value.code == "E_CONFIG"
                assert "ACCESS_REFUSED" in foreign.value.message
                # Refused: the site's arrival exchange (any routing key, any inbox).
                with pytest.raises(ConfigError, match="ACCESS_REFUSED"):
                    await publisher.publish("evb.arrive", "DE.JUD.normal", b"{}", message_id="x")
            async with Consumer(node, "DE.CA", _ack) as own:
                assert own.consumers_ready()
            # Refused: reading another node's queue.
            with pytest.raises(ConfigError) as reading:
                await Consumer(node, "DE.JUD", _ack).start()
            assert "ACCESS_REFUSED" in reading.value.message
            assert "evb.DE.JUD" in reading.value.message
            # Refused: declaring its own topology (binding needs read on evb.arrive) …
            channel = await node.channel()
            with pytest.raises(ConfigError, match="ACCESS_REFUSED"):
                await declare_node_topology(channel, "DE.CA")
            # … and so binding a queue of its own to evb.arrive to watch the site.
            spy_channel = await node.channel()

            async def spy() -> None:
                with translate_amqp_errors("spy"):
                    queue = await spy_channel.declare_queue("evb.DE.CA.spy", exclusive=True)
                    await queue.bind("evb.arrive", "#")

            with pytest.raises(ConfigError, match="ACCESS_REFUSED"):
                await spy()
        # Only the allowed message arrived; the refused ones went nowhere.
        assert await queue_depth(root, "evb.DE.JUD.inbox") == 1
        assert await queue_depth(root, "evb.DE.CA.inbox") == 0


async def test_node_user_cannot_enter_another_vhost(rabbit: RabbitSession) -> None:
    sites = make_sites(rabbit, "AT", "DE")
    async with admin(sites, "AT", "AT.247"), sites.mgmt() as mgmt:
        user = await ensure_node_user(mgmt, sites.vhosts["DE"], "DE.CA", "pw")
        settings = AmqpSettings(
            url=rabbit.amqp_url(sites.vhosts["AT"], user=user, password="pw"),  # noqa: S106
            connect_timeout=5,
        )
        with pytest.raises(ConfigError) as caught:
            await connect(settings)
        assert caught.value.code == "E_CONFIG"
