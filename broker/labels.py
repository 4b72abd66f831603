"""Human labels and help texts for every field of every form, in English, French and German.

The texts live in ``schemas/labels/*.json`` beside the schemas (one file per
instrument, plus ``common.json`` for the shared definitions). Each file holds::

    {
      "defs":  {"<shared def>": {"<dotted path>": {"en": {"label", "help"}, "fr", "de"}}},
      "types": {"<type>":       {"<dotted path>": {…}}}
    }

A dotted path names a property from its owner's root, array items being transparent
(``data.identifiers``). A property reached through a shared definition
(``urn:evb:schema:defs:1#/$defs/NAME``) is labelled once, under ``defs.NAME``, and
that label serves every form that uses the definition. Local ``$defs`` of a form are
part of the form's own paths.

:func:`missing_labels` and :func:`stale_labels` are what the tests use to prove
that no property of any schema lacks a label in any language, and no label is left
over after a property was renamed.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from broker.resources import read_json, schema_root

__all__ = ["LANGUAGES", "FieldRef", "Label", "fields", "label", "missing_labels", "stale_labels"]

#: Languages every label must exist in.
LANGUAGES = ("en", "fr", "de")

_SHARED = "urn:evb:schema:defs:1#/$defs/"


@dataclass(frozen=True)
class Label:
    """The human label of a field and a help text explaining it."""

    label: str
    help: str


@dataclass(frozen=True)
class FieldRef:
    """Where the label of one form field is kept.

    Attributes:
        path: dotted path of the field from the form root (``requesting_authority.name``).
        owner: ``("defs", NAME)`` for a field of a shared definition, else ``("types", TYPE)``.
        key: the dotted path of the field inside its owner.
    """

    path: str
    owner: tuple[str, str]
    key: str


@functools.cache
def _texts() -> dict[str, dict[str, dict[str, Any]]]:
    merged: dict[str, dict[str, dict[str, Any]]] = {"defs": {}, "types": {}}
    for entry in sorted(schema_root().joinpath("labels").iterdir(), key=lambda e: e.name):
        if not entry.name.endswith(".json"):
            continue
        data = read_json("labels", entry.name)
        for section in ("defs", "types"):
            for owner, entries in data.get(section, {}).items():
                if owner in merged[section]:
                    raise ValueError(f"labels for {section}.{owner} are defined twice")
                merged[section][owner] = entries
    return merged


@functools.cache
def _shared_defs() -> dict[str, Any]:
    defs: dict[str, Any] = read_json("json", "_defs.json")["$defs"]
    return defs


def _walk(
    node: Any,
    root: dict[str, Any],
    owner: tuple[str, str],
    prefix: str,
    full: str,
    visiting: frozenset[str],
) -> Iterator[FieldRef]:
    if not isinstance(node, dict):
        return
    ref = node.get("$ref")
    if isinstance(ref, str):
        if ref.startswith(_SHARED):
            name = ref[len(_SHARED) :]
            if name not in visiting:
                target = _shared_defs()[name]
                yield from _walk(
                    target, {"$defs": _shared_defs()}, ("defs", name), "", full, visiting | {name}
                )
        elif ref.startswith("#/$defs/"):
            name = ref[len("#/$defs/") :]
            if name not in visiting:
                # Inside the shared definitions a local $ref names another shared
                # definition, which owns its own labels; in a form it stays the form's.
                shared = owner[0] == "defs"
                yield from _walk(
                    root["$defs"][name],
                    root,
                    ("defs", name) if shared else owner,
                    "" if shared else prefix,
                    full,
                    visiting | {name},
                )
    for name, sub in node.get("properties", {}).items():
        key = prefix + name
        path = full + name
        yield FieldRef(path=path, owner=owner, key=key)
        yield from _walk(sub, root, owner, key + ".", path + ".", visiting)
    for keyword in ("items", "if", "then", "else", "not"):
        if keyword in node:
            yield from _walk(node[keyword], root, owner, prefix, full, visiting)
    for keyword in ("allOf", "anyOf", "oneOf"):
        for sub in node.get(keyword, []):
            yield from _walk(sub, root, owner, prefix, full, visiting)


@functools.cache
def fields(type_name: str) -> tuple[FieldRef, ...]:
    """Return every field of a form (deduplicated, in schema order)."""
    schema = read_json("json", type_name + ".json")
    seen: dict[str, FieldRef] = {}
    for ref in _walk(schema, schema, ("types", type_name), "", "", frozenset()):
        seen.setdefault(ref.path, ref)
    return tuple(seen.values())


def label(type_name: str, path: str, language: str = "en") -> Label:
    """Return the label of the field at a dotted ``path`` of a form.

    Raises:
        KeyError: the form has no such field, or it has no label in that language.
    """
    for ref in fields(type_name):
        if ref.path == path:
            section, owner = ref.owner
            text = _texts()[section][owner][ref.key][language]
            return Label(label=text["label"], help=text["help"])
    raise KeyError(f"{type_name} has no field {path}")


def missing_labels(type_names: list[str]) -> list[str]:
    """Return ``section.owner:key:language`` for every label or help text missing."""
    missing: set[str] = set()
    texts = _texts()
    for type_name in type_names:
        for ref in fields(type_name):
            section, owner = ref.owner
            entry = texts[section].get(owner, {}).get(ref.key, {})
            for language in LANGUAGES:
                text = entry.get(language, {})
                if not text.get("label", "").strip() or not text.get("help", "").strip():
                    missing.add(f"{section}.{owner}:{ref.key}:{language}")
    return sorted(missing)


def stale_labels(type_names: list[str]) -> list[str]:
    """Return ``section.owner:key`` for every label that no schema property uses."""
    used = {(ref.owner, ref.key) for name in type_names for ref in fields(name)}
    texts = _texts()
    return sorted(
        f"{section}.{owner}:{key}"
        for section in ("defs", "types")
        for owner, entries in texts[section].items()
        for key in entries
        if ((section, owner), key) not in used
    )
