"""The `credledger` command line: one subcommand per job, each a thin call into the layers below."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence

from receiver.commands import (
    demo_command,
    keys_command,
    log_commands,
    projections_command,
    send_command,
    serve_command,
    tokens_command,
)
from receiver.settings import Settings

Command = Callable[[argparse.Namespace, Settings], int]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="credledger",
        description="A tamper-evident credential ledger beside Nextcloud. Settings come from "
        "CREDLEDGER_* environment variables; with CREDLEDGER_DATABASE_URL unset, commands run "
        "against an embedded PostgreSQL under CREDLEDGER_DATA_DIR (./var).",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    serve = commands.add_parser("serve", help="migrate, then run the HTTP service")
    serve.set_defaults(run=serve_command.serve)

    migrate = commands.add_parser("migrate", help="apply pending migrations from sql/")
    migrate.set_defaults(run=log_commands.migrate)

    verify = commands.add_parser(
        "verify",
        help="recompute the hash chain; exit 0 when intact, 1 when tampered",
        description="Recompute every event's hash from position 1 and check positions, links "
        "and stream versions. Prints the head when intact (exit 0), or the first bad position "
        "and why (exit 1). Exit 2 when the check could not run.",
    )
    verify.set_defaults(run=log_commands.verify)

    projections_command.add_parser(commands)
    keys_command.add_parser(commands)
    tokens_command.add_parser(commands)
    send_command.add_parser(commands)
    demo_command.add_parser(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the console script."""
    args = build_parser().parse_args(argv)
    settings = Settings()
    run: Command = args.run
    try:
        return run(args, settings)
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
