"""Emergency first inside a node: routine inbox work parks while emergency work is pending."""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta
from pathlib import Path

from broker.clock import FixedClock
from broker.config import load_config
from broker.identity import load_identity
from broker.localnet import build_network
from broker.node import Node
from broker.outbox import submit
from broker.resources import read_json
from broker.store import open_store
from broker.store.atrest import load_storage_key
from broker.store.base import URGENT
from tests.node.conftest import T0

FORM_TYPE = "coe.art29.preservation"


async def test_routine_inbox_work_parks_while_emergency_work_is_pending(tmp_path: Path) -> None:
    clock = FixedClock(T0)
    network = build_network(tmp_path / "net", ["AT.247", "DE.247"], now=T0 - timedelta(days=1))
    configs = {p: load_config(c, env={}) for p, c in network.configs.items()}
    stores = {
        p: open_store(f"sqlite://{tmp_path}/{p}.db", load_storage_key(c.storage_key_file), clock)
        for p, c in configs.items()
    }
    async with stores["DE.247"] as de_store, stores["AT.247"] as at_store:
        de = load_identity(configs["DE.247"], clock)
        at = Node(configs["AT.247"], load_identity(configs["AT.247"], clock), at_store, clock)
        form = read_json("examples", f"{FORM_TYPE}.json")
        routine, urgent = [
            (
                await submit(
                    de_store, de, clock, form_type=FORM_TYPE, form=form,
                    recipient="AT.247", priority=priority,
                )
            ).envelope
            for priority in ("normal", "emergency")
        ]  # fmt: skip

        async def handle(raw: bytes, emergency: bool) -> str:
            URGENT.set(emergency)  # as the node's emergency lane does (task-local)
            return (await at.inbox.handle(raw)).status

        at.lanes.emergency_arrived()  # an emergency delivery is pending
        parked = asyncio.create_task(handle(routine, emergency=False))
        await asyncio.sleep(0.05)
        assert not parked.done()
        assert await asyncio.wait_for(handle(urgent, emergency=True), 5) == "accepted"
        assert not parked.done()
        at.lanes.emergency_done()
        assert await asyncio.wait_for(parked, 5) == "accepted"
        received = [
            e.message_id for _, e in await at_store.list_audit() if e.event == "message.received"
        ]
        assert received == [json.loads(urgent)["id"], json.loads(routine)["id"]]
