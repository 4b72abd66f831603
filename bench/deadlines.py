"""Benchmark: every due date of 100 000 open cases, recomputed after a restart.

A SQLite store (the embedded default) is filled with open cases of several
instruments and priorities — each with its request and, for most, one or two replies
(acknowledgement, preservation or recognition status) — then closed. Product: a fresh
store (the restart) and :func:`broker.cases.recompute_deadlines`, which pages through
every case record and its events and computes all its deadlines with the rules table
(:func:`broker.lifecycle.deadlines`). Baseline, in the same run on the same file: a bare
loop that reads the same rows with the same page size and SQL on a plain ``sqlite3``
connection, parsing nothing. ``value`` is cases per second; ``pass`` judges the issue's
target: ratio >= 0.3 and under 10 s in absolute terms.

Usage: ``python bench/deadlines.py [--quick|--full] [--cases N] [--seconds S]``; the last line of
output is JSON.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sqlite3
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import structlog

from broker import lifecycle
from broker.cases import event_json, recompute_deadlines
from broker.clock import SystemClock
from broker.ids import uuid7
from broker.lifecycle import Event, Priority
from broker.store import StorageKey, open_store
from broker.store.sqlite import _case_histories

TARGET_RATIO = 0.3
TARGET_SECONDS = 10.0
PAGE = 2000
NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)

# (instrument, priority, events after the request, overrides, facts)
_Reply = tuple[str, str, dict[str, Any]]
_Shape = tuple[str, Priority, list[_Reply], dict[str, str], dict[str, str]]
_SHAPES: list[_Shape] = [
    ("coe.art29.preservation", "normal", [], {"preservation_period": "P90D"}, {}),
    ("coe.art29.preservation", "normal", [("case.ack", "requested", {})],
     {"preservation_period": "P60D"}, {}),
    ("coe.art29.preservation", "emergency",
     [("case.ack", "requested", {}), ("case.status", "requested", {"status": "preserved"})],
     {"preservation_period": "P90D"}, {}),
    ("eu.eio.a", "normal", [("case.ack", "requested", {})], {}, {}),
    ("eu.eio.a", "normal",
     [("case.ack", "requested", {}), ("case.status", "requested", {"status": "recognised"})],
     {}, {}),
    ("mla.request", "normal", [], {}, {}),
    ("coe.art31.mla", "normal", [("case.ack", "requested", {})], {}, {}),
    ("coe.p2.art8.order", "normal", [], {}, {"data_kind": "traffic"}),
]  # fmt: skip


def say(text: str) -> None:
    """Print a progress line (the JSON line comes last)."""
    print(text, flush=True)


def _history(index: int, shape: int) -> list[Event]:
    instrument, _, replies, _, _ = _SHAPES[shape]
    start = NOW - timedelta(hours=1 + index % 500)
    events = [Event(type=instrument, by="requester", at=start)]
    for step, (form_type, by, extra) in enumerate(replies, 1):
        at = start + timedelta(minutes=10 * step)
        until = at + timedelta(days=90) if extra.get("status") == "preserved" else None
        events.append(Event(type=form_type, by=by, at=at, status=extra.get("status"), until=until))
    return events


def populate(path: Path, count: int) -> None:
    """Fill the store file with ``count`` open cases (bulk SQL: not measured)."""
    # Every shape must be a history the rules accept.
    for shape, (instrument, priority, _, overrides, facts) in enumerate(_SHAPES):
        parsed = {k: lifecycle.parse_duration(v) for k, v in overrides.items()}
        lifecycle.deadlines(
            instrument,
            priority,
            _history(0, shape),
            now=NOW,
            overrides=parsed,
            facts=facts,
        )
    db = sqlite3.connect(path)
    try:
        cases, events = [], []
        for index in range(count):
            shape = index % len(_SHAPES)
            instrument, priority, _, overrides, facts = _SHAPES[shape]
            case_id = uuid7()
            history = _history(index, shape)
            cases.append(
                (case_id, instrument, priority, "DE.247", "AT.247", "open", len(history),
                 json.dumps(facts), json.dumps(overrides),
                 int(history[-1].at.timestamp() * 1_000_000))
            )  # fmt: skip
            events += [
                (case_id, seq, None, json.dumps(event_json(e))) for seq, e in enumerate(history, 1)
            ]
        db.executemany("INSERT INTO case_lifecycle VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", cases)
        db.executemany("INSERT INTO case_events VALUES (?, ?, ?, ?)", events)
        db.commit()
    finally:
        db.close()


def baseline(path: Path) -> tuple[float, int]:
    """Read every case row and its events, page by page, parsing nothing: seconds, cases."""
    db = sqlite3.connect(path)
    db.row_factory = sqlite3.Row
    try:
        started = time.perf_counter()
        after, total = "", 0
        while True:
            db.execute("BEGIN")
            rows, events = _case_histories(db, after, PAGE)
            db.execute("COMMIT")
            if not rows:
                break
            total += len(rows)
            for row in rows:
                _ = (row["case_id"], row["instrument"], row["facts"], row["overrides"])
            for event in events:
                _ = event["data"]
            after = rows[-1]["case_id"]
        return time.perf_counter() - started, total
    finally:
        db.close()


async def product(path: Path, key: StorageKey) -> tuple[float, int, int]:
    """Open the store afresh and recompute every deadline: seconds, cases, deadlines."""
    started = time.perf_counter()
    cases = deadlines = 0
    async with open_store(f"sqlite:///{path}", key, SystemClock()) as store:
        async for _, found in recompute_deadlines(store, NOW, page=PAGE):
            cases += 1
            deadlines += len(found)
    seconds = time.perf_counter() - started
    return seconds, cases, deadlines


async def run(count: int) -> dict[str, Any]:
    """Build the store, then measure the baseline and the product (best of two each)."""
    key = StorageKey.generate()
    with tempfile.TemporaryDirectory(prefix="evb-bench-") as state:
        path = Path(state) / "node.db"
        async with open_store(f"sqlite:///{path}", key, SystemClock()):
            pass  # migrate
        started = time.perf_counter()
        populate(path, count)
        say(f"populated {count} open cases in {time.perf_counter() - started:.1f} s")
        bases = [baseline(path) for _ in range(2)]
        products = [await product(path, key) for _ in range(2)]
    base_seconds, base_cases = min(bases)
    seconds, cases, deadlines = min(products)
    if base_cases != count or cases != count:
        raise SystemExit(f"bench: read {base_cases} / {cases} cases of {count}")
    say(f"baseline: read {count} cases in {base_seconds:.2f} s")
    say(f"product: {deadlines} deadlines of {count} cases in {seconds:.2f} s")
    return {"seconds": seconds, "base_seconds": base_seconds, "deadlines": deadlines}


def main() -> None:
    """Run the benchmark and print one JSON line last."""
    parser = argparse.ArgumentParser(description=__doc__)
    size = parser.add_mutually_exclusive_group()
    size.add_argument("--quick", action="store_true", help="20 000 cases")
    size.add_argument("--full", action="store_true", help="100 000 cases (the default)")
    parser.add_argument("--cases", type=int, help="number of cases (overrides)")
    parser.add_argument(
        "--seconds", type=float, help="size the run to about this many seconds (smoke tests)"
    )
    args = parser.parse_args()
    count = args.cases or (20_000 if args.quick else 100_000)
    if args.seconds is not None and not args.cases:
        count = max(1_000, int(args.seconds * 15_000))
    # Progress goes to stdout; the library's logs show warnings only, on stderr.
    structlog.configure(
        wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
    )
    figures = asyncio.run(run(count))
    rate = count / figures["seconds"]
    base = count / figures["base_seconds"]
    ratio = rate / base
    # The 10 s budget is for 100 000 cases: a smaller run is judged pro rata.
    budget = TARGET_SECONDS * count / 100_000
    line = {
        "name": "deadlines",
        "value": round(rate, 1),
        "unit": "cases/s (every due date recomputed from stored histories, SQLite)",
        "baseline": round(base, 1),
        "ratio": round(ratio, 4),
        "target": TARGET_RATIO,
        "pass": ratio >= TARGET_RATIO and figures["seconds"] < budget,
        "cases": count,
        "deadlines": figures["deadlines"],
        "seconds": round(figures["seconds"], 3),
        "baseline_seconds": round(figures["base_seconds"], 3),
        "seconds_target": budget,
    }
    print(json.dumps(line))


if __name__ == "__main__":
    main()
