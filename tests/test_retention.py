"""Crypto-shredding of closed cases (issue #7 item 8) on both stores, and its settings.

Cases are built as a node builds them: DE.247 submits through :func:`broker.outbox.submit`
and AT.247 takes the envelopes in through its :class:`~broker.inbox.Inbox`, so each case
has forms in both directions, receipts and the audit records the real paths write.
After a shredding, the forms are gone, the case's metadata stays, the audit log holds a
``case.shredded`` record and still verifies leaf by leaf, root and consistency.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from broker.audit.entry import entry_leaf_hash
from broker.audit.merkle import (
    MerkleLevels,
    MerkleTree,
    TreeState,
    consistency_proof,
    root_from_leaf_hashes,
    verify_consistency,
)
from broker.clock import FixedClock
from broker.config import RetentionConfig, load_config
from broker.errors import CaseUnknown, ConfigError, StateError
from broker.identity import Identity, load_identity
from broker.inbox import Inbox
from broker.lifecycle import Event
from broker.localnet import build_network
from broker.outbox import submit
from broker.replies import ReplyContext, build_reply
from broker.resources import read_json
from broker.retention import (
    REASONS,
    SHREDDED,
    ShredTarget,
    check_shred,
    ended_at,
    expired_cases,
    is_expired,
    shred_case,
    shred_event,
    shred_expired,
)
from broker.store import open_store
from broker.store.atrest import load_storage_key
from broker.store.auditlog import entry_of
from broker.store.base import Store
from tests.store.conftest import pg_database

__all__ = ["pg_database"]

T0 = datetime(2026, 11, 25, 3, 0, tzinfo=UTC)
DAY = timedelta(days=1)
ART29 = "coe.art29.preservation"
PERIOD = timedelta(days=30)


# -- fixtures: two nodes on one backend -------------------------------------------------------


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


@dataclass(frozen=True)
class Case:
    """A case as AT.247 (the requested party) holds it: its id and its inbound messages."""

    id: str
    messages: tuple[str, ...]


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.integration)])
def store_urls(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[str, str]:
    """Fresh store URLs for DE.247 and AT.247 on one backend (PostgreSQL: see pg_database)."""
    if request.param == "sqlite":
        return (f"sqlite://{tmp_path}/de.db", f"sqlite://{tmp_path}/at.db")
    database: str = request.getfixturevalue("pg_database")
    return (
        f"{database}?schema=de_{secrets.token_hex(5)}",
        f"{database}?schema=at_{secrets.token_hex(5)}",
    )


@pytest.fixture
async def pair(tmp_path: Path, store_urls: tuple[str, str]) -> AsyncIterator[Pair]:
    clock = FixedClock(T0)
    network = build_network(tmp_path / "net", ["AT.247", "DE.247"], now=T0 - 10 * DAY)
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


def _request_form() -> dict[str, Any]:
    form: dict[str, Any] = read_json("examples", f"{ART29}.json")
    return form


async def _deliver(pair: Pair, envelope: bytes) -> str:
    result = await pair.at.inbox.handle(envelope)
    assert (result.status, result.code) == ("accepted", None)
    assert result.message_id is not None
    return result.message_id


async def open_case(pair: Pair) -> Case:
    """DE.247 asks AT.247 to preserve data: the case is ``requested`` on both sides."""
    row = await submit(
        pair.de.store, pair.de.identity, pair.clock,
        form_type=ART29, form=_request_form(), recipient="AT.247",
    )  # fmt: skip
    return Case(row.case_id, (await _deliver(pair, row.envelope),))


async def withdraw(pair: Pair, case: Case) -> Case:
    """DE.247 withdraws its request: the case is ``withdrawn`` (terminal) on both sides."""
    context = ReplyContext(
        case_id=case.id, instrument=ART29, request_id=case.messages[0],
        me="DE.247", peer="AT.247", role="requester", now=pair.clock.now(),
    )  # fmt: skip
    form_type, form = build_reply("withdraw", context, motivation="The data were obtained.")
    row = await submit(
        pair.de.store, pair.de.identity, pair.clock,
        form_type=form_type, form=form, recipient="AT.247", case=case.id,
    )  # fmt: skip
    return Case(case.id, (*case.messages, await _deliver(pair, row.envelope)))


async def closed_case(pair: Pair) -> Case:
    """A case opened and withdrawn at the clock's time."""
    return await withdraw(pair, await open_case(pair))


async def _state(store: Store, case_id: str) -> str:
    found = await store.get_case(case_id)
    assert found is not None
    return found[0].state


async def _shredded(store: Store) -> dict[str, bool]:
    return {c.id: c.shredded for c in await store.list_cases(limit=1000)}


async def verified_root(store: Store) -> tuple[int, bytes, list[bytes]]:
    """Recompute the log from its records alone and check it against the stored head.

    Every record's leaf hash is recomputed from the record (its entry's RFC 8785 bytes)
    and compared with the stored one; the root over them must be the root of the tree
    state the store saved. Returns the size, the root and the leaf hashes.
    """
    leaves: list[bytes] = []
    while page := await store.audit_leaves(start=len(leaves), limit=500):
        for index, event, stored in page:
            assert index == len(leaves)
            assert entry_leaf_hash(entry_of(index, event)) == stored, f"leaf {index}"
            leaves.append(stored)
    size, state = await store.audit_head()
    root = MerkleTree.from_state(TreeState.from_bytes(state)).root()
    assert size == len(leaves)
    assert root_from_leaf_hashes(leaves) == root
    return size, root, leaves


# -- shredding one case -----------------------------------------------------------------------


async def test_shredding_a_closed_case_erases_its_forms_and_the_log_still_verifies(
    pair: Pair,
) -> None:
    case = await closed_case(pair)
    kept = await open_case(pair)
    at = pair.at.store
    assert await _state(at, case.id) == "withdrawn"
    for message_id in case.messages:
        assert await at.read_form("in", message_id) is not None
    old_size, old_root, _ = await verified_root(at)

    pair.clock.advance(PERIOD + DAY)
    result = await shred_case(at, case.id, at=pair.clock.now(), reason="retention")

    assert (result.already, result.forced, result.reason) == (False, False, "retention")
    assert (result.target.instrument, result.target.state) == (ART29, "withdrawn")
    # 1. The payload is gone: no form of the case can be read any more ...
    for message_id in case.messages:
        assert await at.read_form("in", message_id) is None
    # ... and only that case's: the other case is untouched.
    assert json.loads(await at.read_form("in", kept.messages[0]) or b"") == _request_form()
    assert await _shredded(at) == {case.id: True, kept.id: False}
    # 2. The metadata stays: the lifecycle, the messages, their digests.
    assert await _state(at, case.id) == "withdrawn"
    inbound, outbound = await at.case_messages(case.id)
    assert sorted(m.id for m in inbound) == sorted(case.messages)
    assert all(m.type == "msg.receipt" for m in outbound)
    # 3. The audit log records the erasure: ids and codes, no personal data.
    _, last = (await at.list_audit(case_id=case.id, limit=10_000))[-1]
    assert (last.event, last.case_id, last.message_id, last.peer, last.code) == (
        SHREDDED, case.id, None, None, None,
    )  # fmt: skip
    assert dict(last.details) == {
        "reason": "retention", "instrument": ART29, "state": "withdrawn", "forced": False,
    }  # fmt: skip
    assert last.at == pair.clock.now()
    # 4. The whole log still verifies, and extends the log as it was before: the
    # shredding appended one record and rewrote none.
    new_size, new_root, leaves = await verified_root(at)
    assert new_size == old_size + 1
    proof = consistency_proof(old_size, new_size, MerkleLevels(leaves).hash_range)
    verify_consistency(old_size, new_size, old_root, new_root, proof)
    # The requester's node holds its own copy of the case; it was not touched.
    assert await _shredded(pair.de.store) == {case.id: False, kept.id: False}


async def test_shredding_a_shredded_case_again_erases_and_records_nothing(pair: Pair) -> None:
    case = await closed_case(pair)
    at = pair.at.store
    first = await shred_case(at, case.id, at=pair.clock.now(), reason="order")
    size, root, _ = await verified_root(at)

    again = await shred_case(at, case.id, at=pair.clock.now(), reason="request", force=True)

    assert (first.already, again.already, again.forced) == (False, True, False)
    assert again.target.shredded
    assert (await verified_root(at))[:2] == (size, root)
    assert [e.event for _, e in await at.list_audit(case_id=case.id)].count(SHREDDED) == 1


async def test_an_open_case_is_refused_unless_forced(pair: Pair) -> None:
    case = await open_case(pair)
    at = pair.at.store
    size, root, _ = await verified_root(at)

    with pytest.raises(StateError) as caught:
        await shred_case(at, case.id, at=pair.clock.now(), reason="order")

    assert caught.value.code == "E_STATE"
    assert "'requested'" in caught.value.message
    # Nothing was erased or recorded.
    assert await at.read_form("in", case.messages[0]) is not None
    assert (await verified_root(at))[:2] == (size, root)
    assert await _shredded(at) == {case.id: False}

    result = await shred_case(at, case.id, at=pair.clock.now(), reason="order", force=True)

    assert (result.already, result.forced, result.target.state) == (False, True, "requested")
    assert await at.read_form("in", case.messages[0]) is None
    _, last = (await at.list_audit(case_id=case.id))[-1]
    assert (last.event, last.details["forced"], last.details["reason"]) == (SHREDDED, True, "order")
    assert (await verified_root(at))[0] == size + 1


async def test_an_unknown_case_is_refused(pair: Pair) -> None:
    await closed_case(pair)
    size, _, _ = await verified_root(pair.at.store)
    with pytest.raises(CaseUnknown) as caught:
        await shred_case(
            pair.at.store, "01a2115b-1e0a-75c0-b43a-a266b0b4d10a", at=T0, reason="order", force=True
        )
    assert caught.value.code == "E_CASE_UNKNOWN"
    assert (await verified_root(pair.at.store))[0] == size


# -- expiry -----------------------------------------------------------------------------------


async def test_expired_cases_are_exactly_the_terminal_ones_older_than_the_period(
    pair: Pair,
) -> None:
    at = pair.at.store
    oldest = await closed_case(pair)  # ended at T0
    ordered = await closed_case(pair)  # ended at T0, shredded on an order below
    still_open = await open_case(pair)  # opened at T0, never ends
    pair.clock.advance(2 * DAY)
    newer = await closed_case(pair)  # ended at T0 + 2d
    late = await open_case(pair)  # opened at T0 + 2d ...
    pair.clock.advance(3 * DAY)
    late = await withdraw(pair, late)  # ... ended at T0 + 5d
    await shred_case(at, ordered.id, at=pair.clock.now(), reason="order")

    assert await expired_cases(at, T0 + PERIOD, PERIOD) == []  # exactly the period: not more
    assert await expired_cases(at, T0 + PERIOD + timedelta(microseconds=1), PERIOD) == [oldest.id]
    assert await expired_cases(at, T0 + 5 * DAY + PERIOD + DAY, PERIOD) == [
        oldest.id, newer.id, late.id,
    ]  # fmt: skip
    assert still_open.id not in await expired_cases(at, T0 + 1000 * DAY, PERIOD)

    # A sweep shreds at most `limit`, oldest ending first, with reason "retention".
    now = T0 + 5 * DAY + PERIOD + DAY
    assert await shred_expired(at, now, PERIOD, limit=2) == 2
    assert await _shredded(at) == {
        oldest.id: True, ordered.id: True, newer.id: True, late.id: False, still_open.id: False,
    }  # fmt: skip
    assert await expired_cases(at, now, PERIOD) == [late.id]
    assert await shred_expired(at, now, PERIOD, limit=2) == 1
    assert await shred_expired(at, now, PERIOD, limit=2) == 0
    reasons = {
        e.case_id: e.details["reason"] for _, e in await at.list_audit() if e.event == SHREDDED
    }
    assert reasons == {
        ordered.id: "order", oldest.id: "retention", newer.id: "retention", late.id: "retention",
    }  # fmt: skip
    await verified_root(at)


# -- the pure decisions -----------------------------------------------------------------------


def _event(kind: str, at: datetime) -> Event:
    events = {
        "request": Event(type=ART29, by="requester", to="requested", at=at),
        "ack": Event(type="case.ack", by="requested", at=at),
        "withdrawal": Event(type="case.withdrawal", by="requester", at=at),
        "completed": Event(type="case.status", by="requested", status="completed", at=at),
    }
    return events[kind]


@pytest.mark.parametrize(
    ("kinds", "ended"),
    [
        ([], None),
        (["request"], None),
        (["request", "ack"], None),
        (["request", "withdrawal"], 1),
        (["request", "ack", "withdrawal"], 2),
        # A terminal state accepts a late "completed" status as a no-op: the case
        # ended when it became terminal, the late event does not restart the period.
        (["request", "withdrawal", "completed"], 1),
    ],
)
def test_a_lifecycle_ends_when_it_enters_its_terminal_states(
    kinds: list[str], ended: int | None
) -> None:
    history = [_event(kind, T0 + i * DAY) for i, kind in enumerate(kinds)]
    assert ended_at(ART29, history) == (None if ended is None else T0 + ended * DAY)


def test_a_history_the_machine_refuses_is_an_error_not_an_end() -> None:
    with pytest.raises(StateError):
        ended_at(ART29, [_event("request", T0 + DAY), _event("withdrawal", T0)])


@pytest.mark.parametrize(
    ("ended", "now", "expired"),
    [
        (None, T0 + 1000 * DAY, False),
        (T0, T0 + PERIOD, False),
        (T0, T0 + PERIOD + timedelta(microseconds=1), True),
        (T0, T0 - DAY, False),
    ],
)
def test_expiry_is_strictly_more_than_the_period(
    ended: datetime | None, now: datetime, expired: bool
) -> None:
    assert is_expired(ended, now, PERIOD) is expired


@pytest.mark.parametrize(
    ("target", "force", "refused"),
    [
        (ShredTarget("c", ART29, "withdrawn", terminal=True, shredded=False), False, None),
        (ShredTarget("c", ART29, "requested", terminal=False, shredded=False), False, "E_STATE"),
        (ShredTarget("c", ART29, "requested", terminal=False, shredded=False), True, None),
        (ShredTarget("c", None, None, terminal=False, shredded=False), False, "E_STATE"),
        (ShredTarget("c", None, None, terminal=False, shredded=False), True, None),
        # Shredded already (e.g. on an order while open): nothing to refuse.
        (ShredTarget("c", ART29, "requested", terminal=False, shredded=True), False, None),
    ],
)
def test_check_shred_fails_closed_on_a_case_not_over(
    target: ShredTarget, force: bool, refused: str | None
) -> None:
    if refused is None:
        check_shred(target, force=force)
        return
    with pytest.raises(StateError) as caught:
        check_shred(target, force=force)
    assert caught.value.code == refused


def test_the_shred_record_names_reason_instrument_and_state_only() -> None:
    target = ShredTarget("case-1", ART29, "withdrawn", terminal=True, shredded=False)
    event = shred_event(target, at=T0, reason="request", forced=False)
    assert (event.event, event.case_id, event.message_id, event.peer, event.code) == (
        "case.shredded", "case-1", None, None, None,
    )  # fmt: skip
    assert dict(event.details) == {
        "reason": "request", "instrument": ART29, "state": "withdrawn", "forced": False,
    }  # fmt: skip
    # It is a valid log entry (the store would refuse one that is not).
    entry_of(0, event)
    assert REASONS == ("retention", "order", "request")


# -- the [retention] settings ----------------------------------------------------------------

MINIMAL = """
participant = "AT.247"
keys = "keys"
directory = "directory.json"
store = "sqlite:at.db"
"""


def _config_file(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "node.toml"
    path.write_text(text)
    return path


def test_retention_is_off_by_default(tmp_path: Path) -> None:
    config = load_config(_config_file(tmp_path, MINIMAL), env={})
    assert config.retention == RetentionConfig(None, timedelta(hours=1))
    empty = MINIMAL + '[retention]\nclosed_case_period = ""\n'
    assert load_config(_config_file(tmp_path, empty), env={}).retention.closed_case_period is None


def test_retention_settings_from_the_file_and_the_environment(tmp_path: Path) -> None:
    text = MINIMAL + '[retention]\nclosed_case_period = "P3650D"\nsweep_interval = "PT10M"\n'
    config = load_config(_config_file(tmp_path, text), env={})
    assert config.retention == RetentionConfig(3650 * DAY, timedelta(minutes=10))
    env = {"EVB_RETENTION_CLOSED_CASE_PERIOD": "P30D", "EVB_RETENTION_SWEEP_INTERVAL": "PT5M"}
    config = load_config(_config_file(tmp_path, text), env=env)
    assert config.retention == RetentionConfig(PERIOD, timedelta(minutes=5))


@pytest.mark.parametrize(
    ("section", "fragment"),
    [
        ('closed_case_period = "P10Y"', "retention.closed_case_period"),  # no years
        ('closed_case_period = "PT0S"', "retention.closed_case_period"),
        ("closed_case_period = 0", "retention.closed_case_period"),
        ("closed_case_period = false", "retention.closed_case_period"),
        ('sweep_interval = "hourly"', "retention.sweep_interval"),
        ('sweep_interval = ""', "retention.sweep_interval"),
        ('period = "P30D"', "unknown setting retention.period"),
    ],
)
def test_retention_mistakes_are_config_errors(tmp_path: Path, section: str, fragment: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(_config_file(tmp_path, MINIMAL + f"[retention]\n{section}\n"), env={})
    assert fragment in caught.value.message
