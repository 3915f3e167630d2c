"""The benchmark's wrk output parser, its Lua scripts and its Markdown table (no timing)."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench import table, wrk
from bench.table import Row

OUTPUT = """Running 3s test @ http://127.0.0.1:18101/graphql
  2 threads and 16 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency   184.21ms   50.12ms   1.50s    70.00%
    Req/Sec    40.12     10.00    60.00     70.00%
  Latency Distribution
     50%  850.00us
     75%  200.00ms
     90%  250.00ms
     99%    1.50s
  230 requests in 3.00s, 50.00KB read
  Socket errors: connect 0, read 1, write 0, timeout 3
  Non-2xx or 3xx responses: 2
Requests/sec:     76.67
Transfer/sec:     16.67KB
BENCH non200=2 failed=5
"""


def test_parse_reads_counts_percentiles_and_failures() -> None:
    result = wrk.parse(OUTPUT)
    assert result.requests == 230
    assert result.seconds == pytest.approx(3.0)
    assert result.rate == pytest.approx(230 / 3)
    assert result.p50_ms == pytest.approx(0.85)
    assert result.p99_ms == pytest.approx(1500.0)
    assert (result.non200, result.failed, result.socket_errors) == (2, 5, 4)
    assert result.ok == 223


def test_parse_without_script_line_uses_wrks_non_2xx_count() -> None:
    text = OUTPUT.replace("BENCH non200=2 failed=5\n", "").replace("2\nRequests", "7\nRequests")
    result = wrk.parse(text)
    assert (result.non200, result.failed) == (7, 0)


def test_parse_clean_run_has_no_failures() -> None:
    text = "\n".join(
        line
        for line in OUTPUT.splitlines()
        if not line.lstrip().startswith(("Socket", "Non-2xx", "BENCH"))
    )
    result = wrk.parse(text)
    assert (result.non200, result.failed, result.socket_errors) == (0, 0, 0)


def test_parse_refuses_other_text() -> None:
    with pytest.raises(ValueError, match="not wrk output"):
        wrk.parse("wrk: unable to connect")


def test_script_holds_bodies_markers_and_token(tmp_path: Path) -> None:
    bodies = ['{"query":"a ]=] b"}', '{"query":"c"}']
    path = wrk.write_script(tmp_path, "s", bodies, markers=('"code"',), token="t0k")
    script = path.read_text()
    assert '[==[{"query":"a ]=] b"}]==]' in script  # long brackets no body closes
    assert '[=[{"query":"c"}]=]' in script
    assert '[=["code"]=]' in script
    assert '"Bearer t0k"' in script
    assert "BENCH non200=%d failed=%d" in script


def test_table_is_markdown_with_footnotes_and_verdicts() -> None:
    rows = [
        Row(path="raw floor", clients="16", throughput=table.rate(1671.4, "tx/s"), p50_ms=9.14),
        Row(
            path="reserveStock | uniform",
            clients="16",
            throughput=table.rate(76.7),
            p99_ms=320.2,
            cpu_ms=4.199,
            ratio=table.ratio(0.0459, "row 1"),
            goal=">= 0.5x row 1",
            met=False,
            notes=["3 requests failed"],
        ),
        Row(path="crossing", clients="1", goal="crosses", met=True),
    ]
    lines = table.render(rows).splitlines()
    assert lines[0].startswith("| path | clients |")
    assert lines[1] == "|" + "|".join(" --- " for _ in table.HEADER) + "|"
    assert lines[2] == "| raw floor | 16 | 1,671 tx/s | 9.1 | - | - | - | - | - |"
    assert lines[3] == (
        "| reserveStock \\| uniform [1] | 16 | 76.7 | - | 320 | 4.20 | 0.05x row 1 "
        "| >= 0.5x row 1 | **no** |"
    )
    assert lines[4].endswith("| crosses | yes |")
    assert lines[-1] == "[1] 3 requests failed"
    assert all(line.count("|") - line.count("\\|") == 10 for line in lines[:5])
