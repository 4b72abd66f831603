"""A private network of nodes on one machine, for the demo, tests and benchmarks.

:func:`build_network` generates every key pair at run time (never committed), builds
and signs a trust directory from the public demo description ``keys/network.json``
(or any subset of its participants), puts each country's site in its own vhost on
one RabbitMQ server (``<prefix>-at``, ``<prefix>-de`` …) and writes one node
configuration per participant. Production networks are built the same way, with
the key ceremony of ``keys/README.md`` and ``evb directory``/``evb site``/``evb link``.
"""

from __future__ import annotations

import json
import re
import secrets
import urllib.parse
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, cast

from broker import keys
from broker.config import DEFAULT_AMQP_URL
from broker.errors import ConfigError
from broker.files import atomic_write
from broker.forms.directory import Role
from broker.store.atrest import generate_storage_key
from broker.transport import (
    ManagementClient,
    create_link,
    delete_link,
    ensure_link_user,
    link_name,
    node_username,
    provision_site,
)
from broker.trust.directory import (
    add_participant,
    dump_directory,
    init_directory,
    sign_directory,
    trusted_directory,
)
from broker.trust.policy import parse_policy

__all__ = ["LocalNetwork", "build_network", "network_description", "provision", "teardown"]


def _keys_dir() -> Path:
    # keys/ is public material of the source tree (the demo network), not packaged.
    path = Path(__file__).resolve().parent.parent / "keys"
    if not (path / "network.json").is_file():
        raise ConfigError("keys/network.json is not here: run from a source checkout")
    return path


def network_description() -> dict[str, Any]:
    """Return ``keys/network.json``: the demo network's participants and routing."""
    path = _keys_dir() / "network.json"
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return data


@dataclass(frozen=True)
class LocalNetwork:
    """What :func:`build_network` wrote.

    Attributes:
        state: the state directory (keys, directory, stores, configurations).
        directory: the signed trust directory file.
        participants: participant id → its directory entry (role, routing …).
        configs: participant id → its node configuration file.
        sites: site → vhost.
        amqp_url: the server's base AMQP URL (no vhost).
    """

    state: Path
    directory: Path
    participants: Mapping[str, Mapping[str, Any]]
    configs: Mapping[str, Path]
    sites: Mapping[str, str]
    amqp_url: str
    passwords: Mapping[str, str]

    def vhost_url(self, vhost: str, user: str | None = None, password: str = "") -> str:
        """Return the AMQP URL of ``vhost`` on this server (as ``user`` if given)."""
        parts = urllib.parse.urlsplit(self.amqp_url)
        netloc = parts.netloc
        if user is not None:
            host = netloc.rsplit("@", 1)[-1]
            quoted = urllib.parse.quote(user, safe="") + ":" + urllib.parse.quote(password, safe="")
            netloc = f"{quoted}@{host}"
        return urllib.parse.urlunsplit(
            (parts.scheme, netloc, "/" + urllib.parse.quote(vhost, safe=""), "", "")
        )

    def site_participants(self, site: str) -> list[str]:
        """Return the participants whose node lives in ``site``."""
        return sorted(p for p, e in self.participants.items() if e["routing"]["site"] == site)


def build_network(
    state: Path,
    participants: Sequence[str],
    *,
    now: datetime,
    vhost_prefix: str = "evb",
    amqp_url: str = DEFAULT_AMQP_URL,
    store: str = "sqlite",
    pg_dsn: str | None = None,
    settings: Mapping[str, Mapping[str, Any]] | None = None,
) -> LocalNetwork:
    """Generate keys, a signed directory and node configurations for ``participants``.

    Args:
        state: where to write (created; keep it out of version control).
        participants: ids from ``keys/network.json``.
        now: the issue time of keys and directory.
        vhost_prefix: sites become vhosts ``<prefix>-<country>``.
        amqp_url: the RabbitMQ server (its vhost part is replaced per site).
        store: ``sqlite`` (one file per node) or ``postgresql`` (one schema per node
            in ``pg_dsn``).
        pg_dsn: the PostgreSQL database for ``store="postgresql"``.
        settings: extra TOML tables per participant (e.g. ``{"AT.247": {"retry":
            {"profile": "PT1S"}}}``), merged over the defaults.

    Raises:
        ConfigError: an unknown participant, or PostgreSQL without a DSN.
    """
    description = network_description()
    known = {entry["id"]: entry for entry in description["participants"]}
    unknown = [p for p in participants if p not in known]
    if unknown:
        raise ConfigError(f"{unknown[0]} is not in keys/network.json")
    if store == "postgresql" and not pg_dsn:
        raise ConfigError("a PostgreSQL network needs pg_dsn")
    state.mkdir(parents=True, exist_ok=True)
    key_dir = state / "keys"

    root_names = description["roots"][: description["threshold"]]
    roots = [keys.generate_keyset(name, now=now) for name in root_names]
    policy_path = _keys_dir() / description["policy"]
    policy = parse_policy(policy_path.read_bytes())
    document = init_directory(
        [root.sig.public() for root in roots],
        len(roots),
        timedelta(days=30),
        now,
        policy=policy,
    )
    entries: dict[str, dict[str, Any]] = {}
    sites: dict[str, str] = {}
    for participant in participants:
        entry = dict(known[participant])
        keyset = keys.generate_keyset(
            participant, seal=bool(entry["seal"]), hybrid=entry["suite"] == "hybrid", now=now
        )
        keys.write_keyset(keyset, key_dir, None, overwrite=True)
        site = entry["routing"]["site"]
        vhost = f"{vhost_prefix}-{site.lower()}"
        routing = {"site": site, "vhost": vhost, "exchange": f"evb.{participant}"}
        entry["routing"] = routing
        sites[site] = vhost
        document = add_participant(
            document,
            keyset.public(),
            cast(Role, entry["role"]),
            entry["country"],
            entry["name"],
            routing,
            now=now,
        )
        entries[participant] = entry
    for root in roots:
        document = sign_directory(document, root.sig)
    directory_path = state / "directory.json"
    atomic_write(directory_path, dump_directory(document))

    base = LocalNetwork(
        state=state,
        directory=directory_path,
        participants=entries,
        configs={},
        sites=sites,
        amqp_url=amqp_url,
        passwords={p: secrets.token_urlsafe(18) for p in entries},
    )
    configs: dict[str, Path] = {}
    for participant, entry in entries.items():
        slug = participant.lower().replace(".", "-")
        if store == "postgresql":
            assert pg_dsn is not None  # noqa: S101 - checked above
            separator = "&" if "?" in pg_dsn else "?"
            # One schema per node, named after the network's vhost prefix: two
            # networks in one database (e.g. one per test) never share a store.
            prefix = re.sub(r"[^a-z0-9]+", "_", vhost_prefix.lower())
            store_url = f"{pg_dsn}{separator}schema={prefix}_{slug.replace('-', '_')}"
        else:
            store_url = f"sqlite:///{state / (slug + '.db')}"
        key_file = state / f"{slug}.storage.key"
        if not key_file.exists():
            generate_storage_key(key_file)
        vhost = entry["routing"]["vhost"]
        user = node_username(vhost, participant)
        tables: dict[str, dict[str, Any]] = {
            "amqp": {"url": base.vhost_url(vhost, user, base.passwords[participant])},
        }
        for table, values in (settings or {}).get(participant, {}).items():
            tables.setdefault(table, {}).update(values)
        config = state / f"{slug}.toml"
        atomic_write(
            config,
            _toml(
                {
                    "participant": participant,
                    "keys": str(key_dir),
                    "directory": str(directory_path),
                    "store": store_url,
                    "storage_key_file": str(key_file),
                },
                tables,
            ),
            0o600,
        )
        configs[participant] = config
    return replace(base, configs=configs)


async def provision(network: LocalNetwork, mgmt: ManagementClient) -> None:
    """Create the network's sites (vhosts, topology, node users) and link them all.

    Every pair of sites gets a dynamic shovel each way, dialling the other site as a
    link user that may only publish to its ``evb.arrive``.
    """
    directory = trusted_directory(network.directory.read_bytes())
    for site in sorted(network.sites):
        await provision_site(
            mgmt,
            directory,
            site,
            amqp_url=network.amqp_url,
            node_passwords={p: network.passwords[p] for p in network.site_participants(site)},
        )
    for source in sorted(network.sites):
        for target in sorted(network.sites):
            if source == target:
                continue
            password = secrets.token_urlsafe(18)
            user = await ensure_link_user(mgmt, network.sites[target], source, password)
            await create_link(
                mgmt,
                directory,
                source,
                target,
                network.vhost_url(network.sites[target], user, password),
            )


async def teardown(network: LocalNetwork, mgmt: ManagementClient) -> None:
    """Remove what :func:`provision` created: links, vhosts (with their queues), users."""
    for source in sorted(network.sites):
        for target in sorted(network.sites):
            if source != target:
                # The vhosts go below, and with them the link queues.
                await delete_link(
                    mgmt, link_name(source, target), vhosts=list(network.sites.values())
                )
                await mgmt.delete_user(f"{network.sites[target]}.link-{source}")
    for participant, entry in network.participants.items():
        await mgmt.delete_user(node_username(entry["routing"]["vhost"], participant))
    for vhost in network.sites.values():
        await mgmt.delete_vhost(vhost)


def _value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        return json.dumps(value)  # a JSON string is a valid TOML basic string
    if isinstance(value, Mapping):
        return "{ " + ", ".join(f"{json.dumps(k)} = {_value(v)}" for k, v in value.items()) + " }"
    raise ConfigError(f"cannot write {type(value).__name__} to TOML")


def _toml(top: Mapping[str, Any], tables: Mapping[str, Mapping[str, Any]]) -> bytes:
    lines = [f"{key} = {_value(value)}" for key, value in top.items()]
    for table, values in tables.items():
        lines.append(f"\n[{table}]")
        lines.extend(f"{json.dumps(k)} = {_value(v)}" for k, v in values.items())
    return ("\n".join(lines) + "\n").encode("utf-8")
