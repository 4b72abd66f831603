"""``evb schema``, ``evb validate`` and ``evb form``: the form catalogue on the command line."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from typing import TextIO

from broker.cli.common import EXIT_OK, EXIT_REFUSED, Commands, Usage, read_input
from broker.errors import Problem
from broker.schema import DEFAULT_MAX_BYTES, Catalogue, Format, catalogue

__all__ = ["register"]


def _max_bytes(value: str | None) -> int:
    raw = value if value is not None else os.environ.get("EVB_MAX_FORM_BYTES")
    if raw is None:
        return DEFAULT_MAX_BYTES
    try:
        limit = int(raw)
    except ValueError:
        raise Usage(f"the size limit must be a whole number of bytes, not {raw!r}") from None
    if limit <= 0:
        raise Usage("the size limit must be positive")
    return limit


def _detect_format(name: str, raw: bytes, explicit: str | None) -> Format:
    if explicit == "xml" or (explicit is None and name.lower().endswith(".xml")):
        return "xml"
    if explicit == "json" or name.lower().endswith(".json"):
        return "json"
    return "xml" if raw.lstrip()[:1] == b"<" else "json"


def _print_problems(problems: Sequence[Problem], as_json: bool, out: TextIO) -> None:
    ordered = sorted(problems)
    if as_json:
        json.dump([p.as_dict() for p in ordered], out, indent=2)
        out.write("\n")
        return
    for problem in ordered:
        message = " ".join(problem.message.split())
        out.write(f"{problem.code}\t{problem.pointer}\t{message}\n")


def _cmd_schema_list(args: argparse.Namespace) -> int:
    types = catalogue().types()
    if args.json:
        rows = [
            {
                "type": t.name,
                "schema_id": t.schema_id,
                "legal_basis": t.legal_basis,
                "title": t.title,
                "instrument": t.instrument,
                "verified": t.verified,
                "xml": t.xml,
            }
            for t in types
        ]
        print(json.dumps(rows, indent=2, ensure_ascii=False))
        return EXIT_OK
    for t in types:
        print(f"{t.name}\t{t.schema_id}\t{t.legal_basis}")
    return EXIT_OK


def _cmd_schema_show(args: argparse.Namespace) -> int:
    print(json.dumps(catalogue().schema(args.type), indent=2, ensure_ascii=False))
    return EXIT_OK


def _cmd_validate(args: argparse.Namespace) -> int:
    limit = _max_bytes(args.max_bytes)
    cat = catalogue() if limit == DEFAULT_MAX_BYTES else Catalogue(max_bytes=limit)
    cat.get(args.type)  # an unknown type is a usage error, before reading anything
    raw = read_input(args.file, limit)
    fmt = _detect_format(args.file, raw, args.format)
    problems = cat.check(args.type, raw, fmt)
    if not problems:
        print("[]" if args.json else "valid")
        return EXIT_OK
    _print_problems(problems, args.json, sys.stdout)
    return EXIT_REFUSED


def _cmd_form_template(args: argparse.Namespace) -> int:
    fmt: Format = "xml" if args.xml else "json"
    form_type = catalogue().get(args.type)
    if fmt == "xml" and not form_type.xml:
        raise Usage(f"{args.type} has no XML form")
    sys.stdout.write(catalogue().template(args.type, fmt).decode("utf-8"))
    return EXIT_OK


def register(commands: Commands) -> None:
    """Add the catalogue commands to ``evb``'s sub-command parsers."""
    schema = commands.add_parser("schema", help="the form catalogue")
    schema_cmds = schema.add_subparsers(dest="schema_command", required=True, metavar="ACTION")
    listing = schema_cmds.add_parser("list", help="one line per type: TYPE, SCHEMA_ID, LEGAL_BASIS")
    listing.add_argument("--json", action="store_true", help="print a JSON list with details")
    listing.set_defaults(func=_cmd_schema_list)
    show = schema_cmds.add_parser("show", help="print the JSON Schema of a type")
    show.add_argument("type", metavar="TYPE")
    show.set_defaults(func=_cmd_schema_show)

    validate = commands.add_parser(
        "validate",
        help="validate a form: 'valid' (exit 0) or one CODE<TAB>POINTER<TAB>message per problem",
    )
    validate.add_argument("--type", required=True, metavar="TYPE", help="the catalogue type")
    validate.add_argument("--json", action="store_true", help="print problems as a JSON list")
    validate.add_argument(
        "--format", choices=("json", "xml"), help="input format (default: by extension)"
    )
    validate.add_argument(
        "--max-bytes",
        metavar="N",
        help=f"size limit (default: EVB_MAX_FORM_BYTES or {DEFAULT_MAX_BYTES})",
    )
    validate.add_argument("file", metavar="FILE", help="the form; '-' reads standard input")
    validate.set_defaults(func=_cmd_validate)

    form = commands.add_parser("form", help="work with forms")
    form_cmds = form.add_subparsers(dest="form_command", required=True, metavar="ACTION")
    tmpl = form_cmds.add_parser("template", help="print a filled-in example that validates")
    tmpl.add_argument("type", metavar="TYPE")
    tmpl.add_argument("--xml", action="store_true", help="print the XML form (EIO annexes)")
    tmpl.set_defaults(func=_cmd_form_template)
