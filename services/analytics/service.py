"""Use cases: one function per endpoint, taking a parsed query and the ports."""

from typing import Any

from analytics.cache import TtlCache
from analytics.domain.errors import UnknownLink
from analytics.domain.model import render_stats, render_top
from analytics.domain.queries import StatsQuery, TopQuery
from analytics.ports import Events, Totals


async def link_stats(query: StatsQuery, *, totals: Totals, events: Events) -> dict[str, Any]:
    """404 for a code with no clicks that the `links` topic never announced; else the stats."""
    lifetime = await totals.lifetime(query.code)
    if lifetime is None:
        raise UnknownLink(f"no link {query.code!r} is known and it has no clicks", field="code")
    return render_stats(query, lifetime, await events.range_stats(query))


async def top_links(query: TopQuery, *, events: Events, cache: TtlCache) -> dict[str, Any]:
    """Shared for the cache's TTL (a couple of seconds) across callers asking the same thing."""

    async def compute() -> dict[str, Any]:
        return render_top(query, await events.top(query))

    result: dict[str, Any] = await cache.get((query.window, query.limit, query.include_bots), compute)
    return result
