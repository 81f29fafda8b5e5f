"""The service's configuration: one pydantic-settings class, the only reader of the environment."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, TypeAdapter, ValidationError
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

ENV_PREFIX = "CREDLEDGER_"
FILE_SUFFIX = "_FILE"

# Settings that are secrets, or may hold one (a password inside a database URL): anything that shows
# configuration says only whether they are set, never what they hold.
SECRET_SETTINGS = frozenset({"database_url", "webhook_secrets", "master_keys", "signing_key"})


class SettingsFileError(ValueError):
    """A `CREDLEDGER_X_FILE` that cannot be used; the message names the setting, never the file's content."""

    def __init__(self, setting: str, reason: str) -> None:
        super().__init__(f"{setting}: {reason}")
        self.setting = setting
        self.reason = reason


def env_name(field_name: str) -> str:
    """The environment variable of a setting: `port` -> `CREDLEDGER_PORT`."""
    return ENV_PREFIX + field_name.upper()


def file_env_name(field_name: str) -> str:
    """The variable naming a file that holds the setting: `port` -> `CREDLEDGER_PORT_FILE`."""
    return env_name(field_name) + FILE_SUFFIX


def read_setting_file(field_name: str, path: str) -> str:
    """The file's text without one trailing newline, as `echo` and secret stores leave it."""
    setting = file_env_name(field_name)
    if not path:
        raise SettingsFileError(setting, "is set but empty: it must be the path of a file")
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as error:
        raise SettingsFileError(setting, f"cannot read {path}: {error.strerror or error}") from None
    except UnicodeDecodeError:
        # Not the codec's message: it quotes the offending bytes, which may be a secret's.
        raise SettingsFileError(setting, f"{path} is not UTF-8 text") from None
    return text.removesuffix("\n").removesuffix("\r")


@dataclass(frozen=True)
class EnvironmentReading:
    """Each setting's text as the environment gives it, where it came from, and what could not be read."""

    values: dict[str, str] = field(default_factory=dict)
    origins: dict[str, str] = field(default_factory=dict)
    problems: list[SettingsFileError] = field(default_factory=list)
    unknown: list[str] = field(default_factory=list)


def read_environment(environ: Mapping[str, str] | None = None) -> EnvironmentReading:
    """Read every setting from `CREDLEDGER_X` or `CREDLEDGER_X_FILE`, collecting every problem.

    Names are matched without regard to case, as pydantic-settings matches `CREDLEDGER_X`.
    """
    given = {name.upper(): value for name, value in (os.environ if environ is None else environ).items()}
    reading = EnvironmentReading()
    known: set[str] = set()
    for name in Settings.model_fields:
        direct, from_file = env_name(name), file_env_name(name)
        known.update((direct, from_file))
        if from_file not in given:
            if direct in given:
                reading.values[name] = given[direct]
                reading.origins[name] = direct
            continue
        if direct in given:
            # Two sources for one value: whichever won, an operator would be surprised by the other.
            reading.problems.append(
                SettingsFileError(direct, f"is set twice, directly and through {from_file}: unset one")
            )
            continue
        try:
            reading.values[name] = read_setting_file(name, given[from_file])
        except SettingsFileError as error:
            reading.problems.append(error)
            continue
        reading.origins[name] = from_file
    reading.unknown.extend(sorted(n for n in given if n.startswith(ENV_PREFIX) and n not in known))
    return reading


def invalid_values(values: Mapping[str, str]) -> dict[str, str]:
    """Setting name -> why its text is not a valid value (type, range, choice), for every bad one."""
    problems: dict[str, str] = {}
    for name, text in values.items():
        info = Settings.model_fields[name]
        # Each field alone, against its own constraints: one bad value does not hide the next.
        # A type built at run time from the field, which a static checker cannot follow.
        adapter: TypeAdapter[Any] = TypeAdapter(Annotated[info.annotation, info])  # type: ignore[arg-type]
        try:
            adapter.validate_python(text)
        except ValidationError as error:
            # msg only: an error's input_value would echo the setting's text.
            problems[name] = "; ".join(e["msg"] for e in error.errors())
    return problems


class FileSettingsSource(PydanticBaseSettingsSource):
    """Values from `CREDLEDGER_X_FILE` files, as container secrets and systemd credentials are mounted."""

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        reading = read_environment()
        from_file = reading.origins.get(field_name) == file_env_name(field_name)
        return (reading.values[field_name] if from_file else None), field_name, False

    def __call__(self) -> dict[str, Any]:
        reading = read_environment()
        if reading.problems:
            raise reading.problems[0]
        return {
            name: value
            for name, value in reading.values.items()
            if reading.origins[name] == file_env_name(name)
        }


class Settings(BaseSettings):
    """Every setting, read from `CREDLEDGER_*` environment variables or the files `CREDLEDGER_*_FILE` name."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="ignore")

    database_url: str | None = Field(
        default=None,
        description="PostgreSQL URL, e.g. postgresql://credledger@db.example.org/credledger. Its user "
        "must be a member of the role credledger_app, which the service works as; `serve` applies "
        "pending migrations as this user first. Unset: an embedded PostgreSQL under DATA_DIR, "
        "started and stopped with the command (development only).",
    )
    data_dir: Path = Field(
        default=Path("./var"),
        description="Where the embedded PostgreSQL and generated development keys live; unused once "
        "DATABASE_URL, MASTER_KEYS and SIGNING_KEY are set.",
    )
    host: str = Field(
        default="127.0.0.1",
        description="Address the HTTP server binds. Behind a reverse proxy on the same host, keep 127.0.0.1.",
    )
    port: int = Field(default=8080, ge=0, le=65535, description="Port the HTTP server binds.")
    nextcloud_url: str | None = Field(
        default=None,
        description="Base URL of the Nextcloud instance, e.g. https://cloud.example.org: app passwords "
        "are checked and files synced there. Unset: no provisioning and no sync.",
    )
    webhook_secrets: str | None = Field(
        default=None,
        description="Comma-separated Standard Webhooks secrets (whsec_ + base64 of 24 to 64 bytes), "
        "newest first. Any of them verifies POST /api/v1/events, and `credledger send` signs with "
        "all of them, so a rotation lists two. Unset: that route answers 503.",
    )
    master_keys: str | None = Field(
        default=None,
        description="Comma-separated ID:BASE64KEY AES-256 master keys (32 bytes each), newest first: the "
        "newest wraps new data keys, any listed one unwraps. Unset in development: generated into "
        "DATA_DIR with mode 0600 and a warning.",
    )
    signing_key: str | None = Field(
        default=None,
        description="Ed25519 private key (base64 of 32 raw bytes) for checkpoints. Unset: "
        "generated into DATA_DIR like the master key.",
    )
    sync_interval_seconds: int = Field(
        default=300, ge=1, description="How often each user's files are synced, in seconds."
    )
    sync_enabled: bool = Field(
        default=True,
        description="Run the sync scheduler in this process (false: a receiver-only replica).",
    )
    sync_concurrency: int = Field(
        default=16, ge=1, le=1024, description="How many users this process syncs at once."
    )
    trusted_proxies: str = Field(
        default="",
        description="Comma-separated IP addresses of reverse proxies whose X-Forwarded-For is believed: "
        "rate limits then count against the client address they report. Empty: the peer address.",
    )
    log_format: Literal["json", "console"] | None = Field(
        default=None, description="json or console. Unset: console on a terminal, json otherwise."
    )

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Arguments first, then `_FILE` files, then the environment; a setting given both ways is refused."""
        files = FileSettingsSource(settings_cls)
        return init_settings, files, env_settings, dotenv_settings, file_secret_settings

    def trusted_proxy_set(self) -> frozenset[str]:
        """TRUSTED_PROXIES as a set of addresses."""
        return frozenset(p.strip() for p in self.trusted_proxies.split(",") if p.strip())
