"""The legal data tables and the schemas that encode them agree.

``schemas/data/status_codes.json``, ``refusal_grounds.json`` and ``eevidence.json`` hold
legal data with their articles; ``case.status``, ``case.refusal``, ``eu.epoc.inability``
and ``eu.epoc_pr.extension`` encode them in JSON Schema, and the models read them. These
tests prove that the schema enums and constants are exactly the tables' entries, that
schema and model accept every code where the table allows it and refuse it elsewhere,
and that every row cites its article.
"""

from __future__ import annotations

import json
import re
from typing import Any, get_args

import pytest

from broker.forms import eevidence, responses
from broker.resources import read_json
from broker.schema import catalogue
from tests.forms.test_catalogue import REQUIRED_TYPES

STATUS = read_json("data", "status_codes.json")
GROUNDS = read_json("data", "refusal_grounds.json")
NUMBERS = read_json("data", "eevidence.json")
CODE = re.compile(r"^[a-z][a-z0-9_]*$")


def _rows() -> list[tuple[str, str, dict[str, Any]]]:
    rows = [("status_codes.json", "generic", r) for r in STATUS["generic"]]
    rows += [("status_codes.json", i, r) for i, rs in STATUS["instruments"].items() for r in rs]
    rows += [("refusal_grounds.json", i, r) for i, rs in GROUNDS["grounds"].items() for r in rs]
    return rows


def _per_instrument(schema: dict[str, Any], member: str) -> dict[str, list[str]]:
    """The enum that each ``if instrument == X`` branch of the schema allows for ``member``."""
    found: dict[str, list[str]] = {}
    for rule in schema["allOf"]:
        cond = rule["if"].get("properties", {})
        then = rule["then"].get("properties", {}).get(member, {})
        if set(cond) == {"instrument"} and "enum" in then:
            found[cond["instrument"]["const"]] = then["enum"]
    return found


def _check(type_name: str, doc: dict[str, Any]) -> list[tuple[str, str]]:
    problems = catalogue().check(type_name, json.dumps(doc).encode())
    return sorted((p.code, p.pointer) for p in problems)


# -- every table ---------------------------------------------------------------------------


@pytest.mark.parametrize("table", [STATUS, GROUNDS, NUMBERS], ids=["status", "grounds", "numbers"])
def test_table_says_what_it_is(table: dict[str, Any]) -> None:
    assert table["description"].strip()
    assert table["source"].strip()


@pytest.mark.parametrize(
    ("file", "instrument", "row"),
    [pytest.param(*r, id=f"{r[0]}:{r[1]}:{r[2]['code']}") for r in _rows()],
)
def test_every_row_cites_its_article(file: str, instrument: str, row: dict[str, Any]) -> None:
    assert CODE.match(row["code"]), (file, instrument)
    assert row["article"].strip(), (file, instrument, row["code"])
    assert row["description"].strip(), (file, instrument, row["code"])
    assert isinstance(row["verified"], bool)


def test_every_number_cites_its_article() -> None:
    for entry in NUMBERS["values"]:
        assert entry["article"].strip()
        assert isinstance(entry["value"], int)


def test_codes_are_unique_per_instrument() -> None:
    generic = [r["code"] for r in STATUS["generic"]]
    assert len(set(generic)) == len(generic)
    for rows in STATUS["instruments"].values():
        codes = generic + [r["code"] for r in rows]
        assert len(set(codes)) == len(codes)
    for rows in GROUNDS["grounds"].values():
        codes = [r["code"] for r in rows]
        assert len(set(codes)) == len(codes)


def test_instruments_are_request_types() -> None:
    instruments = list(STATUS["instruments"])
    assert set(instruments) <= REQUIRED_TYPES
    replies = {
        "coe.art30.disclosure",
        "eu.eio.b",
        "eu.epoc.inability",
        "eu.epoc_pr.confirmation",
        "eu.epoc_pr.extension",
    }
    assert not {i for i in instruments if i.startswith("case.")} | (set(instruments) & replies)
    assert set(GROUNDS["grounds"]) <= set(instruments)
    assert list(get_args(responses.RequestType)) == instruments


# -- case.status ---------------------------------------------------------------------------


def test_status_schema_enums_equal_the_table() -> None:
    schema = catalogue().schema("case.status")
    instruments = STATUS["instruments"]
    assert schema["properties"]["instrument"]["enum"] == list(instruments)
    every = {r["code"] for r in STATUS["generic"]} | {
        r["code"] for rows in instruments.values() for r in rows
    }
    assert set(schema["properties"]["status"]["enum"]) == every
    expected = {i: [r["code"] for r in STATUS["generic"] + rows] for i, rows in instruments.items()}
    assert _per_instrument(schema, "status") == expected


def test_status_requires_and_allows_name_real_members() -> None:
    members = set(catalogue().schema("case.status")["properties"])
    for _, _, row in (r for r in _rows() if r[0] == "status_codes.json"):
        assert set(row.get("requires", [])) <= members - {"status", "instrument"}
        assert set(row.get("allows", [])) <= {"preserved_until"}


STATUS_PAIRS = [
    (instrument, row)
    for instrument, rows in STATUS["instruments"].items()
    for row in STATUS["generic"] + rows
]


@pytest.mark.parametrize(
    ("instrument", "row"),
    [pytest.param(i, r, id=f"{i}:{r['code']}") for i, r in STATUS_PAIRS],
)
def test_status_accepted_where_the_table_allows_it(instrument: str, row: dict[str, Any]) -> None:
    doc: dict[str, Any] = {"status": row["code"], "instrument": instrument}
    fill = {
        "note": "Explained.",
        "expected_by": "2026-07-01T00:00:00Z",
        "preserved_until": "2026-07-01T00:00:00Z",
    }
    for member in row.get("requires", []):
        doc[member] = fill[member]
    assert _check("case.status", doc) == []
    # Every required member is really required …
    for member in row.get("requires", []):
        short = {k: v for k, v in doc.items() if k != member}
        assert _check("case.status", short) == [("E_SCHEMA", "/" + member)]
    # … and preserved_until is allowed exactly where the row says so.
    with_until = {**doc, "preserved_until": fill["preserved_until"]}
    allowed = "preserved_until" in row.get("requires", []) + row.get("allows", [])
    assert _check("case.status", with_until) == (
        [] if allowed else [("E_SCHEMA", "/preserved_until")]
    )


@pytest.mark.parametrize("instrument", list(STATUS["instruments"]))
def test_status_refused_elsewhere(instrument: str) -> None:
    mine = {r["code"] for r in STATUS["generic"] + STATUS["instruments"][instrument]}
    every = set(catalogue().schema("case.status")["properties"]["status"]["enum"])
    for code in sorted(every - mine):
        doc = {"status": code, "instrument": instrument}
        assert _check("case.status", doc) == [("E_SCHEMA", "/status")], code
        assert not _model_accepts(responses.CaseStatus, doc)


# -- case.refusal --------------------------------------------------------------------------


def test_refusal_schema_enums_equal_the_table() -> None:
    schema = catalogue().schema("case.refusal")
    grounds = GROUNDS["grounds"]
    assert schema["properties"]["instrument"]["enum"] == list(grounds)
    every = {r["code"] for rows in grounds.values() for r in rows}
    assert set(schema["properties"]["ground"]["enum"]) == every
    assert _per_instrument(schema, "ground") == {
        i: [r["code"] for r in rows] for i, rows in grounds.items()
    }


REFUSAL_BASE = {"article": "Art 1", "motivation": "Because.", "partial": False}


@pytest.mark.parametrize("instrument", list(GROUNDS["grounds"]))
def test_every_ground_accepted_for_its_instrument_only(instrument: str) -> None:
    mine = {r["code"] for r in GROUNDS["grounds"][instrument]}
    every = set(catalogue().schema("case.refusal")["properties"]["ground"]["enum"])
    for code in sorted(every):
        doc = {**REFUSAL_BASE, "instrument": instrument, "ground": code}
        if code in mine:
            assert _check("case.refusal", doc) == [], code
        else:
            assert _check("case.refusal", doc) == [("E_SCHEMA", "/ground")], code
            assert not _model_accepts(responses.Refusal, doc)


def test_request_types_without_grounds_cannot_be_refused() -> None:
    for instrument in set(STATUS["instruments"]) - set(GROUNDS["grounds"]):
        doc = {**REFUSAL_BASE, "instrument": instrument, "ground": "other_treaty_ground"}
        assert _check("case.refusal", doc) == [("E_SCHEMA", "/instrument")]
        assert not _model_accepts(responses.Refusal, doc)


# -- eu.epoc.inability: the Annex III rows ---------------------------------------------------


def _annex_iii(instrument: str) -> list[str]:
    return [r["code"] for r in GROUNDS["grounds"][instrument] if r.get("annex") == "III"]


def test_inability_reasons_are_the_annex_iii_rows() -> None:
    schema = catalogue().schema("eu.epoc.inability")
    reasons = schema["properties"]["reasons"]["items"]["enum"]
    assert reasons == _annex_iii("eu.epoc")
    assert list(get_args(eevidence.InabilityReason)) == reasons
    # Art 17 objections concern production orders: the one code the EPOC-PR lacks.
    assert set(reasons) - set(_annex_iii("eu.epoc_pr")) == {"third_country_law_conflict"}
    assert set(_annex_iii("eu.epoc_pr")) <= set(reasons)


# -- eu.epoc_pr.extension: the Art 11(1) number ----------------------------------------------


def test_extension_days_equal_the_table() -> None:
    table = {entry["name"]: entry["value"] for entry in NUMBERS["values"]}
    schema = catalogue().schema("eu.epoc_pr.extension")
    assert schema["properties"]["extension_days"]["const"] == table["epoc_pr_extension_days"]
    assert eevidence.regulation_number("epoc_pr_extension_days") == table["epoc_pr_extension_days"]
    doc = json.loads(catalogue().template("eu.epoc_pr.extension"))
    assert doc["extension_days"] == table["epoc_pr_extension_days"]
    doc["extension_days"] = table["epoc_pr_extension_days"] + 1
    assert not _model_accepts(eevidence.PreservationExtension, doc)


def _model_accepts(model: type[Any], doc: dict[str, Any]) -> bool:
    import pydantic  # noqa: PLC0415

    try:
        model.model_validate_json(json.dumps(doc))
    except pydantic.ValidationError:
        return False
    return True
