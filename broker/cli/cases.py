"""``evb cases``, ``evb case show``, ``evb deadlines`` and ``evb reply``: a node's cases.

Thin: each command reads the node's store (``--config``), or builds a reply with
:mod:`broker.replies` and queues it with :func:`broker.outbox.submit`, and prints.
"""

from __future__ import annotations

import argparse
import sys
from datetime import datetime
from typing import Any

from broker.cases import peer_of, role_of
from broker.cli.common import (
    EXIT_OK,
    EXIT_REFUSED,
    Commands,
    Usage,
    print_refusal,
    read_input,
)
from broker.cli.node import _config, _plain, _print_json, _run, _store, _table, _time, _with_config
from broker.clock import SystemClock
from broker.delivery import parse_duration
from broker.errors import BrokerError, InputError
from broker.node import open_node
from broker.replies import KINDS
from broker.schema import DEFAULT_MAX_BYTES, load_json
from broker.store.base import CaseRecord, StoredDeadline

__all__ = ["register"]

_ARTICLE_WIDTH = 48


def _role(record: CaseRecord, participant: str) -> str:
    return role_of(record, participant) or "-"


def _short(text: str, width: int = _ARTICLE_WIDTH) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def _in(due: datetime, now: datetime) -> str:
    seconds = int((due - now).total_seconds())
    sign = "-" if seconds < 0 else ""
    seconds = abs(seconds)
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes = rest // 60
    text = f"{days}d{hours:02d}h" if days else f"{hours}h{minutes:02d}m"
    return sign + text


def _deadline_rows(deadlines: list[StoredDeadline], now: datetime) -> list[list[str]]:
    return [
        [
            _time(d.due_at),
            _in(d.due_at, now),
            d.priority,
            d.state,
            d.case_id,
            d.rule,
            d.owed_by,
            _short(d.article),
        ]
        for d in deadlines
    ]


_DEADLINE_HEADER = ["DUE", "IN", "PRIORITY", "STATE", "CASE", "RULE", "OWED_BY", "ARTICLE"]


def _cmd_cases(args: argparse.Namespace) -> int:
    config = _config(args)
    now = SystemClock().now()
    due_before = now + parse_duration(args.due_within) if args.due_within else None

    async def main() -> int:
        async with _store(config) as store:
            records = await store.list_case_records(
                state=args.state, instrument=args.instrument, due_before=due_before,
                limit=args.limit,
            )  # fmt: skip
            due = {d.case_id: d for d in reversed(await store.list_deadlines(limit=100_000))}
        if args.json:
            _print_json(
                [
                    {
                        **_plain(r),
                        "role": _role(r, config.participant),
                        "next_due": _plain(due[r.case_id]) if r.case_id in due else None,
                    }
                    for r in records
                ]
            )
            return EXIT_OK
        _table(
            [
                [
                    r.case_id,
                    r.instrument,
                    r.state,
                    r.priority,
                    _role(r, config.participant),
                    peer_of(r, config.participant),
                    f"{due[r.case_id].rule} {_in(due[r.case_id].due_at, now)}"
                    if r.case_id in due
                    else "-",
                ]
                for r in records
            ],
            ["CASE", "INSTRUMENT", "STATE", "PRIORITY", "ROLE", "PEER", "NEXT DUE"],
        )
        return EXIT_OK

    return _run(main)


def _cmd_case_show(args: argparse.Namespace) -> int:
    config = _config(args)
    now = SystemClock().now()

    async def main() -> int:
        async with _store(config) as store:
            found = await store.get_case(args.case)
            if found is None:
                print(f"evb: E_CASE_UNKNOWN: no case {args.case}", file=sys.stderr)
                return EXIT_REFUSED
            record, events = found
            inbound, outbound = await store.case_messages(args.case)
            deadlines = await store.list_deadlines(case_id=args.case, pending_only=False)
        timeline: list[dict[str, Any]] = [
            {"at": e["at"], "what": "event", "type": e["type"], "by": e["by"],
             **{k: e[k] for k in ("status", "kind", "rule", "until") if k in e}}
            for e in events
        ]  # fmt: skip
        timeline += [
            {"at": _time(m.received_at), "what": "received", "type": m.type, "from": m.sender,
             "message_id": m.id, "status": m.status, "code": m.code}
            for m in inbound
        ]  # fmt: skip
        timeline += [
            {"at": _time(m.created_at), "what": "sent", "type": m.type, "to": m.recipient,
             "message_id": m.id, "delivery": m.state, "code": m.code}
            for m in outbound
        ]  # fmt: skip
        timeline.sort(key=lambda item: (_sort_time(item["at"]), item["what"] != "event"))
        if args.json:
            _print_json(
                {
                    "case": _plain(record),
                    "role": _role(record, config.participant),
                    "timeline": timeline,
                    "deadlines": _plain(deadlines),
                }
            )
            return EXIT_OK
        print(f"case        {record.case_id}")
        print(f"instrument  {record.instrument}")
        print(f"state       {record.state}")
        print(f"priority    {record.priority}")
        print(f"requester   {record.requester}")
        print(f"requested   {record.requested}   (this node: {_role(record, config.participant)})")
        print()
        print("timeline")
        for item in timeline:
            detail = " ".join(
                f"{k}={item[k]}" for k in ("status", "kind", "rule", "delivery", "code")
                if item.get(k) is not None
            )  # fmt: skip
            party = item.get("by") or item.get("from") or item.get("to") or ""
            print(f"  {_time(_sort_time(item['at']))}  {item['what']:<8} {item['type']:<28}"
                  f" {party:<10} {detail}".rstrip())  # fmt: skip
        print()
        print("deadlines")
        for d in deadlines:
            print(f"  {d.rule:<28} {d.state:<9} due {_time(d.due_at)} ({_in(d.due_at, now)})"
                  f"  owed by {d.owed_by}")  # fmt: skip
            print(f"      {d.article}")
        return EXIT_OK

    return _run(main)


def _sort_time(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def _cmd_deadlines(args: argparse.Namespace) -> int:
    config = _config(args)
    now = SystemClock().now()

    async def main() -> int:
        async with _store(config) as store:
            deadlines = await store.list_deadlines(pending_only=not args.all, limit=args.limit)
        if args.json:
            _print_json(deadlines)
            return EXIT_OK
        _table(_deadline_rows(deadlines, now), _DEADLINE_HEADER)
        return EXIT_OK

    return _run(main)


def _cmd_reply(args: argparse.Namespace) -> int:
    config = _config(args)
    clock = SystemClock()
    form = None
    if args.form is not None:
        data, _ = load_json(read_input(args.form, DEFAULT_MAX_BYTES))
        if not isinstance(data, dict):
            raise Usage("FORM.json must hold a JSON object")
        form = data
    until = None
    if args.until is not None:
        try:
            until = _sort_time(args.until if "T" in args.until else args.until + "T00:00:00Z")
        except ValueError as exc:
            raise Usage("--until must be an ISO 8601 date or date-time") from exc
        if until.tzinfo is None:
            raise Usage("--until needs a time zone (e.g. Z)")

    async def main() -> int:
        async with open_node(config, clock=clock) as node:
            try:
                row = await node.reply(
                    args.kind, args.case, form=form, ground=args.ground,
                    motivation=args.motivation, status=args.status, until=until,
                    period=args.period, article=args.article,
                )  # fmt: skip
            except InputError as exc:
                return print_refusal(exc)
            except BrokerError as exc:
                print(f"{exc.code}\t\t{exc.message}")
                return EXIT_REFUSED
        if args.json:
            _print_json({"message_id": row.id, "case": row.case_id, "type": row.type})
        else:
            print(row.id)
        return EXIT_OK

    return _run(main)


def register(commands: Commands) -> None:
    """Add the case commands to ``evb``."""
    cases = commands.add_parser("cases", help="cases, their state and next deadline")
    _with_config(cases)
    cases.add_argument("--state", help="only cases in this state")
    cases.add_argument("--instrument", help="only cases of this request type")
    cases.add_argument("--due-within", metavar="DURATION", help="a deadline due within (PT24H)")
    cases.add_argument("--limit", type=int, default=100)
    cases.set_defaults(func=_cmd_cases)

    case = commands.add_parser("case", help="one case")
    case_commands = case.add_subparsers(dest="case_command", required=True, metavar="COMMAND")
    show = case_commands.add_parser("show", help="timeline of messages, events and deadlines")
    _with_config(show)
    show.add_argument("case", metavar="CASE")
    show.set_defaults(func=_cmd_case_show)

    deadlines = commands.add_parser("deadlines", help="open deadlines, emergency first")
    _with_config(deadlines)
    deadlines.add_argument("--all", action="store_true", help="met and missed ones too")
    deadlines.add_argument("--limit", type=int, default=1000)
    deadlines.set_defaults(func=_cmd_deadlines)

    reply = commands.add_parser("reply", help="answer a case (ack, status, refuse …)")
    _with_config(reply)
    reply.add_argument("kind", choices=sorted(KINDS), metavar="KIND")
    reply.add_argument("case", metavar="CASE")
    reply.add_argument("form", nargs="?", metavar="FORM.json", help="base form ('-': stdin)")
    reply.add_argument("--ground", help="refuse: the ground code")
    reply.add_argument("--motivation", help="the reply's text (refusal motivation, note …)")
    reply.add_argument("--status", help="status: the status code")
    reply.add_argument("--until", help="a date: preserved_until, new_until, respond_by …")
    reply.add_argument("--period", help="extend: an ISO 8601 duration (P30D)")
    reply.add_argument("--article", help="refuse/extend: the provision")
    reply.set_defaults(func=_cmd_reply)
