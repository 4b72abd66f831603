"""``evb site`` and ``evb link``: provision sites and the links between them.

Thin: parses arguments, calls :mod:`broker.transport.links`, prints the result.
The management API is reached at ``--mgmt-url`` (default ``EVB_RABBIT_MGMT_URL``, else
``http://127.0.0.1:15672``) as ``--mgmt-user`` (default ``EVB_RABBIT_MGMT_USER``, the
URL's user, else ``guest``) with the password from ``EVB_RABBIT_MGMT_PASSWORD`` (or the
URL's) — never from the command line, where other users of the machine could read it.
For the same reason a link's URI may come from an environment variable
(``--dest-uri-env NAME``) instead of ``--dest-uri``; passwords are masked in all output.

Commands::

    evb site setup SITE --directory DIR.json [--amqp-url URL] [--node-users --credentials-out F]
    evb link create FROM TO (--dest-uri URI | --dest-uri-env VAR) --directory DIR.json
                    [--kind shovel|federation] [--tls-ca F [--tls-cert F --tls-key F]] …
    evb link list [--json] [--directory DIR.json]
    evb link delete NAME [--directory DIR.json | --vhost VHOST …] [--delete-queue]

With an ``amqps://`` ``--amqp-url``, ``site setup`` reads its TLS files from
``EVB_AMQP_CA_FILE``, ``EVB_AMQP_CERT_FILE`` and ``EVB_AMQP_KEY_FILE``.

Failures print ``evb: CODE: message`` on stderr and exit 2.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import secrets
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TypeVar

import structlog

from broker import trust
from broker.cli.common import EXIT_OK, Commands, Usage, read_input
from broker.clock import SystemClock
from broker.files import atomic_write
from broker.transport import links
from broker.transport.connection import DEFAULT_AMQP_URL, AmqpSettings, redact_uri
from broker.transport.management import DEFAULT_MANAGEMENT_URL, ManagementClient
from broker.transport.topology import TopologySettings, node_username

__all__ = ["register"]

_T = TypeVar("_T")


def _directory(path: str) -> trust.TrustDirectory:
    raw = read_input(path, trust.DEFAULT_MAX_BYTES)
    return trust.verify_directory(raw, now=SystemClock().now())


def _run(args: argparse.Namespace, action: Callable[[ManagementClient], Awaitable[_T]]) -> _T:
    # stdout carries the command's answer (JSON with --json); the library's logs go to
    # stderr, warnings and worse only.
    structlog.configure(
        wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
    )

    async def main() -> _T:
        async with ManagementClient(
            args.mgmt_url, args.mgmt_user, os.environ.get("EVB_RABBIT_MGMT_PASSWORD")
        ) as mgmt:
            return await action(mgmt)

    return asyncio.run(main())


# -- evb site -----------------------------------------------------------------------------


def _cmd_site_setup(args: argparse.Namespace) -> int:
    directory = _directory(args.directory)
    if args.node_users and not args.credentials_out:
        raise Usage("--node-users needs --credentials-out FILE (the generated passwords)")
    participants = links.site_participants(directory, args.site)
    passwords = {p: secrets.token_urlsafe(24) for p in participants} if args.node_users else None
    settings = TopologySettings(delivery_limit=args.delivery_limit, max_length=args.max_length)
    if passwords:
        # Written before the users get these passwords, so that none is ever lost.
        vhost = links.site_vhost(directory, args.site)
        credentials = {
            participant: {"user": node_username(vhost, participant), "password": password}
            for participant, password in sorted(passwords.items())
        }
        try:
            atomic_write(
                Path(args.credentials_out),
                json.dumps(credentials, indent=2).encode(),
                mode=0o600,
            )
        except OSError as exc:
            raise Usage(f"cannot write {args.credentials_out}: {exc.strerror or exc}") from exc
    # amqps://: the TLS files come from EVB_AMQP_CA_FILE, EVB_AMQP_CERT_FILE, EVB_AMQP_KEY_FILE.
    tls = AmqpSettings.from_env(url=args.amqp_url) if args.amqp_url.startswith("amqps:") else None
    report = _run(
        args,
        lambda mgmt: links.provision_site(
            mgmt,
            directory,
            args.site,
            amqp_url=args.amqp_url,
            settings=settings,
            node_passwords=passwords,
            amqp_tls=tls,
        ),
    )
    if args.json:
        print(json.dumps(report.as_dict(), sort_keys=True))
    else:
        print(
            f"site {report.site}: vhost {report.vhost}, {len(report.participants)} "
            f"participant(s), {len(report.users)} node user(s)"
        )
    return EXIT_OK


# -- evb link -----------------------------------------------------------------------------


def _tls(args: argparse.Namespace) -> links.LinkTls | None:
    if args.tls_ca is None:
        if args.tls_cert or args.tls_key or args.tls_no_verify:
            raise Usage("--tls-cert, --tls-key and --tls-no-verify need --tls-ca")
        return None
    return links.LinkTls(
        ca_file=args.tls_ca,
        cert_file=args.tls_cert,
        key_file=args.tls_key,
        verify=not args.tls_no_verify,
    )


def _cmd_link_create(args: argparse.Namespace) -> int:
    if args.dest_uri_env is not None:
        uri = os.environ.get(args.dest_uri_env)
        if not uri:
            raise Usage(f"environment variable {args.dest_uri_env} is not set")
    elif args.dest_uri is not None:
        uri = args.dest_uri
    else:
        raise Usage("give --dest-uri URI or --dest-uri-env VAR")
    directory = _directory(args.directory)
    tls = _tls(args)
    link = _run(
        args,
        lambda mgmt: links.create_link(
            mgmt,
            directory,
            args.from_site,
            args.to_site,
            uri,
            args.kind,
            tls=tls,
            reconnect_delay=args.reconnect_delay,
            max_length=args.max_length,
        ),
    )
    print(
        f"{link.name}: {link.kind} {link.from_site} -> {link.to_site} in {link.vhost}, {link.uri}"
    )
    return EXIT_OK


def _cmd_link_list(args: argparse.Namespace) -> int:
    directory = _directory(args.directory) if args.directory else None
    found = _run(args, lambda mgmt: links.list_links(mgmt, directory))
    if args.json:
        print(json.dumps([link.as_dict() for link in found], sort_keys=True))
        return EXIT_OK
    for link in found:
        print(
            "\t".join(
                [
                    link.name,
                    link.kind,
                    link.from_site or "?",
                    link.to_site or "?",
                    link.state,
                    link.vhost,
                    link.uri,
                ]
            )
        )
    return EXIT_OK


def _cmd_link_delete(args: argparse.Namespace) -> int:
    directory = _directory(args.directory) if args.directory else None
    deleted = _run(
        args,
        lambda mgmt: links.delete_link(
            mgmt,
            args.name,
            directory=directory,
            vhosts=args.vhost,
            delete_queue=args.delete_queue,
        ),
    )
    for link in deleted:
        print(f"deleted {link.name} ({link.kind} in {link.vhost})")
    return EXIT_OK


# -- registration -------------------------------------------------------------------------


def _management_options(parser: argparse.ArgumentParser) -> None:
    default = os.environ.get("EVB_RABBIT_MGMT_URL", DEFAULT_MANAGEMENT_URL)
    shown = redact_uri(default).replace("%", "%%")
    parser.add_argument(
        "--mgmt-url",
        default=default,
        metavar="URL",
        help=f"RabbitMQ management API (default: EVB_RABBIT_MGMT_URL or {shown})",
    )
    parser.add_argument(
        "--mgmt-user",
        default=os.environ.get("EVB_RABBIT_MGMT_USER"),
        metavar="USER",
        help="management user (default: EVB_RABBIT_MGMT_USER, the URL's, or guest); "
        "the password comes from EVB_RABBIT_MGMT_PASSWORD",
    )


def register(commands: Commands) -> None:
    """Add ``evb site`` and ``evb link`` to ``evb``'s sub-command parsers."""
    site = commands.add_parser("site", help="provision a site (a RabbitMQ vhost) and its nodes")
    site_actions = site.add_subparsers(dest="site_command", required=True, metavar="ACTION")
    setup = site_actions.add_parser(
        "setup", help="create the vhost, the site and node topology, and node users"
    )
    setup.add_argument("site", metavar="SITE")
    setup.add_argument("--directory", required=True, metavar="DIR.json")
    setup.add_argument(
        "--amqp-url",
        default=os.environ.get("EVB_AMQP_URL", DEFAULT_AMQP_URL),
        metavar="URL",
        help="an administrator's AMQP URL of the site's server (its vhost is replaced; "
        "default: EVB_AMQP_URL)",
    )
    setup.add_argument("--delivery-limit", type=int, default=TopologySettings.delivery_limit)
    setup.add_argument("--max-length", type=int, default=TopologySettings.max_length)
    setup.add_argument(
        "--node-users",
        action="store_true",
        help="create a restricted AMQP user per node, with a generated password",
    )
    setup.add_argument(
        "--credentials-out",
        metavar="FILE",
        help="where the generated node credentials go (JSON, mode 0600)",
    )
    setup.add_argument("--json", action="store_true")
    _management_options(setup)
    setup.set_defaults(func=_cmd_site_setup)

    link = commands.add_parser("link", help="create, list and delete links between sites")
    actions = link.add_subparsers(dest="link_command", required=True, metavar="ACTION")

    create = actions.add_parser("create", help="link FROM to TO (a shovel, or federation)")
    create.add_argument("from_site", metavar="FROM")
    create.add_argument("to_site", metavar="TO")
    uri = create.add_mutually_exclusive_group()
    uri.add_argument(
        "--dest-uri",
        metavar="URI",
        help="the AMQP URI the link dials: TO's for a shovel, FROM's for federation",
    )
    uri.add_argument("--dest-uri-env", metavar="VAR", help="read that URI from this variable")
    create.add_argument("--kind", choices=("shovel", "federation"), default="shovel")
    create.add_argument("--directory", required=True, metavar="DIR.json")
    create.add_argument("--reconnect-delay", type=int, default=5, metavar="SECONDS")
    create.add_argument(
        "--max-length", type=int, metavar="N", help="limit of the shovel's queue (default none)"
    )
    create.add_argument("--tls-ca", metavar="PEM", help="CA file on the broker (amqps:// URIs)")
    create.add_argument("--tls-cert", metavar="PEM", help="client certificate on the broker")
    create.add_argument("--tls-key", metavar="PEM", help="its key on the broker")
    create.add_argument("--tls-no-verify", action="store_true", help="do not verify the peer")
    _management_options(create)
    create.set_defaults(func=_cmd_link_create)

    listing = actions.add_parser("list", help="NAME KIND FROM TO STATE VHOST URI, one a line")
    listing.add_argument("--json", action="store_true")
    listing.add_argument(
        "--directory", metavar="DIR.json", help="only its sites' links, sites named exactly"
    )
    _management_options(listing)
    listing.set_defaults(func=_cmd_link_list)

    delete = actions.add_parser("delete", help="delete a link (its queue stays unless asked)")
    delete.add_argument("name", metavar="NAME")
    delete.add_argument(
        "--delete-queue", action="store_true", help="also delete the shovel's queue if empty"
    )
    delete.add_argument("--directory", metavar="DIR.json", help="only links of its sites")
    delete.add_argument(
        "--vhost", action="append", metavar="VHOST", help="only links in this vhost (repeatable)"
    )
    _management_options(delete)
    delete.set_defaults(func=_cmd_link_delete)
