"""Run the simulator as a process of its own: `python -m sync.nextcloud_simulator --users N --port P`.

Users are `user0` … `user{N-1}`, each with one file and an app password derived from the seed, so
a benchmark in another process can compute every password without asking.
"""

from __future__ import annotations

import argparse
import hashlib
import hmac

from aiohttp import web

from sync.nextcloud_simulator.app import create_app
from sync.nextcloud_simulator.control import NextcloudSimulator

ALPHABET = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"


def derived_password(seed: str, user_id: str) -> str:
    """A 72-character Login-Flow-style app password for `user_id`, reproducible from `seed`."""
    digest = hmac.new(seed.encode(), user_id.encode(), hashlib.sha512).digest()
    digest += hmac.new(seed.encode(), digest, hashlib.sha512).digest()
    return "".join(ALPHABET[b % len(ALPHABET)] for b in digest[:72])


def populated(users: int, seed: str) -> NextcloudSimulator:
    simulator = NextcloudSimulator()
    for n in range(users):
        user_id = f"user{n}"
        simulator.add_user(user_id)
        simulator.add_app_password(user_id, derived_password(seed, user_id))
        simulator.put_file(user_id, "notes.md", size=100)
    return simulator


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--port", type=int, default=8081)
    parser.add_argument("--users", type=int, default=0)
    parser.add_argument("--seed", default="credledger-bench")
    args = parser.parse_args()
    web.run_app(create_app(populated(args.users, args.seed)), host="127.0.0.1", port=args.port, print=None)


if __name__ == "__main__":
    main()
