"""The admin's API: a user's projected credential and its sync bookkeeping, never the secret itself."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from aiohttp import web
from pydantic import BaseModel

from projections.queries import CredentialRecord, get_state
from receiver.app_keys import POOL
from receiver.bearer_tokens import require_role
from receiver.errors import ApiError
from receiver.routes.audit import path_user_id
from receiver.routing import Answer, RouteSpec, register

ADMIN = "admin"


class SyncOut(BaseModel):
    """When the user is next due for sync, how the last one went, and which replica holds them."""

    next_sync_at: datetime | None
    last_sync_at: datetime | None
    last_sync_status: str | None
    consecutive_failures: int
    lease_owner: str | None
    lease_until: datetime | None


class CredentialOut(BaseModel):
    """A user's credential as projected from the log: what it is for and where it stands."""

    user_id: str
    status: str
    login_name: str | None
    scopes: list[str]
    fingerprint: str | None
    provisioned_at: datetime | None
    revoked_at: datetime | None
    reason: str | None
    user_disabled: bool
    credential_position: int | None
    last_position: int
    sync: SyncOut


def _time(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def credential_json(record: CredentialRecord) -> dict[str, Any]:
    """The record in the shape of CredentialOut.

    Built field by field rather than from the whole row, so a column added later (a key id, a
    sealed secret) cannot reach a response by accident.
    """
    state, sync = record.state, record.sync
    return {
        "user_id": state.user_id,
        "status": state.status,
        "login_name": state.login_name,
        "scopes": list(state.scopes),
        "fingerprint": state.fingerprint,
        "provisioned_at": _time(state.provisioned_at),
        "revoked_at": _time(state.revoked_at),
        "reason": state.reason,
        "user_disabled": state.user_disabled,
        "credential_position": state.credential_position,
        "last_position": state.last_position,
        "sync": {
            "next_sync_at": _time(sync.next_sync_at),
            "last_sync_at": _time(sync.last_sync_at),
            "last_sync_status": sync.last_sync_status,
            "consecutive_failures": sync.consecutive_failures,
            "lease_owner": sync.lease_owner,
            "lease_until": _time(sync.lease_until),
        },
    }


async def user_credential(request: web.Request) -> web.Response:
    """The user's projected credential; 404 when they never provisioned one."""
    await require_role(request, ADMIN)
    uid = path_user_id(request)
    async with request.app[POOL].acquire() as conn:
        record = await get_state(conn, uid)
    if record is None:
        raise ApiError(404, "no_credential", "this user never provisioned a credential")
    return web.json_response(credential_json(record))


ROUTES = [
    RouteSpec(
        "GET",
        "/api/v1/users/{uid}/credential",
        user_credential,
        "A user's projected credential and sync bookkeeping (never the secret or key material)",
        "admin",
        answers=[
            Answer(200, "the projected credential", CredentialOut),
            Answer(400, "the user id is not a valid Nextcloud user id"),
            Answer(401, "no bearer token, or one that is invalid or revoked"),
            Answer(403, "a valid token without the admin role"),
            Answer(404, "this user never provisioned a credential"),
            Answer(503, "the database is unavailable (see Retry-After)"),
        ],
        security=("bearerAuth",),
    ),
]


def setup(app: web.Application) -> None:
    register(app, ROUTES)
