"""broker.forms.audit: the witnessing forms' builders and accessors, and their examples.

The verdicts on documents are in ``cases_audit.py`` (run by ``test_catalogue.py``);
here: the examples are a real exchange that verifies, the builders produce what the
catalogue parses and refuse with pointers, and a whole round (node → witness → node)
goes through the forms and :mod:`broker.audit.checkpoint`.
"""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest
from cryptography.hazmat.primitives.asymmetric import ed25519

from broker.audit.checkpoint import (
    Checkpoint,
    add_signatures,
    check_fork,
    cosign,
    open_checkpoint,
    sign_checkpoint,
    verify_cosignature,
    verify_cosignatures,
)
from broker.audit.merkle import MerkleLevels, leaf_hash
from broker.errors import SchemaError
from broker.forms.audit import AuditCheckpoint, AuditCosignature
from broker.schema import catalogue
from tests.forms.cases_audit import LOG_KEY, LOG_NAME, TIMESTAMP, WITNESS_KEY, WITNESS_NAME

# The public halves of the examples' discarded keys.
EXAMPLE_LOG = (
    "AT.247#sig-14051b61f029762c",
    "69a4cbf34713ef57ec4a7a1e8572b7d2b231ffdf8e8dfd9150cae89d6a4ee630",
)
EXAMPLE_WITNESS = (
    "DE.247#sig-586bec829f4f9d08",
    "7035b5a14eb3768be30c4632a1361cced81fd2c75075ea582c20172d6d083f5c",
)
LEAVES = [leaf_hash(f"example audit entry {i}".encode()) for i in range(7)]


def _public(hex_key: str) -> ed25519.Ed25519PublicKey:
    return ed25519.Ed25519PublicKey.from_public_bytes(bytes.fromhex(hex_key))


def _example_checkpoint() -> AuditCheckpoint:
    form = catalogue().parse("audit.checkpoint", catalogue().template("audit.checkpoint"))
    assert isinstance(form, AuditCheckpoint)
    return form


def _example_cosignature() -> AuditCosignature:
    form = catalogue().parse("audit.cosignature", catalogue().template("audit.cosignature"))
    assert isinstance(form, AuditCosignature)
    return form


def _problems(call: Callable[[], object]) -> list[tuple[str, str]]:
    with pytest.raises(SchemaError) as info:
        call()
    return [(p.code, p.pointer) for p in info.value.problems]


# -- the examples ------------------------------------------------------------------------


def test_the_examples_are_a_real_exchange() -> None:
    form = _example_checkpoint()
    log_name, log_key = EXAMPLE_LOG
    # The log's signature verifies and the proof joins the tree of 3 to the tree of 7.
    head = open_checkpoint(form.note_bytes(), {log_name: _public(log_key)}, origin="evb/AT.247")
    assert head == form.parsed()[0]
    levels = MerkleLevels(LEAVES)
    assert head.root_hash == levels.root(7)
    old = Checkpoint(head.origin, form.proof.from_size, levels.root(form.proof.from_size))
    check_fork(old, head, form.proof.hash_bytes())
    # The witness's cosignature is on that checkpoint.
    answer = _example_cosignature()
    assert answer.is_about(head)
    witness_name, witness_key = EXAMPLE_WITNESS
    stamp = verify_cosignature(
        form.note_bytes(), answer.signature_line(), witness_name, _public(witness_key)
    )
    assert stamp == TIMESTAMP


def test_accessors() -> None:
    form = _example_checkpoint()
    head, note = form.parsed()
    assert (head.origin, head.size) == ("evb/AT.247", 7)
    assert note.to_bytes() == form.note_bytes()
    assert [s.name for s in note.signatures] == [EXAMPLE_LOG[0]]
    assert form.participant == "AT.247"
    assert form.proof.hash_bytes() == tuple(bytes.fromhex(h) for h in form.proof.hashes)
    answer = _example_cosignature()
    assert answer.participant == "AT.247"
    assert answer.root_hash_bytes() == head.root_hash
    assert not answer.is_about(Checkpoint(head.origin, 6, head.root_hash))
    assert not answer.is_about(Checkpoint("evb/DE.247", 7, head.root_hash))


# -- builders ----------------------------------------------------------------------------


def test_build_gives_the_example() -> None:
    form = _example_checkpoint()
    proof = MerkleLevels(LEAVES).consistency_proof(3, 7)
    built = AuditCheckpoint.build(form.note_bytes(), from_size=3, proof=proof)
    assert built == form
    assert catalogue().parse_obj("audit.checkpoint", built.to_json_obj()) == built


def test_cosigned_gives_the_example() -> None:
    answer = _example_cosignature()
    head = _example_checkpoint().parsed()[0]
    built = AuditCosignature.cosigned(head, cosignature=answer.signature_line(), known_size=7)
    assert built == answer


def test_refused() -> None:
    head = _example_checkpoint().parsed()[0]
    answer = AuditCosignature.refused(
        head, code="E_AUDIT_FORK", known_size=9, reason="another root at size 7"
    )
    assert answer.to_json_obj() == {
        "origin": "evb/AT.247",
        "tree_size": 7,
        "root_hash": head.root_hash.hex(),
        "outcome": "refused",
        "code": "E_AUDIT_FORK",
        "known_size": 9,
        "reason": "another root at size 7",
    }
    assert catalogue().parse_obj("audit.cosignature", answer.to_json_obj()) == answer
    with pytest.raises(ValueError, match="no cosignature"):
        answer.signature_line()


BUILD_REFUSALS: list[tuple[str, Callable[[], object], list[tuple[str, str]]]] = [
    (
        "from-beyond-size",
        lambda: AuditCheckpoint.build(_example_checkpoint().note_bytes(), from_size=8, proof=[]),
        [("E_SEMANTIC", "/proof/from_size")],
    ),
    (
        "proof-missing",
        lambda: AuditCheckpoint.build(_example_checkpoint().note_bytes(), from_size=3, proof=[]),
        [("E_SEMANTIC", "/proof/hashes")],
    ),
    (
        "hash-not-32-bytes",
        lambda: AuditCheckpoint.build(
            _example_checkpoint().note_bytes(), from_size=3, proof=[b"\x01" * 31]
        ),
        [("E_SCHEMA", "/proof/hashes/0")],
    ),
    (
        "note-not-utf8",
        lambda: AuditCheckpoint.build(b"evb/AT.247\n\xff\n", from_size=0, proof=[]),
        [("E_SCHEMA", "/checkpoint")],
    ),
    (
        "not-a-note",
        lambda: AuditCheckpoint.build(b"evb/AT.247\n7\n", from_size=0, proof=[]),
        [("E_SEMANTIC", "/checkpoint")],
    ),
    (
        "cosigned-knows-less",
        lambda: AuditCosignature.cosigned(
            _example_checkpoint().parsed()[0],
            cosignature=_example_cosignature().signature_line(),
            known_size=6,
        ),
        [("E_SEMANTIC", "/known_size")],
    ),
    (
        "cosignature-not-utf8",
        lambda: AuditCosignature.cosigned(
            _example_checkpoint().parsed()[0], cosignature=b"\xff\n", known_size=7
        ),
        [("E_SCHEMA", "/cosignature")],
    ),
    (
        "cosignature-not-a-line",
        lambda: AuditCosignature.cosigned(
            _example_checkpoint().parsed()[0], cosignature=b"DE.247 signed\n", known_size=7
        ),
        [("E_SCHEMA", "/cosignature")],
    ),
    (
        "refused-bad-code",
        lambda: AuditCosignature.refused(
            _example_checkpoint().parsed()[0], code="fork", known_size=0
        ),
        [("E_SCHEMA", "/code")],
    ),
    (
        "refused-two-line-reason",
        lambda: AuditCosignature.refused(
            _example_checkpoint().parsed()[0], code="E_AUDIT_FORK", known_size=0, reason="a\nb"
        ),
        [("E_SCHEMA", "/reason")],
    ),
    (
        "not-a-participant-log",
        lambda: AuditCosignature.refused(
            Checkpoint("example.org/log", 7, bytes(32)), code="E_AUDIT_SIG", known_size=0
        ),
        [("E_SCHEMA", "/origin")],
    ),
    (
        "empty-tree",
        lambda: AuditCosignature.refused(
            Checkpoint("evb/AT.247", 0, bytes(32)), code="E_AUDIT_SIG", known_size=0
        ),
        [("E_SCHEMA", "/tree_size")],
    ),
]


@pytest.mark.parametrize(
    ("build", "expected"),
    [(b, e) for _, b, e in BUILD_REFUSALS],
    ids=[name for name, _, _ in BUILD_REFUSALS],
)
def test_builders_refuse_with_pointers(
    build: Callable[[], object], expected: list[tuple[str, str]]
) -> None:
    assert _problems(build) == expected


# -- a whole round ---------------------------------------------------------------------------


def test_a_round_node_witness_node() -> None:
    # The node's log grows from 3 to 7 entries; the witness verified size 3 before.
    levels = MerkleLevels([leaf_hash(b"entry %d" % i) for i in range(7)])
    head = Checkpoint("evb/AT.247", 7, levels.root(7))
    note = sign_checkpoint(head, LOG_NAME, LOG_KEY)
    sent = AuditCheckpoint.build(note, from_size=3, proof=levels.consistency_proof(3, 7))
    wire = json.dumps(sent.to_json_obj()).encode()

    # The witness parses the form, opens the note under the log's key, checks the proof.
    received = catalogue().parse("audit.checkpoint", wire)
    assert isinstance(received, AuditCheckpoint)
    claimed, _ = received.parsed()
    opened = open_checkpoint(
        received.note_bytes(), {LOG_NAME: LOG_KEY.public_key()}, origin="evb/AT.247"
    )
    assert opened == claimed
    kept = Checkpoint("evb/AT.247", 3, levels.root(3))
    check_fork(kept, opened, received.proof.hash_bytes())
    line = cosign(opened, WITNESS_NAME, WITNESS_KEY, TIMESTAMP)
    answer = AuditCosignature.cosigned(opened, cosignature=line, known_size=opened.size)

    # The node parses the answer and adds the cosignature to its checkpoint.
    back = catalogue().parse("audit.cosignature", json.dumps(answer.to_json_obj()).encode())
    assert isinstance(back, AuditCosignature)
    assert back.is_about(head)
    witnessed = add_signatures(note, [back.signature_line()])
    assert verify_cosignatures(witnessed, {WITNESS_NAME: WITNESS_KEY.public_key()}) == {
        WITNESS_NAME: TIMESTAMP
    }
    # A witnessed checkpoint is still a valid audit.checkpoint (cosignatures ride along).
    again = AuditCheckpoint.build(witnessed, from_size=7, proof=[])
    assert again.parsed()[0] == head
