"""broker.trust.policy: the default policy table, matching, and routes through a directory."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from broker.errors import BrokerError
from broker.forms.directory import ROLES, Role
from broker.resources import read_json
from broker.schema import catalogue
from broker.trust import (
    TrustDirectory,
    check_route,
    default_policy,
    matches,
    parse_policy,
    set_policy,
    unknown_types,
    verify_directory,
)
from tests.trust.builders import T0, base, raw, signed

TABLE = read_json("data", "default_policy.json")
KEYS_DIR = Path(__file__).resolve().parents[2] / "keys"
TYPES = [t.name for t in catalogue().types()]
MESSAGE_TYPES = [t for t in TYPES if t != "trust.directory"]
ORDERS = {"eu.epoc", "eu.epoc_pr", "eu.epoc_pr.confirmation", "eu.epoc_pr.extension"}
#: Audit witnessing (issue #7): allowed between every pair of roles, both ways.
AUDIT_TYPES = {"audit.checkpoint", "audit.cosignature"}
#: The pairs of roles that exchange forms and case replies (everything but audit
#: witnessing and receipts); the auditor is in none of them.
FORM_ROUTES = {
    ("contact_point", "contact_point"),
    ("contact_point", "central_authority"),
    ("contact_point", "service_provider"),
    ("central_authority", "contact_point"),
    ("central_authority", "central_authority"),
    ("central_authority", "judicial_authority"),
    ("central_authority", "service_provider"),
    ("judicial_authority", "central_authority"),
    ("judicial_authority", "judicial_authority"),
    ("judicial_authority", "service_provider"),
    ("service_provider", "contact_point"),
    ("service_provider", "central_authority"),
    ("service_provider", "judicial_authority"),
}


def _code(call: Callable[[], object]) -> str:
    try:
        call()
    except BrokerError as exc:
        return exc.code
    return "valid"


def _allows(from_role: Role, to_role: Role, message_type: str) -> bool:
    code = _code(lambda: check_route(default_policy(), from_role, to_role, message_type))
    assert code in ("valid", "E_POLICY_FORBIDDEN")
    return code == "valid"


# -- the shipped table ---------------------------------------------------------------------


def test_table_says_what_it_is() -> None:
    assert TABLE["description"].strip()
    assert TABLE["source"].strip()


@pytest.mark.parametrize("row", TABLE["rules"], ids=lambda r: f"{r['from_role']}>{r['to_role']}")
def test_every_row_cites_its_legal_basis(row: dict[str, Any]) -> None:
    assert row["basis"].strip()
    assert isinstance(row["verified"], bool)
    assert set(row) == {"from_role", "to_role", "types", "basis", "verified"}


def test_every_type_named_exists_in_the_catalogue() -> None:
    assert unknown_types(default_policy(), TYPES) == []
    for rule in default_policy().rules:
        for pattern in rule.types:
            if pattern.endswith(".*"):
                assert any(matches(pattern, name) for name in TYPES), pattern
            else:
                assert pattern in TYPES, pattern


def test_the_directory_itself_never_travels_as_a_message() -> None:
    assert not any(
        matches(p, "trust.directory") for rule in default_policy().rules for p in rule.types
    )


def test_default_policy_is_the_table() -> None:
    rows = [{k: r[k] for k in ("from_role", "to_role", "types", "basis")} for r in TABLE["rules"]]
    assert default_policy().model_dump(mode="json", exclude_none=True) == {"rules": rows}


def test_demo_policy_equals_the_default() -> None:
    demo = parse_policy((KEYS_DIR / "policy.json").read_bytes())
    assert demo == default_policy()


# -- what the default policy allows --------------------------------------------------------


# The 24/7 network (ETS 185 Art 35; CETS 224 Art 9) and the rules the issue names.
ROUTES: list[tuple[Role, Role, str, bool]] = [
    ("contact_point", "contact_point", "coe.art29.preservation", True),
    ("contact_point", "contact_point", "coe.art30.disclosure", True),
    ("contact_point", "contact_point", "coe.p2.art9.emergency", True),
    ("contact_point", "contact_point", "case.ack", True),
    ("contact_point", "contact_point", "case.status", True),
    ("contact_point", "contact_point", "eu.epoc", False),
    ("contact_point", "contact_point", "coe.art31.mla", False),
    ("judicial_authority", "service_provider", "eu.epoc", True),
    ("judicial_authority", "service_provider", "eu.epoc_pr", True),
    ("judicial_authority", "service_provider", "eu.epoc_pr.extension", True),
    ("central_authority", "service_provider", "eu.epoc", False),
    ("contact_point", "service_provider", "eu.epoc_pr", False),
    ("service_provider", "judicial_authority", "eu.epoc.inability", True),
    ("service_provider", "judicial_authority", "case.response", True),
    ("service_provider", "judicial_authority", "eu.epoc", False),
    ("service_provider", "service_provider", "case.response", False),
    ("judicial_authority", "judicial_authority", "eu.eio.a", True),
    ("judicial_authority", "central_authority", "eu.eio.a", True),
    ("judicial_authority", "judicial_authority", "eu.eio.b", True),
    ("service_provider", "judicial_authority", "eu.eio.a", False),
    ("central_authority", "central_authority", "coe.art31.mla", True),
    ("central_authority", "central_authority", "mla.request", True),
    ("contact_point", "auditor", "case.status", False),
    ("auditor", "contact_point", "case.status", False),
    ("contact_point", "auditor", "coe.art29.preservation", False),
    ("auditor", "judicial_authority", "eu.epoc", False),
    ("auditor", "service_provider", "coe.p2.art6.domain", False),
    ("auditor", "auditor", "case.ack", False),
    # Audit witnessing (issue #7), the auditor included.
    ("contact_point", "contact_point", "audit.checkpoint", True),
    ("service_provider", "judicial_authority", "audit.checkpoint", True),
    ("auditor", "service_provider", "audit.cosignature", True),
    ("central_authority", "auditor", "audit.checkpoint", True),
    ("auditor", "contact_point", "msg.receipt", True),
]


@pytest.mark.parametrize(
    ("from_role", "to_role", "message_type", "allowed"),
    ROUTES,
    ids=[f"{a}>{b}:{t}" for a, b, t, _ in ROUTES],
)
def test_default_routes(from_role: Role, to_role: Role, message_type: str, allowed: bool) -> None:
    assert _allows(from_role, to_role, message_type) is allowed


@pytest.mark.parametrize("message_type", sorted(ORDERS | {"eu.epoc", "eu.epoc_pr"}))
def test_only_a_judicial_authority_issues_e_evidence_orders(message_type: str) -> None:
    for from_role in ROLES:
        for to_role in ROLES:
            if _allows(from_role, to_role, message_type):
                assert from_role == "judicial_authority", (from_role, to_role)


@pytest.mark.parametrize("to_role", ROLES)
def test_a_service_provider_answers_but_never_orders(to_role: Role) -> None:
    for message_type in MESSAGE_TYPES:
        if _allows("service_provider", to_role, message_type):
            assert message_type.startswith("case.") or message_type in {
                "eu.epoc.inability",
                "msg.receipt",
                *AUDIT_TYPES,
            }


@pytest.mark.parametrize("message_type", sorted(AUDIT_TYPES))
def test_every_role_witnesses_every_role(message_type: str) -> None:
    # Issue #7: a node sends its checkpoints to its peers, whatever their roles, and
    # the witness answers; the auditor is a witness too.
    for from_role in ROLES:
        for to_role in ROLES:
            assert _allows(from_role, to_role, message_type), (from_role, to_role)


def test_audit_rows_grant_nothing_else() -> None:
    for rule in default_policy().rules:
        if AUDIT_TYPES & set(rule.types):
            assert set(rule.types) == AUDIT_TYPES, (rule.from_role, rule.to_role)
    for from_role in ROLES:
        for to_role in ROLES:
            allowed = {t for t in MESSAGE_TYPES if _allows(from_role, to_role, t)}
            if "auditor" in (from_role, to_role):
                assert allowed == AUDIT_TYPES | {"msg.receipt"}, (from_role, to_role)


def test_forms_keep_their_routes() -> None:
    # Witnessing added routes for audit types and receipts only: which pairs of roles
    # may exchange anything else is what it was before issue #7.
    routes = {
        (from_role, to_role)
        for from_role in ROLES
        for to_role in ROLES
        if any(
            _allows(from_role, to_role, t)
            for t in MESSAGE_TYPES
            if t not in AUDIT_TYPES | {"msg.receipt"}
        )
    }
    assert routes == FORM_ROUTES


def test_receipts_go_back_along_every_route() -> None:
    # DESIGN §2: whoever may receive a message returns a signed receipt to its sender;
    # receipts take no other route (a route without a message has nothing to receipt).
    routes = {
        (rule.from_role, rule.to_role)
        for rule in default_policy().rules
        if any(pattern != "msg.receipt" for pattern in rule.types)
    }
    # Audit witnessing joins every pair of roles, both ways (issue #7).
    assert len(routes) == len(ROLES) ** 2
    for from_role in ROLES:
        for to_role in ROLES:
            expected = (to_role, from_role) in routes
            assert _allows(from_role, to_role, "msg.receipt") is expected, (from_role, to_role)


# -- matching --------------------------------------------------------------------------------


MATCHES = [
    ("case.*", "case.ack", True),
    ("case.*", "case.clarification_request", True),
    ("case.*", "case", False),
    ("case.*", "cases.ack", False),
    ("eu.epoc", "eu.epoc", True),
    ("eu.epoc", "eu.epoc_pr", False),
    ("eu.epoc", "eu.epoc.inability", False),
    ("eu.epoc.*", "eu.epoc.inability", True),
    ("eu.epoc.*", "eu.epoc_pr.extension", False),
]


@pytest.mark.parametrize(("pattern", "name", "expected"), MATCHES)
def test_matches(pattern: str, name: str, expected: bool) -> None:
    assert matches(pattern, name) is expected


# -- routes through a verified directory ---------------------------------------------------------


def _directory(policy: bytes | None = None) -> TrustDirectory:
    doc = base()
    if policy is not None:
        doc = set_policy(doc, parse_policy(policy), now=T0)
    return verify_directory(raw(signed(doc, "root1", "root2")), now=T0)


WILDCARD_POLICY = json.dumps(
    {
        "rules": [
            {"from_role": "service_provider", "to_role": "contact_point", "types": ["case.*"]},
            {
                "from_role": "contact_point",
                "to_role": "service_provider",
                "types": ["coe.p2.art6.domain"],
            },
        ]
    }
).encode()

DIRECTORY_ROUTES: list[tuple[bytes | None, str, str, str, str]] = [
    (None, "DE.JUD", "ISP.mailhost", "eu.epoc", "valid"),
    (None, "ISP.mailhost", "DE.JUD", "eu.epoc.inability", "valid"),
    (None, "ISP.mailhost", "DE.JUD", "case.refusal", "valid"),
    (None, "ISP.mailhost", "DE.JUD", "eu.epoc", "E_POLICY_FORBIDDEN"),
    (None, "AT.247", "ISP.mailhost", "eu.epoc", "E_POLICY_FORBIDDEN"),
    (None, "AT.247", "DE.CA", "case.status", "valid"),
    (None, "AT.247", "DE.CA", "coe.art29.preservation", "E_POLICY_FORBIDDEN"),
    (None, "AT.247", "FR.247", "coe.art29.preservation", "E_POLICY_FORBIDDEN"),
    (None, "FR.247", "AT.247", "coe.art29.preservation", "E_POLICY_FORBIDDEN"),
    (None, "AT.247", "DE.JUD", "no.such.type", "E_POLICY_FORBIDDEN"),
    (WILDCARD_POLICY, "ISP.mailhost", "AT.247", "case.ack", "valid"),
    (WILDCARD_POLICY, "ISP.mailhost", "AT.247", "case.response", "valid"),
    (WILDCARD_POLICY, "ISP.mailhost", "AT.247", "coe.p2.art6.domain", "E_POLICY_FORBIDDEN"),
    (WILDCARD_POLICY, "AT.247", "ISP.mailhost", "coe.p2.art6.domain", "valid"),
    (WILDCARD_POLICY, "AT.247", "ISP.mailhost", "case.ack", "E_POLICY_FORBIDDEN"),
    (WILDCARD_POLICY, "DE.JUD", "ISP.mailhost", "eu.epoc", "E_POLICY_FORBIDDEN"),
    (b'{"rules": []}', "DE.JUD", "ISP.mailhost", "eu.epoc", "E_POLICY_FORBIDDEN"),
]


@pytest.mark.parametrize(
    ("policy", "sender", "recipient", "message_type", "code"),
    DIRECTORY_ROUTES,
    ids=[f"{'own' if p else 'default'}:{s}>{r}:{t}" for p, s, r, t, _ in DIRECTORY_ROUTES],
)
def test_check_route(
    policy: bytes | None, sender: str, recipient: str, message_type: str, code: str
) -> None:
    directory = _directory(policy)
    assert _code(lambda: directory.check_route(sender, recipient, message_type)) == code


# -- parsing a policy file -------------------------------------------------------------------------


BAD_POLICIES = [
    (b"", "E_PARSE", ""),
    (b"[]", "E_SCHEMA", ""),
    (b"{}", "E_SCHEMA", "/rules"),
    (
        b'{"rules": [{"from_role": "cp", "to_role": "auditor", "types": ["case.*"]}]}',
        "E_SCHEMA",
        "/rules/0/from_role",
    ),
    (
        b'{"rules": [{"from_role": "auditor", "to_role": "auditor", "types": []}]}',
        "E_SCHEMA",
        "/rules/0/types",
    ),
    (
        b'{"rules": [{"from_role": "auditor", "to_role": "auditor", "types": ["*"]}]}',
        "E_SCHEMA",
        "/rules/0/types/0",
    ),
    (b'{"rules": [], "extra": 1}', "E_SCHEMA", "/extra"),
    (b'{"rules": [], "rules": []}', "E_PARSE", ""),
]


@pytest.mark.parametrize(("data", "code", "where"), BAD_POLICIES)
def test_parse_policy_refusals(data: bytes, code: str, where: str) -> None:
    with pytest.raises(BrokerError) as info:
        parse_policy(data)
    assert info.value.code == code
    problems = getattr(info.value, "problems", ())
    assert [p.pointer for p in problems] == [where]


def test_parse_policy_size_limit() -> None:
    with pytest.raises(BrokerError) as info:
        parse_policy(b'{"rules": []}', max_bytes=5)
    assert info.value.code == "E_TOO_LARGE"


def test_unknown_types_lists_typos() -> None:
    policy = parse_policy(
        b'{"rules": [{"from_role": "auditor", "to_role": "auditor",'
        b' "types": ["case.*", "coe.art29.preserve", "audit.*", "witness.*"]}]}'
    )
    assert unknown_types(policy, TYPES) == ["coe.art29.preserve", "witness.*"]
