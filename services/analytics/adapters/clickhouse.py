"""ClickHouse rollups (database `shortlink`, fed by the aggregator through the rollup feeds'
materialized views), queried through clickhouse-sqlalchemy's HTTP engine. The engine is
synchronous: every query runs in a worker thread (asyncio.to_thread) so the event loop never
blocks.

Clicks are sum(clicks): the aggregator sends every click to the feeds exactly once. Unique
visitors are uniqMerge over the visitor-key states. Every query filters is_bot IN (0) or (0, 1):
the aggregator's marker rows (is_bot = 2) never count.
"""

import asyncio
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import Engine, bindparam, create_engine, text
from sqlalchemy.sql.elements import TextClause

from analytics.domain.errors import StoreUnavailable
from analytics.domain.model import DIRECT, Point, RangeStats, Share, TopLink
from analytics.domain.queries import Interval, Span, StatsQuery, TopQuery, covering_spans, top_spans

BREAKDOWN_LIMIT = 10
# clicks_rollup.grain / clicks_top.grain per interval.
GRAINS: dict[Interval, int] = {"minute": 0, "hour": 1, "day": 2}


def build_engine(url: str, *, database: str, timeout_s: float, pool_size: int) -> Engine:
    parts = urlsplit(url)
    return create_engine(
        f"clickhouse+http://{parts.username or 'default'}:{parts.password or ''}@"
        f"{parts.hostname}:{parts.port or 8123}/{database}"
        f"?protocol={parts.scheme or 'http'}&timeout={timeout_s}",
        pool_size=pool_size,
        pool_pre_ping=False,
    )


def _bots(include: bool) -> list[int]:
    return [0, 1] if include else [0]


def _sql(statement: str, *expanding: str) -> TextClause:
    return text(statement).bindparams(*(bindparam(name, expanding=True) for name in ("bots", *expanding)))


# One link's rows of one grain in [start, end).
_LINK_RANGE = ("code = :code AND grain = :grain AND is_bot IN :bots "
               "AND bucket >= toDateTime(:start) AND bucket < toDateTime(:end)")


def stats_sql(covering: str) -> TextClause:
    """Series, totals and breakdowns in one statement (one round trip, one worker thread), told
    apart by `part`: 0 = the series (key = "t clicks visitors" per bucket, comma-separated: one
    row for up to 1440 buckets, which the driver would otherwise parse value by value), 1 = the
    totals, 2 = a breakdown row (key = dim). The series reads the interval's grain; totals and
    breakdowns read the range's covering spans (`covering`, from spans_where(covering_spans(...))):
    whole days and hours hold the same sums in far fewer rows, and a hot link's visitor states are
    its cost (a day's state is at most 64k keys where its minutes hold every visit).

    The series reads FINAL (one row per bucket and is_bot, parts merged on read) and finalizes
    each row's visitor state, ~3x cheaper than merging states per bucket. Humans' and bots'
    visitor keys never overlap (the key hashes the User-Agent, which decides is_bot), so a bucket's
    visitors with bots are the sum of both rows."""
    return _sql(
        "SELECT toUInt8(0) AS part, arrayStringConcat(groupArray(concat(toString(t), ' ', toString(n), ' ', "
        "toString(u))), ',') AS key, '' AS value, toUInt64(0) AS c, toUInt64(0) AS v FROM ("
        "SELECT toUnixTimestamp(bucket) AS t, sum(clicks) AS n, sum(finalizeAggregation(visitors)) AS u "
        f"FROM clicks_rollup FINAL WHERE {_LINK_RANGE} AND dim = '' GROUP BY bucket) "
        "UNION ALL "
        "SELECT toUInt8(1) AS part, '' AS key, '' AS value, sum(clicks) AS c, uniqMerge(visitors) AS v "
        f"FROM clicks_rollup WHERE code = :code AND dim = '' AND is_bot IN :bots AND ({covering}) "
        "UNION ALL "
        "SELECT toUInt8(2) AS part, dim AS key, value, c, toUInt64(0) AS v FROM ("
        "SELECT dim, value, sum(clicks) AS c FROM clicks_rollup WHERE code = :code AND is_bot IN :bots "
        f"AND dim IN ('referrer', 'country', 'device') AND ({covering}) "
        f"GROUP BY dim, value ORDER BY dim, c DESC, value LIMIT {BREAKDOWN_LIMIT} BY dim)")


def spans_where(spans: list[Span]) -> tuple[str, dict[str, Any]]:
    """`(grain = .. AND bucket >= .. [AND bucket < ..]) OR ...` for /top's spans, and its parameters."""
    terms, params = [], {}
    for i, span in enumerate(spans):
        term = f"grain = {GRAINS[span.interval]} AND bucket >= toDateTime(:s{i})"
        params[f"s{i}"] = int(span.start.timestamp())
        if span.end is not None:
            term += f" AND bucket < toDateTime(:e{i})"
            params[f"e{i}"] = int(span.end.timestamp())
        terms.append(f"({term})")
    return " OR ".join(terms), params


def ranking_sql(where: str) -> TextClause:
    """/top's ranking over clicks_top (`where` from spans_where)."""
    return _sql(f"SELECT code, sum(clicks) AS c FROM clicks_top WHERE is_bot IN :bots AND ({where}) "
                "GROUP BY code ORDER BY c DESC, code LIMIT :limit")


def top_visitors_sql(where: str) -> TextClause:
    """Unique visitors of the ranked codes only, over the same buckets."""
    return _sql("SELECT code, uniqMerge(visitors) FROM clicks_rollup "
                f"WHERE code IN :codes AND dim = '' AND is_bot IN :bots AND ({where}) GROUP BY code", "codes")


class ClickHouseEvents:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def _fetch(self, statement: TextClause, params: Mapping[str, Any]) -> list[tuple[Any, ...]]:
        with self._engine.connect() as conn:
            return [tuple(row) for row in conn.execute(statement, dict(params))]

    async def _query(self, statement: TextClause, params: Mapping[str, Any]) -> list[tuple[Any, ...]]:
        try:
            return await asyncio.to_thread(self._fetch, statement, params)
        except Exception as exc:  # driver, HTTP or server error: the store cannot answer
            raise StoreUnavailable("ClickHouse is unavailable") from exc

    async def range_stats(self, query: StatsQuery) -> RangeStats:
        """Series, totals and breakdowns from the rollup grain of the interval (the range is
        aligned to it, so every bucket read is whole)."""
        covering, spans = spans_where(covering_spans(query.start, query.end, query.interval))
        params = {"code": query.code, "grain": GRAINS[query.interval], "bots": _bots(query.include_bots),
                  "start": int(query.start.timestamp()), "end": int(query.end.timestamp()), **spans}
        series: list[Point] = []
        clicks = visitors = 0
        breakdown: dict[str, list[Share]] = {"referrer": [], "country": [], "device": []}
        for part, key, value, count, uniq in await self._query(stats_sql(covering), params):
            if int(part) == 0:
                for point in filter(None, key.split(",")):
                    t, n, u = point.split(" ")
                    series.append(Point(t=datetime.fromtimestamp(int(t), UTC), clicks=int(n), unique_visitors=int(u)))
            elif int(part) == 1:
                clicks, visitors = int(count), int(uniq)
            elif key in breakdown:
                label = DIRECT if key == "referrer" and value == "" else str(value)
                breakdown[key].append(Share(value=label, clicks=int(count)))
        # Breakdowns arrive in rank order within their dim; UNION ALL does not order the parts.
        for shares in breakdown.values():
            shares.sort(key=lambda s: (-s.clicks, s.value))
        return RangeStats(
            clicks=clicks,
            unique_visitors=visitors,
            series=sorted(series, key=lambda p: p.t),
            referrers=breakdown["referrer"],
            countries=breakdown["country"],
            devices=breakdown["device"],
        )

    async def top(self, query: TopQuery) -> list[TopLink]:
        """Rank links by clicks over clicks_top (time-ordered: the window's buckets of every link),
        then count unique visitors of the top N only, from clicks_rollup."""
        where, params = spans_where(top_spans(query))
        bots = _bots(query.include_bots)
        ranked = await self._query(ranking_sql(where), {**params, "bots": bots, "limit": query.limit})
        if not ranked:
            return []
        codes = [str(code) for code, _ in ranked]
        visitors = dict(await self._query(top_visitors_sql(where), {**params, "bots": bots, "codes": codes}))
        return [TopLink(code=code, clicks=int(clicks), unique_visitors=int(visitors.get(code, 0)))
                for code, (_, clicks) in zip(codes, ranked, strict=True)]

    async def ping(self) -> None:
        await self._query(text("SELECT 1"), {})

    def close(self) -> None:
        self._engine.dispose()
