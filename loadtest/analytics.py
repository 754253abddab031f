"""Reading click counts from the analytics API through the public entry point.

`GET /api/v1/links/{code}/stats` reports each link's clicks twice, from two stores:
`lifetime.clicks` (PostgreSQL's exact totals) and `totals.clicks` (ClickHouse events over the
default range, the last 24 h, which covers a run). Both exclude bots by default. A code counts
as settled only when the two agree; until then (one store is written after the other) it reads
as not yet known, and the check keeps polling.
"""

import asyncio
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import httpx

FETCH_CONCURRENCY = 8


@dataclass(frozen=True)
class StoreCounts:
    lifetime: int  # PostgreSQL totals
    in_range: int  # ClickHouse events in the default range

    @property
    def agreed(self) -> int | None:
        return self.lifetime if self.lifetime == self.in_range else None


def _count(value: Any, where: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise ValueError(f"stats body has no valid {where}")
    return value


def counts_of(payload: Any) -> StoreCounts:
    """Both click counts of a stats body; ValueError when the body does not have them."""
    if not isinstance(payload, dict):
        raise ValueError("stats body is not a JSON object")
    lifetime, totals = payload.get("lifetime"), payload.get("totals")
    if not isinstance(lifetime, dict) or not isinstance(totals, dict):
        raise ValueError("stats body lacks lifetime/totals")
    return StoreCounts(_count(lifetime.get("clicks"), "lifetime.clicks"), _count(totals.get("clicks"), "totals.clicks"))


class AnalyticsClicks:
    """The check's fetch function: code -> agreed clicks, or None while not known or not agreed.

    `last` keeps each code's latest counts from both stores, for the report.
    """

    def __init__(self, client: httpx.AsyncClient, *, api_key: str) -> None:
        self._client = client
        # Stats need a key of the links' workspace (the key that created them).
        self._headers = {"Authorization": f"Bearer {api_key}"}
        self._gate = asyncio.Semaphore(FETCH_CONCURRENCY)
        self.last: dict[str, StoreCounts] = {}

    async def one(self, code: str) -> int | None:
        async with self._gate:
            try:
                # interval=day: the same totals over the default range, with a one-point series.
                response = await self._client.get(
                    f"/api/v1/links/{code}/stats", params={"interval": "day"}, headers=self._headers
                )
            except httpx.TransportError:
                return None  # unreachable for now: polled again until the deadline
        if response.status_code == 404 or response.status_code >= 500:
            return None  # not announced yet / briefly unavailable
        response.raise_for_status()
        counts = counts_of(response.json())
        self.last[code] = counts
        return counts.agreed

    async def __call__(self, codes: Sequence[str]) -> Mapping[str, int | None]:
        values = await asyncio.gather(*(self.one(code) for code in codes))
        return dict(zip(codes, values, strict=True))
