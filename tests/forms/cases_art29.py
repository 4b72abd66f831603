"""Cases for ``coe.art29.preservation`` (Budapest Convention Art 29)."""

from __future__ import annotations

from tests.forms.cases import Case, delete, invalid, raw_case, set_, valid

T = "coe.art29.preservation"
S = "E_SCHEMA"

CASES: list[Case] = [
    valid(T),
    valid(
        T,
        "minimal",
        delete("/requesting_authority/unit"),
        delete("/custodian/country"),
        delete("/custodian/location"),
        delete("/data/0/period"),
        delete("/data/1"),
    ),
    valid(T, "sixty-days", set_("/preservation_days", 60)),
    valid(T, "ipv6-with-port", set_("/data/0/identifiers/1/value", "2001:db8::17")),
    valid(
        T,
        "period-one-instant",
        set_("/data/0/period", {"from": "2026-03-01T10:00:00+01:00", "to": "2026-03-01T09:00:00Z"}),
    ),
    # Art 29(7): not less than sixty days; strict integers.
    invalid(T, "days-59", set_("/preservation_days", 59), (S, "/preservation_days")),
    invalid(T, "days-string", set_("/preservation_days", "60"), (S, "/preservation_days")),
    invalid(T, "days-float", set_("/preservation_days", 60.0), (S, "/preservation_days")),
    invalid(T, "days-bool", set_("/preservation_days", True), (S, "/preservation_days")),
    # Art 29(2)(f): the MLA request must be intended.
    invalid(T, "mla-false", set_("/mla_to_follow", False), (S, "/mla_to_follow")),
    invalid(T, "mla-missing", delete("/mla_to_follow"), (S, "/mla_to_follow")),
    invalid(T, "measures-empty", set_("/intended_measures", []), (S, "/intended_measures")),
    invalid(
        T,
        "measures-duplicate",
        set_("/intended_measures", ["disclose", "disclose"]),
        (S, "/intended_measures"),
    ),
    invalid(
        T, "measures-unknown", set_("/intended_measures", ["wiretap"]), (S, "/intended_measures/0")
    ),
    # Required content of Art 29(2)(a)-(e).
    invalid(T, "no-authority", delete("/requesting_authority"), (S, "/requesting_authority")),
    invalid(T, "no-facts", delete("/offence/summary_of_facts"), (S, "/offence/summary_of_facts")),
    invalid(
        T, "no-provisions", set_("/offence/legal_provisions", []), (S, "/offence/legal_provisions")
    ),
    invalid(T, "no-data", set_("/data", []), (S, "/data")),
    invalid(T, "no-identifiers", set_("/data/0/identifiers", []), (S, "/data/0/identifiers")),
    invalid(
        T,
        "no-relationship",
        delete("/data/1/relationship_to_offence"),
        (S, "/data/1/relationship_to_offence"),
    ),
    invalid(T, "no-custodian", delete("/custodian"), (S, "/custodian")),
    invalid(T, "empty-necessity", set_("/necessity", ""), (S, "/necessity")),
    invalid(
        T,
        "two-missing",
        [delete("/necessity"), delete("/confidential")],
        (S, "/confidential"),
        (S, "/necessity"),
    ),
    # Unknown members are reported at the member itself.
    invalid(T, "unknown-top", set_("/priority", "high"), (S, "/priority")),
    invalid(
        T,
        "unknown-nested",
        set_("/requesting_authority/contact/fax", "+4961155123457"),
        (S, "/requesting_authority/contact/fax"),
    ),
    # ECMA-262 "$": a trailing newline does not slip through a one-line pattern.
    invalid(
        T,
        "name-trailing-newline",
        set_("/requesting_authority/name", "Bundeskriminalamt\n"),
        (S, "/requesting_authority/name"),
    ),
    invalid(
        T,
        "null-optional",
        set_("/requesting_authority/unit", None),
        (S, "/requesting_authority/unit"),
    ),
    # Formats, checked by the shared format table.
    invalid(
        T,
        "bad-email",
        set_("/requesting_authority/contact/email", "poc247@bka"),
        (S, "/requesting_authority/contact/email"),
    ),
    invalid(
        T,
        "bad-email-no-at",
        set_("/requesting_authority/contact/email", "poc247.bka.de"),
        (S, "/requesting_authority/contact/email"),
    ),
    invalid(
        T,
        "bad-phone",
        set_("/requesting_authority/contact/phone", "0611 55123456"),
        (S, "/requesting_authority/contact/phone"),
    ),
    invalid(
        T,
        "bad-country",
        set_("/requesting_authority/country", "XX"),
        (S, "/requesting_authority/country"),
    ),
    invalid(
        T,
        "lower-country",
        set_("/requesting_authority/country", "de"),
        (S, "/requesting_authority/country"),
    ),
    invalid(T, "bad-language", set_("/language", "english"), (S, "/language")),
    invalid(
        T,
        "datetime-no-offset",
        set_("/data/0/identifiers/1/observed_at", "2026-03-02T21:14:07"),
        (S, "/data/0/identifiers/1/observed_at"),
    ),
    invalid(
        T, "datetime-garbage", set_("/data/0/period/from", "yesterday"), (S, "/data/0/period/from")
    ),
    invalid(
        T,
        "datetime-bad-day",
        set_("/data/0/period/to", "2026-02-30T00:00:00Z"),
        (S, "/data/0/period/to"),
    ),
    # Identifier values are checked for their type; a port only on an IP address.
    invalid(
        T,
        "identifier-bad-email",
        set_("/data/0/identifiers/0/value", "not-an-address"),
        (S, "/data/0/identifiers/0/value"),
    ),
    invalid(
        T,
        "identifier-bad-ip",
        set_("/data/0/identifiers/1/value", "198.51.100.300"),
        (S, "/data/0/identifiers/1/value"),
    ),
    invalid(
        T,
        "identifier-bad-url",
        set_("/data/1/identifiers/0", {"type": "url", "value": "secure login page"}),
        (S, "/data/1/identifiers/0/value"),
    ),
    invalid(
        T,
        "identifier-bad-phone",
        set_("/data/1/identifiers/0", {"type": "phone", "value": "12345"}),
        (S, "/data/1/identifiers/0/value"),
    ),
    invalid(
        T,
        "identifier-bad-domain",
        set_("/data/1/identifiers/0/value", "localhost"),
        (S, "/data/1/identifiers/0/value"),
    ),
    invalid(
        T,
        "port-on-email",
        set_("/data/0/identifiers/0/port", 25),
        (S, "/data/0/identifiers/0/port"),
    ),
    invalid(
        T,
        "port-out-of-range",
        set_("/data/0/identifiers/1/port", 70000),
        (S, "/data/0/identifiers/1/port"),
    ),
    invalid(
        T,
        "identifier-unknown-type",
        set_("/data/0/identifiers/0/type", "imei"),
        (S, "/data/0/identifiers/0/type"),
    ),
    invalid(T, "category-unknown", set_("/data/0/category", "metadata"), (S, "/data/0/category")),
    # Beyond the schema: a period must not end before it starts.
    invalid(
        T,
        "period-reversed",
        set_("/data/0/period", {"from": "2026-03-10T00:00:00Z", "to": "2026-03-01T00:00:00Z"}),
        ("E_SEMANTIC", "/data/0/period/from"),
    ),
    # Malformed input.
    raw_case(T, "not-json", b'{"requesting_authority": ', ("E_PARSE", "")),
    raw_case(T, "duplicate-key", b'{"language": "en", "language": "de"}', ("E_PARSE", "")),
    raw_case(T, "nan", b'{"preservation_days": NaN}', ("E_PARSE", "")),
    raw_case(T, "not-utf8", b'{"language": "\xff"}', ("E_PARSE", "")),
    raw_case(T, "array", b"[]", (S, "")),
]
