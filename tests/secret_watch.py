"""Secrets the suite hands out, and the check that none of them shows up where it must not."""

from __future__ import annotations

WATCHED: set[str] = set()


def watch(secret: str) -> str:
    """Remember `secret` for the leak checks; returns it."""
    WATCHED.add(secret)
    return secret


def leaks(text: str) -> list[str]:
    """The watched secrets found in `text`."""
    return [secret for secret in WATCHED if secret in text]
