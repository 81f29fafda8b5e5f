"""The audit page's view of the latest signed checkpoint, and whether the log still holds its head."""

from __future__ import annotations

from events.checkpoint_store import latest_checkpoint
from events.database import Connection
from receiver.audit_ui.panels import CheckpointView


async def read_latest_checkpoint(conn: Connection) -> CheckpointView | None:
    """The checkpoint over the longest log, or None when none has been signed yet.

    Only the signed head is compared with the log here (one row); proving the chain from there on
    is `credledger verify --checkpoint`'s work, or the page's "verify" button from the genesis.
    """
    checkpoint = await latest_checkpoint(conn)
    if checkpoint is None:
        return None
    if checkpoint.log_size == 0:
        holds = True
    else:
        stored = await conn.fetchval("SELECT hash FROM events WHERE position = $1", checkpoint.log_size)
        holds = stored is not None and bytes(stored) == checkpoint.head_hash
    return CheckpointView(
        size=checkpoint.log_size,
        head_hash=checkpoint.head_hash.hex(),
        signed_at=checkpoint.signed_at,
        key_id=checkpoint.key_id,
        log_holds_head=holds,
    )
