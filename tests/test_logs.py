"""Logs: one format for our events and for uvicorn's; client errors are one INFO line."""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from gql_inventory.cli.server import uvicorn_options
from gql_inventory.kit.logs import ACCESS_LOGGER, configure_logging, get_logger
from gql_inventory.settings import Settings
from tests.conftest import ROOT, GraphQLCaller
from tests.support.live import WAIT, free_port


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


# ---------------------------------------------------------------- the access log


@pytest.mark.parametrize("on", [False, True])
def test_access_log_is_off_unless_asked_for(
    json_logs: pytest.CaptureFixture[str], on: bool
) -> None:
    """uvicorn asks `hasHandlers()` once per connection and, when False, builds no record."""
    configure_logging("INFO", json=True, stream=sys.stderr, access_log=on)
    access = logging.getLogger(ACCESS_LOGGER)
    assert access.hasHandlers() is on
    if on:
        access.info('%s - "%s %s HTTP/%s" %d', "127.0.0.1:1", "POST", "/graphql", "1.1", 200)
        (line,) = _lines(json_logs)
        assert line["logger"] == ACCESS_LOGGER
        assert line["event"] == '127.0.0.1:1 - "POST /graphql HTTP/1.1" 200'


def test_serve_runs_uvloop_httptools_and_the_access_log_setting() -> None:
    options = uvicorn_options(Settings(), host="127.0.0.1", port=1, workers=2, reload=False)
    assert (options["loop"], options["access_log"]) == ("uvloop", False)
    assert issubclass(options["http"], HttpToolsProtocol)  # httptools, with our edge guards
    assert options["workers"] == 2
    on = uvicorn_options(Settings(access_log=True), host="h", port=1, workers=1, reload=False)
    assert on["access_log"] is True


@pytest.mark.parametrize("setting", [None, "true"], ids=["default", "ACCESS_LOG=true"])
def test_serve_writes_access_lines_only_with_the_setting(
    database_url: str, tmp_path: Path, setting: str | None
) -> None:
    """A real `gql-inventory serve`: one request, then SIGTERM; its log has the request's
    access line exactly when ACCESS_LOG is on."""
    env = {k: v for k, v in os.environ.items() if k != "ACCESS_LOG"}
    env.update(
        DATABASE_URL=database_url,
        DATA_DIR=str(tmp_path / "pgdata"),
        ADMIN_TOKENS="admin-secret",
        LIVE_EVENTS="false",
        EXPIRY_INTERVAL_SECONDS="0",
        PENDING_PAYMENT_CHECK_INTERVAL_SECONDS="0",
    )
    if setting is not None:
        env["ACCESS_LOG"] = setting
    port = free_port()
    log_path = tmp_path / "serve.log"
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "gql_inventory.cli", "serve", "--port", str(port)],
            env=env,
            cwd=ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            url = f"http://127.0.0.1:{port}"
            deadline = time.monotonic() + WAIT  # a hang guard, not a timing assertion
            while True:
                assert proc.poll() is None, log_path.read_text()
                try:
                    if httpx.get(f"{url}/readyz", timeout=1).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                assert time.monotonic() < deadline, "serve never became ready"
                time.sleep(0.1)
            answer = httpx.post(f"{url}/graphql", json={"query": "{ __typename }"})
            assert answer.json() == {"data": {"__typename": "Query"}}
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(WAIT)
    text = log_path.read_text()
    assert "Application startup complete" in text  # uvicorn's own lines are there
    assert ('"POST /graphql HTTP/1.1" 200' in text) is (setting is not None)
