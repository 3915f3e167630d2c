"""Migrations up and down on an empty database, and up again."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest

from gql_inventory.migrations import downgrade_database, upgrade_database


def _tables(url: str) -> set[str]:
    async def fetch() -> set[str]:
        conn = await asyncpg.connect(url)
        try:
            rows = await conn.fetch("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
            return {r["tablename"] for r in rows}
        finally:
            await conn.close()

    return asyncio.run(fetch())


def _admin(server_url: str, sql: str) -> None:
    async def run() -> None:
        conn = await asyncpg.connect(server_url)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    asyncio.run(run())


def test_upgrade_downgrade_upgrade(server_url: str) -> None:
    name = f"gqlinv_mig_{uuid.uuid4().hex[:8]}"
    _admin(server_url, f'CREATE DATABASE "{name}"')
    parts = urlsplit(server_url)
    url = urlunsplit((parts.scheme, parts.netloc, "/" + name, parts.query, ""))
    try:
        upgrade_database(url)
        tables = _tables(url)
        assert {"stock_levels", "stock_movements", "reservations", "orders"} <= tables
        downgrade_database(url, "base")
        assert _tables(url) <= {"alembic_version"}
        upgrade_database(url)
        assert _tables(url) == tables
    finally:
        _admin(server_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


_EXTERNAL = "refunded at the payment provider, outside this service"

_OLD_STYLE_ROWS = """
INSERT INTO orders (id, status, currency_code, total_amount, payment_provider)
VALUES ('00000000-0000-0000-0000-00000000000a', 'PAID', 'USD', 4000, 'stripe'),
       ('00000000-0000-0000-0000-00000000000b', 'CANCELLED', 'USD', 1000, 'stripe'),
       ('00000000-0000-0000-0000-00000000000c', 'NEEDS_ATTENTION', 'USD', 1000, 'stripe'),
       ('00000000-0000-0000-0000-00000000000d', 'PENDING_PAYMENT', 'USD', 1000, 'stripe');
INSERT INTO payment_events (order_id, type, created_at) VALUES
  ('00000000-0000-0000-0000-00000000000a', 'payment_intent.created', '2026-01-01T10:00Z'),
  ('00000000-0000-0000-0000-00000000000a', 'payment_intent.succeeded', '2026-01-01T10:05Z'),
  ('00000000-0000-0000-0000-00000000000a', 'charge.refunded', '2026-01-02T09:00Z'),
  ('00000000-0000-0000-0000-00000000000b', 'amount_mismatch', '2026-01-03T10:00Z'),
  ('00000000-0000-0000-0000-00000000000b', 'order.cancelled', '2026-01-03T11:00Z'),
  ('00000000-0000-0000-0000-00000000000c', 'late_payment_out_of_stock', '2026-01-04T10:00Z'),
  ('00000000-0000-0000-0000-00000000000d', 'payment_intent.payment_failed', '2026-01-05T10:00Z'),
  ('00000000-0000-0000-0000-00000000000d', 'invalid_event', '2026-01-05T11:00Z');
INSERT INTO refunds (order_id, provider_refund_id, amount, currency_code, status, reason)
VALUES ('00000000-0000-0000-0000-00000000000a',
        'unattributed:00000000-0000-0000-0000-00000000000a', 500, 'USD', 'succeeded',
        'refunded at the payment provider, outside this service; refund ids not reported yet'),
       ('00000000-0000-0000-0000-00000000000a', 're_dash', 1000, 'USD', 'succeeded', $ext$),
       ('00000000-0000-0000-0000-00000000000a', 're_ours', 1000, 'USD', 'pending', 'damaged'),
       ('00000000-0000-0000-0000-00000000000a', NULL, 1000, 'USD', 'succeeded', NULL);
""".replace("$ext$", f"'{_EXTERNAL}'")


def _fetch(url: str, sql: str) -> list[tuple[object, ...]]:
    async def fetch() -> list[tuple[object, ...]]:
        conn = await asyncpg.connect(url)
        try:
            return [tuple(r) for r in await conn.fetch(sql)]
        finally:
            await conn.close()

    return asyncio.run(fetch())


def test_0004_backfills_payment_applied_at_and_refund_source(server_url: str) -> None:
    """Rows written before 0004 (event strings, an ``unattributed:`` id) get explicit
    columns; the downgrade gives the old representation back."""
    name = f"gqlinv_mig_{uuid.uuid4().hex[:8]}"
    _admin(server_url, f'CREATE DATABASE "{name}"')
    parts = urlsplit(server_url)
    url = urlunsplit((parts.scheme, parts.netloc, "/" + name, parts.query, ""))
    try:
        upgrade_database(url, "0003")
        _admin(url, _OLD_STYLE_ROWS)
        upgrade_database(url, "0004")
        applied = _fetch(
            url,
            "SELECT right(id::text, 1), to_char(payment_applied_at AT TIME ZONE 'UTC', "
            "'MM-DD HH24:MI') FROM orders ORDER BY id",
        )
        assert applied == [
            ("a", "01-01 10:05"),
            ("b", "01-03 10:00"),
            ("c", "01-04 10:00"),
            ("d", None),
        ]
        refunds = _fetch(url, "SELECT provider_refund_id, source FROM refunds ORDER BY id")
        assert refunds == [
            (None, "UNATTRIBUTED"),
            ("re_dash", "DASHBOARD"),
            ("re_ours", "OURS"),
            (None, "OURS"),
        ]
        downgrade_database(url, "0003")
        (old_id,) = _fetch(url, "SELECT provider_refund_id FROM refunds ORDER BY id LIMIT 1")
        assert old_id == ("unattributed:00000000-0000-0000-0000-00000000000a",)
        columns = _fetch(
            url,
            "SELECT column_name FROM information_schema.columns "
            "WHERE table_schema = 'public' AND table_name IN ('orders', 'refunds') "
            "AND column_name IN ('payment_applied_at', 'source')",
        )
        assert columns == []
        upgrade_database(url)
        assert len(_fetch(url, "SELECT 1 FROM refunds WHERE source = 'UNATTRIBUTED'")) == 1
    finally:
        _admin(server_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


_LEDGER_AT_0004 = """
INSERT INTO locations (id, name) VALUES (1, 'Main');
INSERT INTO products (id, handle, title) VALUES (1, 'mug', 'Mug');
INSERT INTO variants (id, product_id, sku, title, price_amount) VALUES (1, 1, 'MUG', 'Mug', 900);
INSERT INTO stock_levels (id, variant_id, location_id, on_hand, reserved, version)
VALUES (1, 1, 1, 100, 0, 11);
INSERT INTO stock_movements (stock_level_id, variant_id, location_id, kind, on_hand_delta,
    reserved_delta, on_hand_after, reserved_after, version, reason, reference) VALUES
  (1, 1, 1, 'RECEIPT', 50, 0, 50, 0, 1, 'Shopify CSV import (products.csv)', NULL),
  (1, 1, 1, 'COUNT', 10, 0, 60, 0, 2, 'demo catalog', NULL),
  (1, 1, 1, 'RECEIPT', 40, 0, 100, 0, 3, 'RECEIVED: PO-1', NULL),
  (1, 1, 1, 'COUNT', -1, 0, 99, 0, 4, 'CYCLE_COUNT', NULL),
  (1, 1, 1, 'ADJUSTMENT', 1, 0, 100, 0, 5, 'FOUND', NULL),
  (1, 1, 1, 'RESERVATION', 0, 2, 100, 2, 6, NULL, 'reservation:r1'),
  (1, 1, 1, 'RELEASE', 0, -1, 100, 1, 7, NULL, 'reservation:r1'),
  (1, 1, 1, 'EXPIRY', 0, -1, 100, 0, 8, NULL, 'reservation:r1'),
  (1, 1, 1, 'SALE', -1, 0, 99, 0, 9, NULL, 'order:o1'),
  (1, 1, 1, 'RETURN', 1, 0, 100, 0, 10, $ext$, 'order:o1'),
  (1, 1, 1, 'RETURN', 0, 0, 100, 0, 11, 'damaged', 'order:o1');
""".replace("$ext$", f"'{_EXTERNAL}'")


def test_0005_backfills_stock_movement_actor(server_url: str) -> None:
    """Ledger rows written before 0005 get an actor from their kind and reason (the rule
    in the migration's docstring); the column is then NOT NULL, and the downgrade drops it."""
    name = f"gqlinv_mig_{uuid.uuid4().hex[:8]}"
    _admin(server_url, f'CREATE DATABASE "{name}"')
    parts = urlsplit(server_url)
    url = urlunsplit((parts.scheme, parts.netloc, "/" + name, parts.query, ""))
    try:
        upgrade_database(url, "0004")
        _admin(url, _LEDGER_AT_0004)
        upgrade_database(url, "0005")
        actors = _fetch(url, "SELECT kind, actor FROM stock_movements ORDER BY id")
        assert actors == [
            ("RECEIPT", "import"),
            ("COUNT", "import"),
            ("RECEIPT", "admin:unknown"),
            ("COUNT", "admin:unknown"),
            ("ADJUSTMENT", "admin:unknown"),
            ("RESERVATION", "storefront"),
            ("RELEASE", "storefront"),
            ("EXPIRY", "system"),
            ("SALE", "stripe"),
            ("RETURN", "stripe"),
            ("RETURN", "admin:unknown"),
        ]
        nullable = _fetch(
            url,
            "SELECT is_nullable FROM information_schema.columns "
            "WHERE table_name = 'stock_movements' AND column_name = 'actor'",
        )
        assert nullable == [("NO",)]
        with pytest.raises(asyncpg.CheckViolationError):
            _admin(url, "UPDATE stock_movements SET actor = 'somebody' WHERE id = 1")
        downgrade_database(url, "0004")
        columns = _fetch(
            url,
            "SELECT column_name FROM information_schema.columns "
            "WHERE table_name = 'stock_movements' AND column_name = 'actor'",
        )
        assert columns == []
        upgrade_database(url)
        assert _fetch(url, "SELECT DISTINCT actor FROM stock_movements WHERE kind = 'EXPIRY'") == [
            ("system",)
        ]
    finally:
        _admin(server_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_migrations_build_exactly_the_models(server_url: str) -> None:
    """Alembic's autogenerate comparison finds nothing to add or drop: the migrations and
    `gql_inventory.models` describe the same tables, columns, indexes and types."""
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext
    from sqlalchemy.ext.asyncio import create_async_engine

    from gql_inventory.models import Base

    def compare(conn: Any) -> list[Any]:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        return list(compare_metadata(context, Base.metadata))

    async def differences(url: str) -> list[Any]:
        engine = create_async_engine(url.replace("postgresql://", "postgresql+asyncpg://", 1))
        try:
            async with engine.connect() as conn:
                return await conn.run_sync(compare)
        finally:
            await engine.dispose()

    name = f"gqlinv_cmp_{uuid.uuid4().hex[:8]}"
    _admin(server_url, f'CREATE DATABASE "{name}"')
    parts = urlsplit(server_url)
    url = urlunsplit((parts.scheme, parts.netloc, "/" + name, parts.query, ""))
    try:
        upgrade_database(url)
        diff = asyncio.run(differences(url))
        diff = [d for d in diff if not (isinstance(d, tuple) and "catalog_version" in str(d))]
        assert diff == []
    finally:
        _admin(server_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
