"""One user's credential timeline as a table, JSON or CSV: for `credledger history` and the demo."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from typing import Any

from events.envelope import RecordedEvent

COLUMNS = ("time", "event", "reason", "source", "position")


def timeline_row(event: RecordedEvent) -> dict[str, Any]:
    """What an auditor reads of one event: never the ciphertext, always the position."""
    data = event.data
    reason = data.get("reason") or data.get("error") or data.get("detail") or ""
    return {
        "time": event.recorded_at.isoformat(timespec="seconds"),
        "event": event.type,
        "reason": str(reason),
        "source": event.source,
        "position": event.position,
    }


def as_table(events: Sequence[RecordedEvent]) -> str:
    rows = [timeline_row(e) for e in events]
    widths = {c: max([len(c), *(len(str(r[c])) for r in rows)]) for c in COLUMNS}
    lines = ["  ".join(c.ljust(widths[c]) for c in COLUMNS)]
    lines.append("  ".join("-" * widths[c] for c in COLUMNS))
    lines.extend("  ".join(str(r[c]).ljust(widths[c]) for c in COLUMNS) for r in rows)
    return "\n".join(lines)


def as_json(events: Sequence[RecordedEvent]) -> str:
    return json.dumps([timeline_row(e) for e in events], indent=2)


def as_csv(events: Sequence[RecordedEvent]) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(timeline_row(e) for e in events)
    return buffer.getvalue()


FORMATS = {"table": as_table, "json": as_json, "csv": as_csv}
