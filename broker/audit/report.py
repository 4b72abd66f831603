"""Compliance figures from a replayed audit log, and their JSON, CSV and HTML renderings.

Pure: a :class:`~broker.audit.replay.Replay` and the time in, a :class:`Report` out; the
renderers return text (the caller writes the file). The figures, per instrument, per
counterpart (the other party of each case's opening request) and per country (the
counterpart's participant-id prefix, ``DE`` of ``DE.CA``):

* requests — cases whose opening request the log shows;
* response time — from the request (submitted here, or received here) to the first
  message from the other side, in hours: median and 90th percentile (nearest rank);
* deadlines met and missed (``lapsed`` periods are neither), and per rule with the
  article of ``schemas/data/deadline_rules.json``;
* refusals, by ground or, where no ground is recorded, by error code;
* open cases at risk — a pending deadline due within 24 hours of ``now``, or past.

The HTML page is one self-contained file for a reader who is not an engineer: plain
headings, tables and bar charts drawn here as inline SVG; no script, no external
resource; every text from the log or the rules table is escaped.
"""

from __future__ import annotations

import csv
import functools
import html
import io
import json
import math
import statistics
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import Any, Final

from broker.audit.replay import CaseReplay, Replay
from broker.clock import wire_time
from broker.errors import BrokerError
from broker.lifecycle import machine, rules

__all__ = [
    "AT_RISK_WINDOW",
    "AtRisk",
    "GroupStats",
    "RefusalStats",
    "Report",
    "RuleStats",
    "compliance_report",
    "to_csv",
    "to_html",
    "to_json",
]

#: A pending deadline due within this window of ``now`` (or past) puts its case at risk.
AT_RISK_WINDOW: Final = timedelta(hours=24)
_UNKNOWN = "unknown"


@dataclass(frozen=True)
class GroupStats:
    """The figures of one instrument, counterpart or country.

    Attributes:
        key: the instrument, counterpart participant id or country code.
        requests: cases opened by a request the log shows.
        responses: of those, cases where the other side replied.
        median_response_hours: the median time to that first reply, in hours.
        p90_response_hours: its 90th percentile (nearest rank), in hours.
        deadlines_met: deadlines met in time.
        deadlines_missed: deadlines missed.
        refusals: refusals recorded.
        open_at_risk: open cases with a deadline due within 24 hours, or past.
    """

    key: str
    requests: int
    responses: int
    median_response_hours: float | None
    p90_response_hours: float | None
    deadlines_met: int
    deadlines_missed: int
    refusals: int
    open_at_risk: int


@dataclass(frozen=True)
class RuleStats:
    """How one deadline rule fared.

    Attributes:
        rule: the rule id.
        instrument: its instrument (from the rules table, else as recorded).
        step: the step it times.
        article: the legal basis, from the rules table ("" for a rule it lacks).
        met: deadlines met.
        missed: deadlines missed.
        pending: deadlines still running.
        lapsed: periods that ran out.
    """

    rule: str
    instrument: str
    step: str
    article: str
    met: int
    missed: int
    pending: int
    lapsed: int


@dataclass(frozen=True)
class RefusalStats:
    """Refusals of one ground or code.

    Attributes:
        reason: the ground, else the error code, else ``not recorded``.
        refused_by: ``self`` (this node) or ``peer``.
        count: how many.
    """

    reason: str
    refused_by: str
    count: int


@dataclass(frozen=True)
class AtRisk:
    """A pending deadline of an open case, due soon or past.

    Attributes:
        case_id: the case.
        instrument: its instrument.
        counterpart: the other party.
        rule: the rule id.
        article: the rule's legal basis.
        owed_by: the party that owes the step.
        due_at: when it is due.
        hours_left: hours from ``now`` to ``due_at`` (negative: overdue), one decimal.
    """

    case_id: str
    instrument: str
    counterpart: str
    rule: str
    article: str
    owed_by: str
    due_at: datetime
    hours_left: float


@dataclass(frozen=True)
class Report:
    """A compliance report.

    Attributes:
        generated_at: the ``now`` it was computed for.
        participant: whose log it is, if given.
        entries: entries replayed.
        cases: cases found.
        period_start: the first entry's time.
        period_end: the last entry's time.
        by_instrument: figures per instrument, sorted by key.
        by_counterpart: figures per counterpart.
        by_country: figures per counterpart country.
        rules: deadline outcomes per rule, sorted by rule id.
        refusals: refusals by reason, most frequent first.
        at_risk: open cases at risk, soonest due first.
    """

    generated_at: datetime
    participant: str | None
    entries: int
    cases: int
    period_start: datetime | None
    period_end: datetime | None
    by_instrument: tuple[GroupStats, ...]
    by_counterpart: tuple[GroupStats, ...]
    by_country: tuple[GroupStats, ...]
    rules: tuple[RuleStats, ...]
    refusals: tuple[RefusalStats, ...]
    at_risk: tuple[AtRisk, ...]


# -- figures ----------------------------------------------------------------------------


@functools.cache
def _rules_by_id() -> Mapping[str, Any]:
    return {rule.id: rule for rule in rules()}


def _is_terminal(case: CaseReplay) -> bool:
    if case.instrument is None or case.state is None:
        return False
    try:
        state = machine(case.instrument).states.get(case.state)
    except BrokerError:
        return False
    return state is not None and state.terminal


def _hours(delta: timedelta) -> float:
    return round(delta.total_seconds() / 3600, 2)


def _p90(values: Sequence[float]) -> float:
    ordered = sorted(values)
    return ordered[math.ceil(0.9 * len(ordered)) - 1]


def _counterpart(case: CaseReplay) -> str:
    if case.counterpart is not None:
        return case.counterpart
    return case.peers[0] if len(case.peers) == 1 else _UNKNOWN


def _country(case: CaseReplay) -> str:
    counterpart = _counterpart(case)
    return counterpart.split(".", 1)[0] if "." in counterpart else _UNKNOWN


def _group(
    cases: Iterable[CaseReplay], key: Callable[[CaseReplay], str], risky: set[str]
) -> tuple[GroupStats, ...]:
    groups: dict[str, list[CaseReplay]] = {}
    for case in cases:
        groups.setdefault(key(case), []).append(case)
    result = []
    for name in sorted(groups):
        members = groups[name]
        times = [
            _hours(c.first_reply_at - c.opened_at)
            for c in members
            if c.opened_at is not None and c.first_reply_at is not None
        ]
        result.append(
            GroupStats(
                key=name,
                requests=sum(c.opened_at is not None for c in members),
                responses=len(times),
                median_response_hours=round(statistics.median(times), 2) if times else None,
                p90_response_hours=_p90(times) if times else None,
                deadlines_met=sum(d.state == "met" for c in members for d in c.deadlines),
                deadlines_missed=sum(d.state == "missed" for c in members for d in c.deadlines),
                refusals=sum(len(c.refusals) for c in members),
                open_at_risk=sum(c.case_id in risky for c in members),
            )
        )
    return tuple(result)


def _rule_stats(cases: Iterable[CaseReplay]) -> tuple[RuleStats, ...]:
    table = _rules_by_id()
    counts: dict[str, dict[str, int]] = {}
    seen: dict[str, tuple[str, str]] = {}
    for case in cases:
        for d in case.deadlines:
            counts.setdefault(d.rule, {"met": 0, "missed": 0, "pending": 0, "lapsed": 0})
            counts[d.rule][d.state] += 1
            seen.setdefault(d.rule, (case.instrument or _UNKNOWN, d.step or ""))
    result = []
    for rule_id in sorted(counts):
        rule = table.get(rule_id)
        instrument, step = (rule.instrument, rule.step) if rule else seen[rule_id]
        c = counts[rule_id]
        result.append(
            RuleStats(
                rule=rule_id,
                instrument=instrument,
                step=step,
                article=rule.article if rule else "",
                met=c["met"],
                missed=c["missed"],
                pending=c["pending"],
                lapsed=c["lapsed"],
            )
        )
    return tuple(result)


def _refusal_stats(cases: Iterable[CaseReplay]) -> tuple[RefusalStats, ...]:
    counts: dict[tuple[str, str], int] = {}
    for case in cases:
        for r in case.refusals:
            key = (r.ground or r.code or "not recorded", r.refused_by)
            counts[key] = counts.get(key, 0) + 1
    ordered = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
    return tuple(RefusalStats(reason, by, count) for (reason, by), count in ordered)


def _at_risk(cases: Iterable[CaseReplay], now: datetime) -> tuple[AtRisk, ...]:
    table = _rules_by_id()
    found = []
    for case in cases:
        if _is_terminal(case):
            continue
        for d in case.deadlines:
            if d.state != "pending" or d.due_at is None or d.due_at > now + AT_RISK_WINDOW:
                continue
            rule = table.get(d.rule)
            found.append(
                AtRisk(
                    case_id=case.case_id,
                    instrument=case.instrument or _UNKNOWN,
                    counterpart=_counterpart(case),
                    rule=d.rule,
                    article=rule.article if rule else "",
                    owed_by=d.owed_by or _UNKNOWN,
                    due_at=d.due_at,
                    hours_left=round((d.due_at - now).total_seconds() / 3600, 1),
                )
            )
    return tuple(sorted(found, key=lambda a: (a.due_at, a.case_id, a.rule)))


def compliance_report(replay: Replay, *, now: datetime, participant: str | None = None) -> Report:
    """Compute the compliance figures of a replayed log as of ``now``.

    Args:
        replay: the replayed log (:func:`broker.audit.replay.replay`).
        now: the time the report is for (deadlines at risk are judged against it).
        participant: whose log it is, for the title.

    Returns:
        the report; deterministic for a given replay and ``now``.

    Raises:
        ValueError: ``now`` is not timezone-aware.
    """
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    cases = list(replay.cases.values())
    at_risk = _at_risk(cases, now)
    risky = {a.case_id for a in at_risk}
    return Report(
        generated_at=now,
        participant=participant,
        entries=replay.entries,
        cases=len(cases),
        period_start=replay.first_at,
        period_end=replay.last_at,
        by_instrument=_group(cases, lambda c: c.instrument or _UNKNOWN, risky),
        by_counterpart=_group(cases, _counterpart, risky),
        by_country=_group(cases, _country, risky),
        rules=_rule_stats(cases),
        refusals=_refusal_stats(cases),
        at_risk=at_risk,
    )


# -- JSON and CSV -----------------------------------------------------------------------


def _plain(value: Any) -> Any:
    if isinstance(value, datetime):
        return wire_time(value)
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def to_json(report: Report) -> str:
    """Render the report as JSON (sorted members, times in wire form, final newline)."""
    return json.dumps(_plain(asdict(report)), indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def to_csv(report: Report) -> str:
    """Render the report as one long-format CSV: ``section,key,measure,value`` rows.

    Sections: ``summary``, ``instrument``, ``counterpart``, ``country`` (one row per
    figure), ``rule`` (key = rule id), ``refusal`` (key = reason/refused_by) and
    ``at_risk`` (key = case id/rule). Empty values are empty cells.
    """
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["section", "key", "measure", "value"])

    def rows(section: str, key: str, record: Mapping[str, Any]) -> None:
        for measure, value in record.items():
            plain = _plain(value)
            writer.writerow([section, key, measure, "" if plain is None else plain])

    rows(
        "summary",
        report.participant or "",
        {
            "generated_at": report.generated_at,
            "entries": report.entries,
            "cases": report.cases,
            "period_start": report.period_start,
            "period_end": report.period_end,
        },
    )
    for section, groups in (
        ("instrument", report.by_instrument),
        ("counterpart", report.by_counterpart),
        ("country", report.by_country),
    ):
        for g in groups:
            rows(section, g.key, {k: v for k, v in asdict(g).items() if k != "key"})
    for r in report.rules:
        rows("rule", r.rule, {k: v for k, v in asdict(r).items() if k != "rule"})
    for f in report.refusals:
        rows("refusal", f"{f.reason}/{f.refused_by}", {"count": f.count})
    for a in report.at_risk:
        rows("at_risk", f"{a.case_id}/{a.rule}", asdict(a))
    return out.getvalue()


# -- HTML -------------------------------------------------------------------------------

_SERIES_COLOURS: Final = ("#2e7d32", "#c62828", "#1565c0", "#6a1b9a")
_STYLE: Final = """
body{font-family:system-ui,-apple-system,"Segoe UI",Arial,sans-serif;margin:2rem auto;
max-width:60rem;padding:0 1rem;color:#1a1a1a;line-height:1.45}
h1{font-size:1.6rem}h2{font-size:1.25rem;margin-top:2.2rem;border-bottom:1px solid #ccc}
table{border-collapse:collapse;margin:.8rem 0;width:100%}
th,td{border:1px solid #ccc;padding:.3rem .5rem;text-align:left;vertical-align:top}
th{background:#f2f2f2}td.n{text-align:right;font-variant-numeric:tabular-nums}
.note{color:#555;font-size:.9rem}svg{max-width:100%;height:auto}
""".strip()


def _e(value: object) -> str:
    """Escape any value for HTML text and attributes."""
    return html.escape("" if value is None else str(value), quote=True)


def _fmt(value: object) -> str:
    if value is None:
        return "—"
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M UTC")
    if isinstance(value, float):
        return f"{value:.1f}"
    return str(value)


def _table(headers: Sequence[str], rows: Iterable[Sequence[object]], empty: str) -> str:
    body = [
        "<tr>"
        + "".join(
            f'<td class="n">{_e(_fmt(v))}</td>'
            if isinstance(v, int | float) and not isinstance(v, bool)
            else f"<td>{_e(_fmt(v))}</td>"
            for v in row
        )
        + "</tr>"
        for row in rows
    ]
    if not body:
        return f'<p class="note">{_e(empty)}</p>'
    head = "".join(f'<th scope="col">{_e(h)}</th>' for h in headers)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def _bar_chart(
    title: str, series: Sequence[str], rows: Sequence[tuple[str, Sequence[float]]], unit: str
) -> str:
    """A horizontal grouped bar chart as inline SVG: one group of bars per row."""
    if not rows:
        return f'<p class="note">{_e(title)}: nothing to show.</p>'
    label_w, bar_w, bar_h, gap, legend_h = 230, 380, 14, 10, 24
    group_h = bar_h * len(series) + gap
    height = legend_h + group_h * len(rows) + gap
    width = label_w + bar_w + 70
    top = max((v for _, values in rows for v in values), default=0.0) or 1.0
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" role="img" width="{width}" '
        f'height="{height}" viewBox="0 0 {width} {height}" aria-label="{_e(title)}">',
        f"<title>{_e(title)}</title>",
    ]
    x = label_w
    for i, name in enumerate(series):
        colour = _SERIES_COLOURS[i % len(_SERIES_COLOURS)]
        parts.append(f'<rect x="{x}" y="4" width="12" height="12" fill="{colour}"/>')
        parts.append(f'<text x="{x + 16}" y="14" font-size="12">{_e(name)}</text>')
        x += 16 + 8 * len(name) + 20
    for r, (label, values) in enumerate(rows):
        y0 = legend_h + r * group_h
        text_y = y0 + group_h / 2
        parts.append(
            f'<text x="{label_w - 8}" y="{text_y:.0f}" font-size="12" '
            f'text-anchor="end">{_e(label)}</text>'
        )
        for i, value in enumerate(values):
            colour = _SERIES_COLOURS[i % len(_SERIES_COLOURS)]
            length = bar_w * value / top
            y = y0 + i * bar_h
            parts.append(
                f'<rect x="{label_w}" y="{y}" width="{length:.1f}" height="{bar_h - 2}" '
                f'fill="{colour}"><title>{_e(f"{label}: {series[i]} {_fmt(value)}{unit}")}'
                "</title></rect>"
            )
            parts.append(
                f'<text x="{label_w + length + 4:.1f}" y="{y + bar_h - 4}" '
                f'font-size="11">{_e(_fmt(value))}</text>'
            )
    parts.append("</svg>")
    return "".join(parts)


def _title(instrument: str) -> str:
    """The instrument's plain-language title, with its id."""
    try:
        return f"{machine(instrument).title} ({instrument})"
    except BrokerError:
        return instrument


def _group_table(groups: Sequence[GroupStats], first: str, label: Callable[[str], str]) -> str:
    return _table(
        (
            first,
            "Requests",
            "Answered",
            "Median time to first reply (hours)",
            "90% answered within (hours)",
            "Deadlines met",
            "Deadlines missed",
            "Refusals",
            "Open cases at risk",
        ),
        (
            (
                label(g.key),
                g.requests,
                g.responses,
                g.median_response_hours,
                g.p90_response_hours,
                g.deadlines_met,
                g.deadlines_missed,
                g.refusals,
                g.open_at_risk,
            )
            for g in groups
        ),
        "No requests in the log.",
    )


def to_html(report: Report) -> str:
    """Render the report as one self-contained HTML page (inline SVG charts, no script).

    Every text taken from the log or the rules table is escaped.
    """
    whose = f" of {report.participant}" if report.participant else ""
    heading = f"Cross-border evidence requests: compliance report{whose}"
    period = (
        f"from {_fmt(report.period_start)} to {_fmt(report.period_end)}"
        if report.period_start
        else "(the log is empty)"
    )
    deadline_chart = _bar_chart(
        "Deadlines met and missed, by instrument",
        ("met", "missed"),
        [
            (g.key, (float(g.deadlines_met), float(g.deadlines_missed)))
            for g in report.by_instrument
            if g.deadlines_met or g.deadlines_missed
        ],
        "",
    )
    response_chart = _bar_chart(
        "Time to first reply (hours), by instrument",
        ("median", "90th percentile"),
        [
            (g.key, (g.median_response_hours or 0.0, g.p90_response_hours or 0.0))
            for g in report.by_instrument
            if g.responses
        ],
        " h",
    )
    sections = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{_e(heading)}</title><style>{_STYLE}</style></head><body>",
        f"<h1>{_e(heading)}</h1>",
        f"<p>This report was drawn from the node's tamper-evident audit log: "
        f"{report.entries} recorded events {_e(period)}, about {report.cases} cases. "
        f"It was prepared for {_e(_fmt(report.generated_at))}.</p>",
        "<h2>How quickly requests were answered</h2>",
        '<p class="note">The time from a request being sent or received to the first '
        "message from the other side.</p>",
        response_chart,
        _group_table(report.by_instrument, "Type of request", _title),
        "<h2>Legal deadlines kept and missed</h2>",
        deadline_chart,
        _table(
            (
                "Rule",
                "Type of request",
                "Step",
                "Legal basis",
                "Met",
                "Missed",
                "Running",
                "Period ended",
            ),
            (
                (r.rule, r.instrument, r.step, r.article, r.met, r.missed, r.pending, r.lapsed)
                for r in report.rules
            ),
            "No deadline in the log.",
        ),
        "<h2>Open cases at risk</h2>",
        '<p class="note">Cases still open with a deadline due within the next 24 hours, '
        "or already past (negative hours).</p>",
        _table(
            (
                "Case",
                "Type of request",
                "Other party",
                "Rule",
                "Legal basis",
                "Owed by",
                "Due",
                "Hours left",
            ),
            (
                (
                    a.case_id,
                    a.instrument,
                    a.counterpart,
                    a.rule,
                    a.article,
                    a.owed_by,
                    a.due_at,
                    a.hours_left,
                )
                for a in report.at_risk
            ),
            "No open case is at risk.",
        ),
        "<h2>Refusals</h2>",
        _table(
            ("Ground or error code", "Refused by", "Number"),
            (
                (f.reason, "this node" if f.refused_by == "self" else "the other party", f.count)
                for f in report.refusals
            ),
            "No refusal in the log.",
        ),
        "<h2>By other party</h2>",
        _group_table(report.by_counterpart, "Other party", str),
        "<h2>By country of the other party</h2>",
        _group_table(report.by_country, "Country", str),
        "</body></html>",
    ]
    return "\n".join(sections) + "\n"
