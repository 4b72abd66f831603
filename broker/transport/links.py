"""Sites and the links between them: provisioning through the RabbitMQ management API.

This module owns the cross-site plumbing (see :mod:`.topology` for the names):

* :func:`provision_site` creates a site's vhost, declares the site topology and every
  node's topology over an administrator's AMQP connection, and (optionally) creates
  the node users with :func:`ensure_node_user`;
* :func:`create_link` sets up one direction between two sites. Messages cross sites
  over RabbitMQ's own plugins, never a Python relay:

  - ``kind="shovel"`` (point-to-point traffic): in the sending site A a quorum queue
    ``evb.link.<B>`` bound to A's ``evb.arrive`` with ``<R>.*`` for every participant
    R of site B, drained by the dynamic shovel ``evb-link-<A>-<B>`` into B's
    ``evb.arrive`` (routing key kept; ``on-confirm`` acks on both ends, so a message
    leaves A only once B's broker took it). ``dest_uri`` is B's AMQP URI — vhost and
    the link user's credentials included (:func:`ensure_link_user` makes a user that
    may only publish to ``evb.arrive``). Re-running ``create_link`` re-syncs the
    bindings with the directory (participants added to or removed from B);
  - ``kind="federation"`` (broadcast, e.g. a new trust directory): a federation
    upstream ``evb-link-<A>-<B>`` in site B pointing at A, and a policy that federates
    B's ``evb.broadcast`` from every upstream. Here ``dest_uri`` is the URI that B's
    broker dials: *A's* AMQP URI.

* :func:`list_links` and :func:`delete_link` show and remove what ``create_link`` made.

Sites come from the trust directory: a participant's ``routing.site`` and
``routing.vhost``. All participants of a site must share one vhost.

One limit worth knowing: the shovel publishes into B's ``evb.arrive`` without
``mandatory``, so a message for a participant that has no queue in B (a directory
that lists R in B while B's administrator never provisioned R) is dropped by B. The
sender notices through its receipt deadline, never through a confirm.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal, get_args
from urllib.parse import quote, unquote

import structlog
from yarl import URL

from broker.errors import ConfigError
from broker.transport.connection import AmqpSettings, connect, open_channel, redact_uri
from broker.transport.management import ManagementClient
from broker.transport.topology import (
    ARRIVE_EXCHANGE,
    BROADCAST_EXCHANGE,
    Permissions,
    TopologySettings,
    declare_node_topology,
    declare_site_topology,
    link_name,
    link_queue,
    node_permissions,
    node_username,
)
from broker.trust import TrustDirectory

__all__ = [
    "FEDERATION_POLICY",
    "Link",
    "LinkKind",
    "LinkTls",
    "SiteReport",
    "create_link",
    "delete_link",
    "ensure_link_user",
    "ensure_node_user",
    "link_uri",
    "list_links",
    "provision_site",
    "site_participants",
    "site_vhost",
]

_log = structlog.get_logger(__name__)

LinkKind = Literal["shovel", "federation"]
_KINDS: tuple[LinkKind, ...] = get_args(LinkKind)

_SHOVEL = "shovel"
_UPSTREAM = "federation-upstream"
_PREFIX = "evb-link-"
#: The policy in a site that federates ``evb.broadcast`` from every upstream.
FEDERATION_POLICY = "evb-broadcast-federation"


# -- sites in the directory ---------------------------------------------------------------


def site_participants(directory: TrustDirectory, site: str) -> list[str]:
    """The ids of the participants routed to ``site``, in directory order."""
    return [p.id for p in directory.participants if p.routing.site == site]


def site_vhost(directory: TrustDirectory, site: str) -> str:
    """The vhost of ``site``.

    Raises:
        ConfigError: no participant is routed to the site, or its participants name
            different vhosts.
    """
    vhosts = {p.routing.vhost for p in directory.participants if p.routing.site == site}
    if not vhosts:
        raise ConfigError(f"no participant of the trust directory is routed to site {site}")
    if len(vhosts) > 1:
        raise ConfigError(f"the participants of site {site} name several vhosts: {sorted(vhosts)}")
    return vhosts.pop()


def _site_of_vhost(directory: TrustDirectory | None, vhost: str) -> str | None:
    if directory is None:
        return None
    sites = {p.routing.site for p in directory.participants if p.routing.vhost == vhost}
    return sites.pop() if len(sites) == 1 else None


# -- users --------------------------------------------------------------------------------


async def ensure_node_user(
    mgmt: ManagementClient, vhost: str, participant: str, password: str
) -> str:
    """Create (or reset) a node's AMQP user, restricted to its own resources in ``vhost``.

    The user is :func:`~.topology.node_username` with the permissions of
    :func:`~.topology.node_permissions` and no management tags.

    Returns:
        The user name.
    """
    user = node_username(vhost, participant)
    await mgmt.put_user(user, password)
    await mgmt.set_permissions(vhost, user, node_permissions(participant))
    _log.info("node_user_ready", vhost=vhost, user=user)
    return user


async def ensure_link_user(
    mgmt: ManagementClient, vhost: str, from_site: str, password: str
) -> str:
    """Create (or reset) the user a shovel from ``from_site`` logs in as in ``vhost``.

    It may publish to ``evb.arrive`` and nothing else: no configure, no read.

    Returns:
        The user name, ``<vhost>.link-<from_site>``.
    """
    user = f"{vhost}.link-{from_site}"
    await mgmt.put_user(user, password)
    await mgmt.set_permissions(
        vhost, user, Permissions("^$", rf"^{re.escape(ARRIVE_EXCHANGE)}$", "^$")
    )
    _log.info("link_user_ready", vhost=vhost, user=user)
    return user


# -- sites ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class SiteReport:
    """What :func:`provision_site` set up."""

    site: str
    vhost: str
    participants: tuple[str, ...]
    users: Mapping[str, str]

    def as_dict(self) -> dict[str, Any]:
        """The report as JSON-ready data (no passwords: there are none in it)."""
        return {
            "site": self.site,
            "vhost": self.vhost,
            "participants": list(self.participants),
            "users": dict(self.users),
        }


def _vhost_url(amqp_url: str, vhost: str) -> str:
    parsed = URL(amqp_url)
    return str(parsed.with_path("/" + quote(vhost, safe=""), encoded=True))


async def provision_site(
    mgmt: ManagementClient,
    directory: TrustDirectory,
    site: str,
    *,
    amqp_url: str,
    settings: TopologySettings | None = None,
    node_passwords: Mapping[str, str] | None = None,
    amqp_tls: AmqpSettings | None = None,
) -> SiteReport:
    """Create a site's vhost and declare its topology and every node's (idempotent).

    Steps: the vhost; full permissions in it for the administrator of ``amqp_url``
    (the management user when the URL names none); ``evb.arrive`` and ``evb.broadcast``;
    every node's exchanges, queues and bindings (:func:`declare_node_topology`); and for
    each participant in ``node_passwords`` its restricted node user.

    Args:
        mgmt: an open management client (an administrator).
        directory: the trust directory; the site's participants and vhost come from it.
        site: the site name (``routing.site``).
        amqp_url: an administrator's AMQP URL of the site's server (its vhost is replaced).
        settings: the node queues' limits.
        node_passwords: participant id -> password of the node user to create.
        amqp_tls: TLS files and checks for an ``amqps://`` ``amqp_url`` (its ``ca_file``,
            ``cert_file``, ``key_file`` and ``verify_hostname`` are used).

    Returns:
        The vhost, participants and node users.

    Raises:
        ConfigError: the site is unknown or inconsistent, a password is for a
            participant of another site, the broker refused something.
        TransportBroken: the broker cannot be reached.
    """
    vhost = site_vhost(directory, site)
    participants = site_participants(directory, site)
    passwords = dict(node_passwords or {})
    strangers = sorted(set(passwords) - set(participants))
    if strangers:
        raise ConfigError(f"not participants of site {site}: {', '.join(strangers)}")
    admin = URL(amqp_url).user or mgmt.user
    await mgmt.put_vhost(vhost, description=f"evidence-broker site {site}")
    await mgmt.set_permissions(vhost, admin, Permissions(".*", ".*", ".*"))
    template = amqp_tls or AmqpSettings(url=amqp_url)
    connection = await connect(
        dataclasses.replace(
            template,
            url=_vhost_url(amqp_url, vhost),
            connection_name=f"evb-provision-{site}",
        )
    )
    async with connection:
        channel = await open_channel(connection, f"open a channel in {vhost}")
        async with channel:
            await declare_site_topology(channel)
            for participant in participants:
                await declare_node_topology(channel, participant, settings)
    users = {p: await ensure_node_user(mgmt, vhost, p, passwords[p]) for p in sorted(passwords)}
    _log.info("site_provisioned", site=site, vhost=vhost, participants=len(participants))
    return SiteReport(site, vhost, tuple(participants), users)


# -- links --------------------------------------------------------------------------------


@dataclass(frozen=True)
class LinkTls:
    """TLS of a link's AMQP connection (files on the RabbitMQ server that dials).

    Attributes:
        ca_file: CA bundle that signs the peer broker's certificate.
        cert_file: client certificate, for mutual TLS.
        key_file: its private key.
        verify: check the peer's certificate (``verify_peer``); off only in a lab.
        server_name: the name to check and send as SNI (default: the URI's host).
    """

    ca_file: str
    cert_file: str | None = None
    key_file: str | None = None
    verify: bool = True
    server_name: str | None = None

    def query(self, host: str) -> dict[str, str]:
        """The URI query parameters RabbitMQ's Erlang client reads."""
        if (self.cert_file is None) != (self.key_file is None):
            raise ConfigError("cert_file and key_file go together (mutual TLS)")
        query = {"cacertfile": self.ca_file}
        if self.cert_file is not None and self.key_file is not None:
            query |= {"certfile": self.cert_file, "keyfile": self.key_file}
        if self.verify:
            query |= {"verify": "verify_peer", "server_name_indication": self.server_name or host}
        else:
            query |= {"verify": "verify_none"}
        return query


def link_uri(uri: str, vhost: str, tls: LinkTls | None = None) -> str:
    """Check and complete the AMQP URI a link's broker dials.

    The URI's vhost is filled in when the URI has none, and must be ``vhost`` when it
    has one. With ``tls`` the URI must be ``amqps://`` and gets RabbitMQ's TLS query
    parameters (``cacertfile``, ``certfile``, ``keyfile``, ``verify``,
    ``server_name_indication``).

    Raises:
        ConfigError: not an AMQP URI, another vhost, TLS options on ``amqp://``.
    """
    parsed = URL(uri)
    if parsed.scheme not in ("amqp", "amqps") or not parsed.host:
        raise ConfigError(
            f"a link URI must be amqp(s)://user:password@host/vhost: {redact_uri(uri)}"
        )
    given = parsed.raw_path[1:] if parsed.raw_path.startswith("/") else parsed.raw_path
    if given:
        if unquote(given) != vhost:
            raise ConfigError(
                f"the link URI names vhost {unquote(given)!r}; the directory says {vhost!r}"
            )
    else:
        parsed = parsed.with_path("/" + quote(vhost, safe=""), encoded=True)
    if tls is not None:
        if parsed.scheme != "amqps":
            raise ConfigError("TLS options need an amqps:// link URI")
        parsed = parsed.update_query(tls.query(parsed.host or ""))
    return str(parsed)


@dataclass(frozen=True)
class Link:
    """One direction between two sites, as the broker holds it.

    Attributes:
        name: ``evb-link-<from>-<to>``.
        kind: ``shovel`` or ``federation``.
        from_site: where messages come from (``None`` when it cannot be told).
        to_site: where they go (``None`` when it cannot be told).
        vhost: the vhost of the parameter (A's for a shovel, B's for federation).
        state: ``running``, ``starting``, ``terminated`` … (``unknown`` when the broker
            does not report it).
        uri: the URI the link dials, password masked.
    """

    name: str
    kind: LinkKind
    from_site: str | None
    to_site: str | None
    vhost: str
    state: str
    uri: str

    def as_dict(self) -> dict[str, Any]:
        """The link as JSON-ready data."""
        return {
            "name": self.name,
            "kind": self.kind,
            "from": self.from_site,
            "to": self.to_site,
            "vhost": self.vhost,
            "state": self.state,
            "uri": self.uri,
        }


async def create_link(
    mgmt: ManagementClient,
    directory: TrustDirectory,
    from_site: str,
    to_site: str,
    dest_uri: str,
    kind: LinkKind = "shovel",
    *,
    tls: LinkTls | None = None,
    reconnect_delay: int = 5,
    max_length: int | None = None,
) -> Link:
    """Create (or update) the link from ``from_site`` to ``to_site``; see the module docstring.

    Args:
        mgmt: an open management client of the broker that runs the link (A's for a
            shovel, B's for federation; the same server in tests and the demo).
        directory: the trust directory (sites, vhosts, participants).
        from_site: the sending site A.
        to_site: the receiving site B.
        dest_uri: the AMQP URI the link's broker dials — B's for a shovel, A's for
            federation — with the link user's credentials; the vhost is filled in from
            the directory when missing.
        kind: ``shovel`` (point-to-point) or ``federation`` (``evb.broadcast``).
        tls: TLS files for an ``amqps://`` URI.
        reconnect_delay: seconds between the link's reconnection attempts (1-5 is
            right for a wide-area link; the broker retries for ever).
        max_length: a length limit for the shovel's queue in A (publishes beyond it
            are nacked); unlimited by default.

    Returns:
        The link (state as the broker reports it right after creation).

    Raises:
        ConfigError: unknown or identical sites, a site without participants, a bad
            URI, or a definition the broker refused.
        TransportBroken: the management API cannot be reached.
    """
    if kind not in _KINDS:
        raise ConfigError(f"a link is a shovel or federation, not {kind!r}")
    if from_site == to_site:
        raise ConfigError("a link joins two different sites")
    if not 1 <= reconnect_delay <= 3600:
        raise ConfigError("reconnect_delay is between 1 and 3600 seconds")
    name = link_name(from_site, to_site)
    from_vhost = site_vhost(directory, from_site)
    to_vhost = site_vhost(directory, to_site)
    if kind == "federation":
        uri = link_uri(dest_uri, from_vhost, tls)
        await _create_federation(mgmt, name, to_vhost, uri, reconnect_delay)
        link = Link(name, kind, from_site, to_site, to_vhost, "unknown", redact_uri(uri))
    else:
        uri = link_uri(dest_uri, to_vhost, tls)
        recipients = site_participants(directory, to_site)
        queue = link_queue(to_site)
        arguments: dict[str, Any] = {"x-queue-type": "quorum"}
        if max_length is not None:
            arguments |= {"x-max-length": max_length, "x-overflow": "reject-publish"}
        await mgmt.put_queue(from_vhost, queue, arguments)
        await _sync_bindings(mgmt, from_vhost, queue, {f"{r}.*" for r in recipients})
        await mgmt.put_parameter(
            _SHOVEL,
            from_vhost,
            name,
            {
                "src-protocol": "amqp091",
                # No host: the shovel reads A's queue over a direct (in-broker) connection.
                "src-uri": "amqp:///" + quote(from_vhost, safe=""),
                "src-queue": queue,
                "dest-protocol": "amqp091",
                "dest-uri": uri,
                "dest-exchange": ARRIVE_EXCHANGE,
                "ack-mode": "on-confirm",
                "src-delete-after": "never",
                "reconnect-delay": reconnect_delay,
            },
        )
        link = Link(name, kind, from_site, to_site, from_vhost, "starting", redact_uri(uri))
    _log.info("link_created", link=name, kind=kind, vhost=link.vhost)
    return link


async def _sync_bindings(mgmt: ManagementClient, vhost: str, queue: str, keys: set[str]) -> None:
    """Make the bindings ``evb.arrive`` -> ``queue`` exactly ``keys``."""
    existing = await mgmt.queue_bindings(vhost, ARRIVE_EXCHANGE, queue)
    have = {b["routing_key"]: b["properties_key"] for b in existing}
    for key in sorted(keys - set(have)):
        await mgmt.bind_queue(vhost, ARRIVE_EXCHANGE, queue, key)
    for key in sorted(set(have) - keys):
        await mgmt.unbind_queue(vhost, ARRIVE_EXCHANGE, queue, have[key])


async def _create_federation(
    mgmt: ManagementClient, name: str, vhost: str, uri: str, reconnect_delay: int
) -> None:
    await mgmt.put_parameter(
        _UPSTREAM,
        vhost,
        name,
        {
            "uri": uri,
            "exchange": BROADCAST_EXCHANGE,
            "ack-mode": "on-confirm",
            # One hop: a broadcast federated into B never travels on from B.
            "max-hops": 1,
            "reconnect-delay": reconnect_delay,
            "trust-user-id": False,
        },
    )
    await mgmt.put_policy(
        vhost,
        FEDERATION_POLICY,
        pattern=rf"^{re.escape(BROADCAST_EXCHANGE)}$",
        definition={"federation-upstream-set": "all"},
        apply_to="exchanges",
    )


async def list_links(
    mgmt: ManagementClient,
    directory: TrustDirectory | None = None,
    *,
    vhosts: Collection[str] | None = None,
) -> list[Link]:
    """The ``evb-link-*`` shovels and federation upstreams on the server, sorted by name.

    Args:
        mgmt: an open management client.
        directory: only links in the vhosts of its sites (one server may carry several
            networks, e.g. the demo beside tests), and sites named exactly from it.
        vhosts: only links in these vhosts (wins over ``directory``'s).

    Sites are told from the shovel's queue and, with ``directory``, from the vhosts;
    without it a federation link's sites are read from its name (split at the last
    ``-``). Shovel states come from ``/api/shovels``; federation states need the
    ``rabbitmq_federation_management`` plugin, else they are ``unknown``.
    """
    if vhosts is None and directory is not None:
        vhosts = {p.routing.vhost for p in directory.participants}
    scope = None if vhosts is None else set(vhosts)
    links: list[Link] = []
    states = {(s.get("vhost"), s.get("name")): str(s.get("state")) for s in await mgmt.shovels()}
    for parameter in await mgmt.parameters(_SHOVEL):
        name, vhost, value = parameter["name"], parameter["vhost"], parameter["value"]
        if not name.startswith(_PREFIX) or (scope is not None and vhost not in scope):
            continue
        queue = str(value.get("src-queue", ""))
        to_site = queue.removeprefix("evb.link.") if queue.startswith("evb.link.") else None
        from_site = _site_of_vhost(directory, vhost)
        if from_site is None and to_site is not None and name.endswith(f"-{to_site}"):
            from_site = name[len(_PREFIX) : -len(to_site) - 1] or None
        # A new shovel shows in the status list only once its worker started.
        state = states.get((vhost, name), "starting")
        uri = redact_uri(str(value.get("dest-uri", "")))
        links.append(Link(name, "shovel", from_site, to_site, vhost, state, uri))
    upstream_states = await _federation_states(mgmt)
    for parameter in await mgmt.parameters(_UPSTREAM):
        name, vhost, value = parameter["name"], parameter["vhost"], parameter["value"]
        if not name.startswith(_PREFIX) or (scope is not None and vhost not in scope):
            continue
        to_site = _site_of_vhost(directory, vhost)
        from_site = None
        if to_site is not None and name.endswith(f"-{to_site}"):
            from_site = name[len(_PREFIX) : -len(to_site) - 1] or None
        elif directory is None:
            from_site, _, to_site = name[len(_PREFIX) :].rpartition("-")
        state = upstream_states.get((vhost, name), "unknown")
        uri = redact_uri(str(value.get("uri", "")))
        links.append(
            Link(name, "federation", from_site or None, to_site or None, vhost, state, uri)
        )
    return sorted(links, key=lambda link: (link.name, link.kind, link.vhost))


async def _federation_states(mgmt: ManagementClient) -> dict[tuple[str, str], str]:
    found = await mgmt.federation_links()
    if found is None:
        return {}
    return {(str(f.get("vhost")), str(f.get("upstream"))): str(f.get("status")) for f in found}


async def delete_link(
    mgmt: ManagementClient,
    name: str,
    *,
    directory: TrustDirectory | None = None,
    vhosts: Collection[str] | None = None,
    delete_queue: bool = False,
) -> list[Link]:
    """Delete the links called ``name`` (a shovel, a federation upstream, or both).

    The shovel's queue ``evb.link.<B>`` stays (with its bindings), so nothing it holds
    is lost and a new link drains it; with ``delete_queue`` it is deleted too, but only
    when empty. A federation policy goes with the last upstream of its vhost.

    Args:
        mgmt: an open management client.
        name: ``evb-link-<from>-<to>``.
        directory: only links in the vhosts of its sites (see :func:`list_links`).
        vhosts: only links in these vhosts.
        delete_queue: also delete the shovel's queue, if empty.

    Returns:
        The links deleted.

    Raises:
        ConfigError: no link has that name (in scope); several links of one kind have
            it (several networks on one server: give ``directory`` or ``vhosts``); or
            ``delete_queue`` and the queue holds messages (the shovel is deleted all
            the same).
    """
    if not name.startswith(_PREFIX):
        raise ConfigError(f"{name!r} is not a link name (evb-link-<from>-<to>)")
    found = [link for link in await list_links(mgmt, directory, vhosts=vhosts) if link.name == name]
    if not found:
        raise ConfigError(f"no link named {name}")
    kinds = [link.kind for link in found]
    if len(set(kinds)) < len(kinds):
        # One server may carry several networks (the demo beside tests): never delete
        # another network's link of the same name by accident.
        where = ", ".join(sorted(link.vhost for link in found))
        raise ConfigError(
            f"several links named {name} (in {where}): name the directory or the vhosts"
        )
    for link in found:
        if link.kind == "shovel":
            await mgmt.delete_parameter(_SHOVEL, link.vhost, name)
        else:
            await mgmt.delete_parameter(_UPSTREAM, link.vhost, name)
            await _drop_policy_if_unused(mgmt, link.vhost)
        _log.info("link_deleted", link=name, kind=link.kind, vhost=link.vhost)
    for link in found:
        if delete_queue and link.kind == "shovel" and link.to_site is not None:
            await mgmt.delete_queue(link.vhost, link_queue(link.to_site), if_empty=True)
    return found


async def _drop_policy_if_unused(mgmt: ManagementClient, vhost: str) -> None:
    left = [p for p in await mgmt.parameters(_UPSTREAM) if p["vhost"] == vhost]
    if not _named_links(left):
        await mgmt.delete_policy(vhost, FEDERATION_POLICY)


def _named_links(parameters: Iterable[Mapping[str, Any]]) -> list[str]:
    return [str(p["name"]) for p in parameters if str(p["name"]).startswith(_PREFIX)]
