"""The AMQP transport: topology, connection, publisher, consumer, and links between sites.

One module per concept:

* :mod:`.topology` — the names of exchanges and queues (the contract) and their
  idempotent declaration; who may declare what;
* :mod:`.connection` — :class:`AmqpSettings`, TLS, :func:`connect`, error translation;
* :mod:`.publisher` — :class:`Publisher`: confirms, ``mandatory``, pipelined batches;
* :mod:`.consumer` — :class:`Consumer`: manual acks, emergency first, the watchdog;
* :mod:`.management` — :class:`ManagementClient` of the RabbitMQ HTTP API;
* :mod:`.links` — sites and the shovel / federation links between them.
"""

from __future__ import annotations

from broker.transport.connection import AmqpSettings, connect, redact_uri
from broker.transport.consumer import Consumer, ConsumerLane, Delivery, Handler, Lanes, Outcome
from broker.transport.links import (
    Link,
    LinkKind,
    LinkTls,
    SiteReport,
    create_link,
    delete_link,
    ensure_link_user,
    ensure_node_user,
    list_links,
    provision_site,
)
from broker.transport.management import ManagementClient
from broker.transport.publisher import Outgoing, Publisher
from broker.transport.topology import (
    ALERT_KEY,
    ARRIVE_EXCHANGE,
    BROADCAST_EXCHANGE,
    LANES,
    Lane,
    NodeNames,
    Permissions,
    TopologySettings,
    declare_node_topology,
    declare_site_topology,
    link_name,
    link_queue,
    node_names,
    node_permissions,
    node_username,
    routing_key,
)

__all__ = [
    "ALERT_KEY",
    "ARRIVE_EXCHANGE",
    "BROADCAST_EXCHANGE",
    "LANES",
    "AmqpSettings",
    "Consumer",
    "ConsumerLane",
    "Delivery",
    "Handler",
    "Lane",
    "Lanes",
    "Link",
    "LinkKind",
    "LinkTls",
    "ManagementClient",
    "NodeNames",
    "Outcome",
    "Outgoing",
    "Permissions",
    "Publisher",
    "SiteReport",
    "TopologySettings",
    "connect",
    "create_link",
    "declare_node_topology",
    "declare_site_topology",
    "delete_link",
    "ensure_link_user",
    "ensure_node_user",
    "link_name",
    "link_queue",
    "list_links",
    "node_names",
    "node_permissions",
    "node_username",
    "provision_site",
    "redact_uri",
    "routing_key",
]
