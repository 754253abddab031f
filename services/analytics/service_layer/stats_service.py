"""Use cases: one function per endpoint, taking a parsed query, the caller and the ports."""

from collections.abc import Mapping

from platformkit.apikeys import Principal

from analytics.domain.access import LinkOwner, check_stats_access, unknown_link
from analytics.domain.model import StatsBody, TopBody, render_regions, render_stats, render_top
from analytics.domain.queries import StatsQuery, TopQuery
from analytics.ports import AnswerCache, Events, Totals


async def link_stats(
    query: StatsQuery,
    *,
    caller: Principal | None,
    totals: Totals,
    events: Events,
    region: str = "",
    remote_totals: Mapping[str, Totals] | None = None,
) -> StatsBody:
    """The stats, to a caller who may read them (domain/access.py); else the unknown code's 404.
    With a `region` name, also this region's and the global lifetime counts: the other regions'
    are read here too, from the databases their mirrored clicks are counted into (no call to
    another region while answering)."""
    lifetime = await totals.lifetime(query.code)
    owner = None if lifetime is None else LinkOwner(workspace=lifetime.workspace, public_stats=lifetime.public_stats)
    check_stats_access(query.code, owner, caller)
    if lifetime is None:  # check_stats_access raised already; for the type checker
        raise unknown_link(query.code)
    regions = None
    if region:
        remote = {name: await other.lifetime(query.code) for name, other in (remote_totals or {}).items()}
        regions = render_regions(region, lifetime, remote)
    return render_stats(query, lifetime, await events.range_stats(query), regions=regions)


async def top_links(query: TopQuery, *, events: Events, cache: AnswerCache) -> TopBody:
    """Shared for the cache's TTL (a couple of seconds) across callers of one workspace asking the
    same thing (the key holds the workspace: one workspace never sees another's answer)."""

    async def compute() -> TopBody:
        return render_top(query, await events.top(query))

    key = (query.workspace, query.tag, query.window, query.limit, query.include_bots)
    result: TopBody = await cache.get(key, compute)
    return result
