"""`make bench` (`python -m bench`): every path of issue 11 against `gql-inventory serve`,
next to the raw floor measured in the same run, printed as one Markdown table.

    python -m bench [--duration 8] [--quick] [--only floor,reserve,reads,mixed,fanout,scaling,many]

The database server is `DATABASE_URL`'s when set, else an embedded PostgreSQL in
var/bench-pgdata. Each server gets a fresh database copied from one seeded template (the
demo catalog, 1,000,000 units of every SKU). Load comes from wrk (installed here when
missing and root), subscribers from client processes (`bench.fanout`). Ports 18101-18199.
Every process started is stopped at the end, on Ctrl-C and on errors too.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import signal
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from types import FrameType

from bench import _db, live, mixed, stages, table, wrk
from bench.run import Run
from bench.server import Processes, raise_nofile
from bench.table import Row

ROOT = Path(__file__).resolve().parent.parent
STAGES = ("floor", "reserve", "reads", "mixed", "fanout", "scaling", "many")
#: Table order of the rows, and the stage making each.
ORDER = (
    ("1", "floor"),
    ("2", "floor"),
    ("3", "reserve"),
    ("4", "reserve"),
    ("3h", "reserve"),
    ("3w", "reserve"),
    ("3k", "reserve"),
    ("5a", "reads"),
    ("5b", "reads"),
    ("5c", "reads"),
    ("5d", "reads"),
    ("5e", "reads"),
    ("5f", "reads"),
    ("6", "fanout"),
    ("7", "fanout"),
    ("8", "many"),
    ("9a", "scaling"),
    ("9b", "scaling"),
    ("9c", "scaling"),
    ("10a", "mixed"),
    ("10b", "mixed"),
    ("10c", "mixed"),
    ("10d", "mixed"),
)


def _arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=8.0, help="seconds per load row")
    parser.add_argument(
        "--quick", action="store_true", help="smoke run: 3 s rows, 200 and 1,000 subscribers"
    )
    parser.add_argument("--only", default="", help=f"comma-separated stages of {STAGES}")
    parser.add_argument("--subscribers", type=int, default=None, help="row 6-7 (2,000)")
    parser.add_argument("--many", type=int, default=None, help="row 8 (10,000)")
    parser.add_argument(
        "--redis",
        default=os.environ.get("REDIS_URL", "redis://127.0.0.1:6379"),
        help="BROADCAST_URL of row 9b's two processes",
    )
    args = parser.parse_args()
    unknown = set(filter(None, args.only.split(","))) - set(STAGES)
    if unknown:
        parser.error(f"unknown stage(s) {sorted(unknown)}; stages: {', '.join(STAGES)}")
    if args.quick:
        args.duration = min(args.duration, 3.0)
    args.subscribers = args.subscribers or (200 if args.quick else 2000)
    args.many = args.many or (1000 if args.quick else 10_000)
    return args


def _machine(server: str) -> str:
    cpu = "?"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    commit = subprocess.run(
        ["git", "describe", "--always", "--dirty"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    ).stdout.strip()
    version = asyncio.run(_db.server_version(server))
    return (
        f"machine: {os.cpu_count()} CPUs ({cpu}), {platform.system()} {platform.release()}, "
        f"{version}, Python {platform.python_version()}; commit {commit or '?'}"
    )


def _on_sigterm(_signum: int, _frame: FrameType | None) -> None:
    raise SystemExit(143)


def _stage(run: Run, name: str, redis: str) -> Callable[[], None]:
    return {
        "floor": lambda: stages.floor_rows(run),
        "reserve": lambda: stages.reserve_rows(run),
        "reads": lambda: stages.read_rows(run),
        "mixed": lambda: mixed.mixed_rows(run),
        "fanout": lambda: live.fanout_rows(run),
        "scaling": lambda: stages.scaling_rows(run, redis),
        "many": lambda: live.many_row(run),
    }[name]


def _run_stages(run: Run, chosen: list[str], redis: str) -> list[str]:
    """Run the `chosen` stages in table order; returns the names of those that failed."""
    failed = []
    for name in STAGES:  # in this order: ratios need the earlier rows
        if name not in chosen:
            continue
        began = time.monotonic()
        print(f"-- {name} ...", file=sys.stderr, flush=True)
        try:
            _stage(run, name, redis)()
        except Exception as exc:
            traceback.print_exc()
            failed.append(name)
            for key, stage in ORDER:
                if stage == name and key not in run.rows:
                    run.rows[key] = Row(
                        path=f"({name} stage failed)",
                        clients="-",
                        notes=[f"{type(exc).__name__}: {str(exc)[:300]}"],
                    )
        run.stop_servers()  # each stage starts its servers afresh, on fresh databases
        print(f"   {name} took {time.monotonic() - began:.0f} s", file=sys.stderr, flush=True)
    return failed


def main() -> int:
    """Run the chosen stages and print the table; 1 when a stage failed (a goal not met
    is a result, not a failure: the table says so)."""
    args = _arguments()
    signal.signal(signal.SIGTERM, _on_sigterm)
    raise_nofile()  # inherited by the client processes
    chosen = [s for s in args.only.split(",") if s] or list(STAGES)
    wrk_path = wrk.ensure_wrk()
    processes = Processes()
    server = _db.server_url()
    run: Run | None = None
    started = time.monotonic()
    try:
        with tempfile.TemporaryDirectory(prefix="gqlinv-bench-") as tmp:
            template = asyncio.run(_db.make_template(server))
            levels = asyncio.run(_db.levels(template))
            if len(levels) < 16:
                raise RuntimeError(f"the demo catalog has {len(levels)} SKUs; 16 are needed")
            run = Run(
                processes=processes,
                server=server,
                template=template,
                levels=levels,
                wrk_path=wrk_path,
                tmp=Path(tmp),
                duration=args.duration,
                quick=args.quick,
                subscribers=args.subscribers,
                many=args.many,
                databases=[template],
            )
            failed = _run_stages(run, chosen, args.redis)
            run.stop_servers()
    finally:
        processes.stop_all()
        if run is not None:
            for url in reversed(run.databases):
                try:
                    asyncio.run(_db.drop_database(server, url))
                except Exception as exc:
                    print(f"could not drop {url}: {exc}", file=sys.stderr)
    assert run is not None
    rows = [run.rows[key] for key, _ in ORDER if key in run.rows]
    print()
    print(_machine(server))
    print(
        f"`make bench`: {args.duration:g} s per load row after a {run.warmup:g} s warm-up, "
        f"wrk 2 threads; server CPU = utime+stime of the serve process tree; "
        f"whole run {time.monotonic() - started:.0f} s"
    )
    print()
    print(table.render(rows))
    if run.load_cpu:
        print()
        print("load generator's own CPU next to the server's: " + "; ".join(run.load_cpu))
    if failed:
        print(f"\nstages that failed (see above): {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
