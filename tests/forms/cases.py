"""Table-driven form examples shared by every form test.

Each ``tests/forms/cases_*.py`` module defines ``CASES: list[Case]``: for every type
its valid template (``schemas/examples/<type>.json``, also what `evb form template`
prints) and invalid variants made by mutating it, each with the exact problems
``(code, pointer)`` the catalogue must report. :func:`all_cases` collects them all;
the generic tests (expected verdicts, schema/model agreement, fast/reference engine
agreement) run over every one.
"""

from __future__ import annotations

import copy
import importlib
import json
import pkgutil
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from broker.resources import read_json

Mutation = Callable[[Any], None]
Expected = tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class Case:
    """One example document and the problems it must produce (none when valid)."""

    type: str
    name: str
    raw: bytes
    fmt: Literal["json", "xml"] = "json"
    expected: Expected = field(default=())

    @property
    def id(self) -> str:
        return f"{self.type}:{self.name}"


def template(type_name: str) -> Any:
    """Return a fresh copy of the valid template of a type."""
    return copy.deepcopy(read_json("examples", type_name + ".json"))


def _walk_to(doc: Any, pointer: str) -> tuple[Any, str | int]:
    parts = [p.replace("~1", "/").replace("~0", "~") for p in pointer.split("/")[1:]]
    node = doc
    for part in parts[:-1]:
        node = node[int(part)] if isinstance(node, list) else node[part]
    last = parts[-1]
    return node, int(last) if isinstance(node, list) else last


def set_(pointer: str, value: Any) -> Mutation:
    """Mutation: set (or add) the member at ``pointer``."""

    def apply(doc: Any) -> None:
        parent, key = _walk_to(doc, pointer)
        parent[key] = copy.deepcopy(value)

    return apply


def delete(pointer: str) -> Mutation:
    """Mutation: remove the member at ``pointer``."""

    def apply(doc: Any) -> None:
        parent, key = _walk_to(doc, pointer)
        del parent[key]

    return apply


def valid(type_name: str, name: str = "template", *mutations: Mutation) -> Case:
    """A valid case: the template, optionally with mutations that keep it valid."""
    doc = template(type_name)
    for mutate in mutations:
        mutate(doc)
    return Case(type_name, name, json.dumps(doc).encode())


def invalid(
    type_name: str, name: str, mutations: Mutation | list[Mutation], *expected: tuple[str, str]
) -> Case:
    """An invalid case: the template with mutations, and the exact problems expected."""
    doc = template(type_name)
    for mutate in mutations if isinstance(mutations, list) else [mutations]:
        mutate(doc)
    return Case(type_name, name, json.dumps(doc).encode(), expected=tuple(sorted(expected)))


def raw_case(
    type_name: str,
    name: str,
    raw: bytes,
    *expected: tuple[str, str],
    fmt: Literal["json", "xml"] = "json",
) -> Case:
    """A case given as raw bytes (malformed input, XML documents …)."""
    return Case(type_name, name, raw, fmt=fmt, expected=tuple(sorted(expected)))


def all_cases() -> list[Case]:
    """Every case of every ``tests/forms/cases_*.py`` module."""
    import tests.forms as package  # noqa: PLC0415

    cases: list[Case] = []
    for info in sorted(pkgutil.iter_modules(package.__path__), key=lambda i: i.name):
        if info.name.startswith("cases_"):
            module = importlib.import_module(f"tests.forms.{info.name}")
            cases.extend(module.CASES)
    ids = [c.id for c in cases]
    duplicates = {i for i in ids if ids.count(i) > 1}
    if duplicates:
        raise ValueError(f"duplicate case ids: {sorted(duplicates)}")
    return cases
