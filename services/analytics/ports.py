"""What the analytics use cases need from the stores and the key book (adapters implement; unit
tests fake)."""

from collections.abc import Awaitable, Callable, Hashable
from typing import Any, Protocol

from platformkit.apikeys import Principal, Verdict

from analytics.domain.model import Lifetime, RangeStats, TopLink
from analytics.domain.queries import StatsQuery, TopQuery


class Totals(Protocol):
    async def ping(self) -> None: ...

    async def lifetime(self, code: str) -> Lifetime | None:
        """Lifetime counters, zeros for a known link without clicks, None for an unknown code."""
        ...


class Events(Protocol):
    async def ping(self) -> None: ...

    async def range_stats(self, query: StatsQuery) -> RangeStats: ...

    async def top(self, query: TopQuery) -> list[TopLink]: ...


class Authenticator(Protocol):
    """What KeysLog offers: `Authorization` header -> Principal, or ApiError 401."""

    async def authenticate(self, authorization: str | None) -> Principal: ...


Hit = Callable[[str], Awaitable[Verdict]]


class AnswerCache(Protocol):
    """Answers shared for a while across callers (TtlCache): one computation per key at a time."""

    async def get(self, key: Hashable, compute: Callable[[], Awaitable[Any]]) -> Any: ...
