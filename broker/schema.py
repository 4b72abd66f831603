"""The form catalogue: every message type, its schema, its model, and validation.

The catalogue loads ``schemas/json/*.json`` once (through :mod:`broker.resources`,
so it works from a source tree and from an installed wheel), bundles the shared
definitions of ``_defs.json`` into each schema, and compiles two validators per type:

* the **fast engine** (``jsonschema-rs``) gives the verdict on the hot path;
* the **reference engine** (``jsonschema``) produces the detailed diagnostics when
  the fast engine says no, and has the last word: a document is only refused when
  the reference engine finds a problem.

Both engines and the pydantic models call the same format checks
(:mod:`broker.formats`). ``tests/forms/test_agreement.py`` proves on every example in
the repository that fast and reference engines, and schema and model, agree.

Validation of one document, in order (each step raises an :class:`InputError`
carrying every problem found, with an RFC 6901 pointer):

1. size limit (``E_TOO_LARGE``), before anything is parsed;
2. parse: strict UTF-8 JSON without duplicate keys or NaN (``E_PARSE``), or hardened
   XML mapped to the JSON model (:mod:`broker.xmlforms`);
3. JSON Schema (``E_SCHEMA``);
4. the strict pydantic model, including rules beyond the schema (``E_SEMANTIC``).
"""

from __future__ import annotations

import copy
import functools
import json
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, NoReturn

import jsonschema_rs
from pydantic import ValidationError as PydanticValidationError

from broker import formats
from broker.errors import (
    InputError,
    ParseError,
    Problem,
    SchemaError,
    SemanticError,
    TooLargeError,
    UnknownTypeError,
)
from broker.forms import MODELS
from broker.forms.base import SEMANTIC, Form
from broker.resources import read_json, schema_root

if TYPE_CHECKING:
    from broker.diagnostics import ReferenceEngine

__all__ = [
    "DEFAULT_MAX_BYTES",
    "Catalogue",
    "FormType",
    "Format",
    "catalogue",
    "load_json",
    "one_per_pointer",
    "pointer",
]

#: Default size limit of one document (1 MiB); configurable per catalogue.
DEFAULT_MAX_BYTES = 1024 * 1024

Format = Literal["json", "xml"]

_DEFS_ID = "urn:evb:schema:defs:1"
_ID = re.compile(r"^urn:evb:schema:(?P<type>[a-z0-9_]+(\.[a-z0-9_]+)+):(?P<major>[1-9][0-9]*)$")


@dataclass(frozen=True)
class FormType:
    """One message type of the catalogue.

    Attributes:
        name: the type name, e.g. ``coe.art29.preservation``.
        schema_id: the schema ``$id``, ``urn:evb:schema:<type>:<major>``.
        legal_basis: short citation of the legal basis, e.g. ``ETS 185 Art 29``.
        title: human title of the form.
        instrument: the instrument family (``budapest``, ``eio`` …).
        verified: whether the field list was checked against the official text.
        xml: whether the type also has an XML form (an XSD under ``schemas/xsd/``).
    """

    name: str
    schema_id: str
    legal_basis: str
    title: str
    instrument: str
    verified: bool
    xml: bool


def pointer(path: Iterator[str | int] | tuple[str | int, ...] | list[str | int]) -> str:
    """Return the RFC 6901 JSON Pointer for a sequence of member names and indexes."""
    return "".join("/" + str(p).replace("~", "~0").replace("/", "~1") for p in path)


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


class _FloatSeen:
    """``json.loads`` hook that remembers whether a non-integer literal appeared.

    JSON Schema counts ``60.0`` as an integer; the strict models do not. The fast
    engine is only trusted for documents without such literals; the reference engine,
    given a stricter type checker, decides the rest.
    """

    __slots__ = ("seen",)

    def __init__(self) -> None:
        self.seen = False

    def __call__(self, literal: str) -> float:
        self.seen = True
        return float(literal)


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result = dict(pairs)
    if len(result) != len(pairs):
        raise ValueError("duplicate member name in an object")
    return result


def load_json(raw: bytes) -> tuple[Any, bool]:
    """Parse strict JSON: UTF-8, no duplicate member names, no NaN or Infinity.

    Returns:
        the parsed value, and whether any number with a fraction or exponent appeared.

    Raises:
        ParseError: the bytes are not such JSON.
    """
    floats = _FloatSeen()
    try:
        text = raw.decode("utf-8")
        value = json.loads(
            text,
            object_pairs_hook=_no_duplicates,
            parse_constant=_reject_constant,
            parse_float=floats,
        )
    except UnicodeDecodeError as exc:
        raise ParseError("the document is not UTF-8 text") from exc
    except RecursionError as exc:
        raise ParseError("the document is nested too deeply") from exc
    except ValueError as exc:
        # json.JSONDecodeError is a ValueError; its message names a position, not content.
        raise ParseError(f"malformed JSON: {exc}") from exc
    return value, floats.seen


def _walk_refs(node: Any, visit: Callable[[dict[str, Any]], None]) -> None:
    if isinstance(node, dict):
        visit(node)
        for value in node.values():
            _walk_refs(value, visit)
    elif isinstance(node, list):
        for value in node:
            _walk_refs(value, visit)


def _bundle(schema: dict[str, Any], defs: dict[str, Any]) -> dict[str, Any]:
    """Copy the shared definitions a schema uses into its own ``$defs``."""
    bundled = copy.deepcopy(schema)
    local_defs: dict[str, Any] = bundled.setdefault("$defs", {})
    prefix = _DEFS_ID + "#/$defs/"
    wanted: list[str] = []

    def rewrite(node: dict[str, Any]) -> None:
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith(prefix):
            name = ref[len(prefix) :]
            if name not in defs:
                raise ValueError(f"{schema.get('$id')}: unknown shared definition {name}")
            node["$ref"] = "#/$defs/" + name
            wanted.append(name)
        elif isinstance(ref, str) and not ref.startswith("#"):
            raise ValueError(f"{schema.get('$id')}: only local and shared $refs are allowed")

    _walk_refs(bundled, rewrite)
    seen: set[str] = set()
    while wanted:
        name = wanted.pop()
        if name in seen:
            continue
        seen.add(name)
        if name in local_defs and local_defs[name] != defs[name]:
            raise ValueError(f"{schema.get('$id')}: $defs/{name} shadows a shared definition")
        local_defs[name] = copy.deepcopy(defs[name])
        _walk_refs(local_defs[name], lambda n: _local_ref(n, wanted))
    return bundled


def _local_ref(node: dict[str, Any], wanted: list[str]) -> None:
    ref = node.get("$ref")
    if isinstance(ref, str) and ref.startswith("#/$defs/"):
        wanted.append(ref[len("#/$defs/") :])


def _formats_used(schema: dict[str, Any]) -> set[str]:
    used: set[str] = set()

    def visit(node: dict[str, Any]) -> None:
        fmt = node.get("format")
        if isinstance(fmt, str):
            used.add(fmt)

    _walk_refs(schema, visit)
    return used


def one_per_pointer(problems: Iterable[Problem]) -> tuple[Problem, ...]:
    """Keep the first (most relevant) problem of each pointer, sorted by pointer."""
    # Several keywords may fail on the same value (type and enum, say): the most
    # relevant one, which comes first, is reported.
    by_pointer: dict[str, Problem] = {}
    for problem in problems:
        by_pointer.setdefault(problem.pointer, problem)
    return tuple(sorted(by_pointer.values()))


def _problems_from_model(exc: PydanticValidationError) -> tuple[Problem, ...]:
    problems = []
    for error in exc.errors(include_input=False, include_url=False):
        ctx = error.get("ctx") or {}
        # "field" is a pointer fragment below the failing model ("from", "hops/1/provider").
        field = ctx.get("field")
        where = pointer(list(error["loc"])) + (f"/{field}" if field else "")
        code = "E_SEMANTIC" if error["type"] == SEMANTIC else "E_SCHEMA"
        problems.append(Problem(where, code, error["msg"]))
    return one_per_pointer(problems)


def _raise_problems(problems: tuple[Problem, ...]) -> NoReturn:
    if all(p.code == "E_SEMANTIC" for p in problems):
        raise SemanticError("the document breaks a rule of its instrument", problems)
    raise SchemaError("the document does not match its schema", problems)


class _Compiled:
    """The compiled validators and model of one type (built on first use)."""

    def __init__(self, form_type: FormType, schema: dict[str, Any], model: type[Form]) -> None:
        self.form_type = form_type
        self.schema = schema
        self.model = model
        self.fast = jsonschema_rs.Draft202012Validator(
            schema, formats=dict(formats.FORMATS), validate_formats=True
        )

    @functools.cached_property
    def reference(self) -> ReferenceEngine:
        # Imported on first refusal: jsonschema takes most of a second to import,
        # and a valid document never needs it.
        from broker.diagnostics import ReferenceEngine  # noqa: PLC0415

        return ReferenceEngine(self.schema)


class Catalogue:
    """Every message type of the network, with its schema and model.

    Use :func:`catalogue` for the shared default instance.

    Args:
        max_bytes: size limit of one document, checked before parsing.
    """

    def __init__(self, *, max_bytes: int = DEFAULT_MAX_BYTES) -> None:
        if max_bytes <= 0:
            raise ValueError("max_bytes must be positive")
        self.max_bytes = max_bytes
        self._types: dict[str, FormType] = {}
        self._schemas: dict[str, dict[str, Any]] = {}
        self._compiled: dict[str, _Compiled] = {}
        self._load()

    def _load(self) -> None:
        from broker import xmlforms  # noqa: PLC0415 - xmlforms uses the catalogue's types

        defs = read_json("json", "_defs.json")["$defs"]
        names = sorted(
            entry.name
            for entry in schema_root().joinpath("json").iterdir()
            if entry.name.endswith(".json") and not entry.name.startswith("_")
        )
        for file_name in names:
            raw = read_json("json", file_name)
            match = _ID.match(raw.get("$id", ""))
            type_name = file_name[: -len(".json")]
            if not match or match["type"] != type_name:
                raise ValueError(f"{file_name}: $id must be urn:evb:schema:{type_name}:<major>")
            unknown = _formats_used(raw) - set(formats.FORMATS)
            if unknown:
                raise ValueError(f"{file_name}: unknown formats {sorted(unknown)}")
            if type_name not in MODELS:
                raise ValueError(f"{file_name}: no model in broker.forms")
            self._schemas[type_name] = _bundle(raw, defs)
            self._types[type_name] = FormType(
                name=type_name,
                schema_id=raw["$id"],
                legal_basis=raw["x-legal-basis"],
                title=raw["title"],
                instrument=raw["x-instrument"],
                verified=bool(raw["x-verified"]),
                xml=type_name in xmlforms.XML_TYPES,
            )
        missing = set(MODELS) - set(self._types)
        if missing:
            raise ValueError(f"models without a schema: {sorted(missing)}")

    # -- lookup ------------------------------------------------------------------

    def types(self) -> list[FormType]:
        """Return every type, sorted by name."""
        return [self._types[name] for name in sorted(self._types)]

    def get(self, type_name: str) -> FormType:
        """Return one type.

        Raises:
            UnknownTypeError: no such type in the catalogue.
        """
        try:
            return self._types[type_name]
        except KeyError:
            raise UnknownTypeError(f"unknown message type {type_name!r}") from None

    def schema(self, type_name: str) -> dict[str, Any]:
        """Return the self-contained (bundled) JSON Schema of a type."""
        self.get(type_name)
        return copy.deepcopy(self._schemas[type_name])

    def model(self, type_name: str) -> type[Form]:
        """Return the pydantic model class of a type."""
        return self._compile(type_name).model

    def template(self, type_name: str, fmt: Format = "json") -> bytes:
        """Return a filled-in example document of a type that validates."""
        self.get(type_name)
        doc = read_json("examples", type_name + ".json")
        if fmt == "xml":
            from broker import xmlforms  # noqa: PLC0415

            return xmlforms.encode(type_name, doc)
        return (json.dumps(doc, indent=2, ensure_ascii=False) + "\n").encode("utf-8")

    def _compile(self, type_name: str) -> _Compiled:
        compiled = self._compiled.get(type_name)
        if compiled is None:
            form_type = self.get(type_name)
            compiled = _Compiled(form_type, self._schemas[type_name], MODELS[type_name])
            self._compiled[type_name] = compiled
        return compiled

    # -- validation --------------------------------------------------------------

    def parse(self, type_name: str, raw: bytes, fmt: Format = "json") -> Form:
        """Validate a document and return it as its model.

        Args:
            type_name: the catalogue type the document claims to be.
            raw: the document's bytes (JSON, or XML for types that have an XSD).
            fmt: ``json`` or ``xml``.

        Raises:
            UnknownTypeError, TooLargeError, ParseError, SchemaError, SemanticError:
                with every problem found, each with a pointer.
        """
        compiled = self._compile(type_name)
        if len(raw) > self.max_bytes:
            raise TooLargeError(f"the document is larger than {self.max_bytes} bytes")
        if fmt == "json":
            value, saw_float = load_json(raw)
            return self._validate(compiled, value, saw_float, raw)
        if fmt == "xml":
            from broker import xmlforms  # noqa: PLC0415

            value = xmlforms.decode(type_name, raw)
            return self.parse_obj(type_name, value)
        raise ValueError(f"unknown format {fmt!r}")

    def parse_obj(self, type_name: str, value: Any) -> Form:
        """Validate already-parsed JSON data (e.g. the plaintext of an envelope).

        Raises:
            UnknownTypeError, SchemaError, SemanticError: as :meth:`parse`.
        """
        compiled = self._compile(type_name)
        return self._validate(compiled, value, _has_float(value), None)

    def check(self, type_name: str, raw: bytes, fmt: Format = "json") -> tuple[Problem, ...]:
        """Return every problem of a document; an empty tuple means it is valid."""
        try:
            self.parse(type_name, raw, fmt)
        except InputError as exc:
            return exc.problems
        return ()

    def schema_problems(self, type_name: str, value: Any) -> tuple[Problem, ...]:
        """Diagnose parsed data with the reference engine only (no fast path, no model)."""
        compiled = self._compile(type_name)
        return compiled.reference.problems(value)

    def fast_verdict(self, type_name: str, value: Any) -> bool:
        """Return the fast engine's verdict alone (for tests and benchmarks)."""
        return bool(self._compile(type_name).fast.is_valid(value))

    def _validate(
        self, compiled: _Compiled, value: Any, saw_float: bool, raw: bytes | None
    ) -> Form:
        # 1. Schema: the fast engine's "valid" is trusted; anything else is decided,
        #    and explained, by the reference engine.
        if saw_float or not compiled.fast.is_valid(value):
            problems = compiled.reference.problems(value)
            if problems:
                raise SchemaError("the document does not match its schema", problems)
        # 2. Model: strict types, plus the rules beyond the schema (E_SEMANTIC). The
        #    model is always built from JSON text, where strict mode reads RFC 3339
        #    strings as datetimes.
        text = raw if raw is not None else json.dumps(value).encode("utf-8")
        try:
            return compiled.model.model_validate_json(text)
        except PydanticValidationError as exc:
            _raise_problems(_problems_from_model(exc))


def _has_float(value: Any) -> bool:
    if isinstance(value, float):
        return True
    if isinstance(value, dict):
        return any(_has_float(v) for v in value.values())
    if isinstance(value, list):
        return any(_has_float(v) for v in value)
    return False


@functools.cache
def catalogue() -> Catalogue:
    """Return the shared catalogue with the default size limit (loaded once)."""
    return Catalogue()
