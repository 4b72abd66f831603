"""The witnessing rules, pure: what a witness cosigns, what a sender takes as proof.

Every attack of issue #7 on a peer's checkpoint (:func:`check_peer_checkpoint`) and on
a receipt's proof (:func:`check_receipt_proof`) is a row of a table that starts from a
valid fixture — a real log (:class:`MerkleLevels` over leaf hashes), checkpoints signed
with a generated Ed25519 key — and breaks one thing, re-signing where it must so that
each row fails only the check it targets, with its exact code. Nothing passes silently.
"""

from __future__ import annotations

import base64
import re
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)

from broker.audit.checkpoint import (
    SIG_ED25519,
    Checkpoint,
    Note,
    NoteSignature,
    key_id,
    origin_for,
    sign_checkpoint,
)
from broker.audit.entry import AuditEntry, entry_bytes, entry_leaf_hash
from broker.audit.merkle import MerkleLevels, leaf_hash
from broker.audit.witness import (
    KeptCheckpoint,
    channel_case,
    check_peer_checkpoint,
    check_receipt_proof,
    decode_hashes,
)
from broker.errors import AuditError

# -- the peer's log and its key ---------------------------------------------------------

PEER = "AT.247"
PEER_NAME = "AT.247#sig-0123456789abcdef"
PEER_KEY = Ed25519PrivateKey.generate()
OTHER_KEY = Ed25519PrivateKey.generate()
OTHER_NAME = "FR.247#sig-fedcba9876543210"
VERIFIERS: dict[str, Ed25519PublicKey] = {PEER_NAME: PEER_KEY.public_key()}

HONEST = MerkleLevels([leaf_hash(b"entry %d" % i) for i in range(16)])
# The same log, rewritten from leaf 3 on (a record removed, others added).
REWRITTEN = MerkleLevels(
    [leaf_hash(b"entry %d" % i) for i in range(3)]
    + [leaf_hash(b"rewritten %d" % i) for i in range(13)]
)
KNOWN = 5  # what the witness cosigned before: not a power of two, so proofs have work to do
NEW = 13


def _note(
    size: int,
    *,
    log: MerkleLevels = HONEST,
    key: Ed25519PrivateKey = PEER_KEY,
    name: str = PEER_NAME,
    origin: str = origin_for(PEER),
) -> bytes:
    return sign_checkpoint(Checkpoint(origin, size, log.root(size)), name, key)


def _kept(size: int, log: MerkleLevels = HONEST) -> KeptCheckpoint:
    return KeptCheckpoint(size, log.root(size))


def _flip(data: bytes, index: int = 0) -> bytes:
    changed = bytearray(data)
    changed[index] ^= 1
    return bytes(changed)


def _signed_text(text: bytes, key: Ed25519PrivateKey = PEER_KEY, name: str = PEER_NAME) -> bytes:
    """A note over any text, validly signed by ``key`` (not necessarily a checkpoint)."""
    kid = key_id(name, key.public_key(), SIG_ED25519)
    return Note(text, (NoteSignature(name, kid, key.sign(text)),)).to_bytes()


def _b64(data: bytes) -> bytes:
    return base64.b64encode(data)


def _flip_log_signature(note: bytes) -> bytes:
    text, _, line = note.rpartition(b"\n\n")
    prefix, _, blob = line.rstrip(b"\n").rpartition(b" ")
    raw = _flip(base64.b64decode(blob), 10)  # past the 4-byte key id: the signature itself
    return text + b"\n\n" + prefix + b" " + base64.b64encode(raw) + b"\n"


# -- check_peer_checkpoint --------------------------------------------------------------


@dataclass(frozen=True)
class Attempt:
    """One call of check_peer_checkpoint: a checkpoint, its proof, the witness's state."""

    note: bytes
    from_size: int
    proof: Sequence[bytes]
    latest: KeptCheckpoint | None
    same_size: KeptCheckpoint | None
    verifiers: dict[str, Ed25519PublicKey] | None = None


def _first_sight(size: int = NEW) -> Attempt:
    return Attempt(_note(size), 0, (), None, None)


def _extension(old: int = KNOWN, new: int = NEW) -> Attempt:
    return Attempt(_note(new), old, HONEST.consistency_proof(old, new), _kept(old), None)


def _check(attempt: Attempt) -> Any:
    return check_peer_checkpoint(
        attempt.note,
        peer=PEER,
        verifiers=VERIFIERS if attempt.verifiers is None else attempt.verifiers,
        from_size=attempt.from_size,
        proof=attempt.proof,
        latest=attempt.latest,
        same_size=attempt.same_size,
    )


@pytest.mark.parametrize(
    ("attempt", "size", "seen"),
    [
        (_first_sight(), NEW, False),
        (_first_sight(1), 1, False),
        (_extension(), NEW, False),
        (_extension(8, NEW), NEW, False),  # from a perfect subtree: its root is implicit
        (_extension(KNOWN, 6), 6, False),
        (_extension(NEW - 1, NEW), NEW, False),
        # The one it cosigned, sent again: cosign again, keep nothing new.
        (Attempt(_note(KNOWN), KNOWN, (), _kept(KNOWN), _kept(KNOWN)), KNOWN, True),
    ],
    ids=[
        "first-sight",
        "first-sight-size-1",
        "extension",
        "extension-from-power-of-two",
        "extension-by-one-leaf",
        "extension-of-a-large-tree-by-one-leaf",
        "same-size-same-root",
    ],
)
def test_an_honest_checkpoint_is_accepted(attempt: Attempt, size: int, seen: bool) -> None:
    verified = _check(attempt)
    assert verified.seen is seen
    assert verified.checkpoint == Checkpoint(origin_for(PEER), size, HONEST.root(size))


def _proof(old: int = KNOWN, new: int = NEW) -> list[bytes]:
    return HONEST.consistency_proof(old, new)


def _with_proof(proof: Sequence[bytes], *, note: bytes | None = None) -> Attempt:
    return Attempt(_note(NEW) if note is None else note, KNOWN, proof, _kept(KNOWN), None)


_PROOF_LENGTH = len(_proof())
assert _PROOF_LENGTH >= 3, "the fixture's proof must have hashes to tamper with"

# Each row: the checkpoint and the witness's state, the code, and what the refusal says
# (so that a row cannot pass by failing at another check than the one it targets).
_FORK = r"is not shown to extend its tree at 5"
_UNSIGNED = r"no signature on the note is from a known key"

REFUSED = [
    # Rule 4: trust on first use is from nothing, not from a size the witness never saw.
    pytest.param(
        Attempt(_note(NEW), KNOWN, _proof(), None, None),
        "E_AUDIT_PROOF",
        r"holds no checkpoint of the log: prove from size 0",
        id="first-sight-with-from-size",
    ),
    # Rule 2: a second signed root for a size the witness cosigned is proof of a fork.
    pytest.param(
        Attempt(_note(KNOWN, log=REWRITTEN), KNOWN, (), _kept(NEW), _kept(KNOWN)),
        "E_AUDIT_FORK",
        r"two roots for size 5 of evb/AT\.247",
        id="same-size-other-root",
    ),
    pytest.param(
        Attempt(_note(NEW, log=REWRITTEN), NEW, (), _kept(NEW), _kept(NEW)),
        "E_AUDIT_FORK",
        r"two roots for size 13",
        id="same-size-as-latest-other-root",
    ),
    # Rule 4: the proof must start where the witness is.
    pytest.param(
        Attempt(_note(NEW), 4, _proof(4), _kept(KNOWN), None),
        "E_AUDIT_PROOF",
        r"starts at 4; this witness verified size 5",
        id="proof-from-a-smaller-size",
    ),
    pytest.param(
        Attempt(_note(NEW), 8, _proof(8), _kept(KNOWN), None),
        "E_AUDIT_PROOF",
        r"starts at 8; this witness verified size 5",
        id="proof-from-a-larger-size",
    ),
    pytest.param(
        Attempt(_note(NEW), 0, (), _kept(KNOWN), None),
        "E_AUDIT_PROOF",
        r"starts at 0; this witness verified size 5",
        id="proof-from-nothing",
    ),
    # Rule 3: never backwards, whatever proof comes with it.
    pytest.param(
        Attempt(_note(8), 8, (), _kept(NEW), None),
        "E_AUDIT_PROOF",
        r"\(8\) is older than the one verified \(13\)",
        id="stale",
    ),
    pytest.param(
        Attempt(_note(8), NEW, _proof(8, NEW), _kept(NEW), None),
        "E_AUDIT_PROOF",
        r"\(8\) is older than the one verified \(13\)",
        id="stale-with-a-proof-the-other-way",
    ),
    # Rule 5: a proof that does not join is a fork (fail closed, as check_fork).
    *[
        pytest.param(
            _with_proof([_flip(h) if j == i else h for j, h in enumerate(_proof())]),
            "E_AUDIT_FORK",
            _FORK,
            id=f"proof-hash-{i}-flipped",
        )
        for i in range(_PROOF_LENGTH)
    ],
    pytest.param(_with_proof(_proof()[:-1]), "E_AUDIT_FORK", _FORK, id="proof-truncated"),
    pytest.param(
        _with_proof([*_proof(), _proof()[0]]), "E_AUDIT_FORK", _FORK, id="proof-with-an-extra-hash"
    ),
    pytest.param(_with_proof(_proof()[::-1]), "E_AUDIT_FORK", _FORK, id="proof-reversed"),
    pytest.param(_with_proof(()), "E_AUDIT_FORK", _FORK, id="proof-empty"),
    pytest.param(
        _with_proof(_proof(KNOWN, NEW - 1)), "E_AUDIT_FORK", _FORK, id="proof-for-other-sizes"
    ),
    pytest.param(
        _with_proof([_proof()[0][:31], *_proof()[1:]]), "E_AUDIT_FORK", _FORK, id="proof-hash-short"
    ),
    # Between equal trees the proof must be empty (check_fork); here the witness's state
    # holds the size only as its latest.
    pytest.param(
        Attempt(_note(KNOWN), KNOWN, _proof(4, KNOWN), _kept(KNOWN), None),
        "E_AUDIT_PROOF",
        r"between equal trees must be empty",
        id="equal-size-non-empty-proof",
    ),
    # A rewritten log, bigger, with a correct proof of its own (or the honest one).
    pytest.param(
        _with_proof(REWRITTEN.consistency_proof(KNOWN, NEW), note=_note(NEW, log=REWRITTEN)),
        "E_AUDIT_FORK",
        _FORK,
        id="rewritten-with-its-own-proof",
    ),
    pytest.param(
        _with_proof(_proof(), note=_note(NEW, log=REWRITTEN)),
        "E_AUDIT_FORK",
        _FORK,
        id="rewritten-with-the-honest-proof",
    ),
    # Rule 1, checked first: an unsigned note proves nothing, not even a fork.
    pytest.param(
        _with_proof(_proof(), note=_note(NEW, key=OTHER_KEY)),
        "E_AUDIT_SIG",
        _UNSIGNED,
        id="signed-by-another-key",
    ),
    pytest.param(
        _with_proof(_proof(), note=_note(NEW, key=OTHER_KEY, name=OTHER_NAME)),
        "E_AUDIT_SIG",
        _UNSIGNED,
        id="signed-by-another-key-and-name",
    ),
    pytest.param(
        _with_proof(_proof(), note=_flip_log_signature(_note(NEW))),
        "E_AUDIT_SIG",
        r"the signature of AT\.247#sig-0123456789abcdef does not verify",
        id="signature-flipped",
    ),
    pytest.param(
        Attempt(_note(KNOWN, log=REWRITTEN, key=OTHER_KEY), KNOWN, (), _kept(KNOWN), _kept(KNOWN)),
        "E_AUDIT_SIG",
        _UNSIGNED,
        id="forged-second-root",
    ),
    pytest.param(
        Attempt(_note(NEW, key=OTHER_KEY, name=OTHER_NAME), 0, (), None, None),
        "E_AUDIT_SIG",
        _UNSIGNED,
        id="forged-first-sight",
    ),
    pytest.param(
        _with_proof(_proof(), note=_note(NEW, origin=origin_for("DE.247"))),
        "E_AUDIT_SIG",
        r"signed for another log",
        id="another-origin",
    ),
    pytest.param(
        replace(_extension(), verifiers={}),
        "E_AUDIT_SIG",
        _UNSIGNED,
        id="no-usable-key-of-the-peer",
    ),
    # Malformed notes: the pure check raises AuditBundle (E_AUDIT_BUNDLE). The node never
    # gets here with one: the audit.checkpoint form refuses it as E_SEMANTIC, and
    # Witnessing.check_checkpoint maps a syntax failure to E_AUDIT_SIG before this call.
    pytest.param(
        _with_proof(_proof(), note=b"not a note\n"),
        "E_AUDIT_BUNDLE",
        r"no blank line",
        id="not-a-note",
    ),
    pytest.param(
        _with_proof(_proof(), note=_note(NEW).split(b"\n\n")[0] + b"\n\n"),
        "E_AUDIT_BUNDLE",
        r"has no signature",
        id="unsigned-note",
    ),
    pytest.param(
        _with_proof(
            _proof(),
            note=_signed_text(b"evb/AT.247\nthirteen\n" + _b64(HONEST.root(NEW)) + b"\n"),
        ),
        "E_AUDIT_BUNDLE",
        r"tree size is not a decimal",
        id="signed-text-that-is-not-a-checkpoint",
    ),
]


@pytest.mark.parametrize(("attempt", "code", "why"), REFUSED)
def test_a_bad_checkpoint_is_refused_with_its_code(attempt: Attempt, code: str, why: str) -> None:
    with pytest.raises(AuditError, match=why) as caught:
        _check(attempt)
    assert caught.value.code == code


def test_an_older_checkpoint_cosigned_before_is_not_cosigned_again() -> None:
    attempt = Attempt(_note(KNOWN), KNOWN, (), _kept(NEW), _kept(KNOWN))
    with pytest.raises(AuditError, match=r"\(5\) is older than the one verified \(13\)") as caught:
        _check(attempt)
    assert caught.value.code == "E_AUDIT_PROOF"


def test_the_refusal_names_the_size_the_witness_knows() -> None:
    # The peer reads the size to prove from in the refusal's reason (and known_size).
    with pytest.raises(AuditError, match=rf"verified size {KNOWN}\b"):
        _check(Attempt(_note(NEW), 4, _proof(4), _kept(KNOWN), None))


# -- check_receipt_proof ----------------------------------------------------------------

RECEIVER = "AT.247"  # wrote the log, sent the receipt
SENDER = "DE.247"  # sent the message, checks the proof
MESSAGE = "019a0000-0000-7000-8000-000000000001"
OTHER_MESSAGE = "019a0000-0000-7000-8000-000000000002"
DIGEST = "d" * 64
OTHER_DIGEST = "e" * 64
AT = datetime(2026, 11, 25, 3, 0, tzinfo=UTC)


def _entry(index: int, event: str, message_id: str, peer: str, digest: str) -> AuditEntry:
    return AuditEntry(
        index=index,
        at=AT,
        event=event,
        message_id=message_id,
        case_id="019a0000-0000-7000-8000-0000000000ca",
        peer=peer,
        details={"digest": digest, "type": "coe.art29.preservation"},
    )


# The receiver's log: the target entry (2) among look-alikes that each differ in one fact.
ENTRIES = [
    _entry(0, "message.received", OTHER_MESSAGE, SENDER, OTHER_DIGEST),  # another message
    _entry(1, "receipt.queued", MESSAGE, SENDER, DIGEST),  # another event
    _entry(2, "message.received", MESSAGE, SENDER, DIGEST),  # the record of the message
    _entry(3, "message.received", MESSAGE, "FR.247", DIGEST),  # another peer
    _entry(4, "message.received", MESSAGE, SENDER, OTHER_DIGEST),  # another digest
    *[_entry(i, "message.sent", OTHER_MESSAGE, SENDER, OTHER_DIGEST) for i in range(5, 11)],
]
TARGET = 2
SIZE = 7
RECEIVER_LOG = MerkleLevels([entry_leaf_hash(e) for e in ENTRIES])
OTHER_RECEIVER_LOG = MerkleLevels([leaf_hash(b"x%d" % i) for i in range(len(ENTRIES))])


def _proof_args(
    index: int = TARGET, size: int = SIZE, entry: AuditEntry | None = None
) -> dict[str, Any]:
    """Everything check_receipt_proof takes, valid for leaf ``index`` of the receiver's log."""
    return {
        "receiver": RECEIVER,
        "sender": SENDER,
        "message_id": MESSAGE,
        "envelope_digest": DIGEST,
        "entry": entry_bytes(ENTRIES[index] if entry is None else entry).decode(),
        "leaf_index": index,
        "tree_size": size,
        "hashes": [h.hex() for h in RECEIVER_LOG.inclusion_proof(index, size)],
        "checkpoint": _note(size, log=RECEIVER_LOG).decode(),
        "verifiers": VERIFIERS,
    }


@pytest.mark.parametrize(("size"), [3, SIZE, 8, len(ENTRIES)])
def test_a_valid_receipt_proof_is_accepted(size: int) -> None:
    entry, checkpoint = check_receipt_proof(**_proof_args(size=size))
    assert entry == ENTRIES[TARGET]
    assert checkpoint == Checkpoint(origin_for(RECEIVER), size, RECEIVER_LOG.root(size))


def _edit_entry(old: str, new: str) -> dict[str, Any]:
    args = _proof_args()
    assert old in args["entry"], "the edit must change the entry"
    return {**args, "entry": args["entry"].replace(old, new, 1)}


_PATH_LENGTH = len(RECEIVER_LOG.inclusion_proof(TARGET, SIZE))
assert _PATH_LENGTH >= 3, "the fixture's audit path must have hashes to tamper with"

_NOT_THE_RECORD = r"the receipt's log entry is not the record of this message"
_OFF_ROOT = r"the inclusion proof does not lead to the root"
_HEX = r"a proof hash is not 64 lower-case hex digits"
_OTHER_SIZE = r"the receipt's proof is for another tree size than its checkpoint"


def _path(change: Callable[[list[bytes]], list[bytes]]) -> dict[str, Any]:
    args = _proof_args()
    return {**args, "hashes": [h.hex() for h in change([bytes.fromhex(h) for h in args["hashes"]])]}


def _flipped_at(i: int) -> Callable[[list[bytes]], list[bytes]]:
    return lambda path: [_flip(h) if j == i else h for j, h in enumerate(path)]


def _with(**changes: Any) -> dict[str, Any]:
    return {**_proof_args(), **changes}


def _receiver_note(**kwargs: Any) -> str:
    return _note(SIZE, log=RECEIVER_LOG, **kwargs).decode()


BAD_PROOFS = [
    # 2. The entry: the receiver's record of receiving exactly this message from us.
    pytest.param(_with(entry=None), "E_AUDIT_PROOF", r"holds no log entry", id="entry-missing"),
    # Real entries of the receiver's log, each with its own valid inclusion proof.
    pytest.param(_proof_args(0), "E_AUDIT_PROOF", _NOT_THE_RECORD, id="entry-of-another-message"),
    pytest.param(_proof_args(1), "E_AUDIT_PROOF", _NOT_THE_RECORD, id="entry-of-another-event"),
    pytest.param(_proof_args(3), "E_AUDIT_PROOF", _NOT_THE_RECORD, id="entry-about-another-peer"),
    pytest.param(_proof_args(4), "E_AUDIT_PROOF", _NOT_THE_RECORD, id="entry-with-another-digest"),
    pytest.param(
        {**_proof_args(3), "entry": _proof_args()["entry"]},
        "E_AUDIT_PROOF",
        _NOT_THE_RECORD,
        id="entry-index-not-leaf-index",
    ),
    # The right facts, re-indexed to sit on another leaf: the inclusion proof catches it.
    pytest.param(
        _proof_args(3, entry=replace(ENTRIES[TARGET], index=3)),
        "E_AUDIT_PROOF",
        _OFF_ROOT,
        id="entry-moved-to-another-leaf",
    ),
    # One byte of the entry altered, still a canonical entry: its leaf hash changes.
    pytest.param(
        _edit_entry("03:00:00.000Z", "03:00:00.001Z"),
        "E_AUDIT_PROOF",
        _OFF_ROOT,
        id="entry-time-altered",
    ),
    pytest.param(
        _edit_entry("preservation", "preservatiom"),
        "E_AUDIT_PROOF",
        _OFF_ROOT,
        id="entry-type-altered",
    ),
    pytest.param(_edit_entry("0ca", "0cb"), "E_AUDIT_PROOF", _OFF_ROOT, id="entry-case-altered"),
    # Altered into what no log writes.
    pytest.param(
        _edit_entry('{"at"', '{ "at"'), "E_AUDIT_PROOF", r"canonical form", id="entry-not-canonical"
    ),
    pytest.param(_with(entry="{not json"), "E_AUDIT_PROOF", r"not UTF-8 JSON", id="entry-not-json"),
    pytest.param(
        _edit_entry('"v":1', '"v":2'),
        "E_AUDIT_PROOF",
        r"unknown version",
        id="entry-another-version",
    ),
    # 3. The audit path.
    *[
        pytest.param(_path(_flipped_at(i)), "E_AUDIT_PROOF", _OFF_ROOT, id=f"path-hash-{i}-flipped")
        for i in range(_PATH_LENGTH)
    ],
    pytest.param(_path(lambda p: p[:-1]), "E_AUDIT_PROOF", r"too short", id="path-truncated"),
    pytest.param(
        _path(lambda p: [*p, p[0]]), "E_AUDIT_PROOF", r"too long", id="path-with-an-extra-hash"
    ),
    pytest.param(_path(lambda p: p[::-1]), "E_AUDIT_PROOF", _OFF_ROOT, id="path-reversed"),
    pytest.param(_with(hashes=[]), "E_AUDIT_PROOF", r"too short", id="path-empty"),
    pytest.param(
        _with(hashes=_proof_args(3)["hashes"]),
        "E_AUDIT_PROOF",
        _OFF_ROOT,
        id="path-of-another-leaf",
    ),
    pytest.param(
        _with(hashes=[h.upper() for h in _proof_args()["hashes"]]),
        "E_AUDIT_PROOF",
        _HEX,
        id="path-hash-upper-case",
    ),
    pytest.param(
        _with(hashes=["zz" * 32, *_proof_args()["hashes"][1:]]),
        "E_AUDIT_PROOF",
        _HEX,
        id="path-hash-not-hex",
    ),
    # 1. The checkpoint: of the size the proof is for, of the receiver's log, signed by it.
    pytest.param(
        _with(checkpoint=_proof_args(size=SIZE + 1)["checkpoint"]),
        "E_AUDIT_PROOF",
        _OTHER_SIZE,
        id="checkpoint-of-a-larger-tree",
    ),
    pytest.param(
        {**_proof_args(size=SIZE + 1), "checkpoint": _proof_args()["checkpoint"]},
        "E_AUDIT_PROOF",
        _OTHER_SIZE,
        id="checkpoint-of-a-smaller-tree",
    ),
    pytest.param(
        _with(tree_size=SIZE + 1),
        "E_AUDIT_PROOF",
        _OTHER_SIZE,
        id="tree-size-of-another-checkpoint",
    ),
    pytest.param(
        _with(checkpoint=_note(SIZE, log=OTHER_RECEIVER_LOG).decode()),
        "E_AUDIT_PROOF",
        _OFF_ROOT,
        id="checkpoint-of-another-tree",
    ),
    pytest.param(
        _with(checkpoint=_receiver_note(key=OTHER_KEY)),
        "E_AUDIT_SIG",
        _UNSIGNED,
        id="checkpoint-signed-by-another-key",
    ),
    pytest.param(
        _with(checkpoint=_receiver_note(key=OTHER_KEY, name=OTHER_NAME)),
        "E_AUDIT_SIG",
        _UNSIGNED,
        id="checkpoint-signed-by-another-key-and-name",
    ),
    pytest.param(
        _with(checkpoint=_flip_log_signature(_receiver_note().encode()).decode()),
        "E_AUDIT_SIG",
        r"does not verify",
        id="checkpoint-signature-flipped",
    ),
    pytest.param(
        _with(checkpoint=_receiver_note(origin=origin_for(SENDER))),
        "E_AUDIT_SIG",
        r"signed for another log",
        id="checkpoint-of-another-log",
    ),
    pytest.param(
        _with(checkpoint="evb/AT.247\n7\n"),
        "E_AUDIT_SIG",
        r"not a signed note",
        id="checkpoint-malformed",
    ),
    pytest.param(
        _with(checkpoint=_signed_text(b"hello\n").decode()),
        "E_AUDIT_SIG",
        r"not a signed note",
        id="checkpoint-not-a-checkpoint",
    ),
    pytest.param(_with(verifiers={}), "E_AUDIT_SIG", _UNSIGNED, id="no-usable-key-of-the-receiver"),
    # The signature is checked first: a forged checkpoint says nothing about the rest.
    pytest.param(
        _with(entry=None, checkpoint=_receiver_note(key=OTHER_KEY)),
        "E_AUDIT_SIG",
        _UNSIGNED,
        id="forged-checkpoint-and-no-entry",
    ),
    # Whose proof it is: another receiver, another sender, another message or digest.
    pytest.param(
        _with(receiver="FR.247"),
        "E_AUDIT_SIG",
        r"signed for another log",
        id="from-another-receiver",
    ),
    pytest.param(_with(sender="FR.247"), "E_AUDIT_PROOF", _NOT_THE_RECORD, id="to-another-sender"),
    pytest.param(
        _with(message_id=OTHER_MESSAGE), "E_AUDIT_PROOF", _NOT_THE_RECORD, id="for-another-message"
    ),
    pytest.param(
        _with(envelope_digest=OTHER_DIGEST),
        "E_AUDIT_PROOF",
        _NOT_THE_RECORD,
        id="for-another-envelope-digest",
    ),
]


@pytest.mark.parametrize(("args", "code", "why"), BAD_PROOFS)
def test_a_bad_receipt_proof_is_refused_with_its_code(
    args: dict[str, Any], code: str, why: str
) -> None:
    with pytest.raises(AuditError, match=why) as caught:
        check_receipt_proof(**args)
    assert caught.value.code == code


def _base64(hashes: Sequence[str]) -> list[str]:
    return [base64.b64encode(bytes.fromhex(h)).decode() for h in hashes]


def test_a_valid_receipt_proof_with_base64_hashes_is_accepted() -> None:
    args = _proof_args()
    entry, _ = check_receipt_proof(**{**args, "hashes": _base64(args["hashes"])})
    assert entry == ENTRIES[TARGET]


def test_a_base64_path_that_does_not_lead_to_the_root_is_refused() -> None:
    # Whatever the encoding, a wrong path is refused (holds before and after the fix).
    args = _proof_args()
    wrong = _base64(args["hashes"])[::-1]
    with pytest.raises(AuditError) as caught:
        check_receipt_proof(**{**args, "hashes": wrong})
    assert caught.value.code == "E_AUDIT_PROOF"


# -- decode_hashes ----------------------------------------------------------------------


def test_decode_hashes_reads_lower_case_hex() -> None:
    hashes = [leaf_hash(b"a"), leaf_hash(b"b")]
    assert decode_hashes([h.hex() for h in hashes]) == hashes
    assert decode_hashes([]) == []


@pytest.mark.parametrize(
    "text",
    [
        "AB" * 32,
        "ab" * 31 + "a",
        "ab" * 32 + "a",
        "ab" * 33,
        "0x" + "ab" * 31,
        "g" + "a" * 63,
        base64.b64encode(b"\xab" * 32).decode(),
        "",
        "\uff10" * 64,  # full-width digits
    ],
    ids=["upper", "63", "65", "66", "0x", "non-hex", "base64", "empty", "full-width"],
)
def test_decode_hashes_refuses_what_is_not_64_lower_case_hex_digits(text: str) -> None:
    with pytest.raises(AuditError) as caught:
        decode_hashes(["ab" * 32, text])
    assert caught.value.code == "E_AUDIT_PROOF"


@pytest.mark.parametrize("text", ["ab" * 31 + "  ", " " + "ab" * 31 + " ", "ab" * 31 + "\n\n"])
def test_decode_hashes_refuses_whitespace(text: str) -> None:
    # bytes.fromhex skips ASCII whitespace: 64 characters would decode to 31 bytes.
    assert len(text) == 64
    with pytest.raises(AuditError) as caught:
        decode_hashes([text])
    assert caught.value.code == "E_AUDIT_PROOF"


# -- channel_case -----------------------------------------------------------------------

_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-8[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}")
#: channel_case("DE.247", "AT.247"), once and for all.
KNOWN_CHANNEL = "15bbcb85-2671-83ed-8b31-d3304ebda2a6"


def test_channel_case_is_a_stable_version_8_uuid() -> None:
    case = channel_case("DE.247", "AT.247")
    assert case == channel_case("DE.247", "AT.247")
    assert _UUID.fullmatch(case), case
    parsed = uuid.UUID(case)
    assert (parsed.version, parsed.variant) == (8, uuid.RFC_4122)
    # Known answer: a channel's case id must never change between releases (the pair's
    # messages already sit in that case on both nodes).
    assert case == KNOWN_CHANNEL


def test_channel_case_differs_per_pair_and_direction() -> None:
    participants = ["DE.247", "AT.247", "FR.247", "AT.CA"]
    cases = {
        (log, witness): channel_case(log, witness)
        for log in participants
        for witness in participants
        if log != witness
    }
    assert len(set(cases.values())) == len(cases) == 12
    assert all(_UUID.fullmatch(case) for case in cases.values())
    # Not a concatenation that two pairs could share: "A.B" + "C" vs "A" + "B.C".
    assert channel_case("AT.24", "7DE.247") != channel_case("AT.247", "DE.247")
