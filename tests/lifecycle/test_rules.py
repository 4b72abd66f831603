"""The deadline rules table: its integrity, its legal numbers, and its export.

The numbers are asserted one by one (LEGAL.md §0 and §9): an accidental edit of the
table fails here with the rule's id, and a deliberate one is a one-line change in both
places, with its citation.
"""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest

from broker.lifecycle import (
    facts_table,
    instruments,
    machine,
    parse_duration,
    rules,
    rules_for,
    rules_table,
)
from broker.lifecycle.rules import ANY_PREFIX
from broker.resources import read_json

TABLE = read_json("data", "deadline_rules.json")
ROWS = rules_table()
IDS = [row["id"] for row in ROWS]

#: rule id → (duration, verified); LEGAL.md §0 / §9. CETS 224 numbers are unverified.
LEGAL_NUMBERS: dict[str, tuple[str | None, bool]] = {
    "bc29.acknowledge": ("PT24H", False),  # the node's target, not law
    "bc29.acknowledge.emergency": ("PT1H", False),  # the node's target, not law
    "bc29.preserve": ("P60D", True),  # ETS 185 Art 29(7), §9 confirmed
    "bc29.follow_up": ("P60D", True),
    "bc31.respond": (None, False),  # Art 31(3): expedited, no number
    "mla.respond": (None, False),
    "p2art6.disclose": (None, False),  # Art 6(3)(d): the request's time frame
    "p2art7.disclose": ("P30D", False),  # Art 7(7), §9: not yet checked
    "p2art8.serve": ("P45D", False),  # Art 8(7)(a), §9: not yet checked
    "p2art8.return.subscriber": ("P20D", False),
    "p2art8.return.traffic": ("P45D", False),
    "p2art9.acknowledge": ("PT24H", False),  # rapidly expedited: node target
    "p2art9.acknowledge.emergency": ("PT1H", False),
    "p2art10.acknowledge": ("PT24H", False),
    "p2art10.acknowledge.emergency": ("PT1H", False),
    "eio.acknowledge": ("P7D", True),  # Art 16(1), §9 confirmed
    "eio.recognise": ("P30D", True),  # Art 12(3), §9 confirmed
    "eio.execute": ("P90D", True),  # Art 12(4), §9 confirmed
    "eio.provisional": ("PT24H", True),  # Art 32(2), §9 confirmed
    "eio_c.object": ("PT96H", False),  # Art 31(3), §4 [R]
    "epoc.produce": ("P10D", True),  # Art 10(2)-(3), §9
    "epoc.produce.emergency": ("PT8H", True),  # Art 10(4), §9
    "epoc.ea_grounds": ("P10D", True),  # Art 12(1), §9
    "epoc.ea_grounds.emergency": ("PT96H", True),  # Art 10(4), 12(1), §9
    "epoc.third_country": ("P10D", False),  # Art 17, §8 item 3 unconfirmed
    "epoc_pr.preserve": ("P60D", True),  # Art 11(1), §9
    "epoc_pr.confirm": ("P60D", True),
}


def test_every_rule_has_its_legal_number() -> None:
    assert {row["id"]: (row["duration"], row["verified"]) for row in ROWS} == LEGAL_NUMBERS


def test_extensions_are_the_laws() -> None:
    found = {r.id: (r.extendable_by, r.max_extensions) for r in rules() if r.extended_by}
    assert found == {
        "bc29.preserve": (None, None),  # Art 29: no maximum, no limit on extensions
        "bc29.follow_up": (None, None),
        "bc31.respond": (None, None),
        "mla.respond": (None, None),
        "eio.recognise": (timedelta(days=30), None),  # Art 12(5): at most 30 days in total
        "eio.execute": (None, None),  # Art 12(6): agreed timing, no maximum
        "epoc_pr.preserve": (timedelta(days=30), 1),  # Art 11(1): once, 30 days
        "epoc_pr.confirm": (timedelta(days=30), 1),
    }


def test_the_epoc_pr_extension_agrees_with_the_eevidence_table() -> None:
    values = {v["name"]: v["value"] for v in read_json("data", "eevidence.json")["values"]}
    days = timedelta(days=values["epoc_pr_extension_days"])
    assert {r.extendable_by for r in rules() if r.instrument == "eu.epoc_pr"} == {days}


def test_the_art29_minimum_agrees_with_the_form() -> None:
    schema = read_json("json", "coe.art29.preservation.json")
    minimum = timedelta(days=schema["properties"]["preservation_days"]["minimum"])
    preserve = next(r for r in rules() if r.id == "bc29.preserve")
    assert preserve.min
    assert preserve.duration == minimum


def test_only_the_enforcing_authoritys_window_outlives_the_case() -> None:
    # Art 10(4): in an emergency it may object after the data were transmitted.
    assert {r.id: r.continues_in for r in rules() if r.continues_in} == {
        "epoc.ea_grounds": ("executed",),
        "epoc.ea_grounds.emergency": ("executed",),
    }


def test_only_the_epoc_rules_pause() -> None:
    pausing = {r.id for r in rules() if r.pauses_on}
    assert pausing == {"epoc.produce", "epoc.produce.emergency"}
    # the pause is recalled, not confirmed (LEGAL.md §3.1 marks Art 10(5)-(8) [R])
    assert all(row["pause_verified"] is False for row in ROWS if row["id"] in pausing)


# -- integrity -------------------------------------------------------------------------------


def test_the_table_says_what_it_is() -> None:
    assert TABLE["description"].strip()
    assert TABLE["source"].strip()
    assert len(set(IDS)) == len(IDS)


@pytest.mark.parametrize("row", ROWS, ids=IDS)
def test_row_integrity(row: dict[str, Any]) -> None:
    m = machine(row["instrument"])
    assert row["article"].strip()
    assert row["step"].strip()
    assert row["priority"] in ("normal", "emergency", "any")
    assert row["kind"] in ("limit", "period")
    assert row["owed_by"] in m.parties
    assert row["escalation"] in TABLE["escalations"]
    assert isinstance(row["verified"], bool)
    assert row["starts_on"]
    for member in ("starts_on", "cancelled_by", "restarts_on", "extended_by", "pauses_on"):
        assert all(name in m.events for name in row[member]), member
    assert set(row["continues_in"]) <= m.terminal_states
    for name in row["met_by"]:
        assert name in m.events or name.removeprefix(ANY_PREFIX) in m.parties
    for member in ("duration", "extendable_by"):
        if row[member] is not None:
            assert parse_duration(row[member]) > timedelta(), member
    assert all(0 < f < 1 for f in row["reminders"])
    assert row["reminders"] == sorted(row["reminders"])
    assert bool(row["pauses_on"]) == bool(row["resumes_on"])
    assert (row["pause_verified"] is not None) == bool(row["pauses_on"])
    if row["min"]:
        assert row["override"]["mode"] == "longer"
    if row["duration"] is None:
        assert row["override"]["mode"] == "replace"
    if row["target"] is not None:
        assert row["target"] == "node"
        assert row["duration"] is not None
        assert row["priority"] != "any"
        assert row["step"] == "acknowledge"
    if row["max_extensions"] is not None or row["extendable_by"] is not None:
        assert row["extended_by"]
    for key, value in row["when"].items():
        assert value in facts_table()[key]["values"]


@pytest.mark.parametrize("instrument", instruments())
def test_every_instrument_has_rules_for_both_priorities(instrument: str) -> None:
    for priority in ("normal", "emergency"):
        facts = {"data_kind": "traffic"} if instrument == "coe.p2.art8.order" else {}
        assert rules_for(instrument, priority, facts), priority


def test_node_targets_exist_for_every_24_7_request_in_both_priorities() -> None:
    targets = {(r.instrument, r.priority) for r in rules() if r.target == "node"}
    for instrument in ("coe.art29.preservation", "coe.p2.art9.emergency"):
        assert {(instrument, "normal"), (instrument, "emergency")} <= targets
    assert {r.duration for r in rules() if r.target == "node" and r.priority == "emergency"} == {
        timedelta(hours=1)
    }


def test_the_cets224_numbers_are_not_marked_verified() -> None:
    assert not [r.id for r in rules() if r.instrument.startswith("coe.p2.") and r.verified]


# -- lookup ----------------------------------------------------------------------------------


def test_rules_for_picks_the_priority() -> None:
    normal = {r.id for r in rules_for("eu.epoc", "normal")}
    emergency = {r.id for r in rules_for("eu.epoc", "emergency")}
    assert normal == {"epoc.produce", "epoc.ea_grounds", "epoc.third_country"}
    assert emergency == {
        "epoc.produce.emergency",
        "epoc.ea_grounds.emergency",
        "epoc.third_country",
    }


def test_rules_for_picks_the_facts() -> None:
    kinds = {
        kind: {r.id for r in rules_for("coe.p2.art8.order", "normal", {"data_kind": kind})}
        for kind in ("subscriber", "traffic")
    }
    assert kinds["subscriber"] == {"p2art8.serve", "p2art8.return.subscriber"}
    assert kinds["traffic"] == {"p2art8.serve", "p2art8.return.traffic"}
    without = {r.id for r in rules_for("eu.eio.a", "normal")}
    with_pm = {r.id for r in rules_for("eu.eio.a", "normal", {"provisional_measures": "requested"})}
    assert with_pm - without == {"eio.provisional"}


@pytest.mark.parametrize(
    "facts",
    [{}, {"data_kind": "content"}, {"data_kind": "traffic", "colour": "red"}],
    ids=["missing", "unknown-value", "unknown-fact"],
)
def test_rules_for_refuses_bad_facts(facts: dict[str, str]) -> None:
    with pytest.raises(ValueError, match="fact"):
        rules_for("coe.p2.art8.order", "normal", facts)


# -- durations -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("P60D", timedelta(days=60)),
        ("PT8H", timedelta(hours=8)),
        ("PT96H", timedelta(hours=96)),
        ("P1W", timedelta(weeks=1)),
        ("P1DT12H", timedelta(days=1, hours=12)),
        ("PT1H30M15S", timedelta(hours=1, minutes=30, seconds=15)),
        ("PT0S", timedelta()),
    ],
)
def test_parse_duration(text: str, expected: timedelta) -> None:
    assert parse_duration(text) == expected


@pytest.mark.parametrize(
    "text", ["", "P", "PT", "P1M", "P1Y", "60D", "P1.5D", "P-1D", "p1d", "P1DT", "PT1D"]
)
def test_parse_duration_refuses(text: str) -> None:
    with pytest.raises(ValueError, match="duration"):
        parse_duration(text)


# -- export ----------------------------------------------------------------------------------


def test_rules_table_rows_have_the_columns_and_are_json() -> None:
    first = list(ROWS[0])
    assert first[:10] == [
        "id",
        "instrument",
        "step",
        "priority",
        "owed_by",
        "kind",
        "starts_on",
        "duration",
        "article",
        "verified",
    ]
    assert all(list(row) == first for row in ROWS)
    assert json.loads(json.dumps(ROWS)) == ROWS
    assert len(ROWS) == len(rules()) == len(TABLE["rules"])


def test_rules_table_returns_copies() -> None:
    rows = rules_table()
    rows[0]["starts_on"].append("tampered")
    rows[0]["duration"] = "P1D"
    assert rules_table() == ROWS
