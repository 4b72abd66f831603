"""The reference JSON Schema engine: the last word on a refusal, and its explanation.

The fast engine (``jsonschema-rs``) gives the catalogue its verdict; when it says no,
this module's :class:`ReferenceEngine` (``jsonschema``) decides and explains every
problem with an RFC 6901 pointer and a message that never repeats the value. It is
imported only on the first refusal, because ``jsonschema`` is slow to import.

It differs from stock ``jsonschema`` Draft 2020-12 in two ways that keep it in step
with the fast engine and the strict models: ``integer`` means a JSON integer literal
(not ``60.0``), and ``pattern`` follows ECMA-262, where ``$`` matches only at the end.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Callable, Iterator
from typing import Any

import jsonschema
import jsonschema.exceptions

from broker import formats
from broker.errors import Problem
from broker.schema import one_per_pointer, pointer

__all__ = ["REFERENCE_VALIDATOR", "ReferenceEngine", "format_checker", "problems_from_errors"]


def _is_json_integer(_checker: object, instance: object) -> bool:
    return isinstance(instance, int) and not isinstance(instance, bool)


def _ecma_anchors(pattern: str) -> str:
    r"""Translate ``$`` outside character classes to ``\Z``.

    In ECMA-262 (what JSON Schema patterns are, and what the fast engine and the
    models use) ``$`` matches only at the end of the text; Python's ``$`` also matches
    before a trailing newline, so a name ending in a newline would pass ``^[^\n]+$``.
    """
    out: list[str] = []
    in_class = escaped = False
    for char in pattern:
        if escaped:
            escaped = False
        elif char == "\\":
            escaped = True
        elif char == "[" and not in_class:
            in_class = True
        elif char == "]" and in_class:
            in_class = False
        elif char == "$" and not in_class:
            out.append(r"\Z")
            continue
        out.append(char)
    return "".join(out)


@functools.lru_cache(maxsize=512)
def _compiled_pattern(pattern: str) -> re.Pattern[str]:
    return re.compile(_ecma_anchors(pattern))


def _pattern_keyword(
    _validator: object, pattern: str, instance: object, _schema: object
) -> Iterator[jsonschema.exceptions.ValidationError]:
    if isinstance(instance, str) and not _compiled_pattern(pattern).search(instance):
        yield jsonschema.exceptions.ValidationError("does not match the pattern")


REFERENCE_VALIDATOR = jsonschema.validators.extend(  # type: ignore[no-untyped-call]
    jsonschema.Draft202012Validator,
    validators={"pattern": _pattern_keyword},
    type_checker=jsonschema.Draft202012Validator.TYPE_CHECKER.redefine("integer", _is_json_integer),
)


def _on_strings(check: Callable[[str], bool]) -> Callable[[object], bool]:
    # JSON Schema applies "format" to strings only; other types pass (the "type"
    # keyword judges them).
    def checker(instance: object) -> bool:
        return not isinstance(instance, str) or check(instance)

    return checker


def format_checker() -> jsonschema.FormatChecker:
    """Return a format checker with exactly the shared formats of :mod:`broker.formats`."""
    checker = jsonschema.FormatChecker(formats=())
    for name, check in formats.FORMATS.items():
        checker.checks(name)(_on_strings(check))
    return checker


def _describe(error: jsonschema.exceptions.ValidationError) -> str:
    """A message for a schema error that never repeats the offending value."""
    kind: Any = error.validator
    value: Any = error.validator_value
    if kind is None:  # a `false` schema
        return "not allowed here"
    messages: dict[str, Callable[[], str]] = {
        "type": lambda: f"must be of type {value}",
        "format": lambda: f"not a valid {value}",
        "enum": lambda: "must be one of: " + ", ".join(map(str, value)),
        "const": lambda: f"must be {json.dumps(value)}",
        "minLength": lambda: f"must be at least {value} characters long",
        "maxLength": lambda: f"must be at most {value} characters long",
        "pattern": lambda: "has a character or form that is not allowed here",
        "minimum": lambda: f"must be at least {value}",
        "maximum": lambda: f"must be at most {value}",
        "exclusiveMinimum": lambda: f"must be more than {value}",
        "exclusiveMaximum": lambda: f"must be less than {value}",
        "minItems": lambda: f"must have at least {value} item(s)",
        "maxItems": lambda: f"must have at most {value} item(s)",
        "uniqueItems": lambda: "items must be unique",
        "minProperties": lambda: f"must have at least {value} member(s)",
        "not": lambda: "not allowed here" if value == {} else "is not allowed in this combination",
        "oneOf": lambda: "must match exactly one of the allowed shapes",
        "anyOf": lambda: "must match one of the allowed shapes",
        "dependentRequired": lambda: "needs other members that are missing",
    }
    describe = messages.get(str(kind))
    return describe() if describe else f"violates '{kind}'"


def problems_from_errors(
    errors: Iterator[jsonschema.exceptions.ValidationError],
) -> tuple[Problem, ...]:
    """Turn jsonschema errors into problems: one per pointer, most relevant first.

    A missing required member and an unknown member are reported at the member itself.
    """
    found: dict[tuple[str, str], Problem] = {}
    ranked = sorted(errors, key=jsonschema.exceptions.relevance, reverse=True)
    for error in ranked:
        base = list(error.absolute_path)
        keyword_value: Any = error.validator_value
        subschema: Any = error.schema
        if error.validator == "required" and isinstance(error.instance, dict):
            for name in keyword_value:
                if name not in error.instance:
                    where = pointer([*base, name])
                    found.setdefault(
                        (where, "required"),
                        Problem(where, "E_SCHEMA", "required member is missing"),
                    )
            continue
        if error.validator == "additionalProperties" and isinstance(error.instance, dict):
            known = subschema.get("properties", {})
            patterns = [re.compile(p) for p in subschema.get("patternProperties", {})]
            for name in error.instance:
                if name not in known and not any(p.search(name) for p in patterns):
                    where = pointer([*base, name])
                    found.setdefault(
                        (where, "unknown"), Problem(where, "E_SCHEMA", "unknown member")
                    )
            continue
        where = pointer(base)
        found.setdefault((where, "value"), Problem(where, "E_SCHEMA", _describe(error)))
    return one_per_pointer(found.values())


class ReferenceEngine:
    """The compiled reference validator of one schema."""

    def __init__(self, schema: dict[str, Any]) -> None:
        self._validator = REFERENCE_VALIDATOR(schema, format_checker=format_checker())

    def problems(self, value: Any) -> tuple[Problem, ...]:
        """Return every problem of ``value``; empty when it is valid."""
        return problems_from_errors(self._validator.iter_errors(value))
