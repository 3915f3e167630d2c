"""The unit of work the domain's writing use cases receive: one transaction, and what it
will announce once it commits.

The domain never commits: the caller (`gql_inventory.uow.run_in_transaction`, or the
reserve group commit in `gql_inventory.reserving`) opens the transaction; right before
its commit one function (`outbound.events.write_events`) writes the outbox rows of its
`movements` and `happened` events, and after the commit one function
(`Services.after_commit`) publishes `movements` and `orders_changed`, cancels
`payment_cancels` at the provider, logs `attention` and, when `catalog_changed`, has the
process read the catalog afresh.
A rolled-back transaction announces nothing and writes no event (DESIGN.md invariant 3).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, NamedTuple

from sqlalchemy.ext.asyncio import AsyncSession

from gql_inventory.models import STATE_COLUMNS, MovementKind, WebhookTopic

#: `stock_movements.from_state` / `to_state` values counted in a level's `unavailable`.
_UNAVAILABLE_STATES = frozenset(state.value for state in STATE_COLUMNS)

#: `UnitOfWork.actor` values (`stock_movements.actor`): who caused a change. An admin is
#: ``admin:<name>`` (`admin_actor`); the GraphQL context gives it (`Context.actor`).
STOREFRONT = "storefront"  # anonymous GraphQL callers
STRIPE = "stripe"  # the Stripe webhook and the pending-payment check
SYSTEM = "system"  # the expiry sweeper, reconciliation
IMPORT = "import"  # the Shopify importer and the demo catalog (CLI)
ADMIN_PREFIX = "admin:"


def admin_actor(name: str) -> str:
    """The actor of the admin named `name` (`context.admin_identities`): ``admin:<name>``."""
    return f"{ADMIN_PREFIX}{name}"


#: The `stock_movements` columns `AppliedMovement.from_row` reads (every ledger write
#: returns them).
MOVEMENT_COLUMNS = """id, stock_level_id, variant_id, location_id, kind, on_hand_delta,
    reserved_delta, on_hand_after, reserved_after, damaged_after, quality_control_after,
    safety_stock_after, from_state, to_state, quantity, version, reason, reference, actor,
    txid, occurred_at, backordered_delta, backordered_after"""


@dataclass(frozen=True, slots=True)
class AppliedMovement:
    """A ledger row as written: the deltas and the level's figures after the change."""

    id: int
    stock_level_id: int
    variant_id: int
    location_id: int
    kind: MovementKind
    on_hand_delta: int
    reserved_delta: int
    on_hand_after: int
    reserved_after: int
    version: int
    reason: str | None
    reference: str | None
    actor: str
    txid: int
    occurred_at: datetime
    #: The level's unavailable states after the change (ADR 0017).
    damaged_after: int = 0
    quality_control_after: int = 0
    safety_stock_after: int = 0
    #: STATE_CHANGE only: the states moved between and the units moved.
    from_state: str | None = None
    to_state: str | None = None
    quantity: int | None = None
    #: Change of the level's backordered units and the figure after (ADR 0018).
    backordered_delta: int = 0
    backordered_after: int = 0

    @property
    def unavailable_after(self) -> int:
        """damaged + quality control + safety stock after the change."""
        return self.damaged_after + self.quality_control_after + self.safety_stock_after

    @property
    def available_delta(self) -> int:
        """How the level's `available` (units, `domain.figures.available_of`) changed:
        on hand minus reserved, backordered and the units entering unavailable states."""
        moved = self.quantity or 0
        unavailable = (moved if self.to_state in _UNAVAILABLE_STATES else 0) - (
            moved if self.from_state in _UNAVAILABLE_STATES else 0
        )
        return self.on_hand_delta - self.reserved_delta - self.backordered_delta - unavailable

    @classmethod
    def from_row(cls, row: Any) -> AppliedMovement:
        """Build from a `stock_movements` row (mapping or Row)."""
        m = row._mapping if hasattr(row, "_mapping") else row
        return cls(
            id=m["id"],
            stock_level_id=m["stock_level_id"],
            variant_id=m["variant_id"],
            location_id=m["location_id"],
            kind=MovementKind(m["kind"]),
            on_hand_delta=m["on_hand_delta"],
            reserved_delta=m["reserved_delta"],
            on_hand_after=m["on_hand_after"],
            reserved_after=m["reserved_after"],
            version=m["version"],
            reason=m["reason"],
            reference=m["reference"],
            actor=m["actor"],
            txid=m["txid"],
            occurred_at=m["occurred_at"],
            damaged_after=m["damaged_after"],
            quality_control_after=m["quality_control_after"],
            safety_stock_after=m["safety_stock_after"],
            from_state=m["from_state"],
            to_state=m["to_state"],
            quantity=m["quantity"],
            backordered_delta=m["backordered_delta"],
            backordered_after=m["backordered_after"],
        )


class PaymentCancel(NamedTuple):
    """A payment to cancel at the provider once the transaction has committed."""

    order_id: uuid.UUID
    payment_intent_id: str


class Attention(NamedTuple):
    """An order that became NEEDS_ATTENTION, with its `attention_reason`."""

    order_id: uuid.UUID
    reason: str | None


class Happened(NamedTuple):
    """Something other systems hear about beyond the stock levels' changes: `topic`
    happened to the order, reservation or inbound shipment `subject` (its id). The outbox
    writer reads the subject's figures as the transaction leaves them."""

    topic: WebhookTopic
    subject: uuid.UUID


@dataclass(frozen=True, slots=True)
class VariantStock:
    """What a transaction's stock events need of a variant it changed, as the transaction
    leaves it: its SKU, low-stock threshold (units), available units summed over all its
    levels (`domain.figures.available_of`), and the location (id, name) of each of its
    levels, by level id."""

    sku: str
    low_stock_threshold: int
    available: int
    locations: dict[int, tuple[int, str]]


class Mark(NamedTuple):
    """Lengths of a unit of work's lists at one point (see `UnitOfWork.mark`)."""

    movements: int
    orders_changed: int
    payment_cancels: int
    attention: int
    happened: int


@dataclass(eq=False)
class Announcements:
    """What a transaction will announce once it commits (`Services.after_commit`).

    `movements`: ledger rows written, in ledger order (published to subscribers).
    `orders_changed`: ids of orders whose status changed (`orderStatusChanged`).
    `payment_cancels`: payments of orders it cancelled, cancelled at the provider
    after the commit, outside any lock. `attention`: orders it made NEEDS_ATTENTION
    (logged at WARNING after the commit). `catalog_changed`: set by the domain functions
    that write products, variants (thresholds included) or locations, so that this
    process reads its own catalog write (`mark_catalog_changed`; a savepoint rolled back
    leaves it set: one needless reload at worst). `happened`: order, reservation and
    shipment events for the outbox (`Happened`). `variant_stock`: `VariantStock` of
    changed variants, given by a writer that read them under its locks anyway (the
    reserve group commit), so the outbox writer need not read them again.
    """

    movements: list[AppliedMovement] = field(default_factory=list, kw_only=True)
    orders_changed: list[uuid.UUID] = field(default_factory=list, kw_only=True)
    payment_cancels: list[PaymentCancel] = field(default_factory=list, kw_only=True)
    attention: list[Attention] = field(default_factory=list, kw_only=True)
    catalog_changed: bool = field(default=False, kw_only=True)
    happened: list[Happened] = field(default_factory=list, kw_only=True)
    variant_stock: dict[int, VariantStock] = field(default_factory=dict, kw_only=True)

    def mark_catalog_changed(self) -> None:
        """The work wrote the catalog (products, variants, locations)."""
        self.catalog_changed = True

    def mark(self) -> Mark:
        """Where the lists end now; `rewind` to it when a savepoint rolls back."""
        return Mark(
            len(self.movements),
            len(self.orders_changed),
            len(self.payment_cancels),
            len(self.attention),
            len(self.happened),
        )

    def rewind(self, mark: Mark) -> None:
        """Forget what was added since `mark` (its savepoint rolled back)."""
        del self.movements[mark.movements :]
        del self.orders_changed[mark.orders_changed :]
        del self.payment_cancels[mark.payment_cancels :]
        del self.attention[mark.attention :]
        del self.happened[mark.happened :]


@dataclass(eq=False)
class UnitOfWork(Announcements):
    """One open transaction (`session`) and what it will announce after its commit (the
    lists of `Announcements`). `actor`: who causes the work (``admin:<name>``,
    `STOREFRONT`, `STRIPE`, `SYSTEM` or `IMPORT`), written on every ledger row; it is
    required, so no caller can forget it.
    """

    session: AsyncSession
    actor: str = field(kw_only=True)
