"""Forms of the Second Additional Protocol to the Convention on Cybercrime (CETS 224).

Art 6 (domain name registration information), Art 7 (order for subscriber
information), Art 8 (giving effect to an order for expedited production), Art 9
(expedited disclosure in an emergency) and Art 10 (emergency mutual assistance).
Each model mirrors ``schemas/json/<type>.json``, whose ``description`` cites the
article for every member. The field lists rest on the article texts as recalled in
LEGAL.md section 2 and are not yet checked against the official text (the schemas
say ``x-verified: false``).
"""

from __future__ import annotations

from typing import Annotated, ClassVar, Literal, Self

from pydantic import (
    AfterValidator,
    Field,
    StringConstraints,
    ValidationInfo,
    field_validator,
    model_validator,
)

from broker.forms.base import (
    Authority,
    Country,
    DataCategory,
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
    formatted,
    not_allowed_error,
    required_error,
    semantic_error,
    unique,
)
from broker.forms.mla import Measure

__all__ = [
    "FORMS",
    "DataSought",
    "DomainRequest",
    "EmergencyDataItem",
    "EmergencyDisclosureRequest",
    "EmergencyMlaRequest",
    "GiveEffectRequest",
    "ProductionOrder",
    "ProductionSupplemental",
    "RegistrationEntity",
    "ServiceProvider",
    "SimultaneousNotification",
    "SubscriberInformation",
    "SubscriberOrder",
    "SubscriberSupplemental",
]

DomainName = Annotated[str, StringConstraints(max_length=253), formatted("domain")]
DomainDataElement = Literal[
    "registrant_name",
    "registrant_organisation",
    "registrant_postal_address",
    "registrant_email",
    "registrant_phone",
    "other",
]
#: ETS 185 Art 18(3)(a)-(c): the kinds of subscriber information.
SubscriberElement = Literal[
    "type_of_service",
    "technical_provisions",
    "period_of_service",
    "identity",
    "address",
    "access_number",
    "billing_payment",
    "installation_site",
]
Identifiers = Annotated[tuple[Identifier, ...], Field(min_length=1, max_length=1000)]
Offences = Annotated[tuple[Text, ...], Field(min_length=1, max_length=100)]


class ServiceProvider(Model):
    """Art 7(3)(c), 8(3), 9(3)(c): a service provider by name and address."""

    name: ShortText
    address: ShortText
    country: Country


ServiceProviders = Annotated[tuple[ServiceProvider, ...], Field(min_length=1, max_length=100)]


# -- Art 6 ----------------------------------------------------------------------------


class RegistrationEntity(Model):
    """Art 6(1): an entity providing domain name registration services."""

    name: ShortText
    country: Country
    role: Literal["registrar", "registry", "other"]
    address: ShortText | None = None


class DomainRequest(Form):
    """Art 6: request for domain name registration information.

    Beyond the schema: ``disclose_by`` is not before ``date_issued`` (E_SEMANTIC).
    """

    form_type: ClassVar[str] = "coe.p2.art6.domain"

    issuing_authority: Authority
    date_issued: Date
    registration_entity: RegistrationEntity
    domain_name: DomainName
    data_elements: Annotated[
        tuple[DomainDataElement, ...], Field(min_length=1), AfterValidator(unique)
    ]
    information_details: Text | None = None
    issued_pursuant_to_protocol: Literal[True]
    relevant_to_investigation: Literal[True]
    use_limited_to_investigation: Literal[True]
    disclose_by: Date
    disclosure_manner: Text
    special_instructions: Text | None = None
    language: Language

    @model_validator(mode="after")
    def _details_and_dates(self) -> Self:
        if "other" in self.data_elements and self.information_details is None:
            raise required_error("information_details", when="data_elements contains other")
        if self.disclose_by < self.date_issued:
            raise semantic_error(
                "the time frame for disclosure ends before the request was issued", "disclose_by"
            )
        return self


# -- Art 7 ----------------------------------------------------------------------------


class SubscriberInformation(Model):
    """Art 7(3)(f): the specific subscriber information sought."""

    description: Text
    identifiers: Identifiers
    elements: (
        Annotated[tuple[SubscriberElement, ...], Field(min_length=1), AfterValidator(unique)] | None
    ) = None
    period: Period | None = None


class SimultaneousNotification(Model):
    """Art 7(4)(g), 7(5): the notification made to the other Party's designated authority."""

    authority: ShortText
    date: Date


class SubscriberSupplemental(Model):
    """Art 7(4)(a)-(h): supplemental information accompanying an Art 7 order."""

    domestic_legal_grounds: Text
    legal_provisions_and_penalties: Text
    return_contact: Authority
    time_frame_days: Annotated[int, Field(ge=1)] | None = None
    return_manner: Text
    preservation: PriorRequest | None = None
    special_instructions: Text | None = None
    simultaneous_notification: SimultaneousNotification | None = None
    other_information: Text | None = None


class SubscriberOrder(Form):
    """Art 7: order to a service provider in another Party for subscriber information.

    Beyond the schema: a preservation already sought is not dated after the order, and
    a simultaneous notification is not dated before it (E_SEMANTIC).
    """

    form_type: ClassVar[str] = "coe.p2.art7.subscriber"

    issuing_authority: Authority
    # date_issued comes before supplemental: field validators see earlier members only.
    date_issued: Date
    issued_pursuant_to_protocol: Literal[True]
    service_providers: ServiceProviders
    offences: Offences
    seeking_authority: Authority | None = None
    information_sought: SubscriberInformation
    supplemental: SubscriberSupplemental
    language: Language

    @field_validator("supplemental")
    @classmethod
    def _dates_around_order(
        cls, value: SubscriberSupplemental, info: ValidationInfo
    ) -> SubscriberSupplemental:
        issued = info.data.get("date_issued")
        if issued is None:
            return value
        _check_preservation_date(value.preservation, issued)
        notification = value.simultaneous_notification
        if notification is not None and notification.date < issued:
            raise semantic_error(
                "the simultaneous notification is dated before the order",
                "simultaneous_notification",
            )
        return value


def _check_preservation_date(preservation: PriorRequest | None, issued: Date) -> None:
    if preservation is not None and preservation.date is not None and preservation.date > issued:
        raise semantic_error(
            "the preservation already sought is dated after the order", "preservation"
        )


# -- Art 8 ----------------------------------------------------------------------------


class DataSought(Model):
    """Art 8(3): the specific subscriber information or traffic data sought."""

    description: Text
    identifiers: Identifiers
    period: Period | None = None


class ProductionOrder(Model):
    """Art 8(3): the order of the requesting Party to which effect is to be given."""

    issuing_authority: Authority
    date_issued: Date
    issued_pursuant_to_protocol: Literal[True]
    service_providers: ServiceProviders
    offences: Offences
    seeking_authority: Authority | None = None
    data_sought: DataSought


class ProductionSupplemental(Model):
    """Art 8(4)(a)-(h): supplemental information accompanying an Art 8 request."""

    domestic_legal_grounds: Text
    legal_provisions_and_penalties: Text
    possession_reason: Text
    summary_of_facts: Text
    relevance: Text
    contact_authority: Authority
    preservation: PriorRequest | None = None
    other_means: Text | None = None


class GiveEffectRequest(Form):
    """Art 8: request to give effect to an order for expedited production of data.

    ``data_kind`` decides the return deadline of Art 8(7)(a). Beyond the schema: a
    preservation already sought is not dated after the order (E_SEMANTIC).
    """

    form_type: ClassVar[str] = "coe.p2.art8.order"

    transmitting_authority: Authority | None = None
    # order comes before supplemental: field validators see earlier members only.
    order: ProductionOrder
    data_kind: Literal["subscriber", "traffic"]
    supplemental: ProductionSupplemental
    special_instructions: Text | None = None
    language: Language

    @field_validator("supplemental")
    @classmethod
    def _preservation_before_order(
        cls, value: ProductionSupplemental, info: ValidationInfo
    ) -> ProductionSupplemental:
        order = info.data.get("order")
        if order is not None:
            _check_preservation_date(value.preservation, order.date_issued)
        return value


# -- Art 9 ----------------------------------------------------------------------------


class EmergencyDataItem(Model):
    """Art 9(3)(f): one set of stored computer data sought in an emergency."""

    category: DataCategory
    description: Text
    identifiers: Identifiers
    period: Period | None = None


class EmergencyDisclosureRequest(Form):
    """Art 9: expedited disclosure of stored computer data in an emergency (24/7 network).

    Art 9(4): ``electronic_confirmation_of`` is required when ``oral`` is true and not
    allowed otherwise (a schema rule: ``E_SCHEMA``).
    """

    form_type: ClassVar[str] = "coe.p2.art9.emergency"

    requesting_authority: Authority
    point_of_contact: Authority | None = None
    date_issued: Date
    issued_pursuant_to_protocol: Literal[True]
    service_providers: ServiceProviders
    offence: Offence
    applicable_penalties: Text
    emergency_facts: Text
    relation_to_emergency: Text
    data: Annotated[tuple[EmergencyDataItem, ...], Field(min_length=1, max_length=1000)]
    special_instructions: Text | None = None
    other_information: Text | None = None
    oral: bool
    electronic_confirmation_of: PriorRequest | None = None
    language: Language

    @model_validator(mode="after")
    def _confirmation_iff_oral(self) -> Self:
        if self.oral and self.electronic_confirmation_of is None:
            raise required_error("electronic_confirmation_of", when="oral is true")
        if not self.oral and self.electronic_confirmation_of is not None:
            raise not_allowed_error("electronic_confirmation_of", unless="oral is true")
        return self


# -- Art 10 ---------------------------------------------------------------------------

Channel = Literal["central_authority", "judicial_authority", "interpol", "point_of_contact"]


class EmergencyMlaRequest(Form):
    """Art 10: emergency mutual assistance request.

    Art 10(9): on any channel other than the central authority a copy goes to the
    requested Party's central authority, so ``copy_to_central_authority`` is required
    there and not allowed on the central-authority channel (a schema rule: ``E_SCHEMA``).
    """

    form_type: ClassVar[str] = "coe.p2.art10.emergency_mla"

    requesting_authority: Authority
    requesting_authority_role: Literal["central_authority", "judicial_authority"]
    date_issued: Date
    channel: Channel
    copy_to_central_authority: Literal[True] | None = None
    offence: Offence
    emergency_facts: Text
    relation_to_emergency: Text
    assistance: Annotated[tuple[Measure, ...], Field(min_length=1, max_length=100)]
    special_instructions: Text | None = None
    confidential: bool
    language: Language

    @model_validator(mode="after")
    def _copy_on_other_channels(self) -> Self:
        direct = self.channel != "central_authority"
        if direct and self.copy_to_central_authority is None:
            raise required_error(
                "copy_to_central_authority", when="channel is not central_authority"
            )
        if not direct and self.copy_to_central_authority is not None:
            raise not_allowed_error(
                "copy_to_central_authority", unless="channel is not central_authority"
            )
        return self


#: The form models this module defines.
FORMS: tuple[type[Form], ...] = (
    DomainRequest,
    SubscriberOrder,
    GiveEffectRequest,
    EmergencyDisclosureRequest,
    EmergencyMlaRequest,
)
