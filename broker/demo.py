"""``make demo``: a real exchange between two countries' nodes over RabbitMQ.

1. reaches RabbitMQ at ``EVB_AMQP_URL`` (default local); a local server that is not
   running is started (``rabbitmq-server -detached``) and the shovel plugins enabled;
   without RabbitMQ installed it prints how to install it and exits 2;
2. generates demo keys and a signed trust directory into ``.evb-demo/`` (git-ignored);
3. makes two sites (vhosts ``evb-demo-at`` and ``evb-demo-de``), one node user each,
   and links them both ways with RabbitMQ dynamic shovels;
4. starts the nodes of AT.247 and DE.247 (embedded SQLite stores);
5. DE.247 sends an Art 29 preservation request to AT.247, which answers in the same
   case with an acknowledgement; each node returns a signed receipt;
6. shows a receipt and the case on both sides, then removes what it created.

The last line is one JSON object, ``{"sent", "delivered", "rejected", "lost", …}``;
the exit status is non-zero unless every message was delivered.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import shutil
import subprocess
import sys
import time
import urllib.parse
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import structlog

from broker import ids
from broker.clock import SystemClock, wire_time
from broker.config import DEFAULT_AMQP_URL, load_config
from broker.envelope import Envelope
from broker.errors import BrokerError
from broker.localnet import LocalNetwork, build_network, provision, teardown
from broker.node import Node, open_node
from broker.outbox import submit
from broker.resources import read_json
from broker.store.base import Store
from broker.transport import ManagementClient

__all__ = ["main"]

PLUGINS = ("rabbitmq_shovel", "rabbitmq_shovel_management", "rabbitmq_federation")
PARTICIPANTS = ("AT.247", "DE.247")
_TIMEOUT_SECONDS = 45.0


def _say(text: str = "") -> None:
    print(text, flush=True)


def _run(*command: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # noqa: S603 - fixed RabbitMQ administration commands
        command, capture_output=True, text=True, check=False, timeout=120
    )


def _management_client(amqp_url: str) -> ManagementClient:
    # The management API of the same server, as the same administrator, unless
    # EVB_RABBIT_MGMT_URL names another.
    parts = urllib.parse.urlsplit(amqp_url)
    user = urllib.parse.unquote(parts.username or "guest")
    password = urllib.parse.unquote(parts.password or "guest")
    url = os.environ.get("EVB_RABBIT_MGMT_URL") or f"http://{parts.hostname or '127.0.0.1'}:15672/"
    return ManagementClient(url, user, password)


def _is_local(amqp_url: str) -> bool:
    return (urllib.parse.urlsplit(amqp_url).hostname or "") in ("127.0.0.1", "localhost", "::1")


async def _reachable(management: ManagementClient) -> bool:
    try:
        await management.overview()
    except BrokerError:
        return False
    return True


async def ensure_rabbitmq(amqp_url: str, management: ManagementClient) -> None:
    """Start a local RabbitMQ and enable the link plugins when needed.

    Raises:
        SystemExit: RabbitMQ is not installed (with the commands that install it),
            or cannot be reached.
    """
    if await _reachable(management):
        return
    if not _is_local(amqp_url):
        raise SystemExit(f"evb demo: cannot reach RabbitMQ's management API at {amqp_url}")
    if shutil.which("rabbitmq-server") is None:
        _say("RabbitMQ is not installed. Install and start it, then run `make demo` again:")
        _say("    sudo apt-get install -y rabbitmq-server")
        _say("    sudo rabbitmq-server -detached && sudo rabbitmqctl await_startup")
        _say("    sudo rabbitmq-plugins enable " + " ".join(PLUGINS))
        raise SystemExit(2)
    if _run("rabbitmqctl", "status").returncode != 0:
        _say("$ rabbitmq-server -detached")
        _run("rabbitmq-server", "-detached")
        _run("rabbitmqctl", "await_startup")
    _say("$ rabbitmq-plugins enable " + " ".join(PLUGINS))
    _run("rabbitmq-plugins", "enable", *PLUGINS)
    for _ in range(60):
        if await _reachable(management):
            return
        await asyncio.sleep(0.5)
    raise SystemExit("evb demo: RabbitMQ did not come up with its management API")


def _preservation_request() -> dict[str, Any]:
    form: dict[str, Any] = read_json("examples", "coe.art29.preservation.json")
    return form


def _ack() -> dict[str, Any]:
    form: dict[str, Any] = read_json("examples", "case.ack.json")
    form["received_at"] = wire_time(SystemClock().now())
    return form


async def _wait_delivered(store: Store, message_id: str) -> str:
    deadline = time.monotonic() + _TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        row = await store.get_outbound(message_id)
        if row is not None and row.state in ("delivered", "rejected", "failed"):
            return row.state
        await asyncio.sleep(0.05)
    return "lost"


async def _show_case(node: Node, case_id: str) -> None:
    inbound, outbound = await node.store.case_messages(case_id)
    rows: list[tuple[datetime, str, str, str, str, str | None]] = [
        (m.received_at, "in ", m.sender, m.type, m.status, m.code) for m in inbound
    ]
    rows += [(m.created_at, "out", m.recipient, m.type, m.state, m.code) for m in outbound]
    found = await node.store.get_case(case_id)
    state = found[0].state if found is not None else "?"
    _say(f"  case {case_id} at {node.participant}: {state}")
    for at, way, peer, kind, status, code in sorted(rows):
        arrow = "<-" if way == "in " else "->"
        tail = f"{status} {code}" if code else status
        _say(f"    {wire_time(at)}  {arrow} {peer:<8} {kind:<24} {tail}")
    for d in await node.store.list_deadlines(case_id=case_id, pending_only=False):
        _say(f"    deadline {d.rule:<18} {d.state:<8} due {wire_time(d.due_at)}  {d.article}")


async def _show_receipt(node: Node, message_id: str) -> None:
    row = await node.store.get_outbound(message_id)
    if row is None or row.receipt is None:
        return
    receipt = Envelope.model_validate_json(row.receipt)
    form = await node.store.read_form("in", receipt.id)
    content = json.loads(form) if form is not None else {}
    _say(
        f"  signed receipt {receipt.id} from {receipt.from_} ({receipt.sig.alg}, {receipt.sig.kid})"
    )
    for key in ("message_id", "outcome", "received_at", "envelope_digest"):
        _say(f"    {key:<16}{content.get(key)}")


async def exchange(state: Path, amqp_url: str) -> dict[str, Any]:
    """Run the demo exchange; return its summary."""
    started = time.monotonic()
    clock = SystemClock()
    management = _management_client(amqp_url)
    async with management:
        await ensure_rabbitmq(amqp_url, management)
        _say("== 1. Keys and a signed trust directory for AT.247 and DE.247 (generated now)")
        network = build_network(
            state, PARTICIPANTS, now=clock.now(), vhost_prefix="evb-demo", amqp_url=amqp_url
        )
        _say(f"  {network.directory}")
        _say("== 2. Two sites (one vhost each), one AMQP user per node, shovels both ways")
        for site, vhost in sorted(network.sites.items()):
            _say(f"$ evb site setup {site}        # vhost {vhost}")
        _say("$ evb link create AT DE; evb link create DE AT   # dynamic shovels")
        try:
            await provision(network, management)
            return await _exchange(network, started)
        finally:
            _say("== 5. Clean up: links, sites and users removed")
            await teardown(network, management)


async def _exchange(network: LocalNetwork, started: float) -> dict[str, Any]:
    at_config = load_config(network.configs["AT.247"], env={})
    de_config = load_config(network.configs["DE.247"], env={})
    stop = asyncio.Event()
    async with (
        open_node(at_config) as at_node,
        open_node(de_config) as de_node,
        asyncio.TaskGroup() as tasks,
    ):
        tasks.create_task(at_node.run(stop))
        tasks.create_task(de_node.run(stop))
        await asyncio.wait_for(
            asyncio.gather(at_node.ready.wait(), de_node.ready.wait()), _TIMEOUT_SECONDS
        )
        _say("== 3. The nodes of AT.247 and DE.247 run; DE asks AT to preserve data")
        try:
            summary = await _conversation(at_node, de_node)
        finally:
            stop.set()
    summary["seconds"] = round(time.monotonic() - started, 1)
    return summary


async def _conversation(at_node: Node, de_node: Node) -> dict[str, Any]:
    clock = SystemClock()
    request = await submit(
        de_node.store,
        de_node.identity,
        clock,
        form_type="coe.art29.preservation",
        form=_preservation_request(),
        recipient="AT.247",
    )
    _say(f"$ evb send --type coe.art29.preservation --to AT.247 request.json   # {request.id}")
    states = [await _wait_delivered(de_node.store, request.id)]
    _say(f"  request {request.id}: {states[0]}")
    ack = await submit(
        at_node.store,
        at_node.identity,
        clock,
        form_type="case.ack",
        form=_ack(),
        recipient="DE.247",
        case=request.case_id,
        in_reply_to=request.id,
    )
    _say(f"$ evb send --type case.ack --to DE.247 --case {request.case_id} ack.json   # {ack.id}")
    states.append(await _wait_delivered(at_node.store, ack.id))
    _say(f"  acknowledgement {ack.id}: {states[1]}")
    _say("== 4. What each side holds")
    await _show_receipt(de_node, request.id)
    await _show_case(de_node, request.case_id)
    await _show_case(at_node, request.case_id)
    quarantined = len(await at_node.store.list_quarantine())
    quarantined += len(await de_node.store.list_quarantine())
    return {
        "demo": "exchange",
        "sent": len(states),
        "delivered": states.count("delivered"),
        "rejected": states.count("rejected"),
        "failed": states.count("failed"),
        "lost": states.count("lost"),
        "quarantined": quarantined,
        "case": request.case_id,
    }


def main(argv: Sequence[str] | None = None) -> int:
    """Run the demo; return 0 when every message was delivered."""
    del argv
    # The demo tells its own story on stdout; the library's logs show warnings only.
    structlog.configure(
        wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
    )
    amqp_url = os.environ.get("EVB_AMQP_URL", DEFAULT_AMQP_URL)
    state = (Path(os.environ.get("EVB_DEMO_STATE", ".evb-demo")) / ids.uuid7()).resolve()
    try:
        summary = asyncio.run(exchange(state, amqp_url))
    except BrokerError as exc:
        _say(f"evb demo: {exc.code}: {exc.message}")
        return 1
    finally:
        shutil.rmtree(state, ignore_errors=True)
        parent = state.parent
        if parent.is_dir() and not any(parent.iterdir()):
            parent.rmdir()
    _say(json.dumps(summary))
    ok = summary["delivered"] == summary["sent"] and summary["lost"] == 0
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
