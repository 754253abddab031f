"""Reading click totals from the analytics API through the public entry point."""

import asyncio
from collections.abc import Mapping, Sequence
from typing import Any

import httpx

FETCH_CONCURRENCY = 16


def clicks_of(payload: Any) -> int:
    """The total clicks in a `GET /api/v1/links/{code}/stats` body (bots excluded)."""
    if not isinstance(payload, dict):
        raise ValueError("stats body is not a JSON object")
    totals = payload.get("totals")
    value = totals.get("clicks") if isinstance(totals, dict) else payload.get("clicks")
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise ValueError(f"stats body has no click total: {str(payload)[:200]}")
    return value


class AnalyticsClicks:
    """The check's fetch function: code -> clicks, or None while analytics does not know the code."""

    def __init__(self, client: httpx.AsyncClient) -> None:
        self._client = client
        self._gate = asyncio.Semaphore(FETCH_CONCURRENCY)

    async def one(self, code: str) -> int | None:
        async with self._gate:
            try:
                response = await self._client.get(f"/api/v1/links/{code}/stats")
            except httpx.TransportError:
                return None  # unreachable for now: the poll is retried until the deadline
        if response.status_code in (404, 503) or response.status_code >= 500:
            return None
        response.raise_for_status()
        return clicks_of(response.json())

    async def __call__(self, codes: Sequence[str]) -> Mapping[str, int | None]:
        values = await asyncio.gather(*(self.one(code) for code in codes))
        return dict(zip(codes, values, strict=True))
