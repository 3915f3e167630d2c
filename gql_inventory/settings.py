"""Service settings, read from the environment (and an optional `.env`) by pydantic-settings."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from gql_inventory.outbound.config import OutboundSettings

#: The webhook secret of offline development (no Stripe key). It is public: with a
#: Stripe key set it is refused (`Settings.check_stripe`).
OFFLINE_WEBHOOK_SECRET = "whsec_offline_development_secret"


class ConfigurationError(Exception):
    """Settings the service must not run with; `setting` is the environment name."""

    def __init__(self, setting: str, problem: str) -> None:
        super().__init__(f"{setting} {problem}")
        self.setting = setting
        self.problem = problem


class Settings(OutboundSettings, BaseSettings):
    """All knobs of the service. Environment names are the field names upper-cased.

    The outbound-event and self-care knobs are declared in `outbound.config`.

    Durations are in seconds; money never appears here.
    """

    # hide_input_in_errors: a refused DATABASE_URL or SMTP_URL may carry a password
    model_config = SettingsConfigDict(env_file=".env", extra="ignore", hide_input_in_errors=True)

    database_url: str | None = Field(
        default=None,
        repr=False,  # may carry a password
        description="SQLAlchemy or libpq URL of PostgreSQL 14+. Unset: an embedded PostgreSQL "
        "is started in `data_dir`.",
    )
    data_dir: Path = Field(
        default=Path("var/pgdata"), description="Embedded PostgreSQL's data folder."
    )
    broadcast_url: str | None = Field(
        default=None,
        repr=False,  # may carry a password
        description="broadcaster backend: postgres://, redis:// or memory://. Unset: "
        "LISTEN/NOTIFY on the service's own database.",
    )
    subscriber_buffer_size: int = Field(
        default=256,
        ge=1,
        description="Events buffered per live subscriber; a subscriber that falls further "
        "behind is closed (it resumes with its cursor).",
    )
    max_subscriptions_per_connection: int = Field(default=20, ge=1)
    max_websocket_connections: int = Field(
        default=10_000, ge=1, description="Open GraphQL websockets per process."
    )
    websocket_compression: bool = Field(
        default=False,
        description="Offer per-message deflate on websockets (`serve`): ~37 KiB more per "
        "connection and a compression per socket per event.",
    )
    replay_max_events: int = Field(
        default=10_000,
        ge=0,
        description="How far behind the ledger's head a storefront `stockChanged(after:)` "
        "cursor may be (events); older or forged ones get CURSOR_EXPIRED "
        "(docs/adr/0014-explicit-fan-out.md).",
    )
    replay_max_events_admin: int = Field(
        default=100_000,
        ge=0,
        description="The same window for admin subscriptions (events).",
    )
    replay_concurrency: int = Field(
        default=2, ge=1, description="Cursor replays running at once per process; more wait."
    )
    replay_per_connection: int = Field(
        default=2, ge=1, description="Cursor replays running at once per websocket; more wait."
    )
    replay_queue_seconds: float = Field(
        default=10.0,
        gt=0,
        description="Longest wait of a replay for its slots; then REPLAY_BUSY (retry).",
    )
    replay_chunk_events: int = Field(
        default=10, ge=1, description="Events a replay sends between yields to the event loop."
    )
    live_poll_seconds: float = Field(
        default=1.0,
        gt=0,
        description="Backstop poll of the relay and the hubs (changes made by the CLI, "
        "lost broadcast messages).",
    )
    broadcast_heartbeat_seconds: float = Field(
        default=2.0,
        gt=0,
        description="Quiet time after which a hub pings the broadcast backend; three "
        "without an echo mean the connection is lost and is reopened.",
    )
    live_events: bool = Field(
        default=True, description="Run the relay and the live-events hub in the app process."
    )
    stock_projection: bool = Field(
        default=True,
        description="With live events on, serve stock reads from the in-process projection "
        "and catalog snapshot (docs/adr/0009-stock-projection.md); off: every read queries "
        "the database.",
    )
    stripe_api_key: SecretStr | None = Field(
        default=None,
        description="Stripe secret key (sk_...). Set: payments go to Stripe, and `serve` "
        "refuses to start without a real `stripe_webhook_secret`.",
    )
    stripe_webhook_secret: SecretStr | None = Field(
        default=None,
        description="The webhook endpoint's signing secret (whsec_...). Unset: the offline "
        "development secret, accepted only while `stripe_api_key` is unset.",
    )
    stripe_api_base: str | None = Field(
        default=None, description="Override of Stripe's API address (tests, stripe-mock)."
    )
    stripe_max_network_retries: int = Field(
        default=2, ge=0, description="Retries of a failed Stripe call (same idempotency key)."
    )
    payment_hold_seconds: int = Field(
        default=1800,
        ge=1,
        description="A payment in progress (processing, 3-D Secure) holds its reservation "
        "this long from the event.",
    )
    payment_hold_max_seconds: int = Field(
        default=7200,
        ge=1,
        description="Cap of those extensions, counted from checkout.",
    )
    reservation_ttl_seconds: int = Field(default=900, ge=1)
    reservation_max_ttl_seconds: int = Field(default=7200, ge=1)
    expiry_interval_seconds: float = Field(
        default=30.0,
        ge=0,
        description="How often the in-app sweeper expires reservations; 0 turns it off.",
    )
    # ---- payment lifecycle (issue 8: no payment left behind)
    payment_window_seconds: int = Field(
        default=900,
        ge=1,
        description="Checkout holds the reservation at least this long from checkout, so "
        "the buyer always has the whole window to pay.",
    )
    pending_payment_check_interval_seconds: float = Field(
        default=300.0,
        ge=0,
        description="How often the app asks the payment provider about orders still "
        "pending (a missed or lost webhook); 0 turns it off.",
    )
    pending_payment_min_age_seconds: int = Field(
        default=600,
        ge=0,
        description="Orders pending at least this long (from checkout) are checked.",
    )
    reserve_batch_max: int = Field(
        default=256,
        ge=0,
        description="Most reserveStock calls one group commit applies in one transaction "
        "(ADR 0008, ADR 0013); 1 (or 0) gives each call its own transaction.",
    )
    max_lines_per_reservation: int = Field(default=100, ge=1)
    max_quantity_per_line: int = Field(default=10_000, ge=1)
    admin_tokens: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        repr=False,  # secrets
        description="Comma-separated bearer tokens that grant admin operations; an entry "
        "`name=token` names its admin (ledger actor `admin:<name>`, idempotency keys scoped "
        "per admin), a bare token is `token-<n>` by its position.",
    )
    graphiql: bool | None = Field(
        default=None, description="GraphiQL at GET /graphql; unset: on except in production."
    )
    query_depth_limit: int = 12
    max_aliases: int = 30
    max_tokens: int = 5000
    db_pool_size: int = 10
    db_max_overflow: int = 20
    db_statement_cache: bool = Field(
        default=True,
        description="Cache prepared statements per connection (asyncpg, SQLAlchemy). Set "
        "false behind PgBouncer in transaction mode without prepared-statement support "
        "(before 1.21, or `max_prepared_statements = 0`): every connection the service "
        "opens then uses unnamed or uniquely named statements (docs/scaling.md).",
    )
    log_level: str = "INFO"
    log_json: bool = False
    access_log: bool = Field(
        default=False,
        description="One log line per HTTP request (uvicorn's access log); off by default, "
        "as it costs about a tenth of the server CPU of a small request.",
    )
    # Websocket edge: closing connections on shutdown.
    websocket_close_grace_seconds: float = Field(
        default=5.0,
        ge=0,
        description="On SIGTERM/SIGINT, open websockets are closed with 1001 (going away) "
        "and get this long to finish before the server's own shutdown goes on.",
    )
    shutdown_timeout_seconds: int = Field(
        default=10,
        ge=1,
        description="`gql-inventory serve`: uvicorn's timeout_graceful_shutdown, after "
        "which requests and connections still running are cancelled.",
    )

    # The HTTP edge (issue 8): request limits, outages, production defaults.
    environment: Literal["development", "production"] = Field(
        default="development",
        description="`production` turns GraphiQL, introspection and field suggestions off "
        "unless `GRAPHIQL`, `INTROSPECTION` or `FIELD_SUGGESTIONS` turn them on by name.",
    )
    introspection: bool | None = Field(
        default=None, description="Schema introspection; unset: on except in production."
    )
    field_suggestions: bool | None = Field(
        default=None,
        description="'Did you mean ...?' in validation errors; unset: on except in production.",
    )
    max_selections: int = Field(
        default=2000,
        ge=1,
        description="Selections (fields, fragment spreads, inline fragments) an operation "
        "may have once its fragments are expanded.",
    )
    max_merge_pairs: int = Field(
        default=5000,
        ge=1,
        description="Pairs of same-named fields (fragments expanded) that validation may "
        "have to compare; graphql-core's field-merge check is quadratic in repeated fields.",
    )
    max_request_bytes: int = Field(
        default=1024 * 1024,
        ge=1,
        description="Largest body accepted by POST /graphql and /webhooks/stripe (bytes); "
        "a larger one gets 413 before it is read further.",
    )
    document_cache_bytes: int = Field(
        default=32 * 1024 * 1024,
        ge=0,
        description="Estimated memory (bytes) of parsed and validated documents kept for "
        "reuse; 0 turns the cache off.",
    )
    response_cache_entries: int = Field(
        default=4096,
        ge=0,
        description="Most responses to stock and catalog reads kept for reuse while the "
        "read model is unchanged (docs/adr/0012-read-response-cache.md); 0 turns the "
        "response cache off.",
    )
    response_cache_bytes: int = Field(
        default=16 * 1024 * 1024,
        ge=0,
        description="Memory (bytes) of those responses and their keys; one response may "
        "take a sixteenth of it at most; 0 turns the response cache off.",
    )
    reads_per_turn: int = Field(
        default=5,
        ge=0,
        le=10_000,
        description="While a write (any /graphql request that is not a cached stock or "
        "catalog read) is in flight, at most this many reads start per event-loop "
        "iteration, so a read flood cannot starve reservations "
        "(docs/adr/0021-reads-take-turns.md); 0 turns it off. Needs the response cache.",
    )
    # The connection edge (issue 15): what the server closes, when (docs/edge.md, ADR 0015).
    keep_alive_seconds: int = Field(
        default=75,
        ge=1,
        description="An idle kept-alive HTTP connection is closed after this long; longer "
        "than clients' own (httpx 5 s) and than a load balancer's idle timeout (set it "
        "shorter than this), so no client reuses a connection as the server closes it.",
    )
    header_timeout_seconds: float = Field(
        default=10.0,
        ge=0,
        description="A request's head (request line and headers) must arrive within this "
        "long of the connection opening or of its first byte; else the connection is "
        "closed. 0 turns it off.",
    )
    body_timeout_seconds: float = Field(
        default=30.0,
        ge=0,
        description="A request's body must arrive within this long of its head; else 408 "
        "and the connection is closed. 0 turns it off.",
    )
    max_connections: int | None = Field(
        default=None,
        ge=0,
        description="Open connections per process (HTTP and websocket); at the cap the "
        "connection idle or waiting for a request head the longest is closed for a new "
        "one. Unset: the open-files limit (ulimit -n) minus 128; 0: no cap.",
    )
    max_connections_per_client: int = Field(
        default=256,
        ge=0,
        description="Open HTTP connections per client address; more are closed at once. "
        "Behind a load balancer or proxy every connection has its address: raise it above "
        "the proxy's connection count, or 0 turns it off.",
    )
    outage_retry_after_seconds: int = Field(
        default=5,
        ge=1,
        description="`Retry-After` of the 503 answered while the database is unreachable.",
    )

    def feature_on(self, name: Literal["graphiql", "introspection", "field_suggestions"]) -> bool:
        """Whether a development aid is on: its own setting if given, else not in production."""
        value: bool | None = getattr(self, name)
        return value if value is not None else self.environment != "production"

    def private_urls_allowed(self) -> bool:
        """Whether webhook URLs may be http or private (`webhook_allow_private_urls`, else
        only in development)."""
        if self.webhook_allow_private_urls is not None:
            return self.webhook_allow_private_urls
        return self.environment == "development"

    def webhook_secret(self) -> str:
        """The secret Stripe signatures are checked with.

        `stripe_webhook_secret` when set; without a Stripe key and without it, the
        offline development secret (`OFFLINE_WEBHOOK_SECRET`). Raises
        `ConfigurationError` when a Stripe key is set and the secret is unset or is the
        offline one (it is in the repository, so anyone could sign "paid" events).
        """
        self.check_stripe()
        if self.stripe_webhook_secret is None:
            return OFFLINE_WEBHOOK_SECRET
        return self.stripe_webhook_secret.get_secret_value()

    def check_stripe(self) -> None:
        """Raise `ConfigurationError` unless the Stripe settings are safe to serve with."""
        if self.stripe_api_key is None:
            return
        secret = self.stripe_webhook_secret
        if secret is None:
            raise ConfigurationError(
                "STRIPE_WEBHOOK_SECRET",
                "is required when STRIPE_API_KEY is set: give the signing secret (whsec_...) "
                "of your webhook endpoint from the Stripe dashboard or `stripe listen`",
            )
        if secret.get_secret_value() == OFFLINE_WEBHOOK_SECRET:
            raise ConfigurationError(
                "STRIPE_WEBHOOK_SECRET",
                "is the offline development secret, which is public: with STRIPE_API_KEY "
                "set, give your webhook endpoint's real signing secret",
            )

    @field_validator("stripe_api_key", "stripe_webhook_secret", mode="before")
    @classmethod
    def _blank_is_unset(cls, value: object) -> object:
        if isinstance(value, SecretStr):
            value = value.get_secret_value()
        if isinstance(value, str):
            return value.strip() or None
        return value

    @field_validator("admin_tokens", mode="before")
    @classmethod
    def _split_tokens(cls, value: object) -> object:
        if isinstance(value, str):
            return [t.strip() for t in value.split(",") if t.strip()]
        return value


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read once."""
    return Settings()
