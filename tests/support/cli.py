"""Running the `gql-inventory` command line inside a test (with the `cli_env` fixture of
tests/support/fixtures.py pointing it at the test database)."""

from __future__ import annotations

import asyncio

from typer.testing import CliRunner, Result

from gql_inventory import cli


async def run_cli(*args: str) -> Result:
    """The command line with `args`, in a thread (it runs its own event loop)."""
    return await asyncio.to_thread(CliRunner().invoke, cli.app, list(args))
