"""Coalesced Redis lookups: the `get`s that arrive in one event-loop turn share one round trip.

Under load many requests miss the L1 at once (the no-L1 benchmark: all of them); redis-py costs
~70 us of CPU per single command but ~25 us per command inside a pipeline of 16+, so the misses
of one loop turn are sent as one pipeline of HMGETs (and concurrent misses of one code share a
single lookup). A lone miss still goes as a plain HMGET (a pipeline of one costs more).
"""

import asyncio

from redirect.domain.links import Link
from redirect.ports import LinkGetter, StoreUnavailable


def _retrieve(future: "asyncio.Future[Link]") -> None:
    # Mark an exception as seen even if every waiter went away (client disconnected).
    if not future.cancelled():
        future.exception()


class CoalescingGets:
    def __init__(self, store: LinkGetter, *, max_batch: int = 256) -> None:
        self._store = store
        self._max_batch = max_batch
        self._pending: dict[str, asyncio.Future[Link]] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self.batches = 0
        self.lookups = 0

    async def get(self, code: str) -> Link:
        future = self._pending.get(code)
        if future is None:
            loop = asyncio.get_running_loop()
            future = loop.create_future()
            future.add_done_callback(_retrieve)
            if not self._pending:
                loop.call_soon(self._flush)
            self._pending[code] = future
            if len(self._pending) >= self._max_batch:
                self._flush()
        return await asyncio.shield(future)

    def _flush(self) -> None:
        if not self._pending:
            return
        batch, self._pending = self._pending, {}
        task = asyncio.get_running_loop().create_task(self._lookup(batch))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _lookup(self, batch: dict[str, "asyncio.Future[Link]"]) -> None:
        self.batches += 1
        self.lookups += len(batch)
        codes = list(batch)
        try:
            found = [await self._store.get(codes[0])] if len(codes) == 1 else await self._store.get_many(codes)
        except StoreUnavailable as exc:
            for future in batch.values():
                if not future.done():
                    future.set_exception(exc)
            return
        except BaseException as exc:  # never leave a waiter hanging
            for future in batch.values():
                if not future.done():
                    future.set_exception(StoreUnavailable(f"lookup failed: {exc!r}"))
            raise
        for future, link in zip(batch.values(), found, strict=True):
            if not future.done():
                future.set_result(link)
