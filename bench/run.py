"""What the stages of one benchmark run share: databases, ports, servers, results."""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from bench import _db, wrk
from bench.server import Processes, Serve
from bench.table import Row

RESERVE = (
    "mutation($sku: String!) { reserveStock(input: {lines: [{sku: $sku, quantity: 1}]}) "
    "{ reservation { id } userErrors { code } } }"
)
#: A 200 response holding one of these failed (a GraphQL error, or a userError's code).
MUTATION_FAILURES = ('"errors"', '"code"')


def body(query: str, variables: dict[str, object] | None = None) -> str:
    """The JSON body of a GraphQL POST."""
    return json.dumps({"query": query, "variables": variables or {}}, separators=(",", ":"))


@dataclass
class Run:
    """One `python -m bench` run. `rows` maps a row key (``"1"``, ``"6"``, ``"9b"``...) to
    its table row; stages read earlier rows' figures through `figures` for ratios."""

    processes: Processes
    server: str
    template: str
    levels: list[_db.Level]
    wrk_path: str
    tmp: Path
    duration: float
    quick: bool
    subscribers: int
    many: int
    rows: dict[str, Row] = field(default_factory=dict)
    figures: dict[str, float] = field(default_factory=dict)
    load_cpu: list[str] = field(default_factory=list)
    databases: list[str] = field(default_factory=list)
    _ports: Iterator[int] = field(default_factory=lambda: iter(range(18101, 18200)))
    _servers: dict[str, Serve] = field(default_factory=dict)

    def database(self) -> str:
        """URL of a fresh copy of the seeded template (dropped at the end of the run)."""
        url = asyncio.run(_db.copy_database(self.server, self.template))
        self.databases.append(url)
        return url

    def serve(
        self,
        key: str,
        *,
        workers: int | None = None,
        database: str | None = None,
        extra_env: dict[str, str] | None = None,
    ) -> Serve:
        """The server named `key`, started on first use (other servers are stopped first
        unless they share its `key` prefix, so two never compete for the CPU by accident)."""
        if key in self._servers:
            return self._servers[key]
        for other in list(self._servers):
            if other.split(":")[0] != key.split(":")[0]:
                self.stop(other)
        server = Serve(
            self.processes,
            port=next(self._ports),
            database_url=database or self.database(),
            log_dir=self.tmp,
            workers=workers,
            extra_env=extra_env,
        )
        self._servers[key] = server
        server.wait_ready()
        return server

    def free_port(self) -> int:
        """A port of the run's range no server of it uses (e.g. for a webhook receiver)."""
        return next(self._ports)

    def stop(self, key: str) -> None:
        """Stop the server named `key`, if running."""
        server = self._servers.pop(key, None)
        if server is not None:
            server.stop()

    def stop_servers(self) -> None:
        """Stop every server."""
        for key in list(self._servers):
            self.stop(key)

    @property
    def warmup(self) -> float:
        """Seconds of load before each measured wrk run (not counted)."""
        return 1.0 if self.quick else 2.0

    def script(self, name: str, bodies: Sequence[str], markers: Sequence[str]) -> Path:
        """A wrk Lua script in the run's temp folder."""
        return wrk.write_script(self.tmp, name, bodies, markers=markers)

    def load(
        self, servers: Sequence[Serve], script: Path, connections: int
    ) -> tuple[list[wrk.WrkResult], float]:
        """wrk with `connections` (split evenly) on each of `servers` at once, after a
        warm-up; returns the measured results and the servers' CPU seconds meanwhile."""
        per = max(1, connections // len(servers))
        return self._at_once([(s, script, per) for s in servers])

    def load_together(
        self, server: Serve, loads: Sequence[tuple[Path, int]]
    ) -> tuple[list[wrk.WrkResult], float]:
        """One wrk per ``(script, connections)`` of `loads`, all at once on `server`, after a
        warm-up; returns their results in that order and the server's CPU seconds."""
        return self._at_once([(server, script, connections) for script, connections in loads])

    def _at_once(
        self, jobs: Sequence[tuple[Serve, Path, int]]
    ) -> tuple[list[wrk.WrkResult], float]:
        """Every ``(server, script, connections)`` of `jobs` as one wrk, all at once, after
        a warm-up; the results in order and the CPU seconds of the distinct servers."""

        def each(duration: float) -> list[wrk.WrkResult]:
            with concurrent.futures.ThreadPoolExecutor(len(jobs)) as pool:
                futures = [
                    pool.submit(
                        wrk.run,
                        self.wrk_path,
                        server.base + "/graphql",
                        script,
                        connections=connections,
                        duration=duration,
                    )
                    for server, script, connections in jobs
                ]
                try:
                    return [f.result() for f in futures]
                except BaseException:  # Ctrl-C, SIGTERM: the threads wait for wrk to exit
                    wrk.kill_running()
                    raise

        servers = list({id(s): s for s, _, _ in jobs}.values())
        each(self.warmup)
        before = sum(s.cpu() for s in servers)
        results = each(self.duration)
        return results, sum(s.cpu() for s in servers) - before


@dataclass(frozen=True)
class Load:
    """Figures of one load row, several wrk runs (one per server) summed."""

    requests: int
    rate: float
    p50_ms: float
    p99_ms: float
    cpu_ms: float
    wrk_cpu_ms: float
    failed: int


def combine(results: Sequence[wrk.WrkResult], server_cpu: float) -> Load:
    """Sum of rates; latencies: the worst run's (one run: its own); CPU ms per request."""
    requests = sum(r.requests for r in results)
    per = 1000 / requests if requests else 0.0
    return Load(
        requests=requests,
        rate=sum(r.rate for r in results),
        p50_ms=max(r.p50_ms for r in results),
        p99_ms=max(r.p99_ms for r in results),
        cpu_ms=server_cpu * per,
        wrk_cpu_ms=sum(r.cpu_seconds for r in results) * per,
        failed=sum(r.non200 + r.failed + r.socket_errors for r in results),
    )
