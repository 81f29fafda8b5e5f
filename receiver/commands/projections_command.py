"""`projections rebuild [--check]`: replay the log, compare with the live projection, swap."""

from __future__ import annotations

import argparse
import asyncio
import os

from events.reading import head
from projections.rebuild import rebuild_credentials
from receiver.commands.ledger import open_ledger
from receiver.logging import configure_logging
from receiver.progress import ProgressBar
from receiver.settings import Settings


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    projections = commands.add_parser("projections", help="projection maintenance")
    actions = projections.add_subparsers(dest="projections_command", required=True, metavar="ACTION")
    rebuild = actions.add_parser(
        "rebuild",
        help="replay the whole log into the credential projection",
        description="Replay every event into a shadow table and compare it row by row with the "
        "live credential_state, printing each difference. Without --check the shadow then "
        "replaces the live rows atomically (appends wait for a moment); sync bookkeeping is kept. "
        "Exit 0 when nothing differed (or the swap succeeded), 1 when --check found differences.",
    )
    rebuild.add_argument("--check", action="store_true", help="compare only; change nothing")
    rebuild.add_argument(
        "--workers",
        type=int,
        default=os.cpu_count() or 1,
        help="processes that replay a large log in parallel, each for a share of the users "
        "(default: one per core)",
    )
    rebuild.set_defaults(run=rebuild_projection)


def rebuild_projection(args: argparse.Namespace, settings: Settings) -> int:
    configure_logging(settings.log_format)

    async def run() -> int:
        async with open_ledger(settings) as ledger:
            last = await head(ledger.owner)
            bar = ProgressBar(last[0] if last else 0, "replay")
            report = await rebuild_credentials(
                ledger.owner, check_only=args.check, progress=bar.update, url=ledger.url, workers=args.workers
            )
            bar.close()
        for difference in report.differences:
            print(
                f"differs: user {difference.user_id!r} {difference.column}: "
                f"live {difference.live!r}, rebuilt {difference.rebuilt!r}"
            )
        summary = (
            f"replayed {report.events} events into {report.users} users up to position {report.head_position}"
        )
        if args.check:
            print(f"{summary}: {len(report.differences)} differences")
            return 1 if report.differences else 0
        print(f"{summary}: {len(report.differences)} differences corrected, projection swapped in")
        return 0

    return asyncio.run(run())
