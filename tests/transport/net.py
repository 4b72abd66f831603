"""A test network on the real RabbitMQ: sites in fresh vhosts, and a directory routing to them.

The participants are those of ``tests/trust/builders.py`` (AT.247 in site AT; DE.CA and
DE.JUD in site DE; ISP.mailhost in site IE), each routed to a vhost made for the test.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from aio_pika.abc import AbstractRobustConnection

from broker.forms.directory import DirectoryDocument
from broker.transport import (
    AmqpSettings,
    ManagementClient,
    TopologySettings,
    connect,
    declare_node_topology,
    declare_site_topology,
)
from broker.trust import TrustDirectory, add_participant, init_directory, verify_directory
from tests.support.rabbit import RabbitSession
from tests.trust.builders import listings, network, raw, signed

SITE_OF = {"AT.247": "AT", "DE.CA": "DE", "DE.JUD": "DE", "ISP.mailhost": "IE"}


def build_directory(
    vhosts: Mapping[str, str],
    *,
    only: set[str] | None = None,
    vhost_of: Mapping[str, str] | None = None,
) -> DirectoryDocument:
    """A signed directory whose participants of each site in ``vhosts`` route there.

    ``only`` keeps just those participants; ``vhost_of`` routes one elsewhere.
    """
    now = datetime.now(UTC) - timedelta(minutes=1)
    doc = init_directory(network().root_keys("root1", "root2", "root3"), 2, timedelta(days=7), now)
    for listing, role, country in listings():
        site = SITE_OF[listing.participant]
        if site not in vhosts or (only is not None and listing.participant not in only):
            continue
        vhost = (vhost_of or {}).get(listing.participant, vhosts[site])
        routing = {"site": site, "vhost": vhost, "exchange": f"evb.{listing.participant}"}
        doc = add_participant(doc, listing, role, country, routing=routing, now=now)
    return signed(doc, "root1", "root2")


def trusted(doc: DirectoryDocument) -> TrustDirectory:
    return verify_directory(raw(doc), now=datetime.now(UTC))


@dataclass
class Sites:
    """Fresh site vhosts of one test, and the directory that routes to them."""

    rabbit: RabbitSession
    vhosts: dict[str, str]
    document: DirectoryDocument
    directory: TrustDirectory

    def url(self, site: str, **kwargs: object) -> str:
        return self.rabbit.amqp_url(self.vhosts[site], **kwargs)  # type: ignore[arg-type]

    def settings(self, site: str, **kwargs: object) -> AmqpSettings:
        return AmqpSettings(url=self.url(site), reconnect_interval=0.3, **kwargs)  # type: ignore[arg-type]

    def mgmt(self) -> ManagementClient:
        return self.rabbit.management()


def make_sites(rabbit: RabbitSession, *sites: str) -> Sites:
    vhosts = {site: rabbit.new_vhost(site.lower()) for site in sites}
    document = build_directory(vhosts)
    return Sites(rabbit, vhosts, document, trusted(document))


@asynccontextmanager
async def admin(
    sites: Sites, site: str, *participants: str, settings: TopologySettings | None = None
) -> AsyncIterator[AbstractRobustConnection]:
    """An administrator's connection to a site, with the site's and the nodes' topology."""
    connection = await connect(sites.settings(site))
    async with connection:
        channel = await connection.channel()
        async with channel:
            await declare_site_topology(channel)
            for participant in participants:
                await declare_node_topology(channel, participant, settings)
        yield connection


async def eventually(
    check: Callable[[], Awaitable[bool]], timeout: float = 10.0, interval: float = 0.05
) -> float:
    """Wait until ``check()`` is true; return the seconds it took (fail after ``timeout``)."""
    start = time.monotonic()
    while not await check():
        if time.monotonic() - start > timeout:
            raise AssertionError(f"not true within {timeout} s")
        await asyncio.sleep(interval)
    return time.monotonic() - start


async def queue_depth(connection: AbstractRobustConnection, queue: str) -> int:
    """Messages ready in ``queue`` (a passive declare on a channel of its own)."""
    channel = await connection.channel()
    async with channel:
        declared = await channel.declare_queue(queue, passive=True)
        count = declared.declaration_result.message_count
        return int(count or 0)
