"""Cases for the European Investigation Order forms (Directive 2014/41/EU Annexes A, B, C).

JSON cases mutate the templates; XML cases (ids ``xml-…``) encode a template with
:func:`broker.xmlforms.encode` and edit the bytes, so each one fails only the check it
targets. Every case names the exact problems ``(code, pointer)``; for XML the pointer
points into the mapped model, as for the JSON form of the same document.
"""

from __future__ import annotations

import copy
import re
from typing import Any

from broker import xmlforms
from tests.forms.cases import Case, Mutation, delete, invalid, raw_case, set_, template, valid

A = "eu.eio.a"
B = "eu.eio.b"
C = "eu.eio.c"
S = "E_SCHEMA"
M = "E_SEMANTIC"
P = "E_PARSE"


def _xml(type_name: str, *mutations: Mutation) -> bytes:
    doc = template(type_name)
    for mutate in mutations:
        mutate(doc)
    return xmlforms.encode(type_name, doc)


def _edit(type_name: str, old: str, new: str, *mutations: Mutation) -> bytes:
    raw = _xml(type_name, *mutations).decode("utf-8")
    if old not in raw:
        raise ValueError(f"{type_name} XML has no {old!r}")
    return raw.replace(old, new, 1).encode("utf-8")


def _append(pointer: str, value: object) -> Mutation:
    """Mutation: append an item to the array at ``pointer``."""

    def apply(doc: Any) -> None:
        node = doc
        for part in pointer.split("/")[1:]:
            node = node[int(part)] if isinstance(node, list) else node[part]
        node.append(copy.deepcopy(value))

    return apply


def _prefixed(type_name: str) -> bytes:
    """The template with a namespace prefix on every element instead of a default namespace."""
    raw = _xml(type_name).decode("utf-8")
    raw = re.sub(r"<(/?)([a-z_]+)", r"<\1evb:\2", raw)
    return raw.replace('xmlns="', 'xmlns:evb="', 1).encode("utf-8")


def xml_valid(type_name: str, name: str, raw: bytes) -> Case:
    """A valid XML case."""
    return raw_case(type_name, "xml-" + name, raw, fmt="xml")


def xml_invalid(type_name: str, name: str, raw: bytes, *expected: tuple[str, str]) -> Case:
    """An invalid XML case with the exact problems expected."""
    return raw_case(type_name, "xml-" + name, raw, *expected, fmt="xml")


# -- building blocks -----------------------------------------------------------------------

_VALIDATING: dict[str, Any] = {
    "type": "judge_or_court",
    "authority": {
        "name": "Landesgericht für Strafsachen Wien",
        "country": "AT",
        "reference": "354 HR 41/26t",
        "contact": {
            "name": "Richterin Mag. Eva Probe",
            "phone": "+43140127123",
            "email": "eva.probe@lg-wien.example.at",
        },
    },
    "signatory": {"name": "Mag. Eva Probe", "position": "Richterin"},
    "validation_date": "2026-04-21",
}
_COVERT = {"relevance": "Only an undercover officer can gain the trust of the seller."}
_TRANSFER_MEASURE = {
    "kind": "temporary_transfer_to_issuing_state",
    "description": "Transfer the detained accomplice to Vienna for a confrontation.",
}
_MINIMAL_MEASURES = [
    {"kind": "subscriber_identification", "description": "Identify the subscriber of an IP."}
]


def _minimal_a() -> list[Mutation]:
    return [
        delete("/executing_authority"),
        set_("/urgency", {"urgent": False}),
        set_("/measures", _MINIMAL_MEASURES),
        delete("/earlier_eios"),
        delete("/persons"),
        set_("/grounds/punishable_by_at_least_three_years", False),
        delete("/grounds/offence_categories"),
        delete("/additional_requirements"),
        delete("/formalities"),
        delete("/legal_remedies"),
        delete("/issuing_authority/address"),
        delete("/issuing_authority/languages"),
        delete("/issuing_authority/authority/unit"),
        delete("/issuing_authority/signatory/position"),
    ]


# -- eu.eio.a: Annex A ---------------------------------------------------------------------

CASES_A: list[Case] = [
    valid(A),
    valid(A, "minimal", *_minimal_a()),
    # Art 2(c)(ii): an other competent authority, validated by a judge (Section L).
    valid(
        A,
        "validated",
        set_("/issuing_authority/type", "other_competent_authority"),
        set_("/validating_authority", _VALIDATING),
    ),
    valid(A, "validated-by-prosecutor-too", set_("/validating_authority", _VALIDATING)),
    valid(
        A,
        "legal-person-only",
        set_(
            "/persons",
            [
                {
                    "kind": "legal_person",
                    "role": "third_party",
                    "name": "Example Bank AG",
                    "aliases": ["EBAG"],
                    "identifiers": [{"type": "domain", "value": "bank.example"}],
                }
            ],
        ),
    ),
    valid(
        A,
        "role-other",
        set_("/persons/1/role", "other"),
        set_("/persons/1/role_details", "Account holder of record"),
    ),
    valid(
        A,
        "specific-date",
        delete("/urgency/deadline"),
        set_("/urgency/specific_date", "2026-05-04"),
    ),
    valid(A, "reason-other", set_("/urgency/reasons", ["other", "imminent_trial_date"])),
    valid(A, "deadline-on-signature-day", set_("/urgency/deadline", "2026-04-20")),
    valid(
        A,
        "not-urgent-with-date",
        set_(
            "/urgency",
            {
                "urgent": False,
                "specific_date": "2026-06-01",
                "explanation": "The witness is only available on that day.",
            },
        ),
    ),
    valid(
        A,
        "remedy-sought",
        set_("/legal_remedies/remedy_sought", True),
        set_("/legal_remedies/details", "The suspect appealed (Beschwerde) on 22 April 2026."),
    ),
    valid(A, "no-assistance", set_("/formalities", {"assistance_requested": False})),
    valid(
        A,
        "every-section-h",
        _append("/measures", _TRANSFER_MEASURE),
        _append("/measures", {"kind": "temporary_transfer_to_executing_state", "description": "x"}),
        _append("/measures", {"kind": "hearing_by_telephone_conference", "description": "x"}),
        _append("/measures", {"kind": "banking_operations_information", "description": "x"}),
        _append("/measures", {"kind": "covert_investigation", "description": "x"}),
        _append("/measures", {"kind": "real_time_monitoring", "description": "x"}),
        set_(
            "/additional_requirements/temporary_transfer",
            {
                "to_issuing_state": {"consent": "opinion_to_be_sought"},
                "to_executing_state": {"consent": "given"},
            },
        ),
        set_(
            "/additional_requirements/remote_hearing/telephone_conference",
            {
                "conducting_authority": "Staatsanwaltschaft Wien",
                "persons_to_be_heard": ["Expert Dr. Max Gutachter"],
                "reasons": "Short questions on the expert report.",
            },
        ),
        set_("/additional_requirements/remote_hearing/videoconference/accused_consents", True),
        set_(
            "/additional_requirements/banking_operations",
            {
                "relevance": "Trace the proceeds.",
                "accounts": ["DE00 0000 0000 0000 0000 00"],
                "period": {"from": "2026-03-01T00:00:00Z", "to": "2026-04-01T00:00:00Z"},
            },
        ),
        set_(
            "/additional_requirements/covert_investigation",
            {**_COVERT, "period": {"from": "2026-05-01T00:00:00Z", "to": "2026-07-01T00:00:00Z"}},
        ),
        set_(
            "/additional_requirements/real_time_monitoring",
            {
                "monitoring_type": "other",
                "details": "Monitoring of crypto-asset transfers",
                "relevance": "The proceeds are converted into crypto-assets.",
            },
        ),
    ),
    valid(A, "administrative-proceedings", set_("/proceedings", "administrative_authority")),
    # Required members and unknown members.
    invalid(A, "no-measures", delete("/measures"), (S, "/measures")),
    invalid(A, "measures-empty", set_("/measures", []), (S, "/measures")),
    invalid(A, "no-grounds", delete("/grounds"), (S, "/grounds")),
    invalid(
        A,
        "no-signature-date",
        delete("/issuing_authority/signature_date"),
        (S, "/issuing_authority/signature_date"),
    ),
    invalid(A, "no-urgency", delete("/urgency"), (S, "/urgency")),
    invalid(A, "unknown-top", set_("/section_z", "x"), (S, "/section_z")),
    invalid(A, "unknown-in-measure", set_("/measures/0/priority", 1), (S, "/measures/0/priority")),
    invalid(A, "null-optional", set_("/executing_authority", None), (S, "/executing_authority")),
    # Enumerations.
    invalid(
        A, "measure-kind-unknown", set_("/measures/0/kind", "wiretap"), (S, "/measures/0/kind")
    ),
    invalid(A, "proceedings-unknown", set_("/proceedings", "civil"), (S, "/proceedings")),
    invalid(
        A,
        "category-unknown",
        set_("/grounds/offence_categories/0", "cybercrime"),
        (S, "/grounds/offence_categories/0"),
    ),
    invalid(
        A,
        "category-duplicate",
        set_("/grounds/offence_categories", ["fraud", "fraud"]),
        (S, "/grounds/offence_categories"),
    ),
    invalid(
        A,
        "issuing-type-unknown",
        set_("/issuing_authority/type", "police"),
        (S, "/issuing_authority/type"),
    ),
    invalid(
        A,
        "transfer-consent-opinion-to-executing",
        set_(
            "/additional_requirements/temporary_transfer",
            {"to_executing_state": {"consent": "opinion_to_be_sought"}},
        ),
        (S, "/additional_requirements/temporary_transfer/to_executing_state/consent"),
    ),
    # Formats and types.
    invalid(A, "bad-deadline", set_("/urgency/deadline", "2026-02-30"), (S, "/urgency/deadline")),
    invalid(A, "bad-country", set_("/executing_state", "XX"), (S, "/executing_state")),
    invalid(
        A,
        "bad-language",
        set_("/issuing_authority/languages/0", "deu"),
        (S, "/issuing_authority/languages/0"),
    ),
    invalid(
        A,
        "bad-phone-identifier",
        set_("/persons/0/identifiers/0/value", "0664 1234567"),
        (S, "/persons/0/identifiers/0/value"),
    ),
    invalid(
        A,
        "bad-birth-date",
        set_("/persons/0/date_of_birth", "14.07.1988"),
        (S, "/persons/0/date_of_birth"),
    ),
    invalid(
        A,
        "transcription-string",
        set_("/additional_requirements/interception/transcription", "no"),
        (S, "/additional_requirements/interception/transcription"),
    ),
    # A wrong type is one problem, not also a broken condition that depends on it.
    invalid(A, "urgent-string", set_("/urgency/urgent", "yes"), (S, "/urgency/urgent")),
    invalid(
        A,
        "assistance-string",
        set_("/formalities/assistance_requested", "yes"),
        (S, "/formalities/assistance_requested"),
    ),
    invalid(A, "person-kind-unknown", set_("/persons/2/kind", "company"), (S, "/persons/2/kind")),
    invalid(A, "multi-line-name", set_("/persons/0/name", "Muster\nfrau"), (S, "/persons/0/name")),
    # Conditional members the schema expresses (if/then).
    invalid(
        A,
        "other-authority-without-validation",
        set_("/issuing_authority/type", "other_competent_authority"),
        (S, "/validating_authority"),
    ),
    invalid(A, "urgent-without-reasons", delete("/urgency/reasons"), (S, "/urgency/reasons")),
    invalid(A, "reasons-when-not-urgent", set_("/urgency/urgent", False), (S, "/urgency/reasons")),
    invalid(
        A,
        "deadline-without-explanation",
        delete("/urgency/explanation"),
        (S, "/urgency/explanation"),
    ),
    invalid(
        A,
        "reason-other-without-explanation",
        [
            delete("/urgency/deadline"),
            delete("/urgency/explanation"),
            set_("/urgency/reasons", ["other"]),
        ],
        (S, "/urgency/explanation"),
    ),
    invalid(
        A,
        "categories-below-three-years",
        set_("/grounds/punishable_by_at_least_three_years", False),
        (S, "/grounds/punishable_by_at_least_three_years"),
    ),
    invalid(
        A,
        "role-other-without-details",
        set_("/persons/1/role", "other"),
        (S, "/persons/1/role_details"),
    ),
    invalid(
        A,
        "legal-person-birth-date",
        set_("/persons/2/date_of_birth", "2001-01-01"),
        (S, "/persons/2/date_of_birth"),
    ),
    invalid(
        A,
        "natural-person-legal-form",
        set_("/persons/0/legal_form", "GmbH"),
        (S, "/persons/0/legal_form"),
    ),
    invalid(
        A,
        "assistance-without-officials",
        delete("/formalities/assisting_officials"),
        (S, "/formalities/assisting_officials"),
    ),
    invalid(
        A,
        "officials-without-assistance",
        set_("/formalities/assistance_requested", False),
        (S, "/formalities/assisting_officials"),
    ),
    invalid(
        A,
        "remedy-without-details",
        set_("/legal_remedies/remedy_sought", True),
        (S, "/legal_remedies/details"),
    ),
    invalid(
        A,
        "monitoring-other-without-details",
        [
            set_("/measures/0/kind", "real_time_monitoring"),
            set_(
                "/additional_requirements/real_time_monitoring",
                {"monitoring_type": "other", "relevance": "x"},
            ),
        ],
        (S, "/additional_requirements/real_time_monitoring/details"),
    ),
    invalid(
        A, "section-h-empty", set_("/additional_requirements", {}), (S, "/additional_requirements")
    ),
    invalid(
        A,
        "h1-empty",
        set_("/additional_requirements/temporary_transfer", {}),
        (S, "/additional_requirements/temporary_transfer"),
    ),
    # Beyond the schema: Section C measures and Section H parts go together.
    invalid(
        A,
        "interception-without-h7",
        delete("/additional_requirements/interception"),
        (M, "/additional_requirements/interception"),
    ),
    invalid(
        A,
        "no-section-h",
        delete("/additional_requirements"),
        (M, "/additional_requirements/bank_accounts"),
        (M, "/additional_requirements/interception"),
        (M, "/additional_requirements/remote_hearing/videoconference"),
    ),
    invalid(
        A,
        "transfer-without-h1",
        _append("/measures", _TRANSFER_MEASURE),
        (M, "/additional_requirements/temporary_transfer/to_issuing_state"),
    ),
    invalid(
        A,
        "h1-wrong-direction",
        [
            _append("/measures", _TRANSFER_MEASURE),
            set_(
                "/additional_requirements/temporary_transfer",
                {"to_executing_state": {"consent": "given"}},
            ),
        ],
        (M, "/additional_requirements/temporary_transfer/to_executing_state"),
        (M, "/additional_requirements/temporary_transfer/to_issuing_state"),
    ),
    invalid(
        A,
        "h5-without-measure",
        set_("/additional_requirements/covert_investigation", _COVERT),
        (M, "/additional_requirements/covert_investigation"),
    ),
    invalid(
        A,
        "telephone-instead-of-video",
        set_("/measures/2/kind", "hearing_by_telephone_conference"),
        (M, "/additional_requirements/remote_hearing/telephone_conference"),
        (M, "/additional_requirements/remote_hearing/videoconference"),
    ),
    # Beyond the schema: States, authorities and dates.
    invalid(A, "executing-is-issuing", set_("/executing_state", "AT"), (M, "/executing_state")),
    invalid(
        A,
        "issuing-authority-abroad",
        set_("/issuing_authority/authority/country", "DE"),
        (M, "/issuing_authority/authority/country"),
    ),
    invalid(
        A,
        "deadline-before-signature",
        set_("/urgency/deadline", "2026-04-19"),
        (M, "/urgency/deadline"),
    ),
    invalid(
        A,
        "specific-date-before-signature",
        set_("/urgency/specific_date", "2026-01-01"),
        (M, "/urgency/specific_date"),
    ),
    invalid(
        A,
        "validated-before-signature",
        set_("/validating_authority", {**_VALIDATING, "validation_date": "2026-04-19"}),
        (M, "/validating_authority/validation_date"),
    ),
    invalid(
        A,
        "validating-authority-abroad",
        set_(
            "/validating_authority",
            {**_VALIDATING, "authority": {**_VALIDATING["authority"], "country": "DE"}},
        ),
        (M, "/validating_authority/authority/country"),
    ),
    invalid(
        A,
        "interception-period-reversed",
        set_(
            "/additional_requirements/interception/period",
            {"from": "2026-07-01T00:00:00Z", "to": "2026-05-01T00:00:00Z"},
        ),
        (M, "/additional_requirements/interception/period/from"),
    ),
    raw_case(A, "not-json", b"<european_investigation_order/>", (P, "")),
]


# -- eu.eio.b: Annex B ---------------------------------------------------------------------

_COMPETENT = [set_("/receiving_authority_competent", True), delete("/forwarded_to")]

CASES_B: list[Case] = [
    valid(B),
    valid(B, "competent", *_COMPETENT),
    valid(
        B,
        "minimal",
        *_COMPETENT,
        delete("/eio/case"),
        delete("/other_information"),
        delete("/receiving_authority/address"),
        delete("/receiving_authority/languages"),
        delete("/signatory/position"),
    ),
    valid(
        B,
        "same-day",
        set_("/received_on", "2026-04-20"),
        set_("/forwarded_to/forwarded_on", "2026-04-20"),
        set_("/signature_date", "2026-04-20"),
    ),
    invalid(B, "no-eio", delete("/eio"), (S, "/eio")),
    invalid(B, "no-reference", delete("/eio/reference"), (S, "/eio/reference")),
    invalid(B, "no-received-on", delete("/received_on"), (S, "/received_on")),
    invalid(B, "unknown-member", set_("/eio/urgent", True), (S, "/eio/urgent")),
    invalid(
        B, "bad-uuid", set_("/eio/case", "0196A3C2-7B1E-7C3D-9F20-5E8B1A4D6C01"), (S, "/eio/case")
    ),
    invalid(B, "bad-received-on", set_("/received_on", "2026-04-31"), (S, "/received_on")),
    invalid(
        B,
        "competent-string",
        set_("/receiving_authority_competent", "no"),
        (S, "/receiving_authority_competent"),
    ),
    invalid(
        B,
        "languages-duplicate",
        set_("/receiving_authority/languages", ["de", "de"]),
        (S, "/receiving_authority/languages"),
    ),
    invalid(B, "empty-information", set_("/other_information", ""), (S, "/other_information")),
    invalid(B, "signatory-without-name", delete("/signatory/name"), (S, "/signatory/name")),
    # Art 7(6): forwarded to the competent authority when, and only when, not competent.
    invalid(B, "not-competent-not-forwarded", delete("/forwarded_to"), (S, "/forwarded_to")),
    invalid(
        B,
        "competent-but-forwarded",
        set_("/receiving_authority_competent", True),
        (S, "/forwarded_to"),
    ),
    # Beyond the schema.
    invalid(B, "received-before-issued", set_("/received_on", "2026-04-19"), (M, "/received_on")),
    invalid(
        B,
        "forwarded-before-received",
        set_("/forwarded_to/forwarded_on", "2026-04-20"),
        (M, "/forwarded_to/forwarded_on"),
    ),
    invalid(
        B,
        "signed-before-received",
        [*_COMPETENT, set_("/signature_date", "2026-04-20")],
        (M, "/signature_date"),
    ),
    invalid(
        B,
        "receiving-authority-in-issuing-state",
        set_("/receiving_authority/authority/country", "AT"),
        (M, "/forwarded_to/competent_authority/authority/country"),
        (M, "/receiving_authority/authority/country"),
    ),
    invalid(
        B,
        "forwarded-abroad",
        set_("/forwarded_to/competent_authority/authority/country", "FR"),
        (M, "/forwarded_to/competent_authority/authority/country"),
    ),
]


# -- eu.eio.c: Annex C ---------------------------------------------------------------------

CASES_C: list[Case] = [
    valid(C),
    valid(
        C,
        "not-yet-started",
        set_("/interception_status", "not_yet_started"),
        set_("/period/from", "2026-04-22T00:00:00+02:00"),
    ),
    valid(
        C,
        "completed",
        set_("/interception_status", "completed"),
        set_("/period/to", "2026-04-20T23:59:59+02:00"),
    ),
    valid(C, "starts-at-notification", set_("/period/from", "2026-04-21T07:30:00Z")),
    valid(
        C,
        "minimal",
        delete("/persons"),
        delete("/intercepting_authority/address"),
        delete("/intercepting_authority/languages"),
        delete("/signatory/position"),
        delete("/targets/1"),
    ),
    valid(
        C,
        "ip-target",
        set_(
            "/targets/1",
            {
                "type": "ip",
                "value": "2001:db8::7",
                "port": 443,
                "observed_at": "2026-04-20T22:01:00Z",
            },
        ),
    ),
    invalid(C, "no-targets", delete("/targets"), (S, "/targets")),
    invalid(C, "targets-empty", set_("/targets", []), (S, "/targets")),
    invalid(C, "no-period", delete("/period"), (S, "/period")),
    invalid(C, "no-legal-basis", delete("/legal_basis"), (S, "/legal_basis")),
    invalid(
        C, "status-unknown", set_("/interception_status", "planned"), (S, "/interception_status")
    ),
    invalid(C, "signed-at-no-offset", set_("/signed_at", "2026-04-21T09:30:00"), (S, "/signed_at")),
    invalid(C, "signed-at-date-only", set_("/signed_at", "2026-04-21"), (S, "/signed_at")),
    invalid(
        C, "target-bad-phone", set_("/targets/0/value", "015123456789"), (S, "/targets/0/value")
    ),
    invalid(C, "port-on-phone", set_("/targets/0/port", 5060), (S, "/targets/0/port")),
    invalid(
        C, "unknown-in-legal-basis", set_("/legal_basis/judge", "x"), (S, "/legal_basis/judge")
    ),
    invalid(
        C, "no-provisions", set_("/legal_basis/provisions", []), (S, "/legal_basis/provisions")
    ),
    invalid(
        C,
        "bad-nationality",
        set_("/persons/0/nationalities/1", "EU"),
        (S, "/persons/0/nationalities/1"),
    ),
    invalid(C, "notified-is-intercepting", set_("/notified_state", "DE"), (M, "/notified_state")),
    invalid(
        C,
        "intercepting-authority-abroad",
        set_("/intercepting_authority/authority/country", "NL"),
        (M, "/intercepting_authority/authority/country"),
    ),
    invalid(
        C,
        "status-completed-but-ongoing",
        set_("/interception_status", "completed"),
        (M, "/interception_status"),
    ),
    invalid(
        C,
        "status-not-started-but-ongoing",
        set_("/interception_status", "not_yet_started"),
        (M, "/interception_status"),
    ),
    invalid(
        C,
        "status-ongoing-but-future",
        set_("/period/from", "2026-05-01T00:00:00Z"),
        (M, "/interception_status"),
    ),
    invalid(
        C,
        "period-reversed",
        set_("/period", {"from": "2026-06-30T00:00:00Z", "to": "2026-04-01T00:00:00Z"}),
        (M, "/period/from"),
    ),
]


# -- XML forms ---------------------------------------------------------------------------

_LAUGHS = (
    b'<?xml version="1.0"?>\n<!DOCTYPE lolz [<!ENTITY lol "lol">'
    b'<!ENTITY lol1 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">'
    b'<!ENTITY lol2 "&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;">'
    b'<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">]>\n'
)
_PENALTY = "<maximum_penalty>Up to ten years' imprisonment</maximum_penalty>"

CASES_XML: list[Case] = [
    xml_valid(A, "template", _xml(A)),
    xml_valid(B, "template", _xml(B)),
    xml_valid(C, "template", _xml(C)),
    xml_valid(
        A,
        "validated",
        _xml(
            A,
            set_("/issuing_authority/type", "other_competent_authority"),
            set_("/validating_authority", _VALIDATING),
        ),
    ),
    xml_valid(B, "prefixed", _prefixed(B)),
    xml_valid(B, "no-declaration", _xml(B).split(b"\n", 1)[1]),
    xml_valid(B, "utf8-bom", b"\xef\xbb\xbf" + _xml(B)),
    # XSD collapses whitespace around dates, date-times and booleans.
    xml_valid(
        A,
        "whitespace-around-values",
        _edit(
            A, "<transcription>false</transcription>", "<transcription>\n  false </transcription>"
        ),
    ),
    xml_valid(
        C,
        "whitespace-around-date-time",
        _edit(
            C,
            "<signed_at>2026-04-21T09:30:00+02:00</signed_at>",
            "<signed_at> 2026-04-21T09:30:00+02:00\n</signed_at>",
        ),
    ),
    # Comments are dropped, CDATA is text, character references are decoded.
    xml_valid(
        A,
        "comment-cdata-charref",
        _edit(
            A,
            _PENALTY,
            "<maximum_penalty><!-- § 148a -->Up to ten <![CDATA[years']]>"
            " imprisonment&#x20;</maximum_penalty>",
        ),
    ),
    # A schema location is a hint that is never followed.
    xml_valid(
        C,
        "schema-location-ignored",
        _edit(
            C,
            'xmlns="urn:evb:xml:eu.eio.c:1">',
            'xmlns="urn:evb:xml:eu.eio.c:1" '
            'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" '
            'xsi:schemaLocation="urn:evb:xml:eu.eio.c:1 http://127.0.0.1:9/eio.xsd">',
        ),
    ),
    # Not XML, or a forbidden construct: E_PARSE.
    xml_invalid(A, "malformed", _xml(A)[:-40], (P, "")),
    xml_invalid(B, "empty", b"", (P, "")),
    xml_invalid(
        B,
        "billion-laughs",
        _LAUGHS
        + _edit(B, "<other_information>The", "<other_information>&lol3; The").split(b"\n", 1)[1],
        (P, ""),
    ),
    xml_invalid(
        B,
        "doctype-alone",
        b"<!DOCTYPE eio_receipt_confirmation>\n" + _xml(B).split(b"\n", 1)[1],
        (P, ""),
    ),
    xml_invalid(
        B,
        "processing-instruction",
        _edit(B, "<received_on>", '<?xml-stylesheet href="x.xsl"?><received_on>'),
        (P, ""),
    ),
    xml_invalid(
        B, "latin1", _xml(B).replace(b'encoding="UTF-8"', b'encoding="ISO-8859-1"'), (P, "")
    ),
    xml_invalid(
        B,
        "xsi-type",
        _edit(
            B,
            "<received_on>",
            '<received_on xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xsi:type="Date">',
        ),
        (P, ""),
    ),
    xml_invalid(
        B,
        "undefined-entity",
        _edit(B, "<other_information>The", "<other_information>&x; The"),
        (P, ""),
    ),
    # Violates the XSD: E_SCHEMA at a pointer into the mapped model.
    xml_invalid(
        A,
        "wrong-namespace",
        _xml(A).replace(b"urn:evb:xml:eu.eio.a:1", b"urn:evb:xml:eu.eio.b:1"),
        (S, ""),
    ),
    xml_invalid(A, "wrong-root", _xml(B), (S, "")),
    xml_invalid(
        A, "no-namespace", _xml(A).replace(b' xmlns="urn:evb:xml:eu.eio.a:1"', b""), (S, "")
    ),
    xml_invalid(
        A,
        "unknown-element",
        _edit(A, "<maximum_penalty>", "<severity>high</severity><maximum_penalty>"),
        (S, "/grounds/severity"),
    ),
    xml_invalid(
        A,
        "missing-element",
        _edit(A, "<proceedings>criminal</proceedings>", ""),
        (S, "/proceedings"),
    ),
    xml_invalid(
        A,
        "repeated-element",
        _edit(
            A,
            "<proceedings>criminal</proceedings>",
            "<proceedings>criminal</proceedings><proceedings>criminal</proceedings>",
        ),
        (S, "/proceedings"),
    ),
    xml_invalid(
        A,
        "bad-enum",
        _edit(A, "<proceedings>criminal</proceedings>", "<proceedings>civil</proceedings>"),
        (S, "/proceedings"),
    ),
    xml_invalid(
        A,
        "bad-date",
        _edit(A, "<signature_date>2026-04-20", "<signature_date>2026-04-31"),
        (S, "/issuing_authority/signature_date"),
    ),
    xml_invalid(
        A,
        "date-with-zone",
        _edit(A, "<signature_date>2026-04-20", "<signature_date>2026-04-20Z"),
        (S, "/issuing_authority/signature_date"),
    ),
    xml_invalid(
        C,
        "bad-date-time",
        _edit(C, "<signed_at>2026-04-21T09:30:00+02:00", "<signed_at>2026-04-21T25:30:00+02:00"),
        (S, "/signed_at"),
    ),
    xml_invalid(
        C,
        "date-time-without-offset",
        _edit(C, "<signed_at>2026-04-21T09:30:00+02:00", "<signed_at>2026-04-21T09:30:00"),
        (S, "/signed_at"),
    ),
    xml_invalid(
        A,
        "bad-boolean",
        _edit(A, "<transcription>false", "<transcription>0"),
        (S, "/additional_requirements/interception/transcription"),
    ),
    xml_invalid(
        A,
        "bad-integer",
        _edit(A, "<port>51234</port>", "<port>51234.0</port>"),
        (S, "/persons/0/identifiers/2/port"),
    ),
    xml_invalid(
        A,
        "integer-out-of-range",
        _edit(A, "<port>51234</port>", "<port>65536</port>"),
        (S, "/persons/0/identifiers/2/port"),
    ),
    xml_invalid(
        A, "empty-text", _edit(A, _PENALTY, "<maximum_penalty/>"), (S, "/grounds/maximum_penalty")
    ),
    xml_invalid(A, "empty-array", _xml(A, set_("/measures", [])), (S, "/measures")),
    xml_invalid(
        A,
        "too-many-items",
        _xml(A, set_("/persons/0/nationalities", ["AT"] * 11)),
        (S, "/persons/0/nationalities"),
    ),
    xml_invalid(
        A, "attribute", _edit(A, "<proceedings>", '<proceedings lang="en">'), (S, "/proceedings")
    ),
    xml_invalid(A, "text-in-object", _edit(A, "<grounds>", "<grounds>see file"), (S, "/grounds")),
    xml_invalid(
        A,
        "element-in-text",
        _edit(A, "<proceedings>criminal", "<proceedings><b>criminal</b>"),
        (S, "/proceedings"),
    ),
    xml_invalid(
        A,
        "xinclude-not-processed",
        _edit(
            A,
            "<proceedings>",
            '<xi:include xmlns:xi="http://www.w3.org/2001/XInclude" '
            'href="/etc/passwd" parse="text"/><proceedings>',
        ),
        (S, "/include"),
    ),
    # Valid against the XSD, refused by the JSON Schema or the model after mapping.
    xml_invalid(
        A,
        "country-not-assigned",
        _edit(A, "<executing_state>DE", "<executing_state>XX"),
        (S, "/executing_state"),
    ),
    xml_invalid(
        A,
        "duplicate-language",
        _xml(A, set_("/formalities/languages", ["de", "de"])),
        (S, "/formalities/languages"),
    ),
    xml_invalid(
        A,
        "other-authority-without-validation",
        _edit(A, "<type>public_prosecutor", "<type>other_competent_authority"),
        (S, "/validating_authority"),
    ),
    xml_invalid(
        A,
        "interception-without-h7",
        _xml(A, delete("/additional_requirements/interception")),
        (M, "/additional_requirements/interception"),
    ),
    xml_invalid(
        C,
        "notified-is-intercepting",
        _edit(C, "<notified_state>FR", "<notified_state>DE"),
        (M, "/notified_state"),
    ),
    xml_invalid(
        B,
        "received-before-issued",
        _edit(B, "<received_on>2026-04-21", "<received_on>2026-04-19"),
        (M, "/received_on"),
    ),
]

CASES: list[Case] = [*CASES_A, *CASES_B, *CASES_C, *CASES_XML]
