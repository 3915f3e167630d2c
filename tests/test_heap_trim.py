"""The heap trim after many websocket closes: quiet in the logs (nothing at WARNING) and
off the event loop (no full `gc.collect()`, the trim itself in a worker thread)."""

from __future__ import annotations

import asyncio
import gc
import threading
from typing import Any

import pytest

from gql_inventory.websocket import limits
from gql_inventory.websocket.limits import HeapTrimmer


class _Log:
    """Stands in for the module's structlog logger: records (level, event)."""

    def __init__(self) -> None:
        self.records: list[tuple[str, str]] = []

    def __getattr__(self, level: str) -> Any:
        def record(event: str, *args: Any, **kwargs: Any) -> None:
            self.records.append((level, event))

        return record


async def test_500_closes_trim_once_off_the_loop_without_warnings(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    collections: list[tuple[Any, ...]] = []
    real_collect = gc.collect

    def collect(*args: Any, **kwargs: Any) -> int:
        collections.append(args or (2,))
        return real_collect(*args, **kwargs)

    log = _Log()
    monkeypatch.setattr(gc, "collect", collect)
    monkeypatch.setattr(limits, "log", log)
    loop_thread = threading.get_ident()
    trimmed_on: list[int] = []
    done = asyncio.Event()
    loop = asyncio.get_running_loop()

    def fake_trim() -> object:
        trimmed_on.append(threading.get_ident())
        loop.call_soon_threadsafe(done.set)
        return 1

    trimmer = HeapTrimmer(threshold=500, delay=0.0)
    monkeypatch.setattr(trimmer, "_trim", fake_trim)
    for _ in range(500):
        trimmer.closed()
    await asyncio.wait_for(done.wait(), 5)
    for _ in range(50):  # let the trim's completion be handled
        await asyncio.sleep(0.01)
        if trimmer.trims:
            break
    assert trimmer.trims == 1
    assert [c for c in collections if c and c[0] == 2] == []
    assert [r for r in log.records if r[0] in ("warning", "error", "critical")] == []
    assert trimmed_on
    assert trimmed_on[0] != loop_thread
