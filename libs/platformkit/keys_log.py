"""The key book of one process, kept in step with the `keys` topic, and the authentication of
callers against it.

A group-less reader of the (one-partition, compacted) `keys` topic from offset 0: every
authenticating process holds every key's newest state in memory (a few hundred bytes per key).
`start` returns once the reader has reached the end that existed when it started, so a process
never answers 401 to a valid key because it has not read far enough yet.

A key that was just created may not be in the book yet: on a miss, `authenticate` waits, bounded,
until the reader has reached the log end as it stands at the miss (the same "read up to what
existed when asked" idea as read-your-writes elsewhere), then looks again. Misses share end-offset
requests: one in flight, and the misses that arrive meanwhile share the next one (an answer sent
before a miss began could predate the key), so a flood of bad keys costs Kafka at most two
requests at a time (and FailedAuth limits them per address).
"""

import asyncio
import logging
import time
from collections.abc import Callable

from aiokafka import AIOKafkaConsumer, TopicPartition
from contracts import keys as keys_contract
from contracts.errors import InvalidEvent
from contracts.topics import KEYS

from platformkit.apikeys import KeyBook, Principal, bearer_secret, invalid_key, missing_key
from platformkit.retry import RetryPolicy

log = logging.getLogger(__name__)


class KeysLog:
    def __init__(
        self,
        *,
        bootstrap_servers: str,
        topic: str = KEYS.name,
        client_id: str,
        book: KeyBook | None = None,
        miss_wait_s: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.book = book if book is not None else KeyBook()
        self._topic = topic
        self._tp = TopicPartition(topic, 0)
        self._consumer = AIOKafkaConsumer(
            bootstrap_servers=bootstrap_servers,
            client_id=client_id,
            group_id=None,
            enable_auto_commit=False,
            fetch_max_wait_ms=500,
        )
        # End offsets on a connection of their own: asked through the reader's consumer, the
        # request queues behind its long poll (fetch_max_wait_ms), ~0.5 s per miss.
        self._ends = AIOKafkaConsumer(
            bootstrap_servers=bootstrap_servers, client_id=f"{client_id}-ends", group_id=None, enable_auto_commit=False
        )
        self._miss_wait_s = miss_wait_s
        self._clock = clock
        self._position = 0  # next offset to apply
        self._advanced = asyncio.Event()  # set (and replaced) whenever the position moves
        self._end_probe: asyncio.Task[int] | None = None  # the end-offset request in flight
        self._end_queued: asyncio.Task[int] | None = None  # the one after it, for later misses
        self._end = 0
        self._task: asyncio.Task[None] | None = None

    @property
    def position(self) -> int:
        return self._position

    async def start(self, *, timeout_s: float = 30.0) -> None:
        """Read from offset 0 up to the end that exists now, then keep following in the background."""
        try:
            await self._ends.start()
            await self._consumer.start()
            self._consumer.assign([self._tp])
            self._consumer.seek(self._tp, 0)
            self._task = asyncio.get_running_loop().create_task(self._follow(), name=f"{self._topic}-reader")
            end = await self._end_offset()
            if not await self._reached(end, timeout_s):
                raise TimeoutError(f"{self._topic}: did not reach offset {end} within {timeout_s} s")
        except BaseException:
            await self.stop()
            raise

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        await self._consumer.stop()
        await self._ends.stop()

    async def authenticate(self, authorization: str | None) -> Principal:
        """The caller of `Authorization: Bearer <secret>`, or ApiError 401."""
        secret = bearer_secret(authorization)
        if secret is None:
            raise missing_key()
        principal = self.book.find(secret)
        if principal is None and await self.caught_up(self._miss_wait_s):
            principal = self.book.find(secret)
        if principal is None:
            raise invalid_key()
        return principal

    async def caught_up(self, timeout_s: float) -> bool:
        """True once the reader has applied everything the log held when this was called."""
        try:
            end = await asyncio.wait_for(self._shared_end(), timeout_s)
        except (TimeoutError, OSError) as exc:
            log.warning("%s: end offset unavailable (%s)", self._topic, exc)
            return False
        return await self._reached(end, timeout_s)

    async def _follow(self) -> None:
        # The broker away: aiokafka reconnects; a failed fetch is tried again a second later (no spin).
        retry = RetryPolicy(what=f"{self._topic}: fetch", initial_s=1.0, max_s=1.0, log=log)
        while True:
            batches = await retry.call(lambda: self._consumer.getmany(self._tp, timeout_ms=1000, max_records=1000))
            for record in batches.get(self._tp, ()):
                try:
                    self.book.apply(keys_contract.decode(record.value or b""))
                except InvalidEvent as exc:  # only our own outbox writes here: log, do not stop
                    log.error("%s offset %d: %s", self._topic, record.offset, exc)
                self._position = record.offset + 1
            if batches:
                self._advanced.set()
                self._advanced = asyncio.Event()

    async def _reached(self, offset: int, timeout_s: float) -> bool:
        deadline = self._clock() + timeout_s
        while self._position < offset:
            left = deadline - self._clock()
            if left <= 0:
                return False
            try:
                await asyncio.wait_for(self._advanced.wait(), left)
            except TimeoutError:
                return self._position >= offset
        return True

    def _shared_end(self) -> asyncio.Future[int]:
        """The log end as of a request sent after this call began, shared with other callers."""
        probe = self._end_probe
        if probe is None or probe.done():
            self._end_probe, self._end_queued = asyncio.get_running_loop().create_task(self._end_offset()), None
            return asyncio.shield(self._end_probe)
        if self._end_queued is None:

            async def after_current() -> int:
                await asyncio.wait([probe])
                return await self._end_offset()

            self._end_queued = asyncio.get_running_loop().create_task(after_current())
        return asyncio.shield(self._end_queued)

    async def _end_offset(self) -> int:
        ends = await self._ends.end_offsets([self._tp])
        self._end = int(ends[self._tp])
        return self._end
