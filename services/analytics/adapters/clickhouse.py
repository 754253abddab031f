"""ClickHouse rollups (database `shortlink`: clicks_totals, clicks_breakdown and clicks_top, fed by
the aggregator through the rollup feeds' materialized views). Statements are built with SQLAlchemy
text clauses and compiled by clickhouse-sqlalchemy's dialect, values rendered by its escaper (as its
HTTP driver renders them: 18.16 has no server-side parameters); they run on the event loop through
the shared async client (platformkit.clickhouse: httpx, one keep-alive pool), answers read as
TabSeparated strings.

Clicks are sum(clicks): the aggregator sends every click to the feeds exactly once. Unique
visitors are uniqMerge over the visitor-key states. Every query filters is_bot IN (0) or (0, 1):
the aggregator's marker rows (is_bot = 2) never count.
"""

import asyncio
import functools
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import httpx
from clickhouse_sqlalchemy.drivers.http.base import ClickHouseDialect_http
from clickhouse_sqlalchemy.drivers.http.escaper import Escaper
from platformkit.clickhouse import ClickHouseClient, ClickHouseConfig, ClickHouseError
from sqlalchemy import bindparam, text
from sqlalchemy.sql.elements import TextClause

from analytics.adapters.memory_cache import CountedCache
from analytics.domain.errors import StoreUnavailable
from analytics.domain.model import DIRECT, Point, RangeStats, Share, TopLink
from analytics.domain.queries import Interval, Span, StatsQuery, TopQuery, covering_spans, top_spans

BREAKDOWN_LIMIT = 10
# The rollups' grain column per interval.
GRAINS: dict[Interval, int] = {"minute": 0, "hour": 1, "day": 2}


def build_client(url: str, *, database: str, timeout_s: float, pool_size: int) -> ClickHouseClient:
    """At most `pool_size` queries at a time (the rest wait for a connection)."""
    return ClickHouseClient(
        ClickHouseConfig(url=url, database=database, timeout_s=timeout_s, max_connections=pool_size)
    )


_DIALECT = ClickHouseDialect_http()
_ESCAPER = Escaper()


def render(statement: TextClause, params: Mapping[str, Any]) -> str:
    """The statement as ClickHouse receives it: compiled for clickhouse-sqlalchemy's HTTP dialect
    (an expanding parameter becomes one placeholder per value, `name_1, name_2, ...`), then
    `sql % escaped values`, as its driver does. The compiled text is kept per statement and
    list lengths (SQLAlchemy's engine kept it too; compiling costs ~100x the formatting)."""
    shape = tuple(sorted((k, len(v) if isinstance(v, list | tuple) else -1) for k, v in params.items()))
    values: dict[str, Any] = {}
    for name, value in params.items():
        if isinstance(value, list | tuple):
            values.update((f"{name}_{i}", item) for i, item in enumerate(value, 1))
        else:
            values[name] = value
    return str(_compiled(statement.text, shape) % _ESCAPER.escape(values))


@functools.lru_cache(maxsize=1024)
def _compiled(sql: str, shape: tuple[tuple[str, int], ...]) -> str:
    """`sql` compiled for parameters of this shape (name, list length or -1 for a single value)."""
    lengths = dict(shape)
    statement = text(sql).bindparams(*(bindparam(name, expanding=True) for name, n in lengths.items() if n >= 0))
    placeholders = {name: list(range(n)) if n >= 0 else 0 for name, n in lengths.items()}
    compiled = statement.bindparams(**placeholders).compile(
        dialect=_DIALECT, compile_kwargs={"render_postcompile": True}
    )
    return str(compiled.string)


def _bots(include: bool) -> list[int]:
    return [0, 1] if include else [0]


def _sql(statement: str, *expanding: str) -> TextClause:
    return text(statement).bindparams(*(bindparam(name, expanding=True) for name in ("bots", *expanding)))


# One link's rows of one grain in [start, end).
_LINK_RANGE = (
    "code = :code AND grain = :grain AND is_bot IN :bots AND bucket >= toDateTime(:start) AND bucket < toDateTime(:end)"
)


def counts_sql(covering: str) -> TextClause:
    """Series, totals and breakdowns in clicks (no visitor state is read) in one statement (one
    round trip, one worker thread), told apart by `part`: 0 = the series (key = "t clicks" per
    bucket, comma-separated: one row for up to 1440 buckets, which the driver would otherwise parse
    value by value), 1 = the totals, 2 = a breakdown row (key = dim; clicks_breakdown holds
    (referrer, country, device) combinations, split by dim here). The series reads the interval's
    grain; totals and breakdowns read the range's covering spans (`covering`, from
    spans_where(covering_spans(...))): whole days and hours hold the same sums in far fewer rows."""
    return _sql(
        "SELECT toUInt8(0) AS part, arrayStringConcat(groupArray(concat(toString(t), ' ', toString(n))), ',') "
        "AS key, '' AS value, toUInt64(0) AS c FROM ("
        f"SELECT toUnixTimestamp(bucket) AS t, sum(clicks) AS n FROM clicks_totals WHERE {_LINK_RANGE} "
        "GROUP BY bucket) "
        "UNION ALL "
        "SELECT toUInt8(1) AS part, '' AS key, '' AS value, sum(clicks) AS c "
        f"FROM clicks_totals WHERE code = :code AND is_bot IN :bots AND ({covering}) "
        "UNION ALL "
        "SELECT toUInt8(2) AS part, dim AS key, value, c FROM ("
        "SELECT d.1 AS dim, d.2 AS value, sum(clicks) AS c FROM clicks_breakdown "
        "ARRAY JOIN [('referrer', referrer_host), ('country', toString(country)), ('device', device)] AS d "
        f"WHERE code = :code AND is_bot IN :bots AND ({covering}) "
        f"GROUP BY dim, value ORDER BY dim, c DESC, value LIMIT {BREAKDOWN_LIMIT} BY dim)"
    )


def series_visitors_sql() -> TextClause:
    """Unique visitors (and the clicks they were counted over) per bucket of [start, end): reads
    FINAL (one row per bucket and is_bot, parts merged on read) and finalizes each row's state,
    ~3x cheaper than merging states per bucket. Humans' and bots' visitor keys never overlap (the
    key hashes the User-Agent, which decides is_bot), so a bucket's visitors with bots are the sum
    of both rows."""
    return _sql(
        "SELECT toUnixTimestamp(bucket), sum(clicks), sum(finalizeAggregation(visitors)) "
        f"FROM clicks_totals FINAL WHERE {_LINK_RANGE} GROUP BY bucket"
    )


def total_visitors_sql(covering: str) -> TextClause:
    """Unique visitors of the whole range (and its clicks), merging the covering spans' states: a
    hot link's cost (a day's state is at most 64k keys where its minutes hold every visit)."""
    return _sql(
        "SELECT sum(clicks), uniqMerge(visitors) FROM clicks_totals "
        f"WHERE code = :code AND is_bot IN :bots AND ({covering})"
    )


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


def workspace_links_sql(*, tagged: bool) -> str:
    """The codes of one workspace's links that are not deleted (and carry `:tag`): the newest row
    per link decides (argMax by version), so rows not yet merged and replayed rows answer the same.
    Reads only the workspace's granules (link_workspaces is ordered by workspace, code)."""
    having = "argMax(deleted, version) = 0"
    if tagged:
        having += " AND argMax(has(tags, :tag), version) = 1"
    return f"SELECT code FROM link_workspaces WHERE workspace = :workspace GROUP BY code HAVING {having}"


def ranking_sql(where: str, *, tagged: bool = False) -> TextClause:
    """/top's ranking over clicks_top (`where` from spans_where), of one workspace's links."""
    return _sql(
        f"SELECT code, sum(clicks) AS c FROM clicks_top WHERE is_bot IN :bots AND ({where}) "
        f"AND code IN ({workspace_links_sql(tagged=tagged)}) "
        "GROUP BY code ORDER BY c DESC, code LIMIT :limit"
    )


def top_visitors_sql(where: str) -> TextClause:
    """Unique visitors of the ranked codes only, over the same buckets."""
    return _sql(
        "SELECT code, uniqMerge(visitors) FROM clicks_totals "
        f"WHERE code IN :codes AND is_bot IN :bots AND ({where}) GROUP BY code",
        "codes",
    )


class ClickHouseEvents:
    """Unique visitors are what a hot link's /stats costs (its visitor states hold every visit of
    the range), and they only change when clicks do: they come from `visitors` (CountedCache) for
    every bucket, and for the range's total, whose click count is unchanged since they were
    counted; only the rest is read from the states (typically the newest minute of a live link)."""

    def __init__(self, client: ClickHouseClient, *, visitors: CountedCache) -> None:
        self._client = client
        self._visitors = visitors

    async def _query(self, statement: TextClause, params: Mapping[str, Any]) -> list[tuple[str, ...]]:
        sql = render(statement, params)
        try:
            return await self._client.rows(sql)
        except (ClickHouseError, httpx.HTTPError) as exc:  # refused, unreachable or timed out
            raise StoreUnavailable("ClickHouse is unavailable") from exc

    async def range_stats(self, query: StatsQuery) -> RangeStats:
        """Series, totals and breakdowns from the rollup grain of the interval (the range is
        aligned to it, so every bucket read is whole); visitors as the class says."""
        covering, spans = spans_where(covering_spans(query.start, query.end, query.interval))
        bots = _bots(query.include_bots)
        params = {
            "code": query.code,
            "grain": GRAINS[query.interval],
            "bots": bots,
            "start": int(query.start.timestamp()),
            "end": int(query.end.timestamp()),
            **spans,
        }
        series: dict[int, int] = {}
        clicks = 0
        breakdown: dict[str, list[Share]] = {"referrer": [], "country": [], "device": []}
        for part, key, value, count in await self._query(counts_sql(covering), params):
            if int(part) == 0:
                for point in filter(None, key.split(",")):
                    t, n = point.split(" ")
                    series[int(t)] = int(n)
            elif int(part) == 1:
                clicks = int(count)
            elif key in breakdown:
                label = DIRECT if key == "referrer" and value == "" else str(value)
                breakdown[key].append(Share(value=label, clicks=int(count)))
        # Breakdowns arrive in rank order within their dim; UNION ALL does not order the parts.
        for shares in breakdown.values():
            shares.sort(key=lambda s: (-s.clicks, s.value))
        per_bucket, visitors = await asyncio.gather(
            self._series_visitors(query, params, series), self._total_visitors(query, covering, params, clicks)
        )
        return RangeStats(
            clicks=clicks,
            unique_visitors=visitors,
            series=[
                Point(t=datetime.fromtimestamp(t, UTC), clicks=n, unique_visitors=per_bucket.get(t, 0))
                for t, n in sorted(series.items())
            ],
            referrers=breakdown["referrer"],
            countries=breakdown["country"],
            devices=breakdown["device"],
        )

    async def _series_visitors(
        self, query: StatsQuery, params: dict[str, Any], series: dict[int, int]
    ) -> dict[int, int]:
        scope = (query.code, query.interval, query.include_bots)
        found: dict[int, int] = {}
        missing = []
        for t, n in series.items():
            hit = self._visitors.get((*scope, t), n)
            if hit is None:
                missing.append(t)
            else:
                found[t] = hit
        if missing:  # the span from the first to the last bucket not known (usually the newest)
            rows = await self._query(
                series_visitors_sql(),
                {
                    "code": params["code"],
                    "grain": params["grain"],
                    "bots": params["bots"],
                    "start": min(missing),
                    "end": max(missing) + query.step_s,
                },
            )
            for bucket, clicks, visitors in rows:
                found[int(bucket)] = int(visitors)
                self._visitors.put((*scope, int(bucket)), int(clicks), int(visitors))
        return found

    async def _total_visitors(self, query: StatsQuery, covering: str, params: dict[str, Any], clicks: int) -> int:
        key = ("total", query.code, query.include_bots, query.interval, query.start, query.end)
        hit = self._visitors.get(key, clicks)
        if hit is not None:
            return hit
        [(n, u)] = await self._query(
            total_visitors_sql(covering), {k: v for k, v in params.items() if k not in ("grain", "start", "end")}
        )
        self._visitors.put(key, int(n), int(u))
        return int(u)

    async def top(self, query: TopQuery) -> list[TopLink]:
        """Rank the workspace's links by clicks over clicks_top (time-ordered: the window's buckets
        of every link, kept when the code is one of the workspace's), then count unique visitors of
        the top N only, from clicks_totals."""
        where, params = spans_where(top_spans(query))
        bots = _bots(query.include_bots)
        owner = {"workspace": query.workspace, **({"tag": query.tag} if query.tag is not None else {})}
        ranked = await self._query(
            ranking_sql(where, tagged=query.tag is not None), {**params, **owner, "bots": bots, "limit": query.limit}
        )
        if not ranked:
            return []
        codes = [str(code) for code, _ in ranked]
        visitors = {
            code: count
            for code, count in await self._query(top_visitors_sql(where), {**params, "bots": bots, "codes": codes})
        }
        return [
            TopLink(code=code, clicks=int(clicks), unique_visitors=int(visitors.get(code, 0)))
            for code, (_, clicks) in zip(codes, ranked, strict=True)
        ]

    async def ping(self) -> None:
        await self._query(text("SELECT 1"), {})

    async def aclose(self) -> None:
        await self._client.aclose()
