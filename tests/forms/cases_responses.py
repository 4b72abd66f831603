"""Cases for the generic case replies (case.*)."""

from __future__ import annotations

from tests.forms.cases import Case, delete, invalid, raw_case, set_, valid

S = "E_SCHEMA"
M = "E_SEMANTIC"

# -- case.ack ------------------------------------------------------------------------------
T = "case.ack"
FORWARDED = {"name": "Staatsanwaltschaft Wien", "country": "AT", "reference": "StA-WIEN-2026-771"}
ACK: list[Case] = [
    valid(T),
    valid(T, "forwarded", set_("/competent", False), set_("/forwarded_to", FORWARDED)),
    valid(T, "minimal", delete("/note")),
    invalid(T, "not-competent-not-forwarded", set_("/competent", False), (S, "/forwarded_to")),
    invalid(T, "competent-but-forwarded", set_("/forwarded_to", FORWARDED), (S, "/forwarded_to")),
    invalid(
        T,
        "forwarded-unknown-member",
        [set_("/competent", False), set_("/forwarded_to", {**FORWARDED, "fax": "+431234567"})],
        (S, "/forwarded_to/fax"),
    ),
    invalid(
        T,
        "forwarded-bad-country",
        [set_("/competent", False), set_("/forwarded_to", {**FORWARDED, "country": "Austria"})],
        (S, "/forwarded_to/country"),
    ),
    invalid(T, "no-offset", set_("/received_at", "2026-03-03T09:12:44"), (S, "/received_at")),
    invalid(T, "no-reference", delete("/reference"), (S, "/reference")),
    invalid(T, "competent-string", set_("/competent", "yes"), (S, "/competent")),
    invalid(
        T, "case-id-repeated", set_("/case", "0190a5c2-7d1e-7b3a-9c4e-1f2a3b4c5d6e"), (S, "/case")
    ),
    raw_case(T, "not-json", b'{"received_at": ', ("E_PARSE", "")),
]

# -- case.status ---------------------------------------------------------------------------
T = "case.status"
STATUS: list[Case] = [
    valid(T),
    valid(
        T,
        "generic-received",
        set_("/instrument", "eu.eio.c"),
        set_("/status", "received"),
        delete("/preserved_until"),
        delete("/note"),
        delete("/expected_by"),
    ),
    valid(
        T,
        "eio-delay",
        set_("/instrument", "eu.eio.a"),
        set_("/status", "delay"),
        delete("/preserved_until"),
        set_("/note", "The bank needs four more weeks to extract the records."),
        set_("/expected_by", "2026-07-01T00:00:00+02:00"),
    ),
    valid(
        T, "art29-held-for-mla", set_("/status", "mla_received_holding"), delete("/preserved_until")
    ),
    valid(
        T,
        "epoc-pr-preserving-until",
        set_("/instrument", "eu.epoc_pr"),
        set_("/status", "preserving"),
    ),
    valid(
        T,
        "epoc-pr-preserving-open",
        set_("/instrument", "eu.epoc_pr"),
        set_("/status", "preserving"),
        delete("/preserved_until"),
    ),
    valid(
        T,
        "epoc-awaiting",
        set_("/instrument", "eu.epoc"),
        set_("/status", "awaiting_enforcing_authority"),
        delete("/preserved_until"),
    ),
    valid(
        T,
        "p2-will-not-disclose",
        set_("/instrument", "coe.p2.art7.subscriber"),
        set_("/status", "will_not_disclose"),
        delete("/preserved_until"),
    ),
    # A status must be one of the instrument's (schemas/data/status_codes.json).
    invalid(
        T,
        "status-of-other-instrument",
        set_("/instrument", "eu.eio.a"),
        (S, "/preserved_until"),
        (S, "/status"),
    ),
    invalid(
        T,
        "eio-status-on-art29",
        [set_("/status", "recognised"), delete("/preserved_until")],
        (S, "/status"),
    ),
    invalid(T, "status-unknown", set_("/status", "lost"), (S, "/preserved_until"), (S, "/status")),
    invalid(
        T,
        "instrument-not-a-request",
        set_("/instrument", "coe.art30.disclosure"),
        (S, "/instrument"),
    ),
    invalid(T, "instrument-reply-type", set_("/instrument", "case.ack"), (S, "/instrument")),
    invalid(T, "no-instrument", delete("/instrument"), (S, "/instrument")),
    # Members a status requires, and preserved_until only for preserved data.
    invalid(T, "preserved-without-until", delete("/preserved_until"), (S, "/preserved_until")),
    invalid(
        T,
        "delay-without-expected",
        [
            set_("/instrument", "eu.eio.a"),
            set_("/status", "delay"),
            delete("/preserved_until"),
            delete("/expected_by"),
        ],
        (S, "/expected_by"),
    ),
    invalid(
        T,
        "risk-notice-without-note",
        [set_("/status", "risk_notice"), delete("/preserved_until"), delete("/note")],
        (S, "/note"),
    ),
    invalid(T, "until-with-generic-status", set_("/status", "received"), (S, "/preserved_until")),
    invalid(
        T,
        "until-after-ceasing",
        [set_("/instrument", "eu.epoc_pr"), set_("/status", "ceased")],
        (S, "/preserved_until"),
    ),
    invalid(T, "bad-until", set_("/preserved_until", "2026-06-01"), (S, "/preserved_until")),
    invalid(T, "unknown-member", set_("/sent_at", "2026-03-03T09:12:44+01:00"), (S, "/sent_at")),
]

# -- case.refusal --------------------------------------------------------------------------
T = "case.refusal"
REFUSAL: list[Case] = [
    valid(T),
    valid(
        T,
        "epoc-enforcing-authority",
        set_("/instrument", "eu.epoc"),
        set_("/ground", "fundamental_rights_manifest_breach"),
        set_("/article", "Regulation (EU) 2023/1543 Art 12(1)(b)"),
        set_("/partial", False),
        delete("/refused_items"),
    ),
    valid(
        T,
        "epoc-annex-iii",
        set_("/instrument", "eu.epoc"),
        set_("/ground", "de_facto_impossibility"),
        set_("/article", "Regulation (EU) 2023/1543 Art 10(7)"),
        set_("/partial", False),
        delete("/refused_items"),
    ),
    valid(
        T,
        "art29-political",
        set_("/instrument", "coe.art29.preservation"),
        set_("/ground", "political_offence"),
        set_("/article", "ETS 185 Art 29(5)(a)"),
        set_("/partial", False),
        delete("/refused_items"),
    ),
    valid(
        T,
        "mla-death-penalty",
        set_("/instrument", "mla.request"),
        set_("/ground", "death_penalty"),
        set_("/article", "Treaty on Mutual Legal Assistance, Art 3(1)(c)"),
        set_("/partial", False),
        delete("/refused_items"),
    ),
    valid(
        T,
        "interception-notice",
        set_("/instrument", "eu.eio.c"),
        set_("/ground", "not_authorised_similar_domestic_case"),
        set_("/article", "Directive 2014/41/EU Art 31(3)(a)"),
        set_("/partial", False),
        delete("/refused_items"),
    ),
    # A ground must be one of the instrument's (schemas/data/refusal_grounds.json).
    invalid(T, "ground-of-other-instrument", set_("/ground", "political_offence"), (S, "/ground")),
    invalid(T, "ground-unknown", set_("/ground", "too_expensive"), (S, "/ground")),
    invalid(
        T,
        "art17-on-preservation",
        [set_("/instrument", "eu.epoc_pr"), set_("/ground", "third_country_law_conflict")],
        (S, "/ground"),
    ),
    invalid(
        T,
        "instrument-without-grounds",
        set_("/instrument", "coe.p2.art6.domain"),
        (S, "/instrument"),
    ),
    invalid(T, "instrument-unknown", set_("/instrument", "eu.eaw"), (S, "/instrument")),
    invalid(T, "items-in-full-refusal", set_("/partial", False), (S, "/refused_items")),
    invalid(T, "items-empty", set_("/refused_items", []), (S, "/refused_items")),
    invalid(
        T,
        "items-duplicate",
        set_("/refused_items", ["2024 records", "2024 records"]),
        (S, "/refused_items"),
    ),
    invalid(T, "no-motivation", delete("/motivation"), (S, "/motivation")),
    invalid(T, "empty-motivation", set_("/motivation", ""), (S, "/motivation")),
    invalid(T, "no-article", delete("/article"), (S, "/article")),
    invalid(T, "no-partial", delete("/partial"), (S, "/partial")),
]

# -- case.clarification_request ------------------------------------------------------------
T = "case.clarification_request"
CLARIFICATION_REQUEST: list[Case] = [
    valid(T),
    valid(T, "escaped-pointer", set_("/questions/0/pointer", "/data/identifiers/0/a~1b~0c")),
    valid(
        T,
        "minimal",
        delete("/respond_by"),
        delete("/questions/0/pointer"),
        delete("/questions/1"),
        set_("/clock_suspended", False),
    ),
    invalid(T, "no-questions", set_("/questions", []), (S, "/questions")),
    invalid(
        T,
        "pointer-relative",
        set_("/questions/0/pointer", "data/identifiers/0"),
        (S, "/questions/0/pointer"),
    ),
    invalid(
        T,
        "pointer-bad-escape",
        set_("/questions/0/pointer", "/data/a~2b"),
        (S, "/questions/0/pointer"),
    ),
    invalid(T, "pointer-empty", set_("/questions/0/pointer", ""), (S, "/questions/0/pointer")),
    invalid(T, "no-clock", delete("/clock_suspended"), (S, "/clock_suspended")),
    invalid(T, "no-topic", delete("/questions/1/topic"), (S, "/questions/1/topic")),
    invalid(T, "bad-respond-by", set_("/respond_by", "tomorrow"), (S, "/respond_by")),
    invalid(
        T, "unknown-member", set_("/questions/0/priority", "high"), (S, "/questions/0/priority")
    ),
]

# -- case.clarification --------------------------------------------------------------------
T = "case.clarification"
CLARIFICATION: list[Case] = [
    valid(T),
    valid(T, "topic-only", delete("/answers/0/question_index")),
    valid(T, "no-amendments", delete("/amended_fields")),
    invalid(T, "question-not-named", delete("/answers/1/question_index"), (S, "/answers/1/topic")),
    invalid(
        T, "index-negative", set_("/answers/0/question_index", -1), (S, "/answers/0/question_index")
    ),
    invalid(
        T,
        "index-too-large",
        set_("/answers/0/question_index", 100),
        (S, "/answers/0/question_index"),
    ),
    invalid(
        T, "index-string", set_("/answers/0/question_index", "0"), (S, "/answers/0/question_index")
    ),
    invalid(T, "no-answers", set_("/answers", []), (S, "/answers")),
    invalid(T, "empty-answer", set_("/answers/0/answer", ""), (S, "/answers/0/answer")),
    invalid(
        T,
        "amendment-bad-pointer",
        set_("/amended_fields/0/pointer", "data.identifiers"),
        (S, "/amended_fields/0/pointer"),
    ),
    invalid(T, "amendment-empty-list", set_("/amended_fields", []), (S, "/amended_fields")),
    # Beyond the schema: each question answered, and each member amended, once.
    invalid(T, "question-answered-twice", set_("/answers/1/question_index", 0), (M, "/answers")),
    invalid(
        T,
        "member-amended-twice",
        set_(
            "/amended_fields",
            [
                {
                    "pointer": "/data/identifiers/0/value",
                    "amendment": "phish.operator@mail.example.com",
                },
                {
                    "pointer": "/data/identifiers/0/value",
                    "amendment": "phish-operator@mail.example.com",
                },
            ],
        ),
        (M, "/amended_fields"),
    ),
]

# -- case.extension ------------------------------------------------------------------------
T = "case.extension"
EXTENSION: list[Case] = [
    valid(T),
    valid(
        T,
        "grant-new-until",
        set_("/kind", "grant"),
        delete("/period"),
        delete("/reason"),
        set_("/new_until", "2026-07-15T23:59:59+02:00"),
    ),
    valid(T, "hours", set_("/period", "PT48H")),
    valid(T, "weeks", set_("/period", "P2W")),
    valid(T, "combined", set_("/period", "P1M15DT12H")),
    valid(T, "years-months", set_("/period", "P1Y2M")),
    invalid(T, "both", set_("/new_until", "2026-07-15T23:59:59+02:00"), (S, "/period")),
    invalid(T, "neither", delete("/period"), (S, "/period")),
    invalid(T, "period-words", set_("/period", "30 days"), (S, "/period")),
    invalid(T, "period-empty-p", set_("/period", "P"), (S, "/period")),
    invalid(T, "period-empty-t", set_("/period", "P1DT"), (S, "/period")),
    invalid(T, "period-year-day", set_("/period", "P1Y2D"), (S, "/period")),
    invalid(T, "period-lower-case", set_("/period", "p30d"), (S, "/period")),
    invalid(T, "kind-unknown", set_("/kind", "ask"), (S, "/kind")),
    invalid(T, "request-without-reason", delete("/reason"), (S, "/reason")),
    invalid(T, "no-article", delete("/article"), (S, "/article")),
    invalid(
        T, "bad-new-until", [delete("/period"), set_("/new_until", "15.07.2026")], (S, "/new_until")
    ),
    invalid(T, "zero-period", set_("/period", "P0D"), (M, "/period")),
    invalid(T, "zero-time-period", set_("/period", "PT0H0M0S"), (M, "/period")),
]

# -- case.withdrawal -----------------------------------------------------------------------
T = "case.withdrawal"
WITHDRAWAL: list[Case] = [
    valid(T),
    valid(T, "at-once", delete("/effective_at")),
    invalid(T, "no-reason", delete("/reason"), (S, "/reason")),
    invalid(T, "empty-reason", set_("/reason", ""), (S, "/reason")),
    invalid(T, "reason-number", set_("/reason", 123), (S, "/reason")),
    invalid(
        T,
        "bad-effective-at",
        set_("/effective_at", "2026-03-20T25:00:00+01:00"),
        (S, "/effective_at"),
    ),
    invalid(T, "null-effective-at", set_("/effective_at", None), (S, "/effective_at")),
    invalid(
        T,
        "unknown-member",
        set_("/in_reply_to", "0190a5c2-7d1e-7b3a-9c4e-1f2a3b4c5d6e"),
        (S, "/in_reply_to"),
    ),
]

# -- case.response -------------------------------------------------------------------------
T = "case.response"
SHA256 = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
PACKAGE = {
    "package_id": "0190a5c2-7d1e-7b3a-9c4e-1f2a3b4c5d6e",
    "sha256": SHA256,
    "size_bytes": 48213004,
    "item_count": 312,
    "media_type": "application/zip",
}
RESPONSE: list[Case] = [
    valid(T),
    valid(
        T, "full-package", set_("/disposition", "full"), delete("/data"), set_("/package", PACKAGE)
    ),
    valid(
        T,
        "empty-package-file",
        set_("/disposition", "full"),
        delete("/data"),
        set_("/package", {**PACKAGE, "size_bytes": 0, "item_count": 1}),
    ),
    valid(T, "no-data", set_("/disposition", "no_data"), delete("/data"), delete("/note")),
    valid(T, "text-only", delete("/data/0")),
    # Exactly one of data and package for full / partial, neither for no_data.
    invalid(T, "no-data-with-data", set_("/disposition", "no_data"), (S, "/data")),
    invalid(
        T,
        "no-data-with-package",
        [set_("/disposition", "no_data"), delete("/data"), set_("/package", PACKAGE)],
        (S, "/package"),
    ),
    invalid(T, "both", set_("/package", PACKAGE), (S, "/data")),
    invalid(T, "neither", delete("/data"), (S, "/data")),
    invalid(T, "records-and-text", set_("/data/0/text", "see records"), (S, "/data/0/text")),
    invalid(T, "records-nor-text", delete("/data/1/text"), (S, "/data/1/text")),
    invalid(T, "records-empty", set_("/data/0/records", []), (S, "/data/0/records")),
    invalid(
        T, "record-no-value", delete("/data/0/records/0/value"), (S, "/data/0/records/0/value")
    ),
    invalid(T, "category-unknown", set_("/data/0/category", "metadata"), (S, "/data/0/category")),
    invalid(
        T,
        "identifier-bad-email",
        set_("/data/0/identifier/value", "phish.operator"),
        (S, "/data/0/identifier/value"),
    ),
    invalid(T, "disposition-unknown", set_("/disposition", "some"), (S, "/disposition")),
    invalid(T, "no-produced-at", delete("/produced_at"), (S, "/produced_at")),
    # The evidence package reference.
    invalid(
        T,
        "sha256-upper",
        [delete("/data"), set_("/package", {**PACKAGE, "sha256": SHA256.upper()})],
        (S, "/package/sha256"),
    ),
    invalid(
        T,
        "sha256-short",
        [delete("/data"), set_("/package", {**PACKAGE, "sha256": "9f86d081"})],
        (S, "/package/sha256"),
    ),
    invalid(
        T,
        "size-negative",
        [delete("/data"), set_("/package", {**PACKAGE, "size_bytes": -1})],
        (S, "/package/size_bytes"),
    ),
    invalid(
        T,
        "size-float",
        [delete("/data"), set_("/package", {**PACKAGE, "size_bytes": 10.5})],
        (S, "/package/size_bytes"),
    ),
    invalid(
        T,
        "no-items",
        [delete("/data"), set_("/package", {**PACKAGE, "item_count": 0})],
        (S, "/package/item_count"),
    ),
    invalid(
        T,
        "bad-package-id",
        [delete("/data"), set_("/package", {**PACKAGE, "package_id": "pkg-1"})],
        (S, "/package/package_id"),
    ),
    invalid(
        T,
        "bad-media-type",
        [delete("/data"), set_("/package", {**PACKAGE, "media_type": "zip"})],
        (S, "/package/media_type"),
    ),
    invalid(
        T,
        "package-missing-digest",
        [delete("/data"), set_("/package", {k: v for k, v in PACKAGE.items() if k != "sha256"})],
        (S, "/package/sha256"),
    ),
]

CASES: list[Case] = [
    *ACK,
    *STATUS,
    *REFUSAL,
    *CLARIFICATION_REQUEST,
    *CLARIFICATION,
    *EXTENSION,
    *WITHDRAWAL,
    *RESPONSE,
]
