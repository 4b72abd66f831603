"""What every ``evb`` command module shares: exit statuses and the usage error."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TypeAlias

from broker.errors import BrokerError, InputError

__all__ = ["EXIT_OK", "EXIT_REFUSED", "EXIT_USAGE", "Commands", "Usage", "read_input"]

#: What ``register(commands)`` receives: ``evb``'s sub-command parsers (argparse has
#: no public name for this type).
Commands: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"

EXIT_OK = 0
EXIT_REFUSED = 1
EXIT_USAGE = 2


class Usage(Exception):
    """The command cannot run as asked (exit 2): bad arguments, unreadable file."""


def read_input(name: str, limit: int) -> bytes:
    """Read a file (``-``: standard input), at most one byte past ``limit``.

    One byte past the limit is enough to know the input is too large without holding
    an arbitrarily large file in memory; the caller's size check reports it.

    Raises:
        Usage: the file cannot be read.
    """
    try:
        if name == "-":
            return sys.stdin.buffer.read(limit + 1)
        with Path(name).open("rb") as handle:
            return handle.read(limit + 1)
    except OSError as exc:
        raise Usage(f"cannot read {name}: {exc.strerror or exc}") from exc


def print_refusal(exc: BrokerError) -> int:
    """Print one ``CODE<TAB>POINTER<TAB>message`` line per problem; return ``EXIT_REFUSED``."""
    problems = exc.problems if isinstance(exc, InputError) else ()
    if problems:
        for problem in problems:
            print(f"{problem.code}\t{problem.pointer}\t{' '.join(problem.message.split())}")
    else:
        print(f"{exc.code}\t\t{' '.join(exc.message.split())}")
    return EXIT_REFUSED
