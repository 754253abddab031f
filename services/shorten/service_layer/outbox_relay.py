"""The outbox relay use case: publish outbox records to the `links` topic, in id order.

Only the relay holding the outbox lock runs this (bootstrap.relay_forever, run by
entrypoints/run_relay.py), so records are published by one process in outbox id order; per code
that is the order of its writes.
A record is marked published only after the broker acknowledged it. A failure marks the
acknowledged prefix and retries the rest with exponential backoff: nothing is lost, and a
record may be sent twice only when a crash falls between the ack and the mark (same
event id: consumers deduplicate).
"""

import asyncio
import logging
import time
from collections.abc import Callable

from tenacity import AsyncRetrying, RetryCallState, retry_if_exception_type, wait_exponential_jitter

from shorten.ports import Outbox, Publisher, PublishFailed

log = logging.getLogger(__name__)


class OutboxRelay:
    def __init__(
        self,
        *,
        outbox: Outbox,
        publisher: Publisher,
        batch_size: int = 500,
        poll_interval: float = 5.0,
        batch_wait: float = 0.0,
        backoff_max: float = 5.0,
        retention_seconds: float = 24 * 3600,
        purge_interval: float = 300.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._outbox = outbox
        self._publisher = publisher
        self._batch_size = batch_size
        self._poll_interval = poll_interval
        self._batch_wait = batch_wait
        self._backoff_max = backoff_max
        self._retention = retention_seconds
        self._purge_interval = purge_interval
        self._clock = clock
        self._next_purge = clock()
        # Acknowledged by the broker, not yet marked: the next read marks them in the same
        # round trip (or flush_marks does, at the end of a drain and on the way out).
        self._acked: list[int] = []
        self.published = 0

    async def publish_batch(self) -> int:
        """Publish the oldest unpublished batch; return its size (0 when the outbox is empty)."""
        records = await self._outbox.fetch_unpublished(self._batch_size, mark_first=self._acked)
        self._acked = []
        if not records:
            return 0
        try:
            await self._publisher.publish(records)
        except PublishFailed as exc:
            if exc.acked:
                await self._outbox.mark_published([r.id for r in records[: exc.acked]])
                self.published += exc.acked
            raise
        self._acked = [r.id for r in records]
        self.published += len(records)
        return len(records)

    async def flush_marks(self) -> None:
        """Mark what the broker acknowledged and no read has marked yet."""
        if self._acked:
            await self._outbox.mark_published(self._acked)
            self._acked = []

    async def drain(self) -> int:
        """Publish until the outbox is empty and mark everything published."""
        count = await self._publish_until_empty()
        await self.flush_marks()
        return count

    async def _publish_until_empty(self) -> int:
        """Publish batches, retrying broker failures with backoff; the last batch stays unmarked.

        A batch smaller than the batch size was everything unpublished when it was read: this
        ends there instead of reading again for the few rows committed meanwhile."""
        before = self.published
        async for attempt in AsyncRetrying(
            retry=retry_if_exception_type(PublishFailed),
            wait=wait_exponential_jitter(initial=0.1, max=self._backoff_max, jitter=0.2),
            before_sleep=_log_retry,
            reraise=True,
        ):
            with attempt:
                while await self.publish_batch() >= self._batch_size:
                    pass
        return self.published - before

    async def purge_if_due(self) -> None:
        if self._clock() < self._next_purge:
            return
        self._next_purge = self._clock() + self._purge_interval
        deleted = await self._outbox.purge_published(self._retention)
        if deleted:
            log.info("purged %d published outbox records older than %ss", deleted, self._retention)

    async def run(self) -> None:
        """Forever: drain, purge old records, sleep, drain again.

        Polling, not NOTIFY (see sql/postgres/003_outbox_no_notify.sql). Idle, the outbox is
        read every `poll_interval`. After a pass that published something (the API is busy)
        the next pass starts `batch_wait` later: the records committed meanwhile make one
        batch, so the relay's and PostgreSQL's work per record falls as the load rises."""
        try:
            while True:
                # The last batch's mark rides on the next pass's read (one round trip less per
                # pass); idle, that read finds nothing and every record is marked.
                count = await self._publish_until_empty()
                if count:
                    log.debug("published %d outbox records", count)
                await self.purge_if_due()
                await asyncio.sleep(self._batch_wait if count else self._poll_interval)
        finally:
            # Stopping: mark what was acknowledged (not marked, it would be sent again by the
            # next relay; same event ids, so consumers would drop it, but why send it twice).
            try:
                await asyncio.shield(self.flush_marks())
            except Exception as exc:  # PostgreSQL away: the next relay sends them again
                log.warning("could not mark %d acknowledged records on the way out: %s", len(self._acked), exc)


def _log_retry(state: RetryCallState) -> None:
    exc = state.outcome.exception() if state.outcome is not None else None
    sleep = state.next_action.sleep if state.next_action is not None else 0.0
    log.warning("publishing the outbox failed (attempt %d, retry in %.1fs): %s", state.attempt_number, sleep, exc)
