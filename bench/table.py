"""The benchmark's one table, in Markdown (pasted as it is into the README)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

HEADER = (
    "path",
    "clients",
    "req/s (or deliveries)",
    "p50 ms",
    "p99 ms",
    "server CPU ms/req",
    "ratio",
    "goal",
    "met",
)


@dataclass
class Row:
    """One line of the table. `throughput` is already formatted (req/s, tx/s, "1,998 of
    2,000"...); None figures print as "-". `met`: None when the row has no goal or could
    not be measured. `notes` are printed under the table, numbered."""

    path: str
    clients: str
    throughput: str = "-"
    p50_ms: float | None = None
    p99_ms: float | None = None
    cpu_ms: float | None = None
    ratio: str = "-"
    goal: str = "-"
    met: bool | None = None
    notes: list[str] = field(default_factory=list)


def number(value: float | None, digits: int = 1) -> str:
    """`value` with thousands separators and `digits` decimals below 100, else none."""
    if value is None:
        return "-"
    if abs(value) >= 100:
        return f"{value:,.0f}"
    return f"{value:,.{digits}f}"


def rate(value: float, unit: str = "") -> str:
    """A throughput, e.g. ``1,234`` or ``1,234 tx/s``."""
    text = number(value)
    return f"{text} {unit}" if unit else text


def ratio(value: float | None, against: str) -> str:
    """E.g. ``0.10x row 1``; "-" when unknown."""
    return "-" if value is None else f"{value:.2f}x {against}"


def verdict(met: bool | None) -> str:
    """yes / **no** / - (no goal, or not measured)."""
    if met is None:
        return "-"
    return "yes" if met else "**no**"


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def render(rows: Sequence[Row]) -> str:
    """The Markdown table of `rows`, with each row's notes as numbered footnotes."""
    lines = [
        "| " + " | ".join(HEADER) + " |",
        "|" + "|".join(" --- " for _ in HEADER) + "|",
    ]
    footnotes: list[str] = []
    for row in rows:
        path = row.path
        for note in row.notes:
            footnotes.append(note)
            path += f" [{len(footnotes)}]"
        cells = [
            path,
            row.clients,
            row.throughput,
            number(row.p50_ms),
            number(row.p99_ms),
            number(row.cpu_ms, 2),
            row.ratio,
            row.goal,
            verdict(row.met),
        ]
        lines.append("| " + " | ".join(_cell(c) for c in cells) + " |")
    if footnotes:
        lines.append("")
        lines.extend(f"[{i}] {note}" for i, note in enumerate(footnotes, 1))
    return "\n".join(lines)
