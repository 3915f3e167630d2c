"""The /admin dashboard in a real headless browser (the system Chromium, driven by Playwright).

Each test runs a real server (`LiveServer`) on the demo catalog (`seed-demo`). Chromium comes
from the system packages (`/usr/bin/chromium`; `.ci/run` installs it when missing): Playwright's
own browser download is never used. Waits are Playwright's bounded waits (hang guards only).
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from playwright.async_api import Browser, Page, Route, async_playwright, expect
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from gql_inventory.catalog import seed_demo_catalog
from gql_inventory.catalog.demo import LOW_STOCK_SKUS, OUT_OF_STOCK_SKUS
from gql_inventory.domain.uow import UnitOfWork
from gql_inventory.orders import payment_outcomes
from tests.support.live import (
    ADMIN_TOKEN,
    LiveServer,
    ServerFactory,
    reserve_on,
    wait_positioned,
)

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = os.environ.get("CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
HAVE_CHROMIUM = Path(CHROMIUM).exists()
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
#: Hang guard of every browser wait, in milliseconds (not a timing assertion).
WAIT_MS = 30_000

ADJUST = """mutation($sku: String!, $delta: Int!) { adjustStock(input: {sku: $sku, delta: $delta,
  reason: RECEIVED}) { stockLevel { onHand } userErrors { code } } }"""
SET = """mutation($sku: String!, $onHand: Int!) { setStock(input: {sku: $sku, onHand: $onHand})
  { stockLevel { onHand } userErrors { code } } }"""
CHECKOUT = """mutation($rid: ID!) { checkout(input: {reservationId: $rid}) {
  order { id status } userErrors { code } } }"""
ORDER = "query($id: ID!) { order(id: $id) { status } }"
RESERVE = """mutation($sku: String!, $quantity: Int!) { reserveStock(input: {lines: [{sku: $sku,
  quantity: $quantity}]}) { reservation { id } userErrors { code } } }"""
THRESHOLD = "query($sku: String!) { variant(sku: $sku) { lowStockThreshold isLowStock } }"


@pytest.fixture
async def server(
    servers: ServerFactory, sessions: async_sessionmaker[AsyncSession], engine: AsyncEngine
) -> LiveServer:
    async with sessions.begin() as session:
        await seed_demo_catalog(UnitOfWork(session, actor="import"))
    started = await servers.start()
    await wait_positioned(engine)
    return started


@pytest.fixture(scope="module")
async def browser() -> AsyncIterator[Browser]:
    """One Chromium per module (and xdist worker); each test gets a fresh context."""
    if not HAVE_CHROMIUM:
        pytest.fail(f"no Chromium at {CHROMIUM}: apt-get install chromium (see .ci/run)")
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield launched
        finally:
            await launched.close()


@pytest.fixture
async def page(browser: Browser) -> AsyncIterator[Page]:
    context = await browser.new_context(viewport={"width": 1440, "height": 1000})
    page = await context.new_page()
    page.set_default_timeout(WAIT_MS)
    external: list[str] = []
    page.on(
        "request",
        lambda r: (
            external.append(r.url)
            if not r.url.startswith(("http://127.0.0.1", "ws://127.0.0.1", "data:"))
            else None
        ),
    )
    problems: list[str] = []  # uncaught script errors and Content-Security-Policy refusals
    page.on("pageerror", lambda exc: problems.append(f"uncaught: {exc}"))
    page.on(
        "console",
        lambda m: problems.append(m.text) if "Content Security Policy" in m.text else None,
    )
    yield page
    await context.close()
    assert external == [], f"the page loaded from another host: {external}"
    assert problems == []


async def signed_in(page: Page, server: LiveServer) -> Page:
    await page.goto(f"{server.http_url}/admin#token={ADMIN_TOKEN}")
    await expect(page.locator("body[data-loaded=true]")).to_have_count(1)
    await expect(page.locator("#connection")).to_have_attribute("data-state", "live")
    return page


async def test_sign_in_shows_the_catalog_figures(page: Page, server: LiveServer) -> None:
    """Signing in with the form shows every demo SKU with its on hand/reserved/available."""
    await page.goto(f"{server.http_url}/admin")
    await page.fill("#token", ADMIN_TOKEN)
    await page.click("#sign-in-form button")
    await expect(page.locator("#connection")).to_have_attribute("data-state", "live")
    first = page.locator('#stock tr[data-sku="TEE-BLK-S"]').filter(has_text="Main warehouse")
    await expect(first.locator(".on-hand")).to_have_text("12")
    await expect(first.locator(".reserved")).to_have_text("0")
    await expect(first.locator(".available")).to_have_text("12")
    await expect(page.locator("#stock tbody tr")).to_have_count(132)
    await page.fill("#search", "classic tee")
    await expect(page.locator("#stock tbody tr:not([hidden])")).to_have_count(24)
    token = await page.evaluate("sessionStorage.getItem('gql-inventory.admin-token')")
    assert token == ADMIN_TOKEN


async def test_a_wrong_token_says_so(page: Page, server: LiveServer) -> None:
    await page.goto(f"{server.http_url}/admin#token=not-the-token")
    await expect(page.locator("#sign-in-error")).to_contain_text("Wrong token")
    await expect(page.locator("#dashboard")).to_be_hidden()
    assert await page.evaluate("sessionStorage.getItem('gql-inventory.admin-token')") is None


async def test_a_change_from_another_client_lands_live(page: Page, server: LiveServer) -> None:
    """adjustStock over HTTP (httpx) updates the row through stockChanged, highlighted."""
    await signed_in(page, server)
    body = await server.graphql(ADJUST, {"sku": "TEE-BLK-S", "delta": 5}, admin=True)
    assert body["data"]["adjustStock"]["userErrors"] == []
    first = page.locator('#stock tr[data-sku="TEE-BLK-S"]').filter(has_text="Main warehouse")
    await expect(first.locator(".on-hand")).to_have_text("17")
    await expect(first.locator(".available")).to_have_text("17")
    await expect(first.locator(".on-hand")).to_have_class("num on-hand changed")


async def test_adjust_through_the_form_writes_a_ledger_row(page: Page, server: LiveServer) -> None:
    await signed_in(page, server)
    await page.locator('#stock tr[data-sku="DNM-M"]').filter(has_text="Main warehouse").click()
    await expect(page.locator("#adjust-sku")).to_have_value("DNM-M")
    await page.fill("#adjust-delta", "3")
    await page.select_option("#adjust-reason", "RECEIVED")
    await page.fill("#adjust-note", "pallet 7")
    await page.click("#adjust-form button[type=submit]")
    await expect(page.locator("#adjust-result")).to_contain_text("Done: movement #")
    ledger = page.locator("#ledger tbody tr").first
    await expect(ledger).to_contain_text("DNM-M")
    await expect(ledger).to_contain_text("RECEIPT")
    await expect(ledger).to_contain_text("+3")
    await expect(ledger).to_contain_text("RECEIVED: pallet 7")


async def test_stock_changed_is_shown_next_to_the_field(page: Page, server: LiveServer) -> None:
    """The form sends the on-hand it showed; someone else's change first: STOCK_CHANGED."""
    await signed_in(page, server)
    await page.locator('#stock tr[data-sku="TEE-BLK-S"]').filter(has_text="Main warehouse").click()
    await expect(page.locator("#adjust-expected")).to_have_value("12")
    await server.graphql(ADJUST, {"sku": "TEE-BLK-S", "delta": 1}, admin=True)
    await page.fill("#adjust-delta", "-2")
    await page.select_option("#adjust-reason", "DAMAGED")
    await page.click("#adjust-form button[type=submit]")
    await expect(page.locator('[data-error-for="expectedOnHand"]')).to_contain_text("STOCK_CHANGED")
    body = await server.graphql('{ variant(sku: "TEE-BLK-S") { onHand } }')
    assert body["data"]["variant"]["onHand"] == 13


async def test_a_flagged_order_and_active_reservations_are_listed(
    page: Page, server: LiveServer, sessions: async_sessionmaker[AsyncSession]
) -> None:
    """A payment whose amount disagrees flags its order NEEDS_ATTENTION: the operator sees
    it in the orders section with its reason; the other buyer's cart is in reservations."""
    reserved = await server.graphql(RESERVE, {"sku": "TEE-BLK-M", "quantity": 2})
    rid = reserved["data"]["reserveStock"]["reservation"]["id"]
    order = (await server.graphql(CHECKOUT, {"rid": rid}))["data"]["checkout"]["order"]
    async with sessions.begin() as session:
        outcome = await payment_outcomes.payment_succeeded(
            UnitOfWork(session, actor="stripe"), uuid.UUID(order["id"]), amount=1, currency="USD"
        )
    assert outcome == "amount_mismatch"
    cart = await server.graphql(RESERVE, {"sku": "HOOD-NVY-L", "quantity": 1})
    cart_id = cart["data"]["reserveStock"]["reservation"]["id"]

    await signed_in(page, server)
    for section in ("#orders-section", "#reservations-section", "#report-section"):
        await expect(page.locator(section)).to_have_attribute("data-available", "true")
    flagged = page.locator("#orders-section tr").filter(has_text=order["id"])
    await expect(flagged).to_contain_text("NEEDS_ATTENTION")
    await expect(flagged).to_contain_text("paid 0.01 USD, order total 38.00 USD")
    await expect(page.locator("#reservations-section tr").filter(has_text=cart_id)).to_contain_text(
        "HOOD-NVY-L"
    )


async def test_low_stock_lists_the_demo_low_variants_and_alerts_live(
    page: Page, server: LiveServer
) -> None:
    await signed_in(page, server)
    low = page.locator("#low-stock tbody tr")
    for sku in sorted(LOW_STOCK_SKUS | OUT_OF_STOCK_SKUS):
        await expect(low.filter(has_text=sku)).to_have_count(1)
    await expect(low.filter(has_text="TEE-BLK-S")).to_have_count(0)
    # TEE-BLK-S: 12 units, all at the default location; a count of 3 is at or under 5
    body = await server.graphql(SET, {"sku": "TEE-BLK-S", "onHand": 3}, admin=True)
    assert body["data"]["setStock"]["userErrors"] == []
    await expect(page.locator("#alerts li").filter(has_text="TEE-BLK-S")).to_contain_text("LOW")
    await expect(low.filter(has_text="TEE-BLK-S")).to_have_count(1)


async def test_dashboard_screenshot(page: Page, server: LiveServer, tmp_path: Path) -> None:
    """A screenshot of the dashboard on the demo catalog after one live change: into
    docs/dashboard.png when UPDATE_SCREENSHOT=1 (the README shows it), else into tmp_path."""
    await signed_in(page, server)
    await server.graphql(ADJUST, {"sku": "TEE-BLK-M", "delta": 4}, admin=True)
    await expect(page.locator("#ledger tbody tr").first).to_contain_text("TEE-BLK-M")
    await expect(page.locator("#low-stock tbody tr").first).to_be_visible()
    folder = ROOT / "docs" if os.environ.get("UPDATE_SCREENSHOT") == "1" else tmp_path
    shot = await page.screenshot(path=str(folder / "dashboard.png"))
    assert shot.startswith(b"\x89PNG")


async def test_resumes_from_its_last_cursor_after_a_disconnect(
    page: Page, server: LiveServer, servers: ServerFactory
) -> None:
    """The server goes away: the state says so; a change made meanwhile (through another
    server on the same database) shows once the page reconnects with its last cursor."""
    await signed_in(page, server)
    other = await servers.start()
    await server.stop()
    await expect(page.locator("#connection")).to_have_attribute("data-state", "disconnected")
    body = await other.graphql(ADJUST, {"sku": "TEE-BLK-L", "delta": 7}, admin=True)
    assert body["data"]["adjustStock"]["userErrors"] == []
    await server.start()  # the same port again
    await expect(page.locator("#connection")).to_have_attribute(
        "data-state", "live", timeout=2 * WAIT_MS
    )
    level = page.locator('#stock tr[data-sku="TEE-BLK-L"]').filter(has_text="Main warehouse")
    await expect(level.locator(".on-hand")).to_have_text("33", timeout=2 * WAIT_MS)


async def test_graphiql_runs_offline_in_the_browser(
    browser: Browser, servers: ServerFactory
) -> None:
    """GraphiQL renders its editor from the vendored assets, with no request to another host."""
    graphiql = await servers.start(GRAPHIQL="true")
    context = await browser.new_context()
    page = await context.new_page()
    requests: list[str] = []
    page.on("request", lambda r: requests.append(r.url))
    await page.goto(f"{graphiql.http_url}/graphql", wait_until="load")
    await expect(page.locator(".graphiql-container .graphiql-editors")).to_be_visible(
        timeout=WAIT_MS
    )
    await context.close()
    outside = [
        u for u in requests if not u.startswith(("http://127.0.0.1", "ws://127.0.0.1", "data:"))
    ]
    assert outside == []
    assert any(u.endswith("/static/graphiql/graphiql.min.js") for u in requests)


async def test_cancel_an_order_through_the_form(page: Page, server: LiveServer) -> None:
    """A checked-out order is cancelled from the page; a second cancel shows its userError."""
    reservation = (await reserve_on(server, ("TEE-BLK-S", 2)))["reservation"]["id"]
    body = await server.graphql(CHECKOUT, {"rid": reservation})
    order = body["data"]["checkout"]["order"]
    await signed_in(page, server)
    await page.fill("#order-id", order["id"])
    await page.click('#order-form button[value="cancel"]')
    await expect(page.locator("#order-result")).to_contain_text("CANCELLED")
    await page.click('#order-form button[value="cancel"]')
    await expect(page.locator("#order-form")).to_contain_text("INVALID_ORDER_STATE")
    await expect(page.locator("#order-result")).to_have_text("")
    await page.fill("#order-id", "999999")
    await page.click('#order-form button[value="refund"]')
    await expect(page.locator('#order-form [data-error-for="orderId"]')).to_contain_text(
        "ORDER_NOT_FOUND"
    )
    status = await server.graphql(ORDER, {"id": order["id"]}, admin=True)
    assert status["data"]["order"]["status"] == "CANCELLED"


async def test_report_charts_one_bar_per_day(page: Page, server: LiveServer) -> None:
    """The report's front end, against the contract's inventoryReport shape: this server
    does not serve it yet, so the browser's request is answered here (one day per alias)."""

    async def fake_report(route: Route) -> None:
        body = route.request.post_data_json
        if "inventoryReport" not in body["query"]:
            await route.continue_()
            return
        days = sum(1 for name in body["variables"] if name.startswith("f"))
        figures = {"reservationsCreated": 4, "conversionRate": 0.5, "expiryRate": 0.25}
        data = {f"d{n}": {**figures, "unitsSold": n} for n in range(days)}
        data["total"] = {**figures, "unitsSold": sum(range(days))}
        await route.fulfill(json={"data": data})

    await page.route("**/graphql", fake_report)
    await signed_in(page, server)
    report = page.locator("#report-section")
    await expect(report).to_have_attribute("data-available", "true")
    await expect(report.locator(".feature-table")).to_contain_text("Today")
    await page.click('#report-range button[data-days="7"]')
    await expect(report.locator(".feature-table")).to_contain_text("units sold 21")
    await expect(report.locator(".feature-table")).to_contain_text("conversion 50%")
    bars = await page.evaluate("Chart.getChart('chart-units').data.datasets[0].data")
    assert bars == [0, 1, 2, 3, 4, 5, 6]


async def test_threshold_form_sets_a_threshold(page: Page, server: LiveServer) -> None:
    """setLowStockThreshold through the form: the page says so and the server agrees."""
    await signed_in(page, server)
    await page.fill("#threshold-sku", "TEE-BLK-S")
    await page.fill("#threshold-value", "20")
    await page.click("#threshold-form button[type=submit]")
    await expect(page.locator("#threshold-result")).to_contain_text("TEE-BLK-S: threshold now 20")
    body = await server.graphql(THRESHOLD, {"sku": "TEE-BLK-S"})
    assert body["data"]["variant"] == {"lowStockThreshold": 20, "isLowStock": True}
    await expect(page.locator("#connection")).to_have_attribute("data-state", "live")
