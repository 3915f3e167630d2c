"""Logs: one format for our events and for uvicorn's; client errors are one INFO line."""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Iterator

import pytest

from gql_inventory.logs import configure_logging, get_logger
from tests.conftest import GraphQLCaller


@pytest.fixture
def json_logs(capsys: pytest.CaptureFixture[str]) -> Iterator[pytest.CaptureFixture[str]]:
    """Logging set to JSON lines on stderr (captured by `capsys` once the test body calls
    `_start`); back to plain stderr afterwards."""
    yield capsys
    configure_logging("INFO", stream=sys.__stderr__)


def _start() -> None:
    """JSON logs on the current (captured) stderr: called in the test body, where
    `capsys` has replaced `sys.stderr`."""
    configure_logging("INFO", json=True, stream=sys.stderr)


def _lines(capsys: pytest.CaptureFixture[str]) -> list[dict[str, object]]:
    err = capsys.readouterr().err
    return [json.loads(line) for line in err.splitlines() if line.startswith("{")]


def test_our_events_and_uvicorn_records_share_one_json_format(
    json_logs: pytest.CaptureFixture[str],
) -> None:
    _start()
    get_logger("gql_inventory.test").info("stock.reserved", sku="MUG", quantity=2)
    logging.getLogger("uvicorn.error").info("Started server process [%d]", 42)

    ours, uvicorn = _lines(json_logs)
    assert ours["event"] == "stock.reserved"
    assert (ours["sku"], ours["quantity"], ours["level"]) == ("MUG", 2, "info")
    assert uvicorn["event"] == "Started server process [42]"
    assert (uvicorn["logger"], uvicorn["level"]) == ("uvicorn.error", "info")
    assert {"timestamp"} <= ours.keys() & uvicorn.keys()


async def test_client_errors_are_one_info_line_without_traceback(
    json_logs: pytest.CaptureFixture[str], gql: GraphQLCaller
) -> None:
    _start()
    forbidden = await gql("{ stockMovements { edges { node { id } } } }")
    invalid = await gql("{ noSuchField }")
    assert forbidden["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    assert "errors" in invalid

    records = [r for r in _lines(json_logs) if str(r["event"]).startswith("graphql.")]
    assert [(r["event"], r["level"], r["code"]) for r in records] == [
        ("graphql.client_error", "info", "FORBIDDEN"),
        ("graphql.client_error", "info", "GRAPHQL_VALIDATION_FAILED"),
    ]
    assert records[0]["path"] == "stockMovements"
    assert all("exception" not in r for r in records)
