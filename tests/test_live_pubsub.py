"""The broadcaster wrapper (`live/pubsub.py`) while Redis is down: each failed connect
(the listener retries with backoff for as long as the outage lasts) leaves nothing running.

Found by the cluster drill's Redis restart: every failed reconnect left broadcaster's Redis
listener task pending, logged later as "Task was destroyed but it is pending!".
"""

from __future__ import annotations

import asyncio

import pytest

from gql_inventory.live.pubsub import PubSub, PubSubError
from tests.support.live import free_port


def _listeners() -> list[asyncio.Task[object]]:
    return [
        task
        for task in asyncio.all_tasks()
        if not task.done() and "_pubsub_listener" in repr(task.get_coro())
    ]


async def test_a_failed_redis_connect_leaves_no_listener_running() -> None:
    before = _listeners()
    pubsub = PubSub(f"redis://127.0.0.1:{free_port()}/0")  # nothing listens there
    for _ in range(3):
        with pytest.raises(PubSubError):
            await pubsub.connect()
    await asyncio.sleep(0)  # let cancelled tasks finish
    assert [t for t in _listeners() if t not in before] == []
    assert not pubsub.connected
