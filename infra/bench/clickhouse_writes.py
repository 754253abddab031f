"""ClickHouse write benchmark (`just bench clickhouse-writes`): the ClickHouse server's CPU per click
written by the aggregator's writer, the code before this change against the current one, in one run.

1. Two scratch databases on the stack's ClickHouse: `bench_chw_before` with the schema of git
   revision --baseline (services/aggregator/adapters/sql/clickhouse/*.sql as of then) and
   `bench_chw_after` with this checkout's schema.
2. Generated clicks as the aggregator hands them to its writer (ClickRow, with the event id a
   UUID as a batch record decodes it): --codes links (uniform,
   as `just bench capacity` spreads its redirects), random 16-hex visitor keys, realistic
   referrers, countries, devices, ~3 % bots; each flush holds one second of clicks.
3. Per case (rate x design), --seconds rounds paced at one per second: each round, --writers
   concurrent flushes of rate / writers clicks (the stack's aggregator processes each flush at most
   once a second while caught up; a round that overruns its second starts the next one at once),
   written by the writer of that design: the baseline's module (loaded from git) or this
   checkout's `ClickHouseEvents`, each over its own transport (the baseline's ClickHouse class and
   HTTP client). After the last flush, the case waits (bounded) until the database's merges are
   done. The server's CPU (utime + stime from /proc, all threads) over the
   case, less its idle rate measured just before, divided by the clicks: us per click written,
   merges included. The writer's own CPU (this process) per click is printed beside it.
4. The cases run interleaved (before, after, before, after) so the machine's noise hits both.
Writes docs/benchmarks/clickhouse-writes.md; drops the scratch databases.
"""

import argparse
import asyncio
import inspect
import os
import random
import subprocess
import sys
import time
import types
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from aggregator.adapters import clickhouse as current_writer
from aggregator.domain.click_records import ClickRow
from aggregator.metrics import AggregatorMetrics
from redirect_bench_support import ROOT, cpu_ticks, machine_notes
from stackctl.config import StackSettings
from stackctl.migrate import clickhouse_statements

# The commit this benchmark was written against: main before the ClickHouse write-path change.
BASELINE = "06a6dd3f4e491756d9807b9b7c6cbf0027a98d23"
SCHEMA = "services/aggregator/adapters/sql/clickhouse/010_clicks.sql"
WRITER = "services/aggregator/adapters/clickhouse.py"
DATABASES = {"before": "bench_chw_before", "after": "bench_chw_after"}
REFERRERS = [
    "",
    "",
    "",
    "https://www.google.com/",
    "https://t.co/x",
    "https://news.ycombinator.com/item?id=1",
    "https://reddit.com/r/a",
    "https://github.com/a/b",
    "https://mail.example.com/?q=a",
]
COUNTRIES = ["US", "US", "DE", "GB", "FR", "IN", "BR", "JP", "CA", "NL", "ZZ"]
DEVICES = ["mobile", "mobile", "desktop", "tablet"]
TICK_S = 1 / os.sysconf("SC_CLK_TCK")


def say(msg: str) -> None:
    print(f"[bench clickhouse-writes] {msg}", flush=True)


def git_show(ref: str, path: str) -> str:
    return subprocess.run(["git", "show", f"{ref}:{path}"], cwd=ROOT, capture_output=True, text=True, check=True).stdout


def baseline_writer(ref: str) -> types.ModuleType:
    """The baseline's writer module (`ClickHouseEvents` and its `ClickHouse` transport), compiled
    from git (its imports still resolve here)."""
    module = types.ModuleType("baseline_clickhouse")
    exec(compile(git_show(ref, WRITER), f"{ref[:8]}:{WRITER}", "exec"), module.__dict__)
    return module


def open_writer(module: types.ModuleType, url: str, database: str) -> tuple[Any, Callable[[], Awaitable[None]]]:
    """A design's writer over its own transport, and how to close it: a writer from before the
    shared client (platformkit.clickhouse) brought its own httpx client."""
    if "database" in inspect.signature(module.ClickHouse).parameters:
        http = httpx.AsyncClient(base_url=url, timeout=120)
        return module.ClickHouseEvents(module.ClickHouse(http, database=database), AggregatorMetrics()), http.aclose
    client = module.build_client(url, database=database, timeout_s=120)
    return module.ClickHouseEvents(module.ClickHouse(client), AggregatorMetrics()), client.aclose


def clickhouse_pid(s: StackSettings) -> int:
    ctl = [str(ROOT / ".venv/bin/supervisorctl"), "-c", str(s.supervisor_conf)]
    pid = subprocess.run([*ctl, "pid", "clickhouse"], capture_output=True, text=True, check=False).stdout.strip()
    if not pid.isdigit() or int(pid) == 0:
        sys.exit("the stack's ClickHouse is not running: `just up` first")
    return int(pid)


@dataclass
class Case:
    design: str  # before | after
    rate: int  # clicks per second (= rows per flush)
    clicks: int = 0
    seconds: float = 0.0
    server_cpu_s: float = 0.0
    idle_cpu_s: float = 0.0
    writer_cpu_s: float = 0.0
    parts_after: int = 0

    @property
    def server_us(self) -> float:
        return max(0.0, self.server_cpu_s - self.idle_cpu_s) / self.clicks * 1e6

    @property
    def writer_us(self) -> float:
        return self.writer_cpu_s / self.clicks * 1e6


def clicks_for(second: int, rate: int, codes: list[str], rng: random.Random) -> list[ClickRow]:
    rows = []
    for _ in range(rate):
        bot = rng.random() < 0.03
        referrer = rng.choice(REFERRERS)
        rows.append(
            ClickRow(
                event_id=uuid.UUID(int=rng.getrandbits(128), version=4),
                code=rng.choice(codes),
                occurred_at=second,
                visitor_key=f"{rng.getrandbits(64):016x}",
                referrer=referrer,
                referrer_host=referrer.split("/")[2].removeprefix("www.") if referrer else "",
                country=rng.choice(COUNTRIES),
                device="bot" if bot else rng.choice(DEVICES),
                is_bot=1 if bot else 0,
            )
        )
    return rows


class Server:
    def __init__(self, url: str, pid: int) -> None:
        self.http = httpx.Client(base_url=url, timeout=300)
        self.pid = pid

    def run(self, sql: str, database: str = "default") -> str:
        response = self.http.post("/", params={"database": database}, content=sql.encode())
        if response.status_code != 200:
            raise RuntimeError(f"ClickHouse refused:\n{sql[:600]}\n-> {response.text[:600]}")
        return response.text

    def cpu_s(self) -> float:
        return cpu_ticks({self.pid}) * TICK_S

    def idle_rate(self, seconds: float) -> float:
        before = self.cpu_s()
        time.sleep(seconds)
        return (self.cpu_s() - before) / seconds

    def settle(self, database: str, limit_s: float) -> None:
        """Until no merge of `database` runs (bounded: a busy server may merge for long)."""
        deadline = time.monotonic() + limit_s
        while time.monotonic() < deadline:
            if self.run(f"SELECT count() FROM system.merges WHERE database = '{database}'").strip() == "0":
                return
            time.sleep(0.5)


def create_schemas(server: Server, baseline: str) -> None:
    schemas = {"before": git_show(baseline, SCHEMA), "after": (ROOT / SCHEMA).read_text()}
    for design, database in DATABASES.items():
        server.run(f"DROP DATABASE IF EXISTS {database}")
        server.run(f"CREATE DATABASE {database}")
        for statement in clickhouse_statements(schemas[design]):
            server.run(statement, database)


async def write_case(
    case: Case, module: types.ModuleType, url: str, args: argparse.Namespace, server: Server, start_second: int
) -> None:
    database = DATABASES[case.design]
    rng = random.Random(f"{case.rate}")  # the same clicks for both designs
    codes = [f"bench-{i}" for i in range(args.codes)]
    share = case.rate // args.writers
    rounds = [
        [clicks_for(start_second + i, share, codes, rng) for _ in range(args.writers)] for i in range(args.seconds)
    ]
    case.idle_cpu_s = server.idle_rate(args.idle_s)
    writer, close = open_writer(module, url, database)
    try:
        server_before, writer_before, started = server.cpu_s(), time.process_time(), time.monotonic()
        for i, batches in enumerate(rounds):
            await asyncio.gather(*(writer.write(uuid.uuid4(), batch, fresh=True) for batch in batches))
            case.clicks += sum(map(len, batches))
            pause = started + i + 1 - time.monotonic()
            if pause > 0:
                await asyncio.sleep(pause)
        case.writer_cpu_s = time.process_time() - writer_before
    finally:
        await close()
    server.settle(database, args.settle_s)
    case.seconds = time.monotonic() - started
    case.server_cpu_s = server.cpu_s() - server_before
    case.idle_cpu_s *= case.seconds
    case.parts_after = int(server.run(f"SELECT count() FROM system.parts WHERE database = '{database}' AND active"))


def report(cases: list[Case], args: argparse.Namespace) -> list[str]:
    by = {(c.design, c.rate): c for c in cases}
    lines = [
        "| clicks/s | design | clicks | ClickHouse CPU s (idle subtracted) | "
        "ClickHouse CPU us/click | writer CPU us/click | ClickHouse idle CPU % | active parts after | "
        "before / after (ClickHouse) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for rate in args.rates:
        for design in ("before", "after"):
            c = by[(design, rate)]
            ratio = by[("before", rate)].server_us / c.server_us if design == "after" and c.server_us else None
            lines.append(
                f"| {rate:,} | {design} | {c.clicks:,} | {c.server_cpu_s - c.idle_cpu_s:.2f} | "
                f"{c.server_us:.1f} | {c.writer_us:.1f} | {c.idle_cpu_s / c.seconds:.1%} | {c.parts_after} | "
                f"{f'{ratio:.2f}x' if ratio else ''} |"
            )
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(prog="just bench clickhouse-writes", description=__doc__.split("\n")[0])
    parser.add_argument(
        "--rates", type=int, nargs="+", default=[2_000, 10_000], help="clicks per second, one flush per second"
    )
    parser.add_argument("--seconds", type=int, default=60, help="rounds of flushes per case, one a second")
    parser.add_argument("--writers", type=int, default=3, help="concurrent flushes per round (aggregator processes)")
    parser.add_argument("--codes", type=int, default=1000, help="links the clicks are spread over")
    parser.add_argument("--idle-s", type=float, default=5, help="idle CPU sampled before each case")
    parser.add_argument("--settle-s", type=float, default=60, help="at most this long for merges after a case")
    parser.add_argument("--baseline", default=BASELINE, help="git revision of the 'before' schema and writer")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "benchmarks" / "clickhouse-writes.md")
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()

    s = StackSettings()
    server = Server(s.clickhouse_url, clickhouse_pid(s))
    notes = machine_notes()
    notes["clickhouse"] = server.run("SELECT version()").strip()
    started = time.time()
    writers = {"before": baseline_writer(args.baseline), "after": current_writer}
    cases: list[Case] = []
    try:
        create_schemas(server, args.baseline)
        # Clicks of the recent past, whole seconds; every case in its own minutes.
        clock = int(time.time()) - len(args.rates) * 2 * (args.seconds + 60) - 60
        for rate in args.rates:
            for design in ("before", "after"):
                case = Case(design=design, rate=rate)
                say(f"{design}: {rate:,} clicks/s for {args.seconds} s")
                asyncio.run(write_case(case, writers[design], s.clickhouse_url, args, server, clock))
                say(
                    f"  {case.server_us:.1f} us of ClickHouse CPU per click, writer {case.writer_us:.1f} us, "
                    f"{case.seconds:.0f} s"
                )
                cases.append(case)
            clock += args.seconds + 60
    finally:
        for database in DATABASES.values():
            server.run(f"DROP DATABASE IF EXISTS {database}")
    notes["load average after"] = " ".join(f"{x:.2f}" for x in os.getloadavg())
    table = report(cases, args)
    print("\n".join(["", *table]))
    if not args.no_write:
        when = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(started))
        text = [
            "# ClickHouse write cost (`just bench clickhouse-writes`)",
            "",
            f"Written by `infra/bench/clickhouse_writes.py` ({when}, {time.time() - started:.0f} s). "
            f"Baseline: `{args.baseline[:10]}` (schema and writer from git). {args.seconds} rounds per case, "
            f"one a second, each {args.writers} concurrent flushes (as {args.writers} aggregator processes), "
            f"clicks spread uniformly over {args.codes:,} links; ClickHouse CPU = the server process's "
            "utime + stime over the case and its merges, less its idle rate.",
            "",
            *table,
            "",
            "## Machine",
            "",
            *[f"- {k}: {v}" for k, v in notes.items()],
            "",
        ]
        args.out.write_text("\n".join(text))
        say(f"wrote {args.out}")


if __name__ == "__main__":
    main()
