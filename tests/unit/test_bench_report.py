"""docs/benchmarks.md is what the benchmarks printed, with the machine and the commands beside it."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from bench.report import BENCHMARKS, Benchmark, render

WHEN = datetime(2026, 12, 4, 12, 0, tzinfo=UTC)
APPEND = next(b for b in BENCHMARKS if b.name == "append")


@pytest.fixture(autouse=True)
def _embedded_server(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CREDLEDGER_BENCH_DATABASE_URL", raising=False)


def test_the_output_is_kept_verbatim_under_its_command() -> None:
    """A figure in the document is the benchmark's own line, beside the command that printed it."""
    output = "writer    concurrency  64:     15,244 appends/s  ratio  1.36"
    document = render([("cores", "2")], [(APPEND, output, 0, 41.0)], WHEN)
    assert "make bench-append    # python -m bench.append" in document
    assert f"```\n{output}\n```" in document


def test_the_machine_and_the_date_are_recorded() -> None:
    """Figures without the machine they came from mean nothing on a shared VM."""
    document = render([("cores", "2"), ("PostgreSQL", "16.2 (embedded)")], [], WHEN)
    assert "| cores | 2 |" in document
    assert "| PostgreSQL | 16.2 (embedded) |" in document
    assert "2026-12-04 12:00 UTC" in document


def test_a_failed_benchmark_says_so() -> None:
    """A benchmark that exits non-zero is marked failed, not silently kept as figures."""
    document = render([], [(APPEND, "Traceback ...", 1, 3.0)], WHEN)
    assert "FAILED with exit status 1" in document


def test_the_server_url_is_part_of_the_command(monkeypatch: pytest.MonkeyPatch) -> None:
    """Figures measured on the configured server show how to point the benchmark at it again."""
    monkeypatch.setenv("CREDLEDGER_BENCH_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
    document = render([], [(APPEND, "x", 0, 1.0)], WHEN)
    assert (
        "CREDLEDGER_BENCH_DATABASE_URL=postgresql://postgres@127.0.0.1:5432/postgres make bench-append"
        in document
    )


def test_every_benchmark_names_its_target() -> None:
    """Each section says what it is measured against."""
    assert all(isinstance(b, Benchmark) and b.target for b in BENCHMARKS)


def test_a_password_in_the_server_url_never_reaches_the_document(monkeypatch: pytest.MonkeyPatch) -> None:
    """The command shown keeps the URL's shape but not its password."""
    monkeypatch.setenv("CREDLEDGER_BENCH_DATABASE_URL", "postgresql://bench:s3cr3t-pw@db.example.org:5432/b")
    document = render([], [(APPEND, "x", 0, 1.0)], WHEN)
    assert "s3cr3t-pw" not in document
    assert (
        "CREDLEDGER_BENCH_DATABASE_URL=postgresql://bench:***@db.example.org:5432/b make bench-append"
        in document
    )
