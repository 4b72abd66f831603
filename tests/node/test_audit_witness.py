"""The audit log between running nodes over the real RabbitMQ (issue #7).

Nodes witness each other: each sends its checkpoints with a consistency proof, its
peers verify and cosign them. Senders get follow-up receipts proving that the receiver
logged their messages. A node that rewrites its log is caught by every witness.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
from datetime import timedelta
from pathlib import Path

import pytest

from broker.audit.checkpoint import open_checkpoint, origin_for, verify_cosignature
from broker.audit.merkle import MerkleTree, TreeState
from broker.cli import main
from broker.clock import SystemClock
from broker.config import load_config
from broker.localnet import LocalNetwork, build_network
from broker.node import Node, open_node
from broker.resources import read_json
from broker.store.base import AuditEvent
from broker.witnessing import log_verifiers
from tests.node.test_cases import _alerts, _both_in, _until, running
from tests.support.network import local_network
from tests.support.rabbit import RabbitSession, rabbit  # noqa: F401 - fixture

pytestmark = pytest.mark.integration

PARTICIPANTS = ["AT.247", "DE.247", "AT.CA"]
FAST = {
    "deadlines": {"scheduler_interval": "PT1S"},
    "audit": {"checkpoint_interval": "PT1S", "checkpoint_every": 10},
    "retry": {"profile": "PT2S,PT2S,PT4S,PT8S,PT16S,PT30S"},
}


async def _events(node: Node, name: str) -> list[AuditEvent]:
    return [e for _, e in await node.store.list_audit(limit=100_000) if e.event == name]


async def _cosigned_by(node: Node, witness: str) -> int:
    """The largest checkpoint size of ``node`` that ``witness`` cosigned (0: none)."""
    return max((s for w, s, _ in await node.store.list_cosignatures() if w == witness), default=0)


async def test_nodes_witness_each_other_and_receipts_carry_proof(
    rabbit: RabbitSession,  # noqa: F811 - fixture
    tmp_path: Path,
) -> None:
    participants = ["AT.247", "DE.247"]
    async with local_network(
        rabbit, tmp_path / "net", participants, name="w", settings=dict.fromkeys(participants, FAST)
    ) as network:
        configs = {p: load_config(network.configs[p], env={}) for p in participants}
        async with running(configs["AT.247"]) as at, running(configs["DE.247"]) as de:
            sent = []
            for _ in range(3):
                row = await de.submit(
                    form_type="coe.art29.preservation",
                    form=read_json("examples", "coe.art29.preservation.json"),
                    recipient="AT.247",
                )
                sent.append(row.id)

            # Every request comes back with a second receipt that proves AT logged it.
            async def proved() -> bool:
                events = await _events(de, "receipt.proof")
                return {e.details["receipted"] for e in events} >= set(sent)

            await _until(proved, "follow-up receipts with proofs", timeout=60)

            # Both logs are cosigned by the other node, up to a recent checkpoint.
            async def witnessed() -> bool:
                return await _cosigned_by(de, "AT.247") > 0 and await _cosigned_by(at, "DE.247") > 0

            await _until(witnessed, "mutual cosignatures", timeout=60)

            # What DE keeps verifies offline: AT's cosignature over DE's checkpoint.
            for w, size, line in await de.store.list_cosignatures():
                note = dict(await de.store.list_checkpoints())[size]
                checkpoint = open_checkpoint(
                    note,
                    log_verifiers(de.identity, "DE.247", SystemClock().now()),
                    origin=origin_for("DE.247"),
                )
                keys = log_verifiers(de.identity, w, SystemClock().now())
                name = line.decode().split(" ")[1]
                verify_cosignature(checkpoint, line, name, keys[name])
            # Each node recorded the directory (and its keys) it started under.
            for node in (at, de):
                [loaded] = await _events(node, "directory.loaded")
                assert loaded.details["version"] == node.identity.directory.version
                assert loaded.details["sig_kid"] == node.identity.keyset.sig.kid
            # AT, as DE's witness, keeps the DE checkpoints it verified.
            kept = await at.store.peer_checkpoint("DE.247")
            assert kept is not None and kept[0] > 0
            assert await at.store.list_quarantine() == []
            assert await de.store.list_quarantine() == []
            assert await _events(at, "audit.fork") == []


def _rewrite_log(path: Path) -> None:
    """Make a node's SQLite log start over: what a node hiding its history would do."""
    with sqlite3.connect(path) as db:
        db.execute("DELETE FROM audit")
        db.execute("DELETE FROM audit_checkpoints")
        db.execute(
            "UPDATE audit_tree SET size = 0, state = ? WHERE id = 1",
            (TreeState(0, ()).to_bytes(),),
        )
        db.execute("DELETE FROM audit_cursors")


async def test_a_node_that_rewrites_its_log_is_caught_by_every_witness(
    rabbit: RabbitSession,  # noqa: F811 - fixture
    tmp_path: Path,
) -> None:
    async with local_network(
        rabbit, tmp_path / "net", PARTICIPANTS, name="f", settings=dict.fromkeys(PARTICIPANTS, FAST)
    ) as network:
        configs = {p: load_config(network.configs[p], env={}) for p in PARTICIPANTS}
        witnesses = ("DE.247", "AT.CA")
        async with running(configs["DE.247"]) as de, running(configs["AT.CA"]) as ca:
            # 1. AT runs honestly until both witnesses cosigned its log.
            async with running(configs["AT.247"]) as at:
                await at.submit(
                    form_type="coe.art29.preservation",
                    form=read_json("examples", "coe.art29.preservation.json"),
                    recipient="DE.247",
                )

                async def both_cosigned() -> bool:
                    return all([await _cosigned_by(at, w) > 0 for w in witnesses])

                await _until(both_cosigned, "AT's log cosigned by both witnesses", 60)
            # 2. Offline, AT's log is thrown away and rebuilt with other, more records.
            store_path = Path(configs["AT.247"].store.removeprefix("sqlite://"))
            _rewrite_log(store_path)
            async with running(configs["AT.247"]) as at:
                now = SystemClock().now()
                await at.store.audit(
                    [AuditEvent(event="key.rotated", at=now, details={"n": i}) for i in range(200)]
                )

                # 3. Each witness finds the new checkpoint inconsistent with the one
                #    it cosigned: an audit.fork record and an alert, on every witness.
                async def alarmed() -> bool:
                    return all([await _events(n, "audit.fork") for n in (de, ca)])

                await _until(alarmed, "the fork alarm on every witness", 60)
                honest = {}
                for witness in (de, ca):
                    kept = await witness.store.peer_checkpoint("AT.247")
                    assert kept is not None
                    honest[witness.participant] = kept[0]
                    [fork] = (await _events(witness, "audit.fork"))[:1]
                    assert fork.peer == "AT.247" and fork.code == "E_AUDIT_FORK"
                    assert fork.details["known_size"] == kept[0]
                    assert int(str(fork.details["tree_size"])) > kept[0]
                    alerts = await _alerts(network, witness.participant)
                    assert any(a["alert"] == "audit_fork" and a["peer"] == "AT.247" for a in alerts)
                    # The offending checkpoint is quarantined as evidence.
                    held = await witness.store.list_quarantine()
                    assert "E_AUDIT_FORK" in {q.code for q in held}

                # The rewritten node hears it too: refusals naming the fork.
                async def told() -> bool:
                    return len(await _events(at, "witness.refused")) >= len(witnesses)

                await _until(told, "AT told of the refusals", 60)
                refused = await _events(at, "witness.refused")
                assert "E_AUDIT_FORK" in {e.code for e in refused}
                # No witness cosigned anything of the rewritten log (whose
                # checkpoints are all larger than what the witnesses verified).
                for w in witnesses:
                    assert await _cosigned_by(at, w) <= honest[w]
                tree = MerkleTree.from_state(TreeState.from_bytes((await at.store.audit_head())[1]))
                assert tree.size >= 200


async def test_an_auditor_verifies_replays_and_reports_what_the_nodes_did(
    rabbit: RabbitSession,  # noqa: F811 - fixture
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Issue #7's "done when": traffic, mutual witnessing, and an auditor's bundle."""
    participants = ["AT.247", "DE.247"]
    settings = {
        "DE.247": FAST,
        # AT erases a case's payload one second after its lifecycle ended.
        "AT.247": {**FAST, "retention": {"closed_case_period": "PT1S", "sweep_interval": "PT1S"}},
    }
    async with local_network(
        rabbit, tmp_path / "net", participants, name="r", settings=settings
    ) as network:
        configs = {p: load_config(network.configs[p], env={}) for p in participants}
        async with running(configs["AT.247"]) as at, running(configs["DE.247"]) as de:
            cases = []
            for _ in range(4):
                row = await de.submit(
                    form_type="coe.art29.preservation",
                    form=read_json("examples", "coe.art29.preservation.json"),
                    recipient="AT.247",
                )
                cases.append(row.case_id)
            for case in cases:
                await _both_in((de, at), case, "requested")
            # Two acknowledged, one refused (a ground of Art 29(5)), one left open.
            await at.reply("ack", cases[0])
            await at.reply("ack", cases[1])
            await at.reply(
                "refuse", cases[2], ground="political_offence", motivation="Art 29(5)(a)"
            )
            await _both_in((de, at), cases[0], "acknowledged")
            await _both_in((de, at), cases[1], "acknowledged")
            await _both_in((de, at), cases[2], "refused")

            # The refused case is closed: AT shreds its payload; its log still verifies.
            async def shredded() -> bool:
                return any(e.case_id == cases[2] for e in await _events(at, "case.shredded"))

            await _until(shredded, "the refused case shredded at AT", 30)
            assert await at.store.read_form("in", cases[2]) is None

            # Both logs are witnessed beyond all that traffic.
            head = {n.participant: (await n.store.audit_head())[0] for n in (at, de)}

            async def witnessed() -> bool:
                return (
                    await _cosigned_by(de, "AT.247") >= head["DE.247"]
                    and await _cosigned_by(at, "DE.247") >= head["AT.247"]
                )

            await _until(witnessed, "both logs cosigned past the traffic", 60)

    # The auditor's part runs the CLI (its own event loop) in a thread.
    await asyncio.to_thread(_audit, network, participants, tmp_path, capsys)


def _audit(
    network: LocalNetwork,
    participants: list[str],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """What an auditor does with bundles and the trust directory: no node, no database."""
    directory = str(network.directory)
    for participant in participants:
        config = str(network.configs[participant])
        bundle = str(tmp_path / f"bundle-{participant}")
        assert main(["audit", "export", "--config", config, "-o", bundle, "--no-checkpoint"]) == 0
        capsys.readouterr()
        assert main(["audit", "verify", bundle, "--directory", directory, "--json"]) == 0
        verified = json.loads(capsys.readouterr().out)
        other = next(p for p in participants if p != participant)
        assert verified["cosignatures"][other], verified
        # Replay from the bundle alone agrees with the live node's cases and deadlines.
        replay = ["audit", "replay", bundle, "--against-live", "--config", config]
        assert main(replay) == 0, capsys.readouterr().out
        capsys.readouterr()
        out = tmp_path / f"report-{participant}.json"
        assert (
            main(
                [
                    "audit",
                    "report",
                    bundle,
                    "--directory",
                    directory,
                    "--format",
                    "json",
                    "-o",
                    str(out),
                ]
            )
            == 0
        )
        report = json.loads(out.read_text())
        [art29] = [g for g in report["by_instrument"] if g["key"] == "coe.art29.preservation"]
        assert art29["requests"] == 4
        assert art29["responses"] == 3
        assert art29["refusals"] == 1
        assert art29["deadlines_met"] >= 3  # the two acks and the refusal answered in time
        [refusal] = report["refusals"]
        assert refusal["reason"] == "political_offence"
        assert refusal["refused_by"] == ("self" if participant == "AT.247" else "peer")
        html = tmp_path / f"report-{participant}.html"
        assert (
            main(
                [
                    "audit",
                    "report",
                    bundle,
                    "--directory",
                    directory,
                    "--format",
                    "html",
                    "-o",
                    str(html),
                ]
            )
            == 0
        )
        assert "<svg" in html.read_text()
    # Tampering with one byte of a bundle is caught, naming the code.
    tampered = tmp_path / "bundle-DE.247"
    entries = (tampered / "entries.jsonl").read_bytes()
    (tampered / "entries.jsonl").write_bytes(entries.replace(b'"case.state"', b'"case.stats"', 1))
    assert main(["audit", "verify", str(tampered), "--directory", directory]) == 1
    assert "E_AUDIT_TAMPERED" in capsys.readouterr().out


async def test_the_directory_is_logged_once_per_version(tmp_path: Path) -> None:
    network = build_network(
        tmp_path / "net", ["AT.247", "DE.247"], now=SystemClock().now() - timedelta(minutes=1)
    )
    config = load_config(network.configs["AT.247"], env={})
    for _ in range(2):  # a restart under the same directory adds nothing
        async with open_node(config) as node:
            await node.log_trust()
    async with open_node(config) as node:
        [loaded] = await _events(node, "directory.loaded")
        assert loaded.details["previous"] is None
        assert loaded.details["enc_kid"] == node.identity.keyset.enc.kid
