"""The api_tokens projection and token authentication on real PostgreSQL."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from typing import Any

import asyncpg
import pytest

from events.envelope import SYSTEM_STREAM, RecordedEvent
from events.event_types import TokenCreated, TokenRevoked, UserDisabled, to_new_event
from events.writer import GroupCommitWriter
from projections.api_tokens import load_token, project_tokens
from projections.credential_store import project_credentials
from receiver.bearer_tokens import TokenIdentity, authenticate, issue_token, token_digest
from tests.factories import new_event


@pytest.fixture
async def token_writer(pool: asyncpg.Pool) -> AsyncIterator[GroupCommitWriter]:
    """A writer whose hooks project credentials and tokens."""
    writer = GroupCommitWriter(pool, hooks=(project_credentials, project_tokens))
    await writer.start()
    yield writer
    await writer.close()


async def create(
    writer: GroupCommitWriter, role: str = "auditor", name: str = "ci"
) -> tuple[str, TokenCreated]:
    token, created = issue_token(role, name)
    await writer.append(to_new_event(created, stream=SYSTEM_STREAM, source="test"))
    return token, created


async def revoke(writer: GroupCommitWriter, token_id: str) -> int:
    appended = await writer.append(to_new_event(TokenRevoked(token_id), stream=SYSTEM_STREAM, source="test"))
    return appended.position


async def who(pool: asyncpg.Pool, header: str | None) -> TokenIdentity | None:
    async with pool.acquire() as conn:
        return await authenticate(conn, header)


async def test_token_created_projects_a_live_token(
    pool: asyncpg.Pool, token_writer: GroupCommitWriter
) -> None:
    """The row holds id, name, role, digest and where it was created, and is not revoked."""
    token, created = issue_token("admin", "ops team")
    appended = await token_writer.append(to_new_event(created, stream=SYSTEM_STREAM, source="test"))
    async with pool.acquire() as conn:
        stored = await load_token(conn, created.token_id)
    assert stored is not None
    assert (stored.name, stored.role, stored.digest, stored.created_position) == (
        "ops team",
        "admin",
        token_digest(token),
        appended.position,
    )
    assert not stored.revoked


async def test_token_revoked_marks_the_token_revoked(
    pool: asyncpg.Pool, token_writer: GroupCommitWriter
) -> None:
    """The revocation's position and time are recorded on the token."""
    _, created = await create(token_writer)
    position = await revoke(token_writer, created.token_id)
    async with pool.acquire() as conn:
        stored = await load_token(conn, created.token_id)
    assert stored is not None
    assert stored.revoked
    assert stored.revoked_position == position


async def test_a_second_revocation_keeps_the_first(
    pool: asyncpg.Pool, token_writer: GroupCommitWriter
) -> None:
    """Revoking twice leaves the first revocation on record."""
    _, created = await create(token_writer)
    first = await revoke(token_writer, created.token_id)
    await revoke(token_writer, created.token_id)
    async with pool.acquire() as conn:
        stored = await load_token(conn, created.token_id)
    assert stored is not None
    assert stored.revoked_position == first


async def test_a_second_creation_cannot_replace_the_digest(
    pool: asyncpg.Pool, token_writer: GroupCommitWriter
) -> None:
    """token.created reusing an existing id leaves the original token (and its digest) in place."""
    token, created = await create(token_writer, role="auditor")
    hijack = TokenCreated(token_id=created.token_id, name="evil", role="admin", digest="0" * 64)
    await token_writer.append(to_new_event(hijack, stream=SYSTEM_STREAM, source="test"))
    assert await who(pool, f"Bearer {token}") == TokenIdentity(created.token_id, "ci", "auditor")


async def test_token_events_outside_the_system_stream_are_ignored(
    pool: asyncpg.Pool, token_writer: GroupCommitWriter
) -> None:
    """Only the system stream issues tokens."""
    token, created = issue_token("admin", "x")
    await token_writer.append(to_new_event(created, stream="mallory", source="test"))
    assert await who(pool, f"Bearer {token}") is None


async def test_an_unreadable_token_event_is_skipped_not_fatal(
    pool: asyncpg.Pool, token_writer: GroupCommitWriter, owner: asyncpg.Connection
) -> None:
    """A token.created without a digest is stored in the log and changes no token."""
    event = new_event(stream=SYSTEM_STREAM, type=TokenCreated.TYPE, data={"token_id": "0123456789ab"})
    appended = await token_writer.append(event)
    assert await owner.fetchval("SELECT count(*) FROM events WHERE position = $1", appended.position) == 1
    assert await owner.fetchval("SELECT count(*) FROM api_tokens") == 0


class _NoDatabase:
    """A connection that fails the test if the hook touches it."""

    def __getattr__(self, name: str) -> Any:
        raise AssertionError(f"the hook used the database ({name}) for a batch without token events")


async def test_a_batch_without_token_events_does_no_database_work() -> None:
    """The hook runs on every append, so a batch of user events must cost it nothing."""
    user_event = RecordedEvent(
        position=1,
        event_id="e1",
        source="test",
        stream="alice",
        stream_version=1,
        type=UserDisabled.TYPE,
        schema_version=1,
        data={},
        metadata={},
        occurred_at=new_event().occurred_at,
        recorded_at=new_event().occurred_at,
        prev_hash=bytes(32),
        hash=bytes(32),
    )
    batch: Sequence[RecordedEvent] = [user_event]
    await project_tokens(_NoDatabase(), batch)  # type: ignore[arg-type]


async def test_a_live_token_authenticates(pool: asyncpg.Pool, token_writer: GroupCommitWriter) -> None:
    """The right token yields its id, name and role."""
    token, created = await create(token_writer, role="auditor", name="alice's auditor")
    assert await who(pool, f"Bearer {token}") == TokenIdentity(created.token_id, "alice's auditor", "auditor")


async def test_a_revoked_token_is_refused(pool: asyncpg.Pool, token_writer: GroupCommitWriter) -> None:
    """Once token.revoked is acknowledged, the token opens nothing."""
    token, created = await create(token_writer)
    await revoke(token_writer, created.token_id)
    assert await who(pool, f"Bearer {token}") is None


async def test_an_unknown_token_is_refused(pool: asyncpg.Pool, token_writer: GroupCommitWriter) -> None:
    """A well-formed token that was never issued is refused."""
    token, _ = issue_token("auditor", "never appended")
    assert await who(pool, f"Bearer {token}") is None


async def test_a_tampered_secret_is_refused(pool: asyncpg.Pool, token_writer: GroupCommitWriter) -> None:
    """The right id with another secret does not match the digest."""
    token, _ = await create(token_writer)
    last = token[-1]
    tampered = token[:-1] + ("A" if last != "A" else "B")
    assert await who(pool, f"Bearer {tampered}") is None


async def test_a_token_relabelled_with_another_role_is_refused(
    pool: asyncpg.Pool, token_writer: GroupCommitWriter
) -> None:
    """Changing `auditor` to `admin` in the text changes the digest: no promotion by editing."""
    token, _ = await create(token_writer, role="auditor")
    assert await who(pool, "Bearer " + token.replace("cl_auditor_", "cl_admin_", 1)) is None


async def test_a_malformed_header_is_refused_without_a_query() -> None:
    """Garbage is turned away before the database is asked."""
    assert await authenticate(_NoDatabase(), "Bearer not-a-token") is None  # type: ignore[arg-type]
