"""The operators' routes: Prometheus metrics and the OpenAPI document, open to anyone on the network."""

from __future__ import annotations

import json
from importlib import metadata

from aiohttp import web

from receiver.metrics import METRICS
from receiver.openapi import build_openapi
from receiver.routing import ROUTE_SPECS, Answer, RouteSpec, register

PROMETHEUS_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
API_TITLE = "credledger"


class OpenApiCache:
    """The serialized document, built on first request.

    Built lazily because routes registered after this module's `setup` belong in it too; held in a
    mutable object set at setup, because an app's own state must not change once it has started.
    """

    def __init__(self) -> None:
        self.body: bytes | None = None


OPENAPI_CACHE = web.AppKey("openapi_cache", OpenApiCache)


def _api_version() -> str:
    try:
        return metadata.version("credledger")
    except metadata.PackageNotFoundError:
        return "0+unknown"


async def metrics(request: web.Request) -> web.Response:
    """The service's metrics in the Prometheus text format."""
    body = request.app[METRICS].render().encode()
    return web.Response(body=body, headers={"Content-Type": PROMETHEUS_CONTENT_TYPE})


async def openapi_document(request: web.Request) -> web.Response:
    """This service's OpenAPI 3.1 document."""
    cache = request.app[OPENAPI_CACHE]
    if cache.body is None:
        specs: list[RouteSpec] = request.app[ROUTE_SPECS]
        document = build_openapi(specs, title=API_TITLE, version=_api_version())
        cache.body = json.dumps(document, separators=(",", ":")).encode()
    return web.Response(body=cache.body, content_type="application/json")


ROUTES: list[RouteSpec] = [
    RouteSpec(
        method="GET",
        path="/metrics",
        handler=metrics,
        summary="Prometheus metrics",
        tag="operations",
        answers=(
            Answer(
                200, "Metrics in the text exposition format 0.0.4", media_type="text/plain; version=0.0.4"
            ),
        ),
    ),
    RouteSpec(
        method="GET",
        path="/openapi.json",
        handler=openapi_document,
        summary="This OpenAPI document",
        tag="operations",
        answers=(Answer(200, "The OpenAPI 3.1 document"),),
    ),
]


def setup(app: web.Application) -> None:
    app[OPENAPI_CACHE] = OpenApiCache()
    register(app, ROUTES)
