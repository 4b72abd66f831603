"""`evb cases|case show|deadlines|reply` on a node's store (no RabbitMQ needed)."""

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


def _example(name: str) -> str:
    return str(Path(str(schema_root())) / "examples" / f"{name}.json")


def test_a_case_from_the_requesters_side(
    network: LocalNetwork, capsys: pytest.CaptureFixture[str]
) -> None:
    config = str(network.configs["DE.247"])
    send = ["send", "--config", config, "--type", "coe.art29.preservation", "--to", "AT.247"]
    assert main([*send, "--json", _example("coe.art29.preservation")]) == 0
    case = json.loads(capsys.readouterr().out)["case"]

    assert main(["cases", "--config", config, "--json"]) == 0
    [listed] = json.loads(capsys.readouterr().out)
    assert (listed["case_id"], listed["state"], listed["role"]) == (case, "requested", "requester")
    assert listed["next_due"]["rule"] == "bc29.acknowledge"
    assert main(["cases", "--config", config]) == 0
    assert "coe.art29.preservation" in capsys.readouterr().out
    assert main(["cases", "--config", config, "--due-within", "PT25H", "--json"]) == 0
    assert [c["case_id"] for c in json.loads(capsys.readouterr().out)] == [case]
    assert main(["cases", "--config", config, "--due-within", "PT1H", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == []

    assert main(["deadlines", "--config", config, "--json"]) == 0
    [deadline] = json.loads(capsys.readouterr().out)
    assert (deadline["rule"], deadline["owed_by"], deadline["state"]) == (
        "bc29.acknowledge", "requested", "pending",
    )  # fmt: skip
    assert main(["deadlines", "--config", config]) == 0
    out = capsys.readouterr().out
    assert "bc29.acknowledge" in out and "Art 29" in out

    # The requester cannot refuse its own request; nothing changes.
    refuse = ["reply", "--config", config, "refuse", case, "--ground", "political_offence"]
    assert main([*refuse, "--motivation", "no"]) == 1
    assert capsys.readouterr().out.startswith("E_GROUND")
    assert main(["reply", "--config", config, "ack", "01a2115b-1e0a-75c0-b43a-a266b0b4d10a"]) == 1
    assert capsys.readouterr().out.startswith("E_CASE_UNKNOWN")
    # It may withdraw it.
    withdraw = ["reply", "--config", config, "withdraw", case, "--motivation", "Data obtained."]
    assert main(withdraw) == 0
    capsys.readouterr()
    assert main(["cases", "--config", config, "--state", "withdrawn", "--json"]) == 0
    assert [c["case_id"] for c in json.loads(capsys.readouterr().out)] == [case]

    assert main(["case", "show", "--config", config, case, "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    kinds = [(t["what"], t["type"]) for t in shown["timeline"]]
    assert ("sent", "coe.art29.preservation") in kinds and ("sent", "case.withdrawal") in kinds
    assert ("event", "case.withdrawal") in kinds
    assert {d["rule"]: d["state"] for d in shown["deadlines"]} == {"bc29.acknowledge": "cancelled"}
    assert main(["case", "show", "--config", config, case]) == 0
    out = capsys.readouterr().out
    assert "state       withdrawn" in out and "bc29.acknowledge" in out
    assert main(["case", "show", "--config", config, "01a2115b-1e0a-75c0-b43a-a266b0b4d10a"]) == 1
