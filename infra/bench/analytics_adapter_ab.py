"""The analytics ClickHouse adapter, this checkout's, against the stack's ClickHouse 18.16: /stats
(every interval, visitor cache off: 3 statements each) and /top, 8 at a time; process CPU (all
threads) and latency per request. Run once per checkout (PYTHONPATH), alternately."""

import asyncio
import json
import os
import statistics
import sys
import time
from datetime import UTC, datetime

from analytics.adapters import clickhouse as adapter
from analytics.adapters.memory_cache import CountedCache
from analytics.domain.queries import parse_stats, parse_top

URL, DB = os.environ["CLICKHOUSE_URL"], "shortlink"
N, CONCURRENCY = int(sys.argv[1]), 8
CODES = sys.argv[2:]


async def main() -> None:
    visitors = CountedCache(max_entries=1, ttl_s=0.0)  # every visitor count read from the states
    if hasattr(adapter, "build_engine"):
        store = adapter.ClickHouseEvents(
            adapter.build_engine(URL, database=DB, timeout_s=30, pool_size=8), visitors=visitors
        )
        design = "before (clickhouse-sqlalchemy engine in threads)"
    else:
        store = adapter.ClickHouseEvents(
            adapter.build_client(URL, database=DB, timeout_s=30, pool_size=8), visitors=visitors
        )
        design = "after (shared async client)"
    now = datetime.now(UTC)
    requests = []
    for i in range(N):
        code = CODES[i % len(CODES)]
        k = i % 4
        if k == 3:
            requests.append(
                lambda: store.top(parse_top({"window": "24h", "limit": "10"}, now=now, workspace="default"))
            )
        else:
            interval = ("minute", "hour", "day")[k]
            requests.append(
                lambda code=code, interval=interval: store.range_stats(
                    parse_stats(code, {"interval": interval, "include_bots": "true"}, now=now)
                )
            )
    for r in requests[:16]:  # warm-up (connections, imports)
        await r()
    latencies: list[float] = []
    gate = asyncio.Semaphore(CONCURRENCY)

    async def one(r):
        async with gate:
            t = time.perf_counter()
            await r()
            latencies.append(time.perf_counter() - t)

    cpu, wall = time.process_time(), time.perf_counter()
    await asyncio.gather(*(one(r) for r in requests))
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    latencies.sort()
    print(
        json.dumps(
            {
                "design": design,
                "requests": N,
                "cpu_us_per_req": round(cpu / N * 1e6),
                "req_s": round(N / wall, 1),
                "p50_ms": round(statistics.median(latencies) * 1e3, 1),
                "p95_ms": round(latencies[int(0.95 * N)] * 1e3, 1),
            }
        )
    )


asyncio.run(main())
