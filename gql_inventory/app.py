"""The Starlette application: /graphql (queries, mutations, graphql-transport-ws), health,
and the Stripe webhook."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager, nullcontext
from datetime import timedelta
from typing import Any

import orjson
from cross_web import AsyncHTTPRequestAdapter, HTTPException
from sqlalchemy import text
from starlette.applications import Starlette
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route, WebSocketRoute, request_response
from starlette.types import ASGIApp, Receive, Scope, Send
from starlette.websockets import WebSocket
from strawberry.asgi import GraphQL
from strawberry.http import GraphQLHTTPResponse, GraphQLRequestData
from strawberry.subscriptions import GRAPHQL_TRANSPORT_WS_PROTOCOL

from gql_inventory.context import Context
from gql_inventory.edge.bodylimit import BodyLimit, error_body
from gql_inventory.edge.pages import graphiql_response, web_routes
from gql_inventory.jobs.payment_check import payment_checker
from gql_inventory.jobs.self_care import self_care, self_care_on
from gql_inventory.jobs.sweeper import sweeper
from gql_inventory.kit.gcpolicy import serving_gc
from gql_inventory.kit.logs import configure_logging, get_logger
from gql_inventory.kit.metrics import metrics_endpoint
from gql_inventory.outbound.worker import delivery_worker
from gql_inventory.response_cache.asgi import ResponseCache
from gql_inventory.schema import build_schema
from gql_inventory.services import Services
from gql_inventory.settings import Settings, get_settings
from gql_inventory.webhooks.stripe import stripe_webhook
from gql_inventory.websocket.fanout import SharedSubscriptions
from gql_inventory.websocket.handler import InventoryTransportWSHandler
from gql_inventory.websocket.limits import OpenWebSockets, WebSocketLimit, going_away_on_signal

log = get_logger(__name__)


_HTTP_ERROR_CODES = {400: "BAD_REQUEST", 404: "NOT_FOUND", 405: "METHOD_NOT_ALLOWED"}


class InventoryGraphQL(GraphQL[Context, None]):
    """Strawberry's ASGI view with our typed context (fresh DataLoaders per request, made
    when first used), and response bodies encoded by orjson (`encode_json`).

    Requests strawberry refuses (bad JSON, a body that is not an object, invalid
    UTF-8, JSON nested too deep...) get their status with a GraphQL error body,
    ``{"errors": [{"message": ..., "extensions": {"code": "BAD_REQUEST"}}]}``,
    instead of plain text or a 500. Websockets run our graphql-transport-ws handler
    and are kept in `sockets` while open (a shutdown closes them with 1001).
    """

    graphql_transport_ws_handler_class = InventoryTransportWSHandler

    def __init__(self, services: Services, **kwargs: Any) -> None:
        super().__init__(build_schema(services.settings), **kwargs)
        self.services = services
        self.sockets = OpenWebSockets()
        #: The process's shared subscriptions, handed to each connection's handler.
        self.fanout = SharedSubscriptions(
            services.settings.subscriber_buffer_size, self.encode_json_string
        )

    async def get_context(
        self, request: Request | WebSocket, response: Response | WebSocket
    ) -> Context:
        slots = None
        if isinstance(request, WebSocket):
            slots = asyncio.Semaphore(self.services.settings.replay_per_connection)
        return Context(
            request=request, services=self.services, response=response, replay_slots=slots
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket":
            websocket = WebSocket(scope, receive=receive, send=send)
            with self.sockets.track(websocket):
                await self.run(websocket)
            return
        if scope["type"] != "http":
            await super().__call__(scope, receive, send)
            return
        try:
            response = await self.run(Request(scope, receive=receive))
        except ClientDisconnect:
            return  # the body never came whole: the edge logged why (edge/connections.py)
        except HTTPException as exc:
            code = _HTTP_ERROR_CODES.get(exc.status_code, "BAD_REQUEST")
            response = Response(
                error_body(exc.reason, code), exc.status_code, media_type="application/json"
            )
        await response(scope, receive, send)

    async def render_graphql_ide(self, request: Request) -> Response:
        """GraphiQL from our vendored assets (`gql_inventory.edge.pages`), never from a CDN."""
        return graphiql_response()

    def encode_json(self, data: object) -> str:
        """JSON text of a websocket message or a streamed part (text frames), by orjson."""
        return encode_json(data).decode()

    def create_response(
        self, response_data: GraphQLHTTPResponse | list[GraphQLHTTPResponse], sub_response: Response
    ) -> Response:
        """strawberry's response, with the body encoded straight to bytes (`encode_json`)."""
        response = Response(encode_json(response_data), media_type="application/json")
        response.headers.raw.extend(sub_response.headers.raw)
        if sub_response.background:
            response.background = sub_response.background
        if sub_response.status_code:
            response.status_code = sub_response.status_code
        return response

    async def parse_http_body(
        self, request: AsyncHTTPRequestAdapter
    ) -> GraphQLRequestData | list[GraphQLRequestData]:
        """The request's operation. The common one, a POST of ``application/json`` that
        asks for no stream, with a string `query` and object-or-null `variables` and
        `extensions`, is read here without strawberry's content-type parser (the stdlib
        email parser, ~8 µs a request); anything else, by strawberry (`parse_json` 400s
        either way)."""
        plain = await self._plain_operation(request)
        if plain is not None:
            return plain
        return await super().parse_http_body(request)  # the body is cached: read once

    async def _plain_operation(self, request: AsyncHTTPRequestAdapter) -> GraphQLRequestData | None:
        content_type = request.content_type
        if request.method != "POST" or content_type is None or not _plain_json(content_type):
            return None
        accept = request.headers.get("accept")
        if accept is not None and self._get_stream_transport_from_headers({"accept": accept}):
            return None
        data = self.parse_json(await request.get_body())
        if not isinstance(data, dict):
            return None
        query, variables, extensions = (
            data.get("query"),
            data.get("variables"),
            data.get("extensions"),
        )
        if not (
            isinstance(query, str)
            and isinstance(variables, dict | None)
            and isinstance(extensions, dict | None)
        ):
            return None
        return GraphQLRequestData(
            query=query,
            variables=variables,
            operation_name=data.get("operationName"),
            extensions=extensions,
            protocol="http",
        )

    def parse_json(self, data: str | bytes) -> Any:
        """The decoded JSON object (or batch list); 400 for anything else."""
        try:
            value = self.decode_json(data)
        except (ValueError, RecursionError) as exc:  # JSON, UnicodeDecodeError, nesting
            raise HTTPException(400, "Unable to parse request body as JSON") from exc
        if not isinstance(value, dict | list):
            raise HTTPException(400, "Expected a JSON object")
        return value


def _plain_json(content_type: str) -> bool:
    """Is this Content-Type ``application/json`` (parameters allowed), exactly as sent?"""
    return content_type == "application/json" or content_type.startswith("application/json;")


def encode_json(data: object) -> bytes:
    """`data` as compact UTF-8 JSON (orjson): decodes to what strawberry's default
    (`json.dumps`) gave. What orjson refuses, an int past 64 bits (a custom scalar's) or
    a string with a lone surrogate, goes through `json.dumps` (ASCII, ``\\udXXX``) instead.
    """
    try:
        return orjson.dumps(data)
    except orjson.JSONEncodeError:
        return json.dumps(data, separators=(",", ":")).encode("ascii")


class InventoryApp(Starlette):
    """Starlette, with ``POST /graphql`` handed straight to `graphql_post` (the body limit
    around the GraphQL view): the hot path skips Starlette's error and exception
    middleware and its router (~3% of a reserveStock's CPU). Everything else, and a
    request under a ``root_path``, goes through Starlette as before. An exception that
    escapes `graphql_post` reaches the server, which answers 500 and logs it, as
    Starlette's error middleware would.
    """

    def __init__(self, *, graphql_post: ASGIApp, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.graphql_post = graphql_post

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] == "http"
            and scope["path"] == "/graphql"
            and scope["method"] == "POST"
            and not scope.get("root_path")
        ):
            scope["app"] = self
            await self.graphql_post(scope, receive, send)
            return
        await super().__call__(scope, receive, send)


def create_app(settings: Settings | None = None, *, database_url: str | None = None) -> Starlette:
    """Build the ASGI app. The database is connected lazily; `lifespan` closes the pool.

    Routes: ``/graphql`` (GET: GraphiQL when enabled; POST; websocket with the
    graphql-transport-ws subprotocol only), ``/healthz`` (process alive),
    ``/readyz`` (database reachable: 200, else 503), ``/metrics`` (Prometheus),
    ``POST /webhooks/stripe``, ``GET /admin`` (the dashboard) and ``/static`` (its and
    GraphiQL's vendored assets). The lifespan runs the live-events hub and relay, the
    expiry sweeper and the pending-payment check (each when its interval is not 0), the
    self-care jobs (`jobs.self_care`: prune, invariant check, low-stock report),
    the outbox delivery worker (unless `OUTBOX_WORKER` is off), and
    tunes the garbage collector for serving (`kit.gcpolicy.serving_gc`).
    """
    settings = settings or get_settings()
    configure_logging(settings.log_level, json=settings.log_json, access_log=settings.access_log)
    services = Services.create(settings, database_url)
    graphql = InventoryGraphQL(
        services,
        graphql_ide="graphiql" if settings.feature_on("graphiql") else None,
        subscription_protocols=[GRAPHQL_TRANSPORT_WS_PROTOCOL],
        max_subscriptions_per_connection=settings.max_subscriptions_per_connection,
    )

    async def healthz(_: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def readyz(_: Request) -> Response:
        try:
            async with services.engine.connect() as conn:
                await conn.execute(text("SELECT 1"))
        except Exception as exc:  # any failure means "not ready"
            log.warning("readyz.database_unreachable", error=str(exc))
            return JSONResponse({"status": "unavailable", "database": "unreachable"}, 503)
        return JSONResponse({"status": "ok", "database": "ok"})

    @asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        log.info(
            "app.started",
            environment=settings.environment,
            graphiql=settings.feature_on("graphiql"),
            introspection=settings.feature_on("introspection"),
            field_suggestions=settings.feature_on("field_suggestions"),
            max_request_bytes=settings.max_request_bytes,
        )
        try:
            async with (
                going_away_on_signal(graphql.sockets, settings.websocket_close_grace_seconds),
                services.live.run() if services.live is not None else nullcontext(),
                AsyncExitStack() as background,
            ):
                if settings.expiry_interval_seconds > 0:
                    await background.enter_async_context(
                        sweeper(services, settings.expiry_interval_seconds)
                    )
                if settings.pending_payment_check_interval_seconds > 0:
                    await background.enter_async_context(
                        payment_checker(
                            services,
                            settings.pending_payment_check_interval_seconds,
                            timedelta(seconds=settings.pending_payment_min_age_seconds),
                        )
                    )
                if self_care_on(settings):
                    await background.enter_async_context(self_care(services))
                if settings.outbox_worker:
                    await background.enter_async_context(delivery_worker(services))
                background.enter_context(serving_gc())  # last: freezes what start-up made
                yield
        finally:
            await services.close()
            log.info("app.stopped")

    limit = settings.max_request_bytes
    cache = ResponseCache.build(graphql, services)  # None when off (ADR 0012)
    graphql_http = BodyLimit(cache or graphql, limit)
    app = InventoryApp(
        graphql_post=graphql_http,
        routes=[
            Route("/graphql", graphql_http, methods=["GET", "POST"]),
            WebSocketRoute("/graphql", WebSocketLimit(graphql, settings.max_websocket_connections)),
            Route("/healthz", healthz),
            Route("/readyz", readyz),
            Route("/metrics", metrics_endpoint),
            Route(
                "/webhooks/stripe",
                BodyLimit(request_response(stripe_webhook(services)), limit),
                methods=["POST"],
            ),
            *web_routes(),
        ],
        lifespan=lifespan,
    )
    app.state.services = services
    app.state.graphql = graphql
    app.state.response_cache = cache
    return app
