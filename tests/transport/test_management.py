"""The management API client: the calls links need, and errors translated and redacted."""

from __future__ import annotations

import asyncio

import pytest

from broker.errors import ConfigError, TransportBroken
from broker.transport import ManagementClient, Permissions
from tests.support.rabbit import RabbitSession


def test_credentials_may_come_from_the_url() -> None:
    client = ManagementClient("http://admin:s3cret@rabbit.example:15672/")
    assert (client.url, client.user) == ("http://rabbit.example:15672", "admin")
    assert ManagementClient("https://rabbit.example", "ops", "pw").user == "ops"
    with pytest.raises(ConfigError, match="http"):
        ManagementClient("amqp://rabbit.example")


async def test_a_client_that_is_not_open_says_so() -> None:
    with pytest.raises(ConfigError, match="not open"):
        await ManagementClient().vhosts()


async def test_unreachable_api_is_transport_broken() -> None:
    probe = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
    port = probe.sockets[0].getsockname()[1]
    probe.close()
    await probe.wait_closed()
    async with ManagementClient(f"http://127.0.0.1:{port}", "guest", "pw-xyz") as mgmt:
        with pytest.raises(TransportBroken) as caught:
            await mgmt.overview()
    assert caught.value.code == "E_TRANSPORT_BROKEN"
    assert "pw-xyz" not in str(caught.value)


@pytest.mark.integration
async def test_wrong_password_is_config_error(rabbit: RabbitSession) -> None:
    async with ManagementClient(rabbit.mgmt_url, rabbit.mgmt_user, "wrong-pw") as mgmt:
        with pytest.raises(ConfigError) as caught:
            await mgmt.vhosts()
    assert caught.value.code == "E_CONFIG"
    assert "401" in caught.value.message
    assert "wrong-pw" not in caught.value.message


@pytest.mark.integration
async def test_vhosts_users_permissions_queues(rabbit: RabbitSession) -> None:
    vhost = rabbit.vhost_name("mgmt")
    user = f"{vhost}.someone"
    async with rabbit.management() as mgmt:
        assert (await mgmt.overview())["rabbitmq_version"].startswith("3.")
        await mgmt.put_vhost(vhost)
        await mgmt.put_vhost(vhost)  # idempotent
        assert vhost in await mgmt.vhosts()
        await mgmt.put_user(user, "pw")
        assert user in await mgmt.users()
        permissions = Permissions("^$", "^a$", "^b$")
        await mgmt.set_permissions(vhost, user, permissions)
        assert await mgmt.permissions(vhost, user) == permissions
        assert await mgmt.permissions(vhost, "nobody-here") is None
        await mgmt.set_permissions(vhost, rabbit.mgmt_user, Permissions(".*", ".*", ".*"))
        await mgmt.put_queue(vhost, "q/with slash", {"x-queue-type": "quorum"})
        queue = await mgmt.queue(vhost, "q/with slash")
        assert queue is not None and queue["arguments"] == {"x-queue-type": "quorum"}
        with pytest.raises(ConfigError, match=r"PRECONDITION_FAILED|inequivalent"):
            await mgmt.put_queue(vhost, "q/with slash", {"x-queue-type": "classic"})
        assert await mgmt.queue(vhost, "missing") is None
        assert await mgmt.delete_queue(vhost, "q/with slash") is True
        assert await mgmt.delete_queue(vhost, "q/with slash") is False
        assert await mgmt.delete_user(user) is True
        assert await mgmt.delete_user(user) is False
        assert await mgmt.delete_vhost(vhost) is True
        assert await mgmt.delete_vhost(vhost) is False


@pytest.mark.integration
async def test_refused_definitions_are_config_errors_without_passwords(
    rabbit: RabbitSession,
) -> None:
    vhost = rabbit.new_vhost("refused")
    async with rabbit.management() as mgmt:
        with pytest.raises(ConfigError) as caught:
            await mgmt.put_parameter(
                "shovel",
                vhost,
                "evb-link-X-Y",
                {
                    "src-protocol": "amqp091",
                    "src-uri": f"amqp:///{vhost}",
                    "src-queue": "q",
                    "dest-protocol": "amqp091",
                    "dest-uri": "amqpx://u:topsecret@nohost:99999/x",
                    "dest-exchange": "evb.arrive",
                },
            )
    assert caught.value.code == "E_CONFIG"
    assert "not a valid URI" in caught.value.message
    assert "amqpx://u:***@nohost" in caught.value.message
    assert "topsecret" not in str(caught.value)
