"""A local network of nodes on the test session's RabbitMQ: provisioned, then torn down."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Mapping, Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any

from broker.clock import SystemClock
from broker.localnet import LocalNetwork, build_network, provision, teardown
from broker.transport import ManagementClient
from tests.support.rabbit import RabbitSession

__all__ = ["amqp_url", "local_network"]


def amqp_url(server: RabbitSession) -> str:
    """The session's AMQP URL (the vhost part is set per site by build_network)."""
    return (
        f"amqp://{server.amqp_user}:{server.amqp_password}@{server.amqp_host}:{server.amqp_port}/"
    )


@contextlib.asynccontextmanager
async def local_network(
    server: RabbitSession,
    state: Path,
    participants: Sequence[str],
    *,
    name: str,
    settings: Mapping[str, Mapping[str, Any]] | None = None,
    store: str = "sqlite",
    pg_dsn: str | None = None,
) -> AsyncIterator[LocalNetwork]:
    """Build keys, directory and configs under ``state``, provision the sites, tear down.

    ``name`` makes the vhosts (and PostgreSQL schemas) of this network its own.
    """
    network = build_network(
        state,
        participants,
        now=SystemClock().now() - timedelta(minutes=1),
        vhost_prefix=server.vhost_name(name),
        amqp_url=amqp_url(server),
        store=store,
        pg_dsn=pg_dsn,
        settings=settings,
    )
    async with ManagementClient(server.mgmt_url, server.mgmt_user, server.mgmt_password) as m:
        await provision(network, m)
        try:
            yield network
        finally:
            await teardown(network, m)
