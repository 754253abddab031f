"""Pipeline benchmark (`just bench pipeline`): Kafka -> aggregator -> PostgreSQL + ClickHouse.

1. Freshness on the idle stack: single clicks, time from produce to visible in the analytics
   API (through nginx), p50/p95.
2. Throughput: the aggregator workers are stopped, M synthetic clicks (+1% repeats) are
   produced (a backlog), a plain aiokafka consumer per partition reads them (the ceiling for
   Python consumption here), then the workers are started and drain the backlog: sustained
   events/s per worker and in total.
3. Exact-count check: every code's totals in PostgreSQL and ClickHouse equal what was produced.
Results: docs/benchmarks/pipeline.md. Settings: --events (BENCH_PIPELINE_EVENTS, default 1e6).
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
from datetime import UTC, datetime
from pathlib import Path

import asyncpg
import httpx
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from contracts import clicks
from pipeline_kafka import expected_counts, produce, synthetic
from platformkit.kafka import topic_partitions

ROOT = Path(__file__).resolve().parents[2]
KAFKA = os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9092")
PG = os.environ.get("POSTGRES_DSN", "postgresql://shortlink:shortlink@127.0.0.1:5433/shortlink")
CH = os.environ.get("CLICKHOUSE_URL", "http://127.0.0.1:18123")
PUBLIC = f"http://127.0.0.1:{os.environ.get('PUBLIC_HTTP_PORT', '8080')}"
WORKERS = {f"aggregator-{i}": int(p) for i, p in
           enumerate(os.environ.get("AGGREGATOR_WEB_PORTS", "6061,6062,6063").split(","), start=1)}


def say(msg: str) -> None:
    print(f"[bench] {msg}", flush=True)


def ctl(*args: str) -> str:
    return subprocess.run([str(ROOT / ".venv/bin/supervisorctl"), "-c", str(ROOT / ".local/supervisord.conf"),
                           *args], capture_output=True, text=True, timeout=120).stdout


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
        async with httpx.AsyncClient(base_url=PUBLIC, timeout=5) as api:
            for _ in range(samples):
                code = f"fresh{secrets.token_hex(5)}"
                event = clicks.LinkClicked(event_id=str(uuid.uuid4()), occurred_at=datetime.now(UTC), code=code,
                                           visitor_key="v")
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
    procs = [subprocess.Popen([sys.executable, str(Path(__file__).with_name("pipeline_kafka.py")), "consume",
                               "--bootstrap", KAFKA, "--partition", str(p), "--start", str(start[p]),
                               "--end", str(end[p])], stdout=subprocess.PIPE, text=True) for p in start]
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
        return int(await conn.fetchval("SELECT coalesce(sum(clicks + bot_clicks), 0) FROM clicks.link_totals "
                                       "WHERE code LIKE $1", prefix + "%"))
    finally:
        await conn.close()


async def drain(prefix: str, target: int) -> tuple[float, dict[str, float], float]:
    """Start the workers and wait until `target` clicks of the run are counted. Returns the
    sustained rate (first to last counted event), per-worker rates, and the startup delay."""
    samples: list[tuple[float, int, dict[str, float]]] = []
    started = time.perf_counter()
    ctl("start", *WORKERS)
    async with httpx.AsyncClient(timeout=2) as http:
        while True:
            try:
                done = await counted(prefix)
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
                say(f"PostgreSQL unavailable ({exc!r}); polling again")
                await asyncio.sleep(1.0)
                continue
            samples.append((time.perf_counter(), done, await processed(http)))
            if done >= target:
                break
            if time.perf_counter() - started > 1800:
                raise RuntimeError(f"only {done}/{target} counted after 30 min")
            await asyncio.sleep(0.5)
    first = next(i for i, s in enumerate(samples) if s[1] > 0)
    t0, c0, _ = samples[max(first - 1, 0)]
    t1, c1, _ = samples[-1]
    per_worker = {}
    for name in WORKERS:
        series = [(t, p[name]) for t, _, p in samples[first:] if name in p]
        if len(series) < 2:
            continue
        if any(v < prev for (_, v), (_, prev) in zip(series[1:], series, strict=False)):
            continue  # the worker restarted during the run: its counter is not comparable
        moving = [(t, v) for (t, v), (_, prev) in zip(series[1:], series, strict=False) if v > prev]
        end_t = moving[-1][0] if moving else series[-1][0]
        per_worker[name] = (series[-1][1] - series[0][1]) / max(end_t - series[0][0], 1e-6)
    return (c1 - c0) / max(t1 - t0, 1e-6), per_worker, samples[first][0] - started


async def exact_check(pg: asyncpg.Connection, prefix: str, expected: dict[str, tuple[int, int]]) -> tuple[int, int]:
    """Codes whose PostgreSQL / ClickHouse totals differ from what was produced."""
    rows = await pg.fetch("SELECT code, clicks, bot_clicks FROM clicks.link_totals WHERE code LIKE $1", prefix + "%")
    pg_bad = sum(1 for r in rows if expected.get(r["code"]) != (r["clicks"], r["bot_clicks"]))
    pg_bad += len(expected) - len(rows)
    async with httpx.AsyncClient(base_url=CH, timeout=120) as ch:
        r = await ch.post("/", params={"database": "shortlink"}, content=(
            "SELECT code, uniqExactIf(event_id, is_bot = 0), uniqExactIf(event_id, is_bot = 1) FROM click_events "
            f"WHERE code LIKE '{prefix}%' GROUP BY code").encode())
    ch_rows = [line.split("\t") for line in r.text.splitlines()]
    ch_bad = sum(1 for c, h, b in ch_rows if expected.get(c) != (int(h), int(b))) + len(expected) - len(ch_rows)
    return pg_bad, ch_bad


def pct(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[int(q) - 1] if len(values) > 1 else values[0]


async def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--events", type=int, default=int(os.environ.get("BENCH_PIPELINE_EVENTS", 1_000_000)))
    p.add_argument("--codes", type=int, default=20_000)
    p.add_argument("--samples", type=int, default=50, help="freshness samples")
    p.add_argument("--duplicate-every", type=int, default=100, help="repeat every Nth event (0: none)")
    a = p.parse_args()
    prefix = f"bench{secrets.token_hex(3)}-"
    say(f"run {prefix}: {a.events:,} events over {a.codes:,} codes, 1 repeat per {a.duplicate_every}")
    await wait_idle()
    fresh = await freshness(a.samples)
    say(f"freshness p50 {pct(fresh, 50):.3f}s p95 {pct(fresh, 95):.3f}s")
    ctl("stop", *WORKERS)
    start = await end_offsets("clicks")
    sent, produce_s = await produce(KAFKA, "clicks", synthetic(prefix, events=a.events, codes=a.codes,
                                                              duplicate_every=a.duplicate_every))
    end = await end_offsets("clicks")
    say(f"produced {sent:,} records in {produce_s:.1f}s ({sent / produce_s:,.0f}/s)")
    plain = ceiling(start, end)
    for r in plain:
        say(f"plain aiokafka consumer, partition {r['partition']}: {r['records']:,.0f} in {r['seconds']:.1f}s")
    total_rate, per_worker, startup = await drain(prefix, a.events)
    say(f"drained at {total_rate:,.0f} events/s (workers up after {startup:.1f}s)")
    pg = await asyncpg.connect(PG)
    try:
        pg_bad, ch_bad = await exact_check(pg, prefix, expected_counts(prefix, events=a.events, codes=a.codes))
    finally:
        await pg.close()
    plain_rates = [r["records"] / r["seconds"] for r in plain]
    print("\n| measure | value |\n|---|---|")
    print(f"| events (unique) / records incl. repeats | {a.events:,} / {sent:,} |")
    print(f"| freshness produce->API p50 / p95 ({a.samples} samples, idle) | {pct(fresh, 50) * 1000:.0f} ms / "
          f"{pct(fresh, 95) * 1000:.0f} ms |")
    print(f"| producer (1 process) | {sent / produce_s:,.0f} records/s |")
    print("| plain aiokafka consumer, per process (3 in parallel) | "
          + " / ".join(f"{r:,.0f}" for r in plain_rates) + " records/s |")
    plain_total = sum(r["records"] for r in plain) / max(r["seconds"] for r in plain)
    print(f"| plain aiokafka consumers, total | {plain_total:,.0f} records/s |")
    print("| aggregator, per worker (sustained) | " + " / ".join(f"{v:,.0f}" for v in per_worker.values())
          + " events/s |")
    print(f"| aggregator, total (sustained) | {total_rate:,.0f} events/s |")
    print(f"| exact-count check (codes off in PostgreSQL / ClickHouse) | {pg_bad} / {ch_bad} "
          f"({'PASS' if pg_bad == ch_bad == 0 else 'FAIL'}) |")
    if pg_bad or ch_bad:
        raise SystemExit(1)


if __name__ == "__main__":
    asyncio.run(main())
