"""Refusals for want of stock or past a limit: INSUFFICIENT_STOCK in its forms and
PURCHASE_LIMIT_EXCEEDED. Each carries its figures in units, never a sentence (the rest of
the domain's refusals are in `domain.errors`)."""

from __future__ import annotations

from gql_inventory.domain.errors import DomainError, ErrorCode, FieldPath


class InsufficientStock(DomainError):
    """Fewer units are available than asked for; nothing was changed.

    Raised as one of the subclasses below, whose messages say what was asked and
    where. `requested` and `available` are units of `sku`.
    """

    code = ErrorCode.INSUFFICIENT_STOCK

    def __init__(
        self,
        message: str,
        *,
        sku: str,
        requested: int,
        available: int,
        field: FieldPath | None = None,
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
        field: FieldPath | None = None,
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

    `requested` is the units to remove, `available` is `on_hand - reserved -
    unavailable` at the location `location` (name) with id `location_id` (ADR 0017).
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
        unavailable: int = 0,
        field: FieldPath | None = None,
    ) -> None:
        held = f", {unavailable} unavailable" if unavailable else ""
        super().__init__(
            f"cannot remove {remove} of {sku!r} at {location}: {on_hand} on hand, "
            f"{reserved} reserved{held} ({on_hand - reserved - unavailable} available)",
            sku=sku,
            requested=remove,
            available=on_hand - reserved - unavailable,
            field=field,
        )
        self.unavailable = unavailable
        self.location_id = location_id
        self.location = location
        self.on_hand = on_hand
        self.reserved = reserved


class OnHandBelowReserved(InsufficientStock):
    """setStock would put one location's on hand below the units reserved there plus its
    unavailable units (ADR 0017); `reserved` counts both.

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
        field: FieldPath | None = None,
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


class StateShort(InsufficientStock):
    """moveStockState asks for more units than the source state holds at one location.

    `requested` is the units to move, `available` the units in state `state` there
    (for AVAILABLE: `on_hand - reserved - unavailable`), ADR 0017.
    """

    def __init__(
        self,
        *,
        sku: str,
        location: str,
        state: str,
        requested: int,
        available: int,
        field: FieldPath | None = None,
    ) -> None:
        super().__init__(
            f"cannot move {requested} of {sku!r} out of {state} at {location}: "
            f"only {available} there",
            sku=sku,
            requested=requested,
            available=available,
            field=field,
        )
        self.location = location
        self.state = state


class PurchaseLimitExceeded(DomainError):
    """A reservation would hold more units of `sku` than the variant's `max_per_order`.

    `requested` is the units the reservation would hold of `sku` in total (the merged
    lines of a new reservation, the absolute quantity of updateReservation); `available`
    is the most it may hold: the limit, or the `held` units it already has when a lowered
    limit left it above (it keeps them; only an increase is refused).
    """

    code = ErrorCode.PURCHASE_LIMIT_EXCEEDED

    def __init__(
        self,
        *,
        sku: str,
        requested: int,
        limit: int,
        held: int = 0,
        field: FieldPath | None = None,
    ) -> None:
        kept = ""
        if held > limit:  # a limit lowered under this reservation: it keeps what it has
            kept = f" (this reservation already holds {held}, more than the limit)"
        super().__init__(
            f"at most {limit} of {sku!r} per order{kept}, {requested} requested", field=field
        )
        self.sku = sku
        self.requested = requested
        self.limit = limit
        self.held = held
        self.available = max(limit, held)
