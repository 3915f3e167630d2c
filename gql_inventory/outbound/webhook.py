"""The webhook sender: one attempt of one outbox message as a Standard Webhook.

Standard Webhooks (https://github.com/standard-webhooks/standard-webhooks/blob/main/spec/standard-webhooks.md):
headers ``webhook-id`` (the message id, the same on every attempt), ``webhook-timestamp``
(this attempt's time, integer seconds) and ``webhook-signature`` (``v1,`` + base64
HMAC-SHA256 of ``id.timestamp.body``; during a secret rotation one signature per secret,
space-separated). The body is the stored payload, byte for byte.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from standardwebhooks.webhooks import Webhook

from gql_inventory.domain.errors import UrlNotAllowed
from gql_inventory.outbound.messages import MAX_KEPT_BODY, ClaimedMessage, SendOutcome, kept_body
from gql_inventory.outbound.secrets import SecretBox, secret_box, signing_secrets
from gql_inventory.outbound.urls import check_url
from gql_inventory.outbound.webhook_http import HttpError, WebhookClient
from gql_inventory.settings import Settings

#: Bytes of a response read at most (the rest is never downloaded); 1 KiB is kept.
_READ_AT_MOST = 4 * MAX_KEPT_BODY


#: Opened secrets kept at most (a few per endpoint: current and previous); then cleared.
_OPENED_AT_MOST = 1024


def sign(secrets: list[str], message_id: str, at: datetime, payload: bytes) -> str:
    """The webhook-signature header: one ``v1,...`` signature per secret, space-separated."""
    return " ".join(Webhook(s).sign(message_id, at, payload) for s in secrets)


class _OpenedBox(SecretBox):
    """A `SecretBox` that remembers what it opened, by token (at most `_OPENED_AT_MOST`;
    a token never changes its secret, and a new key opens no old token)."""

    def __init__(self, box: SecretBox) -> None:
        self._box = box
        self._opened: dict[str, str] = {}

    def seal(self, secret: str) -> str:
        """See `SecretBox.seal`."""
        return self._box.seal(secret)

    def open(self, token: str) -> str:
        """See `SecretBox.open` (raises as it does; a failure is not remembered)."""
        secret = self._opened.get(token)
        if secret is None:
            secret = self._box.open(token)
            if len(self._opened) >= _OPENED_AT_MOST:
                self._opened.clear()
            self._opened[token] = secret
        return secret


class WebhookSender:
    """Sends WEBHOOK outbox messages (an `outbound.messages.Sender`).

    Per attempt: take the endpoint (url, enabled, sealed secrets) the claim read with the
    message (`ClaimedMessage.endpoint`; secrets opened once per token); check the URL again
    (`urls.check_url`, private addresses only when `settings.private_urls_allowed()`: a
    name may resolve elsewhere since the endpoint was made); sign; POST through `http`
    (the worker's client: no redirects followed). The check and the request each have
    `settings.webhook_timeout_seconds` in all (seconds). Outcomes: 2xx delivered; 410
    gone; anything else, a timeout, a connection error or a refused URL is a failed
    attempt with its reason. Never raises for the receiver's failures.
    """

    def __init__(self, settings: Settings, http: WebhookClient) -> None:
        self._settings = settings
        self._http = http
        self._box: SecretBox | None = None  # opened on first use: a CLI may never send

    async def __call__(self, message: ClaimedMessage) -> SendOutcome:
        """One attempt of `message` (see the class)."""
        if message.endpoint_id is None:
            return SendOutcome(False, error="not a webhook message")
        endpoint = message.endpoint
        if endpoint is None:
            return SendOutcome(False, error="the endpoint no longer exists")
        if not endpoint.enabled:
            return SendOutcome(False, error="the endpoint is disabled")
        timeout = self._settings.webhook_timeout_seconds
        try:
            async with asyncio.timeout(timeout):
                await check_url(endpoint.url, allow_private=self._settings.private_urls_allowed())
        except UrlNotAllowed as refused:
            return SendOutcome(False, error=f"URL refused: {refused.message}")
        except TimeoutError:
            return SendOutcome(False, error=f"URL check timed out after {timeout:g} s")
        now = datetime.now(UTC)
        if self._box is None:
            self._box = _OpenedBox(secret_box(self._settings))
        secrets = signing_secrets(
            self._box, endpoint.secret, endpoint.previous, endpoint.previous_until, now
        )
        payload = message.payload.encode()
        headers = {
            "content-type": "application/json",
            "webhook-id": message.message_id,
            "webhook-timestamp": str(int(now.timestamp())),
            "webhook-signature": sign(secrets, message.message_id, now, payload),
        }
        try:
            async with asyncio.timeout(timeout):
                return await self._post(endpoint.url, payload, headers)
        except TimeoutError:
            return SendOutcome(False, error=f"timed out after {timeout:g} s")
        except HttpError as exc:
            return SendOutcome(False, error=str(exc)[:500])

    async def _post(self, url: str, payload: bytes, headers: dict[str, str]) -> SendOutcome:
        answer = await self._http.post(url, payload, headers, read_at_most=_READ_AT_MOST)
        status = answer.status
        body = kept_body(answer.body.decode(errors="replace"))
        if 200 <= status < 300:
            return SendOutcome(True, status, body=body)
        if status == 410:
            return SendOutcome(False, status, "410 Gone: endpoint disabled", body, gone=True)
        return SendOutcome(False, status, f"HTTP {status}", body)
