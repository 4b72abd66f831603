"""``evb keys``: generate a participant's (or a root's) key pair files and show public keys.

``evb keys generate ID --dir DIR [--seal] [--hybrid] [--valid-days N] [--force]`` writes
the files described in :mod:`broker.keys` (private keys encrypted with
``EVB_KEY_PASSPHRASE`` when it is set) and prints the paths written, then one
``KID<TAB>USE<TAB>ALG<TAB>NOT_BEFORE<TAB>NOT_AFTER`` line per key — never key material.
``evb keys show ID.pub.json`` prints ``PARTICIPANT<TAB>SUITE`` and the same key lines,
or one ``CODE<TAB>POINTER<TAB>message`` line per problem (exit 1).
"""

from __future__ import annotations

import argparse
from datetime import timedelta
from pathlib import Path

from broker.cli.common import EXIT_OK, EXIT_REFUSED, Commands, Usage
from broker.clock import SystemClock, wire_time
from broker.errors import InputError
from broker.keys import (
    DEFAULT_VALIDITY,
    PublicKeySet,
    generate_keyset,
    passphrase_from_env,
    read_public,
    write_keyset,
)

__all__ = ["register"]


def _key_lines(public: PublicKeySet) -> list[str]:
    return [
        "\t".join(
            (
                key.kid,
                key.use,
                key.alg,
                wire_time(validity.not_before),
                wire_time(validity.not_after),
            )
        )
        for key, validity in public.keys
    ]


def _valid_days(text: str) -> int:
    try:
        days = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number of days: {text!r}") from None
    if not 1 <= days <= 36500:
        raise argparse.ArgumentTypeError("the validity must be 1 to 36500 days")
    return days


def _cmd_generate(args: argparse.Namespace) -> int:
    directory = Path(args.dir)
    if directory.exists() and not directory.is_dir():
        raise Usage(f"{directory} is not a directory")
    keyset = generate_keyset(
        args.participant,
        seal=args.seal,
        hybrid=args.hybrid,
        now=SystemClock().now(),
        valid_for=timedelta(days=args.valid_days),
    )
    written = write_keyset(keyset, directory, passphrase_from_env(), overwrite=args.force)
    for path in written:
        print(path)
    for line in _key_lines(keyset.public()):
        print(line)
    return EXIT_OK


def _cmd_show(args: argparse.Namespace) -> int:
    try:
        public = read_public(Path(args.file))
    except InputError as exc:
        for problem in exc.problems:
            message = " ".join(problem.message.split())
            print(f"{problem.code}\t{problem.pointer}\t{message}")
        return EXIT_REFUSED
    print(f"{public.participant}\t{public.suite}")
    for line in _key_lines(public):
        print(line)
    return EXIT_OK


def register(commands: Commands) -> None:
    """Add ``evb keys`` to ``evb``'s sub-command parsers."""
    keys = commands.add_parser("keys", help="generate key pairs, show public key files")
    keys_cmds = keys.add_subparsers(dest="keys_command", required=True, metavar="ACTION")

    generate = keys_cmds.add_parser(
        "generate",
        help="write ID.sig.pem, ID.enc.pem (…) and ID.pub.json; passphrase: EVB_KEY_PASSPHRASE",
    )
    generate.add_argument(
        "participant", metavar="ID", help="participant id (e.g. AT.247) or root name (root1)"
    )
    generate.add_argument("--dir", required=True, metavar="DIR", help="the key directory")
    generate.add_argument(
        "--seal", action="store_true", help="also a separate document-seal key (ID.seal.pem)"
    )
    generate.add_argument(
        "--hybrid",
        action="store_true",
        help="post-quantum hybrid suite: adds ML-DSA-65 and ML-KEM-768+X25519",
    )
    generate.add_argument(
        "--valid-days",
        type=_valid_days,
        default=DEFAULT_VALIDITY.days,
        metavar="N",
        help=f"validity in days (default {DEFAULT_VALIDITY.days})",
    )
    generate.add_argument(
        "--force", action="store_true", help="replace the participant's existing keys"
    )
    generate.set_defaults(func=_cmd_generate)

    show = keys_cmds.add_parser("show", help="print the key ids, uses, algorithms and validity")
    show.add_argument("file", metavar="ID.pub.json")
    show.set_defaults(func=_cmd_show)
