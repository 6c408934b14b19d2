"""A loopback TCP proxy for fault tests: forwards bytes both ways until told otherwise.

``freeze()`` stops forwarding in both directions while every TCP connection stays open (a
network stall: no RST, no FIN, nothing arriving), also for connections accepted meanwhile;
``thaw()`` resumes, delivering whatever was held. ``cut()`` aborts every open connection
at once (a dead link); new connections are accepted as usual.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field


@dataclass(eq=False)
class _Pair:
    client: asyncio.StreamWriter
    upstream: asyncio.StreamWriter
    tasks: list[asyncio.Task[None]] = field(default_factory=list)

    def abort(self) -> None:
        for writer in (self.client, self.upstream):
            writer.transport.abort()


class TcpProxy:
    """``async with TcpProxy(host, port) as proxy: proxy.url`` forwards to ``host:port``."""

    def __init__(self, target_host: str, target_port: int, *, host: str = "127.0.0.1") -> None:
        self.target = (target_host, target_port)
        self.host = host
        self.port = 0
        self.accepted = 0
        self.cuts = 0
        self._thawed = asyncio.Event()
        self._thawed.set()
        self._pairs: set[_Pair] = set()
        self._server: asyncio.Server | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def frozen(self) -> bool:
        return not self._thawed.is_set()

    @property
    def open_connections(self) -> int:
        return len(self._pairs)

    async def __aenter__(self) -> TcpProxy:
        self._server = await asyncio.start_server(self._accept, self.host, 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        self.thaw()
        self.cut()
        tasks = [t for pair in list(self._pairs) for t in pair.tasks]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await self._server.wait_closed()

    def freeze(self) -> None:
        """Stop forwarding both ways; connections stay open."""
        self._thawed.clear()

    def thaw(self) -> None:
        """Forward again, held bytes first."""
        self._thawed.set()

    def cut(self) -> int:
        """Abort every open connection on both sides; returns how many."""
        pairs = list(self._pairs)
        for pair in pairs:
            pair.abort()
        self.cuts += len(pairs)
        return len(pairs)

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.accepted += 1
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.target)
        except OSError:
            writer.transport.abort()
            return
        pair = _Pair(writer, up_writer)
        self._pairs.add(pair)
        pair.tasks = [
            asyncio.current_task(),  # type: ignore[list-item]
            asyncio.create_task(self._pump(up_reader, writer)),
        ]
        try:
            await self._pump(reader, up_writer)
            await pair.tasks[1]
        finally:
            self._pairs.discard(pair)

    async def _pump(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                await self._thawed.wait()
                data = await reader.read(65536)
                if not data:
                    break
                await self._thawed.wait()  # read during a freeze: held until the thaw
                writer.write(data)
                await writer.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            with contextlib.suppress(Exception):
                writer.close()
