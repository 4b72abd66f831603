"""``evb keys generate`` and ``evb keys show``: files, output, passphrase, refusals."""

from __future__ import annotations

import json
import stat
from datetime import timedelta
from pathlib import Path

import pytest

from broker.cli import main
from broker.clock import parse_wire_time
from broker.keys import load_keyset, read_public


@pytest.fixture(autouse=True)
def _no_passphrase(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("EVB_KEY_PASSPHRASE", raising=False)


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    status = main(list(argv))
    out, err = capsys.readouterr()
    return status, out, err


@pytest.mark.parametrize(
    ("participant", "flags", "files", "keys"),
    [
        ("AT.247", [], ["sig.pem", "enc.pem"], [("sig", "Ed25519"), ("enc", "X25519")]),
        (
            "DE.CA",
            ["--seal"],
            ["sig.pem", "seal.pem", "enc.pem"],
            [("sig", "Ed25519"), ("seal", "Ed25519"), ("enc", "X25519")],
        ),
        (
            "FR.247",
            ["--hybrid"],
            ["sig.pem", "sig-pq.pem", "enc.pem", "enc-mlkem.pem"],
            [("sig", "Ed25519"), ("sig", "ML-DSA-65"), ("enc", "ML-KEM-768+X25519")],
        ),
        (
            "ISP.mailhost",
            ["--hybrid", "--seal"],
            ["sig.pem", "sig-pq.pem", "seal.pem", "enc.pem", "enc-mlkem.pem"],
            [
                ("sig", "Ed25519"),
                ("sig", "ML-DSA-65"),
                ("seal", "Ed25519"),
                ("enc", "ML-KEM-768+X25519"),
            ],
        ),
        ("root1", [], ["sig.pem", "enc.pem"], [("sig", "Ed25519"), ("enc", "X25519")]),
    ],
    ids=["classic", "seal", "hybrid", "hybrid-seal", "root"],
)
def test_generate(
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    participant: str,
    flags: list[str],
    files: list[str],
    keys: list[tuple[str, str]],
) -> None:
    directory = tmp_path / "keys"
    status, out, err = run(capsys, "keys", "generate", participant, "--dir", str(directory), *flags)
    assert (status, err) == (0, "")
    lines = out.splitlines()
    names = [f"{participant}.{suffix}" for suffix in files] + [f"{participant}.pub.json"]
    assert lines[: len(names)] == [str(directory / name) for name in names]
    assert sorted(p.name for p in directory.iterdir()) == sorted(names)
    for name in names:
        mode = stat.S_IMODE((directory / name).stat().st_mode)
        assert mode == (0o644 if name.endswith(".json") else 0o600)

    # One KID USE ALG NOT_BEFORE NOT_AFTER line per key, as in ID.pub.json.
    public = read_public(directory / f"{participant}.pub.json")
    rows = [line.split("\t") for line in lines[len(names) :]]
    assert [(row[1], row[2]) for row in rows] == keys
    assert [row[0] for row in rows] == [key.kid for key, _ in public.keys]
    validity = public.keys[0][1]
    assert parse_wire_time(rows[0][4]) - parse_wire_time(rows[0][3]) == timedelta(days=730)
    assert parse_wire_time(rows[0][3]) == validity.not_before

    # Never key material: no PEM, no raw public key.
    assert "PRIVATE" not in out
    document = json.loads((directory / f"{participant}.pub.json").read_text())
    assert all(key["public"] not in out for key in document["keys"])
    assert load_keyset(directory, participant, None).public() == public


def test_generate_honours_evb_key_passphrase(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("EVB_KEY_PASSPHRASE", "s3cret")
    status, out, _ = run(capsys, "keys", "generate", "AT.247", "--dir", str(tmp_path), "--hybrid")
    assert status == 0
    assert "s3cret" not in out
    for pem in tmp_path.glob("*.pem"):
        assert pem.read_text().startswith("-----BEGIN ENCRYPTED PRIVATE KEY-----")
    assert load_keyset(tmp_path, "AT.247", b"s3cret").suite == "hybrid"


@pytest.mark.parametrize(
    ("env", "written_encrypted"), [("", False), ("pw", True)], ids=["empty", "set"]
)
def test_empty_passphrase_means_none(
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    env: str,
    written_encrypted: bool,
) -> None:
    monkeypatch.setenv("EVB_KEY_PASSPHRASE", env)
    assert run(capsys, "keys", "generate", "root1", "--dir", str(tmp_path))[0] == 0
    text = (tmp_path / "root1.sig.pem").read_text()
    assert text.startswith("-----BEGIN ENCRYPTED") == written_encrypted


def test_valid_days(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    args = ("keys", "generate", "AT.247", "--dir", str(tmp_path), "--valid-days", "10")
    assert run(capsys, *args)[0] == 0
    (_, validity), *_ = read_public(tmp_path / "AT.247.pub.json").keys
    assert validity.not_after - validity.not_before == timedelta(days=10)


def test_force(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    args = ("keys", "generate", "AT.247", "--dir", str(tmp_path))
    assert run(capsys, *args)[0] == 0
    before = (tmp_path / "AT.247.sig.pem").read_bytes()
    status, out, err = run(capsys, *args)
    assert (status, out) == (2, "")
    assert err.startswith("evb: E_CONFIG: refusing to overwrite")
    assert (tmp_path / "AT.247.sig.pem").read_bytes() == before
    assert run(capsys, *args, "--force")[0] == 0
    assert (tmp_path / "AT.247.sig.pem").read_bytes() != before


@pytest.mark.parametrize("participant", ["../x", "AT/247", "", "at.247", "AT.247\n"])
def test_generate_refuses_bad_ids(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, participant: str
) -> None:
    directory = tmp_path / "keys"
    status, out, err = run(capsys, "keys", "generate", participant, "--dir", str(directory))
    assert (status, out) == (2, "")
    assert err.startswith("evb: E_CONFIG: ")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("days", ["0", "-1", "abc", "36501"])
def test_generate_refuses_bad_validity(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, days: str
) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["keys", "generate", "AT.247", "--dir", str(tmp_path), "--valid-days", days])
    assert exc.value.code == 2
    assert "--valid-days" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_generate_refuses_a_file_as_directory(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    target = tmp_path / "file"
    target.write_text("x")
    status, _, err = run(capsys, "keys", "generate", "AT.247", "--dir", str(target))
    assert status == 2
    assert "is not a directory" in err


def test_show(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    run(capsys, "keys", "generate", "DE.CA", "--dir", str(tmp_path), "--seal", "--hybrid")
    path = tmp_path / "DE.CA.pub.json"
    status, out, err = run(capsys, "keys", "show", str(path))
    assert (status, err) == (0, "")
    header, *rows = out.splitlines()
    assert header == "DE.CA\thybrid"
    public = read_public(path)
    assert [row.split("\t")[:3] for row in rows] == [[k.kid, k.use, k.alg] for k, _ in public.keys]
    assert all(len(row.split("\t")) == 5 for row in rows)


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b"not json", "E_PARSE\t\t"),
        (b"[]", "E_SCHEMA\t\t"),
        (b"kid", "E_PARSE\t\t"),
        (b"x" * (64 * 1024 + 1), "E_TOO_LARGE\t\t"),
    ],
    ids=["not-json", "not-object", "garbage", "oversized"],
)
def test_show_refusals(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, content: bytes, expected: str
) -> None:
    path = tmp_path / "x.pub.json"
    path.write_bytes(content)
    status, out, _ = run(capsys, "keys", "show", str(path))
    assert status == 1
    assert out.startswith(expected)


def test_show_refuses_a_tampered_kid(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    run(capsys, "keys", "generate", "AT.247", "--dir", str(tmp_path))
    path = tmp_path / "AT.247.pub.json"
    document = json.loads(path.read_text())
    document["keys"][1]["kid"] = document["keys"][0]["kid"]
    path.write_text(json.dumps(document))
    status, out, _ = run(capsys, "keys", "show", str(path))
    assert status == 1
    assert out.startswith("E_SCHEMA\t/keys/1/kid\t")


def test_show_missing_file(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    status, out, err = run(capsys, "keys", "show", str(tmp_path / "nobody.pub.json"))
    assert (status, out) == (2, "")
    assert err.startswith("evb: E_CONFIG: cannot read")
