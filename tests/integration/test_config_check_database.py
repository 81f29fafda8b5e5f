"""`config --check` asks CREDLEDGER_DATABASE_URL to answer, briefly, and says what it found."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import asyncpg
import pytest

from receiver.configuration_check import Finding, check_configuration


async def database_finding(url: str, wait_seconds: float = 2) -> Finding:
    findings = await check_configuration({"CREDLEDGER_DATABASE_URL": url}, connect_timeout=wait_seconds)
    return next(f for f in findings if f.setting == "CREDLEDGER_DATABASE_URL")


@pytest.fixture
def closed_port() -> int:
    """A local port nobody listens on."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A local port that accepts connections and never says a word."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        yield int(listener.getsockname()[1])


async def test_a_migrated_database_answers_and_is_current(database_url: str) -> None:
    """The fixture's database: reachable, schema current, no problem."""
    finding = await database_finding(database_url)
    assert finding.level == "ok"
    assert finding.message.endswith("schema: current")


async def test_a_refused_connection_is_a_problem_that_hides_the_password(closed_port: int) -> None:
    """Nothing listening: a problem naming the host, and never the URL's password."""
    finding = await database_finding(f"postgresql://credledger:hunter2-secret@127.0.0.1:{closed_port}/x")
    assert finding.level == "problem"
    assert f"credledger@127.0.0.1:{closed_port}/x does not answer" in finding.message
    assert "hunter2-secret" not in finding.message


async def test_a_server_that_never_answers_is_given_up_on_quickly(silent_port: int) -> None:
    """A listener that never speaks is a problem after the connect timeout, not a hang."""
    finding = await database_finding(f"postgresql://u@127.0.0.1:{silent_port}/x", wait_seconds=0.5)
    assert finding == Finding(
        "CREDLEDGER_DATABASE_URL", "problem", f"u@127.0.0.1:{silent_port}/x did not answer within 0.5 s"
    )


async def test_a_database_without_the_schema_notes_pending_migrations(empty_database_url: str) -> None:
    """Not migrated yet is not a problem: serve and migrate apply what is pending."""
    finding = await database_finding(empty_database_url)
    assert finding.level == "note"
    assert "migrations pending" in finding.message


async def test_a_database_migrated_by_a_newer_release_is_a_problem(
    database_url: str, owner: asyncpg.Connection
) -> None:
    """This release would refuse to start on it, so the check says so first."""
    await owner.execute(
        "INSERT INTO schema_migrations (version, name, checksum) VALUES (9999, 'from_the_future', 'x')"
    )
    finding = await database_finding(database_url)
    assert finding.level == "problem"
    assert "migrated by a newer release" in finding.message


async def test_a_url_that_is_not_postgresql_is_a_problem() -> None:
    """A MySQL URL (a copy-paste slip) is refused before any connection."""
    finding = await database_finding("mysql://db.example.org/credledger")
    assert finding == Finding("CREDLEDGER_DATABASE_URL", "problem", "must be a postgresql:// URL")
