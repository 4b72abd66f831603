"""Witnessing and receipts with proof between two in-process nodes, attack by attack.

DE.247 keeps a log and AT.247 witnesses it (and the other way round for receipts'
proofs), each on its own store (SQLite or PostgreSQL) and with an :class:`Inbox` wired
to a :class:`Witnessing` as :class:`broker.node.Node` wires it. Rounds are driven by
hand, without RabbitMQ: envelopes are taken from one node's outbox and handed to the
other's inbox as raw bytes. A misbehaving node is played by sealing, with its real
identity, what an honest node would never send; every attack must be refused with its
stable code, quarantined and audited, and leave nothing kept. The live version over
RabbitMQ is ``tests/node/test_audit_witness.py``.
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ed25519

from broker import ids
from broker.audit.checkpoint import (
    Checkpoint,
    Note,
    NoteSignature,
    cosign,
    open_checkpoint,
    origin_for,
    parse_note,
    sign_checkpoint,
    verify_cosignature,
)
from broker.audit.entry import entry_bytes
from broker.audit.issuer import issue_checkpoint
from broker.audit.merkle import MerkleLevels, leaf_hash
from broker.audit.witness import channel_case
from broker.clock import FixedClock, wire_time
from broker.config import load_config
from broker.forms.audit import AuditCosignature
from broker.forms.receipt import Proof, Receipt
from broker.identity import Identity, load_identity
from broker.inbox import Inbox, InboxResult
from broker.localnet import build_network
from broker.outbox import submit
from broker.resources import read_json
from broker.store import open_store
from broker.store.atrest import load_storage_key
from broker.store.auditlog import entry_of
from broker.store.base import AuditEvent, OutboundMessage, Store
from broker.witnessing import Witnessing, log_verifiers
from tests.node.conftest import T0

FORM_TYPE = "coe.art29.preservation"
CHECKPOINT = "audit.checkpoint"
COSIGNATURE = "audit.cosignature"
RECEIPT = "msg.receipt"
Alert = Mapping[str, str | int | None]


@dataclass
class Side:
    """One node: its identity, store, witnessing (with the alerts it raised) and inbox."""

    identity: Identity
    store: Store
    witnessing: Witnessing
    inbox: Inbox
    alerts: list[Alert] = field(default_factory=list)


@dataclass
class Pair:
    de: Side
    at: Side
    fr: Identity  # a third participant, whose keys are "another participant's key"
    clock: FixedClock


@pytest.fixture
async def pair(tmp_path: Path, store_urls: tuple[str, str]) -> AsyncIterator[Pair]:
    clock = FixedClock(T0)
    network = build_network(
        tmp_path / "net", ["AT.247", "DE.247", "FR.247"], now=T0 - timedelta(days=10)
    )
    sides: list[Side] = []
    stores = []
    try:
        for participant, url in zip(("DE.247", "AT.247"), store_urls, strict=True):
            config = load_config(network.configs[participant], env={})
            identity = load_identity(config, clock)
            cm = open_store(url, load_storage_key(config.storage_key_file), clock)
            store = await cm.__aenter__()
            stores.append(cm)
            alerts: list[Alert] = []

            async def alert(payload: Alert, alerts: list[Alert] = alerts) -> None:
                alerts.append(payload)

            witnessing = Witnessing(store, identity, clock, config.audit, alert=alert)
            inbox = Inbox(
                store,
                identity,
                clock,
                config.limits,
                config.retry_for,
                ack_targets=config.deadlines.ack_targets(),
                witnessing=witnessing,
            )
            sides.append(Side(identity, store, witnessing, inbox, alerts=alerts))
        fr = load_identity(load_config(network.configs["FR.247"], env={}), clock)
        yield Pair(de=sides[0], at=sides[1], fr=fr, clock=clock)
    finally:
        for cm in stores:
            await cm.__aexit__(None, None, None)


# -- helpers ---------------------------------------------------------------------------


def _key(pair: Pair, participant: str) -> tuple[str, ed25519.Ed25519PrivateKey]:
    """A participant's signing key: its id (the key name) and its private key."""
    identity = {"AT.247": pair.at.identity, "DE.247": pair.de.identity, "FR.247": pair.fr}
    key = identity[participant].keyset.sig
    assert isinstance(key.private, ed25519.Ed25519PrivateKey)
    return key.kid, key.private


async def _rows(side: Side, form_type: str, recipient: str) -> list[OutboundMessage]:
    """The outbox rows of one type to one recipient, newest first."""
    return [
        r
        for r in await side.store.list_outbound(limit=1000)
        if r.type == form_type and r.recipient == recipient
    ]


async def _answer_to(side: Side, message_id: str, form_type: str) -> OutboundMessage:
    [row] = [
        r
        for r in await side.store.list_outbound(limit=1000)
        if r.in_reply_to == message_id and r.type == form_type
    ]
    return row


async def _events(side: Side, name: str) -> list[AuditEvent]:
    return [e for _, e in await side.store.list_audit(limit=100_000) if e.event == name]


async def _request(pair: Pair) -> str:
    """DE sends AT a request, AT accepts it, DE gets the receipt: traffic in both logs."""
    row = await submit(
        pair.de.store,
        pair.de.identity,
        pair.clock,
        form_type=FORM_TYPE,
        form=read_json("examples", f"{FORM_TYPE}.json"),
        recipient="AT.247",
    )
    assert (await pair.at.inbox.handle(row.envelope)).status == "accepted"
    receipt = await _answer_to(pair.at, row.id, RECEIPT)
    assert (await pair.de.inbox.handle(receipt.envelope)).status == "receipt"
    return row.id


async def _de_checkpoint(pair: Pair) -> OutboundMessage:
    """DE signs a checkpoint of its whole log and sends it to its witness AT."""
    before = {r.id for r in await _rows(pair.de, CHECKPOINT, "AT.247")}
    head, _ = await pair.de.store.audit_head()
    size = await issue_checkpoint(pair.de.store, "DE.247", pair.de.identity.keyset.sig)
    assert size == head
    await pair.de.witnessing.after_checkpoint()
    [row] = [r for r in await _rows(pair.de, CHECKPOINT, "AT.247") if r.id not in before]
    return row


async def _de_checkpoint_at_at(pair: Pair) -> tuple[OutboundMessage, int, bytes]:
    """A checkpoint of DE's log, delivered to AT and cosigned there (answer not delivered)."""
    await _request(pair)
    sent = await _de_checkpoint(pair)
    result = await pair.at.inbox.handle(sent.envelope)
    assert (result.status, result.code) == ("accepted", None)
    kept = await pair.at.store.peer_checkpoint("DE.247")
    assert kept is not None
    size, root, _ = kept
    return sent, size, root


def _de_checkpoint_of(size: int, root: bytes) -> Checkpoint:
    return Checkpoint(origin_for("DE.247"), size, root)


async def _assert_refused(
    side: Side, result: InboxResult, message_id: str, code: str, why: str
) -> None:
    """Rejected with ``code`` for the reason ``why``: result, quarantine entry, audit record."""
    assert (result.status, result.code, result.message_id) == ("rejected", code, message_id)
    held = [q for q in await side.store.list_quarantine() if q.message_id == message_id]
    assert [(q.code, q.authenticated) for q in held] == [(code, True)]
    assert re.search(why, held[0].reason), held[0].reason
    logged = [(e.event, e.code) for _, e in await side.store.list_audit(message_id=message_id)]
    assert ("message.rejected", code) in logged
    assert ("message.received", None) not in logged
    inbound = await side.store.get_inbound(message_id)
    assert inbound is not None and (inbound.status, inbound.code) == ("rejected", code)


# -- a round -------------------------------------------------------------------------


async def test_a_witnessing_round_between_two_nodes(pair: Pair) -> None:
    await _request(pair)
    sent = await _de_checkpoint(pair)
    [(size, note)] = await pair.de.store.list_checkpoints()
    # The checkpoint goes to every other participant, each in its own channel case.
    assert {
        r.recipient for r in await pair.de.store.list_outbound(limit=1000) if r.type == CHECKPOINT
    } == {"AT.247", "FR.247"}
    assert sent.case_id == channel_case("DE.247", "AT.247")

    # AT verifies, keeps and cosigns it.
    result = await pair.at.inbox.handle(sent.envelope)
    assert (result.status, result.code) == ("accepted", None)
    kept = await pair.at.store.peer_checkpoint("DE.247")
    checkpoint = open_checkpoint(
        note, log_verifiers(pair.at.identity, "DE.247", T0), origin=origin_for("DE.247")
    )
    assert kept == (size, checkpoint.root_hash, note)
    [verified] = await _events(pair.at, "witness.verified")
    assert (verified.peer, verified.details["tree_size"]) == ("DE.247", size)

    # DE keeps AT's cosignature, which verifies under AT's key over DE's checkpoint.
    answer = await _answer_to(pair.at, sent.id, COSIGNATURE)
    assert answer.case_id == sent.case_id
    result = await pair.de.inbox.handle(answer.envelope)
    assert (result.status, result.code) == ("accepted", None)
    [(witness, cosigned, line)] = await pair.de.store.list_cosignatures()
    assert (witness, cosigned) == ("AT.247", size)
    name, _ = _key(pair, "AT.247")
    assert line.decode().split(" ")[1] == name
    key = log_verifiers(pair.de.identity, "AT.247", T0)[name]
    assert verify_cosignature(checkpoint, line, name, key) == int(T0.timestamp())
    assert (await pair.de.store.witness_sizes())["AT.247"] == size
    [event] = await _events(pair.de, "witness.cosignature")
    assert (event.peer, event.details["tree_size"]) == ("AT.247", size)

    # The next checkpoint is proved from the size AT verified, and AT cosigns it too.
    await _request(pair)
    pair.clock.advance(timedelta(minutes=1))
    later = await _de_checkpoint(pair)
    assert (await pair.at.inbox.handle(later.envelope)).status == "accepted"
    form = await pair.at.store.read_form("in", later.id)
    assert form is not None
    proof = json.loads(form)["proof"]
    assert proof["from_size"] == size and proof["hashes"]
    answer = await _answer_to(pair.at, later.id, COSIGNATURE)
    assert (await pair.de.inbox.handle(answer.envelope)).status == "accepted"
    sizes = [s for w, s, _ in await pair.de.store.list_cosignatures() if w == "AT.247"]
    assert sizes[0] == size and sizes[-1] > size
    assert await pair.at.store.list_quarantine() == []
    assert await pair.de.store.list_quarantine() == []
    assert pair.at.alerts == pair.de.alerts == []


# -- (a, b, c) attacks on DE, the log: answers it must not keep ----------------------


def _line_with(line: bytes, change: Callable[[NoteSignature], NoteSignature]) -> bytes:
    [sig] = parse_note(b"cosignature\n\n" + line).signatures
    return change(sig).line()


def _flip_at(data: bytes, index: int) -> bytes:
    changed = bytearray(data)
    changed[index] ^= 1
    return bytes(changed)


@dataclass(frozen=True)
class Forgery:
    """An answer a node seals with its real identity and sends DE, which DE must refuse."""

    about: Callable[[Pair, int, bytes], Checkpoint]  # the checkpoint the form names
    line: Callable[[Pair, Checkpoint], bytes]  # the cosignature line on it
    signer: str = "AT.247"  # who seals the envelope
    reply_to: str = "checkpoint"  # "checkpoint" (the one sent to AT), "unknown", "request"


def _genuine(pair: Pair, checkpoint: Checkpoint) -> bytes:
    name, key = _key(pair, "AT.247")
    return cosign(checkpoint, name, key, int(T0.timestamp()))


def _by_key(pair: Pair, checkpoint: Checkpoint, *, name_of: str, key_of: str) -> bytes:
    """A cosignature under ``name_of``'s key name, made with ``key_of``'s key."""
    return cosign(checkpoint, _key(pair, name_of)[0], _key(pair, key_of)[1], int(T0.timestamp()))


def _real(pair: Pair, size: int, root: bytes) -> Checkpoint:
    return _de_checkpoint_of(size, root)


FORGERIES = [
    # (a) A cosignature that is not AT's over this checkpoint: E_AUDIT_SIG.
    pytest.param(
        Forgery(_real, lambda p, c: _by_key(p, c, name_of="AT.247", key_of="FR.247")),
        "E_AUDIT_SIG",
        r"by another key \(key id\)",
        id="another-key-under-the-witness-key-name",
    ),
    pytest.param(
        Forgery(_real, lambda p, c: _by_key(p, c, name_of="AT.247", key_of="DE.247")),
        "E_AUDIT_SIG",
        r"by another key \(key id\)",
        id="the-log-cosigning-itself-in-the-witness-name",
    ),
    pytest.param(
        Forgery(_real, lambda p, c: _by_key(p, c, name_of="FR.247", key_of="FR.247")),
        "E_AUDIT_SIG",
        r"not by a signing key of AT\.247",
        id="another-participant-key",
    ),
    pytest.param(
        Forgery(
            _real,
            lambda p, c: _line_with(
                _genuine(p, c),
                lambda s: NoteSignature(s.name, s.key_id, _flip_at(s.signature, 20)),
            ),
        ),
        "E_AUDIT_SIG",
        r"does not verify",
        id="signature-altered",
    ),
    pytest.param(
        Forgery(
            _real,
            lambda p, c: _line_with(
                _genuine(p, c),
                lambda s: NoteSignature(s.name, s.key_id, _flip_at(s.signature, 7)),
            ),
        ),
        "E_AUDIT_SIG",
        r"does not verify",
        id="timestamp-altered",
    ),
    pytest.param(
        Forgery(_real, lambda p, c: _genuine(p, _de_checkpoint_of(c.size, leaf_hash(b"x")))),
        "E_AUDIT_SIG",
        r"does not verify",
        id="cosigns-another-root-presented-as-this-one",
    ),
    pytest.param(
        Forgery(lambda p, s, r: Checkpoint(origin_for("FR.247"), s, r), _genuine),
        "E_AUDIT_SIG",
        r"about another log",
        id="about-another-log",
    ),
    # (b) A root DE's log never had: E_AUDIT_FORK.
    pytest.param(
        Forgery(lambda p, s, r: _de_checkpoint_of(s, leaf_hash(b"not DE's root")), _genuine),
        "E_AUDIT_FORK",
        r"a root this log never had",
        id="another-root-at-the-size",
    ),
    pytest.param(
        Forgery(lambda p, s, r: _de_checkpoint_of(s + 100, r), _genuine),
        "E_AUDIT_FORK",
        r"a root this log never had",
        id="a-size-the-log-never-reached",
    ),
    pytest.param(
        Forgery(lambda p, s, r: _de_checkpoint_of(s - 1, r), _genuine),
        "E_AUDIT_FORK",
        r"a root this log never had",
        id="the-root-at-another-size",
    ),
    # (c) An answer to no checkpoint DE sent to the answering witness: E_RECEIPT_UNKNOWN.
    pytest.param(
        Forgery(_real, _genuine, reply_to="unknown"),
        "E_RECEIPT_UNKNOWN",
        r"did not send to its sender",
        id="to-a-message-never-sent",
    ),
    pytest.param(
        Forgery(_real, _genuine, reply_to="request"),
        "E_RECEIPT_UNKNOWN",
        r"did not send to its sender",
        id="to-a-message-that-is-no-checkpoint",
    ),
    pytest.param(
        Forgery(
            _real, lambda p, c: _by_key(p, c, name_of="FR.247", key_of="FR.247"), signer="FR.247"
        ),
        "E_RECEIPT_UNKNOWN",
        r"did not send to its sender",
        id="to-a-checkpoint-sent-to-another-witness",
    ),
]


@pytest.mark.parametrize(("forgery", "code", "why"), FORGERIES)
async def test_a_forged_cosignature_is_refused_and_nothing_is_kept(
    pair: Pair, forgery: Forgery, code: str, why: str
) -> None:
    sent, size, root = await _de_checkpoint_at_at(pair)
    about = forgery.about(pair, size, root)
    form = AuditCosignature.cosigned(
        about, cosignature=forgery.line(pair, about), known_size=max(size, about.size)
    )
    reply_to = {
        "checkpoint": sent.id,
        "unknown": ids.uuid7(),
        "request": (await _rows(pair.de, FORM_TYPE, "AT.247"))[0].id,
    }[forgery.reply_to]
    identity = pair.at.identity if forgery.signer == "AT.247" else pair.fr
    envelope = identity.seal(
        form_type=COSIGNATURE,
        form=form,
        recipient="DE.247",
        clock=pair.clock,
        case=channel_case("DE.247", forgery.signer),
        in_reply_to=reply_to,
    )
    result = await pair.de.inbox.handle(envelope.to_bytes())
    await _assert_refused(pair.de, result, envelope.id, code, why)
    # Nothing kept, and the witness still counts as knowing nothing of DE's log.
    assert await pair.de.store.list_cosignatures() == []
    assert "AT.247" not in await pair.de.store.witness_sizes()
    assert await _events(pair.de, "witness.cosignature") == []
    # The sender is answered with a (negative) receipt.
    receipt = await _answer_to(pair.de, envelope.id, RECEIPT)
    assert receipt.recipient == forgery.signer
    # The genuine answer still goes through.
    answer = await _answer_to(pair.at, sent.id, COSIGNATURE)
    assert (await pair.de.inbox.handle(answer.envelope)).status == "accepted"
    assert [(w, s) for w, s, _ in await pair.de.store.list_cosignatures()] == [("AT.247", size)]


# -- (d) attacks on AT, the witness: a checkpoint that is not the sender's -------------


def _sign_as(pair: Pair, checkpoint: Checkpoint, *, name_of: str, key_of: str) -> bytes:
    """A checkpoint note under ``name_of``'s key name, signed with ``key_of``'s key."""
    return sign_checkpoint(checkpoint, _key(pair, name_of)[0], _key(pair, key_of)[1])


def _flip_note_signature(note: bytes) -> bytes:
    parsed = parse_note(note)
    [sig] = parsed.signatures
    return Note(
        parsed.text, (NoteSignature(sig.name, sig.key_id, _flip_at(sig.signature, 9)),)
    ).to_bytes()


async def _send_checkpoint(
    pair: Pair, note: bytes, from_size: int, proof: list[bytes]
) -> OutboundMessage:
    """DE's node sends AT a checkpoint message built by hand."""
    return await submit(
        pair.de.store,
        pair.de.identity,
        pair.clock,
        form_type=CHECKPOINT,
        form={
            "checkpoint": note.decode(),
            "proof": {"from_size": from_size, "hashes": [h.hex() for h in proof]},
        },
        recipient="AT.247",
        case=channel_case("DE.247", "AT.247"),
    )


async def _witnessed_round(pair: Pair) -> tuple[int, bytes, bytes]:
    """A full round: AT cosigned DE's checkpoint and DE kept it. Return AT's kept one."""
    sent, size, root = await _de_checkpoint_at_at(pair)
    answer = await _answer_to(pair.at, sent.id, COSIGNATURE)
    assert (await pair.de.inbox.handle(answer.envelope)).status == "accepted"
    kept = await pair.at.store.peer_checkpoint("DE.247")
    assert kept is not None and kept[:2] == (size, root)
    return kept


NOT_THE_SENDERS = [
    pytest.param(
        lambda p, c: _sign_as(p, c, name_of="FR.247", key_of="FR.247"),
        True,
        r"no signature on the note is from a known key",
        id="signed-by-another-participant",
    ),
    pytest.param(
        lambda p, c: _sign_as(p, c, name_of="DE.247", key_of="FR.247"),
        True,
        r"no signature on the note is from a known key",
        id="another-key-under-the-sender-key-name",
    ),
    pytest.param(
        lambda p, c: _sign_as(p, c, name_of="DE.247", key_of="AT.247"),
        True,
        r"no signature on the note is from a known key",
        id="the-witness-own-key-under-the-sender-key-name",
    ),
    pytest.param(
        lambda p, c: _flip_note_signature(_sign_as(p, c, name_of="DE.247", key_of="DE.247")),
        True,
        r"the signature of DE\.247#sig-[0-9a-f]+ does not verify",
        id="signature-altered",
    ),
    # Signed by the sender, but of another participant's log: there is no checkpoint of
    # the sender's to name in a refused cosignature; the negative receipt says it all.
    pytest.param(
        lambda p, c: _sign_as(
            p,
            Checkpoint(origin_for("FR.247"), c.size, c.root_hash),
            name_of="DE.247",
            key_of="DE.247",
        ),
        False,
        r"signed for another log",
        id="of-another-log",
    ),
]


@pytest.mark.parametrize(("sign", "answered", "why"), NOT_THE_SENDERS)
async def test_a_checkpoint_not_signed_by_the_sender_is_refused_and_raises_no_fork(
    pair: Pair, sign: Callable[[Pair, Checkpoint], bytes], answered: bool, why: str
) -> None:
    size, root, note = await _witnessed_round(pair)
    # A second root for the size AT cosigned: a fork, if the note were the sender's.
    forged = sign(pair, _de_checkpoint_of(size, leaf_hash(b"a root DE never had")))
    row = await _send_checkpoint(pair, forged, size, [])
    message_id = row.id
    result = await pair.at.inbox.handle(row.envelope)
    await _assert_refused(pair.at, result, message_id, "E_AUDIT_SIG", why)
    # An unauthenticated note proves nothing: no fork record, no alert, nothing kept.
    assert await _events(pair.at, "audit.fork") == []
    assert pair.at.alerts == []
    assert await pair.at.store.peer_checkpoint("DE.247") == (size, root, note)
    assert (await _answer_to(pair.at, message_id, RECEIPT)).recipient == "DE.247"
    answers = [
        r for r in await _rows(pair.at, COSIGNATURE, "DE.247") if r.in_reply_to == message_id
    ]
    if not answered:
        assert answers == []
        return
    # The refusal goes back to DE, naming the code and the size AT knows.
    [answer] = answers
    assert (await pair.de.inbox.handle(answer.envelope)).status == "accepted"
    [refused] = await _events(pair.de, "witness.refused")
    assert (refused.peer, refused.code) == ("AT.247", "E_AUDIT_SIG")
    assert (refused.details["tree_size"], refused.details["known_size"]) == (size, size)
    assert pair.de.alerts == []
    assert [(w, s) for w, s, _ in await pair.de.store.list_cosignatures()] == [("AT.247", size)]


# -- (e) DE rewrites its log: AT raises the alarm --------------------------------------


async def _de_levels(pair: Pair) -> MerkleLevels:
    head, _ = await pair.de.store.audit_head()
    leaves = await pair.de.store.audit_leaves(start=0, limit=head)
    return MerkleLevels([digest for _, _, digest in leaves])


@dataclass(frozen=True)
class Sent:
    """A checkpoint DE sends AT by hand: the note's tree and the proof that comes with it."""

    size: int
    root: bytes
    from_size: int
    proof: list[bytes]


def _rewritten(pair: Pair, levels: MerkleLevels, known: int) -> Sent:
    # The log thrown away and rebuilt with other, more records (as _rewrite_log in
    # test_audit_witness.py leaves it), with a correct consistency proof of its own.
    size = known + 8
    rewritten = MerkleLevels([leaf_hash(b"rewritten %d" % i) for i in range(size)])
    return Sent(size, rewritten.root(size), known, rewritten.consistency_proof(known, size))


def _second_root(pair: Pair, levels: MerkleLevels, known: int) -> Sent:
    return Sent(known, leaf_hash(b"another root"), known, [])


def _stale(pair: Pair, levels: MerkleLevels, known: int) -> Sent:
    return Sent(known - 1, levels.root(known - 1), known - 1, [])


def _from_elsewhere(pair: Pair, levels: MerkleLevels, known: int) -> Sent:
    return Sent(levels.size, levels.root(), 1, levels.consistency_proof(1))


REWRITES = [
    pytest.param(
        _rewritten,
        "E_AUDIT_FORK",
        True,
        r"is not shown to extend its tree at",
        id="rewritten-bigger-with-its-own-proof",
    ),
    pytest.param(
        _second_root,
        "E_AUDIT_FORK",
        True,
        r"two roots for size \d+ of evb/DE\.247",
        id="second-root-for-the-cosigned-size",
    ),
    pytest.param(
        _stale, "E_AUDIT_PROOF", False, r"is older than the one verified", id="honest-but-stale"
    ),
    pytest.param(
        _from_elsewhere,
        "E_AUDIT_PROOF",
        False,
        r"the proof starts at 1; this witness verified size",
        id="honest-proof-from-another-size",
    ),
]


@pytest.mark.parametrize(("build", "code", "fork", "why"), REWRITES)
async def test_a_checkpoint_that_does_not_extend_the_cosigned_one_is_refused(
    pair: Pair, build: Callable[[Pair, MerkleLevels, int], Sent], code: str, fork: bool, why: str
) -> None:
    known, root, note = await _witnessed_round(pair)
    await _request(pair)  # the honest log grows on
    sent = build(pair, await _de_levels(pair), known)
    name, key = _key(pair, "DE.247")
    forged = sign_checkpoint(_de_checkpoint_of(sent.size, sent.root), name, key)
    row = await _send_checkpoint(pair, forged, sent.from_size, sent.proof)
    message_id = row.id
    pair.clock.advance(timedelta(seconds=1))
    result = await pair.at.inbox.handle(row.envelope)
    await _assert_refused(pair.at, result, message_id, code, why)
    # AT keeps what it cosigned, nothing of the offending checkpoint.
    assert await pair.at.store.peer_checkpoint("DE.247") == (known, root, note)
    assert await pair.at.store.peer_checkpoint("DE.247", sent.size) == (
        (known, root, note) if sent.size == known else None
    )
    forks = await _events(pair.at, "audit.fork")
    if fork:
        [record] = forks
        assert (record.peer, record.code, record.message_id) == ("DE.247", code, message_id)
        assert dict(record.details) == {"tree_size": sent.size, "known_size": known}
        assert pair.at.alerts == [
            {
                "alert": "audit_fork",
                "node": "AT.247",
                "peer": "DE.247",
                "tree_size": sent.size,
                "known_size": known,
                "at": wire_time(pair.clock.now()),
                "code": "E_AUDIT_FORK",
            }
        ]
    else:
        assert forks == []
        assert pair.at.alerts == []
    # The refused cosignature names the size AT knows; DE records it and, for a fork,
    # raises its own alarm (a witness says its log forked).
    answer = await _answer_to(pair.at, message_id, COSIGNATURE)
    assert (await pair.de.inbox.handle(answer.envelope)).status == "accepted"
    [refused] = await _events(pair.de, "witness.refused")
    assert (refused.peer, refused.code) == ("AT.247", code)
    assert dict(refused.details) == {"tree_size": sent.size, "known_size": known}
    assert (await pair.de.store.witness_sizes())["AT.247"] == known
    assert [(a["alert"], a["peer"], a["known_size"]) for a in pair.de.alerts] == (
        [("audit_fork_reported", "AT.247", known)] if fork else []
    )
    assert [(w, s) for w, s, _ in await pair.de.store.list_cosignatures()] == [("AT.247", known)]


async def test_after_a_lost_answer_the_refusal_moves_the_next_proof_to_what_the_witness_knows(
    pair: Pair,
) -> None:
    # AT cosigns DE's checkpoint, but the answer never reaches DE: DE still proves from 0.
    sent, known, _ = await _de_checkpoint_at_at(pair)
    # The checkpoint was delivered (its receipt came back), only the answer was lost.
    receipt = await _answer_to(pair.at, sent.id, RECEIPT)
    assert (await pair.de.inbox.handle(receipt.envelope)).status == "receipt"
    await _request(pair)
    pair.clock.advance(timedelta(minutes=10))  # past the resend interval
    retry = await _de_checkpoint(pair)
    result = await pair.at.inbox.handle(retry.envelope)
    why = f"the proof starts at 0; this witness verified size {known}$"
    await _assert_refused(pair.at, result, retry.id, "E_AUDIT_PROOF", why)
    assert pair.at.alerts == []
    answer = await _answer_to(pair.at, retry.id, COSIGNATURE)
    assert (await pair.de.inbox.handle(answer.envelope)).status == "accepted"
    assert (await pair.de.store.witness_sizes())["AT.247"] == known
    # The next round proves from there, and AT cosigns.
    before = {r.id for r in await _rows(pair.de, CHECKPOINT, "AT.247")}
    await pair.de.witnessing.after_checkpoint()
    [again] = [r for r in await _rows(pair.de, CHECKPOINT, "AT.247") if r.id not in before]
    assert (await pair.at.inbox.handle(again.envelope)).status == "accepted"
    form = await pair.at.store.read_form("in", again.id)
    assert form is not None
    proof = json.loads(form)["proof"]
    assert proof["from_size"] == known and proof["hashes"]
    answer = await _answer_to(pair.at, again.id, COSIGNATURE)
    assert (await pair.de.inbox.handle(answer.envelope)).status == "accepted"
    [(witness, size, _)] = await pair.de.store.list_cosignatures()
    assert witness == "AT.247" and size > known


# -- (f) receipts that carry proof ----------------------------------------------------


@dataclass(frozen=True)
class ProofParts:
    """What AT's follow-up receipt proves, rebuilt from AT's store as AT's node builds it."""

    entry: str | None
    leaf_index: int
    hashes: list[str]
    checkpoint: str


async def _follow_up(
    pair: Pair, message_id: str
) -> tuple[OutboundMessage, ProofParts, dict[str, ProofParts]]:
    """AT checkpoints its log and queues the follow-up receipt; return it and its parts.

    Also returns the parts of a valid proof for every other record of the message in
    AT's log (event name → parts), to be passed off as the record of its reception.
    """
    size = await issue_checkpoint(pair.at.store, "AT.247", pair.at.identity.keyset.sig)
    assert size is not None
    await pair.at.witnessing.after_checkpoint()
    [queued] = await _events(pair.at, "receipt.proof_queued")
    assert (queued.message_id, queued.details["tree_size"]) == (message_id, size)
    row = await pair.at.store.get_outbound(str(queued.details["receipt_id"]))
    assert row is not None and row.type == RECEIPT and row.in_reply_to == message_id
    leaves = await pair.at.store.audit_leaves(start=0, limit=size)
    levels = MerkleLevels([digest for _, _, digest in leaves])
    [(_, note)] = await pair.at.store.list_checkpoints()

    def parts(index: int) -> ProofParts:
        return ProofParts(
            entry_bytes(entry_of(index, leaves[index][1])).decode(),
            index,
            [h.hex() for h in levels.inclusion_proof(index, size)],
            note.decode(),
        )

    records = {e.event: parts(i) for i, e, _ in leaves if e.message_id == message_id}
    assert records["message.received"].leaf_index == queued.details["leaf_index"]
    return row, records["message.received"], records


def _flip_hash(parts: ProofParts, i: int) -> ProofParts:
    hashes = list(parts.hashes)
    hashes[i] = _flip_at(bytes.fromhex(hashes[i]), 0).hex()
    return replace(parts, hashes=hashes)


def _checkpoint_by(pair: Pair, parts: ProofParts, participant: str) -> ProofParts:
    genuine = Checkpoint.from_body(parse_note(parts.checkpoint.encode()).text)
    forged = _sign_as(pair, genuine, name_of=participant, key_of=participant)
    return replace(parts, checkpoint=forged.decode())


def _edit(parts: ProofParts, old: str, new: str) -> ProofParts:
    assert parts.entry is not None and old in parts.entry
    return replace(parts, entry=parts.entry.replace(old, new, 1))


Tamper = Callable[[Pair, ProofParts, dict[str, ProofParts]], ProofParts]

TAMPERED: list[Any] = [
    pytest.param(lambda p, g, r: g, None, r"", id="untampered"),
    pytest.param(
        lambda p, g, r: _edit(g, '"event":"message.received"', '"event":"message.receivee"'),
        "E_AUDIT_PROOF",
        r"the receipt's log entry is not the record of this message",
        id="entry-altered",
    ),
    pytest.param(
        lambda p, g, r: _edit(g, ".000Z", ".001Z"),
        "E_AUDIT_PROOF",
        r"the inclusion proof does not lead to the root",
        id="entry-time-altered",
    ),
    pytest.param(
        lambda p, g, r: replace(g, entry=None),
        "E_AUDIT_PROOF",
        r"the receipt's proof holds no log entry",
        id="entry-missing",
    ),
    pytest.param(
        lambda p, g, r: r["receipt.queued"],
        "E_AUDIT_PROOF",
        r"the receipt's log entry is not the record of this message",
        id="entry-of-another-record",
    ),
    pytest.param(
        lambda p, g, r: _flip_hash(g, 0),
        "E_AUDIT_PROOF",
        r"the inclusion proof does not lead to the root",
        id="path-hash-flipped",
    ),
    pytest.param(
        lambda p, g, r: replace(g, leaf_index=g.leaf_index + 1),
        "E_AUDIT_PROOF",
        r"the receipt's log entry is not the record of this message",
        id="leaf-index-moved",
    ),
    pytest.param(
        lambda p, g, r: _checkpoint_by(p, g, "FR.247"),
        "E_AUDIT_SIG",
        r"no signature on the note is from a known key",
        id="checkpoint-by-another-key",
    ),
    pytest.param(
        lambda p, g, r: _checkpoint_by(p, g, "DE.247"),
        "E_AUDIT_SIG",
        r"no signature on the note is from a known key",
        id="checkpoint-by-the-checking-sender",
    ),
]


@pytest.mark.parametrize(("tamper", "code", "why"), TAMPERED)
async def test_a_follow_up_receipt_is_kept_only_with_a_true_proof(
    pair: Pair, tamper: Tamper, code: str | None, why: str
) -> None:
    message_id = await _request(pair)
    genuine_row, genuine, records = await _follow_up(pair, message_id)
    parts = tamper(pair, genuine, records)
    inbound = await pair.at.store.get_inbound(message_id)
    assert inbound is not None
    size = Checkpoint.from_body(parse_note(parts.checkpoint.encode()).text).size
    receipt = Receipt.accepted(
        message_id=message_id,
        envelope_digest=inbound.digest,
        received_at=inbound.received_at,
        proof=Proof(
            leaf_index=parts.leaf_index,
            tree_size=size,
            hashes=tuple(parts.hashes),
            checkpoint=parts.checkpoint,
            # An older receiver's proof has no entry at all (the member is omitted).
            **({} if parts.entry is None else {"entry": parts.entry}),
        ),
    )
    # Sealed by AT's node itself: only the proof is wrong.
    envelope = pair.at.identity.seal(
        form_type=RECEIPT,
        form=receipt,
        recipient="DE.247",
        clock=pair.clock,
        case=inbound.case_id,
        in_reply_to=message_id,
    )
    result = await pair.de.inbox.handle(envelope.to_bytes())
    proved = await _events(pair.de, "receipt.proof")
    if code is None:
        assert (result.status, result.code) == ("receipt", None)
        [event] = proved
        assert event.message_id == envelope.id
        assert (event.details["proof_leaf"], event.details["proof_size"]) == (
            genuine.leaf_index,
            size,
        )
        return
    await _assert_refused(pair.de, result, envelope.id, code, why)
    assert proved == []
    # A receipt is never answered: DE queued nothing back.
    assert [r.type for r in await pair.de.store.list_outbound(limit=1000)] == [FORM_TYPE]
    request = await pair.de.store.get_outbound(message_id)
    assert request is not None and request.state == "delivered"
    # The genuine follow-up still goes through, and leaves its proof on record.
    result = await pair.de.inbox.handle(genuine_row.envelope)
    assert (result.status, result.code) == ("receipt", None)
    [event] = await _events(pair.de, "receipt.proof")
    assert event.message_id == genuine_row.id
    assert dict(event.details) | {"digest": None} == {
        "digest": None,
        "outcome": "accepted",
        "receipted": message_id,
        "proof_leaf": genuine.leaf_index,
        "proof_size": size,
    }


async def test_an_old_checkpoint_sent_again_after_a_newer_one_is_not_cosigned_again(
    pair: Pair,
) -> None:
    old, _, note = await _witnessed_round(pair)
    await _request(pair)
    pair.clock.advance(timedelta(minutes=1))
    later = await _de_checkpoint(pair)
    assert (await pair.at.inbox.handle(later.envelope)).status == "accepted"
    newest = await pair.at.store.peer_checkpoint("DE.247")
    assert newest is not None and newest[0] > old
    # An hour on, DE's node asks AT to cosign its old view of the log once more.
    pair.clock.advance(timedelta(hours=1))
    row = await _send_checkpoint(pair, note, old, [])
    message_id = row.id
    result = await pair.at.inbox.handle(row.envelope)
    why = rf"the checkpoint \({old}\) is older than the one verified \({newest[0]}\)"
    await _assert_refused(pair.at, result, message_id, "E_AUDIT_PROOF", why)
    answer = await _answer_to(pair.at, message_id, COSIGNATURE)
    assert (await pair.de.inbox.handle(answer.envelope)).status == "accepted"
    [refused] = await _events(pair.de, "witness.refused")
    assert (refused.code, refused.details["known_size"]) == ("E_AUDIT_PROOF", newest[0])


async def test_no_new_checkpoint_goes_to_a_witness_while_the_last_is_still_in_the_outbox(
    pair: Pair,
) -> None:
    await _request(pair)
    first = await _de_checkpoint(pair)  # queued: no publisher runs here
    await _request(pair)
    pair.clock.advance(timedelta(hours=1))
    await issue_checkpoint(pair.de.store, "DE.247", pair.de.identity.keyset.sig)
    await pair.de.witnessing.after_checkpoint()
    assert [r.id for r in await _rows(pair.de, CHECKPOINT, "AT.247")] == [first.id]
    # Once the outbox gave up on it, the next checkpoint may go.
    await pair.de.store.update_delivery(
        first.id,
        state="failed",
        attempts=8,
        next_attempt_at=None,
        code="E_NO_RECEIPT",
        events=[],
        expect_state=["queued"],
    )
    await pair.de.witnessing.after_checkpoint()
    assert len(await _rows(pair.de, CHECKPOINT, "AT.247")) == 2
