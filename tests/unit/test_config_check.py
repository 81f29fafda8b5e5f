"""`credledger config --check` names every bad setting, and never prints a secret."""

from __future__ import annotations

import argparse
import base64
import os
from pathlib import Path

import pytest

from receiver.commands.config_command import EXIT_OK, EXIT_PROBLEMS, run
from receiver.configuration_check import Finding, check_configuration

MASTER_KEY = base64.b64encode(os.urandom(32)).decode()
WEBHOOK_SECRET = "whsec_" + base64.b64encode(os.urandom(32)).decode()
SIGNING_KEY = base64.b64encode(os.urandom(32)).decode()

GOOD = {
    "CREDLEDGER_NEXTCLOUD_URL": "https://cloud.example.org",
    "CREDLEDGER_WEBHOOK_SECRETS": WEBHOOK_SECRET,
    "CREDLEDGER_MASTER_KEYS": f"k1:{MASTER_KEY}",
    "CREDLEDGER_SIGNING_KEY": SIGNING_KEY,
}


async def problems(**settings: str) -> dict[str, str]:
    """Setting -> message of each problem found in GOOD overridden by `settings`."""
    environ = {**GOOD, **{f"CREDLEDGER_{k.upper()}": v for k, v in settings.items()}}
    findings = await check_configuration(environ, connect_timeout=1)
    return {f.setting: f.message for f in findings if f.level == "problem"}


async def test_a_good_configuration_has_no_problem() -> None:
    """Valid secrets, keys and URL, and no database URL (embedded), pass."""
    assert await problems() == {}


async def test_an_unset_database_url_says_the_embedded_server_will_be_used() -> None:
    """Not a problem, but said: production deployments must set it."""
    findings = await check_configuration(GOOD)
    assert (
        Finding(
            "CREDLEDGER_DATABASE_URL",
            "note",
            "unset: commands start an embedded PostgreSQL under DATA_DIR (not for production)",
        )
        in findings
    )


async def test_a_malformed_webhook_secret_is_named() -> None:
    """A whsec_ secret that decodes to too few bytes names the setting and the secret's place."""
    found = await problems(webhook_secrets=f"{WEBHOOK_SECRET},whsec_c2hvcnQ=")
    assert found == {
        "CREDLEDGER_WEBHOOK_SECRETS": "webhook secret 2 of 2: a webhook secret must decode to 24 to 64 "
        "bytes, not 5"
    }


async def test_a_master_key_of_the_wrong_length_is_named() -> None:
    """A 16-byte master key names the setting and the key id."""
    short = base64.b64encode(os.urandom(16)).decode()
    found = await problems(master_keys=f"k2:{short},k1:{MASTER_KEY}")
    assert found == {"CREDLEDGER_MASTER_KEYS": "master key 'k2': must be 32 bytes, not 16"}


async def test_a_master_key_that_is_not_base64_is_named() -> None:
    """Bad base64 names the key id, not the key."""
    found = await problems(master_keys="k1:not*base64")
    assert found == {"CREDLEDGER_MASTER_KEYS": "master key 'k1': not valid base64"}


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("%%%", "not valid base64"),
        (
            base64.b64encode(os.urandom(64)).decode(),
            "must be base64 of 32 bytes (an Ed25519 private key), not 64",
        ),
    ],
)
async def test_a_bad_signing_key_is_named(value: str, message: str) -> None:
    """The signing key must be base64 of 32 bytes."""
    assert await problems(signing_key=value) == {"CREDLEDGER_SIGNING_KEY": message}


@pytest.mark.parametrize("url", ["ftp://cloud.example.org", "cloud.example.org", "https://"])
async def test_a_nextcloud_url_that_is_not_http_is_named(url: str) -> None:
    """Only http(s) URLs with a host reach Nextcloud."""
    assert list(await problems(nextcloud_url=url)) == ["CREDLEDGER_NEXTCLOUD_URL"]


@pytest.mark.parametrize(("value", "message"), [("70000", "less than or equal to 65535"), ("-1", "greater")])
async def test_a_port_out_of_range_is_named(value: str, message: str) -> None:
    """Ports run from 0 to 65535."""
    found = await problems(port=value)
    assert list(found) == ["CREDLEDGER_PORT"]
    assert message in found["CREDLEDGER_PORT"]


async def test_a_proxy_range_is_named() -> None:
    """TRUSTED_PROXIES is compared address by address, so a CIDR range would never match."""
    found = await problems(trusted_proxies="127.0.0.1,10.0.0.0/8")
    assert found == {
        "CREDLEDGER_TRUSTED_PROXIES": "'10.0.0.0/8' is not an IP address (ranges and names are not supported)"
    }


async def test_a_setting_given_directly_and_by_file_is_named(tmp_path: Path) -> None:
    """Both X and X_FILE set is a problem of X."""
    keys = tmp_path / "keys"
    keys.write_text(f"k1:{MASTER_KEY}\n")
    found = await problems(master_keys_file=str(keys))
    assert found == {
        "CREDLEDGER_MASTER_KEYS": "is set twice, directly and through CREDLEDGER_MASTER_KEYS_FILE: unset one"
    }


async def test_an_unreadable_file_is_named(tmp_path: Path) -> None:
    """A _FILE pointing nowhere names the _FILE variable and the path."""
    environ = {**GOOD, "CREDLEDGER_LOG_FORMAT_FILE": str(tmp_path / "missing")}
    findings = await check_configuration(environ)
    assert [f for f in findings if f.level == "problem"] == [
        Finding(
            "CREDLEDGER_LOG_FORMAT_FILE",
            "problem",
            f"cannot read {tmp_path / 'missing'}: No such file or directory",
        )
    ]


async def test_a_value_from_a_file_is_checked_like_any_other(tmp_path: Path) -> None:
    """A malformed secret in a mounted file is found, and its origin shown when it is good."""
    secret = tmp_path / "webhook"
    secret.write_text("whsec_\n")
    environ = {**GOOD, "CREDLEDGER_WEBHOOK_SECRETS_FILE": str(secret)}
    del environ["CREDLEDGER_WEBHOOK_SECRETS"]
    findings = await check_configuration(environ)
    assert [f.setting for f in findings if f.level == "problem"] == ["CREDLEDGER_WEBHOOK_SECRETS"]


async def test_a_misspelt_setting_is_pointed_out_without_failing_the_check() -> None:
    """An unknown CREDLEDGER_ name is ignored by the service: the check says so and guesses."""
    findings = await check_configuration({**GOOD, "CREDLEDGER_MASTER_KEY": "x"})
    assert (
        Finding(
            "CREDLEDGER_MASTER_KEY", "note", "not a setting: ignored (did you mean CREDLEDGER_MASTER_KEYS?)"
        )
        in findings
    )
    assert [f for f in findings if f.level == "problem"] == []


def _use_environment(monkeypatch: pytest.MonkeyPatch, environ: dict[str, str]) -> None:
    for name in list(os.environ):
        if name.upper().startswith("CREDLEDGER_"):
            monkeypatch.delenv(name)
    for name, value in environ.items():
        monkeypatch.setenv(name, value)


def _check_args() -> argparse.Namespace:
    return argparse.Namespace(check=True, format="table", connect_timeout=1.0)


def test_the_command_lists_every_problem_and_exits_1(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Three bad settings give three problem lines, each naming its setting, and exit 1."""
    short = base64.b64encode(os.urandom(16)).decode()
    _use_environment(
        monkeypatch,
        {
            **GOOD,
            "CREDLEDGER_MASTER_KEYS": f"k1:{short}",
            "CREDLEDGER_WEBHOOK_SECRETS": "whsec_x",
            "CREDLEDGER_PORT": "0x1",
        },
    )
    assert run(_check_args()) == EXIT_PROBLEMS
    err = capsys.readouterr().err
    assert "3 problems:" in err
    for setting in ("CREDLEDGER_MASTER_KEYS", "CREDLEDGER_WEBHOOK_SECRETS", "CREDLEDGER_PORT"):
        assert f"  {setting}: " in err


def test_the_command_never_prints_a_secret(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Good or bad, secret values stay out of the output; key ids and "set" appear instead."""
    bad_key = base64.b64encode(os.urandom(16)).decode()
    _use_environment(monkeypatch, {**GOOD, "CREDLEDGER_MASTER_KEYS": f"k2:{bad_key},k1:{MASTER_KEY}"})
    run(_check_args())
    out = capsys.readouterr()
    for secret in (bad_key, MASTER_KEY, WEBHOOK_SECRET, WEBHOOK_SECRET.removeprefix("whsec_"), SIGNING_KEY):
        assert secret not in out.out + out.err
    assert "CREDLEDGER_SIGNING_KEY" in out.out


def test_the_command_says_configuration_ok_and_exits_0(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Nothing wrong: one line per setting, then "configuration OK"."""
    _use_environment(monkeypatch, GOOD)
    assert run(_check_args()) == EXIT_OK
    out = capsys.readouterr().out
    assert out.rstrip().endswith("configuration OK")
    lines = {line.split()[1]: line for line in out.splitlines()[:-1]}
    assert "set: key ids 'k1'" in lines["CREDLEDGER_MASTER_KEYS"]


def test_the_command_reports_a_file_conflict_that_settings_would_refuse(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Where Settings() stops at the first problem, the check still lists them all."""
    host = tmp_path / "host"
    host.write_text("0.0.0.0\n")
    _use_environment(
        monkeypatch,
        {**GOOD, "CREDLEDGER_HOST": "::", "CREDLEDGER_HOST_FILE": str(host), "CREDLEDGER_PORT": "x"},
    )
    assert run(_check_args()) == EXIT_PROBLEMS
    err = capsys.readouterr().err
    assert "CREDLEDGER_HOST: is set twice" in err
    assert "CREDLEDGER_PORT: " in err
