"""Liveness and readiness, for load balancers and orchestrators."""

from __future__ import annotations

import asyncpg
from aiohttp import web

from events.errors import MigrationError
from events.migrations import pending_migrations
from receiver.app_keys import POOL


async def healthz(request: web.Request) -> web.Response:
    """The process answers: nothing more is claimed."""
    return web.json_response({"status": "ok"})


async def readyz(request: web.Request) -> web.Response:
    """The database answers and its schema is current: safe to send traffic."""
    try:
        async with request.app[POOL].acquire(timeout=2) as conn:
            pending = await pending_migrations(conn)
    except MigrationError as error:
        return web.json_response({"status": "unready", "reason": str(error)}, status=503)
    except (OSError, asyncpg.PostgresError, TimeoutError):
        return web.json_response({"status": "unready", "reason": "database unreachable"}, status=503)
    if pending:
        return web.json_response(
            {"status": "unready", "reason": f"{len(pending)} migrations pending"}, status=503
        )
    return web.json_response({"status": "ready"})


def setup(app: web.Application) -> None:
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
