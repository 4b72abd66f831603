"""Forms of the Budapest Convention on Cybercrime (ETS 185): Art 29, 30 and 31.

Each model mirrors ``schemas/json/<type>.json``; the schema's ``description`` cites
the article for every member.
"""

from __future__ import annotations

from typing import Annotated, ClassVar, Literal

from pydantic import AfterValidator, Field

from broker.forms.base import (
    Authority,
    Custodian,
    DataCategory,
    Form,
    Identifier,
    Language,
    Model,
    Offence,
    Period,
    Text,
    unique,
)

__all__ = ["FORMS", "PreservationDataItem", "PreservationRequest"]

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

#: The form models this module defines.
FORMS: tuple[type[Form], ...] = (PreservationRequest,)
