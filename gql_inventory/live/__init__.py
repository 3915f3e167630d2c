"""Live events: the relay that positions committed movements, the per-process hub that
fans them out to websocket subscribers, and the websocket edge that serves them.

The app needs only `live_events_if_enabled` (its lifespan) and the `Hub` type.
"""

from gql_inventory.live.hub import Hub
from gql_inventory.live.lifespan import live_events, live_events_if_enabled

__all__ = ["Hub", "live_events", "live_events_if_enabled"]
