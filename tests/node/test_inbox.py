"""The inbox pipeline against both stores, without RabbitMQ: every refusal has its code.

Two nodes (DE.247 sends, AT.247 receives) share a generated network; envelopes are
taken from the sender's outbox and handed to the receiver's :class:`Inbox` as raw
bytes, exactly as a delivery would bring them.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from broker import ids
from broker.clock import FixedClock
from broker.config import load_config
from broker.crypto import b64u_decode, b64u_encode
from broker.envelope import Envelope, _seal_form
from broker.errors import StoreError
from broker.identity import Identity, load_identity
from broker.inbox import Inbox
from broker.localnet import build_network
from broker.outbox import seal_receipt, submit
from broker.resources import read_json
from broker.store import open_store
from broker.store.atrest import load_storage_key
from broker.store.base import Store
from tests.node.conftest import T0

FORM_TYPE = "coe.art29.preservation"


@dataclass
class Side:
    identity: Identity
    store: Store
    inbox: Inbox


@dataclass
class Pair:
    de: Side
    at: Side
    clock: FixedClock


def _form() -> dict[str, Any]:
    form: dict[str, Any] = read_json("examples", f"{FORM_TYPE}.json")
    return form


@pytest.fixture
async def pair(tmp_path: Path, store_urls: tuple[str, str]) -> AsyncIterator[Pair]:
    clock = FixedClock(T0)
    network = build_network(
        tmp_path / "net", ["AT.247", "DE.247", "FR.247"], now=T0 - timedelta(days=10)
    )
    sides: list[Side] = []
    stores = []
    for participant, url in zip(("DE.247", "AT.247"), store_urls, strict=True):
        config = load_config(network.configs[participant], env={})
        identity = load_identity(config, clock)
        cm = open_store(url, load_storage_key(config.storage_key_file), clock)
        store = await cm.__aenter__()
        stores.append(cm)
        sides.append(
            Side(identity, store, Inbox(store, identity, clock, config.limits, config.retry_for))
        )
    try:
        yield Pair(de=sides[0], at=sides[1], clock=clock)
    finally:
        for cm in stores:
            await cm.__aexit__(None, None, None)


async def _send(pair: Pair, **overrides: Any) -> bytes:
    row = await submit(
        pair.de.store,
        pair.de.identity,
        pair.clock,
        form_type=overrides.pop("form_type", FORM_TYPE),
        form=overrides.pop("form", _form()),
        recipient=overrides.pop("recipient", "AT.247"),
        **overrides,
    )
    return row.envelope


async def _receipt_bytes(store: Store, message_id: str) -> bytes:
    inbound = await store.get_inbound(message_id)
    assert inbound is not None and inbound.receipt_id is not None
    receipt = await store.get_outbound(inbound.receipt_id)
    assert receipt is not None
    return receipt.envelope


async def test_accepted_message_gets_a_positive_receipt_that_delivers(pair: Pair) -> None:
    raw = await _send(pair)
    message_id = json.loads(raw)["id"]
    result = await pair.at.inbox.handle(raw)
    assert (result.status, result.code, result.message_id) == ("accepted", None, message_id)
    inbound = await pair.at.store.get_inbound(message_id)
    assert inbound is not None and inbound.status == "accepted" and inbound.sealed_by == "DE.247"
    form = await pair.at.store.read_form("in", message_id)
    assert form is not None and json.loads(form) == _form()
    receipt_raw = await _receipt_bytes(pair.at.store, message_id)
    receipt_env = Envelope.model_validate_json(receipt_raw)
    assert (receipt_env.type, receipt_env.to, receipt_env.in_reply_to) == (
        "msg.receipt",
        "DE.247",
        message_id,
    )
    # The receipt, back at the sender, moves the outbox row to delivered.
    back = await pair.de.inbox.handle(receipt_raw)
    assert back.status == "receipt"
    row = await pair.de.store.get_outbound(message_id)
    assert row is not None and row.state == "delivered" and row.receipt == receipt_raw
    # A duplicate receipt changes nothing.
    again = await pair.de.inbox.handle(receipt_raw)
    assert again.status == "duplicate"
    row = await pair.de.store.get_outbound(message_id)
    assert row is not None and row.state == "delivered"


@pytest.mark.parametrize("races", [1, 2, 100])
async def test_receipt_that_overtakes_the_sent_update_still_delivers(
    pair: Pair, monkeypatch: pytest.MonkeyPatch, races: int
) -> None:
    # The publisher loop marks the row sent (queued -> sent) while the receipt is being
    # applied: the receipt's compare-and-set loses and must re-read, never drop it.
    raw = await _send(pair)
    message_id = json.loads(raw)["id"]
    assert (await pair.at.inbox.handle(raw)).status == "accepted"
    receipt_raw = await _receipt_bytes(pair.at.store, message_id)
    store = pair.de.store
    real_update = store.update_delivery
    lost = 0

    async def racing_update(row_id: str, **kwargs: Any) -> bool:
        nonlocal lost
        if row_id == message_id and lost < races:
            lost += 1
            row = await store.get_outbound(row_id)
            assert row is not None
            # The publisher's concurrent update lands first (a row that keeps changing
            # flips between two states).
            await real_update(
                row_id,
                state="queued" if row.state == "sent" else "sent",
                attempts=row.attempts + 1,
                next_attempt_at=row.next_attempt_at,
                code=None,
                events=[],
            )
        return await real_update(row_id, **kwargs)

    monkeypatch.setattr(store, "update_delivery", racing_update)
    if races < 8:
        assert (await pair.de.inbox.handle(receipt_raw)).status == "receipt"
        assert lost == races
    else:
        # A row that never settles: the delivery is requeued (store error), and its
        # redelivery, a duplicate of the recorded receipt, applies it once things calm.
        with pytest.raises(StoreError):
            await pair.de.inbox.handle(receipt_raw)
        monkeypatch.setattr(store, "update_delivery", real_update)
        assert (await pair.de.inbox.handle(receipt_raw)).status == "duplicate"
    row = await store.get_outbound(message_id)
    assert row is not None and (row.state, row.receipt) == ("delivered", receipt_raw)


async def test_duplicate_takes_no_second_effect_and_gets_the_same_receipt(pair: Pair) -> None:
    raw = await _send(pair)
    message_id = json.loads(raw)["id"]
    assert (await pair.at.inbox.handle(raw)).status == "accepted"
    receipt_before = await _receipt_bytes(pair.at.store, message_id)
    # The same signed bytes, re-encoded with whitespace: the same message.
    spaced = json.dumps(json.loads(raw), indent=1).encode()
    for again in (raw, spaced):
        result = await pair.at.inbox.handle(again)
        assert (result.status, result.code) == ("duplicate", None)
    assert await _receipt_bytes(pair.at.store, message_id) == receipt_before
    received = [e for _, e in await pair.at.store.list_audit(message_id=message_id)]
    assert [e.event for e in received].count("message.received") == 1
    assert [e.event for e in received].count("message.duplicate") == 2
    assert len(await pair.at.store.list_inbound()) == 1


async def test_known_id_with_other_envelope_is_a_replay(pair: Pair) -> None:
    raw = await _send(pair)
    first = json.loads(raw)
    assert (await pair.at.inbox.handle(raw)).status == "accepted"
    # The same id, signed again by the genuine sender over another form.
    other = _form()
    other["preservation_days"] = 90
    forged = _seal_form(
        form_type=FORM_TYPE,
        form_data=other,
        sender="DE.247",
        recipient="AT.247",
        directory=pair.de.identity.directory,
        signer=pair.de.identity.keyset.sig,
        sealer=pair.de.identity.keyset.seal,
        now=pair.clock.now(),
        case=first["case"],
        in_reply_to=None,
        priority="normal",
        signer_pq=None,
        message_id=first["id"],
    ).to_bytes()
    result = await pair.at.inbox.handle(forged)
    assert (result.status, result.code) == ("quarantined", "E_REPLAY")
    entries = await pair.at.store.list_quarantine()
    assert [(e.code, e.authenticated, e.message_id) for e in entries] == [
        ("E_REPLAY", True, first["id"])
    ]


def _tamper_signature(raw: bytes) -> bytes:
    data = json.loads(raw)
    value = bytearray(b64u_decode(data["sig"]["value"]))
    value[0] ^= 1
    data["sig"]["value"] = b64u_encode(bytes(value))
    return json.dumps(data).encode()


def _tamper_ciphertext(raw: bytes) -> bytes:
    data = json.loads(raw)
    ct = bytearray(b64u_decode(data["payload"]["ct"]))
    ct[-1] ^= 1
    data["payload"]["ct"] = b64u_encode(bytes(ct))
    return json.dumps(data).encode()


@pytest.mark.parametrize(
    ("mutate", "code"),
    [
        (lambda raw: b"\x00\xffnot json at all", "E_PARSE"),
        (lambda raw: b"[1, 2, 3]", "E_SCHEMA"),
        (lambda raw: raw[:-10], "E_PARSE"),
        (lambda raw: raw + b" " * (3 * 1024 * 1024), "E_TOO_LARGE"),
        (_tamper_signature, "E_SIG_INVALID"),
        # The ciphertext is covered by the node signature too.
        (_tamper_ciphertext, "E_SIG_INVALID"),
        (lambda raw: raw.replace(b'"evb":1', b'"evb":2'), "E_SCHEMA"),
    ],
    ids=["garbage", "array", "truncated", "oversized", "signature", "ciphertext", "version"],
)
async def test_unauthenticated_input_is_quarantined_without_receipt(
    pair: Pair, mutate: Any, code: str
) -> None:
    raw = mutate(await _send(pair))
    result = await pair.at.inbox.handle(raw)
    assert (result.status, result.code) == ("quarantined", code)
    [entry] = await pair.at.store.list_quarantine()
    assert (entry.code, entry.authenticated, entry.state, entry.size) == (
        code,
        False,
        "held",
        len(raw),
    )
    kept = await pair.at.store.get_quarantine(entry.id)
    assert kept is not None and kept.raw == raw
    assert await pair.at.store.list_inbound() == []
    assert await pair.at.store.list_outbound() == []
    events = [e for _, e in await pair.at.store.list_audit()]
    assert [(e.event, e.code) for e in events] == [("message.quarantined", code)]


async def test_message_for_another_node_is_rejected_with_a_negative_receipt(pair: Pair) -> None:
    raw = await _send(pair, recipient="FR.247")
    message_id = json.loads(raw)["id"]
    result = await pair.at.inbox.handle(raw)
    assert (result.status, result.code) == ("rejected", "E_NOT_RECIPIENT")
    receipt = Envelope.model_validate_json(await _receipt_bytes(pair.at.store, message_id))
    assert receipt.to == "DE.247"
    [entry] = await pair.at.store.list_quarantine()
    assert (entry.code, entry.authenticated) == ("E_NOT_RECIPIENT", True)


async def test_forbidden_type_is_rejected(pair: Pair) -> None:
    # A sender whose own policy check was bypassed: AT's directory forbids a 24/7
    # contact point to send an EPOC (only judicial authorities issue them).

    class Permissive:
        def __init__(self, inner: Any) -> None:
            self.inner = inner

        def __getattr__(self, name: str) -> Any:
            return getattr(self.inner, name)

        def check_route(self, sender: str, recipient: str, message_type: str) -> None:
            return None

    form: dict[str, Any] = read_json("examples", "eu.epoc.json")
    raw = _seal_form(
        form_type="eu.epoc",
        form_data=form,
        sender="DE.247",
        recipient="AT.247",
        directory=Permissive(pair.de.identity.directory),
        signer=pair.de.identity.keyset.sig,
        sealer=pair.de.identity.keyset.seal,
        now=pair.clock.now(),
        case=None,
        in_reply_to=None,
        priority="normal",
        signer_pq=None,
        message_id=None,
    ).to_bytes()
    result = await pair.at.inbox.handle(raw)
    assert (result.status, result.code) == ("rejected", "E_POLICY_FORBIDDEN")


@pytest.mark.parametrize(
    "shift", [timedelta(days=-3), timedelta(minutes=10)], ids=["old", "future"]
)
async def test_clock_skew_is_rejected_and_a_duplicate_gets_the_same_negative_receipt(
    pair: Pair, shift: timedelta
) -> None:
    pair.clock.advance(shift)
    raw = await _send(pair)
    pair.clock.advance(-shift)
    message_id = json.loads(raw)["id"]
    result = await pair.at.inbox.handle(raw)
    assert (result.status, result.code) == ("rejected", "E_CLOCK_SKEW")
    negative = await _receipt_bytes(pair.at.store, message_id)
    again = await pair.at.inbox.handle(raw)
    assert (again.status, again.code) == ("duplicate", "E_CLOCK_SKEW")
    assert await _receipt_bytes(pair.at.store, message_id) == negative
    # At the sender, the negative receipt moves the message to rejected.
    assert (await pair.de.inbox.handle(negative)).status == "receipt"
    row = await pair.de.store.get_outbound(message_id)
    assert row is not None and (row.state, row.code) == ("rejected", "E_CLOCK_SKEW")


async def test_resend_within_the_retry_window_is_never_aged_out(pair: Pair) -> None:
    raw = await _send(pair)
    assert (await pair.at.inbox.handle(raw)).status == "accepted"
    pair.clock.advance(timedelta(days=5))  # beyond the age window: dedup answers first
    assert (await pair.at.inbox.handle(raw)).status == "duplicate"


async def test_dead_lettered_delivery_is_quarantined(pair: Pair) -> None:
    raw = await _send(pair)
    result = await pair.at.inbox.handle(raw, dead_lettered=True)
    assert (result.status, result.code) == ("quarantined", "E_DELIVERY_LIMIT")


@pytest.mark.parametrize(
    ("unknown", "code"), [(True, "E_RECEIPT_UNKNOWN"), (False, "E_RECEIPT_MISMATCH")]
)
async def test_receipts_that_do_not_match_are_refused(pair: Pair, unknown: bool, code: str) -> None:
    raw = await _send(pair)
    envelope = Envelope.model_validate_json(raw)
    # AT signs a receipt for a message DE never sent, or for other bytes.
    named = envelope.model_copy(update={"id": ids.uuid7()}) if unknown else envelope
    receipt = seal_receipt(pair.at.identity, pair.clock, envelope=named, digest="0" * 64)
    result = await pair.de.inbox.handle(receipt.envelope)
    assert (result.status, result.code) == ("rejected", code)
    row = await pair.de.store.get_outbound(envelope.id)
    assert row is not None and row.state == "queued"
    [entry] = await pair.de.store.list_quarantine()
    assert entry.code == code
    # A receipt is never answered with a receipt.
    assert [r.type for r in await pair.de.store.list_outbound()] == [FORM_TYPE]


def _sealed(pair: Pair, form_type: str, form: dict[str, Any], case: str) -> bytes:
    """Seal a reply as DE's node would, past its own case checks (a misbehaving peer)."""
    envelope = pair.de.identity.seal(
        form_type=form_type, form=form, recipient="AT.247", clock=pair.clock, case=case
    )
    return envelope.to_bytes()


@pytest.mark.parametrize(
    ("form_type", "example", "known_case", "code"),
    [
        ("case.ack", "case.ack", False, "E_CASE_UNKNOWN"),
        ("case.status", "case.status", True, "E_STATE"),  # only the requested party's
        ("case.refusal", "case.refusal", True, "E_GROUND"),  # the requester never refuses
        (FORM_TYPE, FORM_TYPE, True, "E_STATE"),  # a second request in one case
    ],
)
async def test_a_message_that_does_not_fit_its_case_is_rejected(
    pair: Pair, form_type: str, example: str, known_case: bool, code: str
) -> None:
    request = json.loads(await _send(pair))
    assert (await pair.at.inbox.handle(json.dumps(request).encode())).status == "accepted"
    case = request["case"] if known_case else ids.uuid7()
    form: dict[str, Any] = read_json("examples", f"{example}.json")
    if "instrument" in form:
        form["instrument"] = FORM_TYPE
    if form_type == "case.refusal":
        form.update(ground="political_offence", article="ETS 185 Art 29(5)(a)")
        form.pop("refused_items")
        form["partial"] = False
    if form_type == "case.status":
        form.update(status="preserved", preserved_until="2027-03-01T00:00:00.000Z")
    raw = _sealed(pair, form_type, form, case)
    result = await pair.at.inbox.handle(raw)
    assert (result.status, result.code) == ("rejected", code)
    # Quarantined, answered with a negative receipt, and the case did not move.
    [entry] = await pair.at.store.list_quarantine()
    assert entry.code == code and entry.authenticated
    found = await pair.at.store.get_case(request["case"])
    assert found is not None and found[0].state == "requested" and found[0].events == 1
    receipt = json.loads(await _receipt_bytes(pair.at.store, json.loads(raw)["id"]))
    assert receipt["type"] == "msg.receipt"
