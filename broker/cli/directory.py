"""``evb directory``: build, sign and verify the trust directory.

Thin: reads files (``ID.pub.json`` through :mod:`broker.keys`), calls
:mod:`broker.trust`, writes the result atomically. Every command that changes the
content (``init``, ``add``, ``revoke``, ``roots``, ``policy``) writes a new version
without signatures; ``sign`` adds one root signature; ``verify`` checks a version
(against an older trusted one with ``--previous``).

Output: a one-line summary on success (exit 0). A refused document or a trust
failure prints ``CODE<TAB>message`` — for a document that breaks its schema one
``CODE<TAB>POINTER<TAB>message`` line per problem — and exits 1. Unreadable files and
bad arguments exit 2.
"""

from __future__ import annotations

import argparse
import re
from datetime import timedelta
from pathlib import Path

from broker import crypto, keys, trust
from broker.cli.common import EXIT_OK, EXIT_REFUSED, Commands, Usage, read_input
from broker.clock import SystemClock
from broker.errors import InputError, PolicyError, SemanticError, TrustError
from broker.files import atomic_write
from broker.forms.directory import ROLES, DirectoryDocument
from broker.schema import catalogue
from broker.trust.policy import MAX_POLICY_BYTES

__all__ = ["register"]

_DURATION = re.compile(
    r"P(?:(?P<weeks>[0-9]{1,5})W|(?:(?P<days>[0-9]{1,5})D)?"
    r"(?:T(?:(?P<hours>[0-9]{1,6})H)?(?:(?P<minutes>[0-9]{1,7})M)?(?:(?P<seconds>[0-9]{1,9})S)?)?)"
)
_DEFAULT_EXPIRY = "P365D"


def _duration(text: str) -> timedelta:
    """Parse an ISO 8601 duration of weeks, days and time (P365D, P52W, PT12H)."""
    match = _DURATION.fullmatch(text)
    if not match or text in ("P", "PT") or text.endswith("T"):
        raise Usage(f"{text!r} is not a duration such as P365D, P52W or PT12H")
    parts = {name: int(value) for name, value in match.groupdict().items() if value is not None}
    delta = timedelta(**parts)
    if delta <= timedelta(0):
        raise Usage("the validity must be positive")
    return delta


def _write(path: str, document: DirectoryDocument) -> None:
    try:
        atomic_write(Path(path), trust.dump_directory(document))
    except OSError as exc:
        raise Usage(f"cannot write {path}: {exc.strerror or exc}") from exc


def _load(path: str) -> DirectoryDocument:
    return trust.parse_directory(read_input(path, trust.DEFAULT_MAX_BYTES))


def _root_keys(paths: list[str]) -> list[crypto.PublicKey]:
    roots = []
    for path in paths:
        listing = keys.read_public(Path(path))
        found = [key for key, _ in listing.by_use("sig") if key.alg == crypto.SIG_ED25519]
        if len(found) != 1:
            raise Usage(f"{path} does not hold exactly one Ed25519 sig key")
        roots.append(found[0])
    return roots


def _refuse(exc: InputError | TrustError | PolicyError, prefix: str = "") -> int:
    if isinstance(exc, InputError) and any(p.pointer for p in exc.problems):
        for problem in exc.problems:
            message = " ".join(problem.message.split())
            print(f"{problem.code}\t{problem.pointer}\t{prefix}{message}")
    else:
        print(f"{exc.code}\t{prefix}{' '.join(exc.message.split())}")
    return EXIT_REFUSED


def _wrote(path: str, document: DirectoryDocument, what: str) -> None:
    print(f"{path}: version {document.version}, unsigned ({what})")


# -- commands ----------------------------------------------------------------------------


def _cmd_init(args: argparse.Namespace) -> int:
    expires_in = _duration(args.expires)
    roots = _root_keys(args.root)
    try:
        document = trust.init_directory(roots, args.threshold, expires_in, SystemClock().now())
    except InputError as exc:
        return _refuse(exc)
    _write(args.output, document)
    _wrote(args.output, document, f"{len(roots)} root(s), threshold {args.threshold}")
    return EXIT_OK


def _routing(args: argparse.Namespace, participant: str) -> dict[str, str] | None:
    given = {"site": args.site, "vhost": args.vhost, "exchange": args.exchange}
    if all(value is None for value in given.values()):
        return None
    defaults = trust.default_routing(participant, given["site"] or args.country)
    return {name: value if value is not None else defaults[name] for name, value in given.items()}


def _cmd_add(args: argparse.Namespace) -> int:
    listing = keys.read_public(Path(args.pub))
    try:
        document = trust.add_participant(
            _load(args.file),
            listing,
            args.role,
            args.country,
            args.name,
            _routing(args, listing.participant),
            now=SystemClock().now(),
        )
    except InputError as exc:
        return _refuse(exc)
    _write(args.file, document)
    _wrote(args.file, document, f"{listing.participant} as {args.role}")
    return EXIT_OK


def _cmd_revoke(args: argparse.Namespace) -> int:
    try:
        document = trust.revoke_key(
            _load(args.file), args.participant, args.kid, args.reason, SystemClock().now()
        )
    except (InputError, TrustError) as exc:
        return _refuse(exc)
    _write(args.file, document)
    _wrote(args.file, document, f"{args.kid} revoked: {args.reason}")
    return EXIT_OK


def _cmd_roots(args: argparse.Namespace) -> int:
    roots = _root_keys(args.root)
    try:
        document = trust.set_roots(_load(args.file), roots, args.threshold, now=SystemClock().now())
    except InputError as exc:
        return _refuse(exc)
    _write(args.file, document)
    _wrote(
        args.file,
        document,
        f"{len(roots)} root(s), threshold {args.threshold}; "
        "sign with a threshold of the old roots and of the new ones",
    )
    return EXIT_OK


def _cmd_policy(args: argparse.Namespace) -> int:
    try:
        policy = trust.parse_policy(read_input(args.policy, MAX_POLICY_BYTES))
        unknown = trust.unknown_types(policy, (t.name for t in catalogue().types()))
        if unknown:
            raise SemanticError(f"the policy names types the catalogue lacks: {', '.join(unknown)}")
        document = trust.set_policy(_load(args.file), policy, now=SystemClock().now())
    except InputError as exc:
        return _refuse(exc)
    _write(args.file, document)
    _wrote(args.file, document, f"policy of {len(policy.rules)} rule(s)")
    return EXIT_OK


def _cmd_sign(args: argparse.Namespace) -> int:
    key = keys.load_signing_key(Path(args.key), keys.passphrase_from_env())
    try:
        document = trust.sign_directory(_load(args.file), key)
    except InputError as exc:
        return _refuse(exc)
    _write(args.file, document)
    root = any(r.kid == key.kid for r in document.roots)
    note = "" if root else " (not a root of this version: counts only for the previous one)"
    print(f"{args.file}: version {document.version}, signed by {key.kid}{note}")
    return EXIT_OK


def _cmd_verify(args: argparse.Namespace) -> int:
    previous = None
    if args.previous is not None:
        try:
            previous = trust.trusted_directory(read_input(args.previous, trust.DEFAULT_MAX_BYTES))
        except (InputError, TrustError) as exc:
            return _refuse(exc, f"{args.previous}: ")
    try:
        directory = trust.verify_directory(
            read_input(args.file, trust.DEFAULT_MAX_BYTES),
            now=SystemClock().now(),
            previous=previous,
        )
    except (InputError, TrustError) as exc:
        return _refuse(exc)
    print(f"valid: version {directory.version}, {len(directory.participants)} participants")
    return EXIT_OK


def register(commands: Commands) -> None:
    """Add ``evb directory`` and its actions to ``evb``'s sub-command parsers."""
    directory = commands.add_parser("directory", help="build, sign and verify the trust directory")
    actions = directory.add_subparsers(dest="directory_command", required=True, metavar="ACTION")

    init = actions.add_parser("init", help="start a directory (version 1, default policy)")
    init.add_argument("--root", action="append", required=True, metavar="ROOT.pub.json")
    init.add_argument("--threshold", type=int, required=True, metavar="K")
    init.add_argument(
        "--expires",
        default=_DEFAULT_EXPIRY,
        metavar="DURATION",
        help=f"validity of each version, e.g. P365D, P52W (default {_DEFAULT_EXPIRY})",
    )
    init.add_argument("-o", "--output", required=True, metavar="FILE")
    init.set_defaults(func=_cmd_init)

    add = actions.add_parser(
        "add", help="add a participant from its ID.pub.json (or add its new keys)"
    )
    add.add_argument("file", metavar="FILE")
    add.add_argument("pub", metavar="ID.pub.json")
    add.add_argument("--role", required=True, choices=ROLES)
    add.add_argument("--country", required=True, metavar="CC")
    add.add_argument("--name", help="display name (default: the participant id)")
    add.add_argument("--site", help="AMQP site (default: the country)")
    add.add_argument("--vhost", help="AMQP vhost (default: evb-<site in lower case>)")
    add.add_argument("--exchange", help="AMQP exchange (default: evb.<participant id>)")
    add.set_defaults(func=_cmd_add)

    revoke = actions.add_parser("revoke", help="revoke a participant's key, from now on")
    revoke.add_argument("file", metavar="FILE")
    revoke.add_argument("participant", metavar="ID")
    revoke.add_argument("kid", metavar="KID")
    revoke.add_argument("--reason", required=True, choices=("compromise", "retired"))
    revoke.set_defaults(func=_cmd_revoke)

    roots = actions.add_parser("roots", help="replace the root keys and threshold (rotation)")
    roots.add_argument("file", metavar="FILE")
    roots.add_argument("--root", action="append", required=True, metavar="ROOT.pub.json")
    roots.add_argument("--threshold", type=int, required=True, metavar="K")
    roots.set_defaults(func=_cmd_roots)

    policy = actions.add_parser("policy", help="replace the authorisation policy")
    policy.add_argument("file", metavar="FILE")
    policy.add_argument("policy", metavar="POLICY.json")
    policy.set_defaults(func=_cmd_policy)

    sign = actions.add_parser("sign", help="add a root signature (passphrase: EVB_KEY_PASSPHRASE)")
    sign.add_argument("file", metavar="FILE")
    sign.add_argument("--key", required=True, metavar="ROOT.sig.pem")
    sign.set_defaults(func=_cmd_sign)

    verify = actions.add_parser(
        "verify", help="'valid: version N, M participants', or CODE<TAB>message (exit 1)"
    )
    verify.add_argument("file", metavar="FILE")
    verify.add_argument("--previous", metavar="OLD", help="the version trusted so far")
    verify.set_defaults(func=_cmd_verify)
