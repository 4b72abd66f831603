"""``evb directory``: the trust directory on the command line, and the demo network in keys/."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from broker.cli import main
from broker.keys import load_signing_key, read_public
from broker.trust import dump_directory, init_directory, parse_directory, sign_directory

KEYS_DIR = Path(__file__).resolve().parents[1] / "keys"


@pytest.fixture(autouse=True)
def _no_passphrase(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("EVB_KEY_PASSPHRASE", raising=False)


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    status = main(list(argv))
    out, err = capsys.readouterr()
    return status, out, err


def ok(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    status, out, err = run(capsys, *argv)
    assert (status, err) == (0, ""), out
    return out


class Ceremony:
    """Keys in ``tmp/keys``, the directory in ``tmp/directory.json``."""

    def __init__(self, tmp: Path, capsys: pytest.CaptureFixture[str]) -> None:
        self.tmp = tmp
        self.keys = tmp / "keys"
        self.file = tmp / "directory.json"
        self.capsys = capsys

    def generate(self, participant: str, *flags: str) -> Path:
        ok(self.capsys, "keys", "generate", participant, "--dir", str(self.keys), *flags)
        return self.keys / f"{participant}.pub.json"

    def pub(self, participant: str) -> str:
        return str(self.keys / f"{participant}.pub.json")

    def sig(self, participant: str) -> str:
        return str(self.keys / f"{participant}.sig.pem")

    def evb(self, *argv: str) -> tuple[int, str, str]:
        return run(self.capsys, "directory", *argv)

    def sign(self, *roots: str) -> None:
        for root in roots:
            ok(self.capsys, "directory", "sign", str(self.file), "--key", self.sig(root))

    def json(self) -> dict[str, Any]:
        data: dict[str, Any] = json.loads(self.file.read_text())
        return data


@pytest.fixture
def ceremony(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Ceremony:
    """Three roots (threshold 2), AT.247 and a hybrid DE.JUD, unsigned."""
    c = Ceremony(tmp_path, capsys)
    for name in ("root1", "root2", "root3"):
        c.generate(name)
    c.generate("AT.247")
    c.generate("DE.JUD", "--hybrid", "--seal")
    roots = [arg for name in ("root1", "root2", "root3") for arg in ("--root", c.pub(name))]
    out = ok(capsys, "directory", "init", *roots, "--threshold", "2", "-o", str(c.file))
    assert out == f"{c.file}: version 1, unsigned (3 root(s), threshold 2)\n"
    out = ok(
        capsys, "directory", "add", str(c.file), c.pub("AT.247"), "--role", "contact_point",
        "--country", "AT", "--name", "Bundeskriminalamt",
    )  # fmt: skip
    assert out == f"{c.file}: version 2, unsigned (AT.247 as contact_point)\n"
    ok(
        capsys, "directory", "add", str(c.file), c.pub("DE.JUD"), "--role", "judicial_authority",
        "--country", "DE", "--site", "frankfurt",
    )  # fmt: skip
    return c


def test_build_sign_verify(ceremony: Ceremony) -> None:
    c = ceremony
    assert c.evb("verify", str(c.file)) == (
        1,
        "E_DIRECTORY_UNSIGNED\tno valid root signature, 2 required\n",
        "",
    )
    out = ok(c.capsys, "directory", "sign", str(c.file), "--key", c.sig("root1"))
    root1 = read_public(Path(c.pub("root1"))).keys[0][0].kid
    assert out == f"{c.file}: version 3, signed by {root1}\n"
    assert c.evb("verify", str(c.file)) == (
        1,
        "E_DIRECTORY_UNSIGNED\t1 valid root signature(s), 2 required\n",
        "",
    )
    c.sign("root3")
    assert c.evb("verify", str(c.file)) == (0, "valid: version 3, 2 participants\n", "")
    data = c.json()
    assert [p["id"] for p in data["participants"]] == ["AT.247", "DE.JUD"]
    assert data["participants"][0]["name"] == "Bundeskriminalamt"
    assert data["participants"][0]["routing"] == {
        "site": "AT",
        "vhost": "evb-at",
        "exchange": "evb.AT.247",
    }
    assert data["participants"][1]["routing"] == {
        "site": "frankfurt",
        "vhost": "evb-frankfurt",
        "exchange": "evb.DE.JUD",
    }
    assert data["participants"][1]["suite"] == "hybrid"
    assert oct(c.file.stat().st_mode & 0o777) == "0o644"


def test_every_change_drops_the_signatures(ceremony: Ceremony) -> None:
    c = ceremony
    c.sign("root1", "root2")
    before = c.json()
    kid = read_public(Path(c.pub("AT.247"))).keys[0][0].kid
    status, out, _ = c.evb("revoke", str(c.file), "AT.247", kid, "--reason", "retired")
    assert (status, out) == (0, f"{c.file}: version 4, unsigned ({kid} revoked: retired)\n")
    after = c.json()
    assert after["signatures"] == []
    assert after["version"] == before["version"] + 1
    key = after["participants"][0]["keys"][0]
    assert key["revocation_reason"] == "retired"
    assert key["revoked_at"] >= before["issued_at"]
    c.sign("root1", "root2")
    assert c.evb("verify", str(c.file))[0] == 0


def test_root_rotation_needs_old_and_new_roots(ceremony: Ceremony) -> None:
    c = ceremony
    c.sign("root1", "root2")
    old = c.tmp / "old.json"
    old.write_bytes(c.file.read_bytes())
    c.generate("root4")
    c.generate("root5")
    status, out, _ = c.evb(
        "roots", str(c.file), "--root", c.pub("root4"), "--root", c.pub("root5"),
        "--threshold", "2",
    )  # fmt: skip
    assert status == 0
    assert "sign with a threshold of the old roots and of the new ones" in out
    # Only the new roots: valid on its own, refused as an update of the old version.
    c.sign("root4", "root5")
    assert c.evb("verify", str(c.file))[0] == 0
    status, out, _ = c.evb("verify", str(c.file), "--previous", str(old))
    assert status == 1
    assert out.startswith("E_DIRECTORY_UNSIGNED\tnot signed by the roots of trusted version 3")
    # The old roots sign too: accepted.
    status, out, _ = c.evb("sign", str(c.file), "--key", c.sig("root1"))
    assert out.endswith("(not a root of this version: counts only for the previous one)\n")
    c.sign("root2")
    assert c.evb("verify", str(c.file), "--previous", str(old)) == (
        0,
        "valid: version 4, 2 participants\n",
        "",
    )
    # Going back: the old version is not signed by the roots trusted now.
    status, out, _ = c.evb("verify", str(old), "--previous", str(c.file))
    assert (status, out.split("\t")[0]) == (1, "E_DIRECTORY_UNSIGNED")
    # The same version again is a rollback.
    status, out, _ = c.evb("verify", str(c.file), "--previous", str(c.file))
    assert (status, out.split("\t")[0]) == (1, "E_DIRECTORY_ROLLBACK")


def test_sign_with_an_encrypted_key(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    c = Ceremony(tmp_path, capsys)
    monkeypatch.setenv("EVB_KEY_PASSPHRASE", "correct horse battery staple")
    c.generate("root1")
    ok(capsys, "directory", "init", "--root", c.pub("root1"), "--threshold", "1", "-o", str(c.file))
    c.sign("root1")
    assert c.evb("verify", str(c.file)) == (0, "valid: version 1, 0 participants\n", "")
    monkeypatch.delenv("EVB_KEY_PASSPHRASE")
    status, _, err = c.evb("sign", str(c.file), "--key", c.sig("root1"))
    assert status == 2
    assert err.startswith("evb: E_CONFIG: ")


def _tamper(change: Callable[[dict[str, Any]], None]) -> Callable[[Path], None]:
    def apply(path: Path) -> None:
        data = json.loads(path.read_text())
        change(data)
        path.write_text(json.dumps(data))

    return apply


def _expired(path: Path, keys: Path) -> None:
    # Issued two years ago for one year, signed by the roots: only expiry fails.
    doc = parse_directory(path.read_bytes())
    roots = [r.public_key() for r in doc.roots]
    past = datetime.now(UTC) - timedelta(days=730)
    old = init_directory(roots, 2, timedelta(days=365), past)
    for name in ("root1", "root2"):
        old = sign_directory(old, load_signing_key(keys / f"{name}.sig.pem", None))
    path.write_bytes(dump_directory(old))


REFUSALS: list[tuple[str, Callable[[Path], object], str]] = [
    (
        "tampered",
        _tamper(lambda d: d["participants"][0].update(role="judicial_authority")),
        "E_DIRECTORY_UNSIGNED",
    ),
    ("truncated", lambda p: p.write_bytes(p.read_bytes()[:100]), "E_PARSE"),
    ("not-json", lambda p: p.write_bytes(b"not json\n"), "E_PARSE"),
    ("oversized", lambda p: p.write_bytes(b" " * (8 * 1024 * 1024 + 1)), "E_TOO_LARGE"),
    ("schema", _tamper(lambda d: d.update(threshold=0)), "E_SCHEMA"),
    ("semantic", _tamper(lambda d: d.update(threshold=4)), "E_SEMANTIC"),
]


@pytest.mark.parametrize(("name", "damage", "code"), REFUSALS, ids=[r[0] for r in REFUSALS])
def test_verify_refusals(
    ceremony: Ceremony, name: str, damage: Callable[[Path], object], code: str
) -> None:
    ceremony.sign("root1", "root2")
    damage(ceremony.file)
    status, out, err = ceremony.evb("verify", str(ceremony.file))
    assert (status, err) == (1, "")
    assert [line.split("\t")[0] for line in out.splitlines()] == [code]
    if code in ("E_SCHEMA", "E_SEMANTIC"):
        assert out.split("\t")[1] == "/threshold"


def test_verify_expired(ceremony: Ceremony) -> None:
    _expired(ceremony.file, ceremony.keys)
    status, out, _ = ceremony.evb("verify", str(ceremony.file))
    assert (status, out.split("\t")[0]) == (1, "E_DIRECTORY_EXPIRED")


def test_verify_with_a_bad_previous(ceremony: Ceremony) -> None:
    ceremony.sign("root1", "root2")
    old = ceremony.tmp / "old.json"
    old.write_text("{")
    status, out, _ = ceremony.evb("verify", str(ceremony.file), "--previous", str(old))
    assert (status, out) == (1, f"E_PARSE\t{old}: malformed JSON: " + out.split(": ", 2)[2])


def test_policy(ceremony: Ceremony) -> None:
    c = ceremony
    status, out, _ = c.evb("policy", str(c.file), str(KEYS_DIR / "policy.json"))
    assert status == 0
    assert out.endswith("rule(s))\n")
    typo = c.tmp / "typo.json"
    typo.write_text(
        '{"rules": [{"from_role": "contact_point", "to_role": "contact_point",'
        ' "types": ["coe.art29.preservaton"]}]}'
    )
    before = c.file.read_bytes()
    assert c.evb("policy", str(c.file), str(typo)) == (
        1,
        "E_SEMANTIC\tthe policy names types the catalogue lacks: coe.art29.preservaton\n",
        "",
    )
    typo.write_text('{"rules": [{"from_role": "police", "to_role": "auditor", "types": ["x"]}]}')
    status, out, _ = c.evb("policy", str(c.file), str(typo))
    assert (status, out.split("\t")[:2]) == (1, ["E_SCHEMA", "/rules/0/from_role"])
    assert c.file.read_bytes() == before, "a refused change leaves the file alone"


USAGE: list[tuple[str, list[str]]] = [
    ("missing-file", ["verify", "/nonexistent/directory.json"]),
    ("bad-duration", ["init", "--root", "R", "--threshold", "1", "--expires", "P1Y", "-o", "x"]),
    ("zero-duration", ["init", "--root", "R", "--threshold", "1", "--expires", "P0D", "-o", "x"]),
    (
        "missing-root-file",
        ["init", "--root", "/nonexistent.pub.json", "--threshold", "1", "-o", "x"],
    ),
]


@pytest.mark.parametrize(("name", "argv"), USAGE, ids=[u[0] for u in USAGE])
def test_usage_errors(capsys: pytest.CaptureFixture[str], name: str, argv: list[str]) -> None:
    status, out, err = run(capsys, "directory", *argv)
    assert (status, out) == (2, "")
    assert err.startswith("evb: ")
    assert "Traceback" not in err


def test_refusals_leave_the_file_alone(ceremony: Ceremony) -> None:
    before = ceremony.file.read_bytes()
    status, out, _ = ceremony.evb(
        "revoke", str(ceremony.file), "AT.247", "AT.247#sig-0000000000000000", "--reason",
        "compromise",
    )  # fmt: skip
    assert (status, out.split("\t")[0]) == (1, "E_KEY_UNKNOWN")
    status, out, _ = ceremony.evb(
        "roots", str(ceremony.file), "--root", ceremony.pub("root1"), "--threshold", "2"
    )
    assert (status, out.split("\t")[:2]) == (1, ["E_SEMANTIC", "/threshold"])
    assert ceremony.file.read_bytes() == before


# -- keys/: the demo network, public material only ----------------------------------------------


def test_keys_directory_holds_no_private_material() -> None:
    for path in KEYS_DIR.rglob("*"):
        if path.is_file():
            assert path.suffix in {".json", ".md"}, path
            assert b"PRIVATE KEY" not in path.read_bytes(), path


def _network() -> dict[str, Any]:
    data: dict[str, Any] = json.loads((KEYS_DIR / "network.json").read_text())
    return data


def test_network_has_the_participants_the_issue_names() -> None:
    participants = {p["id"]: p["role"] for p in _network()["participants"]}
    for country in ("AT", "DE", "FR", "ES"):
        assert participants[f"{country}.247"] == "contact_point"
        assert participants[f"{country}.CA"] == "central_authority"
    roles = sorted(participants.values())
    assert roles.count("judicial_authority") == 1
    assert roles.count("service_provider") == 2
    assert roles.count("auditor") == 1
    for entry in _network()["participants"]:
        assert entry["routing"]["site"] == entry["country"]


def test_demo_network_builds_a_valid_directory(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """What the demo does at run time, from keys/network.json and keys/policy.json."""
    c = Ceremony(tmp_path, capsys)
    network = _network()
    roots = []
    for name in network["roots"]:
        roots += ["--root", str(c.generate(name))]
    ok(
        capsys, "directory", "init", *roots, "--threshold", str(network["threshold"]),
        "--expires", network["expires"], "-o", str(c.file),
    )  # fmt: skip
    for entry in network["participants"]:
        flags = [flag for flag, on in (("--hybrid", entry["suite"] == "hybrid"),
                                       ("--seal", entry["seal"])) if on]  # fmt: skip
        pub = c.generate(entry["id"], *flags)
        routing = entry["routing"]
        ok(
            capsys, "directory", "add", str(c.file), str(pub), "--role", entry["role"],
            "--country", entry["country"], "--name", entry["name"], "--site", routing["site"],
            "--vhost", routing["vhost"], "--exchange", routing["exchange"],
        )  # fmt: skip
    ok(capsys, "directory", "policy", str(c.file), str(KEYS_DIR / network["policy"]))
    c.sign(*network["roots"][: network["threshold"]])
    count = len(network["participants"])
    assert c.evb("verify", str(c.file)) == (
        0,
        f"valid: version {count + 2}, {count} participants\n",
        "",
    )
    listed = {p["id"]: p for p in c.json()["participants"]}
    for entry in network["participants"]:
        got = listed[entry["id"]]
        assert (got["name"], got["role"], got["suite"], got["routing"]) == (
            entry["name"],
            entry["role"],
            entry["suite"],
            entry["routing"],
        )
    assert not any(p.suffix == ".pem" for p in KEYS_DIR.iterdir())
    assert os.listdir(c.keys)
