"""``evb rules``: the legal deadline rules the node enforces, as a table or as JSON."""

from __future__ import annotations

import argparse
import json
from collections.abc import Mapping, Sequence
from typing import Any, Final

from broker.cli.common import EXIT_OK, Commands
from broker.lifecycle import rules, rules_table

__all__ = ["register"]

_HEADER: Final = ("ID", "INSTRUMENT", "STEP", "PRIORITY", "STARTS_ON", "DURATION", "ARTICLE")
#: The widest article the terminal table shows; --json always has the whole text.
_ARTICLE_WIDTH: Final = 48


def _sort_key(row: Mapping[str, Any]) -> tuple[str, str, str]:
    return (row["instrument"], row["step"], row["id"])


def _truncate(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 3] + "..."


def _cells(row: Mapping[str, Any]) -> list[str]:
    return [
        row["id"],
        row["instrument"],
        row["step"],
        row["priority"],
        ",".join(row["starts_on"]),
        # No duration: no time limit in law; one applies only if the case states it.
        row["duration"] or "-",
        _truncate(row["article"], _ARTICLE_WIDTH),
    ]


def _print_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:
        line = "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True))
        print(line.rstrip())


def _cmd_rules_list(args: argparse.Namespace) -> int:
    # Load the checked rules first: a malformed table is a ConfigError (exit 2), never
    # a listing of rules the node would refuse to run.
    rules()
    rows = sorted(rules_table(), key=_sort_key)
    if args.json:
        print(json.dumps(rows, indent=2, ensure_ascii=False))
        return EXIT_OK
    _print_table(_HEADER, [_cells(row) for row in rows])
    return EXIT_OK


def register(commands: Commands) -> None:
    """Add ``evb rules`` to ``evb``'s sub-command parsers."""
    parser = commands.add_parser("rules", help="the legal deadline rules")
    actions = parser.add_subparsers(dest="rules_command", required=True, metavar="ACTION")
    listing = actions.add_parser(
        "list", help="one line per rule, by instrument and step (articles shortened)"
    )
    listing.add_argument(
        "--json", action="store_true", help="print every rule with all its members as JSON"
    )
    listing.set_defaults(func=_cmd_rules_list)
