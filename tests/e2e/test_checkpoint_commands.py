"""`credledger checkpoint` and `credledger verify --checkpoint` as an operator and an auditor run them."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import subprocess
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from events.canonical import canonical_json, chain_hash
from events.checkpoint_store import latest_checkpoint
from events.checkpoints import Checkpoint, SigningKey, sign_checkpoint, verify_checkpoint_signature
from events.reading import head, iter_events
from events.writer import GroupCommitWriter
from tests.e2e.processes import credledger
from tests.factories import new_event
from tests.secret_watch import leaks, watch


@pytest.fixture
def key() -> SigningKey:
    """The service's signing key; its private half is watched for leaks."""
    key = SigningKey.generate()
    watch(key.private_base64())
    return key


async def run(
    *args: str, url: str, tmp_path: Path, key: SigningKey | None = None
) -> subprocess.CompletedProcess[str]:
    """The command as a process; only the operator's `checkpoint` is given the signing key."""
    settings: dict[str, Any] = {"database_url": url, "data_dir": str(tmp_path)}
    if key is not None:
        settings["signing_key"] = key.private_base64()
    done = await asyncio.to_thread(credledger, *args, **settings)
    assert leaks(done.stdout + done.stderr) == []
    return done


async def take(url: str, tmp_path: Path, key: SigningKey) -> Path:
    """Run `credledger checkpoint` and keep its output in a file, as an auditor would."""
    done = await run("checkpoint", url=url, tmp_path=tmp_path, key=key)
    assert done.returncode == 0, done.stderr
    path = tmp_path / "checkpoint.json"
    path.write_text(done.stdout)
    return path


async def verify(path: Path, url: str, tmp_path: Path, *trust: str) -> subprocess.CompletedProcess[str]:
    return await run("verify", "--checkpoint", str(path), *trust, url=url, tmp_path=tmp_path)


async def append(writer: GroupCommitWriter, count: int) -> None:
    for _ in range(count):
        await writer.append(new_event())


async def tamper(owner: asyncpg.Connection, statement: str) -> None:
    """Rewrite history as a superuser would: with the append-only triggers bypassed."""
    async with owner.transaction():
        await owner.execute("SET LOCAL session_replication_role = replica")
        await owner.execute(statement)


async def rewrite_and_rehash(owner: asyncpg.Connection, position: int) -> None:
    """Forge one event's data and recompute every hash from there on: the chain verifies again."""
    events = [e async for e in iter_events(owner, after=position - 1)]
    prev_hash = events[0].prev_hash
    async with owner.transaction():
        await owner.execute("SET LOCAL session_replication_role = replica")
        for event in events:
            data = {"note": "forged"} if event.position == position else event.data
            canonical = dataclasses.replace(event, data=data).canonical_bytes()
            link = chain_hash(prev_hash, canonical)
            await owner.execute(
                "UPDATE events SET data = $1::text::jsonb, prev_hash = $2, hash = $3 WHERE position = $4",
                canonical_json(data),
                prev_hash,
                link,
                event.position,
            )
            prev_hash = link


async def test_checkpoint_prints_and_stores_a_signed_checkpoint_of_the_head(
    database_url: str, writer: GroupCommitWriter, owner: asyncpg.Connection, key: SigningKey, tmp_path: Path
) -> None:
    """Exit 0; stdout is the JSON document, signed by the configured key over the head, and stored."""
    await append(writer, 5)
    checkpoint = Checkpoint.from_json((await take(database_url, tmp_path, key)).read_text())
    verify_checkpoint_signature(checkpoint, key.public_key)
    assert (checkpoint.log_size, checkpoint.head_hash) == await head(owner)
    assert await latest_checkpoint(owner) == checkpoint


async def test_a_second_checkpoint_of_an_unchanged_head_prints_the_first(
    database_url: str, writer: GroupCommitWriter, owner: asyncpg.Connection, key: SigningKey, tmp_path: Path
) -> None:
    """Nothing new is signed or stored when the head has not moved."""
    await append(writer, 2)
    first = (await take(database_url, tmp_path, key)).read_text()
    again = await run("checkpoint", url=database_url, tmp_path=tmp_path, key=key)
    assert (again.returncode, again.stdout) == (0, first)
    assert "has not moved" in again.stderr
    assert await owner.fetchval("SELECT count(*) FROM checkpoints") == 1


async def test_verify_against_a_checkpoint_of_a_grown_log_exits_0(
    database_url: str, writer: GroupCommitWriter, key: SigningKey, tmp_path: Path
) -> None:
    """Events appended after the checkpoint do not matter: the head it signed is still there."""
    await append(writer, 6)
    path = await take(database_url, tmp_path, key)
    await append(writer, 3)
    done = await verify(path, database_url, tmp_path, "--public-key", key.public_base64)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "intact: the log holds the checkpoint's head at position 6" in done.stdout
    assert "head position 9" in done.stdout


async def test_truncating_the_tail_below_the_checkpoint_exits_1(
    database_url: str, writer: GroupCommitWriter, owner: asyncpg.Connection, key: SigningKey, tmp_path: Path
) -> None:
    """A log cut short is intact by itself; the checkpoint shows what is missing."""
    await append(writer, 6)
    path = await take(database_url, tmp_path, key)
    await tamper(owner, "DELETE FROM events WHERE position > 4")
    assert (await run("verify", url=database_url, tmp_path=tmp_path)).returncode == 0
    done = await verify(path, database_url, tmp_path, "--public-key", key.public_base64)
    assert done.returncode == 1
    assert "truncated: the log ends at position 4, below the checkpoint's position 6" in done.stdout


async def test_rewriting_a_row_before_the_checkpoint_exits_1(
    database_url: str, writer: GroupCommitWriter, owner: asyncpg.Connection, key: SigningKey, tmp_path: Path
) -> None:
    """The first bad position is named, as before the checkpoint."""
    await append(writer, 6)
    path = await take(database_url, tmp_path, key)
    await tamper(owner, """UPDATE events SET data = '{"forged": true}' WHERE position = 3""")
    done = await verify(path, database_url, tmp_path, "--public-key", key.public_base64)
    assert done.returncode == 1
    assert "tampered before the checkpoint's position 6: first bad position 3" in done.stdout


async def test_a_rewrite_rehashed_consistently_is_caught_by_the_head_hash(
    database_url: str, writer: GroupCommitWriter, owner: asyncpg.Connection, key: SigningKey, tmp_path: Path
) -> None:
    """The chain verifies again after a full rehash; only the signed head hash shows the rewrite."""
    await append(writer, 6)
    path = await take(database_url, tmp_path, key)
    await rewrite_and_rehash(owner, 3)
    assert (await run("verify", url=database_url, tmp_path=tmp_path)).returncode == 0
    done = await verify(path, database_url, tmp_path, "--public-key", key.public_base64)
    assert done.returncode == 1
    assert "head hash differs at the checkpoint's position 6" in done.stdout


async def test_tampering_after_the_checkpoint_exits_1(
    database_url: str, writer: GroupCommitWriter, owner: asyncpg.Connection, key: SigningKey, tmp_path: Path
) -> None:
    """The checkpoint's head holds, but the chain from there on does not."""
    await append(writer, 4)
    path = await take(database_url, tmp_path, key)
    await append(writer, 3)
    await tamper(owner, """UPDATE events SET data = '{"forged": true}' WHERE position = 6""")
    done = await verify(path, database_url, tmp_path, "--public-key", key.public_base64)
    assert done.returncode == 1
    assert "tampered after the checkpoint's position 4: first bad position 6" in done.stdout


async def test_a_checkpoint_signed_by_another_key_exits_1_as_foreign(
    database_url: str, writer: GroupCommitWriter, owner: asyncpg.Connection, key: SigningKey, tmp_path: Path
) -> None:
    """A genuine signature over the real head, by a key the auditor does not trust, is refused."""
    await append(writer, 3)
    last = await head(owner)
    assert last is not None
    other = SigningKey.generate()
    path = tmp_path / "foreign.json"
    path.write_text(sign_checkpoint(other, *last, await owner.fetchval("SELECT now()")).to_json())
    done = await verify(path, database_url, tmp_path, "--public-key", key.public_base64)
    assert done.returncode == 1
    assert f"refused: foreign signature: the checkpoint is signed by key {other.key_id}" in done.stdout


async def test_a_checkpoint_edited_after_signing_exits_1_as_a_bad_signature(
    database_url: str, writer: GroupCommitWriter, key: SigningKey, tmp_path: Path
) -> None:
    """Lowering the signed size (to hide a truncation) breaks the signature."""
    await append(writer, 5)
    path = await take(database_url, tmp_path, key)
    document = json.loads(path.read_text())
    path.write_text(json.dumps({**document, "log_size": 2}))
    done = await verify(path, database_url, tmp_path, "--public-key", key.public_base64)
    assert done.returncode == 1
    assert "refused: bad signature" in done.stdout


async def test_the_trusted_key_can_come_from_the_public_key_document(
    database_url: str, writer: GroupCommitWriter, key: SigningKey, tmp_path: Path
) -> None:
    """--public-key-file takes the JSON that GET /api/v1/audit/public-key serves."""
    await append(writer, 2)
    path = await take(database_url, tmp_path, key)
    key_file = tmp_path / "public-key.json"
    key_file.write_text(
        json.dumps({"key_id": key.key_id, "algorithm": "ed25519", "public_key": key.public_base64})
    )
    done = await verify(path, database_url, tmp_path, "--public-key-file", str(key_file))
    assert done.returncode == 0, done.stdout + done.stderr


async def test_without_a_trusted_key_verify_warns_and_uses_the_files_own(
    database_url: str, writer: GroupCommitWriter, key: SigningKey, tmp_path: Path
) -> None:
    """The check runs, and stderr says that it proves only the file's self-consistency."""
    await append(writer, 2)
    path = await take(database_url, tmp_path, key)
    done = await verify(path, database_url, tmp_path)
    assert done.returncode == 0
    assert "no --public-key given" in done.stderr


async def test_a_file_that_is_not_a_checkpoint_exits_2(database_url: str, tmp_path: Path) -> None:
    """A check that could not run is neither 'intact' nor 'tampered'."""
    path = tmp_path / "checkpoint.json"
    path.write_text('{"log_size": 3}')
    done = await verify(path, database_url, tmp_path, "--public-key", SigningKey.generate().public_base64)
    assert done.returncode == 2
    assert "is not a checkpoint: missing fields" in done.stderr
