"""The cluster's processes: PostgreSQL (embedded), PgBouncer, Redis, three `serve`, HAProxy.

Every process is a child started through `bench.server.Processes` (its own session, ended
when the orchestrator dies), on free loopback ports, with its config and log files under
`workdir`. A restarted process keeps its port, so HAProxy, the servers and the clients
find it where it was. PgBouncer refuses to run as root: as root it runs as the embedded
PostgreSQL's system user, which owns the server's socket folder.
"""

from __future__ import annotations

import asyncio
import csv
import io
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from string import Template
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx

from bench.server import Processes, Serve
from gql_inventory.kit.db import EMBEDDED_SYSTEM_USER

TEMPLATES = Path(__file__).resolve().parent / "templates"
#: Waits for a process to come up or go down (seconds): a bound, never a figure.
WAIT = 60.0


def free_port() -> int:
    """A currently free TCP port on 127.0.0.1."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def port_open(port: int) -> bool:
    """True when something accepts TCP connections on 127.0.0.1:`port`."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


async def wait_until(check: Any, what: str, within: float = WAIT) -> None:
    """Poll the callable `check` (sync) every 0.1 s until true; `RuntimeError` after `within`."""
    deadline = time.monotonic() + within
    while not await asyncio.to_thread(check):
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out waiting for {what}")
        await asyncio.sleep(0.1)


def _render(template: str, target: Path, **values: object) -> Path:
    target.write_text(Template((TEMPLATES / template).read_text()).substitute(values))
    return target


@dataclass
class Stack:
    """The whole cluster, its database given (`database` on `postgres_url`'s server).

    `serve_env` adds settings to every `serve`. Call `start` once, `stop` at the end.
    """

    workdir: Path
    postgres_url: str
    database: str
    serves: int = 3
    serve_env: dict[str, str] = field(default_factory=dict)
    processes: Processes = field(default_factory=Processes)
    pgbouncer_port: int = field(default_factory=free_port)
    redis_port: int = field(default_factory=free_port)
    haproxy_port: int = field(default_factory=free_port)
    stats_port: int = field(default_factory=free_port)
    serve_ports: list[int] = field(default_factory=list)
    servers: list[Serve] = field(default_factory=list)
    pgbouncer: PgBouncer | None = None
    _redis: subprocess.Popen[Any] | None = None

    @property
    def url(self) -> str:
        """HAProxy's address: what clients use (``http://127.0.0.1:<port>``)."""
        return f"http://127.0.0.1:{self.haproxy_port}"

    @property
    def pooled_url(self) -> str:
        """The database through PgBouncer (what the servers use)."""
        return f"postgresql://postgres@127.0.0.1:{self.pgbouncer_port}/{self.database}"

    @property
    def direct_url(self) -> str:
        """The database on PostgreSQL itself (checks, migrations)."""
        parts = urlsplit(self.postgres_url)
        return parts._replace(path="/" + self.database).geturl()

    @property
    def redis_url(self) -> str:
        """The broadcast backend of the servers."""
        return f"redis://127.0.0.1:{self.redis_port}/0"

    async def start(self) -> None:
        """Start PgBouncer, Redis, the servers and HAProxy, each waited for."""
        self.workdir.mkdir(parents=True, exist_ok=True)
        await self.start_pgbouncer()
        await self.start_redis()
        self.serve_ports = [free_port() for _ in range(self.serves)]
        self.servers = [self._serve(port) for port in self.serve_ports]
        await asyncio.gather(*(asyncio.to_thread(s.wait_ready) for s in self.servers))
        self._start_haproxy()
        await wait_until(lambda: self.servers_up() == self.serves, "HAProxy to see every server")

    def stop(self) -> None:
        """Stop every process of the cluster (newest first)."""
        self.processes.stop_all()
        if self.pgbouncer is not None:
            self.pgbouncer.remove_files()

    async def start_pgbouncer(self) -> None:
        """Start PgBouncer and wait until it accepts."""
        if self.pgbouncer is None:
            self.pgbouncer = PgBouncer(self.processes, self.postgres_url, self.pgbouncer_port)
        await self.pgbouncer.start()

    async def restart_pgbouncer(self, down_seconds: float = 0.0) -> None:
        """Stop PgBouncer, then after `down_seconds` start it again on the same port."""
        assert self.pgbouncer is not None
        await self.pgbouncer.stop()
        await asyncio.sleep(down_seconds)
        await self.pgbouncer.start()

    # ---------------------------------------------------------------- Redis

    async def start_redis(self) -> None:
        """Start a Redis of the cluster's own (no persistence) and wait until it accepts."""
        folder = self.workdir / "redis"
        folder.mkdir(exist_ok=True)
        command = ["redis-server", "--port", str(self.redis_port), "--bind", "127.0.0.1"]
        command += ["--save", "", "--appendonly", "no", "--dir", str(folder)]
        log = (folder / "redis.log").open("a")
        self._redis = self.processes.start(command, stdout=log, stderr=subprocess.STDOUT)
        await wait_until(lambda: port_open(self.redis_port), "Redis")

    async def restart_redis(self, down_seconds: float = 0.0) -> None:
        """kill -9 Redis (its subscribers and messages in flight are lost), then after
        `down_seconds` start it again on the same port."""
        if self._redis is not None:
            self._redis.kill()
            await asyncio.to_thread(self._redis.wait)
            self.processes.stop(self._redis)  # reaped: only forgets it
        await asyncio.sleep(down_seconds)
        await self.start_redis()

    # ---------------------------------------------------------------- serve, HAProxy

    def _serve(self, port: int, **settings: str) -> Serve:
        env = {
            "DB_STATEMENT_CACHE": "false",
            "BROADCAST_URL": self.redis_url,
            "DB_POOL_SIZE": "5",
            "DB_MAX_OVERFLOW": "5",
            "MAX_CONNECTIONS_PER_CLIENT": "0",  # every connection comes from HAProxy
            "LOG_LEVEL": "WARNING",
            **self.serve_env,
            **settings,
        }
        log = self.workdir / f"serve-{port}.log"
        if log.exists():  # a restart: keep what the killed one wrote
            log.rename(log.with_suffix(f".{int(time.time())}.log"))
        return Serve(
            self.processes,
            port=port,
            database_url=env.pop("DATABASE_URL", self.pooled_url),
            log_dir=self.workdir,
            extra_env=env,
        )

    async def start_direct_serve(self) -> Serve:
        """One more `serve`, outside HAProxy, on PostgreSQL directly with the statement
        cache on (the baseline of what PgBouncer costs); ready. Stop it with `stop()`."""
        serve = self._serve(free_port(), DATABASE_URL=self.direct_url, DB_STATEMENT_CACHE="true")
        await asyncio.to_thread(serve.wait_ready)
        return serve

    async def kill_serve(self, index: int) -> None:
        """kill -9 server `index` (no shutdown of any kind)."""
        server = self.servers[index]
        server.process.send_signal(signal.SIGKILL)
        await asyncio.to_thread(server.process.wait)
        server.stop()  # reaped: only forgets it and closes its log

    async def restart_serve(self, index: int) -> None:
        """Start server `index` again on its port and wait until it is ready."""
        self.servers[index] = self._serve(self.serve_ports[index])
        await asyncio.to_thread(self.servers[index].wait_ready)

    def _start_haproxy(self) -> None:
        lines = [
            f"    server s{n} 127.0.0.1:{port} check" for n, port in enumerate(self.serve_ports)
        ]
        config = _render(
            "haproxy.cfg",
            self.workdir / "haproxy.cfg",
            port=self.haproxy_port,
            stats_port=self.stats_port,
            servers="\n".join(lines),
        )
        log = (self.workdir / "haproxy.log").open("a")
        self.processes.start(
            ["haproxy", "-db", "-f", str(config)], stdout=log, stderr=subprocess.STDOUT
        )

    def server_states(self) -> dict[str, str]:
        """HAProxy's view of each server: ``{"s0": "UP", "s1": "DOWN", ...}`` (its CSV stats)."""
        try:
            body = httpx.get(f"http://127.0.0.1:{self.stats_port}/stats;csv", timeout=5).text
        except httpx.HTTPError:
            return {}
        rows = csv.DictReader(io.StringIO(body.lstrip("# ")))
        return {
            r["svname"]: r["status"]
            for r in rows
            if r["pxname"] == "serves" and r["svname"] not in ("FRONTEND", "BACKEND")
        }

    def servers_up(self) -> int:
        """How many servers HAProxy counts as UP."""
        return sum(1 for state in self.server_states().values() if state == "UP")


class PgBouncer:
    """PgBouncer in transaction mode on 127.0.0.1:`port` before the PostgreSQL server of
    `postgres_url` (any database, user postgres, trust), `pool_size` server connections
    per database. Its files live in a folder of its own under /tmp, readable by the user
    it runs as (a `workdir` may sit in a folder only root can enter, as pytest's do).
    """

    def __init__(
        self, processes: Processes, postgres_url: str, port: int, *, pool_size: int = 40
    ) -> None:
        self.processes = processes
        self.postgres_url = postgres_url
        self.port = port
        self.pool_size = pool_size
        self.folder = Path(tempfile.mkdtemp(prefix="gqlinv-pgbouncer-"))
        self.folder.chmod(0o755)
        self._process: subprocess.Popen[Any] | None = None

    def url(self, database: str) -> str:
        """The libpq URL of `database` through PgBouncer."""
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    async def start(self) -> None:
        """Start it and wait until it accepts connections."""
        server = urlsplit(self.postgres_url)
        auth = self.folder / "users.txt"
        auth.write_text('"postgres" ""\n')
        config = _render(
            "pgbouncer.ini",
            self.folder / "pgbouncer.ini",
            pg_host=parse_qs(server.query).get("host", [server.hostname or "127.0.0.1"])[0],
            pg_port=server.port or 5432,
            port=self.port,
            pool_size=self.pool_size,
            auth_file=auth,
            log=self.folder / "pgbouncer.log",
            pidfile=self.folder / "pgbouncer.pid",
        )
        user = None
        if os.geteuid() == 0:  # PgBouncer refuses to run as root
            user = EMBEDDED_SYSTEM_USER
            for path in (self.folder, *self.folder.iterdir()):
                os.chown(path, *_ids(user))
        self._process = self.processes.start(
            ["pgbouncer", str(config)],
            user=user,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        await wait_until(lambda: port_open(self.port), "PgBouncer")

    async def stop(self) -> None:
        """SIGTERM: PgBouncer's immediate shutdown, every client connection cut."""
        if self._process is not None:
            await asyncio.to_thread(self.processes.stop, self._process)
            self._process = None

    def remove_files(self) -> None:
        """Delete its folder (config, log)."""
        shutil.rmtree(self.folder, ignore_errors=True)


def _ids(user: str) -> tuple[int, int]:
    import pwd

    entry = pwd.getpwnam(user)
    return entry.pw_uid, entry.pw_gid
