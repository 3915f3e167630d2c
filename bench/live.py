"""Websocket stages: fan-out to N subscribers (row 6), memory per idle subscriber (7),
10,000 subscribers on two workers (8), events crossing two processes (9c)."""

from __future__ import annotations

import time

import httpx

from bench.fanout import Clients, Delivery, measure, wait_registered
from bench.floor import percentile
from bench.run import Run
from bench.server import Serve
from bench.table import Row

#: Client processes the subscribers of rows 6-8 are spread over (issue 18: four).
CLIENT_PROCESSES = 4


def _delivery_row(row: Row, delivery: Delivery) -> None:
    """p50/p99 from sending the mutation; from its response in a note."""
    row.throughput = f"{delivery.delivered:,} of {delivery.expected:,} deliveries"
    row.p50_ms = percentile(delivery.from_sent, 0.5)
    row.p99_ms = percentile(delivery.from_sent, 0.99)
    if delivery.from_answer:
        row.notes.append(
            "latency from just before the mutation is sent (includes the mutation); from "
            f"its response: p50 {percentile(delivery.from_answer, 0.5):.1f} ms, "
            f"p99 {percentile(delivery.from_answer, 0.99):.1f} ms"
        )


def _spread(run: Run, server: Serve, sku: str, count: int) -> Clients:
    """`count` subscribers of `sku` over `CLIENT_PROCESSES` processes."""
    per_process = -(-count // CLIENT_PROCESSES)
    return Clients(run.processes, [server.ws_url], sku, count, per_process=per_process)


def _cpu_note(delivery: Delivery, count: int, processes: int) -> str:
    """The server's and the subscriber processes' CPU per delivery, first change to last
    delivery (the machine's cores are shared by both)."""
    per_delivery = 1e6 / max(1, delivery.delivered)
    return (
        f"server CPU is per change ({count:,} deliveries): "
        f"{delivery.server_cpu * per_delivery:.0f} us per delivery; the {processes} subscriber "
        f"processes (on the same cores) used {delivery.client_cpu * per_delivery:.0f} us per "
        "delivery"
    )


def fanout_rows(run: Run) -> None:
    """Rows 6 and 7 on one default `serve`: warm-up, RSS, N idle subscribers, RSS, one
    change at a time to all of them, close them, RSS again."""
    server = run.serve("one")
    sku = run.levels[0].sku
    rounds = 5 if run.quick else 20
    with httpx.Client(base_url=server.base, timeout=60) as client:
        warm = Clients(run.processes, [server.ws_url], sku, 10)
        try:
            warm.wait_open()
            wait_registered(client, warm, sku)
            measure(client, warm, sku, 3)
        finally:
            warm.close()
        time.sleep(2.0)
        rss_before = server.rss()
        count = run.subscribers
        clients = _spread(run, server, sku, count)
        try:
            opened = clients.wait_open()
            status = wait_registered(client, clients, sku)
            time.sleep(2.0)
            rss_with = server.rss()
            delivery = measure(client, clients, sku, rounds, server_cpu=server.cpu)
        finally:
            clients.close()
        time.sleep(3.0)
        rss_after = server.rss()
        # A second wave of as many idle subscribers: memory the first wave gave back to the
        # process's allocators (not to the OS) is reused, so a leak shows as growth here.
        again = _spread(run, server, sku, count)
        try:
            again.wait_open()
            wait_registered(client, again, sku)
            time.sleep(2.0)
            rss_again = server.rss()
        finally:
            again.close()
        time.sleep(3.0)
        rss_final = server.rss()

    row = Row(path=f"one change to {count:,} subscribers, {rounds} changes", clients=f"{count:,}")
    _delivery_row(row, delivery)
    if opened["failed"] or status["with_event"] < count:
        row.notes.append(
            f"{opened['failed']} sockets failed to open; "
            f"{status['with_event']:,} of {count:,} registered"
        )
    row.cpu_ms = delivery.server_cpu * 1000 / rounds
    row.notes.append(_cpu_note(delivery, count, clients.process_count))
    row.goal = "p99 < 50 ms, all delivered"
    row.met = row.p99_ms is not None and row.p99_ms < 50 and delivery.delivered == delivery.expected
    run.rows["6"] = row

    taken = (rss_with - rss_before) / count
    returned = (rss_with - rss_after) / count
    regrown = (rss_again - rss_with) / count
    memory = Row(
        path="server RSS per idle subscriber",
        clients=f"{count:,}",
        throughput=(
            f"{taken:.1f} KiB each; after they left {returned:.1f} KiB each back to the OS; "
            f"a 2nd wave grew RSS {regrown:+.1f} KiB each"
        ),
        goal="< 32 KiB, returned",
    )
    memory.notes.append(
        f"serve RSS {rss_before / 1024:.1f} MiB before, {rss_with / 1024:.1f} MiB with "
        f"{count:,} idle subscribers, {rss_after / 1024:.1f} MiB 3 s after they left, "
        f"{rss_again / 1024:.1f} MiB with a second wave of {count:,}, "
        f"{rss_final / 1024:.1f} MiB after it left. 'Returned': at least 75% of the growth "
        "given back to the OS, or reused by the next wave (it grows RSS by at most 10% of "
        "the first wave's growth): freed memory stays in Python's and glibc's free lists"
    )
    memory.met = taken < 32 and (returned >= 0.75 * taken or regrown <= 0.1 * taken)
    run.rows["7"] = memory


def many_row(run: Run) -> None:
    """Row 8: `run.many` subscribers on `serve --workers 2`, clients over several
    processes; how many receive one change (after all have registered)."""
    server = run.serve("two-workers", workers=2)
    sku = run.levels[0].sku
    count = run.many
    clients = _spread(run, server, sku, count)
    try:
        opened = clients.wait_open(timeout=600)
        with httpx.Client(base_url=server.base, timeout=60) as client:
            status = wait_registered(client, clients, sku, timeout=180)
            delivery = measure(client, clients, sku, 1, wait=30, server_cpu=server.cpu)
    finally:
        clients.close()
    row = Row(path=f"{count:,} subscribers on `serve --workers 2`", clients=f"{count:,}")
    _delivery_row(row, delivery)
    row.throughput = f"{delivery.delivered:,} of {count:,} received the change"
    row.notes.append(
        f"{opened['open']:,} sockets open ({opened['failed']} failed) from "
        f"{clients.process_count} client processes; "
        f"{status['with_event']:,} registered before the measured change"
    )
    row.notes.append(_cpu_note(delivery, count, clients.process_count))
    row.goal = "all receive it"
    row.met = delivery.delivered == count
    run.rows["8"] = row


def crossing_row(run: Run, a: Serve, b: Serve) -> None:
    """Row 9c: a subscriber on process A receives changes committed through process B."""
    sku = run.levels[0].sku
    clients = Clients(run.processes, [a.ws_url], sku, 1)
    try:
        clients.wait_open()
        with httpx.Client(base_url=a.base, timeout=60) as via_a:
            wait_registered(via_a, clients, sku, timeout=30)
        with httpx.Client(base_url=b.base, timeout=60) as via_b:
            delivery = measure(via_b, clients, sku, 5, wait=10)
    finally:
        clients.close()
    row = Row(path="events crossing: change via B, subscriber on A", clients="1")
    _delivery_row(row, delivery)
    row.goal = "crosses"
    row.met = delivery.delivered == delivery.expected and delivery.expected > 0
    row.ratio = "yes" if row.met else "no"
    run.rows["9c"] = row
