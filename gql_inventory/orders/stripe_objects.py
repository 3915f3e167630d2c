"""Reading a verified Stripe event and its fields, checked before anything acts on them.

Two kinds of bad field, answered differently by the webhook:

- `MalformedEvent`: a field the handler needs is missing or has the wrong JSON type
  (a string where Stripe sends an integer). Answered 400, nothing written.
- `InvalidEvent`: the field is there and well typed but its value is impossible:
  an amount that is zero, negative or above Stripe's largest charge, a currency
  that is not three letters, an id that is not a Stripe id, an unknown refund
  status. Recorded (``webhook_events``, and the order's ``payment_events`` when
  the order is known) and answered 200 with outcome ``invalid``; nothing changes.

Limits. Amounts are integers in minor units, at least 1 and at most
`MAX_AMOUNT` = 999 999 999 999: Stripe's amounts have at most 8 digits, 12 for
IDR ("Minimum and maximum charge amounts", https://docs.stripe.com/currencies),
far inside PostgreSQL's bigint. Ids are Stripe's ``prefix_alphanumerics``, at most
255 characters (the width of our id columns); event types at most 64.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from gql_inventory.orders.payment_states import PaymentEventKind, RefundStatus
from gql_inventory.orders.provider_events import ReportedRefund

#: Largest amount Stripe can charge or refund, in minor units (12 digits: IDR).
MAX_AMOUNT = 999_999_999_999

#: Refund statuses Stripe documents (https://docs.stripe.com/api/refunds/object).
REFUND_STATUSES = frozenset(status.value for status in RefundStatus)

#: Refunds read from one charge's expanded ``refunds.data`` (Stripe lists at most 100).
MAX_LISTED_REFUNDS = 100

#: Characters kept of free text (decline messages) stored for admins.
MAX_TEXT = 500

_ID = re.compile(r"[A-Za-z0-9_-]{1,255}")
_EVENT_TYPE = re.compile(r"[a-z0-9_.]{1,64}")
_CURRENCY = re.compile(r"[A-Za-z]{3}")


class MalformedEvent(ValueError):
    """The body is signed but is not a Stripe event this endpoint can read."""


class InvalidEvent(ValueError):
    """A well-formed event carrying an impossible value: `field` of the object is `value`."""

    def __init__(self, field: str, value: object, reason: str) -> None:
        shown = repr(value)
        if len(shown) > 80:
            shown = shown[:77] + "..."
        super().__init__(f"{field}={shown}: {reason}")
        self.field = field
        self.value = value
        self.reason = reason


@dataclass(frozen=True, slots=True)
class StripeEvent:
    """The parts of a verified event the handlers use; `obj` is ``data.object``."""

    id: str
    type: str
    obj: dict[str, Any]

    @property
    def kind(self) -> PaymentEventKind:
        """The event's type as recorded in the order's history. Raises `ValueError` for a
        type not handled (handlers are only called for types of `stripe_events.HANDLERS`)."""
        return PaymentEventKind(self.type)


def read_event(payload: bytes) -> StripeEvent:
    """Read a verified body as plain JSON (no StripeObject is built: nothing recursive
    runs on a deeply nested body). Raises `MalformedEvent` (not JSON, nested too deeply,
    not an object, no storable id or type, no ``data.object``)."""
    try:
        values = json.loads(payload)
    except (ValueError, RecursionError) as exc:  # not JSON, or nested past the stack
        raise MalformedEvent(f"not a Stripe event: {type(exc).__name__}") from exc
    if not isinstance(values, dict):
        raise MalformedEvent("an event is a JSON object")
    data = values.get("data")
    obj = data.get("object") if isinstance(data, dict) else None
    event_id, type_ = values.get("id"), values.get("type")
    if not (is_event_id(event_id) and is_event_type(type_)):
        raise MalformedEvent("an event needs a Stripe id and a type")
    if not isinstance(obj, dict):
        raise MalformedEvent("an event needs data.object")
    return StripeEvent(id=str(event_id), type=str(type_), obj=obj)


def is_event_id(value: object) -> bool:
    """A Stripe id (``evt_...``) we can store."""
    return isinstance(value, str) and _ID.fullmatch(value) is not None


def is_event_type(value: object) -> bool:
    """A Stripe event type (``payment_intent.succeeded``) we can store."""
    return isinstance(value, str) and _EVENT_TYPE.fullmatch(value) is not None


def text(obj: dict[str, Any], key: str) -> str | None:
    """A non-empty string field, else None; free text, cut to `MAX_TEXT` without NULs."""
    value = obj.get(key)
    if not (isinstance(value, str) and value):
        return None
    return value.replace("\x00", "")[:MAX_TEXT] or None


def integer(obj: dict[str, Any], key: str) -> int | None:
    """An integer field (not a bool), else None."""
    value = obj.get(key)
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _check_amount(key: str, value: int) -> int:
    if value < 1:
        raise InvalidEvent(key, value, "an amount must be at least 1 minor unit")
    if value > MAX_AMOUNT:
        raise InvalidEvent(key, value, f"above Stripe's largest amount {MAX_AMOUNT}")
    return value


def amount(obj: dict[str, Any], key: str) -> int:
    """A required amount in minor units, 1..`MAX_AMOUNT`.

    Raises `MalformedEvent` (missing, not an integer) or `InvalidEvent` (out of range).
    """
    value = integer(obj, key)
    if value is None:
        raise MalformedEvent(f"{obj.get('object')} without an integer {key!r}")
    return _check_amount(key, value)


def optional_amount(obj: dict[str, Any], key: str) -> int | None:
    """An amount when the field holds an integer (checked like `amount`), else None;
    Stripe's 0 for "nothing yet" (``amount_received`` before success) is None too."""
    value = integer(obj, key)
    if value is None or value == 0:
        return None
    return _check_amount(key, value)


def currency(obj: dict[str, Any], key: str = "currency") -> str:
    """A required three-letter ISO 4217 code (Stripe writes it lower-case).

    Raises `MalformedEvent` (missing) or `InvalidEvent` (not three letters).
    """
    value = obj.get(key)
    if not isinstance(value, str):
        raise MalformedEvent(f"{obj.get('object')} without {key!r}")
    if _CURRENCY.fullmatch(value) is None:
        raise InvalidEvent(key, value, "a currency is three letters (ISO 4217)")
    return value


def stripe_id(value: object, field: str) -> str | None:
    """An id held by a field (or by the expanded object in it); None when absent.

    Raises `InvalidEvent` for a string that is not a Stripe id.
    """
    if isinstance(value, dict):
        value = value.get("id")
    if value is None or value == "":
        return None
    if not isinstance(value, str) or _ID.fullmatch(value) is None:
        raise InvalidEvent(field, value, "not a Stripe id")
    return value


def required_id(obj: dict[str, Any], key: str) -> str:
    """A required Stripe id. Raises `MalformedEvent` or `InvalidEvent`."""
    value = stripe_id(obj.get(key), key)
    if value is None:
        raise MalformedEvent(f"{obj.get('object')} without {key!r}")
    return value


def refund(obj: dict[str, Any]) -> ReportedRefund:
    """A Refund object. Raises `MalformedEvent` or `InvalidEvent`."""
    status = obj.get("status") or RefundStatus.PENDING
    if not (isinstance(status, str) and status in REFUND_STATUSES):
        raise InvalidEvent("status", status, "not a refund status")
    return ReportedRefund(
        refund_id=required_id(obj, "id"),
        amount=amount(obj, "amount"),
        currency=currency(obj),
        status=RefundStatus(status),
    )


def listed_refunds(charge: dict[str, Any]) -> list[ReportedRefund]:
    """The refunds a Charge lists (only when expanded, API versions >= 2022-11-15)."""
    listed = charge.get("refunds")
    if not (isinstance(listed, dict) and isinstance(listed.get("data"), list)):
        return []
    data = listed["data"]
    if len(data) > MAX_LISTED_REFUNDS:
        raise InvalidEvent("refunds.data", len(data), f"more than {MAX_LISTED_REFUNDS} refunds")
    return [refund(r) for r in data if isinstance(r, dict)]


__all__ = [
    "MAX_AMOUNT",
    "InvalidEvent",
    "MalformedEvent",
    "StripeEvent",
    "amount",
    "currency",
    "integer",
    "is_event_id",
    "is_event_type",
    "listed_refunds",
    "optional_amount",
    "read_event",
    "refund",
    "required_id",
    "stripe_id",
    "text",
]
