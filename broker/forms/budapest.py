"""Forms of the Budapest Convention on Cybercrime (ETS 185): Art 29, 30 and 31.

Each model mirrors ``schemas/json/<type>.json``; the schema's ``description`` cites
the article for every member.
"""

from __future__ import annotations

from typing import Annotated, ClassVar, Literal, Self

from pydantic import AfterValidator, Field, model_validator
from pydantic_core import PydanticCustomError

from broker.forms.base import (
    Authority,
    Country,
    Custodian,
    DataCategory,
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
    not_allowed_error,
    required_error,
    semantic_error,
    unique,
)

__all__ = [
    "FORMS",
    "PathHop",
    "PreservationDataItem",
    "PreservationRequest",
    "PreservedTrafficData",
    "StoredDataLegalBasis",
    "StoredDataMlaRequest",
    "TrafficDataDisclosure",
    "TrafficServiceProvider",
]

IntendedMeasure = Literal["search_access", "seize_secure", "disclose"]


class PreservationDataItem(Model):
    """Art 29(2)(c): one set of stored data to preserve and its link to the offence."""

    category: DataCategory
    identifiers: Annotated[tuple[Identifier, ...], Field(min_length=1, max_length=1000)]
    period: Period | None = None
    relationship_to_offence: Text


class PreservationRequest(Form):
    """Art 29: request for expedited preservation of stored computer data."""

    form_type: ClassVar[str] = "coe.art29.preservation"

    requesting_authority: Authority
    offence: Offence
    data: Annotated[tuple[PreservationDataItem, ...], Field(min_length=1, max_length=1000)]
    custodian: Custodian
    necessity: Text
    mla_to_follow: Literal[True]
    intended_measures: Annotated[
        tuple[IntendedMeasure, ...], Field(min_length=1), AfterValidator(unique)
    ]
    preservation_days: Annotated[int, Field(ge=60)]
    confidential: bool
    language: Language


# -- Art 30 ---------------------------------------------------------------------------


class PreservedTrafficData(Model):
    """Art 30(1): the preservation, effected on an Art 29 request, that the disclosure rests on."""

    reference: ShortText
    preserved_at: DateTime | None = None
    custodian: Custodian
    identifiers: Annotated[tuple[Identifier, ...], Field(min_length=1, max_length=1000)]
    period: Period | None = None


class TrafficServiceProvider(Model):
    """Art 30(1): a service provider involved in the transmission of the communication."""

    name: ShortText
    country: Country
    location: ShortText | None = None
    identifiers: Annotated[tuple[Identifier, ...], Field(min_length=1, max_length=100)] | None = (
        None
    )


class PathHop(Model):
    """Art 30(1): one step of the path through which the communication was transmitted."""

    service_provider: ShortText
    identifiers: Annotated[tuple[Identifier, ...], Field(min_length=1, max_length=100)]
    timestamp: DateTime
    notes: Text | None = None


class TrafficDataDisclosure(Form):
    """Art 30: expedited disclosure of preserved traffic data by the requested Party.

    Beyond the schema: provider names are unique, every hop names a listed provider,
    and at least one provider is in another State than the disclosing Party (the
    condition of Art 30(1)).
    """

    form_type: ClassVar[str] = "coe.art30.disclosure"

    disclosing_authority: Authority
    prior_request: PriorRequest
    preserved_data: PreservedTrafficData
    service_providers: Annotated[
        tuple[TrafficServiceProvider, ...], Field(min_length=1, max_length=100)
    ]
    path: Annotated[tuple[PathHop, ...], Field(min_length=1, max_length=1000)]
    remarks: Text | None = None
    language: Language

    @model_validator(mode="after")
    def _providers_consistent(self) -> Self:
        names = [provider.name for provider in self.service_providers]
        if len(set(names)) != len(names):
            raise semantic_error("two service providers have the same name", "service_providers")
        own = self.disclosing_authority.country
        if all(provider.country == own for provider in self.service_providers):
            raise semantic_error(
                "Art 30(1): no service provider is in another State than the disclosing Party",
                "service_providers",
            )
        for index, hop in enumerate(self.path):
            if hop.service_provider not in names:
                raise semantic_error(
                    f"hop {index} names a service provider that is not in service_providers",
                    "path",
                )
        return self


# -- Art 31 ---------------------------------------------------------------------------

ConventionArticle = Literal["art_23", "art_25", "art_27", "art_28", "art_29", "art_31"]
ExpeditedReason = Literal["vulnerable_to_loss", "instrument_provides"]


def _names_art31(articles: tuple[ConventionArticle, ...]) -> tuple[ConventionArticle, ...]:
    # The schema's "contains": an Art 31 request always rests on Art 31.
    if "art_31" not in articles:
        raise PydanticCustomError("evb_contains", "must include art_31")
    return articles


class StoredDataLegalBasis(Model):
    """Art 31(2), 25(4), 27(1): the articles and the treaty the request rests on."""

    articles: Annotated[
        tuple[ConventionArticle, ...],
        Field(min_length=1),
        AfterValidator(unique),
        AfterValidator(_names_art31),
    ]
    treaty: ShortText | None = None


class StoredDataMlaRequest(Form):
    """Art 31: mutual assistance regarding accessing stored computer data.

    Art 31(3): ``expedited_reason`` is required when ``expedited`` is true, and it and
    ``expedited_grounds`` are not allowed otherwise (a schema rule: ``E_SCHEMA``).
    """

    form_type: ClassVar[str] = "coe.art31.mla"

    requesting_authority: Authority
    legal_basis: StoredDataLegalBasis
    offence: Offence
    preceding_preservation: PriorRequest | None = None
    data: Annotated[tuple[PreservationDataItem, ...], Field(min_length=1, max_length=1000)]
    custodian: Custodian
    measures: Annotated[tuple[IntendedMeasure, ...], Field(min_length=1), AfterValidator(unique)]
    expedited: bool
    expedited_reason: ExpeditedReason | None = None
    expedited_grounds: Text | None = None
    confidential: bool
    procedural_requirements: Text | None = None
    language: Language

    @model_validator(mode="after")
    def _expedited_reason_iff_expedited(self) -> Self:
        if self.expedited and self.expedited_reason is None:
            raise required_error("expedited_reason", when="expedited is true")
        if not self.expedited:
            for name in ("expedited_reason", "expedited_grounds"):
                if getattr(self, name) is not None:
                    raise not_allowed_error(name, unless="expedited is true")
        return self


#: The form models this module defines.
FORMS: tuple[type[Form], ...] = (
    PreservationRequest,
    TrafficDataDisclosure,
    StoredDataMlaRequest,
)
