"""The TCP proxy the fault tests use: forwards, cuts every connection, refuses while paused."""

from __future__ import annotations

import asyncio

import pytest

from tests.support.tcpproxy import TcpProxy


async def _echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(1024):
            writer.write(data)
            await writer.drain()
    except ConnectionError:
        pass
    finally:
        writer.close()


async def _roundtrip(
    port: int, data: bytes
) -> tuple[bytes, asyncio.StreamReader, asyncio.StreamWriter]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(data)
    await writer.drain()
    return await asyncio.wait_for(reader.readexactly(len(data)), 5), reader, writer


async def test_proxy_forwards_cuts_and_refuses_while_paused() -> None:
    server = await asyncio.start_server(_echo, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        async with TcpProxy("127.0.0.1", port) as proxy:
            echoed, reader, writer = await _roundtrip(proxy.port, b"hello")
            assert echoed == b"hello"
            assert (proxy.live, proxy.accepted) == (1, 1)

            # cut(): the live connection dies at once, on the client's side too.
            assert proxy.cut() == 1
            with pytest.raises((ConnectionError, asyncio.IncompleteReadError)):
                await asyncio.wait_for(reader.readexactly(1), 5)
            writer.close()
            for _ in range(100):
                if proxy.live == 0:
                    break
                await asyncio.sleep(0.01)
            assert proxy.live == 0

            # pause(): new connections are refused; resume(): accepted again, same port.
            listening = proxy.port
            proxy.pause()
            assert proxy.paused
            with pytest.raises(ConnectionRefusedError):
                await asyncio.open_connection("127.0.0.1", proxy.port)
            await proxy.resume()
            assert (proxy.paused, proxy.port) == (False, listening)
            echoed, _, writer2 = await _roundtrip(proxy.port, b"again")
            assert echoed == b"again"
            assert proxy.accepted == 2
            writer2.close()
    finally:
        server.close()
        await server.wait_closed()


async def test_proxy_to_a_dead_target_drops_the_client() -> None:
    # A port with nothing listening: bind, learn the port, close.
    probe = await asyncio.start_server(_echo, "127.0.0.1", 0)
    port = probe.sockets[0].getsockname()[1]
    probe.close()
    await probe.wait_closed()
    async with TcpProxy("127.0.0.1", port) as proxy:
        reader, writer = await asyncio.open_connection("127.0.0.1", proxy.port)
        with pytest.raises((ConnectionError, asyncio.IncompleteReadError)):
            await asyncio.wait_for(reader.readexactly(1), 5)
        writer.close()
        assert (proxy.accepted, proxy.live) == (1, 0)
