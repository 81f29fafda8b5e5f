"""`credledger history` and `credledger export` as an auditor runs them."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import csv
import hashlib
import io
import json
import subprocess
from datetime import datetime
from pathlib import Path
from typing import Any

import asyncpg

from events.crypto import MasterKeyRing
from events.envelope import ENVELOPE_FIELDS
from events.event_types import UserDisabled, to_new_event
from events.writer import GroupCommitWriter
from receiver.cli import build_parser
from receiver.commands import audit_commands
from receiver.commands.audit_commands import export_events
from receiver.credentials import provision_credential, revoke_credential
from receiver.settings import Settings
from tests.e2e.processes import credledger
from tests.factories import new_event

PASSWORD = "Abcde-fghij-kmnop-qrstw-xyzAB"
GENESIS = "00" * 32


def _wired() -> bool:
    """Whether `credledger` itself offers these commands yet."""
    parser = build_parser()
    subcommands = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return {"history", "export"} <= set(subcommands.choices)


def _in_process(args: list[str], url: str) -> subprocess.CompletedProcess[str]:
    # Until receiver/cli.py registers the commands, they run here with their own parser; they call
    # asyncio.run, so the caller puts this in a worker thread.
    parser = argparse.ArgumentParser(prog="credledger")
    audit_commands.add_parser(parser.add_subparsers(dest="command", required=True))
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            parsed = parser.parse_args(args)
            code = parsed.run(parsed, Settings(database_url=url))
        except SystemExit as exit:
            code = int(exit.code or 0)
    return subprocess.CompletedProcess(args, code, out.getvalue(), err.getvalue())


async def run(*args: str, url: str) -> subprocess.CompletedProcess[str]:
    """`credledger ARGS` against the test's database, as a real process once the CLI is wired."""
    if _wired():
        return await asyncio.to_thread(credledger, *args, database_url=url)
    return await asyncio.to_thread(_in_process, list(args), url)


async def revoked_user(pool: asyncpg.Pool, writer: GroupCommitWriter, keys: MasterKeyRing) -> list[int]:
    """alice provisions, is disabled, then an admin revokes her credential; their positions."""
    provisioned = await provision_credential(
        pool,
        writer,
        keys,
        user_id="alice",
        login_name="alice@ldap",
        scopes=["files"],
        app_password=PASSWORD,
        source="astrolabe",
    )
    disabled = await writer.append(to_new_event(UserDisabled(), stream="alice", source="nextcloud"))
    revoked = await revoke_credential(writer, user_id="alice", reason="admin", source="admin-script")
    return [provisioned.position, disabled.position, revoked.position]


def rehash(fields: dict[str, Any]) -> tuple[str, str, str]:
    """(prev_hash, stored hash, recomputed hash) of one exported event, by the recipe in --help."""
    event = dict(fields)
    stored, prev_hash = event.pop("hash"), event.pop("prev_hash")
    body = json.dumps(event, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return prev_hash, stored, hashlib.sha256(bytes.fromhex(prev_hash) + body.encode()).hexdigest()


def assert_chain(events: list[dict[str, Any]], start: str = GENESIS) -> None:
    prev = start
    for event in events:
        prev_hash, stored, recomputed = rehash(event)
        assert prev_hash == prev, event["position"]
        assert recomputed == stored, event["position"]
        prev = stored


def jsonl(text: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in text.split("\n") if line]


async def test_history_table_lists_a_revoked_users_events_in_order(
    database_url: str, pool: asyncpg.Pool, writer: GroupCommitWriter, master_keys: MasterKeyRing
) -> None:
    """The table's rows are the user's events, oldest first, with reason, source and position."""
    positions = await revoked_user(pool, writer, master_keys)
    done = await run("history", "alice", url=database_url)
    assert done.returncode == 0, done.stderr
    header, rule, *rows = done.stdout.splitlines()
    assert header.split() == ["time", "event", "reason", "source", "position"]
    assert set(rule.replace(" ", "")) == {"-"}
    assert [row.split()[1:] for row in rows] == [
        ["credential.provisioned", "astrolabe", str(positions[0])],
        ["user.disabled", "nextcloud", str(positions[1])],
        ["credential.revoked", "admin", "admin-script", str(positions[2])],
    ]


async def test_history_json_holds_the_timeline_in_order(
    database_url: str, pool: asyncpg.Pool, writer: GroupCommitWriter, master_keys: MasterKeyRing
) -> None:
    """--format json: a list of entries with every column, in log order."""
    positions = await revoked_user(pool, writer, master_keys)
    done = await run("history", "alice", "--format", "json", url=database_url)
    assert done.returncode == 0, done.stderr
    entries = json.loads(done.stdout)
    assert [(e["event"], e["reason"], e["source"], e["position"]) for e in entries] == [
        ("credential.provisioned", "", "astrolabe", positions[0]),
        ("user.disabled", "", "nextcloud", positions[1]),
        ("credential.revoked", "admin", "admin-script", positions[2]),
    ]
    assert all(datetime.fromisoformat(e["time"]).tzinfo is not None for e in entries)


async def test_history_csv_has_a_header_and_one_row_per_event(
    database_url: str, pool: asyncpg.Pool, writer: GroupCommitWriter, master_keys: MasterKeyRing
) -> None:
    """--format csv: the columns as a header, then the events in order."""
    positions = await revoked_user(pool, writer, master_keys)
    done = await run("history", "alice", "--format", "csv", url=database_url)
    assert done.returncode == 0, done.stderr
    rows = list(csv.DictReader(io.StringIO(done.stdout)))
    assert [(r["event"], r["reason"], int(r["position"])) for r in rows] == [
        ("credential.provisioned", "", positions[0]),
        ("user.disabled", "", positions[1]),
        ("credential.revoked", "admin", positions[2]),
    ]


async def test_history_never_prints_the_ciphertext(
    database_url: str,
    pool: asyncpg.Pool,
    writer: GroupCommitWriter,
    master_keys: MasterKeyRing,
    owner: asyncpg.Connection,
) -> None:
    """No format shows the sealed secret of the provisioning."""
    positions = await revoked_user(pool, writer, master_keys)
    data = json.loads(await owner.fetchval("SELECT data::text FROM events WHERE position = $1", positions[0]))
    for fmt in ("table", "json", "csv"):
        done = await run("history", "alice", "--format", fmt, url=database_url)
        assert data["secret"]["ciphertext"] not in done.stdout
        assert PASSWORD not in done.stdout


async def test_history_of_a_user_the_log_never_mentioned_exits_1(database_url: str) -> None:
    """Exit 1, nothing on stdout, and a sentence on stderr naming the user."""
    done = await run("history", "nobody", url=database_url)
    assert done.returncode == 1
    assert done.stdout == ""
    assert "no event about user 'nobody'" in done.stderr


async def test_export_jsonl_has_every_event_in_order_and_rehashes(
    database_url: str,
    pool: asyncpg.Pool,
    writer: GroupCommitWriter,
    master_keys: MasterKeyRing,
    owner: asyncpg.Connection,
) -> None:
    """Every line parses, one per event, in position order, and the chain recomputes from the genesis."""
    await revoked_user(pool, writer, master_keys)
    for n in range(5):
        await writer.append(new_event(stream=f"user{n}", data={"note": "ünïcode ✓", "n": n}))
    done = await run("export", url=database_url)
    assert done.returncode == 0, done.stderr
    events = jsonl(done.stdout)
    stored = await owner.fetch("SELECT position, hash FROM events ORDER BY position")
    assert [e["position"] for e in events] == [row["position"] for row in stored]
    assert [e["hash"] for e in events] == [bytes(row["hash"]).hex() for row in stored]
    assert all(tuple(sorted(e)) == tuple(sorted(ENVELOPE_FIELDS)) for e in events)
    assert_chain(events)


async def test_export_lines_are_in_canonical_form(database_url: str, writer: GroupCommitWriter) -> None:
    """Each line is itself sorted, compact, UTF-8 JSON with times as YYYY-MM-DDTHH:MM:SS.ffffffZ."""
    await writer.append(new_event(data={"b": 1, "a": "é"}))
    done = await run("export", url=database_url)
    line = done.stdout.split("\n")[0]
    event = json.loads(line)
    assert line == json.dumps(event, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    assert event["occurred_at"] == "2026-12-01T12:00:00.123456Z"
    assert event["recorded_at"].endswith("Z")


async def test_export_csv_round_trips(
    database_url: str, pool: asyncpg.Pool, writer: GroupCommitWriter, master_keys: MasterKeyRing
) -> None:
    """A header of the envelope's fields, one row per event, and each row re-hashes."""
    await revoked_user(pool, writer, master_keys)
    done = await run("export", "--format", "csv", url=database_url)
    assert done.returncode == 0, done.stderr
    reader = csv.DictReader(io.StringIO(done.stdout, newline=""))
    assert tuple(reader.fieldnames or ()) == ENVELOPE_FIELDS
    events = []
    for row in reader:
        event: dict[str, Any] = dict(row)
        for name in ("position", "stream_version", "schema_version"):
            event[name] = int(row[name])
        event["data"], event["metadata"] = json.loads(row["data"]), json.loads(row["metadata"])
        events.append(event)
    assert [e["position"] for e in events] == list(range(1, len(events) + 1))
    assert_chain(events)


async def test_export_since_keeps_only_events_recorded_from_then(
    database_url: str, writer: GroupCommitWriter, owner: asyncpg.Connection
) -> None:
    """--since filters on recorded_at, inclusive; the range links on from the event before it."""
    for _ in range(6):
        await writer.append(new_event())
    since: datetime = await owner.fetchval("SELECT recorded_at FROM events WHERE position = 4")
    wanted = await owner.fetch("SELECT position FROM events WHERE recorded_at >= $1 ORDER BY position", since)
    done = await run("export", "--since", since.isoformat(), url=database_url)
    assert done.returncode == 0, done.stderr
    events = jsonl(done.stdout)
    assert [e["position"] for e in events] == [row["position"] for row in wanted]
    before = await owner.fetchval("SELECT hash FROM events WHERE position = $1", events[0]["position"] - 1)
    assert_chain(events, start=bytes(before).hex())


async def test_export_streams_more_events_than_one_fetch_holds(
    database_url: str, writer: GroupCommitWriter, tmp_path: Path
) -> None:
    """1,200 events through a cursor fetching 100 at a time all reach the file, in order."""
    await asyncio.gather(*(writer.append(new_event(stream=f"user{n % 9}")) for n in range(1200)))
    output = tmp_path / "log.jsonl"
    done = await run("export", "--prefetch", "100", "--output", str(output), url=database_url)
    assert done.returncode == 0, done.stderr
    events = jsonl(output.read_text(encoding="utf-8"))
    assert [e["position"] for e in events] == list(range(1, 1201))
    assert "exported 1200 events (positions 1 to 1200)" in done.stderr
    assert_chain(events)


async def test_export_draws_a_progress_bar_on_a_terminal(
    database_url: str, writer: GroupCommitWriter
) -> None:
    """With stderr a terminal, the bar reaches the head position."""

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    for _ in range(3):
        await writer.append(new_event())
    bar, sink = Terminal(), io.StringIO()
    count, first, last = await export_events(
        database_url, sink, output_format="jsonl", since=None, until=None, prefetch=2, progress_stream=bar
    )
    assert (count, first, last) == (3, 1, 3)
    assert "export [##############################] 3/3" in bar.getvalue()


async def test_a_bad_since_exits_2_with_a_clear_message(database_url: str) -> None:
    """A time without an offset (or not a time) is refused before anything is read."""
    for value in ("yesterday", "2026-01-01T00:00:00", "2026-01-01"):
        done = await run("export", "--since", value, url=database_url)
        assert done.returncode == 2
        assert "ISO-8601 date and time with its UTC offset" in done.stderr
        assert done.stdout == ""


async def test_since_after_until_exits_2(database_url: str) -> None:
    """An empty range is a mistake worth saying so, not an empty export."""
    done = await run(
        "export", "--since", "2026-02-01T00:00:00Z", "--until", "2026-01-01T00:00:00Z", url=database_url
    )
    assert done.returncode == 2
    assert "--since must be earlier than --until" in done.stderr
