"""The delivery worker: claims due outbox messages and hands each to its channel's sender,
many at once, at most `WEBHOOK_ENDPOINT_CONCURRENCY` per endpoint (ADR 0019).

Run by the app's lifespan (`delivery_worker`, when `OUTBOX_WORKER` is on) and by
`gql-inventory deliver`. Any number of workers, in any processes, share the outbox: a
claim takes rows no other worker holds (`outbound.delivery.claim`).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import AsyncIterator, Mapping
from typing import TYPE_CHECKING

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from gql_inventory.kit.logs import get_logger
from gql_inventory.kit.tasks import reap, stop_task
from gql_inventory.models import OutboxChannel
from gql_inventory.outbound.delivery import claim, record_many, refresh_gauges
from gql_inventory.outbound.messages import ClaimedMessage, Sender, SendOutcome
from gql_inventory.outbound.webhook_http import WebhookClient
from gql_inventory.settings import Settings

if TYPE_CHECKING:
    from gql_inventory.services import Services

log = get_logger(__name__)

#: Seconds between two reads of the pending figures for /metrics.
GAUGE_SECONDS = 5.0
#: The in-flight key of e-mails: the SMTP server is one receiver.
_EMAIL_LANE = None
#: Outcomes recorded in one transaction at most.
RECORD_AT_MOST = 256

_Recorded = tuple[ClaimedMessage, SendOutcome, "asyncio.Future[str | None]"]


def lease_seconds(settings: Settings) -> float:
    """How long a claim holds a message (seconds): the URL check and the request may each
    take `webhook_timeout_seconds`, and 5 s more to record the outcome. A worker gone
    silent longer than this has its message claimed again (same message id)."""
    return 2 * settings.webhook_timeout_seconds + 5


class DeliveryWorker:
    """Delivers outbox messages through `senders` (one per channel; rows of a channel
    without a sender are never claimed). In-flight counts are this worker's own."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        settings: Settings,
        senders: Mapping[OutboxChannel, Sender],
    ) -> None:
        self._sessions = sessions
        self._settings = settings
        self._senders = dict(senders)
        self._in_flight: dict[uuid.UUID | None, int] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._freed = asyncio.Event()
        self._outcomes: list[_Recorded] = []
        self._flusher: asyncio.Task[None] | None = None

    async def claim_due(self) -> list[ClaimedMessage]:
        """Claim the due messages this worker has room for and start sending them."""
        room = self._settings.outbox_max_in_flight - len(self._tasks)
        per_endpoint = self._settings.webhook_endpoint_concurrency
        if room <= 0:
            return []
        async with self._sessions.begin() as session:
            claimed = await claim(
                session,
                webhook_slots=per_endpoint if OutboxChannel.WEBHOOK in self._senders else 0,
                busy={k: n for k, n in self._in_flight.items() if k is not _EMAIL_LANE},
                email_slots=(per_endpoint - self._in_flight.get(_EMAIL_LANE, 0))
                if OutboxChannel.EMAIL in self._senders
                else 0,
                limit=room,
                lease_seconds=lease_seconds(self._settings),
            )
        for message in claimed:
            lane = message.endpoint_id  # None for e-mails
            self._in_flight[lane] = self._in_flight.get(lane, 0) + 1
            task = asyncio.create_task(self._deliver(message, lane), name="outbox-send")
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        return claimed

    async def run_once(self) -> int:
        """Claim what is due now and deliver it, until nothing due is left; waits for every
        outcome to be recorded. Returns how many attempts were made."""
        made = 0
        while claimed := await self.claim_due():
            made += len(claimed)
            await asyncio.gather(*list(self._tasks), return_exceptions=True)
        return made

    async def run(self) -> None:
        """Claim and deliver until cancelled: again when sends end (a claim already took
        every free slot of what was due) or after `OUTBOX_POLL_SECONDS`. A failed claim
        (database unreachable) is logged and tried again at the next poll."""
        poll = self._settings.outbox_poll_seconds
        gauges_at = 0.0
        while True:
            self._freed.clear()
            try:
                await self.claim_due()
                if time.monotonic() - gauges_at >= GAUGE_SECONDS:
                    gauges_at = time.monotonic()
                    async with self._sessions() as session:
                        await refresh_gauges(session)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("outbox.claim_failed")
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(poll):
                    await self._freed.wait()

    async def close(self) -> None:
        """Cancel the sends in flight: their messages stay claimed until the lease ends,
        then are sent again (same message id); outcomes not yet recorded are dropped the
        same way."""
        await reap(list(self._tasks))
        if self._flusher is not None:
            await reap([self._flusher])

    async def _record(self, message: ClaimedMessage, outcome: SendOutcome) -> str | None:
        """Record `outcome` in one transaction (`record_many`) with every other outcome
        that arrives before it starts: one flush runs at a time, the next takes what
        queued meanwhile (at most `RECORD_AT_MOST` each; group commit). Returns its status,
        or None when stale. Raises what the recording raised."""
        future: asyncio.Future[str | None] = asyncio.get_running_loop().create_future()
        self._outcomes.append((message, outcome, future))
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.create_task(self._flush(), name="outbox-record")
        return await asyncio.shield(future)

    async def _flush(self) -> None:
        await asyncio.sleep(0)  # the outcomes of this loop turn share the first flush
        while self._outcomes:
            batch = self._outcomes[:RECORD_AT_MOST]
            del self._outcomes[:RECORD_AT_MOST]
            await self._flush_batch(batch)

    async def _flush_batch(self, batch: list[_Recorded]) -> None:
        """Record `batch` in one transaction and settle each waiting future."""
        try:
            async with self._sessions.begin() as session:
                statuses = await record_many(session, [(m, o) for m, o, _ in batch], self._settings)
        except asyncio.CancelledError:
            for *_, future in batch:
                future.cancel()
            raise
        except Exception as exc:
            for *_, future in batch:
                if not future.done():
                    future.set_exception(exc)
            return
        for (*_, future), status in zip(batch, statuses, strict=True):
            if not future.done():
                future.set_result(status)

    async def _deliver(self, message: ClaimedMessage, lane: uuid.UUID | None) -> None:
        try:
            try:
                outcome = await self._senders[OutboxChannel(message.channel)](message)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # a sender's bug or a lost database: a failed attempt
                log.exception("outbox.send_crashed", message_id=message.message_id)
                outcome = SendOutcome(False, error=f"internal error: {type(exc).__name__}")
            status = await self._record(message, outcome)
            emit = log.debug if outcome.delivered else log.warning
            emit(
                "outbox.attempted",
                message_id=message.message_id,
                channel=message.channel,
                topic=message.topic,
                attempt=message.attempt,
                status=status or "STALE",
                status_code=outcome.status_code,
                error=outcome.error,
            )
        except asyncio.CancelledError:
            raise
        except Exception:  # the outcome was not recorded: the lease brings the message back
            log.exception("outbox.record_failed", message_id=message.message_id)
        finally:
            left = self._in_flight.get(lane, 1) - 1
            if left > 0:
                self._in_flight[lane] = left
            else:
                self._in_flight.pop(lane, None)
            self._freed.set()


@contextlib.asynccontextmanager
async def delivery_worker(services: Services, *, run: bool = True) -> AsyncIterator[DeliveryWorker]:
    """A `DeliveryWorker` for the block with the senders `Services.outbox_senders` gives,
    sharing one HTTP client (`webhook_http.WebhookClient`: keep-alive, redirects not followed),
    its loop running when `run` (else the caller drives it: `run_once`); on exit stop the
    loop and cancel the sends in flight."""
    settings = services.settings
    http = WebhookClient(
        idle_per_origin=settings.outbox_max_in_flight,
        allow_private=settings.private_urls_allowed(),
    )
    try:
        worker = DeliveryWorker(services.sessions, settings, services.outbox_senders(http))
        task = asyncio.create_task(worker.run(), name="outbox-delivery") if run else None
        try:
            yield worker
        finally:
            if task is not None:
                await stop_task(task)
            await worker.close()
    finally:
        await http.aclose()
