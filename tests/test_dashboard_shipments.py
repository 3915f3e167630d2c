"""The /admin page's inbound shipments (issue 16, item 7) in real headless Chromium: the
list (newest first, status filter, "More"), the create form, receiving in part and in
whole, cancelling, refusals that change nothing, hostile text shown as text; the stock
table's on hand and incoming after each. Same server, browser and page fixtures as
tests/test_dashboard.py; every write is checked from the database."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from playwright.async_api import Page, expect
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tests import test_dashboard as dashboard
from tests.support.live import LiveServer
from tests.support.scenarios import fetch_all, fetch_one
from tests.test_dashboard import signed_in
from tests.test_dashboard_stock import database_state, level_row

# The Chromium, page and demo-server fixtures of test_dashboard.py, shared as they are.
browser = dashboard.browser
page = dashboard.page
server = dashboard.server

Sessions = async_sessionmaker[AsyncSession]

CREATE = """mutation($input: CreateInboundShipmentInput!) { createInboundShipment(input: $input)
  { shipment { id } userErrors { code message field } } }"""
RECEIVE = """mutation($input: ReceiveInboundShipmentInput!) {
  receiveInboundShipment(input: $input) { shipment { status } userErrors { code } } }"""
CANCEL = """mutation($id: ID!) { cancelInboundShipment(shipmentId: $id) {
  shipment { status } userErrors { code } } }"""
HOSTILE = "<img src=x onerror=document.body.dataset.pwned=1>"


async def create(server: LiveServer, lines: dict[str, int], **extra: Any) -> str:
    """A shipment made by another client (HTTP); its id."""
    rows = [{"sku": s, "quantity": q} for s, q in lines.items()]
    body = await server.graphql(CREATE, {"input": {"lines": rows, **extra}}, admin=True)
    payload = body["data"]["createInboundShipment"]
    assert payload["userErrors"] == [], payload
    shipment_id: str = payload["shipment"]["id"]
    return shipment_id


def shipment(page: Page, shipment_id: str) -> Any:
    return page.locator(f'#shipments article[data-shipment="{shipment_id}"]')


async def cancel_on_page(block: Any) -> None:
    """Cancel takes two clicks: the first arms the button, the second sends."""
    await block.locator("button.cancel").click()
    await expect(block.locator("button.cancel")).to_have_attribute("data-armed", "true")
    await block.locator("button.cancel").click()


async def lines_of(sessions: Sessions, shipment_id: str) -> list[tuple[Any, ...]]:
    """``(sku, quantity_expected, quantity_received)`` per line, in line order."""
    rows = await fetch_all(
        sessions,
        """SELECT v.sku, l.quantity_expected, l.quantity_received
             FROM inbound_shipment_lines l JOIN variants v ON v.id = l.variant_id
            WHERE l.shipment_id = CAST(:id AS uuid) ORDER BY l.position""",
        id=shipment_id,
    )
    return [tuple(r) for r in rows]


async def receipts(sessions: Sessions, shipment_id: str) -> list[tuple[Any, ...]]:
    """``(sku, location, kind, on-hand delta)`` of the shipment's ledger rows."""
    rows = await fetch_all(
        sessions,
        """SELECT v.sku, loc.name, m.kind, m.on_hand_delta FROM stock_movements m
             JOIN variants v ON v.id = m.variant_id JOIN locations loc ON loc.id = m.location_id
            WHERE m.reference = :ref ORDER BY m.id""",
        ref=f"shipment:{shipment_id}",
    )
    return [tuple(r) for r in rows]


async def status_of(sessions: Sessions, shipment_id: str) -> str:
    sql = "SELECT status FROM inbound_shipments WHERE id = CAST(:id AS uuid)"
    row = await fetch_one(sessions, sql, id=shipment_id)
    return str(row.status)


async def shipments_state(sessions: Sessions) -> tuple[Any, ...]:
    """Every shipment and line, and every level and the ledger: what a refusal must not change."""
    heads = await fetch_all(
        sessions, "SELECT id, status, reference, updated_at FROM inbound_shipments ORDER BY id"
    )
    lines = await fetch_all(
        sessions,
        "SELECT id, quantity_expected, quantity_received FROM inbound_shipment_lines ORDER BY id",
    )
    return tuple(map(tuple, heads)), tuple(map(tuple, lines)), await database_state(sessions)


async def test_create_through_the_form(page: Page, server: LiveServer, sessions: Sessions) -> None:
    """Location, reference, expected date and "SKU,quantity" lines make one OPEN shipment
    (checked from the database); it heads the list and the level's incoming shows it."""
    await signed_in(page, server)
    target = level_row(page, "TEE-BLK-S", "Downtown store")
    await expect(target.locator(".incoming")).to_have_text("0")
    await page.select_option("#shipment-location", label="Downtown store")
    await page.fill("#shipment-reference", "PO-77")
    await page.fill("#shipment-expected", "2027-01-10")
    await page.fill("#shipment-lines", "TEE-BLK-S,5\n\n HOOD-NVY-L , 2 \n")
    await page.click("#shipment-form button[type=submit]")
    await expect(page.locator("#shipment-result")).to_contain_text("Created shipment PO-77")

    row = await fetch_one(
        sessions,
        """SELECT s.id, s.status, s.reference, s.expected_at, loc.name FROM inbound_shipments s
             JOIN locations loc ON loc.id = s.location_id""",
    )
    sent = await page.evaluate("new Date(2027, 0, 10).toISOString()")
    assert (row.status, row.reference, row.name) == ("OPEN", "PO-77", "Downtown store")
    assert row.expected_at == datetime.fromisoformat(sent)
    assert await lines_of(sessions, str(row.id)) == [("TEE-BLK-S", 5, 0), ("HOOD-NVY-L", 2, 0)]
    assert await receipts(sessions, str(row.id)) == []

    made = shipment(page, str(row.id))
    await expect(page.locator("#shipments article").first).to_have_attribute(
        "data-shipment", str(row.id)
    )
    await expect(made.locator(".reference")).to_have_text("PO-77")
    await expect(made.locator(".status")).to_have_text("OPEN")
    await expect(made.locator(".location")).to_have_text("Downtown store")
    await expect(made.locator('tr[data-sku="HOOD-NVY-L"] .expected')).to_have_text("2")
    await expect(made.locator('tr[data-sku="HOOD-NVY-L"] .received')).to_have_text("0")
    await expect(target.locator(".incoming")).to_have_text("5")
    await expect(page.locator("#shipment-lines")).to_have_value("")


async def test_receive_in_part_then_everything_left(
    page: Page, server: LiveServer, sessions: Sessions
) -> None:
    """Per-line quantities first, then "receive all left": quantity_received and the RECEIPT
    rows from the database; the stock table's on hand and incoming follow each receipt."""
    shipment_id = await create(server, {"TEE-BLK-S": 10, "TEE-BLK-M": 4}, reference="PO-1")
    await signed_in(page, server)
    block = shipment(page, shipment_id)
    small, medium = level_row(page, "TEE-BLK-S"), level_row(page, "TEE-BLK-M")
    await expect(small.locator(".incoming")).to_have_text("10")
    await expect(small.locator(".on-hand")).to_have_text("12")
    medium_on_hand = int(await medium.locator(".on-hand").inner_text())

    await block.locator('tr[data-sku="TEE-BLK-S"] input.receive').fill("6")
    await block.locator("button.receive-lines").click()
    await expect(block.locator(".status")).to_have_text("PARTIALLY_RECEIVED")
    await expect(block.locator('tr[data-sku="TEE-BLK-S"] .received')).to_have_text("6")
    assert await lines_of(sessions, shipment_id) == [("TEE-BLK-S", 10, 6), ("TEE-BLK-M", 4, 0)]
    assert await receipts(sessions, shipment_id) == [("TEE-BLK-S", "Main warehouse", "RECEIPT", 6)]
    await expect(small.locator(".on-hand")).to_have_text("18")
    await expect(small.locator(".incoming")).to_have_text("4")
    await expect(medium.locator(".incoming")).to_have_text("4")

    await block.locator("button.receive-all").click()
    await expect(block.locator(".status")).to_have_text("RECEIVED")
    await expect(block.locator("button")).to_have_count(0)  # final: no more actions
    assert await status_of(sessions, shipment_id) == "RECEIVED"
    assert await lines_of(sessions, shipment_id) == [("TEE-BLK-S", 10, 10), ("TEE-BLK-M", 4, 4)]
    assert await receipts(sessions, shipment_id) == [
        ("TEE-BLK-S", "Main warehouse", "RECEIPT", 6),
        ("TEE-BLK-S", "Main warehouse", "RECEIPT", 4),  # levels in ascending id order
        ("TEE-BLK-M", "Main warehouse", "RECEIPT", 4),
    ]
    await expect(small.locator(".on-hand")).to_have_text("22")
    await expect(small.locator(".incoming")).to_have_text("0")
    await expect(medium.locator(".on-hand")).to_have_text(str(medium_on_hand + 4))
    await expect(medium.locator(".incoming")).to_have_text("0")


async def test_cancel_keeps_what_was_received(
    page: Page, server: LiveServer, sessions: Sessions
) -> None:
    """A partly received shipment cancelled from the page: CANCELLED in the database, the
    3 units received stay on hand, the 7 still expected are no longer incoming."""
    shipment_id = await create(server, {"TEE-BLK-S": 10})
    body = await server.graphql(
        RECEIVE,
        {"input": {"shipmentId": shipment_id, "lines": [{"sku": "TEE-BLK-S", "quantity": 3}]}},
        admin=True,
    )
    assert body["data"]["receiveInboundShipment"]["userErrors"] == []
    await signed_in(page, server)
    small = level_row(page, "TEE-BLK-S")
    await expect(small.locator(".incoming")).to_have_text("7")
    await expect(small.locator(".on-hand")).to_have_text("15")

    await cancel_on_page(shipment(page, shipment_id))
    await expect(shipment(page, shipment_id).locator(".status")).to_have_text("CANCELLED")
    assert await status_of(sessions, shipment_id) == "CANCELLED"
    assert await lines_of(sessions, shipment_id) == [("TEE-BLK-S", 10, 3)]
    await expect(small.locator(".incoming")).to_have_text("0")
    await expect(small.locator(".on-hand")).to_have_text("15")


async def test_refusals_show_their_errors_and_change_nothing(
    page: Page, server: LiveServer, sessions: Sessions
) -> None:
    """Receiving more than expected, creating with unknown (and hostile) SKUs or a line the
    browser cannot read, cancelling what another admin cancelled: each error is shown
    next to its field or line, as text, and the database is as before."""
    shipment_id = await create(server, {"TEE-BLK-S": 10})
    other_id = await create(server, {"TEE-BLK-M": 1})
    await signed_in(page, server)
    unchanged = await shipments_state(sessions)
    block = shipment(page, shipment_id)

    await block.locator('tr[data-sku="TEE-BLK-S"] input.receive').fill("11")
    await block.locator("button.receive-lines").click()
    await expect(block.locator('tr[data-sku="TEE-BLK-S"] .error')).to_contain_text(
        "INVALID_INPUT: only 10 of 'TEE-BLK-S' still expected, 11 received"
    )
    await expect(block.locator(".status")).to_have_text("OPEN")
    await block.locator('tr[data-sku="TEE-BLK-S"] input.receive').fill("")
    await block.locator("button.receive-lines").click()
    await expect(block.locator(".shipment-error")).to_contain_text("enter the units received")

    await page.fill("#shipment-reference", HOSTILE)
    await page.fill("#shipment-lines", f"TEE-BLK-S,2\nNO-SUCH-SKU,1\n{HOSTILE},3\n")
    await page.click("#shipment-form button[type=submit]")
    errors = page.locator("#shipment-line-errors li")
    await expect(errors.filter(has_text="line 2 (NO-SUCH-SKU): UNKNOWN_SKU")).to_have_count(1)
    await expect(errors.filter(has_text=f"line 3 ({HOSTILE}): UNKNOWN_SKU")).to_have_count(1)
    await expect(page.locator("#shipment-result")).to_have_text("")

    await page.fill("#shipment-lines", "TEE-BLK-S,three\nTEE-BLK-M\n")
    await page.click("#shipment-form button[type=submit]")
    await expect(errors).to_have_count(2)
    await expect(errors.nth(0)).to_contain_text("line 1 (TEE-BLK-S): INVALID_INPUT")
    await expect(errors.nth(1)).to_contain_text("line 2 (TEE-BLK-M): INVALID_INPUT")
    await page.fill("#shipment-lines", "")
    await page.click("#shipment-form button[type=submit]")
    await expect(page.locator('#shipment-form [data-error-for="lines"]')).to_contain_text(
        "INVALID_INPUT"
    )
    assert await page.evaluate("document.body.dataset.pwned") is None
    assert await shipments_state(sessions) == unchanged

    body = await server.graphql(CANCEL, {"id": other_id}, admin=True)
    assert body["data"]["cancelInboundShipment"]["userErrors"] == []
    moved_on = await shipments_state(sessions)
    await cancel_on_page(shipment(page, other_id))
    await expect(shipment(page, other_id).locator(".shipment-error")).to_contain_text(
        "INVALID_SHIPMENT_STATE"
    )
    assert await shipments_state(sessions) == moved_on
    await expect(page.locator("#connection")).to_have_attribute("data-state", "live")


async def test_hostile_reference_is_shown_as_text(
    page: Page, server: LiveServer, sessions: Sessions
) -> None:
    """A reference made of markup, given through the form, is stored as given and shown as
    text in the list: no element made, no script run."""
    await signed_in(page, server)
    await page.fill("#shipment-reference", HOSTILE)
    await page.fill("#shipment-lines", "TEE-BLK-S,1")
    await page.click("#shipment-form button[type=submit]")
    await expect(page.locator("#shipment-result")).to_contain_text("Created shipment")
    row = await fetch_one(sessions, "SELECT id, reference FROM inbound_shipments")
    assert row.reference == HOSTILE
    made = shipment(page, str(row.id))
    await expect(made.locator(".reference")).to_have_text(HOSTILE)
    await expect(page.locator("#shipments img")).to_have_count(0)
    assert await page.evaluate("document.body.dataset.pwned") is None


async def test_list_is_newest_first_filtered_and_paged(page: Page, server: LiveServer) -> None:
    """22 shipments: the first page holds 20, newest first; "More" reads the rest; the
    status filter narrows the list (one cancelled)."""
    made = [await create(server, {"TEE-BLK-S": 1}, reference=f"PO-{i}") for i in range(22)]
    body = await server.graphql(CANCEL, {"id": made[3]}, admin=True)
    assert body["data"]["cancelInboundShipment"]["userErrors"] == []
    await signed_in(page, server)
    articles = page.locator("#shipments article")
    await expect(page.locator("#shipments-count")).to_have_text("21 shipments")  # still expected
    await expect(articles).to_have_count(20)
    await expect(articles.first.locator(".reference")).to_have_text("PO-21")
    await page.click("#shipments-more")
    await expect(articles).to_have_count(21)
    await expect(articles.last.locator(".reference")).to_have_text("PO-0")
    await expect(page.locator("#shipments-more")).to_be_hidden()

    await page.select_option("#shipments-status", "CANCELLED")
    await expect(articles).to_have_count(1)
    await expect(articles.first.locator(".reference")).to_have_text("PO-3")
    await expect(page.locator("#shipments-count")).to_have_text("1 shipment")
    await page.select_option("#shipments-status", "")
    await expect(page.locator("#shipments-count")).to_have_text("22 shipments")
    await expect(articles).to_have_count(20)
