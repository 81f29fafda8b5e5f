"""What a user id in a path or a body may be: Nextcloud's own rule, minus the reserved `system`."""

from __future__ import annotations

import re

from events.envelope import SYSTEM_STREAM

# Nextcloud allows letters, digits, space and _ . @ - ' in user ids, at most 64 characters, with
# no white space at either end.
_USER_ID = re.compile(r"^[A-Za-z0-9_.@\-'](?:[A-Za-z0-9 _.@\-']{0,62}[A-Za-z0-9_.@\-'])?$")


def valid_user_id(value: str) -> bool:
    """Whether `value` can be a Nextcloud user id and names a stream of its own."""
    return bool(_USER_ID.match(value)) and value != SYSTEM_STREAM
