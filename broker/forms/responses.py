"""Generic case replies: ack, status, refusal, clarification, extension, withdrawal, response.

A reply travels in an envelope that already carries the case id, ``in_reply_to``,
``from``, ``to`` and ``sent_at``; none of these is repeated in the forms. Which status
codes and grounds for refusal each request type allows is legal data, kept with its
articles in ``schemas/data/status_codes.json`` and ``schemas/data/refusal_grounds.json``:
the schemas encode those tables and the models here read them, so both refuse the
same documents (``tests/forms/test_tables.py`` proves the schemas match the tables).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from types import MappingProxyType
from typing import Annotated, Any, ClassVar, Literal, Self

from pydantic import AfterValidator, Field, StringConstraints, model_validator

from broker.forms.base import (
    Country,
    DateTime,
    Form,
    Identifier,
    Model,
    ShortText,
    Text,
    Uuid,
    schema_rule_error,
    semantic_error,
    unique,
)
from broker.resources import read_json

__all__ = [
    "FORMS",
    "Acknowledgement",
    "Amendment",
    "Answer",
    "CaseStatus",
    "Clarification",
    "ClarificationRequest",
    "DataItem",
    "Extension",
    "ForwardedTo",
    "Package",
    "Question",
    "Record",
    "Refusal",
    "Response",
    "Withdrawal",
    "refusal_grounds",
    "status_codes",
]

#: The catalogue types of the requests a case can be about (keys of status_codes.json).
RequestType = Literal[
    "coe.art29.preservation",
    "coe.art31.mla",
    "mla.request",
    "coe.p2.art6.domain",
    "coe.p2.art7.subscriber",
    "coe.p2.art8.order",
    "coe.p2.art9.emergency",
    "coe.p2.art10.emergency_mla",
    "eu.eio.a",
    "eu.eio.c",
    "eu.epoc",
    "eu.epoc_pr",
]
Code = Annotated[str, StringConstraints(min_length=1, max_length=64, pattern=r"^[a-z][a-z0-9_]*$")]
JsonPointer = Annotated[
    str, StringConstraints(min_length=1, max_length=1000, pattern=r"^(/([^~/]|~[01])*)+$")
]
_DUR_TIME = r"T([0-9]{1,6}H([0-9]{1,6}M([0-9]{1,6}S)?)?|[0-9]{1,6}M([0-9]{1,6}S)?|[0-9]{1,6}S)"
_DUR_DATE = r"([0-9]{1,6}D|[0-9]{1,6}M([0-9]{1,6}D)?|[0-9]{1,6}Y([0-9]{1,6}M([0-9]{1,6}D)?)?)"
#: RFC 3339 Appendix A durations (P30D, PT48H, P1Y2M, P2W …), as in case.extension.json.
DURATION = f"^P({_DUR_DATE}({_DUR_TIME})?|{_DUR_TIME}|[0-9]{{1,6}}W)$"
Duration = Annotated[str, StringConstraints(max_length=64, pattern=DURATION)]
_MAX_SAFE_INTEGER = 2**53 - 1


@functools.cache
def status_codes() -> Mapping[str, Mapping[str, Mapping[str, Any]]]:
    """Return, per request type, its valid status codes and their table rows.

    The generic codes of ``schemas/data/status_codes.json`` are merged into every type.
    """
    table = read_json("data", "status_codes.json")
    generic = {row["code"]: row for row in table["generic"]}
    return MappingProxyType(
        {
            instrument: MappingProxyType(generic | {row["code"]: row for row in rows})
            for instrument, rows in table["instruments"].items()
        }
    )


@functools.cache
def refusal_grounds() -> Mapping[str, Mapping[str, Mapping[str, Any]]]:
    """Return, per request type, its grounds for refusal and their table rows."""
    table = read_json("data", "refusal_grounds.json")
    return MappingProxyType(
        {
            instrument: MappingProxyType({row["code"]: row for row in rows})
            for instrument, rows in table["grounds"].items()
        }
    )


class ForwardedTo(Model):
    """The competent authority a request was forwarded to."""

    name: ShortText
    country: Country
    reference: ShortText | None = None


class Acknowledgement(Form):
    """Acknowledgement of receipt (e.g. Directive 2014/41/EU Art 16(1), Annex B)."""

    form_type: ClassVar[str] = "case.ack"

    received_at: DateTime
    reference: ShortText
    competent: bool
    forwarded_to: ForwardedTo | None = None
    note: Text | None = None

    @model_validator(mode="after")
    def _forwarded_when_not_competent(self) -> Self:
        if self.competent == (self.forwarded_to is not None):
            raise schema_rule_error(
                "forwarded_to is given exactly when not competent", "forwarded_to"
            )
        return self


class CaseStatus(Form):
    """Status of a case; the codes per request type come from status_codes.json."""

    form_type: ClassVar[str] = "case.status"

    status: Code
    instrument: RequestType
    preserved_until: DateTime | None = None
    note: Text | None = None
    expected_by: DateTime | None = None

    @model_validator(mode="after")
    def _valid_for_instrument(self) -> Self:
        row = status_codes()[self.instrument].get(self.status)
        if row is None:
            raise schema_rule_error("not a status of this instrument", "status")
        for member in row.get("requires", []):
            if getattr(self, member) is None:
                raise schema_rule_error("this status needs the member", member)
        if self.preserved_until is not None and "preserved_until" not in (
            row.get("requires", []) + row.get("allows", [])
        ):
            raise schema_rule_error(
                "this status does not concern preserved data", "preserved_until"
            )
        return self


class Refusal(Form):
    """Motivated refusal; the grounds per request type come from refusal_grounds.json."""

    form_type: ClassVar[str] = "case.refusal"

    instrument: RequestType
    ground: Code
    article: ShortText
    motivation: Text
    partial: bool
    refused_items: (
        Annotated[
            tuple[ShortText, ...], Field(min_length=1, max_length=1000), AfterValidator(unique)
        ]
        | None
    ) = None

    @model_validator(mode="after")
    def _valid_for_instrument(self) -> Self:
        grounds = refusal_grounds().get(self.instrument)
        if grounds is None:
            raise schema_rule_error("this instrument provides no grounds for refusal", "instrument")
        if self.ground not in grounds:
            raise schema_rule_error("not a ground for refusal of this instrument", "ground")
        if self.refused_items is not None and not self.partial:
            raise schema_rule_error(
                "refused items are only listed in a partial refusal", "refused_items"
            )
        return self


class Question(Model):
    """One question about a request."""

    topic: ShortText
    question: Text
    pointer: JsonPointer | None = None


class ClarificationRequest(Form):
    """Request for clarification of a request."""

    form_type: ClassVar[str] = "case.clarification_request"

    questions: Annotated[tuple[Question, ...], Field(min_length=1, max_length=100)]
    respond_by: DateTime | None = None
    clock_suspended: bool


class Answer(Model):
    """The answer to one question, named by its index, its topic, or both."""

    question_index: Annotated[int, Field(ge=0, le=99)] | None = None
    topic: ShortText | None = None
    answer: Text

    @model_validator(mode="after")
    def _names_the_question(self) -> Self:
        if self.question_index is None and self.topic is None:
            raise schema_rule_error("name the question by its index or its topic", "topic")
        return self


class Amendment(Model):
    """One amended member of the request form."""

    pointer: JsonPointer
    amendment: Text


class Clarification(Form):
    """Answers to a request for clarification."""

    form_type: ClassVar[str] = "case.clarification"

    answers: Annotated[tuple[Answer, ...], Field(min_length=1, max_length=100)]
    amended_fields: (
        Annotated[tuple[Amendment, ...], Field(min_length=1, max_length=1000)] | None
    ) = None

    @model_validator(mode="after")
    def _each_once(self) -> Self:
        indexes = [a.question_index for a in self.answers if a.question_index is not None]
        if len(set(indexes)) != len(indexes):
            raise semantic_error("a question is answered more than once", "answers")
        pointers = [a.pointer for a in self.amended_fields or ()]
        if len(set(pointers)) != len(pointers):
            raise semantic_error("a member is amended more than once", "amended_fields")
        return self


class Extension(Form):
    """Request or grant of an extension of a time limit."""

    form_type: ClassVar[str] = "case.extension"

    kind: Literal["request", "grant"]
    period: Duration | None = None
    new_until: DateTime | None = None
    reason: Text | None = None
    article: ShortText

    @model_validator(mode="after")
    def _schema_rules(self) -> Self:
        if self.new_until is not None and self.period is not None:
            raise schema_rule_error("give either period or new_until", "period")
        if self.new_until is None and self.period is None:
            raise schema_rule_error("give period or new_until", "period")
        if self.kind == "request" and self.reason is None:
            raise schema_rule_error("a request for an extension needs a reason", "reason")
        return self

    @model_validator(mode="after")
    def _period_not_zero(self) -> Self:
        if self.period is not None and not any(int(n) for n in re.findall(r"[0-9]+", self.period)):
            raise semantic_error("the extension must be longer than zero", "period")
        return self


class Withdrawal(Form):
    """Withdrawal of a request."""

    form_type: ClassVar[str] = "case.withdrawal"

    reason: Text
    effective_at: DateTime | None = None


class Record(Model):
    """One field of the data produced."""

    field: ShortText
    value: Text


class DataItem(Model):
    """The data for one identifier and category: records or free text."""

    category: Literal["subscriber", "identification", "traffic", "content", "other"]
    identifier: Identifier
    records: Annotated[tuple[Record, ...], Field(min_length=1, max_length=10000)] | None = None
    text: Text | None = None

    @model_validator(mode="after")
    def _records_or_text(self) -> Self:
        if (self.records is None) == (self.text is None):
            raise schema_rule_error("give either records or text", "text")
        return self


class Package(Model):
    """A reference to an evidence package sent separately."""

    package_id: Uuid
    sha256: Annotated[
        str, StringConstraints(min_length=64, max_length=64, pattern=r"^[0-9a-f]{64}$")
    ]
    size_bytes: Annotated[int, Field(ge=0, le=_MAX_SAFE_INTEGER)]
    item_count: Annotated[int, Field(ge=1, le=_MAX_SAFE_INTEGER)]
    media_type: Annotated[
        str,
        StringConstraints(
            max_length=255,
            pattern=r"^[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}/[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}$",
        ),
    ]


class Response(Form):
    """The answer to a request: the data inline, or an evidence package, or none."""

    form_type: ClassVar[str] = "case.response"

    disposition: Literal["full", "partial", "no_data"]
    data: Annotated[tuple[DataItem, ...], Field(min_length=1, max_length=1000)] | None = None
    package: Package | None = None
    produced_at: DateTime
    note: Text | None = None

    @model_validator(mode="after")
    def _data_or_package(self) -> Self:
        if self.disposition == "no_data":
            for name in ("data", "package"):
                if getattr(self, name) is not None:
                    raise schema_rule_error("no data are sent with no_data", name)
        elif (self.data is None) == (self.package is None):
            raise schema_rule_error("give either data or package", "data")
        return self


#: The form models this module defines.
FORMS: tuple[type[Form], ...] = (
    Acknowledgement,
    CaseStatus,
    Refusal,
    ClarificationRequest,
    Clarification,
    Extension,
    Withdrawal,
    Response,
)
