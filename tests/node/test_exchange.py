"""Nodes over the real RabbitMQ: two sites linked by shovels, both stores, and faults.

Each test builds a network (DE.247 in site DE, AT.247 in site AT), provisions it in
vhosts of this session's prefix, runs the nodes in-process and checks, through the
stores, that every message took effect exactly once and every receipt came back.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import aio_pika
import pytest
from structlog.testing import capture_logs

from broker.clock import SystemClock
from broker.config import NodeConfig, load_config
from broker.envelope import Priority
from broker.localnet import LocalNetwork, build_network, provision, teardown
from broker.node import Node, open_node
from broker.outbox import submit
from broker.resources import read_json
from broker.transport import ManagementClient, Outcome
from tests.node.conftest import pg_database  # noqa: F401 - fixture
from tests.support.rabbit import RabbitSession, rabbit  # noqa: F401 - fixture
from tests.support.tcpproxy import TcpProxy

pytestmark = pytest.mark.integration

FORM_TYPE = "coe.art29.preservation"
FAST_RETRY = {"retry": {"profile": "PT2S,PT2S,PT4S,PT8S,PT16S,PT30S"}}


@dataclass
class Net:
    network: LocalNetwork
    configs: dict[str, NodeConfig]


@contextlib.asynccontextmanager
async def _network(server: RabbitSession, tmp_path: Path, pg: str | None) -> AsyncIterator[Net]:
    user, password = server.amqp_user, server.amqp_password
    amqp = f"amqp://{user}:{password}@{server.amqp_host}:{server.amqp_port}/"
    network = build_network(
        tmp_path / "net",
        ["AT.247", "DE.247"],
        now=SystemClock().now(),
        vhost_prefix=server.vhost_name("n"),
        amqp_url=amqp,
        store="sqlite" if pg is None else "postgresql",
        pg_dsn=pg,
        settings={"AT.247": FAST_RETRY, "DE.247": FAST_RETRY},
    )
    async with ManagementClient(server.mgmt_url, server.mgmt_user, server.mgmt_password) as m:
        await provision(network, m)
        try:
            configs = {p: load_config(c, env={}) for p, c in network.configs.items()}
            yield Net(network, configs)
        finally:
            await teardown(network, m)


@pytest.fixture(params=["sqlite", "postgresql"])
async def net(
    request: pytest.FixtureRequest,
    rabbit: RabbitSession,  # noqa: F811 - fixture
    tmp_path: Path,
) -> AsyncIterator[Net]:
    pg = request.getfixturevalue("pg_database") if request.param == "postgresql" else None
    async with _network(rabbit, tmp_path, pg) as built:
        yield built


@pytest.fixture
async def pg_net(
    rabbit: RabbitSession,  # noqa: F811 - fixture
    pg_database: str,  # noqa: F811 - fixture
    tmp_path: Path,
) -> AsyncIterator[Net]:
    async with _network(rabbit, tmp_path, pg_database) as built:
        yield built


@contextlib.asynccontextmanager
async def running(config: NodeConfig, node_type: type[Node] = Node) -> AsyncIterator[Node]:
    stop = asyncio.Event()
    async with open_node(config) as opened:
        node = (
            opened
            if node_type is Node
            else node_type(opened.config, opened.identity, opened.store, opened.clock)
        )
        task = asyncio.create_task(node.run(stop))
        try:
            await asyncio.wait_for(node.ready.wait(), 30)
            yield node
        finally:
            stop.set()
            await asyncio.wait_for(task, 60)


def _form() -> dict[str, Any]:
    form: dict[str, Any] = read_json("examples", f"{FORM_TYPE}.json")
    return form


async def _send_many(node: Node, count: int, emergency_every: int = 0) -> list[str]:
    ids = []
    for n in range(count):
        priority: Priority = (
            "emergency" if emergency_every and n % emergency_every == 0 else "normal"
        )
        row = await submit(
            node.store,
            node.identity,
            node.clock,
            form_type=FORM_TYPE,
            form=_form(),
            recipient="AT.247",
            priority=priority,
        )
        ids.append(row.id)
    return ids


async def _until(check: Callable[[], Any], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if await check():
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


async def _all_delivered(sender: Node, ids: list[str], timeout: float = 60) -> None:
    async def done() -> bool:
        rows = [await sender.store.get_outbound(i) for i in ids]
        return all(r is not None and r.state == "delivered" for r in rows)

    await _until(done, timeout, f"{len(ids)} deliveries")


async def _effects(receiver: Node, ids: list[str]) -> dict[str, int]:
    """How many times each message took effect at the receiver (audit: message.received)."""
    counts = dict.fromkeys(ids, 0)
    for _, event in await receiver.store.list_audit(limit=100_000):
        if event.event == "message.received" and event.message_id in counts:
            counts[event.message_id] += 1
    return counts


async def test_messages_cross_sites_exactly_once_with_receipts(net: Net) -> None:
    async with running(net.configs["AT.247"]) as at, running(net.configs["DE.247"]) as de:
        ids = await _send_many(de, 30, emergency_every=5)
        await _all_delivered(de, ids)
        assert set((await _effects(at, ids)).values()) == {1}
        inbound = await at.store.list_inbound(limit=1000)
        assert sorted(m.id for m in inbound if m.type == FORM_TYPE) == sorted(ids)
        assert {m.priority for m in inbound} == {"emergency", "normal"}
        for message_id in ids:
            row = await de.store.get_outbound(message_id)
            assert row is not None
            assert row.receipt is not None
            # (attempts may be 0: a receipt can overtake the publisher's own update.)
        assert await at.store.list_quarantine() == []
        assert await de.store.list_quarantine() == []


class CrashAfterCommit(Node):
    """A worker that dies between commit and ack for its first deliveries.

    From the broker's view a worker killed after the store committed and before the
    ack went out is a delivery that comes back: here the handler commits, then
    hands the delivery back unacked (requeue) instead of acking it.
    """

    crashes = 5

    async def _on_delivery(self, item: Any) -> Outcome:
        outcome = await super()._on_delivery(item)
        if outcome is Outcome.ACK and self.crashes > 0:
            self.crashes -= 1
            return Outcome.REQUEUE
        return outcome


async def test_worker_dying_between_commit_and_ack_takes_no_second_effect(net: Net) -> None:
    async with (
        running(net.configs["AT.247"], CrashAfterCommit) as at,
        running(net.configs["DE.247"]) as de,
    ):
        ids = await _send_many(de, 10)
        await _all_delivered(de, ids)
        assert isinstance(at, CrashAfterCommit)
        assert at.crashes == 0
        assert set((await _effects(at, ids)).values()) == {1}

        async def redelivered() -> bool:
            # Each unacked delivery comes back once and is answered as a duplicate.
            events = await at.store.list_audit(limit=10_000)
            return sum(e.event == "message.duplicate" for _, e in events) == 5

        await _until(redelivered, 30, "the redeliveries")
        assert set((await _effects(at, ids)).values()) == {1}


async def test_connection_cut_mid_stream_loses_and_doubles_nothing(net: Net) -> None:
    config = net.configs["AT.247"]
    url = config.amqp.url
    host_port = url.split("@", 1)[1].split("/", 1)[0]
    host, port = host_port.rsplit(":", 1)
    async with TcpProxy(host, int(port)) as proxy:
        proxied = replace(
            config, amqp=replace(config.amqp, url=url.replace(host_port, f"127.0.0.1:{proxy.port}"))
        )
        async with running(proxied) as at, running(net.configs["DE.247"]) as de:
            ids = await _send_many(de, 60)

            async def some_arrived() -> bool:
                return len(await at.store.list_inbound(limit=1000)) >= 10

            await _until(some_arrived, 30, "the first deliveries")
            assert proxy.cut() >= 1
            more = await _send_many(de, 20)
            await _all_delivered(de, ids + more, timeout=90)
            assert set((await _effects(at, ids + more)).values()) == {1}


async def test_competing_workers_share_one_inbox(pg_net: Net) -> None:
    # Two workers of one node (one PostgreSQL store) consume the same inbox queue.
    net = pg_net
    async with (
        running(net.configs["AT.247"]) as first,
        running(net.configs["AT.247"]) as second,
        running(net.configs["DE.247"]) as de,
    ):
        ids = await _send_many(de, 80)
        await _all_delivered(de, ids, timeout=90)
        assert set((await _effects(first, ids)).values()) == {1}
        handled = [node.stats.results.get("accepted", 0) for node in (first, second)]
        assert sum(handled) == 80
        assert min(handled) > 0, handled


async def _rabbitmqctl(*args: str) -> None:
    process = await asyncio.create_subprocess_exec(
        "rabbitmqctl",
        *args,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    _, err = await asyncio.wait_for(process.communicate(), 120)
    assert process.returncode == 0, f"rabbitmqctl {' '.join(args)}: {err.decode()[-500:]}"


@pytest.fixture
def broker_control(rabbit: RabbitSession) -> None:  # noqa: F811 - fixture
    """The test restarts the RabbitMQ it talks to: it must be this machine's."""
    problem = None
    if shutil.which("rabbitmqctl") is None:
        problem = "rabbitmqctl is not on PATH"
    elif rabbit.amqp_host not in ("127.0.0.1", "localhost", "::1"):
        problem = f"RabbitMQ at {rabbit.amqp_host} is not local"
    if problem is not None:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(problem)
        pytest.skip(problem)


@pytest.mark.usefixtures("broker_control")
async def test_broker_restart_during_a_stream_of_1000_loses_and_doubles_nothing(
    rabbit: RabbitSession,  # noqa: F811 - fixture
    tmp_path: Path,
) -> None:
    # RabbitMQ's application stops (every connection, shovel and consumer goes) and
    # starts again while 1 000 messages stream from DE to AT: both nodes reconnect,
    # the publisher re-sends what was not confirmed or receipted, the dedup keeps one
    # effect, and every receipt comes home.
    with capture_logs() as logs:
        await _stream_through_a_broker_restart(rabbit, tmp_path)
    # Both nodes really lost the broker and came back.
    assert sum(e["event"] == "consumers_lost" for e in logs) >= 2
    assert sum(e["event"] == "amqp_reconnected" for e in logs) >= 2


async def _stream_through_a_broker_restart(
    rabbit: RabbitSession,  # noqa: F811 - fixture
    tmp_path: Path,
) -> None:
    async with (
        _network(rabbit, tmp_path, None) as net,
        running(net.configs["AT.247"]) as at,
        running(net.configs["DE.247"]) as de,
    ):
        total = 1000
        ids = await _send_many(de, 250, emergency_every=50)

        async def some_arrived() -> bool:
            return len(await at.store.list_inbound(limit=total)) >= 50

        await _until(some_arrived, 60, "the first deliveries")
        await _rabbitmqctl("stop_app")
        try:
            # Submitting goes on while the broker is away: the outbox holds it.
            ids += await _send_many(de, 250)
            await asyncio.sleep(2)
        finally:
            await _rabbitmqctl("start_app")
            await _rabbitmqctl("await_startup")
        ids += await _send_many(de, total - len(ids), emergency_every=50)
        assert len(ids) == total
        await _all_delivered(de, ids, timeout=240)
        assert set((await _effects(at, ids)).values()) == {1}
        inbound = [m for m in await at.store.list_inbound(limit=10 * total) if m.type == FORM_TYPE]
        assert sorted(m.id for m in inbound) == sorted(ids)
        assert await at.store.list_quarantine() == []
        assert await de.store.list_quarantine() == []


async def _publish_raw(net: Net, bodies: list[bytes]) -> None:
    """Publish bodies straight into AT.247's inbox queue, as a hostile peer's link could."""
    vhost = net.network.participants["AT.247"]["routing"]["vhost"]
    connection = await aio_pika.connect(net.network.vhost_url(vhost))
    try:
        channel = await connection.channel(publisher_confirms=True, on_return_raises=True)
        for body in bodies:
            await channel.default_exchange.publish(
                aio_pika.Message(body, delivery_mode=aio_pika.DeliveryMode.PERSISTENT),
                routing_key="evb.AT.247.inbox",
                mandatory=True,
            )
    finally:
        await connection.close()


async def test_bad_input_over_the_wire_is_quarantined_and_the_node_lives_on(net: Net) -> None:
    # DE's node does not run: its outbox only seals envelopes for the test to send.
    async with open_node(net.configs["DE.247"]) as de:
        [valid, later] = [json.loads(raw) for raw in await _sealed(de, 2)]
    limit = net.configs["AT.247"].limits.max_envelope_bytes
    value = later["sig"]["value"]
    flipped = value[:10] + ("A" if value[10] != "A" else "B") + value[11:]
    tampered = dict(later, sig=dict(later["sig"], value=flipped))
    # A known id with other header bytes: the signature no longer covers them.
    altered = dict(valid, sent_at=later["sent_at"])
    valid_bytes = json.dumps(valid).encode()
    bad = {
        "garbage": (b"\x00\xff not json at all", "E_PARSE"),
        "oversized": (b'{"x":"' + b"a" * limit + b'"}', "E_TOO_LARGE"),
        "tampered": (json.dumps(tampered).encode(), "E_SIG_INVALID"),
        "altered": (json.dumps(altered).encode(), "E_SIG_INVALID"),
        "not an envelope": (b'{"evb": 1}', "E_SCHEMA"),
    }
    async with running(net.configs["AT.247"]) as at:
        await _publish_raw(net, [valid_bytes, *(body for body, _ in bad.values()), valid_bytes])

        async def all_handled() -> bool:
            done = sum(at.stats.results.values())
            return done >= 2 + len(bad)

        await _until(all_handled, 60, "every delivery handled")
        assert at.stats.results == {"accepted": 1, "duplicate": 1, "quarantined": len(bad)}
        quarantined = await at.store.list_quarantine()
        assert sorted(q.code for q in quarantined) == sorted(code for _, code in bad.values())
        assert all(not q.authenticated and q.state == "held" for q in quarantined)
        # Nothing was lost: each entry keeps the raw bytes for the operator.
        for entry in quarantined:
            full = await at.store.get_quarantine(entry.id)
            assert full is not None and full.raw is not None and len(full.raw) == full.size
        # The node still works: the valid message took effect exactly once.
        assert (await _effects(at, [valid["id"]])) == {valid["id"]: 1}
        assert await at.store.get_inbound(later["id"]) is None


async def _sealed(node: Node, count: int) -> list[bytes]:
    rows = []
    for _ in range(count):
        row = await submit(
            node.store,
            node.identity,
            node.clock,
            form_type=FORM_TYPE,
            form=_form(),
            recipient="AT.247",
        )
        rows.append(row.envelope)
    return rows
