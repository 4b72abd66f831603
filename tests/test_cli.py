"""The `evb` command line: output formats, exit codes, and never a traceback."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from broker.cli import main
from broker.schema import catalogue

T = "coe.art29.preservation"


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    status = main(list(argv))
    out, err = capsys.readouterr()
    return status, out, err


def test_schema_list_has_one_tab_separated_line_per_type(
    capsys: pytest.CaptureFixture[str],
) -> None:
    status, out, _ = run(capsys, "schema", "list")
    assert status == 0
    lines = out.splitlines()
    assert len(lines) == len(catalogue().types())
    rows = [line.split("\t") for line in lines]
    assert all(len(row) == 3 for row in rows)
    assert [T, f"urn:evb:schema:{T}:1", "ETS 185 Art 29"] in rows


def test_schema_show_prints_the_bundled_schema(capsys: pytest.CaptureFixture[str]) -> None:
    status, out, _ = run(capsys, "schema", "show", T)
    assert status == 0
    assert json.loads(out) == catalogue().schema(T)


def test_template_validates(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    status, out, _ = run(capsys, "form", "template", T)
    assert status == 0
    path = tmp_path / "form.json"
    path.write_text(out)
    assert run(capsys, "validate", "--type", T, str(path)) == (0, "valid\n", "")
    assert run(capsys, "validate", "--json", "--type", T, str(path)) == (0, "[]\n", "")


def _bad_form(tmp_path: Path) -> Path:
    doc = json.loads(catalogue().template(T))
    doc["preservation_days"] = 30
    doc["requesting_authority"]["contact"]["email"] = "poc247@bka"
    doc["data"][0]["identifiers"][0]["port"] = 25
    doc["extra"] = 1
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(doc))
    return path


def test_invalid_form_lines_sorted_by_pointer(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    status, out, err = run(capsys, "validate", "--type", T, str(_bad_form(tmp_path)))
    assert status == 1
    assert err == ""
    rows = [line.split("\t") for line in out.splitlines()]
    assert [(r[0], r[1]) for r in rows] == [
        ("E_SCHEMA", "/data/0/identifiers/0/port"),
        ("E_SCHEMA", "/extra"),
        ("E_SCHEMA", "/preservation_days"),
        ("E_SCHEMA", "/requesting_authority/contact/email"),
    ]
    assert all(r[2] for r in rows)


def test_invalid_form_json_output(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    status, out, _ = run(capsys, "validate", "--json", "--type", T, str(_bad_form(tmp_path)))
    assert status == 1
    problems = json.loads(out)
    assert [p["pointer"] for p in problems] == sorted(p["pointer"] for p in problems)
    assert set(problems[0]) == {"code", "pointer", "message"}


def test_stdin(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    stdin = io.TextIOWrapper(io.BytesIO(b'{"language": '))
    monkeypatch.setattr("sys.stdin", stdin)
    status, out, _ = run(capsys, "validate", "--type", T, "-")
    assert status == 1
    assert out.startswith("E_PARSE\t\t")


@pytest.mark.parametrize(
    ("argv_tail", "env", "expected"),
    [
        (["--max-bytes", "100"], None, "E_TOO_LARGE\t\t"),
        ([], "100", "E_TOO_LARGE\t\t"),
    ],
)
def test_size_limit_option_and_environment(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    argv_tail: list[str],
    env: str | None,
    expected: str,
) -> None:
    if env is not None:
        monkeypatch.setenv("EVB_MAX_FORM_BYTES", env)
    path = tmp_path / "form.json"
    path.write_bytes(catalogue().template(T))
    status, out, _ = run(capsys, "validate", "--type", T, *argv_tail, str(path))
    assert status == 1
    assert out.startswith(expected)


@pytest.mark.parametrize(
    ("argv", "fragment"),
    [
        (["validate", "--type", "coe.art99.none", "x.json"], "E_UNKNOWN_TYPE"),
        (["validate", "--type", T, "/nonexistent/form.json"], "cannot read"),
        (["validate", "--type", T, "--max-bytes", "many", "x.json"], "whole number"),
        (["schema", "show", "coe.art99.none"], "E_UNKNOWN_TYPE"),
        (["form", "template", T, "--xml"], "no XML form"),
    ],
)
def test_usage_errors_exit_2_without_traceback(
    capsys: pytest.CaptureFixture[str], argv: list[str], fragment: str
) -> None:
    status, out, err = run(capsys, *argv)
    assert status == 2
    assert fragment in err
    assert "Traceback" not in err + out
