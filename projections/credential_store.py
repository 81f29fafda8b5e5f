"""Where the credential projection lives: read, fold and write credential_state inside the append.

`project_credentials` is an inline hook of the append path: it runs in the transaction that
appends the events, so a read right after a 2xx sees the new state, and a crash can never leave
the projection behind the log. It is also where keys are shredded: when a user's state stops
referring to a data key (revoked, invalidated, deleted, or replaced by a new provisioning), that
key is deleted in the same transaction, so the ciphertext left in the log can never be read again.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import asyncpg

from events.database import Connection
from events.envelope import RecordedEvent
from projections.credential_state import CredentialState, apply, concerns_credentials

PROJECTION_NAME = "credential_state"

# Columns folded from the log, in table order. Everything after them is sync bookkeeping.
DERIVED_COLUMNS = (
    "user_id",
    "status",
    "login_name",
    "scopes",
    "fingerprint",
    "key_id",
    "credential_position",
    "provisioned_at",
    "revoked_at",
    "reason",
    "user_disabled",
    "last_position",
)
SYNC_COLUMNS = (
    "next_sync_at",
    "last_sync_at",
    "last_sync_status",
    "consecutive_failures",
    "lease_owner",
    "lease_until",
)


def select_list(columns: Sequence[str], table: str = "credential_state") -> str:
    """A SELECT list for `columns` of `table`, with scopes as JSON text (decoded by state_from_row)."""
    return ", ".join(
        f"{table}.scopes::text AS scopes" if column == "scopes" else f"{table}.{column}" for column in columns
    )


def state_from_row(row: asyncpg.Record | dict[str, Any]) -> CredentialState:
    """A credential_state row's derived columns as a CredentialState."""
    return CredentialState(
        user_id=row["user_id"],
        status=row["status"],
        login_name=row["login_name"],
        scopes=tuple(json.loads(row["scopes"])),
        fingerprint=row["fingerprint"],
        key_id=row["key_id"],
        credential_position=row["credential_position"],
        provisioned_at=row["provisioned_at"],
        revoked_at=row["revoked_at"],
        reason=row["reason"],
        user_disabled=row["user_disabled"],
        last_position=row["last_position"],
    )


def state_columns(state: CredentialState) -> tuple[Any, ...]:
    """The derived columns' values, in DERIVED_COLUMNS order (scopes as JSON text)."""
    return (
        state.user_id,
        state.status,
        state.login_name,
        json.dumps(list(state.scopes)),
        state.fingerprint,
        state.key_id,
        state.credential_position,
        state.provisioned_at,
        state.revoked_at,
        state.reason,
        state.user_disabled,
        state.last_position,
    )


async def load_states(conn: Connection, user_ids: Sequence[str]) -> dict[str, CredentialState]:
    """The stored states of `user_ids` (absent users are absent from the result)."""
    rows = await conn.fetch(
        f"SELECT {select_list(DERIVED_COLUMNS)} FROM credential_state WHERE user_id = ANY($1::text[])",
        list(user_ids),
    )
    return {row["user_id"]: state_from_row(row) for row in rows}


# One statement writes everything: changed states, shredded keys and the checkpoint. A new
# credential (credential_position changed) also resets the sync bookkeeping: due at once.
_WRITE = """
WITH changed AS (
    SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[],
                         $7::bigint[], $8::timestamptz[], $9::timestamptz[], $10::text[],
                         $11::boolean[], $12::bigint[])
        AS u(user_id, status, login_name, scopes, fingerprint, key_id, credential_position,
             provisioned_at, revoked_at, reason, user_disabled, last_position)
), upserted AS (
    INSERT INTO credential_state AS s (user_id, status, login_name, scopes, fingerprint, key_id,
        credential_position, provisioned_at, revoked_at, reason, user_disabled, last_position,
        next_sync_at)
    SELECT user_id, status, login_name, scopes::jsonb, fingerprint, key_id, credential_position,
           provisioned_at, revoked_at, reason, user_disabled, last_position, provisioned_at
    FROM changed
    ON CONFLICT (user_id) DO UPDATE SET
        status = EXCLUDED.status,
        login_name = EXCLUDED.login_name,
        scopes = EXCLUDED.scopes,
        fingerprint = EXCLUDED.fingerprint,
        key_id = EXCLUDED.key_id,
        credential_position = EXCLUDED.credential_position,
        provisioned_at = EXCLUDED.provisioned_at,
        revoked_at = EXCLUDED.revoked_at,
        reason = EXCLUDED.reason,
        user_disabled = EXCLUDED.user_disabled,
        last_position = EXCLUDED.last_position,
        next_sync_at = CASE WHEN s.credential_position IS DISTINCT FROM EXCLUDED.credential_position
                            THEN EXCLUDED.next_sync_at ELSE s.next_sync_at END,
        last_sync_at = CASE WHEN s.credential_position IS DISTINCT FROM EXCLUDED.credential_position
                            THEN NULL ELSE s.last_sync_at END,
        last_sync_status = CASE WHEN s.credential_position IS DISTINCT FROM EXCLUDED.credential_position
                                THEN NULL ELSE s.last_sync_status END,
        consecutive_failures = CASE WHEN s.credential_position IS DISTINCT FROM EXCLUDED.credential_position
                                    THEN 0 ELSE s.consecutive_failures END,
        lease_owner = CASE WHEN s.credential_position IS DISTINCT FROM EXCLUDED.credential_position
                           THEN NULL ELSE s.lease_owner END,
        lease_until = CASE WHEN s.credential_position IS DISTINCT FROM EXCLUDED.credential_position
                           THEN NULL ELSE s.lease_until END
    RETURNING 1
), shredded AS (
    DELETE FROM user_keys WHERE key_id = ANY($13::text[]) RETURNING 1
)
INSERT INTO projection_checkpoints (name, position, hash, updated_at)
VALUES ($14, $15, $16, now())
ON CONFLICT (name) DO UPDATE SET position = EXCLUDED.position, hash = EXCLUDED.hash, updated_at = now()
"""


async def write_states(
    conn: Connection,
    states: Sequence[CredentialState],
    shredded_key_ids: Sequence[str],
    checkpoint: RecordedEvent,
) -> None:
    """Upsert `states`, delete `shredded_key_ids` and move the checkpoint, in one statement."""
    columns: list[list[Any]] = [[] for _ in DERIVED_COLUMNS]
    for state in states:
        for column, value in zip(columns, state_columns(state), strict=True):
            column.append(value)
    await conn.execute(
        _WRITE, *columns, list(shredded_key_ids), PROJECTION_NAME, checkpoint.position, checkpoint.hash
    )


def fold_batch(
    before: dict[str, CredentialState], events: Sequence[RecordedEvent]
) -> tuple[list[CredentialState], list[str]]:
    """The states `events` changed, and the data keys no state refers to any more."""
    states: dict[str, CredentialState | None] = dict(before)
    keys_seen: set[str] = {s.key_id for s in before.values() if s.key_id is not None}
    for event in events:
        if concerns_credentials(event):
            state = apply(states.get(event.stream), event)
            states[event.stream] = state
            if state is not None and state.key_id is not None:
                keys_seen.add(state.key_id)
    after = {user: state for user, state in states.items() if state is not None}
    still_used = {s.key_id for s in after.values() if s.key_id is not None}
    changed = [state for user, state in after.items() if before.get(user) != state]
    return changed, sorted(keys_seen - still_used)


async def project_credentials(conn: Connection, events: Sequence[RecordedEvent]) -> None:
    """The append hook: fold `events` into credential_state and shred keys no longer used."""
    users = list(dict.fromkeys(e.stream for e in events if concerns_credentials(e)))
    before = await load_states(conn, users) if users else {}
    changed, shredded = fold_batch(before, events)
    await write_states(conn, changed, shredded, events[-1])


async def shred_orphaned_keys(conn: Connection, older_than_seconds: int = 3600) -> int:
    """Destroy data keys no credential refers to: provisionings that never reached the log."""
    status = await conn.execute(
        """
        DELETE FROM user_keys k
        WHERE k.created_at < now() - make_interval(secs => $1)
          AND NOT EXISTS (SELECT 1 FROM credential_state s WHERE s.key_id = k.key_id)
        """,
        float(older_than_seconds),
    )
    return int(status.split()[-1])
