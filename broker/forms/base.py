"""Base classes and shared building blocks of every form model.

Each JSON Schema in ``schemas/json/`` has a pydantic model here in ``broker.forms``;
the two must agree on every example (``tests/forms/test_agreement.py`` proves it).
Models are strict (``"60"`` is not 60), refuse unknown fields, are frozen, and hold
timezone-aware datetimes only. String formats are checked by :mod:`broker.formats`,
the same functions the JSON Schema engines call.

Conventions that keep models and schemas in step:

* an optional member is *absent*, never ``null``: :class:`Model` refuses an explicit
  ``null`` for any field;
* rules that a JSON Schema cannot express (a period's order, …) raise an
  ``evb_semantic`` error from a model validator; the catalogue reports them as
  ``E_SEMANTIC`` at the pointer named by the error's ``field`` context;
* JSON member names that are Python keywords use an alias (``from_`` ↔ ``from``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import date, datetime
from typing import Annotated, Any, ClassVar, Literal, Self, TypeVar

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    model_validator,
)
from pydantic_core import PydanticCustomError

from broker import formats
from broker.errors import Problem, SchemaError

__all__ = [
    "SEMANTIC",
    "Authority",
    "Contact",
    "Country",
    "Custodian",
    "DataCategory",
    "Date",
    "DateTime",
    "Email",
    "Form",
    "Identifier",
    "IdentifierType",
    "Language",
    "Model",
    "Offence",
    "Period",
    "Phone",
    "PriorRequest",
    "ShortText",
    "Text",
    "Uuid",
    "build_form",
    "formatted",
    "not_allowed_error",
    "required_error",
    "schema_rule_error",
    "semantic_error",
    "unique",
]

#: pydantic error type for rules beyond the schema; reported as ``E_SEMANTIC``.
SEMANTIC = "evb_semantic"
#: pydantic error type for a value that fails a :mod:`broker.formats` check.
FORMAT = "evb_format"


def semantic_error(message: str, *path: str | int) -> PydanticCustomError:
    """Build the error a model validator raises for a rule beyond the schema.

    Args:
        message: what is wrong, without quoting the (possibly personal) value.
        path: where below the validated model the problem is (member names and list
            indexes, e.g. ``("hops", 1, "provider")``); appended to the model's location
            to form the reported pointer. Empty for the model itself.
    """
    return PydanticCustomError(SEMANTIC, message, {"field": _fragment(path)})


def _fragment(path: tuple[str | int, ...]) -> str:
    return "/".join(str(p).replace("~", "~0").replace("/", "~1") for p in path)


# The models re-check the schema's conditional rules (if/then, an enum that depends
# on another member) so that model and schema agree on every document; these errors
# are reported as E_SCHEMA, at the member named by ``path``, like the schema's own.


def schema_rule_error(message: str, *path: str | int) -> PydanticCustomError:
    """Build the error for a conditional schema rule that the model re-checks."""
    return PydanticCustomError("evb_rule", message, {"field": _fragment(path)})


def required_error(*path: str | int, when: str = "") -> PydanticCustomError:
    """Build the error for a member the schema requires (``when`` names the condition)."""
    message = f"required when {when}" if when else "required member is missing"
    return schema_rule_error(message, *path)


def not_allowed_error(*path: str | int, unless: str = "") -> PydanticCustomError:
    """Build the error for a member the schema refuses (``unless`` names the condition)."""
    message = f"only allowed when {unless}" if unless else "not allowed here"
    return schema_rule_error(message, *path)


def formatted(name: str) -> AfterValidator:
    """Return a validator that checks a string against the shared format ``name``."""
    check = formats.FORMATS[name]

    def validate(value: str) -> str:
        if not check(value):
            raise PydanticCustomError(FORMAT, "not a valid {format}", {"format": name})
        return value

    return AfterValidator(validate)


def _parsed(name: str, parse: Callable[[str], Any]) -> BeforeValidator:
    # A before-validator hands the inner type a Python value, so it must parse the
    # string itself: strict datetime/date types refuse strings outside JSON mode.
    check = formats.FORMATS[name]

    def validate(value: object) -> object:
        if not isinstance(value, str) or not check(value):
            raise PydanticCustomError(FORMAT, "not a valid {format}", {"format": name})
        return parse(value)

    return BeforeValidator(validate)


def unique(items: tuple[Any, ...]) -> tuple[Any, ...]:
    """Refuse duplicate items (the schema's ``uniqueItems``)."""
    if len(set(items)) != len(items):
        raise PydanticCustomError("evb_unique", "items must be unique")
    return items


Text = Annotated[str, StringConstraints(min_length=1, max_length=20000)]
ShortText = Annotated[str, StringConstraints(min_length=1, max_length=500, pattern=r"^[^\r\n]+$")]
Country = Annotated[str, formatted("country")]
Language = Annotated[str, formatted("language")]
Email = Annotated[str, StringConstraints(max_length=254), formatted("email")]
Phone = Annotated[str, formatted("e164")]
Uuid = Annotated[str, formatted("uuid")]
DateTime = Annotated[AwareDatetime, _parsed("date-time", datetime.fromisoformat)]
Date = Annotated[date, _parsed("date", date.fromisoformat)]

DataCategory = Literal["subscriber", "traffic", "content", "other"]
IdentifierType = Literal["email", "ip", "url", "account", "phone", "domain", "device", "other"]


class Model(BaseModel):
    """Base of every model: strict, closed, frozen, no explicit ``null``."""

    model_config = ConfigDict(
        strict=True,
        extra="forbid",
        frozen=True,
        populate_by_name=True,
        validate_by_alias=True,
        serialize_by_alias=True,
    )

    #: Fields whose wire form is "value or null" (e.g. an envelope's ``in_reply_to``);
    #: forms have none: an optional member is absent, never null.
    nullable: ClassVar[frozenset[str]] = frozenset()

    @model_validator(mode="after")
    def _refuse_explicit_null(self) -> Self:
        for name in self.model_fields_set - self.nullable:
            if getattr(self, name) is None:
                raise PydanticCustomError(
                    "evb_null", "null is not allowed: omit the member instead", {"field": name}
                )
        return self


class Form(Model):
    """A catalogue document: the payload of one message type.

    Subclasses set :attr:`form_type` to their catalogue type name.
    """

    form_type: ClassVar[str]

    def to_json_obj(self) -> dict[str, Any]:
        """Return the document as JSON-compatible data (the inverse of parsing)."""
        return self.model_dump(mode="json", by_alias=True, exclude_none=True)


class Contact(Model):
    """A person to contact about the request."""

    name: ShortText
    phone: Phone
    email: Email


class Authority(Model):
    """An authority with its file reference and a contact person."""

    name: ShortText
    country: Country
    unit: ShortText | None = None
    reference: ShortText
    contact: Contact


class Offence(Model):
    """The offence under investigation and a summary of the facts."""

    description: Text
    legal_provisions: Annotated[tuple[ShortText, ...], Field(min_length=1, max_length=100)]
    summary_of_facts: Text


class Period(Model):
    """A closed time range; ``from`` must not be after ``to``."""

    from_: DateTime = Field(alias="from")
    to: DateTime

    @model_validator(mode="after")
    def _ordered(self) -> Self:
        if self.from_ > self.to:
            raise semantic_error("the period starts after it ends", "from")
        return self


_IDENTIFIER_FORMATS: dict[str, str] = {
    "email": "email",
    "ip": "ip",
    "url": "uri",
    "phone": "e164",
    "domain": "domain",
}


class Identifier(Model):
    """Something that identifies the data sought, checked for its type."""

    type: IdentifierType
    value: Annotated[str, StringConstraints(min_length=1, max_length=2048)]
    observed_at: DateTime | None = None
    port: Annotated[int, Field(ge=0, le=65535)] | None = None

    @model_validator(mode="after")
    def _value_fits_type(self) -> Self:
        fmt = _IDENTIFIER_FORMATS.get(self.type)
        if fmt is not None and not formats.check_format(fmt, self.value):
            raise PydanticCustomError(FORMAT, "not a valid {format}", {"format": fmt})
        if self.port is not None and self.type != "ip":
            raise PydanticCustomError("evb_port", "a port is only allowed on an IP address")
        return self


class Custodian(Model):
    """Whoever holds the data, and where, as far as known."""

    name: ShortText
    country: Country | None = None
    location: ShortText | None = None


class PriorRequest(Model):
    """A reference to an earlier request or order in the same matter."""

    reference: ShortText
    date: Date | None = None
    authority: ShortText | None = None
    case: Uuid | None = None


_M = TypeVar("_M", bound=BaseModel)


def _escape(part: str | int) -> str:
    return str(part).replace("~", "~0").replace("/", "~1")


def build_form(cls: type[_M], data: Mapping[str, object], what: str) -> _M:
    """Validate Python values into ``cls``; report failures as the catalogue does.

    For builders that take Python values (receipts, audit answers): pydantic's errors
    are translated at this boundary into problems with JSON pointers, ``E_SEMANTIC``
    for rules beyond the schema, else ``E_SCHEMA`` (messages never hold values).

    Raises:
        SchemaError: "``what`` does not match its schema", with every problem.
    """
    try:
        return cls.model_validate(data)
    except ValidationError as exc:
        problems = []
        for error in exc.errors(include_input=False, include_url=False):
            field = (error.get("ctx") or {}).get("field")
            parts = [_escape(part) for part in error["loc"]] + ([field] if field else [])
            code = "E_SEMANTIC" if error["type"] == SEMANTIC else "E_SCHEMA"
            problems.append(Problem("".join("/" + p for p in parts), code, error["msg"]))
        raise SchemaError(f"{what} does not match its schema", tuple(sorted(problems))) from exc
