"""`evb case shred` and `evb retention sweep` on a node's store (no RabbitMQ needed).

Cases are made with `evb send` and `evb reply`, as an operator makes them; what the
commands did is checked in the store itself. No output ever shows a form.
"""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from broker.cli import main
from broker.clock import SystemClock
from broker.config import load_config
from broker.localnet import LocalNetwork, build_network
from broker.resources import read_json, schema_root
from broker.store import open_store
from broker.store.atrest import load_storage_key

UNKNOWN = "01a2115b-1e0a-75c0-b43a-a266b0b4d10a"
ART29 = "coe.art29.preservation"


@pytest.fixture
def network(tmp_path: Path) -> LocalNetwork:
    now = datetime.now(UTC) - timedelta(minutes=1)
    return build_network(tmp_path / "net", ["AT.247", "DE.247"], now=now)


@pytest.fixture
def config(network: LocalNetwork, monkeypatch: pytest.MonkeyPatch) -> str:
    # The environment must not configure retention behind the tests' back.
    for name in ("EVB_RETENTION_CLOSED_CASE_PERIOD", "EVB_RETENTION_SWEEP_INTERVAL"):
        monkeypatch.delenv(name, raising=False)
    return str(network.configs["DE.247"])


def _personal_data() -> list[str]:
    # Values of the example request that must never reach the terminal.
    form: dict[str, Any] = read_json("examples", f"{ART29}.json")
    return [
        form["requesting_authority"]["contact"]["name"],
        form["data"][0]["identifiers"][0]["value"],
        form["offence"]["description"],
    ]


def _send(config: str, capsys: pytest.CaptureFixture[str]) -> tuple[str, str]:
    """Send the example Art 29 request; return its case and message ids."""
    example = str(Path(str(schema_root())) / "examples" / f"{ART29}.json")
    send = ["send", "--config", config, "--type", ART29, "--to", "AT.247", "--json", example]
    assert main(send) == 0
    sent = json.loads(capsys.readouterr().out)
    return sent["case"], sent["message_id"]


def _withdraw(config: str, case: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["reply", "--config", config, "withdraw", case, "--motivation", "Obtained."]) == 0
    capsys.readouterr()


def _store_view(config: str, message_id: str) -> tuple[dict[str, bool], bytes | None, list[str]]:
    """Return (case → shredded, the message's form, the store's audit event names)."""
    node = load_config(Path(config), env={})

    async def read() -> tuple[dict[str, bool], bytes | None, list[str]]:
        key = load_storage_key(node.storage_key_file)
        async with open_store(node.store, key, SystemClock()) as store:
            cases = {c.id: c.shredded for c in await store.list_cases()}
            form = await store.read_form("out", message_id)
            events = [e.event for _, e in await store.list_audit(limit=100_000)]
        return cases, form, events

    return asyncio.run(read())


def _no_form_in(out: str) -> None:
    for value in _personal_data():
        assert value not in out


def test_shred_a_case_from_refusal_to_erasure(
    config: str, capsys: pytest.CaptureFixture[str]
) -> None:
    case, request = _send(config, capsys)
    shred = ["case", "shred", "--config", config, case]

    # 1. An open case is refused, with or without --yes, unless forced.
    assert main(shred) == 1
    assert capsys.readouterr().out.startswith("E_STATE\t")
    assert main([*shred, "--yes"]) == 1
    assert capsys.readouterr().out.startswith("E_STATE\t")
    # 2. Without --yes nothing happens: it says what would be shredded and exits 2.
    assert main([*shred, "--force"]) == 2
    captured = capsys.readouterr()
    assert (
        captured.out == f"would shred case {case} ({ART29}, requested; reason retention, forced)\n"
    )
    assert "--yes" in captured.err
    assert _store_view(config, request)[1] is not None

    # 3. Once the lifecycle is over, --yes shreds it: one line, no form.
    _withdraw(config, case, capsys)
    assert main([*shred, "--json"]) == 2
    assert json.loads(capsys.readouterr().out) == {
        "case": case, "instrument": ART29, "state": "withdrawn", "reason": "retention",
        "forced": False, "would_shred": True,
    }  # fmt: skip
    assert main([*shred, "--yes", "--reason", "order"]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"case {case} shredded ({ART29}, withdrawn; reason order)")
    assert out.count("\n") == 1
    _no_form_in(out)
    cases, form, events = _store_view(config, request)
    assert (cases, form, events.count("case.shredded")) == ({case: True}, None, 1)

    # 4. Again: nothing to do, nothing recorded (exit 0, with or without --yes).
    assert main([*shred, "--yes", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["already_shredded"] is True
    assert main(shred) == 0
    assert "shredded already" in capsys.readouterr().out
    assert _store_view(config, request)[2].count("case.shredded") == 1

    # 5. The case's metadata is still there to show.
    assert main(["case", "show", "--config", config, case]) == 0
    out = capsys.readouterr().out
    assert "state       withdrawn" in out
    _no_form_in(out)


def test_shred_an_unknown_case(config: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["case", "shred", "--config", config, UNKNOWN, "--yes", "--force"]) == 1
    assert capsys.readouterr().out.startswith("E_CASE_UNKNOWN\t")


def test_shred_reasons_are_a_closed_list(config: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["case", "shred", "--config", config, UNKNOWN, "--reason", "whim"])
    assert exited.value.code == 2
    assert "invalid choice" in capsys.readouterr().err


def test_retention_sweep_needs_a_configured_period(
    config: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["retention", "sweep", "--config", config]) == 2
    assert "closed_case_period is not set" in capsys.readouterr().err


def test_retention_sweep_shreds_the_closed_cases_past_the_period(
    config: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    closed, closed_request = _send(config, capsys)
    _withdraw(config, closed, capsys)
    still_open, open_request = _send(config, capsys)
    # The shortest period there is: the closed case is past it by the time we sweep.
    monkeypatch.setenv("EVB_RETENTION_CLOSED_CASE_PERIOD", "PT0.001S")
    sweep = ["retention", "sweep", "--config", config]

    assert main([*sweep, "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0] == closed
    assert "1 case(s) closed more than PT0.001S ago would be shredded" in out
    assert _store_view(config, closed_request)[0] == {closed: False, still_open: False}
    assert main([*sweep, "--dry-run", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == {"period": "PT0.001S", "due": [closed]}

    assert main(sweep) == 0
    out = capsys.readouterr().out
    assert out == "shredded 1 case(s) closed more than PT0.001S ago\n"
    cases, form, events = _store_view(config, closed_request)
    assert (cases, form, events.count("case.shredded")) == (
        {closed: True, still_open: False}, None, 1,
    )  # fmt: skip
    assert _store_view(config, open_request)[1] is not None

    assert main([*sweep, "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == {"period": "PT0.001S", "shredded": 0}


def test_retention_sweep_limit_is_positive(config: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["retention", "sweep", "--config", config, "--limit", "0"])
    assert exited.value.code == 2
    assert "positive integer" in capsys.readouterr().err
