"""Expected refusals of the domain. Each carries fields, never a pre-formatted sentence.

Resolvers turn them into `UserError`s whose `code` is `code` below
(contract enum `UserErrorCode`).
"""

from __future__ import annotations

from collections.abc import Sequence


class DomainError(Exception):
    """Base of every expected refusal. `field` is a path into the GraphQL input."""

    code: str = "INVALID_INPUT"

    def __init__(self, message: str, *, field: Sequence[str] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = list(field) if field is not None else None


class InvalidInput(DomainError):
    """Input that can never succeed (bad quantity, too many lines, malformed id...)."""

    code = "INVALID_INPUT"


class UnknownSku(DomainError):
    """No variant has this SKU."""

    code = "UNKNOWN_SKU"

    def __init__(self, sku: str, *, field: Sequence[str] | None = None) -> None:
        super().__init__(f"unknown SKU {sku!r}", field=field)
        self.sku = sku


class UnknownLocation(DomainError):
    """No location has this id."""

    code = "UNKNOWN_LOCATION"


class InsufficientStock(DomainError):
    """Fewer units are available than requested; nothing was changed."""

    code = "INSUFFICIENT_STOCK"

    def __init__(
        self, *, sku: str, requested: int, available: int, field: Sequence[str] | None = None
    ) -> None:
        super().__init__(
            f"only {available} of {sku!r} available, {requested} requested", field=field
        )
        self.sku = sku
        self.requested = requested
        self.available = available


class ReservationNotFound(DomainError):
    """No reservation has this id (or the id is not one we could have issued)."""

    code = "RESERVATION_NOT_FOUND"


class ReservationNotActive(DomainError):
    """The reservation exists but is COMPLETED, RELEASED or EXPIRED."""

    code = "RESERVATION_NOT_ACTIVE"

    def __init__(self, status: str, *, field: Sequence[str] | None = None) -> None:
        super().__init__(f"reservation is {status}", field=field)
        self.status = status


class OrderNotFound(DomainError):
    """No order has this id."""

    code = "ORDER_NOT_FOUND"


class InvalidOrderState(DomainError):
    """The order's status does not allow the operation."""

    code = "INVALID_ORDER_STATE"

    def __init__(self, status: str, action: str, *, field: Sequence[str] | None = None) -> None:
        super().__init__(f"cannot {action} an order in {status}", field=field)
        self.status = status
        self.action = action


class RefundExceedsQuantity(DomainError):
    """More units asked back than were sold and not yet refunded."""

    code = "REFUND_EXCEEDS_QUANTITY"

    def __init__(
        self, *, sku: str, requested: int, refundable: int, field: Sequence[str] | None = None
    ) -> None:
        super().__init__(
            f"only {refundable} of {sku!r} can be refunded, {requested} requested", field=field
        )
        self.sku = sku
        self.requested = requested
        self.available = refundable


class StockChanged(DomainError):
    """`expectedOnHand` did not match the current on-hand figure (compare-and-set failed)."""

    code = "STOCK_CHANGED"

    def __init__(
        self, *, sku: str, expected: int, actual: int, field: Sequence[str] | None = None
    ) -> None:
        super().__init__(f"on hand of {sku!r} is {actual}, expected {expected}", field=field)
        self.sku = sku
        self.expected = expected
        self.actual = actual


class IdempotencyConflict(DomainError):
    """The idempotency key was used before with a different input."""

    code = "IDEMPOTENCY_CONFLICT"


class PaymentProviderError(DomainError):
    """The payment provider refused or failed; nothing was changed locally."""

    code = "PAYMENT_PROVIDER_ERROR"


class DomainErrors(DomainError):
    """Several refusals at once (e.g. every short line of a cart); `errors` lists them."""

    def __init__(self, errors: Sequence[DomainError]) -> None:
        super().__init__("; ".join(e.message for e in errors))
        self.errors = list(errors)
        self.code = errors[0].code if errors else "INVALID_INPUT"


def raise_all(errors: Sequence[DomainError]) -> None:
    """Raise nothing for no errors, the error itself for one, `DomainErrors` for several."""
    if len(errors) == 1:
        raise errors[0]
    if errors:
        raise DomainErrors(errors)
