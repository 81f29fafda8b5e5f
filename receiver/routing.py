"""Route declarations that serve both aiohttp's router and the OpenAPI document.

Each route is declared once, with what it accepts and answers; `register` adds it to the app and
remembers it, and `receiver.openapi` describes every remembered route. A route added to the
router any other way would be missing from /openapi.json, and a test checks that none is.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field

from aiohttp import web
from pydantic import BaseModel

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass(frozen=True, slots=True)
class Answer:
    """One possible response of a route: its status, what it means, and its JSON model."""

    status: int
    description: str
    model: type[BaseModel] | None = None
    media_type: str = "application/json"


@dataclass(frozen=True, slots=True)
class RouteSpec:
    """A route: method, path template, handler, and its contract."""

    method: str
    path: str
    handler: Handler
    summary: str
    tag: str
    answers: Sequence[Answer]
    body: type[BaseModel] | None = None
    body_required: bool = True
    security: Sequence[str] = ()
    query: type[BaseModel] | None = None
    extra_media_types: Sequence[str] = field(default_factory=tuple)


ROUTE_SPECS = web.AppKey("route_specs", list[RouteSpec])


def register(app: web.Application, specs: Sequence[RouteSpec]) -> None:
    """Add `specs` to the router and to the list the OpenAPI document is built from."""
    if ROUTE_SPECS not in app:
        app[ROUTE_SPECS] = []
    for spec in specs:
        app.router.add_route(spec.method, spec.path, spec.handler)
        app[ROUTE_SPECS].append(spec)
