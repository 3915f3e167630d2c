"""What the command groups share: the settings check, the database URL, one
transaction (or unit of work) per command, and the services of a CLI process."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, TypeVar

import typer
from sqlalchemy.ext.asyncio import AsyncSession

from gql_inventory.domain.uow import UnitOfWork
from gql_inventory.kit.db import create_engine, make_sessionmaker, resolve_database_url
from gql_inventory.settings import ConfigurationError, Settings, get_settings

if TYPE_CHECKING:
    from gql_inventory.services import Services

T = TypeVar("T")


def refuse_unsafe_settings() -> None:
    """Exit 2 with the reason (no traceback) when the settings must not be served with."""
    try:
        get_settings().check_stripe()
    except ConfigurationError as exc:
        typer.echo(f"configuration error: {exc}", err=True)
        raise typer.Exit(2) from None


def database_url() -> str:
    return resolve_database_url(get_settings())


def in_transaction(work: Callable[[AsyncSession], Awaitable[T]]) -> T:
    """Run `work` in one transaction on the configured database; commit if it returns."""

    async def main() -> T:
        engine = create_engine(
            database_url(),
            pool_size=2,
            max_overflow=0,
            statement_cache=get_settings().db_statement_cache,
        )
        try:
            async with make_sessionmaker(engine).begin() as session:
                return await work(session)
        finally:
            await engine.dispose()

    return asyncio.run(main())


def in_unit_of_work(work: Callable[[UnitOfWork], Awaitable[T]], *, actor: str) -> T:
    """Run a domain use case that writes, acting for `actor` (`UnitOfWork.actor`), through
    `uow.run_in_transaction` (one transaction, its outbox events written before the
    commit, ADR 0020) on the CLI's services. Movements are not published: a CLI process
    serves no subscriptions, and they read the ledger on (re)connect (the relay also
    picks committed movements from it)."""
    from gql_inventory.uow import run_in_transaction

    async def main() -> T:
        services = cli_services(get_settings())
        try:
            return await run_in_transaction(services, work, actor=actor)
        finally:
            await services.close()

    return asyncio.run(main())


def cli_services(settings: Settings) -> Services:
    """The services of a CLI process on the configured database: no live-events runtime
    (a CLI process serves no subscriptions, and never reaches the broadcast backend).
    Close them with `await services.close()`."""
    from gql_inventory.services import Services

    return Services.create(settings, database_url(), live_events=False)
