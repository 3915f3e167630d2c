"""Rows 10a-10d: a storefront's mix on one `serve` (issue 18): stock reads at 16
connections and reserveStock at 4, each alone and then both at once, in the same run.

A read is `variant(sku) {available}` over every SKU (the response cache answers it while
that variant is unchanged, ADR 0012); a reservation takes 1 unit of one SKU, uniform over
the same SKUs, so reads of the variants just reserved miss. Goals: under the mix, reads
and reserves each keep >= 0.5x their solo rate, and the reserve p99 stays <= 3x its solo
p99 (ADR 0021).
"""

from __future__ import annotations

from bench import table
from bench.run import MUTATION_FAILURES, RESERVE, Run, body, combine
from bench.stages import VARIANT, load_row

READ_CLIENTS = 16
RESERVE_CLIENTS = 4


def mixed_rows(run: Run) -> None:
    """Rows 10a (reads alone), 10b (reserves alone), 10c (reads beside reserves) and
    10d (reserves under the read flood)."""
    server = run.serve("mixed")
    skus = [level.sku for level in run.levels]
    reads = run.script("mixed-reads", [body(VARIANT, {"sku": s}) for s in skus], ('"errors"',))
    reserves = run.script(
        "mixed-reserves", [body(RESERVE, {"sku": s}) for s in skus], MUTATION_FAILURES
    )
    read_solo = combine(*run.load([server], reads, READ_CLIENTS))
    run.rows["10a"] = load_row(
        run, "10a", "mix: `variant(sku) {available}` alone", READ_CLIENTS, read_solo
    )
    reserve_solo = combine(*run.load([server], reserves, RESERVE_CLIENTS))
    run.rows["10b"] = load_row(run, "10b", "mix: reserveStock alone", RESERVE_CLIENTS, reserve_solo)
    (read_result, reserve_result), cpu = run.load_together(
        server, [(reads, READ_CLIENTS), (reserves, RESERVE_CLIENTS)]
    )
    both = read_result.requests + reserve_result.requests
    read_mixed = combine([read_result], cpu * read_result.requests / both if both else 0.0)
    reserve_mixed = combine([reserve_result], 0.0)

    row = load_row(run, "10c", "mix: reads beside reserves (10d)", READ_CLIENTS, read_mixed)
    share = read_mixed.rate / read_solo.rate if read_solo.rate else None
    row.ratio = table.ratio(share, "row 10a")
    row.goal = ">= 0.5x row 10a"
    row.met = None if share is None else share >= 0.5 and read_mixed.failed == 0
    row.cpu_ms = cpu * 1000 / both if both else None
    row.notes.append("server CPU is per request of 10c and 10d together (one process serves both)")
    run.rows["10c"] = row

    row = load_row(
        run, "10d", "mix: reserveStock under the read flood (10c)", RESERVE_CLIENTS, reserve_mixed
    )
    row.cpu_ms = None
    rate_share = reserve_mixed.rate / reserve_solo.rate if reserve_solo.rate else None
    tail = reserve_mixed.p99_ms / reserve_solo.p99_ms if reserve_solo.p99_ms else None
    row.ratio = table.ratio(rate_share, "row 10b") + "; p99 " + table.ratio(tail, "row 10b's p99")
    row.goal = ">= 0.5x row 10b, p99 <= 3x row 10b's"
    row.met = (
        None
        if rate_share is None or tail is None
        else rate_share >= 0.5 and tail <= 3 and reserve_mixed.failed == 0
    )
    run.rows["10d"] = row
