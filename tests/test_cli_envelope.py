"""From the command line: keys, a signed directory, `evb seal`, `evb verify`, `evb open`.

Also runs the independent verification script of docs/protocol.md on an envelope made
by `evb seal`, so the documentation cannot drift from the code.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from broker.cli import main

ROOT = Path(__file__).resolve().parent.parent
ART29 = "coe.art29.preservation"


@dataclass(frozen=True)
class Net:
    base: Path
    directory: Path
    envelope: Path
    form: Path

    def keys(self, participant: str) -> Path:
        return self.base / participant


def evb(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    status = main(list(argv))
    out, err = capsys.readouterr()
    return status, out, err


def ok(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    status, out, err = evb(capsys, *argv)
    assert status == 0, (argv, out, err)
    return out


@pytest.fixture
def net(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Net:
    for participant in ("root1", "DE.247", "AT.247"):
        ok(capsys, "keys", "generate", participant, "--dir", str(tmp_path / participant))
    directory = tmp_path / "directory.json"
    ok(
        capsys, "directory", "init", "--root", str(tmp_path / "root1" / "root1.pub.json"),
        "--threshold", "1", "-o", str(directory),
    )  # fmt: skip
    for participant, country in (("DE.247", "DE"), ("AT.247", "AT")):
        pub = tmp_path / participant / f"{participant}.pub.json"
        ok(
            capsys, "directory", "add", str(directory), str(pub),
            "--role", "contact_point", "--country", country,
        )  # fmt: skip
    ok(
        capsys,
        "directory",
        "sign",
        str(directory),
        "--key",
        str(tmp_path / "root1" / "root1.sig.pem"),
    )
    form = tmp_path / "request.json"
    form.write_text(ok(capsys, "form", "template", ART29))
    envelope = tmp_path / "envelope.json"
    out = ok(
        capsys, "seal", "--type", ART29, "--from", "DE.247", "--to", "AT.247",
        "--keys", str(tmp_path / "DE.247"), "--directory", str(directory), str(form),
        "-o", str(envelope),
    )  # fmt: skip
    assert json.loads(envelope.read_text())["id"] == out.strip()
    return Net(tmp_path, directory, envelope, form)


def test_seal_verify_open(net: Net, capsys: pytest.CaptureFixture[str]) -> None:
    out = ok(capsys, "verify", str(net.envelope), "--directory", str(net.directory))
    assert out.startswith("valid\t")
    opened = ok(capsys, "open", str(net.envelope), "--keys", str(net.keys("AT.247")),
                "--directory", str(net.directory))  # fmt: skip
    assert json.loads(opened) == json.loads(net.form.read_text())


def _doc_script(tmp_path: Path) -> Path:
    text = (ROOT / "docs" / "protocol.md").read_text()
    block = re.search(r"<!-- verify-script: begin -->\n```python\n(.*?)```", text, re.S)
    assert block is not None
    code = block.group(1)
    assert len([line for line in code.splitlines() if line.strip()]) <= 25
    script = tmp_path / "verify_envelope.py"
    script.write_text(code)
    return script


def test_independent_script_from_the_docs(net: Net) -> None:
    script = _doc_script(net.base)
    result = subprocess.run(
        [sys.executable, str(script), str(net.envelope), str(net.directory)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("valid: ")
    tampered = json.loads(net.envelope.read_text())
    tampered["priority"] = "emergency"
    net.envelope.write_text(json.dumps(tampered))
    result = subprocess.run(
        [sys.executable, str(script), str(net.envelope), str(net.directory)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert result.returncode != 0
    assert "InvalidSignature" in result.stderr


def _refusal(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    status, out, err = evb(capsys, *argv)
    assert status == 1, (out, err)
    assert "Traceback" not in out + err
    return out.split("\t", 1)[0]


def test_tampered_envelope(net: Net, capsys: pytest.CaptureFixture[str]) -> None:
    data = json.loads(net.envelope.read_text())
    data["to"] = "DE.247"
    net.envelope.write_text(json.dumps(data))
    assert _refusal(capsys, "verify", str(net.envelope), "--directory", str(net.directory)) == (
        "E_SIG_INVALID"
    )


def test_wrong_recipient(net: Net, capsys: pytest.CaptureFixture[str]) -> None:
    code = _refusal(
        capsys, "open", str(net.envelope), "--keys", str(net.keys("DE.247")),
        "--directory", str(net.directory),
    )  # fmt: skip
    assert code == "E_NOT_RECIPIENT"


def test_revoked_sender_key(net: Net, capsys: pytest.CaptureFixture[str]) -> None:
    kid = json.loads(net.envelope.read_text())["sig"]["kid"]
    ok(capsys, "directory", "revoke", str(net.directory), "DE.247", kid, "--reason", "compromise")
    ok(capsys, "directory", "sign", str(net.directory), "--key",
       str(net.keys("root1") / "root1.sig.pem"))  # fmt: skip
    assert _refusal(capsys, "verify", str(net.envelope), "--directory", str(net.directory)) == (
        "E_KEY_REVOKED"
    )


def test_unsigned_directory(net: Net, capsys: pytest.CaptureFixture[str]) -> None:
    # Any change drops the signatures: the directory must be signed again.
    ok(capsys, "directory", "revoke", str(net.directory), "AT.247",
       json.loads(net.envelope.read_text())["payload"]["kid"], "--reason", "retired")  # fmt: skip
    assert _refusal(capsys, "verify", str(net.envelope), "--directory", str(net.directory)) == (
        "E_DIRECTORY_UNSIGNED"
    )


def test_forbidden_route(net: Net, capsys: pytest.CaptureFixture[str]) -> None:
    # A contact point does not issue a European Production Order.
    epoc = net.base / "epoc.json"
    epoc.write_text(ok(capsys, "form", "template", "eu.epoc"))
    code = _refusal(
        capsys, "seal", "--type", "eu.epoc", "--from", "DE.247", "--to", "AT.247",
        "--keys", str(net.keys("DE.247")), "--directory", str(net.directory), str(epoc),
        "-o", str(net.base / "out.json"),
    )  # fmt: skip
    assert code == "E_POLICY_FORBIDDEN"
    assert not (net.base / "out.json").exists()


def test_invalid_form_is_not_sealed(net: Net, capsys: pytest.CaptureFixture[str]) -> None:
    form = json.loads(net.form.read_text())
    form["preservation_days"] = 59
    net.form.write_text(json.dumps(form))
    code = _refusal(
        capsys, "seal", "--type", ART29, "--from", "DE.247", "--to", "AT.247",
        "--keys", str(net.keys("DE.247")), "--directory", str(net.directory), str(net.form),
        "-o", str(net.base / "out.json"),
    )  # fmt: skip
    assert code == "E_SCHEMA"


@pytest.mark.parametrize(
    ("content", "code"),
    [(b"{", "E_PARSE"), (b"[]", "E_SCHEMA"), (b'{"evb": 1}', "E_SCHEMA")],
)
def test_garbage_envelope(
    net: Net, capsys: pytest.CaptureFixture[str], content: bytes, code: str
) -> None:
    net.envelope.write_bytes(content)
    assert _refusal(capsys, "verify", str(net.envelope), "--directory", str(net.directory)) == code
