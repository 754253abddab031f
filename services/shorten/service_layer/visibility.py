"""Read your writes: a write is answered once every live redirect replica serves its new state.

The write path stays event-sourced (row + outbox in one transaction -> relay -> `links` -> each
replica's projector -> its L1 and Redis). A client that shares a link the moment it gets the 201
(or reads it back right after a PATCH/DELETE) must not meet a replica that has not yet seen the
event, so after the commit the use case waits here:

1. until the event is in the `links` log: this process reads `links` itself (group-less, from
   the end at start, `LinksLog`) and notes where each event id landed (partition, offset);
2. until every live replica reports a position past that offset: replicas report in Redis
   (`links:seen`, written by their projectors with every applied batch and as a heartbeat once a
   second); a replica that has not reported for `heartbeat` seconds is not waited for (dead or
   cut off: nginx stops sending it traffic too). Redis unreachable: step 1 only (the replicas'
   consumers keep feeding their L1s without Redis, projector.py).

Bounded by `timeout`: past it the write is answered anyway, and for the next `cooldown` seconds
writes wait at most `degraded_timeout` (Kafka, Redis or the relay away: writes do not each pay
the full bound, and a hiccup -- the relay's first publish after a start -- is still covered).

Cost: the latency of the relay and one consumer hop (tens of ms);
per process one `links` consumer (only the event id is decoded) and, while writes wait, one
Redis read per `poll_interval`.
"""

import asyncio
import contextlib
import logging
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Mapping, Sequence

from platformkit.retry import RetryPolicy, made_progress

from shorten.ports import LinksLog, Placed, ReplicaPosition

log = logging.getLogger(__name__)


def _keep_furthest(furthest: dict[int, Placed], placed: Placed) -> None:
    current = furthest.get(placed.partition)
    if current is None or placed.offset > current.offset:
        furthest[placed.partition] = placed


PositionsFn = Callable[[], Awaitable[Mapping[str, ReplicaPosition]]]


class NoWait:
    """Visibility off (SHORTEN_VISIBLE_TIMEOUT_SECONDS=0, or tests without a stack)."""

    async def wait(self, event_id: str) -> bool:
        return False

    async def wait_all(self, event_ids: Sequence[str], *, timeout: float) -> bool:
        return False


class Visibility:
    def __init__(
        self,
        *,
        log_factory: Callable[[], LinksLog],
        positions: PositionsFn,
        timeout: float,
        poll_interval: float = 0.005,
        heartbeat: float = 3.0,
        cooldown: float = 5.0,
        degraded_timeout: float = 0.25,
        remember: int = 100_000,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._log_factory = log_factory
        self._positions = positions
        self._timeout = timeout
        self._poll_interval = poll_interval
        self._heartbeat = heartbeat
        self._cooldown = cooldown
        self._degraded_timeout = degraded_timeout
        self._remember = remember
        self._clock = clock
        self._placed: OrderedDict[str, Placed] = OrderedDict()  # recent events of the log
        self._unplaced: dict[str, asyncio.Future[Placed]] = {}
        self._unseen: list[tuple[Placed, asyncio.Future[bool]]] = []
        self._degraded_until = 0.0
        self._reader: asyncio.Task[None] | None = None
        self._poller: asyncio.Task[None] | None = None
        self._started = asyncio.Event()
        self.timeouts = 0

    async def start(self, *, within: float = 5.0) -> None:
        """Start reading the log; wait (bounded) until it is positioned at the end."""
        self._reader = asyncio.create_task(self._read_log(), name="links-visibility")
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(within):
                await self._started.wait()

    async def aclose(self) -> None:
        for task in (self._reader, self._poller):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task

    async def wait(self, event_id: str) -> bool:
        """True once every live replica serves this event; False if that was not seen in time."""
        if not self._started.is_set():
            return False
        degraded = self._clock() < self._degraded_until
        try:
            async with asyncio.timeout(self._degraded_timeout if degraded else self._timeout):
                placed = self._placed.get(event_id)
                if placed is None:
                    future = self._unplaced.get(event_id)
                    if future is None:
                        future = self._unplaced[event_id] = asyncio.get_running_loop().create_future()
                    placed = await future
                seen: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
                self._unseen.append((placed, seen))
                if self._poller is None or self._poller.done():
                    self._poller = asyncio.create_task(self._poll_positions(), name="links-visibility-poll")
                return await seen
        except TimeoutError:
            self._unplaced.pop(event_id, None)
            self.timeouts += 1
            if not degraded:
                log.warning(
                    "write visibility: event %s not served by every replica within %.1fs; "
                    "writes wait at most %.2fs for the next %.0fs",
                    event_id,
                    self._timeout,
                    self._degraded_timeout,
                    self._cooldown,
                )
            self._degraded_until = self._clock() + self._cooldown
            return False

    async def wait_all(self, event_ids: Sequence[str], *, timeout: float) -> bool:
        """`wait` for many events at once (a bulk import), bounded by `timeout` in total: once
        every event is placed, only the furthest one of each partition is waited for (a replica
        past it has applied every earlier event of that partition: one check per partition, not
        per event). A timeout here is the import's own: it does not make other writes wait less."""
        if not event_ids or not self._started.is_set():
            return False
        degraded = self._clock() < self._degraded_until
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(min(timeout, self._degraded_timeout) if degraded else timeout):
                furthest: dict[int, Placed] = {}
                unplaced: list[asyncio.Future[Placed]] = []
                for event_id in event_ids:
                    placed = self._placed.get(event_id)
                    if placed is not None:
                        _keep_furthest(furthest, placed)
                    elif (future := self._unplaced.get(event_id)) is not None:
                        unplaced.append(future)
                    else:
                        unplaced.append(self._unplaced.setdefault(event_id, loop.create_future()))
                for placed in await asyncio.gather(*unplaced):
                    _keep_furthest(furthest, placed)
                seen: list[asyncio.Future[bool]] = []
                for placed in furthest.values():
                    seen.append(loop.create_future())
                    self._unseen.append((placed, seen[-1]))
                if self._poller is None or self._poller.done():
                    self._poller = asyncio.create_task(self._poll_positions(), name="links-visibility-poll")
                return all(await asyncio.gather(*seen))
        except TimeoutError:
            for event_id in event_ids:
                self._unplaced.pop(event_id, None)
            self.timeouts += 1
            log.warning("write visibility: %d events not served by every replica within %.1fs", len(event_ids), timeout)
            return False

    async def _read_log(self) -> None:
        """Read the log for ever: a failed reader is stopped and a new one started, with backoff
        (from the first delay again once a reader started)."""
        retry = RetryPolicy(what="write visibility: links reader", initial_s=0.5, max_s=5.0, log=log)
        async for attempt in retry.attempts():
            with attempt:
                reader = self._log_factory()
                try:
                    await reader.start()
                    self._started.set()
                    made_progress(attempt)
                    while True:
                        self._note(await reader.fetch(timeout_ms=500))
                finally:
                    with contextlib.suppress(Exception):
                        await reader.stop()

    def _note(self, batch: Sequence[Placed]) -> None:
        placed, unplaced = self._placed, self._unplaced
        for event in batch:
            placed[event.event_id] = event
            future = unplaced.pop(event.event_id, None) if unplaced else None
            if future is not None and not future.done():
                future.set_result(event)
        while len(placed) > self._remember:
            placed.popitem(last=False)

    async def _poll_positions(self) -> None:
        while self._unseen:
            try:
                positions = await self._positions()
            except Exception as exc:
                # Redis away: the positions cannot be known. The event is in the log, and the
                # replicas' consumers feed their L1s without Redis: answer now, unconfirmed.
                log.debug("write visibility: positions unreadable (%s)", exc)
                for _, seen in self._unseen:
                    if not seen.done():
                        seen.set_result(False)
                self._unseen = []
                return
            if positions is not None:
                live_after = self._clock() - self._heartbeat
                live = [p.offsets for p in positions.values() if p.reported_at >= live_after]
                still = []
                for placed, seen in self._unseen:
                    if seen.done():
                        continue
                    if all(offsets.get(placed.partition, 0) > placed.offset for offsets in live):
                        seen.set_result(True)
                    else:
                        still.append((placed, seen))
                self._unseen = still
            if self._unseen:
                await asyncio.sleep(self._poll_interval)
