"""Sites and links: provisioning, a shovel between two sites, federation for broadcasts."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from aio_pika.abc import AbstractIncomingMessage, AbstractQueue

from broker.errors import ConfigError, Unroutable
from broker.transport import (
    AmqpSettings,
    Consumer,
    Delivery,
    LinkTls,
    Outcome,
    Permissions,
    Publisher,
    connect,
    create_link,
    delete_link,
    ensure_link_user,
    list_links,
    provision_site,
)
from broker.transport.links import link_uri, site_participants, site_vhost
from tests.support.rabbit import RabbitSession
from tests.transport.net import (
    Sites,
    build_directory,
    eventually,
    queue_depth,
    trusted,
)


def _sites(rabbit: RabbitSession, *names: str, **kwargs: object) -> Sites:
    """Sites whose vhosts do not exist yet: provision_site creates them."""
    vhosts = {site: rabbit.vhost_name(site.lower()) for site in names}
    document = build_directory(vhosts, **kwargs)  # type: ignore[arg-type]
    return Sites(rabbit, vhosts, document, trusted(document))


def test_sites_come_from_the_directory() -> None:
    directory = trusted(build_directory({"AT": "v-at", "DE": "v-de"}))
    assert site_participants(directory, "DE") == ["DE.CA", "DE.JUD"]
    assert (site_vhost(directory, "AT"), site_vhost(directory, "DE")) == ("v-at", "v-de")
    with pytest.raises(ConfigError, match=r"no participant .* site IE"):
        site_vhost(directory, "IE")
    split = trusted(build_directory({"DE": "v-de"}, vhost_of={"DE.JUD": "v-other"}))
    with pytest.raises(ConfigError, match="several vhosts"):
        site_vhost(split, "DE")


@pytest.mark.parametrize(
    ("uri", "tls", "expected"),
    [
        ("amqp://l:pw@b.example:5672", None, "amqp://l:pw@b.example:5672/evb-de"),
        ("amqp://l:pw@b.example/evb-de", None, "amqp://l:pw@b.example/evb-de"),
        ("amqp://l:pw@b.example/", None, "amqp://l:pw@b.example/evb-de"),
        (
            "amqps://l:pw@b.example:5671",
            LinkTls("/etc/rabbitmq/ca.pem", "/etc/c.pem", "/etc/k.pem"),
            "amqps://l:pw@b.example:5671/evb-de?cacertfile=/etc/rabbitmq/ca.pem"
            "&certfile=/etc/c.pem&keyfile=/etc/k.pem&verify=verify_peer"
            "&server_name_indication=b.example",
        ),
        (
            "amqps://l:pw@10.0.0.2",
            LinkTls("/ca.pem", verify=False),
            "amqps://l:pw@10.0.0.2/evb-de?cacertfile=/ca.pem&verify=verify_none",
        ),
    ],
)
def test_link_uri_is_completed(uri: str, tls: LinkTls | None, expected: str) -> None:
    assert link_uri(uri, "evb-de", tls) == expected


@pytest.mark.parametrize(
    ("uri", "tls", "fragment"),
    [
        ("http://l:secret@b.example/", None, "amqp(s)://"),
        ("amqp://l:secret@b.example/evb-at", None, "names vhost 'evb-at'"),
        ("amqp://l:secret@b.example/", LinkTls("/ca.pem"), "need an amqps://"),
        ("amqps://l:secret@b.example/", LinkTls("/ca.pem", cert_file="/c.pem"), "go together"),
    ],
)
def test_bad_link_uris_are_refused(uri: str, tls: LinkTls | None, fragment: str) -> None:
    with pytest.raises(ConfigError) as caught:
        link_uri(uri, "evb-de", tls)
    assert fragment in caught.value.message
    assert "secret" not in caught.value.message


@pytest.mark.integration
async def test_provision_site_is_idempotent_and_makes_node_users(rabbit: RabbitSession) -> None:
    sites = _sites(rabbit, "DE")
    vhost = sites.vhosts["DE"]
    async with sites.mgmt() as mgmt:
        for _ in range(2):
            report = await provision_site(
                mgmt,
                sites.directory,
                "DE",
                amqp_url=rabbit.amqp_url("/"),
                node_passwords={"DE.CA": "ca-pw"},
            )
        assert report.as_dict() == {
            "site": "DE",
            "vhost": vhost,
            "participants": ["DE.CA", "DE.JUD"],
            "users": {"DE.CA": f"{vhost}.DE.CA"},
        }
        with pytest.raises(ConfigError, match=r"not participants of site DE: AT\.247"):
            await provision_site(
                mgmt,
                sites.directory,
                "DE",
                amqp_url=rabbit.amqp_url("/"),
                node_passwords={"AT.247": "x"},
            )
    # The node user finds its topology (passive check) and consumes its queues.
    node = await connect(
        AmqpSettings(url=rabbit.amqp_url(vhost, user=f"{vhost}.DE.CA", password="ca-pw"))  # noqa: S106
    )
    async with node, Consumer(node, "DE.CA", _ack) as consumer:
        assert consumer.consumers_ready()


async def _ack(delivery: Delivery) -> Outcome:
    return Outcome.ACK


async def _provision(sites: Sites, *names: str) -> None:
    async with sites.mgmt() as mgmt:
        for site in names:
            await provision_site(mgmt, sites.directory, site, amqp_url=sites.rabbit.amqp_url("/"))


@pytest.mark.integration
async def test_a_shovel_link_carries_a_message_to_the_other_site(rabbit: RabbitSession) -> None:
    sites = _sites(rabbit, "AT", "DE")
    await _provision(sites, "AT", "DE")
    at_vhost, de_vhost = sites.vhosts["AT"], sites.vhosts["DE"]
    async with sites.mgmt() as mgmt:
        link_user = await ensure_link_user(mgmt, de_vhost, "AT", "link-pw")
        # It may publish into DE's arrival exchange and do nothing else.
        assert await mgmt.permissions(de_vhost, link_user) == Permissions(
            "^$", r"^evb\.arrive$", "^$"
        )
        link = await create_link(
            mgmt,
            sites.directory,
            "AT",
            "DE",
            f"amqp://{link_user}:link-pw@{rabbit.amqp_host}:{rabbit.amqp_port}",
            reconnect_delay=1,
        )
        assert (link.name, link.kind, link.from_site, link.to_site, link.vhost) == (
            "evb-link-AT-DE",
            "shovel",
            "AT",
            "DE",
            at_vhost,
        )
        assert "link-pw" not in link.uri and link.uri.endswith(f"/{de_vhost}")
        bindings = await mgmt.queue_bindings(at_vhost, "evb.arrive", "evb.link.DE")
        assert sorted(b["routing_key"] for b in bindings) == ["DE.CA.*", "DE.JUD.*"]

        async def running() -> bool:
            return [(x.name, x.state) for x in await list_links(mgmt, sites.directory)] == [
                ("evb-link-AT-DE", "running")
            ]

        await eventually(running)

    received: list[Delivery] = []

    async def keep(delivery: Delivery) -> Outcome:
        received.append(delivery)
        return Outcome.ACK

    at = await connect(AmqpSettings(url=rabbit.amqp_url(at_vhost)))
    de = await connect(AmqpSettings(url=rabbit.amqp_url(de_vhost)))
    async with at, de, Publisher(at) as publisher, Consumer(de, "DE.CA", keep):
        await publisher.publish(
            "evb.AT.247", "DE.CA.emergency", b'{"art": 29}', message_id="m-1", emergency=True
        )
        await publisher.publish("evb.AT.247", "DE.CA.normal", b'{"art": 30}', message_id="m-2")
        with pytest.raises(Unroutable):  # nobody of that name in AT or behind a link
            await publisher.publish("evb.AT.247", "XX.nobody.normal", b"{}", message_id="m-3")

        async def arrived() -> bool:
            return len(received) == 2

        await eventually(arrived)
    assert sorted((d.message_id, d.lane, d.routing_key, d.body) for d in received) == [
        ("m-1", "emergency", "DE.CA.emergency", b'{"art": 29}'),
        ("m-2", "normal", "DE.CA.normal", b'{"art": 30}'),
    ]


@pytest.mark.integration
async def test_links_are_listed_resynced_and_deleted(rabbit: RabbitSession) -> None:
    sites = _sites(rabbit, "AT", "DE")
    await _provision(sites, "AT", "DE")
    at_vhost, de_vhost = sites.vhosts["AT"], sites.vhosts["DE"]
    uri_de = f"amqp://guest:guest@{rabbit.amqp_host}:{rabbit.amqp_port}"
    async with sites.mgmt() as mgmt:
        await create_link(mgmt, sites.directory, "AT", "DE", uri_de)
        await create_link(mgmt, sites.directory, "DE", "AT", uri_de)
        # DE.JUD leaves the directory: re-creating the link drops its binding.
        smaller = trusted(build_directory(sites.vhosts, only={"AT.247", "DE.CA"}))
        await create_link(mgmt, smaller, "AT", "DE", uri_de)
        bindings = await mgmt.queue_bindings(at_vhost, "evb.arrive", "evb.link.DE")
        assert [b["routing_key"] for b in bindings] == ["DE.CA.*"]

        found = await list_links(mgmt, sites.directory)
        assert [(x.name, x.from_site, x.to_site, x.vhost) for x in found] == [
            ("evb-link-AT-DE", "AT", "DE", at_vhost),
            ("evb-link-DE-AT", "DE", "AT", de_vhost),
        ]
        assert all("guest:***@" in x.uri for x in found)

        # Without a directory the sites are read from the names and queues.
        unscoped = await list_links(mgmt, vhosts=[at_vhost, de_vhost])
        assert [(x.name, x.from_site, x.to_site) for x in unscoped] == [
            ("evb-link-AT-DE", "AT", "DE"),
            ("evb-link-DE-AT", "DE", "AT"),
        ]
        # Another network on the same server has a link of the same name: a delete
        # without a scope refuses to guess.
        other = _sites(rabbit, "AT", "DE")
        await _provision(other, "AT", "DE")
        await create_link(mgmt, other.directory, "AT", "DE", uri_de)
        with pytest.raises(ConfigError, match="several links named evb-link-AT-DE"):
            await delete_link(mgmt, "evb-link-AT-DE")
        deleted = await delete_link(mgmt, "evb-link-AT-DE", directory=sites.directory)
        assert [(x.name, x.kind) for x in deleted] == [("evb-link-AT-DE", "shovel")]
        assert [x.name for x in await list_links(mgmt, sites.directory)] == ["evb-link-DE-AT"]
        with pytest.raises(ConfigError, match="no link named evb-link-AT-DE"):
            await delete_link(mgmt, "evb-link-AT-DE", directory=sites.directory)
        with pytest.raises(ConfigError, match="not a link name"):
            await delete_link(mgmt, "my-shovel")

    # Without its shovel the link queue keeps what is sent: nothing is lost.
    at = await connect(AmqpSettings(url=rabbit.amqp_url(at_vhost)))
    async with at, Publisher(at) as publisher:
        await publisher.publish("evb.AT.247", "DE.CA.normal", b"{}", message_id="kept")
        assert await queue_depth(at, "evb.link.DE") == 1
    async with sites.mgmt() as mgmt:
        await create_link(mgmt, sites.directory, "AT", "DE", uri_de)
        with pytest.raises(ConfigError):  # only an empty queue is deleted
            await delete_link(mgmt, "evb-link-AT-DE", vhosts=[at_vhost], delete_queue=True)
        assert [x.name for x in await list_links(mgmt, sites.directory)] == ["evb-link-DE-AT"]
        assert await mgmt.queue(at_vhost, "evb.link.DE") is not None


@pytest.mark.integration
async def test_create_link_refuses_bad_requests(rabbit: RabbitSession) -> None:
    sites = _sites(rabbit, "AT", "DE")
    uri = "amqp://guest:guest@127.0.0.1:5672"
    async with sites.mgmt() as mgmt:
        with pytest.raises(ConfigError, match="two different sites"):
            await create_link(mgmt, sites.directory, "AT", "AT", uri)
        with pytest.raises(ConfigError, match="site IE"):
            await create_link(mgmt, sites.directory, "AT", "IE", uri)
        with pytest.raises(ConfigError, match="shovel or federation"):
            await create_link(mgmt, sites.directory, "AT", "DE", uri, "relay")  # type: ignore[arg-type]
        with pytest.raises(ConfigError, match="reconnect_delay"):
            await create_link(mgmt, sites.directory, "AT", "DE", uri, reconnect_delay=0)
        assert await list_links(mgmt, sites.directory) == []


@pytest.mark.integration
async def test_a_federation_link_carries_a_broadcast(rabbit: RabbitSession) -> None:
    sites = _sites(rabbit, "AT", "DE")
    await _provision(sites, "AT", "DE")
    at_vhost, de_vhost = sites.vhosts["AT"], sites.vhosts["DE"]
    uri_at = f"amqp://guest:guest@{rabbit.amqp_host}:{rabbit.amqp_port}"
    async with sites.mgmt() as mgmt:
        link = await create_link(
            mgmt, sites.directory, "AT", "DE", uri_at, "federation", reconnect_delay=1
        )
        assert (link.kind, link.vhost, link.from_site, link.to_site) == (
            "federation",
            de_vhost,
            "AT",
            "DE",
        )
        assert link.uri.endswith(f"/{at_vhost}")
        policies = await mgmt.policies(de_vhost)
        assert [(p["name"], p["pattern"], p["definition"]) for p in policies] == [
            ("evb-broadcast-federation", r"^evb\.broadcast$", {"federation-upstream-set": "all"})
        ]
    at = await connect(AmqpSettings(url=rabbit.amqp_url(at_vhost)))
    de = await connect(AmqpSettings(url=rabbit.amqp_url(de_vhost)))
    async with at, de, Publisher(at) as publisher:
        channel = await de.channel()
        listener = await channel.declare_queue("", exclusive=True)
        await listener.bind("evb.broadcast")

        async def sent() -> bool:
            # Unroutable until the federation link has bound its queue in AT.
            try:
                await publisher.publish("evb.broadcast", "", b'{"v": 2}', message_id="dir-2")
            except Unroutable:
                return False
            return True

        await eventually(sent, interval=0.1)
        message = await _get(listener)
        assert (message.body, message.message_id) == (b'{"v": 2}', "dir-2")
        received_from: Any = message.headers["x-received-from"]
        assert received_from[0]["vhost"] == at_vhost
        await channel.close()
    async with sites.mgmt() as mgmt:
        found = await list_links(mgmt, sites.directory)
        assert [(x.name, x.kind, x.from_site, x.to_site) for x in found] == [
            ("evb-link-AT-DE", "federation", "AT", "DE")
        ]
        await delete_link(mgmt, "evb-link-AT-DE", directory=sites.directory)
        assert await list_links(mgmt, sites.directory) == []
        assert await mgmt.policies(de_vhost) == []


async def _get(queue: AbstractQueue) -> AbstractIncomingMessage:
    for _ in range(100):
        message = await queue.get(fail=False)
        if message is not None:
            await message.ack()
            return message
        await asyncio.sleep(0.05)
    raise AssertionError("no message")
