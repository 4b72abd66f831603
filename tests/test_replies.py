"""Case replies built from the operator's input: every kind, and every way to get it wrong."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from broker.errors import BrokerError, InputError
from broker.lifecycle import grounds_for
from broker.replies import DEFAULT_TOPIC, KINDS, ReplyContext, build_reply
from broker.resources import read_json
from broker.schema import catalogue

ART29 = "coe.art29.preservation"
EIO = "eu.eio.a"
EPOC = "eu.epoc"
NOW = datetime(2026, 3, 3, 9, 12, 44, tzinfo=UTC)
NOW_WIRE = "2026-03-03T09:12:44.000Z"
# --until as an operator types it (CET), and as the form states it (UTC).
UNTIL = datetime(2026, 6, 1, 23, 59, 59, tzinfo=timezone(timedelta(hours=2)))
UNTIL_WIRE = "2026-06-01T21:59:59.000Z"
CASE_ID = "0190a5c2-7d1e-7b3a-9c4e-1f2a3b4c5d6e"
MOTIVATION = "The suspect was finally acquitted of the same acts on 12 January 2026."
REASON = "The recognition decision needs the opinion of the bank's data-protection officer."
FORWARDED = {"name": "Staatsanwaltschaft Wien", "country": "AT"}
PACKAGE = {
    "package_id": "0190a5c2-7d1e-7b3a-9c4e-1f2a3b4c5d6f",
    "sha256": "a" * 64,
    "size_bytes": 2048,
    "item_count": 3,
    "media_type": "application/zip",
}


def context(instrument: str, role: str = "requested", **more: Any) -> ReplyContext:
    return ReplyContext(
        case_id=CASE_ID,
        instrument=instrument,
        request_id="0190a5c2-7d1e-7b3a-9c4e-000000000001",
        me="AT.247",
        peer="DE.247",
        role=role,
        now=NOW,
        **more,
    )


def example(name: str) -> dict[str, Any]:
    found: dict[str, Any] = read_json("examples", f"{name}.json")
    return found


@dataclass(frozen=True)
class Valid:
    """A reply that builds: the inputs and members the form must then have."""

    name: str
    instrument: str
    kind: str
    inputs: dict[str, Any]
    expected: dict[str, Any]
    role: str = "requested"
    absent: tuple[str, ...] = field(default=())
    received_at: datetime | None = None  # the node's record of the request's arrival


VALID = [
    # -- ETS 185 Art 29 preservation ------------------------------------------------------
    Valid(
        "art29-ack",
        ART29,
        "ack",
        {},
        {"received_at": NOW_WIRE, "reference": CASE_ID, "competent": True},
        absent=("forwarded_to", "note"),
    ),
    Valid(
        "art29-ack-forwarded",
        ART29,
        "ack",
        {"form": {"forwarded_to": FORWARDED}, "motivation": "Forwarded to the competent office."},
        {
            "competent": False,
            "forwarded_to": FORWARDED,
            "note": "Forwarded to the competent office.",
        },
    ),
    Valid(
        "art29-status-preserved",
        ART29,
        "status",
        {"status": "preserved", "until": UNTIL},
        {"status": "preserved", "instrument": ART29, "preserved_until": UNTIL_WIRE},
    ),
    Valid(
        "art29-status-risk",
        ART29,
        "status",
        {"status": "risk_notice", "text": "The provider deletes logs after 7 days."},
        {"status": "risk_notice", "note": "The provider deletes logs after 7 days."},
    ),
    Valid(
        "art29-status-generic",
        ART29,
        "status",
        {"status": "received"},
        {"status": "received", "instrument": ART29},
        absent=("preserved_until", "note"),
    ),
    Valid(
        "art29-refuse",
        ART29,
        "refuse",
        {"ground": "essential_interests", "motivation": MOTIVATION},
        {
            "instrument": ART29,
            "ground": "essential_interests",
            "article": "ETS 185 Art 29(5)(b); Art 30(2)(b)",
            "motivation": MOTIVATION,
            "partial": False,
        },
    ),
    Valid(
        "art29-clarify",
        ART29,
        "clarify",
        {"motivation": "Which mailbox?"},
        {
            "questions": [{"topic": DEFAULT_TOPIC, "question": "Which mailbox?"}],
            "clock_suspended": False,
        },
        absent=("respond_by",),
    ),
    Valid(
        "art29-extend-request",
        ART29,
        "extend",
        {"period": "P60D", "text": REASON, "article": "ETS 185 Art 29(7)"},
        {"kind": "request", "period": "P60D", "reason": REASON, "article": "ETS 185 Art 29(7)"},
        role="requester",
    ),
    Valid(
        "art29-extend-grant",
        ART29,
        "extend",
        {"until": UNTIL, "form": {"article": "ETS 185 Art 29(7)"}},
        {"kind": "grant", "new_until": UNTIL_WIRE, "article": "ETS 185 Art 29(7)"},
        absent=("period", "reason"),
    ),
    Valid(
        "art29-withdraw",
        ART29,
        "withdraw",
        {"text": "The data are no longer needed."},
        {"reason": "The data are no longer needed."},
        role="requester",
        absent=("effective_at",),
    ),
    Valid(
        "art29-respond-no-data",
        ART29,
        "respond",
        {"form": {"disposition": "no_data"}, "text": "No such mailbox."},
        {"disposition": "no_data", "produced_at": NOW_WIRE, "note": "No such mailbox."},
    ),
    # -- Directive 2014/41/EU, Annex A ----------------------------------------------------
    Valid(
        "eio-ack-received-at",
        EIO,
        "ack",
        {"form": {"reference": "StA-WIEN-2026-771"}},
        {"received_at": "2026-03-02T08:00:00.000Z", "reference": "StA-WIEN-2026-771"},
        received_at=datetime(2026, 3, 2, 9, tzinfo=timezone(timedelta(hours=1))),
    ),
    Valid(
        "eio-status-recognised",
        EIO,
        "status",
        {"status": "recognised"},
        {"status": "recognised", "instrument": EIO},
    ),
    Valid(
        "eio-status-delay",
        EIO,
        "status",
        {"status": "delay", "text": "The bank answers slowly.", "until": UNTIL},
        {"status": "delay", "note": "The bank answers slowly.", "expected_by": UNTIL_WIRE},
        absent=("preserved_until",),
    ),
    Valid(
        "eio-status-flag-overrides-form",
        EIO,
        "status",
        {"form": {"status": "received", "instrument": EIO}, "status": "executing"},
        {"status": "executing"},
    ),
    Valid(
        "eio-refuse-partial",
        EIO,
        "refuse",
        {
            "form": {"partial": True, "refused_items": ["Bank records of 2024"]},
            "ground": "ne_bis_in_idem",
            "motivation": MOTIVATION,
        },
        {
            "ground": "ne_bis_in_idem",
            "article": "Directive 2014/41/EU Art 11(1)(d)",
            "partial": True,
            "refused_items": ["Bank records of 2024"],
        },
    ),
    Valid(
        "eio-refuse-from-form",
        EIO,
        "refuse",
        {"form": example("case.refusal")},
        example("case.refusal"),
    ),
    Valid(
        "eio-clarify",
        EIO,
        "clarify",
        {"form": example("case.clarification_request"), "text": "Which account?", "until": UNTIL},
        {
            "questions": [
                *example("case.clarification_request")["questions"],
                {"topic": DEFAULT_TOPIC, "question": "Which account?"},
            ],
            "respond_by": UNTIL_WIRE,
            "clock_suspended": True,
        },
    ),
    Valid(
        "eio-extend-form",
        EIO,
        "extend",
        {"form": example("case.extension"), "until": UNTIL},
        {"kind": "request", "new_until": UNTIL_WIRE, "article": "Directive 2014/41/EU Art 12(5)"},
        absent=("period",),
    ),
    Valid(
        "eio-withdraw",
        EIO,
        "withdraw",
        {"form": example("case.withdrawal"), "until": UNTIL},
        {"reason": example("case.withdrawal")["reason"], "effective_at": UNTIL_WIRE},
        role="requester",
    ),
    Valid(
        "eio-respond", EIO, "respond", {"form": example("case.response")}, example("case.response")
    ),
    # -- Regulation (EU) 2023/1543, EPOC --------------------------------------------------
    Valid("epoc-ack", EPOC, "ack", {}, {"competent": True, "received_at": NOW_WIRE}),
    Valid("epoc-ack-notified", EPOC, "ack", {}, {"competent": True}, role="notified"),
    Valid(
        "epoc-status-preserving",
        EPOC,
        "status",
        {"status": "preserving", "until": UNTIL},
        {"status": "preserving", "instrument": EPOC, "preserved_until": UNTIL_WIRE},
    ),
    Valid(
        "epoc-status-transmitted",
        EPOC,
        "status",
        {"status": "transmitted"},
        {"status": "transmitted"},
    ),
    Valid(
        "epoc-refuse-addressee",
        EPOC,
        "refuse",
        {"ground": "force_majeure", "motivation": "The data centre burnt down."},
        {"ground": "force_majeure", "article": "Regulation (EU) 2023/1543 Art 10(7), Annex III"},
    ),
    Valid(
        "epoc-refuse-enforcing-authority",
        EPOC,
        "refuse",
        {"ground": "ne_bis_in_idem", "motivation": MOTIVATION, "article": "Art 12(1)(c)"},
        {"ground": "ne_bis_in_idem", "article": "Art 12(1)(c)"},
        role="notified",
    ),
    Valid(
        "epoc-clarify",
        EPOC,
        "clarify",
        {"text": "The e-mail address matches no account."},
        {"clock_suspended": True},
    ),
    Valid(
        "epoc-extend",
        EPOC,
        "extend",
        {"period": "P10D", "text": REASON, "article": "Regulation (EU) 2023/1543 Art 10(2)"},
        {"kind": "request", "period": "P10D"},
        role="requester",
    ),
    Valid(
        "epoc-withdraw",
        EPOC,
        "withdraw",
        {"motivation": "The suspect has been identified by other means."},
        {"reason": "The suspect has been identified by other means."},
        role="requester",
    ),
    Valid(
        "epoc-respond-package",
        EPOC,
        "respond",
        {"form": {"disposition": "full", "package": PACKAGE}},
        {"disposition": "full", "package": PACKAGE, "produced_at": NOW_WIRE},
    ),
]


@pytest.mark.parametrize("case", VALID, ids=[c.name for c in VALID])
def test_reply_builds_a_valid_form(case: Valid) -> None:
    form_type, data = build_reply(
        case.kind, context(case.instrument, case.role, received_at=case.received_at), **case.inputs
    )
    assert form_type == KINDS[case.kind]
    catalogue().parse_obj(form_type, data)  # what is returned is what was validated
    assert {key: data.get(key) for key in case.expected} == case.expected
    assert not set(case.absent) & set(data)


def test_every_kind_is_covered_for_each_instrument() -> None:
    covered = {(c.instrument, c.kind) for c in VALID}
    assert covered == {(i, k) for i in (ART29, EIO, EPOC) for k in KINDS}


def test_the_callers_form_is_not_changed() -> None:
    form = example("case.clarification_request")
    before = example("case.clarification_request")
    _, data = build_reply("clarify", context(EIO), form=form, text="Which account?")
    assert form == before
    data["questions"][0]["topic"] = "changed"
    assert form == before


@dataclass(frozen=True)
class Invalid:
    """A reply that must not build, with the error code and pointer expected."""

    name: str
    instrument: str
    kind: str
    inputs: dict[str, Any]
    code: str
    pointer: str | None = None  # for input errors: the pointer of the (first) problem
    role: str = "requested"


G = "E_GROUND"
S = "E_SCHEMA"
INVALID = [
    # -- refusals: ground and motivation (E_GROUND) ----------------------------------------
    Invalid("refuse-no-ground", ART29, "refuse", {"motivation": MOTIVATION}, G),
    Invalid("refuse-empty-ground", ART29, "refuse", {"ground": "", "motivation": MOTIVATION}, G),
    Invalid(
        "refuse-ground-of-eio-for-art29",
        ART29,
        "refuse",
        {"ground": "ne_bis_in_idem", "motivation": MOTIVATION},
        G,
    ),
    Invalid(
        "refuse-ground-of-art29-for-eio",
        EIO,
        "refuse",
        {"ground": "political_offence", "motivation": MOTIVATION},
        G,
    ),
    Invalid(
        "refuse-ground-of-art29-for-epoc",
        EPOC,
        "refuse",
        {"ground": "essential_interests", "motivation": MOTIVATION},
        G,
    ),
    Invalid("refuse-no-motivation", EIO, "refuse", {"ground": "ne_bis_in_idem"}, G),
    Invalid(
        "refuse-empty-motivation-flag",
        ART29,
        "refuse",
        {"ground": "essential_interests", "motivation": ""},
        G,
    ),
    Invalid(
        "refuse-blank-motivation-flag",
        EPOC,
        "refuse",
        {"ground": "force_majeure", "motivation": " \t"},
        G,
    ),
    Invalid(
        "refuse-empty-motivation-in-form",
        EIO,
        "refuse",
        {"form": {"motivation": ""}, "ground": "ne_bis_in_idem"},
        G,
    ),
    Invalid(
        "refuse-blank-motivation-in-form",
        EPOC,
        "refuse",
        {"form": {"motivation": " \n "}, "ground": "force_majeure"},
        G,
    ),
    Invalid(
        "refuse-by-requester",
        EIO,
        "refuse",
        {"ground": "ne_bis_in_idem", "motivation": MOTIVATION},
        G,
        role="requester",
    ),
    Invalid(
        "refuse-annex-iii-by-enforcing-authority",
        EPOC,
        "refuse",
        {"ground": "force_majeure", "motivation": MOTIVATION},
        G,
        role="notified",
    ),
    Invalid(
        "refuse-art12-by-addressee",
        EPOC,
        "refuse",
        {"ground": "ne_bis_in_idem", "motivation": MOTIVATION},
        G,
    ),
    Invalid(
        "refuse-form-of-another-case",
        ART29,
        "refuse",
        {"form": example("case.refusal")},
        G,
    ),
    # -- status codes (E_SCHEMA) -----------------------------------------------------------
    Invalid("status-missing", ART29, "status", {}, S, "/status"),
    Invalid("status-of-eio-for-art29", ART29, "status", {"status": "recognised"}, S, "/status"),
    Invalid("status-of-art29-for-eio", EIO, "status", {"status": "preserved"}, S, "/status"),
    Invalid("status-of-epoc_pr-for-epoc", EPOC, "status", {"status": "ceased"}, S, "/status"),
    Invalid("status-unknown", EPOC, "status", {"status": "lost"}, S, "/status"),
    Invalid(
        "status-until-not-preserved",
        ART29,
        "status",
        {"status": "received", "until": UNTIL},
        S,
        "/preserved_until",
    ),
    Invalid(
        "status-until-eio-recognised",
        EIO,
        "status",
        {"status": "recognised", "until": UNTIL},
        S,
        "/preserved_until",
    ),
    Invalid(
        "status-until-epoc-transmitted",
        EPOC,
        "status",
        {"status": "transmitted", "until": UNTIL},
        S,
        "/preserved_until",
    ),
    Invalid("status-preserved-no-until", ART29, "status", {"status": "preserved"}, S),
    Invalid("status-postponed-no-note", EIO, "status", {"status": "postponed"}, S, "/note"),
    Invalid(
        "status-form-of-another-case",
        ART29,
        "status",
        {"form": {"instrument": EIO}, "status": "received"},
        S,
        "/instrument",
    ),
    # -- the other kinds (E_SCHEMA, or E_SEMANTIC beyond the schema) -----------------------
    Invalid("unknown-kind", ART29, "answer", {}, "E_UNKNOWN_TYPE"),
    Invalid("flag-not-for-kind", ART29, "ack", {"ground": "essential_interests"}, S, ""),
    Invalid("status-flag-on-refusal", EIO, "refuse", {"status": "received"}, S, ""),
    Invalid("period-on-status", EPOC, "status", {"status": "received", "period": "P1D"}, S, ""),
    Invalid("two-texts", EIO, "withdraw", {"text": "a", "motivation": "b"}, S, ""),
    Invalid("blank-text", EIO, "withdraw", {"text": "  "}, S, ""),
    Invalid("blank-motivation", EIO, "status", {"status": "postponed", "motivation": ""}, S, ""),
    Invalid(
        "naive-until",
        ART29,
        "status",
        {"status": "preserved", "until": datetime(2026, 6, 1)},
        S,
        "",
    ),
    Invalid("form-not-object", ART29, "ack", {"form": ["received"]}, S, ""),
    Invalid("ack-bad-form-member", ART29, "ack", {"form": {"case": CASE_ID}}, S, "/case"),
    Invalid("clarify-no-question", EIO, "clarify", {}, S, "/questions"),
    Invalid("extend-no-time", EIO, "extend", {"article": "Art 12(5)"}, S, "/period"),
    Invalid(
        "extend-until-and-period",
        EIO,
        "extend",
        {"until": UNTIL, "period": "P30D", "article": "Art 12(5)"},
        S,
        "/period",
    ),
    Invalid("extend-no-article", EIO, "extend", {"period": "P30D"}, S, "/article"),
    Invalid(
        "extend-request-no-reason",
        ART29,
        "extend",
        {"period": "P30D", "article": "ETS 185 Art 29(7)"},
        S,
        "/reason",
        role="requester",
    ),
    Invalid(
        "extend-bad-period",
        EIO,
        "extend",
        {"period": "30 days", "article": "Art 12(5)"},
        S,
        "/period",
    ),
    Invalid(
        "extend-zero-period",
        EIO,
        "extend",
        {"period": "P0D", "article": "Art 12(5)"},
        "E_SEMANTIC",
        "/period",
    ),
    Invalid("withdraw-no-reason", EIO, "withdraw", {}, S, "/reason", role="requester"),
    Invalid("respond-no-form", EIO, "respond", {"text": "Here you are."}, S, ""),
    Invalid("respond-no-data", EIO, "respond", {"form": {"disposition": "full"}}, S, "/data"),
    Invalid("role-not-party", EIO, "ack", {}, "E_NOT_PARTY", role="notified"),
]


@pytest.mark.parametrize("case", INVALID, ids=[c.name for c in INVALID])
def test_reply_is_refused_with_its_code(case: Invalid) -> None:
    with pytest.raises(BrokerError) as exc:
        build_reply(case.kind, context(case.instrument, case.role), **case.inputs)
    assert exc.value.code == case.code
    if case.pointer is not None:
        assert isinstance(exc.value, InputError)
        assert case.pointer in [p.pointer for p in exc.value.problems]


def test_missing_ground_names_the_valid_ones() -> None:
    with pytest.raises(BrokerError, match="ne_bis_in_idem") as exc:
        build_reply("refuse", context(EIO), motivation=MOTIVATION)
    assert exc.value.code == G
    assert all(code in exc.value.message for code in grounds_for(EIO))


def test_every_ground_of_the_instrument_builds() -> None:
    for ground in grounds_for(EIO):
        _, data = build_reply("refuse", context(EIO), ground=ground, motivation=MOTIVATION)
        assert data["ground"] == ground


@pytest.mark.parametrize(
    "bad",
    [
        {"now": datetime(2026, 3, 3, 9)},
        {"received_at": datetime(2026, 3, 3, 9)},
        {"role": "clock"},
        {"role": "executing"},
    ],
    ids=["naive-now", "naive-received-at", "clock", "unknown-role"],
)
def test_context_refuses_what_the_node_cannot_know(bad: dict[str, Any]) -> None:
    fields: dict[str, Any] = {
        "case_id": CASE_ID,
        "instrument": EIO,
        "request_id": "m1",
        "me": "AT.247",
        "peer": "DE.247",
        "role": "requested",
        "now": NOW,
    }
    with pytest.raises(ValueError, match=r"aware|role"):
        ReplyContext(**(fields | bad))
