"""Cases for ``audit.checkpoint`` and ``audit.cosignature`` (witnessing of the audit log).

The templates are a real exchange: ``AT.247`` signed a checkpoint of a 7-entry tree
(leaves ``example audit entry 0`` … ``6``, RFC 9162 leaf hashing) with a key that
was thrown away, and sent it with the consistency proof from size 3; ``DE.247``
cosigned it, also with a discarded key. Only public text is in the repository.

Every mutated note here is re-signed with a fixed test key, so each case fails only
the check it targets (no signature is verified by the forms, but a case must not
lean on that). Errors beyond the schema are ``E_SEMANTIC`` at the offending member.
"""

from __future__ import annotations

import base64

from cryptography.hazmat.primitives.asymmetric import ed25519

from broker.audit.checkpoint import (
    SIG_ED25519,
    Note,
    NoteSignature,
    add_signatures,
    cosign,
    key_id,
)
from tests.forms.cases import Case, delete, invalid, raw_case, set_, template, valid

T = "audit.checkpoint"
C = "audit.cosignature"
S = "E_SCHEMA"
M = "E_SEMANTIC"

HEX = "773885a613489e24ce2cf76199d6a423f042e4bbf12d7eecee912ef276c65701"
B64_HASH = base64.b64encode(bytes.fromhex(HEX)).decode()

# Fixed test keys (never used outside the tests).
LOG_KEY = ed25519.Ed25519PrivateKey.from_private_bytes(bytes(range(32)))
LOG_NAME = "AT.247#sig-0011223344556677"
WITNESS_KEY = ed25519.Ed25519PrivateKey.from_private_bytes(bytes(range(32, 64)))
WITNESS_NAME = "DE.247#sig-8899aabbccddeeff"
TIMESTAMP = 1772421247  # 2026-03-02T03:14:07Z

_TEMPLATE_NOTE = template(T)["checkpoint"]
ORIGIN, SIZE, ROOT = _TEMPLATE_NOTE.split("\n")[:3]


def body(origin: str = ORIGIN, size: str = SIZE, root: str = ROOT, *extensions: str) -> str:
    """Checkpoint text: the lines given, each ending in a newline."""
    return "".join(line + "\n" for line in (origin, size, root, *extensions))


def signature(text: str, name: str = LOG_NAME) -> NoteSignature:
    """The test log key's note signature over ``text``."""
    data = text.encode("utf-8")
    kid = key_id(name, LOG_KEY.public_key(), SIG_ED25519)
    return NoteSignature(name, kid, LOG_KEY.sign(data))


def signed(text: str) -> str:
    """``text`` as a signed note of the test log key (the text is not checked)."""
    return Note(text.encode("utf-8"), (signature(text),)).to_bytes().decode("utf-8")


def cosigned(note: str) -> str:
    """The test witness's cosignature line on ``note``, decoded."""
    return cosign(note.encode("utf-8"), WITNESS_NAME, WITNESS_KEY, TIMESTAMP).decode("utf-8")


def line(name: str, payload: bytes) -> str:
    """A signature line as text: em dash, name, base64 payload, newline."""
    return f"\u2014 {name} {base64.b64encode(payload).decode()}\n"


# An extension line pads the note to 8192 bytes of UTF-8 (every other line as the template).
_PAD = 8192 - len(signed(body(ORIGIN, SIZE, ROOT, "")).encode("utf-8"))
NOTE_8192 = signed(body(ORIGIN, SIZE, ROOT, "x" * _PAD))
# One byte more, but fewer than 8192 characters: the signature line's em dash is
# three bytes, so only the model (counting bytes) refuses it, not the schema.
NOTE_8193 = signed(body(ORIGIN, SIZE, ROOT, "x" * (_PAD + 1)))
assert len(NOTE_8192.encode()) == 8192 and len(NOTE_8193.encode()) == 8193
assert len(NOTE_8193) < 8192

PROOF_HASHES = template(T)["proof"]["hashes"]
NO_PROOF = [set_("/proof/from_size", 0), set_("/proof/hashes", [])]
REFUSED = [
    set_("/outcome", "refused"),
    delete("/cosignature"),
    set_("/code", "E_AUDIT_FORK"),
]
_WITNESS_KID = key_id(WITNESS_NAME, WITNESS_KEY.public_key(), 0x04)
_TIME = TIMESTAMP.to_bytes(8, "big")


CHECKPOINT_CASES: list[Case] = [
    valid(T),
    valid(T, "first-contact", *NO_PROOF),
    valid(T, "same-size", set_("/proof/from_size", 7), set_("/proof/hashes", [])),
    valid(T, "re-signed", set_("/checkpoint", signed(body()))),
    valid(
        T,
        "already-cosigned",
        set_(
            "/checkpoint",
            add_signatures(signed(body()).encode(), [cosigned(signed(body())).encode()]).decode(),
        ),
    ),
    valid(T, "size-one", set_("/checkpoint", signed(body(size="1"))), *NO_PROOF),
    valid(T, "largest-size", set_("/checkpoint", signed(body(size=str(2**53 - 1)))), *NO_PROOF),
    valid(T, "provider-log", set_("/checkpoint", signed(body(origin="evb/ISP.mailhost")))),
    valid(T, "extension-line", set_("/checkpoint", signed(body(ORIGIN, SIZE, ROOT, "ext")))),
    valid(T, "note-8-kib", set_("/checkpoint", NOTE_8192)),
    # The form does not check that the proof verifies (the witness does, with its tree).
    valid(T, "longest-proof", set_("/proof/hashes", [HEX] * 64)),
    # Members and types.
    invalid(T, "checkpoint-missing", delete("/checkpoint"), (S, "/checkpoint")),
    invalid(T, "checkpoint-empty", set_("/checkpoint", ""), (S, "/checkpoint")),
    invalid(T, "checkpoint-not-string", set_("/checkpoint", ["evb/AT.247"]), (S, "/checkpoint")),
    invalid(T, "checkpoint-long", set_("/checkpoint", "x" * 8193), (S, "/checkpoint")),
    invalid(T, "proof-missing", delete("/proof"), (S, "/proof")),
    invalid(T, "proof-null", set_("/proof", None), (S, "/proof")),
    invalid(T, "proof-not-object", set_("/proof", PROOF_HASHES), (S, "/proof")),
    invalid(T, "proof-unknown-member", set_("/proof/to_size", 7), (S, "/proof/to_size")),
    invalid(T, "from-size-missing", delete("/proof/from_size"), (S, "/proof/from_size")),
    invalid(T, "from-size-negative", set_("/proof/from_size", -1), (S, "/proof/from_size")),
    invalid(T, "from-size-fraction", set_("/proof/from_size", 3.0), (S, "/proof/from_size")),
    invalid(T, "from-size-string", set_("/proof/from_size", "3"), (S, "/proof/from_size")),
    invalid(T, "from-size-unsafe", set_("/proof/from_size", 2**53), (S, "/proof/from_size")),
    invalid(T, "hashes-missing", delete("/proof/hashes"), (S, "/proof/hashes")),
    invalid(T, "too-many-hashes", set_("/proof/hashes", [HEX] * 65), (S, "/proof/hashes")),
    invalid(T, "hash-upper", set_("/proof/hashes", [HEX.upper()]), (S, "/proof/hashes/0")),
    invalid(T, "hash-base64", set_("/proof/hashes", [B64_HASH]), (S, "/proof/hashes/0")),
    invalid(T, "hash-short", set_("/proof/hashes", [HEX, HEX[:62]]), (S, "/proof/hashes/1")),
    invalid(T, "unknown-member", set_("/tree_size", 7), (S, "/tree_size")),
    # The envelope carries case and in_reply_to: not repeated here.
    invalid(T, "repeats-case", set_("/case", "01963a6e-9c4b-7d2e-8f10-3b5a7c9e1d43"), (S, "/case")),
    # The note: strict signed-note syntax, at most 8192 bytes of UTF-8.
    invalid(T, "note-8193-bytes", set_("/checkpoint", NOTE_8193), (M, "/checkpoint")),
    invalid(T, "not-a-note", set_("/checkpoint", "checkpoint"), (M, "/checkpoint")),
    invalid(T, "unsigned", set_("/checkpoint", body()), (M, "/checkpoint")),
    invalid(T, "no-signature", set_("/checkpoint", body() + "\n"), (M, "/checkpoint")),
    invalid(T, "no-final-newline", set_("/checkpoint", signed(body())[:-1]), (M, "/checkpoint")),
    invalid(
        T,
        "crlf",
        set_("/checkpoint", signed(body()).replace("\n", "\r\n")),
        (M, "/checkpoint"),
    ),
    invalid(
        T,
        "signature-not-canonical",
        # The last base64 digit of a 68-byte payload carries two unused bits: set them.
        set_("/checkpoint", signed(body())[:-3] + "B=\n"),
        (M, "/checkpoint"),
    ),
    invalid(
        T,
        "signed-twice-by-one-key",
        set_("/checkpoint", signed(body()) + signature(body()).line().decode()),
        (M, "/checkpoint"),
    ),
    invalid(
        T,
        "signature-hyphen",
        set_("/checkpoint", signed(body()).replace("\u2014", "-")),
        (M, "/checkpoint"),
    ),
    # The checkpoint text.
    invalid(T, "two-lines", set_("/checkpoint", signed(ORIGIN + "\n7\n")), (M, "/checkpoint")),
    invalid(
        T, "size-leading-zero", set_("/checkpoint", signed(body(size="07"))), (M, "/checkpoint")
    ),
    invalid(T, "size-plus", set_("/checkpoint", signed(body(size="+7"))), (M, "/checkpoint")),
    invalid(
        T, "size-underscore", set_("/checkpoint", signed(body(size="1_0"))), (M, "/checkpoint")
    ),
    invalid(T, "root-hex", set_("/checkpoint", signed(body(root=HEX))), (M, "/checkpoint")),
    invalid(
        T,
        "root-short",
        set_("/checkpoint", signed(body(root=ROOT[:40] + "=="))),
        (M, "/checkpoint"),
    ),
    invalid(
        T, "root-unpadded", set_("/checkpoint", signed(body(root=ROOT[:-1]))), (M, "/checkpoint")
    ),
    invalid(
        T,
        "empty-extension",
        set_("/checkpoint", signed(body() + "\n" + "ext\n")),
        (M, "/checkpoint"),
    ),
    # Whose log: evb/<participant id>.
    invalid(
        T,
        "origin-foreign",
        set_("/checkpoint", signed(body(origin="example.org/log"))),
        (M, "/checkpoint"),
    ),
    invalid(
        T, "origin-bare-id", set_("/checkpoint", signed(body(origin="AT.247"))), (M, "/checkpoint")
    ),
    invalid(
        T,
        "origin-lower",
        set_("/checkpoint", signed(body(origin="evb/at.247"))),
        (M, "/checkpoint"),
    ),
    invalid(
        T,
        "origin-prefix-only",
        set_("/checkpoint", signed(body(origin="evb/"))),
        (M, "/checkpoint"),
    ),
    invalid(
        T,
        "origin-with-space",
        set_("/checkpoint", signed(body(origin="evb/AT 247"))),
        (M, "/checkpoint"),
    ),
    # A size a witness can answer about.
    invalid(
        T, "size-zero", [set_("/checkpoint", signed(body(size="0"))), *NO_PROOF], (M, "/checkpoint")
    ),
    invalid(
        T,
        "size-unsafe",
        [set_("/checkpoint", signed(body(size=str(2**53)))), *NO_PROOF],
        (M, "/checkpoint"),
    ),
    # The proof against the checkpoint's size.
    invalid(T, "from-beyond-size", set_("/proof/from_size", 8), (M, "/proof/from_size")),
    invalid(
        T,
        "from-beyond-size-no-hashes",
        [set_("/proof/from_size", 8), set_("/proof/hashes", [])],
        (M, "/proof/from_size"),
    ),
    invalid(T, "from-nothing-with-hashes", set_("/proof/from_size", 0), (M, "/proof/hashes")),
    invalid(T, "same-size-with-hashes", set_("/proof/from_size", 7), (M, "/proof/hashes")),
    invalid(T, "smaller-without-hashes", set_("/proof/hashes", []), (M, "/proof/hashes")),
    raw_case(T, "not-json", b'{"checkpoint": "evb/AT.247', ("E_PARSE", "")),
    raw_case(T, "duplicate-member", b'{"checkpoint": "a", "checkpoint": "b"}', ("E_PARSE", "")),
]


COSIGNATURE_CASES: list[Case] = [
    valid(C),
    valid(C, "refused", *REFUSED, set_("/reason", "the proof does not join the last tree seen")),
    valid(C, "refused-no-reason", *REFUSED),
    # A witness may refuse a tree smaller than the one it knows, or know none at all.
    valid(C, "refused-behind", *REFUSED, set_("/known_size", 9)),
    valid(C, "refused-knows-nothing", *REFUSED, set_("/known_size", 0)),
    valid(C, "known-beyond", set_("/known_size", 9)),
    valid(C, "re-cosigned", set_("/cosignature", cosigned(_TEMPLATE_NOTE))),
    valid(C, "provider-log", set_("/origin", "evb/ISP.mailhost")),
    valid(C, "largest-size", set_("/tree_size", 2**53 - 1), set_("/known_size", 2**53 - 1)),
    valid(C, "code-longest", *REFUSED, set_("/code", "E_" + "A" * 40)),
    # cosignature iff cosigned, code iff refused, reason only when refused.
    invalid(C, "cosigned-without-cosignature", delete("/cosignature"), (S, "/cosignature")),
    invalid(C, "cosigned-with-code", set_("/code", "E_AUDIT_FORK"), (S, "/code")),
    invalid(C, "cosigned-with-reason", set_("/reason", "fine"), (S, "/reason")),
    invalid(C, "refused-without-code", [*REFUSED, delete("/code")], (S, "/code")),
    invalid(
        C,
        "refused-with-cosignature",
        [*REFUSED, set_("/cosignature", cosigned(_TEMPLATE_NOTE))],
        (S, "/cosignature"),
    ),
    invalid(
        C,
        "refused-with-both-wrong",
        [*REFUSED, delete("/code"), set_("/cosignature", cosigned(_TEMPLATE_NOTE))],
        (S, "/code"),
        (S, "/cosignature"),
    ),
    invalid(C, "outcome-unknown", set_("/outcome", "accepted"), (S, "/outcome")),
    invalid(C, "outcome-missing", delete("/outcome"), (S, "/outcome")),
    invalid(C, "outcome-upper", set_("/outcome", "Cosigned"), (S, "/outcome")),
    # Which checkpoint.
    invalid(C, "origin-missing", delete("/origin"), (S, "/origin")),
    invalid(C, "origin-bare-id", set_("/origin", "AT.247"), (S, "/origin")),
    invalid(C, "origin-lower", set_("/origin", "evb/at.247"), (S, "/origin")),
    invalid(C, "origin-foreign", set_("/origin", "example.org/log"), (S, "/origin")),
    invalid(C, "origin-newline", set_("/origin", "evb/AT.247\n"), (S, "/origin")),
    invalid(C, "tree-size-zero", set_("/tree_size", 0), (S, "/tree_size")),
    invalid(C, "tree-size-unsafe", set_("/tree_size", 2**53), (S, "/tree_size")),
    invalid(C, "tree-size-fraction", set_("/tree_size", 7.0), (S, "/tree_size")),
    invalid(C, "root-upper", set_("/root_hash", HEX.upper()), (S, "/root_hash")),
    invalid(C, "root-base64", set_("/root_hash", B64_HASH), (S, "/root_hash")),
    invalid(C, "root-missing", delete("/root_hash"), (S, "/root_hash")),
    invalid(C, "known-missing", delete("/known_size"), (S, "/known_size")),
    invalid(C, "known-negative", [*REFUSED, set_("/known_size", -1)], (S, "/known_size")),
    invalid(C, "known-string", set_("/known_size", "7"), (S, "/known_size")),
    # Stable error codes, short reasons.
    invalid(C, "code-lower", [*REFUSED, set_("/code", "E_audit_fork")], (S, "/code")),
    invalid(C, "code-no-prefix", [*REFUSED, set_("/code", "AUDIT_FORK")], (S, "/code")),
    invalid(C, "reason-two-lines", [*REFUSED, set_("/reason", "one\ntwo")], (S, "/reason")),
    invalid(C, "reason-empty", [*REFUSED, set_("/reason", "")], (S, "/reason")),
    invalid(C, "explicit-null", set_("/code", None), (S, "/code")),
    invalid(C, "unknown-member", set_("/timestamp", TIMESTAMP), (S, "/timestamp")),
    invalid(
        C,
        "repeats-in-reply-to",
        set_("/in_reply_to", "01963a6e-9c4b-7d2e-8f10-3b5a7c9e1d43"),
        (S, "/in_reply_to"),
    ),
    # The cosignature line: its shape in the schema ...
    invalid(
        C,
        "line-no-newline",
        set_("/cosignature", cosigned(_TEMPLATE_NOTE)[:-1]),
        (S, "/cosignature"),
    ),
    invalid(
        C,
        "line-two-lines",
        set_("/cosignature", cosigned(_TEMPLATE_NOTE) * 2),
        (S, "/cosignature"),
    ),
    invalid(
        C,
        "line-hyphen",
        set_("/cosignature", "-" + cosigned(_TEMPLATE_NOTE)[1:]),
        (S, "/cosignature"),
    ),
    invalid(
        C,
        "line-base64url",
        set_("/cosignature", line(WITNESS_NAME, b"\xfb" * 76).replace("+", "-")),
        (S, "/cosignature"),
    ),
    invalid(
        C,
        "line-too-long",
        set_("/cosignature", line("W" * 4000, _WITNESS_KID + _TIME + bytes(64))),
        (S, "/cosignature"),
    ),
    # ... and what the signed-note parser and tlog-cosignature v1 add.
    invalid(
        C,
        "line-not-canonical",
        set_("/cosignature", cosigned(_TEMPLATE_NOTE)[:-4] + "B==\n"),
        (M, "/cosignature"),
    ),
    invalid(
        C,
        "line-name-plus",
        set_("/cosignature", line("DE.247+1", _WITNESS_KID + _TIME + bytes(64))),
        (M, "/cosignature"),
    ),
    invalid(
        C,
        "line-name-tab",
        set_("/cosignature", line("DE.247\t1", _WITNESS_KID + _TIME + bytes(64))),
        (M, "/cosignature"),
    ),
    invalid(
        C,
        "line-name-unicode-space",
        set_("/cosignature", line("DE.247\u00a01", _WITNESS_KID + _TIME + bytes(64))),
        (M, "/cosignature"),
    ),
    invalid(
        C,
        "line-is-a-note-signature",
        set_("/cosignature", signature(body()).line().decode()),
        (M, "/cosignature"),
    ),
    invalid(
        C,
        "line-key-id-only",
        set_("/cosignature", line(WITNESS_NAME, _WITNESS_KID + b"\x00")),
        (M, "/cosignature"),
    ),
    invalid(
        C,
        "line-timestamp-beyond",
        set_(
            "/cosignature",
            line(WITNESS_NAME, _WITNESS_KID + (2**63).to_bytes(8, "big") + bytes(64)),
        ),
        (M, "/cosignature"),
    ),
    # Having cosigned the tree, the witness knows at least that size.
    invalid(C, "known-behind", set_("/known_size", 6), (M, "/known_size")),
    invalid(C, "known-nothing", set_("/known_size", 0), (M, "/known_size")),
    raw_case(C, "not-json", b'{"outcome": "cosigned"', ("E_PARSE", "")),
    raw_case(
        C, "duplicate-member", b'{"outcome": "cosigned", "outcome": "refused"}', ("E_PARSE", "")
    ),
]

CASES: list[Case] = CHECKPOINT_CASES + COSIGNATURE_CASES
