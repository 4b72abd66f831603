"""Forms of the EU e-Evidence Regulation (EU) 2023/1543: Annexes I, II, III, V and VI.

Each model mirrors ``schemas/json/<type>.json``; the schema's ``description`` cites
the annex section or article for every member. Cross-section rules that the schema
encodes with ``if``/``then`` (who must validate an order, when the enforcing authority
is notified …) are repeated here so that model and schema refuse the same documents;
rules the schema cannot express raise :func:`~broker.forms.base.semantic_error`.
Numbers fixed by the Regulation (the 30-day extension of Art 11(1)) come from
``schemas/data/eevidence.json``, never from this module.
"""

from __future__ import annotations

import functools
from datetime import UTC, date, datetime, time, timedelta, timezone
from typing import Annotated, ClassVar, Literal, Self

from pydantic import AfterValidator, Field, field_validator, model_validator
from pydantic_core import PydanticCustomError

from broker.forms.base import (
    Authority,
    Contact,
    Country,
    Date,
    DateTime,
    Form,
    Identifier,
    Language,
    Model,
    Offence,
    Period,
    PriorRequest,
    ShortText,
    Text,
    schema_rule_error,
    semantic_error,
    unique,
)
from broker.resources import read_json

__all__ = [
    "FORMS",
    "Addressee",
    "AuthorityDetails",
    "Deadlines",
    "EarlierOrder",
    "EpocAddressee",
    "EpocData",
    "EpocGrounds",
    "ExPostValidation",
    "Header",
    "Inability",
    "InabilityAddressee",
    "InabilityCertificate",
    "IssuerDetails",
    "Notification",
    "PreservationConfirmation",
    "PreservationExtension",
    "PreservationGrounds",
    "PreservationOrder",
    "ProductionOrder",
    "SubsequentRequest",
    "ThirdCountryConflict",
    "Transfer",
    "ValidatorDetails",
    "regulation_number",
]

EpocDataCategory = Literal["subscriber", "identification", "traffic", "content"]
AddresseeKind = Literal["designated_establishment", "legal_representative"]
EmergencyThreat = Literal["life_physical_integrity_safety", "critical_infrastructure"]
EarlierOrderKind = Literal["epoc_pr", "epoc", "eio", "mla", "other"]
Proceedings = Literal["criminal_proceedings", "sentence_execution"]
TrafficContentBasis = Literal["max_penalty_at_least_3_years", "listed_offence"]
IssuerType = Literal["judge_court", "prosecutor", "other_competent_authority"]
ValidatorType = Literal["judge_court", "prosecutor"]
TransferRecipient = Literal["issuing_authority", "validating_authority", "other_authority"]
CertificateKind = Literal["epoc", "epoc_pr"]
ProductionRequestKind = Literal["epoc", "eio", "mla"]
#: Annex III reasons; the same codes as the Annex III rows of schemas/data/refusal_grounds.json.
InabilityReason = Literal[
    "incomplete",
    "manifest_error",
    "insufficient_information",
    "de_facto_impossibility",
    "force_majeure",
    "immunity_privilege",
    "third_country_law_conflict",
    "other",
]
ImpossibilityReason = Literal[
    "not_a_customer", "deleted_before_receipt", "not_stored_at_receipt", "other"
]

#: The first moment of a calendar day anywhere on Earth is 00:00 at UTC+14: a time
#: stamp before it cannot fall on or after that day in any time zone.
_EARLIEST_OFFSET = timezone(timedelta(hours=14))


def _day_began(day: date) -> datetime:
    return datetime.combine(day, time(0), tzinfo=_EARLIEST_OFFSET).astimezone(UTC)


@functools.cache
def regulation_number(name: str) -> int:
    """Return a number of Regulation (EU) 2023/1543 from ``schemas/data/eevidence.json``.

    Raises:
        KeyError: the table has no such entry.
    """
    values = {row["name"]: row["value"] for row in read_json("data", "eevidence.json")["values"]}
    value = values[name]
    if not isinstance(value, int) or isinstance(value, bool):
        raise TypeError(f"eevidence.json: {name} is not an integer")
    return value


Categories = Annotated[
    tuple[EpocDataCategory, ...], Field(min_length=1, max_length=4), AfterValidator(unique)
]
Languages = Annotated[
    tuple[Language, ...], Field(min_length=1, max_length=24), AfterValidator(unique)
]


class Header(Model):
    """Annex I/II Section A: issuing State, issuing and validating authority, file numbers."""

    issuing_state: Country
    issuing_authority: ShortText
    issuing_file_number: ShortText
    validating_authority: ShortText | None = None
    validating_file_number: ShortText | None = None

    @model_validator(mode="after")
    def _file_number_needs_authority(self) -> Self:
        if self.validating_file_number is not None and self.validating_authority is None:
            raise schema_rule_error(
                "a validating file number needs a validating authority", "validating_authority"
            )
        return self


class Addressee(Model):
    """Annex I/II Section B: the designated establishment or legal representative."""

    kind: AddresseeKind
    name: ShortText
    address: ShortText
    country: Country
    service_provider: ShortText | None = None
    reference: ShortText | None = None


class EpocAddressee(Addressee):
    """Annex I Section B, with the flag for an emergency order to another addressee (Art 7)."""

    emergency_other_addressee: bool


class Deadlines(Model):
    """Annex I Section C: whether the order is issued in an emergency (Art 3(18), 10(4))."""

    emergency: bool
    emergency_threat: EmergencyThreat | None = None
    procedural_deadlines: Text | None = None

    @model_validator(mode="after")
    def _threat_only_in_emergency(self) -> Self:
        if self.emergency and self.emergency_threat is None:
            raise schema_rule_error("an emergency needs the threat it involves", "emergency_threat")
        if not self.emergency and self.emergency_threat is not None:
            raise schema_rule_error("a threat is only given in an emergency", "emergency_threat")
        return self


class EarlierOrder(Model):
    """Annex I Section D: an earlier order or request concerning the same data."""

    kind: EarlierOrderKind
    request: PriorRequest


class Notification(Model):
    """Annex I Section E: information for a possible notification of the enforcing authority."""

    notification_required: bool
    offence_in_issuing_state: bool | None = None
    person_resides_in_issuing_state: bool | None = None
    enforcing_state: Country | None = None
    enforcing_authority: ShortText | None = None

    @model_validator(mode="after")
    def _enforcing_state_when_notified(self) -> Self:
        if self.notification_required and self.enforcing_state is None:
            raise schema_rule_error("a notification needs the enforcing State", "enforcing_state")
        if not self.notification_required:
            for name in ("enforcing_state", "enforcing_authority"):
                if getattr(self, name) is not None:
                    raise schema_rule_error(
                        "only given when the enforcing authority is notified", name
                    )
        return self

    @property
    def both_links_to_issuing_state(self) -> bool:
        """Art 8(2): offence in, and person resident in, the issuing State."""
        return (
            self.offence_in_issuing_state is True and self.person_resides_in_issuing_state is True
        )


class EpocData(Model):
    """Annex I Section F / Annex II Section C: the data to produce or preserve."""

    service: ShortText | None = None
    identifiers: Annotated[tuple[Identifier, ...], Field(min_length=1, max_length=1000)]
    period: Period | None = None
    categories: Categories
    details: Text | None = None

    @property
    def traffic_or_content(self) -> bool:
        """Whether traffic data (other than identification data) or content data are requested."""
        return "traffic" in self.categories or "content" in self.categories


class PreservationGrounds(Model):
    """Annex II Section D: the offence and the proceedings."""

    proceedings: Proceedings
    offence: Offence
    other_information: Text | None = None


class EpocGrounds(PreservationGrounds):
    """Annex I Section G: the offence, its penalty, and the basis of Art 5(4)."""

    maximum_penalty: ShortText
    annex_iv_category: ShortText | None = None
    traffic_content_basis: TrafficContentBasis | None = None


class AuthorityDetails(Model):
    """Annex I Sections I-J / Annex II Section E: an authority's representative and signature."""

    representative: ShortText
    position: ShortText
    address: ShortText
    languages: Languages
    contact: Contact
    signed_on: Date


class IssuerDetails(AuthorityDetails):
    """The issuing authority (Art 4(1)-(3))."""

    type: IssuerType


class ValidatorDetails(AuthorityDetails):
    """The validating authority (Art 4(1)(b), 4(2)(b), 4(3)(b))."""

    type: ValidatorType


class ExPostValidation(Model):
    """Annex I Section K: ex-post validation of an emergency order (Art 4(5))."""

    requested_at: DateTime
    validating_authority: ShortText | None = None


class Transfer(Model):
    """Annex I Section L: where the data go, and whom to ask for clarifications."""

    recipient: TransferRecipient
    other_authority: Authority | None = None
    contact: Contact

    @model_validator(mode="after")
    def _other_authority_named(self) -> Self:
        if (self.recipient == "other_authority") != (self.other_authority is not None):
            raise schema_rule_error(
                "the other authority is given exactly when it is the recipient", "other_authority"
            )
        return self


def _check_header_matches_validation(header: Header, validation: ValidatorDetails | None) -> None:
    if validation is not None and header.validating_authority is None:
        raise schema_rule_error("Section A must name the validating authority", "header")
    if header.validating_authority is not None and validation is None:
        raise schema_rule_error("the validating authority's details are missing", "validation")


class ProductionOrder(Form):
    """Annex I: European Production Order Certificate (EPOC)."""

    form_type: ClassVar[str] = "eu.epoc"

    header: Header
    addressee: EpocAddressee
    deadlines: Deadlines
    earlier_orders: (
        Annotated[tuple[EarlierOrder, ...], Field(min_length=1, max_length=100)] | None
    ) = None
    notification: Notification
    data: EpocData
    grounds: EpocGrounds
    enforcing_authority_information: Text | None = None
    issuing_authority_details: IssuerDetails
    validation: ValidatorDetails | None = None
    ex_post_validation: ExPostValidation | None = None
    transfer: Transfer
    language: Language

    @model_validator(mode="after")
    def _schema_rules(self) -> Self:
        # The allOf of the schema, in its order.
        _check_header_matches_validation(self.header, self.validation)
        issuer = self.issuing_authority_details.type
        heavy = self.data.traffic_or_content
        # Art 4(1)(b), 4(2): who needs a validating authority, and of which kind.
        if self.validation is None and (
            (issuer == "other_competent_authority" and self.ex_post_validation is None)
            or (heavy and issuer == "prosecutor")
        ):
            raise schema_rule_error("this order needs a validating authority", "validation")
        if heavy and self.validation is not None and self.validation.type != "judge_court":
            raise schema_rule_error(
                "traffic or content data need a judge's validation", "validation"
            )
        # Art 4(5): ex-post validation only in an emergency, for an issuer needing
        # validation, and not for traffic or content data.
        if self.ex_post_validation is not None and (
            not self.deadlines.emergency or issuer != "other_competent_authority" or heavy
        ):
            raise schema_rule_error(
                "ex-post validation is not allowed for this order", "ex_post_validation"
            )
        if self.addressee.emergency_other_addressee and not self.deadlines.emergency:
            raise schema_rule_error("another addressee only in an emergency", "addressee")
        # Art 8(1)-(2).
        if (
            heavy
            and not self.notification.notification_required
            and not self.notification.both_links_to_issuing_state
        ):
            raise schema_rule_error("the enforcing authority must be notified", "notification")
        # Art 5(4).
        if (
            heavy
            and self.grounds.proceedings == "criminal_proceedings"
            and self.grounds.traffic_content_basis is None
        ):
            raise schema_rule_error(
                "traffic or content data need a basis under Art 5(4)", "grounds"
            )
        if self.transfer.recipient == "validating_authority" and self.validation is None:
            raise schema_rule_error(
                "the data cannot go to a validating authority that is not named", "validation"
            )
        return self

    @model_validator(mode="after")
    def _cross_border(self) -> Self:
        if self.addressee.country == self.header.issuing_state:
            raise semantic_error(
                "the addressee must be in another Member State than the issuing State", "addressee"
            )
        enforcing = self.notification.enforcing_state
        if enforcing is not None and enforcing != self.addressee.country:
            raise semantic_error(
                "the enforcing State is the Member State of the addressee", "notification"
            )
        return self

    @model_validator(mode="after")
    def _validation_after_signature(self) -> Self:
        post = self.ex_post_validation
        if post is not None and post.requested_at < _day_began(
            self.issuing_authority_details.signed_on
        ):
            raise semantic_error(
                "ex-post validation cannot be requested before the order was signed",
                "ex_post_validation",
            )
        return self


class PreservationOrder(Form):
    """Annex II: European Preservation Order Certificate (EPOC-PR)."""

    form_type: ClassVar[str] = "eu.epoc_pr"

    header: Header
    addressee: Addressee
    data: EpocData
    intended_requests: (
        Annotated[
            tuple[ProductionRequestKind, ...],
            Field(min_length=1, max_length=3),
            AfterValidator(unique),
        ]
        | None
    ) = None
    grounds: PreservationGrounds
    issuing_authority_details: IssuerDetails
    validation: ValidatorDetails | None = None
    language: Language

    @model_validator(mode="after")
    def _schema_rules(self) -> Self:
        _check_header_matches_validation(self.header, self.validation)
        # Art 4(3)(b): another competent authority needs a validating authority.
        if self.issuing_authority_details.type == "other_competent_authority" and (
            self.validation is None
        ):
            raise schema_rule_error("this order needs a validating authority", "validation")
        return self

    @model_validator(mode="after")
    def _cross_border(self) -> Self:
        if self.addressee.country == self.header.issuing_state:
            raise semantic_error(
                "the addressee must be in another Member State than the issuing State", "addressee"
            )
        return self


class InabilityCertificate(Model):
    """Annex III Section A: the EPOC or EPOC-PR concerned."""

    kind: CertificateKind
    issuing_state: Country
    issuing_authority: ShortText
    reference: ShortText
    issued_on: Date | None = None
    received_at: DateTime | None = None

    @model_validator(mode="after")
    def _received_after_issue(self) -> Self:
        if (
            self.issued_on is not None
            and self.received_at is not None
            and self.received_at < _day_began(self.issued_on)
        ):
            raise semantic_error(
                "the certificate cannot be received before it was issued", "received_at"
            )
        return self


class InabilityAddressee(Model):
    """Annex III Section A: the addressee giving the information."""

    kind: AddresseeKind
    name: ShortText
    country: Country
    service_provider: ShortText | None = None
    reference: ShortText | None = None


class ThirdCountryConflict(Model):
    """Annex III: the conflicting obligation under third-country law (Art 17)."""

    country: Country
    law: Text


_NEEDS_INFORMATION = frozenset({"incomplete", "manifest_error", "insufficient_information"})


class Inability(Form):
    """Annex III: information on the inability to execute an EPOC or EPOC-PR."""

    form_type: ClassVar[str] = "eu.epoc.inability"

    certificate: InabilityCertificate
    addressee: InabilityAddressee
    reasons: Annotated[
        tuple[InabilityReason, ...], Field(min_length=1, max_length=8), AfterValidator(unique)
    ]
    impossibility_reason: ImpossibilityReason | None = None
    explanation: Text
    information_needed: Text | None = None
    third_country_conflict: ThirdCountryConflict | None = None
    data_preserved: bool
    contact: Contact

    @model_validator(mode="after")
    def _schema_rules(self) -> Self:
        impossible = "de_facto_impossibility" in self.reasons
        if impossible != (self.impossibility_reason is not None):
            raise schema_rule_error(
                "a de facto impossibility needs its reason, and only it", "impossibility_reason"
            )
        if _NEEDS_INFORMATION & set(self.reasons) and self.information_needed is None:
            raise schema_rule_error("say what information is needed", "information_needed")
        conflict = "third_country_law_conflict" in self.reasons
        if conflict != (self.third_country_conflict is not None):
            raise schema_rule_error(
                "a third-country law conflict needs its details, and only it",
                "third_country_conflict",
            )
        if conflict and self.certificate.kind == "epoc_pr":
            raise schema_rule_error("Art 17 objections concern production orders only", "reasons")
        return self


class SubsequentRequest(Model):
    """Annex V: the request for production issued after the preservation."""

    kind: ProductionRequestKind
    reference: ShortText
    issued_on: Date
    addressed_to: ShortText | None = None


class PreservationConfirmation(Form):
    """Annex V: confirmation that a request for production follows the preservation."""

    form_type: ClassVar[str] = "eu.epoc_pr.confirmation"

    epoc_pr: PriorRequest
    addressee_reference: ShortText | None = None
    preservation_date: Date
    subsequent_request: SubsequentRequest
    issuing_authority: Authority

    @model_validator(mode="after")
    def _after_the_epoc_pr(self) -> Self:
        issued = self.epoc_pr.date
        if issued is None:
            return self
        if self.preservation_date < issued:
            raise semantic_error(
                "data cannot be preserved before the EPOC-PR was issued", "preservation_date"
            )
        if self.subsequent_request.issued_on < issued:
            raise semantic_error(
                "the request for production must follow the EPOC-PR", "subsequent_request"
            )
        return self


class PreservationExtension(Form):
    """Annex VI: extension of the obligation to preserve (Art 11(1))."""

    form_type: ClassVar[str] = "eu.epoc_pr.extension"

    epoc_pr: PriorRequest
    addressee_reference: ShortText | None = None
    extension_days: int
    reason: Text
    issuing_authority: Authority

    @field_validator("extension_days")
    @classmethod
    def _fixed_by_the_regulation(cls, value: int) -> int:
        if value != regulation_number("epoc_pr_extension_days"):
            raise PydanticCustomError("evb_const", "the extension is fixed by Art 11(1)")
        return value


#: The form models this module defines.
FORMS: tuple[type[Form], ...] = (
    ProductionOrder,
    PreservationOrder,
    Inability,
    PreservationConfirmation,
    PreservationExtension,
)
