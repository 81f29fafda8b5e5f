"""Errors the log raises to its callers."""

from __future__ import annotations


class EventLogError(Exception):
    """Base class of the log's own errors."""


class IdempotencyConflict(EventLogError):
    """The same (source, event_id) was appended before with different content."""

    def __init__(self, source: str, event_id: str, position: int) -> None:
        super().__init__(
            f"event {event_id!r} from {source!r} is already stored at position {position} "
            "with different content"
        )
        self.source = source
        self.event_id = event_id
        self.position = position


class InvalidEvent(EventLogError, ValueError):
    """An event that cannot be stored faithfully (a float, a NUL character, a naive time)."""


class WriterClosed(EventLogError):
    """The group-commit writer is shutting down and takes no new events."""


class MigrationError(EventLogError):
    """The database schema cannot be brought up to date safely."""
