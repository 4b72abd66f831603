"""Signed notes, checkpoints, cosignatures and forks: known answers, malformed-note and
forged-signature tables (one defect per case, exact error code), fork detection."""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Callable

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)

from broker.audit.checkpoint import (
    COSIGNATURE_V1,
    MAX_NOTE_SIZE,
    MAX_SIGNATURES,
    SIG_ED25519,
    Checkpoint,
    InvalidNoteSignature,
    Note,
    NoteSignature,
    UnverifiedNote,
    add_signatures,
    check_fork,
    cosign,
    cosignature_message,
    is_valid_key_name,
    key_id,
    open_checkpoint,
    open_note,
    origin_for,
    parse_note,
    sign_checkpoint,
    verify_cosignature,
    verify_cosignatures,
)
from broker.audit.merkle import MerkleLevels, leaf_hash
from broker.errors import AuditBundle, AuditError, AuditFork, AuditProof, AuditSignature


def _key(seed: int) -> Ed25519PrivateKey:
    return Ed25519PrivateKey.from_private_bytes(bytes([seed]) * 32)


LOG_NAME = "AT.247#sig-eb8f1cccda423f9d"
LOG_KEY = _key(1)
OTHER_LOG_KEY = _key(2)
WITNESS_NAME = "DE.CA#sig-0123456789abcdef"
WITNESS_KEY = _key(3)
SECOND_WITNESS_NAME = "FR.PNAT#sig-fedcba9876543210"
SECOND_WITNESS_KEY = _key(4)
ORIGIN = "evb/AT.247"
ROOT = hashlib.sha256(b"root").digest()
CHECKPOINT = Checkpoint(ORIGIN, 1_048_576, ROOT)
VERIFIERS: dict[str, Ed25519PublicKey] = {LOG_NAME: LOG_KEY.public_key()}
WITNESSES: dict[str, Ed25519PublicKey] = {
    WITNESS_NAME: WITNESS_KEY.public_key(),
    SECOND_WITNESS_NAME: SECOND_WITNESS_KEY.public_key(),
}
NOTE = sign_checkpoint(CHECKPOINT, LOG_NAME, LOG_KEY)
TIME = 1_700_000_000


def _signature(text: bytes, name: str = LOG_NAME, key: Ed25519PrivateKey = LOG_KEY) -> bytes:
    """A valid Ed25519 note signature line over any text (even text that is no checkpoint)."""
    return NoteSignature(name, key_id(name, key.public_key()), key.sign(text)).line()


def _signed(text: bytes) -> bytes:
    return text + b"\n" + _signature(text)


def _expect(code: str, call: Callable[[], object]) -> AuditError:
    with pytest.raises(AuditError) as caught:
        call()
    assert caught.value.code == code, caught.value
    return caught.value


# -- known answers from the specifications ----------------------------------------------

# golang.org/x/mod/sumdb/note's documented example key and note.
NEUMANN_SKEY = "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz"
NEUMANN_VKEY = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"
NEUMANN_TEXT = (
    b"If you think cryptography is the answer to your problem,\n"
    b"then you don't know what your problem is.\n"
)
NEUMANN_LINE = (
    "\u2014 PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZ"
    "SNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n"
).encode()


def test_sumdb_note_known_answer() -> None:
    seed = base64.b64decode(NEUMANN_SKEY.split("+", 4)[-1])
    public = base64.b64decode(NEUMANN_VKEY.split("+", 2)[-1])
    assert seed[0] == public[0] == SIG_ED25519
    private = Ed25519PrivateKey.from_private_bytes(seed[1:])
    assert private.public_key().public_bytes_raw() == public[1:]
    assert key_id("PeterNeumann", private.public_key()).hex() == "c74f20a3"
    # Ed25519 is deterministic: the same line, byte for byte.
    assert _signature(NEUMANN_TEXT, "PeterNeumann", private) == NEUMANN_LINE
    note = open_note(NEUMANN_TEXT + b"\n" + NEUMANN_LINE, {"PeterNeumann": private.public_key()})
    assert note.text == NEUMANN_TEXT


def test_signed_note_spec_example_splits_at_the_last_blank_line() -> None:
    example = (
        "Ognuno sta solo sul cuor della terra\ntrafitto da un raggio di sole:\n\n"
        "ed è subito sera.\n\n"
        "— quasimodo.example/salvatore NnugSzTjtVAewIS+Z/iJhUPeFDkO/5QQ2i5ddnGITLlC+EhfLW9oJ"
        "KONrMouFSQU0xMcXxj99ihAQwaqP3ZekRwNtIc=\n"
    ).encode()
    note = parse_note(example)
    assert note.text.endswith(b"\n\ned \xc3\xa8 subito sera.\n")
    assert [s.name for s in note.signatures] == ["quasimodo.example/salvatore"]
    assert len(note.signatures[0].signature) == 64
    assert note.to_bytes() == example


def test_cosignature_spec_example_framing() -> None:
    # c2sp.org/tlog-cosignature publishes no key for its example: check the framing.
    example = (
        "example.com/behind-the-sofa\n20852163\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n\n"
        "— example.com/behind-the-sofa Az3grlgtzPICa5OS8npVmf1Myq/5IZniMp+ZJurmRDeOoRDe4URYN7u5"
        "/Zhcyv2q1gGzGku9nTo+zyWE+xeMcTOAYQ8=\n"
        "— witness.example.com/w1 jWbPPwAAAABkGFDLEZMHwSRaJNiIDoe9DYn/zXcrtPHeolMI5OWXEhZCB9dlr"
        "DJsX3b2oyin1nPZqhf5nNo0xUe+mbIUBkBIfZ+qnA==\n"
    ).encode()
    note = parse_note(example)
    checkpoint = Checkpoint.from_body(note.text)
    assert (checkpoint.origin, checkpoint.size) == ("example.com/behind-the-sofa", 20852163)
    witness = note.signatures[1]
    assert witness.key_id.hex() == "8d66cf3f"
    assert len(witness.signature) == 8 + 64
    assert int.from_bytes(witness.signature[:8], "big") == 1679315147
    assert cosignature_message(note.text, 1679315147) == (
        b"cosignature/v1\ntime 1679315147\nexample.com/behind-the-sofa\n20852163\n"
        b"CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n"
    )


def test_key_ids_separate_signature_types() -> None:
    public = WITNESS_KEY.public_key()
    raw = public.public_bytes_raw()
    name = WITNESS_NAME.encode()
    assert key_id(WITNESS_NAME, public) == hashlib.sha256(name + b"\n\x01" + raw).digest()[:4]
    assert (
        key_id(WITNESS_NAME, public, COSIGNATURE_V1)
        == hashlib.sha256(name + b"\n\x04" + raw).digest()[:4]
    )


@pytest.mark.parametrize(
    ("name", "valid"),
    [
        (LOG_NAME, True),
        ("evb/AT.247", True),
        ("witness.example.com/w1", True),
        ("", False),
        ("a b", False),
        ("a+b", False),
        ("a\u00a0b", False),  # no-break space
        ("a\u2003b", False),  # em space
        ("a\tb", False),
        ("a\x7fb", False),
    ],
)
def test_key_names(name: str, valid: bool) -> None:
    assert is_valid_key_name(name) is valid


def test_origin_for() -> None:
    assert origin_for("AT.247") == ORIGIN
    with pytest.raises(ValueError, match="participant"):
        origin_for("at 247")


# -- checkpoints: round trips --------------------------------------------------------------


def test_sign_and_open() -> None:
    assert (
        b"evb/AT.247\n1048576\n" + base64.b64encode(ROOT) + b"\n\n" + _signature(CHECKPOINT.body())
    ) == NOTE
    assert open_checkpoint(NOTE, VERIFIERS) == CHECKPOINT
    assert open_checkpoint(NOTE, VERIFIERS, origin=ORIGIN) == CHECKPOINT


@pytest.mark.parametrize(
    "checkpoint",
    [
        Checkpoint(ORIGIN, 0, hashlib.sha256(b"").digest()),
        Checkpoint(ORIGIN, 2**64 - 1, ROOT),
        Checkpoint(ORIGIN, 7, ROOT, ("extension one", "— two")),
    ],
    ids=["empty", "largest", "extensions"],
)
def test_checkpoint_round_trip(checkpoint: Checkpoint) -> None:
    assert Checkpoint.from_body(checkpoint.body()) == checkpoint
    note = sign_checkpoint(checkpoint, LOG_NAME, LOG_KEY)
    assert open_checkpoint(note, VERIFIERS) == checkpoint


def test_unknown_signatures_and_cosignatures_are_ignored() -> None:
    note = add_signatures(
        NOTE,
        [
            _signature(CHECKPOINT.body(), "someone.else", OTHER_LOG_KEY),
            cosign(CHECKPOINT, WITNESS_NAME, WITNESS_KEY, TIME),
        ],
    )
    assert open_checkpoint(note, VERIFIERS) == CHECKPOINT


def test_a_rotated_log_key_verifies_alone() -> None:
    rotated = {LOG_NAME: OTHER_LOG_KEY.public_key(), "AT.247#sig-new": LOG_KEY.public_key()}
    both = add_signatures(NOTE, [_signature(CHECKPOINT.body(), "AT.247#sig-new", LOG_KEY)])
    assert open_checkpoint(both, {"AT.247#sig-new": LOG_KEY.public_key()}) == CHECKPOINT
    # Same name, other key: the line is another key's (key id differs) and is ignored.
    error = _expect("E_AUDIT_SIG", lambda: open_checkpoint(NOTE, {LOG_NAME: rotated[LOG_NAME]}))
    assert isinstance(error, UnverifiedNote)


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        (("", 1, ROOT), "origin"),
        (("evb/AT 247", 1, ROOT), "origin"),
        (("evb/AT+247", 1, ROOT), "origin"),
        ((ORIGIN, -1, ROOT), "size"),
        ((ORIGIN, 2**64, ROOT), "size"),
        ((ORIGIN, True, ROOT), "size"),
        ((ORIGIN, 1, ROOT[:31]), "root hash"),
    ],
)
def test_checkpoint_fields(fields: tuple[str, int, bytes], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Checkpoint(*fields)
    with pytest.raises(ValueError, match="extension"):
        Checkpoint(ORIGIN, 1, ROOT, ("",))
    with pytest.raises(ValueError, match="key name"):
        sign_checkpoint(CHECKPOINT, "AT 247", LOG_KEY)


# -- malformed notes: each case one defect, each AuditBundle ----------------------------

BODY = CHECKPOINT.body()
SIG_LINE = _signature(BODY)
B64_ROOT = base64.b64encode(ROOT)


def _sig_with_payload(payload: bytes, name: str = LOG_NAME) -> bytes:
    return f"\u2014 {name} ".encode() + payload + b"\n"


_PAYLOAD = SIG_LINE.split(b" ")[-1].rstrip(b"\n")
_ALPHABET = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"


def _stray_bits(b64: bytes) -> bytes:
    """Set an unused low bit of the last symbol: decodes to the same bytes, not canonical."""
    assert b64.endswith(b"=") and not b64.endswith(b"==")  # 2 unused bits in the last symbol
    last = _ALPHABET.index(b64[-2:-1])
    assert last & 0b11 == 0
    return b64[:-2] + _ALPHABET[last | 1 : (last | 1) + 1] + b"="


_RAW = base64.b64decode(_PAYLOAD)

MALFORMED_NOTES: dict[str, bytes] = {
    # The note as a whole.
    "no final newline": NOTE[:-1],
    "no blank line": BODY + SIG_LINE,
    "blank line but no signature": BODY + b"\n",
    "blank line after the signatures": NOTE + b"\n",
    "empty": b"",
    "CRLF line ends": NOTE.replace(b"\n", b"\r\n"),
    "tab in the text": _signed(b"evb/AT.247\n1\t\n" + B64_ROOT + b"\n"),
    "NUL in the text": NOTE.replace(b"1048576", b"104\x00576"),
    "not UTF-8": NOTE.replace(b"evb/AT.247", b"evb/AT.\xff47"),
    "larger than the limit": BODY + b"\n" + SIG_LINE * (MAX_NOTE_SIZE // len(SIG_LINE) + 1),
    # Signature lines.
    "hyphen instead of em dash": BODY + b"\n- " + SIG_LINE[4:],
    "em dash without space": BODY + b"\n" + SIG_LINE.replace(b"\xe2\x80\x94 ", b"\xe2\x80\x94"),
    "two spaces after the name": BODY + b"\n" + SIG_LINE.replace(b"9d ", b"9d  "),
    "trailing space": BODY + b"\n" + SIG_LINE[:-1] + b" \n",
    "no signature after the name": BODY + b"\n" + f"\u2014 {LOG_NAME}\n".encode(),
    "empty key name": BODY + b"\n" + _sig_with_payload(_PAYLOAD, ""),
    "plus in the key name": BODY + b"\n" + _sig_with_payload(_PAYLOAD, "AT.247+sig"),
    "no-break space in the key name": BODY + b"\n" + _sig_with_payload(_PAYLOAD, "AT.247\u00a0x"),
    "base64 without padding": BODY + b"\n" + _sig_with_payload(_PAYLOAD.rstrip(b"=")),
    "base64 with stray bits": BODY + b"\n" + _sig_with_payload(_stray_bits(_PAYLOAD)),
    "base64url alphabet": BODY
    + b"\n"
    + _sig_with_payload(base64.urlsafe_b64encode(b"\xfb\xff" + _RAW[2:])),
    "base64 with a line break": BODY
    + b"\n"
    + _sig_with_payload(_PAYLOAD[:40] + b"\n" + _PAYLOAD[40:]),
    "signature of four bytes": BODY + b"\n" + _sig_with_payload(base64.b64encode(_RAW[:4])),
    "the same key twice": NOTE + SIG_LINE,
    "the same key twice, other bytes": NOTE
    + _sig_with_payload(base64.b64encode(_RAW[:4] + b"\x00" * 64)),
    "too many signatures": BODY
    + b"\n"
    + b"".join(_sig_with_payload(_PAYLOAD, f"k{i}") for i in range(MAX_SIGNATURES + 1)),
    # The checkpoint body, validly signed so that only the body is wrong.
    "size with plus": _signed(b"evb/AT.247\n+5\n" + B64_ROOT + b"\n"),
    "size with leading zero": _signed(b"evb/AT.247\n05\n" + B64_ROOT + b"\n"),
    "size with underscore": _signed(b"evb/AT.247\n1_000\n" + B64_ROOT + b"\n"),
    "size with space": _signed(b"evb/AT.247\n 5\n" + B64_ROOT + b"\n"),
    "size negative": _signed(b"evb/AT.247\n-1\n" + B64_ROOT + b"\n"),
    "size in Arabic-Indic digits": _signed("evb/AT.247\n\u0665\n".encode() + B64_ROOT + b"\n"),
    "size in hex": _signed(b"evb/AT.247\n0x10\n" + B64_ROOT + b"\n"),
    "size beyond 64 bits": _signed(b"evb/AT.247\n18446744073709551616\n" + B64_ROOT + b"\n"),
    "size empty": _signed(b"evb/AT.247\n\n" + B64_ROOT + b"\n"),
    "root hash unpadded": _signed(b"evb/AT.247\n5\n" + B64_ROOT.rstrip(b"=") + b"\n"),
    "root hash with stray bits": _signed(b"evb/AT.247\n5\n" + _stray_bits(B64_ROOT) + b"\n"),
    "root hash base64url": _signed(
        b"evb/AT.247\n5\n" + base64.urlsafe_b64encode(b"\xfb\xff" + ROOT[2:]) + b"\n"
    ),
    "root hash hex": _signed(b"evb/AT.247\n5\n" + ROOT.hex().encode() + b"\n"),
    "root hash of 31 bytes": _signed(b"evb/AT.247\n5\n" + base64.b64encode(ROOT[:31]) + b"\n"),
    "root hash of 33 bytes": _signed(b"evb/AT.247\n5\n" + base64.b64encode(ROOT + b"!") + b"\n"),
    "two lines only": _signed(b"evb/AT.247\n5\n"),
    "origin with space": _signed(b"evb/AT 247\n5\n" + B64_ROOT + b"\n"),
    "origin with plus": _signed(b"evb/AT+247\n5\n" + B64_ROOT + b"\n"),
    "origin empty": _signed(b"\n5\n" + B64_ROOT + b"\n"),
}


# What each case must be refused for, so that no case passes by failing another check.
REASONS = {
    "no final newline": "does not end in a newline",
    "no blank line": "no blank line",
    "blank line but no signature": "no signature",
    "blank line after the signatures": "no signature",  # the LAST blank line splits
    "empty": "does not end in a newline",
    "CRLF line ends": "control character",
    "tab in the text": "control character",
    "NUL in the text": "control character",
    "not UTF-8": "not UTF-8",
    "larger than the limit": "larger than",
    "hyphen instead of em dash": "em dash",
    "em dash without space": "em dash",
    "two spaces after the name": "is not '— <name> <signature>'",
    "trailing space": "is not '— <name> <signature>'",
    "no signature after the name": "is not '— <name> <signature>'",
    "empty key name": "invalid key name",
    "plus in the key name": "invalid key name",
    "no-break space in the key name": "invalid key name",
    "base64 without padding": "signature is not base64",
    "base64 with stray bits": "signature is not canonical base64",
    "base64url alphabet": "signature is not base64",
    "base64 with a line break": "em dash",
    "signature of four bytes": "shorter than a key id",
    "the same key twice": "signed the note twice",
    "the same key twice, other bytes": "signed the note twice",
    "too many signatures": "more than 100 signatures",
    "size with plus": "not a decimal",
    "size with leading zero": "not a decimal",
    "size with underscore": "not a decimal",
    "size with space": "not a decimal",
    "size negative": "not a decimal",
    "size in Arabic-Indic digits": "not a decimal",
    "size in hex": "not a decimal",
    "size beyond 64 bits": r"beyond 2\*\*64",
    "size empty": "empty line",
    "root hash unpadded": "root hash is not base64",
    "root hash with stray bits": "root hash is not canonical base64",
    "root hash base64url": "root hash is not base64",
    "root hash hex": "root hash is not 32 bytes",
    "root hash of 31 bytes": "root hash is not 32 bytes",
    "root hash of 33 bytes": "root hash is not 32 bytes",
    "two lines only": "fewer than three lines",
    "origin with space": "origin has spaces",
    "origin with plus": "origin has spaces",
    "origin empty": "empty line",
}


@pytest.mark.parametrize("name", MALFORMED_NOTES)
def test_malformed_note_is_refused(name: str) -> None:
    note = MALFORMED_NOTES[name]
    error = _expect("E_AUDIT_BUNDLE", lambda: open_checkpoint(note, VERIFIERS))
    assert type(error) is AuditBundle
    assert re.search(REASONS[name], error.message), error.message


def test_every_malformed_case_has_a_reason() -> None:
    assert REASONS.keys() == MALFORMED_NOTES.keys()


def test_the_table_mutates_a_valid_note() -> None:
    # Guard against a table that fails for a reason other than the one it names.
    assert open_checkpoint(_signed(BODY), VERIFIERS) == CHECKPOINT
    assert parse_note(BODY + b"\n" + _sig_with_payload(_PAYLOAD)).signatures[0].name == LOG_NAME
    five = Checkpoint(ORIGIN, 5, ROOT).body()
    assert five == b"evb/AT.247\n5\n" + B64_ROOT + b"\n"
    assert open_checkpoint(_signed(five), VERIFIERS).size == 5


# -- signatures: unknown keys vs invalid signatures ----------------------------------------

_FLIPPED = _RAW[:10] + bytes([_RAW[10] ^ 1]) + _RAW[11:]

SIGNATURE_CASES: dict[str, tuple[bytes, type[AuditSignature]]] = {
    "signed by an unknown key": (
        _signed(BODY).replace(SIG_LINE, _signature(BODY, "DE.CA#sig-x", OTHER_LOG_KEY)),
        UnverifiedNote,
    ),
    "known name, other key (key id differs)": (
        BODY + b"\n" + _signature(BODY, LOG_NAME, OTHER_LOG_KEY),
        UnverifiedNote,
    ),
    "known key id, other name": (
        BODY + b"\n" + _sig_with_payload(_PAYLOAD, "AT.247#sig-other"),
        UnverifiedNote,
    ),
    "only a cosignature": (
        BODY + b"\n" + cosign(CHECKPOINT, LOG_NAME, LOG_KEY, TIME),
        UnverifiedNote,
    ),
    "signature bit flipped": (
        BODY + b"\n" + _sig_with_payload(base64.b64encode(_FLIPPED)),
        InvalidNoteSignature,
    ),
    "text altered after signing": (NOTE.replace(b"1048576", b"1048577"), InvalidNoteSignature),
    "signature of 65 bytes": (
        BODY + b"\n" + _sig_with_payload(base64.b64encode(_RAW + b"\x00")),
        InvalidNoteSignature,
    ),
    "valid signature beside an invalid one of another known key": (
        NOTE + _signature(b"something else\n", "AT.247#sig-2", OTHER_LOG_KEY),
        InvalidNoteSignature,
    ),
    "signed over the text with the blank line": (
        BODY + b"\n" + _signature(BODY + b"\n"),
        InvalidNoteSignature,
    ),
}


@pytest.mark.parametrize(("note", "error"), SIGNATURE_CASES.values(), ids=SIGNATURE_CASES.keys())
def test_bad_signature_is_refused(note: bytes, error: type[AuditSignature]) -> None:
    verifiers = {**VERIFIERS, "AT.247#sig-2": OTHER_LOG_KEY.public_key()}
    caught = _expect("E_AUDIT_SIG", lambda: open_checkpoint(note, verifiers))
    assert type(caught) is error


def test_unverified_note_lists_the_unknown_names() -> None:
    note = add_signatures(
        _signed(BODY).replace(SIG_LINE, _signature(BODY, "DE.CA#sig-x", OTHER_LOG_KEY)),
        [cosign(CHECKPOINT, WITNESS_NAME, WITNESS_KEY, TIME)],
    )
    error = _expect("E_AUDIT_SIG", lambda: open_checkpoint(note, VERIFIERS))
    assert isinstance(error, UnverifiedNote)
    assert error.unknown == ("DE.CA#sig-x", WITNESS_NAME)


def test_invalid_signature_names_the_key() -> None:
    error = _expect(
        "E_AUDIT_SIG", lambda: open_checkpoint(NOTE.replace(b"1048576", b"1"), VERIFIERS)
    )
    assert isinstance(error, InvalidNoteSignature)
    assert error.name == LOG_NAME


def test_checkpoint_of_another_log() -> None:
    other = sign_checkpoint(Checkpoint("evb/DE.CA", 5, ROOT), LOG_NAME, LOG_KEY)
    assert open_checkpoint(other, VERIFIERS).origin == "evb/DE.CA"
    caught = _expect("E_AUDIT_SIG", lambda: open_checkpoint(other, VERIFIERS, origin=ORIGIN))
    assert type(caught) is AuditSignature


def test_malformed_body_is_reported_only_after_a_valid_signature() -> None:
    # The text means nothing until signed: a bad signature wins over a bad body.
    bad_body = b"evb/AT.247\n05\n" + B64_ROOT + b"\n"
    forged = bad_body + b"\n" + _signature(bad_body, LOG_NAME, OTHER_LOG_KEY)
    _expect("E_AUDIT_SIG", lambda: open_checkpoint(forged, VERIFIERS))
    _expect("E_AUDIT_BUNDLE", lambda: open_checkpoint(_signed(bad_body), VERIFIERS))


# -- adding signatures ----------------------------------------------------------------------


def test_add_signatures_replaces_the_same_key() -> None:
    first = cosign(CHECKPOINT, WITNESS_NAME, WITNESS_KEY, TIME)
    later = cosign(CHECKPOINT, WITNESS_NAME, WITNESS_KEY, TIME + 60)
    note = add_signatures(add_signatures(NOTE, [first]), [later, later])
    assert note == NOTE + later
    assert verify_cosignatures(note, WITNESSES) == {WITNESS_NAME: TIME + 60}
    parsed = parse_note(note)
    assert add_signatures(NOTE, parsed.signatures[1:]) == note
    assert Note(parsed.text, parsed.signatures).to_bytes() == note


@pytest.mark.parametrize(
    "line",
    [
        b"",
        SIG_LINE[:-1],
        SIG_LINE + SIG_LINE,
        b"\n",
        SIG_LINE.replace(b"\xe2\x80\x94", b"-"),
    ],
    ids=["empty", "no newline", "two lines", "blank", "hyphen"],
)
def test_add_signatures_refuses_malformed_lines(line: bytes) -> None:
    _expect("E_AUDIT_BUNDLE", lambda: add_signatures(NOTE, [line]))


# -- cosignatures -----------------------------------------------------------------------------


def test_cosign_and_verify() -> None:
    line = cosign(CHECKPOINT, WITNESS_NAME, WITNESS_KEY, TIME)
    # The checkpoint, its body or its note: the same message, the same (deterministic) line.
    assert cosign(BODY, WITNESS_NAME, WITNESS_KEY, TIME) == line
    assert cosign(NOTE, WITNESS_NAME, WITNESS_KEY, TIME) == line
    sig = parse_note(NOTE + line).signatures[1]
    assert sig.key_id == key_id(WITNESS_NAME, WITNESS_KEY.public_key(), COSIGNATURE_V1)
    assert sig.signature[:8] == TIME.to_bytes(8, "big")
    WITNESS_KEY.public_key().verify(sig.signature[8:], cosignature_message(BODY, TIME))
    for target in (CHECKPOINT, BODY, NOTE):
        assert verify_cosignature(target, line, WITNESS_NAME, WITNESS_KEY.public_key()) == TIME
    assert verify_cosignature(CHECKPOINT, sig, WITNESS_NAME, WITNESS_KEY.public_key()) == TIME
    assert (
        verify_cosignature(CHECKPOINT, line, WITNESS_NAME, WITNESS_KEY.public_key(), not_after=TIME)
        == TIME
    )


def test_quorum_of_witnesses() -> None:
    note = add_signatures(
        NOTE,
        [
            cosign(CHECKPOINT, WITNESS_NAME, WITNESS_KEY, TIME),
            cosign(CHECKPOINT, SECOND_WITNESS_NAME, SECOND_WITNESS_KEY, TIME + 1),
            cosign(CHECKPOINT, "XX.unknown#sig-1", OTHER_LOG_KEY, TIME),
        ],
    )
    assert verify_cosignatures(note, WITNESSES) == {
        WITNESS_NAME: TIME,
        SECOND_WITNESS_NAME: TIME + 1,
    }
    # The log's own signature is not a cosignature, even from a witness's name and key.
    assert verify_cosignatures(NOTE, {LOG_NAME: LOG_KEY.public_key()}) == {}


def _cosig_line(payload: bytes, name: str = WITNESS_NAME) -> bytes:
    kid = key_id(name, WITNESS_KEY.public_key(), COSIGNATURE_V1)
    return NoteSignature(name, kid, payload).line()


def _ts(value: int) -> bytes:
    return value.to_bytes(8, "big")


_GOOD = parse_note(NOTE + cosign(CHECKPOINT, WITNESS_NAME, WITNESS_KEY, TIME)).signatures[1]
OTHER_CHECKPOINT = Checkpoint(ORIGIN, 1_048_577, ROOT)

FORGED_COSIGNATURES: dict[str, tuple[Checkpoint, bytes, str]] = {
    "by another key under the witness's name": (
        CHECKPOINT,
        cosign(CHECKPOINT, WITNESS_NAME, OTHER_LOG_KEY, TIME),
        "E_AUDIT_SIG",
    ),
    "by the witness under another name": (
        CHECKPOINT,
        cosign(CHECKPOINT, SECOND_WITNESS_NAME, WITNESS_KEY, TIME),
        "E_AUDIT_SIG",
    ),
    "a note signature (type 0x01), not a cosignature": (
        CHECKPOINT,
        _signature(BODY, WITNESS_NAME, WITNESS_KEY),
        "E_AUDIT_SIG",
    ),
    "for another checkpoint": (
        OTHER_CHECKPOINT,
        cosign(CHECKPOINT, WITNESS_NAME, WITNESS_KEY, TIME),
        "E_AUDIT_SIG",
    ),
    "timestamp moved": (
        CHECKPOINT,
        _cosig_line(_ts(TIME + 1) + _GOOD.signature[8:]),
        "E_AUDIT_SIG",
    ),
    "signature bit flipped": (
        CHECKPOINT,
        _cosig_line(_GOOD.signature[:20] + bytes([_GOOD.signature[20] ^ 4]) + _GOOD.signature[21:]),
        "E_AUDIT_SIG",
    ),
    "signed without the cosignature/v1 header": (
        CHECKPOINT,
        _cosig_line(_ts(TIME) + WITNESS_KEY.sign(b"time %d\n" % TIME + BODY)),
        "E_AUDIT_SIG",
    ),
    "signed over the body alone": (
        CHECKPOINT,
        _cosig_line(_ts(TIME) + WITNESS_KEY.sign(BODY)),
        "E_AUDIT_SIG",
    ),
    "no timestamp": (CHECKPOINT, _cosig_line(_GOOD.signature[8:]), "E_AUDIT_SIG"),
    "timestamp beyond 2**63 - 1": (
        CHECKPOINT,
        _cosig_line(_ts(2**63) + WITNESS_KEY.sign(b"cosignature/v1\ntime %d\n" % 2**63 + BODY)),
        "E_AUDIT_SIG",
    ),
    "dated in the future": (
        CHECKPOINT,
        cosign(CHECKPOINT, WITNESS_NAME, WITNESS_KEY, TIME + 3600),
        "E_AUDIT_SIG",
    ),
    "a line without its newline": (
        CHECKPOINT,
        cosign(CHECKPOINT, WITNESS_NAME, WITNESS_KEY, TIME)[:-1],
        "E_AUDIT_BUNDLE",
    ),
    "two lines": (
        CHECKPOINT,
        cosign(CHECKPOINT, WITNESS_NAME, WITNESS_KEY, TIME) * 2,
        "E_AUDIT_BUNDLE",
    ),
}


@pytest.mark.parametrize(
    ("checkpoint", "line", "code"), FORGED_COSIGNATURES.values(), ids=FORGED_COSIGNATURES.keys()
)
def test_forged_cosignature_is_refused(checkpoint: Checkpoint, line: bytes, code: str) -> None:
    public = WITNESS_KEY.public_key()
    _expect(
        code, lambda: verify_cosignature(checkpoint, line, WITNESS_NAME, public, not_after=TIME)
    )


@pytest.mark.parametrize(
    "name",
    [
        "for another checkpoint",
        "timestamp moved",
        "signature bit flipped",
        "signed without the cosignature/v1 header",
        "no timestamp",
        "timestamp beyond 2**63 - 1",
        "dated in the future",
    ],
)
def test_forged_cosignature_on_a_note_is_refused(name: str) -> None:
    checkpoint, line, _ = FORGED_COSIGNATURES[name]
    note = sign_checkpoint(checkpoint, LOG_NAME, LOG_KEY) + line
    error = _expect("E_AUDIT_SIG", lambda: verify_cosignatures(note, WITNESSES, not_after=TIME))
    assert isinstance(error, AuditSignature)


def test_cosign_refuses_what_is_not_a_checkpoint() -> None:
    _expect("E_AUDIT_BUNDLE", lambda: cosign(b"not a checkpoint\n", WITNESS_NAME, WITNESS_KEY, 1))
    _expect("E_AUDIT_BUNDLE", lambda: cosign(NOTE[:-1], WITNESS_NAME, WITNESS_KEY, 1))
    with pytest.raises(ValueError, match="timestamp"):
        cosign(CHECKPOINT, WITNESS_NAME, WITNESS_KEY, -1)
    with pytest.raises(ValueError, match="key name"):
        cosign(CHECKPOINT, "a+b", WITNESS_KEY, 1)


# -- forks --------------------------------------------------------------------------------

HASHES = [leaf_hash(b"entry %d" % i) for i in range(20)]
HONEST = MerkleLevels(HASHES)
FORKED = MerkleLevels([*HASHES[:3], leaf_hash(b"rewritten"), *HASHES[4:]])


def _cp(levels: MerkleLevels, size: int) -> Checkpoint:
    return Checkpoint(ORIGIN, size, levels.root(size))


def test_consistent_checkpoints_pass_in_either_order() -> None:
    old, new = _cp(HONEST, 7), _cp(HONEST, 20)
    proof = HONEST.consistency_proof(7, 20)
    check_fork(old, new, proof)
    check_fork(new, old, proof)
    check_fork(new, new, [])


FORK_CASES: dict[str, tuple[Checkpoint, Checkpoint, list[bytes], str]] = {
    "same size, other root": (_cp(HONEST, 9), _cp(FORKED, 9), [], "E_AUDIT_FORK"),
    "rewritten history, the forked log's proof": (
        _cp(HONEST, 7),
        _cp(FORKED, 20),
        FORKED.consistency_proof(7, 20),
        "E_AUDIT_FORK",
    ),
    "rewritten history, the honest proof": (
        _cp(HONEST, 7),
        _cp(FORKED, 20),
        HONEST.consistency_proof(7, 20),
        "E_AUDIT_FORK",
    ),
    "proof bit flipped": (
        _cp(HONEST, 7),
        _cp(HONEST, 20),
        [HONEST.consistency_proof(7, 20)[0][:-1] + b"\x01", *HONEST.consistency_proof(7, 20)[1:]],
        "E_AUDIT_FORK",
    ),
    "no proof": (_cp(HONEST, 7), _cp(HONEST, 20), [], "E_AUDIT_FORK"),
    "proof between equal checkpoints": (
        _cp(HONEST, 9),
        _cp(HONEST, 9),
        [HASHES[0]],
        "E_AUDIT_PROOF",
    ),
}


@pytest.mark.parametrize(("a", "b", "proof", "code"), FORK_CASES.values(), ids=FORK_CASES.keys())
def test_fork_is_detected(a: Checkpoint, b: Checkpoint, proof: list[bytes], code: str) -> None:
    error = _expect(code, lambda: check_fork(a, b, proof))
    assert isinstance(error, AuditFork if code == "E_AUDIT_FORK" else AuditProof)


def test_fork_needs_one_log() -> None:
    with pytest.raises(ValueError, match="different logs"):
        check_fork(CHECKPOINT, Checkpoint("evb/DE.CA", 1, ROOT), [])


def test_errors_are_audit_errors() -> None:
    assert issubclass(UnverifiedNote, AuditSignature)
    assert issubclass(InvalidNoteSignature, AuditSignature)
    assert issubclass(AuditBundle, AuditError)
