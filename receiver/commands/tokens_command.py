"""`tokens create|revoke|list`: auditor and admin bearer tokens, issued and withdrawn as events."""

from __future__ import annotations

import argparse
import asyncio
import sys
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

import asyncpg

from events.envelope import SYSTEM_STREAM, Appended
from events.event_types import TokenRevoked, to_new_event
from events.writer import GroupCommitWriter
from projections.api_tokens import TOKEN_ID, TOKEN_ROLES, ApiToken, list_tokens, load_token
from receiver.bearer_tokens import issue_token
from receiver.commands.ledger import open_ledger
from receiver.logging import configure_logging
from receiver.settings import Settings

SOURCE = "credledger-cli"
NAME_LIMIT = 200
EXIT_UNKNOWN = 1


@dataclass(frozen=True, slots=True)
class IssuedToken:
    """A token just created: its text (shown once, then gone) and where token.created stands."""

    token: str
    token_id: str
    appended: Appended

    def __repr__(self) -> str:
        return f"IssuedToken(token_id={self.token_id!r}, …)"


def _name(value: str) -> str:
    name = value.strip()
    if not name or len(name) > NAME_LIMIT or any(ord(c) < 32 or ord(c) == 127 for c in name):
        raise argparse.ArgumentTypeError(f"a name of 1 to {NAME_LIMIT} printable characters")
    return name


def _token_id(value: str) -> str:
    if not TOKEN_ID.match(value):
        raise argparse.ArgumentTypeError("a token id is 12 lowercase hex characters (see `tokens list`)")
    return value


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    tokens = commands.add_parser("tokens", help="auditor and admin bearer tokens")
    actions = tokens.add_subparsers(dest="tokens_command", required=True, metavar="ACTION")

    create = actions.add_parser(
        "create",
        help="issue a token and print it once",
        description="Issue a bearer token for the audit API (auditor) or the admin API (admin). "
        "The token is printed once on stdout and never again: only its SHA-256 is kept, in a "
        "token.created event. Roles do not nest: an admin token does not open audit routes.",
    )
    create.add_argument("--role", required=True, choices=TOKEN_ROLES, help="auditor or admin")
    create.add_argument("--name", required=True, type=_name, help="who or what holds the token")
    create.set_defaults(run=create_command)

    revoke = actions.add_parser(
        "revoke",
        help="withdraw a token at once",
        description="Append token.revoked: the token is refused from the moment this returns.",
    )
    revoke.add_argument("token_id", metavar="TOKEN_ID", type=_token_id, help="as shown by `tokens list`")
    revoke.set_defaults(run=revoke_command)

    listing = actions.add_parser("list", help="every token: id, name, role, created, revoked")
    listing.set_defaults(run=list_command)


async def create_token(writer: GroupCommitWriter, *, role: str, name: str) -> IssuedToken:
    """Issue a token and append its token.created event; returns after the event committed."""
    token, created = issue_token(role, name)
    appended = await writer.append(to_new_event(created, stream=SYSTEM_STREAM, source=SOURCE))
    return IssuedToken(token, created.token_id, appended)


RevokeOutcome = Literal["revoked", "already_revoked", "unknown"]


async def revoke_token(pool: asyncpg.Pool, writer: GroupCommitWriter, token_id: str) -> RevokeOutcome:
    """Append token.revoked for a live token; an unknown or already revoked one appends nothing."""
    async with pool.acquire() as conn:
        stored = await load_token(conn, token_id)
    if stored is None:
        return "unknown"
    if stored.revoked:
        return "already_revoked"
    await writer.append(to_new_event(TokenRevoked(token_id), stream=SYSTEM_STREAM, source=SOURCE))
    return "revoked"


def _time(value: datetime | None) -> str:
    return "-" if value is None else value.isoformat(timespec="seconds")


def format_tokens(tokens: list[ApiToken]) -> str:
    """A table of tokens for the terminal; the digest is never among its columns."""
    rows = [("TOKEN_ID", "ROLE", "NAME", "CREATED", "REVOKED")]
    rows += [(t.token_id, t.role, t.name, _time(t.created_at), _time(t.revoked_at)) for t in tokens]
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join(
        "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip() for row in rows
    )


def create_command(args: argparse.Namespace, settings: Settings) -> int:
    """Print the new token on stdout (once), and on stderr that it will not be shown again."""
    configure_logging(settings.log_format)

    async def run() -> IssuedToken:
        async with open_ledger(settings) as ledger:
            return await create_token(ledger.writer, role=args.role, name=args.name)

    issued = asyncio.run(run())
    print(
        f"created {args.role} token {issued.token_id} for {args.name!r}; the token follows on stdout. "
        "It will not be shown again: store it now.",
        file=sys.stderr,
    )
    print(issued.token)
    return 0


def revoke_command(args: argparse.Namespace, settings: Settings) -> int:
    """Revoke; exit 1 for an unknown token, 0 when it is (or already was) revoked."""
    configure_logging(settings.log_format)

    async def run() -> RevokeOutcome:
        async with open_ledger(settings) as ledger:
            return await revoke_token(ledger.pool, ledger.writer, args.token_id)

    outcome = asyncio.run(run())
    if outcome == "unknown":
        print(f"tokens revoke: no token {args.token_id} (see `credledger tokens list`)", file=sys.stderr)
        return EXIT_UNKNOWN
    if outcome == "already_revoked":
        print(f"token {args.token_id} was already revoked")
    else:
        print(f"revoked token {args.token_id}")
    return 0


def list_command(args: argparse.Namespace, settings: Settings) -> int:
    """Print every token, revoked ones included."""
    configure_logging(settings.log_format)

    async def run() -> list[ApiToken]:
        async with open_ledger(settings) as ledger, ledger.pool.acquire() as conn:
            return await list_tokens(conn)

    print(format_tokens(asyncio.run(run())))
    return 0
