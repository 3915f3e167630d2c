"""The /admin dashboard's stock parts (issue 16, item 7) in real headless Chromium: the
states per level (live), the transfer form, the stock CSV upload (bulkAdjustStock) and
expired reservations. Same server, browser and page fixtures as tests/test_dashboard.py."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from playwright.async_api import Page, expect
from sqlalchemy import text, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from gql_inventory.domain.uow import UnitOfWork
from gql_inventory.models import Reservation
from gql_inventory.stock.expiry import expire_reservations
from tests import test_dashboard as dashboard
from tests.support.live import LiveServer
from tests.test_dashboard import signed_in

# The Chromium, page and demo-server fixtures of test_dashboard.py, shared as they are.
browser = dashboard.browser
page = dashboard.page
server = dashboard.server

MOVE = """mutation($input: MoveStockStateInput!) { moveStockState(input: $input) {
  userErrors { code } } }"""
LEVELS = """query($sku: String!) { variant(sku: $sku) {
  stockLevels { onHand location { name } } } }"""


def level_row(page: Page, sku: str, location: str = "Main warehouse") -> Any:
    return page.locator(f'#stock tr[data-sku="{sku}"]').filter(has_text=location)


async def levels_of(server: LiveServer, sku: str) -> dict[str, int]:
    body = await server.graphql(LEVELS, {"sku": sku})
    return {lv["location"]["name"]: lv["onHand"] for lv in body["data"]["variant"]["stockLevels"]}


async def database_state(sessions: async_sessionmaker[AsyncSession]) -> tuple[Any, ...]:
    """Every level's figures and the ledger's length: what a refused upload must not change."""
    async with sessions() as session:
        levels = (
            await session.execute(
                text(
                    "SELECT id, on_hand, reserved, damaged, quality_control, safety_stock, "
                    "version FROM stock_levels ORDER BY id"
                )
            )
        ).all()
        movements = (await session.execute(text("SELECT count(*) FROM stock_movements"))).scalar()
    return tuple(tuple(r) for r in levels), movements


async def test_levels_show_their_states_and_follow_a_state_move_live(
    page: Page, server: LiveServer
) -> None:
    """Damaged, QC, safety stock and unavailable per level; a moveStockState made by another
    client changes them in place (the event says unavailable changed: the split is re-read)."""
    body = await server.graphql(
        MOVE,
        {"input": {"sku": "TEE-BLK-S", "quantity": 2, "from": "AVAILABLE", "to": "DAMAGED"}},
        admin=True,
    )
    assert body["data"]["moveStockState"]["userErrors"] == []
    await signed_in(page, server)
    row = level_row(page, "TEE-BLK-S")
    await expect(row.locator(".on-hand")).to_have_text("12")
    await expect(row.locator(".available")).to_have_text("10")
    await expect(row.locator(".damaged")).to_have_text("2")
    await expect(row.locator(".quality-control")).to_have_text("0")
    await expect(row.locator(".unavailable")).to_have_text("2")
    await expect(page.locator("#stock th.incoming")).to_be_visible()
    await expect(row.locator(".incoming")).to_have_text("0")

    body = await server.graphql(
        MOVE,
        {"input": {"sku": "TEE-BLK-S", "quantity": 3, "from": "AVAILABLE", "to": "SAFETY_STOCK"}},
        admin=True,
    )
    assert body["data"]["moveStockState"]["userErrors"] == []
    await expect(row.locator(".safety-stock")).to_have_text("3")
    await expect(row.locator(".unavailable")).to_have_text("5")
    await expect(row.locator(".available")).to_have_text("7")
    await expect(row.locator(".damaged")).to_have_text("2")


async def test_incoming_column_shows_open_shipments_and_follows_a_receipt(
    page: Page, server: LiveServer
) -> None:
    """Incoming per level is what the open shipments still expect there (a cancelled one
    does not count); a receipt made by another client raises on hand and lowers incoming
    in place (the RECEIPT event makes the page read the variant's levels again)."""
    first = await _ship(server, {"TEE-BLK-S": 40, "TEE-BLK-M": 2})
    await _ship(server, {"TEE-BLK-S": 5})
    gone = await _ship(server, {"TEE-BLK-S": 100})
    cancelled = await server.graphql(CANCEL_SHIPMENT, {"id": gone}, admin=True)
    assert cancelled["data"]["cancelInboundShipment"]["userErrors"] == []
    await _ship(server, {"TEE-BLK-S": 9}, locationId=await _location_id(server, "Downtown store"))

    await signed_in(page, server)
    await expect(page.locator("#stock th.incoming")).to_be_visible()
    small = level_row(page, "TEE-BLK-S")
    await expect(small.locator(".incoming")).to_have_text("45")
    await expect(level_row(page, "TEE-BLK-S", "Downtown store").locator(".incoming")).to_have_text(
        "9"
    )
    await expect(level_row(page, "TEE-BLK-M").locator(".incoming")).to_have_text("2")
    await expect(level_row(page, "TEE-BLK-L").locator(".incoming")).to_have_text("0")

    body = await server.graphql(
        RECEIVE_SHIPMENT,
        {"input": {"shipmentId": first, "lines": [{"sku": "TEE-BLK-S", "quantity": 15}]}},
        admin=True,
    )
    assert body["data"]["receiveInboundShipment"]["userErrors"] == []
    await expect(small.locator(".on-hand")).to_have_text("27")
    await expect(small.locator(".incoming")).to_have_text("30")
    await expect(level_row(page, "TEE-BLK-M").locator(".incoming")).to_have_text("2")


CREATE_SHIPMENT = """mutation($input: CreateInboundShipmentInput!) {
  createInboundShipment(input: $input) { shipment { id } userErrors { code } } }"""
RECEIVE_SHIPMENT = """mutation($input: ReceiveInboundShipmentInput!) {
  receiveInboundShipment(input: $input) { userErrors { code } } }"""
CANCEL_SHIPMENT = """mutation($id: ID!) { cancelInboundShipment(shipmentId: $id) {
  userErrors { code } } }"""


async def _ship(server: LiveServer, lines: dict[str, int], **extra: Any) -> str:
    rows = [{"sku": s, "quantity": q} for s, q in lines.items()]
    body = await server.graphql(CREATE_SHIPMENT, {"input": {"lines": rows, **extra}}, admin=True)
    assert body["data"]["createInboundShipment"]["userErrors"] == []
    shipment_id: str = body["data"]["createInboundShipment"]["shipment"]["id"]
    return shipment_id


async def _location_id(server: LiveServer, name: str) -> str:
    body = await server.graphql("{ locations { id name } }")
    return next(str(lo["id"]) for lo in body["data"]["locations"] if lo["name"] == name)


async def test_transfer_form_moves_units_and_shows_refusals(page: Page, server: LiveServer) -> None:
    await signed_in(page, server)
    before = await levels_of(server, "TEE-BLK-S")
    await page.fill("#transfer-sku", "TEE-BLK-S")
    from_name = await page.locator("#transfer-from option:checked").text_content()
    to_name = await page.locator("#transfer-to option:checked").text_content()
    assert from_name is not None
    assert to_name is not None
    from_name, to_name = (n.replace(" (default)", "") for n in (from_name, to_name))
    assert from_name != to_name
    await page.fill("#transfer-quantity", "4")
    await page.fill("#transfer-reason", "rebalance")
    await page.click("#transfer-form button[type=submit]")
    await expect(page.locator("#transfer-result")).to_contain_text("Moved 4 \u00d7 TEE-BLK-S")
    after = await levels_of(server, "TEE-BLK-S")
    assert after[from_name] == before[from_name] - 4
    assert after[to_name] == before.get(to_name, 0) + 4
    # the table follows live, and the ledger shows both TRANSFER rows
    await expect(level_row(page, "TEE-BLK-S", from_name).locator(".on-hand")).to_have_text(
        str(after[from_name])
    )
    await expect(page.locator("#ledger tbody tr").filter(has_text="TRANSFER")).to_have_count(2)

    # refusals: more than available, then the same location twice; nothing moves
    await page.fill("#transfer-quantity", "100000")
    await page.click("#transfer-form button[type=submit]")
    await expect(page.locator("#transfer-form")).to_contain_text("INSUFFICIENT_STOCK")
    await expect(page.locator("#transfer-result")).to_have_text("")
    await page.select_option("#transfer-to", await page.input_value("#transfer-from"))
    await page.fill("#transfer-quantity", "1")
    await page.click("#transfer-form button[type=submit]")
    await expect(page.locator("#transfer-form")).to_contain_text("INVALID_INPUT")
    assert await levels_of(server, "TEE-BLK-S") == after


async def _upload(page: Page, csv_text: str) -> None:
    await page.set_input_files(
        "#csv-file",
        files=[{"name": "stock.csv", "mimeType": "text/csv", "buffer": csv_text.encode()}],
    )


async def test_csv_upload_applies_every_line(page: Page, server: LiveServer) -> None:
    await signed_in(page, server)
    before = {sku: await levels_of(server, sku) for sku in ("TEE-BLK-S", "TEE-BLK-M")}
    await _upload(
        page,
        "\ufeffsku,delta,reason,note\r\n"
        'TEE-BLK-S,5,received,"pallet 9, row 2"\r\n'
        "TEE-BLK-M,-1,DAMAGED,\r\n"
        "\r\n",
    )
    await expect(page.locator("#csv-status")).to_have_text("2 lines ready.")
    await page.click("#csv-apply")
    await expect(page.locator("#csv-result")).to_have_text("Applied 2 lines.")
    await expect(page.locator("#csv-errors li")).to_have_count(0)
    main = "Main warehouse"
    assert (await levels_of(server, "TEE-BLK-S"))[main] == before["TEE-BLK-S"][main] + 5
    assert (await levels_of(server, "TEE-BLK-M"))[main] == before["TEE-BLK-M"][main] - 1
    await expect(level_row(page, "TEE-BLK-S").locator(".on-hand")).to_have_text(
        str(before["TEE-BLK-S"][main] + 5)
    )
    await expect(page.locator("#ledger")).to_contain_text("RECEIVED: pallet 9, row 2")


async def test_csv_upload_with_bad_rows_shows_errors_and_changes_nothing(
    page: Page, server: LiveServer, sessions: async_sessionmaker[AsyncSession]
) -> None:
    """Rows the browser can tell are bad (no SKU, a delta that is not a whole number, an
    unknown reason, markup in a cell) are listed and nothing is sent; rows only the server
    can refuse (unknown SKU, more than available) are listed per line from its userErrors
    and, the call being atomic, the good lines are not applied either. Checked from the
    database."""
    await signed_in(page, server)
    unchanged = await database_state(sessions)

    hostile = "<img src=x onerror=document.body.dataset.pwned=1>"
    await _upload(
        page,
        "TEE-BLK-S,2\n"
        ",3\n"
        "TEE-BLK-M,three\n"
        "TEE-BLK-L,1.5\n"
        "TEE-BLK-L,2,STOLEN\n"
        f"{hostile},1e9\n"
        "=cmd|' /C calc'!A0,1\n",
    )
    errors = page.locator("#csv-errors li")
    await expect(errors).to_have_count(5)
    await expect(errors.nth(0)).to_have_text("line 2: INVALID_INPUT: no SKU")
    await expect(errors.nth(1)).to_contain_text("line 3 (TEE-BLK-M): INVALID_INPUT: delta must")
    await expect(errors.nth(3)).to_contain_text("reason must be one of")
    await expect(errors.nth(4)).to_contain_text(hostile)  # shown as text
    await expect(page.locator("#csv-apply")).to_be_disabled()
    assert await page.evaluate("document.body.dataset.pwned") is None

    # well-formed, but refused by the server: an unknown SKU (the formula-looking one is
    # just an unknown SKU) and a removal beyond what is available; the good line waits
    await _upload(
        page,
        "sku,delta,reason\nTEE-BLK-S,2,RECEIVED\nNO-SUCH-SKU,1,\n=cmd|' /C calc'!A0,1,\n"
        "TEE-BLK-M,-100000,LOST\n",
    )
    await expect(page.locator("#csv-status")).to_have_text("4 lines ready.")
    await page.click("#csv-apply")
    await expect(page.locator("#csv-status")).to_contain_text("Nothing changed")
    await expect(errors.filter(has_text="line 3 (NO-SUCH-SKU): UNKNOWN_SKU")).to_have_count(1)
    await expect(errors.filter(has_text="line 4 (=cmd|' /C calc'!A0): UNKNOWN_SKU")).to_have_count(
        1
    )
    await expect(errors.filter(has_text="line 5 (TEE-BLK-M): INSUFFICIENT_STOCK")).to_have_count(1)
    await expect(page.locator("#csv-result")).to_have_text("")
    assert await database_state(sessions) == unchanged

    # an empty file, and more lines than one call takes: nothing sent
    await _upload(page, "sku,delta\n\n")
    await expect(errors).to_have_text(["INVALID_INPUT: the file holds no lines"])
    await _upload(page, "".join(f"TEE-BLK-S,{i + 1}\n" for i in range(501)))
    await expect(errors).to_contain_text(["at most 500 lines per upload, got 501"])
    await expect(page.locator("#csv-apply")).to_be_disabled()
    assert await database_state(sessions) == unchanged
    await expect(page.locator("#connection")).to_have_attribute("data-state", "live")


async def test_expired_reservations_are_listed_beside_active_ones(
    page: Page, server: LiveServer, sessions: async_sessionmaker[AsyncSession]
) -> None:
    """A cart that ran out (swept: EXPIRED) is listed with its lines next to an ACTIVE one;
    the status and SKU filters narrow the list."""
    ran_out = (await server.graphql(RESERVE, {"sku": "TEE-BLK-M", "quantity": 2}))["data"]
    expired_id = ran_out["reserveStock"]["reservation"]["id"]
    cart = (await server.graphql(RESERVE, {"sku": "HOOD-NVY-L", "quantity": 1}))["data"]
    active_id = cart["reserveStock"]["reservation"]["id"]
    async with sessions.begin() as session:
        await session.execute(
            update(Reservation)
            .where(Reservation.id == uuid.UUID(expired_id))
            .values(expires_at=datetime.now(UTC) - timedelta(seconds=1))
        )
    async with sessions.begin() as session:
        swept = await expire_reservations(UnitOfWork(session, actor="system"))
    assert [str(r) for r in swept.expired] == [expired_id]

    await signed_in(page, server)
    section = page.locator("#reservations-section")
    expired_row = section.locator("tr").filter(has_text=expired_id)
    await expect(expired_row).to_contain_text("EXPIRED")
    await expect(expired_row).to_contain_text("2\u00d7 TEE-BLK-M")
    await expect(section.locator("tr").filter(has_text=active_id)).to_contain_text("ACTIVE")

    await page.select_option("#reservations-status", "ACTIVE")
    await expect(expired_row).to_have_count(0)
    await expect(section.locator("tr").filter(has_text=active_id)).to_have_count(1)
    await page.select_option("#reservations-status", "")
    await page.fill("#reservations-sku", "TEE-BLK-M")
    await page.dispatch_event("#reservations-sku", "change")
    await expect(section.locator("tbody tr")).to_have_count(1)
    await expect(expired_row).to_have_count(1)


RESERVE = """mutation($sku: String!, $quantity: Int!) { reserveStock(input: {lines: [{sku: $sku,
  quantity: $quantity}]}) { reservation { id } userErrors { code } } }"""
