"""Stripe settings that must not be served with, secrets kept out of logs, and the
webhook while PostgreSQL is down (issue 8, items 2 and 8)."""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import AsyncIterator
from typing import Any

import asyncpg  # type: ignore[import-untyped]
import httpx
import pytest
import structlog
from sqlalchemy import exc as sa_exc
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from starlette.applications import Starlette
from typer.testing import CliRunner

from gql_inventory import cli
from gql_inventory.app import create_app
from gql_inventory.devtools import stripe_events as events
from gql_inventory.kit.outage import is_database_outage
from gql_inventory.models import OrderStatus
from gql_inventory.services import Services
from gql_inventory.settings import (
    OFFLINE_WEBHOOK_SECRET,
    ConfigurationError,
    Settings,
    get_settings,
)
from gql_inventory.webhooks import stripe as stripe_webhook_module
from tests.conftest import GraphQLCaller
from tests.support.catalog import Catalog
from tests.support.invariants import assert_invariants
from tests.support.payments import (
    Stock,
    counts,
    deliver,
    facts_of,
    order_row,
    pending_order,
    stock,
)

API_KEY = "sk_test_edge_key_4f9c2b7e1d"
REAL_SECRET = "whsec_edge_real_endpoint_8e3a1c"
UNREACHABLE = "postgresql+asyncpg://postgres@127.0.0.1:1/x"


# ---------------------------------------------------------------- refusing to start

UNSAFE = {"unset": None, "offline": OFFLINE_WEBHOOK_SECRET, "blank": "  "}


@pytest.mark.parametrize("webhook_secret", UNSAFE.values(), ids=UNSAFE.keys())
def test_stripe_key_without_a_real_webhook_secret_refuses_to_start(
    webhook_secret: str | None,
) -> None:
    settings = Settings(stripe_api_key=API_KEY, stripe_webhook_secret=webhook_secret)
    with pytest.raises(ConfigurationError, match="STRIPE_WEBHOOK_SECRET") as caught:
        create_app(settings, database_url=UNREACHABLE)
    assert caught.value.setting == "STRIPE_WEBHOOK_SECRET"
    assert API_KEY not in str(caught.value)
    with pytest.raises(ConfigurationError):
        Services.create(settings, UNREACHABLE)  # what every uvicorn worker runs


def test_without_a_stripe_key_the_offline_secret_is_used() -> None:
    assert Settings().webhook_secret() == OFFLINE_WEBHOOK_SECRET
    real = Settings(stripe_api_key=API_KEY, stripe_webhook_secret=REAL_SECRET)
    assert real.webhook_secret() == REAL_SECRET


@pytest.fixture
def stripe_env(monkeypatch: pytest.MonkeyPatch, database_url: str) -> Any:
    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.setenv("STRIPE_API_KEY", API_KEY)
    monkeypatch.delenv("STRIPE_WEBHOOK_SECRET", raising=False)
    started: list[dict[str, Any]] = []
    monkeypatch.setattr("uvicorn.run", lambda *a, **kw: started.append(kw))
    get_settings.cache_clear()
    yield started
    get_settings.cache_clear()


@pytest.mark.parametrize("webhook_secret", [None, OFFLINE_WEBHOOK_SECRET], ids=["unset", "offline"])
def test_cli_serve_refuses_with_a_clear_message_and_no_traceback(
    webhook_secret: str | None,
    stripe_env: list[dict[str, Any]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    if webhook_secret is not None:
        monkeypatch.setenv("STRIPE_WEBHOOK_SECRET", webhook_secret)
    result = CliRunner().invoke(cli.app, ["serve"])
    assert result.exit_code == 2
    assert "configuration error: STRIPE_WEBHOOK_SECRET" in result.output
    assert "Traceback" not in result.output
    assert API_KEY not in result.output
    assert stripe_env == []  # uvicorn never started
    order = ["--order", str(uuid.uuid4())]
    for other in (["stripe-event", "payment_intent.succeeded", *order], ["expire-reservations"]):
        refused = CliRunner().invoke(cli.app, other)  # nor signs with the public secret
        assert refused.exit_code == 2, refused.output
        assert "configuration error: STRIPE_WEBHOOK_SECRET" in refused.output


def test_cli_serve_starts_with_a_real_secret(
    stripe_env: list[dict[str, Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("STRIPE_WEBHOOK_SECRET", REAL_SECRET)
    result = CliRunner().invoke(cli.app, ["serve", "--port", "8123"])
    assert result.exit_code == 0, result.output
    assert [kw["port"] for kw in stripe_env] == [8123]
    assert REAL_SECRET not in result.output


# ---------------------------------------------------------------- the real secret only


@pytest.fixture
async def stripe_app(database_url: str) -> AsyncIterator[Starlette]:
    settings = Settings(
        stripe_api_key=API_KEY,
        stripe_webhook_secret=REAL_SECRET,
        stripe_api_base="http://127.0.0.1:1",  # never called by the webhook
        admin_tokens=["admin-secret"],
    )
    application = create_app(settings, database_url=database_url)
    yield application
    await application.state.services.close()


async def test_event_signed_with_the_offline_secret_does_nothing_with_a_real_one(
    stripe_app: Starlette,
    gql: GraphQLCaller,
    sessions: async_sessionmaker[AsyncSession],
    catalog: Catalog,
) -> None:
    order_id, _ = await pending_order(gql, {"MUG": 2})  # checked out offline
    event = events.event_for_order("payment_intent.succeeded", await facts_of(sessions, order_id))
    transport = httpx.ASGITransport(app=stripe_app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        before = await counts(sessions)
        forged = await deliver(client, event, OFFLINE_WEBHOOK_SECRET)
        assert forged.status_code == 400
        assert forged.json() == {"error": "invalid signature"}
        assert await counts(sessions) == before
        assert (await order_row(sessions, order_id)).status is OrderStatus.PENDING_PAYMENT
        assert await stock(sessions, "MUG") == Stock(50, 2)
        genuine = await deliver(client, event, REAL_SECRET)
    assert (genuine.status_code, genuine.json()["outcome"]) == (200, "sold")
    assert (await order_row(sessions, order_id)).status is OrderStatus.PAID
    await assert_invariants(sessions)


# ---------------------------------------------------------------- secrets stay secret


async def test_secrets_never_appear_in_repr_or_logs(
    stripe_app: Starlette,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    settings = stripe_app.state.services.settings
    for shown in (repr(settings), str(settings), settings.model_dump_json()):
        assert API_KEY not in shown
        assert REAL_SECRET not in shown
    caplog.set_level(logging.DEBUG)
    event = events.envelope("customer.created", {"id": "cus_1", "object": "customer"})
    transport = httpx.ASGITransport(app=stripe_app)
    capture = structlog.testing.LogCapture()  # the app's loggers are cached: swap the webhook's
    monkeypatch.setattr(stripe_webhook_module, "log", structlog.wrap_logger(None, [capture]))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        assert (await deliver(client, event, REAL_SECRET)).status_code == 200
        assert (await deliver(client, event, "whsec_wrong")).status_code == 400
    with pytest.raises(ConfigurationError) as caught:
        create_app(Settings(stripe_api_key=API_KEY), database_url=UNREACHABLE)
    logged = capture.entries
    assert [e["event"] for e in logged] == ["stripe.webhook", "stripe.webhook_refused"]
    out, err = capsys.readouterr()
    for text in (repr(logged), caplog.text, out, err, str(caught.value)):
        assert API_KEY not in text
        assert REAL_SECRET not in text


# ---------------------------------------------------------------- database down


async def test_webhook_answers_503_while_the_database_is_unreachable() -> None:
    app = create_app(Settings(), database_url=UNREACHABLE)
    facts = events.OrderFacts(
        order_id=uuid.uuid4(),
        reservation_id=None,
        payment_intent_id="pi_outage",
        amount=999,
        currency="USD",
    )
    transport = httpx.ASGITransport(app=app)
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            for type_ in ("payment_intent.succeeded", "charge.refunded", "customer.created"):
                if type_ == "customer.created":
                    event = events.envelope(type_, {"id": "cus_1", "object": "customer"})
                else:
                    event = events.event_for_order(type_, facts)
                response = await asyncio.wait_for(
                    deliver(client, event, OFFLINE_WEBHOOK_SECRET), timeout=60
                )
                assert response.status_code == 503, response.text
                assert response.headers["retry-after"] == "30"
                assert "database unavailable" in response.json()["error"]
            # a bad signature is still refused before the database is needed
            bad = await deliver(client, event, "whsec_wrong")
            assert bad.status_code == 400
    finally:
        await app.state.services.close()


def _wrapped(orig: BaseException, cls: type[sa_exc.DBAPIError] = sa_exc.DBAPIError) -> Exception:
    return cls.instance("SELECT 1", {}, orig, Exception)


@pytest.mark.parametrize(
    "exc",
    [
        ConnectionRefusedError(111, "refused"),
        OSError(113, "no route to host"),
        TimeoutError(),
        sa_exc.TimeoutError("QueuePool limit reached"),
        asyncpg.TooManyConnectionsError("too many"),
        asyncpg.CannotConnectNowError("starting up"),
        asyncpg.ConnectionDoesNotExistError("closed"),
        asyncpg.AdminShutdownError("shutdown"),
        _wrapped(ConnectionResetError()),
        sa_exc.OperationalError("SELECT 1", {}, Exception("server closed the connection")),
        sa_exc.InterfaceError("SELECT 1", {}, Exception("connection is closed")),
        sa_exc.DBAPIError("SELECT 1", {}, Exception("gone"), connection_invalidated=True),
    ],
    ids=lambda e: type(e).__name__,
)
def test_outages_are_recognised(exc: BaseException) -> None:
    assert is_database_outage(exc)


@pytest.mark.parametrize(
    "exc",
    [
        ValueError("x"),
        KeyError("x"),
        sa_exc.IntegrityError("INSERT", {}, Exception("duplicate key")),
        sa_exc.DataError("INSERT", {}, Exception("value too long")),
        sa_exc.ProgrammingError("SELEC", {}, Exception("syntax error")),
        asyncpg.UniqueViolationError("duplicate key"),
        RuntimeError("a bug"),
    ],
    ids=lambda e: type(e).__name__,
)
def test_other_errors_are_not_outages(exc: BaseException) -> None:
    assert not is_database_outage(exc)


def test_an_outage_as_the_cause_of_another_error_is_recognised() -> None:
    def fail() -> None:
        try:
            raise ConnectionRefusedError(111, "refused")
        except OSError as inner:
            raise RuntimeError("checkout failed") from inner

    with pytest.raises(RuntimeError) as caught:
        fail()
    assert is_database_outage(caught.value)


def test_admin_tokens_and_connection_urls_stay_out_of_repr() -> None:
    settings = Settings(
        admin_tokens=["alice=tok-alice-secret"],
        database_url="postgresql://app:db-password@db/inv",
        broadcast_url="redis://:redis-password@cache/0",
    )
    for shown in (repr(settings), str(settings)):
        for secret in ("tok-alice-secret", "db-password", "redis-password"):
            assert secret not in shown
