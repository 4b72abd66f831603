"""``evb seal``, ``evb open`` and ``evb verify``: envelopes on the command line.

A refusal prints one ``CODE<TAB>POINTER<TAB>message`` line per problem (the pointer is
empty for problems that are not about one field) and exits 1.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from broker import keys
from broker.cli.common import EXIT_OK, Commands, Usage, print_refusal, read_input
from broker.clock import SystemClock
from broker.envelope import (
    DEFAULT_MAX_ENVELOPE_BYTES,
    open_envelope,
    seal_envelope,
    verify_envelope,
)
from broker.errors import BrokerError
from broker.files import atomic_write
from broker.schema import DEFAULT_MAX_BYTES, load_json
from broker.trust.directory import TrustDirectory, verify_directory

__all__ = ["register"]


def _directory(path: str) -> TrustDirectory:
    # The directory must verify under its own roots and be unexpired now. A node
    # additionally pins the previous version it trusted (rotation); the CLI takes
    # the file it is given as the root of trust, like `evb directory verify`.
    return verify_directory(read_input(path, 16 * 1024 * 1024), now=SystemClock().now())


def _cmd_seal(args: argparse.Namespace) -> int:
    raw = read_input(args.form, DEFAULT_MAX_BYTES)
    try:
        keyset = keys.load_keyset(Path(args.keys), args.sender, keys.passphrase_from_env())
        directory = _directory(args.directory)
        form, _ = load_json(raw)
        envelope = seal_envelope(
            form_type=args.type,
            form=form,
            sender=args.sender,
            recipient=args.recipient,
            directory=directory,
            signer=keyset.sig,
            signer_pq=keyset.sig_pq,
            sealer=keyset.seal,
            now=SystemClock().now(),
            case=args.case,
            in_reply_to=args.in_reply_to,
            priority=args.priority,
        )
    except BrokerError as exc:
        return print_refusal(exc)
    data = envelope.to_bytes()
    if args.output == "-":
        sys.stdout.write(data.decode("utf-8") + "\n")
    else:
        atomic_write(Path(args.output), data)
        print(envelope.id)
    return EXIT_OK


def _cmd_verify(args: argparse.Namespace) -> int:
    raw = read_input(args.envelope, DEFAULT_MAX_ENVELOPE_BYTES)
    try:
        envelope = verify_envelope(raw, _directory(args.directory))
    except BrokerError as exc:
        return print_refusal(exc)
    print(f"valid\t{envelope.id}\t{envelope.type}\t{envelope.from_} -> {envelope.to}")
    return EXIT_OK


def _cmd_open(args: argparse.Namespace) -> int:
    key_dir = Path(args.keys)
    participant = args.as_ or _only_participant(key_dir)
    raw = read_input(args.envelope, DEFAULT_MAX_ENVELOPE_BYTES)
    try:
        keyset = keys.load_keyset(key_dir, participant, keys.passphrase_from_env())
        opened = open_envelope(
            raw,
            _directory(args.directory),
            recipient=participant,
            decryption_keys=[keyset.enc],
        )
    except BrokerError as exc:
        return print_refusal(exc)
    print(
        f"# {opened.envelope.type} {opened.envelope.id} from {opened.envelope.from_}, "
        f"sealed by {opened.sealed_by}",
        file=sys.stderr,
    )
    print(json.dumps(opened.form.to_json_obj(), indent=2, ensure_ascii=False))
    return EXIT_OK


def _only_participant(key_dir: Path) -> str:
    found = sorted(p.name.removesuffix(".enc.pem") for p in key_dir.glob("*.enc.pem"))
    if len(found) != 1:
        raise Usage(f"{key_dir} holds keys of {len(found)} participants: name one with --as")
    return found[0]


def register(commands: Commands) -> None:
    """Add the envelope commands to ``evb``'s sub-command parsers."""
    seal = commands.add_parser("seal", help="seal a form into a signed, encrypted envelope")
    seal.add_argument("--type", required=True, metavar="TYPE", help="the catalogue type")
    seal.add_argument("--from", dest="sender", required=True, metavar="ID", help="sender")
    seal.add_argument("--to", dest="recipient", required=True, metavar="ID", help="recipient")
    seal.add_argument("--keys", required=True, metavar="DIR", help="the sender's key directory")
    seal.add_argument("--directory", required=True, metavar="FILE", help="the trust directory")
    seal.add_argument("--case", metavar="UUID", help="the case (new if omitted)")
    seal.add_argument("--in-reply-to", metavar="UUID", help="the message answered")
    seal.add_argument("--priority", choices=("normal", "emergency"), default="normal")
    seal.add_argument("-o", "--output", required=True, metavar="ENV.json", help="'-': stdout")
    seal.add_argument("form", metavar="FORM.json")
    seal.set_defaults(func=_cmd_seal)

    opener = commands.add_parser("open", help="verify and decrypt an envelope; print the form")
    opener.add_argument("envelope", metavar="ENV.json")
    opener.add_argument("--keys", required=True, metavar="DIR", help="the recipient's keys")
    opener.add_argument("--directory", required=True, metavar="FILE", help="the trust directory")
    opener.add_argument("--as", dest="as_", metavar="ID", help="the recipient (if DIR has several)")
    opener.set_defaults(func=_cmd_open)

    verify = commands.add_parser(
        "verify", help="check an envelope's signature, keys and policy without decrypting"
    )
    verify.add_argument("envelope", metavar="ENV.json")
    verify.add_argument("--directory", required=True, metavar="FILE", help="the trust directory")
    verify.set_defaults(func=_cmd_verify)
