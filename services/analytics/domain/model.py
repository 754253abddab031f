"""Result shapes and the response bodies they render to. Pure.

The bodies are msgspec Structs: the handlers encode them and the OpenAPI document is generated
from them (entrypoints/openapi.py), so the document cannot drift from what is sent.
"""

import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Annotated

import msgspec

from analytics.domain.queries import Interval, StatsQuery, TopQuery, Window

DIRECT = "(direct)"  # the referrer value for clicks without a referrer


@dataclass(frozen=True, kw_only=True)
class Lifetime:
    """PostgreSQL link totals: exact lifetime counters (human clicks; bots apart)."""

    clicks: int
    bot_clicks: int
    first_click_at: datetime | None
    last_click_at: datetime | None
    # Who owns the link (clicks.links_known; a code with clicks the `links` topic never announced
    # belongs to `default`, like every link from before workspaces) and whether its stats are public.
    workspace: str = "default"
    public_stats: bool = False


@dataclass(frozen=True, kw_only=True)
class Point:
    t: datetime
    clicks: int
    unique_visitors: int


@dataclass(frozen=True, kw_only=True)
class Share:
    value: str
    clicks: int


@dataclass(frozen=True, kw_only=True)
class RangeStats:
    clicks: int
    unique_visitors: int
    series: list[Point] = field(default_factory=list)
    referrers: list[Share] = field(default_factory=list)
    countries: list[Share] = field(default_factory=list)
    devices: list[Share] = field(default_factory=list)


@dataclass(frozen=True, kw_only=True)
class TopLink:
    code: str
    clicks: int
    unique_visitors: int


UtcTime = Annotated[str, msgspec.Meta(description="ISO 8601, UTC (`...Z`)", extra_json_schema={"format": "date-time"})]


class Counted(msgspec.Struct, frozen=True):
    clicks: int
    unique_visitors: int


class LifetimeBody(msgspec.Struct, frozen=True):
    """Exact lifetime counters (human clicks; bot clicks apart)."""

    clicks: int
    bot_clicks: int
    first_click_at: UtcTime | None
    last_click_at: UtcTime | None


class SeriesPoint(msgspec.Struct, frozen=True):
    t: UtcTime
    clicks: int
    unique_visitors: int


class ShareBody(msgspec.Struct, frozen=True):
    value: str
    clicks: int


class RegionCountsBody(msgspec.Struct, frozen=True):
    """One region's exact lifetime counters of the link (clicks counted where they happened)."""

    name: str
    clicks: int
    bot_clicks: int


class GlobalCountsBody(msgspec.Struct, frozen=True):
    """Every region's lifetime counters summed; `regions` lists each (this one first). A remote
    region's are as of its clicks mirrored here (MirrorMaker 2's lag, docs/regions.md)."""

    clicks: int
    bot_clicks: int
    regions: list[RegionCountsBody]


class StatsBody(msgspec.Struct, frozen=True, omit_defaults=True):
    """GET /api/v1/links/{code}/stats: the range [from, to) and the link's lifetime; on a stack
    of several regions (docs/regions.md) also `region` (this region's lifetime counts, the same
    as `lifetime`'s) and `global` (all regions' summed)."""

    code: str
    from_: UtcTime = msgspec.field(name="from")
    to: UtcTime
    interval: Interval
    include_bots: bool
    totals: Counted
    lifetime: LifetimeBody
    series: list[SeriesPoint]
    top_referrers: list[ShareBody]
    countries: list[ShareBody]
    devices: list[ShareBody]
    region: RegionCountsBody | None = None
    global_: GlobalCountsBody | None = msgspec.field(default=None, name="global")


class TopLinkBody(msgspec.Struct, frozen=True):
    code: str
    clicks: int
    unique_visitors: int


class TopBody(msgspec.Struct, frozen=True):
    """GET /api/v1/top: the caller's workspace's links ranked by clicks in the window."""

    workspace: str
    tag: str | None
    window: Window
    from_: UtcTime = msgspec.field(name="from")
    to: UtcTime
    include_bots: bool
    links: list[TopLinkBody]


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _iso_or_none(moment: datetime | None) -> str | None:
    return None if moment is None else iso(moment)


def _series(points: list[Point], *, start: datetime, end: datetime, step_s: int) -> list[SeriesPoint]:
    """Every bucket in [start, end), zeros where nothing was counted. On unix seconds: a minute
    series of 24 h is 1440 points per answer."""
    by_ts = {int(p.t.timestamp()): p for p in points}
    out = []
    for ts in range(int(start.timestamp()), int(end.timestamp()), step_s):
        point = by_ts.get(ts)
        out.append(
            SeriesPoint(
                t=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts)),
                clicks=point.clicks if point else 0,
                unique_visitors=point.unique_visitors if point else 0,
            )
        )
    return out


def _shares(shares: list[Share]) -> list[ShareBody]:
    return [ShareBody(value=s.value, clicks=s.clicks) for s in shares]


def render_regions(
    here: str, own: Lifetime, remote: dict[str, Lifetime | None]
) -> tuple[RegionCountsBody, GlobalCountsBody]:
    """This region's counts and the global sum (a remote region that counted no click: zeros)."""
    regions = [RegionCountsBody(name=here, clicks=own.clicks, bot_clicks=own.bot_clicks)]
    for name, counts in sorted(remote.items()):
        clicks, bots = (counts.clicks, counts.bot_clicks) if counts is not None else (0, 0)
        regions.append(RegionCountsBody(name=name, clicks=clicks, bot_clicks=bots))
    total = GlobalCountsBody(
        clicks=sum(r.clicks for r in regions), bot_clicks=sum(r.bot_clicks for r in regions), regions=regions
    )
    return regions[0], total


def render_stats(
    query: StatsQuery,
    lifetime: Lifetime,
    stats: RangeStats,
    *,
    regions: tuple[RegionCountsBody, GlobalCountsBody] | None = None,
) -> StatsBody:
    return StatsBody(
        code=query.code,
        from_=iso(query.start),
        to=iso(query.end),
        interval=query.interval,
        include_bots=query.include_bots,
        totals=Counted(clicks=stats.clicks, unique_visitors=stats.unique_visitors),
        lifetime=render_lifetime(lifetime),
        series=_series(stats.series, start=query.start, end=query.end, step_s=query.step_s),
        top_referrers=_shares(stats.referrers),
        countries=_shares(stats.countries),
        devices=_shares(stats.devices),
        region=regions[0] if regions else None,
        global_=regions[1] if regions else None,
    )


def render_top(query: TopQuery, links: list[TopLink]) -> TopBody:
    return TopBody(
        workspace=query.workspace,
        tag=query.tag,
        window=query.window,
        from_=iso(query.start),
        to=iso(query.end),
        include_bots=query.include_bots,
        links=[TopLinkBody(code=t.code, clicks=t.clicks, unique_visitors=t.unique_visitors) for t in links],
    )


class LiveReadyBody(msgspec.Struct, frozen=True):
    """The first event of a live stream (`event: ready`): the link's exact lifetime counters as the
    stream opened; the `clicks` events that follow add to them."""

    code: str
    lifetime: LifetimeBody
    heartbeat_s: float  # a comment line at least this often while nothing happens


class LiveClicksBody(msgspec.Struct, frozen=True):
    """`event: clicks`: what the link received since the previous event (best-effort: the exact
    numbers are /stats'), with the time span of those clicks."""

    code: str
    clicks: int
    bot_clicks: int
    first_at: UtcTime
    last_at: UtcTime


def render_lifetime(lifetime: Lifetime) -> LifetimeBody:
    return LifetimeBody(
        clicks=lifetime.clicks,
        bot_clicks=lifetime.bot_clicks,
        first_click_at=_iso_or_none(lifetime.first_click_at),
        last_click_at=_iso_or_none(lifetime.last_click_at),
    )


def render_live_clicks(code: str, clicks: int, bot_clicks: int, first_at: int, last_at: int) -> LiveClicksBody:
    return LiveClicksBody(
        code=code,
        clicks=clicks,
        bot_clicks=bot_clicks,
        first_at=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(first_at)),
        last_at=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(last_at)),
    )
