"""The README documents every setting the service reads."""

from __future__ import annotations

import re
from pathlib import Path

from gql_inventory.settings import Settings

README = Path(__file__).resolve().parent.parent / "README.md"


def test_every_setting_is_in_the_readme_table() -> None:
    text = README.read_text()
    table = text[text.index("## Settings (environment)") :]
    documented = set(re.findall(r"`([A-Z][A-Z0-9_]+)`", table))
    missing = {name.upper() for name in Settings.model_fields} - documented
    assert missing == set()
