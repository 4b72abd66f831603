"""The AMQP topology of a site and of its nodes: the names every other module codes against.

A *site* is a vhost (``evb-at``, ``evb-de`` …, from the trust directory's routing).
In a site vhost::

    evb.arrive          topic exchange, the site's arrival point; keys <participant>.<lane>
    evb.broadcast       fanout exchange, federated between sites (e.g. a new directory)
    evb.P               topic exchange, P's OUTBOUND exchange, bound to evb.arrive with "#"
    evb.P.inbox         quorum queue <- evb.arrive "P.normal"
    evb.P.emergency     quorum queue <- evb.arrive "P.emergency"
    evb.P.dlx           fanout exchange, dead letters of the two queues above
    evb.P.quarantine    quorum queue <- evb.P.dlx
    evb.P.alerts        quorum queue <- evb.P "alert": the node's own alerts (missed
                        deadlines …) for its supervisors; only P can publish to evb.P
    evb.link.B          quorum queue <- evb.arrive "R.*" for every R of site B,
                        drained by the shovel evb-link-<A>-<B> (see :mod:`.links`)

The inbound queues carry an explicit delivery limit and dead-letter target (at-least-once
dead-lettering), and a length limit that *rejects* publishes (the publisher is nacked)
rather than dropping the oldest message. The quarantine queue has no delivery limit —
in RabbitMQ 3.x a quorum queue without ``x-delivery-limit`` never gives up — because a
dead letter that is dropped is a message lost; and no length limit, because a full
quarantine would stop dead-lettering and with it the inbox.

Who declares what (the permission design): a node's AMQP user may *not* declare its
bindings. Binding a queue to ``evb.arrive`` needs read permission on ``evb.arrive``, and
a user with that permission could bind any queue it configures to ``evb.arrive`` with
``#`` and watch the whole site's traffic; binding ``evb.P`` to ``evb.arrive`` needs write
permission on ``evb.arrive``, which would let a node inject messages under any routing
key. So the site administrator declares every node's topology at provisioning time
(:func:`declare_node_topology` over an admin connection, see
:func:`broker.transport.links.provision_site`) and a node re-declares it *passively*
(``passive=True``: checks that each entity exists, needs no permission). The node user
gets exactly :func:`node_permissions`: configure its own ``evb.P`` resources, write
(publish) only to ``evb.P``, read (consume) only its three queues.

Both declare functions are idempotent: call them again after every reconnect.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Literal, get_args

from aio_pika import ExchangeType
from aio_pika.abc import AbstractChannel

from broker.errors import ConfigError
from broker.transport.connection import translate_amqp_errors

__all__ = [
    "ALERT_KEY",
    "ARRIVE_EXCHANGE",
    "BROADCAST_EXCHANGE",
    "LANES",
    "Lane",
    "NodeNames",
    "Permissions",
    "TopologySettings",
    "declare_node_topology",
    "declare_site_topology",
    "link_name",
    "link_queue",
    "node_names",
    "node_permissions",
    "node_username",
    "routing_key",
]

#: The site's arrival exchange (topic).
ARRIVE_EXCHANGE = "evb.arrive"
#: The site's broadcast exchange (fanout), federated between sites.
BROADCAST_EXCHANGE = "evb.broadcast"

#: A lane of a node's inbound traffic; the last word of every routing key.
Lane = Literal["normal", "emergency"]
LANES: tuple[Lane, ...] = get_args(Lane)

# The trust directory's participant id; it has exactly one dot, so "<P>.*" in a topic
# binding matches P's lanes and nothing else.
_PARTICIPANT = re.compile(r"[A-Z]{2,3}\.[A-Za-z0-9_-]{1,32}")
_SITE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")


@dataclass(frozen=True)
class TopologySettings:
    """Limits of a node's inbound queues.

    Attributes:
        delivery_limit: deliveries of one message (``x-delivery-limit``) before the
            broker dead-letters it into the quarantine queue.
        max_length: messages a queue holds before it nacks new publishes.
    """

    delivery_limit: int = 20
    max_length: int = 100_000

    def __post_init__(self) -> None:
        if self.delivery_limit < 1 or self.max_length < 1:
            raise ConfigError("delivery_limit and max_length must be at least 1")


@dataclass(frozen=True)
class NodeNames:
    """The AMQP names of one node participant."""

    participant: str
    exchange: str
    inbox: str
    emergency: str
    dlx: str
    quarantine: str
    alerts: str

    def queue(self, lane: Lane) -> str:
        """The inbound queue of a lane."""
        return self.emergency if lane == "emergency" else self.inbox

    def binding_key(self, lane: Lane) -> str:
        """The key that routes this participant's ``lane`` from ``evb.arrive``."""
        return routing_key(self.participant, lane)


@dataclass(frozen=True)
class Permissions:
    """A RabbitMQ permission triple (regular expressions over resource names)."""

    configure: str
    write: str
    read: str


def _participant(participant: str) -> str:
    if not _PARTICIPANT.fullmatch(participant):
        raise ConfigError(f"{participant!r} is not a participant id such as AT.247")
    return participant


def _site(site: str) -> str:
    if not _SITE.fullmatch(site):
        raise ConfigError(f"{site!r} is not a site name such as AT")
    return site


def node_names(participant: str) -> NodeNames:
    """Return the exchange and queue names of ``participant``'s node.

    Raises:
        ConfigError: not a participant id.
    """
    base = f"evb.{_participant(participant)}"
    return NodeNames(
        participant=participant,
        exchange=base,
        inbox=f"{base}.inbox",
        emergency=f"{base}.emergency",
        dlx=f"{base}.dlx",
        quarantine=f"{base}.quarantine",
        alerts=f"{base}.alerts",
    )


def routing_key(recipient: str, lane: Lane) -> str:
    """The routing key of a message to ``recipient`` in ``lane``: ``<recipient>.<lane>``.

    Raises:
        ConfigError: not a participant id or not a lane.
    """
    if lane not in LANES:
        raise ConfigError(f"{lane!r} is not a lane ({', '.join(LANES)})")
    return f"{_participant(recipient)}.{lane}"


def link_queue(to_site: str) -> str:
    """The queue in the sending site that holds messages for ``to_site``."""
    return f"evb.link.{_site(to_site)}"


def link_name(from_site: str, to_site: str) -> str:
    """The name of the shovel (or federation upstream) from one site to another."""
    return f"evb-link-{_site(from_site)}-{_site(to_site)}"


def node_username(vhost: str, participant: str) -> str:
    """The AMQP user of a participant's node: ``<vhost>.<participant>``, e.g. ``evb-at.AT.247``.

    Users are global to a RabbitMQ server while sites are vhosts, so the vhost is part of
    the name: several sites (tests, the demo) can share one server.
    """
    return f"{vhost}.{_participant(participant)}"


def node_permissions(participant: str) -> Permissions:
    """The permissions of a node user in its own vhost (see the module docstring)."""
    p = re.escape(_participant(participant))
    return Permissions(
        configure=rf"^evb\.{p}(\..*)?$",
        write=rf"^evb\.{p}$",
        read=rf"^evb\.{p}\.(inbox|emergency|quarantine)$",
    )


def inbound_arguments(names: NodeNames, settings: TopologySettings) -> dict[str, Any]:
    """The ``x-`` arguments of a node's inbox and emergency queues."""
    return {
        "x-queue-type": "quorum",
        "x-delivery-limit": settings.delivery_limit,
        "x-dead-letter-exchange": names.dlx,
        "x-dead-letter-strategy": "at-least-once",
        "x-overflow": "reject-publish",
        "x-max-length": settings.max_length,
    }


QUARANTINE_ARGUMENTS: dict[str, Any] = {"x-queue-type": "quorum"}

#: The routing key of a node's alerts on its own exchange.
ALERT_KEY = "alert"


def alert_arguments(settings: TopologySettings) -> dict[str, Any]:
    """The ``x-`` arguments of a node's alert queue: full means nacked, never dropped."""
    return {
        "x-queue-type": "quorum",
        "x-overflow": "reject-publish",
        "x-max-length": settings.max_length,
    }


async def declare_site_topology(channel: AbstractChannel) -> None:
    """Declare a site's ``evb.arrive`` and ``evb.broadcast`` exchanges (idempotent).

    Use a channel of its own: a failed declaration closes it.

    Raises:
        ConfigError: the exchanges exist with other properties, or no permission.
        TransportBroken: the connection was lost.
    """
    with translate_amqp_errors(f"declare {ARRIVE_EXCHANGE}"):
        await channel.declare_exchange(ARRIVE_EXCHANGE, ExchangeType.TOPIC, durable=True)
    with translate_amqp_errors(f"declare {BROADCAST_EXCHANGE}"):
        await channel.declare_exchange(BROADCAST_EXCHANGE, ExchangeType.FANOUT, durable=True)


async def declare_node_topology(
    channel: AbstractChannel,
    participant: str,
    settings: TopologySettings | None = None,
    *,
    passive: bool = False,
) -> NodeNames:
    """Declare a node's exchanges, queues and bindings (idempotent), or check them.

    With ``passive=False`` (the site administrator, at provisioning time) everything is
    declared and bound; ``evb.arrive`` must exist (:func:`declare_site_topology`). With
    ``passive=True`` (a node under its own restricted user) each exchange and queue is
    only checked to exist — bindings cannot be checked passively; the administrator's
    declaration made them. Use a channel of its own: a failed declaration closes it.

    Args:
        channel: an open channel in the site's vhost.
        participant: the node's participant id.
        settings: queue limits (default :class:`TopologySettings`); ignored when passive.
        passive: check instead of declare.

    Returns:
        The node's names.

    Raises:
        ConfigError: an entity is missing (passive), exists with other arguments
            (change limits with a migration, not by redeclaring), or no permission.
        TransportBroken: the connection was lost.
    """
    names = node_names(participant)
    settings = settings or TopologySettings()
    topic, fanout = ExchangeType.TOPIC, ExchangeType.FANOUT
    if passive:
        for exchange in (names.exchange, names.dlx):
            with translate_amqp_errors(f"check exchange {exchange}"):
                await channel.declare_exchange(exchange, passive=True)
        for queue_name in (names.inbox, names.emergency, names.quarantine, names.alerts):
            with translate_amqp_errors(f"check queue {queue_name}"):
                await channel.declare_queue(queue_name, passive=True)
        return names

    with translate_amqp_errors(f"declare the exchanges of {participant}"):
        arrive = await channel.declare_exchange(ARRIVE_EXCHANGE, topic, passive=True)
        outbound = await channel.declare_exchange(names.exchange, topic, durable=True)
        dlx = await channel.declare_exchange(names.dlx, fanout, durable=True)
        # An exchange-to-exchange binding: evb.arrive takes everything evb.P gets.
        await arrive.bind(outbound, routing_key="#")
    arguments = inbound_arguments(names, settings)
    for lane in LANES:
        queue_name = names.queue(lane)
        with translate_amqp_errors(f"declare queue {queue_name}"):
            queue = await channel.declare_queue(queue_name, durable=True, arguments=arguments)
            await queue.bind(arrive, routing_key=names.binding_key(lane))
    with translate_amqp_errors(f"declare queue {names.quarantine}"):
        quarantine = await channel.declare_queue(
            names.quarantine, durable=True, arguments=QUARANTINE_ARGUMENTS
        )
        await quarantine.bind(dlx, routing_key="")
    with translate_amqp_errors(f"declare queue {names.alerts}"):
        alerts = await channel.declare_queue(
            names.alerts, durable=True, arguments=alert_arguments(settings)
        )
        # From the node's own exchange: no other participant can raise its alerts.
        await alerts.bind(outbound, routing_key=ALERT_KEY)
    return names
