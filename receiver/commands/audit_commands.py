"""`history` and `export`: an auditor's reading of the log from the command line."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import csv
import io
import os
import sys
import tempfile
from collections.abc import AsyncGenerator, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO, cast

import asyncpg

from events.canonical import canonical_json
from events.database import connect_owner
from events.envelope import ENVELOPE_FIELDS, SYSTEM_STREAM, RecordedEvent, envelope_json
from events.reading import head, iter_events
from projections.queries import history
from receiver.commands.history_format import FORMATS
from receiver.database import database_url
from receiver.identifiers import valid_user_id
from receiver.logging import configure_logging
from receiver.progress import ProgressBar
from receiver.settings import Settings

EXIT_NO_HISTORY = 1
EXIT_USAGE = 2
DEFAULT_PREFETCH = 2000


EXPORT_DESCRIPTION = """\
Write every event of the log (or of a --since/--until range of recorded_at), in position order,
from one consistent snapshot, as it reads them: memory stays constant however long the log is.
With --output the file appears only once the export is complete.

Each event carries the whole envelope: position, event_id, source, stream, stream_version, type,
schema_version, data, metadata, occurred_at, recorded_at, prev_hash and hash. Times are in UTC as
YYYY-MM-DDTHH:MM:SS.ffffffZ and the hashes in lowercase hex: exactly the spelling the chain was
hashed over (docs/architecture.md, "The hash chain and the canonical form"). Nothing is withheld,
since a hash can only be recomputed over everything it covers: the file holds the ciphertext of
app passwords and the SHA-256 digests of API tokens. Keep it as confidential as the database.

jsonl: one JSON object per line, in canonical form itself (keys sorted, no spaces, UTF-8).
Split lines on "\\n" only. Each line re-hashes as follows (Python; any language will do):

    import hashlib, json
    prev = "00" * 32   # the genesis; for a --since export, the hash of the position before it
    for line in open("export.jsonl", encoding="utf-8"):
        event = json.loads(line)
        stored, prev_hash = event.pop("hash"), event.pop("prev_hash")
        assert prev_hash == prev, f"position {event['position']} does not link"
        body = json.dumps(event, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        assert hashlib.sha256(bytes.fromhex(prev_hash) + body.encode()).hexdigest() == stored
        prev = stored

csv: a header row, then one row per event, columns in the order above; data and metadata hold
their canonical JSON text. To re-hash a row, turn position, stream_version and schema_version
back into integers and data and metadata back into objects, drop the two hashes, and go on as
for jsonl.

A progress bar is drawn on stderr when it is a terminal.
"""


def _stream_name(value: str) -> str:
    if value != SYSTEM_STREAM and not valid_user_id(value):
        raise argparse.ArgumentTypeError("not a valid Nextcloud user id (or `system`)")
    return value


def iso_time(value: str) -> datetime:
    """An ISO-8601 date and time with its UTC offset, as an aware datetime in UTC."""
    try:
        moment = datetime.fromisoformat(value.strip())
    except ValueError:
        moment = None
    # A date, or a time without an offset, is refused rather than guessed at: the zone of the
    # machine running the command is not the log's.
    if moment is None or moment.tzinfo is None:
        raise argparse.ArgumentTypeError(
            f"{value!r} is not an ISO-8601 date and time with its UTC offset, e.g. 2026-01-01T00:00:00Z"
        )
    try:
        return moment.astimezone(UTC)
    except OverflowError:
        raise argparse.ArgumentTypeError(f"{value!r} is out of range") from None


def _prefetch(value: str) -> int:
    try:
        rows = int(value)
    except ValueError:
        rows = 0
    if rows < 1:
        raise argparse.ArgumentTypeError("a whole number of rows, at least 1")
    return rows


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register `history` and `export`."""
    timeline = commands.add_parser(
        "history",
        help="one user's credential timeline (time, event, reason, source, position)",
        description="Print every event of the user's stream, oldest first. Exit 1 when the log "
        "holds no event about the user.",
    )
    timeline.add_argument("user_id", metavar="USER_ID", type=_stream_name, help="the Nextcloud user id")
    timeline.add_argument(
        "--format", choices=tuple(FORMATS), default="table", help="table (default), json or csv"
    )
    timeline.set_defaults(run=history_command)

    export = commands.add_parser(
        "export",
        help="stream the log (or a time range of it) as JSON lines or CSV, re-hashable",
        description=EXPORT_DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    export.add_argument(
        "--since", type=iso_time, metavar="ISO", help="only events recorded at or after this time"
    )
    export.add_argument("--until", type=iso_time, metavar="ISO", help="only events recorded before this time")
    export.add_argument("--format", choices=("jsonl", "csv"), default="jsonl", help="jsonl (default) or csv")
    export.add_argument("--output", type=Path, metavar="FILE", help="write here instead of stdout")
    export.add_argument(
        "--prefetch",
        type=_prefetch,
        default=DEFAULT_PREFETCH,
        metavar="ROWS",
        help=f"rows fetched per round trip, the most ever held in memory (default {DEFAULT_PREFETCH})",
    )
    export.set_defaults(run=export_command)


def history_command(args: argparse.Namespace, settings: Settings) -> int:
    """Print the timeline in the chosen format; exit 1 when the log never mentions the user."""
    configure_logging(settings.log_format)

    async def run() -> list[RecordedEvent]:
        async with database_url(settings) as url:
            conn = await connect_owner(url)
            try:
                return await history(conn, args.user_id)
            finally:
                await conn.close()

    try:
        events = asyncio.run(run())
    except asyncpg.UndefinedTableError:
        print("history: the database holds no log yet (run `credledger migrate`)", file=sys.stderr)
        return EXIT_USAGE
    if not events:
        print(f"history: the log holds no event about user {args.user_id!r}", file=sys.stderr)
        return EXIT_NO_HISTORY
    text = FORMATS[args.format](events)
    print(text, end="" if text.endswith("\n") else "\n")
    return 0


envelope = envelope_json


def jsonl_line(event: RecordedEvent) -> str:
    """One export line: the envelope with its hashes, in canonical JSON."""
    return canonical_json(envelope(event)) + "\n"


def csv_row(event: RecordedEvent) -> list[Any]:
    """One export row, columns in ENVELOPE_FIELDS order; data and metadata as canonical JSON."""
    fields = envelope(event)
    fields["data"] = canonical_json(fields["data"])
    fields["metadata"] = canonical_json(fields["metadata"])
    return [fields[name] for name in ENVELOPE_FIELDS]


@contextlib.contextmanager
def _destination(output: Path | None) -> Iterator[TextIO]:
    if output is None:
        # The canonical form is UTF-8 by definition, whatever the terminal's locale says.
        if isinstance(sys.stdout, io.TextIOWrapper):
            sys.stdout.reconfigure(encoding="utf-8")
        yield sys.stdout
        return
    # Written beside the target and renamed into place on success: a failed or interrupted export
    # never leaves a truncated file that looks whole.
    fd, partial = tempfile.mkstemp(prefix=f".{output.name}.", suffix=".partial", dir=output.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as sink:
            yield sink
        os.replace(partial, output)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(partial)
        raise


async def export_events(
    url: str,
    sink: TextIO,
    *,
    output_format: str,
    since: datetime | None,
    until: datetime | None,
    prefetch: int,
    progress_stream: TextIO | None = None,
) -> tuple[int, int | None, int | None]:
    """Write the matching events to `sink` as they are read; (count, first position, last position)."""
    conn = await connect_owner(url)
    try:
        # The head and the events come from one snapshot, so the bar's total is exact.
        async with conn.transaction(isolation="repeatable_read", readonly=True):
            last = await head(conn)
            bar = ProgressBar(last[0] if last else 0, "export", progress_stream)
            writer = csv.writer(sink, lineterminator="\n") if output_format == "csv" else None
            if writer is not None:
                writer.writerow(ENVELOPE_FIELDS)
            count, first_position, last_position = 0, None, None
            rows = cast(
                AsyncGenerator[RecordedEvent, None],
                iter_events(conn, since=since, until=until, prefetch=prefetch),
            )
            async with contextlib.aclosing(rows) as events:
                async for event in events:
                    if writer is not None:
                        writer.writerow(csv_row(event))
                    else:
                        sink.write(jsonl_line(event))
                    count += 1
                    if first_position is None:
                        first_position = event.position
                    last_position = event.position
                    # Progress is how far through the log the export has read, by position.
                    bar.update(event.position)
            bar.update(last[0] if last else 0)
            bar.close()
    finally:
        await conn.close()
    return count, first_position, last_position


def export_command(args: argparse.Namespace, settings: Settings) -> int:
    """Stream the range to --output or stdout; say on stderr how many events went out."""
    configure_logging(settings.log_format)
    if args.since is not None and args.until is not None and args.since >= args.until:
        print("export: --since must be earlier than --until", file=sys.stderr)
        return EXIT_USAGE
    if args.output is not None and not args.output.parent.is_dir():
        print(f"export: the folder of {str(args.output)!r} does not exist", file=sys.stderr)
        return EXIT_USAGE

    async def run() -> tuple[int, int | None, int | None]:
        async with database_url(settings) as url:
            with _destination(args.output) as sink:
                return await export_events(
                    url,
                    sink,
                    output_format=args.format,
                    since=args.since,
                    until=args.until,
                    prefetch=args.prefetch,
                )

    try:
        count, first, last = asyncio.run(run())
    except asyncpg.UndefinedTableError:
        print("export: the database holds no log yet (run `credledger migrate`)", file=sys.stderr)
        return EXIT_USAGE
    except BrokenPipeError:
        # The reader (`| head`, say) went away: nothing more to say, and stdout now points nowhere
        # so that the interpreter's final flush does not complain about the pipe either.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    where = f"to {args.output}" if args.output is not None else "to stdout"
    span = f" (positions {first} to {last})" if count else ""
    print(f"exported {count} events{span} {where}", file=sys.stderr)
    return 0
