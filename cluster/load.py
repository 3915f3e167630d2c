"""Reserve clients: `reserveStock` with idempotency keys, retried with the same key until
answered, each answer recorded (what the client was told it holds).

A request is answered when the response is HTTP 200 with a `reserveStock` payload: a
reservation (held) or userErrors (refused). Anything else (a connection reset, HAProxy's
502/503, the service's 503 while its database is away, a GraphQL error) is retried with
the same key and the same lines after a short pause, up to `GIVE_UP` seconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import httpx

RESERVE = """mutation($lines: [StockLineInput!]!, $key: String) {
  reserveStock(input: {lines: $lines, idempotencyKey: $key}) {
    reservation { id lines { quantity variant { sku } } } userErrors { code } } }"""

#: Longest a request is retried before it counts as unanswered (seconds).
GIVE_UP = 90.0
#: Pause between tries of one request (seconds).
RETRY_PAUSE = 0.2


@dataclass(frozen=True, slots=True)
class Answer:
    """One answered request: its key, its lines (``{sku: units}``: the reservation's as
    the answer gave them, else as asked), the reservation id (None: refused), when it
    was answered (`time.monotonic`) and how many tries it took."""

    key: str
    lines: dict[str, int]
    reservation_id: str | None
    answered_at: float
    tries: int


@dataclass
class Load:
    """`clients` tasks reserving `skus` through `url`, `rate` requests per second in all
    (each client paced to its share)."""

    url: str
    skus: list[str]
    clients: int = 8
    rate: float = 40.0
    seed: int = 0
    answers: list[Answer] = field(default_factory=list)
    unanswered: int = 0
    failed_tries: int = 0
    sent: int = 0

    @property
    def held(self) -> list[Answer]:
        """The answers that told their client it holds a reservation."""
        return [a for a in self.answers if a.reservation_id is not None]

    async def run(self, stop: asyncio.Event) -> None:
        """Send requests until `stop` is set, then wait for the last ones' answers."""
        await asyncio.gather(*(self._client(n, stop) for n in range(self.clients)))

    async def _client(self, index: int, stop: asyncio.Event) -> None:
        rng = random.Random(self.seed * 1000 + index)
        interval = self.clients / self.rate
        next_at = time.monotonic() + rng.random() * interval
        limits = httpx.Limits(max_connections=1)
        async with httpx.AsyncClient(base_url=self.url, timeout=10.0, limits=limits) as http:
            while not stop.is_set():
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), max(0.0, next_at - time.monotonic()))
                if stop.is_set():
                    return
                next_at = max(next_at + interval, time.monotonic())
                picked = rng.sample(self.skus, k=1 if rng.random() < 0.7 else 2)
                lines = {sku: rng.randint(1, 2) for sku in picked}
                self.sent += 1
                await self._until_answered(http, lines)

    async def _until_answered(self, http: httpx.AsyncClient, lines: dict[str, int]) -> None:
        key = str(uuid.uuid4())
        variables = {
            "key": key,
            "lines": [{"sku": sku, "quantity": units} for sku, units in lines.items()],
        }
        give_up = time.monotonic() + GIVE_UP
        tries = 0
        while time.monotonic() < give_up:
            tries += 1
            payload = await _send(http, variables)
            if payload is not None:
                reservation = payload.get("reservation")
                told = dict(lines)
                if reservation:
                    told = {}
                    for line in reservation["lines"]:
                        sku = line["variant"]["sku"]
                        told[sku] = told.get(sku, 0) + line["quantity"]
                self.answers.append(
                    Answer(
                        key=key,
                        lines=told,
                        reservation_id=reservation["id"] if reservation else None,
                        answered_at=time.monotonic(),
                        tries=tries,
                    )
                )
                return
            self.failed_tries += 1
            await asyncio.sleep(RETRY_PAUSE)
        self.unanswered += 1


async def _send(http: httpx.AsyncClient, variables: dict[str, Any]) -> dict[str, Any] | None:
    """One try: the `reserveStock` payload, or None when it was not answered."""
    try:
        response = await http.post("/graphql", json={"query": RESERVE, "variables": variables})
    except httpx.HTTPError:
        return None
    if response.status_code != 200:
        return None
    try:
        body = response.json()
    except ValueError:
        return None
    payload = (body.get("data") or {}).get("reserveStock")
    if body.get("errors") or not isinstance(payload, dict):
        return None
    return payload
