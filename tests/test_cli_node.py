"""`evb send|status|inbox|outbox|quarantine` on a node's store (no RabbitMQ needed)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from broker.cli import main
from broker.localnet import LocalNetwork, build_network
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
