"""The handshake that keeps a revoked credential from being used after the revocation is answered.

A sync takes a shared advisory lock for the user, checks that the credential is still the active
one, and keeps the lock until its request's headers are on the wire. Whoever revokes appends
(and commits) first, then takes the same lock exclusively, once, before answering 2xx: that waits
out any sync that checked before the commit and is still starting its request. A sync that checks
after the commit sees the revocation and makes no call. So after the 2xx, no new request starts.
"""

from __future__ import annotations

from collections.abc import Sequence

import asyncpg
from asyncpg.pool import PoolConnectionProxy

# The first key of the two-key advisory locks, so these never collide with the log's own locks.
_LOCK_CLASS = 0x63726564  # "cred"


class CredentialWithdrawn(Exception):
    """The credential is no longer the active one: do not call Nextcloud with it."""


class SyncGate:
    """One request's passage: hold the user's shared lock from the check until the request starts."""

    def __init__(self, pool: asyncpg.Pool, user_id: str, credential_position: int) -> None:
        self._pool = pool
        self._user_id = user_id
        self._position = credential_position
        self._conn: PoolConnectionProxy | None = None
        self._held = False

    async def __aenter__(self) -> SyncGate:
        self._conn = await self._pool.acquire()
        try:
            await self._conn.execute(
                "SELECT pg_advisory_lock_shared($1, hashtext($2))", _LOCK_CLASS, self._user_id
            )
            self._held = True
            still_active = await self._conn.fetchval(
                "SELECT count(*) FROM credential_state"
                " WHERE user_id = $1 AND status = 'active' AND credential_position = $2",
                self._user_id,
                self._position,
            )
            if not still_active:
                raise CredentialWithdrawn(self._user_id)
        except BaseException:
            await self._close()
            raise
        return self

    @property
    def conn(self) -> PoolConnectionProxy:
        """The gate's connection: use it for the reads of this passage rather than taking another."""
        assert self._conn is not None, "the gate is not open"
        return self._conn

    async def request_started(self) -> None:
        """The request is on the wire: a revocation may complete now."""
        if self._held and self._conn is not None:
            self._held = False
            await self._conn.execute(
                "SELECT pg_advisory_unlock_shared($1, hashtext($2))", _LOCK_CLASS, self._user_id
            )

    async def __aexit__(self, *exc: object) -> None:
        await self._close()

    async def _close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is None:
            return
        try:
            if self._held:
                self._held = False
                await conn.execute(
                    "SELECT pg_advisory_unlock_shared($1, hashtext($2))", _LOCK_CLASS, self._user_id
                )
        finally:
            await self._pool.release(conn)


async def wait_for_sync_starts(pool: asyncpg.Pool, user_ids: Sequence[str]) -> None:
    """After a revocation committed: wait until no sync that checked before it is still starting."""
    if not user_ids:
        return
    async with pool.acquire() as conn:
        for user_id in user_ids:
            await conn.execute("SELECT pg_advisory_lock($1, hashtext($2))", _LOCK_CLASS, user_id)
            await conn.execute("SELECT pg_advisory_unlock($1, hashtext($2))", _LOCK_CLASS, user_id)
