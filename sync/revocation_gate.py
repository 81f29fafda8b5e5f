"""The handshake that keeps a revoked credential from being used after the revocation is answered.

A sync takes a shared advisory lock for the user, then (in a later statement, so that it reads
after the lock) checks that the credential is still the active one, and keeps the lock until its
request's headers are on the wire. Whoever revokes appends (and commits) first, then takes the
same lock exclusively, once, before answering 2xx: that waits out any sync that checked before the
commit and is still starting its request. A sync that checks after the commit sees the revocation
and makes no call. So after the 2xx, no new request starts.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager

import asyncpg

from events.database import Connection

# The first key of the two-key advisory locks, so these never collide with the log's own locks.
LOCK_CLASS = 0x63726564  # "cred"


class CredentialWithdrawn(Exception):
    """The credential is no longer the active one: do not call Nextcloud with it."""


class SyncGate:
    """The passages of one sync's requests, on the connection the sync holds."""

    def __init__(self, conn: Connection, user_id: str) -> None:
        self._conn = conn
        self._user_id = user_id
        self._held = False

    @asynccontextmanager
    async def passage(self, *, locked: bool = False) -> AsyncIterator[None]:
        """Hold the user's shared lock from here until `request_started` (or the end of the block).

        Check the credential inside the block, after entering: the lock must be held before the
        check's snapshot is taken. `locked`: the caller's first statement in the block takes the
        lock itself (sync_gate_open), saving a round trip; it is released all the same.
        """
        if not locked:
            await self._conn.execute(
                "SELECT pg_advisory_lock_shared($1, hashtext($2))", LOCK_CLASS, self._user_id
            )
        self._held = True
        try:
            yield
        finally:
            await self.request_started()

    async def request_started(self) -> None:
        """The request is on the wire (or will not be made): a revocation may complete now."""
        if self._held:
            self._held = False
            await self._conn.execute(
                "SELECT pg_advisory_unlock_shared($1, hashtext($2))", LOCK_CLASS, self._user_id
            )


async def still_active(conn: Connection, user_id: str, credential_position: int) -> bool:
    """Whether the credential at `credential_position` is still the user's active one."""
    found = await conn.fetchval(
        "SELECT 1 FROM credential_state"
        " WHERE user_id = $1 AND status = 'active' AND credential_position = $2",
        user_id,
        credential_position,
    )
    return found is not None


async def wait_for_sync_starts(pool: asyncpg.Pool, user_ids: Sequence[str]) -> None:
    """After a revocation committed: wait until no sync that checked before it is still starting."""
    if not user_ids:
        return
    async with pool.acquire() as conn:
        for user_id in user_ids:
            await conn.execute("SELECT pg_advisory_lock($1, hashtext($2))", LOCK_CLASS, user_id)
            await conn.execute("SELECT pg_advisory_unlock($1, hashtext($2))", LOCK_CLASS, user_id)
