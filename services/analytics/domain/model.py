"""Result shapes and their JSON rendering. Pure."""

import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from analytics.domain.queries import StatsQuery, TopQuery

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


def iso(moment: datetime | None) -> str | None:
    if moment is None:
        return None
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _series(points: list[Point], *, start: datetime, end: datetime, step_s: int) -> list[dict[str, Any]]:
    """Every bucket in [start, end), zeros where nothing was counted. On unix seconds: a minute
    series of 24 h is 1440 points per answer."""
    by_ts = {int(p.t.timestamp()): p for p in points}
    out = []
    for ts in range(int(start.timestamp()), int(end.timestamp()), step_s):
        point = by_ts.get(ts)
        out.append({"t": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts)),
                    "clicks": point.clicks if point else 0,
                    "unique_visitors": point.unique_visitors if point else 0})
    return out


def _shares(shares: list[Share]) -> list[dict[str, Any]]:
    return [{"value": s.value, "clicks": s.clicks} for s in shares]


def render_stats(query: StatsQuery, lifetime: Lifetime, stats: RangeStats) -> dict[str, Any]:
    return {
        "code": query.code,
        "from": iso(query.start),
        "to": iso(query.end),
        "interval": query.interval,
        "include_bots": query.include_bots,
        "totals": {"clicks": stats.clicks, "unique_visitors": stats.unique_visitors},
        "lifetime": {
            "clicks": lifetime.clicks,
            "bot_clicks": lifetime.bot_clicks,
            "first_click_at": iso(lifetime.first_click_at),
            "last_click_at": iso(lifetime.last_click_at),
        },
        "series": _series(stats.series, start=query.start, end=query.end, step_s=query.step_s),
        "top_referrers": _shares(stats.referrers),
        "countries": _shares(stats.countries),
        "devices": _shares(stats.devices),
    }


def render_top(query: TopQuery, links: list[TopLink]) -> dict[str, Any]:
    return {
        "workspace": query.workspace,
        "tag": query.tag,
        "window": query.window,
        "from": iso(query.start),
        "to": iso(query.end),
        "include_bots": query.include_bots,
        "links": [{"code": t.code, "clicks": t.clicks, "unique_visitors": t.unique_visitors} for t in links],
    }
