"""Cases for the e-Evidence forms (Regulation (EU) 2023/1543 Annexes I, II, III, V, VI)."""

from __future__ import annotations

from tests.forms.cases import Case, Mutation, delete, invalid, raw_case, set_, valid

S = "E_SCHEMA"
M = "E_SEMANTIC"

# -- eu.epoc (Annex I) ---------------------------------------------------------------------
T = "eu.epoc"

#: Subscriber data only, issued by a prosecutor: no validation, no notification (Art 4(1), 8(1)).
SUBSCRIBER_ONLY: list[Mutation] = [
    set_("/data/categories", ["subscriber"]),
    delete("/validation"),
    delete("/header/validating_authority"),
    delete("/header/validating_file_number"),
    set_("/notification", {"notification_required": False}),
    delete("/grounds/traffic_content_basis"),
]
#: Emergency order by a police authority for identification data, validated ex post (Art 4(5)).
EMERGENCY_EX_POST: list[Mutation] = [
    *SUBSCRIBER_ONLY,
    set_("/data/categories", ["identification"]),
    set_("/header/issuing_authority", "Polizeipräsidium Köln, Kriminalinspektion 3"),
    set_("/issuing_authority_details/type", "other_competent_authority"),
    set_("/deadlines", {"emergency": True, "emergency_threat": "life_physical_integrity_safety"}),
    set_("/addressee/emergency_other_addressee", True),
    set_(
        "/ex_post_validation",
        {
            "requested_at": "2026-09-14T03:10:00+02:00",
            "validating_authority": "Staatsanwaltschaft Köln",
        },
    ),
]
OTHER_AUTHORITY = {
    "name": "Bundeskriminalamt",
    "country": "DE",
    "unit": "SO 4",
    "reference": "BKA-SO4-2026-00417",
    "contact": {
        "name": "KHK Max Beispiel",
        "phone": "+4961155123456",
        "email": "so4@bka.example.de",
    },
}

EPOC: list[Case] = [
    valid(T),
    valid(T, "subscriber-only", *SUBSCRIBER_ONLY),
    valid(T, "emergency-ex-post", *EMERGENCY_EX_POST),
    # The signature day began at 00:00 UTC+14: 22:30 UTC the evening before is on that day.
    valid(
        T,
        "ex-post-utc-evening",
        *EMERGENCY_EX_POST,
        set_("/ex_post_validation/requested_at", "2026-09-13T22:30:00Z"),
    ),
    valid(
        T,
        "judge-content-local-case",
        set_("/data/categories", ["content"]),
        set_("/issuing_authority_details/type", "judge_court"),
        delete("/validation"),
        delete("/header/validating_authority"),
        delete("/header/validating_file_number"),
        set_(
            "/notification",
            {
                "notification_required": False,
                "offence_in_issuing_state": True,
                "person_resides_in_issuing_state": True,
            },
        ),
    ),
    valid(
        T,
        "police-validated-by-prosecutor",
        *SUBSCRIBER_ONLY,
        set_("/issuing_authority_details/type", "other_competent_authority"),
        set_("/header/validating_authority", "Staatsanwaltschaft Köln"),
        set_(
            "/validation",
            {
                "type": "prosecutor",
                "representative": "Dr. Anna Beispiel",
                "position": "Staatsanwältin",
                "address": "Am Justizzentrum 13, 50939 Köln",
                "languages": ["de"],
                "contact": {
                    "name": "Dr. Anna Beispiel",
                    "phone": "+4922147712345",
                    "email": "anna.beispiel@sta-koeln.example.de",
                },
                "signed_on": "2026-09-14",
            },
        ),
    ),
    valid(
        T,
        "sentence-execution",
        set_("/grounds/proceedings", "sentence_execution"),
        delete("/grounds/traffic_content_basis"),
    ),
    valid(
        T,
        "to-other-authority",
        set_("/transfer/recipient", "other_authority"),
        set_("/transfer/other_authority", OTHER_AUTHORITY),
    ),
    valid(T, "to-validating-authority", set_("/transfer/recipient", "validating_authority")),
    valid(
        T,
        "minimal",
        delete("/earlier_orders"),
        delete("/enforcing_authority_information"),
        delete("/data/service"),
        delete("/data/period"),
        delete("/data/details"),
        delete("/grounds/annex_iv_category"),
        delete("/addressee/service_provider"),
        delete("/notification/enforcing_authority"),
        delete("/notification/offence_in_issuing_state"),
        delete("/notification/person_resides_in_issuing_state"),
        delete("/header/validating_file_number"),
    ),
    # Required members and unknown members.
    invalid(T, "no-header", delete("/header"), (S, "/header")),
    invalid(
        T,
        "no-file-number",
        delete("/header/issuing_file_number"),
        (S, "/header/issuing_file_number"),
    ),
    invalid(T, "no-transfer", delete("/transfer"), (S, "/transfer")),
    invalid(T, "no-language", delete("/language"), (S, "/language")),
    invalid(T, "unknown-top", set_("/priority", "high"), (S, "/priority")),
    invalid(T, "unknown-nested", set_("/deadlines/hours", 8), (S, "/deadlines/hours")),
    invalid(
        T,
        "null-optional",
        set_("/enforcing_authority_information", None),
        (S, "/enforcing_authority_information"),
    ),
    # Enums, formats, types.
    invalid(T, "addressee-kind", set_("/addressee/kind", "branch_office"), (S, "/addressee/kind")),
    invalid(
        T, "category-unknown", set_("/data/categories", ["metadata"]), (S, "/data/categories/0")
    ),
    invalid(
        T,
        "category-shared-other",
        set_("/data/categories", ["subscriber", "other"]),
        (S, "/data/categories/1"),
    ),
    invalid(
        T,
        "categories-duplicate",
        set_("/data/categories", ["traffic", "traffic"]),
        (S, "/data/categories"),
    ),
    invalid(T, "categories-empty", set_("/data/categories", []), (S, "/data/categories")),
    invalid(T, "identifiers-empty", set_("/data/identifiers", []), (S, "/data/identifiers")),
    invalid(
        T,
        "identifier-bad-ip",
        set_("/data/identifiers/1/value", "198.51.100.300"),
        (S, "/data/identifiers/1/value"),
    ),
    invalid(T, "bad-state", set_("/header/issuing_state", "XX"), (S, "/header/issuing_state")),
    invalid(T, "bad-language", set_("/language", "english"), (S, "/language")),
    invalid(
        T,
        "bad-signature-date",
        set_("/issuing_authority_details/signed_on", "14.09.2026"),
        (S, "/issuing_authority_details/signed_on"),
    ),
    invalid(
        T,
        "languages-empty",
        set_("/issuing_authority_details/languages", []),
        (S, "/issuing_authority_details/languages"),
    ),
    invalid(T, "emergency-string", set_("/deadlines/emergency", "no"), (S, "/deadlines/emergency")),
    invalid(
        T,
        "issuer-type-unknown",
        set_("/issuing_authority_details/type", "police"),
        (S, "/issuing_authority_details/type"),
    ),
    invalid(
        T,
        "earlier-order-kind",
        set_("/earlier_orders/0/kind", "eaw"),
        (S, "/earlier_orders/0/kind"),
    ),
    # Section A names the validating authority exactly when Section J is given.
    invalid(
        T,
        "validation-not-in-header",
        delete("/header/validating_authority"),
        (S, "/header/validating_authority"),
    ),
    invalid(T, "header-without-validation", delete("/validation"), (S, "/validation")),
    invalid(
        T,
        "file-number-without-authority",
        [*SUBSCRIBER_ONLY, set_("/header/validating_file_number", "502 Gs 1234/26")],
        (S, "/header/validating_authority"),
    ),
    # Art 4(1)(b), 4(2): who must validate, and who may.
    invalid(
        T,
        "prosecutor-traffic-unvalidated",
        [
            delete("/validation"),
            delete("/header/validating_authority"),
            delete("/header/validating_file_number"),
        ],
        (S, "/validation"),
    ),
    invalid(
        T,
        "traffic-validated-by-prosecutor",
        set_("/validation/type", "prosecutor"),
        (S, "/validation/type"),
    ),
    invalid(
        T,
        "police-unvalidated",
        [*SUBSCRIBER_ONLY, set_("/issuing_authority_details/type", "other_competent_authority")],
        (S, "/validation"),
    ),
    # Art 4(5): ex-post validation only in an emergency, for another competent authority,
    # and not for traffic or content data.
    invalid(
        T,
        "ex-post-no-emergency",
        [
            *EMERGENCY_EX_POST,
            set_("/deadlines", {"emergency": False}),
            set_("/addressee/emergency_other_addressee", False),
        ],
        (S, "/ex_post_validation"),
    ),
    invalid(
        T,
        "ex-post-by-prosecutor",
        [*EMERGENCY_EX_POST, set_("/issuing_authority_details/type", "prosecutor")],
        (S, "/ex_post_validation"),
    ),
    invalid(
        T,
        "ex-post-traffic",
        [
            *EMERGENCY_EX_POST,
            set_("/data/categories", ["identification", "traffic"]),
            set_("/notification", {"notification_required": True, "enforcing_state": "IE"}),
            set_("/grounds/traffic_content_basis", "listed_offence"),
        ],
        (S, "/ex_post_validation"),
    ),
    # Section C and B: emergency.
    invalid(
        T,
        "emergency-without-threat",
        set_("/deadlines", {"emergency": True}),
        (S, "/deadlines/emergency_threat"),
    ),
    invalid(
        T,
        "threat-without-emergency",
        set_("/deadlines/emergency_threat", "critical_infrastructure"),
        (S, "/deadlines/emergency_threat"),
    ),
    invalid(
        T,
        "threat-unknown",
        set_("/deadlines", {"emergency": True, "emergency_threat": "flood"}),
        (S, "/deadlines/emergency_threat"),
    ),
    invalid(
        T,
        "other-addressee-no-emergency",
        set_("/addressee/emergency_other_addressee", True),
        (S, "/addressee/emergency_other_addressee"),
    ),
    invalid(
        T,
        "no-emergency-other-addressee-flag",
        delete("/addressee/emergency_other_addressee"),
        (S, "/addressee/emergency_other_addressee"),
    ),
    # Art 8(1)-(2): notification of the enforcing authority.
    invalid(
        T,
        "traffic-not-notified",
        set_("/notification", {"notification_required": False}),
        (S, "/notification/notification_required"),
    ),
    invalid(
        T,
        "traffic-one-link-not-notified",
        set_(
            "/notification",
            {
                "notification_required": False,
                "offence_in_issuing_state": True,
                "person_resides_in_issuing_state": False,
            },
        ),
        (S, "/notification/notification_required"),
    ),
    invalid(
        T,
        "notified-without-state",
        delete("/notification/enforcing_state"),
        (S, "/notification/enforcing_state"),
    ),
    invalid(
        T,
        "state-without-notification",
        [*SUBSCRIBER_ONLY, set_("/notification/enforcing_state", "IE")],
        (S, "/notification/enforcing_state"),
    ),
    # Art 5(4): traffic or content data in criminal proceedings.
    invalid(
        T,
        "no-traffic-basis",
        delete("/grounds/traffic_content_basis"),
        (S, "/grounds/traffic_content_basis"),
    ),
    invalid(
        T, "no-maximum-penalty", delete("/grounds/maximum_penalty"), (S, "/grounds/maximum_penalty")
    ),
    invalid(
        T,
        "no-facts",
        delete("/grounds/offence/summary_of_facts"),
        (S, "/grounds/offence/summary_of_facts"),
    ),
    # Section L.
    invalid(
        T,
        "other-recipient-unnamed",
        set_("/transfer/recipient", "other_authority"),
        (S, "/transfer/other_authority"),
    ),
    invalid(
        T,
        "other-authority-not-recipient",
        set_("/transfer/other_authority", OTHER_AUTHORITY),
        (S, "/transfer/other_authority"),
    ),
    invalid(
        T,
        "to-missing-validating-authority",
        [*SUBSCRIBER_ONLY, set_("/transfer/recipient", "validating_authority")],
        (S, "/validation"),
    ),
    # Beyond the schema.
    invalid(
        T,
        "period-reversed",
        set_("/data/period", {"from": "2026-09-10T00:00:00Z", "to": "2026-08-15T00:00:00Z"}),
        (M, "/data/period/from"),
    ),
    invalid(
        T,
        "addressee-in-issuing-state",
        [set_("/addressee/country", "DE"), set_("/notification/enforcing_state", "DE")],
        (M, "/addressee"),
    ),
    invalid(
        T,
        "enforcing-state-not-addressee",
        set_("/notification/enforcing_state", "NL"),
        (M, "/notification"),
    ),
    invalid(
        T,
        "ex-post-before-signature",
        [*EMERGENCY_EX_POST, set_("/ex_post_validation/requested_at", "2026-09-13T10:00:00+02:00")],
        (M, "/ex_post_validation"),
    ),
    raw_case(T, "not-json", b'{"header": ', ("E_PARSE", "")),
    raw_case(T, "array", b"[]", (S, "")),
]

# -- eu.epoc_pr (Annex II) -----------------------------------------------------------------
T = "eu.epoc_pr"
VALIDATED_POLICE: list[Mutation] = [
    set_("/header/issuing_authority", "Office anti-cybercriminalité (OFAC)"),
    set_("/header/validating_authority", "Parquet de Paris"),
    set_("/header/validating_file_number", "PARQ-J3-2026-0815"),
    set_("/issuing_authority_details/type", "other_competent_authority"),
    set_(
        "/validation",
        {
            "type": "prosecutor",
            "representative": "Claire Exemple",
            "position": "Vice-procureure de la République",
            "address": "Parvis du Tribunal de Paris, 75017 Paris",
            "languages": ["fr"],
            "contact": {
                "name": "Claire Exemple",
                "phone": "+33144321234",
                "email": "claire.exemple@justice.example.fr",
            },
            "signed_on": "2026-09-15",
        },
    ),
]
EPOC_PR: list[Case] = [
    valid(T),
    valid(T, "validated-police", *VALIDATED_POLICE),
    valid(
        T,
        "judge-sentence-execution",
        set_("/issuing_authority_details/type", "judge_court"),
        set_("/grounds/proceedings", "sentence_execution"),
    ),
    valid(
        T,
        "minimal",
        delete("/intended_requests"),
        delete("/data/service"),
        delete("/data/period"),
        delete("/data/details"),
        delete("/addressee/service_provider"),
        delete("/addressee/reference"),
    ),
    invalid(T, "no-data", delete("/data"), (S, "/data")),
    invalid(T, "no-grounds", delete("/grounds"), (S, "/grounds")),
    invalid(T, "category-unknown", set_("/data/categories", ["logs"]), (S, "/data/categories/0")),
    invalid(
        T,
        "intended-duplicate",
        set_("/intended_requests", ["epoc", "epoc"]),
        (S, "/intended_requests"),
    ),
    invalid(
        T, "intended-unknown", set_("/intended_requests", ["eaw"]), (S, "/intended_requests/0")
    ),
    invalid(T, "intended-empty", set_("/intended_requests", []), (S, "/intended_requests")),
    # Members of the EPOC that the EPOC-PR does not have.
    invalid(T, "no-emergency-section", set_("/deadlines", {"emergency": False}), (S, "/deadlines")),
    invalid(
        T,
        "no-emergency-flag",
        set_("/addressee/emergency_other_addressee", False),
        (S, "/addressee/emergency_other_addressee"),
    ),
    invalid(
        T,
        "no-penalty-member",
        set_("/grounds/maximum_penalty", "five years"),
        (S, "/grounds/maximum_penalty"),
    ),
    invalid(
        T, "bad-proceedings", set_("/grounds/proceedings", "civil"), (S, "/grounds/proceedings")
    ),
    invalid(
        T,
        "bad-contact-language",
        set_("/issuing_authority_details/languages", ["fra"]),
        (S, "/issuing_authority_details/languages/0"),
    ),
    # Art 4(3)(b).
    invalid(
        T,
        "police-unvalidated",
        set_("/issuing_authority_details/type", "other_competent_authority"),
        (S, "/validation"),
    ),
    invalid(
        T,
        "validation-not-in-header",
        [
            *VALIDATED_POLICE,
            delete("/header/validating_file_number"),
            delete("/header/validating_authority"),
        ],
        (S, "/header/validating_authority"),
    ),
    invalid(
        T,
        "validator-unknown-type",
        [*VALIDATED_POLICE, set_("/validation/type", "police")],
        (S, "/validation/type"),
    ),
    invalid(T, "addressee-in-issuing-state", set_("/addressee/country", "FR"), (M, "/addressee")),
    invalid(
        T,
        "period-reversed",
        set_(
            "/data/period", {"from": "2026-09-15T00:00:00+02:00", "to": "2026-07-01T00:00:00+02:00"}
        ),
        (M, "/data/period/from"),
    ),
]

# -- eu.epoc.inability (Annex III) ---------------------------------------------------------
T = "eu.epoc.inability"
THIRD_COUNTRY: list[Mutation] = [
    set_("/reasons", ["third_country_law_conflict"]),
    delete("/impossibility_reason"),
    delete("/information_needed"),
    set_(
        "/third_country_conflict",
        {
            "country": "US",
            "law": (
                "18 U.S.C. § 2702(a)(1) prohibits the provider from divulging the contents of a"
                " communication while in electronic storage; the account holder is a US person."
            ),
        },
    ),
]
INABILITY: list[Case] = [
    valid(T),
    valid(
        T,
        "epoc-pr-not-stored",
        set_("/certificate/kind", "epoc_pr"),
        set_("/reasons", ["de_facto_impossibility"]),
        set_("/impossibility_reason", "not_stored_at_receipt"),
        delete("/information_needed"),
    ),
    valid(T, "third-country", *THIRD_COUNTRY),
    valid(
        T,
        "minimal",
        set_("/reasons", ["force_majeure"]),
        delete("/impossibility_reason"),
        delete("/information_needed"),
        delete("/certificate/issued_on"),
        delete("/certificate/received_at"),
        delete("/addressee/service_provider"),
        delete("/addressee/reference"),
    ),
    invalid(
        T, "reasons-empty", set_("/reasons", []), (S, "/impossibility_reason"), (S, "/reasons")
    ),
    invalid(
        T,
        "reason-unknown",
        set_("/reasons", ["de_facto_impossibility", "too_busy"]),
        (S, "/reasons/1"),
    ),
    invalid(
        T,
        "reasons-duplicate",
        set_("/reasons", ["de_facto_impossibility", "de_facto_impossibility"]),
        (S, "/reasons"),
    ),
    invalid(
        T, "no-impossibility-reason", delete("/impossibility_reason"), (S, "/impossibility_reason")
    ),
    invalid(
        T,
        "impossibility-reason-alone",
        [set_("/reasons", ["force_majeure"]), delete("/information_needed")],
        (S, "/impossibility_reason"),
    ),
    invalid(
        T,
        "impossibility-reason-unknown",
        set_("/impossibility_reason", "lost"),
        (S, "/impossibility_reason"),
    ),
    invalid(T, "no-information-needed", delete("/information_needed"), (S, "/information_needed")),
    invalid(
        T,
        "conflict-without-details",
        [*THIRD_COUNTRY, delete("/third_country_conflict")],
        (S, "/third_country_conflict"),
    ),
    invalid(
        T,
        "details-without-conflict",
        set_("/third_country_conflict", {"country": "US", "law": "n/a"}),
        (S, "/third_country_conflict"),
    ),
    # Art 17 objections concern production orders only.
    invalid(
        T,
        "conflict-on-epoc-pr",
        [*THIRD_COUNTRY, set_("/certificate/kind", "epoc_pr")],
        (S, "/reasons/0"),
    ),
    invalid(T, "kind-unknown", set_("/certificate/kind", "epo"), (S, "/certificate/kind")),
    invalid(T, "no-data-preserved", delete("/data_preserved"), (S, "/data_preserved")),
    invalid(T, "no-contact", delete("/contact"), (S, "/contact")),
    invalid(
        T,
        "unknown-member",
        set_("/addressee/vat_number", "IE1234567T"),
        (S, "/addressee/vat_number"),
    ),
    invalid(
        T,
        "bad-received-at",
        set_("/certificate/received_at", "2026-09-14 16:02"),
        (S, "/certificate/received_at"),
    ),
    invalid(
        T,
        "received-before-issue",
        set_("/certificate/received_at", "2026-09-13T08:00:00+02:00"),
        (M, "/certificate/received_at"),
    ),
]

# -- eu.epoc_pr.confirmation (Annex V) -----------------------------------------------------
T = "eu.epoc_pr.confirmation"
CONFIRMATION: list[Case] = [
    valid(T),
    valid(
        T,
        "eio",
        set_("/subsequent_request/kind", "eio"),
        set_("/subsequent_request/addressed_to", "Openbaar Ministerie, Amsterdam"),
    ),
    valid(T, "same-day", set_("/subsequent_request/issued_on", "2026-09-15")),
    valid(
        T,
        "minimal",
        delete("/addressee_reference"),
        delete("/subsequent_request/addressed_to"),
        delete("/epoc_pr/date"),
        delete("/epoc_pr/authority"),
        delete("/issuing_authority/unit"),
    ),
    invalid(
        T, "kind-unknown", set_("/subsequent_request/kind", "eaw"), (S, "/subsequent_request/kind")
    ),
    invalid(
        T,
        "no-issued-on",
        delete("/subsequent_request/issued_on"),
        (S, "/subsequent_request/issued_on"),
    ),
    invalid(
        T,
        "bad-preservation-date",
        set_("/preservation_date", "15/09/2026"),
        (S, "/preservation_date"),
    ),
    invalid(T, "no-epoc-pr", delete("/epoc_pr"), (S, "/epoc_pr")),
    invalid(T, "no-authority", delete("/issuing_authority"), (S, "/issuing_authority")),
    invalid(
        T,
        "unknown-member",
        set_("/subsequent_request/urgent", True),
        (S, "/subsequent_request/urgent"),
    ),
    invalid(T, "bad-case-id", set_("/epoc_pr/case", "1234"), (S, "/epoc_pr/case")),
    invalid(
        T,
        "preserved-before-order",
        set_("/preservation_date", "2026-09-14"),
        (M, "/preservation_date"),
    ),
    invalid(
        T,
        "request-before-order",
        set_("/subsequent_request/issued_on", "2026-09-01"),
        (M, "/subsequent_request"),
    ),
]

# -- eu.epoc_pr.extension (Annex VI) -------------------------------------------------------
T = "eu.epoc_pr.extension"
EXTENSION: list[Case] = [
    valid(T),
    valid(
        T,
        "minimal",
        delete("/addressee_reference"),
        delete("/epoc_pr/date"),
        delete("/epoc_pr/authority"),
    ),
    # Art 11(1): the extension is fixed (schemas/data/eevidence.json).
    invalid(T, "days-60", set_("/extension_days", 60), (S, "/extension_days")),
    invalid(T, "days-string", set_("/extension_days", "30"), (S, "/extension_days")),
    invalid(T, "days-float", set_("/extension_days", 30.0), (S, "/extension_days")),
    invalid(T, "days-bool", set_("/extension_days", True), (S, "/extension_days")),
    invalid(T, "no-days", delete("/extension_days"), (S, "/extension_days")),
    invalid(T, "no-reason", delete("/reason"), (S, "/reason")),
    invalid(T, "empty-reason", set_("/reason", ""), (S, "/reason")),
    invalid(T, "unknown-member", set_("/new_until", "2026-12-14T00:00:00Z"), (S, "/new_until")),
    invalid(
        T,
        "bad-email",
        set_("/issuing_authority/contact/email", "claire@justice"),
        (S, "/issuing_authority/contact/email"),
    ),
]

CASES: list[Case] = [*EPOC, *EPOC_PR, *INABILITY, *CONFIRMATION, *EXTENSION]
