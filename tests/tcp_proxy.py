"""A TCP proxy a test can cut: the database (or Nextcloud) going away, as the network shows it."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from urllib.parse import parse_qs, urlsplit


class CuttableProxy:
    """Forwards 127.0.0.1:port to a TCP or Unix-socket target until cut; cut connections reset."""

    def __init__(self, target_host: str | None, target_port: int | None, target_path: str | None) -> None:
        self._host, self._port, self._path = target_host, target_port, target_path
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self.port = 0

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", self.port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def cut(self) -> None:
        """Stop listening (new connections are refused) and drop every open connection."""
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
        for writer in list(self._writers):
            writer.transport.abort()
        self._writers.clear()

    async def restore(self) -> None:
        """Listen again on the same port."""
        await self.start()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            if self._path is not None:
                upstream_reader, upstream_writer = await asyncio.open_unix_connection(self._path)
            else:
                upstream_reader, upstream_writer = await asyncio.open_connection(self._host, self._port)
        except OSError:
            writer.transport.abort()
            return
        self._writers.update((writer, upstream_writer))
        await asyncio.gather(self._pipe(reader, upstream_writer), self._pipe(upstream_reader, writer))

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            self._writers.discard(writer)
            with contextlib.suppress(Exception):
                writer.transport.abort()


@asynccontextmanager
async def proxied_database_url(url: str) -> AsyncIterator[tuple[str, CuttableProxy]]:
    """`url` rewritten to go through a cuttable proxy on 127.0.0.1 (TCP or Unix-socket targets)."""
    parts = urlsplit(url)
    socket_dir = parse_qs(parts.query).get("host", [None])[0]
    if socket_dir is not None and socket_dir.startswith("/"):
        port = parts.port or 5432
        proxy = CuttableProxy(None, None, f"{socket_dir}/.s.PGSQL.{port}")
    else:
        proxy = CuttableProxy(parts.hostname or "127.0.0.1", parts.port or 5432, None)
    await proxy.start()
    user = parts.username or "postgres"
    try:
        yield f"postgresql://{user}@127.0.0.1:{proxy.port}{parts.path}", proxy
    finally:
        await proxy.cut()
