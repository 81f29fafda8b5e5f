"""Every request passes here: a request id, the JSON error shape, 503 for a missing database, access logs.

No handler ever answers with a bare 500 for bad input: validation raises ApiError (4xx), aiohttp's
own HTTP errors (404, 405, 413) are rendered as JSON, and a database that went away is a 503 with
Retry-After. Only a genuine bug is a 500, still as JSON with the request id, and logged.
"""

from __future__ import annotations

import re
import time
import uuid

import structlog
from aiohttp import web

from events.database import DATABASE_UNAVAILABLE
from receiver.errors import ApiError, error_response, render
from receiver.metrics import METRICS
from receiver.routing import Handler

log = structlog.get_logger("credledger.http")

REQUEST_ID_HEADER = "X-Request-ID"
# A caller's request id is kept only if it is short and plain, so it is safe to log and echo.
_PLAIN_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
DATABASE_RETRY_AFTER_SECONDS = 5


def route_name(request: web.Request) -> str:
    """The matched route's template (never the concrete path: no user ids in metric labels)."""
    route = request.match_info.route
    resource = route.resource
    return resource.canonical if resource is not None else "unmatched"


def _code(status: int) -> str:
    return {
        400: "bad_request",
        404: "not_found",
        405: "method_not_allowed",
        413: "body_too_large",
        415: "unsupported_media_type",
    }.get(status, f"http_{status}")


@web.middleware
async def request_context(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Bind a request id, turn every failure into the JSON error shape, and account for it."""
    offered = request.headers.get(REQUEST_ID_HEADER, "")
    request_id = offered if _PLAIN_ID.match(offered) else uuid.uuid4().hex
    # Requests on one keep-alive connection share a task, and so its context: start clean.
    structlog.contextvars.clear_contextvars()
    structlog.contextvars.bind_contextvars(request_id=request_id)
    started = time.perf_counter()
    response: web.StreamResponse
    try:
        response = await handler(request)
    except ApiError as error:
        response = render(error)
    except web.HTTPException as error:
        if error.status < 400:
            raise
        headers = {k: v for k, v in error.headers.items() if k.lower() in ("allow", "retry-after")}
        response = error_response(error.status, _code(error.status), error.reason, headers=headers)
    except DATABASE_UNAVAILABLE:
        log.warning("database.unavailable", route=route_name(request))
        response = error_response(
            503,
            "database_unavailable",
            "the database is unavailable; try again shortly",
            headers={"Retry-After": str(DATABASE_RETRY_AFTER_SECONDS)},
        )
    except Exception:
        log.exception("request.failed", route=route_name(request))
        response = error_response(500, "internal_error", f"internal error (request id {request_id})")
    response.headers[REQUEST_ID_HEADER] = request_id
    elapsed = time.perf_counter() - started
    route = route_name(request)
    if METRICS in request.app:
        request.app[METRICS].observe_request(route, request.method, response.status, elapsed)
    log.info(
        "request", method=request.method, route=route, status=response.status, ms=round(elapsed * 1000, 2)
    )
    structlog.contextvars.clear_contextvars()
    return response
