"""Cases for ``trust.directory`` (the trust directory as a document: shape and own rules).

Signatures are not the schema's business: these cases only judge one document on its
own; ``tests/trust/`` covers root signatures, rollback, expiry and key judgement.
"""

from __future__ import annotations

import copy
from typing import Any

from tests.forms.cases import Case, Mutation, delete, invalid, raw_case, set_, valid

T = "trust.directory"
S = "E_SCHEMA"
M = "E_SEMANTIC"

AT_SIG = "/participants/0/keys/1"
OTHER_KID = "AT.247#sig-0000000000000000"


def append(pointer: str, source: str) -> Mutation:
    """Mutation: append a copy of the value at ``source`` to the list at ``pointer``."""

    def resolve(doc: Any, where: str) -> Any:
        node = doc
        for part in where.split("/")[1:]:
            node = node[int(part)] if isinstance(node, list) else node[part]
        return node

    def apply(doc: Any) -> None:
        resolve(doc, pointer).append(copy.deepcopy(resolve(doc, source)))

    return apply


CASES: list[Case] = [
    valid(T),
    valid(T, "default-policy", delete("/policy")),
    valid(T, "no-participants", set_("/participants", [])),
    valid(T, "threshold-one", set_("/threshold", 1)),
    valid(T, "empty-policy", set_("/policy", {"rules": []})),
    valid(
        T,
        "with-signature",
        set_("/signatures", [{"kid": "root1#sig-838ef5f63e48c900", "value": "AAAA"}]),
    ),
    # A root's name is only a label: the kid's digest binds the key.
    valid(T, "root-other-name", set_("/roots/0/kid", "root9#sig-838ef5f63e48c900")),
    valid(
        T,
        "compromised-key",
        set_("/participants/0/keys/0/revocation_reason", "compromise"),
    ),
    # Version: a positive integer that JCS can still represent exactly.
    invalid(T, "version-zero", set_("/version", 0), (S, "/version")),
    invalid(T, "version-string", set_("/version", "3"), (S, "/version")),
    invalid(T, "version-unsafe", set_("/version", 2**53), (S, "/version")),
    # Wire times only: UTC, milliseconds, Z.
    invalid(T, "time-no-millis", set_("/issued_at", "2026-03-01T09:00:00Z"), (S, "/issued_at")),
    invalid(
        T,
        "time-offset",
        set_("/issued_at", "2026-03-01T10:00:00.000+01:00"),
        (S, "/issued_at"),
    ),
    invalid(T, "time-bad-day", set_("/expires_at", "2027-02-30T09:00:00.000Z"), (S, "/expires_at")),
    invalid(
        T,
        "expires-before-issued",
        set_("/expires_at", "2026-03-01T08:59:59.999Z"),
        (M, "/expires_at"),
    ),
    invalid(
        T,
        "expires-when-issued",
        set_("/expires_at", "2026-03-01T09:00:00.000Z"),
        (M, "/expires_at"),
    ),
    # Roots and threshold.
    invalid(T, "threshold-above-roots", set_("/threshold", 3), (M, "/threshold")),
    invalid(T, "threshold-zero", set_("/threshold", 0), (S, "/threshold")),
    invalid(T, "no-roots", set_("/roots", []), (S, "/roots")),
    invalid(T, "root-not-ed25519", set_("/roots/0/alg", "ML-DSA-65"), (S, "/roots/0/alg")),
    invalid(
        T,
        "root-kid-digest",
        set_("/roots/0/kid", "root1#sig-0000000000000000"),
        (M, "/roots/0/kid"),
    ),
    invalid(
        T,
        "root-public-short",
        set_("/roots/0/public", "mDsAfsxSYdZrO29zpzweLv9LXdqPeojGaM-x5hqdcc"),
        (S, "/roots/0/public"),
    ),
    invalid(
        T,
        "root-is-participant-key",
        set_(
            "/roots/0",
            {
                "kid": "AT.247#sig-d9f7382e3da3f783",
                "alg": "Ed25519",
                "public": "eV3yRCMpAvWOt3QI4L4kQLGREKcQkbjW0P-oFxRaw5A",
            },
        ),
        (M, "/roots/0/kid"),
    ),
    # Participants.
    invalid(T, "id-lower-case", set_("/participants/0/id", "at.247"), (S, "/participants/0/id")),
    invalid(
        T,
        "id-twice",
        append("/participants", "/participants/0"),
        (M, "/participants/2/id"),
    ),
    invalid(T, "role-unknown", set_("/participants/0/role", "judge"), (S, "/participants/0/role")),
    invalid(
        T,
        "country-name",
        set_("/participants/0/country", "Austria"),
        (S, "/participants/0/country"),
    ),
    invalid(T, "suite-unknown", set_("/participants/0/suite", "pq"), (S, "/participants/0/suite")),
    invalid(T, "no-keys", set_("/participants/0/keys", []), (S, "/participants/0/keys")),
    invalid(
        T, "classic-without-enc", delete("/participants/1/keys/1"), (M, "/participants/1/keys")
    ),
    invalid(
        T,
        "hybrid-without-pq-keys",
        set_("/participants/1/suite", "hybrid"),
        (M, "/participants/1/keys"),
    ),
    invalid(
        T,
        "routing-no-exchange",
        delete("/participants/0/routing/exchange"),
        (S, "/participants/0/routing/exchange"),
    ),
    invalid(
        T,
        "routing-bad-vhost",
        set_("/participants/0/routing/vhost", "evb at"),
        (S, "/participants/0/routing/vhost"),
    ),
    # Keys: kids, algorithms, public keys, validity, revocation.
    invalid(T, "kid-digest", set_(AT_SIG + "/kid", OTHER_KID), (M, AT_SIG + "/kid")),
    invalid(
        T,
        "kid-of-other-participant",
        set_(AT_SIG + "/kid", "DE.247#sig-d9f7382e3da3f783"),
        (M, AT_SIG + "/kid"),
    ),
    invalid(
        T,
        "kid-other-use",
        [set_(AT_SIG + "/use", "seal")],
        (M, AT_SIG + "/kid"),
    ),
    invalid(
        T, "kid-twice", append("/participants/0/keys", AT_SIG), (M, "/participants/0/keys/3/kid")
    ),
    invalid(
        T,
        "alg-not-for-enc",
        set_("/participants/0/keys/2/alg", "Ed25519"),
        (S, "/participants/0/keys/2/alg"),
    ),
    invalid(T, "alg-not-for-sig", set_(AT_SIG + "/alg", "X25519"), (S, AT_SIG + "/alg")),
    invalid(T, "alg-unknown", set_(AT_SIG + "/alg", "RSA"), (S, AT_SIG + "/alg")),
    invalid(
        T,
        "public-wrong-length",
        set_(AT_SIG + "/public", "eV3yRCMpAvWOt3QI4L4kQLGREKcQkbjW0P-oFxRaw5"),
        (M, AT_SIG + "/public"),
    ),
    invalid(
        T,
        "public-non-canonical",
        set_(AT_SIG + "/public", "eV3yRCMpAvWOt3QI4L4kQLGREKcQkbjW0P-oFxRaw5B"),
        (M, AT_SIG + "/public"),
    ),
    invalid(
        T,
        "public-padded",
        set_(AT_SIG + "/public", "eV3yRCMpAvWOt3QI4L4kQLGREKcQkbjW0P-oFxRaw5A="),
        (S, AT_SIG + "/public"),
    ),
    invalid(
        T,
        "validity-empty",
        set_(AT_SIG + "/not_after", "2026-02-15T12:00:00.000Z"),
        (M, AT_SIG + "/not_after"),
    ),
    invalid(
        T,
        "revoked-without-reason",
        delete("/participants/0/keys/0/revocation_reason"),
        (S, "/participants/0/keys/0/revocation_reason"),
    ),
    invalid(
        T,
        "reason-without-revoked",
        delete("/participants/0/keys/0/revoked_at"),
        (S, "/participants/0/keys/0/revoked_at"),
    ),
    invalid(
        T,
        "reason-unknown",
        set_("/participants/0/keys/0/revocation_reason", "lost"),
        (S, "/participants/0/keys/0/revocation_reason"),
    ),
    # Policy.
    invalid(
        T,
        "policy-type-capitals",
        set_("/policy/rules/0/types/0", "Case.*"),
        (S, "/policy/rules/0/types/0"),
    ),
    invalid(
        T, "policy-star-alone", set_("/policy/rules/0/types/0", "*"), (S, "/policy/rules/0/types/0")
    ),
    invalid(
        T,
        "policy-inner-star",
        set_("/policy/rules/0/types/0", "case.*.ack"),
        (S, "/policy/rules/0/types/0"),
    ),
    invalid(
        T,
        "policy-type-twice",
        set_("/policy/rules/0/types", ["case.*", "case.*"]),
        (S, "/policy/rules/0/types"),
    ),
    invalid(T, "policy-no-types", set_("/policy/rules/0/types", []), (S, "/policy/rules/0/types")),
    invalid(
        T,
        "policy-role-unknown",
        set_("/policy/rules/0/from_role", "police"),
        (S, "/policy/rules/0/from_role"),
    ),
    invalid(T, "policy-no-rules", set_("/policy", {}), (S, "/policy/rules")),
    # Signatures: well-formed, whatever they sign.
    invalid(
        T,
        "signature-padded",
        set_("/signatures", [{"kid": "root1#sig-838ef5f63e48c900", "value": "AAA="}]),
        (S, "/signatures/0/value"),
    ),
    invalid(
        T,
        "signature-no-kid",
        set_("/signatures", [{"value": "AAAA"}]),
        (S, "/signatures/0/kid"),
    ),
    invalid(
        T,
        "signature-non-canonical",
        set_("/signatures", [{"kid": "root1#sig-838ef5f63e48c900", "value": "AAB"}]),
        (M, "/signatures/0/value"),
    ),
    invalid(T, "no-signatures-member", delete("/signatures"), (S, "/signatures")),
    invalid(T, "unknown-member", set_("/comment", "x"), (S, "/comment")),
    invalid(T, "null-policy", set_("/policy", None), (S, "/policy")),
    raw_case(T, "not-json", b'{"version": 3, ', ("E_PARSE", "")),
    raw_case(T, "duplicate-member", b'{"version": 3, "version": 4}', ("E_PARSE", "")),
]
