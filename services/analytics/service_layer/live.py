"""Live stats: who listens to which link, and what the `link-activity` topic tells them.

`LiveHub` is the fan-out of one process: a dict code -> the subscriptions of that code, so one
activity row costs a dict lookup, plus O(subscribers of that code) when someone listens. The
number of subscriptions is bounded (`max_streams`, ANALYTICS_LIVE_MAX_STREAMS): past it,
`subscribe` refuses with 503 `live_streams_exhausted` and a Retry-After.

A subscription holds no queue: counts that arrive while its stream is busy are *added* to what it
has not sent yet (two ints and two times), so a slow client costs the same memory as a fast one,
nothing is dropped, and the next event carries the sum. A subscription ends (and leaves the dict)
when its stream ends, whatever ended it: the client went away, the stream's time was up, or the
process is stopping (`close`).

`open_live` is the use case: the same access rule as `/stats` (domain/access.py), then a
subscription. Live counts are best-effort (a record the aggregator could not send is missing);
the exact numbers are `/stats`'.
"""

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass
from types import TracebackType

from platformkit.apikeys import Principal
from platformkit.errors import ApiError

from analytics.domain.access import LinkOwner, check_stats_access, unknown_link
from analytics.domain.model import Lifetime
from analytics.ports import Totals


@dataclass(frozen=True, kw_only=True)
class LiveCounts:
    """What a link received since the subscription's previous event (sums; Unix seconds)."""

    clicks: int
    bot_clicks: int
    first_at: int
    last_at: int


class Subscription:
    """One open stream's interest in one code. Made by `LiveHub.subscribe`; a context manager:
    leaving it unsubscribes (idempotent)."""

    __slots__ = ("_bots", "_clicks", "_closed", "_first", "_hub", "_last", "_wake", "code")

    def __init__(self, code: str, hub: "LiveHub") -> None:
        self.code = code
        self._hub = hub
        self._wake = asyncio.Event()
        self._clicks = 0
        self._bots = 0
        self._first = 0
        self._last = 0
        self._closed = False

    def add(self, clicks: int, bot_clicks: int, first_at: int, last_at: int) -> None:
        if not (self._clicks or self._bots) or first_at < self._first:
            self._first = first_at
        if last_at > self._last:
            self._last = last_at
        self._clicks += clicks
        self._bots += bot_clicks
        self._wake.set()

    def take(self) -> LiveCounts | None:
        """The counts not sent yet (and forget them), None when there are none."""
        if not (self._clicks or self._bots):
            return None
        counts = LiveCounts(clicks=self._clicks, bot_clicks=self._bots, first_at=self._first, last_at=self._last)
        self._clicks = self._bots = 0
        return counts

    async def next(self, timeout_s: float) -> LiveCounts | None:
        """Wait at most `timeout_s` for counts; None on timeout or once closed."""
        if not (self._clicks or self._bots) and not self._closed:
            self._wake.clear()
            try:
                async with asyncio.timeout(timeout_s):
                    await self._wake.wait()
            except TimeoutError:
                return None
        return self.take()

    @property
    def closed(self) -> bool:
        return self._closed

    def close(self) -> None:
        """Unsubscribe and wake the stream (it ends). Safe to call more than once."""
        if not self._closed:
            self._closed = True
            self._hub._remove(self)
            self._wake.set()

    def __enter__(self) -> "Subscription":
        return self

    def __exit__(self, *_: type[BaseException] | BaseException | TracebackType | None) -> None:
        self.close()


def streams_exhausted(retry_after_s: int) -> ApiError:
    return ApiError(
        "too many live streams on this server; try again later",
        status=503,
        code="live_streams_exhausted",
        headers={"Retry-After": str(retry_after_s)},
    )


class LiveHub:
    def __init__(self, *, max_streams: int, retry_after_s: int = 5) -> None:
        self.max_streams = max_streams
        self._retry_after_s = retry_after_s
        self._by_code: dict[str, set[Subscription]] = {}
        self._count = 0
        self.rows_delivered = 0  # activity rows of a code somebody listens to
        self.refused = 0  # subscriptions refused (the limit was reached)

    @property
    def subscribers(self) -> int:
        return self._count

    def subscribers_of(self, code: str) -> int:
        return len(self._by_code.get(code, ()))

    def subscribe(self, code: str) -> Subscription:
        if self._count >= self.max_streams:
            self.refused += 1
            raise streams_exhausted(self._retry_after_s)
        sub = Subscription(code, self)
        self._by_code.setdefault(code, set()).add(sub)
        self._count += 1
        return sub

    def _remove(self, sub: Subscription) -> None:
        subs = self._by_code.get(sub.code)
        if subs is not None and sub in subs:
            subs.discard(sub)
            self._count -= 1
            if not subs:
                del self._by_code[sub.code]

    def publish(self, code: str, clicks: int, bot_clicks: int, first_at: int, last_at: int) -> None:
        """One activity row: to every subscription of `code` (none: one dict lookup)."""
        subs = self._by_code.get(code)
        if subs:
            self.rows_delivered += 1
            for sub in subs:
                sub.add(clicks, bot_clicks, first_at, last_at)

    def close(self) -> None:
        """The process stops: end every stream."""
        for subs in list(self._by_code.values()):
            for sub in list(subs):
                sub.close()


@dataclass(frozen=True, kw_only=True)
class LiveStream:
    """An opened live stream: the link's lifetime totals when it opened (the baseline the live
    counts add to) and its subscription."""

    lifetime: Lifetime
    subscription: Subscription
    ends_at: float  # monotonic time at which the stream ends (the client reconnects, re-authorised)


async def open_live(
    code: str,
    *,
    caller: Principal | None,
    totals: Totals,
    hub: LiveHub,
    max_stream_s: float,
    clock: Callable[[], float] = time.monotonic,
) -> LiveStream:
    """A subscription to `code`'s live counts for a caller who may read its stats (else the
    unknown code's 404, or 403), or 503 when the process has no room for another stream."""
    lifetime = await totals.lifetime(code)
    owner = None if lifetime is None else LinkOwner(workspace=lifetime.workspace, public_stats=lifetime.public_stats)
    check_stats_access(code, owner, caller)
    if lifetime is None:  # check_stats_access raised already; for the type checker
        raise unknown_link(code)
    return LiveStream(lifetime=lifetime, subscription=hub.subscribe(code), ends_at=clock() + max_stream_s)
