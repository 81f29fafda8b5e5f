"""App passwords in the two formats Nextcloud generates."""

from __future__ import annotations

import secrets
import string

# Settings -> Security -> "Create new app password": no 0/O, 1/l/I, h/u/v lookalikes.
SETTINGS_ALPHABET = "abcdefgijkmnopqrstwxyzABCDEFGHJKLMNPQRSTWXYZ23456789"
# Login Flow v2, `occ user:auth-tokens:add`, /ocs/v2.php/core/getapppassword.
LOGIN_FLOW_ALPHABET = string.ascii_letters + string.digits


def settings_app_password() -> str:
    """Five groups of five characters joined by `-` (29 characters), as the settings page makes."""
    groups = ("".join(secrets.choice(SETTINGS_ALPHABET) for _ in range(5)) for _ in range(5))
    return "-".join(groups)


def login_flow_app_password() -> str:
    """72 characters of [A-Za-z0-9], as Login Flow v2 and occ make."""
    return "".join(secrets.choice(LOGIN_FLOW_ALPHABET) for _ in range(72))
