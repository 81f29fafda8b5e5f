"""The user_keys table: create, load, shred and rewrap the data keys that seal app passwords."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from events.crypto import MasterKeyRing, WrappedKey, generate_key, unwrap_data_key, wrap_data_key
from events.database import Connection


@dataclass(frozen=True, slots=True)
class DataKey:
    """A usable data key: its id (recorded in events) and its bytes (never logged)."""

    key_id: str
    key: bytes = field(repr=False)


async def create_data_key(conn: Connection, ring: MasterKeyRing, user_id: str) -> DataKey:
    """A fresh data key for one provisioning, stored wrapped under the newest master key.

    Each provisioning gets its own key, so revoking an old credential can never destroy the key of
    a newer one that is being provisioned at the same moment.
    """
    key_id = f"dk_{uuid.uuid4().hex}"
    key = generate_key()
    wrapped = wrap_data_key(ring, user_id, key_id, key)
    await conn.execute(
        "INSERT INTO user_keys (key_id, user_id, master_key_id, nonce, wrapped_key)"
        " VALUES ($1, $2, $3, $4, $5)",
        key_id,
        user_id,
        wrapped.master_key_id,
        wrapped.nonce,
        wrapped.ciphertext,
    )
    return DataKey(key_id, key)


async def load_data_key(conn: Connection, ring: MasterKeyRing, user_id: str, key_id: str) -> DataKey | None:
    """The data key `key_id` of `user_id`, or None once it has been shredded."""
    row = await conn.fetchrow(
        "SELECT master_key_id, nonce, wrapped_key FROM user_keys WHERE key_id = $1 AND user_id = $2",
        key_id,
        user_id,
    )
    if row is None:
        return None
    return unwrap_stored(ring, user_id, key_id, row["master_key_id"], row["nonce"], row["wrapped_key"])


def unwrap_stored(
    ring: MasterKeyRing, user_id: str, key_id: str, master_key_id: str, nonce: bytes, wrapped_key: bytes
) -> DataKey:
    """A data key from the columns of its user_keys row (for callers that joined it in themselves)."""
    wrapped = WrappedKey(master_key_id, bytes(nonce), bytes(wrapped_key))
    return DataKey(key_id, unwrap_data_key(ring, user_id, key_id, wrapped))


async def shred_keys(conn: Connection, key_ids: Sequence[str]) -> int:
    """Destroy data keys for good; returns how many existed."""
    if not key_ids:
        return 0
    status = await conn.execute("DELETE FROM user_keys WHERE key_id = ANY($1::text[])", list(key_ids))
    return int(status.split()[-1])


async def count_keys_to_rewrap(conn: Connection, ring: MasterKeyRing) -> int:
    """How many data keys are wrapped by a master key other than the newest."""
    return int(
        await conn.fetchval("SELECT count(*) FROM user_keys WHERE master_key_id <> $1", ring.newest.key_id)
    )


async def rewrap_batch(conn: Connection, ring: MasterKeyRing, batch_size: int = 500) -> int:
    """Rewrap up to `batch_size` keys under the newest master key, in one transaction.

    Rows are locked with SKIP LOCKED, so two rotations (or a rotation and a revocation) never
    wait on each other; a key shredded meanwhile is simply gone.
    """
    newest = ring.newest
    async with conn.transaction():
        rows = await conn.fetch(
            """
            SELECT key_id, user_id, master_key_id, nonce, wrapped_key FROM user_keys
            WHERE master_key_id <> $1 ORDER BY key_id LIMIT $2 FOR UPDATE SKIP LOCKED
            """,
            newest.key_id,
            batch_size,
        )
        updates = []
        for row in rows:
            old = WrappedKey(row["master_key_id"], bytes(row["nonce"]), bytes(row["wrapped_key"]))
            key = unwrap_data_key(ring, row["user_id"], row["key_id"], old)
            new = wrap_data_key(ring, row["user_id"], row["key_id"], key)
            updates.append((row["key_id"], new.master_key_id, new.nonce, new.ciphertext))
        if updates:
            await conn.executemany(
                """
                UPDATE user_keys SET master_key_id = $2, nonce = $3, wrapped_key = $4, rewrapped_at = now()
                WHERE key_id = $1
                """,
                updates,
            )
    return len(rows)


async def rewrap_all(
    conn: Connection,
    ring: MasterKeyRing,
    batch_size: int = 500,
    progress: Callable[[int], None] | None = None,
) -> int:
    """Rewrap every key not under the newest master key, batch by batch; returns the count."""
    total = 0
    while True:
        done = await rewrap_batch(conn, ring, batch_size)
        if done == 0:
            return total
        total += done
        if progress is not None:
            progress(total)
