"""Cases for the CETS 224 forms (Second Additional Protocol, Art 6-10)."""

from __future__ import annotations

from tests.forms.cases import Case, delete, invalid, set_, valid

T6 = "coe.p2.art6.domain"
T7 = "coe.p2.art7.subscriber"
T8 = "coe.p2.art8.order"
T9 = "coe.p2.art9.emergency"
T10 = "coe.p2.art10.emergency_mla"
S = "E_SCHEMA"
M = "E_SEMANTIC"

REVERSED = {"from": "2026-03-10T00:00:00Z", "to": "2026-03-01T00:00:00Z"}

CASES: list[Case] = [
    # -- Art 6: domain name registration information -------------------------------------
    valid(T6),
    valid(
        T6,
        "minimal",
        delete("/information_details"),
        delete("/special_instructions"),
        delete("/registration_entity/address"),
        set_("/data_elements", ["registrant_email"]),
    ),
    valid(T6, "other-with-details", set_("/data_elements", ["registrant_name", "other"])),
    valid(T6, "disclose-same-day", set_("/disclose_by", "2026-05-06")),
    valid(T6, "registry", set_("/registration_entity/role", "registry")),
    # Art 6(3)(c): the three statements are constants.
    invalid(
        T6,
        "statement-false",
        set_("/issued_pursuant_to_protocol", False),
        (S, "/issued_pursuant_to_protocol"),
    ),
    invalid(
        T6,
        "relevance-missing",
        delete("/relevant_to_investigation"),
        (S, "/relevant_to_investigation"),
    ),
    invalid(
        T6,
        "use-limit-false",
        set_("/use_limited_to_investigation", False),
        (S, "/use_limited_to_investigation"),
    ),
    # Art 6(3)(b): the domain and the data elements.
    invalid(T6, "domain-one-label", set_("/domain_name", "localhost"), (S, "/domain_name")),
    invalid(
        T6,
        "domain-url",
        set_("/domain_name", "https://secure-login-bank.example/"),
        (S, "/domain_name"),
    ),
    invalid(T6, "no-elements", set_("/data_elements", []), (S, "/data_elements")),
    invalid(
        T6, "element-unknown", set_("/data_elements", ["registrant_ip"]), (S, "/data_elements/0")
    ),
    invalid(
        T6,
        "element-duplicate",
        set_("/data_elements", ["registrant_name", "registrant_name"]),
        (S, "/data_elements"),
    ),
    invalid(
        T6,
        "other-without-details",
        [set_("/data_elements", ["other"]), delete("/information_details")],
        (S, "/information_details"),
    ),
    invalid(
        T6,
        "entity-role-unknown",
        set_("/registration_entity/role", "reseller"),
        (S, "/registration_entity/role"),
    ),
    invalid(
        T6,
        "entity-no-country",
        delete("/registration_entity/country"),
        (S, "/registration_entity/country"),
    ),
    invalid(T6, "bad-disclose-by", set_("/disclose_by", "2026-05-32"), (S, "/disclose_by")),
    invalid(T6, "no-manner", delete("/disclosure_manner"), (S, "/disclosure_manner")),
    invalid(T6, "unknown-top", set_("/registrant", "x"), (S, "/registrant")),
    # Beyond the schema: the time frame ends on or after the date issued.
    invalid(T6, "disclose-before-issue", set_("/disclose_by", "2026-05-05"), (M, "/disclose_by")),
    # -- Art 7: order for subscriber information -----------------------------------------
    valid(T7),
    valid(
        T7,
        "minimal",
        delete("/seeking_authority"),
        delete("/information_sought/elements"),
        delete("/supplemental/time_frame_days"),
        delete("/supplemental/preservation"),
        delete("/supplemental/special_instructions"),
        delete("/supplemental/simultaneous_notification"),
        delete("/supplemental/other_information"),
    ),
    valid(T7, "preservation-same-day", set_("/supplemental/preservation/date", "2026-03-09")),
    valid(T7, "preservation-undated", delete("/supplemental/preservation/date")),
    valid(T7, "long-time-frame", set_("/supplemental/time_frame_days", 60)),
    valid(
        T7,
        "ip-with-port",
        set_(
            "/information_sought/identifiers/0",
            {
                "type": "ip",
                "value": "2001:db8::17",
                "port": 443,
                "observed_at": "2026-03-02T21:14:07+01:00",
            },
        ),
    ),
    # Art 7(3)(b): the statement under the Protocol.
    invalid(
        T7,
        "statement-false",
        set_("/issued_pursuant_to_protocol", False),
        (S, "/issued_pursuant_to_protocol"),
    ),
    invalid(
        T7,
        "statement-missing",
        delete("/issued_pursuant_to_protocol"),
        (S, "/issued_pursuant_to_protocol"),
    ),
    # Art 7(3)(c)-(f).
    invalid(T7, "no-providers", set_("/service_providers", []), (S, "/service_providers")),
    invalid(
        T7,
        "provider-no-address",
        delete("/service_providers/0/address"),
        (S, "/service_providers/0/address"),
    ),
    invalid(T7, "no-offences", set_("/offences", []), (S, "/offences")),
    invalid(
        T7,
        "no-identifiers",
        set_("/information_sought/identifiers", []),
        (S, "/information_sought/identifiers"),
    ),
    invalid(
        T7,
        "element-unknown",
        set_("/information_sought/elements", ["content"]),
        (S, "/information_sought/elements/0"),
    ),
    invalid(
        T7,
        "element-duplicate",
        set_("/information_sought/elements", ["identity", "identity"]),
        (S, "/information_sought/elements"),
    ),
    # Art 7(4).
    invalid(T7, "no-supplemental", delete("/supplemental"), (S, "/supplemental")),
    invalid(
        T7,
        "no-return-contact",
        delete("/supplemental/return_contact"),
        (S, "/supplemental/return_contact"),
    ),
    invalid(
        T7,
        "time-frame-zero",
        set_("/supplemental/time_frame_days", 0),
        (S, "/supplemental/time_frame_days"),
    ),
    invalid(
        T7,
        "time-frame-string",
        set_("/supplemental/time_frame_days", "30"),
        (S, "/supplemental/time_frame_days"),
    ),
    invalid(
        T7,
        "time-frame-float",
        set_("/supplemental/time_frame_days", 30.0),
        (S, "/supplemental/time_frame_days"),
    ),
    invalid(
        T7,
        "notification-no-date",
        delete("/supplemental/simultaneous_notification/date"),
        (S, "/supplemental/simultaneous_notification/date"),
    ),
    invalid(
        T7,
        "unknown-supplemental",
        set_("/supplemental/urgency", "high"),
        (S, "/supplemental/urgency"),
    ),
    # Beyond the schema: dates around the order.
    invalid(
        T7,
        "preservation-after-order",
        set_("/supplemental/preservation/date", "2026-03-10"),
        (M, "/supplemental/preservation"),
    ),
    invalid(
        T7,
        "notification-before-order",
        set_("/supplemental/simultaneous_notification/date", "2026-03-08"),
        (M, "/supplemental/simultaneous_notification"),
    ),
    invalid(
        T7,
        "period-reversed",
        set_("/information_sought/period", REVERSED),
        (M, "/information_sought/period/from"),
    ),
    # -- Art 8: giving effect to an order ---------------------------------------------------
    valid(T8),
    valid(T8, "subscriber", set_("/data_kind", "subscriber")),
    valid(
        T8,
        "minimal",
        delete("/transmitting_authority"),
        delete("/order/seeking_authority"),
        delete("/order/data_sought/period"),
        delete("/supplemental/preservation"),
        delete("/supplemental/other_means"),
        delete("/special_instructions"),
    ),
    invalid(T8, "kind-unknown", set_("/data_kind", "content"), (S, "/data_kind")),
    invalid(T8, "kind-missing", delete("/data_kind"), (S, "/data_kind")),
    invalid(T8, "no-order", delete("/order"), (S, "/order")),
    invalid(
        T8,
        "order-statement-false",
        set_("/order/issued_pursuant_to_protocol", False),
        (S, "/order/issued_pursuant_to_protocol"),
    ),
    invalid(
        T8, "order-bad-date", set_("/order/date_issued", "2026-14-14"), (S, "/order/date_issued")
    ),
    invalid(
        T8, "order-unknown-member", set_("/order/data_kind", "traffic"), (S, "/order/data_kind")
    ),
    invalid(
        T8,
        "no-possession-reason",
        delete("/supplemental/possession_reason"),
        (S, "/supplemental/possession_reason"),
    ),
    invalid(
        T8,
        "no-summary-of-facts",
        delete("/supplemental/summary_of_facts"),
        (S, "/supplemental/summary_of_facts"),
    ),
    invalid(
        T8, "no-relevance", set_("/supplemental/relevance", ""), (S, "/supplemental/relevance")
    ),
    invalid(
        T8,
        "contact-bad-email",
        set_("/supplemental/contact_authority/contact/email", "bka"),
        (S, "/supplemental/contact_authority/contact/email"),
    ),
    # Beyond the schema.
    invalid(
        T8,
        "preservation-after-order",
        set_("/supplemental/preservation/date", "2026-04-15"),
        (M, "/supplemental/preservation"),
    ),
    invalid(
        T8,
        "period-reversed",
        set_("/order/data_sought/period", REVERSED),
        (M, "/order/data_sought/period/from"),
    ),
    # -- Art 9: emergency disclosure ------------------------------------------------------
    valid(T9),
    valid(T9, "written", set_("/oral", False), delete("/electronic_confirmation_of")),
    valid(
        T9,
        "minimal",
        delete("/point_of_contact"),
        delete("/special_instructions"),
        delete("/other_information"),
        delete("/data/1"),
        delete("/data/0/identifiers/1"),
    ),
    # Art 9(4): the confirmation of an oral request (a schema if/then: E_SCHEMA).
    invalid(
        T9,
        "oral-without-confirmation",
        delete("/electronic_confirmation_of"),
        (S, "/electronic_confirmation_of"),
    ),
    invalid(
        T9, "confirmation-without-oral", set_("/oral", False), (S, "/electronic_confirmation_of")
    ),
    invalid(
        T9, "oral-not-bool", set_("/oral", "yes"), (S, "/electronic_confirmation_of"), (S, "/oral")
    ),
    invalid(T9, "oral-missing", delete("/oral"), (S, "/oral")),
    # Art 9(3)(b), (e), (f).
    invalid(
        T9,
        "statement-false",
        set_("/issued_pursuant_to_protocol", False),
        (S, "/issued_pursuant_to_protocol"),
    ),
    invalid(T9, "no-emergency-facts", delete("/emergency_facts"), (S, "/emergency_facts")),
    invalid(T9, "empty-emergency-facts", set_("/emergency_facts", ""), (S, "/emergency_facts")),
    invalid(T9, "no-relation", delete("/relation_to_emergency"), (S, "/relation_to_emergency")),
    invalid(T9, "no-penalties", delete("/applicable_penalties"), (S, "/applicable_penalties")),
    invalid(T9, "no-data", set_("/data", []), (S, "/data")),
    invalid(
        T9, "data-category-unknown", set_("/data/0/category", "location"), (S, "/data/0/category")
    ),
    invalid(
        T9,
        "data-bad-url",
        set_("/data/0/identifiers/1/value", "social example"),
        (S, "/data/0/identifiers/1/value"),
    ),
    invalid(
        T9,
        "no-legal-provisions",
        set_("/offence/legal_provisions", []),
        (S, "/offence/legal_provisions"),
    ),
    invalid(T9, "unknown-top", set_("/priority", "emergency"), (S, "/priority")),
    invalid(T9, "period-reversed", set_("/data/1/period", REVERSED), (M, "/data/1/period/from")),
    # -- Art 10: emergency mutual assistance ----------------------------------------------
    valid(T10),
    valid(
        T10,
        "through-interpol",
        set_("/channel", "interpol"),
        set_("/copy_to_central_authority", True),
    ),
    valid(
        T10,
        "judicial-direct",
        set_("/requesting_authority_role", "judicial_authority"),
        set_("/channel", "judicial_authority"),
        set_("/copy_to_central_authority", True),
    ),
    valid(
        T10,
        "minimal",
        delete("/special_instructions"),
        delete("/assistance/1"),
        delete("/assistance/0/identifiers"),
        delete("/assistance/0/period"),
        delete("/assistance/0/custodian"),
    ),
    # Art 10(9): a copy to the central authority on the other channels (schema if/then).
    invalid(
        T10,
        "direct-without-copy",
        set_("/channel", "point_of_contact"),
        (S, "/copy_to_central_authority"),
    ),
    invalid(
        T10,
        "copy-on-central-channel",
        set_("/copy_to_central_authority", True),
        (S, "/copy_to_central_authority"),
    ),
    invalid(
        T10,
        "copy-false",
        [set_("/channel", "interpol"), set_("/copy_to_central_authority", False)],
        (S, "/copy_to_central_authority"),
    ),
    invalid(
        T10,
        "channel-unknown",
        set_("/channel", "e-mail"),
        (S, "/channel"),
        (S, "/copy_to_central_authority"),
    ),
    invalid(
        T10,
        "role-unknown",
        set_("/requesting_authority_role", "police"),
        (S, "/requesting_authority_role"),
    ),
    # Art 10: the emergency and the assistance.
    invalid(T10, "no-emergency-facts", delete("/emergency_facts"), (S, "/emergency_facts")),
    invalid(T10, "no-relation", delete("/relation_to_emergency"), (S, "/relation_to_emergency")),
    invalid(T10, "no-assistance", set_("/assistance", []), (S, "/assistance")),
    invalid(
        T10,
        "assistance-unknown",
        set_("/assistance/0/measure", "arrest"),
        (S, "/assistance/0/measure"),
    ),
    invalid(T10, "no-confidential", delete("/confidential"), (S, "/confidential")),
    invalid(T10, "unknown-top", set_("/urgency", "high"), (S, "/urgency")),
    invalid(
        T10,
        "period-reversed",
        set_("/assistance/0/period", REVERSED),
        (M, "/assistance/0/period/from"),
    ),
]
