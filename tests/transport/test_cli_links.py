"""``evb site setup`` and ``evb link create|list|delete`` through ``broker.cli.main``."""

from __future__ import annotations

import json
import stat
from collections.abc import Callable
from pathlib import Path

import pytest
import structlog

from broker import cli
from broker.cli import links as links_commands
from tests.support.rabbit import RabbitSession
from tests.transport.net import build_directory
from tests.trust.builders import raw

pytestmark = pytest.mark.integration

Run = Callable[..., tuple[int, str, str]]


@pytest.fixture
def evb(
    rabbit: RabbitSession, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> Run:
    if links_commands not in cli._COMMAND_MODULES:
        # Until the lead registers the module in broker/cli/__init__.py.
        monkeypatch.setattr(cli, "_COMMAND_MODULES", (*cli._COMMAND_MODULES, links_commands))
    monkeypatch.setenv("EVB_RABBIT_MGMT_URL", rabbit.mgmt_url)
    monkeypatch.setenv("EVB_RABBIT_MGMT_USER", rabbit.mgmt_user)
    monkeypatch.setenv("EVB_RABBIT_MGMT_PASSWORD", rabbit.mgmt_password)
    monkeypatch.setenv("EVB_AMQP_URL", rabbit.amqp_url("/"))

    # The commands configure structlog for a process; give the next test the defaults.
    saved = structlog.get_config()

    def run(*argv: str) -> tuple[int, str, str]:
        try:
            status = cli.main(list(argv))
        finally:
            structlog.configure(**saved)
        out, err = capsys.readouterr()
        return status, out, err

    return run


@pytest.fixture
def network(rabbit: RabbitSession, tmp_path: Path) -> tuple[Path, dict[str, str]]:
    vhosts = {"AT": rabbit.vhost_name("at"), "DE": rabbit.vhost_name("de")}
    path = tmp_path / "directory.json"
    path.write_bytes(raw(build_directory(vhosts)))
    return path, vhosts


def test_site_setup_creates_the_site_and_node_users(
    evb: Run, network: tuple[Path, dict[str, str]], rabbit: RabbitSession, tmp_path: Path
) -> None:
    directory, vhosts = network
    credentials = tmp_path / "nodes.json"
    status, out, err = evb(
        "site",
        "setup",
        "DE",
        "--directory",
        str(directory),
        "--node-users",
        "--credentials-out",
        str(credentials),
        "--json",
    )
    assert (status, err) == (0, "")
    vhost = vhosts["DE"]
    assert json.loads(out) == {
        "site": "DE",
        "vhost": vhost,
        "participants": ["DE.CA", "DE.JUD"],
        "users": {"DE.CA": f"{vhost}.DE.CA", "DE.JUD": f"{vhost}.DE.JUD"},
    }
    assert stat.S_IMODE(credentials.stat().st_mode) == 0o600
    saved = json.loads(credentials.read_text())
    assert {p: c["user"] for p, c in saved.items()} == {
        "DE.CA": f"{vhost}.DE.CA",
        "DE.JUD": f"{vhost}.DE.JUD",
    }
    assert all(len(c["password"]) >= 32 for c in saved.values())
    assert saved["DE.CA"]["password"] not in out
    permissions = rabbit.api("GET", f"permissions/{vhost}/{vhost}.DE.CA")
    assert permissions["write"] == r"^evb\.DE\.CA$"

    status, out, err = evb("site", "setup", "AT", "--directory", str(directory))
    assert (status, out, err) == (
        0,
        f"site AT: vhost {vhosts['AT']}, 1 participant(s), 0 node user(s)\n",
        "",
    )


def test_link_create_list_delete(
    evb: Run,
    network: tuple[Path, dict[str, str]],
    rabbit: RabbitSession,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    directory, vhosts = network
    for site in ("AT", "DE"):
        assert evb("site", "setup", site, "--directory", str(directory))[0] == 0
    monkeypatch.setenv(
        "EVB_TEST_LINK_URI", f"amqp://guest:guest@{rabbit.amqp_host}:{rabbit.amqp_port}"
    )
    status, out, err = evb(
        "link",
        "create",
        "AT",
        "DE",
        "--dest-uri-env",
        "EVB_TEST_LINK_URI",
        "--directory",
        str(directory),
        "--reconnect-delay",
        "1",
    )
    at, de = vhosts["AT"], vhosts["DE"]
    assert (status, err) == (0, "")
    assert out == (
        f"evb-link-AT-DE: shovel AT -> DE in {at}, "
        f"amqp://guest:***@{rabbit.amqp_host}:{rabbit.amqp_port}/{de}\n"
    )
    status, out, err = evb(
        "link",
        "create",
        "AT",
        "DE",
        "--kind",
        "federation",
        "--dest-uri",
        f"amqp://guest:guest@{rabbit.amqp_host}:{rabbit.amqp_port}/{at}",
        "--directory",
        str(directory),
    )
    assert (status, err) == (0, "")
    assert out.startswith(f"evb-link-AT-DE: federation AT -> DE in {de}, ")

    status, out, err = evb("link", "list", "--json", "--directory", str(directory))
    assert (status, err) == (0, "")
    listed = json.loads(out)
    assert [(x["name"], x["kind"], x["from"], x["to"], x["vhost"]) for x in listed] == [
        ("evb-link-AT-DE", "federation", "AT", "DE", de),
        ("evb-link-AT-DE", "shovel", "AT", "DE", at),
    ]
    assert "guest:guest" not in out

    status, out, _ = evb("link", "list", "--directory", str(directory))
    lines = [line.split("\t") for line in out.splitlines()]
    assert [line[:4] for line in lines] == [
        ["evb-link-AT-DE", "federation", "AT", "DE"],
        ["evb-link-AT-DE", "shovel", "AT", "DE"],
    ]

    status, out, err = evb("link", "delete", "evb-link-AT-DE", "--vhost", at, "--vhost", de)
    assert (status, err) == (0, "")
    assert sorted(out.splitlines()) == [
        f"deleted evb-link-AT-DE (federation in {de})",
        f"deleted evb-link-AT-DE (shovel in {at})",
    ]
    status, out, err = evb("link", "delete", "evb-link-AT-DE", "--directory", str(directory))
    assert (status, out) == (2, "")
    assert err == "evb: E_CONFIG: no link named evb-link-AT-DE\n"


def test_usage_errors(evb: Run, network: tuple[Path, dict[str, str]]) -> None:
    directory, _ = network
    status, out, err = evb("site", "setup", "DE", "--directory", str(directory), "--node-users")
    assert (status, out) == (2, "")
    assert "--node-users needs --credentials-out" in err
    status, _, err = evb("link", "create", "AT", "DE", "--directory", str(directory))
    assert (status, err) == (2, "evb: give --dest-uri URI or --dest-uri-env VAR\n")
    status, _, err = evb(
        "link",
        "create",
        "AT",
        "DE",
        "--dest-uri-env",
        "EVB_NOT_SET_X",
        "--directory",
        str(directory),
    )
    assert (status, err) == (2, "evb: environment variable EVB_NOT_SET_X is not set\n")


def test_wrong_management_password(
    evb: Run, monkeypatch: pytest.MonkeyPatch, rabbit: RabbitSession
) -> None:
    monkeypatch.setenv("EVB_RABBIT_MGMT_PASSWORD", "not-the-password")
    status, out, err = evb("link", "list")
    assert (status, out) == (2, "")
    assert err.startswith("evb: E_CONFIG: management API refused user ")
    assert "not-the-password" not in err
