"""Questions the other layers ask of the credential projection: one user's state, history, due work."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import asyncpg

from events.database import Connection
from events.envelope import RecordedEvent
from events.reading import read_stream
from projections.credential_state import CredentialState
from projections.credential_store import DERIVED_COLUMNS, SYNC_COLUMNS, select_list, state_from_row


@dataclass(frozen=True, slots=True)
class SyncBookkeeping:
    """The sync columns of a credential_state row: when it is due, how it went, who holds it."""

    next_sync_at: datetime | None
    last_sync_at: datetime | None
    last_sync_status: str | None
    consecutive_failures: int
    lease_owner: str | None
    lease_until: datetime | None


@dataclass(frozen=True, slots=True)
class CredentialRecord:
    """A whole credential_state row: the projected state and its sync bookkeeping."""

    state: CredentialState
    sync: SyncBookkeeping


def _record(row: asyncpg.Record) -> CredentialRecord:
    return CredentialRecord(
        state_from_row(row),
        SyncBookkeeping(**{column: row[column] for column in SYNC_COLUMNS}),
    )


_ALL_COLUMNS = (*DERIVED_COLUMNS, *SYNC_COLUMNS)


async def get_state(conn: Connection, user_id: str) -> CredentialRecord | None:
    """The user's projected credential, or None if they never provisioned one."""
    row = await conn.fetchrow(
        f"SELECT {select_list(_ALL_COLUMNS)} FROM credential_state WHERE user_id = $1", user_id
    )
    return None if row is None else _record(row)


async def history(conn: Connection, user_id: str) -> list[RecordedEvent]:
    """Every event of the user's stream, oldest first: the credential's timeline."""
    return await read_stream(conn, user_id)


async def claim_due_users(
    conn: Connection, *, limit: int, lease_seconds: float, owner: str
) -> list[CredentialRecord]:
    """Lease up to `limit` active users whose sync is due and whose lease has expired.

    FOR UPDATE SKIP LOCKED lets any number of replicas claim at once without waiting on or
    double-claiming each other's rows; the lease keeps a claimed user away from other replicas
    until it expires, even after this transaction commits.
    """
    rows = await conn.fetch(
        f"""
        UPDATE credential_state
        SET lease_owner = $2, lease_until = now() + make_interval(secs => $3)
        FROM (
            SELECT user_id FROM credential_state
            WHERE status = 'active' AND next_sync_at <= now()
              AND (lease_until IS NULL OR lease_until < now())
            ORDER BY next_sync_at
            LIMIT $1
            FOR UPDATE SKIP LOCKED
        ) AS due
        WHERE credential_state.user_id = due.user_id
        RETURNING {select_list(_ALL_COLUMNS)}
        """,
        limit,
        owner,
        float(lease_seconds),
    )
    return [_record(row) for row in rows]
