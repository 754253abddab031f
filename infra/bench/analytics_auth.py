"""What workspaces cost analytics (`just bench analytics-auth`): CPU per request of /stats and /top
before (a baseline revision: no keys, no limits) and after (keys from the `keys` topic, per-key and
per-address rate limits in Redis, /top ranked per workspace), in the same run, on the running stack.

1. Links on the stack's topics: one private link of workspace `default` (the stack's admin key's),
   one public link of a scratch workspace, and --links links of a scratch workspace spread over
   --clicks clicks (a workspace's /top), through the real pipeline (aggregator -> both stores).
2. Two throwaway analytics processes on the stack's stores, Kafka and Redis (free ports): the
   baseline revision's code (`git archive`, default: the merge base with main) and this checkout's.
   Same settings; /top's answer cache off (ANALYTICS_TOP_CACHE_S=0) so every /top reaches
   ClickHouse; rate limits set out of reach (what is measured is their cost, not a refusal).
3. In rounds (the kinds interleaved, so the machine's noise spreads over all of them): --requests
   requests per kind and round at --concurrency, straight to each process. Per kind: CPU of the
   analytics process, of Redis and of ClickHouse per request (/proc, utime + stime), p50/p95.
Prints a table; with --out, writes it as markdown. Stops its processes; the scratch links stay
(their workspace is unique per run, nothing else reads them).
"""

import argparse
import asyncio
import os
import secrets
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import asyncpg
import httpx
from aiokafka import AIOKafkaProducer
from contracts import clicks, keys, links
from platformkit.apikeys import digest
from redirect_bench_support import ROOT, Proc, baseline_tree, cpu_ticks, free_port, machine_notes, say
from stackctl.config import StackSettings

BENCH = ROOT / ".local" / "bench"
PY = str(ROOT / ".venv/bin/python")


def supervised_pid(s: StackSettings, name: str) -> set[int]:
    ctl = [str(ROOT / ".venv/bin/supervisorctl"), "-c", str(s.supervisor_conf)]
    pid = subprocess.run([*ctl, "pid", name], capture_output=True, text=True, check=False).stdout.strip()
    return {int(pid)} if pid.isdigit() and int(pid) > 0 else set()


def link_event(code: str, workspace: str, *, public: bool = False) -> links.LinkCreated:
    return links.LinkCreated(
        event_id=str(uuid.uuid4()),
        occurred_at=datetime.now(UTC),
        code=code,
        url=f"https://example.com/{code}",
        workspace=workspace,
        public_stats=public,
    )


def click(code: str, i: int) -> clicks.LinkClicked:
    return clicks.LinkClicked(
        event_id=str(uuid.uuid4()),
        occurred_at=datetime.now(UTC),
        code=code,
        visitor_key=f"v{i % 50}",
        country="DE",
        device="mobile",
    )


async def seed(
    s: StackSettings, *, scratch: str, private: str, public: str, ranked: list[str], clicks_n: int, admin_secret: str
) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=f"127.0.0.1:{s.kafka_port}", acks="all", linger_ms=5)
    await producer.start()
    try:
        # The stack's admin key (idempotent; the stack's bootstrap publishes it once `just keys` exists).
        admin = keys.KeyIssued(
            event_id=str(uuid.uuid4()),
            occurred_at=datetime.now(UTC),
            key_id="k_local_admin",
            workspace="default",
            scopes=("admin",),
            digest=digest(admin_secret),
        )
        await producer.send_and_wait("keys", keys.encode(admin), key=keys.key(admin))
        events = [
            link_event(private, "default"),
            link_event(public, scratch, public=True),
            *(link_event(code, scratch) for code in ranked),
        ]
        for event in events:
            await producer.send("links", links.encode(event), key=links.key(event))
        per_code = {private: 100, public: 100, **{code: 0 for code in ranked}}
        for i in range(clicks_n):  # skewed: link k gets ~1/k of the clicks
            per_code[ranked[min(len(ranked) - 1, int(len(ranked) ** (i / clicks_n)) - 1)]] += 1
        sends = [
            await producer.send("clicks", clicks.encode(click(code, i)), key=code.encode())
            for code, n in per_code.items()
            for i in range(n)
        ]
        await asyncio.gather(*sends)
    finally:
        await producer.stop()
    conn = await asyncpg.connect(s.postgres_dsn)
    try:
        deadline = time.monotonic() + 300
        while True:
            known = await conn.fetchval(
                "SELECT count(*) FROM clicks.links_known WHERE code = ANY($1::text[])", [private, public, *ranked]
            )
            counted = await conn.fetchval(
                "SELECT coalesce(sum(clicks), 0) FROM clicks.link_totals WHERE code = ANY($1::text[])", list(per_code)
            )
            if known == len(per_code) and counted == sum(per_code.values()):
                break
            if time.monotonic() > deadline:
                raise RuntimeError(f"seed not counted in time: {known} links, {counted} clicks")
            await asyncio.sleep(0.5)
    finally:
        await conn.close()
    say(f"seeded: {len(per_code)} links, {sum(per_code.values())} clicks, workspace {scratch}")


def start(name: str, tree: Path | None) -> tuple[Proc, str]:
    port = free_port()
    env = {
        "ANALYTICS_PORT": str(port),
        "ANALYTICS_TOP_CACHE_S": "0",
        "LOG_LEVEL": "WARNING",
        "OTEL_EXPORTER_OTLP_ENDPOINT": "",
        "ANALYTICS_KEY_RATE_LIMIT": "100000000/minute",
        "ANALYTICS_PUBLIC_RATE_LIMIT": "100000000/minute",
    }
    if tree is not None:
        env["PYTHONPATH"] = f"{tree / 'services'}:{tree / 'libs'}"
    proc = Proc.start([PY, "-m", "analytics", "serve"], env, BENCH)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if proc.popen.poll() is not None:
            raise RuntimeError(f"{name} exited: {proc.log.read_text()[-2000:]}")
        try:
            if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                return proc, url
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    proc.stop()
    raise RuntimeError(f"{name} not ready")


class Kind:
    def __init__(self, name: str, proc: Proc, url: str, path: str, headers: dict[str, str]) -> None:
        self.name, self.proc, self.url, self.path, self.headers = name, proc, url, path, headers
        self.cpu_ticks: dict[str, int] = {"analytics": 0, "redis": 0, "clickhouse": 0}
        self.requests = 0
        self.latencies: list[float] = []


async def run_kind(kind: Kind, *, requests: int, concurrency: int, others: dict[str, set[int]]) -> None:
    pids = {"analytics": kind.proc.tree(), **others}
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=kind.url, headers=kind.headers, limits=limits, timeout=30) as client:
        await client.get(kind.path)  # connections warm
        todo = iter(range(requests))
        before = {k: cpu_ticks(v) for k, v in pids.items()}

        async def worker() -> None:
            for _ in todo:
                started = time.perf_counter()
                r = await client.get(kind.path)
                if r.status_code != 200:
                    raise RuntimeError(f"{kind.name}: {r.status_code} {r.text[:200]}")
                kind.latencies.append((time.perf_counter() - started) * 1000)

        await asyncio.gather(*(worker() for _ in range(concurrency)))
        for k, v in pids.items():
            kind.cpu_ticks[k] += cpu_ticks(v) - before[k]
        kind.requests += requests


def table(kinds: list[Kind]) -> list[str]:
    tick_us = 1e6 / os.sysconf("SC_CLK_TCK")

    def per(kind: Kind, what: str) -> float:
        return kind.cpu_ticks[what] * tick_us / max(1, kind.requests)

    def pct(kind: Kind, q: float) -> float:
        ordered = sorted(kind.latencies)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))]

    lines = [
        "| kind | requests | analytics CPU us/req | Redis CPU us/req | ClickHouse CPU us/req | p50 ms | p95 ms |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for k in kinds:
        lines.append(
            f"| {k.name} | {k.requests} | {per(k, 'analytics'):.0f} | {per(k, 'redis'):.0f} | "
            f"{per(k, 'clickhouse'):.0f} | {pct(k, 0.5):.1f} | {pct(k, 0.95):.1f} |"
        )
    return lines


def ratio_lines(kinds: dict[str, Kind]) -> list[str]:
    def cpu(name: str) -> float:
        return kinds[name].cpu_ticks["analytics"] / max(1, kinds[name].requests)

    pairs = [
        ("stats, key (after)", "stats (before)"),
        ("stats, public, no key (after)", "stats (before)"),
        ("top, key, workspace (after)", "top (before)"),
    ]
    return [f"- {a} / {b}: analytics CPU per request x{cpu(a) / cpu(b):.2f}" for a, b in pairs]


def main() -> None:
    parser = argparse.ArgumentParser(prog="just bench analytics-auth")
    parser.add_argument(
        "--baseline", default="", help="git revision without workspaces (default: merge base with main)"
    )
    parser.add_argument("--requests", type=int, default=300, help="per kind and round")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--links", type=int, default=2000, help="links of the scratch workspace (/top ranks them)")
    parser.add_argument("--clicks", type=int, default=20000, help="clicks over those links")
    parser.add_argument("--out", type=Path, default=None, help="write the results as markdown here")
    args = parser.parse_args()

    s = StackSettings()
    ref = (
        args.baseline
        or subprocess.run(
            ["git", "merge-base", "HEAD", "main"], cwd=ROOT, capture_output=True, text=True, check=True
        ).stdout.strip()
    )
    tree = baseline_tree(ref)
    admin_secret = (ROOT / ".local" / "api-key").read_text().strip()
    scratch = f"bench-{secrets.token_hex(4)}"
    private, public = f"ba-p{secrets.token_hex(4)}", f"ba-u{secrets.token_hex(4)}"
    ranked = [f"ba-r{secrets.token_hex(4)}{i}" for i in range(args.links)]
    notes = machine_notes()
    asyncio.run(
        seed(
            s,
            scratch=scratch,
            private=private,
            public=public,
            ranked=ranked,
            clicks_n=args.clicks,
            admin_secret=admin_secret,
        )
    )
    # The scratch workspace's reader (straight to the keys topic, as `just keys create` will).
    reader_secret = "lsk_" + secrets.token_urlsafe(32)

    async def reader_key() -> None:
        producer = AIOKafkaProducer(bootstrap_servers=f"127.0.0.1:{s.kafka_port}", acks="all")
        await producer.start()
        try:
            event = keys.KeyIssued(
                event_id=str(uuid.uuid4()),
                occurred_at=datetime.now(UTC),
                key_id=f"k_{scratch}",
                workspace=scratch,
                scopes=("stats:read",),
                digest=digest(reader_secret),
            )
            await producer.send_and_wait("keys", keys.encode(event), key=keys.key(event))
        finally:
            await producer.stop()

    asyncio.run(reader_key())
    before_proc, before_url = start("baseline", tree)
    after_proc, after_url = start("this checkout", None)
    try:
        admin = {"Authorization": f"Bearer {admin_secret}"}
        reader = {"Authorization": f"Bearer {reader_secret}"}
        stats = f"/api/v1/links/{private}/stats"
        top = "/api/v1/top?window=1h&limit=10"
        kinds = [
            Kind("stats (before)", before_proc, before_url, stats, {}),
            Kind("stats, key (after)", after_proc, after_url, stats, admin),
            Kind("stats, public, no key (after)", after_proc, after_url, f"/api/v1/links/{public}/stats", {}),
            Kind("top (before)", before_proc, before_url, top, {}),
            Kind("top, key, workspace (after)", after_proc, after_url, top, reader),
        ]
        others = {"redis": supervised_pid(s, "redis"), "clickhouse": supervised_pid(s, "clickhouse")}
        for r in range(args.rounds):
            for kind in kinds if r % 2 == 0 else list(reversed(kinds)):
                asyncio.run(run_kind(kind, requests=args.requests, concurrency=args.concurrency, others=others))
            say(f"round {r + 1}/{args.rounds} done")
    finally:
        before_proc.stop()
        after_proc.stop()
    notes["load average after"] = " ".join(f"{x:.2f}" for x in os.getloadavg())
    body = [*table(kinds), "", *ratio_lines({k.name: k for k in kinds})]
    print("\n".join(["", *body]))
    if args.out:
        head = [
            f"Baseline {ref[:10]} against this checkout; {args.rounds} rounds x {args.requests} requests per "
            f"kind at concurrency {args.concurrency}; /top over a workspace of {args.links} links "
            f"({args.clicks} clicks), answer cache off.",
            "",
            *(f"- {k}: {v}" for k, v in notes.items()),
            "",
        ]
        args.out.write_text("\n".join([*head, *body, ""]))
        say(f"wrote {args.out}")


if __name__ == "__main__":
    sys.exit(main())
