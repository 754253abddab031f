"""What live stats cost analytics (`just bench live`): --streams open Server-Sent Event streams
(GET /api/v1/links/{code}/live) through the stack's nginx, on loopback, against the running stack.

1. --links links are created with the stack's admin key (public API) and awaited in analytics.
2. Three phases of --seconds each, in one run, measuring the analytics process (supervised
   `analytics`, /proc utime + stime, VmRSS):
   a. no stream open, redirects at --rate per second through nginx (round robin over the links):
      the baseline (analytics still reads every `link-activity` record);
   b. --streams streams open (spread evenly over the links), no redirect: the heartbeats' cost
      and the memory per stream (RSS with the streams open minus RSS before, divided by them);
   c. the same streams, the same redirects: the cost of delivering events, and the delivery
      latency from each redirect's request to its click's event on every stream of its link
      (p50 / p99 / max over every (redirect, stream) pair; a stream matches each `clicks` event
      to the oldest redirects of its link not yet seen, by the event's click count).
Bounded and loopback only: --rate x --seconds redirects per loaded phase, then everything closes.
Prints a table; --out writes it as markdown.
"""

import argparse
import asyncio
import collections
import contextlib
import json
import os
import re
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
from redirect_bench_support import ROOT, cpu_ticks, descendants, machine_notes
from stackctl.config import StackSettings

TICK = os.sysconf("SC_CLK_TCK")
S = StackSettings()
PUBLIC = f"http://127.0.0.1:{S.public_http_port}"
ANALYTICS = f"http://127.0.0.1:{S.analytics_port}"
CTL = [str(ROOT / ".venv/bin/supervisorctl"), "-c", str(S.supervisor_conf)]


def say(msg: str) -> None:
    print(f"[bench live] {msg}", flush=True)


def analytics_pids() -> set[int]:
    out = subprocess.run([*CTL, "pid", "analytics"], capture_output=True, text=True, check=False).stdout.strip()
    if not (out.isdigit() and int(out) > 0):
        sys.exit("analytics is not running: `just up` first")
    return descendants({int(out)})


def rss_kib(pids: set[int]) -> int:
    total = 0
    for pid in pids:
        match = re.search(r"^VmRSS:\s+(\d+) kB", Path(f"/proc/{pid}/status").read_text(), re.MULTILINE)
        total += int(match.group(1)) if match else 0
    return total


def nginx_worker_connections() -> int:
    """From the nginx.conf the stack runs (rendered by `just up`), else the template."""
    rendered = [p for p in (S.local_dir / "nginx").glob("*.conf")] if (S.local_dir / "nginx").is_dir() else []
    for conf in [*rendered, ROOT / "infra/templates/nginx.conf"]:
        match = re.search(r"worker_connections\s+(\d+)", conf.read_text())
        if match:
            return int(match.group(1))
    return 0


@dataclass
class Redirects:
    """When each link was redirected (request start, monotonic), in order; `progress` is notified
    whenever a stream matched clicks."""

    times: dict[str, list[float]] = field(default_factory=lambda: collections.defaultdict(list))
    sent: int = 0
    failed: int = 0
    progress: asyncio.Condition = field(default_factory=asyncio.Condition)


@dataclass
class LiveStream:
    code: str
    ready: asyncio.Event = field(default_factory=asyncio.Event)
    seen: int = 0  # clicks of its link matched so far
    events: int = 0
    heartbeats: int = 0
    latencies: list[float] | None = None  # collected while not None
    error: str = ""


async def follow(session: aiohttp.ClientSession, stream: LiveStream, key: str, redirects: Redirects) -> None:
    url = f"{PUBLIC}/api/v1/links/{stream.code}/live"
    try:
        async with session.get(url, headers={"Authorization": f"Bearer {key}"}) as response:
            if response.status != 200:
                stream.error = f"{response.status} {await response.text()}"
                stream.ready.set()
                return
            name = ""
            async for raw in response.content:
                line = raw.decode().rstrip("\r\n")
                if line.startswith(":"):
                    stream.heartbeats += 1
                elif line.startswith("event:"):
                    name = line.partition(":")[2].strip()
                elif line.startswith("data:") and name == "ready":
                    stream.ready.set()
                elif line.startswith("data:") and name == "clicks":
                    now = time.monotonic()
                    data = json.loads(line.partition(":")[2])
                    stream.events += 1
                    times = redirects.times[stream.code]
                    matched = times[stream.seen : stream.seen + data["clicks"]]
                    stream.seen += data["clicks"]
                    if stream.latencies is not None:
                        stream.latencies.extend(now - t for t in matched)
                    async with redirects.progress:
                        redirects.progress.notify_all()
    except (TimeoutError, aiohttp.ClientError) as exc:
        stream.error = repr(exc)
        stream.ready.set()


async def redirect_load(
    session: aiohttp.ClientSession, codes: list[str], *, rate: float, seconds: float, redirects: Redirects
) -> None:
    """`rate` redirects per second for `seconds`, at fixed times (no catching up in bursts)."""
    total = int(rate * seconds)
    start = time.monotonic()
    headers = {"User-Agent": "Mozilla/5.0 (X11; Linux x86_64) bench-live"}

    async def one(code: str) -> None:
        redirects.times[code].append(time.monotonic())
        try:
            async with session.get(f"{PUBLIC}/{code}", headers=headers, allow_redirects=False) as r:
                if r.status != 302:
                    redirects.failed += 1
                await r.read()
        except aiohttp.ClientError:
            redirects.failed += 1
        redirects.sent += 1

    tasks = []
    for i in range(total):
        delay = start + i / rate - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(codes[i % len(codes)])))
    await asyncio.gather(*tasks)


@dataclass
class Window:
    seconds: float
    cpu_s: float

    @property
    def cpu_per_s(self) -> float:
        return self.cpu_s / self.seconds


async def measured(pids: set[int], work: "asyncio.Future[None] | None", seconds: float) -> Window:
    before, started = cpu_ticks(pids), time.monotonic()
    if work is not None:
        await work
    else:
        await asyncio.sleep(seconds)
    elapsed = time.monotonic() - started
    return Window(seconds=elapsed, cpu_s=(cpu_ticks(pids) - before) / TICK)


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def create_links(session: aiohttp.ClientSession, key: str, n: int) -> list[str]:
    codes = []
    for i in range(n):
        async with session.post(
            f"{PUBLIC}/api/v1/links",
            json={"url": f"https://bench-live.example/{i}"},
            headers={"Authorization": f"Bearer {key}"},
        ) as r:
            body = await r.json()
            if r.status != 201:
                sys.exit(f"creating a link failed: {r.status} {body}")
            codes.append(body["code"])
    deadline = time.monotonic() + 120
    for code in codes:  # analytics knows a link once the aggregator has read it from `links`
        while True:
            # HEAD of the stream: the access check's answer (200/404) without a stream or a
            # ClickHouse query.
            async with session.head(
                f"{PUBLIC}/api/v1/links/{code}/live", headers={"Authorization": f"Bearer {key}"}
            ) as r:
                await r.read()
                if r.status == 200:
                    break
            if time.monotonic() > deadline:
                sys.exit(f"analytics does not know {code} after 120 s")
            await asyncio.sleep(0.2)
    return codes


async def main(args: argparse.Namespace) -> int:
    key = await asyncio.to_thread(lambda: S.api_key_file.read_text().strip())
    pids = analytics_pids()
    timeout = aiohttp.ClientTimeout(total=None, sock_connect=10, sock_read=120)
    streams_conn = aiohttp.TCPConnector(limit=0, force_close=True)
    load_conn = aiohttp.TCPConnector(limit=64)
    notes = machine_notes()
    async with (
        aiohttp.ClientSession(connector=load_conn, timeout=timeout) as load,
        aiohttp.ClientSession(connector=streams_conn, timeout=timeout) as streams_session,
    ):
        say(f"creating {args.links} links and waiting for analytics to know them")
        codes = await create_links(load, key, args.links)
        await redirect_load(load, codes, rate=args.rate, seconds=2, redirects=Redirects())  # warm-up

        say(f"a. no stream, {args.rate:g} redirects/s for {args.seconds:g} s")
        base_redirects = Redirects()
        base = await measured(
            pids,
            asyncio.ensure_future(
                redirect_load(load, codes, rate=args.rate, seconds=args.seconds, redirects=base_redirects)
            ),
            args.seconds,
        )
        rss_before = rss_kib(pids)

        say(f"b. opening {args.streams} streams ({args.streams // len(codes)}+ per link) through nginx")
        redirects = Redirects()
        streams = [LiveStream(codes[i % len(codes)]) for i in range(args.streams)]
        opened_at = time.monotonic()
        followers = []
        for i in range(0, len(streams), args.open_batch):  # at most --open-batch opening at once
            wave = streams[i : i + args.open_batch]
            followers += [asyncio.create_task(follow(streams_session, s, key, redirects)) for s in wave]
            await asyncio.wait_for(asyncio.gather(*(s.ready.wait() for s in wave)), timeout=600)
        failed = [s for s in streams if s.error]
        if failed:
            say(f"{len(failed)} streams refused, e.g. {failed[0].error}")
            return 1
        say(f"   all open in {time.monotonic() - opened_at:.1f} s; idle for {args.seconds:g} s")
        idle = await measured(pids, None, args.seconds)
        rss_open = rss_kib(pids)
        with_metrics = (await (await load.get(f"{ANALYTICS}/metrics")).text()).splitlines()
        open_gauge = next((ln.split()[1] for ln in with_metrics if ln.startswith("analytics_live_streams ")), "?")

        say(f"c. {args.streams} streams, {args.rate:g} redirects/s for {args.seconds:g} s")
        for s in streams:
            s.seen, s.latencies = 0, []
        loaded = await measured(
            pids,
            asyncio.ensure_future(
                redirect_load(load, codes, rate=args.rate, seconds=args.seconds, redirects=redirects)
            ),
            args.seconds,
        )
        # The last clicks' events: wait (bounded) until every stream has seen every redirect.
        per_code = {c: len(t) for c, t in redirects.times.items()}
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(10), redirects.progress:
                await redirects.progress.wait_for(lambda: all(s.seen >= per_code.get(s.code, 0) for s in streams))
        missing = sum(max(0, per_code.get(s.code, 0) - s.seen) for s in streams)
        for task in followers:
            task.cancel()
        await asyncio.gather(*followers, return_exceptions=True)
    latencies = [x for s in streams for x in (s.latencies or [])]
    heartbeats = sum(s.heartbeats for s in streams)
    rows = [
        ("streams open (analytics_live_streams)", open_gauge),
        ("links / streams per link", f"{len(codes)} / {args.streams / len(codes):g}"),
        ("redirects per loaded phase (failed)", f"{redirects.sent} ({redirects.failed + base_redirects.failed})"),
        ("a. analytics CPU, 0 streams + redirects", f"{base.cpu_per_s * 1000:.1f} ms/s"),
        ("b. analytics CPU, streams idle", f"{idle.cpu_per_s * 1000:.1f} ms/s"),
        ("c. analytics CPU, streams + redirects", f"{loaded.cpu_per_s * 1000:.1f} ms/s"),
        ("c / a", f"{loaded.cpu_per_s / base.cpu_per_s:.2f}x" if base.cpu_s else "n/a"),
        ("events delivered (c)", f"{sum(s.events for s in streams)}"),
        (
            "analytics CPU per event delivered (c - a)",
            f"{(loaded.cpu_s - base.cpu_per_s * loaded.seconds) / max(1, sum(s.events for s in streams)) * 1e6:.0f} us",
        ),
        ("heartbeats received", f"{heartbeats}"),
        ("analytics RSS before / with streams", f"{rss_before / 1024:.1f} / {rss_open / 1024:.1f} MiB"),
        ("RSS per stream", f"{(rss_open - rss_before) / args.streams:.1f} KiB"),
        (
            "delivery latency redirect -> event p50 / p99 / max",
            f"{pct(latencies, 0.5) * 1000:.0f} / {pct(latencies, 0.99) * 1000:.0f} / "
            f"{max(latencies, default=float('nan')) * 1000:.0f} ms ({len(latencies)} pairs)",
        ),
        ("share of pairs under 1 s", f"{sum(x < 1 for x in latencies) / max(1, len(latencies)):.1%}"),
        ("clicks never seen on a stream (after 10 s)", f"{missing}"),
        ("nginx worker_connections (per worker)", f"{nginx_worker_connections()}"),
    ]
    if latencies:
        rows.append(("latency mean", f"{statistics.fmean(latencies) * 1000:.0f} ms"))
    width = max(len(r[0]) for r in rows)
    print()
    for label, value in rows:
        print(f"{label:<{width}}  {value}")
    print(f"load average {notes['load average']}; {notes['cpu']}")
    args.table = "| measure | value |\n|---|---|\n" + "".join(f"| {a} | {b} |\n" for a, b in rows)
    args.table += f"\nload average {notes['load average']}; {notes['cpu']}\n"
    return 0 if missing == 0 else 1


async def publish_cost(batches: int = 200, clicks_per_batch: int = 2000, codes: int = 20_000) -> int:
    """CPU per click of the aggregator's live hand-off, before and after session 8, over the same
    batches (clicks spread over `codes` links as in `just bench pipeline`; the send goes to a topic
    that only takes the bytes):
    - before: at the flush, KafkaLiveActivity.counted on the per-link totals the PostgreSQL claim
      computed anyway (code_totals, shown apart: the claim still pays it);
    - after: per stream tick, LiveHandoff.tick on the decoded records (record-id check, its own
      code_totals, the same counted): the totals are paid twice per click, once here and once by
      the claim, since the claim counts only the records new to the ledger."""
    import random
    import uuid

    from aggregator.adapters.live_activity import KafkaLiveActivity
    from aggregator.domain.click_records import ClickRecord, ClickRow
    from aggregator.domain.windows import code_totals
    from aggregator.metrics import AggregatorMetrics
    from aggregator.ports import Decoded, SourceRecord
    from aggregator.service_layer.live_handoff import LiveHandoff

    class Sink:
        async def send(self, *, key: object = None, value: object = None) -> "asyncio.Future[None]":
            done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            done.set_result(None)
            return done

    rng = random.Random(7)
    now = int(time.time())
    rows = [
        [
            ClickRow(
                event_id=uuid.uuid4(),
                code=f"code{rng.randrange(codes):05d}",
                occurred_at=now - rng.randrange(5),
                visitor_key="v",
                referrer="",
                referrer_host="",
                country="ZZ",
                device="desktop",
                is_bot=int(rng.random() < 0.1),
            )
            for _ in range(clicks_per_batch)
        ]
        for _ in range(batches)
    ]
    decoded = [
        Decoded(
            source=SourceRecord(topic="clicks", partition=0, offset=i, key=None, value=None, timestamp_ms=0),
            record=ClickRecord(record_id=uuid.uuid4(), rows=batch, newest=now),
        )
        for i, batch in enumerate(rows)
    ]
    before = KafkaLiveActivity(Sink(), producer="aggregator-1", metrics=AggregatorMetrics())
    after_sink = KafkaLiveActivity(Sink(), producer="aggregator-1", metrics=AggregatorMetrics())
    after = LiveHandoff(after_sink)
    totals_cpu = before_cpu = after_cpu = 0.0
    for batch, record in zip(rows, decoded, strict=True):
        started = time.process_time()
        totals = code_totals(batch)
        totals_cpu += time.process_time() - started
        started = time.process_time()
        before.counted(totals)
        before_cpu += time.process_time() - started
        await before.idle()  # the send (a no-op here) is done before the next one
        started = time.process_time()
        after.tick([record])
        after_cpu += time.process_time() - started
        await after_sink.idle()
    clicks = batches * clicks_per_batch
    print(f"{batches} batches of {clicks_per_batch} clicks over {codes} links ({clicks} clicks)")
    print(f"code_totals (the claim's, paid before and after):    {totals_cpu / clicks * 1e6:.3f} us per click")
    print(f"before: hand-off at the flush (reuses the claim's):   {before_cpu / clicks * 1e6:.3f} us per click")
    print(f"after:  hand-off per tick (id check + totals + send): {after_cpu / clicks * 1e6:.3f} us per click")
    return 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--streams", type=int, default=500)
    parser.add_argument("--links", type=int, default=50)
    parser.add_argument("--rate", type=float, default=50.0, help="redirects per second in the loaded phases")
    parser.add_argument("--seconds", type=float, default=20.0, help="length of each phase")
    parser.add_argument("--open-batch", type=int, default=50, help="streams opened at once")
    parser.add_argument("--out", help="also write the table here (markdown)")
    parser.add_argument(
        "--publish-cost",
        action="store_true",
        help="only measure, in process, the aggregator's hand-off per click against the per-link totals it reuses",
    )
    options = parser.parse_args()
    if options.publish_cost:
        sys.exit(asyncio.run(publish_cost()))
    status = asyncio.run(main(options))
    if options.out and getattr(options, "table", None):
        Path(options.out).write_text(options.table)
    sys.exit(status)
