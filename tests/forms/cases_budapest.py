"""Cases for ``coe.art30.disclosure`` and ``coe.art31.mla`` (Budapest Convention Art 30, 31)."""

from __future__ import annotations

from tests.forms.cases import Case, delete, invalid, set_, valid

T30 = "coe.art30.disclosure"
T31 = "coe.art31.mla"
S = "E_SCHEMA"
M = "E_SEMANTIC"

REVERSED = {"from": "2026-03-10T00:00:00Z", "to": "2026-03-01T00:00:00Z"}

CASES: list[Case] = [
    # -- Art 30 -----------------------------------------------------------------------
    valid(T30),
    valid(
        T30,
        "minimal",
        delete("/remarks"),
        delete("/disclosing_authority/unit"),
        delete("/preserved_data/preserved_at"),
        delete("/preserved_data/period"),
        delete("/service_providers/0/location"),
        delete("/service_providers/0/identifiers"),
        delete("/path/0/notes"),
    ),
    valid(T30, "only-foreign-provider", delete("/service_providers/1"), delete("/path/1")),
    valid(
        T30,
        "provider-in-requesting-state",
        set_("/service_providers/0", {"name": "Example Access AG", "country": "DE"}),
        set_("/path/0/service_provider", "Example Access AG"),
    ),
    # Art 30(1): the Art 29 request, the preservation, the providers and the path.
    invalid(T30, "no-prior-request", delete("/prior_request"), (S, "/prior_request")),
    invalid(T30, "no-preserved-data", delete("/preserved_data"), (S, "/preserved_data")),
    invalid(
        T30,
        "no-preservation-reference",
        delete("/preserved_data/reference"),
        (S, "/preserved_data/reference"),
    ),
    invalid(T30, "no-path", delete("/path"), (S, "/path")),
    invalid(T30, "no-providers", set_("/service_providers", []), (S, "/service_providers")),
    invalid(
        T30,
        "provider-without-country",
        delete("/service_providers/1/country"),
        (S, "/service_providers/1/country"),
    ),
    invalid(
        T30,
        "provider-bad-country",
        set_("/service_providers/0/country", "XX"),
        (S, "/service_providers/0/country"),
    ),
    invalid(
        T30, "hop-without-traffic-data", set_("/path/1/identifiers", []), (S, "/path/1/identifiers")
    ),
    invalid(
        T30,
        "hop-timestamp-no-offset",
        set_("/path/0/timestamp", "2026-03-02T21:14:07"),
        (S, "/path/0/timestamp"),
    ),
    invalid(
        T30,
        "prior-request-bad-date",
        set_("/prior_request/date", "04.03.2026"),
        (S, "/prior_request/date"),
    ),
    invalid(
        T30,
        "prior-request-bad-case",
        set_("/prior_request/case", "BKA-1"),
        (S, "/prior_request/case"),
    ),
    invalid(T30, "unknown-top", set_("/withheld", False), (S, "/withheld")),
    invalid(T30, "unknown-in-hop", set_("/path/0/ttl", 54), (S, "/path/0/ttl")),
    invalid(T30, "null-optional", set_("/remarks", None), (S, "/remarks")),
    # Beyond the schema.
    invalid(
        T30,
        "no-foreign-provider",
        set_("/service_providers/0/country", "AT"),
        (M, "/service_providers"),
    ),
    invalid(
        T30,
        "hop-unknown-provider",
        set_("/path/1/service_provider", "Example Cloud Ltd"),
        (M, "/path"),
    ),
    invalid(
        T30,
        "duplicate-provider-names",
        set_("/service_providers/1/name", "Example VPN B.V."),
        (M, "/service_providers"),
    ),
    invalid(
        T30,
        "period-reversed",
        set_("/preserved_data/period", REVERSED),
        (M, "/preserved_data/period/from"),
    ),
    # -- Art 31 -----------------------------------------------------------------------
    valid(T31),
    valid(
        T31,
        "not-expedited",
        set_("/expedited", False),
        delete("/expedited_reason"),
        delete("/expedited_grounds"),
    ),
    valid(
        T31,
        "expedited-by-instrument",
        set_("/expedited_reason", "instrument_provides"),
        delete("/expedited_grounds"),
    ),
    valid(
        T31,
        "minimal",
        delete("/requesting_authority/unit"),
        delete("/legal_basis/treaty"),
        set_("/legal_basis/articles", ["art_31"]),
        delete("/preceding_preservation"),
        delete("/data/0/period"),
        delete("/data/1"),
        delete("/custodian/location"),
        set_("/measures", ["disclose"]),
        delete("/procedural_requirements"),
    ),
    # Art 31(3): expedited_reason iff expedited (a schema if/then: E_SCHEMA).
    invalid(T31, "expedited-without-reason", delete("/expedited_reason"), (S, "/expedited_reason")),
    invalid(
        T31,
        "reason-without-expedited",
        [set_("/expedited", False), delete("/expedited_grounds")],
        (S, "/expedited_reason"),
    ),
    invalid(
        T31,
        "grounds-without-expedited",
        [set_("/expedited", False), delete("/expedited_reason")],
        (S, "/expedited_grounds"),
    ),
    invalid(T31, "reason-unknown", set_("/expedited_reason", "urgent"), (S, "/expedited_reason")),
    invalid(
        T31,
        "expedited-not-bool",
        set_("/expedited", "yes"),
        (S, "/expedited"),
        (S, "/expedited_grounds"),
        (S, "/expedited_reason"),
    ),
    invalid(T31, "expedited-missing", delete("/expedited"), (S, "/expedited")),
    # Art 31(1)-(2): legal basis, measures, data.
    invalid(
        T31,
        "legal-basis-without-art31",
        set_("/legal_basis/articles", ["art_25", "art_29"]),
        (S, "/legal_basis/articles"),
    ),
    invalid(
        T31,
        "legal-basis-unknown-article",
        set_("/legal_basis/articles", ["art_31", "art_99"]),
        (S, "/legal_basis/articles/1"),
    ),
    invalid(
        T31,
        "legal-basis-duplicate",
        set_("/legal_basis/articles", ["art_31", "art_31"]),
        (S, "/legal_basis/articles"),
    ),
    invalid(
        T31, "measures-duplicate", set_("/measures", ["disclose", "disclose"]), (S, "/measures")
    ),
    invalid(T31, "measures-unknown", set_("/measures", ["intercept"]), (S, "/measures/0")),
    invalid(T31, "no-data", set_("/data", []), (S, "/data")),
    invalid(
        T31,
        "data-without-relationship",
        delete("/data/0/relationship_to_offence"),
        (S, "/data/0/relationship_to_offence"),
    ),
    invalid(T31, "no-custodian", delete("/custodian"), (S, "/custodian")),
    invalid(T31, "no-offence", delete("/offence"), (S, "/offence")),
    invalid(
        T31,
        "preservation-bad-case",
        set_("/preceding_preservation/case", "not-a-uuid"),
        (S, "/preceding_preservation/case"),
    ),
    invalid(T31, "unknown-top", set_("/urgency", "high"), (S, "/urgency")),
    invalid(
        T31, "unknown-legal-basis", set_("/legal_basis/article", "31"), (S, "/legal_basis/article")
    ),
    invalid(T31, "period-reversed", set_("/data/0/period", REVERSED), (M, "/data/0/period/from")),
]
