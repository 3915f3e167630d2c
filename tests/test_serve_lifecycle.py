"""`gql-inventory serve` on the embedded PostgreSQL stops the server it started, on SIGTERM
and SIGINT alike; `stop-database` and `database-status` manage it by hand (`make stop`)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from gql_inventory.kit.db import embedded_postgres_running
from tests.support.live import WAIT, free_port

CLI = [sys.executable, "-m", "gql_inventory.cli"]


@pytest.fixture
def home() -> Iterator[Path]:
    """A folder of our own for a server's data, pid file and token.

    Not pytest's `tmp_path`: another pytest session on the same machine prunes old
    `pytest-of-<user>/pytest-<n>` folders as it starts, and would delete a running
    server's data folder under it.
    """
    with tempfile.TemporaryDirectory(prefix="gqlinv-serve-") as folder:
        yield Path(folder)


MOVEMENTS = "{ stockMovements(first: 1) { edges { cursor } } }"


def _env(data_dir: Path) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("DATABASE_URL", "GQL_INVENTORY_EMBEDDED_URL", "STRIPE_API_KEY")
    }
    env.update(
        DATA_DIR=str(data_dir),
        LIVE_EVENTS="false",
        EXPIRY_INTERVAL_SECONDS="0",
        PENDING_PAYMENT_CHECK_INTERVAL_SECONDS="0",
    )
    return env


def _wait_healthy(url: str, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + WAIT  # a hang guard, not a timing assertion
    while time.monotonic() < deadline:
        assert proc.poll() is None, "serve exited early"
        try:
            if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    pytest.fail("serve never became healthy")


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_serve_stops_the_embedded_server_it_started(home: Path, signum: int) -> None:
    data_dir = home / "pgdata"
    port = free_port()
    log = (home / "serve.log").open("w")
    proc = subprocess.Popen(
        [*CLI, "serve", "--port", str(port)],
        env=_env(data_dir),
        cwd=home,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        _wait_healthy(f"http://127.0.0.1:{port}", proc)
        assert embedded_postgres_running(data_dir)
        assert (home / "serve.pid").read_text().strip() == str(proc.pid)

        proc.send_signal(signum)
        proc.wait(timeout=WAIT)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        log.close()
    output = (home / "serve.log").read_text()
    assert proc.returncode == 0, output
    assert not embedded_postgres_running(data_dir), output
    assert not (home / "serve.pid").exists()


def test_stop_database_and_status(home: Path) -> None:
    data_dir = home / "pgdata"
    env = _env(data_dir)

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*CLI, *args], env=env, cwd=home, capture_output=True, text=True, timeout=WAIT
        )

    assert run("database-status").returncode == 3
    # Start a server that outlives its starter, as a crashed `serve` would leave it.
    started = subprocess.run(
        [
            sys.executable,
            "-c",
            "import os, sys; from pathlib import Path;"
            "from gql_inventory.kit.db import start_embedded_postgres;"
            "start_embedded_postgres(Path(sys.argv[1])); os._exit(0)",
            str(data_dir),
        ],
        env=env,
        capture_output=True,
        timeout=WAIT,
    )
    assert started.returncode == 0, started.stderr
    assert run("database-status").returncode == 0

    stopped = run("stop-database")
    assert stopped.returncode == 0, stopped.stderr
    assert "stopped" in stopped.stdout
    assert run("database-status").returncode == 3
    again = run("stop-database")
    assert (again.returncode, "no embedded PostgreSQL running" in again.stdout) == (0, True)


def test_development_admin_token_and_query_command(home: Path) -> None:
    """`make run` needs no set-up for an admin: serve makes a development token, prints it,
    and `gql-inventory query --admin` sends it; without it an admin query is FORBIDDEN."""
    data_dir = home / "pgdata"
    env = {k: v for k, v in _env(data_dir).items() if k != "ADMIN_TOKENS"}
    port = free_port()
    url = f"http://127.0.0.1:{port}/graphql"
    subprocess.run([*CLI, "migrate"], env=env, cwd=home, check=True, capture_output=True)
    proc = subprocess.Popen(
        [*CLI, "serve", "--port", str(port)],
        env=env,
        cwd=home,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        _wait_healthy(f"http://127.0.0.1:{port}", proc)
        token = (home / "dev-admin-token").read_text().strip()
        assert len(token) >= 24
        assert (home / "dev-admin-token").stat().st_mode & 0o077 == 0

        def query(*extra: str) -> subprocess.CompletedProcess[str]:
            return subprocess.run(
                [*CLI, "query", MOVEMENTS, "--url", url, *extra],
                env=env,
                cwd=home,
                capture_output=True,
                text=True,
                timeout=WAIT,
            )

        as_admin = query("--admin")
        assert as_admin.returncode == 0, as_admin.stdout + as_admin.stderr
        assert as_admin.stdout.strip() == '{"data":{"stockMovements":{"edges":[]}}}'
        anonymous = query()
        assert anonymous.returncode == 1
        assert "FORBIDDEN" in anonymous.stdout
    finally:
        proc.terminate()
        out, _ = proc.communicate(timeout=WAIT)
    assert f"Admin token (development only, in {home / 'dev-admin-token'}): {token}" in out


def test_no_development_token_in_production(home: Path) -> None:
    env = dict(_env(home / "pgdata"), ENVIRONMENT="production")
    env.pop("ADMIN_TOKENS", None)
    done = subprocess.run(
        [*CLI, "query", "{ __typename }", "--admin", "--url", "http://127.0.0.1:9/graphql"],
        env=env,
        cwd=home,
        capture_output=True,
        text=True,
        timeout=WAIT,
    )
    assert done.returncode == 2
    assert "no admin token" in done.stderr
    assert not (home / "dev-admin-token").exists()


def test_query_admin_uses_the_token_the_running_server_accepts(
    home: Path, database_url: str
) -> None:
    """Issue 15 item 4: after `make run ADMIN_TOKENS=me=...`, `query --admin` in another
    shell sent the development token an earlier `make run` left in var/ and was refused.
    It now sends --token, or ADMIN_TOKENS (environment or .env), and the development
    token only to a server that uses it; otherwise it says what to pass."""
    (home / "dev-admin-token").write_text("token-of-an-earlier-make-run\n")
    (home / "dev-admin-token").chmod(0o600)
    server_env = dict(
        _env(home / "pgdata"), DATABASE_URL=database_url, ADMIN_TOKENS="me=tok-of-me-0123456789"
    )
    shell_env = {k: v for k, v in server_env.items() if k != "ADMIN_TOKENS"}
    port = free_port()
    url = f"http://127.0.0.1:{port}/graphql"
    proc = subprocess.Popen(
        [*CLI, "serve", "--port", str(port)],
        env=server_env,
        cwd=home,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )

    def query(*extra: str, env: dict[str, str] = shell_env) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*CLI, "query", MOVEMENTS, "--url", url, "--admin", *extra],
            env=env,
            cwd=home,
            capture_output=True,
            text=True,
            timeout=WAIT,
        )

    try:
        _wait_healthy(f"http://127.0.0.1:{port}", proc)

        another_shell = query()
        assert another_shell.returncode == 2, another_shell.stdout + another_shell.stderr
        assert "FORBIDDEN" not in another_shell.stdout  # nothing sent that would be refused
        assert "--token" in another_shell.stderr
        assert "ADMIN_TOKENS" in another_shell.stderr

        explicit = query("--token", "tok-of-me-0123456789")
        assert explicit.returncode == 0, explicit.stdout + explicit.stderr
        assert "stockMovements" in json.loads(explicit.stdout)["data"]
        from_environment = query(env=server_env)
        assert from_environment.returncode == 0, from_environment.stdout
        (home / ".env").write_text("ADMIN_TOKENS=me=tok-of-me-0123456789\n")
        from_dotenv = query()
        assert from_dotenv.returncode == 0, from_dotenv.stdout + from_dotenv.stderr
        (home / ".env").unlink()
        wrong = query("--token", "not-the-token")
        assert wrong.returncode == 1
        assert "FORBIDDEN" in wrong.stdout
        assert "refused the admin token" in wrong.stderr
    finally:
        proc.terminate()
        proc.wait(timeout=WAIT)


def test_a_process_that_stops_its_embedded_server_exits_quietly(home: Path) -> None:
    """`make cluster-drill` ended with embedded-postgres's "Failed to stop server, killing
    it instead" after the drill had stopped the server itself: the stopped postmaster
    stayed a zombie (this container's pid 1 does not reap), which the library's exit
    handler took for a live server and tried to stop again."""
    data_dir = home / "pgdata"
    script = (
        "import sys; from pathlib import Path\n"
        "from gql_inventory.kit.db import start_embedded_postgres as start, "
        "stop_embedded_postgres_if_unused as stop\n"
        "d = Path(sys.argv[1]); start(d); print(stop(d))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script, str(data_dir)],
        capture_output=True,
        text=True,
        timeout=WAIT * 6,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "True"  # it stopped the server itself
    assert "Failed" not in done.stderr, done.stderr
    assert "pg_ctl" not in done.stderr, done.stderr
    assert not embedded_postgres_running(data_dir)
