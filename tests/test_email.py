"""The e-mail channel (issue 17, item 4): outbox rows worded from templates and sent to a
real SMTP server in the test process (aiosmtpd), each result a `SendOutcome`."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from pydantic import ValidationError
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from gql_inventory.models import WebhookTopic
from gql_inventory.outbound.email import EmailSender
from gql_inventory.outbound.mail_templates import AUDIENCES, MailTemplates
from gql_inventory.outbound.messages import ClaimedMessage
from gql_inventory.outbound.outbox import NewMessage, OperatorTopic, Topic, enqueue, event_body
from gql_inventory.outbound.smtp import parse_smtp_url
from gql_inventory.settings import Settings
from tests.support.outbox import as_claimed
from tests.support.smtp import SmtpServer, free_port, running_smtp

Sessions = async_sessionmaker[AsyncSession]
OPS = "ops@example.com"
BUYER = "buyer@example.com"
WHEN = datetime(2026, 12, 7, 9, 30, tzinfo=UTC)


@pytest.fixture
def smtp() -> Iterator[SmtpServer]:
    with running_smtp() as server:
        yield server


def sender_for(url: str, **settings: Any) -> EmailSender:
    made = EmailSender.from_settings(
        Settings(smtp_url=url, alert_emails=[OPS], mail_from="Shop <shop@example.com>", **settings)
    )
    assert made is not None
    return made


async def claimed(
    sessions: Sessions, topic: Topic, data: dict[str, Any], to: str
) -> ClaimedMessage:
    """Enqueue one EMAIL row as a change's transaction would, then read it back as the
    delivery worker hands it over (first attempt)."""
    async with sessions.begin() as session:
        await session.execute(text("TRUNCATE outbox_messages"))
        [message_id] = await enqueue(
            session, [NewMessage(topic, event_body(topic, data, WHEN), recipient=to)]
        )
    async with sessions() as session:
        row = (
            await session.execute(
                text("SELECT * FROM outbox_messages WHERE message_id = :m"), {"m": message_id}
            )
        ).one()
    return as_claimed(row)


def order_data(**extra: Any) -> dict[str, Any]:
    return {
        "orderId": str(uuid.UUID(int=0xABCDEF12 << 96)),
        "status": "NEEDS_ATTENTION",
        "email": BUYER,
        "total": {"amount": "12.5", "currencyCode": "usd"},
        "lines": [{"sku": "MUG", "quantity": 2, "title": "Mug"}],
        **extra,
    }


async def test_payment_failed_mail_arrives_with_the_decimal_total(
    sessions: Sessions, smtp: SmtpServer
) -> None:
    message = await claimed(
        sessions,
        WebhookTopic.PAYMENT_FAILED,
        order_data(status="PENDING_PAYMENT", lastPaymentError="Your card was declined."),
        BUYER,
    )
    outcome = await sender_for(smtp.url)(message)
    assert (outcome.delivered, outcome.status_code) == (True, 250), outcome
    [got] = smtp.received
    assert got.rcpt_tos == [BUYER]
    assert got.mail_from == "shop@example.com"
    assert got.message["To"] == BUYER
    assert got.message["Subject"] == "Your payment for order ABCDEF12 did not go through"
    assert got.message["Message-ID"] == f"<{message.message_id}@example.com>"
    for part in (got.part("plain"), got.part("html")):
        assert "12.50 USD" in part
        assert "Your card was declined." in part
        assert "MUG" in part
        assert "$" not in part  # every placeholder filled


async def test_hostile_values_are_escaped_and_buyers_never_see_the_reason(
    sessions: Sessions, smtp: SmtpServer
) -> None:
    data = order_data(
        attentionReason="late payment: <b>no stock</b> for MUG",
        lines=[{"sku": '<script>alert("x")</script>', "quantity": 1}],
    )
    sender = sender_for(smtp.url)
    for to in (BUYER, OPS):
        outcome = await sender(
            await claimed(sessions, WebhookTopic.ORDER_NEEDS_ATTENTION, data, to)
        )
        assert outcome.delivered, outcome
    buyer, ops = smtp.received
    assert buyer.message["Subject"] == "We are looking into your order ABCDEF12"
    assert "we are looking into it" in buyer.part("plain")
    for part in (buyer.part("plain"), buyer.part("html")):
        assert "no stock" not in part
        assert "late payment" not in part
    assert ops.message["Subject"].endswith("needs attention")
    assert "late payment: <b>no stock</b> for MUG" in ops.part("plain")
    html = ops.part("html")
    assert "late payment: &lt;b&gt;no stock&lt;/b&gt; for MUG" in html
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in html
    assert "<script>" not in html
    assert "<b>no stock" not in html
    assert "12.50 USD" in html
    assert BUYER in html


async def test_header_injection_is_refused_as_failed_and_nothing_is_sent(
    sessions: Sessions, smtp: SmtpServer
) -> None:
    sender = sender_for(smtp.url)
    bad_recipient = await claimed(
        sessions, WebhookTopic.PAYMENT_FAILED, order_data(), "a@example.com\r\nBcc: all@example.com"
    )
    outcome = await sender(bad_recipient)
    assert (outcome.delivered, outcome.gone) == (False, True)
    assert "line break" in (outcome.error or "")
    bad_subject = await claimed(
        sessions,
        WebhookTopic.STOCK_OUT,
        {"sku": "MUG\r\nBcc: all@example.com", "location": {"name": "Main"}, "available": 0},
        OPS,
    )
    outcome = await sender(bad_subject)
    assert (outcome.delivered, outcome.gone) == (False, True)
    assert "subject carries a line break" in (outcome.error or "")
    for topic, to in (
        (WebhookTopic.ORDER_PAID, BUYER),
        (WebhookTopic.PAYMENT_FAILED, "two@a, b@c"),
    ):
        outcome = await sender(await claimed(sessions, topic, order_data(), to))
        assert (outcome.delivered, outcome.gone) == (False, True), (topic, to, outcome)
    assert smtp.received == []


async def test_a_refused_recipient_is_failed_a_busy_one_retried(
    sessions: Sessions, smtp: SmtpServer
) -> None:
    sender = sender_for(smtp.url)
    refused = await sender(
        await claimed(sessions, WebhookTopic.PAYMENT_FAILED, order_data(), "refused@example.com")
    )
    assert (refused.delivered, refused.gone, refused.status_code) == (False, True, 550)
    assert "no such mailbox" in (refused.error or "")
    busy = await sender(
        await claimed(sessions, WebhookTopic.PAYMENT_FAILED, order_data(), "busy@example.com")
    )
    assert (busy.delivered, busy.gone, busy.status_code) == (False, False, 451)
    assert smtp.received == []


async def test_an_unreachable_server_is_retried(sessions: Sessions) -> None:
    sender = sender_for(f"smtp://127.0.0.1:{free_port()}", smtp_timeout_seconds=5)
    outcome = await sender(
        await claimed(sessions, WebhookTopic.PAYMENT_FAILED, order_data(), BUYER)
    )
    assert (outcome.delivered, outcome.gone, outcome.status_code) == (False, False, None)
    assert outcome.error


@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS:UserWarning")
async def test_login_with_url_decoded_credentials(sessions: Sessions) -> None:
    with running_smtp(login=("shop@example.com", "p:ss/w@rd")) as server:
        host = server.url.removeprefix("smtp://")
        message = await claimed(sessions, WebhookTopic.ORDER_CANCELLED, order_data(), BUYER)
        wrong = await sender_for(f"smtp://shop%40example.com:nope@{host}")(message)
        assert (wrong.delivered, wrong.gone, wrong.status_code) == (False, False, 535)
        right = await sender_for(f"smtp://shop%40example.com:p%3Ass%2Fw%40rd@{host}")(message)
        assert right.delivered, right
        [got] = server.received
        assert "has been cancelled" in got.part("plain")
        assert "12.50 USD" in got.part("html")


SAMPLES: dict[str, dict[str, Any]] = {
    OperatorTopic.DELIVERY_FAILED: {
        "url": "https://erp.example.com/hook",
        "topic": "STOCK_OUT",
        "messageId": "msg_1",
        "attempts": 8,
        "lastStatusCode": 500,
        "lastError": "HTTP 500",
    },
    OperatorTopic.INVARIANT_DRIFT: {
        "count": 1,
        "levels": [{"sku": "MUG", "location": "Main", "detail": "on hand 5 (ledger 4)"}],
    },
    OperatorTopic.LOW_STOCK_REPORT: {
        "count": 1,
        "date": "2026-12-07",
        "variants": [{"sku": "MUG", "title": "Mug", "available": 1, "threshold": 3}],
    },
    WebhookTopic.STOCK_OUT: {"sku": "MUG", "location": {"name": "Main"}, "available": 0},
}


@pytest.mark.parametrize("topic", sorted(AUDIENCES))
def test_every_topic_is_worded_for_each_of_its_audiences(topic: str) -> None:
    templates = MailTemplates.load()
    data = SAMPLES.get(topic, order_data(refunded={"amount": "5", "currencyCode": "EUR"}))
    body = event_body(
        WebhookTopic(topic) if topic in WebhookTopic else OperatorTopic(topic), data, WHEN
    )
    for operator in (False, True):
        mail = templates.render(topic, body, operator=operator)
        for part in (mail.subject, mail.text, mail.html):
            assert "$" not in part
            assert part.strip()
        marker = "erp.example.com" if topic == OperatorTopic.DELIVERY_FAILED else "MUG"
        assert marker in mail.text
        assert marker in mail.html


def test_smtp_urls_and_their_refusals() -> None:
    target = parse_smtp_url("smtps://user%40shop:p%3Aw@mail.example.com")
    assert (target.host, target.port, target.tls, target.username, target.password) == (
        "mail.example.com",
        465,
        True,
        "user@shop",
        "p:w",
    )
    plain = parse_smtp_url("smtp://mail.example.com:2525")
    assert (plain.port, plain.tls, plain.username) == (2525, False, None)
    assert "hunter2" not in repr(parse_smtp_url("smtp://u:hunter2@h"))
    assert Settings(smtp_url="").smtp_url is None
    assert EmailSender.from_settings(Settings()) is None
    for bad, why in (
        ("http://u:hunter2@mail.example.com", "must start smtp://"),
        ("mail.example.com", "must start smtp://"),
        ("smtp://u:hunter2@", "names no host"),
        ("smtp://u:hunter2@h:port", "malformed"),
        ("smtp://u:hunter2@h/inbox?tls=1", "no path, query or fragment"),
    ):
        with pytest.raises(ValidationError, match=why) as refused:
            Settings(smtp_url=bad)
        assert "hunter2" not in str(refused.value)
    with pytest.raises(ValidationError, match="one address"):
        Settings(mail_from="shop@example.com\r\nBcc: all@example.com")
