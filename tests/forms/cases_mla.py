"""Cases for ``mla.request`` (treaty-based request for mutual legal assistance)."""

from __future__ import annotations

from tests.forms.cases import Case, delete, invalid, set_, valid

T = "mla.request"
S = "E_SCHEMA"
M = "E_SEMANTIC"

CASES: list[Case] = [
    valid(T),
    valid(
        T,
        "minimal",
        delete("/requested_authority"),
        delete("/persons"),
        delete("/deadline"),
        delete("/formalities"),
        delete("/preceding_requests"),
        delete("/measures/0/identifiers"),
        delete("/measures/0/period"),
        delete("/measures/0/custodian"),
        delete("/legal_basis/1"),
    ),
    valid(T, "respond-same-day", set_("/deadline/respond_by", "2026-04-02")),
    valid(T, "born-on-issue-day", set_("/persons/0/date_of_birth", "2026-04-02")),
    valid(T, "other-measure", set_("/measures/1/measure", "other")),
    valid(T, "person-name-only", set_("/persons/1", {"role": "victim", "name": "Jean Dupont"})),
    # Required content.
    invalid(T, "no-date", delete("/date_issued"), (S, "/date_issued")),
    invalid(T, "no-legal-basis", delete("/legal_basis"), (S, "/legal_basis")),
    invalid(T, "empty-legal-basis", set_("/legal_basis", []), (S, "/legal_basis")),
    invalid(
        T,
        "legal-basis-no-articles",
        set_("/legal_basis/0/articles", []),
        (S, "/legal_basis/0/articles"),
    ),
    invalid(T, "no-purpose", delete("/purpose"), (S, "/purpose")),
    invalid(T, "no-measures", set_("/measures", []), (S, "/measures")),
    invalid(
        T,
        "measure-unknown",
        set_("/measures/0/measure", "rogatory_commission"),
        (S, "/measures/0/measure"),
    ),
    invalid(
        T,
        "measure-no-description",
        delete("/measures/1/description"),
        (S, "/measures/1/description"),
    ),
    invalid(
        T,
        "measure-port-on-account",
        set_("/measures/0/identifiers/0/port", 443),
        (S, "/measures/0/identifiers/0/port"),
    ),
    invalid(T, "person-role-unknown", set_("/persons/0/role", "defendant"), (S, "/persons/0/role")),
    invalid(T, "person-no-name", delete("/persons/1/name"), (S, "/persons/1/name")),
    invalid(
        T,
        "person-bad-birth-date",
        set_("/persons/0/date_of_birth", "17.05.1990"),
        (S, "/persons/0/date_of_birth"),
    ),
    invalid(
        T,
        "person-lower-nationality",
        set_("/persons/0/nationality", "de"),
        (S, "/persons/0/nationality"),
    ),
    invalid(T, "deadline-no-reason", delete("/deadline/reason"), (S, "/deadline/reason")),
    invalid(
        T,
        "addressee-unknown-member",
        set_("/requested_authority/contact", "x"),
        (S, "/requested_authority/contact"),
    ),
    invalid(T, "confidential-not-bool", set_("/confidential", "yes"), (S, "/confidential")),
    invalid(T, "unknown-top", set_("/priority", "urgent"), (S, "/priority")),
    invalid(T, "empty-persons", set_("/persons", []), (S, "/persons")),
    # Beyond the schema: dates against the date of the request.
    invalid(
        T,
        "respond-before-issue",
        set_("/deadline/respond_by", "2026-04-01"),
        (M, "/deadline/respond_by"),
    ),
    invalid(T, "born-after-issue", set_("/persons/0/date_of_birth", "2026-04-03"), (M, "/persons")),
    invalid(
        T,
        "preceding-after-issue",
        set_("/preceding_requests/0/date", "2026-04-03"),
        (M, "/preceding_requests"),
    ),
    invalid(
        T,
        "two-date-problems",
        [
            set_("/deadline/respond_by", "2026-01-01"),
            set_("/preceding_requests/0/date", "2026-12-31"),
        ],
        (M, "/deadline/respond_by"),
        (M, "/preceding_requests"),
    ),
    invalid(
        T,
        "period-reversed",
        set_("/measures/0/period", {"from": "2026-03-31T00:00:00Z", "to": "2026-03-01T00:00:00Z"}),
        (M, "/measures/0/period/from"),
    ),
]
