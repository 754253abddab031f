"""Helpers of `just bench capacity` (infra/bench/capacity.py) that look at the running stack: the
tiers' processes and their CPU time, the aggregator's consumer lag, the clicks counted per code,
the bench links and the shorten rate limit in force."""

import asyncio
import contextlib
import os
import re
import subprocess
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import httpx
from redirect_bench_support import CTL, PUBLIC, ROOT, STACK, descendants

# Where the bench reads its books: the PostgreSQL primary itself (on the cluster too: not
# PgBouncer, not the replica, so a count is never stale) and the services' ClickHouse (the
# cluster's balancer over its four nodes, whose Distributed tables see both shards).
PG = STACK.postgres_dsn
CH = STACK.clickhouse_url
CH_DATABASE = os.environ.get("CLICKHOUSE_DATABASE", "shortlink")
TICK = os.sysconf("SC_CLK_TCK")


def aggregator_endpoints() -> list[str]:
    """host:port of every aggregator worker's web server (its /metrics): 127.0.0.1 on the
    default stack, worker i's host address on the cluster."""
    return [f"{STACK.host_of(i)}:{port}" for i, port in enumerate(STACK.aggregator_ports, start=1)]


# Supervised program name -> tier, by prefix (redirect-1..N, aggregator-1..N, shorten and
# shorten-relay...). The first six are the tiers issue 8 names; the rest are reported apart.
# The cluster's helpers go with the tier they serve: PgBouncer with PostgreSQL (postgres and
# postgres-replica by prefix), ZooKeeper with ClickHouse (it coordinates its replication only).
TIER_PREFIXES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("nginx", ("nginx",)),
    ("redirect", ("redirect",)),
    ("kafka", ("kafka",)),
    ("aggregator", ("aggregator",)),
    ("postgresql", ("postgres", "pgbouncer")),
    ("clickhouse", ("clickhouse", "zookeeper")),
    ("shorten", ("shorten",)),
    ("redis", ("redis",)),
    ("other services", ("analytics", "stackcheck", "retention", "prometheus")),
)
TIERS = tuple(name for name, _ in TIER_PREFIXES)


def tier_of(program: str) -> str | None:
    for tier, prefixes in TIER_PREFIXES:
        if program.startswith(prefixes):
            return tier
    return None


def supervised() -> dict[str, int]:
    """Running supervised programs and their pids (from `supervisorctl status`)."""
    out = subprocess.run([*CTL, "status"], capture_output=True, text=True, timeout=30, check=False).stdout
    programs = {}
    for line in out.splitlines():
        parts = line.split()
        if len(parts) >= 4 and parts[1] == "RUNNING" and parts[2] == "pid":
            programs[parts[0]] = int(parts[3].rstrip(","))
    if not programs:
        raise RuntimeError("no running program under supervisord: start the stack with `just up`")
    return programs


def tier_pids(programs: dict[str, int]) -> dict[str, set[int]]:
    """Every process of each tier: the program's pid and all its descendants (nginx workers,
    PostgreSQL backends, ...). Threads (Kafka's JVM, ClickHouse) are counted by their process."""
    out: dict[str, set[int]] = {tier: set() for tier in TIERS}
    for program, pid in programs.items():
        tier = tier_of(program)
        if tier is not None:
            out[tier] |= descendants({pid})
    return out


def _ticks(pid: int) -> int:
    """utime + stime + cutime + cstime: the process's CPU plus that of its reaped children (a
    PostgreSQL backend that exits during a step still counts, through the postmaster)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return 0
    return int(fields[11]) + int(fields[12]) + int(fields[13]) + int(fields[14])


def machine_busy_ticks() -> int:
    """Busy CPU time of the whole machine (all cores) from /proc/stat: user nice system irq softirq."""
    fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    user, nice, system, _idle, _iowait, irq, softirq = (int(x) for x in fields[:7])
    return user + nice + system + irq + softirq


@dataclass(frozen=True)
class CpuSnapshot:
    at: float
    tiers: dict[str, int]  # tier -> cumulative ticks of its processes alive at the time
    machine: int

    @classmethod
    def take(cls, pids: dict[str, set[int]]) -> "CpuSnapshot":
        return cls(time.monotonic(), {t: sum(_ticks(p) for p in ps) for t, ps in pids.items()}, machine_busy_ticks())


def cpu_seconds(before: CpuSnapshot, after: CpuSnapshot) -> tuple[dict[str, float], float, float]:
    """CPU seconds per tier, of the whole machine, and the wall time between two snapshots."""
    tiers = {t: max(after.tiers.get(t, 0) - before.tiers.get(t, 0), 0) / TICK for t in before.tiers}
    return tiers, (after.machine - before.machine) / TICK, after.at - before.at


_LAG_PARTITION = re.compile(r'partition="(\d+)"')


def partition_lags(text: str) -> dict[int, float]:
    """aggregator_consumer_lag of one worker's /metrics, per `clicks` partition it owns (a
    partition that moved away leaves the worker's metric, services/aggregator/bootstrap.py)."""
    out: dict[int, float] = {}
    for line in text.splitlines():
        if line.startswith("aggregator_consumer_lag{"):
            label = _LAG_PARTITION.search(line)
            # A series without its partition label still counts (as a partition of its own).
            out[int(label.group(1)) if label else -1 - len(out)] = float(line.split()[-1])
    return out


def metric_total(text: str, name: str) -> float:
    """The sum of every series of one metric (all label sets) in a /metrics text."""
    return sum(float(ln.split()[-1]) for ln in text.splitlines() if ln.startswith((name + "{", name + " ")))


async def workers_metrics(http: httpx.AsyncClient, endpoints: Iterable[str]) -> dict[str, str] | None:
    """Each aggregator worker's /metrics text; None when a worker does not answer."""
    out = {}
    for endpoint in endpoints:
        try:
            r = await http.get(f"http://{endpoint}/metrics")
        except httpx.HTTPError:
            return None
        if r.status_code != 200:
            return None
        out[endpoint] = r.text
    return out


async def workers_metric_total(endpoints: Iterable[str], name: str) -> float | None:
    """`metric_total` over these aggregator workers' /metrics; None when one does not answer."""
    async with httpx.AsyncClient(timeout=2) as http:
        texts = await workers_metrics(http, endpoints)
    return None if texts is None else sum(metric_total(text, name) for text in texts.values())


def parse_lag(text: str) -> tuple[float, int]:
    """Summed aggregator_consumer_lag of one worker's /metrics and how many partitions it reports."""
    lags = partition_lags(text)
    return sum(lags.values()), len(lags)


async def worker_lags(http: httpx.AsyncClient, endpoints: Iterable[str]) -> dict[str, dict[int, float]] | None:
    """Each worker's lag per partition it owns; None when a worker does not answer."""
    texts = await workers_metrics(http, endpoints)
    return None if texts is None else {endpoint: partition_lags(text) for endpoint, text in texts.items()}


async def total_lag(http: httpx.AsyncClient, endpoints: Sequence[str] | None = None) -> float | None:
    """Summed aggregator_consumer_lag of every worker (`endpoints`, default all of the stack's);
    None when a worker does not answer or no worker reports the metric at all (a lag nobody
    reports must not read as 0)."""
    lags = await worker_lags(http, aggregator_endpoints() if endpoints is None else endpoints)
    if lags is None or not any(lags.values()):
        return None
    return sum(sum(w.values()) for w in lags.values())


async def wait_lag_zero(
    deadline_s: float, interval_s: float = 0.1, endpoints: Sequence[str] | None = None
) -> tuple[float | None, float | None]:
    """Poll every worker's lag until all are 0. Returns (seconds it took, last lag seen); the
    seconds are None when the deadline passed first."""
    started = time.monotonic()
    last: float | None = None
    async with httpx.AsyncClient(timeout=2) as http:
        while True:
            last = await total_lag(http, endpoints)
            if last == 0:
                return time.monotonic() - started, 0.0
            if time.monotonic() - started > deadline_s:
                return None, last
            await asyncio.sleep(interval_s)


async def wait_idle(deadline_s: float, endpoints: Sequence[str] | None = None) -> None:
    """Before a step: every worker (`endpoints`, default all) answers and its lag is 0 three
    polls in a row."""
    endpoints = aggregator_endpoints() if endpoints is None else endpoints
    calm, started = 0, time.monotonic()
    async with httpx.AsyncClient(timeout=2) as http:
        while calm < 3:
            if time.monotonic() - started > deadline_s:
                raise RuntimeError(
                    f"the aggregator did not report lag 0 within {deadline_s:.0f}s before a step (workers at "
                    f"{', '.join(endpoints)}, metric aggregator_consumer_lag)"
                )
            calm = calm + 1 if await total_lag(http, endpoints) == 0 else 0
            await asyncio.sleep(0.5)


class Counts:
    """Clicks counted per bench code: PostgreSQL clicks.link_totals (what the analytics API's
    `lifetime.clicks + lifetime.bot_clicks` reads) and ClickHouse's raw click events."""

    def __init__(self, prefix: str) -> None:
        self.like = prefix + "%"
        self.clickhouse_error = ""

    async def postgres(self) -> dict[str, int]:
        conn = await asyncpg.connect(PG)
        try:
            rows = await conn.fetch(
                "SELECT code, clicks + bot_clicks AS n FROM clicks.link_totals WHERE code LIKE $1", self.like
            )
        finally:
            await conn.close()
        return {r["code"]: int(r["n"]) for r in rows}

    async def clickhouse(self) -> dict[str, int] | None:
        """None when the query fails (the raw table's shape is the aggregator's business)."""
        sql = (
            "SELECT code, uniqExact(event_id) FROM click_events "
            f"WHERE code LIKE '{self.like}' GROUP BY code FORMAT TabSeparated"
        )
        try:
            async with httpx.AsyncClient(base_url=CH, timeout=60) as ch:
                r = await ch.post("/", params={"database": CH_DATABASE}, content=sql.encode())
        except httpx.HTTPError as exc:
            self.clickhouse_error = repr(exc)
            return None
        if r.status_code != 200:
            self.clickhouse_error = r.text.strip().splitlines()[0][:200] if r.text.strip() else str(r.status_code)
            return None
        return {code: int(n) for code, n in (ln.split("\t") for ln in r.text.splitlines() if ln)}


def differences(before: dict[str, int], after: dict[str, int], served: dict[str, int]) -> tuple[int, int, int]:
    """(clicks counted in the step, codes with fewer counted than served, codes with more)."""
    counted = short = extra = 0
    for code in set(served) | set(after):
        delta = after.get(code, 0) - before.get(code, 0)
        counted += delta
        if delta < served.get(code, 0):
            short += 1
        elif delta > served.get(code, 0):
            extra += 1
    return counted, short, extra


async def create_links(prefix: str, count: int, api_key: str) -> list[str]:
    """The bench links <prefix>0000.., created through the shorten API (nginx) when missing;
    returns their codes once every one redirects (HEAD: answers like GET, counts no click)."""
    codes = [f"{prefix}{i:05d}" for i in range(count)]
    sem = asyncio.Semaphore(8)
    headers = {"Authorization": f"Bearer {api_key}"}
    async with httpx.AsyncClient(base_url=PUBLIC, headers=headers, timeout=10) as api:

        async def one(code: str) -> None:
            async with sem:
                for _ in range(50):
                    r = await api.post("/api/v1/links", json={"url": f"https://bench.example/c/{code}", "alias": code})
                    if r.status_code in (201, 409):
                        return
                    if r.status_code not in (429, 503):  # refused for now: again after Retry-After
                        raise RuntimeError(f"creating {code}: {r.status_code} {r.text[:300]}")
                    await asyncio.sleep(float(r.headers.get("Retry-After", "1")))
                raise RuntimeError(f"creating {code}: still refused ({r.status_code})")

        await asyncio.gather(*(one(c) for c in codes))
        deadline = time.monotonic() + 60
        for code in codes:
            while (status := (await api.head(f"/{code}")).status_code) != 302:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"bench link {code} answers {status}, not 302")
                await asyncio.sleep(0.05)
    return codes


def shorten_rate_limit(programs: dict[str, int]) -> str:
    """SHORTEN_RATE_LIMIT of the running shorten process (its environment), else its default."""
    for program, pid in programs.items():
        if program.startswith("shorten") and "relay" not in program:
            with contextlib.suppress(OSError):
                for item in Path(f"/proc/{pid}/environ").read_bytes().split(b"\0"):
                    if item.startswith(b"SHORTEN_RATE_LIMIT="):
                        return item.split(b"=", 1)[1].decode()
    code = "from shorten.settings import ShortenSettings as S; print(S.model_fields['shorten_rate_limit'].default)"
    py = str(ROOT / ".venv/bin/python")
    return subprocess.run([py, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True).stdout.strip()


def writes_per_second_allowed(limit: str) -> float:
    """Sustained writes/s a per-key moving window of `limit` (e.g. 6000/minute) lets through."""
    from limits import parse

    item = parse(limit)
    return item.amount / item.get_expiry()


def quantile(sorted_values: Sequence[float], q: float) -> float:
    if not sorted_values:
        return float("nan")
    return sorted_values[min(len(sorted_values) - 1, max(0, round(q * (len(sorted_values) - 1))))]


def git_revision() -> str:
    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, check=False).stdout.strip()

    rev = git("rev-parse", "--short", "HEAD") or "?"
    # The results docs themselves do not count as a change of the code measured.
    dirty = git("status", "--porcelain", "--untracked-files=no", "--", ".", ":!docs/benchmarks")
    return rev + (" (with uncommitted changes)" if dirty else "")


def flatten(groups: Iterable[set[int]]) -> set[int]:
    out: set[int] = set()
    for g in groups:
        out |= g
    return out
