"""The settings of outbound events (webhooks, e-mail) and the self-care jobs, mixed into
`gql_inventory.settings.Settings` (same environment names: the field names upper-cased)."""

from __future__ import annotations

from email.utils import parseaddr
from typing import Annotated

from pydantic import BaseModel, Field, SecretStr, field_validator
from pydantic_settings import NoDecode

from gql_inventory.outbound.smtp import parse_smtp_url

#: Standard Webhooks' suggested schedule, in seconds after the previous attempt: 5 s,
#: 5 min, 30 min, 2 h, 5 h, 10 h, 10 h (https://www.standardwebhooks.com, "Retries").
DEFAULT_RETRY_SCHEDULE = [5, 300, 1800, 7200, 18000, 36000, 36000]
_MAX_DELAY_SECONDS = 7 * 86_400
#: Stripe retries an undelivered event for up to 3 days (https://docs.stripe.com/webhooks,
#: "Retry behavior"): a processed event id is kept at least that long, and a day more.
STRIPE_RETRY_DAYS = 3


class OutboundSettings(BaseModel):
    """Webhook delivery, e-mail and self-care knobs. Durations in seconds unless named."""

    webhook_retry_schedule: Annotated[list[int], NoDecode] = Field(
        default_factory=lambda: list(DEFAULT_RETRY_SCHEDULE),
        description="Seconds to wait before each retry of a webhook or e-mail that failed, "
        "comma-separated; after the last one the delivery is FAILED. At most 20 retries, "
        "each 1 s to 7 days.",
    )
    webhook_allow_private_urls: bool | None = Field(
        default=None,
        description="Allow endpoint URLs over http and resolving to loopback, private, "
        "link-local or metadata addresses; unset: allowed only in development.",
    )
    webhook_timeout_seconds: float = Field(
        default=10.0, gt=0, le=60, description="Timeout of one webhook request."
    )
    webhook_endpoint_concurrency: int = Field(
        default=4,
        ge=1,
        le=64,
        description="Requests in flight to one endpoint per process, so a slow receiver "
        "cannot take every delivery slot.",
    )
    outbox_worker: bool = Field(
        default=True,
        description="Run the delivery worker in the app: it sends due outbox messages "
        "(webhooks; e-mails once a sender is configured). Off: `gql-inventory deliver` "
        "or another process delivers.",
    )
    outbox_poll_seconds: float = Field(
        default=1.0,
        gt=0,
        le=60,
        description="How often the delivery worker looks for due messages when it has "
        "nothing in hand.",
    )
    outbox_max_in_flight: int = Field(
        default=64,
        ge=1,
        le=1024,
        description="Messages one process sends at once, all endpoints together.",
    )
    webhook_secrets_key: SecretStr | None = Field(
        default=None,
        description="Fernet key (32 url-safe base64 bytes) encrypting endpoint signing "
        "secrets at rest; required in production. Unset in development: a key file in "
        "`var/` is made on first use.",
    )
    webhook_secret_overlap_seconds: int = Field(
        default=86_400,
        ge=0,
        description="After a rotation the previous endpoint secret still signs this long.",
    )
    smtp_url: SecretStr | None = Field(
        default=None,
        description="`smtp://user:password@host:port` (STARTTLS when offered) or "
        "`smtps://...` (TLS); unset: no e-mail is sent.",
    )
    smtp_timeout_seconds: float = Field(
        default=30.0, gt=0, le=300, description="Timeout of each step of one SMTP session."
    )
    mail_from: str = Field(
        default="gql-inventory <inventory@localhost>", description="The From of e-mails."
    )
    alert_emails: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Comma-separated addresses that get operator alerts (stock out, orders "
        "needing attention, failed deliveries, invariant drift, the daily low-stock report).",
    )
    idempotency_retention_days: int = Field(
        default=7, ge=1, le=3650, description="Days an idempotency record is kept."
    )
    stripe_event_retention_days: int = Field(
        default=30,
        ge=STRIPE_RETRY_DAYS + 1,
        le=3650,
        description="Days a processed Stripe event id is kept; at least 4 (Stripe retries "
        "for up to 3 days).",
    )
    delivery_retention_days: int = Field(
        default=30, ge=1, le=3650, description="Days a SUCCEEDED delivery is kept."
    )
    prune_interval_seconds: float = Field(
        default=3600,
        ge=0,
        description="How often the app prunes old idempotency records, Stripe event ids "
        "and succeeded deliveries (one process per interval); 0: never (use "
        "`gql-inventory prune`).",
    )
    invariant_check_interval_seconds: float = Field(
        default=3600,
        ge=0,
        description="How often the app checks every stock level against its ledger and "
        "reservations (one process per interval); 0: never.",
    )
    low_stock_report_hour: int = Field(
        default=7,
        ge=-1,
        le=23,
        description="Hour (UTC) from which the daily low-stock report is e-mailed to "
        "ALERT_EMAILS, once a day; -1: never.",
    )

    def mail_enabled(self) -> bool:
        """True when e-mail can be sent (`smtp_url` is set)."""
        return self.smtp_url is not None

    def operator_mail_enabled(self) -> bool:
        """True when operator alerts go out by e-mail (`smtp_url` and `alert_emails` set)."""
        return self.smtp_url is not None and bool(self.alert_emails)

    @field_validator("webhook_retry_schedule", mode="before")
    @classmethod
    def _split_schedule(cls, value: object) -> object:
        if isinstance(value, str):
            parts = [p.strip() for p in value.split(",") if p.strip()]
            try:
                value = [int(p) for p in parts]
            except ValueError:
                raise ValueError("give whole seconds, comma-separated, e.g. 5,300,1800") from None
        if isinstance(value, list):
            if not 1 <= len(value) <= 20:
                raise ValueError("give 1 to 20 retry delays")
            if any(not isinstance(v, int) or not 1 <= v <= _MAX_DELAY_SECONDS for v in value):
                raise ValueError("each retry delay is 1 s to 7 days")
        return value

    @field_validator("smtp_url")
    @classmethod
    def _check_smtp_url(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None:
            if not value.get_secret_value().strip():
                return None  # SMTP_URL= (empty): off
            parse_smtp_url(value.get_secret_value())  # ValueError says why
        return value

    @field_validator("mail_from")
    @classmethod
    def _check_mail_from(cls, value: str) -> str:
        if any(c in value for c in "\r\n") or "@" not in parseaddr(value)[1]:
            raise ValueError("give one address, e.g. `Shop <shop@example.com>`")
        return value

    @field_validator("alert_emails", mode="before")
    @classmethod
    def _split_addresses(cls, value: object) -> object:
        if isinstance(value, str):
            value = [a.strip() for a in value.split(",") if a.strip()]
        if isinstance(value, list):
            for address in value:
                if (
                    not isinstance(address, str)
                    or address.count("@") != 1
                    or any(c in address for c in " \r\n<>,;")
                ):
                    raise ValueError(f"not an e-mail address: {address!r}")
        return value
