"""docs/deployment.md's hand-made roles, run as written: the service works without owning its schema."""

from __future__ import annotations

import asyncio
import re
import subprocess
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import aiohttp
import asyncpg
import pytest

from events.crypto import MasterKeyRing
from events.database import with_database
from tests.e2e.processes import ROOT, credledger, free_port, start_service, wait_until_healthy
from tests.factories import master_keys_setting, new_webhook_secret

pytestmark = pytest.mark.slow

DOC = ROOT / "docs" / "deployment.md"
SECTION = "## PostgreSQL roles when the service must not own its schema"
# The roles and the database the doc names; the test gives each a name of its own, since roles are
# shared by every database of the server.
NAMES = ("credledger_owner", "credledger_service", "credledger_auditor")


def sql_blocks(doc: str) -> list[str]:
    """The ```sql blocks of the roles section and of the auditors section, in order."""
    roles = doc[doc.index(SECTION) :]
    return re.findall(r"```sql\n(.*?)```", roles, flags=re.S)


def statements(block: str) -> list[str]:
    """The block's statements, one by one (CREATE DATABASE cannot share a transaction)."""
    code = "\n".join(line for line in block.splitlines() if not line.lstrip().startswith("--"))
    return [s.strip() for s in code.split(";") if s.strip()]


def as_user(url: str, user: str) -> str:
    """`url` logging in as `user` (the test server trusts local connections)."""
    parts = urlsplit(url)
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit(parts._replace(netloc=f"{user}@{host}"))


@dataclass
class Deployment:
    """The doc's names made unique, and a superuser URL to the server."""

    server: str
    suffix: str

    def name(self, doc_name: str) -> str:
        return f"{doc_name}_{self.suffix}"

    @property
    def database(self) -> str:
        return f"credledger_deploy_{self.suffix}"

    def rename(self, sql: str) -> str:
        for doc_name in NAMES:
            sql = sql.replace(doc_name, self.name(doc_name))
        # The database is plain `credledger`: a whole word, never part of credledger_app.
        return re.sub(r"\bcredledger\b", self.database, sql)

    def url(self, user: str | None = None) -> str:
        url = with_database(self.server, self.database)
        return url if user is None else as_user(url, self.name(user))

    async def run(self, block: str, *, url: str) -> None:
        conn = await asyncpg.connect(url)
        try:
            for statement in statements(self.rename(block)):
                await conn.execute(statement)
        finally:
            await conn.close()


@pytest.fixture
async def deployment(postgres_url: str) -> AsyncIterator[Deployment]:
    """Unique names for the doc's roles and database, removed afterwards."""
    made = Deployment(with_database(postgres_url, "postgres"), uuid.uuid4().hex[:8])
    yield made
    admin = await asyncpg.connect(made.server)
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{made.database}" WITH (FORCE)')
        for doc_name in reversed(NAMES):
            await admin.execute(f'DROP ROLE IF EXISTS "{made.name(doc_name)}"')
    finally:
        await admin.close()


async def cli(*args: str, **settings: str) -> subprocess.CompletedProcess[str]:
    return await asyncio.to_thread(lambda: credledger(*args, timeout=120, **settings))


async def test_the_service_runs_as_a_login_role_that_owns_nothing(
    deployment: Deployment, master_keys: MasterKeyRing, tmp_path: Path
) -> None:
    """Roles made as the doc says: the owner migrates; the service serves, verifies, and cannot rewrite."""
    blocks = sql_blocks(DOC.read_text(encoding="utf-8"))
    assert len(blocks) == 6, "the roles section changed: update this test with it"
    server_level, in_database, admin_option, to_service, no_createrole, auditor = blocks
    superuser = with_database(deployment.server, "postgres")

    await deployment.run(server_level, url=superuser)
    await deployment.run(in_database, url=deployment.url())
    conn = await asyncpg.connect(superuser)
    try:
        app_role_exists = await conn.fetchval("SELECT 1 FROM pg_roles WHERE rolname = 'credledger_app'")
    finally:
        await conn.close()
    if app_role_exists:
        await deployment.run(admin_option, url=deployment.url())
    keys = master_keys_setting(master_keys)
    migrated = await cli("migrate", database_url=deployment.url("credledger_owner"), data_dir=str(tmp_path))
    assert migrated.returncode == 0, migrated.stderr
    await deployment.run(to_service, url=deployment.url("credledger_owner"))
    await deployment.run(no_createrole, url=superuser)

    service_url = deployment.url("credledger_service")
    settings = {"database_url": service_url, "master_keys": keys, "data_dir": str(tmp_path)}
    port, secret = free_port(), new_webhook_secret()
    service = start_service(
        port, tmp_path / "serve.log", webhook_secrets=secret, sync_enabled="false", **settings
    )
    try:
        await wait_until_healthy(port, service)
        async with aiohttp.ClientSession() as http, http.get(f"http://127.0.0.1:{port}/readyz") as ready:
            assert ready.status == 200, await ready.text()
        url = f"http://127.0.0.1:{port}/api/v1/events"
        sent = await cli(
            "send", "--url", url, "--type", "user.deleted", "--user", "alice", webhook_secrets=secret
        )
        assert sent.returncode == 0, sent.stderr
    finally:
        service.terminate()
        service.wait(timeout=30)

    for command in (["verify"], ["tokens", "create", "--role", "admin", "--name", "ops"], ["keys", "rotate"]):
        done = await cli(*command, **settings)
        assert done.returncode == 0, f"{command}: {done.stdout}{done.stderr}"
    check = await cli("projections", "rebuild", "--check", **settings)
    assert check.returncode == 0, check.stdout + check.stderr

    conn = await asyncpg.connect(service_url)
    try:
        for forbidden in (
            "UPDATE events SET type = type",
            "DELETE FROM credential_state",
            "DROP TABLE events",
        ):
            with pytest.raises(asyncpg.InsufficientPrivilegeError):
                await conn.execute(forbidden)
    finally:
        await conn.close()

    await deployment.run(auditor, url=deployment.url())
    audited = await cli("verify", database_url=deployment.url("credledger_auditor"), data_dir=str(tmp_path))
    assert audited.returncode == 0, audited.stderr
