"""`credledger tokens create|revoke|list` as an operator runs them."""

from __future__ import annotations

import asyncio
import hashlib
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import pytest

from events.crypto import MasterKeyRing
from receiver.bearer_tokens import TokenIdentity, authenticate
from tests.e2e.processes import credledger
from tests.factories import master_keys_setting

TOKEN = re.compile(r"^cl_(auditor|admin)_([0-9a-f]{12})_[A-Za-z0-9_-]{43}$")


@dataclass(frozen=True)
class Env:
    """What every command here runs with: the test's database, and nothing written into the checkout."""

    database_url: str
    master_keys: str
    data_dir: str


@pytest.fixture
def settings(database_url: str, master_keys: MasterKeyRing, tmp_path: Path) -> Env:
    """The settings of the test's own database."""
    return Env(database_url, master_keys_setting(master_keys), str(tmp_path))


async def tokens(settings: Env, *args: str) -> subprocess.CompletedProcess[str]:
    return await asyncio.to_thread(
        lambda: credledger(
            "tokens",
            *args,
            database_url=settings.database_url,
            master_keys=settings.master_keys,
            data_dir=settings.data_dir,
        )
    )


async def create(settings: Env, role: str = "auditor", name: str = "ci") -> str:
    done = await tokens(settings, "create", "--role", role, "--name", name)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


async def who(pool: asyncpg.Pool, token: str) -> TokenIdentity | None:
    async with pool.acquire() as conn:
        return await authenticate(conn, f"Bearer {token}")


async def test_create_prints_the_token_once_and_warns_on_stderr(settings: Env) -> None:
    """stdout is the token alone; stderr says it will not be shown again and does not repeat it."""
    done = await tokens(settings, "create", "--role", "auditor", "--name", "ci")
    assert done.returncode == 0, done.stderr
    token = done.stdout.strip()
    assert TOKEN.match(token)
    assert done.stdout == token + "\n"
    assert "will not be shown again" in done.stderr
    assert token not in done.stderr


async def test_a_created_token_authenticates_with_its_role(settings: Env, pool: asyncpg.Pool) -> None:
    """The printed token opens the API as the role and name it was created with."""
    token = await create(settings, role="admin", name="ops on-call")
    identity = await who(pool, token)
    assert identity is not None
    assert (identity.role, identity.name, identity.token_id) == ("admin", "ops on-call", token.split("_")[2])


async def test_only_the_digest_is_stored(settings: Env, owner: asyncpg.Connection) -> None:
    """token.created in the system stream holds the SHA-256; the token itself is nowhere in the database."""
    token = await create(settings)
    row = await owner.fetchrow(
        "SELECT stream, source, data->>'digest' AS digest, data::text AS data FROM events"
    )
    assert row is not None
    assert (row["stream"], row["source"]) == ("system", "credledger-cli")
    assert row["digest"] == hashlib.sha256(token.encode()).hexdigest()
    secret = token.split("_", 3)[3]
    assert secret not in row["data"]
    assert (
        await owner.fetchval("SELECT count(*) FROM api_tokens WHERE digest LIKE '%' || $1 || '%'", secret)
        == 0
    )


async def test_revoke_refuses_the_token_from_then_on(settings: Env, pool: asyncpg.Pool) -> None:
    """After `tokens revoke ID` exits 0, the token authenticates no more."""
    token = await create(settings)
    done = await tokens(settings, "revoke", token.split("_")[2])
    assert done.returncode == 0, done.stderr
    assert await who(pool, token) is None


async def test_revoking_an_unknown_token_exits_1_and_appends_nothing(
    settings: Env, owner: asyncpg.Connection
) -> None:
    """A token id nobody issued is reported, and the log is left as it was."""
    done = await tokens(settings, "revoke", "0123456789ab")
    assert done.returncode == 1
    assert "no token 0123456789ab" in done.stderr
    assert await owner.fetchval("SELECT count(*) FROM events") == 0


async def test_list_shows_every_token_without_its_digest(settings: Env, owner: asyncpg.Connection) -> None:
    """Id, role, name, created and revoked for each token; neither token nor digest."""
    live, gone = (
        await create(settings, name="live one"),
        await create(settings, role="admin", name="gone one"),
    )
    await tokens(settings, "revoke", gone.split("_")[2])
    done = await tokens(settings, "list")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].split() == ["TOKEN_ID", "ROLE", "NAME", "CREATED", "REVOKED"]
    assert lines[1].split()[:2] == [live.split("_")[2], "auditor"]
    assert lines[1].endswith("-")
    assert lines[2].split()[:2] == [gone.split("_")[2], "admin"]
    assert not lines[2].endswith("-")
    for digest in await owner.fetch("SELECT digest FROM api_tokens"):
        assert digest["digest"] not in done.stdout
    assert live not in done.stdout


async def test_an_unknown_role_is_a_usage_error(settings: Env, owner: asyncpg.Connection) -> None:
    """`--role root` exits 2 before touching the database."""
    done = await tokens(settings, "create", "--role", "root", "--name", "x")
    assert done.returncode == 2
    assert "auditor" in done.stderr
    assert await owner.fetchval("SELECT count(*) FROM events") == 0
