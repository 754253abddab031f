"""The click pipeline: request path -> bounded buffer -> builder -> partition batches -> Kafka.

The request path calls `add()` only: one comparison and a deque append, no Kafka, no parsing.
Two background tasks do the rest:
- builder: every flush interval, raw tuples -> `Click` (UA classification, visitor key, event
  id), in chunks, yielding to the loop between chunks, then one signal to the sender; also
  tallies hits per code for the cache warmer. Under light traffic it waits on, an interval at a
  time, until `flush_min_clicks` are held or `flush_max_interval` has passed since the first
  (the batch-size rule below);
- sender: forms the built clicks into partition batches (domain/batches.py: one record per
  partition, immutable from then on) and publishes them; batches that failed are put back in
  front, unchanged, and re-sent with backoff, so nothing is lost while Kafka is away -- up to
  the bound -- and a re-sent batch keeps its id (never re-grouped with newer clicks).
`size` counts every click held (raw + built + formed and in flight). At `max_events`, new clicks
are dropped and counted (redirect_click_events_dropped_total). `close()` flushes everything it
can within a deadline (graceful shutdown, SIGTERM).
"""

import asyncio
import logging
import time
from collections import Counter, deque

from platformkit.retry import RetryPolicy, made_progress
from platformkit.tasks import cancel_and_wait

from redirect.domain.batches import BatchFormer, BuiltClick, ClickBatch
from redirect.domain.click_factory import ClickFactory, Headers, RawClick, trace_headers
from redirect.ports import ClickSink, HotCounter, PublishFailed, StoreUnavailable

log = logging.getLogger(__name__)

BUILD_CHUNK = 256
BACKOFF_MAX = 5.0
TASK_STOP_TIMEOUT_S = 5.0


class ClickBuffer:
    def __init__(
        self,
        *,
        factory: ClickFactory,
        former: BatchFormer,
        sink: ClickSink,
        hot: HotCounter | None = None,
        max_events: int,
        batch_max: int = 5000,
        flush_interval: float = 0.005,
        flush_min_clicks: int = 0,
        flush_max_interval: float = 0.0,
        traced: bool = False,
        hot_interval: float = 10.0,
        hot_keep: int = 100_000,
    ) -> None:
        self.max_events = max_events
        self.size = 0
        self.dropped = 0
        self.published = 0
        self.failures = 0
        self._factory = factory
        self._former = former
        self._sink = sink
        self._hot = hot
        self._batch_max = batch_max
        self._flush_interval = flush_interval
        self._flush_min_clicks = flush_min_clicks
        self._flush_max_interval = max(flush_max_interval, flush_interval)
        self._traced = traced
        self._hot_interval = hot_interval
        self._hot_keep = hot_keep
        self._raw: deque[RawClick] = deque()
        self._built: deque[BuiltClick] = deque()
        self._formed: deque[ClickBatch] = deque()
        self._hits: Counter[str] = Counter()
        self._raw_ready = asyncio.Event()
        self._built_ready = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        # The sender's retries: Kafka away, the held batches are re-sent with backoff, for ever
        # (the bound on held clicks is max_events); the replicas' senders not in step.
        self._publish_retry = RetryPolicy(
            what="publishing clicks",
            initial_s=0.1,
            max_s=BACKOFF_MAX,
            jitter_s=0.05,
            retry_on=(PublishFailed,),
            on_retry=self._publish_failed,
            log=log,
        )

    def add(self, code: str, timestamp: float, headers: Headers, peer: str | None) -> None:
        """Request path: keep the click for the builder, or count it dropped when full."""
        if self.size >= self.max_events:
            self.dropped += 1
            return
        self.size += 1
        self._raw.append((code, timestamp, headers, peer))
        if not self._raw_ready.is_set():
            self._raw_ready.set()

    def counters(self) -> dict[str, int]:
        return {"depth": self.size, "dropped": self.dropped, "published": self.published, "failures": self.failures}

    def start(self) -> None:
        self._tasks = [
            asyncio.create_task(self._build_loop(), name="clicks-builder"),
            asyncio.create_task(self._send_loop(), name="clicks-sender"),
        ]
        if self._hot is not None:
            self._tasks.append(asyncio.create_task(self._hot_loop(), name="clicks-hot"))

    # -- builder -------------------------------------------------------------------------
    def build_some(self, limit: int) -> int:
        """Turn up to `limit` raw clicks into `Click`s; return how many were taken."""
        raw, built, hits, factory, traced = self._raw, self._built, self._hits, self._factory, self._traced
        n = min(limit, len(raw))
        for event_id in factory.event_ids(n):
            item = raw.popleft()
            try:
                built.append((factory.build(item, event_id), trace_headers(item[2]) if traced else ()))
                hits[item[0]] += 1
            except Exception:  # one unbuildable click must not stop the pipeline
                log.exception("click event could not be built; dropped")
                self.size -= 1
                self.dropped += 1
        return n

    async def gather(self) -> float:
        """Wait for a batch to gather after the first click arrived; return the seconds waited.

        One flush interval at least. Then, while fewer than `flush_min_clicks` are held, one more
        interval at a time up to `flush_max_interval`: a flush's cost downstream is per record
        (one per `clicks` partition it touches), so N replicas sharing light traffic would
        otherwise send N times the records of one replica for the same clicks, and Kafka and the
        aggregator pay per record. With a size floor the records per second follow the clicks,
        not the number of replicas; at full rate the floor is met within the first interval and
        nothing changes. The price is latency under light traffic (at most the max interval).
        """
        interval = self._flush_interval
        if interval <= 0:
            return 0.0
        waited = 0.0
        while True:
            await asyncio.sleep(interval)
            waited += interval
            if len(self._raw) >= self._flush_min_clicks or waited >= self._flush_max_interval - 1e-9:
                return waited
            interval = min(self._flush_interval, self._flush_max_interval - waited)

    async def _build_loop(self) -> None:
        while True:
            await self._raw_ready.wait()
            await self.gather()
            self._raw_ready.clear()
            left = len(self._raw)  # this flush; clicks arriving meanwhile wait for the next one
            while left > 0 and (taken := self.build_some(min(BUILD_CHUNK, left))):
                left -= taken
                await asyncio.sleep(0)  # let requests in between chunks
            # One signal per flush: the sender forms and publishes it in one produce request
            # (a flush's fixed cost is paid once, not once per chunk).
            self._built_ready.set()

    # -- sender --------------------------------------------------------------------------
    async def form_batches(self) -> None:
        """Seal the built clicks (up to batch_max) into partition batches, queued after the ones
        already formed. Raises PublishFailed (partition count unknown): the clicks stay built."""
        built = self._built
        if not built:
            return
        partition_of = await self._sink.partitioner()
        taken = [built.popleft() for _ in range(min(self._batch_max, len(built)))]
        try:
            self._formed.extend(self._former.form(taken, partition_of))
        except Exception:  # a bug: these clicks are lost (counted), the sender must go on
            log.exception("%d clicks could not be formed into batches; dropped", len(taken))
            self.size -= len(taken)
            self.dropped += len(taken)

    async def send_once(self) -> int:
        """Publish formed batches (about batch_max clicks); on failure put them back in front,
        unchanged. Return the clicks delivered. Raises PublishFailed."""
        if not self._formed:
            await self.form_batches()
        formed = self._formed
        batches: list[ClickBatch] = []
        n = 0
        while formed and n < self._batch_max:
            batch = formed.popleft()
            batches.append(batch)
            n += batch.clicks
        if not batches:
            return 0
        try:
            await self._sink.publish(batches)
        except BaseException:
            formed.extendleft(reversed(batches))
            raise
        self.size -= n
        self.published += n
        return n

    def _held_unsent(self) -> int:
        return len(self._built) + sum(b.clicks for b in self._formed)

    def _publish_failed(self) -> None:
        self.failures += 1

    async def _send_loop(self) -> None:
        """Publish whatever is built, after each flush's signal; one retrying session for the
        task's life (no retry machinery per flush), backing off from the start after a success."""
        async for attempt in self._publish_retry.attempts():
            with attempt:
                while True:
                    while self._built or self._formed:
                        await self.send_once()
                        made_progress(attempt)
                    await self._built_ready.wait()
                    self._built_ready.clear()

    # -- hot set (cache warmer input) ----------------------------------------------------
    async def _hot_loop(self) -> None:
        assert self._hot is not None
        last_trim = time.monotonic()
        while True:
            await asyncio.sleep(self._hot_interval)
            if not self._hits:
                continue
            hits, self._hits = self._hits, Counter()
            trim = time.monotonic() - last_trim > 60
            try:
                await self._hot.bump_hot(hits, keep=self._hot_keep if trim else None)
                last_trim = time.monotonic() if trim else last_trim
            except StoreUnavailable as exc:  # an optimisation only: lose these hits
                log.debug("hot set not updated: %s", exc)

    async def close(self, timeout: float) -> None:
        """Stop the tasks, build what is left and publish it within `timeout` seconds."""
        # Bounded: a cancellation swallowed inside the Kafka client must not stop the flush.
        await cancel_and_wait(self._tasks, timeout=TASK_STOP_TIMEOUT_S, log=log)
        while self.build_some(len(self._raw) or 1):
            pass
        deadline = time.monotonic() + timeout
        while (self._built or self._formed) and time.monotonic() < deadline:
            try:
                async with asyncio.timeout(max(0.1, deadline - time.monotonic())):
                    await self.send_once()
            except (PublishFailed, TimeoutError) as exc:
                log.warning("flush at shutdown: %s", exc)
                await asyncio.sleep(min(0.5, max(0.0, deadline - time.monotonic())))
        if lost := self._held_unsent():
            log.error("shutdown: %d clicks could not be delivered and are lost", lost)
            self.dropped += lost
        log.info("click buffer closed: %d events published, %d dropped in this process", self.published, self.dropped)
        await self._sink.aclose()
