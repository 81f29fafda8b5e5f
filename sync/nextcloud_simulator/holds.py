"""Gates that keep a user's requests open until a test lets them go, and tell the test when one waits."""

from __future__ import annotations

import asyncio
from collections import Counter


class Holds:
    """Per-user gates: closed by `hold`, opened by `release`; requests wait at a closed gate."""

    def __init__(self) -> None:
        self._gates: dict[str, asyncio.Event] = {}
        self._waiting: Counter[str] = Counter()
        self._changed = asyncio.Condition()

    def hold(self, user_id: str) -> None:
        self._gates.setdefault(user_id, asyncio.Event())

    def release(self, user_id: str) -> None:
        gate = self._gates.pop(user_id, None)
        if gate is not None:
            gate.set()

    def release_all(self) -> None:
        for user_id in list(self._gates):
            self.release(user_id)

    def waiting(self, user_id: str) -> int:
        return self._waiting[user_id]

    async def wait_until_held(self, user_id: str, count: int = 1) -> None:
        async with self._changed:
            await self._changed.wait_for(lambda: self._waiting[user_id] >= count)

    async def pass_gate(self, user_id: str) -> None:
        """Return at once if the user's gate is open, else when it opens."""
        gate = self._gates.get(user_id)
        if gate is None:
            return
        async with self._changed:
            self._waiting[user_id] += 1
            self._changed.notify_all()
        try:
            await gate.wait()
        finally:
            # Nobody waits for the count to fall, so no notification (and no await) is needed here.
            self._waiting[user_id] -= 1
