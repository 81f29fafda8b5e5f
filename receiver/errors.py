"""Error answers: one JSON shape for every failure, and the exception handlers raise to produce it.

The shape keeps the contract the Astrolabe app already reads (`success: false` and a string
`error`), adds a stable machine-readable `code`, and for validation failures the `fields` at fault.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from aiohttp import web


class ApiError(Exception):
    """Raised by a handler to answer with an error; the middleware renders it."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        fields: Sequence[Mapping[str, Any]] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.fields = list(fields) if fields is not None else None
        self.headers = dict(headers or {})


def error_response(
    status: int,
    code: str,
    message: str,
    *,
    fields: Sequence[Mapping[str, Any]] | None = None,
    headers: Mapping[str, str] | None = None,
) -> web.Response:
    """`{"success": false, "error": message, "code": code[, "fields": [...]]}` with `status`."""
    body: dict[str, Any] = {"success": False, "error": message, "code": code}
    if fields is not None:
        body["fields"] = list(fields)
    return web.json_response(body, status=status, headers=headers)


def render(error: ApiError) -> web.Response:
    return error_response(error.status, error.code, error.message, fields=error.fields, headers=error.headers)


def bad_request(message: str, code: str = "bad_request") -> ApiError:
    return ApiError(400, code, message)


def unauthorized(message: str, *, challenge: str | None = None, code: str = "unauthorized") -> ApiError:
    headers = {"WWW-Authenticate": challenge} if challenge else None
    return ApiError(401, code, message, headers=headers)


def forbidden(message: str, code: str = "forbidden") -> ApiError:
    return ApiError(403, code, message)


def retry_later(status: int, code: str, message: str, retry_after: float) -> ApiError:
    """429 or 503 with a Retry-After in whole seconds (at least 1)."""
    return ApiError(status, code, message, headers={"Retry-After": str(max(1, round(retry_after)))})
