"""Write-path benchmark (`just bench writes`): creates/s, latency and time-to-redirect of POST /api/v1/links.

Every case runs the same wrk command (-t2 -c16 -d15s by default) with infra/bench/writes.lua
(a unique URL per request, the stack's API key) through nginx, and at the same time a sampler
that creates links one by one and polls `GET /{code}` through the same nginx until it answers
the redirect (the whole write path: API -> PostgreSQL row + outbox row -> relay -> Kafka `links`
-> redirect projector). Cases (each behind a throwaway nginx rendered from the stack's own
infra/templates/nginx.conf, so the proxy settings are the stack's; the links route goes to the
case's shorten processes, every other path to the stack's redirect replicas):
  baseline            the previous write path: SHORTEN_STORE=sqlalchemy on hypercorn, 1 process,
                      with the outbox's old NOTIFY-per-insert trigger put back for the run
  asyncpg / <server>  SHORTEN_STORE=asyncpg, 1 process, for granian, uvicorn, hypercorn
  asyncpg / <best> xN the server with the least CPU per create, N processes (--processes)
  ... , one statement per create   the first N without group commit (SHORTEN_DB_BATCHES_IN_FLIGHT=0):
                      what batching the creates into one statement and commit buys, same run
  stack               the running stack's own nginx and shorten-1..N (PUBLIC_HTTP_PORT)
Rate limit: the throwaway processes run with SHORTEN_RATE_LIMIT=--rate-limit (default
100000000/minute): the limiter still runs for every create (a Redis round trip), it never
throttles. The stack case uses the stack's own limit: start the stack with the same
SHORTEN_RATE_LIMIT (e.g. in .env) to measure capacity there; its 429s are reported separately.
The relay is the stack's shorten-relay (one process) in every case. CPU per create is read from
/proc for each tier: shorten processes, PostgreSQL (all backends), the relay, nginx, Redis.
Prints a table and writes docs/benchmarks/writes.md.
"""

import argparse
import asyncio
import os
import resource
import statistics
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import asyncpg
import httpx
from redirect_bench_support import CTL, ROOT, Proc, cpu_ticks, descendants, free_port, machine_notes
from stackctl.config import StackSettings
from stackctl.render import render_text, template_values

PY = str(ROOT / ".venv/bin/python")
HERE = Path(__file__).resolve().parent
BENCH = ROOT / ".local" / "bench" / "writes"
SERVERS = ("granian", "uvicorn", "hypercorn")
TARGET_RPS, TARGET_P99_MS = 1500.0, 100.0
TIERS = ("shorten", "postgres", "relay", "kafka", "redirect", "nginx", "redis")


def say(msg: str) -> None:
    print(f"[bench writes] {msg}", flush=True)


@dataclass(frozen=True)
class Case:
    name: str
    kind: str  # baseline | single | multi | ungrouped | stack
    store: str = "asyncpg"
    server: str = "hypercorn"
    processes: int = 1
    env: tuple[tuple[str, str], ...] = ()  # extra settings of the case's shorten processes


@dataclass
class Result:
    case: Case
    rps: float
    p50: float
    p99: float
    created: int
    throttled: int
    errors: int
    cpu_us: dict[str, float]
    redirect_ms: list[float] = field(default_factory=list)
    redirect_missed: int = 0
    # Of the same samples: from the outbox row's commit to the relay's mark after Kafka's ack.
    relay_ms: list[float] = field(default_factory=list)
    # The load generator's own CPU per create (wrk): not the stack's, but the same two cores.
    wrk_us: float = 0.0

    def pct(self, q: float, values: list[float] | None = None) -> float | None:
        ordered = sorted(self.redirect_ms if values is None else values)
        if not ordered:
            return None
        return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


def supervised_tree(*names: str) -> set[int]:
    roots = set()
    for name in names:
        out = subprocess.run([*CTL, "pid", name], capture_output=True, text=True, check=False).stdout.strip()
        if out.isdigit() and int(out) > 0:
            roots.add(int(out))
    return descendants(roots)


def redirect_programs() -> list[str]:
    return [f"redirect-{i}" for i in range(1, len(StackSettings().redirect_replica_ports.split(",")) + 1)]


def stack_shorten_programs() -> list[str]:
    return [f"shorten-{i}" for i in range(1, len(StackSettings().shorten_ports) + 1)]


class Deployment:
    """What one case measures: shorten processes behind an nginx (throwaway, or the stack's)."""

    def __init__(self, case: Case, args: argparse.Namespace, api_key: str) -> None:
        self.case = case
        self.procs: list[Proc] = []
        self.nginx: Proc | None = None
        self.url = ""
        self._args = args
        self._api_key = api_key

    def start(self) -> None:
        stack = StackSettings()
        if self.case.kind == "stack":
            self.url = f"http://127.0.0.1:{stack.public_http_port}"
            return
        ports = [free_port() for _ in range(self.case.processes)]
        for port in ports:
            env = {
                "SHORTEN_PORT": str(port),
                "SHORTEN_SERVER": self.case.server,
                "SHORTEN_STORE": self.case.store,
                "SHORTEN_RATE_LIMIT": self._args.rate_limit,
                # Keys come from the `keys` topic (the stack's local admin key among them).
                "KAFKA_BOOTSTRAP_SERVERS": f"127.0.0.1:{stack.kafka_port}",
                "SHORTEN_PUBLIC_BASE_URL": f"http://127.0.0.1:{stack.public_http_port}",
                "POSTGRES_DSN": stack.postgres_dsn,
                "REDIS_URL": f"redis://127.0.0.1:{stack.redis_port}/0",
                "LOG_LEVEL": "WARNING",
                **dict(self.case.env),
            }
            self.procs.append(Proc.start([PY, "-m", "shorten", "serve"], env, BENCH))
        nginx_port = free_port()
        prefix = BENCH / "nginx"
        for sub in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"):
            (prefix / "tmp" / sub).mkdir(parents=True, exist_ok=True)
        values = {
            **template_values(stack),
            "nginx_prefix": prefix,
            "log_dir": prefix,
            "public_http_port": nginx_port,
            "shorten_upstream_servers": "\n".join(
                f"        server 127.0.0.1:{p} max_fails=1 fail_timeout=2s;" for p in ports
            ),
        }
        (prefix / "nginx.conf").write_text(render_text((ROOT / "infra/templates/nginx.conf").read_text(), values))
        self.nginx = Proc.start(["/usr/sbin/nginx", "-p", str(prefix), "-c", str(prefix / "nginx.conf")], {}, BENCH)
        self.url = f"http://127.0.0.1:{nginx_port}"
        for proc, port in zip(self.procs, ports, strict=True):
            wait_ready(f"http://127.0.0.1:{port}/readyz", proc)
        wait_ready(f"{self.url}/api/v1/openapi/shorten.json", self.nginx)

    def tiers(self) -> dict[str, set[int]]:
        if self.case.kind == "stack":
            shorten, nginx = supervised_tree(*stack_shorten_programs()), supervised_tree("nginx")
        else:
            shorten = set().union(*(p.tree() for p in self.procs))
            nginx = self.nginx.tree() if self.nginx else set()
        return {
            "shorten": shorten,
            "postgres": supervised_tree("postgres"),
            "relay": supervised_tree("shorten-relay"),
            "kafka": supervised_tree("kafka"),
            "redirect": supervised_tree(*redirect_programs()),
            "nginx": nginx,
            "redis": supervised_tree("redis"),
        }

    def stop(self) -> None:
        for proc in [*self.procs, *([self.nginx] if self.nginx else [])]:
            proc.stop()


def wait_ready(url: str, proc: Proc | None, timeout: float = 60) -> None:
    deadline, last = time.monotonic() + timeout, ""
    while time.monotonic() < deadline:
        if proc is not None and proc.popen.poll() is not None:
            log = proc.log.read_text()
            # granian reports a taken port in a long panic backtrace: name it where
            # start_deployment looks for it (the tail alone may not show it).
            taken = " (Address already in use)" if "already in use" in log.lower() else ""
            raise RuntimeError(f"{proc.popen.args!r} exited{taken}: {log[-2000:]}")
        try:
            response = httpx.get(url, timeout=2)
            if response.status_code == 200:
                return
            last = f"{response.status_code} {response.text[:200]}"
        except httpx.HTTPError as exc:
            last = str(exc)
        time.sleep(0.2)
    raise RuntimeError(f"{url} not ready in {timeout}s ({last})")


def wrk(url: str, api_key: str, args: argparse.Namespace, duration: float) -> dict[str, float]:
    cmd = [
        "wrk",
        f"-t{args.threads}",
        f"-c{args.connections}",
        f"-d{max(1, round(duration))}s",
        "--timeout",
        "5s",
        "-s",
        str(HERE / "writes.lua"),
        url,
        "--",
        api_key,
        uuid.uuid4().hex[:12],
    ]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=duration + 60, check=True).stdout
    line = next(x for x in out.splitlines() if x.startswith("BENCH "))
    return {k: float(v) for k, v in (kv.split("=") for kv in line.split()[1:])}


async def sample_time_to_redirect(
    url: str, api_key: str, *, samples: int, spread: float, deadline_s: float
) -> tuple[list[float], int, list[str]]:
    """Create `samples` links spread over `spread` seconds; for each, the time from its 201 until
    GET /{code} answers a redirect (polled every 5 ms, after 100 ms every 20 ms).
    Returns (ms list, missed, codes created)."""
    times: list[float] = []
    codes: list[str] = []
    missed = created = 0
    start = time.monotonic()
    limits = httpx.Limits(max_keepalive_connections=4)
    headers = {"Authorization": f"Bearer {api_key}"}
    async with httpx.AsyncClient(base_url=url, timeout=10, limits=limits, follow_redirects=False) as client:

        async def one(i: int) -> None:
            nonlocal missed, created
            await asyncio.sleep(max(0.0, start + i * spread / samples - time.monotonic()))
            r = await client.post(
                "/api/v1/links", json={"url": f"https://bench.example/ttr/{uuid.uuid4().hex}"}, headers=headers
            )
            if r.status_code != 201:
                missed += 1
                return
            created += 1
            code, acked = r.json()["code"], time.monotonic()
            codes.append(code)
            while (waited := time.monotonic() - acked) < deadline_s:
                if (await client.get(f"/{code}")).status_code in (301, 302):
                    times.append((time.monotonic() - acked) * 1000)
                    return
                # Every 5 ms for the first 100 ms, then every 20 ms: fine enough for the
                # percentiles, without the polling itself becoming a load on nginx and redirect.
                await asyncio.sleep(0.005 if waited < 0.1 else 0.02)
            missed += 1

        await asyncio.gather(*(one(i) for i in range(samples)))
    return times, missed, codes


async def relay_latencies(codes: list[str]) -> list[float]:
    """ms from each sampled link's outbox row (its transaction's start) to the relay's mark."""
    conn = await asyncpg.connect(StackSettings().postgres_dsn)
    try:
        rows = await conn.fetch(
            "SELECT extract(epoch FROM published_at - created_at) * 1000 AS ms FROM shorten.outbox "
            "WHERE code = ANY($1::text[]) AND published_at IS NOT NULL",
            codes,
        )
    finally:
        await conn.close()
    return [float(r["ms"]) for r in rows]


async def measure_async(dep: Deployment, api_key: str, args: argparse.Namespace) -> Result:
    tiers = dep.tiers()
    before = {name: cpu_ticks(pids) for name, pids in tiers.items()}
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    wrk_task = asyncio.to_thread(wrk, dep.url, api_key, args, args.duration)
    sampler = sample_time_to_redirect(
        dep.url, api_key, samples=args.samples, spread=args.duration * 0.8, deadline_s=args.redirect_deadline
    )
    got, (times, missed, codes) = await asyncio.gather(wrk_task, sampler)
    # Before tiers() below, whose supervisorctl calls are children too.
    reaped = resource.getrusage(resource.RUSAGE_CHILDREN)  # wrk, ended and reaped by now
    sampled_creates = len(codes)
    # Processes that started during the run (granian workers are there from the start; this
    # only matters for the PostgreSQL backends a pool opened late) are counted from zero.
    after_tiers = dep.tiers()
    wrk_s = reaped.ru_utime + reaped.ru_stime - children.ru_utime - children.ru_stime
    hz = os.sysconf("SC_CLK_TCK")
    creates = int(got["created"]) + sampled_creates
    cpu_us = {
        name: (cpu_ticks(after_tiers[name]) - before[name]) / hz * 1e6 / creates if creates else 0.0 for name in TIERS
    }
    return Result(
        dep.case,
        got["created"] / (got["duration_us"] / 1e6),
        got["p50_ms"],
        got["p99_ms"],
        int(got["created"]),
        int(got["throttled"]),
        int(got["socket_errors"] + got["other"]),
        cpu_us,
        times,
        missed,
        await relay_latencies(codes),
        wrk_s * 1e6 / creates if creates else 0.0,
    )


def start_deployment(case: Case, api_key: str, args: argparse.Namespace, attempts: int = 3) -> Deployment:
    """Start the case; again on other ports when one a free_port() gave was taken meanwhile
    (other benchmarks on this machine pick free ports too)."""
    for attempt in range(1, attempts + 1):
        dep = Deployment(case, args, api_key)
        try:
            dep.start()
            return dep
        except RuntimeError as exc:
            dep.stop()
            if "Address already in use" not in str(exc) or attempt == attempts:
                raise
            say(f"{case.name}: a port was taken meanwhile, starting again on others")
    raise AssertionError("unreachable")


# The outbox trigger of the previous write path (removed by 003_outbox_no_notify.sql): every
# insert NOTIFYed the relay. The baseline case puts it back for its run.
OLD_NOTIFY_TRIGGER = """
CREATE OR REPLACE FUNCTION shorten.notify_outbox() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('shorten_outbox', '');
    RETURN NULL;
END
$$;
CREATE OR REPLACE TRIGGER outbox_notify AFTER INSERT ON shorten.outbox
    FOR EACH STATEMENT EXECUTE FUNCTION shorten.notify_outbox();
"""
NO_NOTIFY_TRIGGER = (ROOT / "services/shorten/adapters/sql/postgres/003_outbox_no_notify.sql").read_text()


def postgres(sql: str) -> None:
    async def run() -> None:
        conn = await asyncpg.connect(StackSettings().postgres_dsn)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    asyncio.run(run())


def run_case(case: Case, api_key: str, args: argparse.Namespace) -> Result:
    if case.kind == "baseline":
        postgres(OLD_NOTIFY_TRIGGER)
    try:
        dep = start_deployment(case, api_key, args)
        try:
            if args.warmup > 0:
                wrk(dep.url, api_key, args, args.warmup)
            result = asyncio.run(measure_async(dep, api_key, args))
        finally:
            dep.stop()
    finally:
        if case.kind == "baseline":
            postgres(NO_NOTIFY_TRIGGER)
    p = result.pct
    say(
        f"{case.name:<28} {result.rps:>7.0f} creates/s  p50 {result.p50:6.1f} ms  p99 {result.p99:6.1f} ms"
        f"  errors {result.errors}  429 {result.throttled}  cpu/create "
        + " ".join(f"{t} {result.cpu_us[t]:.0f}" for t in TIERS)
        + f" us (wrk {result.wrk_us:.0f})"
        + f"  redirect after p50 {fmt(p(50))} p99 {fmt(p(99))} ms (missed {result.redirect_missed};"
        + f" outbox -> Kafka p50 {fmt(p(50, result.relay_ms))} p99 {fmt(p(99, result.relay_ms))} ms)"
    )
    return result


def run_rounds(plan: list[Case], api_key: str, args: argparse.Namespace) -> list[Result]:
    rounds = [[run_case(case, api_key, args) for case in plan] for _ in range(args.rounds)]
    return [merge(list(per_case)) for per_case in zip(*rounds, strict=True)] if plan else []


def merge(runs: list[Result]) -> Result:
    """Medians of the rounds' rates, latencies and CPU costs; counts summed; samples pooled."""
    med = statistics.median
    return Result(
        runs[0].case,
        med(r.rps for r in runs),
        med(r.p50 for r in runs),
        med(r.p99 for r in runs),
        sum(r.created for r in runs),
        sum(r.throttled for r in runs),
        sum(r.errors for r in runs),
        {t: med(r.cpu_us[t] for r in runs) for t in TIERS},
        [ms for r in runs for ms in r.redirect_ms],
        sum(r.redirect_missed for r in runs),
        [ms for r in runs for ms in r.relay_ms],
        med(r.wrk_us for r in runs),
    )


def fmt(value: float | None, spec: str = ".0f") -> str:
    return "-" if value is None else format(value, spec)


HEADERS = [
    "case",
    "creates/s",
    "x baseline",
    "p50 ms",
    "p99 ms",
    "errors",
    "429",
    *(f"{t} us/create" for t in TIERS),
    "total us/create",
    "x baseline CPU",
    "wrk us/create",
    "redirects after p50/p95/p99 ms",
    "missed",
    "of which outbox -> Kafka p50/p99 ms",
]


def rows(results: list[Result]) -> list[list[str]]:
    base = next((r for r in results if r.case.kind == "baseline"), None)
    base_cpu = sum(base.cpu_us.values()) if base else None
    out = []
    for r in results:
        total = sum(r.cpu_us.values())
        out.append(
            [
                r.case.name,
                f"{r.rps:,.0f}",
                f"{r.rps / base.rps:.2f}" if base and base.rps else "-",
                f"{r.p50:.1f}",
                f"{r.p99:.1f}",
                str(r.errors),
                str(r.throttled),
                *(f"{r.cpu_us[t]:.0f}" for t in TIERS),
                f"{total:.0f}",
                f"{base_cpu / total:.2f}" if base_cpu and total else "-",
                f"{r.wrk_us:.0f}",
                "/".join(fmt(r.pct(q)) for q in (50, 95, 99)),
                str(r.redirect_missed),
                "/".join(fmt(r.pct(q, r.relay_ms)) for q in (50, 99)),
            ]
        )
    return out


def print_table(table: list[list[str]]) -> None:
    widths = [max(len(h), *(len(r[i]) for r in table)) for i, h in enumerate(HEADERS)]
    print("  ".join(h.ljust(w) for h, w in zip(HEADERS, widths, strict=True)))
    for row in table:
        print("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)))


def default_server() -> str:
    code = "from shorten.settings import ShortenSettings as S; print(S.model_fields['shorten_server'].default)"
    return subprocess.run([PY, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True).stdout.strip()


def verdict(r: Result) -> str:
    ok = r.rps >= TARGET_RPS and r.p99 < TARGET_P99_MS and r.errors == 0 and r.throttled == 0
    return (
        f"{r.case.name}: {r.rps:,.0f} creates/s, p99 {r.p99:.1f} ms -> "
        f"{'PASS' if ok else 'FAIL'} (target >= {TARGET_RPS:,.0f} creates/s with p99 < {TARGET_P99_MS:.0f} ms)"
    )


def capacity(r: Result) -> list[str]:
    """Creates/s one core of each tier sustains at the measured cost (1e6 / us per create)."""
    return [f"| {t} | {r.cpu_us[t]:.0f} | {1e6 / r.cpu_us[t]:,.0f} |" for t in TIERS if r.cpu_us[t] > 0]


def markdown(results: list[Result], args: argparse.Namespace, notes: dict[str, str], picked: str) -> str:
    table = ["| " + " | ".join(HEADERS) + " |", "|" + "|".join("---" for _ in HEADERS) + "|"]
    table += ["| " + " | ".join(row) + " |" for row in rows(results)]
    best = max((r for r in results if r.case.kind in ("multi", "stack")), key=lambda r: r.rps, default=results[-1])
    template = (HERE / "writes-report.md").read_text()
    return template.format(
        date=datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        table="\n".join(table),
        verdicts="\n".join(f"- {verdict(r)}" for r in results if r.case.kind in ("multi", "stack")),
        capacity_case=best.case.name,
        capacity="\n".join(capacity(best)),
        machine="\n".join(f"- {k}: {v}" for k, v in notes.items()),
        picked=picked,
        duration=args.duration,
        connections=args.connections,
        threads=args.threads,
        samples=args.samples,
        rate_limit=args.rate_limit,
        processes=args.processes,
        warmup=args.warmup,
        rounds=args.rounds,
    )


def main() -> None:
    parser = argparse.ArgumentParser(prog="just bench writes", description=__doc__.split("\n")[0])
    parser.add_argument("--duration", type=float, default=15.0)
    parser.add_argument("--warmup", type=float, default=3.0)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--samples", type=int, default=100, help="time-to-redirect samples per case and round")
    parser.add_argument("--redirect-deadline", type=float, default=10.0, help="seconds a sample may wait")
    parser.add_argument("--processes", default="2,3", help="process counts for the best server")
    parser.add_argument("--rounds", type=int, default=3, help="repeat every case; the table shows medians")
    parser.add_argument("--rate-limit", default="100000000/minute", help="SHORTEN_RATE_LIMIT of the bench's processes")
    parser.add_argument("--only", default="", help="comma-separated case kinds: baseline,single,multi,ungrouped,stack")
    parser.add_argument("--servers", default=",".join(SERVERS))
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "benchmarks" / "writes.md")
    parser.add_argument("--no-write", action="store_true", help="print only, do not write the doc")
    args = parser.parse_args()
    kinds = set(args.only.split(",")) if args.only else {"baseline", "single", "multi", "ungrouped", "stack"}
    api_key = (ROOT / ".local" / "api-key").read_text().strip()
    BENCH.mkdir(parents=True, exist_ok=True)
    notes = machine_notes()
    say(f"load average at start: {notes['load average']}; shorten's default server: {default_server()}")

    # Phase 1 (baseline and one process per server) then phase 2 (the picked server's process
    # counts, the stack), each case repeated --rounds times, interleaved (a burst of load from
    # elsewhere on the machine then hits every case of a round, not all rounds of one case).
    phase1: list[Case] = []
    if "baseline" in kinds:
        phase1.append(Case("baseline: sqlalchemy / hypercorn", "baseline", "sqlalchemy"))
    if "single" in kinds:
        phase1 += [Case(f"asyncpg / {server}", "single", server=server) for server in args.servers.split(",")]
    results = run_rounds(phase1, api_key, args)
    singles = [r for r in results if r.case.kind == "single"]
    # The server whose API process needs the least CPU per create: what the choice of server
    # changes (the other tiers do the same work under any server, their share is only noise),
    # and steadier than creates/s on a shared machine.
    picked = min(singles, key=lambda r: r.cpu_us["shorten"]).case.server if singles else default_server()
    phase2: list[Case] = []
    if "multi" in kinds:
        phase2 += [
            Case(f"asyncpg / {picked} x{n}", "multi", server=picked, processes=n)
            for n in (int(x) for x in args.processes.split(",") if x.strip())
        ]
    if "ungrouped" in kinds:
        n = int(args.processes.split(",")[0])
        phase2.append(
            Case(
                f"asyncpg / {picked} x{n}, one statement per create",
                "ungrouped",
                server=picked,
                processes=n,
                env=(("SHORTEN_DB_BATCHES_IN_FLIGHT", "0"),),
            )
        )
    if "stack" in kinds:
        n = len(stack_shorten_programs())
        phase2.append(Case(f"stack nginx, shorten x{n}", "stack", processes=n))
    results += run_rounds(phase2, api_key, args)
    notes["load average after"] = machine_notes()["load average"]

    print()
    print_table(rows(results))
    print(f"server with the least CPU per create in the API process: {picked}")
    for r in results:
        if r.case.kind in ("multi", "stack"):
            print("target: " + verdict(r))
    if not args.no_write and results:
        args.out.write_text(markdown(results, args, notes, picked))
        say(f"wrote {args.out.relative_to(ROOT)}")
    sys.exit(0)


if __name__ == "__main__":
    main()
