"""wrk (the C HTTP load generator): install check, Lua scripts, a run, its parsed output.

Every script POSTs GraphQL bodies to /graphql, rotating over a list (one body per SKU,
each wrk thread starting elsewhere in it), and checks every response in wrk's
`response()` hook: a status other than 200, or a body holding any of the script's
failure markers (``"errors"``, ``"code"`` of a userError), is counted; the counts are
printed by `done()` as one ``BENCH non200=N failed=M`` line that `parse` reads.
"""

from __future__ import annotations

import os
import re
import resource
import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

_LUA = """
local bodies = {
%(bodies)s
}
local markers = {
%(markers)s
}
local headers = {["Content-Type"] = "application/json"%(auth)s}
local threads = {}

function setup(thread)
  thread:set("index", #threads)
  table.insert(threads, thread)
end

function init(args)
  n = index * 7
  non200 = 0
  failed = 0
end

function request()
  n = n + 1
  return wrk.format("POST", "%(path)s", headers, bodies[(n %% #bodies) + 1])
end

function response(status, hdrs, body)
  if status ~= 200 then
    non200 = non200 + 1
    return
  end
  for _, marker in ipairs(markers) do
    if string.find(body, marker, 1, true) then
      failed = failed + 1
      return
    end
  end
end

function done(summary, latency, requests)
  local a, b = 0, 0
  for _, t in ipairs(threads) do
    a = a + t:get("non200")
    b = b + t:get("failed")
  end
  io.write(string.format("BENCH non200=%%d failed=%%d\\n", a, b))
end
"""


#: wrk processes running now (`kill_running` ends them when a run is interrupted).
_RUNNING: set[subprocess.Popen[str]] = set()


def kill_running() -> None:
    """SIGKILL every wrk still running (they are children of this process)."""
    for process in list(_RUNNING):
        if process.poll() is None:
            process.kill()


class WrkMissing(RuntimeError):
    """wrk is not installed and cannot be installed by this process (not root)."""


def ensure_wrk() -> str:
    """The path of wrk, installing the Debian package first when missing and root.

    Raises `WrkMissing` with the command to run when it is missing and this process
    is not root, or when apt-get fails.
    """
    found = shutil.which("wrk")
    if found:
        return found
    if os.geteuid() != 0:
        raise WrkMissing("wrk is not installed: run `sudo apt-get install -y wrk`, then again")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    install = ["apt-get", "install", "-y", "wrk"]
    if subprocess.run(install, env=env, check=False).returncode != 0:
        subprocess.run(["apt-get", "update"], env=env, check=False)
        subprocess.run(install, env=env, check=False)
    found = shutil.which("wrk")
    if not found:
        raise WrkMissing("`apt-get install -y wrk` did not install wrk: install it by hand")
    return found


def _lua_string(text: str) -> str:
    """`text` as a Lua long-bracket literal (no escaping inside)."""
    level = 1
    while f"]{'=' * level}]" in text:
        level += 1
    return f"[{'=' * level}[{text}]{'=' * level}]"


def write_script(
    directory: Path,
    name: str,
    bodies: Sequence[str],
    *,
    markers: Sequence[str] = ('"errors"',),
    token: str | None = None,
    path: str = "/graphql",
) -> Path:
    """Write a Lua script sending `bodies` (JSON texts) in rotation; returns its path.

    `markers`: substrings that make a 200 response count as failed. `token`: sent as
    ``Authorization: Bearer``.
    """
    auth = f', ["Authorization"] = "Bearer {token}"' if token else ""
    script = _LUA % {
        "bodies": ",\n".join(_lua_string(b) for b in bodies),
        "markers": ",\n".join(_lua_string(m) for m in markers),
        "auth": auth,
        "path": path,
    }
    target = directory / f"{name}.lua"
    target.write_text(script)
    return target


@dataclass(frozen=True)
class WrkResult:
    """A wrk run: completed requests, seconds, latency percentiles (ms), failures, and
    wrk's own CPU seconds (user + system)."""

    requests: int
    seconds: float
    p50_ms: float
    p99_ms: float
    non200: int
    failed: int
    socket_errors: int
    cpu_seconds: float = 0.0

    @property
    def rate(self) -> float:
        """Completed requests per second."""
        return self.requests / self.seconds if self.seconds else 0.0

    @property
    def ok(self) -> int:
        """Requests that got a 200 without a failure marker."""
        return self.requests - self.non200 - self.failed


_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0}


def _ms(value: str, unit: str) -> float:
    return float(value) * _UNITS[unit]


def parse(output: str) -> WrkResult:
    """Read wrk's text output (with ``--latency`` and our script's ``BENCH`` line).

    Raises `ValueError` when the summary line ("N requests in Xs") is missing.
    """
    summary = re.search(r"(\d+) requests in ([\d.]+)(us|ms|s|m)", output)
    if summary is None:
        raise ValueError(f"not wrk output: {output[:500]!r}")
    percentiles = {
        m.group(1): _ms(m.group(2), m.group(3))
        for m in re.finditer(r"^\s+(50|99)(?:\.0+)?%\s+([\d.]+)(us|ms|s|m)\s*$", output, re.M)
    }
    errors = re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output
    )
    bench = re.search(r"BENCH non200=(\d+) failed=(\d+)", output)
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    non200 = int(bench.group(1)) if bench else int(non2xx.group(1)) if non2xx else 0
    return WrkResult(
        requests=int(summary.group(1)),
        seconds=_ms(summary.group(2), summary.group(3)) / 1000,
        p50_ms=percentiles.get("50", 0.0),
        p99_ms=percentiles.get("99", 0.0),
        non200=non200,
        failed=int(bench.group(2)) if bench else 0,
        socket_errors=sum(int(g) for g in errors.groups()) if errors else 0,
    )


def run(
    wrk: str, url: str, script: Path, *, connections: int, duration: float, threads: int = 2
) -> WrkResult:
    """Run wrk against `url` (e.g. ``http://127.0.0.1:18101/graphql``) and parse it.

    The child's CPU comes from `os.wait4` on it. Raises `RuntimeError` when wrk fails.
    """
    command = [
        wrk,
        f"-t{min(threads, connections)}",
        f"-c{connections}",
        f"-d{max(1, round(duration))}s",
        "--timeout",
        "30s",
        "--latency",
        "-s",
        str(script),
        url,
    ]
    with tempfile.TemporaryFile("w+") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, text=True)
        _RUNNING.add(process)
        try:
            _, status, usage = os.wait4(process.pid, 0)
        except BaseException:
            process.kill()
            process.wait()
            raise
        finally:
            _RUNNING.discard(process)
        process.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        text = out.read()
    if process.returncode != 0:
        raise RuntimeError(f"wrk failed ({process.returncode}): {text[-2000:]}")
    result = parse(text)
    cpu = usage.ru_utime + usage.ru_stime
    return WrkResult(**{**result.__dict__, "cpu_seconds": cpu})


def self_cpu() -> float:
    """CPU seconds (user + system) used by this process so far."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime
