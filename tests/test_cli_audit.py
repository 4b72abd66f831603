"""`evb audit export|verify|replay|report` on a node's store (no RabbitMQ needed).

DE.247 sends requests with `evb send`, AT.247 receives them through its inbox and
answers with `evb reply`; DE.247 cosigns AT.247's checkpoints. Then AT.247's log is
exported, verified by an auditor holding only the bundle and the trust directory,
replayed against the live node, reported on, and tampered with.
"""

from __future__ import annotations

import asyncio
import json
import secrets
from collections.abc import Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from broker.audit.checkpoint import cosign
from broker.cli import main
from broker.clock import SystemClock
from broker.config import load_config
from broker.identity import load_identity
from broker.inbox import Inbox
from broker.localnet import LocalNetwork, build_network
from broker.resources import schema_root
from broker.store import open_store
from broker.store.atrest import load_storage_key
from tests.store.conftest import Raw, pg_database

__all__ = ["pg_database"]

AT, DE, FR = "AT.247", "DE.247", "FR.247"
FORM_TYPE = "coe.art29.preservation"


@dataclass
class Node:
    """The generated network and the file paths the commands take."""

    network: LocalNetwork
    tmp: Path

    def config(self, participant: str = AT) -> str:
        return str(self.network.configs[participant])

    @property
    def directory(self) -> str:
        return str(self.network.directory)

    def store_url(self, participant: str = AT) -> str:
        return load_config(self.network.configs[participant], env={}).store


def _example() -> str:
    return str(Path(str(schema_root())) / "examples" / f"{FORM_TYPE}.json")


def _deliver(node: Node, sender: str, recipient: str, message_id: str) -> None:
    """Hand a queued envelope to the recipient's inbox, and its receipt back."""

    async def run() -> None:
        clock = SystemClock()
        async with AsyncExitStack() as stack:
            sides = {}
            for participant in (sender, recipient):
                config = load_config(node.network.configs[participant], env={})
                store = await stack.enter_async_context(
                    open_store(config.store, load_storage_key(config.storage_key_file), clock)
                )
                identity = load_identity(config, clock)
                inbox = Inbox(store, identity, clock, config.limits, config.retry_for)
                sides[participant] = (store, inbox)
            row = await sides[sender][0].get_outbound(message_id)
            assert row is not None
            assert (await sides[recipient][1].handle(row.envelope)).status == "accepted"
            inbound = await sides[recipient][0].get_inbound(message_id)
            assert inbound is not None and inbound.receipt_id is not None
            receipt = await sides[recipient][0].get_outbound(inbound.receipt_id)
            assert receipt is not None
            assert (await sides[sender][1].handle(receipt.envelope)).status == "receipt"

    asyncio.run(run())


def _cosign(node: Node, witness: str) -> int:
    """``witness`` cosigns AT.247's kept checkpoints; return how many."""

    async def run() -> int:
        clock = SystemClock()
        at = load_config(node.network.configs[AT], env={})
        sig = load_identity(load_config(node.network.configs[witness], env={}), clock).keyset.sig
        assert isinstance(sig.private, Ed25519PrivateKey)
        async with open_store(at.store, load_storage_key(at.storage_key_file), clock) as store:
            kept = await store.list_checkpoints()
            for size, note in kept:
                line = cosign(note, sig.kid, sig.private, 1_800_000_000)
                await store.record_witness_answer(witness, size, (size, line), [])
        return len(kept)

    return asyncio.run(run())


def _request(node: Node, capsys: pytest.CaptureFixture[str]) -> str:
    """DE.247 sends a request to AT.247, which receives it; return the case id."""
    send = ["send", "--config", node.config(DE), "--type", FORM_TYPE, "--to", AT, "--json"]
    assert main([*send, _example()]) == 0
    sent = json.loads(capsys.readouterr().out)
    _deliver(node, DE, AT, sent["message_id"])
    capsys.readouterr()
    case: str = sent["case"]
    return case


def _reply(node: Node, capsys: pytest.CaptureFixture[str], *args: str) -> None:
    """AT.247 replies (``evb reply``) and DE.247 receives the reply."""
    assert main(["reply", "--config", node.config(AT), "--json", *args]) == 0
    _deliver(node, AT, DE, json.loads(capsys.readouterr().out)["message_id"])
    capsys.readouterr()


def _build(tmp_path: Path, pg: str | None) -> Node:
    network = build_network(
        tmp_path / "net",
        [AT, DE, FR],
        now=datetime.now(UTC) - timedelta(minutes=1),
        store="sqlite" if pg is None else "postgresql",
        pg_dsn=pg,
    )
    if pg is not None:
        # build_network names schemas after participants: give this test its own.
        suffix = secrets.token_hex(4)
        for path in network.configs.values():
            text = path.read_text()
            path.write_text(text.replace("schema=evb_", f"schema=evb_{suffix}_"))
    return Node(network, tmp_path)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.integration)])
def node(request: pytest.FixtureRequest, tmp_path: Path) -> Node:
    """A network whose AT.247 store lives on SQLite or PostgreSQL."""
    pg = request.getfixturevalue("pg_database") if request.param == "postgres" else None
    return _build(tmp_path, pg)


@pytest.fixture
def sqlite_node(tmp_path: Path) -> Node:
    return _build(tmp_path, None)


@pytest.fixture
def cases(node: Node, capsys: pytest.CaptureFixture[str]) -> list[str]:
    """Two cases at AT.247: one acknowledged, one only requested."""
    first = _request(node, capsys)
    _reply(node, capsys, "ack", first)
    return [first, _request(node, capsys)]


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    status = main(list(argv))
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def test_export_verify_replay_report(
    node: Node, cases: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    bundle = str(node.tmp / "bundle")
    # Export: a fresh checkpoint first, so every entry is in.
    status, out, _ = _run(capsys, "audit", "export", "--config", node.config(), "-o", bundle)
    assert status == 0, out
    assert out.startswith(f"exported {bundle}") and "issued for this export" in out
    assert "not yet covered" not in out
    # DE.247 witnesses it; the next export carries its cosignature.
    assert _cosign(node, DE) == 1
    with_cosig = str(node.tmp / "cosigned")
    export = ["audit", "export", "--config", node.config(), "--no-checkpoint", "--json"]
    status, out, _ = _run(capsys, *export, "-o", with_cosig)
    assert status == 0, out
    exported = json.loads(out)
    assert exported["issued_checkpoint"] is None and exported["uncommitted"] == 0
    assert exported["cosignatures"] == {DE: [exported["tree_size"]]}

    # The auditor: the bundle and the trust directory, no node.
    status, out, _ = _run(capsys, "audit", "verify", with_cosig, "--directory", node.directory)
    assert status == 0 and out.startswith("valid: evb/AT.247: ") and "cosigned by DE.247" in out
    status, out, _ = _run(capsys, "audit", "verify", bundle, "--config", node.config(), "--json")
    assert status == 0 and json.loads(out)["valid"] is True
    # A checkpoint the auditor kept from before: the new bundle must extend it.
    [known] = (node.tmp / "bundle" / "checkpoints").iterdir()
    verify_known = ["audit", "verify", with_cosig, "--directory", node.directory, "--json"]
    status, out, _ = _run(capsys, *verify_known, "--known", str(known))
    assert status == 0 and json.loads(out)["known"] == 1
    status, out, _ = _run(capsys, "audit", "verify", "--live", "--config", node.config())
    assert status == 0 and out.startswith("valid: live log")

    # Replay: every case and its deadlines, from the bundle alone.
    status, out, _ = _run(capsys, "audit", "replay", with_cosig, "--directory", node.directory)
    assert status == 0 and "verified" in out and all(case in out for case in cases)
    assert "bc29.acknowledge" in out
    replay_json = ["audit", "replay", with_cosig, "--directory", node.directory, "--json"]
    status, out, _ = _run(capsys, *replay_json)
    replayed = {c["case_id"]: c for c in json.loads(out)["cases"]}
    assert replayed[cases[0]]["state"] != replayed[cases[1]]["state"]
    assert {d["rule"]: d["state"] for d in replayed[cases[0]]["deadlines"]} == {
        "bc29.acknowledge": "met"
    }
    against = ["audit", "replay", with_cosig, "--against-live", "--config", node.config()]
    status, out, _ = _run(capsys, *against)
    assert status == 0 and "agrees with the live node: 2 case(s)" in out

    # Reports, in the three formats.
    for fmt in ("html", "json", "csv"):
        target = node.tmp / f"report.{fmt}"
        report = ["audit", "report", with_cosig, "--directory", node.directory, "--format", fmt]
        status, out, _ = _run(capsys, *report, "-o", str(target))
        assert status == 0 and out.startswith(f"wrote {target}: {fmt} report of AT.247, 2 case")
    assert json.loads((node.tmp / "report.json").read_text())["cases"] == 2
    assert (node.tmp / "report.html").read_text().lstrip().lower().startswith("<!doctype html")
    assert (node.tmp / "report.csv").read_text().startswith("section,key,measure,value")


def test_a_case_bundle_and_a_period(sqlite_node: Node, capsys: pytest.CaptureFixture[str]) -> None:
    node = sqlite_node
    first = _request(node, capsys)
    _reply(node, capsys, "ack", first)
    _request(node, capsys)
    case_bundle = str(node.tmp / "case")
    export = ["audit", "export", "--config", node.config(), "--json"]
    status, out, _ = _run(capsys, *export, "--case", first, "-o", case_bundle)
    exported = json.loads(out)
    assert status == 0 and exported["case"] == first
    assert exported["proofs"] == exported["entries"] > 0
    status, out, _ = _run(capsys, "audit", "verify", case_bundle, "--directory", node.directory)
    assert status == 0 and out.startswith(f"valid: case {first} of evb/AT.247: ")
    against = ["audit", "replay", case_bundle, "--against-live", "--config", node.config()]
    status, out, _ = _run(capsys, *against)
    assert status == 0 and "agrees with the live node: 1 case(s)" in out

    # Since tomorrow: a full bundle, no entry in the period.
    tomorrow = (datetime.now(UTC) + timedelta(days=1)).date().isoformat()
    period = str(node.tmp / "period")
    status, out, _ = _run(capsys, *export, "--since", tomorrow, "-o", period)
    exported = json.loads(out)
    assert status == 0 and exported["since"].startswith(tomorrow) and exported["proofs"] == 0
    assert exported["entries"] == exported["tree_size"]
    earlier = str(node.tmp / "earlier")
    status, out, _ = _run(capsys, *export, "--since", "2000-01-01", "-o", earlier)
    exported = json.loads(out)
    assert status == 0 and exported["proofs"] == exported["entries"] == exported["tree_size"]

    status, out, _ = _run(
        capsys, *export, "--case", "01a2115b-1e0a-75c0-b43a-a266b0b4d10a", "-o", str(node.tmp / "x")
    )
    assert status == 1 and out.startswith("E_CASE_UNKNOWN\t")
    assert not (node.tmp / "x").exists()


def test_a_tampered_database_is_named_by_entry(
    node: Node, cases: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    asyncio.run(
        Raw(node.store_url()).execute(
            'UPDATE audit SET details = \'{"type":"forged"}\' WHERE leaf_index = 3'
        )
    )
    bundle = node.tmp / "bundle"
    status, out, _ = _run(capsys, "audit", "export", "--config", node.config(), "-o", str(bundle))
    assert status == 1 and not bundle.exists()
    assert out.startswith("E_AUDIT_TAMPERED\t\tentry 3: ") and "database was altered" in out
    assert len(out.splitlines()) == 1
    status, out, _ = _run(capsys, "audit", "verify", "--live", "--config", node.config())
    assert status == 1 and out.startswith("E_AUDIT_TAMPERED\t\tentry 3: ")


def _entries(bundle: Path) -> list[bytes]:
    return (bundle / "entries.jsonl").read_bytes().split(b"\n")[:-1]


def _rewrite_line(bundle: Path, number: int, old: bytes, new: bytes) -> None:
    lines = _entries(bundle)
    changed = lines[number].replace(old, new, 1)
    assert changed != lines[number]
    lines[number] = changed
    (bundle / "entries.jsonl").write_bytes(b"".join(line + b"\n" for line in lines))


def _not_canonical(bundle: Path) -> None:
    _rewrite_line(bundle, 2, b'"v":1}', b'"v":1 }')


def _altered_time(bundle: Path) -> None:
    # Still a canonical entry: only the signed checkpoint shows the change.
    _rewrite_line(bundle, 2, b'"at":"2', b'"at":"1')


def _drop_last_entry(bundle: Path) -> None:
    lines = _entries(bundle)
    (bundle / "entries.jsonl").write_bytes(b"".join(line + b"\n" for line in lines[:-1]))


def _claim_other_node(bundle: Path) -> None:
    meta = json.loads((bundle / "bundle.json").read_text())
    (bundle / "bundle.json").write_text(json.dumps({**meta, "participant": DE}))


def _forge_cosignature(bundle: Path) -> None:
    [sig] = (bundle / "cosignatures" / DE).iterdir()
    line = sig.read_text()
    head, payload = line.rsplit(" ", 1)
    flipped = payload[:20] + ("A" if payload[20] != "A" else "B") + payload[21:]
    sig.write_text(f"{head} {flipped}")


@pytest.mark.parametrize(
    ("tamper", "expected"),
    [
        (_not_canonical, "E_AUDIT_BUNDLE\t\tentries.jsonl line 2: not an entry"),
        (_altered_time, "E_AUDIT_TAMPERED\t\tentry 0: the first that may have been altered"),
        (_drop_last_entry, "E_AUDIT_TAMPERED\t\tentry "),
        (_claim_other_node, "E_AUDIT_BUNDLE\t\tbundle.json: "),
        (_forge_cosignature, "E_AUDIT_SIG\t\tcosignatures/DE.247/"),
    ],
)
def test_a_tampered_bundle_fails_with_its_code(
    sqlite_node: Node,
    capsys: pytest.CaptureFixture[str],
    tamper: Callable[[Path], None],
    expected: str,
) -> None:
    node = sqlite_node
    _request(node, capsys)
    bundle = node.tmp / "bundle"
    assert main(["audit", "export", "--config", node.config(), "-o", str(node.tmp / "b0")]) == 0
    _cosign(node, DE)
    export = ["audit", "export", "--config", node.config(), "--no-checkpoint"]
    assert main([*export, "-o", str(bundle)]) == 0
    capsys.readouterr()
    tamper(bundle)
    for trust in (["--directory", node.directory], ["--config", node.config()]):
        status, out, _ = _run(capsys, "audit", "verify", str(bundle), *trust)
        assert status == 1 and out.startswith(expected), out
        assert len(out.splitlines()) == 1
    # Replay and report refuse what does not verify.
    status, out, _ = _run(capsys, "audit", "replay", str(bundle), "--directory", node.directory)
    assert status == 1 and out.startswith(expected)
    report = ["audit", "report", str(bundle), "--directory", node.directory, "--format", "json"]
    status, out, _ = _run(capsys, *report, "-o", str(node.tmp / "r.json"))
    assert status == 1 and out.startswith(expected) and not (node.tmp / "r.json").exists()


def test_replay_against_a_live_node_that_moved_on(
    sqlite_node: Node, capsys: pytest.CaptureFixture[str]
) -> None:
    node = sqlite_node
    case = _request(node, capsys)
    bundle = str(node.tmp / "bundle")
    assert main(["audit", "export", "--config", node.config(), "-o", bundle]) == 0
    capsys.readouterr()
    _reply(node, capsys, "ack", case)  # the live node moves on; the bundle does not
    against = ["audit", "replay", bundle, "--against-live", "--config", node.config()]
    status, out, _ = _run(capsys, *against)
    assert status == 1
    mismatches = [line.split("\t") for line in out.splitlines() if line.startswith("MISMATCH")]
    assert ["MISMATCH", case, "state", "log=requested", "live=acknowledged"] in mismatches
    assert any(m[2] == "deadline bc29.acknowledge state" for m in mismatches)
    status, out, _ = _run(capsys, *against, "--json")
    assert status == 1 and {d["what"] for d in json.loads(out)["disagreements"]} >= {"state"}


def test_usage_and_refusals(
    sqlite_node: Node, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    node = sqlite_node
    monkeypatch.delenv("EVB_CONFIG", raising=False)
    _request(node, capsys)
    bundle = str(node.tmp / "bundle")
    status, out, _ = _run(capsys, "audit", "verify", "--live", "--config", node.config())
    assert status == 0 and "no checkpoint yet" in out
    # No checkpoint kept, and none to be signed: nothing committed to export.
    export = ["audit", "export", "--config", node.config(), "-o", bundle]
    status, out, _ = _run(capsys, *export, "--no-checkpoint")
    assert status == 1 and out.startswith("E_AUDIT_BUNDLE\t\tthe log has no signed checkpoint")
    assert main(export) == 0
    status, _, err = _run(capsys, *export)
    assert status == 2 and "exists" in err
    status, _, err = _run(capsys, *export[:-2], "-o", str(node.tmp / "b2"), "--since", "yesterday")
    assert status == 2 and "--since" in err
    status, _, err = _run(capsys, "audit", "verify", "--directory", node.directory)
    assert status == 2 and "BUNDLE or --live" in err
    status, _, err = _run(capsys, "audit", "verify", bundle, "--live", "--config", node.config())
    assert status == 2
    status, _, err = _run(capsys, "audit", "verify", bundle)
    assert status == 2 and "--directory FILE" in err
    status, out, _ = _run(capsys, "audit", "verify", str(node.tmp), "--directory", node.directory)
    assert status == 1 and out.startswith("E_AUDIT_BUNDLE\t\t")
    # DE.247's node cannot replay AT.247's log against itself.
    against = ["audit", "replay", bundle, "--against-live", "--config", node.config(DE)]
    status, _, err = _run(capsys, *against)
    assert status == 2 and "AT.247's log" in err
    # Unverified replays and reports say so.
    status, out, _ = _run(capsys, "audit", "replay", bundle, "--no-verify")
    assert status == 0 and "NOT VERIFIED" in out
    report = ["audit", "report", bundle, "--no-verify", "--format", "json", "-o", "-"]
    status, out, _ = _run(capsys, *report)
    assert status == 0 and json.loads(out)["participant"] == AT
