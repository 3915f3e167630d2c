"""Delivery worker throughput, before vs after in one run (run by hand, not a test).

    [DATABASE_URL=postgresql://...] .venv/bin/python -m bench.deliver_batch \
        [--messages 3000] [--endpoints 3] [--ref main]

One database (migrated to head), `--endpoints` enabled endpoints posting to
`bench.receiver` (a process answering 204 at once, keep-alive). For each variant: the
worktree's code ("after") and the code of git `--ref` ("before", extracted with `git
archive` to a temporary folder): `--messages` PENDING webhook messages are written, then a
child process with that variant's `gql_inventory` on its path runs the app's delivery
worker (`delivery_worker`, its loop, default settings) until none is PENDING. Prints
messages/s (wall) and the child's CPU ms per message (`time.process_time`: the worker,
its HTTP client and driver; PostgreSQL's and the receiver's CPU not), and the outbox's
figures (every message SUCCEEDED, one attempt each).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import asyncpg

ROOT = Path(__file__).resolve().parent.parent
sys.path.append(str(ROOT))  # after PYTHONPATH: the child runs the variant's code

from bench._db import BENCH_SECRETS_KEY, add_endpoints, fresh_database  # noqa: E402


async def child(url: str, expect: int) -> None:
    """Deliver every PENDING message with this path's worker; print one JSON line."""
    from pydantic import SecretStr

    from gql_inventory.kit.logs import configure_logging
    from gql_inventory.outbound.worker import delivery_worker
    from gql_inventory.services import Services
    from gql_inventory.settings import Settings

    settings = Settings(
        webhook_secrets_key=SecretStr(BENCH_SECRETS_KEY),
        webhook_allow_private_urls=True,
        live_events=False,
        log_level="WARNING",
    )
    configure_logging("INFO", json=True, access_log=False)  # as the app: DEBUG dropped
    services = Services.create(settings, url, live_events=False)
    watch = await asyncpg.connect(url)
    started, cpu = time.perf_counter(), time.process_time()
    async with delivery_worker(services):
        pending = "SELECT count(*) FROM outbox_messages WHERE status = 'PENDING'"
        while True:
            if not await watch.fetchval(pending):
                break
            await asyncio.sleep(0.05)
    wall, cpu = time.perf_counter() - started, time.process_time() - cpu
    await watch.close()
    await services.close()
    print(json.dumps({"wall": wall, "cpu": cpu, "messages": expect}), flush=True)


async def put_messages(url: str, count: int) -> None:
    """`count` PENDING webhook messages, spread over the endpoints."""
    conn = await asyncpg.connect(url)
    try:
        await conn.execute(
            """
            INSERT INTO outbox_messages (channel, endpoint_id, message_id, topic, payload,
                                         next_attempt_at)
            SELECT 'WEBHOOK', e.id, 'msg_' || md5(random()::text), 'INVENTORY_LEVEL_UPDATED',
                   '{"type":"inventory.level_updated","timestamp":"2026-01-01T00:00:00Z",'
                   || '"data":{"sku":"SKU-' || n || '","available":' || n || '}}', now()
            FROM generate_series(1, $1) n
            JOIN LATERAL (SELECT id FROM webhook_endpoints ORDER BY id
                          OFFSET n % (SELECT count(*) FROM webhook_endpoints) LIMIT 1) e
              ON true
            """,
            count,
        )
    finally:
        await conn.close()


async def figures(url: str) -> str:
    conn = await asyncpg.connect(url)
    try:
        rows = await conn.fetch(
            "SELECT status, attempts, count(*) AS n FROM outbox_messages GROUP BY 1, 2"
        )
        await conn.execute("DELETE FROM outbox_messages")
    finally:
        await conn.close()
    return ", ".join(f"{r['status']} x{r['attempts']}: {r['n']}" for r in rows)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=3000)
    parser.add_argument("--endpoints", type=int, default=3)
    parser.add_argument("--ref", default="main", help="git ref of the 'before' code")
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        await child(args.child, args.messages)
        return
    _, url = await fresh_database("gqlinv_bench_deliver")
    port = free_port()
    receiver = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bench.receiver", "--port", str(port), cwd=ROOT
    )
    await asyncio.sleep(1.0)
    await add_endpoints(
        url, args.endpoints, ["INVENTORY_LEVEL_UPDATED"], f"http://127.0.0.1:{port}"
    )
    rows = []
    with tempfile.TemporaryDirectory() as before:
        archive = (
            await asyncio.to_thread(
                subprocess.run,
                ["git", "archive", args.ref, "gql_inventory", "bench"],
                cwd=ROOT,
                check=True,
                capture_output=True,
            )
        ).stdout
        await asyncio.to_thread(
            subprocess.run, ["tar", "-x", "-C", before], input=archive, check=True
        )
        for label, path in ((f"before ({args.ref})", before), ("after", str(ROOT))):
            await put_messages(url, args.messages)
            env = {**os.environ, "PYTHONPATH": path}
            script = str(ROOT / "bench/deliver_batch.py")
            out = await asyncio.to_thread(
                subprocess.run,
                [sys.executable, script, "--child", url, "--messages", str(args.messages)],
                cwd=ROOT,
                env=env,
                check=True,
                capture_output=True,
                text=True,
            )
            result = json.loads(out.stdout.strip().splitlines()[-1])
            rows.append((label, result, await figures(url)))
    receiver.terminate()
    await receiver.wait()
    print(f"{'code':>14} {'messages':>8} {'msg/s':>7} {'CPU ms/msg':>10}  outbox")
    for label, r, seen in rows:
        print(
            f"{label:>14} {r['messages']:>8} {r['messages'] / r['wall']:7.0f} "
            f"{r['cpu'] / r['messages'] * 1000:10.3f}  {seen}"
        )


if __name__ == "__main__":
    asyncio.run(main())
