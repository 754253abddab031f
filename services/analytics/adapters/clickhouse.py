"""ClickHouse rollups (database `shortlink`, written by the aggregator's materialized views),
queried through clickhouse-sqlalchemy's HTTP engine. The engine is synchronous: every query
runs in a worker thread (asyncio.to_thread) so the event loop never blocks.

Counts are uniqExactMerge over event-id states: a repeated event never inflates them.
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
from analytics.domain.queries import StatsQuery, TopQuery

BREAKDOWN_LIMIT = 10
# Rollup table and its time column per interval.
TABLES = {"minute": ("clicks_minute", "minute"), "hour": ("clicks_hour", "hour"), "day": ("clicks_day", "day")}


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


def _where(col: str) -> str:
    return (f"code = :code AND is_bot IN :bots AND {col} >= toDateTime(:start) "
            f"AND {col} < toDateTime(:end)")


def _sql(statement: str) -> TextClause:
    return text(statement).bindparams(bindparam("bots", expanding=True))


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
        table, col = TABLES[query.interval]
        params = {"code": query.code, "bots": _bots(query.include_bots),
                  "start": int(query.start.timestamp()), "end": int(query.end.timestamp())}
        series_sql = _sql(
            f"SELECT toUnixTimestamp({col}) AS t, uniqExactMerge(events), uniqMerge(visitors) "
            f"FROM {table} WHERE {_where(col)} GROUP BY t ORDER BY t")
        totals_sql = _sql(
            f"SELECT uniqExactMerge(events), uniqMerge(visitors) FROM {table} WHERE {_where(col)}")
        dims_sql = _sql(
            "SELECT dim, value, uniqExactMerge(events) AS clicks FROM clicks_dims_minute "
            f"WHERE {_where('minute')} GROUP BY dim, value "
            f"ORDER BY dim, clicks DESC, value LIMIT {BREAKDOWN_LIMIT} BY dim")
        series, totals, dims = await asyncio.gather(
            self._query(series_sql, params), self._query(totals_sql, params), self._query(dims_sql, params)
        )
        breakdown: dict[str, list[Share]] = {"referrer": [], "country": [], "device": []}
        for dim, value, clicks in dims:
            if dim in breakdown:
                label = DIRECT if dim == "referrer" and value == "" else str(value)
                breakdown[dim].append(Share(value=label, clicks=int(clicks)))
        clicks, visitors = (int(totals[0][0]), int(totals[0][1])) if totals else (0, 0)
        return RangeStats(
            clicks=clicks,
            unique_visitors=visitors,
            series=[Point(t=datetime.fromtimestamp(int(t), UTC), clicks=int(c), unique_visitors=int(v))
                    for t, c, v in series],
            referrers=breakdown["referrer"],
            countries=breakdown["country"],
            devices=breakdown["device"],
        )

    async def top(self, query: TopQuery) -> list[TopLink]:
        table, col = TABLES["minute" if query.window == "1h" else "hour"]
        statement = _sql(
            f"SELECT code, uniqExactMerge(events) AS clicks, uniqMerge(visitors) FROM {table} "
            f"WHERE is_bot IN :bots AND {col} >= toDateTime(:start) "
            "GROUP BY code ORDER BY clicks DESC, code LIMIT :limit")
        rows = await self._query(statement, {"bots": _bots(query.include_bots),
                                             "start": int(query.start.timestamp()), "limit": query.limit})
        return [TopLink(code=str(c), clicks=int(n), unique_visitors=int(v)) for c, n, v in rows]

    async def ping(self) -> None:
        await self._query(text("SELECT 1"), {})

    def close(self) -> None:
        self._engine.dispose()
