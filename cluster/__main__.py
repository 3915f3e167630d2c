"""`make cluster` (`python -m cluster up`) and `make cluster-drill` (`python -m cluster drill`).

    python -m cluster up [--serves 3]
    python -m cluster drill [--duration 15] [--rate 40] [--json PATH]

Both start the embedded PostgreSQL in var/cluster-pgdata with a fresh database (the demo
catalog; see `cluster.seed`), PgBouncer in transaction mode before it, a Redis of their
own, three `gql-inventory serve` (through PgBouncer, `DB_STATEMENT_CACHE=false`,
`BROADCAST_URL` that Redis) and HAProxy before them. `up` prints HAProxy's URL and runs
until Ctrl-C; `drill` runs the three faults, prints the figures (and writes them as JSON
with --json) and exits 1 when a reservation was lost, a unit sold twice or a subscriber
version missed. Everything started is stopped at the end, on Ctrl-C and on errors too.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import sys
from pathlib import Path

from cluster import drill, seed
from cluster.stack import Stack

ROOT = Path(__file__).resolve().parent.parent


def _arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m cluster")
    parser.add_argument("command", choices=("up", "drill"))
    parser.add_argument("--serves", type=int, default=3, help="serve processes (3)")
    parser.add_argument("--data-dir", type=Path, default=ROOT / "var/cluster-pgdata")
    parser.add_argument("--workdir", type=Path, default=ROOT / "var/cluster")
    parser.add_argument("--units", type=int, default=200, help="units of each drill SKU (200)")
    parser.add_argument("--duration", type=float, default=drill.Options.duration)
    parser.add_argument("--rate", type=float, default=drill.Options.rate)
    parser.add_argument("--clients", type=int, default=drill.Options.clients)
    parser.add_argument("--subscribers", type=int, default=drill.Options.subscribers)
    parser.add_argument(
        "--throughput-seconds", type=float, default=drill.Options.throughput_seconds
    )
    parser.add_argument("--json", type=Path, help="write the figures here too")
    return parser.parse_args()


async def _main(args: argparse.Namespace) -> int:
    main = asyncio.current_task()
    assert main is not None
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, main.cancel)  # stop it all
    server = seed.start_postgres(args.data_dir)
    catalog = await seed.create_database(server, units=args.units)
    stack = Stack(args.workdir, server, catalog.database, serves=args.serves)
    try:
        await stack.start()
        if args.command == "up":
            return await _up(stack)
        return await _drill(stack, catalog, args)
    finally:
        stack.stop()
        await seed.drop_database(server, catalog.database)
        seed.stop_postgres(args.data_dir)


async def _up(stack: Stack) -> int:
    print(f"HAProxy: {stack.url}/graphql  (stats: http://127.0.0.1:{stack.stats_port}/stats)")
    print(f"servers: {', '.join(str(p) for p in stack.serve_ports)}; logs in {stack.workdir}")
    print(f"PgBouncer: {stack.pooled_url}  Redis: {stack.redis_url}")
    print("Ctrl-C stops it all")
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):  # SIGINT too: a background job ignores it
        loop.add_signal_handler(signum, stop.set)
    await stop.wait()
    print("stopping")
    return 0


async def _drill(stack: Stack, catalog: seed.Catalog, args: argparse.Namespace) -> int:
    options = drill.Options(
        duration=args.duration,
        rate=args.rate,
        clients=args.clients,
        subscribers=args.subscribers,
        throughput_seconds=args.throughput_seconds,
    )
    speed = None
    if options.throughput_seconds > 0:
        speed = await drill.throughput(stack, catalog.fast, options)
    # each fault on its own third of the drill SKUs: each sells out late in its phase
    results = [
        await drill.run_fault(stack, catalog.drill[n :: len(drill.FAULTS)], name, options, seed=n)
        for n, name in enumerate(drill.FAULTS)
    ]
    _print(speed, results, options)
    if args.json:
        figures = {
            "throughput": drill.as_dict(speed) if speed else None,
            "faults": [drill.as_dict(r) for r in results],
        }
        args.json.write_text(json.dumps(figures, indent=2))
    bad = [r for r in results if r.lost or r.duplicates or r.missed or r.unanswered]
    return 1 if bad else 0


def _print(
    speed: drill.Throughput | None, results: list[drill.FaultResult], options: drill.Options
) -> None:
    if speed is not None:
        print(
            f"\nreserveStock from wrk, {options.throughput_clients} connections, "
            f"{options.throughput_seconds:g} s each, the better of two runs:"
        )
        direct = speed.one_server_direct / speed.one_server if speed.one_server else 0.0
        rows = (
            ("HAProxy, 3 serve", speed.haproxy, speed.ratio),
            ("one serve (PgBouncer)", speed.one_server, 1.0),
            ("one serve on PostgreSQL directly, cache on", speed.one_server_direct, direct),
        )
        print("| target | reserves/s | against one serve | reservations per commit |")
        print("| --- | --- | --- | --- |")
        for (name, rate, ratio), per_commit in zip(rows, speed.per_commit, strict=True):
            print(f"| {name} | {rate:,.0f} | {ratio:.2f}x | {per_commit:g} |")
    print(
        f"\nfaults: {options.rate:g} reserves/s from {options.clients} clients, "
        f"{options.duration:g} s of load, {options.subscribers} subscribers:"
    )
    print(
        "| fault | answered (held / refused) | before / after the fault | retried tries "
        "| lost | duplicates | missed | subscribers per server | resumed | down s |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for r in results:
        print(
            f"| {r.fault} | {r.held + r.refused} ({r.held} / {r.refused}) "
            f"| {r.answered_before} / {r.answered_after} | {r.retried_tries} | {r.lost} "
            f"| {r.duplicates} | {r.missed} | {'/'.join(map(str, r.subscribers_per_server))} "
            f"| {r.resumed_subscribers} | {r.fault_seconds} |"
        )
        if r.unanswered or r.subscriber_errors:
            print(f"  unanswered: {r.unanswered}; subscriber errors: {r.subscriber_errors}")


if __name__ == "__main__":
    try:
        sys.exit(asyncio.run(_main(_arguments())))
    except (KeyboardInterrupt, asyncio.CancelledError):
        sys.exit(130)
