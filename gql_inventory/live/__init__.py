"""Live events: the relay that positions committed movements, the per-process hub that
fans them out to websocket subscribers, and the websocket edge that serves them.

The services need only `LiveEvents` (built with them, run by the app's lifespan)
and the `Hub` type.
"""

from gql_inventory.live.hub import Hub
from gql_inventory.live.runtime import LiveEvents

__all__ = ["Hub", "LiveEvents"]
