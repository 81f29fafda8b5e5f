"""Loading migration files and judging what the database already has."""

from __future__ import annotations

from pathlib import Path

import pytest

from events.errors import MigrationError
from events.migrations import Migration, check_applied, load_migrations


def test_shipped_migrations_are_numbered_from_one_without_gaps() -> None:
    """sql/ holds 0001, 0002, … in order."""
    versions = [m.version for m in load_migrations()]
    assert versions == list(range(1, len(versions) + 1))


def test_a_badly_named_file_is_refused(tmp_path: Path) -> None:
    """Only NNNN_description.sql is a migration."""
    (tmp_path / "1_events.sql").write_text("SELECT 1;")
    with pytest.raises(MigrationError, match="NNNN_description"):
        load_migrations(tmp_path)


def test_a_number_used_twice_is_refused(tmp_path: Path) -> None:
    """Two files cannot both be version 1."""
    (tmp_path / "0001_a.sql").write_text("SELECT 1;")
    (tmp_path / "0001_b.sql").write_text("SELECT 2;")
    with pytest.raises(MigrationError, match="used twice"):
        load_migrations(tmp_path)


def test_a_changed_applied_file_is_refused_by_name() -> None:
    """The error names the file whose checksum no longer matches."""
    migration = Migration(1, "events", "SELECT 1;")
    with pytest.raises(MigrationError, match=r"0001_events\.sql has changed"):
        check_applied([migration], {1: "0" * 64})


def test_a_migration_unknown_to_this_release_is_refused() -> None:
    """A database migrated by a newer release is not silently used."""
    with pytest.raises(MigrationError, match="newer release"):
        check_applied([], {7: "0" * 64})


def test_pending_migrations_are_those_not_applied() -> None:
    """Applied ones with matching checksums are skipped."""
    first, second = Migration(1, "a", "SELECT 1;"), Migration(2, "b", "SELECT 2;")
    assert check_applied([first, second], {1: first.checksum}) == [second]
