"""The `credledger` command line: one subcommand per job, each a thin call into the layers below."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence

from pydantic import ValidationError

from receiver.commands import (
    audit_commands,
    checkpoint_command,
    config_command,
    demo_command,
    keys_command,
    log_commands,
    projections_command,
    send_command,
    serve_command,
    tokens_command,
)
from receiver.settings import Settings, SettingsFileError

Command = Callable[[argparse.Namespace, Settings], int]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="credledger",
        description="A tamper-evident credential ledger beside Nextcloud. Settings come from "
        "CREDLEDGER_* environment variables (or CREDLEDGER_*_FILE files); with "
        "CREDLEDGER_DATABASE_URL unset, commands run against an embedded PostgreSQL under "
        "CREDLEDGER_DATA_DIR (./var). `credledger config` lists every setting.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    serve_command.add_parser(commands)

    migrate = commands.add_parser("migrate", help="apply pending migrations from sql/")
    migrate.set_defaults(run=log_commands.migrate)

    log_commands.add_verify_parser(commands)
    checkpoint_command.add_parser(commands)
    projections_command.add_parser(commands)
    keys_command.add_parser(commands)
    tokens_command.add_parser(commands)
    send_command.add_parser(commands)
    config_command.add_parser(commands)
    demo_command.add_parser(commands)
    audit_commands.add_parser(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the console script."""
    args = build_parser().parse_args(argv)
    if args.command == "config":
        # It reads the environment itself, so that --check lists every problem, not only the first.
        return config_command.run(args)
    try:
        settings = Settings()
    except (ValidationError, SettingsFileError) as error:
        print(config_command.explain(error), file=sys.stderr)
        return 2
    run: Command = args.run
    try:
        return run(args, settings)
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
