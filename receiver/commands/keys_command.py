"""`keys rotate`: rewrap every data key under the newest master key; the log is not touched."""

from __future__ import annotations

import argparse
import asyncio
import sys

from events.crypto import DecryptionFailed
from events.envelope import SYSTEM_STREAM
from events.event_types import KeysRotated, to_new_event
from events.user_keys import count_keys_to_rewrap, rewrap_all
from receiver.commands.ledger import open_ledger
from receiver.logging import configure_logging
from receiver.progress import ProgressBar
from receiver.settings import Settings


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    keys = commands.add_parser("keys", help="master key operations")
    actions = keys.add_subparsers(dest="keys_command", required=True, metavar="ACTION")
    rotate = actions.add_parser(
        "rotate",
        help="rewrap every data key under the newest master key",
        description="Put the new key first in CREDLEDGER_MASTER_KEYS (keeping the old one after "
        "it), run this, then remove the old key. Every data key is unwrapped with whichever "
        "master key wrapped it and wrapped again with the newest, in batches; a keys.rotated "
        "event records it. The log itself is never rewritten.",
    )
    rotate.add_argument("--batch-size", type=int, default=500, help="keys per transaction (default 500)")
    rotate.set_defaults(run=rotate_keys)


def rotate_keys(args: argparse.Namespace, settings: Settings) -> int:
    """Rewrap, record, report."""
    configure_logging(settings.log_format)

    async def run() -> int:
        async with open_ledger(settings) as ledger:
            ring = ledger.master_keys
            total = await count_keys_to_rewrap(ledger.owner, ring)
            bar = ProgressBar(total, "rewrap")
            try:
                rewrapped = await rewrap_all(ledger.owner, ring, args.batch_size, progress=bar.update)
            except DecryptionFailed as error:
                bar.close()
                print(
                    f"keys rotate: {error}; keep every old master key configured until rotation ends",
                    file=sys.stderr,
                )
                return 1
            bar.close()
            await ledger.writer.append(
                to_new_event(
                    KeysRotated(ring.newest.key_id, rewrapped), stream=SYSTEM_STREAM, source="credledger-cli"
                )
            )
        print(f"rewrapped {rewrapped} data keys under master key {ring.newest.key_id!r}")
        return 0

    return asyncio.run(run())
