"""Bearer tokens for auditors and admins: issuing them, parsing the header, and checking who asks.

A token reads `cl_<role>_<token_id>_<secret>`: the role and id let an operator tell tokens apart
(and a secret scanner recognise them); the secret is 32 random bytes. Only the SHA-256 of the whole
text is stored, in a token.created event and the api_tokens projection, so neither the log nor a
copy of the database lets anyone in. The token text is never logged, echoed or put in an error.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from typing import Literal

import structlog
from aiohttp import web

from events.database import Connection
from events.event_types import TokenCreated
from projections.api_tokens import TOKEN_ROLES, load_token
from receiver.app_keys import POOL
from receiver.errors import forbidden, unauthorized

log = structlog.get_logger(__name__)

Role = Literal["auditor", "admin"]

SECRET_BYTES = 32
TOKEN_ID_HEX_CHARS = 12
# Far above any real header (a token is about 70 characters), far below what could cost anything.
MAX_HEADER_CHARS = 512

_TOKEN = re.compile(r"^cl_(auditor|admin)_([0-9a-f]{12})_([A-Za-z0-9_-]{43})$")
CHALLENGE = "Bearer"
INVALID_CHALLENGE = 'Bearer error="invalid_token"'
# Compared against when the token_id is unknown, so that case takes as long as a wrong secret.
_NO_DIGEST = "0" * 64


class InvalidBearer(ValueError):
    """The Authorization header is missing or not a well-formed credledger bearer token.

    Its message is one of a few fixed sentences: never the header, never the token.
    """


@dataclass(frozen=True, slots=True)
class TokenIdentity:
    """Who presented a valid token: its id, the name it was issued under, and its role."""

    token_id: str
    name: str
    role: str


def token_digest(token: str) -> str:
    """The hex SHA-256 of the whole token text: what is stored in its place."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def issue_token(role: str, name: str) -> tuple[str, TokenCreated]:
    """A new token's text (to be shown once) and the token.created event that holds only its digest."""
    if role not in TOKEN_ROLES:
        raise ValueError(f"role must be one of {', '.join(TOKEN_ROLES)}")
    token_id = secrets.token_hex(TOKEN_ID_HEX_CHARS // 2)
    secret = base64.urlsafe_b64encode(secrets.token_bytes(SECRET_BYTES)).rstrip(b"=").decode("ascii")
    token = f"cl_{role}_{token_id}_{secret}"
    checked: Role = "auditor" if role == "auditor" else "admin"
    return token, TokenCreated(token_id=token_id, name=name, role=checked, digest=token_digest(token))


def parse_token(token: str) -> str:
    """The token_id of a well-formed token text; raises InvalidBearer otherwise."""
    match = _TOKEN.match(token)
    if match is None:
        raise InvalidBearer("the bearer token is not a credledger token")
    return match.group(2)


def parse_bearer(header_value: str | None) -> tuple[str, str]:
    """(token_id, token) from an `Authorization: Bearer …` header value; raises only InvalidBearer."""
    if not header_value:
        raise InvalidBearer("missing Authorization header")
    if not isinstance(header_value, str) or len(header_value) > MAX_HEADER_CHARS:
        raise InvalidBearer("the Authorization header is not a bearer token")
    scheme, _, credentials = header_value.strip().partition(" ")
    if scheme.lower() != "bearer":
        raise InvalidBearer("the Authorization header is not a bearer token")
    token = credentials.strip()
    return parse_token(token), token


async def authenticate(conn: Connection, header_value: str | None) -> TokenIdentity | None:
    """The identity behind a valid, unrevoked token, or None for anything else."""
    try:
        token_id, token = parse_bearer(header_value)
    except InvalidBearer:
        return None
    stored = await load_token(conn, token_id)
    presented = token_digest(token)
    # Constant time, so response times do not reveal how much of a guessed digest was right.
    matches = hmac.compare_digest(stored.digest if stored is not None else _NO_DIGEST, presented)
    if stored is None or not matches or stored.revoked:
        return None
    return TokenIdentity(stored.token_id, stored.name, stored.role)


async def require_role(request: web.Request, role: str) -> TokenIdentity:
    """The caller's identity when it holds a valid token of exactly `role`; raises ApiError otherwise.

    Roles do not nest: an admin token opens admin routes only, an auditor token audit routes only,
    so each can be handed out (and revoked) for one job.
    """
    header = request.headers.get("Authorization")
    if not header:
        raise unauthorized("a bearer token is required", challenge=CHALLENGE)
    identity: TokenIdentity | None = None
    try:
        parse_bearer(header)  # garbage is turned away before a pool connection is taken for it
    except InvalidBearer:
        pass
    else:
        async with request.app[POOL].acquire() as conn:
            identity = await authenticate(conn, header)
    if identity is None:
        log.info("bearer.refused", reason="invalid")
        raise unauthorized(
            "the bearer token is invalid or revoked", challenge=INVALID_CHALLENGE, code="invalid_token"
        )
    # Every log line of the request (the access line included) names the token that made it:
    # the auditors' own reading of the log leaves a trail. The id is not a secret.
    structlog.contextvars.bind_contextvars(caller=f"{identity.role}:{identity.token_id}")
    if identity.role != role:
        log.info("bearer.refused", reason="role", role=identity.role, needed=role)
        raise forbidden(f"this route needs an {role} token", code="wrong_role")
    return identity
