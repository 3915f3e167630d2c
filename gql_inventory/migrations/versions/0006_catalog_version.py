"""catalog version: a value that changes with every committed catalog write

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02 00:00:00.000000

``catalog_version`` holds one row whose ``version`` is set, by statement-level triggers
on ``products``, ``variants`` and ``locations`` (INSERT, UPDATE, DELETE, TRUNCATE), to the
writing transaction's id. It is an ordinary row, so a reader sees the new value exactly
when the catalog write commits: an app process compares it with the value its
in-memory catalog snapshot was loaded at, and reloads when it differs
(`gql_inventory.readmodel.catalog`, docs/adr/0009-stock-projection.md).

The upsert takes that row's lock until the writer commits, so catalog writers
(imports, setLowStockThreshold) serialise among themselves. They write the catalog
before any stock level, so the lock never waits behind a level lock (no deadlock).
``stock_levels`` has no trigger: stock changes arrive as live events.
"""

from collections.abc import Sequence

from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0006"
down_revision: str | Sequence[str] | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_TABLES = ("products", "variants", "locations")


def upgrade() -> None:
    op.execute(
        """
        CREATE TABLE catalog_version (
            id smallint PRIMARY KEY DEFAULT 1 CONSTRAINT ck_catalog_version_single CHECK (id = 1),
            version bigint NOT NULL
        )
        """
    )
    op.execute("INSERT INTO catalog_version (id, version) VALUES (1, 0)")
    op.execute(
        """
        CREATE FUNCTION bump_catalog_version() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            INSERT INTO catalog_version (id, version)
                 VALUES (1, pg_current_xact_id()::text::bigint)
            ON CONFLICT (id) DO UPDATE SET version = EXCLUDED.version;
            RETURN NULL;
        END
        $$
        """
    )
    for table in _TABLES:
        op.execute(
            f"CREATE TRIGGER {table}_catalog_version "
            f"AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON {table} "
            "FOR EACH STATEMENT EXECUTE FUNCTION bump_catalog_version()"
        )


def downgrade() -> None:
    for table in _TABLES:
        op.execute(f"DROP TRIGGER IF EXISTS {table}_catalog_version ON {table}")
    op.execute("DROP FUNCTION IF EXISTS bump_catalog_version()")
    op.execute("DROP TABLE IF EXISTS catalog_version")
