"""The ``evb`` command line: parse arguments, call the library, print the result.

No business logic lives here. Every failure ends as a one-line message with a
stable code and a non-zero exit status, never a traceback:

* ``0`` success (``valid``);
* ``1`` the document (or message) was refused: one ``CODE<TAB>POINTER<TAB>message``
  line per problem on stdout;
* ``2`` the command itself could not run (usage, unknown type, unreadable file).
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from importlib.metadata import PackageNotFoundError, version

import structlog

from broker.cli import audit, cases, directory, envelope, forms, keys, links, node, rules
from broker.cli.common import EXIT_OK, EXIT_USAGE, Usage
from broker.errors import BrokerError

__all__ = ["main"]

#: Command modules, each adding its sub-commands with ``register(commands)``.
_COMMAND_MODULES = (forms, keys, directory, envelope, node, cases, links, rules, audit)


def _package_version() -> str:
    try:
        return version("evidence-broker")
    except PackageNotFoundError:
        return "unknown"


def build_parser() -> argparse.ArgumentParser:
    """Return the argument parser of ``evb`` (exposed for documentation tools)."""
    parser = argparse.ArgumentParser(
        prog="evb",
        description="evidence-broker: signed, schema-checked cross-border evidence requests.",
    )
    parser.add_argument("--version", action="version", version=f"evb {_package_version()}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module in _COMMAND_MODULES:
        module.register(commands)
    return parser


def _quiet_logs() -> None:
    # Command output goes to stdout and must stay parseable (--json): the library's
    # logs go to stderr, warnings and errors only. `evb node run` logs everything.
    structlog.configure(
        wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING),
        logger_factory=_stderr_logger,
    )


def _stderr_logger(*_args: object) -> structlog.PrintLogger:
    # Looked up when a logger is made, so a replaced sys.stderr (tests) is honoured.
    return structlog.PrintLogger(sys.stderr)


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``evb`` and return its exit status."""
    _quiet_logs()
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        status: int = args.func(args)
    except Usage as exc:
        print(f"evb: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except BrokerError as exc:
        print(f"evb: {exc.code}: {exc.message}", file=sys.stderr)
        return EXIT_USAGE
    except BrokenPipeError:
        # The reader went away (e.g. `evb schema show … | head`): not an error of ours.
        sys.stderr.close()
        return EXIT_OK
    return status


if __name__ == "__main__":
    sys.exit(main())
