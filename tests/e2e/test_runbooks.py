"""Each runbook of docs/runbooks.md, followed step by step with the real commands, as an operator would."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import aiohttp
import asyncpg
import pytest

from events.crypto import DecryptionFailed, MasterKey, MasterKeyRing, generate_key
from events.database import connect_owner, with_database
from events.writer import GroupCommitWriter
from receiver.credentials import provision_credential, revoke_credential
from receiver.webhook_signatures import WebhookSecret, parse_secret
from sync.credentials import open_active_credential
from tests.e2e.processes import credledger, free_port, start_service, wait_until_healthy
from tests.factories import master_keys_setting, new_webhook_secret

pytestmark = pytest.mark.slow

PASSWORDS = {"alice": "Alice-Passw-ord23-4567-89abc", "bob": "BobAp-passw-ord34-5678-9abcd"}
NewDatabase = Callable[[], Awaitable[str]]


def pg_tool(name: str) -> str:
    """A PostgreSQL client program; pgserver bundles version 16's, which handle 15 and 16 servers."""
    import pgserver._commands

    return str(Path(pgserver._commands.POSTGRES_BIN_PATH) / name)


async def cli(*args: str, **settings: str) -> subprocess.CompletedProcess[str]:
    """`credledger ARGS` as a subprocess, without blocking the event loop."""
    return await asyncio.to_thread(lambda: credledger(*args, timeout=120, **settings))


async def tool(*args: str) -> subprocess.CompletedProcess[str]:
    """A PostgreSQL client program, run to completion; its failure fails the test with its stderr."""
    done = await asyncio.to_thread(
        subprocess.run, [pg_tool(args[0]), *args[1:]], capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    return done


@pytest.fixture
async def new_database(postgres_url: str) -> AsyncIterator[NewDatabase]:
    """Creates empty databases on the test server (as `createdb` would) and drops them afterwards."""
    admin = await asyncpg.connect(with_database(postgres_url, "postgres"))
    names: list[str] = []

    async def create() -> str:
        name = f"credledger_runbook_{uuid.uuid4().hex[:10]}"
        await admin.execute(f'CREATE DATABASE "{name}"')
        names.append(name)
        return with_database(postgres_url, name)

    yield create
    for name in names:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    await admin.close()


async def provision(pool: asyncpg.Pool, writer: GroupCommitWriter, ring: MasterKeyRing, user: str) -> None:
    """What Astrolabe's POST does once Nextcloud has accepted the password."""
    await provision_credential(
        pool,
        writer,
        ring,
        user_id=user,
        login_name=user,
        scopes=["files"],
        app_password=PASSWORDS.get(user, f"{user.title()}-Passw-ord45-6789-abcde"),
        source="test",
    )


def stop(process: subprocess.Popen[str]) -> None:
    """SIGTERM, as systemd stops the unit, and wait for the drain."""
    process.send_signal(signal.SIGTERM)
    process.wait(timeout=30)


async def signature_failures(port: int) -> float:
    """The replica's credledger_webhook_signature_failures, summed over reasons."""
    async with aiohttp.ClientSession() as http, http.get(f"http://127.0.0.1:{port}/metrics") as response:
        text = await response.text()
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith("credledger_webhook_signature_failures")
    )


async def test_rotating_a_webhook_secret_rejects_no_delivery(
    database_url: str, master_keys: MasterKeyRing, tmp_path: Path
) -> None:
    """Secrets side by side, restarts while deliveries are in flight: every delivery is taken."""
    old = new_webhook_secret()
    settings = {
        "database_url": database_url,
        "master_keys": master_keys_setting(master_keys),
        "data_dir": str(tmp_path),
        "sync_enabled": "false",
    }
    port, log = free_port(), tmp_path / "serve.log"
    url = f"http://127.0.0.1:{port}/api/v1/events"

    async def send(secrets: str, user: str) -> subprocess.CompletedProcess[str]:
        # Generous attempts with a short backoff: a restart must be ridden out, not raced.
        return await cli(
            "send", "--url", url, "--type", "user.disabled", "--user", user,
            "--max-attempts", "40", "--backoff-base", "0.1", webhook_secrets=secrets,
        )  # fmt: skip

    # The receivers read their secrets from a mounted file, as the systemd unit of deployment.md does.
    secret_file = tmp_path / "webhook-secrets"

    async def restart(
        service: subprocess.Popen[str], secrets: str, *, sender_secrets: str, user: str
    ) -> subprocess.Popen[str]:
        """Write `secrets` into the receiver's file and restart it while a sender's delivery is in flight."""
        assert await signature_failures(port) == 0
        in_flight = asyncio.create_task(send(sender_secrets, user))
        secret_file.write_text(secrets + "\n")
        await asyncio.to_thread(stop, service)
        service = start_service(port, log, webhook_secrets_file=str(secret_file), **settings)
        await wait_until_healthy(port, service)
        delivered = await in_flight
        assert delivered.returncode == 0, delivered.stderr
        return service

    secret_file.write_text(old + "\n")
    service = start_service(port, log, webhook_secrets_file=str(secret_file), **settings)
    try:
        await wait_until_healthy(port, service)
        assert (await send(old, "before")).returncode == 0

        # 1. The new secret, and its key id by the runbook's shell recipe.
        new = new_webhook_secret()
        recipe = f"printf '%s' '{new.removeprefix('whsec_')}' | base64 -d | sha256sum | cut -c1-8"
        shell = await asyncio.to_thread(subprocess.run, ["sh", "-c", recipe], capture_output=True, text=True)
        new_id = shell.stdout.strip()
        assert new_id == WebhookSecret(parse_secret(new)).key_id
        old_id = WebhookSecret(parse_secret(old)).key_id

        # 2. Receivers: NEW,OLD, restarted while a delivery signed with OLD is in flight.
        service = await restart(service, f"{new},{old}", sender_secrets=old, user="during-step-2")
        check = await cli("config", "--check", webhook_secrets_file=str(secret_file), **settings)
        assert check.returncode == 0, check.stdout + check.stderr
        assert f"set: 2 secrets, key ids {new_id}, {old_id} (newest first)" in check.stdout

        # 3. Senders: NEW (or NEW,OLD where a receiver might still lack NEW).
        assert (await send(new, "after-step-3")).returncode == 0
        assert (await send(f"{new},{old}", "after-step-3-both")).returncode == 0

        # 4 and 5. Nothing was refused; receivers drop OLD, restarted with a NEW delivery in flight.
        service = await restart(service, new, sender_secrets=new, user="during-step-5")
        check = await cli("config", "--check", webhook_secrets_file=str(secret_file), **settings)
        assert f"set: 1 secret, key ids {new_id}" in check.stdout

        # 6. The old secret alone is refused; the new one is taken.
        assert await signature_failures(port) == 0
        refused = await send(old, "signed-with-old")
        assert refused.returncode == 1
        assert "HTTP 401" in refused.stderr
        assert (await send(new, "after-step-6")).returncode == 0
    finally:
        stop(service)

    owner = await connect_owner(database_url)
    try:
        stored = await owner.fetch("SELECT stream FROM events WHERE source = 'webhook' ORDER BY position")
    finally:
        await owner.close()
    assert sorted(r["stream"] for r in stored) == sorted(
        ["before", "during-step-2", "after-step-3", "after-step-3-both", "during-step-5", "after-step-6"]
    )


async def test_rotating_the_master_key_leaves_every_credential_readable_under_the_new_key_alone(
    database_url: str,
    pool: asyncpg.Pool,
    writer: GroupCommitWriter,
    owner: asyncpg.Connection,
    tmp_path: Path,
) -> None:
    """New key first, keys rotate, old key dropped: each credential opens with the new key only."""
    k1 = MasterKey("k1", generate_key())
    for user in ("alice", "bob", "carol"):
        await provision(pool, writer, MasterKeyRing((k1,)), user)
    settings = {"database_url": database_url, "data_dir": str(tmp_path)}

    # 1. A new key with a new id.
    k2 = MasterKey("k2", generate_key())

    # 2. New key first, old one after it.
    both = master_keys_setting(MasterKeyRing((k2, k1)))
    check = await cli("config", "--check", master_keys=both, **settings)
    assert "set: key ids 'k2', 'k1'; 'k2' wraps new data keys" in check.stdout

    # 3. Rewrap; a second run finds nothing left under k1.
    rotated = await cli("keys", "rotate", master_keys=both, **settings)
    assert rotated.returncode == 0, rotated.stderr
    assert "rewrapped 3 data keys under master key 'k2'" in rotated.stdout
    again = await cli("keys", "rotate", master_keys=both, **settings)
    assert "rewrapped 0 data keys" in again.stdout
    wrapped = await owner.fetch("SELECT master_key_id, count(*) FROM user_keys GROUP BY 1")
    assert [tuple(row) for row in wrapped] == [("k2", 3)]

    # 4. Drop the old key.
    only_new = master_keys_setting(MasterKeyRing((k2,)))
    check = await cli("config", "--check", master_keys=only_new, **settings)
    assert check.returncode == 0, check.stdout + check.stderr
    assert "set: key ids 'k2'; 'k2' wraps new data keys" in check.stdout
    async with pool.acquire() as conn:
        for user in ("alice", "bob"):
            opened = await open_active_credential(conn, MasterKeyRing((k2,)), user)
            assert opened is not None
            assert opened.app_password == PASSWORDS[user]


async def test_a_restored_backup_is_intact_and_holds_no_readable_secret(
    database_url: str,
    pool: asyncpg.Pool,
    writer: GroupCommitWriter,
    master_keys: MasterKeyRing,
    new_database: NewDatabase,
    tmp_path: Path,
) -> None:
    """pg_dump, pg_restore into a new database, verify and rebuild --check: and no password in the dump."""
    for user in ("alice", "bob"):
        await provision(pool, writer, master_keys, user)
    await revoke_credential(writer, user_id="bob", reason="user_request", source="test")
    keys = master_keys_setting(master_keys)

    # Backup: the verify line, then the dump.
    before = await cli("verify", database_url=database_url, data_dir=str(tmp_path))
    assert before.returncode == 0, before.stderr
    dump = tmp_path / "credledger.dump"
    await tool("pg_dump", "--format=custom", f"--file={dump}", database_url)
    as_sql = (await tool("pg_restore", "--file=-", str(dump))).stdout
    assert "credential.provisioned" in as_sql
    for password in PASSWORDS.values():
        assert password not in as_sql
        assert password.encode() not in dump.read_bytes()

    # Restore into a new, empty database.
    restored = await new_database()
    await tool("pg_restore", "--exit-on-error", f"--dbname={restored}", str(dump))

    # Check it, with the master keys from custody.
    after = await cli("verify", database_url=restored, data_dir=str(tmp_path))
    assert after.returncode == 0, after.stderr
    assert after.stdout == before.stdout
    rebuild = await cli("projections", "rebuild", "--check", database_url=restored, master_keys=keys)
    assert rebuild.returncode == 0, rebuild.stdout + rebuild.stderr
    assert "0 differences" in rebuild.stdout
    check = await cli("config", "--check", database_url=restored, master_keys=keys, data_dir=str(tmp_path))
    assert check.returncode == 0, check.stdout + check.stderr

    # Key custody: the restored ciphertext opens with the master keys and with nothing else.
    conn = await connect_owner(restored)
    try:
        opened = await open_active_credential(conn, master_keys, "alice")
        assert opened is not None
        assert opened.app_password == PASSWORDS["alice"]
        assert await open_active_credential(conn, master_keys, "bob") is None  # revoked: shredded
        with pytest.raises(DecryptionFailed):
            await open_active_credential(conn, MasterKeyRing((MasterKey("k2", generate_key()),)), "alice")
    finally:
        await conn.close()


async def test_an_upgrade_migrates_under_a_lock_and_an_older_release_refuses_the_newer_schema(
    empty_database_url: str, master_keys: MasterKeyRing, tmp_path: Path
) -> None:
    """Two migrates take turns; after a newer release migrates, the older one refuses it, loudly."""
    secret = new_webhook_secret()
    settings = {
        "database_url": empty_database_url,
        "master_keys": master_keys_setting(master_keys),
        "data_dir": str(tmp_path),
        "webhook_secrets": secret,
        "sync_enabled": "false",
    }
    # 3. Migrate: started twice at once, the lock makes them take turns and apply each file once.
    first, second = await asyncio.gather(cli("migrate", **settings), cli("migrate", **settings))
    assert (first.returncode, second.returncode) == (0, 0), first.stderr + second.stderr
    applied = [line for out in (first.stdout, second.stdout) for line in out.splitlines()]
    assert applied.count("applied 0001_event_log.sql") == 1
    assert "schema is current: nothing to apply" in applied

    # 4. A replica of this release serves.
    port, log = free_port(), tmp_path / "serve.log"
    service = start_service(port, log, **settings)
    try:
        await wait_until_healthy(port, service)

        # A newer release migrates: additively, and recorded.
        owner = await connect_owner(empty_database_url)
        try:
            await owner.execute("CREATE TABLE from_a_newer_release (id bigint PRIMARY KEY)")
            await owner.execute(
                "INSERT INTO schema_migrations (version, name, checksum) VALUES (9999, 'newer', 'x')"
            )
        finally:
            await owner.close()

        # The running older replica keeps taking events, but says it is not ready.
        url = f"http://127.0.0.1:{port}/api/v1/events"
        sent = await cli("send", "--url", url, "--type", "user.disabled", "--user", "alice", **settings)
        assert sent.returncode == 0, sent.stderr
        async with aiohttp.ClientSession() as http, http.get(f"http://127.0.0.1:{port}/readyz") as ready:
            assert ready.status == 503
            assert "migrated by a newer release" in (await ready.json())["reason"]
    finally:
        stop(service)

    # The older release's migrate and serve both refuse the newer schema.
    refused = await cli("migrate", **settings)
    assert refused.returncode == 2
    assert "migrated by a newer release" in refused.stderr
    restarted = start_service(port, log, **settings)
    assert await asyncio.to_thread(restarted.wait, 60) != 0
    assert "migrated by a newer release" in log.read_text()
    check = await cli("config", "--check", **settings)
    assert check.returncode == 1
    assert "CREDLEDGER_DATABASE_URL: " in check.stderr


async def test_after_a_failed_verify_the_runbook_finds_the_change_and_restores_an_intact_log(
    database_url: str,
    pool: asyncpg.Pool,
    writer: GroupCommitWriter,
    owner: asyncpg.Connection,
    master_keys: MasterKeyRing,
    new_database: NewDatabase,
    tmp_path: Path,
) -> None:
    """A row rewritten behind the triggers: found, preserved, compared, restored with the tail saved."""
    keys = master_keys_setting(master_keys)
    settings = {"master_keys": keys, "data_dir": str(tmp_path)}
    for user in ("alice", "bob"):
        await provision(pool, writer, master_keys, user)
    backup = tmp_path / "backup.dump"
    await tool("pg_dump", "--format=custom", f"--file={backup}", database_url)
    backup_head = await owner.fetchval("SELECT max(position) FROM events")
    await provision(pool, writer, master_keys, "carol")
    bad = await owner.fetchval("SELECT position FROM events WHERE stream = 'alice'")

    # Someone with superuser rights rewrites alice's provisioning behind the triggers.
    await owner.execute("ALTER TABLE events DISABLE TRIGGER events_no_update_or_delete")
    await owner.execute(
        "UPDATE events SET data = jsonb_set(data, '{login_name}', '\"mallory\"') WHERE position = $1", bad
    )
    await owner.execute("ALTER TABLE events ENABLE TRIGGER events_no_update_or_delete")

    # 1. verify names the position; the log still takes events, and verify still names the same one.
    failed = await cli("verify", database_url=database_url, **settings)
    assert failed.returncode == 1
    assert f"tampered: first bad position {bad}:" in failed.stdout
    appended = await cli(
        "tokens", "create", "--role", "auditor", "--name", "incident", database_url=database_url, **settings
    )
    assert appended.returncode == 0, appended.stderr
    assert (await cli("verify", database_url=database_url, **settings)).stdout == failed.stdout

    # 2. Preserve the evidence.
    evidence = tmp_path / "evidence.dump"
    await tool("pg_dump", "--format=custom", f"--file={evidence}", database_url)
    assert evidence.stat().st_size > 0

    # 4. The newest backup that verifies, restored beside it, shows what was changed.
    restored = await new_database()
    await tool("pg_restore", "--exit-on-error", f"--dbname={restored}", str(backup))
    assert (await cli("verify", database_url=restored, **settings)).returncode == 0
    query = f"SELECT data->>'login_name' FROM events WHERE position = {bad}"
    damaged_row = (await tool("psql", "--no-psqlrc", "-Atc", query, database_url)).stdout.strip()
    original_row = (await tool("psql", "--no-psqlrc", "-Atc", query, restored)).stdout.strip()
    assert (damaged_row, original_row) == ("mallory", "alice")

    # 5. Carry the events after the backup over; verify judges them against the restored chain.
    tail = tmp_path / "tail.csv"
    copy_out = (
        f"\\copy (SELECT * FROM events WHERE position > {backup_head} ORDER BY position) TO '{tail}' CSV"
    )
    await tool("psql", "--no-psqlrc", "-c", copy_out, database_url)
    await tool("psql", "--no-psqlrc", "-c", f"\\copy events FROM '{tail}' CSV", restored)
    intact = await cli("verify", database_url=restored, **settings)
    assert intact.returncode == 0, intact.stdout + intact.stderr
    head = await owner.fetchval("SELECT max(position) FROM events")
    assert f"head position {head}," in intact.stdout
    swap = await cli("projections", "rebuild", database_url=restored, **settings)
    assert swap.returncode == 0, swap.stdout + swap.stderr
    check = await cli("projections", "rebuild", "--check", database_url=restored, **settings)
    assert check.returncode == 0, check.stdout + check.stderr
    assert "0 differences" in check.stdout
