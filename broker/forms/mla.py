"""The general treaty-based request for mutual legal assistance in criminal matters.

The model mirrors ``schemas/json/mla.request.json``; the schema's ``description``
cites the treaty provision behind every member. :class:`Measure` is also the shape
of the assistance requested under CETS 224 Art 10 (:mod:`broker.forms.protocol2`).
"""

from __future__ import annotations

from typing import Annotated, ClassVar, Literal

from pydantic import Field, ValidationInfo, field_validator

from broker.forms.base import (
    Authority,
    Country,
    Custodian,
    Date,
    Form,
    Identifier,
    Language,
    Model,
    Offence,
    Period,
    PriorRequest,
    ShortText,
    Text,
    semantic_error,
)

__all__ = [
    "FORMS",
    "Addressee",
    "Deadline",
    "LegalBasisItem",
    "Measure",
    "MeasureKind",
    "MlaRequest",
    "Person",
    "PersonRole",
]

MeasureKind = Literal[
    "hearing_witness",
    "hearing_suspect",
    "search_seizure",
    "production_of_documents",
    "stored_data_disclosure",
    "real_time_traffic_data",
    "interception",
    "banking_information",
    "service_of_documents",
    "other",
]
PersonRole = Literal["suspect", "accused", "witness", "victim", "other"]


class Addressee(Model):
    """An authority of the requested Party, as far as the requesting Party knows it."""

    name: ShortText
    country: Country
    unit: ShortText | None = None


class LegalBasisItem(Model):
    """One treaty or instrument and the articles the request relies on."""

    instrument: ShortText
    articles: Annotated[tuple[ShortText, ...], Field(min_length=1, max_length=100)]


class Measure(Model):
    """One measure of assistance requested (ETS 30 Art 14(1)(b); CETS 224 Art 10)."""

    measure: MeasureKind
    description: Text
    identifiers: Annotated[tuple[Identifier, ...], Field(min_length=1, max_length=1000)] | None = (
        None
    )
    period: Period | None = None
    custodian: Custodian | None = None


class Person(Model):
    """A person concerned by the request (ETS 30 Art 14(1)(c)-(d))."""

    role: PersonRole
    name: ShortText
    date_of_birth: Date | None = None
    place_of_birth: ShortText | None = None
    nationality: Country | None = None
    address: ShortText | None = None


class Deadline(Model):
    """The date by which a response is wished, and why."""

    respond_by: Date
    reason: Text


class MlaRequest(Form):
    """A treaty-based request for mutual legal assistance in criminal matters.

    Beyond the schema: the response date wished is not before the date of the request,
    and no date of birth or preceding request is after it.
    """

    form_type: ClassVar[str] = "mla.request"

    requesting_authority: Authority
    requested_authority: Addressee | None = None
    # date_issued comes before the members checked against it: field validators see
    # only the members declared earlier.
    date_issued: Date
    legal_basis: Annotated[tuple[LegalBasisItem, ...], Field(min_length=1, max_length=20)]
    offence: Offence
    purpose: Text
    measures: Annotated[tuple[Measure, ...], Field(min_length=1, max_length=100)]
    persons: Annotated[tuple[Person, ...], Field(min_length=1, max_length=100)] | None = None
    deadline: Deadline | None = None
    confidential: bool
    formalities: Text | None = None
    preceding_requests: (
        Annotated[tuple[PriorRequest, ...], Field(min_length=1, max_length=100)] | None
    ) = None
    language: Language

    @field_validator("deadline")
    @classmethod
    def _respond_after_issue(cls, value: Deadline | None, info: ValidationInfo) -> Deadline | None:
        issued = info.data.get("date_issued")
        if value is not None and issued is not None and value.respond_by < issued:
            raise semantic_error(
                "the response date wished is before the date of the request", "respond_by"
            )
        return value

    @field_validator("persons")
    @classmethod
    def _born_before_issue(
        cls, value: tuple[Person, ...] | None, info: ValidationInfo
    ) -> tuple[Person, ...] | None:
        issued = info.data.get("date_issued")
        for index, person in enumerate(value or ()):
            born = person.date_of_birth
            if issued is not None and born is not None and born > issued:
                raise semantic_error(
                    f"person {index}: the date of birth is after the date of the request"
                )
        return value

    @field_validator("preceding_requests")
    @classmethod
    def _preceded_issue(
        cls, value: tuple[PriorRequest, ...] | None, info: ValidationInfo
    ) -> tuple[PriorRequest, ...] | None:
        issued = info.data.get("date_issued")
        for index, prior in enumerate(value or ()):
            if issued is not None and prior.date is not None and prior.date > issued:
                raise semantic_error(f"preceding request {index} is dated after this request")
        return value


#: The form models this module defines.
FORMS: tuple[type[Form], ...] = (MlaRequest,)
