"""Stripe test support: a local server speaking Stripe's wire format (`FakeStripe`).

`FakeStripe` listens on 127.0.0.1 (a thread): form-encoded requests in, JSON objects as
Stripe's API reference documents them out, errors as ``{"error": {...}}``, and the
``Idempotency-Key`` honoured like Stripe does (same key and parameters: the first
response again, with ``Idempotent-Replayed: true``; same key, other parameters: 400
``idempotency_error``). `StripePaymentProvider` is pointed at it through the client's
base address.
"""

from __future__ import annotations

import json
import secrets
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl

from gql_inventory.devtools import stripe_events as events

API_KEY = "sk_test_fake_0123456789"


def decode_form(body: str) -> dict[str, Any]:
    """Stripe's form encoding back to nested values: ``metadata[order_id]=x`` -> dict."""
    out: dict[str, Any] = {}
    for key, value in parse_qsl(body, keep_blank_values=True):
        parts = key.replace("]", "").split("[")
        node = out
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = value
    return out


@dataclass
class Recorded:
    """One request the fake received."""

    method: str
    path: str
    params: dict[str, Any]
    headers: dict[str, str]


@dataclass
class _Failure:
    status: int
    error: dict[str, Any]
    times: int
    should_retry: bool | None


@dataclass
class FakeStripe:
    """The PaymentIntents, refunds and errors of a Stripe account, in memory."""

    requests: list[Recorded] = field(default_factory=list)
    payment_intents: dict[str, dict[str, Any]] = field(default_factory=dict)
    refunds: dict[str, dict[str, Any]] = field(default_factory=dict)
    _replays: dict[str, tuple[dict[str, Any], int, dict[str, Any]]] = field(default_factory=dict)
    _failures: dict[str, _Failure] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _server: ThreadingHTTPServer | None = None
    _thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        """Base address to give the client (``http://127.0.0.1:<port>``)."""
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.server_port}"

    def fail(
        self,
        route: str,
        *,
        status: int = 402,
        type_: str = "card_error",
        code: str = "charge_expired_for_capture",
        message: str = "The charge cannot be refunded.",
        times: int = 1,
        should_retry: bool | None = False,
    ) -> None:
        """Answer the next `times` calls of `route` (``create``, ``cancel``, ``refund``)
        with a Stripe error."""
        self._failures[route] = _Failure(
            status, {"type": type_, "code": code, "message": message}, times, should_retry
        )

    def calls(self, path_suffix: str) -> list[Recorded]:
        """Recorded POSTs whose path ends with `path_suffix`."""
        return [r for r in self.requests if r.method == "POST" and r.path.endswith(path_suffix)]

    # ------------------------------------------------------------ the API

    def handle(
        self, method: str, path: str, body: str, headers: dict[str, str]
    ) -> tuple[int, dict[str, Any], dict[str, str]]:
        """Answer one request: ``(status, JSON body, extra headers)``."""
        params = decode_form(body)
        with self._lock:
            self.requests.append(Recorded(method, path, params, headers))
            if headers.get("authorization") != f"Bearer {API_KEY}":
                return 401, _error("invalid_request_error", None, "Invalid API Key provided"), {}
            key = headers.get("idempotency-key")
            if method == "POST" and key is not None and key in self._replays:
                first_params, status, response = self._replays[key]
                if first_params != params:
                    return (
                        400,
                        _error(
                            "idempotency_error",
                            None,
                            "Keys for idempotent requests can only be used with the same "
                            "parameters they were first used with.",
                        ),
                        {},
                    )
                return status, response, {"Idempotent-Replayed": "true"}
            status, response, extra = self._route(method, path, params)
            if method == "POST" and key is not None and status < 500:
                self._replays[key] = (params, status, response)
            return status, response, extra

    def _route(
        self, method: str, path: str, params: dict[str, Any]
    ) -> tuple[int, dict[str, Any], dict[str, str]]:
        parts = path.strip("/").split("/")
        if method == "POST" and parts == ["v1", "payment_intents"]:
            return self._maybe_fail("create") or self._create_intent(params)
        if method == "POST" and len(parts) == 4 and parts[:2] == ["v1", "payment_intents"]:
            return self._maybe_fail("cancel") or self._cancel_intent(parts[2])
        if method == "GET" and len(parts) == 3 and parts[:2] == ["v1", "payment_intents"]:
            intent = self.payment_intents.get(parts[2])
            if intent is None:
                return 404, _missing(parts[2]), {}
            return 200, intent, {}
        if method == "POST" and parts == ["v1", "refunds"]:
            return self._maybe_fail("refund") or self._create_refund(params)
        return 404, _error("invalid_request_error", None, f"Unrecognized request URL {path}"), {}

    def _maybe_fail(self, route: str) -> tuple[int, dict[str, Any], dict[str, str]] | None:
        failure = self._failures.get(route)
        if failure is None or failure.times <= 0:
            return None
        failure.times -= 1
        headers = {}
        if failure.should_retry is not None:
            headers["Stripe-Should-Retry"] = "true" if failure.should_retry else "false"
        return failure.status, {"error": dict(failure.error)}, headers

    def _create_intent(self, params: dict[str, Any]) -> tuple[int, dict[str, Any], dict[str, str]]:
        try:
            amount = int(params["amount"])
            currency = params["currency"]
        except (KeyError, ValueError):
            return 400, _error("invalid_request_error", "parameter_missing", "amount"), {}
        if amount < 1 or currency != currency.lower():
            return 400, _error("invalid_request_error", "parameter_invalid", "amount"), {}
        pi = f"pi_{secrets.token_hex(12)}"
        auto = params.get("automatic_payment_methods", {})
        intent = {
            "id": pi,
            "object": "payment_intent",
            "amount": amount,
            "amount_capturable": 0,
            "amount_received": 0,
            "automatic_payment_methods": {"enabled": auto.get("enabled") == "true"},
            "canceled_at": None,
            "cancellation_reason": None,
            "capture_method": "automatic",
            "client_secret": f"{pi}_secret_{secrets.token_hex(12)}",
            "confirmation_method": "automatic",
            "created": int(time.time()),
            "currency": currency,
            "last_payment_error": None,
            "latest_charge": None,
            "livemode": False,
            "metadata": params.get("metadata", {}),
            "payment_method_types": ["card"],
            "receipt_email": params.get("receipt_email"),
            "status": "requires_payment_method",
        }
        self.payment_intents[pi] = intent
        return 200, intent, {}

    def succeed(self, payment_intent_id: str) -> None:
        """The buyer paid (what Stripe does when the card is confirmed)."""
        with self._lock:
            intent = self.payment_intents[payment_intent_id]
            intent.update(
                status="succeeded",
                amount_received=intent["amount"],
                latest_charge=events.charge_id(payment_intent_id),
            )

    def _cancel_intent(self, pi: str) -> tuple[int, dict[str, Any], dict[str, str]]:
        intent = self.payment_intents.get(pi)
        if intent is None:
            return 404, _missing(pi), {}
        if intent["status"] in ("succeeded", "canceled"):
            body = _error(
                "invalid_request_error",
                "payment_intent_unexpected_state",
                f"You cannot cancel this PaymentIntent because it has a status of "
                f"{intent['status']}.",
            )
            body["error"]["payment_intent"] = intent
            return 400, body, {}
        intent.update(
            status="canceled", canceled_at=int(time.time()), cancellation_reason="requested"
        )
        return 200, intent, {}

    def _create_refund(self, params: dict[str, Any]) -> tuple[int, dict[str, Any], dict[str, str]]:
        intent = self.payment_intents.get(params.get("payment_intent", ""))
        if intent is None:
            return 404, _missing(params.get("payment_intent", "")), {}
        refunded = sum(
            r["amount"] for r in self.refunds.values() if r["payment_intent"] == intent["id"]
        )
        amount = int(params.get("amount", intent["amount"] - refunded))
        if amount < 1 or refunded + amount > intent["amount"]:
            return (
                400,
                _error(
                    "invalid_request_error",
                    "amount_too_large",
                    f"Refund amount ({amount}) is greater than unrefunded amount on charge",
                ),
                {},
            )
        refund = {
            "id": f"re_{secrets.token_hex(12)}",
            "object": "refund",
            "amount": amount,
            "charge": events.charge_id(intent["id"]),
            "created": int(time.time()),
            "currency": intent["currency"],
            "metadata": params.get("metadata", {}),
            "payment_intent": intent["id"],
            "reason": None,
            "status": "succeeded",
        }
        self.refunds[refund["id"]] = refund
        return 200, refund, {}

    # ------------------------------------------------------------ the server

    def start(self) -> None:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _serve(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length).decode() if length else ""
                path, _, query = self.path.partition("?")
                headers = {k.lower(): v for k, v in self.headers.items()}
                status, payload, extra = fake.handle(self.command, path, body or query, headers)
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.send_header("Request-Id", f"req_{secrets.token_hex(8)}")
                for name, value in extra.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(data)

            do_GET = _serve
            do_POST = _serve

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        assert self._server is not None
        assert self._thread is not None
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()


def _error(type_: str, code: str | None, message: str) -> dict[str, Any]:
    return {"error": {"type": type_, "code": code, "message": message}}


def _missing(resource_id: str) -> dict[str, Any]:
    body = _error("invalid_request_error", "resource_missing", f"No such id: '{resource_id}'")
    body["error"]["param"] = "id"
    return body


@contextmanager
def running_fake_stripe() -> Iterator[FakeStripe]:
    """A started `FakeStripe`, stopped on exit."""
    fake = FakeStripe()
    fake.start()
    try:
        yield fake
    finally:
        fake.stop()
