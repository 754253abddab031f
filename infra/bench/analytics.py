"""Analytics benchmark (`just bench analytics`): /stats and /top latency over a hot link, new
rollups against the old ones in the same run.

1. Scratch stores on the stack's servers: ClickHouse database `bench_analytics` with the current
   schema (services/*/adapters/sql/clickhouse/*.sql) plus the old rollups
   (infra/bench/analytics_old_rollups.sql), and PostgreSQL database `bench_analytics` (created
   over the local socket as the stack does) with the aggregator's schema.
2. Generated server-side from numbers(N), in chunks: --clicks clicks (default 10,000,000), of
   which --hot-share (10 %) on one link over the last 24 hours and the rest over --codes links
   (skewed: link k gets ~(C/k)^0.5 of the share) across --days days; ~3 % bots, realistic
   referrers, countries, devices and visitor keys. The same rows go to click_events, to both
   rollup feeds (the aggregator's write path) and to the old rollups' feed, each insert timed
   (ClickHouse's cost per click of each design). PostgreSQL gets every link's lifetime row.
   Then OPTIMIZE ... FINAL of every rollup table, so both designs are measured fully merged.
3. A throwaway analytics process (this checkout's code) on the scratch databases behind a
   throwaway nginx (free ports). Through nginx, concurrency --concurrency (8): /stats of the hot
   link and of random cold links for interval=minute (last 24 h), hour (31 days), day (30 and 366
   days), with and without include_bots; /top 1h/24h/7d with its answer cache off
   (ANALYTICS_TOP_CACHE_S=0, a different limit per concurrent request so single-flight does not
   queue them) and, on a second process, with the default cache. p50/p95/p99 per kind, target
   p95 < 50 ms.
4. The same kinds as ClickHouse queries straight over HTTP, old rollups' queries (the adapter's
   before this change) against the new ones: the before/after of the query itself.
5. Checks through the API: exact clicks (= count() of the raw rows in the range), series sums,
   breakdowns (= raw counts), /top (= raw ranking), unique visitors within 1 % of uniqExact over
   the raw rows.
Writes docs/benchmarks/analytics.md; drops the scratch databases (unless --keep).
"""

import argparse
import asyncio
import contextlib
import importlib
import os
import random
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import httpx
from redirect_bench_support import ROOT, Proc, cpu_ticks, free_port, machine_notes
from stackctl.config import StackSettings
from stackctl.migrate import clickhouse_statements

HERE = Path(__file__).resolve().parent
BENCH = ROOT / ".local" / "bench"
PY = str(ROOT / ".venv/bin/python")
DB = "bench_analytics"
HOT = "bench-hot"
COLD = "bench-c"  # + link number
TARGET_P95_MS = 50.0
VISITOR_TOLERANCE = 0.01
INSERT_COLUMNS = "event_id, code, occurred_at, visitor_key, referrer, referrer_host, country, device, is_bot"
FEED_COLUMNS = "code, occurred_at, visitor_key, referrer_host, country, device, is_bot"
NEW_FEEDS = ("clicks_totals_in", "clicks_breakdown_in", "clicks_top_in")
REFERRERS = [
    "",
    "",
    "",
    "google.com",
    "t.co",
    "news.ycombinator.com",
    "reddit.com",
    "facebook.com",
    "linkedin.com",
    "bing.com",
    "duckduckgo.com",
    "mail.example.com",
    "blog.example.org",
    "github.com",
    "youtube.com",
    "instagram.com",
]
COUNTRIES = [
    "US",
    "US",
    "US",
    "DE",
    "DE",
    "GB",
    "FR",
    "IN",
    "BR",
    "JP",
    "CA",
    "NL",
    "ES",
    "IT",
    "PL",
    "SE",
    "AU",
    "MX",
    "KR",
    "ZA",
]
DEVICES = ["mobile", "mobile", "desktop", "tablet"]


def say(msg: str) -> None:
    print(f"[bench analytics] {msg}", flush=True)


class ClickHouseHttp:
    def __init__(self, url: str) -> None:
        self._client = httpx.Client(base_url=url, timeout=600)

    def run(self, sql: str, *, database: str | None = None) -> str:
        """One statement, in the scratch database unless told otherwise (read at call time: --database)."""
        response = self._client.post("/", params={"database": database or DB}, content=sql.encode())
        if response.status_code != 200:
            raise RuntimeError(f"ClickHouse refused:\n{sql[:800]}\n-> {response.text[:800]}")
        return response.text

    def rows(self, sql: str) -> list[list[str]]:
        return [line.split("\t") for line in self.run(sql + " FORMAT TabSeparated").splitlines() if line]

    def close(self) -> None:
        self._client.close()


# --- data --------------------------------------------------------------------------------------


def generator(first: int, count: int, args: argparse.Namespace, now_s: int) -> str:
    """Rows n in [first, first + count): a pure function of n, so every table gets the same rows."""
    hot = int(args.clicks * args.hot_share)
    span = args.days * 86400

    def arr(values: list[str]) -> str:
        return "[" + ", ".join(f"'{v}'" for v in values) + "]"

    return f"""
SELECT toUUID(UUIDNumToString(sipHash128(concat('bench-analytics-', toString(n))))) AS event_id,
       if(n < {hot}, '{HOT}',
          concat('{COLD}', toString(toUInt32(floor({args.codes} * pow((h1 % 1000000) / 1000000., 2)))))) AS code,
       toDateTime(if(n < {hot}, {now_s} - 86400 + h2 % 86400, {now_s} - 1 - h2 % {span})) AS occurred_at,
       hex(intHash64(if(n < {hot}, h3 % {max(1, hot // 3)}, 1000000000 + h3 % 2000000))) AS visitor_key,
       arrayElement({arr(REFERRERS)}, h4 % {len(REFERRERS)} + 1) AS referrer_host,
       if(referrer_host = '', '', concat('https://', referrer_host, '/p')) AS referrer,
       toFixedString(arrayElement({arr(COUNTRIES)}, intDiv(h4, 16) % {len(COUNTRIES)} + 1), 2) AS country,
       toUInt8(intDiv(h4, 320) % 100 < 3) AS is_bot,
       if(is_bot = 1, 'bot', arrayElement({arr(DEVICES)}, intDiv(h4, 32000) % {len(DEVICES)} + 1)) AS device
FROM (SELECT n, intHash64(n * 4 + 1) AS h1, intHash64(n * 4 + 2) AS h2, intHash64(n * 4 + 3) AS h3,
             intHash64(n * 4 + 4) AS h4
      FROM (SELECT number + {first} AS n FROM numbers({count})))"""


@dataclass
class Inserts:
    seconds: dict[str, float] = field(default_factory=dict)

    def add(self, target: str, elapsed: float) -> None:
        self.seconds[target] = self.seconds.get(target, 0.0) + elapsed


def create_schema(ch: ClickHouseHttp) -> None:
    ch.run(f"DROP DATABASE IF EXISTS {DB}", database="default")
    ch.run(f"CREATE DATABASE {DB}", database="default")
    files = sorted(ROOT.glob("services/*/adapters/sql/clickhouse/*.sql"), key=lambda p: (p.name, str(p)))
    for path in [*files, HERE / "analytics_old_rollups.sql"]:
        for statement in clickhouse_statements(path.read_text()):
            ch.run(statement)
    # Generation alone (no view), to subtract from the timed inserts.
    ch.run("CREATE TABLE gen_only AS click_events ENGINE = Null")


def fill(ch: ClickHouseHttp, args: argparse.Namespace, now_s: int, server: set[int]) -> Inserts:
    """Every chunk into each target; the ClickHouse server's CPU time per target (its views included)."""
    inserts = Inserts()
    tick_s = 1 / os.sysconf("SC_CLK_TCK")
    targets = ["gen_only", "click_events", *NEW_FEEDS, "old_rollup_feed"]
    for first in range(0, args.clicks, args.chunk):
        select = generator(first, min(args.chunk, args.clicks - first), args, now_s)
        for target in targets:
            columns = FEED_COLUMNS if target in NEW_FEEDS else INSERT_COLUMNS
            before = cpu_ticks(server)
            ch.run(f"INSERT INTO {target} ({columns}) SELECT {columns} FROM ({select})")
            inserts.add(target, (cpu_ticks(server) - before) * tick_s)
        say(f"generated {min(first + args.chunk, args.clicks):,} / {args.clicks:,} clicks")
    started = time.perf_counter()
    for table in (
        "clicks_totals",
        "clicks_breakdown",
        "clicks_top",
        "clicks_minute",
        "clicks_hour",
        "clicks_day",
        "clicks_dims_minute",
    ):
        ch.run(f"OPTIMIZE TABLE {table} FINAL")
    say(f"rollups merged (OPTIMIZE FINAL) in {time.perf_counter() - started:.1f} s")
    return inserts


def own_links(ch: ClickHouseHttp) -> None:
    """Every generated link belongs to workspace `default` (the stack's admin key's, which the
    bench sends): /top ranks a workspace's links (link_workspaces, filled by the aggregator from
    the `links` topic, here straight from the generated codes). Once per scratch database."""
    if int(ch.run("SELECT count() FROM link_workspaces").strip() or 0) == 0:
        ch.run(
            "INSERT INTO link_workspaces (workspace, code, tags, deleted, version) "
            "SELECT 'default', code, [], 0, 1 FROM click_events GROUP BY code"
        )


def api_headers() -> dict[str, str]:
    """The stack's admin key (.local/api-key, workspace `default`): stats and /top need a key."""
    return {"Authorization": f"Bearer {(ROOT / '.local' / 'api-key').read_text().strip()}"}


def save_meta(ch: ClickHouseHttp, args: argparse.Namespace, now_s: int, inserts: Inserts) -> None:
    """What --reuse needs to measure kept data as if in the generating run."""
    values = {
        "now_s": now_s,
        "clicks": args.clicks,
        "hot_share": args.hot_share,
        "codes": args.codes,
        "days": args.days,
        "chunk": args.chunk,
        **{f"cpu_s:{k}": v for k, v in inserts.seconds.items()},
    }
    ch.run("CREATE TABLE IF NOT EXISTS bench_meta (key String, value Float64) ENGINE = TinyLog")
    ch.run("INSERT INTO bench_meta VALUES " + ", ".join(f"('{k}', {float(v)})" for k, v in values.items()))


async def create_postgres(s: StackSettings, ch: ClickHouseHttp) -> str:
    """The scratch database (superuser over the local socket, as the stack creates its own), the
    aggregator's schema, and every generated link's lifetime counters."""
    admin = await asyncpg.connect(
        host=str(s.path("postgres", "run")), port=s.postgres_port, user="postgres", database="postgres"
    )
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{DB}"')
        await admin.execute(f'CREATE DATABASE "{DB}" OWNER "{s.postgres_user}"')
    finally:
        await admin.close()
    dsn = s.postgres_dsn.rsplit("/", 1)[0] + f"/{DB}"
    conn = await asyncpg.connect(dsn)
    try:
        for path in sorted(ROOT.glob("services/aggregator/adapters/sql/postgres/*.sql")):
            await conn.execute(path.read_text())
        rows = ch.rows(
            "SELECT code, countIf(is_bot = 0), countIf(is_bot = 1), toUnixTimestamp(min(occurred_at)), "
            "toUnixTimestamp(max(occurred_at)) FROM click_events GROUP BY code"
        )
        records = [
            (c, int(h), int(b), datetime.fromtimestamp(int(lo), UTC), datetime.fromtimestamp(int(hi), UTC))
            for c, h, b, lo, hi in rows
        ]
        await conn.copy_records_to_table(
            "link_totals",
            schema_name="clicks",
            records=records,
            columns=["code", "clicks", "bot_clicks", "first_click_at", "last_click_at"],
        )
    finally:
        await conn.close()
    say(f"PostgreSQL {DB}: {len(records):,} links")
    return dsn


async def drop_postgres(s: StackSettings) -> None:
    admin = await asyncpg.connect(
        host=str(s.path("postgres", "run")), port=s.postgres_port, user="postgres", database="postgres"
    )
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{DB}" WITH (FORCE)')
    finally:
        await admin.close()


# --- processes ---------------------------------------------------------------------------------

NGINX_CONF = """
{user}
worker_processes 1;
pid {prefix}/nginx.pid;
error_log {prefix}/error.log warn;
daemon off;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    client_body_temp_path {prefix}/tmp/client_body;
    proxy_temp_path {prefix}/tmp/proxy;
    fastcgi_temp_path {prefix}/tmp/fastcgi;
    uwsgi_temp_path {prefix}/tmp/uwsgi;
    scgi_temp_path {prefix}/tmp/scgi;
    proxy_http_version 1.1;
    proxy_set_header Connection "";
    upstream uncached {{ server 127.0.0.1:{uncached}; keepalive 16; }}
    upstream cached {{ server 127.0.0.1:{cached}; keepalive 16; }}
    server {{ listen 127.0.0.1:{port_uncached}; location / {{ proxy_pass http://uncached; }} }}
    server {{ listen 127.0.0.1:{port_cached}; location / {{ proxy_pass http://cached; }} }}
}}
"""


@dataclass
class Throwaway:
    analytics: list[Proc]
    nginx: Proc
    uncached_url: str
    cached_url: str

    def pids(self) -> set[int]:
        return set().union(*(p.tree() for p in self.analytics))

    def stop(self) -> None:
        for proc in [self.nginx, *self.analytics]:
            proc.stop()


def wait_ready(url: str, proc: Proc, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.popen.poll() is not None:
            raise RuntimeError(f"{proc.popen.args!r} exited: {proc.log.read_text()[-2000:]}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                return
        time.sleep(0.2)
    raise RuntimeError(f"{url} not ready in {timeout}s")


def start_throwaway(dsn: str) -> Throwaway:
    ports = {name: free_port() for name in ("uncached", "cached", "port_uncached", "port_cached")}
    procs = []
    # "uncached": neither /top's answer cache nor the visitor cache; "cached": the defaults.
    for name, ttl, visitors in (
        ("uncached", "0", "0"),
        (
            "cached",
            os.environ.get("ANALYTICS_TOP_CACHE_S", "2"),
            os.environ.get("ANALYTICS_VISITOR_CACHE_ENTRIES", "100000"),
        ),
    ):
        env = {
            "ANALYTICS_PORT": str(ports[name]),
            "CLICKHOUSE_DATABASE": DB,
            "POSTGRES_DSN": dsn,
            "ANALYTICS_TOP_CACHE_S": ttl,
            "ANALYTICS_VISITOR_CACHE_ENTRIES": visitors,
            "LOG_LEVEL": "WARNING",
            "OTEL_EXPORTER_OTLP_ENDPOINT": "",
            # One key drives the whole run: its per-key limit must not be what is measured.
            "ANALYTICS_KEY_RATE_LIMIT": "100000000/minute",
        }
        procs.append(Proc.start([PY, "-m", "analytics", "serve"], env, BENCH))
    prefix = BENCH / "analytics-nginx"
    (prefix / "tmp").mkdir(parents=True, exist_ok=True)
    (prefix / "nginx.conf").write_text(
        NGINX_CONF.format(user="user root;" if os.geteuid() == 0 else "", prefix=prefix, **ports)
    )
    nginx = Proc.start(["/usr/sbin/nginx", "-p", str(prefix), "-c", str(prefix / "nginx.conf")], {}, BENCH)
    out = Throwaway(
        procs, nginx, f"http://127.0.0.1:{ports['port_uncached']}", f"http://127.0.0.1:{ports['port_cached']}"
    )
    try:
        for proc, url in zip(procs, (out.uncached_url, out.cached_url), strict=True):
            wait_ready(url, proc)
    except Exception:
        out.stop()
        raise
    return out


def clickhouse_pids(s: StackSettings) -> set[int]:
    ctl = [str(ROOT / ".venv/bin/supervisorctl"), "-c", str(s.supervisor_conf)]
    pid = subprocess.run([*ctl, "pid", "clickhouse"], capture_output=True, text=True, check=False).stdout.strip()
    return {int(pid)} if pid.isdigit() and int(pid) > 0 else set()


# --- load --------------------------------------------------------------------------------------


@dataclass
class Timing:
    kind: str
    latencies_ms: list[float]
    errors: int
    cpu_ms: dict[str, float]  # per request, per process group

    def pct(self, q: float) -> float:
        ordered = sorted(self.latencies_ms)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


async def drive(
    kind: str,
    make: Callable[[int], Awaitable[None]],
    *,
    requests: int,
    concurrency: int,
    budget_s: float,
    pids: dict[str, set[int]],
) -> Timing:
    """`requests` calls of make(i) from `concurrency` workers (bounded by `budget_s`), timed each."""
    latencies: list[float] = []
    errors = 0
    counter = iter(range(requests))
    deadline = time.monotonic() + budget_s

    async def worker() -> None:
        nonlocal errors
        for i in counter:
            if time.monotonic() > deadline:
                return
            started = time.perf_counter()
            try:
                await make(i)
            except Exception as exc:  # counted and reported; the run goes on
                errors += 1
                if errors == 1:
                    say(f"{kind}: first error: {exc!r}")
                continue
            latencies.append((time.perf_counter() - started) * 1000)

    before = {name: cpu_ticks(p) for name, p in pids.items()}
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    tick_ms = 1000 / os.sysconf("SC_CLK_TCK")
    done = max(1, len(latencies))
    cpu = {name: (cpu_ticks(p) - before[name]) * tick_ms / done for name, p in pids.items()}
    timing = Timing(kind, latencies, errors, cpu)
    say(
        f"{kind:<34} n={len(latencies):<4} p50 {timing.pct(0.5):7.1f}  p95 {timing.pct(0.95):7.1f}  "
        f"p99 {timing.pct(0.99):7.1f} ms  errors {errors}"
    )
    return timing


@dataclass(frozen=True)
class StatsKind:
    name: str
    interval: str
    length: timedelta
    step_s: int

    def params(self, now: datetime, bots: bool) -> dict[str, str]:
        end = now - timedelta(seconds=int(now.timestamp()) % self.step_s)
        return {
            "interval": self.interval,
            "from": iso(end - self.length),
            "to": iso(end),
            "include_bots": "true" if bots else "false",
        }


STATS_KINDS = [
    StatsKind("minute, 24 h", "minute", timedelta(hours=24), 60),
    StatsKind("hour, 31 days", "hour", timedelta(days=31), 3600),
    StatsKind("day, 30 days", "day", timedelta(days=30), 86400),
    StatsKind("day, 366 days", "day", timedelta(days=366), 86400),
]
WINDOWS = ("1h", "24h", "7d")


def unix(iso_time: str) -> int:
    return int(datetime.fromisoformat(iso_time.replace("Z", "+00:00")).timestamp())


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


async def measure_kind(
    name: str, make: Callable[[int], Awaitable[None]], args: argparse.Namespace, pids: dict[str, set[int]]
) -> tuple[Timing, Timing]:
    """Warm-up, then one client at a time (the latency of a request on its own), then
    --concurrency clients (the latency under load; CPU per request from this pass)."""
    await drive(name, make, requests=args.warmup, concurrency=args.concurrency, budget_s=30, pids={})
    alone = await drive(
        f"{name} (c=1)", make, requests=args.serial_requests, concurrency=1, budget_s=args.budget, pids={}
    )
    loaded = await drive(
        name, make, requests=args.requests, concurrency=args.concurrency, budget_s=args.budget, pids=pids
    )
    return loaded, alone


async def api_runs(
    t: Throwaway, cold: list[str], args: argparse.Namespace, pids: dict[str, set[int]], now: datetime
) -> list[tuple[Timing, Timing]]:
    out = []
    limits = httpx.Limits(max_connections=args.concurrency, max_keepalive_connections=args.concurrency)
    async with httpx.AsyncClient(limits=limits, timeout=30, headers=api_headers()) as client:

        async def get(url: str, params: dict[str, str]) -> None:
            r = await client.get(url, params=params)
            if r.status_code != 200:
                raise RuntimeError(f"{r.status_code} {r.text[:200]}")

        # /stats with the visitor cache (the service's default: the data does not change during the
        # run, so after the warm-up every visitor count is known), and the hot link without it
        # (what the first request for a range costs, or a live link's newest buckets).
        for which, cached in (("hot", True), ("cold", True), ("hot", False)):
            for kind in STATS_KINDS:
                for bots in (False, True):

                    def make(
                        i: int,
                        kind: StatsKind = kind,
                        bots: bool = bots,
                        which: str = which,
                        base: str = t.cached_url if cached else t.uncached_url,
                    ) -> Awaitable[None]:
                        code = HOT if which == "hot" else cold[i % len(cold)]
                        return get(f"{base}/api/v1/links/{code}/stats", kind.params(now, bots))

                    name = f"stats {which} {kind.name}{' +bots' if bots else ''}{'' if cached else ' uncached'}"
                    out.append(await measure_kind(name, make, args, pids))
        for cached in (False, True):
            for window in WINDOWS:
                for bots in (False, True) if not cached else (False,):
                    base = t.cached_url if cached else t.uncached_url

                    def make(
                        i: int, window: str = window, bots: bool = bots, cached: bool = cached, base: str = base
                    ) -> Awaitable[None]:
                        # Uncached: a different limit per concurrent request, or single-flight queues them.
                        limit = 10 if cached else 10 + i % args.concurrency
                        return get(
                            f"{base}/api/v1/top",
                            {"window": window, "limit": str(limit), "include_bots": "true" if bots else "false"},
                        )

                    name = f"top {window}{' +bots' if bots else ''} {'cached' if cached else 'uncached'}"
                    out.append(await measure_kind(name, make, args, pids))
    return out


# --- the queries straight to ClickHouse: old rollups against new -------------------------------


def old_stats_sql(code: str, kind: StatsKind, start: int, end: int, bots: str) -> list[str]:
    """What services/analytics/adapters/clickhouse.py sent before this change (3 queries per request)."""
    table, col = {"minute": ("clicks_minute", "minute"), "hour": ("clicks_hour", "hour"), "day": ("clicks_day", "day")}[
        kind.interval
    ]

    def where(c: str) -> str:
        return f"code = '{code}' AND is_bot IN ({bots}) AND {c} >= toDateTime({start}) AND {c} < toDateTime({end})"

    return [
        f"SELECT toUnixTimestamp({col}) AS t, uniqExactMerge(events), uniqMerge(visitors) FROM {table} "
        f"WHERE {where(col)} GROUP BY t ORDER BY t",
        f"SELECT uniqExactMerge(events), uniqMerge(visitors) FROM {table} WHERE {where(col)}",
        f"SELECT dim, value, uniqExactMerge(events) AS clicks FROM clicks_dims_minute WHERE {where('minute')} "
        "GROUP BY dim, value ORDER BY dim, clicks DESC, value LIMIT 10 BY dim",
    ]


def service_adapter() -> Any:
    """services/analytics/adapters/clickhouse.py: this file is named analytics.py and its folder is
    first on sys.path, so import the service's package with that folder left out."""
    saved = sys.path[:]
    sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != HERE]
    try:
        return importlib.import_module("analytics.adapters.clickhouse")
    finally:
        sys.path[:] = saved


def render(statement: Any, params: dict[str, Any]) -> str:
    """A statement of the adapter as it sends it (compiled, parameters escaped)."""
    return str(service_adapter().render(statement, params))


def new_stats_sql(code: str, kind: StatsKind, start: int, end: int, bots: str) -> list[str]:
    """The analytics adapter's /stats statements with nothing cached (its first request for a
    range): the counts, every bucket's visitors and the range's visitors, exactly as it sends them."""
    adapter = service_adapter()
    queries = importlib.import_module("analytics.domain.queries")
    covering, spans = adapter.spans_where(
        queries.covering_spans(datetime.fromtimestamp(start, UTC), datetime.fromtimestamp(end, UTC), kind.interval)
    )
    link = {"code": code, "bots": [int(b) for b in bots.split(",")]}
    grain = {"grain": adapter.GRAINS[kind.interval], "start": start, "end": end}
    return [
        render(adapter.counts_sql(covering), {**link, **grain, **spans}),
        render(adapter.series_visitors_sql(), {**link, **grain}),
        render(adapter.total_visitors_sql(covering), {**link, **spans}),
    ]


def new_top_sql(window: str, now: datetime) -> list[str]:
    """The analytics adapter's /top ranking statement, exactly as it sends it."""
    adapter = service_adapter()
    queries = importlib.import_module("analytics.domain.queries")
    where, params = adapter.spans_where(
        queries.top_spans(queries.parse_top({"window": window}, now=now, workspace="default"))
    )
    return [render(adapter.ranking_sql(where), {**params, "workspace": "default", "bots": [0], "limit": 10})]


def old_top_sql(window: str, now: datetime) -> list[str]:
    step = 60 if window == "1h" else 3600
    start = int(
        (now - {"1h": timedelta(hours=1), "24h": timedelta(hours=24), "7d": timedelta(days=7)}[window]).timestamp()
    )
    start -= start % step
    table, col = ("clicks_minute", "minute") if window == "1h" else ("clicks_hour", "hour")
    return [
        f"SELECT code, uniqExactMerge(events) AS clicks, uniqMerge(visitors) FROM {table} "
        f"WHERE is_bot IN (0) AND {col} >= toDateTime({start}) GROUP BY code ORDER BY clicks DESC, code LIMIT 10"
    ]


async def direct_runs(
    ch_url: str, cold: list[str], args: argparse.Namespace, pids: dict[str, set[int]], now: datetime
) -> list[tuple[Timing, Timing]]:
    out = []
    limits = httpx.Limits(max_connections=args.concurrency * 3, max_keepalive_connections=args.concurrency * 3)
    async with httpx.AsyncClient(base_url=ch_url, limits=limits, timeout=120) as client:

        async def run_all(statements: list[str]) -> None:
            async def one(sql: str) -> None:
                r = await client.post("/", params={"database": DB}, content=sql.encode())
                if r.status_code != 200:
                    raise RuntimeError(r.text[:300])

            await asyncio.gather(*(one(s) for s in statements))  # as the adapter does: concurrently

        for which in ("hot", "cold"):
            for kind in STATS_KINDS:
                end = int(now.timestamp()) - int(now.timestamp()) % kind.step_s
                start = end - int(kind.length.total_seconds())
                pair = []
                for design, render in (("old", old_stats_sql), ("new", new_stats_sql)):

                    def make(
                        i: int,
                        render: Any = render,
                        kind: StatsKind = kind,
                        which: str = which,
                        start: int = start,
                        end: int = end,
                    ) -> Awaitable[None]:
                        code = HOT if which == "hot" else cold[i % len(cold)]
                        return run_all(render(code, kind, start, end, "0"))

                    name = f"{design}: stats {which} {kind.name}"
                    await drive(name, make, requests=args.warmup, concurrency=args.concurrency, budget_s=30, pids={})
                    pair.append(
                        await drive(
                            name,
                            make,
                            requests=args.direct_requests,
                            concurrency=args.concurrency,
                            budget_s=args.budget,
                            pids=pids,
                        )
                    )
                out.append((pair[0], pair[1]))
        for window in WINDOWS:
            top_now = datetime.now(UTC).replace(microsecond=0)
            new_sql = new_top_sql(window, top_now)
            pair = []
            for design, statements in (("old", old_top_sql(window, top_now)), ("new", new_sql)):

                def make(i: int, statements: list[str] = statements) -> Awaitable[None]:
                    return run_all(statements)

                name = f"{design}: top {window} (ranking query)"
                await drive(name, make, requests=args.warmup, concurrency=args.concurrency, budget_s=30, pids={})
                pair.append(
                    await drive(
                        name,
                        make,
                        requests=args.direct_requests,
                        concurrency=args.concurrency,
                        budget_s=args.budget,
                        pids=pids,
                    )
                )
            out.append((pair[0], pair[1]))
    return out


# --- checks ------------------------------------------------------------------------------------


@dataclass
class Checks:
    failures: list[str] = field(default_factory=list)
    compared: int = 0
    worst_visitor_error: float = 0.0

    def visitors(self, what: str, got: int, exact: int) -> None:
        error = abs(got - exact) / exact if exact else float(got != 0)
        self.worst_visitor_error = max(self.worst_visitor_error, error)
        if error > VISITOR_TOLERANCE:
            self.failures.append(f"{what}: unique visitors {got} vs exact {exact} ({error:.2%})")

    def equal(self, what: str, got: object, exact: object) -> None:
        self.compared += 1
        if got != exact:
            self.failures.append(f"{what}: {got!r} != exact {exact!r}")


def check_answers(ch: ClickHouseHttp, t: Throwaway, cold: list[str], now: datetime, hot_clicks: int) -> Checks:
    checks = Checks()
    with httpx.Client(base_url=t.uncached_url, timeout=60, headers=api_headers()) as api:
        for code in [HOT, *cold[:10]]:
            for kind in STATS_KINDS:
                for bots in (False, True):
                    params = kind.params(now, bots)
                    body = api.get(f"/api/v1/links/{code}/stats", params=params).json()
                    what = f"stats {code} {kind.name}{' +bots' if bots else ''}"
                    where = (
                        f"code = '{code}' AND is_bot IN ({'0, 1' if bots else '0'}) AND occurred_at >= "
                        f"toDateTime({unix(body['from'])}) AND occurred_at < toDateTime({unix(body['to'])})"
                    )
                    clicks, visitors = ch.rows(
                        f"SELECT count(), uniqExact(visitor_key) FROM click_events WHERE {where}"
                    )[0]
                    checks.equal(f"{what} clicks", body["totals"]["clicks"], int(clicks))
                    checks.equal(f"{what} series sum", sum(p["clicks"] for p in body["series"]), int(clicks))
                    checks.visitors(what, body["totals"]["unique_visitors"], int(visitors))
                    if code == HOT and kind.interval == "minute":
                        for key, column in (
                            ("countries", "toString(country)"),
                            ("devices", "device"),
                            ("top_referrers", "if(referrer_host = '', '(direct)', referrer_host)"),
                        ):
                            exact = {
                                v: int(c)
                                for v, c in ch.rows(
                                    f"SELECT {column} AS v, count() FROM click_events WHERE {where} GROUP BY v"
                                )
                            }
                            got = {s["value"]: s["clicks"] for s in body[key]}
                            checks.equal(f"{what} {key}", got, {v: exact.get(v) for v in got})
                            checks.equal(
                                f"{what} {key} are the top 10",
                                sorted(got.values(), reverse=True),
                                sorted(exact.values(), reverse=True)[:10],
                            )
            if code == HOT:
                lifetime = api.get(f"/api/v1/links/{code}/stats").json()["lifetime"]
                checks.equal(
                    "hot link lifetime clicks + bot clicks", lifetime["clicks"] + lifetime["bot_clicks"], hot_clicks
                )
        for window in WINDOWS:
            for bots in (False, True):
                body = api.get(
                    "/api/v1/top", params={"window": window, "limit": "20", "include_bots": "true" if bots else "false"}
                ).json()
                raw = ch.rows(
                    f"SELECT code, count() AS c, uniqExact(visitor_key) FROM click_events "
                    f"WHERE is_bot IN ({'0, 1' if bots else '0'}) AND occurred_at >= toDateTime({unix(body['from'])}) "
                    "GROUP BY code ORDER BY c DESC, code LIMIT 20"
                )
                what = f"top {window}{' +bots' if bots else ''}"
                checks.equal(
                    f"{what} ranking",
                    [(x["code"], x["clicks"]) for x in body["links"]],
                    [(c, int(n)) for c, n, _ in raw],
                )
                for x, (_, _, v) in zip(body["links"], raw, strict=False):
                    checks.visitors(f"{what} {x['code']}", x["unique_visitors"], int(v))
    return checks


# --- report ------------------------------------------------------------------------------------


def fmt(x: float) -> str:
    return f"{x:.1f}"


def passed(t: Timing) -> bool:
    return t.pct(0.95) < TARGET_P95_MS and not t.errors


def api_table(timings: list[tuple[Timing, Timing]], concurrency: int) -> list[str]:
    lines = [
        f"| query (through nginx) | c=1 p50 ms | c=1 p95 ms | c={concurrency} p50 ms | c={concurrency} p95 ms | "
        f"c={concurrency} p99 ms | analytics + nginx CPU ms/req | ClickHouse CPU ms/req | p95 < 50 ms c=1 / "
        f"c={concurrency} |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for t, alone in timings:
        errors = t.errors + alone.errors
        lines.append(
            f"| {t.kind}{f' ({errors} errors)' if errors else ''} | {fmt(alone.pct(0.5))} | "
            f"{fmt(alone.pct(0.95))} | {fmt(t.pct(0.5))} | {fmt(t.pct(0.95))} | {fmt(t.pct(0.99))} | "
            f"{fmt(t.cpu_ms.get('analytics', 0))} | {fmt(t.cpu_ms.get('clickhouse', 0))} | "
            f"{'PASS' if passed(alone) else 'FAIL'} / {'PASS' if passed(t) else 'FAIL'} |"
        )
    return lines


def direct_table(pairs: list[tuple[Timing, Timing]]) -> list[str]:
    lines = [
        "| query (ClickHouse HTTP, no bots) | old p50 ms | old p95 ms | new p50 ms | new p95 ms | "
        "p95 old / new | ClickHouse CPU ms/req old | new |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for old, new in pairs:
        ratio = old.pct(0.95) / new.pct(0.95) if new.pct(0.95) else float("nan")
        lines.append(
            f"| {new.kind.removeprefix('new: ')} | {fmt(old.pct(0.5))} | {fmt(old.pct(0.95))} | "
            f"{fmt(new.pct(0.5))} | {fmt(new.pct(0.95))} | {ratio:.1f}x | "
            f"{fmt(old.cpu_ms.get('clickhouse', 0))} | {fmt(new.cpu_ms.get('clickhouse', 0))} |"
        )
    return lines


def storage(ch: ClickHouseHttp) -> list[str]:
    rows = ch.rows(
        f"SELECT table, sum(rows), sum(bytes_on_disk) FROM system.parts WHERE database = '{DB}' "
        "AND active GROUP BY table ORDER BY table"
    )
    lines = ["| table | rows | MiB on disk |", "|---|---|---|"]
    lines += [f"| {t} | {int(r):,} | {int(b) / 2**20:,.1f} |" for t, r, b in rows]
    return lines


def insert_table(inserts: Inserts, clicks: int) -> list[str]:
    gen = inserts.seconds["gen_only"]
    old = inserts.seconds["old_rollup_feed"] - gen
    new = sum(inserts.seconds[feed] for feed in NEW_FEEDS) - len(NEW_FEEDS) * gen
    raw = inserts.seconds["click_events"] - gen
    return [
        "| ClickHouse write (server CPU of INSERT ... SELECT, generation subtracted) | CPU s | CPU us per click |",
        "|---|---|---|",
        f"| click_events (raw rows, both designs) | {raw:.1f} | {raw / clicks * 1e6:.2f} |",
        f"| old rollups: 4 views of uniqExactState(event_id) | {old:.1f} | {old / clicks * 1e6:.2f} |",
        f"| new rollups: {' + '.join(NEW_FEEDS)} | {new:.1f} | {new / clicks * 1e6:.2f} |",
    ]


def write_report(
    path: Path,
    args: argparse.Namespace,
    api: list[tuple[Timing, Timing]],
    direct: list[tuple[Timing, Timing]],
    inserts: Inserts,
    checks: Checks,
    store: list[str],
    notes: dict[str, str],
    elapsed: float,
) -> None:
    alone_ok = all(passed(alone) for _, alone in api)
    loaded_ok = all(passed(t) for t, _ in api)
    failing = [t.kind for t, _ in api if not passed(t)]
    template = (HERE / "analytics-report.md").read_text()
    path.write_text(
        template.format(
            date=f"{datetime.now(UTC):%Y-%m-%d %H:%M UTC}",
            elapsed=f"{elapsed:.0f}",
            clicks=f"{args.clicks:,}",
            hot=f"{int(args.clicks * args.hot_share):,}",
            hot_code=HOT,
            codes=f"{args.codes:,}",
            days=args.days,
            chunk=f"{args.chunk:,}",
            concurrency=args.concurrency,
            requests=args.requests,
            serial=args.serial_requests,
            warmup=args.warmup,
            cold=args.cold,
            direct_requests=args.direct_requests,
            target=f"{TARGET_P95_MS:.0f}",
            verdict_alone="PASS" if alone_ok else "FAIL",
            verdict_loaded="PASS" if loaded_ok else "FAIL",
            failing=", ".join(failing) if failing else "none",
            checks="passed" if not checks.failures else "FAILED",
            check_lines="\n".join(f"- {f}" for f in checks.failures) or "- none failed",
            compared=checks.compared,
            worst=f"{checks.worst_visitor_error:.3%}",
            tolerance=f"{VISITOR_TOLERANCE:.0%}",
            api_table="\n".join(api_table(api, args.concurrency)),
            direct_table="\n".join(direct_table(direct)),
            insert_table="\n".join(insert_table(inserts, args.clicks)),
            storage="\n".join(store),
            machine="\n".join(f"- {k}: {v}" for k, v in notes.items()),
            db=DB,
        )
    )


# --- main --------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(prog="just bench analytics", description=__doc__.split("\n")[0])
    parser.add_argument("--clicks", type=int, default=10_000_000)
    parser.add_argument("--hot-share", type=float, default=0.1)
    parser.add_argument("--codes", type=int, default=100_000)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--chunk", type=int, default=250_000, help="rows per INSERT (ClickHouse memory per insert)")
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--requests", type=int, default=200, help="per kind through nginx, concurrently")
    parser.add_argument("--serial-requests", type=int, default=30, help="per kind through nginx, one at a time")
    parser.add_argument("--direct-requests", type=int, default=24, help="per kind, straight to ClickHouse")
    parser.add_argument("--warmup", type=int, default=8)
    parser.add_argument("--budget", type=float, default=60, help="seconds at most per kind")
    parser.add_argument("--cold", type=int, default=200, help="tail links sampled for the cold kinds")
    parser.add_argument("--keep", action="store_true", help="keep the scratch databases")
    parser.add_argument("--reuse", action="store_true", help="reuse kept scratch databases (no generation)")
    parser.add_argument("--prepare-only", action="store_true", help="generate the scratch databases, keep them, stop")
    parser.add_argument("--database", default="bench_analytics", help="scratch database (ClickHouse, PostgreSQL)")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "benchmarks" / "analytics.md")
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()
    global DB
    DB = args.database

    s = StackSettings()
    ch = ClickHouseHttp(s.clickhouse_url)
    started = time.time()
    notes = machine_notes()
    notes["clickhouse"] = ch.run("SELECT version()", database="default").strip()
    now_s = int(time.time()) // 60 * 60
    throwaway = None
    try:
        if args.reuse:
            meta = {k: float(v) for k, v in ch.rows("SELECT key, value FROM bench_meta")}
            now_s = int(meta["now_s"])
            for key in ("clicks", "hot_share", "codes", "days", "chunk"):
                setattr(args, key, type(getattr(args, key))(meta[key]))
            inserts = Inserts({k.removeprefix("cpu_s:"): v for k, v in meta.items() if k.startswith("cpu_s:")})
            dsn = s.postgres_dsn.rsplit("/", 1)[0] + f"/{DB}"
            say(f"reusing {DB}: {args.clicks:,} clicks generated at {datetime.fromtimestamp(now_s, UTC)}")
        else:
            say(f"scratch ClickHouse database {DB}: current schema + old rollups")
            create_schema(ch)
            inserts = fill(ch, args, now_s, clickhouse_pids(s))
            save_meta(ch, args, now_s, inserts)
            dsn = asyncio.run(create_postgres(s, ch))
            if args.prepare_only:
                args.keep = True
                say(f"prepared: ClickHouse CPU of the inserts {inserts.seconds}")
                return
        own_links(ch)
        hot_clicks = int(ch.run(f"SELECT count() FROM click_events WHERE code = '{HOT}'").strip())
        tail = [
            c
            for (c,) in ch.rows(
                f"SELECT code FROM click_events WHERE code != '{HOT}' GROUP BY code HAVING count() < 200 LIMIT 100000"
            )
        ]
        cold = random.Random(8).sample(tail, min(args.cold, len(tail)))
        say(f"hot link {hot_clicks:,} clicks; {len(tail):,} tail links (< 200 clicks), {len(cold)} sampled")
        # /stats ranges end at the data's last minute (explicit from/to); /top uses the API's clock.
        now = datetime.fromtimestamp(now_s, UTC)
        throwaway = start_throwaway(dsn)
        pids = {"analytics": throwaway.pids() | throwaway.nginx.tree(), "clickhouse": clickhouse_pids(s)}
        checks = check_answers(ch, throwaway, cold, now, hot_clicks)
        say(
            f"checks: {checks.compared} exact comparisons, worst visitor error {checks.worst_visitor_error:.3%}, "
            f"{len(checks.failures)} failures"
        )
        for failure in checks.failures[:20]:
            say(f"  FAILED {failure}")
        api = asyncio.run(api_runs(throwaway, cold, args, pids, now))
        direct = asyncio.run(direct_runs(s.clickhouse_url, cold, args, {"clickhouse": pids["clickhouse"]}, now))
        store = storage(ch)
        notes["load average after"] = " ".join(f"{x:.2f}" for x in os.getloadavg())
        print(
            "\n".join(
                [
                    "",
                    *api_table(api, args.concurrency),
                    "",
                    *direct_table(direct),
                    "",
                    *insert_table(inserts, args.clicks),
                ]
            )
        )
        if not args.no_write:
            write_report(args.out, args, api, direct, inserts, checks, store, notes, time.time() - started)
            say(f"wrote {args.out}")
        failed = bool(checks.failures) or not all(passed(t) and passed(alone) for t, alone in api)
    finally:
        if throwaway is not None:
            throwaway.stop()
        if not args.keep:
            ch.run(f"DROP DATABASE IF EXISTS {DB}", database="default")
            asyncio.run(drop_postgres(s))
        ch.close()
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
