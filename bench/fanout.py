"""Live fan-out: websocket subscribers in client processes, and the measurement of a change.

A client process (``python -m bench.fanout URL --count N --sku SKU``) opens N
graphql-transport-ws connections (aiohttp's websocket client: its frame reader is compiled,
so the clients take less of the cores they share with the server than websockets'
pure-Python one: docs/adr/0022-framed-fan-out.md), each
subscribing to `stockChanged(skus: [SKU])`, and
records, per event, the level `version` it carries and its arrival time on
CLOCK_MONOTONIC (`time.monotonic`, one clock for every process of the machine). It
answers one JSON line per command read from stdin: ``status`` (sockets open, those with
an event, events, closed), ``arrivals`` (``{version: [arrival, ...]}``), ``close`` (then
it exits; so does it at end of input, so it never outlives the orchestrator).

`Clients` runs such processes from the orchestrator; `measure` sends one change at a time
through `adjustStock` and turns arrivals into latencies from the moment just before the
mutation was sent (so the mutation's own time is included: an upper bound of
commit-to-delivery) and from the moment its response arrived (a lower bound), with the CPU
the server and the client processes used meanwhile.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import select
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import aiohttp
import httpx
import uvloop

from bench.server import ROOT, Processes, cpu_seconds, graphql, raise_nofile

SUBSCRIBE = """subscription($skus: [String!]) { stockChanged(skus: $skus) {
  cursor sku kind onHand reserved available version } }"""
ADJUST = """mutation($sku: String!) { adjustStock(input: {sku: $sku, delta: 1, reason: FOUND}) {
  stockLevel { version } userErrors { code } } }"""


class _Subscribers:
    """The client process's sockets and what arrived on them."""

    def __init__(self, url: str, count: int, sku: str) -> None:
        self.url, self.count, self.sku = url, count, sku
        self.session: aiohttp.ClientSession | None = None
        self.sockets: list[aiohttp.ClientWebSocketResponse] = []
        self.readers: list[asyncio.Task[None]] = []
        self.failed = 0
        self.with_event: set[int] = set()
        self.events = 0
        self.closed = 0
        self.received: list[tuple[float, str]] = []

    async def open(self) -> None:
        self.session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=0, force_close=True),
            timeout=aiohttp.ClientTimeout(total=None, connect=120),
            # The handshake websockets' client sent (row 7 counts the server's memory per
            # socket, the request's headers included): no Accept or Accept-Encoding.
            skip_auto_headers=("Accept", "Accept-Encoding"),
        )
        gate = asyncio.Semaphore(32)
        await asyncio.gather(*(self._one(i, gate) for i in range(self.count)))

    async def _one(self, index: int, gate: asyncio.Semaphore) -> None:
        assert self.session is not None
        async with gate:
            try:
                ws = await self.session.ws_connect(
                    self.url, protocols=("graphql-transport-ws",), autoping=True, compress=0
                )
                await ws.send_str(json.dumps({"type": "connection_init", "payload": {}}))
                await ws.receive(timeout=120)
                payload = {"query": SUBSCRIBE, "variables": {"skus": [self.sku]}}
                await ws.send_str(json.dumps({"id": "1", "type": "subscribe", "payload": payload}))
            except (OSError, TimeoutError, aiohttp.ClientError):
                self.failed += 1
                return
        self.sockets.append(ws)
        self.readers.append(asyncio.create_task(self._read(index, ws)))

    async def _read(self, index: int, ws: aiohttp.ClientWebSocketResponse) -> None:
        async for message in ws:
            if message.type is not aiohttp.WSMsgType.TEXT:
                continue
            # Stamp and keep the frame; decode later (`arrivals`): the clients share the
            # server's cores, so their own work per message is kept to the minimum.
            self.received.append((time.monotonic(), message.data))
            if '"next"' in message.data:
                self.events += 1
                self.with_event.add(index)
        self.closed += 1

    def arrivals(self) -> dict[int, list[float]]:
        """``{version: [arrival, ...]}`` of the `next` messages received so far."""
        found: dict[int, list[float]] = {}
        for at, raw in self.received:
            message = json.loads(raw)
            if message.get("type") == "next":
                version = message["payload"]["data"]["stockChanged"]["version"]
                found.setdefault(version, []).append(at)
        return found

    def status(self) -> dict[str, int]:
        return {
            "open": len(self.sockets) - self.closed,
            "failed": self.failed,
            "with_event": len(self.with_event),
            "events": self.events,
        }

    async def close(self) -> None:
        await asyncio.gather(*(ws.close() for ws in self.sockets), return_exceptions=True)
        await asyncio.gather(*self.readers, return_exceptions=True)
        if self.session is not None:
            await self.session.close()


async def _client(url: str, count: int, sku: str) -> None:
    subscribers = _Subscribers(url, count, sku)
    await subscribers.open()
    print(json.dumps(subscribers.status()), flush=True)
    loop = asyncio.get_running_loop()
    while True:
        command = (await loop.run_in_executor(None, sys.stdin.readline)).strip()
        if command == "status":
            print(json.dumps(subscribers.status()), flush=True)
        elif command == "arrivals":
            print(json.dumps(subscribers.arrivals()), flush=True)
        else:  # "close" or end of input
            await subscribers.close()
            print(json.dumps(subscribers.status()), flush=True)
            return


def _reply(process: subprocess.Popen[str], timeout: float) -> Any:
    """The next JSON line from a client process. Raises `RuntimeError` on timeout/exit."""
    assert process.stdout is not None
    ready, _, _ = select.select([process.stdout], [], [], timeout)
    line = process.stdout.readline() if ready else ""
    if not line:
        raise RuntimeError(f"subscriber process {process.pid} did not answer")
    return json.loads(line)


class Clients:
    """`total` subscribers of `sku` on `urls` (round robin), over `processes` processes."""

    def __init__(
        self,
        processes: Processes,
        urls: list[str],
        sku: str,
        total: int,
        *,
        per_process: int = 1000,
    ) -> None:
        self.total = total
        count = self.process_count = max(1, -(-total // per_process))
        self._processes = processes
        self._children: list[subprocess.Popen[str]] = []
        for i in range(count):
            share = total // count + (1 if i < total % count else 0)
            url = urls[i % len(urls)]
            command = [sys.executable, "-m", "bench.fanout", url, "--count", str(share)]
            self._children.append(
                processes.start(
                    [*command, "--sku", sku],
                    cwd=ROOT,
                    stdin=subprocess.PIPE,
                    stdout=subprocess.PIPE,
                    text=True,
                )
            )

    def wait_open(self, timeout: float = 300.0) -> dict[str, int]:
        """Wait for every process to have opened its sockets; their summed status."""
        return self._sum([_reply(c, timeout) for c in self._children])

    def _ask(self, command: str, timeout: float = 60.0) -> list[Any]:
        for child in self._children:
            assert child.stdin is not None
            child.stdin.write(command + "\n")
            child.stdin.flush()
        return [_reply(c, timeout) for c in self._children]

    @staticmethod
    def _sum(replies: list[dict[str, int]]) -> dict[str, int]:
        return {key: sum(r[key] for r in replies) for key in replies[0]}

    def status(self) -> dict[str, int]:
        """Summed ``{open, failed, with_event, events}``."""
        return self._sum(self._ask("status"))

    def arrivals(self) -> dict[int, list[float]]:
        """``{version: [monotonic arrival, ...]}`` over every process."""
        merged: dict[int, list[float]] = {}
        for reply in self._ask("arrivals"):
            for version, times in reply.items():
                merged.setdefault(int(version), []).extend(times)
        return merged

    def cpu(self) -> float:
        """CPU seconds the client processes used so far."""
        return sum(cpu_seconds(c.pid) for c in self._children)

    def close(self) -> None:
        """Close every socket and end the processes."""
        with contextlib.suppress(RuntimeError, OSError):
            self._ask("close", timeout=120)
        for child in self._children:
            self._processes.stop(child, grace=10)


@dataclass(frozen=True)
class Change:
    """One change: its level version and when (monotonic) it was sent and answered."""

    version: int
    sent: float
    answered: float


def change(client: httpx.Client, sku: str) -> Change:
    """One `adjustStock` of +1 unit on `sku` (admin)."""
    sent = time.monotonic()
    data = graphql(client, ADJUST, {"sku": sku}, admin=True)["adjustStock"]
    answered = time.monotonic()
    if data["userErrors"]:
        raise RuntimeError(f"adjustStock refused: {data['userErrors']}")
    return Change(data["stockLevel"]["version"], sent, answered)


def wait_registered(
    client: httpx.Client, clients: Clients, sku: str, timeout: float = 120.0
) -> dict[str, int]:
    """Send changes until every open subscriber has received one (its subscription is
    registered), or `timeout` seconds pass; returns the last status."""
    deadline = time.monotonic() + timeout
    status = clients.status()
    while time.monotonic() < deadline:
        change(client, sku)
        for _ in range(20):
            time.sleep(0.25)
            status = clients.status()
            if status["with_event"] >= status["open"]:
                return status
    return status


@dataclass(frozen=True)
class Delivery:
    """Latencies (ms) of deliveries, from sending and from the response; how many came;
    CPU seconds the subscriber processes and the server used from the first change to
    the last delivery (the decoding of arrivals afterwards left out)."""

    from_sent: list[float]
    from_answer: list[float]
    delivered: int
    expected: int
    changes: list[Change]
    client_cpu: float
    server_cpu: float


def measure(
    client: httpx.Client,
    clients: Clients,
    sku: str,
    rounds: int,
    *,
    wait: float = 30.0,
    server_cpu: Callable[[], float] = lambda: 0.0,
) -> Delivery:
    """`rounds` changes, one at a time, each awaited at every open subscriber (at most
    `wait` seconds), then matched to arrivals by version. `server_cpu`: the server's CPU
    seconds so far (for `Delivery.server_cpu`)."""
    changes = []
    expected = 0
    cpu = clients.cpu(), server_cpu()
    for _ in range(rounds):
        target = clients.status()
        goal = target["events"] + target["open"]
        expected += target["open"]
        changes.append(change(client, sku))
        deadline = time.monotonic() + wait
        while clients.status()["events"] < goal and time.monotonic() < deadline:
            time.sleep(0.02)
    used = clients.cpu() - cpu[0], server_cpu() - cpu[1]
    arrivals = clients.arrivals()
    from_sent, from_answer = [], []
    for c in changes:
        for arrived in arrivals.get(c.version, []):
            from_sent.append((arrived - c.sent) * 1000)
            from_answer.append((arrived - c.answered) * 1000)
    return Delivery(from_sent, from_answer, len(from_sent), expected, changes, *used)


def main() -> None:
    """Client process entry point (see the module docstring)."""
    parser = argparse.ArgumentParser(description="websocket subscribers of one SKU")
    parser.add_argument("url")
    parser.add_argument("--count", type=int, required=True)
    parser.add_argument("--sku", required=True)
    args = parser.parse_args()
    raise_nofile()
    uvloop.run(_client(args.url, args.count, args.sku))  # the server runs on uvloop too


if __name__ == "__main__":
    main()
