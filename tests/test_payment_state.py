"""Payment and refund state as data (issue 9, item 4): outcomes and event types are
enums mypy checks, "a payment was applied" is `orders.payment_applied_at`, who made a
refund is `refunds.source`, and refund rows are written in one place."""

from __future__ import annotations

import ast
import subprocess
import sys
import typing
import uuid
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from gql_inventory.models import Order, PaymentEvent, Refund
from gql_inventory.orders import event_checks, payment_outcomes, payment_progress, provider_events
from gql_inventory.orders import pending_payments as payment_check
from gql_inventory.orders import stripe_events as stripe_webhook
from gql_inventory.orders.payment_states import Outcome, PaymentEventKind, RefundSource
from tests.conftest import GraphQLCaller
from tests.support.catalog import Catalog
from tests.support.payments import REFUND, pending_order, refunds_of, send

ROOT = Path(__file__).resolve().parent.parent


async def _applied_at(
    sessions: async_sessionmaker[AsyncSession], order_id: uuid.UUID
) -> tuple[object, list[object]]:
    """``(orders.payment_applied_at, [created_at of its payment_intent.succeeded events])``."""
    async with sessions.begin() as s:
        applied = (
            await s.execute(select(Order.payment_applied_at).where(Order.id == order_id))
        ).scalar_one()
        succeeded = (
            await s.execute(
                select(PaymentEvent.created_at).where(
                    PaymentEvent.order_id == order_id,
                    PaymentEvent.type == PaymentEventKind.PAYMENT_INTENT_SUCCEEDED,
                )
            )
        ).all()
    return applied, [r.created_at for r in succeeded]


# ---------------------------------------------------------------- payment applied at


async def test_a_payment_applied_sets_payment_applied_at(
    gql: GraphQLCaller,
    client: httpx.AsyncClient,
    sessions: async_sessionmaker[AsyncSession],
    catalog: Catalog,
    secret: str,
) -> None:
    sold, _ = await pending_order(gql, {"MUG": 1})
    assert await send(client, sessions, secret, "payment_intent.succeeded", sold) == "sold"
    applied, succeeded = await _applied_at(sessions, sold)
    assert succeeded == [applied]  # the same transaction's time
    mismatch, _ = await pending_order(gql, {"MUG": 1})
    outcome = await send(client, sessions, secret, "payment_intent.succeeded", mismatch, amount=1)
    assert outcome == "amount_mismatch"
    assert (await _applied_at(sessions, mismatch))[0] is not None
    failed, _ = await pending_order(gql, {"MUG": 1})
    assert await send(client, sessions, secret, "payment_intent.payment_failed", failed) == (
        "recorded"
    )
    assert await _applied_at(sessions, failed) == (None, [])
    # a second success changes nothing, the time included
    before = await _applied_at(sessions, sold)
    assert await send(client, sessions, secret, "payment_intent.succeeded", sold) == (
        "already_paid"
    )
    assert (await _applied_at(sessions, sold))[0] == before[0]


async def test_payment_applied_reads_the_column_not_event_type_strings(
    gql: GraphQLCaller,
    client: httpx.AsyncClient,
    sessions: async_sessionmaker[AsyncSession],
    catalog: Catalog,
    secret: str,
) -> None:
    """Two cancelled orders: one marked applied with no event row, one with a stray
    ``amount_mismatch`` row but not marked. Only the column decides."""
    marked, _ = await pending_order(gql, {"MUG": 1})
    stray, _ = await pending_order(gql, {"MUG": 1})
    for order_id in (marked, stray):
        assert await send(client, sessions, secret, "payment_intent.canceled", order_id) == (
            "cancelled"
        )
    async with sessions.begin() as s:
        await s.execute(
            update(Order).where(Order.id == marked).values(payment_applied_at=func.now())
        )
        await s.execute(
            insert(PaymentEvent).values(order_id=stray, type=PaymentEventKind.AMOUNT_MISMATCH)
        )
    assert await send(client, sessions, secret, "payment_intent.succeeded", marked) == (
        "already_paid"
    )
    assert await send(client, sessions, secret, "payment_intent.succeeded", stray) == ("sold_late")


# ---------------------------------------------------------------- refund source


async def test_refund_rows_say_who_made_them(
    gql: GraphQLCaller,
    client: httpx.AsyncClient,
    sessions: async_sessionmaker[AsyncSession],
    catalog: Catalog,
    secret: str,
) -> None:
    order_id, _ = await pending_order(gql, {"MUG": 3})  # 3 * 999
    assert await send(client, sessions, secret, "payment_intent.succeeded", order_id) == "sold"
    body = await gql(
        REFUND,
        {"input": {"orderId": str(order_id), "lines": [{"sku": "MUG", "quantity": 1}]}},
        admin=True,
    )
    assert body["data"]["refundOrder"]["userErrors"] == []
    outcome = await send(
        client, sessions, secret, "refund.created", order_id, refund_id="re_dash_9", amount=999
    )
    assert outcome == "needs_attention"
    # the charge says 2997 refunded in all: 999 of it was never reported by id
    assert await send(client, sessions, secret, "charge.refunded", order_id, amount=2997) == (
        "restocked"
    )
    rows = [
        (r.source, r.provider_refund_id, r.amount) for r in await refunds_of(sessions, order_id)
    ]
    ours = rows[0]
    assert ours[0] is RefundSource.OURS
    assert ours[1] is not None
    assert ours[2] == 999
    assert rows[1:] == [
        (RefundSource.DASHBOARD, "re_dash_9", 999),
        (RefundSource.UNATTRIBUTED, None, 999),
    ]


@pytest.mark.parametrize(
    ("source", "provider_refund_id"),
    [
        (RefundSource.UNATTRIBUTED, None),  # a second one for the order
        (RefundSource.UNATTRIBUTED, "re_named"),  # an unattributed refund has no id
        (RefundSource.DASHBOARD, None),  # a dashboard refund always has one
    ],
    ids=["second-unattributed", "unattributed-with-id", "dashboard-without-id"],
)
async def test_refund_source_rules_are_enforced_by_the_table(
    source: RefundSource,
    provider_refund_id: str | None,
    gql: GraphQLCaller,
    client: httpx.AsyncClient,
    sessions: async_sessionmaker[AsyncSession],
    catalog: Catalog,
    secret: str,
) -> None:
    order_id, _ = await pending_order(gql, {"MUG": 2})
    assert await send(client, sessions, secret, "payment_intent.succeeded", order_id) == "sold"
    assert await send(client, sessions, secret, "charge.refunded", order_id, amount=100) == (
        "needs_attention"
    )
    before = [(r.id, r.source, r.amount) for r in await refunds_of(sessions, order_id)]
    assert [b[1] for b in before] == [RefundSource.UNATTRIBUTED]
    with pytest.raises(IntegrityError):
        async with sessions.begin() as s:
            await s.execute(
                insert(Refund).values(
                    order_id=order_id,
                    provider_refund_id=provider_refund_id,
                    amount=1,
                    currency_code="USD",
                    status="succeeded",
                    source=source,
                )
            )
    after = [(r.id, r.source, r.amount) for r in await refunds_of(sessions, order_id)]
    assert after == before


def _writes(path: Path) -> set[str]:
    """What a module writes of refunds: ``insert(Refund)``, ``.values(refunded_quantity=..)``
    and ``.values(restocked=..)``."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id == "insert"
            and any(isinstance(a, ast.Name) and a.id == "Refund" for a in node.args)
        ):
            found.add("insert(Refund)")
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr == "values"
        ):
            found.update(
                f"{k.arg}=" for k in node.keywords if k.arg in ("refunded_quantity", "restocked")
            )
    return found


def test_refund_rows_and_refunded_units_are_written_in_one_module() -> None:
    package = ROOT / "gql_inventory"
    writers = {
        str(p.relative_to(package)): found
        for p in sorted(package.rglob("*.py"))
        if "migrations" not in p.parts and (found := _writes(p))
    }
    assert writers == {
        "orders/refund_records.py": {"insert(Refund)", "refunded_quantity=", "restocked="}
    }


# ---------------------------------------------------------------- typing guards

PUBLISHED_OUTCOMES = {
    "sold", "sold_late", "needs_attention", "amount_mismatch", "already_paid", "recorded",
    "cancelled", "ignored", "extended", "unchanged", "restocked", "refunded", "refund_failed",
    "currency_mismatch", "order_mismatch", "order_not_found", "payment_intent_mismatch",
    "invalid", "duplicate", "still_pending", "cancel_confirmed", "cancel_retried",
}  # fmt: skip


def test_outcome_values_are_the_published_words() -> None:
    """The webhook's HTTP body, `webhook_events.outcome` and the CLI print these."""
    assert {o.value for o in Outcome} == PUBLISHED_OUTCOMES


@pytest.mark.parametrize(
    "function",
    [
        payment_outcomes.payment_succeeded,
        payment_outcomes.payment_failed,
        payment_outcomes.payment_canceled,
        payment_progress.payment_in_progress,
        provider_events.refund_reported,
        provider_events.charge_refunded,
        payment_check.apply_payment_state,
        event_checks.record_invalid,
        stripe_webhook.apply_event,
    ],
    ids=lambda f: f.__name__,
)
def test_outcome_functions_return_an_outcome(function: typing.Callable[..., object]) -> None:
    assert typing.get_type_hints(function)["return"] is Outcome


def test_webhook_handles_only_known_event_kinds() -> None:
    assert set(stripe_webhook.HANDLERS) <= {k.value for k in PaymentEventKind}


def test_mypy_catches_a_mistyped_outcome_or_event_type(tmp_path: Path) -> None:
    snippet = tmp_path / "mistyped.py"
    snippet.write_text(
        "import uuid\n"
        "from sqlalchemy.ext.asyncio import AsyncSession\n"
        "from gql_inventory.orders.orders import record_payment_event\n"
        "from gql_inventory.orders.payment_states import Outcome\n\n\n"
        "def outcome() -> Outcome:\n"
        '    return "sold_lat"\n\n\n'
        "async def event(session: AsyncSession) -> None:\n"
        '    await record_payment_event(session, uuid.uuid4(), "payment_intent.succeded")\n'
    )
    found = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--no-error-summary", str(snippet)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,  # a hang guard only
        check=False,
    )
    errors = [line for line in found.stdout.splitlines() if ": error:" in line]
    assert len(errors) == 2, found.stdout + found.stderr
    assert '(got "str", expected "Outcome")' in errors[0]
    assert '"PaymentEventKind"' in errors[1]
