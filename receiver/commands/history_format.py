"""One user's credential timeline as a table, JSON or CSV: for `history`, the demo and the audit page."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from typing import Any

from events.envelope import RecordedEvent

COLUMNS = ("time", "event", "reason", "source", "position")


def event_reason(event: RecordedEvent) -> str:
    """Why it happened, in a few words: a revocation's reason, a failure's error, or nothing."""
    data = event.data
    return str(data.get("reason") or data.get("error") or data.get("detail") or "")


def timeline_row(event: RecordedEvent) -> dict[str, Any]:
    """What an auditor reads of one event: never the ciphertext, always the position."""
    return {
        "time": event.recorded_at.isoformat(timespec="seconds"),
        "event": event.type,
        "reason": event_reason(event),
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
