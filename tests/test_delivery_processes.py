"""Delivery across real server processes (`gql-inventory serve`): a server killed with
SIGKILL mid-delivery still delivers after a restart (at least once, the same webhook-id),
and two servers on one outbox never send one attempt twice."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from collections import Counter
from collections.abc import AsyncIterator

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from standardwebhooks.webhooks import Webhook

from tests.support.live import LiveServer, ServerFactory, eventually
from tests.support.outbox import (
    SECRETS_KEY,
    clean_outbox,
    delivery_settings,
    make_endpoint,
    outbox_rows,
    put_messages,
)
from tests.support.receivers import Receiver

Sessions = async_sessionmaker[AsyncSession]
SUCCEEDED = 'channel="WEBHOOK",status="SUCCEEDED"'
ATTEMPTS = "gql_inventory_outbox_attempts_total"


def delivering(**env: str) -> dict[str, str]:
    """A server's environment: the test's secrets key, short polls and retries."""
    return {
        "WEBHOOK_SECRETS_KEY": SECRETS_KEY,
        "OUTBOX_POLL_SECONDS": "0.05",
        "WEBHOOK_RETRY_SCHEDULE": "1",
        "DB_POOL_SIZE": "4",
        **env,
    }


@pytest.fixture(autouse=True)
async def _empty_outbox(engine: AsyncEngine) -> None:
    await clean_outbox(engine)


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    async with Receiver().running() as running:
        yield running


async def settled(engine: AsyncEngine, ids: list[str]) -> bool:
    rows = await outbox_rows(engine)
    return all(rows[i].status != "PENDING" for i in ids)


async def test_a_server_killed_mid_delivery_delivers_after_restart(
    servers: ServerFactory, sessions: Sessions, engine: AsyncEngine, receiver: Receiver
) -> None:
    """The claim has committed and the request is at the receiver when the server gets
    SIGKILL; messages are committed while no server runs. After a restart every message
    arrives with its webhook-id (the held one again, once its lease ends) and SUCCEEDS."""
    env = delivering(WEBHOOK_TIMEOUT_SECONDS="5")  # lease: 15 s
    receiver.hanging.add("/hook")
    endpoint, secret = await make_endpoint(sessions, delivery_settings(), receiver.url("/hook"))
    server = await servers.start(**env)
    (held,) = await put_messages(sessions, endpoint, 1)

    async def arrived() -> bool:
        return len(receiver.to("/hook")) == 1

    await eventually(arrived, what="the first attempt at the receiver")
    assert server.process is not None
    server.process.send_signal(signal.SIGKILL)
    server.process.wait()
    while_down = await put_messages(sessions, endpoint, 3)  # committed, nobody to send
    row = (await outbox_rows(engine))[held]
    assert (row.status, row.attempts) == ("PENDING", 1)  # claimed, never answered

    receiver.release()
    await servers.start(**env)
    ids = [held, *while_down]
    await eventually(lambda: settled(engine, ids), what="delivery after the restart")

    received = receiver.to("/hook")
    seen = Counter(r.webhook_id for r in received)
    assert seen == Counter({held: 2, **dict.fromkeys(while_down, 1)})  # at least once, same id
    for request in received:
        Webhook(secret).verify(request.body, request.headers)
    rows = await outbox_rows(engine)
    assert {(rows[i].status, rows[i].attempts) for i in while_down} == {("SUCCEEDED", 1)}
    assert (rows[held].status, rows[held].attempts) == ("SUCCEEDED", 2)


async def test_two_server_processes_never_send_one_attempt_twice(
    servers: ServerFactory, sessions: Sessions, engine: AsyncEngine, receiver: Receiver
) -> None:
    """Two `serve` processes poll one outbox every 50 ms; 150 messages to three endpoints
    are each received exactly once, in one attempt, and both processes took a share."""
    env = delivering()
    first: LiveServer = await servers.start(**env)
    second: LiveServer = await servers.start(**env)
    settings = delivery_settings()
    ids: list[str] = []
    for name in ("a", "b", "c"):
        endpoint, _ = await make_endpoint(sessions, settings, receiver.url(f"/{name}"))
        ids += await put_messages(sessions, endpoint, 50)
    await eventually(lambda: settled(engine, ids), what="every delivery")

    seen = Counter(r.webhook_id for r in receiver.requests)
    assert sorted(seen) == sorted(ids)
    assert set(seen.values()) == {1}
    rows = await outbox_rows(engine)
    assert {(r.status, r.attempts) for r in rows.values()} == {("SUCCEEDED", 1)}
    shares = [await s.metric(ATTEMPTS, SUCCEEDED) for s in (first, second)]
    assert sum(shares) == len(ids)
    assert min(shares) > 0, shares


async def test_the_deliver_command_sends_what_is_due_once(
    database_url: str, sessions: Sessions, engine: AsyncEngine, receiver: Receiver
) -> None:
    """`gql-inventory deliver` (one pass) sends every due message and exits."""
    endpoint, secret = await make_endpoint(sessions, delivery_settings(), receiver.url("/cli"))
    ids = await put_messages(sessions, endpoint, 3)
    env = {**os.environ, "DATABASE_URL": database_url, **delivering()}
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "gql_inventory.cli",
        "deliver",
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await process.communicate()
    assert process.returncode == 0, out.decode()
    assert "3 delivery attempt(s) made" in out.decode()
    assert sorted(r.webhook_id for r in receiver.to("/cli")) == sorted(ids)
    for request in receiver.to("/cli"):
        Webhook(secret).verify(request.body, request.headers)
    assert {r.status for r in (await outbox_rows(engine)).values()} == {"SUCCEEDED"}
