"""The typed GraphQL context, built once per HTTP request or websocket connection."""

from __future__ import annotations

import asyncio
import hmac
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING, Any

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from starlette.requests import Request
from starlette.websockets import WebSocket

from gql_inventory.domain.idempotency import STOREFRONT
from gql_inventory.readmodel.loaders import Loaders
from gql_inventory.response_cache.trace import trace_of
from gql_inventory.settings import Settings

if TYPE_CHECKING:
    from gql_inventory.services import Services
    from gql_inventory.websocket.fanout import Run


def bearer_token(value: str | None) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` value, or None."""
    if not value:
        return None
    scheme, _, token = value.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


def admin_identities(admin_tokens: list[str]) -> list[tuple[str, str]]:
    """``[(name, token)]`` from `ADMIN_TOKENS` entries.

    An entry ``name=token`` names its admin; a bare ``token`` (the n-th entry,
    counted from 1) is ``token-<n>``, so the secret itself never becomes a name.
    """
    identities = []
    for n, entry in enumerate(admin_tokens, start=1):
        name, sep, token = entry.partition("=")
        if sep and name.strip() and token.strip():
            identities.append((name.strip(), token.strip()))
        else:
            identities.append((f"token-{n}", entry))
    return identities


def admin_name(token: str | None, admin_tokens: list[str]) -> str | None:
    """The name of the admin whose token is `token`, or None (constant-time comparisons)."""
    if not token:
        return None
    found = None
    for name, candidate in admin_identities(admin_tokens):
        if hmac.compare_digest(token.encode(), candidate.encode()) and found is None:
            found = name
    return found


@dataclass
class Context:
    """What every resolver gets as `info.context`.

    `connection_params` is the websocket `connection_init` payload (strawberry
    sets it); `fanout` is the subscription run (`gql_inventory.websocket.fanout`) whose
    own context this is (None: a request, or a connection's context). Admin rights come
    from the HTTP `Authorization` header or from its `authorization` key. Building one
    costs next to nothing: the DataLoaders are made on first use (`readmodel.loaders`),
    so a request that needs none never builds them.
    """

    request: Request | WebSocket
    services: Services
    connection_params: dict[str, Any] | None = None
    response: Any = None
    fanout: Run | None = None
    #: The websocket connection's replay slots (`Settings.replay_per_connection`).
    replay_slots: asyncio.Semaphore | None = None

    @cached_property
    def loaders(self) -> Loaders:
        """This request's (or websocket connection's) DataLoaders, made on first use;
        SQL reads are reported to the response cache's trace of the request, if any."""
        return Loaders.of(self.services, trace_of(self.request.scope))

    @property
    def settings(self) -> Settings:
        """The service settings."""
        return self.services.settings

    @property
    def sessions(self) -> async_sessionmaker[AsyncSession]:
        """Session factory; open one transaction per mutation with `.begin()`."""
        return self.services.sessions

    @property
    def engine(self) -> AsyncEngine:
        """The database engine."""
        return self.services.engine

    @property
    def is_admin(self) -> bool:
        """True when the caller presented one of `ADMIN_TOKENS`."""
        return self.admin_name is not None

    @property
    def actor(self) -> str:
        """Who is calling: ``admin:<name>`` with an admin token, else ``storefront``."""
        name = self.admin_name
        return STOREFRONT if name is None else f"admin:{name}"

    @property
    def admin_name(self) -> str | None:
        """The calling admin's name (`admin_identities`), or None for anonymous callers."""
        token = bearer_token(self.request.headers.get("authorization"))
        if token is None and self.connection_params:
            raw = self.connection_params.get("authorization") or self.connection_params.get(
                "Authorization"
            )
            if isinstance(raw, str):
                # websocket clients send "Bearer <token>" or, often, the bare token
                token = bearer_token(raw) or (raw.strip() if " " not in raw.strip() else None)
        return admin_name(token, self.settings.admin_tokens)
