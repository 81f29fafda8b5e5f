"""The other processes of `serve --workers N`: N-1 siblings of this one, on its port and its database.

This process is a worker too (no idle supervisor holding a third copy of the interpreter). It
starts the siblings once its own start-up is done, so the embedded PostgreSQL is running, the
migrations are applied and development keys exist before any sibling looks for them. They bind
the same port with SO_REUSEPORT (the kernel spreads connections over the processes) and append
to the one chain (its lock lives in PostgreSQL).

On SIGTERM or SIGINT this process forwards the signal as soon as its own shutdown begins, so all
drain together, and waits for them before its embedded PostgreSQL stops. A sibling that exits on
its own stops the whole service with a failure status: half a deployment answering is worse than
none, because a supervisor (systemd, Kubernetes) restarts a dead service but not half of one.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from collections.abc import AsyncIterator

import structlog
from aiohttp import web

from receiver.app_keys import DATABASE_URL

log = structlog.get_logger(__name__)


class SiblingWorkers:
    """Starts, watches and stops `count` sibling `serve` processes; `failed` says if one broke."""

    def __init__(self, count: int) -> None:
        self.count = count
        self.failed = False
        self._children: list[asyncio.subprocess.Process] = []
        self._stopping = False

    def attach(self, app: web.Application) -> None:
        """Start the siblings after the app's own start-up; signal them when its shutdown begins."""
        app.cleanup_ctx.append(self._lifetime)
        app.on_shutdown.append(self._forward_stop)

    async def _lifetime(self, app: web.Application) -> AsyncIterator[None]:
        env = {**os.environ, "CREDLEDGER_DATABASE_URL": app[DATABASE_URL]}
        for _ in range(self.count):
            self._children.append(
                await asyncio.create_subprocess_exec(
                    sys.executable, "-m", "receiver.cli", "serve", "--reuse-port", env=env
                )
            )
        log.info("serve.workers_started", workers=self.count + 1, pids=[os.getpid(), *self.pids()])
        watch = asyncio.create_task(self._watch())
        yield
        await self._forward_stop(app)
        codes = [await child.wait() for child in self._children]
        watch.cancel()
        # -SIGTERM: a sibling still starting when the stop came, before it could handle the signal.
        if any(code not in (0, -signal.SIGTERM) for code in codes):
            self.failed = True

    def pids(self) -> list[int]:
        return [child.pid for child in self._children]

    async def _forward_stop(self, app: web.Application) -> None:
        self._stopping = True
        for child in self._children:
            if child.returncode is None:
                child.send_signal(signal.SIGTERM)

    async def _watch(self) -> None:
        exits = [asyncio.ensure_future(child.wait()) for child in self._children]
        await asyncio.wait(exits, return_when=asyncio.FIRST_COMPLETED)
        if not self._stopping:
            log.error("serve.worker_exited", codes=[child.returncode for child in self._children])
            self.failed = True
            # This process's own graceful shutdown, which then stops the other siblings.
            os.kill(os.getpid(), signal.SIGTERM)
