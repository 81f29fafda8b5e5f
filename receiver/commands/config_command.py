"""`config [--format table|markdown] [--check]`: the settings reference, or a check of the environment."""

from __future__ import annotations

import argparse
import asyncio
import sys

from pydantic import ValidationError

from receiver.configuration_check import DEFAULT_CONNECT_TIMEOUT, check_configuration
from receiver.configuration_reference import render_markdown, render_table
from receiver.settings import Settings, SettingsFileError, env_name

EXIT_OK = 0
EXIT_PROBLEMS = 1

DESCRIPTION = """\
Without --check: every setting with its environment variable, type, default and description
(--format markdown prints docs/configuration.md). Each setting X can also be read from the file
that CREDLEDGER_X_FILE names.

With --check: read the current environment as the service would, test every setting (connecting to
CREDLEDGER_DATABASE_URL with a short timeout), and print one line per setting. Exit 0 and
"configuration OK" when nothing is wrong; exit 1 listing every problem, each naming its setting.
Secrets are never printed: only "set" or "unset", and key ids."""


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register `credledger config`."""
    config = commands.add_parser(
        "config",
        help="print the settings reference, or check the current settings with --check",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    mode = config.add_mutually_exclusive_group()
    mode.add_argument(
        "--format", choices=("table", "markdown"), default="table", help="of the reference (default table)"
    )
    mode.add_argument("--check", action="store_true", help="check the current environment instead")
    config.add_argument(
        "--connect-timeout",
        type=float,
        default=DEFAULT_CONNECT_TIMEOUT,
        metavar="S",
        help=f"seconds the database is given to answer during --check (default {DEFAULT_CONNECT_TIMEOUT:g})",
    )
    config.set_defaults(run=config_command)


def config_command(args: argparse.Namespace, settings: Settings) -> int:
    """The CLI's usual entry; the settings already read are not needed, the environment is read afresh."""
    return run(args)


def run(args: argparse.Namespace) -> int:
    """Print the reference or check the environment; works even when Settings() would refuse it."""
    if args.check:
        return check(args.connect_timeout)
    print(render_markdown() if args.format == "markdown" else render_table(), end="")
    return EXIT_OK


def check(connect_timeout: float = DEFAULT_CONNECT_TIMEOUT) -> int:
    """One line per setting, then the verdict; exit 1 when anything is a problem."""
    findings = asyncio.run(check_configuration(connect_timeout=connect_timeout))
    width = max(len(f.setting) for f in findings)
    for finding in findings:
        print(f"{finding.level:<8} {finding.setting:<{width}}  {finding.message}")
    problems = [f for f in findings if f.level == "problem"]
    if not problems:
        print("configuration OK")
        return EXIT_OK
    print(f"\n{len(problems)} problem{'s' if len(problems) > 1 else ''}:", file=sys.stderr)
    for problem in problems:
        print(f"  {problem.setting}: {problem.message}", file=sys.stderr)
    return EXIT_PROBLEMS


def explain(error: ValidationError | SettingsFileError) -> str:
    """Why Settings() refused the environment, naming each setting and never echoing a value."""
    if isinstance(error, SettingsFileError):
        reasons = [str(error)]
    else:
        reasons = [f"{env_name(str(e['loc'][0]))}: {e['msg']}" for e in error.errors() if e["loc"]]
    lines = ["credledger: the settings are not usable:", *(f"  {r}" for r in reasons)]
    return "\n".join([*lines, "run `credledger config --check` to see every problem"])
