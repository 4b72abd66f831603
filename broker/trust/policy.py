"""The authorisation policy: which role may send which message type to which role.

The policy is a table inside the trust directory, so the roots sign it with the rest
(:class:`broker.forms.directory.Policy`). A message is allowed when any rule names
the sender's role, the recipient's role and the message type — by its exact name or
by a prefix wildcard (``case.*`` matches every type whose name starts with
``case.``); everything else is forbidden (:class:`broker.errors.PolicyError`,
``E_POLICY_FORBIDDEN``).

The default policy ships with the package as a data table with the legal basis of
every row (``schemas/data/default_policy.json``): ``evb directory init`` embeds it,
and a directory without a ``policy`` member uses it.

Pure: no file or network I/O (the default table is package data, read once).
"""

from __future__ import annotations

import functools
import json
from collections.abc import Iterable
from typing import TYPE_CHECKING

from pydantic import ValidationError

from broker.errors import PolicyError, Problem, SchemaError, TooLargeError
from broker.forms.base import SEMANTIC
from broker.forms.directory import DirectoryDocument, Policy, Role
from broker.resources import read_json
from broker.schema import catalogue, load_json, one_per_pointer, pointer

if TYPE_CHECKING:
    from broker.diagnostics import ReferenceEngine

__all__ = [
    "MAX_POLICY_BYTES",
    "check_route",
    "default_policy",
    "matches",
    "parse_policy",
    "unknown_types",
]

#: Size limit of a policy file given to :func:`parse_policy`.
MAX_POLICY_BYTES = 1024 * 1024

_RULE_MEMBERS = ("from_role", "to_role", "types", "basis")


def matches(pattern: str, message_type: str) -> bool:
    """Tell whether a policy type pattern names ``message_type``.

    Args:
        pattern: a catalogue type name (``eu.epoc``) or a prefix wildcard (``case.*``).
        message_type: a catalogue type name.
    """
    if pattern.endswith(".*"):
        return message_type.startswith(pattern[:-1])
    return pattern == message_type


def check_route(policy: Policy, from_role: Role, to_role: Role, message_type: str) -> None:
    """Allow a message, or refuse it.

    Raises:
        PolicyError: no rule lets ``from_role`` send ``message_type`` to ``to_role``.
    """
    for rule in policy.rules:
        if (
            rule.from_role == from_role
            and rule.to_role == to_role
            and any(matches(pattern, message_type) for pattern in rule.types)
        ):
            return
    raise PolicyError(f"the policy does not let a {from_role} send {message_type} to a {to_role}")


@functools.cache
def default_policy() -> Policy:
    """Return the policy shipped with the package (``schemas/data/default_policy.json``).

    The table's rows also say whether their articles were checked (``verified``); the
    policy keeps what a directory carries: roles, types and the legal basis.
    """
    table = read_json("data", "default_policy.json")
    rules = [{name: row[name] for name in _RULE_MEMBERS} for row in table["rules"]]
    return Policy.model_validate_json(json.dumps({"rules": rules}))


def parse_policy(raw: bytes, *, max_bytes: int = MAX_POLICY_BYTES) -> Policy:
    """Parse a policy document (``{"rules": [...]}``, the directory's ``policy`` member).

    Raises:
        TooLargeError: over ``max_bytes``.
        ParseError: not strict JSON.
        SchemaError: not a policy, with every problem and its pointer.
    """
    # 1. Size, before anything is parsed.
    if len(raw) > max_bytes:
        raise TooLargeError(f"the policy is larger than {max_bytes} bytes")
    # 2. Strict JSON (no duplicate members, no NaN).
    value, _ = load_json(raw)
    if not isinstance(value, dict):
        raise SchemaError("the policy must be a JSON object")
    # 3. The directory schema's policy definition (the reference engine, for pointers).
    problems = _reference().problems(value)
    if problems:
        raise SchemaError("the policy does not match its schema", problems)
    # 4. The model (it agrees with the schema; any refusal is still reported).
    try:
        return Policy.model_validate_json(json.dumps(value))
    except ValidationError as exc:
        found = []
        for error in exc.errors(include_input=False, include_url=False):
            field = (error.get("ctx") or {}).get("field")
            where = pointer(list(error["loc"])) + (f"/{field}" if field else "")
            code = "E_SEMANTIC" if error["type"] == SEMANTIC else "E_SCHEMA"
            found.append(Problem(where, code, error["msg"]))
        raise SchemaError("the policy does not match its schema", one_per_pointer(found)) from exc


@functools.cache
def _reference() -> ReferenceEngine:
    # Imported on first use: jsonschema is slow to import and only the tools need it.
    from broker.diagnostics import ReferenceEngine  # noqa: PLC0415

    schema = catalogue().schema(DirectoryDocument.form_type)
    return ReferenceEngine(
        {"$schema": schema["$schema"], "$defs": schema["$defs"], "$ref": "#/$defs/policy"}
    )


def unknown_types(policy: Policy, known: Iterable[str]) -> list[str]:
    """Return the type patterns of a policy that name no known type (sorted).

    A policy may name types that a node does not know yet (it then never matches);
    the directory tools use this to refuse typos before the roots sign them.
    """
    names = list(known)
    patterns = {pattern for rule in policy.rules for pattern in rule.types}
    return sorted(p for p in patterns if not any(matches(p, name) for name in names))
