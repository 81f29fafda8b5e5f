"""`credledger migrate` and `credledger verify` as an operator runs them."""

from __future__ import annotations

import asyncio

import asyncpg
import pytest

from events.writer import GroupCommitWriter
from tests.e2e.processes import credledger
from tests.factories import new_event


async def run(*args: str, url: str) -> tuple[int, str, str]:
    done = await asyncio.to_thread(credledger, *args, database_url=url)
    return done.returncode, done.stdout, done.stderr


async def test_migrate_applies_then_finds_nothing_to_do(empty_database_url: str) -> None:
    """The first run names the files it applied; the second says the schema is current."""
    code, out, _ = await run("migrate", url=empty_database_url)
    assert code == 0
    assert "applied 0001_event_log.sql" in out
    code, out, _ = await run("migrate", url=empty_database_url)
    assert code == 0
    assert "nothing to apply" in out


async def test_verify_prints_the_head_of_an_intact_log(database_url: str, writer: GroupCommitWriter) -> None:
    """Exit 0 and the head's position and hash."""
    last = None
    for _ in range(5):
        last = await writer.append(new_event())
    assert last is not None
    code, out, _ = await run("verify", url=database_url)
    assert code == 0
    assert f"head position 5, hash {last.hash.hex()}" in out


@pytest.mark.parametrize(
    ("statement", "position"),
    [
        ("""UPDATE events SET data = '{"forged": true}' WHERE position = 3""", 3),
        ("DELETE FROM events WHERE position = 4", 4),
        (
            "UPDATE events SET position = 100 WHERE position = 2; "
            "UPDATE events SET position = 2 WHERE position = 5; "
            "UPDATE events SET position = 5 WHERE position = 100",
            2,
        ),
    ],
    ids=["changed", "deleted", "swapped"],
)
async def test_verify_names_the_tampered_position(
    database_url: str, writer: GroupCommitWriter, owner: asyncpg.Connection, statement: str, position: int
) -> None:
    """Exit 1 and the exact first bad position, whatever the tampering."""
    for _ in range(6):
        await writer.append(new_event())
    async with owner.transaction():
        await owner.execute("SET LOCAL session_replication_role = replica")
        await owner.execute(statement)
    code, out, _ = await run("verify", url=database_url)
    assert code == 1
    assert f"tampered: first bad position {position}:" in out


async def test_verify_exits_2_when_the_database_is_unreachable() -> None:
    """A check that could not run is neither 'intact' nor 'tampered'."""
    code, _, err = await run("verify", url="postgresql://nobody@127.0.0.1:1/none")
    assert code == 2
    assert "cannot reach the database" in err


@pytest.mark.parametrize("workers", ["1", "3"])
async def test_verify_gives_the_same_head_with_any_number_of_workers(
    database_url: str, writer: GroupCommitWriter, workers: str
) -> None:
    """`--workers 1` walks in this process, more split the log: the verdict is the same."""
    last = None
    for _ in range(5):
        last = await writer.append(new_event())
    assert last is not None
    code, out, _ = await run("verify", "--workers", workers, url=database_url)
    assert code == 0
    assert f"head position 5, hash {last.hash.hex()}" in out


async def test_verify_refuses_fewer_than_one_worker(database_url: str) -> None:
    """A usage error, said on stderr, before the database is touched."""
    code, _, err = await run("verify", "--workers", "0", url=database_url)
    assert code == 2
    assert "--workers must be at least 1" in err
