"""The api_tokens projection: bearer tokens folded from the system stream's token events, and lookups."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

import asyncpg
import structlog

from events.database import Connection
from events.envelope import SYSTEM_STREAM, RecordedEvent
from events.event_types import TokenCreated, TokenRevoked

log = structlog.get_logger(__name__)

TOKEN_ROLES = ("auditor", "admin")
TOKEN_ID = re.compile(r"^[0-9a-f]{12}$")
_DIGEST = re.compile(r"^[0-9a-f]{64}$")
_TOKEN_TYPES = frozenset({TokenCreated.TYPE, TokenRevoked.TYPE})
_NAME_LIMIT = 256


@dataclass(frozen=True, slots=True)
class ApiToken:
    """One api_tokens row. The digest is kept out of the repr, so no log line or traceback shows it."""

    token_id: str
    name: str
    role: str
    digest: str = field(repr=False)
    created_at: datetime
    created_position: int
    revoked_at: datetime | None
    revoked_position: int | None

    @property
    def revoked(self) -> bool:
        return self.revoked_at is not None


# A token_id is created once: a later token.created for the same id must not replace the digest,
# or whoever could append one would take the token over.
_CREATE = """
INSERT INTO api_tokens (token_id, name, role, digest, created_at, created_position)
VALUES ($1, $2, $3, $4, $5, $6)
ON CONFLICT (token_id) DO NOTHING
"""

# The first revocation is the one that counts; revoking an unknown token changes nothing.
_REVOKE = """
UPDATE api_tokens SET revoked_at = $2, revoked_position = $3
WHERE token_id = $1 AND revoked_at IS NULL
"""


def _is_token_event(event: RecordedEvent) -> bool:
    return event.stream == SYSTEM_STREAM and event.type in _TOKEN_TYPES


def _created(event: RecordedEvent) -> TokenCreated | None:
    try:
        created = TokenCreated.from_data(TokenCreated.upcast(event.data, event.schema_version))
    except (KeyError, TypeError, ValueError):
        return None
    plausible = (
        isinstance(created.token_id, str)
        and TOKEN_ID.match(created.token_id) is not None
        and created.role in TOKEN_ROLES
        and isinstance(created.digest, str)
        and _DIGEST.match(created.digest) is not None
        and isinstance(created.name, str)
        and 0 < len(created.name) <= _NAME_LIMIT
    )
    return created if plausible else None


def _revoked(event: RecordedEvent) -> TokenRevoked | None:
    try:
        revoked = TokenRevoked.from_data(TokenRevoked.upcast(event.data, event.schema_version))
    except (KeyError, TypeError, ValueError):
        return None
    return revoked if isinstance(revoked.token_id, str) and TOKEN_ID.match(revoked.token_id) else None


async def project_tokens(conn: Connection, events: Sequence[RecordedEvent]) -> None:
    """The append hook: apply the batch's token.created / token.revoked events to api_tokens.

    It runs on every batch of the append path, so a batch without token events costs one scan of
    the batch and no database work. A token event it cannot read is logged and skipped rather than
    raised: raising would roll back every other event sharing the batch's transaction.
    """
    for event in events:
        if not _is_token_event(event):
            continue
        # In log order, one statement each: token events are rare (an operator's command), and
        # order matters when one batch both creates and revokes a token.
        if event.type == TokenCreated.TYPE:
            created = _created(event)
            if created is None:
                log.warning("api_tokens.unreadable_event", position=event.position, type=event.type)
                continue
            await conn.execute(
                _CREATE,
                created.token_id,
                created.name,
                created.role,
                created.digest,
                event.recorded_at,
                event.position,
            )
        else:
            revoked = _revoked(event)
            if revoked is None:
                log.warning("api_tokens.unreadable_event", position=event.position, type=event.type)
                continue
            await conn.execute(_REVOKE, revoked.token_id, event.recorded_at, event.position)


_COLUMNS = "token_id, name, role, digest, created_at, created_position, revoked_at, revoked_position"


def _token(row: asyncpg.Record) -> ApiToken:
    return ApiToken(
        token_id=row["token_id"],
        name=row["name"],
        role=row["role"],
        digest=row["digest"],
        created_at=row["created_at"],
        created_position=row["created_position"],
        revoked_at=row["revoked_at"],
        revoked_position=row["revoked_position"],
    )


async def load_token(conn: Connection, token_id: str) -> ApiToken | None:
    """The token with this id, revoked or not, or None if no such token was ever created."""
    row = await conn.fetchrow(f"SELECT {_COLUMNS} FROM api_tokens WHERE token_id = $1", token_id)
    return None if row is None else _token(row)


async def list_tokens(conn: Connection) -> list[ApiToken]:
    """Every token ever created, oldest first."""
    rows = await conn.fetch(f"SELECT {_COLUMNS} FROM api_tokens ORDER BY created_position")
    return [_token(row) for row in rows]
