"""Expected refusals of the domain. Each carries fields, never a pre-formatted sentence.

The domain knows nothing of GraphQL: an error names the input at fault with a
`FieldPath` in the domain's own (snake_case) terms, and its `code` is an `ErrorCode`.
The GraphQL layer (`schema.payloads.user_errors`) turns both into a `UserError`
(contract enum `UserErrorCode`, same names; a test checks the two enums match).
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar


class ErrorCode(enum.StrEnum):
    """Why an operation was refused. Names and values are those of the contract's
    `UserErrorCode`; a mistyped code is a mypy error."""

    INVALID_INPUT = "INVALID_INPUT"
    UNKNOWN_SKU = "UNKNOWN_SKU"
    UNKNOWN_LOCATION = "UNKNOWN_LOCATION"
    INSUFFICIENT_STOCK = "INSUFFICIENT_STOCK"
    RESERVATION_NOT_FOUND = "RESERVATION_NOT_FOUND"
    RESERVATION_NOT_ACTIVE = "RESERVATION_NOT_ACTIVE"
    ORDER_NOT_FOUND = "ORDER_NOT_FOUND"
    INVALID_ORDER_STATE = "INVALID_ORDER_STATE"
    REFUND_EXCEEDS_QUANTITY = "REFUND_EXCEEDS_QUANTITY"
    STOCK_CHANGED = "STOCK_CHANGED"
    IDEMPOTENCY_CONFLICT = "IDEMPOTENCY_CONFLICT"
    PAYMENT_PROVIDER_ERROR = "PAYMENT_PROVIDER_ERROR"
    PURCHASE_LIMIT_EXCEEDED = "PURCHASE_LIMIT_EXCEEDED"
    SHIPMENT_NOT_FOUND = "SHIPMENT_NOT_FOUND"
    INVALID_SHIPMENT_STATE = "INVALID_SHIPMENT_STATE"
    WEBHOOK_ENDPOINT_NOT_FOUND = "WEBHOOK_ENDPOINT_NOT_FOUND"
    WEBHOOK_URL_NOT_ALLOWED = "WEBHOOK_URL_NOT_ALLOWED"


@dataclass(frozen=True)
class FieldPath:
    """Where the input at fault is, in domain terms.

    `parts` are snake_case names and list indexes below the operation's `input`
    argument, e.g. ``("lines", 2, "quantity")``; with `argument=True` the first part
    names an argument of the operation itself (``("reservation_id",)``).
    """

    parts: tuple[str | int, ...]
    argument: bool = False

    def __truediv__(self, part: str | int) -> FieldPath:
        """This path extended by one name or index: ``LINES / 2 / "quantity"``."""
        return FieldPath((*self.parts, part), self.argument)


def in_input(*parts: str | int) -> FieldPath:
    """A path below the operation's `input` argument: ``in_input("lines", 0, "sku")``."""
    return FieldPath(parts)


def argument(name: str) -> FieldPath:
    """An argument of the operation itself (not a field of `input`)."""
    return FieldPath((name,), argument=True)


class DomainError(Exception):
    """Base of every expected refusal. `field` is the input at fault, if one is."""

    code: ClassVar[ErrorCode] = ErrorCode.INVALID_INPUT

    def __init__(self, message: str, *, field: FieldPath | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field


class InvalidInput(DomainError):
    """Input that can never succeed (bad quantity, too many lines, malformed id...)."""

    code = ErrorCode.INVALID_INPUT


class UnknownSku(DomainError):
    """No variant has this SKU."""

    code = ErrorCode.UNKNOWN_SKU

    def __init__(self, sku: str, *, field: FieldPath | None = None) -> None:
        super().__init__(f"unknown SKU {sku!r}", field=field)
        self.sku = sku


class UnknownLocation(DomainError):
    """No location has this id."""

    code = ErrorCode.UNKNOWN_LOCATION


class ReservationNotFound(DomainError):
    """No reservation has this id (or the id is not one we could have issued)."""

    code = ErrorCode.RESERVATION_NOT_FOUND


class ReservationNotActive(DomainError):
    """The reservation exists but is COMPLETED, RELEASED or EXPIRED."""

    code = ErrorCode.RESERVATION_NOT_ACTIVE

    def __init__(self, status: str, *, field: FieldPath | None = None) -> None:
        super().__init__(f"reservation is {status}", field=field)
        self.status = status


class OrderNotFound(DomainError):
    """No order has this id."""

    code = ErrorCode.ORDER_NOT_FOUND


class InvalidOrderState(DomainError):
    """The order's status does not allow the operation."""

    code = ErrorCode.INVALID_ORDER_STATE

    def __init__(self, status: str, action: str, *, field: FieldPath | None = None) -> None:
        super().__init__(f"cannot {action} an order in {status}", field=field)
        self.status = status
        self.action = action


class RefundExceedsQuantity(DomainError):
    """More units asked back than were sold and not yet refunded."""

    code = ErrorCode.REFUND_EXCEEDS_QUANTITY

    def __init__(
        self, *, sku: str, requested: int, refundable: int, field: FieldPath | None = None
    ) -> None:
        super().__init__(
            f"only {refundable} of {sku!r} can be refunded, {requested} requested", field=field
        )
        self.sku = sku
        self.requested = requested
        self.available = refundable


class StockChanged(DomainError):
    """`expectedOnHand` did not match the current on-hand figure (compare-and-set failed).

    The level is `sku` at the location `location` (name) with id `location_id`.
    """

    code = ErrorCode.STOCK_CHANGED

    def __init__(
        self,
        *,
        sku: str,
        location_id: int,
        location: str,
        expected: int,
        actual: int,
        field: FieldPath | None = None,
    ) -> None:
        super().__init__(
            f"on hand of {sku!r} at {location} is {actual}, expected {expected}", field=field
        )
        self.sku = sku
        self.location_id = location_id
        self.location = location
        self.expected = expected
        self.actual = actual


class IdempotencyConflict(DomainError):
    """The idempotency key was used before with a different input."""

    code = ErrorCode.IDEMPOTENCY_CONFLICT


class PaymentProviderError(DomainError):
    """The payment provider refused or failed; nothing was changed locally."""

    code = ErrorCode.PAYMENT_PROVIDER_ERROR


class ShipmentNotFound(DomainError):
    """No inbound shipment has this id (or the id is not one we could have issued)."""

    code = ErrorCode.SHIPMENT_NOT_FOUND


class InvalidShipmentState(DomainError):
    """The inbound shipment's status (RECEIVED, CANCELLED) does not allow the operation."""

    code = ErrorCode.INVALID_SHIPMENT_STATE

    def __init__(self, status: str, action: str, *, field: FieldPath | None = None) -> None:
        super().__init__(f"cannot {action} an inbound shipment that is {status}", field=field)
        self.status = status
        self.action = action


class WebhookEndpointNotFound(DomainError):
    """No webhook endpoint (or delivery's endpoint) has this id."""

    code = ErrorCode.WEBHOOK_ENDPOINT_NOT_FOUND


class UrlNotAllowed(DomainError):
    """A webhook URL this service will not call: not https outside development, or its
    host is (or resolves to) a loopback, private, link-local or metadata address."""

    code = ErrorCode.WEBHOOK_URL_NOT_ALLOWED


class DomainErrors(DomainError):
    """Several refusals at once (e.g. every short line of a cart); `schema.errors` lists them."""

    def __init__(self, errors: Sequence[DomainError]) -> None:
        super().__init__("; ".join(e.message for e in errors))
        self.errors = list(errors)


def raise_all(errors: Sequence[DomainError]) -> None:
    """Raise nothing for no errors, the error itself for one, `DomainErrors` for several."""
    if len(errors) == 1:
        raise errors[0]
    if errors:
        raise DomainErrors(errors)


#: Paths used as defaults by several use cases.
ORDER_ID = in_input("order_id")
LINES = in_input("lines")
RESERVATION_ID_ARGUMENT = argument("reservation_id")
