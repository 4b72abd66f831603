"""``evb cases``, ``evb case show|shred``, ``evb deadlines``, ``evb reply``, ``evb retention``.

Thin: each command reads the node's store (``--config``), or builds a reply with
:mod:`broker.replies` and queues it with :func:`broker.outbox.submit`, or shreds
cases with :mod:`broker.retention`, and prints. Nothing here prints a form.
"""

from __future__ import annotations

import argparse
import sys
from datetime import datetime
from typing import Any

from broker import retention
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
from broker.delivery import format_duration, parse_duration
from broker.errors import BrokerError, CaseError, InputError
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


def _describe(target: retention.ShredTarget) -> str:
    if target.instrument is None:
        return "no lifecycle"
    return f"{target.instrument}, {target.state}"


def _cmd_case_shred(args: argparse.Namespace) -> int:
    config = _config(args)
    clock = SystemClock()

    async def main() -> int:
        async with _store(config) as store:
            try:
                if not args.yes:
                    # A dry run: the same checks, nothing erased.
                    target = await retention.shred_target(store, args.case)
                    retention.check_shred(target, force=args.force)
                    return _would_shred(target, args)
                result = await retention.shred_case(
                    store, args.case, at=clock.now(), reason=args.reason, force=args.force
                )
            except CaseError as exc:
                return print_refusal(exc)
        target = result.target
        if args.json:
            _print_json(
                {"case": target.case_id, "instrument": target.instrument,
                 "state": target.state, "reason": result.reason, "forced": result.forced,
                 "shredded": not result.already, "already_shredded": result.already}
            )  # fmt: skip
        elif result.already:
            print(f"case {target.case_id} was shredded already: nothing erased, nothing recorded")
        else:
            forced = ", forced" if result.forced else ""
            print(
                f"case {target.case_id} shredded ({_describe(target)}; reason {result.reason}"
                f"{forced}): its forms can no longer be read"
            )
        return EXIT_OK

    return _run(main)


def _would_shred(target: retention.ShredTarget, args: argparse.Namespace) -> int:
    if target.shredded:
        print(f"case {target.case_id} was shredded already: nothing to do")
        return EXIT_OK
    forced = args.force and not target.terminal
    if args.json:
        _print_json(
            {"case": target.case_id, "instrument": target.instrument, "state": target.state,
             "reason": args.reason, "forced": forced, "would_shred": True}
        )  # fmt: skip
    else:
        print(
            f"would shred case {target.case_id} ({_describe(target)}; reason {args.reason}"
            f"{', forced' if forced else ''})"
        )
    raise Usage("nothing was shredded: add --yes to shred the case")


def _cmd_retention_sweep(args: argparse.Namespace) -> int:
    config = _config(args)
    period = config.retention.closed_case_period
    if period is None:
        raise Usage(
            "[retention] closed_case_period is not set (nor EVB_RETENTION_CLOSED_CASE_PERIOD):"
            " no case is ever due for shredding"
        )
    now = SystemClock().now()
    text = format_duration(period)

    async def main() -> int:
        async with _store(config) as store:
            if args.dry_run:
                due = await retention.expired_cases(store, now, period)
            else:
                count = await retention.shred_expired(store, now, period, args.limit)
        if args.dry_run:
            if args.json:
                _print_json({"period": text, "due": due})
                return EXIT_OK
            for case_id in due:
                print(case_id)
            print(f"{len(due)} case(s) closed more than {text} ago would be shredded"
                  f" (at most {args.limit} a sweep)")  # fmt: skip
            return EXIT_OK
        if args.json:
            _print_json({"period": text, "shredded": count})
        else:
            print(f"shredded {count} case(s) closed more than {text} ago")
        return EXIT_OK

    return _run(main)


def _positive(text: str) -> int:
    try:
        value = int(text, 10)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError("must be a positive integer")
    return value


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
    shred = case_commands.add_parser(
        "shred", help="erase a closed case's payload key and forms (crypto-shredding)"
    )
    _with_config(shred)
    shred.add_argument("case", metavar="CASE")
    shred.add_argument(
        "--reason",
        choices=retention.REASONS,
        default="retention",
        help="why: its retention period is over (default), an order, a request",
    )
    shred.add_argument(
        "--force", action="store_true", help="shred even though the case's lifecycle is not over"
    )
    shred.add_argument(
        "--yes", action="store_true", help="shred (without it: say what would be shredded, exit 2)"
    )
    shred.set_defaults(func=_cmd_case_shred)

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

    retain = commands.add_parser("retention", help="erase cases past their retention period")
    retain_commands = retain.add_subparsers(
        dest="retention_command", required=True, metavar="COMMAND"
    )
    sweep = retain_commands.add_parser(
        "sweep", help="shred the cases closed more than [retention] closed_case_period ago"
    )
    _with_config(sweep)
    sweep.add_argument("--dry-run", action="store_true", help="list them, shred nothing")
    sweep.add_argument("--limit", type=_positive, default=1000, help="cases shredded at most")
    sweep.set_defaults(func=_cmd_retention_sweep)
