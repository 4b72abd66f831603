"""Commands that act on a node: run it, send through it, look into its store.

``evb node run``, ``evb send``, ``evb status``, ``evb inbox``, ``evb outbox``
(``evb outbox retry MSGID``) and ``evb quarantine list|show|release|purge``. Each takes
``--config FILE`` (or ``EVB_CONFIG``) and works through the node's store, so they
work while the node runs in another process: the node picks new outbox rows up at
once. ``--json`` prints machine-readable output; text output never shows payloads.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import signal
import sys
import uuid
from collections.abc import AsyncIterator, Callable, Coroutine
from contextlib import asynccontextmanager
from dataclasses import asdict, is_dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import structlog

from broker.cli.common import (
    EXIT_OK,
    EXIT_REFUSED,
    Commands,
    Usage,
    print_refusal,
    read_input,
)
from broker.clock import SystemClock, wire_time
from broker.config import NodeConfig, load_config
from broker.errors import BrokerError, CaseError, InputError
from broker.identity import load_identity
from broker.node import open_node, run_until_signalled
from broker.outbox import submit
from broker.schema import DEFAULT_MAX_BYTES, load_json
from broker.store import open_store
from broker.store.atrest import load_storage_key
from broker.store.base import AuditEvent, OutboundMessage, Store

__all__ = ["register"]


def _config(args: argparse.Namespace) -> NodeConfig:
    name = args.config or os.environ.get("EVB_CONFIG")
    return load_config(Path(name) if name else None)


@asynccontextmanager
async def _store(config: NodeConfig) -> AsyncIterator[Store]:
    async with open_store(
        config.store, load_storage_key(config.storage_key_file), SystemClock()
    ) as store:
        yield store


def _run(coro: Callable[[], Coroutine[Any, Any, int]]) -> int:
    return asyncio.run(coro())


def _plain(value: Any) -> Any:
    if isinstance(value, datetime):
        return wire_time(value)
    if isinstance(value, bytes):
        return len(value)
    if is_dataclass(value) and not isinstance(value, type):
        return {k: _plain(v) for k, v in asdict(value).items()}
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def _print_json(value: Any) -> None:
    print(json.dumps(_plain(value), ensure_ascii=False, indent=2, sort_keys=True))


def _time(value: datetime | None) -> str:
    return "-" if value is None else wire_time(value)


def _tries(row: OutboundMessage) -> list[str]:
    return [str(row.attempts), row.code or ""]


def _table(rows: list[list[str]], header: list[str]) -> None:
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:
        print("  ".join(str(cell).ljust(width) for cell, width in zip(row, widths, strict=True)))


# -- node run -------------------------------------------------------------------------------


def _configure_logging(json_logs: bool) -> None:
    renderer: Any = (
        structlog.processors.JSONRenderer()
        if json_logs
        else structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())
    )
    structlog.configure(
        wrapper_class=structlog.make_filtering_bound_logger(logging.INFO),
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            renderer,
        ],
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
    )


def _cmd_node_run(args: argparse.Namespace) -> int:
    config = _config(args)
    _configure_logging(args.log_json or not sys.stderr.isatty())

    async def main() -> int:
        async with open_node(config) as node:
            await run_until_signalled(node, (signal.SIGTERM, signal.SIGINT))
        return EXIT_OK

    return _run(main)


# -- send, status, inbox, outbox ---------------------------------------------------------


def _cmd_send(args: argparse.Namespace) -> int:
    config = _config(args)
    raw = read_input(args.form, DEFAULT_MAX_BYTES)
    clock = SystemClock()
    identity = load_identity(config, clock)
    form, _ = load_json(raw)
    if args.case is not None:
        try:
            uuid.UUID(args.case)
        except ValueError as exc:
            raise Usage("--case must be a UUID") from exc

    async def main() -> int:
        async with _store(config) as store:
            try:
                row = await submit(
                    store,
                    identity,
                    clock,
                    form_type=args.type,
                    form=form,
                    recipient=args.to,
                    case=args.case,
                    priority=args.priority,
                    ack_targets=config.deadlines.ack_targets(),
                )
            except InputError as exc:
                return print_refusal(exc)
            except CaseError as exc:
                print(f"{exc.code}\t\t{exc.message}")
                return EXIT_REFUSED
        if args.json:
            _print_json({"message_id": row.id, "case": row.case_id, "state": row.state})
        else:
            print(row.id)
        return EXIT_OK

    return _run(main)


def _cmd_status(args: argparse.Namespace) -> int:
    config = _config(args)

    async def main() -> int:
        async with _store(config) as store:
            out = await store.get_outbound(args.message_id)
            inbound = await store.get_inbound(args.message_id)
            events = await store.list_audit(message_id=args.message_id)
        if out is None and inbound is None:
            print(f"evb: E_NOT_FOUND: no message {args.message_id} here", file=sys.stderr)
            return EXIT_REFUSED
        if args.json:
            _print_json(
                {
                    "outbound": out,
                    "inbound": inbound,
                    "events": [{"seq": seq, **_plain(event)} for seq, event in events],
                }
            )
            return EXIT_OK
        if out is not None:
            print(f"message   {out.id}  ({out.type} to {out.recipient}, {out.priority})")
            print(f"case      {out.case_id}")
            print(f"state     {out.state}" + (f"  {out.code}" if out.code else ""))
            print(f"attempts  {out.attempts}   next {_time(out.next_attempt_at)}")
        if inbound is not None:
            print(f"message   {inbound.id}  ({inbound.type} from {inbound.sender})")
            print(f"case      {inbound.case_id}")
            print(f"status    {inbound.status}" + (f"  {inbound.code}" if inbound.code else ""))
        for seq, event in events:
            print(f"  #{seq:<6} {_time(event.at)}  {event.event}  {event.code or ''}".rstrip())
        return EXIT_OK

    return _run(main)


def _cmd_inbox(args: argparse.Namespace) -> int:
    config = _config(args)

    async def main() -> int:
        async with _store(config) as store:
            rows = await store.list_inbound(status=args.status, limit=args.limit)
        if args.json:
            _print_json(rows)
            return EXIT_OK
        _table(
            [[r.id, _time(r.received_at), r.sender, r.type, r.status, r.code or ""] for r in rows],
            ["MESSAGE", "RECEIVED", "FROM", "TYPE", "STATUS", "CODE"],
        )
        return EXIT_OK

    return _run(main)


def _cmd_outbox(args: argparse.Namespace) -> int:
    config = _config(args)

    async def main() -> int:
        async with _store(config) as store:
            rows = await store.list_outbound(state=args.state, limit=args.limit)
        if args.json:
            _print_json(rows)
            return EXIT_OK
        _table(
            [[r.id, _time(r.created_at), r.recipient, r.type, r.state, *_tries(r)] for r in rows],
            ["MESSAGE", "CREATED", "TO", "TYPE", "STATE", "TRIES", "CODE"],
        )
        return EXIT_OK

    return _run(main)


def _cmd_outbox_retry(args: argparse.Namespace) -> int:
    config = _config(args)

    async def main() -> int:
        async with _store(config) as store:
            row = await store.get_outbound(args.message_id)
            if row is None:
                print(f"evb: E_NOT_FOUND: no outbox message {args.message_id}", file=sys.stderr)
                return EXIT_REFUSED
            if row.state != "failed":
                print(
                    f"evb: E_STATE: {args.message_id} is {row.state}, only failed messages"
                    " are retried",
                    file=sys.stderr,
                )
                return EXIT_REFUSED
            now = SystemClock().now()
            event = AuditEvent(
                event="delivery.retried",
                at=now,
                message_id=row.id,
                case_id=row.case_id,
                peer=row.recipient,
                details={"by": "operator"},
            )
            await store.requeue(row.id, now, [event])
        print(f"{args.message_id} queued again")
        return EXIT_OK

    return _run(main)


# -- quarantine -------------------------------------------------------------------------------


def _cmd_quarantine_list(args: argparse.Namespace) -> int:
    config = _config(args)

    async def main() -> int:
        async with _store(config) as store:
            rows = await store.list_quarantine(state=args.state, limit=args.limit)
        if args.json:
            _print_json(rows)
            return EXIT_OK
        _table(
            [
                [r.id, _time(r.received_at), r.code, r.state, r.peer or "?", str(r.size)]
                for r in rows
            ],
            ["ENTRY", "RECEIVED", "CODE", "STATE", "PEER", "BYTES"],
        )
        return EXIT_OK

    return _run(main)


def _cmd_quarantine_show(args: argparse.Namespace) -> int:
    config = _config(args)

    async def main() -> int:
        async with _store(config) as store:
            entry = await store.get_quarantine(args.entry)
        if entry is None:
            print(f"evb: E_NOT_FOUND: no quarantine entry {args.entry}", file=sys.stderr)
            return EXIT_REFUSED
        if args.raw is not None:
            if entry.raw is None:
                print("evb: E_PURGED: the raw bytes were purged", file=sys.stderr)
                return EXIT_REFUSED
            if args.raw == "-":
                sys.stdout.buffer.write(entry.raw)
            else:
                Path(args.raw).write_bytes(entry.raw)
            return EXIT_OK
        data = _plain(entry)
        data["raw"] = None if entry.raw is None else f"{len(entry.raw)} bytes (--raw FILE)"
        if args.json:
            _print_json(data)
        else:
            for key in sorted(data):
                print(f"{key:<14}{data[key]}")
        return EXIT_OK

    return _run(main)


def _quarantine_action(state: str) -> Callable[[argparse.Namespace], int]:
    def command(args: argparse.Namespace) -> int:
        config = _config(args)

        async def main() -> int:
            async with _store(config) as store:
                entry = await store.get_quarantine(args.entry)
                if entry is None:
                    print(f"evb: E_NOT_FOUND: no quarantine entry {args.entry}", file=sys.stderr)
                    return EXIT_REFUSED
                event = AuditEvent(
                    event=f"quarantine.{state}",
                    at=SystemClock().now(),
                    message_id=entry.message_id,
                    peer=entry.peer,
                    code=entry.code,
                    details={"quarantine_id": entry.id, "by": "operator"},
                )
                try:
                    await store.set_quarantine_state(
                        entry.id,
                        "released" if state == "released" else "purged",
                        [event],
                    )
                except BrokerError as exc:
                    print(f"evb: {exc.code}: {exc.message}", file=sys.stderr)
                    return EXIT_REFUSED
            print(f"{args.entry} {state}")
            return EXIT_OK

        return _run(main)

    return command


# -- registration -----------------------------------------------------------------------------


def _with_config(parser: argparse.ArgumentParser, json_flag: bool = True) -> None:
    parser.add_argument("--config", help="the node's configuration (default: $EVB_CONFIG)")
    if json_flag:
        parser.add_argument("--json", action="store_true", help="machine-readable output")


def register(commands: Commands) -> None:
    """Add the node commands to ``evb``."""
    node = commands.add_parser("node", help="run a node")
    node_commands = node.add_subparsers(dest="node_command", required=True, metavar="COMMAND")
    run = node_commands.add_parser("run", help="run the node until SIGTERM or SIGINT")
    _with_config(run, json_flag=False)
    run.add_argument("--log-json", action="store_true", help="JSON logs even on a terminal")
    run.set_defaults(func=_cmd_node_run)

    send = commands.add_parser("send", help="seal a form and queue it for a participant")
    _with_config(send)
    send.add_argument("--type", required=True, help="the catalogue type of the form")
    send.add_argument("--to", required=True, help="the recipient's participant id")
    send.add_argument("form", help="the form (JSON file, - for stdin)")
    send.add_argument("--case", help="the case id (a new case if omitted)")
    send.add_argument("--priority", choices=("emergency", "normal"), default="normal")
    send.set_defaults(func=_cmd_send)

    status = commands.add_parser("status", help="a message's state and audit trail")
    _with_config(status)
    status.add_argument("message_id")
    status.set_defaults(func=_cmd_status)

    inbox = commands.add_parser("inbox", help="messages received")
    _with_config(inbox)
    inbox.add_argument("--status", choices=("accepted", "rejected"))
    inbox.add_argument("--limit", type=int, default=100)
    inbox.set_defaults(func=_cmd_inbox)

    outbox = commands.add_parser("outbox", help="messages sent and their delivery state")
    _with_config(outbox)
    outbox.add_argument("--state", choices=("queued", "sent", "delivered", "rejected", "failed"))
    outbox.add_argument("--limit", type=int, default=100)
    outbox.set_defaults(func=_cmd_outbox)
    outbox_commands = outbox.add_subparsers(dest="outbox_command", metavar="COMMAND")
    retry = outbox_commands.add_parser("retry", help="resume a failed message")
    _with_config(retry, json_flag=False)
    retry.add_argument("message_id")
    retry.set_defaults(func=_cmd_outbox_retry)

    quarantine = commands.add_parser("quarantine", help="refused deliveries")
    q_commands = quarantine.add_subparsers(dest="q_command", required=True, metavar="COMMAND")
    q_list = q_commands.add_parser("list", help="list entries")
    _with_config(q_list)
    q_list.add_argument("--state", choices=("held", "released", "reprocessed", "purged"))
    q_list.add_argument("--limit", type=int, default=100)
    q_list.set_defaults(func=_cmd_quarantine_list)
    q_show = q_commands.add_parser("show", help="show one entry")
    _with_config(q_show)
    q_show.add_argument("entry")
    q_show.add_argument("--raw", metavar="FILE", help="write the raw bytes to FILE (- stdout)")
    q_show.set_defaults(func=_cmd_quarantine_show)
    for name, state, text in (
        ("release", "released", "process the entry again (e.g. after a directory update)"),
        ("purge", "purged", "erase the entry's raw bytes (the record stays)"),
    ):
        action = q_commands.add_parser(name, help=text)
        _with_config(action, json_flag=False)
        action.add_argument("entry")
        action.set_defaults(func=_quarantine_action(state))
