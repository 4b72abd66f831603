"""What every ``evb`` command module shares: exit statuses and the usage error."""

from __future__ import annotations

import argparse
from typing import TypeAlias

__all__ = ["EXIT_OK", "EXIT_REFUSED", "EXIT_USAGE", "Commands", "Usage"]

#: What ``register(commands)`` receives: ``evb``'s sub-command parsers (argparse has
#: no public name for this type).
Commands: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"

EXIT_OK = 0
EXIT_REFUSED = 1
EXIT_USAGE = 2


class Usage(Exception):
    """The command cannot run as asked (exit 2): bad arguments, unreadable file."""
