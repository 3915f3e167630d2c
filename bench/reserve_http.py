"""reserveStock through `serve` over HTTP with wrk, group commit off vs on (run by hand).

    DATABASE_URL=postgresql://... .venv/bin/python -m bench.reserve_http [--seconds 10]
        [--port 18200]

For each setting of `RESERVE_BATCH_MAX` (0: one transaction per call; 256: group
commit) it starts `gql-inventory serve` (one worker, as users run it) on a fresh
database seeded like `bench.reserve_batch`, warms it up, then runs wrk with 16
connections on 23 SKUs (random SKU per request) and 64 connections on one SKU. Server
CPU per request is the serve process's utime + stime (/proc/<pid>/stat) over the run,
divided by the requests wrk completed.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench._db import fresh_database  # noqa: E402
from bench.reserve_batch import SKUS, seed  # noqa: E402

LUA = """
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
local hot = %s
local q = 'mutation($sku: String!) { reserveStock(input: {lines: [{sku: $sku, quantity: 1}]}) '
  .. '{ reservation { id } userErrors { code } } }'
request = function()
  local n = hot and 1 or math.random(1, %d)
  return wrk.format(nil, "/graphql", nil,
    '{"query": "' .. q .. '", "variables": {"sku": "SKU-' .. n .. '"}}')
end
"""


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process and its waited-for children, in seconds."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = sum(int(f) for f in fields[11:15])
    return ticks / os.sysconf("SC_CLK_TCK")


def wrk(port: int, clients: int, seconds: float, hot: bool) -> tuple[float, str, str]:
    """(requests/s, p50, p99) of one wrk run."""
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write(LUA % ("true" if hot else "false", SKUS))
    out = subprocess.run(
        [
            "wrk",
            "-t",
            "2",
            "-c",
            str(clients),
            "-d",
            f"{int(seconds)}s",
            "--latency",
            "-s",
            script.name,
            f"http://127.0.0.1:{port}",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    os.unlink(script.name)
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    p50 = re.search(r"50%\s+(\S+)", out).group(1)  # type: ignore[union-attr]
    p99 = re.search(r"99%\s+(\S+)", out).group(1)  # type: ignore[union-attr]
    if "Non-2xx" in out:
        raise SystemExit(out)
    return rate, p50, p99


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--port", type=int, default=18200)
    args = parser.parse_args()
    print(f"{'scenario':>20} {'batch':>6} {'req/s':>7} {'p50':>8} {'p99':>8} {'CPU ms/req':>10}")
    for batch in (0, 256):
        _, url = await fresh_database("gqlinv_bench_http")
        await seed(url)
        env = {
            **os.environ,
            "DATABASE_URL": url,
            "RESERVE_BATCH_MAX": str(batch),
            "EXPIRY_INTERVAL_SECONDS": "0",
            "PENDING_PAYMENT_CHECK_INTERVAL_SECONDS": "0",
        }
        server = subprocess.Popen(  # noqa: ASYNC220  # a long-lived child, not awaited
            [sys.executable, "-m", "gql_inventory.cli", "serve", "--port", str(args.port)],
            env=env,
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            async with httpx.AsyncClient() as client:
                for _ in range(200):
                    try:
                        if (await client.get(f"http://127.0.0.1:{args.port}/readyz")).is_success:
                            break
                    except httpx.HTTPError:
                        pass
                    await asyncio.sleep(0.1)
            wrk(args.port, 16, 2, hot=False)  # warm-up
            for label, clients, hot in (
                ("16 clients, 23 SKUs", 16, False),
                ("64 clients, 1 SKU", 64, True),
            ):
                cpu = cpu_seconds(server.pid)
                rate, p50, p99 = wrk(args.port, clients, args.seconds, hot)
                used = cpu_seconds(server.pid) - cpu
                requests = rate * args.seconds
                print(
                    f"{label:>20} {batch:>6} {rate:7.0f} {p50:>8} {p99:>8} "
                    f"{used / requests * 1000:10.2f}"
                )
        finally:
            server.terminate()
            server.wait(30)


if __name__ == "__main__":
    asyncio.run(main())
