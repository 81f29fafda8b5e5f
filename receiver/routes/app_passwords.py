"""The app-password API exactly as the Astrolabe Nextcloud app calls it: provision, status, delete.

Every route authenticates with HTTP Basic (login name + the app password itself). A password is
accepted if it is the stored one (fingerprint compared in constant time) or if Nextcloud accepts
it for the user in the path. Failures count against the user and the caller's address, in
PostgreSQL, and past the limit nothing more is forwarded to Nextcloud (where each failed login
is a brute-force strike against this server).
"""

from __future__ import annotations

import json
import time
from typing import Annotated, Any

import structlog
from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError

from events.crypto import fingerprint_matches
from events.errors import InvalidEvent
from projections.queries import get_state
from receiver import rate_limits
from receiver.app_keys import MASTER_KEYS, NEXTCLOUD, POOL, RATE_LIMITS, SETTINGS, THROTTLE, WRITER
from receiver.basic_auth import BadCredentials, BasicCredentials, parse_basic
from receiver.client_address import client_address
from receiver.credentials import provision_credential, revoke_credential
from receiver.errors import ApiError, bad_request, forbidden, retry_later, unauthorized
from receiver.identifiers import valid_user_id
from receiver.metrics import METRICS
from receiver.routing import Answer, RouteSpec, register
from sync.nextcloud_client import (
    InvalidCredentials,
    NextcloudUnavailable,
    NextcloudUser,
    Throttled,
    plausible_app_password,
)

log = structlog.get_logger(__name__)

SOURCE = "astrolabe"
CHALLENGE = 'Basic realm="credledger"'

Scope = Annotated[str, StringConstraints(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9:._/-]+$")]


class AppPasswordBody(BaseModel):
    """Optional body of the POST: the Nextcloud login name, and what the password may be used for."""

    model_config = ConfigDict(extra="ignore")
    username: Annotated[str, StringConstraints(min_length=1, max_length=255)] | None = None
    scopes: list[Scope] = Field(default_factory=list, max_length=32)


class Stored(BaseModel):
    success: bool = True
    message: str
    user_id: str
    scopes: list[str]
    position: int | None = Field(default=None, description="the log position of credential.provisioned")


class Status(BaseModel):
    success: bool = True
    user_id: str
    has_app_password: bool


class Deleted(BaseModel):
    success: bool = True
    message: str
    position: int | None = None


def _user_id(request: web.Request) -> str:
    uid = request.match_info["uid"]
    if not valid_user_id(uid):
        raise bad_request("the user id in the path is not a valid Nextcloud user id", "invalid_user_id")
    return uid


def _credentials(request: web.Request) -> BasicCredentials:
    try:
        return parse_basic(request.headers.get("Authorization"))
    except BadCredentials as error:
        raise unauthorized(str(error), challenge=CHALLENGE) from None


async def _body(request: web.Request) -> AppPasswordBody:
    raw = await request.read()
    if not raw.strip():
        return AppPasswordBody()
    try:
        document = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise bad_request("the body is not valid JSON", "malformed_json") from None
    try:
        return AppPasswordBody.model_validate(document)
    except ValidationError as error:
        fields = [{"field": ".".join(str(p) for p in e["loc"]), "problem": e["msg"]} for e in error.errors()]
        raise ApiError(
            400, "invalid_body", "the body does not match the expected shape", fields=fields
        ) from None


class _Caller:
    """What every route works out first: who is asking, from where, for which user."""

    def __init__(self, request: web.Request) -> None:
        self.request = request
        self.app = request.app
        self.uid = _user_id(request)
        self.credentials = _credentials(request)
        self.address = client_address(request, self.app[SETTINGS].trusted_proxy_set())
        structlog.contextvars.bind_contextvars(user_id=self.uid)

    async def check_rate_limits(self) -> None:
        async with self.app[POOL].acquire() as conn:
            blocked = await rate_limits.check(
                conn, self.app[RATE_LIMITS], user_id=self.uid, address=self.address
            )
        if blocked is not None:
            self.app[METRICS].rate_limited(blocked.scope)
            raise retry_later(
                429, "too_many_attempts", "too many failed attempts; try again later", blocked.retry_after
            )

    async def failed(self) -> None:
        async with self.app[POOL].acquire() as conn:
            await rate_limits.record_failure(
                conn, self.app[RATE_LIMITS], user_id=self.uid, address=self.address
            )

    async def succeeded(self) -> None:
        async with self.app[POOL].acquire() as conn:
            await rate_limits.clear_user(conn, self.uid)

    def metadata(self) -> dict[str, Any]:
        return {"request_id": _request_id(), "remote_address": self.address}

    async def ask_nextcloud(self, login_name: str) -> NextcloudUser:
        """Validate the presented password with Nextcloud, mapping its answers to ours."""
        client = self.app.get(NEXTCLOUD)
        if client is None:
            raise ApiError(503, "nextcloud_not_configured", "CREDLEDGER_NEXTCLOUD_URL is not set")
        throttle = self.app[THROTTLE]
        if throttle.remaining() > 0:
            raise retry_later(
                503, "nextcloud_throttled", "Nextcloud is throttling this server", throttle.remaining()
            )
        metrics = self.app[METRICS]
        started = time.perf_counter()

        def outcome(name: str) -> None:
            metrics.nextcloud_call("ocs_user", name, time.perf_counter() - started)

        try:
            user = await client.fetch_user(login_name, self.credentials.password)
        except InvalidCredentials:
            outcome("invalid_credentials")
            await self.failed()
            raise unauthorized("Nextcloud rejected these credentials", challenge=CHALLENGE) from None
        except Throttled as error:
            outcome("throttled")
            paused = throttle.pause(error.retry_after)
            raise retry_later(
                503, "nextcloud_throttled", "Nextcloud is throttling this server", paused
            ) from None
        except NextcloudUnavailable as error:
            outcome("unavailable")
            raise ApiError(
                502, "nextcloud_unavailable", f"Nextcloud did not give a usable answer: {error}"
            ) from None
        outcome("ok")
        throttle.succeeded()
        if user.user_id != self.uid:
            await self.failed()
            raise forbidden("these credentials belong to another Nextcloud user", "user_mismatch")
        if not user.enabled:
            raise forbidden("the Nextcloud account is disabled", "user_disabled")
        return user

    async def authenticate(self) -> bool:
        """Accept the stored password or one Nextcloud accepts; returns whether one is stored and active."""
        await self.check_rate_limits()
        async with self.app[POOL].acquire() as conn:
            record = await get_state(conn, self.uid)
        holding = record is not None and record.state.status in ("active", "suspended")
        if record is not None and holding and record.state.fingerprint is not None:
            matches = fingerprint_matches(
                self.app[MASTER_KEYS], self.uid, self.credentials.password, record.state.fingerprint
            )
            if matches and self.credentials.login in (self.uid, record.state.login_name):
                await self.succeeded()
                return True
        if not plausible_app_password(self.credentials.password):
            await self.failed()
            raise unauthorized("invalid credentials", challenge=CHALLENGE)
        await self.ask_nextcloud(self.credentials.login)
        await self.succeeded()
        return holding


def _request_id() -> str:
    bound = structlog.contextvars.get_contextvars().get("request_id")
    return str(bound) if bound else ""


async def store_app_password(request: web.Request) -> web.Response:
    """Validate the app password with Nextcloud, then seal it and append credential.provisioned."""
    caller = _Caller(request)
    await caller.check_rate_limits()
    body = await _body(request)
    login_name = body.username or caller.credentials.login
    if caller.credentials.login not in (caller.uid, login_name):
        raise forbidden(
            "the Basic user matches neither the user in the path nor the login name", "user_mismatch"
        )
    if not plausible_app_password(caller.credentials.password):
        raise bad_request(
            "an app password has 22 to 256 characters and no white space or control characters",
            "invalid_app_password_format",
        )
    await caller.ask_nextcloud(login_name)
    await caller.succeeded()
    app = request.app
    async with app[POOL].acquire() as conn:
        record = await get_state(conn, caller.uid)
    if (
        record is not None
        and record.state.status == "active"
        and record.state.login_name == login_name
        and list(record.state.scopes) == body.scopes
        and record.state.fingerprint is not None
        and fingerprint_matches(
            app[MASTER_KEYS], caller.uid, caller.credentials.password, record.state.fingerprint
        )
    ):
        answer = Stored(
            message=f"App password already stored for {caller.uid}", user_id=caller.uid, scopes=body.scopes
        )
        return web.json_response(answer.model_dump())
    try:
        appended = await provision_credential(
            app[POOL],
            app[WRITER],
            app[MASTER_KEYS],
            user_id=caller.uid,
            login_name=login_name,
            scopes=body.scopes,
            app_password=caller.credentials.password,
            source=SOURCE,
            metadata=caller.metadata(),
        )
    except InvalidEvent as error:
        raise bad_request(str(error), "invalid_event") from None
    app[METRICS].appended(1)
    log.info("credential.provisioned", user_id=caller.uid, position=appended.position)
    answer = Stored(
        message=f"App password stored for {caller.uid}",
        user_id=caller.uid,
        scopes=body.scopes,
        position=appended.position,
    )
    return web.json_response(answer.model_dump())


async def app_password_status(request: web.Request) -> web.Response:
    """Whether credledger holds an active app password for the user (the caller must prove who they are)."""
    caller = _Caller(request)
    holding = await caller.authenticate()
    return web.json_response(Status(user_id=caller.uid, has_app_password=holding).model_dump())


async def delete_app_password(request: web.Request) -> web.Response:
    """Revoke the stored credential (reason user_request); its data key is destroyed with it."""
    caller = _Caller(request)
    holding = await caller.authenticate()
    if not holding:
        return web.json_response(Deleted(message="No app password found to delete").model_dump())
    appended = await revoke_credential(
        request.app[WRITER],
        user_id=caller.uid,
        reason="user_request",
        source=SOURCE,
        metadata=caller.metadata(),
    )
    request.app[METRICS].appended(1)
    log.info("credential.revoked", user_id=caller.uid, position=appended.position)
    answer = Deleted(message=f"App password deleted for {caller.uid}", position=appended.position)
    return web.json_response(answer.model_dump())


_ERRORS = [
    Answer(400, "malformed path, body or app password format"),
    Answer(401, "missing or invalid credentials"),
    Answer(403, "the credentials belong to another user, or the account is disabled"),
    Answer(429, "too many failed attempts (see Retry-After)"),
    Answer(502, "Nextcloud unreachable, failing, or not answering JSON"),
    Answer(503, "Nextcloud throttling this server, or the database unavailable (see Retry-After)"),
]
_PATH = "/api/v1/users/{uid}/app-password"

ROUTES = [
    RouteSpec(
        "POST",
        _PATH,
        store_app_password,
        "Store the user's app password for background sync",
        "app-password",
        answers=[Answer(200, "stored (or already stored)", Stored), *_ERRORS],
        body=AppPasswordBody,
        body_required=False,
        security=("basicAuth",),
    ),
    RouteSpec(
        "GET",
        _PATH,
        app_password_status,
        "Whether an app password is stored for the user",
        "app-password",
        answers=[Answer(200, "status", Status), *_ERRORS],
        security=("basicAuth",),
    ),
    RouteSpec(
        "DELETE",
        _PATH,
        delete_app_password,
        "Revoke the user's stored app password",
        "app-password",
        answers=[Answer(200, "deleted, or nothing to delete", Deleted), *_ERRORS],
        security=("basicAuth",),
    ),
]


def setup(app: web.Application) -> None:
    register(app, ROUTES)
