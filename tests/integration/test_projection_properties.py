"""Invariant 8 as a property: whatever the events, the stored projection is the fold of the log."""

from __future__ import annotations

import uuid
from typing import Any

import asyncpg
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from events.event_types import (
    CredentialInvalidated,
    CredentialProvisioned,
    CredentialRevoked,
    DomainEvent,
    SealedSecret,
    SyncFailed,
    SyncRecovered,
    UserDeleted,
    UserDisabled,
    UserEnabled,
    to_new_event,
)
from events.reading import read_stream
from events.writer import GroupCommitWriter
from projections.credential_state import fold
from projections.queries import get_state
from projections.rebuild import rebuild_credentials

USERS = ["u1", "u2", "u3"]

steps = st.lists(
    st.tuples(
        st.sampled_from(USERS),
        st.sampled_from(
            [
                "provision",
                "revoke",
                "invalidate_current",
                "invalidate_stale",
                "disable",
                "enable",
                "delete",
                "sync_failed",
                "sync_recovered",
            ]
        ),
        st.sampled_from(["user_request", "admin", "user_deleted", "token_invalidated"]),
    ),
    min_size=1,
    max_size=25,
)


def domain_event(kind: str, reason: Any, current_position: int | None) -> DomainEvent:
    if kind == "provision":
        sealed = SealedSecret(f"dk_{uuid.uuid4().hex}", "bm9uY2U=", "Y2lwaGVy")
        return CredentialProvisioned(f"login-{uuid.uuid4().hex[:4]}", ("files",), "hmac-sha256:k:00", sealed)
    if kind == "revoke":
        return CredentialRevoked(reason)
    if kind == "invalidate_current":
        return CredentialInvalidated(credential_position=current_position or 1)
    if kind == "invalidate_stale":
        return CredentialInvalidated(credential_position=10**9)
    if kind == "sync_failed":
        return SyncFailed("timeout")
    if kind == "sync_recovered":
        return SyncRecovered(1)
    return {"disable": UserDisabled(), "enable": UserEnabled(), "delete": UserDeleted()}[kind]


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(steps=steps)
async def test_the_stored_rows_equal_the_fold_and_a_rebuild_finds_nothing(
    steps: list[tuple[str, str, Any]],
    writer: GroupCommitWriter,
    pool: asyncpg.Pool,
    owner: asyncpg.Connection,
) -> None:
    """Append any sequence; each user's row equals folding their events; rebuild --check is clean."""
    run = uuid.uuid4().hex[:8]  # examples share the database, so each uses users of its own
    current: dict[str, int] = {}
    for user, kind, reason in steps:
        stream = f"{run}-{user}"
        appended = await writer.append(
            to_new_event(domain_event(kind, reason, current.get(stream)), stream=stream, source="property")
        )
        if kind == "provision":
            current[stream] = appended.position
    async with pool.acquire() as conn:
        for user in USERS:
            stream = f"{run}-{user}"
            expected = fold(await read_stream(conn, stream)).get(stream)
            record = await get_state(conn, stream)
            assert (record.state if record else None) == expected
    report = await rebuild_credentials(owner, check_only=True)
    assert report.differences == []
