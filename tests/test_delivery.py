"""Delivery of outbox messages by webhook (issue 17 item 2, and item 3's send-time check),
against real HTTP receivers started by each test (`tests/support/receivers.py`)."""

from __future__ import annotations

import contextlib
from collections import Counter
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from gql_inventory.kit import metrics
from gql_inventory.outbound.outbox import OperatorTopic
from gql_inventory.outbound.secrets import new_secret
from gql_inventory.outbound.worker import DeliveryWorker, delivery_worker
from gql_inventory.services import Services
from gql_inventory.settings import Settings
from tests.support.live import eventually
from tests.support.outbox import (
    clean_outbox,
    delivery_settings,
    make_endpoint,
    outbox_rows,
    put_messages,
)
from tests.support.receivers import Receiver
from tests.support.smtp import running_smtp

Sessions = async_sessionmaker[AsyncSession]


@pytest.fixture(autouse=True)
async def _empty_outbox(engine: AsyncEngine) -> None:
    await clean_outbox(engine)


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    async with Receiver().running() as running:
        yield running


@contextlib.asynccontextmanager
async def worker_on(settings: Settings, database_url: str) -> AsyncIterator[DeliveryWorker]:
    """The app's delivery worker loop, on its own services, for the block."""
    services = Services.create(settings, database_url, live_events=False)
    try:
        async with delivery_worker(services) as worker:
            yield worker
    finally:
        await services.close()


async def settled(engine: AsyncEngine, ids: list[str]) -> bool:
    rows = await outbox_rows(engine)
    return all(rows[i].status != "PENDING" for i in ids)


def delivered(status: str) -> float:
    return metrics.OUTBOX_ATTEMPTS.labels("WEBHOOK", status)._value.get()


async def test_a_verifying_receiver_gets_each_message_once(
    sessions: Sessions, engine: AsyncEngine, database_url: str, receiver: Receiver
) -> None:
    settings = delivery_settings()
    endpoint, secret = await make_endpoint(sessions, settings, receiver.url("/hook"))
    ids = await put_messages(sessions, endpoint, 5)
    before = delivered("SUCCEEDED")
    async with worker_on(settings, database_url):
        await eventually(lambda: settled(engine, ids), what="the deliveries")

    received = receiver.to("/hook")
    assert sorted(r.webhook_id for r in received) == sorted(ids)  # each once
    rows = await outbox_rows(engine)
    for request in received:
        body = Webhook(secret).verify(request.body, request.headers)  # raises if not signed
        assert request.body == rows[request.webhook_id].payload.encode()  # the bytes exactly
        assert body["type"] == "stock.out"
        assert request.headers["content-type"] == "application/json"
        assert len(request.headers["webhook-signature"].split(" ")) == 1
        with pytest.raises(WebhookVerificationError):
            Webhook(new_secret()).verify(request.body, request.headers)
    assert {(r.status, r.attempts, r.last_status_code) for r in rows.values()} == {
        ("SUCCEEDED", 1, 200)
    }
    assert all(r.completed_at is not None for r in rows.values())
    assert all(len(r.last_response_body) == 1024 for r in rows.values())  # kept to 1 KiB
    assert delivered("SUCCEEDED") == before + 5


async def test_500_then_200_is_two_attempts_with_one_id_and_a_later_timestamp(
    sessions: Sessions, engine: AsyncEngine, database_url: str, receiver: Receiver
) -> None:
    settings = delivery_settings(webhook_retry_schedule=[1, 1])
    receiver.answers["/flaky"] = [500, 200]
    endpoint, secret = await make_endpoint(sessions, settings, receiver.url("/flaky"))
    (message_id,) = await put_messages(sessions, endpoint, 1)
    async with worker_on(settings, database_url):
        await eventually(lambda: settled(engine, [message_id]), what="the retry")

    first, second = receiver.to("/flaky")
    assert first.webhook_id == second.webhook_id == message_id
    assert second.timestamp > first.timestamp
    for request in (first, second):
        Webhook(secret).verify(request.body, request.headers)
    row = (await outbox_rows(engine))[message_id]
    assert (row.status, row.attempts, row.last_status_code) == ("SUCCEEDED", 2, 200)


async def test_every_retry_used_fails_the_delivery_and_alerts_the_operators(
    sessions: Sessions, engine: AsyncEngine, database_url: str, receiver: Receiver
) -> None:
    """The last retry fails the delivery and queues one DELIVERY_FAILED e-mail per alert
    address, which the same worker then sends through a real SMTP server."""
    alert_to = ["ops@example.com", "oncall@example.com"]
    with running_smtp() as smtp:
        settings = delivery_settings(
            webhook_retry_schedule=[1], alert_emails=alert_to, smtp_url=smtp.url
        )
        receiver.answers["/down"] = [503]
        endpoint, _ = await make_endpoint(sessions, settings, receiver.url("/down"))
        (message_id,) = await put_messages(sessions, endpoint, 1)
        async with worker_on(settings, database_url):
            await eventually(lambda: settled(engine, [message_id]), what="the last retry")

            async def alerts_sent() -> bool:
                rows = (await outbox_rows(engine)).values()
                return sum(r.channel == "EMAIL" and r.status == "SUCCEEDED" for r in rows) == 2

            await eventually(alerts_sent, what="the alert e-mails")

    assert len(receiver.to("/down")) == 2  # the first attempt and one retry
    rows = await outbox_rows(engine)
    failed = rows[message_id]
    assert (failed.status, failed.attempts, failed.last_status_code) == ("FAILED", 2, 503)
    assert failed.completed_at is not None
    alerts = [r for r in rows.values() if r.channel == "EMAIL"]
    assert sorted(r.recipient for r in alerts) == sorted(alert_to)
    for alert in alerts:
        assert (alert.topic, alert.status, alert.attempts) == (
            OperatorTopic.DELIVERY_FAILED.value,
            "SUCCEEDED",
            1,
        )
        data = orjson.loads(alert.payload)["data"]
        assert data["messageId"] == message_id
        assert data["url"] == receiver.url("/down")
        assert data["lastStatusCode"] == 503
    assert sorted(rcpt for mail in smtp.received for rcpt in mail.rcpt_tos) == sorted(alert_to)
    assert all(message_id in mail.part("plain") for mail in smtp.received)


async def test_410_disables_the_endpoint(
    sessions: Sessions, engine: AsyncEngine, database_url: str, receiver: Receiver
) -> None:
    settings = delivery_settings(webhook_retry_schedule=[1, 1, 1])
    receiver.answers["/gone"] = [410]
    gone, _ = await make_endpoint(sessions, settings, receiver.url("/gone"))
    (first,) = await put_messages(sessions, gone, 1)
    async with worker_on(settings, database_url):
        await eventually(lambda: settled(engine, [first]), what="the 410")
        later = await put_messages(sessions, gone, 3)  # to a disabled endpoint: not sent
        other, _ = await make_endpoint(sessions, settings, receiver.url("/ok"))
        after = await put_messages(sessions, other, 1)
        await eventually(lambda: settled(engine, after), what="another endpoint's delivery")

    assert len(receiver.to("/gone")) == 1  # no retry after a 410, nothing after it
    rows = await outbox_rows(engine)
    assert (rows[first].status, rows[first].attempts, rows[first].last_status_code) == (
        "FAILED",
        1,
        410,
    )
    assert {(rows[i].status, rows[i].attempts) for i in later} == {("PENDING", 0)}
    async with engine.connect() as conn:
        endpoint = (
            await conn.execute(
                text("SELECT enabled, disabled_reason FROM webhook_endpoints WHERE id = :id"),
                {"id": gone},
            )
        ).one()
    assert endpoint.enabled is False
    assert "410" in endpoint.disabled_reason


async def test_a_hanging_receiver_does_not_delay_another_endpoint(
    sessions: Sessions, engine: AsyncEngine, database_url: str, receiver: Receiver
) -> None:
    """Endpoint A never answers (the worker's timeout is a minute); B's messages, written
    after A's, all succeed while A's first two are still in flight and the rest wait."""
    settings = delivery_settings(webhook_timeout_seconds=60.0, webhook_endpoint_concurrency=2)
    receiver.hanging.add("/slow")
    slow, _ = await make_endpoint(sessions, settings, receiver.url("/slow"))
    fast, _ = await make_endpoint(sessions, settings, receiver.url("/fast"))
    slow_ids = await put_messages(sessions, slow, 10)
    fast_ids = await put_messages(sessions, fast, 6)
    async with worker_on(settings, database_url):
        await eventually(lambda: settled(engine, fast_ids), what="B's deliveries", within=30)
        rows = await outbox_rows(engine)
        assert {rows[i].status for i in fast_ids} == {"SUCCEEDED"}
        assert [rows[i].status for i in slow_ids] == ["PENDING"] * 10
        in_flight = [i for i in slow_ids if rows[i].attempts == 1]
        assert len(in_flight) == 2  # the endpoint's concurrency: the rest never claimed
        assert sorted(r.webhook_id for r in receiver.to("/slow")) == sorted(in_flight)
        receiver.release()
        await eventually(lambda: settled(engine, slow_ids), what="A once released")
    assert sorted(r.webhook_id for r in receiver.to("/fast")) == sorted(fast_ids)


async def test_rotation_signs_with_both_secrets_during_the_overlap(
    sessions: Sessions, engine: AsyncEngine, database_url: str, receiver: Receiver
) -> None:
    settings = delivery_settings()
    old, new = new_secret(), new_secret()
    now = datetime.now(UTC)
    rotating, _ = await make_endpoint(
        sessions,
        settings,
        receiver.url("/rotating"),
        secret=new,
        previous=old,
        previous_until=now + timedelta(hours=24),
    )
    rotated, _ = await make_endpoint(
        sessions,
        settings,
        receiver.url("/rotated"),
        secret=new,
        previous=old,
        previous_until=now - timedelta(seconds=1),
    )
    ids = await put_messages(sessions, rotating, 1) + await put_messages(sessions, rotated, 1)
    async with worker_on(settings, database_url):
        await eventually(lambda: settled(engine, ids), what="the deliveries")

    (during,) = receiver.to("/rotating")
    assert len(during.headers["webhook-signature"].split(" ")) == 2
    Webhook(old).verify(during.body, during.headers)
    Webhook(new).verify(during.body, during.headers)
    (after,) = receiver.to("/rotated")
    assert len(after.headers["webhook-signature"].split(" ")) == 1
    Webhook(new).verify(after.body, after.headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(old).verify(after.body, after.headers)


async def test_a_url_refused_at_send_time_is_a_failed_attempt(
    sessions: Sessions, engine: AsyncEngine, database_url: str, receiver: Receiver
) -> None:
    """The URL is checked again before each send (DNS rebinding): outside development a
    name that resolves to 127.0.0.1 is refused, nothing is sent, the reason is kept."""
    settings = delivery_settings(environment="production", webhook_retry_schedule=[1])
    url = f"https://localhost:{receiver.port}/hook"
    endpoint, _ = await make_endpoint(sessions, settings, url)
    (message_id,) = await put_messages(sessions, endpoint, 1)
    async with worker_on(settings, database_url):
        await eventually(lambda: settled(engine, [message_id]), what="the refusals")
    assert receiver.requests == []
    row = (await outbox_rows(engine))[message_id]
    assert (row.status, row.attempts, row.last_status_code) == ("FAILED", 2, None)
    assert "loopback" in row.last_error


async def test_redirects_are_not_followed(
    sessions: Sessions, engine: AsyncEngine, database_url: str, receiver: Receiver
) -> None:
    settings = delivery_settings()
    receiver.answers["/moved"] = [307, 200]
    endpoint, _ = await make_endpoint(sessions, settings, receiver.url("/moved"))
    (message_id,) = await put_messages(sessions, endpoint, 1)
    async with worker_on(settings, database_url):
        await eventually(lambda: settled(engine, [message_id]), what="the retry")
    assert [r.path for r in receiver.requests] == ["/moved", "/moved"]  # never /redirected
    assert (await outbox_rows(engine))[message_id].attempts == 2


async def test_email_rows_wait_for_an_email_sender(
    sessions: Sessions, engine: AsyncEngine, database_url: str, receiver: Receiver
) -> None:
    settings = delivery_settings()
    mail = await put_messages(sessions, None, 2, recipient="ops@example.com")
    endpoint, _ = await make_endpoint(sessions, settings, receiver.url("/hook"))
    hook = await put_messages(sessions, endpoint, 1)
    async with worker_on(settings, database_url):
        await eventually(lambda: settled(engine, hook), what="the webhook")
    rows = await outbox_rows(engine)
    assert {(rows[i].status, rows[i].attempts) for i in mail} == {("PENDING", 0)}


async def test_many_workers_never_send_one_attempt_twice(
    sessions: Sessions, engine: AsyncEngine, database_url: str, receiver: Receiver
) -> None:
    """Four workers (each its own pool and HTTP client) on 120 messages to three
    endpoints: every message is received exactly once, in one attempt."""
    settings = delivery_settings(webhook_endpoint_concurrency=3)
    ids: list[str] = []
    for name in ("a", "b", "c"):
        endpoint, _ = await make_endpoint(sessions, settings, receiver.url(f"/{name}"))
        ids += await put_messages(sessions, endpoint, 40)
    async with contextlib.AsyncExitStack() as stack:
        for _ in range(4):
            await stack.enter_async_context(worker_on(settings, database_url))
        await eventually(lambda: settled(engine, ids), what="every delivery")
    seen = Counter(r.webhook_id for r in receiver.requests)
    assert sorted(seen) == sorted(ids)
    assert set(seen.values()) == {1}
    rows = await outbox_rows(engine)
    assert {(r.status, r.attempts) for r in rows.values()} == {("SUCCEEDED", 1)}


async def test_a_late_outcome_does_not_overwrite_a_newer_attempt(
    sessions: Sessions, engine: AsyncEngine, database_url: str, receiver: Receiver
) -> None:
    """A worker whose lease ran out records its answer after another worker claimed the
    message again: the older attempt's outcome is dropped."""
    from gql_inventory.outbound.delivery import claim, record
    from gql_inventory.outbound.messages import SendOutcome

    settings = delivery_settings()
    endpoint, _ = await make_endpoint(sessions, settings, receiver.url("/hook"))
    (message_id,) = await put_messages(sessions, endpoint, 1)
    webhook_only: dict[str, Any] = {"webhook_slots": 2, "busy": {}, "email_slots": 0}
    async with sessions.begin() as session:
        (first,) = await claim(session, **webhook_only, limit=10, lease_seconds=60)
    async with engine.begin() as conn:  # the lease passes
        await conn.execute(text("UPDATE outbox_messages SET next_attempt_at = now()"))
    async with sessions.begin() as session:
        (second,) = await claim(session, **webhook_only, limit=10, lease_seconds=60)
    assert (first.attempt, second.attempt) == (1, 2)
    async with sessions.begin() as session:
        late = await record(session, first, SendOutcome(False, 500, "late"), settings)
    assert late is None
    async with sessions.begin() as session:
        assert await record(session, second, SendOutcome(True, 200), settings) == "SUCCEEDED"
    row = (await outbox_rows(engine))[message_id]
    assert (row.status, row.attempts, row.last_error) == ("SUCCEEDED", 2, None)


async def test_metrics_show_pending_messages_and_the_oldest_age(
    sessions: Sessions, engine: AsyncEngine, database_url: str
) -> None:
    from gql_inventory.outbound.delivery import refresh_gauges

    settings = delivery_settings()
    endpoint, _ = await make_endpoint(sessions, settings, "http://127.0.0.1:9/none")
    await put_messages(sessions, endpoint, 3)
    async with engine.begin() as conn:
        await conn.execute(
            text("UPDATE outbox_messages SET created_at = now() - interval '1 hour'")
        )
    async with sessions() as session:
        await refresh_gauges(session)
    assert metrics.OUTBOX_PENDING._value.get() == 3
    assert metrics.OUTBOX_OLDEST_PENDING_SECONDS._value.get() >= 3600


async def test_cancelling_the_worker_leaves_in_flight_messages_for_the_lease(
    sessions: Sessions, engine: AsyncEngine, database_url: str, receiver: Receiver
) -> None:
    """Shutdown while a receiver holds a request: the loop stops at once (no wait for the
    answer); the claimed message stays PENDING with its attempt counted, due again when
    its lease ends."""
    settings = delivery_settings(webhook_timeout_seconds=60.0)
    receiver.hanging.add("/held")
    endpoint, _ = await make_endpoint(sessions, settings, receiver.url("/held"))
    (message_id,) = await put_messages(sessions, endpoint, 1)
    async with worker_on(settings, database_url):

        async def arrived() -> bool:
            return len(receiver.to("/held")) == 1

        await eventually(arrived, what="the request")
    row = (await outbox_rows(engine))[message_id]
    assert (row.status, row.attempts) == ("PENDING", 1)
    assert row.next_attempt_at > datetime.now(UTC) + timedelta(seconds=60)
