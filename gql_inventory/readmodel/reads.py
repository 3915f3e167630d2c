"""The read model of one process: the stock projection and the catalog snapshot, and
when each may be trusted by reads (docs/adr/0009-stock-projection.md).

- Stock figures (`stock()`) come from the projection only while live events run, the
  projection has been loaded, and the hub is in sync (subscribed to the broadcast
  backend and caught up from the ledger since its last (re)subscription). They are
  then as of the hub's position, plus every movement this process committed
  (applied before the mutation's response: read-your-writes).
- Catalog rows (`catalog()`) come from the snapshot while live events run and the
  snapshot's `catalog_version` was confirmed equal to the database's within
  `max_age` seconds (it is checked every `poll_seconds`), and no catalog change
  committed by this process is waiting for its reload. A row the snapshot lacks
  (created since) is read from the database by the caller.

Otherwise readers get None and read the database, as without live events.

Freshness, for the response cache (docs/adr/0012-read-response-cache.md): `epoch` counts
every stock figure taken, and each variant remembers the epoch of its last one
(`changed_since`); `tag()` is ``(generation, catalog version)``, where `generation` counts
what changes every answer at once (a new snapshot, a local catalog change). An answer that
read variants V at epoch E stays right while the tag is unchanged and no variant of V
changed since E.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING

from gql_inventory.kit.logs import get_logger
from gql_inventory.live.wire import StockEvent
from gql_inventory.readmodel.catalog import CatalogSnapshot, catalog_version, load_snapshot
from gql_inventory.readmodel.projection import StockProjection

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncEngine

    from gql_inventory.stock.ledger import AppliedMovement

log = get_logger(__name__)

#: What one movement says of its level: (level id, variant id, location id, on hand,
#: reserved, version), as `StockProjection.apply` takes them.
_Figures = tuple[int, int, int, int, int, int, int, int, int, int]


class ReadModel:
    """Projection + catalog snapshot of one process, refreshed by `run()`.

    `hub_ready` is set once the hub knows its starting ledger position; `in_sync()`
    tells whether the hub is subscribed and caught up. Durations in seconds.
    """

    def __init__(
        self,
        engine: AsyncEngine,
        *,
        hub_ready: asyncio.Event,
        in_sync: Callable[[], bool],
        poll_seconds: float,
    ) -> None:
        self.projection = StockProjection()
        self.snapshot: CatalogSnapshot | None = None
        self.poll_seconds = poll_seconds
        self.max_age = max(3 * poll_seconds, 3.0)
        self.loaded = asyncio.Event()
        #: Grows by one with every stock figure taken (never goes back).
        self.epoch = 0
        #: Grows by one with every new snapshot and local catalog change.
        self.generation = 0
        self._stamps: dict[int, int] = {}  # variant id -> epoch of its last figure taken
        self._engine = engine
        self._hub_ready = hub_ready
        self._in_sync = in_sync
        self._running = False
        self._checked_at = 0.0
        self._changes = 0  # catalog changes committed here (`catalog_changed`)
        self._changes_loaded = 0  # ... of which the snapshot reflects
        self._wake = asyncio.Event()
        self._recording: list[_Figures] | None = None  # applied while a load runs

    # ------------------------------------------------------------ readers

    def stock(self) -> StockProjection | None:
        """The projection when stock reads may trust it, else None (read the database)."""
        if self._running and self.loaded.is_set() and self._in_sync():
            return self.projection
        return None

    def catalog(self) -> CatalogSnapshot | None:
        """The catalog snapshot when reads may trust it, else None (read the database)."""
        snapshot = self.snapshot
        if (
            snapshot is None
            or not self._running
            or self._changes != self._changes_loaded
            or time.monotonic() - self._checked_at > self.max_age
        ):
            return None
        return snapshot

    def tag(self) -> tuple[int, int] | None:
        """``(generation, catalog version)`` while both stock and catalog reads may trust
        the read model, else None. Equal tags mean every catalog answer is unchanged; a
        stock answer also needs its variants unchanged (`changed_since`)."""
        snapshot = self.catalog()
        if snapshot is None or self.stock() is None:
            return None
        return (self.generation, snapshot.version)

    def changed_since(self, variant_ids: Iterable[int], epoch: int) -> bool:
        """True when a figure of any of `variant_ids` was taken after `epoch` (an `epoch`
        value read earlier)."""
        stamps = self._stamps
        return any(stamps.get(variant_id, 0) > epoch for variant_id in variant_ids)

    # ------------------------------------------------------------ writers

    def apply_event(self, event: StockEvent) -> None:
        """A stock event the hub dispatched (in position order)."""
        self._apply(
            (
                event.stock_level_id,
                event.variant_id,
                event.location_id,
                event.on_hand,
                event.reserved,
                event.version,
                event.damaged,
                event.quality_control,
                event.safety_stock,
                event.backordered,
            )
        )

    def apply_movements(self, movements: Sequence[AppliedMovement]) -> None:
        """Movements this process just committed (before its response is sent)."""
        for m in movements:
            self._apply(
                (
                    m.stock_level_id,
                    m.variant_id,
                    m.location_id,
                    m.on_hand_after,
                    m.reserved_after,
                    m.version,
                    m.damaged_after,
                    m.quality_control_after,
                    m.safety_stock_after,
                    m.backordered_after,
                )
            )

    def _apply(self, figures: _Figures) -> None:
        if self.projection.apply(*figures):  # not an echo of figures already held
            self.epoch += 1
            self._stamps[figures[1]] = self.epoch
        if self._recording is not None:
            self._recording.append(figures)

    def catalog_changed(self) -> None:
        """This process committed a catalog change: read the catalog from the database
        until a snapshot loaded after now is in place (read-your-writes)."""
        self._changes += 1
        self.generation += 1
        self._wake.set()

    # ------------------------------------------------------------ lifecycle

    async def run(self) -> None:
        """Until cancelled: once the hub is ready, load; then check the catalog version
        every `poll_seconds` (or when woken) and reload when it moved."""
        self._running = True
        try:
            await self._hub_ready.wait()
            while True:
                try:
                    await self.refresh()
                except asyncio.CancelledError:
                    raise
                except Exception as exc:
                    log.warning("reads.refresh_failed", error=repr(exc))
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(self.poll_seconds):
                        await self._wake.wait()
                self._wake.clear()
        finally:
            self._running = False

    async def refresh(self) -> None:
        """Load the snapshot when there is none, a local change waits, or the database's
        catalog version differs from the snapshot's."""
        changes = self._changes
        snapshot = self.snapshot
        if snapshot is not None and changes == self._changes_loaded:
            asked = time.monotonic()
            async with self._engine.connect() as conn:
                version = await catalog_version(conn)
            if version == snapshot.version:
                self._checked_at = asked
                return
        started = time.monotonic()
        self._recording = []
        try:
            snapshot, levels = await load_snapshot(self._engine)
            # A fresh projection from the snapshot, then what arrived while it loaded
            # (older figures among them change nothing): levels deleted or rewound in
            # the database (a restore) do not survive a reload.
            projection = StockProjection(snapshot.location_order)
            projection.merge(levels)
            for figures in self._recording:
                projection.apply(*figures)
        finally:
            self._recording = None
        self.projection = projection
        self.snapshot = snapshot
        self.generation += 1
        self._changes_loaded = changes
        self._checked_at = started
        self.loaded.set()
        log.info(
            "reads.loaded",
            catalog_version=snapshot.version,
            variants=len(snapshot.variants),
            levels=len(levels),
            seconds=round(time.monotonic() - started, 3),
        )
