"""Bulk import benchmark (`just bench import`): 10,000 links through POST /api/v1/links/bulk
against the reference of the same links as single POST /api/v1/links, in one run, on the
running stack, through its nginx.

Cases (each with a fresh workspace key made by `python -m shorten keys create`, so every case
writes into an empty workspace and has its own rate-limit window):
  bulk <n> x <chunk>  the rows as CSV in requests of --chunk-rows rows (default 1000, what
                      `just import` sends), one after another
  bulk 1 x <rows>     all rows in ONE request (the API's maximum, 10,000)
  single              the same rows as single creates, --concurrency at once (default 16) over
                      keep-alive connections; --reference rows of them (default: all; fewer are
                      extrapolated per row, and the report says so)
Rows: half with an alias, half with a generated code, each with two tags.

Per case: wall seconds, rows/s, CPU per row of the shorten API processes, PostgreSQL (every
backend), the relay, Kafka, the redirect replicas and nginx (utime+stime from /proc around the
case), and when the case's LAST link redirects (302 through nginx, polled from the moment its
answer arrived; answers wait for read-your-writes, so this should be at once). After the timed
part, every code the bulk cases created is checked to redirect.

Rate limit: the cases need more writes than the stack's default SHORTEN_RATE_LIMIT (6000/minute
per key) admits. When the running shorten processes have a lower limit than --rate-limit, the
bench restarts them with SHORTEN_RATE_LIMIT=--rate-limit and, at the end, restarts them again
with the stack's own settings (--keep-limit: leave them alone; cases then meet 429s).
Prints a table and writes docs/benchmarks/import.md.
"""

import argparse
import asyncio
import csv
import io
import json
import os
import resource
import secrets
import subprocess
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime

import httpx
from capacity_stack import shorten_rate_limit
from limits import parse
from redirect_bench_support import CTL, PUBLIC, ROOT, cpu_ticks, descendants, machine_notes
from shorten.entrypoints import import_cli
from stackctl.config import StackSettings

PY = str(ROOT / ".venv/bin/python")
TIERS = ("shorten", "postgres", "relay", "kafka", "redirect", "nginx")
REPORT = ROOT / "docs" / "benchmarks" / "import.md"
TARGET_SECONDS = 10.0
COLUMNS = ["url", "alias", "tags"]


# A case's requests: the codes created, in row order, and how many rows were not created.
Work = Callable[[httpx.AsyncClient], Awaitable[tuple[list[str], int]]]


def say(msg: str) -> None:
    print(f"[bench import] {msg}", flush=True)


def program_pids() -> dict[str, int]:
    status = subprocess.run([*CTL, "status"], capture_output=True, text=True, check=False).stdout
    pids = {}
    for line in status.splitlines():
        parts = line.split()
        if len(parts) >= 4 and parts[1] == "RUNNING" and parts[2] == "pid":
            pids[parts[0]] = int(parts[3].rstrip(","))
    return pids


TIER_OF: dict[str, Callable[[str], bool]] = {
    "shorten": lambda name: name.startswith("shorten-") and name != "shorten-relay",
    "postgres": lambda name: name == "postgres",
    "relay": lambda name: name == "shorten-relay",
    "kafka": lambda name: name == "kafka",
    "redirect": lambda name: name.startswith("redirect-"),
    "nginx": lambda name: name == "nginx",
}


def tier_pids() -> dict[str, set[int]]:
    pids = program_pids()
    return {tier: descendants({pid for name, pid in pids.items() if match(name)}) for tier, match in TIER_OF.items()}


def stack_cpu(tiers: dict[str, set[int]]) -> dict[str, int]:
    return {tier: cpu_ticks(pids) for tier, pids in tiers.items()}


def own_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def new_key(workspace: str) -> str:
    done = subprocess.run(
        [PY, "-m", "shorten", "keys", "create", "--workspace", workspace, "--scopes", "links:write", "--json"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=True,
        timeout=120,
    )
    secret: str = json.loads(done.stdout)["secret"]
    return secret


def rows_of(run: str, case: str, count: int) -> list[dict[str, str]]:
    return [
        {
            "url": f"https://bench-import.example/{run}/{case}/{n}?utm_source=bench",
            "alias": f"bi-{run}-{case}-{n}" if n % 2 == 0 else "",
            "tags": "bench,import",
        }
        for n in range(count)
    ]


def as_csv(rows: list[dict[str, str]]) -> bytes:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue().encode()


def as_json(row: dict[str, str]) -> dict[str, object]:
    body: dict[str, object] = {"url": row["url"], "tags": row["tags"].split(",")}
    if row["alias"]:
        body["alias"] = row["alias"]
    return body


@dataclass
class Result:
    name: str
    rows: int  # rows the case sent
    seconds: float
    created: int
    failed: int
    cpu_us: dict[str, float]  # per row
    client_us: float  # this process's CPU per row
    last_redirect_s: float  # from the case's start until its last link answered 302
    extrapolated_from: int = 0  # single creates actually sent (0: all rows)
    codes: tuple[str, ...] = ()

    @property
    def rows_per_s(self) -> float:
        return self.rows / self.seconds


async def wait_redirects(client: httpx.AsyncClient, code: str, *, timeout: float = 30.0) -> float:
    """Poll GET /{code} until 301/302; the moment it did (monotonic)."""
    deadline = time.monotonic() + timeout
    while True:
        response = await client.get(f"/{code}")
        if response.status_code in (301, 302):
            return time.monotonic()
        if time.monotonic() > deadline:
            raise RuntimeError(f"{code} still answers {response.status_code} after {timeout}s")
        await asyncio.sleep(0.005)


async def measured(name: str, rows: int, work: Work, key: str) -> Result:
    tiers = tier_pids()
    hz = os.sysconf("SC_CLK_TCK")
    headers = {"Authorization": f"Bearer {key}"}
    async with httpx.AsyncClient(
        base_url=PUBLIC, headers=headers, timeout=120, limits=httpx.Limits(max_connections=64)
    ) as client:
        before, client_before = stack_cpu(tiers), own_cpu()
        start = time.monotonic()
        codes, failed = await work(client)
        seconds = time.monotonic() - start
        after, client_after = stack_cpu(tiers), own_cpu()
        last = (await wait_redirects(client, codes[-1])) - start if codes else float("nan")
    sent = rows
    cpu = {tier: (after[tier] - before[tier]) / hz * 1e6 / sent for tier in TIERS}
    return Result(
        name=name,
        rows=sent,
        seconds=seconds,
        created=len(codes),
        failed=failed,
        cpu_us=cpu,
        client_us=(client_after - client_before) * 1e6 / sent,
        last_redirect_s=last,
        codes=tuple(codes),
    )


def bulk_case(rows: list[dict[str, str]], chunk_rows: int, parallel: int) -> Work:
    """The rows sent as `just import` sends them (shorten's import_cli.send_all): CSV chunks of
    `chunk_rows`, `parallel` in flight."""
    planned = import_cli.chunks([(i + 2, [row[c] for c in COLUMNS]) for i, row in enumerate(rows)], chunk_rows)

    async def work(client: httpx.AsyncClient) -> tuple[list[str], int]:
        codes: list[str] = []
        failed = 0

        def answered(_: import_cli.Chunk, response: httpx.Response) -> None:
            nonlocal failed
            if response.status_code != 200:
                raise RuntimeError(f"bulk answered {response.status_code}: {response.text[:300]}")
            for result in response.json()["results"]:
                if result["status"] == "created":
                    codes.append(result["code"])
                else:
                    failed += 1

        await import_cli.send_all(client, COLUMNS, planned, parallel=parallel, say=say, answered=answered)
        return codes, failed

    return work


def single_case(rows: list[dict[str, str]], concurrency: int) -> Work:
    async def work(client: httpx.AsyncClient) -> tuple[list[str], int]:
        codes: list[str | None] = [None] * len(rows)
        queue = iter(range(len(rows)))

        async def worker() -> None:
            for i in queue:
                response = await client.post("/api/v1/links", json=as_json(rows[i]))
                if response.status_code == 201:
                    codes[i] = response.json()["code"]

        await asyncio.gather(*(worker() for _ in range(concurrency)))
        created = [c for c in codes if c is not None]
        return created, len(rows) - len(created)

    return work


async def check_all_redirect(codes: tuple[str, ...]) -> int:
    """How many of `codes` do NOT redirect (HEAD through nginx, 32 at once)."""
    gate = asyncio.Semaphore(32)
    async with httpx.AsyncClient(base_url=PUBLIC, timeout=30, limits=httpx.Limits(max_connections=32)) as client:

        async def one(code: str) -> bool:
            async with gate:
                return (await client.head(f"/{code}")).status_code in (301, 302)

        return sum(1 for ok in await asyncio.gather(*(one(c) for c in codes)) if not ok)


def restart_shorten(env: dict[str, str]) -> None:
    names = [f"shorten-{i}" for i in range(1, len(StackSettings().shorten_ports) + 1)]
    subprocess.run([PY, "-m", "stackctl", "restart", *names], cwd=ROOT, env=env, check=True, timeout=300)


def wait_ready(timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    for port in StackSettings().shorten_ports:
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"shorten on :{port} not ready after {timeout}s")
            time.sleep(0.2)


async def run_cases(args: argparse.Namespace) -> list[Result]:
    run = secrets.token_hex(3)
    results = []
    chunks = -(-args.rows // args.chunk_rows)
    cases: list[tuple[str, str, int, int]] = [
        (
            "bulk",
            f"bulk {chunks} x {args.chunk_rows}, {args.parallel} in flight (just import)",
            args.chunk_rows,
            args.parallel,
        ),
        ("bulk", f"bulk {chunks} x {args.chunk_rows}, one at a time", args.chunk_rows, 1),
        ("bulk", f"bulk 1 x {args.rows}", args.rows, 1),
        ("single", f"single creates (x{args.concurrency} concurrent)", 0, 0),
    ]
    for n, (kind, name, chunk, parallel) in enumerate(cases):
        key = new_key(f"bench-import-{run}-{n}")
        if kind == "bulk":
            rows = rows_of(run, str(n), args.rows)
            say(f"{name}: {len(rows)} rows")
            result = await measured(name, len(rows), bulk_case(rows, chunk, parallel), key)
        else:
            sample = min(args.reference or args.rows, args.rows)
            rows = rows_of(run, str(n), sample)
            say(f"{name}: {sample} rows")
            result = await measured(name, sample, single_case(rows, args.concurrency), key)
            result.extrapolated_from = sample if sample < args.rows else 0
        say(
            f"  {result.seconds:.2f} s, {result.rows_per_s:,.0f} rows/s, created {result.created}, "
            f"failed {result.failed}, "
            f"last redirect at {result.last_redirect_s:.2f} s; us/row "
            + " ".join(f"{t} {result.cpu_us[t]:.0f}" for t in TIERS)
        )
        results.append(result)
    for result in results[:-1]:  # the bulk cases
        missing = await check_all_redirect(result.codes)
        say(f"{result.name}: {len(result.codes) - missing}/{len(result.codes)} created codes redirect")
        if missing:
            raise RuntimeError(f"{missing} links of {result.name} do not redirect")
    return results


def report(args: argparse.Namespace, results: list[Result], limit_note: str) -> str:
    rows_total = args.rows
    reference = results[-1]
    scale = rows_total / reference.rows
    lines = [
        f"# Bulk import: {rows_total:,} links in one run, bulk vs single creates",
        "",
        f"`just bench import` on {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, the running stack through its nginx "
        f"(`{PUBLIC}`), {len(StackSettings().shorten_ports)} shorten processes, one relay. {limit_note}",
        "",
        f"| case | rows sent | seconds (for {rows_total:,} rows) | rows/s | last link redirects at "
        "| shorten us/row | PostgreSQL us/row "
        "| relay us/row | Kafka us/row | redirect us/row | nginx us/row | stack us/row | client us/row |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        factor = scale if r is reference else 1.0
        stack = sum(r.cpu_us.values())
        extrapolated = f" (x{factor:.1f}, extrapolated from {r.rows})" if r.extrapolated_from else ""
        lines.append(
            f"| {r.name} | {r.rows:,} | {r.seconds * factor:.2f}{extrapolated} | {r.rows_per_s:,.0f} | "
            f"{r.last_redirect_s * factor:.2f} s | "
            + " | ".join(f"{r.cpu_us[t]:.0f}" for t in TIERS)
            + f" | {stack:.0f} | {r.client_us:.0f} |"
        )
    bulk = results[0]
    ratio_time = (reference.seconds * scale) / bulk.seconds
    ratio_cpu = sum(reference.cpu_us.values()) / sum(bulk.cpu_us.values())
    verdict = "meets" if bulk.seconds < TARGET_SECONDS else "MISSES"
    lines += [
        "",
        f"- {bulk.name}: {bulk.seconds:.2f} s for {bulk.rows:,} rows, {verdict} the target of {TARGET_SECONDS:.0f} s; "
        f"{ratio_time:.1f}x faster than the single creates and {ratio_cpu:.1f}x less stack CPU per row.",
        "- Every created link of the bulk cases redirected when checked after the timed part (HEAD through nginx).",
        "- 'last link redirects at': from the case's start to the first 302 of its last link, polled from the moment "
        "the answer arrived (the answer waits until every redirect replica serves every created link).",
        "- CPU: utime+stime from /proc of each program's process tree around the case, per row; 'client' is the "
        "benchmark's own Python process (httpx), on the same two cores.",
        "",
        "Machine: "
        + "; ".join(f"{k}: {v}" for k, v in machine_notes().items() if k in ("cpu", "load average", "python")),
        "",
        "## Reproduce",
        "",
        "```",
        "just up",
        f"just bench import            # --rows {args.rows} --chunk-rows {args.chunk_rows} "
        f"--concurrency {args.concurrency} --reference N",
        "```",
        "",
        "The bench makes a fresh workspace key per case (`python -m shorten keys create`). The stack's default "
        "SHORTEN_RATE_LIMIT (6000/minute per key) would refuse a 10,000-row import (charged one write per row): "
        "the bench restarts shorten-1..N with `SHORTEN_RATE_LIMIT=--rate-limit` for the run and restarts them "
        "with the stack's own settings at the end (`--keep-limit` leaves them alone).",
        "",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0] if __doc__ else None)
    parser.add_argument("--rows", type=int, default=10_000)
    parser.add_argument("--chunk-rows", type=int, default=1000)
    parser.add_argument("--parallel", type=int, default=2, help="chunks in flight, as `just import --parallel`")
    parser.add_argument("--concurrency", type=int, default=16, help="single creates in flight")
    parser.add_argument("--reference", type=int, default=0, help="single creates to send (0: --rows)")
    parser.add_argument("--rate-limit", default="100000000/minute")
    parser.add_argument("--keep-limit", action="store_true")
    parser.add_argument("--no-report", action="store_true", help="print only; do not write docs/benchmarks/import.md")
    args = parser.parse_args()
    if not 1 <= args.rows <= 10_000:
        raise SystemExit("--rows must be 1-10000 (one request carries at most 10,000)")
    pids = program_pids()
    current = shorten_rate_limit(pids)
    needed = 2 * args.rows
    restarted = False
    if not args.keep_limit and parse(current).amount < needed:
        say(f"SHORTEN_RATE_LIMIT is {current}: restarting shorten with {args.rate_limit} for the run")
        restart_shorten({**os.environ, "SHORTEN_RATE_LIMIT": args.rate_limit})
        wait_ready()
        restarted = True
    limit_note = f"SHORTEN_RATE_LIMIT {args.rate_limit if restarted else current} during the run."
    try:
        results = asyncio.run(run_cases(args))
    finally:
        if restarted:
            say("restarting shorten with the stack's own settings")
            restart_shorten(dict(os.environ))
            wait_ready()
    text = report(args, results, limit_note)
    print(text)
    if not args.no_report:
        REPORT.write_text(text)
        say(f"wrote {REPORT.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
