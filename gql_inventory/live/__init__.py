"""Live events: committed movements -> relay (positions) -> broadcast -> the per-process
hub -> subscribers (the websocket edge that serves them is `gql_inventory.websocket`).

The services need only `LiveEvents` (built with them, run by the app's lifespan)
and the `Hub` type.
"""

from gql_inventory.live.hub import Hub
from gql_inventory.live.runtime import LiveEvents

__all__ = ["Hub", "LiveEvents"]
