"""Mutation payloads and `UserError`, the refusals they carry."""

from __future__ import annotations

import strawberry
from strawberry.utils.str_converters import to_camel_case

from gql_inventory.domain.errors import DomainError, DomainErrors, ErrorCode, FieldPath
from gql_inventory.schema.catalog import StockLevelType
from gql_inventory.schema.enums import UserErrorCode
from gql_inventory.schema.orders import OrderType, ReservationType, StockMovementType

_USER_ERRORS = (
    "Why the operation was refused; empty on success. A refusal changes nothing (the "
    "transaction is rolled back)."
)


@strawberry.type(
    name="UserError",
    description="An expected refusal (bad input, not enough stock...), returned as data in a "
    "payload's userErrors. Missing admin tokens and malformed queries are GraphQL errors "
    "instead.",
)
class UserError:
    """An expected refusal; `field` is the path into the input (["input", "lines", "0"])."""

    code: UserErrorCode = strawberry.field(description="Machine-readable reason.")
    message: str = strawberry.field(
        description="For people: says what was asked and, for one stock level, where."
    )
    field: list[str] | None = strawberry.field(
        default=None,
        description='Path to the input at fault, e.g. ["input", "lines", "2", "quantity"]; '
        "null when no single input is.",
    )
    sku: str | None = strawberry.field(
        default=None, description="The SKU concerned (UNKNOWN_SKU, INSUFFICIENT_STOCK...)."
    )
    requested: int | None = strawberry.field(
        default=None,
        description="Units asked for (INSUFFICIENT_STOCK, REFUND_EXCEEDS_QUANTITY, "
        "PURCHASE_LIMIT_EXCEEDED). setStock: units the count would remove.",
    )
    available: int | None = strawberry.field(
        default=None,
        description="Units there were: over every location for a reservation, at `locationId` "
        "for adjustStock/setStock, still refundable for REFUND_EXCEEDS_QUANTITY, the most the "
        "reservation may hold for PURCHASE_LIMIT_EXCEEDED.",
    )
    location_id: strawberry.ID | None = strawberry.field(
        default=None,
        description="Location.id of the stock level concerned, when the refusal is about one "
        "(adjustStock, setStock); null for reservations, which draw on every location.",
    )


def _location_id(error: DomainError) -> strawberry.ID | None:
    location_id = getattr(error, "location_id", None)
    return None if location_id is None else strawberry.ID(str(location_id))


#: The contract's code for each domain code (total: tests/test_imports.py checks it).
USER_ERROR_CODES: dict[ErrorCode, UserErrorCode] = {c: UserErrorCode[c.name] for c in ErrorCode}


def graphql_path(field: FieldPath | None, *, under_input: bool = True) -> list[str] | None:
    """The GraphQL path clients see for a domain `FieldPath`.

    ``in_input("lines", 2, "quantity")`` is ``["input", "lines", "2", "quantity"]``;
    ``argument("reservation_id")`` is ``["reservationId"]``. Names are camelCased as
    Strawberry names the fields; indexes become strings.
    """
    if field is None:
        return None
    parts = [str(p) if isinstance(p, int) else to_camel_case(p) for p in field.parts]
    return parts if field.argument or not under_input else ["input", *parts]


def user_errors(error: DomainError, *, under_input: bool = True) -> list[UserError]:
    """Turn a domain refusal (or a group of them) into `UserError`s.

    With ``under_input=False`` paths leave out the leading ``"input"``:
    bulkAdjustStock's start ``["lines", "<index>", ...]`` (contract).
    """
    errors = error.errors if isinstance(error, DomainErrors) else [error]
    return [
        UserError(
            code=USER_ERROR_CODES[e.code],
            message=e.message,
            field=graphql_path(e.field, under_input=under_input),
            sku=getattr(e, "sku", None),
            requested=getattr(e, "requested", None),
            available=getattr(e, "available", None),
            location_id=_location_id(e),
        )
        for e in errors
    ]


@strawberry.type(description="The reservation after reserveStock or updateReservation.")
class ReserveStockPayload:
    """The reservation, or why not."""

    reservation: ReservationType | None = strawberry.field(
        description="The reservation as committed; null when refused."
    )
    user_errors: list[UserError] = strawberry.field(description=_USER_ERRORS)


@strawberry.type(description="The reservation after releaseReservation.")
class ReleaseReservationPayload:
    """The released reservation, or why not."""

    reservation: ReservationType | None = strawberry.field(
        description="The reservation, now RELEASED; null when refused."
    )
    user_errors: list[UserError] = strawberry.field(description=_USER_ERRORS)


@strawberry.type(description="The order made by checkout and how to pay it.")
class CheckoutPayload:
    """The order and the secret to confirm its payment with (Stripe.js), or why not."""

    order: OrderType | None = strawberry.field(
        description="The order (PENDING_PAYMENT); null when refused."
    )
    payment_client_secret: str | None = strawberry.field(
        description="The PaymentIntent's client secret: confirm the payment with it in the "
        "browser (Stripe.js). A secret: show it to this buyer only. Null when refused."
    )
    user_errors: list[UserError] = strawberry.field(description=_USER_ERRORS)


@strawberry.type(description="The stock level after adjustStock, setStock or moveStockState.")
class AdjustStockPayload:
    """The level after the change and the movement written (null when nothing changed)."""

    stock_level: StockLevelType | None = strawberry.field(
        description="The level after the change; null when refused."
    )
    movement: StockMovementType | None = strawberry.field(
        description="The ledger row written; null when refused or when nothing changed "
        "(setStock to the current figure)."
    )
    user_errors: list[UserError] = strawberry.field(description=_USER_ERRORS)


@strawberry.type(description="Both levels after transferStock and its two movements.")
class TransferStockPayload:
    """The source and destination levels after the transfer, and its ledger rows."""

    from_: StockLevelType | None = strawberry.field(
        name="from", description="The source level after the transfer; null when refused."
    )
    to: StockLevelType | None = strawberry.field(
        description="The destination level after the transfer; null when refused."
    )
    movements: list[StockMovementType] = strawberry.field(
        description="The two TRANSFER rows (source first), sharing one reference; empty when "
        "refused."
    )
    user_errors: list[UserError] = strawberry.field(description=_USER_ERRORS)


@strawberry.type(description="The order after refundOrder.")
class RefundOrderPayload:
    """The order after the refund, or why not."""

    order: OrderType | None = strawberry.field(
        description="The order, PARTIALLY_REFUNDED or REFUNDED; null when refused."
    )
    user_errors: list[UserError] = strawberry.field(description=_USER_ERRORS)


@strawberry.type(description="The order after cancelOrder.")
class CancelOrderPayload:
    """The order after cancellation, or why not."""

    order: OrderType | None = strawberry.field(
        description="The order, now CANCELLED; null when refused."
    )
    user_errors: list[UserError] = strawberry.field(description=_USER_ERRORS)
