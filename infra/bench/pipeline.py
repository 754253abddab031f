"""Pipeline benchmark (`just bench pipeline`): Kafka -> aggregator -> PostgreSQL + ClickHouse.

1. Freshness on the idle stack: single clicks, time from produce to visible in the analytics
   API (through nginx), p50/p95.
2. Throughput, once per record format, in one run: `batch` (ClicksBatched records as the
   redirect publishes them, --batch-size clicks each, 1 % of the records re-sent) and the
   baseline `single` (one LinkClicked record per click, the format before batching, 1 % of the
   events repeated). For each: the aggregator workers are stopped, the clicks are produced (a
   backlog), a plain aiokafka consumer per partition reads them (the ceiling for Python
   consumption here), then the workers are started and drain the backlog: sustained events/s
   per worker and in total, and the workers' CPU time per event.
3. Exact-count check per format: every code's totals in PostgreSQL and ClickHouse equal what was
   produced (repeats excluded).
Results: docs/benchmarks/pipeline.md. Settings: --events (BENCH_PIPELINE_EVENTS, default 1e6),
--baseline-events (default 200,000: the baseline is ~10x slower).
"""

import argparse
import asyncio
import json
import os
import secrets
import statistics
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import asyncpg
import httpx
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from contracts import clicks
from pipeline_kafka import expected_counts, produce, synthetic, synthetic_batches
from platformkit.kafka import topic_partitions

ROOT = Path(__file__).resolve().parents[2]
KAFKA = os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9092")
PG = os.environ.get("POSTGRES_DSN", "postgresql://shortlink:shortlink@127.0.0.1:5433/shortlink")
CH = os.environ.get("CLICKHOUSE_URL", "http://127.0.0.1:18123")
PUBLIC = f"http://127.0.0.1:{os.environ.get('PUBLIC_HTTP_PORT', '8080')}"
WORKERS = {
    f"aggregator-{i}": int(p)
    for i, p in enumerate(os.environ.get("AGGREGATOR_WEB_PORTS", "6061,6062,6063").split(","), start=1)
}


def say(msg: str) -> None:
    print(f"[bench] {msg}", flush=True)


def ctl(*args: str) -> str:
    return subprocess.run(
        [str(ROOT / ".venv/bin/supervisorctl"), "-c", str(ROOT / ".local/supervisord.conf"), *args],
        capture_output=True,
        text=True,
        timeout=120,
    ).stdout


async def end_offsets(topic: str) -> dict[int, int]:
    tps = [TopicPartition(topic, p) for p in await topic_partitions(KAFKA, topic)]
    consumer = AIOKafkaConsumer(bootstrap_servers=KAFKA, group_id=None)
    await consumer.start()
    try:
        return {tp.partition: o for tp, o in (await consumer.end_offsets(tps)).items()}
    finally:
        await consumer.stop()


async def wait_idle() -> None:
    """Every worker ready and caught up (lag 0) three polls in a row: freshness is for an idle stack."""
    calm = 0
    deadline = time.perf_counter() + 300
    async with httpx.AsyncClient(timeout=2) as http:
        while calm < 3:
            if time.perf_counter() > deadline:
                raise RuntimeError("the aggregator workers did not become idle within 5 min")
            try:
                lags = [await lag(http, port) for port in WORKERS.values()]
                ready = [(await http.get(f"http://127.0.0.1:{p}/readyz")).status_code for p in WORKERS.values()]
                calm = calm + 1 if sum(lags) == 0 and set(ready) == {200} else 0
            except httpx.HTTPError:
                calm = 0
            await asyncio.sleep(1.0)


async def lag(http: httpx.AsyncClient, port: int) -> float:
    text = (await http.get(f"http://127.0.0.1:{port}/metrics")).text
    return sum(float(ln.split()[-1]) for ln in text.splitlines() if ln.startswith("aggregator_consumer_lag{"))


async def freshness(samples: int) -> list[float]:
    """Seconds from produce to the click being visible in GET /api/v1/links/{code}/stats."""
    latencies = []
    producer = AIOKafkaProducer(bootstrap_servers=KAFKA, acks="all", linger_ms=0)
    await producer.start()
    try:
        # Stats need a key: the stack's admin key (workspace `default`, which owns codes the `links`
        # topic never announced, like these).
        key = (ROOT / ".local" / "api-key").read_text().strip()
        async with httpx.AsyncClient(base_url=PUBLIC, timeout=5, headers={"Authorization": f"Bearer {key}"}) as api:
            for _ in range(samples):
                code = f"fresh{secrets.token_hex(5)}"
                event = clicks.LinkClicked(
                    event_id=str(uuid.uuid4()), occurred_at=datetime.now(UTC), code=code, visitor_key="v"
                )
                started = time.perf_counter()
                await producer.send_and_wait("clicks", clicks.encode(event), key=code.encode())
                while True:
                    r = await api.get(f"/api/v1/links/{code}/stats")
                    if r.status_code == 200 and r.json()["lifetime"]["clicks"] == 1:
                        break
                    if time.perf_counter() - started > 30:
                        raise RuntimeError(f"click on {code} not visible after 30 s")
                    await asyncio.sleep(0.01)
                latencies.append(time.perf_counter() - started)
    finally:
        await producer.stop()
    return latencies


def ceiling(start: dict[int, int], end: dict[int, int]) -> list[dict[str, float]]:
    """One plain aiokafka consumer process per partition, in parallel, like the 3 workers."""
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                str(Path(__file__).with_name("pipeline_kafka.py")),
                "consume",
                "--bootstrap",
                KAFKA,
                "--partition",
                str(p),
                "--start",
                str(start[p]),
                "--end",
                str(end[p]),
            ],
            stdout=subprocess.PIPE,
            text=True,
        )
        for p in start
    ]
    return [json.loads(proc.communicate(timeout=900)[0]) for proc in procs]


async def processed(http: httpx.AsyncClient) -> dict[str, float]:
    out = {}
    for name, port in WORKERS.items():
        try:
            text = (await http.get(f"http://127.0.0.1:{port}/metrics")).text
        except httpx.HTTPError:
            continue
        line = next((ln for ln in text.splitlines() if ln.startswith("aggregator_events_processed_total")), None)
        if line:
            out[name] = float(line.split()[-1])
    return out


async def counted(prefix: str) -> int:
    """Clicks of the run counted in PostgreSQL (a fresh connection: survives a database restart)."""
    conn = await asyncpg.connect(PG)
    try:
        return int(
            await conn.fetchval(
                "SELECT coalesce(sum(clicks + bot_clicks), 0) FROM clicks.link_totals WHERE code LIKE $1", prefix + "%"
            )
        )
    finally:
        await conn.close()


def worker_pids() -> list[int]:
    pids = [ctl("pid", name).strip() for name in WORKERS]
    return [int(p) for p in pids if p.isdigit() and int(p) > 0]


def cpu_seconds(pids: list[int]) -> float:
    """utime + stime (all threads) of these processes, in seconds."""
    ticks = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        ticks += int(fields[11]) + int(fields[12])
    return ticks / os.sysconf("SC_CLK_TCK")


async def drain(prefix: str, target: int) -> tuple[float, dict[str, float], float, float]:
    """Start the workers and wait until `target` clicks of the run are counted. Returns the
    sustained rate (first to last counted event), per-worker rates, the startup delay and the
    workers' CPU seconds over the same span."""
    samples: list[tuple[float, int, dict[str, float], float]] = []
    started = time.perf_counter()
    ctl("start", *WORKERS)
    pids = worker_pids()
    async with httpx.AsyncClient(timeout=2) as http:
        while True:
            try:
                done = await counted(prefix)
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
                say(f"PostgreSQL unavailable ({exc!r}); polling again")
                await asyncio.sleep(1.0)
                continue
            samples.append((time.perf_counter(), done, await processed(http), cpu_seconds(pids)))
            if done >= target:
                break
            if time.perf_counter() - started > 1800:
                raise RuntimeError(f"only {done}/{target} counted after 30 min")
            await asyncio.sleep(0.5)
    first = next(i for i, s in enumerate(samples) if s[1] > 0)
    t0, c0, _, cpu0 = samples[max(first - 1, 0)]
    t1, c1, _, cpu1 = samples[-1]
    per_worker = {}
    for name in WORKERS:
        series = [(t, p[name]) for t, _, p, _ in samples[first:] if name in p]
        if len(series) < 2:
            continue
        if any(v < prev for (_, v), (_, prev) in zip(series[1:], series, strict=False)):
            continue  # the worker restarted during the run: its counter is not comparable
        moving = [(t, v) for (t, v), (_, prev) in zip(series[1:], series, strict=False) if v > prev]
        end_t = moving[-1][0] if moving else series[-1][0]
        per_worker[name] = (series[-1][1] - series[0][1]) / max(end_t - series[0][0], 1e-6)
    return (c1 - c0) / max(t1 - t0, 1e-6), per_worker, samples[first][0] - started, cpu1 - cpu0


async def exact_check(pg: asyncpg.Connection, prefix: str, expected: dict[str, tuple[int, int]]) -> tuple[int, int]:
    """Codes whose PostgreSQL / ClickHouse totals differ from what was produced."""
    rows = await pg.fetch("SELECT code, clicks, bot_clicks FROM clicks.link_totals WHERE code LIKE $1", prefix + "%")
    pg_bad = sum(1 for r in rows if expected.get(r["code"]) != (r["clicks"], r["bot_clicks"]))
    pg_bad += len(expected) - len(rows)
    async with httpx.AsyncClient(base_url=CH, timeout=120) as ch:
        r = await ch.post(
            "/",
            params={"database": "shortlink"},
            content=(
                "SELECT code, uniqExactIf(event_id, is_bot = 0), uniqExactIf(event_id, is_bot = 1) FROM click_events "
                f"WHERE code LIKE '{prefix}%' GROUP BY code"
            ).encode(),
        )
    ch_rows = [line.split("\t") for line in r.text.splitlines()]
    ch_bad = sum(1 for c, h, b in ch_rows if expected.get(c) != (int(h), int(b))) + len(expected) - len(ch_rows)
    return pg_bad, ch_bad


def pct(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[int(q) - 1] if len(values) > 1 else values[0]


@dataclass
class Run:
    fmt: str
    events: int
    records: int
    produce_rate: float
    plain: list[dict[str, float]]
    rate: float
    per_worker: dict[str, float]
    cpu_us_per_event: float
    pg_bad: int
    ch_bad: int


async def throughput(fmt: str, a: argparse.Namespace, events: int) -> Run:
    """One format: backlog with the workers stopped, the plain-consumer ceiling, then the drain."""
    prefix = f"bench{secrets.token_hex(3)}-"
    say(f"[{fmt}] run {prefix}: {events:,} events over {a.codes:,} codes")
    ctl("stop", *WORKERS)
    start = await end_offsets("clicks")
    if fmt == "batch":
        records = synthetic_batches(
            prefix,
            events=events,
            codes=a.codes,
            duplicate_every=a.duplicate_every,
            batch=a.batch_size,
            partitions=len(start),
        )
    else:
        records = synthetic(prefix, events=events, codes=a.codes, duplicate_every=a.duplicate_every)
    sent, produce_s = await produce(KAFKA, "clicks", records)
    end = await end_offsets("clicks")
    say(f"[{fmt}] produced {sent:,} records in {produce_s:.1f}s ({sent / produce_s:,.0f}/s)")
    plain = ceiling(start, end)
    for r in plain:
        say(
            f"[{fmt}] plain aiokafka consumer, partition {r['partition']}: {r['records']:,.0f} records "
            f"in {r['seconds']:.1f}s"
        )
    rate, per_worker, startup, cpu_s = await drain(prefix, events)
    say(
        f"[{fmt}] drained at {rate:,.0f} events/s (workers up after {startup:.1f}s), "
        f"{cpu_s / events * 1e6:.1f} us CPU per event"
    )
    pg = await asyncpg.connect(PG)
    try:
        pg_bad, ch_bad = await exact_check(pg, prefix, expected_counts(prefix, events=events, codes=a.codes))
    finally:
        await pg.close()
    return Run(
        fmt=fmt,
        events=events,
        records=sent,
        produce_rate=sent / produce_s,
        plain=plain,
        rate=rate,
        per_worker=per_worker,
        cpu_us_per_event=cpu_s / events * 1e6,
        pg_bad=pg_bad,
        ch_bad=ch_bad,
    )


async def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--events", type=int, default=int(os.environ.get("BENCH_PIPELINE_EVENTS", 1_000_000)))
    p.add_argument("--baseline-events", type=int, default=200_000, help="events for the single-click baseline")
    p.add_argument("--formats", default="batch,single", help="record formats to run, in order")
    p.add_argument("--batch-size", type=int, default=500, help="clicks per batch record")
    p.add_argument("--codes", type=int, default=20_000)
    p.add_argument("--samples", type=int, default=50, help="freshness samples")
    p.add_argument("--duplicate-every", type=int, default=100, help="repeat every Nth event/record (0: none)")
    a = p.parse_args()
    await wait_idle()
    fresh = await freshness(a.samples)
    say(f"freshness p50 {pct(fresh, 50):.3f}s p95 {pct(fresh, 95):.3f}s")
    runs = []
    for fmt in a.formats.split(","):
        runs.append(await throughput(fmt, a, a.events if fmt == "batch" else a.baseline_events))
        ctl("start", *WORKERS)
    print("\n| measure | " + " | ".join(f"{r.fmt} records" for r in runs) + " |")
    print("|---|" + "---|" * len(runs))

    def row(name: str, cells: list[str]) -> None:
        print(f"| {name} | " + " | ".join(cells) + " |")

    row("events (unique) / records incl. repeats", [f"{r.events:,} / {r.records:,}" for r in runs])
    row("clicks per record", [f"{a.batch_size}" if r.fmt == "batch" else "1" for r in runs])
    row(
        "freshness produce->API p50 / p95 (idle, single clicks)",
        [f"{pct(fresh, 50) * 1000:.0f} ms / {pct(fresh, 95) * 1000:.0f} ms"] + [""] * (len(runs) - 1),
    )
    row("producer (1 process)", [f"{r.produce_rate:,.0f} records/s" for r in runs])

    def ceiling_rate(r: Run) -> str:
        records_s = sum(x["records"] for x in r.plain) / max(x["seconds"] for x in r.plain)
        return f"{records_s * r.events / r.records:,.0f} events/s ({records_s:,.0f} records/s)"

    row("plain aiokafka consumers, total (the ceiling)", [ceiling_rate(r) for r in runs])
    row(
        "aggregator, per worker (sustained)",
        [" / ".join(f"{v:,.0f}" for v in r.per_worker.values()) + " events/s" for r in runs],
    )
    row("**aggregator, total (sustained)**", [f"**{r.rate:,.0f} events/s**" for r in runs])
    row("**aggregator CPU per event (3 workers)**", [f"**{r.cpu_us_per_event:.1f} us**" for r in runs])
    row(
        "exact-count check (codes off in PostgreSQL / ClickHouse)",
        [f"{r.pg_bad} / {r.ch_bad} ({'PASS' if r.pg_bad == r.ch_bad == 0 else 'FAIL'})" for r in runs],
    )
    if len(runs) == 2:
        new, old = runs
        print(
            f"\n{new.fmt} vs {old.fmt}: {new.rate / old.rate:.1f}x events/s, "
            f"{old.cpu_us_per_event / new.cpu_us_per_event:.1f}x less CPU per event"
        )
    target = next((r for r in runs if r.fmt == "batch"), None)
    if target is not None:
        ok = target.rate >= 40_000 and target.cpu_us_per_event <= 25
        print(f"target (>= 40,000 events/s, <= 25 us CPU per event): {'PASS' if ok else 'FAIL'}")
    if any(r.pg_bad or r.ch_bad for r in runs):
        raise SystemExit(1)


if __name__ == "__main__":
    asyncio.run(main())
