"""Cases for ``msg.receipt`` (the signed receipt a node returns for every message).

The template is a positive receipt with a proof; the node's own checks (message_id
equals in_reply_to, the digest matches the sent bytes) are not the schema's business.
"""

from __future__ import annotations

import base64

from tests.forms.cases import Case, delete, invalid, raw_case, set_, valid

T = "msg.receipt"
S = "E_SCHEMA"
M = "E_SEMANTIC"

HEX = "773885a613489e24ce2cf76199d6a423f042e4bbf12d7eecee912ef276c65701"
B64 = base64.b64encode(bytes.fromhex(HEX)).decode()
# The same 32 bytes with the two unused low bits of the last base64 digit set: decodes
# to the same hash in lax decoders, so it is not canonical.
B64_LAX = B64[:42] + "F="
REJECTED = [set_("/outcome", "rejected"), set_("/code", "E_SIG_INVALID")]
EM_DASH = "\u2014"  # three bytes of UTF-8

CASES: list[Case] = [
    valid(T),
    valid(T, "no-proof", delete("/proof")),
    valid(
        T,
        "rejected",
        set_("/outcome", "rejected"),
        set_("/code", "E_POLICY_FORBIDDEN"),
        set_("/reason", "the policy does not let a service_provider send eu.epoc"),
    ),
    valid(T, "rejected-no-reason", *REJECTED, delete("/proof")),
    valid(T, "code-shortest", *REJECTED, set_("/code", "E_AB")),
    valid(T, "code-longest", *REJECTED, set_("/code", "E_" + "A" * 40)),
    # A tree of one entry: the entry is the root, the audit path is empty.
    valid(T, "tree-of-one", set_("/proof/leaf_index", 0), set_("/proof/tree_size", 1)),
    valid(T, "empty-path", set_("/proof/hashes", [])),
    valid(T, "base64-hashes", set_("/proof/hashes", [B64, B64])),
    valid(T, "checkpoint-8-kib", set_("/proof/checkpoint", "x" * 8192)),
    valid(
        T, "last-leaf", set_("/proof/leaf_index", 2**53 - 2), set_("/proof/tree_size", 2**53 - 1)
    ),
    # code iff rejected; reason only when rejected.
    invalid(T, "accepted-with-code", set_("/code", "E_SCHEMA"), (S, "/code")),
    invalid(T, "accepted-with-reason", set_("/reason", "fine"), (S, "/reason")),
    invalid(
        T,
        "accepted-with-both",
        [set_("/code", "E_SCHEMA"), set_("/reason", "fine")],
        (S, "/code"),
        (S, "/reason"),
    ),
    invalid(T, "rejected-without-code", set_("/outcome", "rejected"), (S, "/code")),
    invalid(
        T,
        "rejected-reason-without-code",
        [set_("/outcome", "rejected"), set_("/reason", "bad signature")],
        (S, "/code"),
    ),
    invalid(T, "outcome-unknown", set_("/outcome", "received"), (S, "/outcome")),
    invalid(T, "outcome-missing", delete("/outcome"), (S, "/outcome")),
    invalid(T, "outcome-upper", set_("/outcome", "Accepted"), (S, "/outcome")),
    # Stable error codes only.
    invalid(T, "code-lower", [*REJECTED, set_("/code", "E_sig_invalid")], (S, "/code")),
    invalid(T, "code-no-prefix", [*REJECTED, set_("/code", "SIG_INVALID")], (S, "/code")),
    invalid(T, "code-too-short", [*REJECTED, set_("/code", "E_A")], (S, "/code")),
    invalid(T, "code-too-long", [*REJECTED, set_("/code", "E_" + "A" * 41)], (S, "/code")),
    invalid(T, "code-not-string", [*REJECTED, set_("/code", 7)], (S, "/code")),
    invalid(T, "reason-two-lines", [*REJECTED, set_("/reason", "one\ntwo")], (S, "/reason")),
    invalid(T, "reason-empty", [*REJECTED, set_("/reason", "")], (S, "/reason")),
    # The receipted message and its bytes.
    invalid(T, "message-id-missing", delete("/message_id"), (S, "/message_id")),
    invalid(T, "message-id-not-uuid", set_("/message_id", "msg-1"), (S, "/message_id")),
    invalid(
        T,
        "message-id-upper",
        set_("/message_id", "01963A6E-9C4B-7D2E-8F10-3B5A7C9E1D42"),
        (S, "/message_id"),
    ),
    invalid(T, "digest-upper", set_("/envelope_digest", HEX.upper()), (S, "/envelope_digest")),
    invalid(T, "digest-short", set_("/envelope_digest", HEX[:63]), (S, "/envelope_digest")),
    invalid(T, "digest-base64", set_("/envelope_digest", B64), (S, "/envelope_digest")),
    invalid(T, "digest-missing", delete("/envelope_digest"), (S, "/envelope_digest")),
    # Wire times only: UTC, milliseconds, Z.
    invalid(
        T, "received-no-millis", set_("/received_at", "2026-03-02T03:14:07Z"), (S, "/received_at")
    ),
    invalid(
        T,
        "received-offset",
        set_("/received_at", "2026-03-02T04:14:07.250+01:00"),
        (S, "/received_at"),
    ),
    invalid(
        T, "received-bad-day", set_("/received_at", "2026-02-30T03:14:07.250Z"), (S, "/received_at")
    ),
    invalid(T, "received-missing", delete("/received_at"), (S, "/received_at")),
    # The envelope carries case and in_reply_to: not repeated here.
    invalid(T, "repeats-case", set_("/case", "01963a6e-9c4b-7d2e-8f10-3b5a7c9e1d43"), (S, "/case")),
    invalid(T, "explicit-null", set_("/proof", None), (S, "/proof")),
    # The proof (reserved for the audit log).
    invalid(T, "leaf-equals-size", set_("/proof/leaf_index", 2), (M, "/proof/leaf_index")),
    invalid(T, "leaf-beyond-size", set_("/proof/leaf_index", 7), (M, "/proof/leaf_index")),
    invalid(T, "leaf-negative", set_("/proof/leaf_index", -1), (S, "/proof/leaf_index")),
    invalid(T, "leaf-fraction", set_("/proof/leaf_index", 1.0), (S, "/proof/leaf_index")),
    invalid(T, "leaf-string", set_("/proof/leaf_index", "1"), (S, "/proof/leaf_index")),
    invalid(T, "size-zero", set_("/proof/tree_size", 0), (S, "/proof/tree_size")),
    invalid(T, "size-unsafe", set_("/proof/tree_size", 2**53), (S, "/proof/tree_size")),
    invalid(T, "hashes-mixed", set_("/proof/hashes", [HEX, B64]), (M, "/proof/hashes/1")),
    invalid(
        T, "hashes-mixed-later", set_("/proof/hashes", [B64, B64, HEX]), (M, "/proof/hashes/2")
    ),
    invalid(T, "hash-upper", set_("/proof/hashes", [HEX.upper()]), (S, "/proof/hashes/0")),
    invalid(T, "hash-base64-lax", set_("/proof/hashes", [B64_LAX]), (S, "/proof/hashes/0")),
    invalid(
        T,
        "hash-base64url",
        set_("/proof/hashes", [B64.replace("/", "_").replace("+", "-")]),
        (S, "/proof/hashes/0"),
    ),
    invalid(T, "hash-unpadded", set_("/proof/hashes", [B64.rstrip("=")]), (S, "/proof/hashes/0")),
    invalid(T, "hash-short", set_("/proof/hashes", [HEX[:62]]), (S, "/proof/hashes/0")),
    invalid(T, "too-many-hashes", set_("/proof/hashes", [HEX] * 65), (S, "/proof/hashes")),
    invalid(T, "checkpoint-empty", set_("/proof/checkpoint", ""), (S, "/proof/checkpoint")),
    invalid(T, "checkpoint-long", set_("/proof/checkpoint", "x" * 8193), (S, "/proof/checkpoint")),
    # 2731 characters pass the schema's count, but they are 8193 bytes of UTF-8.
    invalid(
        T,
        "checkpoint-bytes",
        set_("/proof/checkpoint", EM_DASH * 2731),
        (M, "/proof/checkpoint"),
    ),
    invalid(T, "proof-missing-member", delete("/proof/checkpoint"), (S, "/proof/checkpoint")),
    invalid(T, "proof-unknown-member", set_("/proof/root", HEX), (S, "/proof/root")),
    invalid(T, "proof-not-object", set_("/proof", [1, 2]), (S, "/proof")),
    raw_case(T, "not-json", b'{"outcome": "accepted"', ("E_PARSE", "")),
    raw_case(
        T,
        "duplicate-member",
        b'{"outcome": "accepted", "outcome": "rejected"}',
        ("E_PARSE", ""),
    ),
]
