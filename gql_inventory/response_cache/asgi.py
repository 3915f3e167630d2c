"""The response cache's ASGI wrapper of the /graphql route (docs/adr/0012-read-response-cache.md).

For a GET or POST whose role and exact request bytes (the POST body, the GET query
string) were answered before at the read model's current tag, and none of whose variants
has changed since (`ReadModel.changed_since`), the stored response is sent as it was,
without running Strawberry. Otherwise the request runs as usual, and its response is
kept when all of these held:

- the read model was trusted when the request arrived (`ReadModel.tag()` not None), its
  tag was still the same after the response, and no variant the request read changed
  since it arrived (no change during the execution);
- the request is one query operation on whitelisted read fields (`operations`);
- no read went to the database (`trace`), and the response is a 200 JSON body
  without errors, sent in one piece.

Role: ``admin:<name>`` for an admin token, else anonymous, as `gql_inventory.context`
derives it, so an admin's answer is never another caller's.

Reads (hits and cacheable misses) take turns with writes (`gql_inventory.edge.turns`,
docs/adr/0021-reads-take-turns.md): every other request through here counts as a write.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Protocol

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gql_inventory.context import admin_name, bearer_token
from gql_inventory.edge.turns import Turns
from gql_inventory.kit.metrics import (
    RESPONSE_CACHE_HITS,
    RESPONSE_CACHE_MISSES,
    RESPONSE_CACHE_STORED,
)
from gql_inventory.response_cache.operations import ReadOperations
from gql_inventory.response_cache.store import CachedResponse, ResponseStore, Tag
from gql_inventory.response_cache.trace import open_trace

if TYPE_CHECKING:
    from gql_inventory.services import Services

_JSON = b"application/json"
#: Bytes a key holds besides the request bytes and the role (tuple, method).
_KEY_OVERHEAD = 64


class Freshness(Protocol):
    """What the cache asks of the read model (`gql_inventory.readmodel.reads.ReadModel`)."""

    @property
    def epoch(self) -> int:
        """Grows with every stock figure taken."""

    def tag(self) -> Tag | None:
        """The catalog-wide tag, None while the read model is not trusted."""

    def changed_since(self, variant_ids: Iterable[int], epoch: int) -> bool:
        """True when a figure of one of `variant_ids` was taken after `epoch`."""


class ResponseCache:
    """ASGI app: `app` (the GraphQL view) behind a cache of read responses.

    `reads` tells freshness: its `tag()` is None while it is not trusted (then every
    request goes to `app`); `role(authorization header or None)` names the caller
    (``""``: anonymous). `store` bounds memory; `operations` picks cacheable requests;
    `turns` (None: off) makes reads take turns while other requests run.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        reads: Freshness,
        role: Callable[[bytes | None], str],
        store: ResponseStore,
        operations: ReadOperations,
        turns: Turns | None = None,
    ) -> None:
        self.app = app
        self.store = store
        self.operations = operations
        self.turns = turns
        self._reads = reads
        self._role = role

    @classmethod
    def build(cls, app: ASGIApp, services: Services) -> ResponseCache | None:
        """The cache in front of `app`, or None when it is off: `RESPONSE_CACHE_ENTRIES`
        or `RESPONSE_CACHE_BYTES` at 0, or no read model (live events or the stock
        projection off). Reads take turns unless `READS_PER_TURN` is 0."""
        settings = services.settings
        reads = services.live.reads if services.live is not None else None
        if reads is None or settings.response_cache_entries <= 0:
            return None
        if settings.response_cache_bytes <= 0:
            return None
        tokens = list(settings.admin_tokens)

        def role(authorization: bytes | None) -> str:
            if authorization is None:
                return ""
            name = admin_name(bearer_token(authorization.decode("latin-1")), tokens)
            return "" if name is None else f"admin:{name}"

        return cls(
            app,
            reads=reads,
            role=role,
            store=ResponseStore(
                max_entries=settings.response_cache_entries,
                max_bytes=settings.response_cache_bytes,
            ),
            operations=ReadOperations(max_tokens=settings.max_tokens),
            turns=Turns(settings.reads_per_turn) if settings.reads_per_turn > 0 else None,
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        method = scope.get("method")
        reads = self._reads
        tag = reads.tag() if scope["type"] == "http" else None
        if tag is None or (method != "POST" and method != "GET"):
            await self.app(scope, receive, send)
            return
        authorization = content_type = accept = None
        for name, value in scope["headers"]:
            if name == b"authorization":
                authorization = value if authorization is None else authorization
            elif name == b"content-type":
                content_type = value if content_type is None else content_type
            elif name == b"accept":
                accept = value if accept is None else accept
        if accept is not None and (b"multipart" in accept or b"event-stream" in accept):
            await self.app(scope, receive, send)  # a stream: not ours, and no write for turns
            return
        if method == "POST":
            if content_type is None or content_type.split(b";", 1)[0].strip().lower() != _JSON:
                await self._other(scope, receive, send)
                return
            raw = await _read_body(receive)
            if raw is None:
                return  # the client left before sending its body
            receive = _replay(raw, receive)
        else:
            raw = scope.get("query_string", b"")
            if not raw:
                await self._other(scope, receive, send)
                return
        role = self._role(authorization)
        key = (method, role, raw)
        found = self._fresh(key, tag)
        if found is None and not (
            self.operations.post(raw) if method == "POST" else self.operations.get(raw)
        ):
            await self._other(scope, receive, send)
            return
        if self.turns is not None and await self.turns.read():
            # It waited: another read may have kept this response, or a variant moved.
            tag = reads.tag()
            if tag is None:
                await self.app(scope, receive, send)
                return
            found = self._fresh(key, tag)
        if found is not None:
            RESPONSE_CACHE_HITS.inc()
            await send(
                {"type": "http.response.start", "status": found.status, "headers": found.headers}
            )
            await send({"type": "http.response.body", "body": found.body})
            return
        RESPONSE_CACHE_MISSES.inc()  # cacheable: an entry is only ever kept for such a read
        arrived = (tag, reads.epoch)
        await self._run_and_keep(scope, receive, send, key, len(raw) + len(role), arrived)

    def _fresh(self, key: tuple[str, str, bytes], tag: Tag) -> CachedResponse | None:
        """The entry under `key` kept at `tag` with none of its variants changed since,
        else None (a stale entry is dropped)."""
        found = self.store.get(key, tag)
        if found is not None and self._reads.changed_since(found.variants, found.epoch):
            self.store.drop(key)
            return None
        return found

    async def _other(self, scope: Scope, receive: Receive, send: Send) -> None:
        """A request that is not a cacheable read: a write for `turns`."""
        if self.turns is None:
            await self.app(scope, receive, send)
            return
        with self.turns.writing():
            await self.app(scope, receive, send)

    async def _run_and_keep(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        key: tuple[str, str, bytes],
        key_bytes: int,
        arrived: tuple[Tag, int],
    ) -> None:
        start: Message | None = None
        chunks: list[bytes] = []
        whole = True

        async def capture(message: Message) -> None:
            nonlocal start, whole
            kind = message["type"]
            if kind == "http.response.start":
                start = message
            elif kind == "http.response.body":
                chunks.append(message.get("body", b""))
                whole = whole and not message.get("more_body", False)
            else:
                whole = False
            await send(message)

        trace = open_trace(scope)
        await self.app(scope, receive, capture)
        if start is None or not whole or trace.database or start["status"] != 200:
            return
        headers = tuple((bytes(k), bytes(v)) for k, v in start.get("headers", ()))
        if (b"content-type", _JSON) not in headers:
            return
        body = b"".join(chunks)
        tag, epoch = arrived
        reads = self._reads
        if b'"errors":' in body or reads.tag() != tag:
            return  # an error (or an alias named errors), or the read model moved on
        variants = tuple(trace.variants)
        if reads.changed_since(variants, epoch):
            return  # a variant it read changed while it ran
        if self.store.put(key, key_bytes + _KEY_OVERHEAD, tag, epoch, variants, headers, body):
            RESPONSE_CACHE_STORED.inc()


async def _read_body(receive: Receive) -> bytes | None:
    """The whole request body, or None when the client disconnected first."""
    chunks = []
    while True:
        message = await receive()
        if message["type"] == "http.request":
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                return b"".join(chunks)
        elif message["type"] == "http.disconnect":
            return None


def _replay(body: bytes, receive: Receive) -> Receive:
    """A `receive` that gives `body` in one message, then whatever `receive` gives."""
    given = False

    async def replay() -> Message:
        nonlocal given
        if not given:
            given = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay
