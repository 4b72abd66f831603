"""An asyncio TCP proxy that a test controls, to reproduce network failures.

``TcpProxy(host, port)`` listens on ``127.0.0.1:<random port>`` and forwards every
connection to ``host:port``. :meth:`TcpProxy.cut` aborts every live connection on both
sides at once (the client sees a reset, as when a line drops); :meth:`TcpProxy.pause`
stops listening, so new connections are refused until :meth:`TcpProxy.resume`
listens again on the same port.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field

__all__ = ["TcpProxy"]

_CHUNK = 64 * 1024


@dataclass(eq=False)
class _Pair:
    client: asyncio.StreamWriter
    upstream: asyncio.StreamWriter
    pumps: list[asyncio.Task[None]] = field(default_factory=list)

    def abort(self) -> None:
        for writer in (self.client, self.upstream):
            writer.transport.abort()


class TcpProxy:
    """A controllable TCP proxy (an async context manager)."""

    def __init__(self, target_host: str, target_port: int) -> None:
        self.target_host = target_host
        self.target_port = target_port
        self._server: asyncio.Server | None = None
        self._port = 0
        self._pairs: set[_Pair] = set()
        self._handlers: set[asyncio.Task[None]] = set()
        self.accepted = 0

    @property
    def port(self) -> int:
        """The port the proxy listens on (stable across pause/resume)."""
        return self._port

    @property
    def live(self) -> int:
        """Connections being forwarded right now."""
        return len(self._pairs)

    @property
    def paused(self) -> bool:
        """Whether new connections are refused."""
        return self._server is None

    async def __aenter__(self) -> TcpProxy:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def start(self) -> None:
        """Listen on a free port of 127.0.0.1."""
        await self._listen(0)

    async def _listen(self, port: int) -> None:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", port)
        self._port = self._server.sockets[0].getsockname()[1]

    def pause(self) -> None:
        """Stop listening: new connections are refused; live ones carry on."""
        server, self._server = self._server, None
        if server is not None:
            server.close()

    async def resume(self) -> None:
        """Listen again, on the same port."""
        if self._server is None:
            await self._listen(self._port)

    def cut(self) -> int:
        """Abort every live connection on both sides; return how many there were."""
        pairs = list(self._pairs)
        for pair in pairs:
            pair.abort()
        return len(pairs)

    async def close(self) -> None:
        """Stop listening, abort every connection and wait for the pumps to end."""
        server, self._server = self._server, None
        if server is not None:
            server.close()
            await server.wait_closed()
        self.cut()
        tasks = [task for pair in self._pairs for task in pair.pumps] + list(self._handlers)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._pairs.clear()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        handler = asyncio.current_task()
        if handler is not None:
            self._handlers.add(handler)
        try:
            await self._forward(reader, writer)
        finally:
            if handler is not None:
                self._handlers.discard(handler)

    async def _forward(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.accepted += 1
        try:
            up_reader, up_writer = await asyncio.open_connection(self.target_host, self.target_port)
        except OSError:
            writer.transport.abort()
            return
        pair = _Pair(writer, up_writer)
        self._pairs.add(pair)
        pair.pumps = [
            asyncio.create_task(self._pump(reader, up_writer)),
            asyncio.create_task(self._pump(up_reader, writer)),
        ]
        try:
            await asyncio.wait(pair.pumps, return_when=asyncio.FIRST_COMPLETED)
        finally:
            pair.abort()
            for task in pair.pumps:
                task.cancel()
            await asyncio.gather(*pair.pumps, return_exceptions=True)
            self._pairs.discard(pair)

    @staticmethod
    async def _pump(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError, OSError):
            while data := await reader.read(_CHUNK):
                writer.write(data)
                await writer.drain()
