"""docs/configuration.md is exactly what the settings class renders."""

from __future__ import annotations

from pathlib import Path

from receiver.configuration_reference import REGENERATE, render_markdown
from receiver.settings import Settings

DOC = Path(__file__).resolve().parents[2] / "docs" / "configuration.md"


def test_the_configuration_doc_matches_the_settings_class() -> None:
    """A setting added, removed or redescribed without regenerating the doc fails here."""
    assert DOC.read_text(encoding="utf-8") == render_markdown(), f"run `{REGENERATE}`"


def test_every_setting_has_a_description() -> None:
    """The reference has nothing to say about a setting without one."""
    assert [name for name, info in Settings.model_fields.items() if not info.description] == []


def test_every_setting_appears_in_the_doc_with_its_file_variant_explained() -> None:
    """Each CREDLEDGER_ name is a row, and the _FILE convention is stated once for all."""
    doc = render_markdown()
    for name in Settings.model_fields:
        assert f"| `CREDLEDGER_{name.upper()}` |" in doc
    assert "CREDLEDGER_<NAME>_FILE" in doc
