"""What the analytics use cases need from the stores (adapters implement; unit tests fake)."""

from typing import Protocol

from analytics.domain.model import Lifetime, RangeStats, TopLink
from analytics.domain.queries import StatsQuery, TopQuery


class Totals(Protocol):
    async def lifetime(self, code: str) -> Lifetime | None:
        """Lifetime counters, zeros for a known link without clicks, None for an unknown code."""
        ...


class Events(Protocol):
    async def range_stats(self, query: StatsQuery) -> RangeStats: ...

    async def top(self, query: TopQuery) -> list[TopLink]: ...
