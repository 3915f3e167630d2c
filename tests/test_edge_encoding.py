"""Response bodies are encoded with orjson: the same JSON value strawberry's `json.dumps`
gave, whatever the content (non-ASCII, ints past 64 bits, lone surrogates)."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from gql_inventory.app import encode_json
from tests.support.catalog import Catalog

SAMPLES: list[Any] = [
    {"data": {"variant": {"sku": "MUG", "available": 3}}},
    {"data": {"title": 'Tasse à café — 咖啡杯 ☕ \u2028 "quoted" \\ \n\t\x01'}},
    {"data": {"big": 2**64 + 1, "negative": -(2**70), "max": 2**63 - 1}},
    {"data": {"lone": "bad \ud800 surrogate"}},
    {"data": None, "errors": [{"message": "x", "path": ["a", 0], "extensions": {"n": 1.5}}]},
    [{"data": {"a": []}}, {"data": {"b": {}}}],
]


@pytest.mark.parametrize("data", SAMPLES)
def test_orjson_body_decodes_to_what_json_dumps_gave(data: Any) -> None:
    body = encode_json(data)
    assert isinstance(body, bytes)
    assert json.loads(body) == json.loads(json.dumps(data, separators=(",", ":")))


def test_plain_content_is_byte_for_byte_compact_utf8_json() -> None:
    data = SAMPLES[1]
    expected = json.dumps(data, separators=(",", ":"), ensure_ascii=False).encode()
    assert encode_json(data) == expected


async def test_a_response_with_non_ascii_text_round_trips(
    client: httpx.AsyncClient, catalog: Catalog
) -> None:
    sku = "TASSE-À-CAFÉ-☕"
    response = await client.post(
        "/graphql",
        json={
            "query": "mutation($sku: String!) { reserveStock(input: {lines: "
            "[{sku: $sku, quantity: 1}]}) { userErrors { code sku } } }",
            "variables": {"sku": sku},
        },
    )
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert sku.encode() in response.content  # raw UTF-8, not \\u escapes
    errors = response.json()["data"]["reserveStock"]["userErrors"]
    assert errors == [{"code": "UNKNOWN_SKU", "sku": sku}]


async def test_websocket_messages_stay_text_frames(client: httpx.AsyncClient) -> None:
    """The view's `encode_json` (websocket messages, streamed parts) returns text, so
    strawberry sends text frames; only HTTP bodies are written as bytes."""
    view = client._transport.app.state.graphql  # type: ignore[attr-defined]
    assert view.encode_json({"type": "next", "payload": {"data": {"sku": "☕"}}}) == (
        '{"type":"next","payload":{"data":{"sku":"☕"}}}'
    )
