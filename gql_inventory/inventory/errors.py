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
    """Fewer units are available than asked for; nothing was changed.

    Raised as one of the subclasses below, whose messages say what was asked and
    where. `requested` and `available` are units of `sku`.
    """

    code = "INSUFFICIENT_STOCK"

    def __init__(
        self,
        message: str,
        *,
        sku: str,
        requested: int,
        available: int,
        field: Sequence[str] | None = None,
    ) -> None:
        super().__init__(message, field=field)
        self.sku = sku
        self.requested = requested
        self.available = available


class ShortAcrossLocations(InsufficientStock):
    """A reservation wants more of `sku` than every location together has available.

    `available` is summed over locations and includes the `held` units the
    reservation already holds (updateReservation); `requested` is the quantity
    the line asks for in total.
    """

    def __init__(
        self,
        *,
        sku: str,
        requested: int,
        available: int,
        held: int = 0,
        field: Sequence[str] | None = None,
    ) -> None:
        held_note = f" ({held} of them already in this reservation)" if held else ""
        super().__init__(
            f"only {available} of {sku!r} available across all locations{held_note}, "
            f"{requested} requested",
            sku=sku,
            requested=requested,
            available=available,
            field=field,
        )
        self.held = held


class RemovalExceedsAvailable(InsufficientStock):
    """adjustStock would remove more than one location's on hand minus reserved.

    `requested` is the units to remove, `available` is `on_hand - reserved` at
    the location `location` (name) with id `location_id`.
    """

    def __init__(
        self,
        *,
        sku: str,
        location_id: int,
        location: str,
        remove: int,
        on_hand: int,
        reserved: int,
        field: Sequence[str] | None = None,
    ) -> None:
        super().__init__(
            f"cannot remove {remove} of {sku!r} at {location}: {on_hand} on hand, "
            f"{reserved} reserved ({on_hand - reserved} available)",
            sku=sku,
            requested=remove,
            available=on_hand - reserved,
            field=field,
        )
        self.location_id = location_id
        self.location = location
        self.on_hand = on_hand
        self.reserved = reserved


class OnHandBelowReserved(InsufficientStock):
    """setStock would put one location's on hand below the units reserved there.

    `requested` is the units the count would remove (`on_hand_before - on_hand`),
    `available` the units that could go (`on_hand_before - reserved`).
    """

    def __init__(
        self,
        *,
        sku: str,
        location_id: int,
        location: str,
        on_hand: int,
        on_hand_before: int,
        reserved: int,
        field: Sequence[str] | None = None,
    ) -> None:
        super().__init__(
            f"cannot set on hand of {sku!r} to {on_hand} at {location}: {reserved} are reserved",
            sku=sku,
            requested=on_hand_before - on_hand,
            available=on_hand_before - reserved,
            field=field,
        )
        self.location_id = location_id
        self.location = location
        self.on_hand = on_hand
        self.reserved = reserved


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
    """`expectedOnHand` did not match the current on-hand figure (compare-and-set failed).

    The level is `sku` at the location `location` (name) with id `location_id`.
    """

    code = "STOCK_CHANGED"

    def __init__(
        self,
        *,
        sku: str,
        location_id: int,
        location: str,
        expected: int,
        actual: int,
        field: Sequence[str] | None = None,
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
