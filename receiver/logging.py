"""structlog, configured once at start-up: JSON lines (console on a terminal), context, redaction."""

from __future__ import annotations

import functools
import logging
import re
import sys
from collections.abc import MutableMapping
from typing import Any

import structlog

# Keys whose values are secrets whatever they hold; values that look like credentials anywhere.
_SECRET_KEYS = re.compile(
    r"pass(word)?|secret|token|authori[sz]ation|cookie|api[_-]?key|private|master[_-]?key|"
    r"signing[_-]?key|ciphertext|app_password",
    re.IGNORECASE,
)
_SECRET_VALUES = re.compile(
    r"(whsec_[A-Za-z0-9+/=]+|Basic\s+[A-Za-z0-9+/=]+|Bearer\s+\S+|cl_(auditor|admin)_[A-Za-z0-9_-]+)"
)
REDACTED = "[redacted]"


@functools.lru_cache(maxsize=4096)
def _names_a_secret(key: str) -> bool:
    # Log keys are a small, fixed vocabulary: classify each once, not on every line.
    return _SECRET_KEYS.search(key) is not None


def redact_secrets(
    logger: Any, method_name: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """Drop the value of any key that names a secret, and mask values shaped like credentials."""
    for key, value in list(event_dict.items()):
        if _names_a_secret(key):
            event_dict[key] = REDACTED
        elif isinstance(value, str):
            event_dict[key] = _SECRET_VALUES.sub(REDACTED, value)
    return event_dict


def configure_logging(log_format: str | None = None, level: int = logging.INFO) -> None:
    """Configure structlog (and the stdlib loggers libraries use) for the whole process."""
    if log_format is None:
        log_format = "console" if sys.stderr.isatty() else "json"
    renderer: Any = (
        structlog.dev.ConsoleRenderer() if log_format == "console" else structlog.processors.JSONRenderer()
    )
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        redact_secrets,
    ]
    structlog.configure(
        processors=[*shared, structlog.processors.format_exc_info, renderer],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=structlog.PrintLoggerFactory(sys.stderr),
        cache_logger_on_first_use=True,
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=shared,
            processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer],
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(max(level, logging.WARNING))
    # APScheduler says so each time a tick is still running when the next is due; coalescing that
    # is the point of max_instances=1, not a problem worth a warning line per second.
    logging.getLogger("apscheduler").setLevel(logging.ERROR)
