"""Generic tests over every catalogue type and every example case."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from broker.errors import SchemaError, UnknownTypeError
from broker.forms import MODELS
from broker.schema import Catalogue, catalogue
from tests.forms.cases import Case, all_cases

CASES = all_cases()
JSON_CASES = [c for c in CASES if c.fmt == "json"]
# Documents that reach the schema engines (malformed input stops at the parser).
PARSED_CASES = [
    c for c in JSON_CASES if not {"E_PARSE", "E_TOO_LARGE"} & {x for x, _ in c.expected}
]

#: The contract of the catalogue: every type the network knows (issue #3).
REQUIRED_TYPES = {
    "coe.art29.preservation",
    "coe.art30.disclosure",
    "coe.art31.mla",
    "mla.request",
    "coe.p2.art6.domain",
    "coe.p2.art7.subscriber",
    "coe.p2.art8.order",
    "coe.p2.art9.emergency",
    "coe.p2.art10.emergency_mla",
    "eu.eio.a",
    "eu.eio.b",
    "eu.eio.c",
    "eu.epoc",
    "eu.epoc_pr",
    "eu.epoc.inability",
    "eu.epoc_pr.confirmation",
    "eu.epoc_pr.extension",
    "case.ack",
    "case.status",
    "case.refusal",
    "case.clarification_request",
    "case.clarification",
    "case.extension",
    "case.withdrawal",
    "case.response",
}


def test_catalogue_has_every_required_type() -> None:
    names = {t.name for t in catalogue().types()}
    assert names >= REQUIRED_TYPES


@pytest.mark.parametrize("form_type", sorted(MODELS))
def test_schema_conventions(form_type: str) -> None:
    schema = catalogue().schema(form_type)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["$id"] == f"urn:evb:schema:{form_type}:1"
    assert schema["additionalProperties"] is False
    assert schema["description"]
    assert schema["x-legal-basis"]
    if not schema["x-verified"]:
        assert schema["x-citation"], "an unverified field list must say what it rests on"
    text = json.dumps(schema)
    # snake_case member names and enum values everywhere
    for obj in _objects(schema):
        for name in obj.get("properties", {}):
            assert re.fullmatch(r"[a-z][a-z0-9_]*", name), name
        for value in obj.get("enum", []):
            assert not isinstance(value, str) or re.fullmatch(r"[a-z][a-z0-9_.]*", value), value
    assert "urn:evb:schema:defs" not in text, "bundled schemas are self-contained"


def _objects(node: object) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    if isinstance(node, dict):
        found.append(node)
        for value in node.values():
            found.extend(_objects(value))
    elif isinstance(node, list):
        for value in node:
            found.extend(_objects(value))
    return found


@pytest.mark.parametrize("form_type", sorted(MODELS))
def test_every_type_has_valid_and_invalid_cases(form_type: str) -> None:
    mine = [c for c in CASES if c.type == form_type]
    assert any(not c.expected for c in mine), "no valid example"
    assert sum(1 for c in mine if c.expected) >= 3, "fewer than three invalid examples"


@pytest.mark.parametrize("form_type", sorted(MODELS))
def test_template_validates_and_round_trips(form_type: str) -> None:
    raw = catalogue().template(form_type)
    form = catalogue().parse(form_type, raw)
    assert form.form_type == form_type
    again = catalogue().parse_obj(form_type, form.to_json_obj())
    assert again == form


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_case_verdict(case: Case) -> None:
    problems = catalogue().check(case.type, case.raw, case.fmt)
    assert tuple(sorted((p.code, p.pointer) for p in problems)) == case.expected


@pytest.mark.parametrize("case", PARSED_CASES, ids=lambda c: c.id)
def test_fast_engine_agrees_with_reference(case: Case) -> None:
    value = json.loads(case.raw)
    reference_ok = not catalogue().schema_problems(case.type, value)
    if any(isinstance(v, float) for v in _leaves(value)):
        # Numbers with a fraction bypass the fast engine (JSON Schema counts 60.0 as
        # an integer, the strict models do not): the reference engine must refuse them.
        assert not reference_ok
        return
    assert catalogue().fast_verdict(case.type, value) == reference_ok


def _leaves(node: object) -> list[object]:
    if isinstance(node, dict):
        return [leaf for v in node.values() for leaf in _leaves(v)]
    if isinstance(node, list):
        return [leaf for v in node for leaf in _leaves(v)]
    return [node]


@pytest.mark.parametrize("case", PARSED_CASES, ids=lambda c: c.id)
def test_model_agrees_with_schema(case: Case) -> None:
    """Schema and model accept and refuse the same documents.

    The model alone (pydantic, no JSON Schema) must reach the same verdict as the
    schema for every E_SCHEMA case; E_SEMANTIC cases pass the schema and fail the model.
    """
    codes = {code for code, _ in case.expected}
    value = json.loads(case.raw)
    schema_ok = not catalogue().schema_problems(case.type, value)
    model_ok = _model_accepts(case)
    if not case.expected:
        assert (schema_ok, model_ok) == (True, True)
    elif codes == {"E_SEMANTIC"}:
        assert (schema_ok, model_ok) == (True, False)
    else:
        assert (schema_ok, model_ok) == (False, False)


def _model_accepts(case: Case) -> bool:
    import pydantic  # noqa: PLC0415

    try:
        MODELS[case.type].model_validate_json(case.raw)
    except pydantic.ValidationError:
        return False
    return True


def test_unknown_type() -> None:
    with pytest.raises(UnknownTypeError) as info:
        catalogue().parse("coe.art99.nothing", b"{}")
    assert info.value.code == "E_UNKNOWN_TYPE"


def test_size_limit_is_configurable() -> None:
    small = Catalogue(max_bytes=100)
    raw = small.template("coe.art29.preservation")
    problems = small.check("coe.art29.preservation", raw)
    assert [(p.code, p.pointer) for p in problems] == [("E_TOO_LARGE", "")]
    assert not Catalogue(max_bytes=len(raw)).check("coe.art29.preservation", raw)


def test_default_size_limit_is_one_mebibyte() -> None:
    raw = b'{"necessity": "' + b"x" * (1024 * 1024) + b'"}'
    problems = catalogue().check("coe.art29.preservation", raw)
    assert [(p.code, p.pointer) for p in problems] == [("E_TOO_LARGE", "")]


def test_deep_nesting_is_a_parse_error() -> None:
    raw = b"[" * 100_000 + b"]" * 100_000
    problems = catalogue().check("coe.art29.preservation", raw)
    assert [(p.code, p.pointer) for p in problems] == [("E_PARSE", "")]


def test_messages_never_repeat_the_value() -> None:
    doc = json.loads(catalogue().template("coe.art29.preservation"))
    personal = "victim.name@private-example.org x"
    doc["requesting_authority"]["contact"]["email"] = personal
    with pytest.raises(SchemaError) as info:
        catalogue().parse("coe.art29.preservation", json.dumps(doc).encode())
    assert all(personal not in p.message for p in info.value.problems)
