"""What `credledger config --check` finds in the current settings: every problem, each naming its setting.

Secrets are judged, never shown: a finding about one says "set" or "unset" and, for master keys and
webhook secrets, their key ids, and error messages are those of parsers that never quote their input.
"""

from __future__ import annotations

import base64
import binascii
import difflib
import ipaddress
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Literal
from urllib.parse import parse_qs, urlsplit

import asyncpg

from events.crypto import InvalidKeyMaterial, MasterKeyRing
from events.database import SERVICE_ROLE
from events.errors import MigrationError
from events.migrations import applied_checksums, check_applied, load_migrations
from receiver.configuration_reference import default_text
from receiver.settings import (
    SECRET_SETTINGS,
    Settings,
    env_name,
    file_env_name,
    invalid_values,
    read_environment,
)
from receiver.webhook_signatures import InvalidSecret, parse_secrets

Level = Literal["ok", "note", "problem"]

SIGNING_KEY_BYTES = 32
DEFAULT_CONNECT_TIMEOUT = 3.0


@dataclass(frozen=True, slots=True)
class Finding:
    """One line of the check: which setting, how it stands, and why."""

    setting: str
    level: Level
    message: str


Verdict = tuple[Level, str]


def _webhook_secrets(text: str) -> Verdict:
    try:
        secrets = parse_secrets(text)
    except InvalidSecret as error:
        return "problem", str(error)
    ids = ", ".join(s.key_id for s in secrets)
    return "ok", f"set: {len(secrets)} secret{'s' if len(secrets) > 1 else ''}, key ids {ids} (newest first)"


def _master_keys(text: str) -> Verdict:
    try:
        ring = MasterKeyRing.parse(text)
    except InvalidKeyMaterial as error:
        return "problem", str(error)
    ids = ", ".join(repr(k.key_id) for k in ring.keys)
    return "ok", f"set: key ids {ids}; {ring.newest.key_id!r} wraps new data keys"


def _signing_key(text: str) -> Verdict:
    try:
        key = base64.b64decode(text.strip(), validate=True)
    except (binascii.Error, ValueError):
        return "problem", "not valid base64"
    if len(key) != SIGNING_KEY_BYTES:
        return (
            "problem",
            f"must be base64 of {SIGNING_KEY_BYTES} bytes (an Ed25519 private key), not {len(key)}",
        )
    return "ok", "set"


def _nextcloud_url(text: str) -> Verdict:
    parts = urlsplit(text.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return "problem", "must be an http:// or https:// URL with a host, e.g. https://cloud.example.org"
    if parts.scheme == "http" and parts.hostname not in ("localhost", "127.0.0.1", "::1"):
        # App passwords travel in every request to Nextcloud.
        return "note", f"{text}: plain http sends app passwords unencrypted; use https://"
    return "ok", text


def _trusted_proxies(text: str) -> Verdict:
    entries = [e.strip() for e in text.split(",") if e.strip()]
    for entry in entries:
        try:
            canonical = str(ipaddress.ip_address(entry))
        except ValueError:
            return "problem", f"{entry!r} is not an IP address (ranges and names are not supported)"
        if canonical != entry:
            # The peer address is compared as text, so another spelling would never match.
            return "problem", f"{entry!r} must be written {canonical!r}"
    return "ok", ", ".join(entries) if entries else "none: X-Forwarded-For is never believed"


SYNC_CHECKS: dict[str, Callable[[str], Verdict]] = {
    "webhook_secrets": _webhook_secrets,
    "master_keys": _master_keys,
    "signing_key": _signing_key,
    "nextcloud_url": _nextcloud_url,
    "trusted_proxies": _trusted_proxies,
}

# Empty counts as unset for these, as it does where the service reads them.
WHEN_UNSET: dict[str, Verdict] = {
    "database_url": (
        "note",
        "unset: commands start an embedded PostgreSQL under DATA_DIR (not for production)",
    ),
    "webhook_secrets": ("note", "unset: POST /api/v1/events answers 503 and `credledger send` has no secret"),
    "master_keys": ("note", "unset: a development key is generated in DATA_DIR; set one before real use"),
    "signing_key": ("note", "unset: a development key is generated in DATA_DIR; set one before real use"),
    "nextcloud_url": ("note", "unset: no provisioning and no sync"),
}


def _where(url: str) -> str:
    """user@host:port/database of a PostgreSQL URL, without its password."""
    parts = urlsplit(url)
    host = parts.hostname or ",".join(parse_qs(parts.query).get("host", [])) or "local socket"
    port = f":{parts.port}" if parts.port else ""
    user = f"{parts.username}@" if parts.username else ""
    return f"{user}{host}{port}{parts.path or '/'}"


def _without_password(message: str, url: str) -> str:
    password = urlsplit(url).password
    return message.replace(password, "***") if password else message


async def _database_url(text: str, wait_seconds: float) -> Verdict:
    if urlsplit(text).scheme not in ("postgresql", "postgres"):
        return "problem", "must be a postgresql:// URL"
    where = _where(text)
    try:
        conn = await asyncpg.connect(text, timeout=wait_seconds)
    except TimeoutError:
        return "problem", f"{where} did not answer within {wait_seconds:g} s"
    except (OSError, ValueError, asyncpg.PostgresError, asyncpg.InterfaceError) as error:
        detail = _without_password(str(error) or type(error).__name__, text)
        return "problem", f"{where} does not answer: {detail}"
    try:
        version = await conn.fetchval("SELECT current_setting('server_version')")
        role = await conn.fetchval(
            "SELECT pg_has_role(current_user, oid, 'MEMBER') FROM pg_roles WHERE rolname = $1", SERVICE_ROLE
        )
        try:
            pending = check_applied(load_migrations(), await applied_checksums(conn))
        except MigrationError as error:
            return "problem", f"{where}: {error}"
    finally:
        await conn.close()
    if role is False:
        return "problem", f"{where}: this user is not a member of {SERVICE_ROLE}, which the service works as"
    state = f"{len(pending)} migrations pending (`credledger migrate` applies them)" if pending else "current"
    return ("note" if pending else "ok"), f"{where} answers (PostgreSQL {version}); schema: {state}"


async def check_configuration(
    environ: Mapping[str, str] | None = None, *, connect_timeout: float = DEFAULT_CONNECT_TIMEOUT
) -> list[Finding]:
    """One finding per setting (or more for a setting given twice), and a note per unknown name."""
    reading = read_environment(environ)
    invalid = invalid_values(reading.values)
    findings: list[Finding] = []
    for name, info in Settings.model_fields.items():
        setting = env_name(name)
        file_problems = [p for p in reading.problems if p.setting in (setting, file_env_name(name))]
        if file_problems:
            findings.extend(Finding(p.setting, "problem", p.reason) for p in file_problems)
            continue
        if name in invalid:
            findings.append(Finding(setting, "problem", invalid[name]))
            continue
        level, message = await _judge(name, reading.values.get(name), info.default, connect_timeout)
        if reading.origins.get(name) == file_env_name(name):
            message += f" (from {file_env_name(name)})"
        findings.append(Finding(setting, level, message))
    known = [name for field in Settings.model_fields for name in (env_name(field), file_env_name(field))]
    for unknown in reading.unknown:
        guess = difflib.get_close_matches(unknown, known, n=1)
        hint = f" (did you mean {guess[0]}?)" if guess else ""
        findings.append(Finding(unknown, "note", f"not a setting: ignored{hint}"))
    return findings


async def _judge(name: str, text: str | None, default: object, wait_seconds: float) -> Verdict:
    if name in WHEN_UNSET and not text:
        return WHEN_UNSET[name]
    if name == "database_url" and text:
        return await _database_url(text, wait_seconds)
    if name in SYNC_CHECKS:
        return SYNC_CHECKS[name](str(default) if text is None else text)
    if text is None:
        return "ok", f"{default_text(default)} (default)"
    return "ok", "set" if name in SECRET_SETTINGS else text
