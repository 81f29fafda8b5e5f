"""POST /api/v1/events: events from Nextcloud's side, signed per Standard Webhooks, stored once each.

The signature is checked on the raw bytes before anything is parsed. The webhook-id is the
event's id in the log, so a redelivery (same id, same body) is answered with the original
position, forever, and the same id with another body is a 409.
"""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal

import structlog
from aiohttp import web
from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, Field, RootModel, ValidationError

from events.errors import IdempotencyConflict, InvalidEvent
from events.event_types import (
    CredentialRevoked,
    DomainEvent,
    UserDeleted,
    UserDisabled,
    UserEnabled,
    to_new_event,
)
from receiver.app_keys import POOL, SETTINGS, WEBHOOK_SECRETS, WRITER
from receiver.client_address import client_address
from receiver.errors import ApiError, bad_request, unauthorized
from receiver.identifiers import valid_user_id
from receiver.metrics import METRICS
from receiver.routing import Answer, RouteSpec, register
from receiver.webhook_signatures import SignatureError, verify
from sync.revocation_gate import wait_for_sync_starts

SOURCE = "webhook"


def _user_id(value: str) -> str:
    if not valid_user_id(value):
        raise ValueError("not a valid Nextcloud user id")
    return value


def _plausible_time(value: datetime) -> datetime:
    if not datetime(2000, 1, 1, tzinfo=UTC) <= value <= datetime.now(UTC) + timedelta(days=1):
        raise ValueError("occurred_at must lie between the year 2000 and tomorrow")
    return value


UserId = Annotated[str, AfterValidator(_user_id)]
OccurredAt = Annotated[AwareDatetime, AfterValidator(_plausible_time)]


class _Envelope(BaseModel):
    model_config = ConfigDict(extra="forbid")
    user_id: UserId
    occurred_at: OccurredAt


class NoData(BaseModel):
    model_config = ConfigDict(extra="forbid")


class RevocationData(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reason: Literal["token_invalidated", "admin"]


class UserDeletedBody(_Envelope):
    type: Literal["user.deleted"]
    data: NoData = Field(default_factory=NoData)


class UserDisabledBody(_Envelope):
    type: Literal["user.disabled"]
    data: NoData = Field(default_factory=NoData)


class UserEnabledBody(_Envelope):
    type: Literal["user.enabled"]
    data: NoData = Field(default_factory=NoData)


class CredentialRevokedBody(_Envelope):
    type: Literal["credential.revoked"]
    data: RevocationData


WebhookBody = Annotated[
    UserDeletedBody | UserDisabledBody | UserEnabledBody | CredentialRevokedBody, Field(discriminator="type")
]


class WebhookEvent(RootModel[WebhookBody]):
    """The body of a signed event: which user, what happened, when (the sender's clock)."""


class Accepted(BaseModel):
    success: bool = True
    position: int
    event_id: str
    duplicate: bool = False


def _domain_event(
    body: UserDeletedBody | UserDisabledBody | UserEnabledBody | CredentialRevokedBody,
) -> DomainEvent:
    if isinstance(body, CredentialRevokedBody):
        return CredentialRevoked(body.data.reason)
    return {"user.deleted": UserDeleted(), "user.disabled": UserDisabled(), "user.enabled": UserEnabled()}[
        body.type
    ]


def _fields(error: ValidationError) -> list[dict[str, str]]:
    # Never echo the input back: only where and what. The first element of a location is the
    # union member (the event type), which the caller already knows.
    found = []
    for e in error.errors():
        location = [str(p) for p in e["loc"]]
        if len(location) > 1 and location[0].startswith(("user.", "credential.")):
            location = location[1:]
        found.append({"field": ".".join(location) or "(body)", "problem": e["msg"]})
    return found


async def receive_event(request: web.Request) -> web.Response:
    """Verify, validate and append one event; 201 when stored now, 200 when stored before."""
    secrets = request.app[WEBHOOK_SECRETS]
    metrics = request.app[METRICS]
    if not secrets:
        raise ApiError(503, "webhooks_not_configured", "CREDLEDGER_WEBHOOK_SECRETS is not set")
    raw = await request.read()
    try:
        verified = verify(secrets, request.headers, raw, now=time.time())
    except SignatureError as error:
        metrics.signature_failure(error.reason)
        raise unauthorized(f"webhook signature rejected: {error.reason}", code="invalid_signature") from None
    try:
        document: Any = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise bad_request("the body is not valid JSON", "malformed_json") from None
    try:
        body = WebhookEvent.model_validate(document).root
    except ValidationError as error:
        raise ApiError(
            422, "invalid_event", "the event does not match its type's schema", fields=_fields(error)
        ) from None
    structlog.contextvars.bind_contextvars(user_id=body.user_id, delivery_id=verified.msg_id)
    event = to_new_event(
        _domain_event(body),
        stream=body.user_id,
        source=SOURCE,
        event_id=verified.msg_id,
        occurred_at=body.occurred_at,
        metadata={
            "request_id": str(structlog.contextvars.get_contextvars().get("request_id", "")),
            "remote_address": client_address(request, request.app[SETTINGS].trusted_proxy_set()),
            "signer_key_id": verified.key_id,
        },
    )
    try:
        appended = await request.app[WRITER].append(event)
    except IdempotencyConflict as conflict:
        metrics.idempotency_conflict()
        raise ApiError(
            409, "idempotency_conflict", f"webhook-id {verified.msg_id!r} was already used for another event"
        ) from conflict
    except InvalidEvent as error:
        raise ApiError(422, "invalid_event", str(error)) from None
    if isinstance(body, UserDeletedBody | CredentialRevokedBody):
        # Answer only once no sync can still be starting a call with the withdrawn credential.
        await wait_for_sync_starts(request.app[POOL], [body.user_id])
    answer = Accepted(position=appended.position, event_id=verified.msg_id, duplicate=appended.duplicate)
    if appended.duplicate:
        metrics.dedupe_hit()
        return web.json_response(answer.model_dump(), status=200)
    metrics.appended(1)
    # Said on the request's own log line (one line per request is what the service can afford).
    structlog.contextvars.bind_contextvars(event_type=body.type, position=appended.position)
    return web.json_response(answer.model_dump(), status=201)


ROUTES = [
    RouteSpec(
        "POST",
        "/api/v1/events",
        receive_event,
        "Append a signed event from Nextcloud's side (Standard Webhooks)",
        "events",
        answers=[
            Answer(201, "stored", Accepted),
            Answer(200, "already stored under this webhook-id (the original position)", Accepted),
            Answer(400, "the body is not JSON"),
            Answer(401, "missing, malformed or wrong signature, or a timestamp outside 5 minutes"),
            Answer(409, "the webhook-id was used before for a different event"),
            Answer(413, "the body is larger than 64 KiB"),
            Answer(422, "the event does not match its type's schema"),
            Answer(
                503, "the database is unavailable, or no webhook secrets are configured (see Retry-After)"
            ),
        ],
        body=WebhookEvent,
        security=("webhookSignature",),
    )
]


def setup(app: web.Application) -> None:
    register(app, ROUTES)
