"""The response cache's parts without a database: which requests it may keep, the bounded
store, and the ASGI wrapper in front of a fake app (docs/adr/0012-read-response-cache.md)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterable
from typing import Any
from urllib.parse import urlencode

import httpx
import orjson
import pytest
from starlette.types import Receive, Scope, Send

from gql_inventory.edge.turns import Turns
from gql_inventory.response_cache.asgi import ResponseCache
from gql_inventory.response_cache.operations import ReadOperations
from gql_inventory.response_cache.store import ENTRY_OVERHEAD, ResponseStore, Tag
from gql_inventory.response_cache.trace import trace_of

READ = "query($sku: String!) { variant(sku: $sku) { available } }"


def _body(query: str, **extra: Any) -> bytes:
    return json.dumps({"query": query, **extra}).encode()


@pytest.mark.parametrize(
    ("query", "name", "allowed"),
    [
        (READ, None, True),
        ('{ variants(skus: ["A"]) { sku } products(first: 2) { edges { cursor } } }', None, True),
        ("{ locations { name } product(id: 1) { title } __typename }", None, True),
        ('query Q { ...F } fragment F on Query { variant(sku: "A") { sku } }', None, True),
        ('{ ... on Query { variant(sku: "A") { sku } } ... { locations { id } } }', None, True),
        ('query A { variant(sku: "A") { sku } } query B { stockCursor }', "A", True),
        ('query A { variant(sku: "A") { sku } } query B { stockCursor }', "B", False),
        ('query A { variant(sku: "A") { sku } } query B { stockCursor }', None, False),
        ('query A { variant(sku: "A") { sku } }', "Other", False),
        ("mutation { reserveStock(input: {lines: []}) { userErrors { code } } }", None, False),
        ("subscription { stockChanged { sku } }", None, False),
        ('{ variant(sku: "A") { sku } stockMovements { edges { cursor } } }', None, False),
        ("{ stockCursor }", None, False),
        ("{ __schema { types { name } } }", None, False),
        ("{ ...F } fragment F on Query { orders { edges { cursor } } }", None, False),
        ("{ ...Missing }", None, False),
        ("{ variant(sku: ", None, False),
    ],
)
def test_only_one_query_of_whitelisted_root_fields_is_cacheable(
    query: str, name: str | None, allowed: bool
) -> None:
    operations = ReadOperations()
    assert operations.post(_body(query, operationName=name)) is allowed
    assert operations.post(_body(query, operationName=name)) is allowed  # memoised alike
    assert (
        operations.get(
            urlencode({"query": query, **({"operationName": name} if name else {})}).encode()
        )
        is allowed
    )


@pytest.mark.parametrize(
    "body",
    [
        b"not json",
        b"[]",
        json.dumps([{"query": READ}]).encode(),  # a batch
        json.dumps({"query": READ, "extensions": {"persistedQuery": {}}}).encode(),
        json.dumps({"query": READ, "variables": [1]}).encode(),
        json.dumps({"query": READ, "operationName": 3}).encode(),
        json.dumps({"query": None}).encode(),
    ],
)
def test_bodies_strawberry_would_refuse_or_treat_apart_are_not_cacheable(body: bytes) -> None:
    assert not ReadOperations().post(body)


def test_classifications_are_remembered_within_bounds() -> None:
    operations = ReadOperations(memo_entries=10, memo_text=100)
    for n in range(50):
        assert operations.document(f'{{ v{n}: variant(sku: "A") {{ sku }} }}', None)
    assert len(operations._memo) == 10
    operations.document('{ variant(sku: "A") { sku } }' + " " * 200, None)  # too long to keep
    assert len(operations._memo) == 10


def test_the_store_drops_least_recently_used_entries_past_either_limit() -> None:
    store = ResponseStore(max_entries=3, max_bytes=16 * (ENTRY_OVERHEAD + 200))
    tag: Tag = (1, 1)
    for key in "abcd":
        assert store.put(key, 1, tag, 0, (), (), b"x" * 10)
    assert len(store) == 3
    assert store.get("a", tag) is None  # dropped first
    assert store.get("b", tag) is not None  # now the most recent
    store.put("e", 1, tag, 0, (), (), b"x" * 10)
    assert store.get("c", tag) is None
    assert store.get("b", tag) is not None
    # bytes: a large-ish entry pushes older ones out until the total fits
    small = ResponseStore(max_entries=100, max_bytes=16 * (ENTRY_OVERHEAD + 100))
    for n in range(40):
        small.put(n, 1, tag, 0, (), (), b"y" * 90)
        assert small.bytes <= small.max_bytes
    assert not small.put("huge", 1, tag, 0, (), (), b"z" * small.max_bytes)  # over 1/16
    assert small.get("huge", tag) is None


def test_an_entry_of_another_tag_is_never_returned_and_is_dropped() -> None:
    store = ResponseStore(max_entries=10, max_bytes=1 << 20)
    store.put("k", 1, (1, 5), 0, (), (), b"old")
    assert store.get("k", (2, 5)) is None
    assert len(store) == 0
    assert store.bytes == 0
    assert store.get("k", (1, 5)) is None  # tags never come back, nor does the entry


class FakeView:
    """An ASGI app answering `{"data": {"n": <calls>}}`; reads SQL when told to."""

    def __init__(self) -> None:
        self.calls = 0
        self.database = False
        self.errors = False
        self.variants: list[int] = []  # stock read from the projection
        self.during: FakeReads | None = None  # moves variant 7 while it runs, if set

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        self.calls += 1
        if scope["method"] == "POST":
            while (await receive()).get("more_body"):
                pass
        if self.database:
            trace = trace_of(scope)
            assert trace is not None  # the cache opened it for this request
            trace.note_database_read()
        for variant_id in self.variants:
            trace = trace_of(scope)
            assert trace is not None
            trace.note_stock_read(variant_id)
        if self.during is not None:
            self.during.epoch += 1
            self.during.stamps[7] = self.during.epoch
        data: dict[str, Any] = {"data": {"n": self.calls}}
        if self.errors:
            data["errors"] = [{"message": "no"}]
        body = orjson.dumps(data)
        headers = [
            (b"content-length", str(len(body)).encode()),
            (b"content-type", b"application/json"),
        ]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": body})


class FakeReads:
    """A read model's freshness: the tag in `tags[0]`, variants changed at set epochs."""

    def __init__(self, tags: list[Tag | None]) -> None:
        self.tags = tags
        self.epoch = 0
        self.stamps: dict[int, int] = {}

    def tag(self) -> Tag | None:
        return self.tags[0]

    def changed_since(self, variant_ids: Iterable[int], epoch: int) -> bool:
        return any(self.stamps.get(v, 0) > epoch for v in variant_ids)


def _cache(view: FakeView, tag: list[Tag | None], **store: int) -> ResponseCache:
    return ResponseCache(
        view,
        reads=FakeReads(tag),
        role=lambda auth: "" if auth is None else f"admin:{auth.decode()}",
        store=ResponseStore(
            max_entries=store.get("max_entries", 100), max_bytes=store.get("max_bytes", 1 << 20)
        ),
        operations=ReadOperations(),
    )


async def test_the_wrapper_serves_stored_bytes_until_the_tag_moves() -> None:
    view = FakeView()
    tag: list[Tag | None] = [(1, 1)]
    cache = _cache(view, tag)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=cache), base_url="http://t"
    ) as c:
        body = {"query": READ, "variables": {"sku": "A"}}
        first = await c.post("/graphql", json=body)
        second = await c.post("/graphql", json=body)
        assert first.content == second.content == b'{"data":{"n":1}}'
        assert first.headers == second.headers
        assert view.calls == 1
        admin = await c.post("/graphql", json=body, headers={"Authorization": "x"})
        assert admin.json() == {"data": {"n": 2}}  # another role: its own entry
        got = await c.get("/graphql", params={"query": READ, "variables": '{"sku":"A"}'})
        assert got.json() == {"data": {"n": 3}}
        assert (
            await c.get("/graphql", params={"query": READ, "variables": '{"sku":"A"}'})
        ).json() == {"data": {"n": 3}}
        tag[0] = (2, 1)
        assert (await c.post("/graphql", json=body)).json() == {"data": {"n": 4}}
        tag[0] = None  # untrusted read model: no lookups, nothing kept
        assert (await c.post("/graphql", json=body)).json() == {"data": {"n": 5}}
        assert (await c.post("/graphql", json=body)).json() == {"data": {"n": 6}}
        tag[0] = (3, 1)
        view.database = True
        await c.post("/graphql", json=body)
        view.database, view.errors = False, True
        await c.post("/graphql", json=body)
        view.errors = False
        await c.post("/graphql", content=orjson.dumps(body), headers={"content-type": "text/plain"})
        await c.post("/graphql", json=body, headers={"accept": "multipart/mixed"})
        assert view.calls == 10
        assert (await c.post("/graphql", json=body)).json() == {"data": {"n": 11}}
        assert (await c.post("/graphql", json=body)).json() == {"data": {"n": 11}}


async def test_endless_distinct_variables_do_not_grow_memory() -> None:
    view = FakeView()
    cache = _cache(view, [(1, 1)], max_entries=500, max_bytes=256 * 1024)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=cache), base_url="http://t"
    ) as c:
        for n in range(10_000):
            body = {"query": READ, "variables": {"sku": "A", "pad": n}}
            assert (await c.post("/graphql", json=body)).status_code == 200
            assert len(cache.store) <= 500
            assert cache.store.bytes <= 256 * 1024
    assert view.calls == 10_000
    assert len(cache.store) > 0
    assert len(cache.operations._memo) == 1  # one document, whatever the variables


def test_a_fragment_bomb_is_classified_in_one_visit_per_fragment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Fragments on Query that each spread the next twice: the whitelist walk visits each
    fragment once (n + 1 walks), never the 2**n expansion (it hung the event loop)."""
    from tests.test_edge_graphql import fragment_bomb

    walks = 0
    real = ReadOperations._roots_allowed

    def counting(self: ReadOperations, *args: Any) -> bool:
        nonlocal walks
        walks += 1
        return real(self, *args)

    monkeypatch.setattr(ReadOperations, "_roots_allowed", counting)
    assert ReadOperations().document(fragment_bomb(16), None) is True
    assert walks == 16 + 2  # the operation, then F0 ... F16 once each


async def test_an_entry_is_stale_only_when_a_variant_it_read_changed() -> None:
    view = FakeView()
    view.variants = [7]
    cache = _cache(view, [(1, 1)])
    reads = cache._reads
    assert isinstance(reads, FakeReads)

    def change(variant_id: int) -> None:
        reads.epoch += 1
        reads.stamps[variant_id] = reads.epoch

    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=cache), base_url="http://t"
    ) as c:
        body = {"query": READ, "variables": {"sku": "A"}}
        assert (await c.post("/graphql", json=body)).json() == {"data": {"n": 1}}
        change(8)  # another variant: still a hit
        assert (await c.post("/graphql", json=body)).json() == {"data": {"n": 1}}
        change(7)  # its own: stale, dropped, run again
        assert (await c.post("/graphql", json=body)).json() == {"data": {"n": 2}}
        assert (await c.post("/graphql", json=body)).json() == {"data": {"n": 2}}
        view.during = reads  # variant 7 changes while the next one runs: not kept
        change(7)
        assert (await c.post("/graphql", json=body)).json() == {"data": {"n": 3}}
        view.during = None
        assert (await c.post("/graphql", json=body)).json() == {"data": {"n": 4}}
        assert (await c.post("/graphql", json=body)).json() == {"data": {"n": 4}}
        assert len(cache.store) == 1


async def test_a_streaming_request_is_not_counted_as_a_write() -> None:
    """A long-lived multipart or event-stream request would otherwise keep reads taking
    turns for as long as it stays open (ADR 0021)."""
    view = FakeView()
    cache = _cache(view, [(1, 1)])
    cache.turns = Turns(per_turn=1)
    seen: list[int] = []
    inner = cache.app

    async def watching(scope: Scope, receive: Receive, send: Send) -> None:
        assert cache.turns is not None
        seen.append(cache.turns.writes)
        await inner(scope, receive, send)

    cache.app = watching
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=cache), base_url="http://t"
    ) as c:
        body = {"query": READ, "variables": {"sku": "A"}}
        for accept in ("multipart/mixed", "text/event-stream"):
            await c.post("/graphql", json=body, headers={"accept": accept})
        await c.post("/graphql", json={"query": "mutation { m }"})
    assert seen == [0, 0, 1]  # the mutation counts, the streams do not


class _QueueWatch(Turns):
    """Turns whose `queued` event is set once a read waits for its turn."""

    def __init__(self, per_turn: int) -> None:
        super().__init__(per_turn)
        self.queued = asyncio.Event()

    def _schedule(self) -> None:
        if self.waiting:
            self.queued.set()
        super()._schedule()


async def test_reads_that_waited_their_turn_look_again_before_running() -> None:
    """While a write runs, reads of one cold key queue for their turns (one a turn here):
    the first runs and keeps its response, the others find it when their turn comes
    instead of each running the operation again; and an entry found before the wait is
    not sent when its variant changed meanwhile (ADR 0021)."""
    view = FakeView()
    view.variants = [7]
    cache = _cache(view, [(1, 1)])
    reads = cache._reads
    assert isinstance(reads, FakeReads)
    turns = cache.turns = _QueueWatch(per_turn=1)
    body = {"query": READ, "variables": {"sku": "A"}}
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=cache), base_url="http://t"
    ) as c:
        with turns.writing():
            other = c.post("/graphql", json={"query": READ, "variables": {"sku": "B"}})
            first, *answers = await asyncio.gather(
                other, *(c.post("/graphql", json=body) for _ in range(6))
            )
            assert first.json() == {"data": {"n": 1}}  # B took this loop iteration's turn
            assert [a.json() for a in answers] == [{"data": {"n": 2}}] * 6
            assert view.calls == 2

            async def change_while_waiting() -> None:
                await turns.queued.wait()
                reads.epoch += 1
                reads.stamps[7] = reads.epoch

            waiting = [c.post("/graphql", json=body) for _ in range(3)]
            *answers, _ = await asyncio.gather(*waiting, change_while_waiting())
        # The first took its turn at once and was sent before the change; the two that
        # waited did not send the stale entry: one ran again, the other found its answer.
        assert [a.json()["data"]["n"] for a in answers] == [2, 3, 3]
        assert view.calls == 3
