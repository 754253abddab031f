"""MirrorMaker 2 benchmark (`just bench regions`, after `just up` and `just regions up`): how long a
link created in region A takes to reach region B, and what the mirroring costs in CPU.

1. Idle: MirrorMaker 2's JVM CPU over --idle seconds with no traffic (its heartbeats, polls, offset
   syncs): the fixed cost of keeping two regions in step.
2. Load: --links links created one after another through region A's public API (--rate a second).
   A consumer on region B's `A.links` (from its end) notes when each record arrives; MirrorMaker 2
   keeps the source record's timestamp (CreateTime in region A), and both regions share this
   machine's clock, so arrival - timestamp is the produce-in-A to readable-in-B lag (MirrorMaker's
   copy plus one consumer fetch). Reported: p50, p99, max. Also the time from region A's 201 to
   the first 30x of region B's redirect replica for every --sample-th link (the drill's bound: 2 s).
3. CPU per mirrored record over the load window: MirrorMaker 2's JVM against region A's Kafka broker
   (the reference, in the same run: it takes the same records once, as writes), from /proc.
   Records mirrored = the growth of every mirrored topic's end offsets in both directions.

Prints a table (docs/benchmarks/regions.md keeps the runs).
"""

import argparse
import asyncio
import contextlib
import os
import statistics
import subprocess
import time
from datetime import UTC, datetime

import httpx
from aiokafka import AIOKafkaConsumer, TopicPartition
from platformkit.kafka import topic_partitions
from redirect_bench_support import ROOT, cpu_ticks, machine_notes
from stackctl.config import StackSettings
from stackctl.regions import RegionSettings, kafka_b_bootstrap, regions_local

TICK = os.sysconf("SC_CLK_TCK")


def program_pid(s: StackSettings, name: str) -> int:
    ctl = [str(ROOT / ".venv/bin/supervisorctl"), "-c", str(s.supervisor_conf), "pid", name]
    out = subprocess.run(ctl, capture_output=True, text=True, check=True).stdout.strip()
    if not out.isdigit() or int(out) == 0:
        raise SystemExit(f"{name} is not running: `just up` and `just regions up` first")
    return int(out)


async def end_offsets(bootstrap: str, topics: list[str]) -> int:
    """The sum of the end offsets of every partition of `topics`."""
    tps = [TopicPartition(t, p) for t in topics for p in await topic_partitions(bootstrap, t)]
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None)
    await consumer.start()
    try:
        ends = await consumer.end_offsets(tps)
        return sum(ends.values())
    finally:
        await consumer.stop()


async def mirrored_records(s: StackSettings, r: RegionSettings) -> int:
    names = [t.strip() for t in r.region_mirror_topics.split(",") if t.strip()]
    in_b = await end_offsets(kafka_b_bootstrap(r), [f"A.{t}" for t in names])
    in_a = await end_offsets(s.kafka_bootstrap, [f"B.{t}" for t in names])
    return in_b + in_a


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def run(args: argparse.Namespace) -> dict[str, object]:
    s = StackSettings()
    r = RegionSettings()
    rs = regions_local(s)
    mm2, kafka_a = program_pid(rs, "mirrormaker"), program_pid(s, "kafka")
    key = s.api_key_file.read_text().strip()

    t0, c0 = time.monotonic(), cpu_ticks({mm2})
    await asyncio.sleep(args.idle)
    idle_cpu = (cpu_ticks({mm2}) - c0) / TICK / (time.monotonic() - t0)

    lags: list[float] = []
    consumer = AIOKafkaConsumer(bootstrap_servers=kafka_b_bootstrap(r), group_id=None, fetch_max_wait_ms=20)
    await consumer.start()
    partitions = await topic_partitions(kafka_b_bootstrap(r), "A.links")
    consumer.assign([TopicPartition("A.links", p) for p in partitions])
    await consumer.seek_to_end()  # only the links created below
    stop = asyncio.Event()
    all_seen = asyncio.Event()

    async def follow() -> None:
        while not stop.is_set():
            batches = await consumer.getmany(timeout_ms=50)
            now_ms = time.time() * 1000
            # MirrorMaker keeps the source timestamp: region A's CreateTime, on this machine's clock.
            lags.extend((now_ms - rec.timestamp) / 1000 for records in batches.values() for rec in records)
            if len(lags) >= args.links:
                all_seen.set()

    follower = asyncio.create_task(follow())
    records0 = await mirrored_records(s, r)
    cpu0, broker0, w0 = cpu_ticks({mm2}), cpu_ticks({kafka_a}), time.monotonic()
    redirect_lags: list[float] = []
    async with httpx.AsyncClient(timeout=10, follow_redirects=False) as http:
        for i in range(args.links):
            started = time.monotonic()
            resp = await http.post(
                f"http://127.0.0.1:{s.public_http_port}/api/v1/links",
                json={"url": f"https://example.com/regions-bench/{i}"},
                headers={"Authorization": f"Bearer {key}"},
            )
            resp.raise_for_status()
            created = time.monotonic()
            if i % args.sample == 0:
                code = resp.json()["code"]
                while time.monotonic() - created < 30:
                    got = await http.get(
                        f"http://127.0.0.1:{r.region_b_redirect_port}/{code}",
                        headers={"User-Agent": "regions-bench bot"},
                    )
                    if got.status_code != 404:
                        redirect_lags.append(time.monotonic() - created)
                        break
                    await asyncio.sleep(0.01)
            await asyncio.sleep(max(0.0, 1 / args.rate - (time.monotonic() - started)))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(all_seen.wait(), timeout=30)
    window = time.monotonic() - w0
    mm2_cpu, broker_cpu = (cpu_ticks({mm2}) - cpu0) / TICK, (cpu_ticks({kafka_a}) - broker0) / TICK
    stop.set()
    await follower
    await consumer.stop()
    records = await mirrored_records(s, r) - records0
    return {
        "links": args.links,
        "rate": args.rate,
        "seen_in_b": len(lags),
        "lag_p50_ms": pct(lags, 0.5) * 1000,
        "lag_p99_ms": pct(lags, 0.99) * 1000,
        "lag_max_ms": max(lags) * 1000,
        "redirect_samples": len(redirect_lags),
        "redirect_p50_ms": statistics.median(redirect_lags) * 1000,
        "redirect_max_ms": max(redirect_lags) * 1000,
        "idle_cpu_pct": idle_cpu * 100,
        "window_s": window,
        "records_mirrored": records,
        "mm2_cpu_s": mm2_cpu,
        "broker_cpu_s": broker_cpu,
        "mm2_us_per_record": mm2_cpu / max(records, 1) * 1e6,
        "mm2_over_load_cpu_pct": mm2_cpu / window * 100,
        "broker_over_load_cpu_pct": broker_cpu / window * 100,
        "load": os.getloadavg(),
    }


def report(result: dict[str, object]) -> str:
    notes = machine_notes()
    r = result
    lines = [
        "# MirrorMaker 2 between two regions (Phase D drill)",
        "",
        f"Run {datetime.now(UTC):%Y-%m-%d %H:%M} UTC by `just bench regions` on the shared machine "
        f"({notes['cpu']}; load average {r['load'][0]:.2f} at the end). Setup: docs/regions.md.",  # type: ignore[index]
        "",
        "How to reproduce: `just up`, `just regions up`, `just bench regions`, `just regions down`.",
        "",
        f"Links created in region A: {r['links']} at {r['rate']}/s through the public API; seen in "
        f"region B's `A.links`: {r['seen_in_b']}.",
        "",
        "| measure | value |",
        "|---|---|",
        f"| produce in A -> readable in B (`A.links`), p50 | {r['lag_p50_ms']:.0f} ms |",
        f"| produce in A -> readable in B, p99 | {r['lag_p99_ms']:.0f} ms |",
        f"| produce in A -> readable in B, max | {r['lag_max_ms']:.0f} ms |",
        f"| A's 201 -> B's redirect answers (every link sampled: {r['redirect_samples']}), median | "
        f"{r['redirect_p50_ms']:.0f} ms |",
        f"| A's 201 -> B's redirect answers, max | {r['redirect_max_ms']:.0f} ms |",
        f"| MirrorMaker 2 JVM CPU, idle | {r['idle_cpu_pct']:.1f} % of a core |",
        f"| MirrorMaker 2 JVM CPU over the load window ({r['window_s']:.0f} s) | "
        f"{r['mm2_over_load_cpu_pct']:.1f} % of a core |",
        f"| region A's Kafka broker CPU, same window (reference) | {r['broker_over_load_cpu_pct']:.1f} % of a core |",
        f"| records mirrored in the window (both ways, all mirrored topics) | {r['records_mirrored']} |",
        f"| MirrorMaker 2 CPU per mirrored record (idle cost included) | {r['mm2_us_per_record']:.0f} us |",
        "",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--links", type=int, default=200)
    parser.add_argument("--rate", type=float, default=10.0, help="links created per second")
    parser.add_argument("--sample", type=int, default=1, help="time B's redirect for every n-th link")
    parser.add_argument("--idle", type=float, default=15.0, help="seconds of idle CPU measurement")
    args = parser.parse_args()
    result = asyncio.run(run(args))
    print(report(result))


if __name__ == "__main__":
    main()
