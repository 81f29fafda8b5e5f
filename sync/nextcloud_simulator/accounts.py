"""The simulated users and their app passwords, and the token login Nextcloud performs with them."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from sync.nextcloud_simulator.passwords import login_flow_app_password, settings_app_password

PasswordStyle = Literal["settings", "login_flow"]


@dataclass
class SimulatedUser:
    """A Nextcloud account: the user id names it, the login name is what Basic auth carries."""

    user_id: str
    login_name: str
    display_name: str
    email: str | None
    enabled: bool = True
    is_admin: bool = False


@dataclass
class AppToken:
    """One app password; it belongs to a user and is bound to the login name it was created under."""

    user_id: str
    login_name: str
    password: str = field(repr=False)
    wiped: bool = False


class Accounts:
    """Users by id and app passwords by value, with Nextcloud's rules for a token login."""

    def __init__(self) -> None:
        self.users: dict[str, SimulatedUser] = {}
        self._tokens: dict[str, AppToken] = {}

    def add_user(self, user: SimulatedUser) -> None:
        if user.user_id in self.users:
            raise ValueError(f"user {user.user_id!r} exists already")
        self.users[user.user_id] = user

    def user(self, user_id: str) -> SimulatedUser:
        try:
            return self.users[user_id]
        except KeyError:
            raise KeyError(f"no simulated user {user_id!r}") from None

    def delete_user(self, user_id: str) -> None:
        # Deleting a user deletes their tokens with them, as Nextcloud's UserDeletedEvent listener does.
        self.user(user_id)
        del self.users[user_id]
        self._tokens = {key: token for key, token in self._tokens.items() if token.user_id != user_id}

    def create_token(self, user_id: str, style: PasswordStyle) -> str:
        make = settings_app_password if style == "settings" else login_flow_app_password
        password = make()
        self.add_token(user_id, password)
        return password

    def add_token(self, user_id: str, password: str) -> None:
        user = self.user(user_id)
        self._tokens[password] = AppToken(user_id, user.login_name, password)

    def revoke_token(self, password: str) -> None:
        self._tokens.pop(password, None)

    def wipe_token(self, password: str) -> None:
        token = self._tokens.get(password)
        if token is not None:
            token.wiped = True

    def owner_of(self, password: str) -> SimulatedUser | None:
        """Whose token this is, whatever its state: for counters and holds, never for access."""
        token = self._tokens.get(password)
        return None if token is None else self.users.get(token.user_id)

    def by_login_name(self, login_name: str) -> SimulatedUser | None:
        folded = login_name.lower()
        return next((user for user in self.users.values() if user.login_name.lower() == folded), None)

    def login(self, login_name: str, password: str) -> SimulatedUser | None:
        """The user a Basic token login lets in, or None for a failed login."""
        token = self._tokens.get(password)
        if token is None or token.wiped:
            return None
        # Nextcloud compares the token's login name case-insensitively (mb_strtolower on both sides).
        if token.login_name.lower() != login_name.lower():
            return None
        user = self.users.get(token.user_id)
        if user is None or not user.enabled:
            return None
        return user
