"""Where the schema catalogue's files are read from: one loader for every install.

In an installed wheel the top-level ``schemas/`` directory is mapped into the
package as ``broker/_schemas`` at build time (see ``pyproject.toml``). In a source
checkout (and an editable install) it is read from the repository root, so an
edited schema takes effect at once. Either
way callers go through :func:`schema_root` and never build paths themselves.
"""

from __future__ import annotations

import functools
import json
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Any

__all__ = ["read_json", "schema_root"]


@functools.cache
def schema_root() -> Traversable:
    """Return the directory that holds the schema catalogue (``json/``, ``xsd/`` …)."""
    # A source checkout wins: an editable install also gets a copy of schemas/ as
    # broker/_schemas at install time, which goes stale as soon as a schema is edited.
    source = Path(__file__).resolve().parent.parent / "schemas"
    if (source / "json" / "_defs.json").is_file() and (source.parent / "pyproject.toml").is_file():
        return source
    packaged = resources.files("broker").joinpath("_schemas")
    if packaged.is_dir():
        return packaged
    raise FileNotFoundError("the schema catalogue is missing from this installation")


def read_json(*parts: str) -> Any:
    """Read and parse one JSON file below :func:`schema_root`."""
    node = schema_root()
    for part in parts:
        node = node.joinpath(part)
    return json.loads(node.read_bytes())
