"""Long-lived objects of one process: settings, engine, sessions (and, later, pubsub, payments)."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from gql_inventory.db import create_engine, make_sessionmaker, resolve_database_url
from gql_inventory.settings import Settings


@dataclass
class Services:
    """Process-wide dependencies, created in the app's lifespan and shared by requests."""

    settings: Settings
    database_url: str
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]

    @classmethod
    def create(cls, settings: Settings, database_url: str | None = None) -> Services:
        """Connect (lazily) to `database_url`, or the URL the settings resolve to."""
        url = database_url or resolve_database_url(settings)
        engine = create_engine(
            url, pool_size=settings.db_pool_size, max_overflow=settings.db_max_overflow
        )
        return cls(
            settings=settings, database_url=url, engine=engine, sessions=make_sessionmaker(engine)
        )

    async def close(self) -> None:
        """Release the connection pool."""
        await self.engine.dispose()
