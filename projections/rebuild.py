"""Rebuild the credential projection from the whole log, compare it with the live table, swap it in.

The replay runs in one REPEATABLE READ transaction, so the rebuilt rows and the live rows it is
compared with come from the same snapshot even while the service keeps appending. The swap takes
the append lock, folds in whatever was appended since the snapshot, and makes the live rows equal
the rebuilt ones in one transaction, changing only rows that differ and keeping each user's sync
bookkeeping (which is not in the log).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from events.append import APPEND_LOCK_KEY
from events.database import Connection
from events.reading import head
from projections.credential_store import (
    DERIVED_COLUMNS,
    PROJECTION_NAME,
    SYNC_COLUMNS,
    state_columns,
)
from projections.replay import States, replay_in_parallel, replay_partition

# Below this many events, starting worker processes costs more than it saves.
PARALLEL_THRESHOLD = 200_000

SHADOW = "credential_state_shadow"


@dataclass(frozen=True, slots=True)
class Difference:
    """One column of one user where the live table and the replayed log disagree."""

    user_id: str
    column: str
    live: Any
    rebuilt: Any


@dataclass(slots=True)
class RebuildReport:
    """What a rebuild found, and whether it replaced the live rows."""

    events: int = 0
    users: int = 0
    head_position: int = 0
    differences: list[Difference] = field(default_factory=list)
    swapped: bool = False


async def _write_shadow(
    conn: Connection, states: States, batch_size: int, only: set[str] | None = None
) -> None:
    """Write `states` into the shadow table: all of them, or replace just the users in `only`."""
    if only is None:
        await conn.execute(f"DROP TABLE IF EXISTS {SHADOW}")
        await conn.execute(f"CREATE TEMP TABLE {SHADOW} (LIKE credential_state INCLUDING DEFAULTS)")
        chosen = [s for s in states.values() if s is not None]
    else:
        await conn.execute(f"DELETE FROM {SHADOW} WHERE user_id = ANY($1::text[])", list(only))
        chosen = [s for user in only if (s := states.get(user)) is not None]
    rows = [state_columns(s) for s in chosen]
    for start in range(0, len(rows), batch_size):
        await conn.copy_records_to_table(
            SHADOW, records=rows[start : start + batch_size], columns=DERIVED_COLUMNS
        )
    # As the inline projection does for a new credential: due at once. Live bookkeeping, where a
    # row already exists, replaces this at swap time.
    await conn.execute(f"UPDATE {SHADOW} SET next_sync_at = provisioned_at WHERE next_sync_at IS NULL")


async def _make_live_equal_shadow(conn: Connection) -> None:
    """Turn the live rows into the shadow's, touching only rows that differ; sync bookkeeping stays.

    In one transaction, so readers see the old rows or the new, never a mix. A faithful projection
    (the usual case) changes nothing at all.
    """
    derived = ", ".join(DERIVED_COLUMNS)
    live_derived = ", ".join("l." + c for c in DERIVED_COLUMNS)
    shadow_derived = ", ".join("r." + c for c in DERIVED_COLUMNS)
    await conn.execute(
        f"DELETE FROM credential_state l"
        f" WHERE NOT EXISTS (SELECT 1 FROM {SHADOW} r WHERE r.user_id = l.user_id)"
    )
    await conn.execute(
        f"""
        UPDATE credential_state l SET ({derived}) = ({shadow_derived})
        FROM {SHADOW} r
        WHERE r.user_id = l.user_id AND ({live_derived}) IS DISTINCT FROM ({shadow_derived})
        """
    )
    columns = ", ".join((*DERIVED_COLUMNS, *SYNC_COLUMNS))
    await conn.execute(
        f"""
        INSERT INTO credential_state ({columns})
        SELECT {", ".join("r." + c for c in (*DERIVED_COLUMNS, *SYNC_COLUMNS))} FROM {SHADOW} r
        WHERE NOT EXISTS (SELECT 1 FROM credential_state l WHERE l.user_id = r.user_id)
        """
    )


def _expressions(table: str) -> str:
    return ", ".join(f"{table}.{c}::text" if c == "scopes" else f"{table}.{c}" for c in DERIVED_COLUMNS)


async def _differences(conn: Connection) -> list[Difference]:
    width = len(DERIVED_COLUMNS)
    rows = await conn.fetch(
        f"""
        SELECT {_expressions("l")}, {_expressions("r")}
        FROM credential_state l FULL JOIN {SHADOW} r ON r.user_id = l.user_id
        WHERE ({", ".join("l." + c for c in DERIVED_COLUMNS)})
              IS DISTINCT FROM ({", ".join("r." + c for c in DERIVED_COLUMNS)})
        ORDER BY coalesce(l.user_id, r.user_id)
        """
    )
    found: list[Difference] = []
    for row in rows:
        live_values, rebuilt_values = tuple(row)[:width], tuple(row)[width:]
        user_id = live_values[0] if live_values[0] is not None else rebuilt_values[0]
        for column, a, b in zip(DERIVED_COLUMNS, live_values, rebuilt_values, strict=True):
            if a != b:
                found.append(Difference(user_id, column, a, b))
    return found


async def rebuild_credentials(
    conn: Connection,
    *,
    check_only: bool,
    progress: Callable[[int], None] | None = None,
    batch_size: int = 5_000,
    url: str | None = None,
    workers: int = 1,
    parallel_threshold: int = PARALLEL_THRESHOLD,
) -> RebuildReport:
    """Replay the log into a shadow table and compare; unless `check_only`, swap it in.

    `conn` must be the owner's connection: the swap replaces every row of credential_state.
    With `url` and `workers` > 1, a log of more than PARALLEL_THRESHOLD events is replayed by that
    many processes, each folding the users of one partition (`parallel_threshold` moves that bar).
    """
    report = RebuildReport()
    states: States = {}
    async with conn.transaction(isolation="repeatable_read"):
        last = await head(conn)
        report.head_position = last[0] if last else 0
        if url is not None and workers > 1 and report.head_position > parallel_threshold:
            states, report.events = await replay_in_parallel(conn, url, workers, progress)
        else:
            done = 0

            def advance(count: int) -> None:
                nonlocal done
                done += count
                if progress is not None:
                    progress(done)

            report.events = await replay_partition(conn, states, progress=advance)
        await _write_shadow(conn, states, batch_size)
        report.differences = await _differences(conn)
    report.users = sum(1 for s in states.values() if s is not None)
    if check_only:
        await conn.execute(f"DROP TABLE IF EXISTS {SHADOW}")
        return report
    async with conn.transaction():
        # Appends wait while the rows are replaced, so nothing lands between replay and swap.
        await conn.execute("SELECT pg_advisory_xact_lock($1)", APPEND_LOCK_KEY)
        touched: set[str] = set()
        report.events += await replay_partition(conn, states, after=report.head_position, touched=touched)
        last = await head(conn)
        report.head_position = last[0] if last else 0
        await _write_shadow(conn, states, batch_size, only=touched)
        await _make_live_equal_shadow(conn)
        await conn.execute(
            """
            INSERT INTO projection_checkpoints (name, position, hash)
            SELECT $1, position, hash FROM events WHERE position = $2
            ON CONFLICT (name) DO UPDATE SET position = EXCLUDED.position, hash = EXCLUDED.hash,
                                             updated_at = now()
            """,
            PROJECTION_NAME,
            report.head_position,
        )
        await conn.execute(f"DROP TABLE {SHADOW}")
    report.users = sum(1 for s in states.values() if s is not None)
    report.swapped = True
    return report
