"""`evb send|status|inbox|outbox|quarantine` on a node's store (no RabbitMQ needed)."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from broker.cli import main
from broker.config import load_config
from broker.localnet import LocalNetwork, build_network
from broker.node import open_node
from broker.resources import schema_root


@pytest.fixture
def network(tmp_path: Path) -> LocalNetwork:
    now = datetime.now(UTC) - timedelta(minutes=1)
    return build_network(tmp_path / "net", ["AT.247", "DE.247"], now=now)


def _form() -> str:
    return str(Path(str(schema_root())) / "examples" / "coe.art29.preservation.json")


def test_send_queues_and_status_shows_it(
    network: LocalNetwork, capsys: pytest.CaptureFixture[str]
) -> None:
    config = str(network.configs["DE.247"])
    args = ["send", "--config", config, "--type", "coe.art29.preservation", "--to", "AT.247"]
    assert main([*args, _form()]) == 0
    message_id = capsys.readouterr().out.strip()
    assert main(["outbox", "--config", config, "--json"]) == 0
    [row] = json.loads(capsys.readouterr().out)
    assert (row["id"], row["state"], row["recipient"]) == (message_id, "queued", "AT.247")
    assert main(["status", "--config", config, message_id]) == 0
    out = capsys.readouterr().out
    assert "state     queued" in out
    assert "message.submitted" in out
    # Only failed messages are retried by an operator.
    assert main(["outbox", "retry", "--config", config, message_id]) == 1
    assert "E_STATE" in capsys.readouterr().err
    assert main(["inbox", "--config", config, "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == []
    assert main(["quarantine", "list", "--config", config, "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == []


def test_send_refuses_an_invalid_form_with_codes(
    network: LocalNetwork, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    form = json.loads(Path(_form()).read_text())
    form["preservation_days"] = 30
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(form))
    config = str(network.configs["DE.247"])
    args = ["send", "--config", config, "--type", "coe.art29.preservation", "--to", "AT.247"]
    assert main([*args, str(path)]) == 1
    assert capsys.readouterr().out.startswith("E_SCHEMA\t/preservation_days")


def test_unknown_message_and_entry(
    network: LocalNetwork, capsys: pytest.CaptureFixture[str]
) -> None:
    config = str(network.configs["AT.247"])
    assert main(["status", "--config", config, "01a2115b-1e0a-75c0-b43a-a266b0b4d10a"]) == 1
    assert "E_NOT_FOUND" in capsys.readouterr().err
    assert main(["quarantine", "release", "--config", config, "nope"]) == 1
    assert "E_NOT_FOUND" in capsys.readouterr().err


def test_missing_configuration_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["inbox", "--config", "/nonexistent/node.toml"]) == 2
    assert "E_CONFIG" in capsys.readouterr().err


def _quarantine_garbage(network: LocalNetwork) -> str:
    config = load_config(network.configs["AT.247"], env={})

    async def run() -> str:
        async with open_node(config) as node:
            result = await node.inbox.handle(b"\x00 not an envelope")
            assert (result.status, result.code) == ("quarantined", "E_PARSE")
            [entry] = await node.store.list_quarantine()
            return entry.id

    return asyncio.run(run())


def test_quarantine_list_show_release_purge(
    network: LocalNetwork, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    entry = _quarantine_garbage(network)
    capsys.readouterr()  # the library's own log lines
    config = str(network.configs["AT.247"])
    assert main(["quarantine", "list", "--config", config, "--json"]) == 0
    [listed] = json.loads(capsys.readouterr().out)
    assert (listed["id"], listed["code"], listed["state"]) == (entry, "E_PARSE", "held")
    assert main(["quarantine", "list", "--config", config]) == 0
    assert entry in capsys.readouterr().out
    assert main(["quarantine", "show", "--config", config, entry, "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["raw"] == "17 bytes (--raw FILE)" and shown["authenticated"] is False
    raw = tmp_path / "raw.bin"
    assert main(["quarantine", "show", "--config", config, entry, "--raw", str(raw)]) == 0
    assert raw.read_bytes() == b"\x00 not an envelope"
    # Released: the running node reprocesses it (here: no node runs, it stays released).
    assert main(["quarantine", "release", "--config", config, entry]) == 0
    assert capsys.readouterr().out.strip() == f"{entry} released"
    assert main(["quarantine", "list", "--config", config, "--json", "--state", "released"]) == 0
    assert [e["id"] for e in json.loads(capsys.readouterr().out)] == [entry]
    # Purged: the bytes are gone, the record and its audit trail stay.
    assert main(["quarantine", "purge", "--config", config, entry]) == 0
    capsys.readouterr()
    assert main(["quarantine", "show", "--config", config, entry, "--raw", "-"]) == 1
    assert "E_PURGED" in capsys.readouterr().err
    assert main(["quarantine", "show", "--config", config, entry, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["raw"] is None


def test_outbox_retry_resumes_a_failed_message(
    network: LocalNetwork, capsys: pytest.CaptureFixture[str]
) -> None:
    config_path = str(network.configs["DE.247"])
    args = ["send", "--config", config_path, "--type", "coe.art29.preservation", "--to", "AT.247"]
    assert main([*args, _form()]) == 0
    message_id = capsys.readouterr().out.strip()
    config = load_config(network.configs["DE.247"], env={})

    async def fail() -> None:
        async with open_node(config) as node:
            assert await node.store.update_delivery(
                message_id, state="failed", attempts=9, next_attempt_at=None,
                code="E_NO_RECEIPT", events=[],
            )  # fmt: skip

    asyncio.run(fail())
    capsys.readouterr()  # the library's own log lines
    assert main(["outbox", "--config", config_path, "--json"]) == 0
    [row] = json.loads(capsys.readouterr().out)
    assert (row["state"], row["code"]) == ("failed", "E_NO_RECEIPT")
    assert main(["outbox", "retry", "--config", config_path, message_id]) == 0
    capsys.readouterr()
    assert main(["outbox", "--config", config_path, "--json"]) == 0
    [row] = json.loads(capsys.readouterr().out)
    assert (row["state"], row["attempts"], row["code"]) == ("queued", 0, None)
    assert main(["status", "--config", config_path, message_id, "--json"]) == 0
    trail = [e["event"] for e in json.loads(capsys.readouterr().out)["events"]]
    assert trail[0] == "message.submitted" and trail[-1].startswith("delivery.")
