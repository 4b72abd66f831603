"""Refusals against their case: every ground of refusal_grounds.json, and every way to fail."""

from __future__ import annotations

from typing import Any

import pytest

from broker.errors import BrokerError
from broker.forms.responses import Refusal, refusal_grounds
from broker.lifecycle import check_refusal, check_refusal_form, grounds_for, instruments, machine


def _refuser(instrument: str, row: dict[str, Any]) -> str:
    # Annex III reasons are the addressee's; where a notified authority exists, the
    # other grounds are its own.
    if "notified" in machine(instrument).parties and "annex" not in row:
        return "notified"
    return "requested"


GROUNDS = [
    (instrument, code, _refuser(instrument, dict(row)))
    for instrument, rows in refusal_grounds().items()
    for code, row in rows.items()
]


@pytest.mark.parametrize(
    ("instrument", "ground", "by"), GROUNDS, ids=[f"{i}/{g}" for i, g, _ in GROUNDS]
)
def test_every_ground_is_accepted_from_its_refuser(instrument: str, ground: str, by: str) -> None:
    row = check_refusal(instrument, ground, "The data are protected by privilege.", by=by)
    assert row["code"] == ground
    assert row["article"].strip()


@pytest.mark.parametrize(
    ("instrument", "ground", "by"),
    [
        ("eu.epoc", "ne_bis_in_idem", "requested"),  # Art 12: the enforcing authority's
        ("eu.epoc", "force_majeure", "notified"),  # Annex III: the addressee's
        ("coe.p2.art7.subscriber", "prejudice_own_investigation", "requested"),
        ("eu.eio.a", "political_offence", "requested"),  # a ground of another instrument
        ("coe.art29.preservation", "", "requested"),
        ("coe.art29.preservation", "POLITICAL_OFFENCE", "requested"),
        ("coe.p2.art6.domain", "other", "requested"),  # Art 6 provides no ground
        ("coe.p2.art9.emergency", "essential_interests", "requested"),  # nor does Art 9
        ("eu.eio.a", "ne_bis_in_idem", "requester"),  # the requester withdraws instead
    ],
)
def test_wrong_grounds_are_e_ground(instrument: str, ground: str, by: str) -> None:
    with pytest.raises(BrokerError) as info:
        check_refusal(instrument, ground, "A motivation.", by=by)
    assert info.value.code == "E_GROUND"


@pytest.mark.parametrize("motivation", ["", " ", "\n\t"])
def test_a_refusal_must_be_motivated(motivation: str) -> None:
    with pytest.raises(BrokerError) as info:
        check_refusal("eu.eio.a", "ne_bis_in_idem", motivation)
    assert info.value.code == "E_GROUND"


def test_a_refuser_outside_the_case_is_e_not_party() -> None:
    with pytest.raises(BrokerError) as info:
        check_refusal("eu.eio.a", "ne_bis_in_idem", "A motivation.", by="notified")
    assert info.value.code == "E_NOT_PARTY"


def test_an_instrument_that_opens_no_case() -> None:
    with pytest.raises(BrokerError) as info:
        check_refusal("case.ack", "other", "A motivation.")
    assert info.value.code == "E_UNKNOWN_TYPE"


@pytest.mark.parametrize("instrument", instruments())
def test_grounds_for_splits_the_table_without_loss(instrument: str) -> None:
    given = set(grounds_for(instrument, "requested")) | set(grounds_for(instrument, "notified"))
    assert given == set(refusal_grounds().get(instrument, {}))
    assert grounds_for(instrument, "requester") == ()


def _refusal(instrument: str, ground: str) -> Refusal:
    return Refusal.model_validate(
        {
            "instrument": instrument,
            "ground": ground,
            "article": "Directive 2014/41/EU Art 11(1)(d)",
            "motivation": "The person was finally judged for the same acts.",
            "partial": False,
        }
    )


def test_a_refusal_form_for_its_case() -> None:
    row = check_refusal_form("eu.eio.a", _refusal("eu.eio.a", "ne_bis_in_idem"))
    assert row["article"] == "Directive 2014/41/EU Art 11(1)(d)"


def test_a_refusal_form_naming_another_instrument_is_e_ground() -> None:
    with pytest.raises(BrokerError) as info:
        check_refusal_form("eu.epoc", _refusal("eu.eio.a", "ne_bis_in_idem"), by="notified")
    assert info.value.code == "E_GROUND"
