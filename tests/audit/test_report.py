"""Compliance figures of a known log, and their JSON, CSV and HTML renderings."""

from __future__ import annotations

import csv
import io
import json
import re
from dataclasses import replace
from datetime import datetime, timedelta

import pytest

from broker.audit import report as report_module
from broker.audit.replay import replay
from broker.audit.report import (
    GroupStats,
    RefusalStats,
    Report,
    compliance_report,
    to_csv,
    to_html,
    to_json,
)
from broker.lifecycle import rules
from tests.audit.test_replay import NOW, T0, build_log


def _report() -> Report:
    return compliance_report(replay(build_log()), now=NOW, participant="AT.247")


def test_figures_per_instrument() -> None:
    by_instrument = {g.key: g for g in _report().by_instrument}
    assert by_instrument["eu.epoc"] == GroupStats(
        key="eu.epoc",
        requests=1,
        responses=1,
        median_response_hours=5.0,
        p90_response_hours=5.0,
        deadlines_met=1,
        deadlines_missed=0,
        refusals=0,
        open_at_risk=0,
    )
    eio = by_instrument["eu.eio.a"]
    assert (eio.median_response_hours, eio.deadlines_met, eio.deadlines_missed) == (9.0, 1, 1)
    assert (eio.refusals, eio.open_at_risk) == (1, 1)
    art7 = by_instrument["coe.p2.art7.subscriber"]
    assert (art7.median_response_hours, art7.refusals, art7.open_at_risk) == (20.0, 1, 0)


def test_figures_per_counterpart_and_country() -> None:
    report = _report()
    assert [g.key for g in report.by_counterpart] == ["DE.BKA", "DE.CA", "FR.PNAT"]
    de, fr = report.by_country
    assert (de.key, de.requests, de.responses) == ("DE", 2, 2)
    assert (de.median_response_hours, de.p90_response_hours) == (12.5, 20.0)  # 5 h and 20 h
    assert (fr.key, fr.median_response_hours, fr.deadlines_missed) == ("FR", 9.0, 1)
    assert (report.cases, report.entries) == (3, len(build_log()))


def test_rules_refusals_and_at_risk() -> None:
    report = _report()
    articles = {r.id: r.article for r in rules()}
    by_rule = {r.rule: r for r in report.rules}
    assert set(by_rule) == {
        "eio.acknowledge", "eio.execute", "eio.recognise", "epoc.produce", "p2art7.disclose"
    }  # fmt: skip
    assert by_rule["epoc.produce"].article == articles["epoc.produce"]
    assert (by_rule["eio.recognise"].missed, by_rule["eio.execute"].pending) == (1, 1)
    assert report.refusals == (
        RefusalStats("E_SCHEMA", "self", 1),
        RefusalStats("art7.5<b>", "peer", 1),
    )
    (risk,) = report.at_risk
    assert (risk.case_id, risk.rule, risk.hours_left) == ("case-2", "eio.execute", 20.0)
    assert risk.article == articles["eio.execute"]


@pytest.mark.parametrize(
    ("now", "at_risk"),
    [
        (NOW, 1),  # due in 20 h
        (NOW - timedelta(hours=5), 0),  # due in 25 h
        (NOW + timedelta(days=3), 1),  # overdue
    ],
)
def test_at_risk_window(now: datetime, at_risk: int) -> None:
    report = compliance_report(replay(build_log()), now=now)
    assert len(report.at_risk) == at_risk


def test_a_terminal_case_is_not_at_risk() -> None:
    log = build_log()
    # case-2 ends executed: its pending deadline no longer puts it at risk.
    last = log[-1]
    log.append(
        replace(
            last,
            index=len(log),
            event="case.state",
            case_id="case-2",
            details={"instrument": "eu.eio.a", "from": "acknowledged", "to": "executed"},
        )
    )
    assert compliance_report(replay(log), now=NOW).at_risk == ()


def test_json_and_csv() -> None:
    report = _report()
    obj = json.loads(to_json(report))
    assert obj["generated_at"] == "2025-03-09T11:00:00.000Z"
    assert obj["by_country"][0]["median_response_hours"] == 12.5
    rows = list(csv.reader(io.StringIO(to_csv(report))))
    assert rows[0] == ["section", "key", "measure", "value"]
    assert ["country", "DE", "median_response_hours", "12.5"] in rows
    assert ["refusal", "art7.5<b>/peer", "count", "1"] in rows
    assert ["at_risk", "case-2/eio.execute", "hours_left", "20.0"] in rows


def test_html_is_self_contained_with_charts_and_escapes(monkeypatch: pytest.MonkeyPatch) -> None:
    hostile = {
        r.id: replace(r, article='Art 5 <script>alert("x")</script> & more') for r in rules()
    }
    monkeypatch.setattr(report_module, "_rules_by_id", lambda: hostile)
    page = to_html(_report())
    assert page.startswith("<!DOCTYPE html>")
    assert "<title>Cross-border evidence requests: compliance report of AT.247</title>" in page
    assert len(re.findall(r"<svg [^>]*role=\"img\"", page)) >= 2
    assert "Deadlines met and missed, by instrument" in page
    assert "Time to first reply (hours), by instrument" in page
    assert "European Production Order Certificate (EPOC) (eu.epoc)" in page
    # No script, no external resource, hostile text escaped.
    assert "<script" not in page
    assert re.search(r"(src|href)=", page) is None
    assert "Art 5 &lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; more" in page
    assert "art7.5&lt;b&gt;" in page
    assert "art7.5<b>" not in page


def test_an_empty_log_renders() -> None:
    report = compliance_report(replay([]), now=T0)
    page = to_html(report)
    assert "No requests in the log." in page
    assert "(the log is empty)" in page
    assert report.by_instrument == ()


def test_now_must_be_aware() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        compliance_report(replay([]), now=NOW.replace(tzinfo=None))
