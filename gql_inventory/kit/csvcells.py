"""CSV cells a spreadsheet will not run: `guard_cell` on export, `read_cell` on import.

OWASP's CSV injection rule (https://owasp.org/www-community/attacks/CSV_Injection): a
cell that starts with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return is a
formula to Excel, LibreOffice and Google Sheets; a single quote in front makes it text.
"""

from __future__ import annotations

import re

#: First characters that make a spreadsheet read a cell as a formula.
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")

#: A plain number (``-5``, ``+3``, ``-10.00``) runs nothing: left as it is, so it stays a number.
_NUMBER = re.compile(r"[+-]?\d+(\.\d+)?")


def guard_cell(value: str) -> str:
    """`value` with a single quote in front when it starts like a formula (not a plain
    number): ``"=1+1"`` -> ``"'=1+1"``, ``"\\t=1"`` -> ``"'\\t=1"``, ``"-5"`` -> ``"-5"``."""
    if value.startswith(FORMULA_START) and not _NUMBER.fullmatch(value):
        return "'" + value
    return value


def read_cell(raw: str) -> str:
    """An imported cell without its surrounding blanks, but never un-guarded: blanks in
    front of a formula character are kept (``"\\t=1+1"`` stays ``"\\t=1+1"``, not
    ``"=1+1"``), and a quote is never removed. What is stored is the text the cell holds;
    `guard_cell` guards it again on export."""
    stripped = raw.strip()
    if stripped.startswith(FORMULA_START) and not raw.startswith(stripped):
        return raw.rstrip()  # the blanks in front guard a formula: keep them
    return stripped
