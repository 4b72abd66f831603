"""Topology names, permissions and the idempotent declaration on the real broker."""

from __future__ import annotations

import re

import pytest

from broker.errors import ConfigError
from broker.transport import (
    LANES,
    TopologySettings,
    connect,
    declare_node_topology,
    declare_site_topology,
    link_name,
    link_queue,
    node_names,
    node_permissions,
    node_username,
    routing_key,
)
from tests.support.rabbit import RabbitSession
from tests.transport.net import make_sites


def test_node_names_are_the_contract() -> None:
    names = node_names("AT.247")
    assert (
        names.exchange,
        names.inbox,
        names.emergency,
        names.dlx,
        names.quarantine,
        names.alerts,
    ) == (
        "evb.AT.247",
        "evb.AT.247.inbox",
        "evb.AT.247.emergency",
        "evb.AT.247.dlx",
        "evb.AT.247.quarantine",
        "evb.AT.247.alerts",
    )
    assert [names.queue(lane) for lane in LANES] == ["evb.AT.247.inbox", "evb.AT.247.emergency"]
    assert [names.binding_key(lane) for lane in LANES] == ["AT.247.normal", "AT.247.emergency"]
    assert routing_key("ISP.mailhost", "emergency") == "ISP.mailhost.emergency"
    assert (link_queue("DE"), link_name("AT", "DE")) == ("evb.link.DE", "evb-link-AT-DE")
    assert node_username("evb-at", "AT.247") == "evb-at.AT.247"


@pytest.mark.parametrize("bad", ["AT", "at.247", "AT.247.x", "AT.24 7", "#", "AT.*", ""])
def test_participant_ids_are_checked(bad: str) -> None:
    with pytest.raises(ConfigError) as caught:
        node_names(bad)
    assert caught.value.code == "E_CONFIG"


def test_routing_key_needs_a_lane() -> None:
    with pytest.raises(ConfigError, match="not a lane"):
        routing_key("AT.247", "urgent")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("kind", "name", "allowed"),
    [
        ("configure", "evb.AT.247", True),
        ("configure", "evb.AT.247.inbox", True),
        ("configure", "evb.AT.2470.inbox", False),
        ("configure", "evb.AT.24", False),
        ("configure", "evb.arrive", False),
        ("configure", "evbXAT.247", False),
        ("write", "evb.AT.247", True),
        ("write", "evb.AT.247.inbox", False),
        ("write", "evb.arrive", False),
        ("write", "evb.DE.CA", False),
        ("read", "evb.AT.247.inbox", True),
        ("read", "evb.AT.247.emergency", True),
        ("read", "evb.AT.247.quarantine", True),
        ("read", "evb.AT.247.dlx", False),
        ("read", "evb.arrive", False),
        ("read", "evb.DE.CA.inbox", False),
        ("read", "evb.AT.247Xinbox", False),
    ],
)
def test_node_permissions_cover_only_own_resources(kind: str, name: str, allowed: bool) -> None:
    pattern = getattr(node_permissions("AT.247"), kind)
    assert bool(re.search(pattern, name)) is allowed


def test_topology_settings_are_checked() -> None:
    assert TopologySettings() == TopologySettings(delivery_limit=20, max_length=100_000)
    with pytest.raises(ConfigError):
        TopologySettings(delivery_limit=0)
    with pytest.raises(ConfigError):
        TopologySettings(max_length=0)


@pytest.mark.integration
async def test_declaration_is_idempotent_and_complete(rabbit: RabbitSession) -> None:
    sites = make_sites(rabbit, "AT")
    vhost = sites.vhosts["AT"]
    connection = await connect(sites.settings("AT"))
    async with connection:
        for _ in range(2):  # twice: idempotent
            channel = await connection.channel()
            async with channel:
                await declare_site_topology(channel)
                names = await declare_node_topology(channel, "AT.247", TopologySettings(7, 99))
        channel = await connection.channel()
        async with channel:  # and the node's passive check finds everything
            assert await declare_node_topology(channel, "AT.247", passive=True) == names
    async with sites.mgmt() as mgmt:
        inbox = await mgmt.queue(vhost, names.inbox)
        assert inbox is not None
        assert inbox["arguments"] == {
            "x-queue-type": "quorum",
            "x-delivery-limit": 7,
            "x-dead-letter-exchange": "evb.AT.247.dlx",
            "x-dead-letter-strategy": "at-least-once",
            "x-overflow": "reject-publish",
            "x-max-length": 99,
        }
        quarantine = await mgmt.queue(vhost, names.quarantine)
        assert quarantine is not None
        assert quarantine["arguments"] == {"x-queue-type": "quorum"}
        arrive = await mgmt.exchange(vhost, "evb.arrive")
        broadcast = await mgmt.exchange(vhost, "evb.broadcast")
        assert arrive is not None and (arrive["type"], arrive["durable"]) == ("topic", True)
        assert broadcast is not None and broadcast["type"] == "fanout"
        bindings = rabbit.api("GET", f"exchanges/{vhost}/evb.arrive/bindings/source")
        assert sorted((b["destination"], b["routing_key"]) for b in bindings) == [
            ("evb.AT.247.emergency", "AT.247.emergency"),
            ("evb.AT.247.inbox", "AT.247.normal"),
        ]
        into_arrive = rabbit.api("GET", f"exchanges/{vhost}/evb.arrive/bindings/destination")
        assert [(b["source"], b["routing_key"]) for b in into_arrive] == [("evb.AT.247", "#")]
        assert await mgmt.queue_bindings(vhost, "evb.AT.247.dlx", names.quarantine) != []
        alerts = await mgmt.queue(vhost, names.alerts)
        assert alerts is not None
        assert alerts["arguments"] == {
            "x-queue-type": "quorum",
            "x-overflow": "reject-publish",
            "x-max-length": 99,
        }
        from_own = rabbit.api("GET", f"exchanges/{vhost}/evb.AT.247/bindings/source")
        assert ("evb.AT.247.alerts", "alert") in {
            (b["destination"], b["routing_key"]) for b in from_own
        }


@pytest.mark.integration
async def test_redeclaring_with_other_limits_is_refused(rabbit: RabbitSession) -> None:
    sites = make_sites(rabbit, "AT")
    connection = await connect(sites.settings("AT"))
    async with connection:
        channel = await connection.channel()
        async with channel:
            await declare_site_topology(channel)
            await declare_node_topology(channel, "AT.247", TopologySettings(max_length=10))
        channel = await connection.channel()
        with pytest.raises(ConfigError) as caught:
            await declare_node_topology(channel, "AT.247", TopologySettings(max_length=11))
        assert caught.value.code == "E_CONFIG"
        assert "PRECONDITION_FAILED" in caught.value.message


@pytest.mark.integration
async def test_passive_check_of_missing_topology_is_config_error(rabbit: RabbitSession) -> None:
    sites = make_sites(rabbit, "AT")
    connection = await connect(sites.settings("AT"))
    async with connection:
        channel = await connection.channel()
        with pytest.raises(ConfigError) as caught:
            await declare_node_topology(channel, "AT.247", passive=True)
        assert "NOT_FOUND" in caught.value.message
        assert "evb.AT.247" in caught.value.message
        channel = await connection.channel()
        with pytest.raises(ConfigError, match="NOT_FOUND"):
            # The node topology needs the site's evb.arrive first.
            await declare_node_topology(channel, "AT.247")
