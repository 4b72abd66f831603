"""A node's log exported from its store, verified, replayed and reported; tampering caught.

Two nodes of a generated network (DE.247 requests, AT.247 is requested) exchange real
envelopes through their inboxes (no RabbitMQ), on SQLite and on PostgreSQL; DE.247 and
FR.247 cosign AT.247's checkpoints. Then AT.247's log is exported and checked as an
auditor would, and its database is altered behind the store's back.
"""

from __future__ import annotations

import json
import secrets
import shutil
import subprocess
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from broker.audit.bundle import BundleReport, read_bundle_entries, verify_bundle
from broker.audit.checkpoint import cosign
from broker.audit.entry import entry_leaf_hash
from broker.audit.export import compare_with_live, export_bundle, verify_live
from broker.audit.issuer import checkpoint_verifiers, issue_checkpoint
from broker.audit.replay import replay
from broker.audit.report import compliance_report, to_csv, to_html, to_json
from broker.clock import FixedClock
from broker.config import load_config
from broker.crypto import b64u_encode
from broker.errors import AuditBundle, AuditSignature, AuditTampered, CaseUnknown
from broker.identity import Identity, load_identity
from broker.inbox import Inbox
from broker.localnet import build_network
from broker.outbox import submit
from broker.replies import ReplyContext, build_reply
from broker.resources import read_json
from broker.store import StorageKey, open_store
from broker.store.atrest import load_storage_key
from broker.store.auditlog import entry_of
from broker.store.base import Store
from tests.node.conftest import T0
from tests.store.conftest import Raw, pg_database

__all__ = ["pg_database"]

FORM_TYPE = "coe.art29.preservation"
VERIFY_SCRIPT = Path(__file__).resolve().parents[2] / "docs" / "verify_bundle.py"


@dataclass
class Side:
    identity: Identity
    store: Store
    inbox: Inbox
    url: str


@dataclass
class Net:
    de: Side
    at: Side
    fr: Identity
    clock: FixedClock
    cases: list[str]
    later_case: str
    second_at: datetime

    @property
    def verifiers(self) -> dict[str, Ed25519PublicKey]:
        sig = self.at.identity.keyset.sig
        return checkpoint_verifiers({sig.kid: sig.public().raw})

    @property
    def witnesses(self) -> dict[str, Ed25519PublicKey]:
        sigs = [self.de.identity.keyset.sig, self.fr.keyset.sig]
        return checkpoint_verifiers({s.kid: s.public().raw for s in sigs})


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.integration)])
def at_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh store URL for AT.247 (the node whose log is exported), on one backend."""
    if request.param == "sqlite":
        return f"sqlite://{tmp_path}/at.db"
    database: str = request.getfixturevalue("pg_database")
    return f"{database}?schema=at_{secrets.token_hex(5)}"


def _form() -> dict[str, Any]:
    form: dict[str, Any] = read_json("examples", f"{FORM_TYPE}.json")
    return form


async def _request(net: Net) -> str:
    """DE.247 requests preservation from AT.247; AT.247 accepts; the receipt returns."""
    row = await submit(
        net.de.store, net.de.identity, net.clock, form_type=FORM_TYPE, form=_form(),
        recipient="AT.247",
    )  # fmt: skip
    assert (await net.at.inbox.handle(row.envelope)).status == "accepted"
    inbound = await net.at.store.get_inbound(row.id)
    assert inbound is not None and inbound.receipt_id is not None
    receipt = await net.at.store.get_outbound(inbound.receipt_id)
    assert receipt is not None
    assert (await net.de.inbox.handle(receipt.envelope)).status == "receipt"
    return row.case_id


async def _acknowledge(net: Net, case: str) -> None:
    """AT.247 acknowledges the request (as ``evb reply ack`` does); DE.247 receives it."""
    inbound, _ = await net.at.store.case_messages(case)
    request = inbound[0]
    form_type, form = build_reply(
        "ack",
        ReplyContext(
            case_id=case, instrument=FORM_TYPE, request_id=request.id, me="AT.247",
            peer="DE.247", role="requested", now=net.clock.now(),
            received_at=request.received_at,
        ),
    )  # fmt: skip
    row = await submit(
        net.at.store, net.at.identity, net.clock, form_type=form_type, form=form,
        recipient="DE.247", case=case, in_reply_to=request.id,
    )  # fmt: skip
    assert (await net.de.inbox.handle(row.envelope)).status == "accepted"


def _private(identity: Identity) -> Ed25519PrivateKey:
    private = identity.keyset.sig.private
    assert isinstance(private, Ed25519PrivateKey)
    return private


async def _witness(net: Net, witness: Identity, when: int, *, latest_only: bool = False) -> None:
    """``witness`` cosigns AT.247's checkpoints (what audit.cosignature answers bring)."""
    sig = witness.keyset.sig
    kept = await net.at.store.list_checkpoints()
    for size, note in kept[-1:] if latest_only else kept:
        line = cosign(note, sig.kid, _private(witness), when)
        await net.at.store.record_witness_answer(witness.participant, size, (size, line), [])


@pytest.fixture
async def net(tmp_path: Path, at_url: str) -> AsyncIterator[Net]:
    clock = FixedClock(T0)
    network = build_network(
        tmp_path / "net", ["AT.247", "DE.247", "FR.247"], now=T0 - timedelta(days=10)
    )
    sides: list[Side] = []
    opened = []
    for participant, url in (("DE.247", f"sqlite://{tmp_path}/de.db"), ("AT.247", at_url)):
        config = load_config(network.configs[participant], env={})
        identity = load_identity(config, clock)
        cm = open_store(url, load_storage_key(config.storage_key_file), clock)
        store = await cm.__aenter__()
        opened.append(cm)
        inbox = Inbox(store, identity, clock, config.limits, config.retry_for)
        sides.append(Side(identity, store, inbox, url))
    fr = load_identity(load_config(network.configs["FR.247"], env={}), clock)
    net = Net(sides[0], sides[1], fr, clock, [], "", T0)
    try:
        # Case 1: requested, acknowledged. Checkpoint; DE.247 cosigns it.
        net.cases.append(await _request(net))
        clock.advance(timedelta(hours=2))
        await _acknowledge(net, net.cases[0])
        assert await issue_checkpoint(net.at.store, "AT.247", net.at.identity.keyset.sig)
        await _witness(net, net.de.identity, 1_800_000_000)
        # Case 2, a day later. Checkpoint; both witnesses cosign what they see.
        clock.advance(timedelta(days=1))
        net.second_at = clock.now()
        net.cases.append(await _request(net))
        assert await issue_checkpoint(net.at.store, "AT.247", net.at.identity.keyset.sig)
        await _witness(net, net.de.identity, 1_800_086_400)
        await _witness(net, net.fr, 1_800_086_400, latest_only=True)
        # Case 3, after the last checkpoint: not committed yet.
        clock.advance(timedelta(hours=1))
        net.later_case = await _request(net)
        yield net
    finally:
        for cm in opened:
            await cm.__aexit__(None, None, None)


async def _export(net: Net, out: Path, **options: Any) -> BundleReport:
    path = await export_bundle(
        net.at.store, participant="AT.247", out=out, now=net.clock.now(), **options
    )
    assert path == out
    return verify_bundle(out, verifiers=net.verifiers, witnesses=net.witnesses)


async def test_export_verify_replay_report_round_trip(net: Net, tmp_path: Path) -> None:
    report = await _export(net, tmp_path / "bundle")
    head, _ = await net.at.store.audit_head()
    checkpoints = [size for size, _ in await net.at.store.list_checkpoints()]
    # The whole committed log: entries 0 .. n - 1 of the latest checkpoint, no more.
    assert report.checkpoints == tuple(checkpoints) and report.tree_size == checkpoints[-1]
    assert report.entries == report.tree_size < head
    assert dict(report.cosignatures) == {"DE.247": tuple(checkpoints), "FR.247": (checkpoints[-1],)}
    assert report.meta.key_name == net.at.identity.keyset.sig.kid and report.meta.case is None
    entries = read_bundle_entries(tmp_path / "bundle")
    assert [e.index for e in entries] == list(range(report.tree_size))
    assert all(e.details.get("form") is None for e in entries)  # no payload in the log

    replayed = replay(entries)
    assert sorted(replayed.cases) == sorted(net.cases)
    for case in net.cases:
        found = await net.at.store.get_case(case)
        assert found is not None and replayed.cases[case].state == found[0].state
    assert replayed.cases[net.cases[0]].state != replayed.cases[net.cases[1]].state
    acknowledged = {d.rule: d.state for d in replayed.cases[net.cases[0]].deadlines}
    assert acknowledged["bc29.acknowledge"] == "met"
    # Against the live node: only the case recorded after the checkpoint differs.
    differences = await compare_with_live(net.at.store, replayed)
    assert [(d.case_id, d.what, d.log) for d in differences] == [(net.later_case, "case", "-")]

    figures = compliance_report(replayed, now=net.clock.now(), participant="AT.247")
    assert (figures.cases, figures.entries) == (2, report.entries)
    assert json.loads(to_json(figures))["cases"] == 2
    assert "AT.247" in to_html(figures) and "section,key,measure,value" in to_csv(figures)


async def test_a_case_bundle_holds_only_the_case_with_its_proofs(net: Net, tmp_path: Path) -> None:
    case = net.cases[0]
    report = await _export(net, tmp_path / "case", case=case)
    entries = read_bundle_entries(tmp_path / "case")
    assert report.meta.case == case and report.proofs == report.entries == len(entries) > 0
    assert {e.case_id for e in entries} == {case}
    assert report.checkpoints == (report.tree_size,)
    assert set(report.cosignatures) == {"DE.247", "FR.247"}
    differences = await compare_with_live(net.at.store, replay(entries), case=case)
    assert differences == []
    # Only what was recorded from a time on: the acknowledgement, not the request.
    later = await _export(net, tmp_path / "case-since", case=case, since=T0 + timedelta(hours=1))
    since_entries = read_bundle_entries(tmp_path / "case-since")
    assert 0 < later.entries < report.entries
    assert all(e.at >= T0 + timedelta(hours=1) for e in since_entries)
    with pytest.raises(CaseUnknown):
        await export_bundle(
            net.at.store, participant="AT.247", out=tmp_path / "none", case=net.later_case,
            now=net.clock.now(),
        )  # fmt: skip
    assert not (tmp_path / "none").exists()


async def test_since_proves_the_period_in_a_full_bundle(net: Net, tmp_path: Path) -> None:
    report = await _export(net, tmp_path / "since", since=net.second_at)
    entries = read_bundle_entries(tmp_path / "since")
    period = [e.index for e in entries if e.at >= net.second_at]
    # Full (every entry, to recompute the roots), the period's entries proven.
    assert report.entries == report.tree_size and 0 < len(period) < report.entries
    assert report.meta.since is not None and report.proofs == len(period)
    proofs = json.loads((tmp_path / "since" / "proofs.json").read_text())
    assert (proofs["case"], [p["index"] for p in proofs["entries"]]) == (None, period)


async def test_no_checkpoint_no_export(tmp_path: Path) -> None:
    clock = FixedClock(T0)
    async with open_store(f"sqlite://{tmp_path}/x.db", StorageKey.generate(), clock) as store:
        with pytest.raises(AuditBundle, match="no signed checkpoint"):
            await export_bundle(store, participant="AT.247", out=tmp_path / "b", now=T0)
    assert not (tmp_path / "b").exists()


async def test_the_live_log_verifies_in_place(net: Net) -> None:
    live = await verify_live(
        net.at.store, participant="AT.247", verifiers=net.verifiers, witnesses=net.witnesses,
        now=net.clock.now(),
    )  # fmt: skip
    head, _ = await net.at.store.audit_head()
    assert (live.entries, live.uncommitted) == (head, head - live.tree_size)
    assert live.uncommitted > 0 and set(live.cosignatures) == {"DE.247", "FR.247"}


async def test_a_forged_cosignature_fails_the_live_check(net: Net) -> None:
    # FR.247's key signs, DE.247's name is claimed: the line names a key DE.247 lacks.
    size = (await net.at.store.list_checkpoints())[0][0]
    note = (await net.at.store.list_checkpoints())[0][1]
    forged = cosign(note, net.de.identity.keyset.sig.kid, _private(net.fr), 1)
    await net.at.store.record_witness_answer("FR.247", size, (size, forged), [])
    with pytest.raises(AuditSignature):
        await verify_live(
            net.at.store, participant="AT.247", verifiers=net.verifiers,
            witnesses=net.witnesses, now=net.clock.now(),
        )  # fmt: skip


async def _rewrite(net: Net, index: int, **changes: Any) -> None:
    """Change leaf ``index``'s record and store its new leaf hash: a consistent rewrite."""
    [(_, event, _)] = await net.at.store.audit_leaves(start=index, limit=1)
    changed = replace(event, **changes)
    leaf = entry_leaf_hash(entry_of(index, changed))
    await Raw(net.at.url).execute(
        "UPDATE audit SET details = ?, leaf_hash = ? WHERE leaf_index = ?",
        json.dumps(dict(changed.details), sort_keys=True, separators=(",", ":")),
        leaf,
        index,
    )


TAMPERING = [
    # An UPDATE of the details: the record no longer hashes to its leaf hash.
    pytest.param(
        'UPDATE audit SET details = \'{"type":"forged"}\' WHERE leaf_index = 2',
        r"entry 2: its record does not hash",
        id="details",
    ),
    pytest.param(
        "UPDATE audit SET event = 'message.forged' WHERE leaf_index = 1",
        r"entry 1: its record does not hash",
        id="event",
    ),
    pytest.param(
        'UPDATE audit SET details = \'{"type":"\\u0001"}\' WHERE leaf_index = 0',
        r"entry 0: its record is no longer a valid entry",
        id="invalid",
    ),
    pytest.param("DELETE FROM audit WHERE leaf_index = 3", r"entry 3: missing", id="deleted"),
]


@pytest.mark.parametrize(("sql", "message"), TAMPERING)
async def test_an_altered_database_is_not_exported(
    net: Net, tmp_path: Path, sql: str, message: str
) -> None:
    await Raw(net.at.url).execute(sql)
    with pytest.raises(AuditTampered, match=message) as caught:
        await export_bundle(net.at.store, participant="AT.247", out=tmp_path / "b", now=T0)
    assert caught.value.code == "E_AUDIT_TAMPERED"
    assert not (tmp_path / "b").exists()
    with pytest.raises(AuditTampered, match=message):
        await verify_live(
            net.at.store, participant="AT.247", verifiers=net.verifiers,
            witnesses=net.witnesses, now=T0,
        )  # fmt: skip


async def test_a_consistent_rewrite_is_caught_by_the_signed_checkpoints(
    net: Net, tmp_path: Path
) -> None:
    # Record and leaf hash rewritten together: the record hashes fine, but the tree
    # head and the signed checkpoints still commit to the original.
    [(_, event, _)] = await net.at.store.audit_leaves(start=2, limit=1)
    await _rewrite(net, 2, details={**event.details, "type": "forged"})
    await export_bundle(net.at.store, participant="AT.247", out=tmp_path / "b", now=T0)
    with pytest.raises(AuditTampered, match="entry 0: the first that may have been altered"):
        verify_bundle(tmp_path / "b", verifiers=net.verifiers, witnesses=net.witnesses)
    with pytest.raises(AuditTampered, match="saved tree head"):
        await verify_live(
            net.at.store, participant="AT.247", verifiers=net.verifiers,
            witnesses=net.witnesses, now=T0,
        )  # fmt: skip


# -- docs/verify_bundle.py, the independent check ---------------------------------------


def _script(bundle: Path, public_key: bytes) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(VERIFY_SCRIPT), str(bundle), b64u_encode(public_key)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


async def test_the_independent_script_agrees(net: Net, tmp_path: Path) -> None:
    report = await _export(net, tmp_path / "bundle")
    public = net.at.identity.keyset.sig.public().raw
    ok = _script(tmp_path / "bundle", public)
    assert ok.returncode == 0, ok.stderr
    assert f"OK: {report.entries} entries" in ok.stdout and report.root_hex in ok.stdout

    # One entry altered by a byte.
    tampered = tmp_path / "tampered"
    shutil.copytree(tmp_path / "bundle", tampered)
    lines = (tampered / "entries.jsonl").read_bytes().split(b"\n")
    altered = lines[1].replace(b'"at":"2026-', b'"at":"2025-', 1)
    assert altered != lines[1]
    lines[1] = altered
    (tampered / "entries.jsonl").write_bytes(b"\n".join(lines))
    failed = _script(tampered, public)
    assert failed.returncode == 1 and "FAIL" in failed.stderr and "root" in failed.stderr

    # Another node's key.
    other = _script(tmp_path / "bundle", net.de.identity.keyset.sig.public().raw)
    assert other.returncode == 1 and "FAIL" in other.stderr
