"""`gql-inventory serve` as users run it, in a subprocess; its CPU and memory from /proc.

Every process the benchmark starts is registered with a `Processes`, which ends them all
(SIGTERM to the process group, then SIGKILL) when the run ends, normally or not. Each
child gets its own session (Ctrl-C on the terminal reaches only the orchestrator, which
then stops them in order) and a parent-death signal, so none outlives a killed run.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import resource
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
TOKEN = "bench-admin-token"
_CLK_TCK = os.sysconf("SC_CLK_TCK")
_PR_SET_PDEATHSIG = 1


def raise_nofile() -> int:
    """Raise this process's open-file limit to its hard limit; returns the new limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return hard


def _child_setup() -> None:
    """preexec_fn: most open files allowed, and SIGTERM when the benchmark dies."""
    raise_nofile()
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


class Processes:
    """The children of a benchmark run; `stop_all` ends every one still running."""

    def __init__(self) -> None:
        self._children: list[subprocess.Popen[Any]] = []

    def start(self, command: Sequence[str], **kwargs: Any) -> subprocess.Popen[Any]:
        """`subprocess.Popen(command, **kwargs)` in its own session, registered."""
        process = subprocess.Popen(
            list(command), start_new_session=True, preexec_fn=_child_setup, **kwargs
        )
        self._children.append(process)
        return process

    def stop(self, process: subprocess.Popen[Any], grace: float = 20.0) -> None:
        """SIGTERM `process`'s group, wait up to `grace` seconds, then SIGKILL it."""
        if process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(grace)
        if _group_members(process.pid):  # workers left behind
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(process.pid, signal.SIGKILL)
        if process.poll() is None:
            process.wait()
        if process in self._children:
            self._children.remove(process)

    def stop_all(self) -> None:
        """Stop every registered child, newest first."""
        for process in reversed(list(self._children)):
            self.stop(process, grace=10.0)


def _stats() -> list[tuple[int, list[str]]]:
    """``(pid, fields after the command name)`` of every process in /proc."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            found.append((int(entry.name), stat.rsplit(")", 1)[1].split()))
    return found


def _group_members(pgid: int) -> list[int]:
    """Live processes of process group `pgid` (fields: state, ppid, pgrp, ...)."""
    return [pid for pid, fields in _stats() if int(fields[2]) == pgid and fields[0] != "Z"]


def tree(pid: int) -> list[int]:
    """`pid` and all its live descendants (from /proc/*/stat parent ids)."""
    parents: dict[int, list[int]] = {}
    for child, fields in _stats():
        parents.setdefault(int(fields[1]), []).append(child)
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        todo.extend(parents.get(current, []))
    return found


def cpu_seconds(pid: int) -> float:
    """utime + stime (seconds) of `pid` and its live descendants."""
    total = 0
    for member in tree(pid):
        try:
            fields = Path(f"/proc/{member}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime (fields 14, 15)
    return total / _CLK_TCK


def rss_kib(pid: int) -> int:
    """Resident memory (KiB, VmRSS) of `pid` and its live descendants, summed."""
    total = 0
    for member in tree(pid):
        try:
            status = Path(f"/proc/{member}/status").read_text()
        except OSError:
            continue
        for line in status.splitlines():
            if line.startswith("VmRSS:"):
                total += int(line.split()[1])
    return total


class Serve:
    """One `gql-inventory serve` on 127.0.0.1:`port` (a fresh database, ADMIN_TOKENS set).

    Logs go to `log_dir`/serve-<port>.log. `DATA_DIR` is a folder of its own, so its pid
    file never touches var/. `extra_env` adds settings (e.g. BROADCAST_URL).
    """

    def __init__(
        self,
        processes: Processes,
        *,
        port: int,
        database_url: str,
        log_dir: Path,
        workers: int | None = None,
        extra_env: dict[str, str] | None = None,
    ) -> None:
        self.port = port
        self.base = f"http://127.0.0.1:{port}"
        self.ws_url = f"ws://127.0.0.1:{port}/graphql"
        self.workers = workers
        env = {k: v for k, v in os.environ.items() if k not in ("BROADCAST_URL", "WEB_CONCURRENCY")}
        env.update(
            DATABASE_URL=database_url,
            ADMIN_TOKENS=f"bench={TOKEN}",
            DATA_DIR=str(log_dir / f"serve-{port}" / "pgdata"),
            PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")])),
            **(extra_env or {}),
        )
        command = [sys.executable, "-m", "gql_inventory.cli", "serve", "--port", str(port)]
        if workers is not None:
            command += ["--workers", str(workers)]
        self.log = log_dir / f"serve-{port}.log"
        self._processes = processes
        self._out = self.log.open("w")
        self.process = processes.start(
            command, cwd=ROOT, env=env, stdout=self._out, stderr=subprocess.STDOUT
        )
        self.pid = self.process.pid

    def wait_ready(self, timeout: float = 90.0) -> None:
        """Wait until /readyz answers 200 (every worker started, for several workers).

        Raises `RuntimeError` with the log's tail when it does not, or when serve exits.
        """
        deadline = time.monotonic() + timeout
        with httpx.Client(base_url=self.base, timeout=5) as client:
            while time.monotonic() < deadline:
                if self.process.poll() is not None:
                    break
                with contextlib.suppress(httpx.HTTPError):
                    if client.get("/readyz").status_code == 200:
                        if self.workers and self.workers > 1:
                            time.sleep(3.0)  # the other workers start alongside
                        return
                time.sleep(0.2)
        raise RuntimeError(f"serve on {self.port} did not start:\n{self.tail()}")

    def tail(self, lines: int = 30) -> str:
        """The last `lines` lines of the server's log."""
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])

    def cpu(self) -> float:
        """CPU seconds of the serve process tree so far."""
        return cpu_seconds(self.pid)

    def rss(self) -> int:
        """Resident KiB of the serve process tree."""
        return rss_kib(self.pid)

    def stop(self) -> None:
        """SIGTERM, as `make stop` does; SIGKILL after 20 s."""
        self._processes.stop(self.process)
        self._out.close()


def graphql(
    client: httpx.Client, query: str, variables: dict[str, Any], *, admin: bool = False
) -> dict[str, Any]:
    """POST one operation; returns ``data``. Raises `RuntimeError` on errors."""
    headers = {"Authorization": f"Bearer {TOKEN}"} if admin else {}
    response = client.post(
        "/graphql", json={"query": query, "variables": variables}, headers=headers
    )
    body = response.json()
    if response.status_code != 200 or body.get("errors"):
        raise RuntimeError(f"{response.status_code}: {body}")
    data: dict[str, Any] = body["data"]
    return data


def measure_cpu(servers: Sequence[Serve], work: Callable[[], Any]) -> tuple[Any, float]:
    """Run `work()`; returns its result and the CPU seconds `servers` used meanwhile."""
    before = sum(s.cpu() for s in servers)
    result = work()
    return result, sum(s.cpu() for s in servers) - before
