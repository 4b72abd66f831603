"""Forms of the European Investigation Order, Directive 2014/41/EU: Annexes A, B and C.

Each model mirrors ``schemas/json/<type>.json``; the schema's ``description`` cites
the annex section and article for every member. The annexes' field lists are recalled
(LEGAL.md section 4, ``x-verified: false``), not yet checked against OJ L 130/1.

Rules the schemas cannot express are checked here and reported as ``E_SEMANTIC``:
which measures of Annex A Section C need which part of Section H (:data:`SECTION_H`),
the order of dates, and which State an authority belongs to. Conditional members that
the schemas do express (``if``/``then``) are mirrored here with ordinary errors, so that
the model alone refuses what the schema refuses.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any, ClassVar, Literal, Self

from pydantic import AfterValidator, Field, model_validator
from pydantic_core import InitErrorDetails, PydanticCustomError, ValidationError

from broker.forms.base import (
    Authority,
    Contact,
    Country,
    Date,
    DateTime,
    Email,
    Form,
    Identifier,
    Language,
    Model,
    Offence,
    Period,
    Phone,
    PriorRequest,
    ShortText,
    Text,
    Uuid,
    not_allowed_error,
    required_error,
    semantic_error,
    unique,
)

__all__ = [
    "FORMS",
    "SECTION_H",
    "AdditionalRequirements",
    "AuthorityDetails",
    "BankAccounts",
    "BankingOperations",
    "CovertInvestigation",
    "EioReference",
    "ExecutingAuthority",
    "Formalities",
    "Forwarding",
    "Grounds",
    "HearingArrangements",
    "IdentityDocument",
    "Interception",
    "InterceptionLegalBasis",
    "InterceptionNotification",
    "InterceptionPerson",
    "InvestigationOrder",
    "IssuingAuthority",
    "LegalRemedies",
    "Measure",
    "MeasureKind",
    "OffenceCategory",
    "Person",
    "RealTimeMonitoring",
    "ReceiptConfirmation",
    "RemediesAuthority",
    "RemoteHearing",
    "Signatory",
    "TemporaryTransfer",
    "TransferToExecutingState",
    "TransferToIssuingState",
    "Urgency",
    "ValidatingAuthority",
]

MeasureKind = Literal[
    "evidence_already_possessed",
    "database_information",
    "hearing",
    "subscriber_identification",
    "temporary_transfer_to_issuing_state",
    "temporary_transfer_to_executing_state",
    "hearing_by_videoconference",
    "hearing_by_telephone_conference",
    "bank_account_information",
    "banking_operations_information",
    "real_time_monitoring",
    "covert_investigation",
    "interception_of_telecommunications",
    "provisional_measures",
    "other",
]

#: Annex D (and Annex A Section G(3)): the 32 categories of offences.
OffenceCategory = Literal[
    "participation_in_criminal_organisation",
    "terrorism",
    "trafficking_in_human_beings",
    "sexual_exploitation_of_children_and_child_pornography",
    "illicit_trafficking_in_narcotic_drugs_and_psychotropic_substances",
    "illicit_trafficking_in_weapons_munitions_and_explosives",
    "corruption",
    "fraud",
    "laundering_of_proceeds_of_crime",
    "counterfeiting_currency",
    "computer_related_crime",
    "environmental_crime",
    "facilitation_of_unauthorised_entry_and_residence",
    "murder_grievous_bodily_injury",
    "illicit_trade_in_human_organs_and_tissue",
    "kidnapping_illegal_restraint_and_hostage_taking",
    "racism_and_xenophobia",
    "organised_or_armed_robbery",
    "illicit_trafficking_in_cultural_goods",
    "swindling",
    "racketeering_and_extortion",
    "counterfeiting_and_piracy_of_products",
    "forgery_of_administrative_documents_and_trafficking_therein",
    "forgery_of_means_of_payment",
    "illicit_trafficking_in_hormonal_substances_and_other_growth_promoters",
    "illicit_trafficking_in_nuclear_or_radioactive_materials",
    "trafficking_in_stolen_vehicles",
    "rape",
    "arson",
    "crimes_within_jurisdiction_of_international_criminal_court",
    "unlawful_seizure_of_aircraft_or_ships",
    "sabotage",
]

#: Annex A Section H: the part of Section H that a measure kind of Section C requires,
#: as a member path below ``additional_requirements``, with the part's number. A part
#: may only be filled in when its measure is requested.
SECTION_H: Mapping[str, tuple[tuple[str, ...], str]] = {
    "temporary_transfer_to_issuing_state": (("temporary_transfer", "to_issuing_state"), "H1(1)"),
    "temporary_transfer_to_executing_state": (
        ("temporary_transfer", "to_executing_state"),
        "H1(2)",
    ),
    "hearing_by_videoconference": (("remote_hearing", "videoconference"), "H2"),
    "hearing_by_telephone_conference": (("remote_hearing", "telephone_conference"), "H2"),
    "bank_account_information": (("bank_accounts",), "H3"),
    "banking_operations_information": (("banking_operations",), "H4"),
    "covert_investigation": (("covert_investigation",), "H5"),
    "real_time_monitoring": (("real_time_monitoring",), "H6"),
    "interception_of_telecommunications": (("interception",), "H7"),
}

Languages = Annotated[
    tuple[Language, ...], Field(min_length=1, max_length=10), AfterValidator(unique)
]
Countries = Annotated[
    tuple[Country, ...], Field(min_length=1, max_length=10), AfterValidator(unique)
]


# -- errors ------------------------------------------------------------------------
# A rule the schema expresses with if/then is mirrored with an ordinary error (the
# catalogue reports the schema's problem first, so these only decide the model's
# verdict). A rule beyond the schema is an E_SEMANTIC error at the exact member.


def _not_empty(model: Model) -> None:
    if not model.model_fields_set:
        raise PydanticCustomError("evb_empty", "must have at least 1 member(s)")


def _semantic(title: str, problems: list[tuple[tuple[str, ...], str]]) -> None:
    """Raise every semantic problem at once, each at a member path below the model.

    A raised :func:`semantic_error` stops at the first problem; a form with three
    measures lacking their Section H parts should hear of all three. A
    ``ValidationError`` carries one error per location (``/additional_requirements/
    interception`` …), and pydantic prefixes each with the model's own location.
    """
    if problems:
        raise ValidationError.from_exception_data(
            title,
            [
                InitErrorDetails(type=semantic_error(message), loc=loc, input=None)
                for loc, message in problems
            ],
        )


# -- shared parts ------------------------------------------------------------------


class Signatory(Model):
    """The representative who signs a form for an authority."""

    name: ShortText
    position: ShortText | None = None


class AuthorityDetails(Model):
    """Annex B Sections B-C, Annex C Section B: an authority with address and languages."""

    authority: Authority
    address: ShortText | None = None
    languages: Languages | None = None


# -- Annex A -------------------------------------------------------------------------


class ExecutingAuthority(Model):
    """Annex A Section A: the executing authority, where known."""

    name: ShortText
    address: ShortText | None = None
    phone: Phone | None = None
    email: Email | None = None


UrgencyReason = Literal["evidence_may_be_concealed_or_destroyed", "imminent_trial_date", "other"]


class Urgency(Model):
    """Annex A Section B: urgency, and a shorter time limit or specific date (Art 12(2))."""

    urgent: bool
    reasons: (
        Annotated[tuple[UrgencyReason, ...], Field(min_length=1), AfterValidator(unique)] | None
    ) = None
    deadline: Date | None = None
    specific_date: Date | None = None
    explanation: Text | None = None

    @model_validator(mode="after")
    def _conditional_members(self) -> Self:
        if self.urgent and self.reasons is None:
            raise required_error("reasons")
        if not self.urgent and self.reasons is not None:
            raise not_allowed_error("reasons")
        needs_explanation = (
            self.deadline is not None
            or self.specific_date is not None
            or "other" in (self.reasons or ())
        )
        if needs_explanation and self.explanation is None:
            raise required_error("explanation")
        return self


class Measure(Model):
    """Annex A Section C: one investigative measure."""

    kind: MeasureKind
    description: Text


class IdentityDocument(Model):
    """Annex A Section E: an identity document."""

    type: Literal["identity_card", "passport", "residence_permit", "driving_licence", "other"]
    number: ShortText
    issuing_country: Country | None = None


_NATURAL_ONLY = (
    "first_names",
    "nationalities",
    "date_of_birth",
    "place_of_birth",
    "identity_number",
    "identity_documents",
    "languages",
    "address_is_last_known",
)
_LEGAL_ONLY = ("legal_form", "registered_seat", "registration_number", "representative")


class Person(Model):
    """Annex A Section E: a natural or legal person concerned by the measure."""

    kind: Literal["natural_person", "legal_person"]
    role: Literal["suspected_or_accused", "victim", "witness", "expert", "third_party", "other"]
    role_details: ShortText | None = None
    name: ShortText
    first_names: ShortText | None = None
    aliases: Annotated[tuple[ShortText, ...], Field(min_length=1, max_length=20)] | None = None
    nationalities: Countries | None = None
    date_of_birth: Date | None = None
    place_of_birth: ShortText | None = None
    identity_number: ShortText | None = None
    identity_documents: (
        Annotated[tuple[IdentityDocument, ...], Field(min_length=1, max_length=10)] | None
    ) = None
    languages: Languages | None = None
    legal_form: ShortText | None = None
    registered_seat: ShortText | None = None
    registration_number: ShortText | None = None
    representative: ShortText | None = None
    address: ShortText | None = None
    address_is_last_known: bool | None = None
    identifiers: Annotated[tuple[Identifier, ...], Field(min_length=1, max_length=100)] | None = (
        None
    )
    measure_location: ShortText | None = None
    other_information: Text | None = None

    @model_validator(mode="after")
    def _conditional_members(self) -> Self:
        if self.role == "other" and self.role_details is None:
            raise required_error("role_details")
        other_kind = _NATURAL_ONLY if self.kind == "legal_person" else _LEGAL_ONLY
        for name in other_kind:
            if name in self.model_fields_set:
                raise not_allowed_error(name)
        return self


class Grounds(Model):
    """Annex A Section G: grounds for issuing the EIO."""

    offence: Offence
    maximum_penalty: ShortText
    punishable_by_at_least_three_years: bool
    offence_categories: (
        Annotated[
            tuple[OffenceCategory, ...], Field(min_length=1, max_length=32), AfterValidator(unique)
        ]
        | None
    ) = None
    additional_information: Text | None = None

    @model_validator(mode="after")
    def _categories_need_three_years(self) -> Self:
        if self.offence_categories is not None and not self.punishable_by_at_least_three_years:
            raise PydanticCustomError(
                "evb_const", "must be true", {"field": "punishable_by_at_least_three_years"}
            )
        return self


class TransferToIssuingState(Model):
    """Annex A Section H1(1), Art 22: transfer to the issuing State."""

    consent: Literal["given", "refused", "opinion_to_be_sought"]


class TransferToExecutingState(Model):
    """Annex A Section H1(2), Art 23: transfer to the executing State."""

    consent: Literal["given", "refused"]


class TemporaryTransfer(Model):
    """Annex A Section H1: temporary transfer of persons held in custody."""

    to_issuing_state: TransferToIssuingState | None = None
    to_executing_state: TransferToExecutingState | None = None

    @model_validator(mode="after")
    def _not_empty(self) -> Self:
        _not_empty(self)
        return self


class HearingArrangements(Model):
    """Annex A Section H2: one kind of hearing at a distance (Arts 24-25)."""

    conducting_authority: ShortText
    persons_to_be_heard: Annotated[tuple[ShortText, ...], Field(min_length=1, max_length=100)]
    reasons: Text
    accused_consents: bool | None = None


class RemoteHearing(Model):
    """Annex A Section H2: hearing by videoconference or by telephone conference."""

    videoconference: HearingArrangements | None = None
    telephone_conference: HearingArrangements | None = None

    @model_validator(mode="after")
    def _not_empty(self) -> Self:
        _not_empty(self)
        return self


class BankAccounts(Model):
    """Annex A Section H3, Art 26: information on bank and other financial accounts."""

    account_kinds: Annotated[
        tuple[Literal["bank", "non_bank_financial"], ...],
        Field(min_length=1),
        AfterValidator(unique),
    ]
    relevance: Text
    reasons_held_in_executing_state: Text
    institutions: Annotated[tuple[ShortText, ...], Field(min_length=1, max_length=100)] | None = (
        None
    )


class BankingOperations(Model):
    """Annex A Section H4, Art 27: information on banking and other financial operations."""

    relevance: Text
    accounts: Annotated[tuple[ShortText, ...], Field(min_length=1, max_length=100)]
    period: Period


class CovertInvestigation(Model):
    """Annex A Section H5, Art 29: covert investigations."""

    relevance: Text
    period: Period | None = None


class RealTimeMonitoring(Model):
    """Annex A Section H6, Art 28: gathering of evidence in real time."""

    monitoring_type: Literal["banking_operations", "controlled_delivery", "other"]
    details: Text | None = None
    relevance: Text
    period: Period | None = None

    @model_validator(mode="after")
    def _other_needs_details(self) -> Self:
        if self.monitoring_type == "other" and self.details is None:
            raise required_error("details")
        return self


class Interception(Model):
    """Annex A Section H7, Art 30: interception of telecommunications."""

    relevance: Text
    subject: Text
    period: Period
    targets: Annotated[tuple[Identifier, ...], Field(min_length=1, max_length=100)]
    execution_method: Literal["immediate_transmission", "recording_and_subsequent_transmission"]
    transcription: bool
    decoding_or_decryption: bool


class AdditionalRequirements(Model):
    """Annex A Section H: additional requirements for certain measures (H1-H7)."""

    temporary_transfer: TemporaryTransfer | None = None
    remote_hearing: RemoteHearing | None = None
    bank_accounts: BankAccounts | None = None
    banking_operations: BankingOperations | None = None
    covert_investigation: CovertInvestigation | None = None
    real_time_monitoring: RealTimeMonitoring | None = None
    interception: Interception | None = None

    @model_validator(mode="after")
    def _not_empty(self) -> Self:
        _not_empty(self)
        return self


class Formalities(Model):
    """Annex A Section I: formalities and procedures requested for the execution."""

    procedures: Text | None = None
    assistance_requested: bool
    assisting_officials: (
        Annotated[tuple[Contact, ...], Field(min_length=1, max_length=20)] | None
    ) = None
    languages: Languages | None = None

    @model_validator(mode="after")
    def _officials_iff_assistance(self) -> Self:
        if self.assistance_requested and self.assisting_officials is None:
            raise required_error("assisting_officials")
        if not self.assistance_requested and self.assisting_officials is not None:
            raise not_allowed_error("assisting_officials")
        return self


class RemediesAuthority(Model):
    """Annex A Section J(2): where to obtain information on legal remedies."""

    name: ShortText
    contact: Contact


class LegalRemedies(Model):
    """Annex A Section J: legal remedies (Art 14)."""

    remedy_sought: bool
    details: Text | None = None
    information_authority: RemediesAuthority | None = None

    @model_validator(mode="after")
    def _sought_needs_details(self) -> Self:
        if self.remedy_sought and self.details is None:
            raise required_error("details")
        return self


class IssuingAuthority(Model):
    """Annex A Section K: the issuing authority (Art 2(c))."""

    type: Literal[
        "judge", "court", "investigating_judge", "public_prosecutor", "other_competent_authority"
    ]
    authority: Authority
    address: ShortText | None = None
    languages: Languages | None = None
    signatory: Signatory
    signature_date: Date


class ValidatingAuthority(Model):
    """Annex A Section L: the validating judicial authority (Art 2(c)(ii))."""

    type: Literal["judge_or_court", "investigating_judge", "public_prosecutor"]
    authority: Authority
    address: ShortText | None = None
    languages: Languages | None = None
    signatory: Signatory
    validation_date: Date


class InvestigationOrder(Form):
    """Annex A: the European Investigation Order."""

    form_type: ClassVar[str] = "eu.eio.a"

    issuing_state: Country
    executing_state: Country
    executing_authority: ExecutingAuthority | None = None
    urgency: Urgency
    measures: Annotated[tuple[Measure, ...], Field(min_length=1, max_length=100)]
    earlier_eios: (
        Annotated[tuple[PriorRequest, ...], Field(min_length=1, max_length=100)] | None
    ) = None
    persons: Annotated[tuple[Person, ...], Field(min_length=1, max_length=100)] | None = None
    proceedings: Literal[
        "criminal",
        "administrative_authority",
        "judicial_authority_infringement",
        "legal_person_liability",
    ]
    grounds: Grounds
    additional_requirements: AdditionalRequirements | None = None
    formalities: Formalities | None = None
    legal_remedies: LegalRemedies | None = None
    issuing_authority: IssuingAuthority
    validating_authority: ValidatingAuthority | None = None
    language: Language

    @model_validator(mode="after")
    def _validation_when_other_authority(self) -> Self:
        # Art 2(c)(ii): an EIO of an "other competent authority" must be validated.
        if (
            self.issuing_authority.type == "other_competent_authority"
            and self.validating_authority is None
        ):
            raise required_error("validating_authority")
        return self

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        problems: list[tuple[tuple[str, ...], str]] = []
        if self.executing_state == self.issuing_state:
            problems.append((("executing_state",), "the executing State is the issuing State"))
        if self.issuing_authority.authority.country != self.issuing_state:
            problems.append(
                (
                    ("issuing_authority", "authority", "country"),
                    "the issuing authority is not in the issuing State",
                )
            )
        signed = self.issuing_authority.signature_date
        for name in ("deadline", "specific_date"):
            wished = getattr(self.urgency, name)
            if wished is not None and wished < signed:
                problems.append((("urgency", name), "the date is before the EIO was signed"))
        validating = self.validating_authority
        if validating is not None:
            if validating.authority.country != self.issuing_state:
                problems.append(
                    (
                        ("validating_authority", "authority", "country"),
                        "the validating authority is not in the issuing State",
                    )
                )
            if validating.validation_date < signed:
                problems.append(
                    (
                        ("validating_authority", "validation_date"),
                        "the EIO was validated before it was signed",
                    )
                )
        problems.extend(self._section_h_problems())
        _semantic("InvestigationOrder", problems)
        return self

    def _section_h_problems(self) -> list[tuple[tuple[str, ...], str]]:
        requested = {measure.kind for measure in self.measures}
        problems: list[tuple[tuple[str, ...], str]] = []
        for kind, (path, part) in SECTION_H.items():
            present = _member(self.additional_requirements, path) is not None
            loc = ("additional_requirements", *path)
            if kind in requested and not present:
                problems.append((loc, f"a measure in Section C requires Section {part}"))
            elif present and kind not in requested:
                problems.append(
                    (loc, f"Section {part} is filled in but its measure is not in Section C")
                )
        return problems


def _member(node: Any, path: tuple[str, ...]) -> Any:
    for name in path:
        if node is None:
            return None
        node = getattr(node, name)
    return node


# -- Annex B -------------------------------------------------------------------------


class EioReference(Model):
    """Annex B Section A: the EIO whose receipt is confirmed."""

    issuing_authority: ShortText
    issuing_state: Country
    reference: ShortText
    issue_date: Date
    case: Uuid | None = None


class Forwarding(Model):
    """Annex B Section C: the competent authority the EIO was forwarded to (Art 7(6))."""

    competent_authority: AuthorityDetails
    forwarded_on: Date


class ReceiptConfirmation(Form):
    """Annex B: confirmation of receipt of an EIO (Art 16(1))."""

    form_type: ClassVar[str] = "eu.eio.b"

    eio: EioReference
    received_on: Date
    receiving_authority: AuthorityDetails
    receiving_authority_competent: bool
    forwarded_to: Forwarding | None = None
    other_information: Text | None = None
    signatory: Signatory
    signature_date: Date

    @model_validator(mode="after")
    def _forwarded_iff_not_competent(self) -> Self:
        if not self.receiving_authority_competent and self.forwarded_to is None:
            raise required_error("forwarded_to")
        if self.receiving_authority_competent and self.forwarded_to is not None:
            raise not_allowed_error("forwarded_to")
        return self

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        problems: list[tuple[tuple[str, ...], str]] = []
        if self.received_on < self.eio.issue_date:
            problems.append((("received_on",), "the EIO was received before it was issued"))
        executing_state = self.receiving_authority.authority.country
        if executing_state == self.eio.issuing_state:
            problems.append(
                (
                    ("receiving_authority", "authority", "country"),
                    "the receiving authority is in the issuing State",
                )
            )
        if self.forwarded_to is not None:
            if self.forwarded_to.forwarded_on < self.received_on:
                problems.append(
                    (("forwarded_to", "forwarded_on"), "the EIO was forwarded before it arrived")
                )
            # Art 7(6): forwarded to the competent authority of the same executing State.
            if self.forwarded_to.competent_authority.authority.country != executing_state:
                problems.append(
                    (
                        ("forwarded_to", "competent_authority", "authority", "country"),
                        "the competent authority is not in the State of the receiving authority",
                    )
                )
        if self.signature_date < self.received_on:
            problems.append((("signature_date",), "the receipt was signed before the EIO arrived"))
        _semantic("ReceiptConfirmation", problems)
        return self


# -- Annex C -------------------------------------------------------------------------


class InterceptionPerson(Model):
    """Annex C Section C(iv): a person concerned by the interception."""

    name: ShortText
    first_names: ShortText | None = None
    date_of_birth: Date | None = None
    nationalities: Countries | None = None
    address: ShortText | None = None
    languages: Languages | None = None


class InterceptionLegalBasis(Model):
    """Annex C Section C(v): the decision that orders or authorises the interception."""

    authorising_authority: ShortText
    decision_reference: ShortText
    decision_date: Date
    provisions: Annotated[tuple[ShortText, ...], Field(min_length=1, max_length=100)]


class InterceptionNotification(Form):
    """Annex C: notification of an interception without technical assistance (Art 31)."""

    form_type: ClassVar[str] = "eu.eio.c"

    intercepting_state: Country
    intercepting_authority: AuthorityDetails
    notified_state: Country
    interception_status: Literal["not_yet_started", "ongoing", "completed"]
    period: Period
    targets: Annotated[tuple[Identifier, ...], Field(min_length=1, max_length=100)]
    persons: (
        Annotated[tuple[InterceptionPerson, ...], Field(min_length=1, max_length=100)] | None
    ) = None
    offence: Offence
    legal_basis: InterceptionLegalBasis
    signatory: Signatory
    signed_at: DateTime
    language: Language

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        problems: list[tuple[tuple[str, ...], str]] = []
        if self.notified_state == self.intercepting_state:
            problems.append((("notified_state",), "the notified State is the intercepting State"))
        if self.intercepting_authority.authority.country != self.intercepting_state:
            problems.append(
                (
                    ("intercepting_authority", "authority", "country"),
                    "the intercepting authority is not in the intercepting State",
                )
            )
        started = self.period.from_ <= self.signed_at
        ended = self.period.to <= self.signed_at
        status = "completed" if ended else "ongoing" if started else "not_yet_started"
        if status != self.interception_status:
            problems.append(
                (
                    ("interception_status",),
                    "the status does not match the period and the time of notification",
                )
            )
        _semantic("InterceptionNotification", problems)
        return self


#: The form models this module defines.
FORMS: tuple[type[Form], ...] = (InvestigationOrder, ReceiptConfirmation, InterceptionNotification)
