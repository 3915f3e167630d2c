"""Webhook endpoints and deliveries through GraphQL (issue 17, admin): create (the secret
returned once, stored sealed, never logged), update, delete, rotate, list; deliveries
listed newest first and retried; anonymous callers and hostile input refused with nothing
changed (checked from the database); and the `gql-inventory webhooks` commands."""

from __future__ import annotations

import base64
import logging
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import standardwebhooks
from cryptography.fernet import Fernet
from pydantic import SecretStr
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from starlette.applications import Starlette

from gql_inventory.models import WebhookTopic
from gql_inventory.outbound.outbox import NewMessage, enqueue, event_body
from gql_inventory.outbound.secrets import secret_box, signing_secrets
from gql_inventory.settings import Settings
from tests.conftest import GraphQLCaller
from tests.support.cli import run_cli
from tests.support.scenarios import fetch_all, fetch_one

Sessions = async_sessionmaker[AsyncSession]

ENDPOINT = "id url topics enabled description createdAt disabledReason previousSecretExpiresAt"
CREATE = (
    "mutation($input: CreateWebhookEndpointInput!) { createWebhookEndpoint(input: $input) "
    "{ endpoint { " + ENDPOINT + " } secret userErrors { code message field } } }"
)
UPDATE = (
    "mutation($input: UpdateWebhookEndpointInput!) { updateWebhookEndpoint(input: $input) "
    "{ endpoint { " + ENDPOINT + " } userErrors { code message field } } }"
)
DELETE = (
    "mutation($id: ID!) { deleteWebhookEndpoint(id: $id) "
    "{ endpoint { " + ENDPOINT + " } userErrors { code message field } } }"
)
ROTATE = (
    "mutation($id: ID!) { rotateWebhookEndpointSecret(id: $id) "
    "{ endpoint { " + ENDPOINT + " } secret userErrors { code message field } } }"
)
DELIVERY = (
    "id messageId topic status attempts lastStatusCode lastError nextAttemptAt createdAt "
    "payload endpoint { id url }"
)
RETRY = (
    "mutation($id: ID!) { retryWebhookDelivery(id: $id) "
    "{ delivery { " + DELIVERY + " } userErrors { code message field } } }"
)
ENDPOINTS = "{ webhookEndpoints { " + ENDPOINT + " } }"
DELIVERIES = (
    """query($endpointId: ID, $status: [WebhookDeliveryStatus!], $first: Int,
  $after: String) { webhookDeliveries(endpointId: $endpointId, status: $status, first: $first,
  after: $after) { totalCount pageInfo { hasNextPage hasPreviousPage endCursor }
  edges { cursor node { """
    + DELIVERY
    + " } } } }"
)

URL = "https://127.0.0.1:9/hooks"  # allowed in development (the test app's environment)
HOSTILE = "<img src=x onerror=alert(1)>"


@pytest.fixture
def settings_of(app: Starlette, monkeypatch: pytest.MonkeyPatch) -> Settings:
    """The app's settings with a fixed secrets key (no key file in var/), for one test."""
    settings: Settings = app.state.services.settings
    monkeypatch.setattr(settings, "webhook_secrets_key", SecretStr(Fernet.generate_key().decode()))
    return settings


async def create(gql: GraphQLCaller, url: str = URL, **extra: Any) -> dict[str, Any]:
    """An endpoint made through GraphQL: the payload (endpoint and secret)."""
    topics = extra.pop("topics", ["STOCK_OUT", "ORDER_PAID"])
    body = await gql(CREATE, {"input": {"url": url, "topics": topics, **extra}}, admin=True)
    payload: dict[str, Any] = body["data"]["createWebhookEndpoint"]
    assert payload["userErrors"] == [], payload
    return payload


async def endpoint_rows(sessions: Sessions) -> list[tuple[Any, ...]]:
    """Every endpoint row, every column: what a refusal must not change."""
    rows = await fetch_all(sessions, "SELECT * FROM webhook_endpoints ORDER BY id")
    return [tuple(r) for r in rows]


async def outbox_rows(sessions: Sessions) -> list[tuple[Any, ...]]:
    rows = await fetch_all(sessions, "SELECT * FROM outbox_messages ORDER BY id")
    return [tuple(r) for r in rows]


async def add_deliveries(
    sessions: Sessions, endpoint_id: str, topics: list[WebhookTopic]
) -> list[int]:
    """PENDING webhook deliveries of `topics` for the endpoint, in order; their ids."""
    now = datetime.now(UTC)
    messages = [
        NewMessage(t, event_body(t, {"n": n}, now), endpoint_id=uuid.UUID(endpoint_id))
        for n, t in enumerate(topics)
    ]
    async with sessions.begin() as session:
        ids = await enqueue(session, messages)
    rows = await fetch_all(
        sessions, "SELECT id FROM outbox_messages WHERE message_id = ANY(:ids) ORDER BY id", ids=ids
    )
    return [r.id for r in rows]


async def set_delivery(sessions: Sessions, delivery_id: int, sql_set: str) -> None:
    async with sessions.begin() as session:
        await session.execute(
            text(f"UPDATE outbox_messages SET {sql_set} WHERE id = :id"), {"id": delivery_id}
        )


# ---------------------------------------------------------------- the secret


async def test_create_returns_the_secret_once_and_stores_it_sealed(
    gql: GraphQLCaller,
    sessions: Sessions,
    settings_of: Settings,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The secret is ``whsec_`` + base64 of 24 bytes; the row holds only its sealed form,
    which opens to the very secret returned (a signature made with the stored secret
    verifies with the returned one); no log line, no SQL parameter and no later read
    carries it."""
    caplog.set_level(logging.DEBUG)
    caplog.set_level(logging.INFO, logger="sqlalchemy.engine")  # statements and parameters
    payload = await create(gql, description="ERP", topics=["ORDER_PAID", "STOCK_OUT"])
    secret = payload["secret"]
    assert secret.startswith("whsec_")
    assert len(base64.b64decode(secret.removeprefix("whsec_"), validate=True)) == 24
    endpoint = payload["endpoint"]
    assert endpoint["url"] == URL
    assert endpoint["topics"] == ["STOCK_OUT", "ORDER_PAID"]  # the enum's order
    assert (endpoint["enabled"], endpoint["description"]) == (True, "ERP")

    row = await fetch_one(sessions, "SELECT * FROM webhook_endpoints")
    assert str(row.id) == endpoint["id"]
    assert secret not in repr(tuple(row))
    assert secret.removeprefix("whsec_") not in repr(tuple(row))
    stored = secret_box(settings_of).open(row.secret_ciphertext)
    assert stored == secret
    when = datetime.now(UTC)
    body = '{"type": "stock.out"}'
    signature = standardwebhooks.Webhook(stored).sign("msg_1", when, body)
    headers = {
        "webhook-id": "msg_1",
        "webhook-timestamp": str(int(when.timestamp())),
        "webhook-signature": signature,
    }
    assert standardwebhooks.Webhook(secret).verify(body, headers) == {"type": "stock.out"}

    listed = await gql(ENDPOINTS, admin=True)
    assert listed["data"]["webhookEndpoints"] == [endpoint]
    out, err = capsys.readouterr()
    for logged in (caplog.text, out, err, repr(listed)):
        assert secret not in logged
        assert secret.removeprefix("whsec_") not in logged
    assert "INSERT INTO webhook_endpoints" in caplog.text  # the SQL log was on: it was checked


async def test_rotation_returns_a_new_secret_and_the_old_one_signs_for_the_overlap(
    gql: GraphQLCaller, sessions: Sessions, settings_of: Settings
) -> None:
    made = await create(gql)
    endpoint_id = made["endpoint"]["id"]
    body = await gql(ROTATE, {"id": endpoint_id}, admin=True)
    rotated = body["data"]["rotateWebhookEndpointSecret"]
    assert rotated["userErrors"] == []
    assert rotated["secret"].startswith("whsec_")
    assert rotated["secret"] != made["secret"]

    row = await fetch_one(sessions, "SELECT *, now() AS db_now FROM webhook_endpoints")
    box = secret_box(settings_of)
    assert box.open(row.secret_ciphertext) == rotated["secret"]
    assert box.open(row.previous_secret_ciphertext) == made["secret"]
    overlap = timedelta(seconds=settings_of.webhook_secret_overlap_seconds)
    assert row.previous_secret_expires_at == row.updated_at + overlap
    assert rotated["endpoint"]["previousSecretExpiresAt"] == (
        row.previous_secret_expires_at.isoformat()
    )
    signing = signing_secrets(
        box,
        row.secret_ciphertext,
        row.previous_secret_ciphertext,
        row.previous_secret_expires_at,
        row.db_now,
    )
    assert signing == [rotated["secret"], made["secret"]]
    after = row.previous_secret_expires_at + timedelta(seconds=1)
    assert signing_secrets(
        box,
        row.secret_ciphertext,
        row.previous_secret_ciphertext,
        row.previous_secret_expires_at,
        after,
    ) == [rotated["secret"]]


# ---------------------------------------------------------------- update, delete


async def test_update_changes_only_what_is_given(
    gql: GraphQLCaller, sessions: Sessions, settings_of: Settings
) -> None:
    made = (await create(gql, description="first"))["endpoint"]
    body = await gql(
        UPDATE, {"input": {"id": made["id"], "topics": ["INVENTORY_LEVEL_UPDATED"]}}, admin=True
    )
    changed = body["data"]["updateWebhookEndpoint"]
    assert changed["userErrors"] == []
    assert changed["endpoint"] == {**made, "topics": ["INVENTORY_LEVEL_UPDATED"]}

    new_url = "https://127.0.0.2:8443/in"
    body = await gql(
        UPDATE, {"input": {"id": made["id"], "url": new_url, "description": None}}, admin=True
    )
    changed = body["data"]["updateWebhookEndpoint"]["endpoint"]
    assert (changed["url"], changed["description"]) == (new_url, None)
    row = await fetch_one(sessions, "SELECT url, topics, description FROM webhook_endpoints")
    assert tuple(row) == (new_url, ["INVENTORY_LEVEL_UPDATED"], None)


async def test_enabled_true_re_enables_an_endpoint_a_410_disabled(
    gql: GraphQLCaller, sessions: Sessions, settings_of: Settings
) -> None:
    made = (await create(gql))["endpoint"]
    body = await gql(UPDATE, {"input": {"id": made["id"], "enabled": False}}, admin=True)
    off = body["data"]["updateWebhookEndpoint"]["endpoint"]
    assert (off["enabled"], off["disabledReason"]) == (False, "disabled by an admin")
    async with sessions.begin() as session:  # as the delivery worker does on a 410
        await session.execute(
            text("UPDATE webhook_endpoints SET disabled_reason = 'the receiver answered 410'")
        )
    body = await gql(UPDATE, {"input": {"id": made["id"], "enabled": True}}, admin=True)
    on = body["data"]["updateWebhookEndpoint"]["endpoint"]
    assert (on["enabled"], on["disabledReason"]) == (True, None)
    row = await fetch_one(sessions, "SELECT enabled, disabled_reason FROM webhook_endpoints")
    assert tuple(row) == (True, None)


async def test_delete_removes_the_endpoint_and_its_deliveries(
    gql: GraphQLCaller, sessions: Sessions, settings_of: Settings
) -> None:
    gone = (await create(gql))["endpoint"]
    kept = (await create(gql, url="https://127.0.0.3/x"))["endpoint"]
    await add_deliveries(sessions, gone["id"], [WebhookTopic.STOCK_OUT, WebhookTopic.ORDER_PAID])
    kept_ids = await add_deliveries(sessions, kept["id"], [WebhookTopic.STOCK_OUT])
    body = await gql(DELETE, {"id": gone["id"]}, admin=True)
    assert body["data"]["deleteWebhookEndpoint"] == {"endpoint": gone, "userErrors": []}
    ids = await fetch_all(sessions, "SELECT id FROM webhook_endpoints")
    assert [str(r.id) for r in ids] == [kept["id"]]
    assert [r.id for r in await fetch_all(sessions, "SELECT id FROM outbox_messages")] == kept_ids
    again = await gql(DELETE, {"id": gone["id"]}, admin=True)
    assert again["data"]["deleteWebhookEndpoint"]["userErrors"] == [
        {
            "code": "WEBHOOK_ENDPOINT_NOT_FOUND",
            "message": "no such webhook endpoint",
            "field": ["id"],
        }
    ]


# ---------------------------------------------------------------- deliveries


async def test_deliveries_are_listed_newest_first_by_endpoint_and_status(
    gql: GraphQLCaller, sessions: Sessions, settings_of: Settings
) -> None:
    """Only WEBHOOK rows (an e-mail row of the same outbox is left out), newest first,
    filtered by endpoint and status, in pages whose cursors skip nothing; totalCount
    counts every page; nextAttemptAt is null once a delivery is final."""
    one = (await create(gql))["endpoint"]
    two = (await create(gql, url="https://127.0.0.3/x"))["endpoint"]
    a = await add_deliveries(sessions, one["id"], [WebhookTopic.STOCK_OUT, WebhookTopic.STOCK_LOW])
    b = await add_deliveries(sessions, two["id"], [WebhookTopic.ORDER_PAID])
    c = await add_deliveries(sessions, one["id"], [WebhookTopic.PAYMENT_FAILED])
    async with sessions.begin() as session:
        body = event_body(WebhookTopic.STOCK_OUT, {}, datetime.now(UTC))
        await enqueue(session, [NewMessage(WebhookTopic.STOCK_OUT, body, recipient="ops@x.io")])
    await set_delivery(
        sessions,
        a[0],
        "status = 'FAILED', attempts = 8, last_status_code = 500, last_error = 'HTTP 500', "
        "next_attempt_at = NULL, completed_at = now()",
    )

    everything = (await gql(DELIVERIES, admin=True))["data"]["webhookDeliveries"]
    assert everything["totalCount"] == 4
    nodes = [e["node"] for e in everything["edges"]]
    assert [int(n["id"]) for n in nodes] == [c[0], b[0], a[1], a[0]]
    assert [n["topic"] for n in nodes] == ["PAYMENT_FAILED", "ORDER_PAID", "STOCK_LOW", "STOCK_OUT"]
    assert nodes[1]["endpoint"] == {"id": two["id"], "url": two["url"]}
    failed = nodes[3]
    assert (failed["status"], failed["attempts"], failed["lastStatusCode"]) == ("FAILED", 8, 500)
    assert (failed["lastError"], failed["nextAttemptAt"]) == ("HTTP 500", None)
    assert nodes[0]["status"] == "PENDING"
    assert nodes[0]["nextAttemptAt"] is not None
    assert nodes[0]["messageId"].startswith("msg_")
    assert '"type":"payment.failed"' in nodes[0]["payload"]

    mine = await gql(DELIVERIES, {"endpointId": one["id"], "first": 2}, admin=True)
    page = mine["data"]["webhookDeliveries"]
    assert [int(e["node"]["id"]) for e in page["edges"]] == [c[0], a[1]]
    assert (page["totalCount"], page["pageInfo"]["hasNextPage"]) == (3, True)
    rest = await gql(
        DELIVERIES,
        {"endpointId": one["id"], "first": 2, "after": page["pageInfo"]["endCursor"]},
        admin=True,
    )
    page = rest["data"]["webhookDeliveries"]
    assert [int(e["node"]["id"]) for e in page["edges"]] == [a[0]]
    assert page["pageInfo"] == {
        "hasNextPage": False,
        "hasPreviousPage": True,
        "endCursor": page["edges"][0]["cursor"],
    }

    only_failed = await gql(DELIVERIES, {"status": ["FAILED"]}, admin=True)
    assert [int(e["node"]["id"]) for e in only_failed["data"]["webhookDeliveries"]["edges"]] == [
        a[0]
    ]
    for not_one in ("not-an-id", str(uuid.uuid4())):
        none = await gql(DELIVERIES, {"endpointId": not_one}, admin=True)
        assert none["data"]["webhookDeliveries"]["totalCount"] == 0
    bad = await gql(DELIVERIES, {"after": "bm9wZQ=="}, admin=True)
    assert bad["errors"][0]["extensions"]["code"] == "BAD_CURSOR"


async def test_retry_makes_a_failed_delivery_pending_and_due_now(
    gql: GraphQLCaller, sessions: Sessions, settings_of: Settings
) -> None:
    """Same message id, attempts kept, completed_at cleared, due at the retry's time."""
    made = (await create(gql))["endpoint"]
    [delivery_id] = await add_deliveries(sessions, made["id"], [WebhookTopic.STOCK_OUT])
    await set_delivery(
        sessions,
        delivery_id,
        "status = 'FAILED', attempts = 8, next_attempt_at = NULL, completed_at = now(), "
        "last_status_code = 503",
    )
    before = await fetch_one(sessions, "SELECT * FROM outbox_messages")
    body = await gql(RETRY, {"id": str(delivery_id)}, admin=True)
    payload = body["data"]["retryWebhookDelivery"]
    assert payload["userErrors"] == []
    assert payload["delivery"]["status"] == "PENDING"
    assert payload["delivery"]["messageId"] == before.message_id
    after = await fetch_one(
        sessions, "SELECT *, next_attempt_at <= now() AS due FROM outbox_messages"
    )
    assert (after.status, after.attempts, after.completed_at) == ("PENDING", 8, None)
    assert (after.message_id, after.payload, after.due) == (before.message_id, before.payload, True)
    assert after.last_status_code == 503  # the last answer stays until the next attempt
    assert payload["delivery"]["nextAttemptAt"] == after.next_attempt_at.isoformat()


async def test_retry_refuses_a_succeeded_delivery_and_ids_that_are_not_deliveries(
    gql: GraphQLCaller, sessions: Sessions, settings_of: Settings
) -> None:
    made = (await create(gql))["endpoint"]
    [done] = await add_deliveries(sessions, made["id"], [WebhookTopic.STOCK_OUT])
    await set_delivery(
        sessions,
        done,
        "status = 'SUCCEEDED', attempts = 1, next_attempt_at = NULL, completed_at = now()",
    )
    async with sessions.begin() as session:
        body = event_body(WebhookTopic.STOCK_OUT, {}, datetime.now(UTC))
        await enqueue(session, [NewMessage(WebhookTopic.STOCK_OUT, body, recipient="ops@x.io")])
    mail = await fetch_one(sessions, "SELECT id FROM outbox_messages WHERE channel = 'EMAIL'")
    before = await outbox_rows(sessions)

    refused = (await gql(RETRY, {"id": str(done)}, admin=True))["data"]["retryWebhookDelivery"]
    assert refused["delivery"] is None
    [error] = refused["userErrors"]
    assert (error["code"], error["field"]) == ("INVALID_INPUT", ["id"])
    assert "SUCCEEDED" in error["message"]
    for not_one in (str(mail.id), "999999", "0", "-1", "1e3", "abc", "", " 1", "٣", str(10**30)):
        body = await gql(RETRY, {"id": not_one}, admin=True)
        assert "errors" not in body, (not_one, body)
        assert body["data"]["retryWebhookDelivery"] == {
            "delivery": None,
            "userErrors": [
                {
                    "code": "WEBHOOK_ENDPOINT_NOT_FOUND",
                    "message": "no such webhook delivery",
                    "field": ["id"],
                }
            ],
        }, not_one
    assert await outbox_rows(sessions) == before


# ---------------------------------------------------------------- refusals


async def test_anonymous_callers_are_forbidden_and_change_nothing(
    gql: GraphQLCaller, sessions: Sessions, settings_of: Settings
) -> None:
    made = (await create(gql))["endpoint"]
    [delivery_id] = await add_deliveries(sessions, made["id"], [WebhookTopic.STOCK_OUT])
    await set_delivery(sessions, delivery_id, "status = 'FAILED', next_attempt_at = NULL")
    endpoints_before, outbox_before = await endpoint_rows(sessions), await outbox_rows(sessions)
    calls: list[tuple[str, dict[str, Any]]] = [
        (CREATE, {"input": {"url": URL, "topics": ["STOCK_OUT"]}}),
        (UPDATE, {"input": {"id": made["id"], "enabled": False}}),
        (DELETE, {"id": made["id"]}),
        (ROTATE, {"id": made["id"]}),
        (RETRY, {"id": str(delivery_id)}),
        (ENDPOINTS, {}),
        (DELIVERIES, {}),
    ]
    for query, variables in calls:
        body = await gql(query, variables)
        assert body["data"] is None, query
        assert [e["extensions"]["code"] for e in body["errors"]] == ["FORBIDDEN"], query
    assert await endpoint_rows(sessions) == endpoints_before
    assert await outbox_rows(sessions) == outbox_before


CREATE_REFUSALS = [
    pytest.param({"url": "ftp://example.com/x"}, "WEBHOOK_URL_NOT_ALLOWED", "url", id="ftp"),
    pytest.param({"url": "not a url"}, "WEBHOOK_URL_NOT_ALLOWED", "url", id="no-scheme"),
    pytest.param({"url": "https://"}, "WEBHOOK_URL_NOT_ALLOWED", "url", id="no-host"),
    pytest.param(
        {"url": "https://u:p@127.0.0.1/"}, "WEBHOOK_URL_NOT_ALLOWED", "url", id="userinfo"
    ),
    pytest.param({"url": "https://127.0.0.1/#x"}, "WEBHOOK_URL_NOT_ALLOWED", "url", id="fragment"),
    pytest.param({"url": "https://127.0.0.1:99999/"}, "WEBHOOK_URL_NOT_ALLOWED", "url", id="port"),
    pytest.param(
        {"url": "https://127.0.0.1/" + "a" * 2050}, "WEBHOOK_URL_NOT_ALLOWED", "url", id="long"
    ),
    pytest.param(
        {"url": "https://169.254.169.254/latest"}, "WEBHOOK_URL_NOT_ALLOWED", "url", id="metadata"
    ),
    pytest.param({"topics": []}, "INVALID_INPUT", "topics", id="no-topics"),
    pytest.param(
        {"topics": ["STOCK_OUT", "STOCK_OUT"]}, "INVALID_INPUT", "topics", id="topic-twice"
    ),
    pytest.param({"description": "x" * 10_000}, "INVALID_INPUT", "description", id="10k-note"),
]


@pytest.mark.parametrize(("change", "code", "field"), CREATE_REFUSALS)
async def test_hostile_creates_are_refused_and_change_nothing(
    gql: GraphQLCaller,
    sessions: Sessions,
    settings_of: Settings,
    change: dict[str, Any],
    code: str,
    field: str,
) -> None:
    """Each refusal names its field and says why; no endpoint row is written."""
    existing = (await create(gql))["endpoint"]
    before = await endpoint_rows(sessions)
    sent = {"url": URL, "topics": ["STOCK_OUT"], **change}
    body = await gql(CREATE, {"input": sent}, admin=True)
    payload = body["data"]["createWebhookEndpoint"]
    assert (payload["endpoint"], payload["secret"]) == (None, None)
    [error] = payload["userErrors"]
    assert (error["code"], error["field"]) == (code, ["input", field])
    assert error["message"]
    # the same refusal on an update leaves the existing endpoint as it was
    body = await gql(UPDATE, {"input": {"id": existing["id"], **change}}, admin=True)
    [error] = body["data"]["updateWebhookEndpoint"]["userErrors"]
    assert (error["code"], error["field"]) == (code, ["input", field])
    assert await endpoint_rows(sessions) == before


PRIVATE = [
    pytest.param("https://localhost/hook", "loopback", id="localhost-resolves-to-127.0.0.1"),
    pytest.param("https://127.0.0.1/hook", "loopback", id="loopback"),
    pytest.param("https://10.1.2.3/hook", "private", id="10.x"),
    pytest.param("https://192.168.0.10/hook", "private", id="192.168.x"),
    pytest.param("https://[::1]/hook", "loopback", id="ipv6-loopback"),
    pytest.param("https://[::ffff:10.0.0.1]/hook", "private", id="ipv4-mapped"),
    pytest.param("http://93.184.215.14/hook", "https", id="plain-http"),
]


@pytest.mark.parametrize(("url", "why"), PRIVATE)
async def test_private_and_http_urls_are_refused_when_private_urls_are_off(
    gql: GraphQLCaller,
    sessions: Sessions,
    settings_of: Settings,
    monkeypatch: pytest.MonkeyPatch,
    url: str,
    why: str,
) -> None:
    """WEBHOOK_ALLOW_PRIVATE_URLS=false: loopback (also through a name), private and
    mapped addresses and plain http are WEBHOOK_URL_NOT_ALLOWED, at creation and update."""
    existing = (await create(gql))["endpoint"]
    monkeypatch.setattr(settings_of, "webhook_allow_private_urls", False)
    before = await endpoint_rows(sessions)
    body = await gql(CREATE, {"input": {"url": url, "topics": ["STOCK_OUT"]}}, admin=True)
    [error] = body["data"]["createWebhookEndpoint"]["userErrors"]
    assert (error["code"], error["field"]) == ("WEBHOOK_URL_NOT_ALLOWED", ["input", "url"])
    assert why in error["message"]
    body = await gql(UPDATE, {"input": {"id": existing["id"], "url": url}}, admin=True)
    [error] = body["data"]["updateWebhookEndpoint"]["userErrors"]
    assert error["code"] == "WEBHOOK_URL_NOT_ALLOWED"
    assert await endpoint_rows(sessions) == before


async def test_production_refuses_http_and_private_urls_by_default(
    gql: GraphQLCaller, sessions: Sessions, settings_of: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(settings_of, "environment", "production")
    monkeypatch.setattr(settings_of, "webhook_allow_private_urls", None)
    for url in ("http://127.0.0.1:8080/hook", "https://localhost/hook"):
        body = await gql(CREATE, {"input": {"url": url, "topics": ["STOCK_OUT"]}}, admin=True)
        [error] = body["data"]["createWebhookEndpoint"]["userErrors"]
        assert error["code"] == "WEBHOOK_URL_NOT_ALLOWED", url
    assert await endpoint_rows(sessions) == []


async def test_several_refusals_are_listed_together(
    gql: GraphQLCaller, sessions: Sessions, settings_of: Settings
) -> None:
    sent = {"url": "ftp://x", "topics": [], "description": "x" * 501}
    body = await gql(CREATE, {"input": sent}, admin=True)
    errors = body["data"]["createWebhookEndpoint"]["userErrors"]
    assert [(e["code"], e["field"]) for e in errors] == [
        ("WEBHOOK_URL_NOT_ALLOWED", ["input", "url"]),
        ("INVALID_INPUT", ["input", "topics"]),
        ("INVALID_INPUT", ["input", "description"]),
    ]
    assert await endpoint_rows(sessions) == []


@pytest.mark.parametrize(
    "bad_id",
    ["not-a-uuid", "", "1", "6f1c2a9e-0d4b-4c57-9a3e-1b2c3d4e5f60", "x" * 5000],
    ids=["word", "empty", "number", "unknown-uuid", "5000-chars"],
)
async def test_endpoint_ids_that_are_not_endpoints_are_not_found(
    gql: GraphQLCaller, sessions: Sessions, settings_of: Settings, bad_id: str
) -> None:
    await create(gql)
    before = await endpoint_rows(sessions)
    body = await gql(UPDATE, {"input": {"id": bad_id, "enabled": False}}, admin=True)
    assert body["data"]["updateWebhookEndpoint"]["userErrors"] == [
        {
            "code": "WEBHOOK_ENDPOINT_NOT_FOUND",
            "message": "no such webhook endpoint",
            "field": ["input", "id"],
        }
    ]
    for query, name in ((DELETE, "deleteWebhookEndpoint"), (ROTATE, "rotateWebhookEndpointSecret")):
        body = await gql(query, {"id": bad_id}, admin=True)
        assert "errors" not in body, body
        [error] = body["data"][name]["userErrors"]
        assert (error["code"], error["field"]) == ("WEBHOOK_ENDPOINT_NOT_FOUND", ["id"])
    assert await endpoint_rows(sessions) == before


async def test_hostile_text_is_stored_and_returned_as_given(
    gql: GraphQLCaller, sessions: Sessions, settings_of: Settings
) -> None:
    """Markup in a description is data: kept and answered byte for byte (the page shows
    it as text, tests/test_dashboard_webhooks.py)."""
    made = (await create(gql, description=HOSTILE, url=URL + "?q=<b>"))["endpoint"]
    assert (made["description"], made["url"]) == (HOSTILE, URL + "?q=<b>")
    row = await fetch_one(sessions, "SELECT description FROM webhook_endpoints")
    assert row.description == HOSTILE


# ---------------------------------------------------------------- the command line


async def test_cli_lists_endpoints_with_delivery_counts_and_retries(
    gql: GraphQLCaller, sessions: Sessions, settings_of: Settings, cli_env: None
) -> None:
    made = await create(gql, description="ERP")
    endpoint = made["endpoint"]
    ids = await add_deliveries(
        sessions,
        endpoint["id"],
        [WebhookTopic.STOCK_OUT, WebhookTopic.STOCK_LOW, WebhookTopic.ORDER_PAID],
    )
    await set_delivery(sessions, ids[0], "status = 'FAILED', attempts = 8, next_attempt_at = NULL")
    await set_delivery(
        sessions, ids[1], "status = 'SUCCEEDED', attempts = 1, next_attempt_at = NULL"
    )

    listed = await run_cli("webhooks", "list")
    assert listed.exit_code == 0, listed.output
    assert f"{endpoint['id']} enabled {URL}" in listed.stdout
    assert "topics: STOCK_OUT,ORDER_PAID" in listed.stdout
    assert "PENDING=1 SUCCEEDED=1 FAILED=1" in listed.stdout
    assert made["secret"] not in listed.output

    retried = await run_cli("webhooks", "retry", str(ids[0]))
    assert retried.exit_code == 0, retried.output
    row = await fetch_one(
        sessions, "SELECT status, attempts FROM outbox_messages WHERE id = :id", id=ids[0]
    )
    assert tuple(row) == ("PENDING", 8)
    before = await outbox_rows(sessions)
    for refused in (str(ids[1]), "nope", "424242"):
        result = await run_cli("webhooks", "retry", refused)
        assert result.exit_code == 1, result.output
        assert ("INVALID_INPUT" if refused == str(ids[1]) else "WEBHOOK_ENDPOINT_NOT_FOUND") in (
            result.output
        )
    assert await outbox_rows(sessions) == before
