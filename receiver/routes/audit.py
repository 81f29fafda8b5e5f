"""The auditor's API: the log filtered and paged (JSON) or streamed whole (NDJSON), timelines, the chain.

Every route needs an auditor token (admin tokens do not open it). What is served is the log as
stored, with one exception: the digest in token.created events is withheld, since a token's
digest is never served. Time filters apply to `recorded_at` (our clock, which grows with
position), so a range is also a contiguous run of positions.
"""

from __future__ import annotations

import contextlib
import json
import re
from collections.abc import AsyncGenerator
from datetime import UTC, datetime
from typing import Annotated, Any, cast

import structlog
from aiohttp import web
from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    WithJsonSchema,
)

from events.database import Connection
from events.envelope import SYSTEM_STREAM, RecordedEvent, envelope_json
from events.event_types import CATALOGUE, TokenCreated
from events.reading import iter_events, read_page
from events.verify import verify_chain
from projections.queries import CredentialRecord, get_state, history
from receiver.app_keys import POOL
from receiver.bearer_tokens import require_role
from receiver.errors import ApiError, bad_request
from receiver.identifiers import valid_user_id
from receiver.middleware import REQUEST_ID_HEADER
from receiver.routing import Answer, RouteSpec, register

log = structlog.get_logger(__name__)

AUDITOR = "auditor"
NDJSON = "application/x-ndjson"
DIGEST_WITHHELD = "[withheld]"
MAX_POSITION = 2**63 - 1
# Lines are gathered into writes of about this size: one write per event would cost a syscall each.
STREAM_CHUNK_BYTES = 64 * 1024
_ISO_DATE_TIME = re.compile(r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}")


def _known_type(value: str) -> str:
    if value not in CATALOGUE:
        raise ValueError("not an event type of the catalogue")
    return value


def _stream_name(value: str) -> str:
    if value != SYSTEM_STREAM and not valid_user_id(value):
        raise ValueError("not a valid Nextcloud user id (or `system`)")
    return value


def _iso_time(value: Any) -> Any:
    if not isinstance(value, str):
        return value
    # pydantic would also read `1700000000` or `0.5` as Unix times; an auditor's filter is an
    # ISO-8601 date and time, so anything else is refused rather than guessed at.
    if not _ISO_DATE_TIME.match(value):
        raise ValueError("expected an ISO-8601 date and time with its UTC offset, e.g. 2026-01-01T00:00:00Z")
    # An unencoded `+02:00` in a query string arrives as ` 02:00` (`+` means space there); put
    # the sign back rather than make every auditor percent-encode it.
    return re.sub(r"([T ]\d{2}:\d{2}(?::\d{2}(?:[.,]\d+)?)?) (\d{2}(?::?\d{2})?)$", r"\1+\2", value)


def _in_utc(value: datetime) -> datetime:
    # Near year 1 or 9999 an offset can push the instant outside what datetime (and so the
    # database driver) can hold: a bad parameter, not a server error.
    try:
        return value.astimezone(UTC)
    except OverflowError:
        raise ValueError("the time is out of range") from None


QueryTime = Annotated[AwareDatetime, BeforeValidator(_iso_time), AfterValidator(_in_utc)]
# Documented as the catalogue's names, so the OpenAPI document lists what may be asked for.
EventType = Annotated[
    str, AfterValidator(_known_type), WithJsonSchema({"type": "string", "enum": sorted(CATALOGUE)})
]


class AuditEventsQuery(BaseModel):
    """The query parameters of GET /api/v1/audit/events."""

    model_config = ConfigDict(extra="forbid")

    user_id: (
        Annotated[str, StringConstraints(min_length=1, max_length=64), AfterValidator(_stream_name)] | None
    ) = Field(default=None, description="only this user's events (`system` for the service's own)")
    type: list[EventType] = Field(
        default_factory=list,
        max_length=len(CATALOGUE),
        description="only these event types: repeat the parameter or separate types with commas",
    )
    from_: QueryTime | None = Field(
        default=None,
        alias="from",
        description="recorded at or after this ISO-8601 time, with its UTC offset",
    )
    to: QueryTime | None = Field(
        default=None, description="recorded before this ISO-8601 time, with its UTC offset"
    )
    after: int = Field(default=0, ge=0, le=MAX_POSITION, description="only events after this position")
    limit: int = Field(
        default=100, ge=1, le=1000, description="page size for JSON (NDJSON streams every match)"
    )


class EventOut(BaseModel):
    """One event as the log holds it (the envelope of DESIGN.md); hashes in hex."""

    position: int
    event_id: str
    source: str
    stream: str
    stream_version: int
    type: str
    schema_version: int
    data: dict[str, Any]
    metadata: dict[str, Any]
    occurred_at: datetime
    recorded_at: datetime
    prev_hash: str
    hash: str


class EventPage(BaseModel):
    """A page of events in position order; pass `next_after` as `after` for the next page."""

    events: list[EventOut]
    next_after: int | None = Field(description="the last position on this page; null when it is empty")


class TimelineEntry(BaseModel):
    """One event of a user's timeline: what happened and when, never the secret."""

    position: int
    recorded_at: datetime
    occurred_at: datetime
    type: str
    reason: str | None = None
    source: str
    stream_version: int


class CredentialSummary(BaseModel):
    """The user's credential as projected from the log now."""

    status: str
    login_name: str | None
    scopes: list[str]
    provisioned_at: datetime | None
    revoked_at: datetime | None
    reason: str | None
    user_disabled: bool
    credential_position: int | None
    last_position: int


class UserHistory(BaseModel):
    """A user's timeline, oldest first, and their credential now (null if they never provisioned)."""

    user_id: str
    state: CredentialSummary | None
    timeline: list[TimelineEntry]


class ChainStatus(BaseModel):
    """The outcome of recomputing the hash chain from position 1."""

    intact: bool
    checked: int
    head_position: int
    head_hash: str
    bad_position: int | None
    reason: str | None


def public_data(event: RecordedEvent) -> dict[str, Any]:
    """The event's data as served: everything, except a token's digest."""
    data = dict(event.data)
    if event.type == TokenCreated.TYPE and "digest" in data:
        data["digest"] = DIGEST_WITHHELD
    return data


def event_json(event: RecordedEvent) -> dict[str, Any]:
    """An event as a JSON-ready dict, in the shape of EventOut (a token's digest withheld)."""
    return {**envelope_json(event), "data": public_data(event)}


def _problems(error: ValidationError, known: set[str]) -> list[dict[str, str]]:
    # Where and what, never the value given; a parameter name we do not know is not echoed either.
    found = []
    for e in error.errors():
        name = str(e["loc"][0]) if e["loc"] else "(query)"
        if name not in known and name != "(query)":
            name = "(unknown parameter)"
        found.append({"field": name, "problem": e["msg"]})
    return found


def parse_events_query(request: web.Request) -> AuditEventsQuery:
    """The validated query parameters; raises ApiError 400 or 422 naming the parameters at fault."""
    raw: dict[str, Any] = {}
    for name in dict.fromkeys(request.query.keys()):
        values = request.query.getall(name)
        if name == "type":
            raw[name] = [part.strip() for value in values for part in value.split(",") if part.strip()]
        elif len(values) > 1:
            raise bad_request(
                "a query parameter other than `type` was given more than once", "repeated_parameter"
            )
        else:
            raw[name] = values[0]
    try:
        return AuditEventsQuery.model_validate(raw)
    except ValidationError as error:
        known = {field.alias or name for name, field in AuditEventsQuery.model_fields.items()}
        raise ApiError(
            422, "invalid_query", "the query parameters are not valid", fields=_problems(error, known)
        ) from None


def _wants_ndjson(request: web.Request) -> bool:
    accepted = (
        part.split(";", 1)[0].strip().lower() for part in request.headers.get("Accept", "").split(",")
    )
    return NDJSON in accepted


def _filters(query: AuditEventsQuery) -> dict[str, Any]:
    return {
        "after": query.after,
        "stream": query.user_id,
        "types": query.type or None,
        "since": query.from_,
        "until": query.to,
    }


def _line(event: RecordedEvent) -> bytes:
    return (json.dumps(event_json(event), ensure_ascii=False, separators=(",", ":")) + "\n").encode()


async def _stream(request: web.Request, conn: Connection, query: AuditEventsQuery) -> web.StreamResponse:
    response = web.StreamResponse()
    response.content_type = NDJSON
    response.charset = "utf-8"
    # The middleware adds the request id only after the handler returns: too late for a stream.
    request_id = structlog.contextvars.get_contextvars().get("request_id")
    if isinstance(request_id, str):
        response.headers[REQUEST_ID_HEADER] = request_id
    # iter_events is an async generator (annotated as the iterator it is used as): closing it
    # explicitly ends its transaction before the connection goes back to the pool, also when the
    # client leaves half-way.
    rows = cast(AsyncGenerator[RecordedEvent, None], iter_events(conn, **_filters(query)))
    async with contextlib.aclosing(rows) as events:
        # The first row is fetched before the headers go out: a query that fails at once is still
        # answered with a clean JSON error instead of a broken stream.
        first = await anext(events, None)
        await response.prepare(request)
        try:
            chunk = bytearray()
            if first is not None:
                chunk += _line(first)
            async for event in events:
                chunk += _line(event)
                if len(chunk) >= STREAM_CHUNK_BYTES:
                    await response.write(bytes(chunk))
                    chunk.clear()
            if chunk:
                await response.write(bytes(chunk))
        except ConnectionError:
            log.info("audit.stream_abandoned")  # the client went away; nothing to answer
            return response
        except Exception:
            # The status line went out long ago. Cutting the connection without the final chunk is
            # the only way left to tell the client the export is incomplete: finishing it cleanly
            # would pass a truncated export off as a whole one.
            log.exception("audit.stream_failed")
            if request.transport is not None:
                request.transport.close()
            return response
    await response.write_eof()
    return response


async def audit_events(request: web.Request) -> web.StreamResponse:
    """Filtered events: one JSON page by position, or every match as NDJSON."""
    await require_role(request, AUDITOR)
    query = parse_events_query(request)
    async with request.app[POOL].acquire() as conn:
        if _wants_ndjson(request):
            return await _stream(request, conn, query)
        events = await read_page(conn, limit=query.limit, **_filters(query))
    page = {
        "events": [event_json(event) for event in events],
        "next_after": events[-1].position if events else None,
    }
    return web.json_response(page)


def path_user_id(request: web.Request) -> str:
    """The `{uid}` of the path, if it can be a Nextcloud user id; raises ApiError 400 otherwise."""
    uid = request.match_info["uid"]
    if not valid_user_id(uid):
        raise bad_request("the user id in the path is not a valid Nextcloud user id", "invalid_user_id")
    structlog.contextvars.bind_contextvars(user_id=uid)
    return uid


def _summary(record: CredentialRecord) -> dict[str, Any]:
    state = record.state
    return {
        "status": state.status,
        "login_name": state.login_name,
        "scopes": list(state.scopes),
        "provisioned_at": state.provisioned_at.isoformat() if state.provisioned_at else None,
        "revoked_at": state.revoked_at.isoformat() if state.revoked_at else None,
        "reason": state.reason,
        "user_disabled": state.user_disabled,
        "credential_position": state.credential_position,
        "last_position": state.last_position,
    }


def timeline_entry(event: RecordedEvent) -> dict[str, Any]:
    """One timeline entry: the envelope's when and who, and the reason, never the event's data."""
    reason = event.data.get("reason")
    return {
        "position": event.position,
        "recorded_at": event.recorded_at.isoformat(),
        "occurred_at": event.occurred_at.isoformat(),
        "type": event.type,
        "reason": reason if isinstance(reason, str) else None,
        "source": event.source,
        "stream_version": event.stream_version,
    }


async def user_history(request: web.Request) -> web.Response:
    """One user's timeline and current credential, read from one snapshot so the two agree."""
    await require_role(request, AUDITOR)
    uid = path_user_id(request)
    async with (
        request.app[POOL].acquire() as conn,
        conn.transaction(isolation="repeatable_read", readonly=True),
    ):
        events = await history(conn, uid)
        record = await get_state(conn, uid)
    if not events:
        raise ApiError(404, "unknown_user", "the log holds no event about this user")
    return web.json_response(
        {
            "user_id": uid,
            "state": _summary(record) if record is not None else None,
            "timeline": [timeline_entry(event) for event in events],
        }
    )


async def verify_log(request: web.Request) -> web.Response:
    """Recompute the chain from position 1; 200 whether or not it holds (the body says which)."""
    await require_role(request, AUDITOR)
    async with request.app[POOL].acquire() as conn:
        report = await verify_chain(conn)
    if not report.intact:
        log.warning("audit.chain_broken", bad_position=report.bad_position)
    return web.json_response(
        {
            "intact": report.intact,
            "checked": report.checked,
            "head_position": report.head_position,
            "head_hash": report.head_hash.hex(),
            "bad_position": report.bad_position,
            "reason": report.reason,
        }
    )


_AUTH_ANSWERS = (
    Answer(401, "no bearer token, or one that is invalid or revoked"),
    Answer(403, "a valid token without the auditor role"),
    Answer(503, "the database is unavailable (see Retry-After)"),
)

ROUTES = [
    RouteSpec(
        "GET",
        "/api/v1/audit/events",
        audit_events,
        "Events filtered by user, type and time, paged by position (JSON) or streamed whole (NDJSON)",
        "audit",
        answers=[
            Answer(
                200, "a page of events, or with `Accept: application/x-ndjson` one event per line", EventPage
            ),
            Answer(400, "a parameter other than `type` was given twice"),
            Answer(422, "a query parameter is not valid (the fields say which)"),
            *_AUTH_ANSWERS,
        ],
        security=("bearerAuth",),
        query=AuditEventsQuery,
        extra_media_types=(NDJSON,),
    ),
    RouteSpec(
        "GET",
        "/api/v1/audit/users/{uid}/history",
        user_history,
        "One user's credential timeline, oldest first, and their projected credential now",
        "audit",
        answers=[
            Answer(200, "the timeline (never any secret) and the current state", UserHistory),
            Answer(400, "the user id is not a valid Nextcloud user id"),
            Answer(404, "the log holds no event about this user"),
            *_AUTH_ANSWERS,
        ],
        security=("bearerAuth",),
    ),
    RouteSpec(
        "GET",
        "/api/v1/audit/verify",
        verify_log,
        "Recompute the hash chain and report the head, or the first bad position and why",
        "audit",
        answers=[
            Answer(200, "the chain's status: `intact` says whether it holds", ChainStatus),
            *_AUTH_ANSWERS,
        ],
        security=("bearerAuth",),
    ),
]


def setup(app: web.Application) -> None:
    register(app, ROUTES)
