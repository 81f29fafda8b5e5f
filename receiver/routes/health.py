"""Liveness and readiness, for load balancers and orchestrators."""

from __future__ import annotations

from aiohttp import web
from pydantic import BaseModel

from events.database import DATABASE_UNAVAILABLE
from events.errors import MigrationError
from events.migrations import pending_migrations
from receiver.app_keys import POOL
from receiver.routing import Answer, RouteSpec, register


class Health(BaseModel):
    status: str
    reason: str | None = None


async def healthz(request: web.Request) -> web.Response:
    """The process answers: nothing more is claimed."""
    return web.json_response(Health(status="ok").model_dump(exclude_none=True))


async def readyz(request: web.Request) -> web.Response:
    """The database answers and its schema is current: safe to send traffic."""
    try:
        async with request.app[POOL].acquire(timeout=2) as conn:
            pending = await pending_migrations(conn)
    except MigrationError as error:
        return _unready(str(error))
    except DATABASE_UNAVAILABLE:
        return _unready("database unreachable")
    if pending:
        return _unready(f"{len(pending)} migrations pending")
    return web.json_response(Health(status="ready").model_dump(exclude_none=True))


def _unready(reason: str) -> web.Response:
    return web.json_response(Health(status="unready", reason=reason).model_dump(), status=503)


ROUTES = [
    RouteSpec("GET", "/healthz", healthz, "Liveness", "operations", answers=[Answer(200, "alive", Health)]),
    RouteSpec(
        "GET",
        "/readyz",
        readyz,
        "Readiness: database reachable and migrations current",
        "operations",
        answers=[Answer(200, "ready", Health), Answer(503, "not ready, and why", Health)],
    ),
]


def setup(app: web.Application) -> None:
    register(app, ROUTES)
