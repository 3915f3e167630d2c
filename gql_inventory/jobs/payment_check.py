"""The pending-payment check: ask the payment provider about orders whose outcome never
arrived, and apply it as the webhook would (`orders.pending_payments`).

Runs in the app on a timer (`PENDING_PAYMENT_CHECK_INTERVAL_SECONDS`) and as
`gql-inventory check-pending-payments`. Across processes one check runs at a time: a
PostgreSQL advisory lock (``pg_try_advisory_xact_lock``) held by a lock-only transaction
on its own connection for the run; no transaction that touches data stays open while the
provider is called. Each order is retrieved, then applied in its own transaction, so
one failure (provider error, database error) is reported and the rest go on. Offline
(no provider that can tell): it reports the pending orders and changes nothing, under
the same lock, so one process reports them, not every worker.
"""

from __future__ import annotations

import contextlib
import uuid
from dataclasses import dataclass, field
from datetime import timedelta

from sqlalchemy import text

from gql_inventory.domain.uow import STRIPE, UnitOfWork
from gql_inventory.jobs.periodic import in_background, run_every
from gql_inventory.kit import metrics
from gql_inventory.kit.logs import get_logger
from gql_inventory.orders.payment_states import Outcome
from gql_inventory.orders.pending_payments import (
    PendingPayment,
    apply_payment_state,
    pending_payments,
    planned_action,
)
from gql_inventory.payments.base import PaymentState, ProviderFailure
from gql_inventory.services import Services
from gql_inventory.uow import run_in_transaction

log = get_logger(__name__)

#: pg advisory lock key of the pending-payment check ("gqlinv-paychk" folded to a bigint).
PAYMENT_CHECK_LOCK_KEY = 0x67716C7061796368


@dataclass(frozen=True, slots=True)
class CheckedPayment:
    """One order checked: the provider's `provider_status` (None: unknown), and the
    `outcome` applied (or, in a dry run, the action planned); `error` when it failed.
    `changed` is True only when an outcome was applied and it changed the order or its
    stock (offline, dry-run, failed and no-op checks change nothing)."""

    order_id: uuid.UUID
    payment_intent_id: str
    provider_status: str | None
    outcome: str
    error: str | None = None
    changed: bool = False


@dataclass
class PaymentCheckResult:
    """What one check did. `skipped_lock` when another check held the lock; `offline`
    when the provider cannot tell (nothing was applied)."""

    checked: list[CheckedPayment] = field(default_factory=list)
    skipped_lock: bool = False
    offline: bool = False
    dry_run: bool = False

    @property
    def failed(self) -> list[CheckedPayment]:
        """The orders whose check failed (their `error` says why)."""
        return [c for c in self.checked if c.error is not None]

    @property
    def changed(self) -> list[CheckedPayment]:
        """The orders the check changed: what the log's `changed` and the CLI count."""
        return [c for c in self.checked if c.changed]


async def check_pending_payments(
    services: Services,
    *,
    min_age: timedelta,
    dry_run: bool = False,
    limit: int = 200,
) -> PaymentCheckResult:
    """Check every order pending at least `min_age` (and cancelled orders whose payment
    cancel failed); see the module. `dry_run`: retrieve and report, apply nothing."""
    result = PaymentCheckResult(dry_run=dry_run, offline=services.payments.name == "offline")
    if dry_run:
        await _check(services, result, min_age=min_age, limit=limit)
        _report(result)
        return result
    # The lock lives in a transaction of its own connection, open for the run: however the
    # run ends (error, cancellation, a lost connection), the lock ends with it. It takes
    # no xid and no row lock, so it holds nothing back.
    async with services.engine.connect() as conn, conn.begin():
        locked = (
            await conn.execute(
                text("SELECT pg_try_advisory_xact_lock(:k)"), {"k": PAYMENT_CHECK_LOCK_KEY}
            )
        ).scalar_one()
        if not locked:
            result.skipped_lock = True
        else:
            await _check(services, result, min_age=min_age, limit=limit)
    _report(result)
    return result


async def _check(
    services: Services, result: PaymentCheckResult, *, min_age: timedelta, limit: int
) -> None:
    async with services.sessions.begin() as session:
        candidates = await pending_payments(session, min_age=min_age, limit=limit)
    for pending in candidates:
        result.checked.append(await _check_one(services, pending, result))


#: Applied outcomes after which nothing changed.
_NO_CHANGE = frozenset(
    {Outcome.STILL_PENDING, Outcome.ALREADY_PAID, Outcome.UNCHANGED, Outcome.IGNORED}
)


async def _check_one(
    services: Services, pending: PendingPayment, result: PaymentCheckResult
) -> CheckedPayment:
    def done(status: str | None, outcome: str, error: str | None = None) -> CheckedPayment:
        return CheckedPayment(pending.order_id, pending.payment_intent_id, status, outcome, error)

    if result.offline:
        return done(None, "unchecked: offline payments report only through the webhook")
    try:
        state = await services.payments.retrieve_payment(pending.payment_intent_id)
    except ProviderFailure as exc:
        return done(None, "error", exc.message)
    if state is None or result.dry_run:
        return done(state.status if state else None, "would " + planned_action(state))
    try:
        outcome = await run_in_transaction(
            services, lambda s: _apply(s, pending, state, services), actor=STRIPE
        )
    except Exception as exc:  # isolated: this order's transaction rolled back, go on
        log.exception("payments.check_failed", order_id=str(pending.order_id))
        return done(state.status, "error", f"{type(exc).__name__}: {exc}".splitlines()[0])
    if outcome is not Outcome.STILL_PENDING:
        log.info(
            "payments.check_applied",
            order_id=str(pending.order_id),
            payment_intent_id=pending.payment_intent_id,
            provider_status=state.status,
            outcome=outcome.value,
        )
    return CheckedPayment(
        pending.order_id,
        pending.payment_intent_id,
        state.status,
        outcome.value,
        changed=outcome not in _NO_CHANGE,
    )


async def _apply(
    uow: UnitOfWork, pending: PendingPayment, state: PaymentState, services: Services
) -> Outcome:
    settings = services.settings
    return await apply_payment_state(
        uow,
        pending.order_id,
        state,
        hold_seconds=settings.payment_hold_seconds,
        max_hold_seconds=settings.payment_hold_max_seconds,
    )


def _report(result: PaymentCheckResult) -> None:
    """Log and count a check: ``payments.checked`` (WARNING when any failed)."""
    if result.skipped_lock:
        metrics.PAYMENT_CHECKS.labels("skipped_lock").inc()
        return
    if result.dry_run:
        return
    for checked in result.checked:
        metrics.PAYMENT_CHECK_ORDERS.labels(checked.outcome.split(":")[0]).inc()
    metrics.PAYMENT_CHECKS.labels("offline" if result.offline else "done").inc()
    if not result.checked:
        return
    emit = log.warning if result.failed else log.info
    emit(
        "payments.checked",
        checked=len(result.checked),
        changed=len(result.changed),
        failed=len(result.failed),
        offline=result.offline,
        failures={str(c.order_id): c.error for c in result.failed},
    )


async def run_payment_checker(
    services: Services, interval_seconds: float, min_age: timedelta
) -> None:
    """Check every `interval_seconds` until cancelled; a failed run is logged and retried."""
    await run_every(
        interval_seconds,
        lambda: check_pending_payments(services, min_age=min_age),
        failure_event="payments.check_run_failed",
        first_after_interval=True,
    )


def payment_checker(
    services: Services, interval_seconds: float, min_age: timedelta
) -> contextlib.AbstractAsyncContextManager[None]:
    """Run `run_payment_checker` in the background for the duration of the block."""
    return in_background(
        run_payment_checker(services, interval_seconds, min_age), name="payment-checker"
    )
