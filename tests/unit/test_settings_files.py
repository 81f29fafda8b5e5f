"""Settings from CREDLEDGER_X_FILE files, as container secrets and systemd credentials are mounted."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from receiver.settings import Settings, SettingsFileError, read_environment


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test starts from no CREDLEDGER_* variable at all."""
    for name in list(os.environ):
        if name.upper().startswith("CREDLEDGER_"):
            monkeypatch.delenv(name)


def test_a_setting_is_read_from_its_file_without_the_trailing_newline(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """CREDLEDGER_X_FILE's content, minus one newline, is X's value."""
    secret = tmp_path / "secret"
    secret.write_text("whsec_value\n")
    monkeypatch.setenv("CREDLEDGER_WEBHOOK_SECRETS_FILE", str(secret))
    assert Settings().webhook_secrets == "whsec_value"


def test_a_file_value_is_validated_like_an_environment_value(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A port read from a file is an integer, range-checked as usual."""
    port = tmp_path / "port"
    port.write_text("9090\n")
    monkeypatch.setenv("CREDLEDGER_PORT_FILE", str(port))
    assert Settings().port == 9090


def test_setting_both_a_value_and_its_file_is_refused_naming_the_setting(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """X and X_FILE together are an error that names X, whichever would have won."""
    keys = tmp_path / "keys"
    keys.write_text("k1:irrelevant\n")
    monkeypatch.setenv("CREDLEDGER_MASTER_KEYS_FILE", str(keys))
    monkeypatch.setenv("CREDLEDGER_MASTER_KEYS", "k1:other")
    with pytest.raises(SettingsFileError, match="CREDLEDGER_MASTER_KEYS") as raised:
        Settings()
    assert "irrelevant" not in str(raised.value)
    assert "other" not in str(raised.value)


def test_an_unreadable_file_is_refused_naming_its_variable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A missing file is an error naming CREDLEDGER_X_FILE and the path."""
    monkeypatch.setenv("CREDLEDGER_SIGNING_KEY_FILE", str(tmp_path / "missing"))
    with pytest.raises(SettingsFileError, match="CREDLEDGER_SIGNING_KEY_FILE: cannot read"):
        Settings()


def test_a_file_that_is_not_utf8_is_refused_without_quoting_it(tmp_path: Path) -> None:
    """The codec's message would quote the bytes; ours names only the file."""
    binary = tmp_path / "binary"
    binary.write_bytes(b"\xff\xfesecret")
    reading = read_environment({"CREDLEDGER_MASTER_KEYS_FILE": str(binary)})
    assert [str(p) for p in reading.problems] == [f"CREDLEDGER_MASTER_KEYS_FILE: {binary} is not UTF-8 text"]


def test_every_problem_is_collected_not_only_the_first(tmp_path: Path) -> None:
    """read_environment reports a conflict and an unreadable file together."""
    reading = read_environment(
        {
            "CREDLEDGER_HOST": "0.0.0.0",
            "CREDLEDGER_HOST_FILE": str(tmp_path / "host"),
            "CREDLEDGER_PORT_FILE": str(tmp_path / "missing"),
        }
    )
    assert [p.setting for p in reading.problems] == ["CREDLEDGER_HOST", "CREDLEDGER_PORT_FILE"]


def test_arguments_still_override_everything(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Settings(x=...) wins over a file, as it wins over the environment."""
    host = tmp_path / "host"
    host.write_text("10.0.0.1")
    monkeypatch.setenv("CREDLEDGER_HOST_FILE", str(host))
    assert Settings(host="127.0.0.2").host == "127.0.0.2"
