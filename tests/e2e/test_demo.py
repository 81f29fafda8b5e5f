"""`credledger demo` tells the whole story in under a minute and ends with an intact chain."""

from __future__ import annotations

import asyncio

import pytest

from tests.e2e.processes import credledger

pytestmark = pytest.mark.slow


async def test_the_demo_runs_the_flow_and_verifies() -> None:
    """Three users provisioned; one revoked, one deleted, one invalidated by a 401; verify intact."""
    done = await asyncio.to_thread(credledger, "demo", timeout=90)
    assert done.returncode == 0, done.stdout + done.stderr
    out = done.stdout
    assert out.count("200 App password stored for") == 3
    assert "alice revokes her password: 200 App password deleted for alice" in out
    assert "after 1 request (the first 401 is enough)" in out
    for line in (
        "alice    revoked  user_request",
        "bob      deleted  user_deleted",
        "5f3a9c   invalid  invalidated",
    ):
        assert line in out
    assert "verify: intact, 6 events" in out
