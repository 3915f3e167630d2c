"""The /admin page's Webhooks section (issue 17, item 6) in real headless Chromium: the
create form with the secret shown once (gone after a reload; the database holds only its
sealed form), refusals next to their field (a private/http URL with private URLs off),
enable/disable, rotation, the two-click delete, recent deliveries with a Retry button on
FAILED ones, hostile text shown as text. Same browser and page fixtures as
tests/test_dashboard.py; the server is that file's, started with a known secrets key; every
write is checked from the database."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import pytest
from cryptography.fernet import Fernet
from playwright.async_api import Page, expect
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from gql_inventory.catalog import seed_demo_catalog
from gql_inventory.domain.uow import UnitOfWork
from gql_inventory.models import WebhookTopic
from gql_inventory.outbound.outbox import NewMessage, enqueue, event_body
from gql_inventory.outbound.secrets import SecretBox
from tests import test_dashboard as dashboard
from tests.support.live import LiveServer, ServerFactory, wait_positioned
from tests.support.scenarios import fetch_all, fetch_one
from tests.test_dashboard import signed_in

# The Chromium and page fixtures of test_dashboard.py, shared as they are.
browser = dashboard.browser
page = dashboard.page

Sessions = async_sessionmaker[AsyncSession]

KEY = Fernet.generate_key().decode()
URL = "https://127.0.0.1:9/hooks"
HOSTILE = "<img src=x onerror=document.body.dataset.pwned=1>"
CREATE = """mutation($input: CreateWebhookEndpointInput!) { createWebhookEndpoint(input: $input)
  { endpoint { id } secret userErrors { code message } } }"""


@pytest.fixture
async def server(servers: ServerFactory, sessions: Sessions, engine: AsyncEngine) -> LiveServer:
    """test_dashboard.py's demo server, with WEBHOOK_SECRETS_KEY known to the test, and no
    delivery worker: these tests set deliveries' states themselves and read them back, and a
    worker sending the retried delivery at once raced that read (FAILED, 9 attempts)."""
    async with sessions.begin() as session:
        await seed_demo_catalog(UnitOfWork(session, actor="import"))
    started = await servers.start(WEBHOOK_SECRETS_KEY=KEY, OUTBOX_WORKER="false")
    await wait_positioned(engine)
    return started


async def create(server: LiveServer, url: str = URL, **extra: Any) -> str:
    """An endpoint made by another client (HTTP); its id."""
    topics = extra.pop("topics", ["STOCK_OUT"])
    body = await server.graphql(
        CREATE, {"input": {"url": url, "topics": topics, **extra}}, admin=True
    )
    payload = body["data"]["createWebhookEndpoint"]
    assert payload["userErrors"] == [], payload
    endpoint_id: str = payload["endpoint"]["id"]
    return endpoint_id


def endpoint(page: Page, endpoint_id: str) -> Any:
    return page.locator(f'#webhook-endpoints article[data-endpoint="{endpoint_id}"]')


async def endpoint_rows(sessions: Sessions) -> list[tuple[Any, ...]]:
    rows = await fetch_all(sessions, "SELECT * FROM webhook_endpoints ORDER BY id")
    return [tuple(r) for r in rows]


async def test_create_shows_the_secret_once(
    page: Page, server: LiveServer, sessions: Sessions
) -> None:
    """URL, two topic boxes and a note make one endpoint; the secret appears once in a box
    with the warning, opens from the database's sealed form, and is gone after a reload."""
    await signed_in(page, server)
    await expect(page.locator("#webhook-secret")).to_be_hidden()
    await page.fill("#webhook-url", URL)
    await page.check('#webhook-topics input[value="STOCK_OUT"]')
    await page.check('#webhook-topics input[value="ORDER_PAID"]')
    await page.fill("#webhook-description", "ERP")
    await page.click("#webhook-form button[type=submit]")
    await expect(page.locator("#webhook-result")).to_contain_text("Created the endpoint")
    box = page.locator("#webhook-secret")
    await expect(box).to_be_visible()
    await expect(box).to_contain_text("it will not be shown again")
    secret = await page.input_value("#webhook-secret-value")
    assert secret.startswith("whsec_")

    row = await fetch_one(sessions, "SELECT * FROM webhook_endpoints")
    assert (row.url, row.topics, row.description) == (URL, ["STOCK_OUT", "ORDER_PAID"], "ERP")
    assert secret not in repr(tuple(row))
    assert secret.removeprefix("whsec_") not in repr(tuple(row))
    assert SecretBox(KEY.encode()).open(row.secret_ciphertext) == secret

    made = endpoint(page, str(row.id))
    await expect(made.locator(".url")).to_have_text(URL)
    await expect(made.locator(".topics")).to_have_text("STOCK_OUT, ORDER_PAID")
    await expect(made.locator(".enabled")).to_have_text("enabled")
    await expect(made.locator(".description")).to_have_text("ERP")
    await expect(page.locator("#webhook-url")).to_have_value("")

    await page.click("#webhook-secret-done")
    await expect(box).to_be_hidden()
    assert secret not in await page.content()
    await signed_in(page, server)  # a reload: the secret is nowhere on the page
    await expect(endpoint(page, str(row.id)).locator(".url")).to_have_text(URL)
    await expect(page.locator("#webhook-secret")).to_be_hidden()
    assert await page.input_value("#webhook-secret-value") == ""
    assert secret not in await page.content()
    stored = await page.evaluate("JSON.stringify(Object.assign({}, sessionStorage, localStorage))")
    assert secret not in stored


async def test_refusals_show_next_to_their_field_and_change_nothing(
    page: Page, server: LiveServer, servers: ServerFactory, sessions: Sessions
) -> None:
    """No topic: INVALID_INPUT under the topics. On a server with
    WEBHOOK_ALLOW_PRIVATE_URLS=false, an http URL to a private address is
    WEBHOOK_URL_NOT_ALLOWED under the URL. No endpoint is written."""
    await signed_in(page, server)
    await page.fill("#webhook-url", URL)
    await page.click("#webhook-form button[type=submit]")
    await expect(page.locator('#webhook-form [data-error-for="topics"]')).to_contain_text(
        "INVALID_INPUT: give at least one topic"
    )
    await expect(page.locator("#webhook-secret")).to_be_hidden()

    strict = await servers.start(WEBHOOK_SECRETS_KEY=KEY, WEBHOOK_ALLOW_PRIVATE_URLS="false")
    await signed_in(page, strict)
    for url, why in (("http://10.0.0.5/hook", "https"), ("https://localhost/hook", "loopback")):
        await page.fill("#webhook-url", url)
        await page.check('#webhook-topics input[value="STOCK_LOW"]')
        await page.click("#webhook-form button[type=submit]")
        slot = page.locator('#webhook-form [data-error-for="url"]')
        await expect(slot).to_contain_text("WEBHOOK_URL_NOT_ALLOWED")
        await expect(slot).to_contain_text(why)
    await expect(page.locator("#webhook-secret")).to_be_hidden()
    assert await endpoint_rows(sessions) == []


async def test_enable_disable_rotate_and_delete(
    page: Page, server: LiveServer, sessions: Sessions
) -> None:
    endpoint_id = await create(server)
    first = await fetch_one(sessions, "SELECT secret_ciphertext FROM webhook_endpoints")
    await signed_in(page, server)
    block = endpoint(page, endpoint_id)

    await block.locator("button.toggle").click()
    block = endpoint(page, endpoint_id)
    await expect(block.locator(".enabled")).to_have_text("disabled: disabled by an admin")
    row = await fetch_one(sessions, "SELECT enabled FROM webhook_endpoints")
    assert row.enabled is False
    await block.locator("button.toggle").click()
    await expect(endpoint(page, endpoint_id).locator(".enabled")).to_have_text("enabled")
    row = await fetch_one(sessions, "SELECT enabled, disabled_reason FROM webhook_endpoints")
    assert tuple(row) == (True, None)

    await endpoint(page, endpoint_id).locator("button.rotate").click()
    await expect(page.locator("#webhook-secret")).to_be_visible()
    await expect(page.locator("#webhook-secret-what")).to_contain_text("New signing secret")
    secret = await page.input_value("#webhook-secret-value")
    row = await fetch_one(sessions, "SELECT * FROM webhook_endpoints")
    box = SecretBox(KEY.encode())
    assert box.open(row.secret_ciphertext) == secret
    assert row.previous_secret_ciphertext == first.secret_ciphertext
    await expect(endpoint(page, endpoint_id).locator(".overlap")).to_contain_text(
        "previous secret signs until"
    )

    delete = endpoint(page, endpoint_id).locator("button.delete")
    await delete.click()
    await expect(delete).to_have_attribute("data-armed", "true")
    assert len(await endpoint_rows(sessions)) == 1  # the first click only arms it
    await delete.click()
    await expect(page.locator("#webhook-result")).to_contain_text("Deleted")
    await expect(endpoint(page, endpoint_id)).to_have_count(0)
    assert await endpoint_rows(sessions) == []


async def test_deliveries_are_listed_and_a_failed_one_retried(
    page: Page, server: LiveServer, sessions: Sessions
) -> None:
    """Each delivery's status, attempts, last status code and error; Retry only on the
    FAILED one, which then is PENDING in the database (same message id, attempts kept)."""
    endpoint_id = await create(server)
    now = datetime.now(UTC)
    topics = [WebhookTopic.STOCK_OUT, WebhookTopic.ORDER_PAID, WebhookTopic.STOCK_LOW]
    async with sessions.begin() as session:
        ids = await enqueue(
            session,
            [
                NewMessage(t, event_body(t, {}, now), endpoint_id=uuid.UUID(endpoint_id))
                for t in topics
            ],
        )
        await enqueue(session, [NewMessage(WebhookTopic.STOCK_OUT, "{}", recipient="o@x.io")])
        await session.execute(
            text(
                "UPDATE outbox_messages SET status = 'FAILED', attempts = 8, "
                "last_status_code = 500, last_error = :error, next_attempt_at = NULL, "
                "completed_at = now() WHERE message_id = :id"
            ),
            {"id": ids[0], "error": HOSTILE},
        )
        await session.execute(
            text(
                "UPDATE outbox_messages SET status = 'SUCCEEDED', attempts = 1, "
                "last_status_code = 204, next_attempt_at = NULL, completed_at = now() "
                "WHERE message_id = :id"
            ),
            {"id": ids[1]},
        )
    rows = await fetch_all(
        sessions, "SELECT id, message_id FROM outbox_messages WHERE channel = 'WEBHOOK' ORDER BY id"
    )
    failed_id, done_id, pending_id = (r.id for r in rows)
    await signed_in(page, server)
    table = page.locator("#webhook-deliveries tbody")
    await expect(table.locator("tr")).to_have_count(3)  # the e-mail row is not a delivery
    await expect(page.locator("#deliveries-count")).to_have_text("3 deliveries")
    await expect(table.locator("tr").first).to_have_attribute("data-delivery", str(pending_id))
    failed = table.locator(f'tr[data-delivery="{failed_id}"]')
    await expect(failed.locator(".status")).to_have_text("FAILED")
    await expect(failed.locator(".attempts")).to_have_text("8")
    await expect(failed.locator(".last-code")).to_have_text("500")
    await expect(failed.locator(".last-error")).to_have_text(HOSTILE)
    await expect(failed.locator(".next-attempt")).to_have_text("")
    done = table.locator(f'tr[data-delivery="{done_id}"]')
    await expect(done.locator(".status")).to_have_text("SUCCEEDED")
    await expect(done.locator(".last-code")).to_have_text("204")
    await expect(table.locator("button.retry")).to_have_count(1)
    await expect(table.locator(f'tr[data-delivery="{pending_id}"] .next-attempt')).not_to_have_text(
        ""
    )

    await failed.locator("button.retry").click()
    await expect(failed.locator(".status")).to_have_text("PENDING")
    await expect(table.locator("button.retry")).to_have_count(0)
    row = await fetch_one(
        sessions,
        "SELECT status, attempts, message_id, completed_at FROM outbox_messages WHERE id = :id",
        id=failed_id,
    )
    assert tuple(row) == ("PENDING", 8, ids[0], None)

    await page.select_option("#deliveries-status", "SUCCEEDED")
    await expect(table.locator("tr")).to_have_count(1)
    await expect(table.locator("tr")).to_have_attribute("data-delivery", str(done_id))
    assert await page.evaluate("document.body.dataset.pwned") is None


async def test_hostile_url_and_description_show_as_text(
    page: Page, server: LiveServer, sessions: Sessions
) -> None:
    url = URL + "/" + HOSTILE
    endpoint_id = await create(server, url=url, description=HOSTILE)
    await signed_in(page, server)
    block = endpoint(page, endpoint_id)
    await expect(block.locator(".url")).to_have_text(url)
    await expect(block.locator(".description")).to_have_text(HOSTILE)
    await expect(page.locator("#webhooks-section img")).to_have_count(0)
    assert await page.evaluate("document.body.dataset.pwned") is None
    row = await fetch_one(sessions, "SELECT url, description FROM webhook_endpoints")
    assert tuple(row) == (url, HOSTILE)


async def test_more_deliveries_page_in_after_the_newest(
    page: Page, server: LiveServer, sessions: Sessions
) -> None:
    """55 deliveries: the newest 50 first, "More" brings the other 5 once, then hides."""
    endpoint_id = uuid.UUID(await create(server))
    now = datetime.now(UTC)
    body = event_body(WebhookTopic.STOCK_OUT, {}, now)
    async with sessions.begin() as session:
        await enqueue(
            session,
            [NewMessage(WebhookTopic.STOCK_OUT, body, endpoint_id=endpoint_id) for _ in range(55)],
        )
    rows = await fetch_all(
        sessions, "SELECT id FROM outbox_messages WHERE channel = 'WEBHOOK' ORDER BY id"
    )
    await signed_in(page, server)
    table = page.locator("#webhook-deliveries tbody")
    await expect(table.locator("tr")).to_have_count(50)
    await expect(table.locator("tr").first).to_have_attribute("data-delivery", str(rows[-1].id))
    more = page.locator("#deliveries-more")
    await expect(more).to_be_visible()
    await more.click()
    await expect(table.locator("tr")).to_have_count(55)
    await expect(table.locator("tr").last).to_have_attribute("data-delivery", str(rows[0].id))
    await expect(more).to_be_hidden()
    shown = await table.locator("tr").evaluate_all("rows => rows.map(r => r.dataset.delivery)")
    assert shown == [str(r.id) for r in reversed(rows)]  # each once, newest first
