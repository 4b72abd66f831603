"""Whole cases between nodes over the real RabbitMQ: an Art 29 preservation and an EIO.

Each side records the same case: the requester tracks what it is owed, the requested
party what it owes. Deadlines are met, missed (with an alert on the node's own alert
queue) and recomputed as the replies arrive.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from datetime import timedelta
from pathlib import Path
from typing import Any

import aio_pika
import pytest

from broker.clock import SystemClock
from broker.config import NodeConfig, load_config
from broker.errors import GroundError, StateError
from broker.localnet import LocalNetwork
from broker.node import Node, open_node
from broker.resources import read_json
from tests.support.network import local_network
from tests.support.rabbit import RabbitSession, rabbit  # noqa: F401 - fixture

pytestmark = pytest.mark.integration

PARTICIPANTS = ["AT.247", "DE.247", "AT.CA", "DE.JUD"]
# The node's own acknowledgement target, shortened so that the test sees it missed.
FAST = {
    "deadlines": {"ack_normal": "PT2S", "scheduler_interval": "PT1S"},
    "retry": {"profile": "PT2S,PT2S,PT4S,PT8S,PT16S,PT30S"},
}


def _network(server: RabbitSession, tmp_path: Path) -> AbstractAsyncContextManager[LocalNetwork]:
    settings = dict.fromkeys(PARTICIPANTS, FAST)
    return local_network(server, tmp_path / "net", PARTICIPANTS, name="c", settings=settings)


@contextlib.asynccontextmanager
async def running(config: NodeConfig) -> AsyncIterator[Node]:
    stop = asyncio.Event()
    async with open_node(config) as node:
        task = asyncio.create_task(node.run(stop))
        try:
            await asyncio.wait_for(node.ready.wait(), 30)
            yield node
        finally:
            stop.set()
            await asyncio.wait_for(task, 60)


async def _until(check: Callable[[], Awaitable[bool]], what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if await check():
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


async def _state(node: Node, case: str) -> str | None:
    found = await node.store.get_case(case)
    return None if found is None else found[0].state


async def _both_in(nodes: tuple[Node, Node], case: str, state: str) -> None:
    async def check() -> bool:
        return all([await _state(n, case) == state for n in nodes])

    await _until(check, f"case {case} in state {state} on both sides")


async def _deadlines(node: Node, case: str) -> dict[str, str]:
    return {
        d.rule: d.state for d in await node.store.list_deadlines(case_id=case, pending_only=False)
    }


async def _alerts(network: LocalNetwork, participant: str) -> list[dict[str, Any]]:
    vhost = network.participants[participant]["routing"]["vhost"]
    connection = await aio_pika.connect(network.vhost_url(vhost))
    found = []
    try:
        channel = await connection.channel()
        queue = await channel.declare_queue(f"evb.{participant}.alerts", passive=True)
        while (message := await queue.get(fail=False)) is not None:
            found.append(json.loads(message.body))
            await message.ack()
    finally:
        await connection.close()
    return found


async def test_an_art29_case_from_request_to_disclosure_with_a_missed_acknowledgement(
    rabbit: RabbitSession,  # noqa: F811 - fixture
    tmp_path: Path,
) -> None:
    async with _network(rabbit, tmp_path) as network:
        configs = {p: load_config(network.configs[p], env={}) for p in ("AT.247", "DE.247")}
        async with running(configs["AT.247"]) as at, running(configs["DE.247"]) as de:
            request = await de.submit(
                form_type="coe.art29.preservation",
                form=read_json("examples", "coe.art29.preservation.json"),
                recipient="AT.247",
            )
            case = request.case_id
            await _both_in((de, at), case, "requested")

            # Nobody at AT answers within the (shortened) acknowledgement target: both
            # schedulers escalate it; AT's alert queue says AT owes the step.
            async def missed() -> bool:
                states = [(await _deadlines(n, case)).get("bc29.acknowledge") for n in (at, de)]
                return states == ["missed", "missed"]

            await _until(missed, "the missed acknowledgement", timeout=30)
            [alert] = await _alerts(network, "AT.247")
            assert (alert["case"], alert["rule"], alert["we_owe"]) == (
                case,
                "bc29.acknowledge",
                True,
            )
            assert "Art 29" in alert["article"]
            [peer_alert] = await _alerts(network, "DE.247")
            assert peer_alert["we_owe"] is False

            # A reply that does not fit is refused before it leaves, and audited.
            with pytest.raises(StateError):
                await at.reply("status", case, status="mla_received_holding")
            with pytest.raises(GroundError):
                await at.reply("refuse", case, ground="not_a_ground", motivation="no")

            # Late, the case goes on: ack, preserved (90 days asked), MLA arrived, data.
            await at.reply("ack", case)
            await _both_in((de, at), case, "acknowledged")
            until = SystemClock().now() + timedelta(days=90)
            await at.reply("status", case, status="preserved", until=until)
            await _both_in((de, at), case, "preserved")
            for node in (at, de):
                pending = {d.rule: d for d in await node.store.list_deadlines(case_id=case)}
                assert set(pending) == {"bc29.preserve", "bc29.follow_up"}
                assert pending["bc29.preserve"].due_at - pending["bc29.preserve"].started_at == (
                    timedelta(days=90)
                )
            await at.reply("status", case, status="mla_received_holding")
            await _both_in((de, at), case, "held")
            await at.reply("respond", case, form=read_json("examples", "case.response.json"))
            await _both_in((de, at), case, "disclosed")
            assert await de.store.list_quarantine() == []
            assert await at.store.list_quarantine() == []
            audit = [e.event for _, e in await at.store.list_audit(case_id=case)]
            assert audit.count("message.refused") == 2
            assert "deadline.missed" in audit and "deadline.met" in audit


async def test_an_eio_from_issue_to_execution(
    rabbit: RabbitSession,  # noqa: F811 - fixture
    tmp_path: Path,
) -> None:
    async with _network(rabbit, tmp_path) as network:
        configs = {p: load_config(network.configs[p], env={}) for p in ("AT.CA", "DE.JUD")}
        async with running(configs["AT.CA"]) as ca, running(configs["DE.JUD"]) as jud:
            form = read_json("examples", "eu.eio.a.json")
            # Issued in Germany (DE.JUD), executed in Austria (AT.CA).
            form["issuing_state"], form["executing_state"] = "DE", "AT"
            form["issuing_authority"]["authority"]["country"] = "DE"
            if "country" in form["executing_authority"]:
                form["executing_authority"]["country"] = "AT"
            request = await jud.submit(form_type="eu.eio.a", form=form, recipient="AT.CA")
            case = request.case_id
            await _both_in((jud, ca), case, "requested")
            assert set(await _deadlines(ca, case)) == {"eio.acknowledge", "eio.recognise"}
            await ca.reply("ack", case)
            await _both_in((jud, ca), case, "acknowledged")
            await ca.reply("status", case, status="recognised")
            await _both_in((jud, ca), case, "recognised")
            after = await _deadlines(jud, case)
            assert after["eio.acknowledge"] == "met" and after["eio.recognise"] == "met"
            assert after["eio.execute"] == "pending"

            # The issuing authority's node may not send a status only the executing side
            # sends: refused before it leaves (tests/node/test_inbox.py: and on arrival).
            with pytest.raises(StateError):
                await jud.submit(
                    form_type="case.status",
                    form=read_json("examples", "case.status.json"),
                    recipient="AT.CA",
                    case=case,
                )
            await ca.reply("respond", case, form=read_json("examples", "case.response.json"))
            await _both_in((jud, ca), case, "executed")
            final = await _deadlines(ca, case)
            assert set(final.values()) == {"met"}
            assert await ca.store.list_quarantine() == []
