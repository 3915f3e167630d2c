"""The docs document every setting the service reads (docs/settings.md)."""

from __future__ import annotations

import re
from pathlib import Path

from gql_inventory.settings import Settings

SETTINGS_PAGE = Path(__file__).resolve().parent.parent / "docs" / "settings.md"


def test_every_setting_is_in_the_settings_table() -> None:
    table = SETTINGS_PAGE.read_text()
    documented = set(re.findall(r"`([A-Z][A-Z0-9_]+)`", table))
    missing = {name.upper() for name in Settings.model_fields} - documented
    assert missing == set()
