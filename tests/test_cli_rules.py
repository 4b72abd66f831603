"""`evb rules list`: the deadline rules table, for the terminal and as JSON."""

from __future__ import annotations

import json
from typing import Any

import pytest

from broker.cli import main
from broker.lifecycle import parse_duration, rules_table

HEADER = ["ID", "INSTRUMENT", "STEP", "PRIORITY", "STARTS_ON", "DURATION", "ARTICLE"]
KEYS = {"id", "instrument", "step", "starts_on", "duration", "priority", "article"}
# Rows the brief names, with their articles (Directive 2014/41/EU Art 12(3): recognition
# within 30 days; Regulation (EU) 2023/1543 Art 10(4): emergency production in 8 hours).
EXPECTED = [
    ("eio.recognise", "eu.eio.a", "recognise", "any", "P30D", "Directive 2014/41/EU Art 12(3)"),
    (
        "epoc.produce.emergency",
        "eu.epoc",
        "produce",
        "emergency",
        "PT8H",
        "Regulation (EU) 2023/1543 Art 10(4)",
    ),
]


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    status = main(list(argv))
    out, err = capsys.readouterr()
    return status, out, err


def json_rows(capsys: pytest.CaptureFixture[str]) -> list[dict[str, Any]]:
    status, out, err = run(capsys, "rules", "list", "--json")
    assert (status, err) == (0, "")
    rows: list[dict[str, Any]] = json.loads(out)
    return rows


def test_json_lists_every_rule_with_its_members(capsys: pytest.CaptureFixture[str]) -> None:
    rows = json_rows(capsys)
    assert sorted(rows, key=lambda r: r["id"]) == sorted(rules_table(), key=lambda r: r["id"])
    for row in rows:
        assert set(row) >= KEYS, row["id"]
        assert row["article"].strip(), row["id"]


def test_json_durations_are_iso_8601(capsys: pytest.CaptureFixture[str]) -> None:
    for row in json_rows(capsys):
        if row["duration"] is None:
            # No time limit in law: the rule applies only with the case's own value.
            assert row["override"] is not None, row["id"]
        else:
            assert parse_duration(row["duration"]).total_seconds() > 0, row["id"]


def test_json_is_sorted_by_instrument_then_step(capsys: pytest.CaptureFixture[str]) -> None:
    keys = [(r["instrument"], r["step"]) for r in json_rows(capsys)]
    assert keys == sorted(keys)


@pytest.mark.parametrize(
    ("rule", "instrument", "step", "priority", "duration", "article"),
    EXPECTED,
    ids=[row[0] for row in EXPECTED],
)
def test_json_has_the_rule(
    capsys: pytest.CaptureFixture[str],
    rule: str,
    instrument: str,
    step: str,
    priority: str,
    duration: str,
    article: str,
) -> None:
    found = {r["id"]: r for r in json_rows(capsys)}[rule]
    assert (found["instrument"], found["step"], found["priority"]) == (instrument, step, priority)
    assert found["duration"] == duration
    assert article in found["article"]


def table(capsys: pytest.CaptureFixture[str]) -> list[list[str]]:
    status, out, err = run(capsys, "rules", "list")
    assert (status, err) == (0, "")
    # Columns are separated by at least two spaces; no cell holds two spaces in a row.
    return [
        [cell.strip() for cell in line.split("  ") if cell.strip()] for line in out.splitlines()
    ]


def test_table_has_a_header_and_one_line_per_rule(capsys: pytest.CaptureFixture[str]) -> None:
    lines = table(capsys)
    assert lines[0] == HEADER
    assert len(lines) == 1 + len(rules_table())
    assert sorted(line[0] for line in lines[1:]) == sorted(r["id"] for r in rules_table())
    assert all(len(line) == len(HEADER) for line in lines[1:])


def test_table_is_sorted_by_instrument_then_step(capsys: pytest.CaptureFixture[str]) -> None:
    keys = [(line[1], line[2]) for line in table(capsys)[1:]]
    assert keys == sorted(keys)


@pytest.mark.parametrize(
    ("rule", "instrument", "step", "priority", "duration", "article"),
    EXPECTED,
    ids=[row[0] for row in EXPECTED],
)
def test_table_has_the_rule(
    capsys: pytest.CaptureFixture[str],
    rule: str,
    instrument: str,
    step: str,
    priority: str,
    duration: str,
    article: str,
) -> None:
    found = {line[0]: line for line in table(capsys)[1:]}[rule]
    assert found[1:4] == [instrument, step, priority]
    assert found[4] == "request"
    assert found[5] == duration
    assert found[6].startswith(article)


def test_table_shortens_long_articles_only(capsys: pytest.CaptureFixture[str]) -> None:
    articles = {r["id"]: r["article"] for r in rules_table()}
    shown = {line[0]: line[6] for line in table(capsys)[1:]}
    longest = max(articles, key=lambda rule: len(articles[rule]))
    assert shown[longest].endswith("...")
    assert articles[longest].startswith(shown[longest].removesuffix("..."))
    assert len(shown[longest]) < len(articles[longest])
    assert shown["epoc.produce.emergency"] == articles["epoc.produce.emergency"]


def test_rules_needs_an_action(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["rules"])
    assert exc.value.code == 2
    assert "ACTION" in capsys.readouterr().err
