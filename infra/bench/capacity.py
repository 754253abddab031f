"""System capacity benchmark (`just bench capacity`): the whole stack through nginx at stepped
constant rates, reads only and then the seed's mix (one create per four redirects).

Each step sends `rate` requests/s for --step-seconds (default 60) with vegeta (constant rate, open
model: no coordinated omission) to nginx on 127.0.0.1:PUBLIC_HTTP_PORT, spread over --codes bench
links created through the API at the start. A step passes when
  (a) p99 latency of its requests is under --p99-ms (50 ms), with no error and at least 98 % of
      the asked requests sent (the generator kept the rate),
  (b) every aggregator worker's aggregator_consumer_lag is back to 0 within --drain-seconds (5 s)
      after the step ends, and
  (c) the clicks counted per code (PostgreSQL clicks.link_totals, which the analytics API's
      lifetime totals read; and ClickHouse's raw click events) grew by exactly the 302s the
      generator received for that code: a lost or doubled click fails the step.
The first failing step ends the series (bounded). Beside it, in the same run: nginx's static-302
ceiling (the throwaway nginx of `just bench redirect`, driven by the same generator at its max rate),
and the CPU time of every tier over each step (utime + stime of each supervised program's process
tree, from /proc) per click served, the generator's own CPU, and the rest of the machine.
Writes docs/benchmarks/capacity.md (the run's section, by --label) with a capacity model: cores
per tier for 10k, 100k and 1M redirects/s from the per-click costs of the highest passing step.
"""

import argparse
import asyncio
import importlib.util
import os
import resource
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

from capacity_load import VEGETA, AttackResult, Plan, attack, read_results, run_id, write_targets
from capacity_report import Ceiling, StepReport, print_run, render_section, write_doc
from capacity_stack import (
    Counts,
    CpuSnapshot,
    cpu_seconds,
    create_links,
    differences,
    git_revision,
    quantile,
    shorten_rate_limit,
    supervised,
    tier_pids,
    wait_idle,
    wait_lag_zero,
    writes_per_second_allowed,
)
from redirect_bench_support import PUBLIC, ROOT, STACK, Proc, cpu_ticks, machine_notes, run_bench, wait_http

HERE = Path(__file__).resolve().parent
WORK = ROOT / ".local" / "bench" / "capacity"
PREFIX = "bench-cap-"


def say(msg: str) -> None:
    print(f"[bench capacity] {msg}", flush=True)


def rates(text: str) -> list[int]:
    out = [int(x) for x in text.split(",") if x.strip()]
    if any(r <= 0 for r in out) or out != sorted(out):
        raise argparse.ArgumentTypeError("rates must be positive and ascending, e.g. 1000,2000,4000")
    return out


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="just bench capacity", description=__doc__.split("\n")[0])
    p.add_argument(
        "--rates",
        type=rates,
        default=rates("1000,2000,4000,6000,8000,10000,12000,14000"),
        help="reads-only steps, requests/s (ascending)",
    )
    p.add_argument(
        "--mix-rates",
        type=rates,
        default=rates("500,1000,2000,4000,6000,8000,10000"),
        help="1:4 mix steps, requests/s in total (ascending)",
    )
    p.add_argument("--step-seconds", type=float, default=float(os.environ.get("BENCH_CAPACITY_STEP_SECONDS", "60")))
    p.add_argument("--codes", type=int, default=1000, help="bench links the redirects are spread over")
    p.add_argument("--zipf", type=float, default=0.0, help="Zipf exponent of code popularity (0: uniform)")
    p.add_argument("--write-every", type=int, default=5, help="the mix: one create per N requests (5 = 1:4)")
    p.add_argument("--p99-ms", type=float, default=50.0)
    p.add_argument("--drain-seconds", type=float, default=5.0, help="lag must be 0 this soon after a step")
    p.add_argument(
        "--settle-seconds",
        type=float,
        default=60.0,
        help="how long to keep polling lag and counts after a step before calling them failed",
    )
    p.add_argument("--ceiling-seconds", type=float, default=15.0)
    p.add_argument("--idle-seconds", type=float, default=15.0, help="idle CPU of each tier, measured first")
    p.add_argument("--only", default="ceiling,reads,mix", help="comma-separated parts: ceiling, reads, mix")
    p.add_argument("--label", default="results", help="section of the doc this run writes (others are kept)")
    p.add_argument("--out", type=Path, default=ROOT / "docs" / "benchmarks" / "capacity.md")
    p.add_argument("--no-write", action="store_true", help="print only, do not write the doc")
    return p.parse_args()


@dataclass
class Context:
    args: argparse.Namespace
    codes: list[str]
    api_key: str
    counts: Counts
    idle: dict[str, float] = field(default_factory=dict)  # tier -> cores busy with no load
    # The aggregator workers whose lag is watched (host:port); None: every worker of the stack.
    # The scale-out bench (scale_out.py) runs the steps with some workers stopped.
    lag_endpoints: list[str] | None = None


async def measure_idle(seconds: float, lag_endpoints: list[str] | None = None) -> dict[str, float]:
    """Cores each tier burns with no load (JVM, ClickHouse merges, pollers): subtracted from a
    step's CPU for the marginal cost per click the capacity model scales."""
    await wait_idle(120, lag_endpoints)
    pids = tier_pids(supervised())
    start = CpuSnapshot.take(pids)
    await asyncio.sleep(seconds)
    tiers, _, window = cpu_seconds(start, CpuSnapshot.take(pids))
    idle = {t: s / window for t, s in tiers.items()}
    say(f"idle for {window:.0f}s, cores busy per tier: " + ", ".join(f"{t} {c:.3f}" for t, c in idle.items()))
    return idle


def failures(result: AttackResult) -> list[str]:
    """Why requests did not get their expected answer (302 for a redirect, 201 for a create)."""
    if not result.failed:
        return []
    statuses = ", ".join(f"{s or 'no answer'}: {n}" for s, n in result.statuses.most_common() if s not in (201, 302))
    errors = ", ".join(f"{e}: {n}" for e, n in result.errors.most_common(3))
    return [f"{result.failed:,} errors ({statuses}{'; ' + errors if errors else ''})"]


async def poll_counts(
    read: Callable[[], Awaitable[dict[str, int] | None]],
    before: dict[str, int],
    served: dict[str, int],
    deadline: float,
) -> tuple[int, int, int] | None:
    """(counted, codes short, codes over) once every code is exact, or as of the deadline; None
    when the store cannot be read. Counts that are over (never short) and have not moved for
    3 s end the wait early: requests that timed out at the generator were served and counted
    anyway, and nothing more is coming."""
    last, since = (-1, -1, -1), time.monotonic()
    while True:
        after = await read()
        if after is None:
            return None
        diff = differences(before, after, served)
        now = time.monotonic()
        if diff != last:
            last, since = diff, now
        settled_over = diff[1] == 0 and now - since >= 3.0
        if diff[1:] == (0, 0) or settled_over or now > deadline:
            return diff
        await asyncio.sleep(0.25)


async def run_step(ctx: Context, kind: str, plan: Plan) -> StepReport:
    args = ctx.args
    await wait_idle(120, ctx.lag_endpoints)
    before_pg = await ctx.counts.postgres()
    before_ch = await ctx.counts.clickhouse()
    targets, results = WORK / f"{kind}-{plan.rate}.targets", WORK / f"{kind}-{plan.rate}.bin"
    write_targets(targets, plan, PUBLIC, ctx.codes, ctx.api_key, run_id())
    pids = tier_pids(supervised())
    say(f"{kind} step {plan.rate:,}/s for {plan.seconds:.0f}s ...")
    harness_before = time.process_time(), resource.getrusage(resource.RUSAGE_CHILDREN)
    start = CpuSnapshot.take(pids)
    try:
        generator_cpu = attack(plan, targets, results)  # in this thread: Ctrl-C stops vegeta (attack's finally)
        ended = time.monotonic()
        drain_s, lag_left = await wait_lag_zero(args.settle_seconds, endpoints=ctx.lag_endpoints)
        result = await asyncio.to_thread(read_results, results, PUBLIC)
    finally:  # a step's files are large (one line and one result per request)
        targets.unlink(missing_ok=True)
        results.unlink(missing_ok=True)
    # (c): poll until every code's counted clicks grew by exactly its 302s, or the deadline.
    # PostgreSQL first (a cheap primary-key read), ClickHouse once PostgreSQL is exact: the
    # polls themselves run inside the CPU window and must not inflate a tier's cost.
    deadline = ended + args.settle_seconds + (drain_s or 0)
    pg = await poll_counts(ctx.counts.postgres, before_pg, result.served, deadline)
    if pg is None:
        raise RuntimeError("clicks.link_totals could not be read")
    ch = await poll_counts(ctx.counts.clickhouse, before_ch, result.served, deadline) if before_ch is not None else None
    counted_after_s = time.monotonic() - ended
    stop = CpuSnapshot.take(pids)
    tiers, machine, window = cpu_seconds(start, stop)
    harness_after = time.process_time(), resource.getrusage(resource.RUSAGE_CHILDREN)
    children = (
        harness_after[1].ru_utime
        + harness_after[1].ru_stime
        - (harness_before[1].ru_utime + harness_before[1].ru_stime)
    )
    harness = harness_after[0] - harness_before[0] + children - generator_cpu

    clicks = sum(result.served.values())
    reasons = failures(result)
    p99 = quantile(result.latencies_ms, 0.99)
    asked = round(plan.rate * plan.seconds)
    if p99 >= args.p99_ms:
        reasons.append(f"p99 {p99:.1f} ms >= {args.p99_ms:.0f} ms")
    if result.requests < 0.98 * asked:
        reasons.append(f"only {result.requests:,} of {asked:,} requests sent (generator behind)")
    if drain_s is None or drain_s > args.drain_seconds:
        reasons.append(
            f"lag {lag_left if lag_left is not None else '?'} not 0 within {args.drain_seconds:.0f}s"
            if drain_s is None or drain_s > args.settle_seconds
            else f"lag drained in {drain_s:.1f}s > {args.drain_seconds:.0f}s"
        )
    if pg[1] or pg[2]:
        reasons.append(f"PostgreSQL counted {pg[0]:,} for {clicks:,} served ({pg[1]} codes short, {pg[2]} over)")
    if ch is not None and (ch[1] or ch[2]):
        reasons.append(f"ClickHouse counted {ch[0]:,} for {clicks:,} served ({ch[1]} codes short, {ch[2]} over)")
    report = StepReport(
        kind=kind,
        plan=plan,
        result=result,
        p50=quantile(result.latencies_ms, 0.5),
        p99=p99,
        read_p99=quantile(result.read_latencies_ms, 0.99),
        write_p99=quantile(result.write_latencies_ms, 0.99),
        errors=result.failed,
        drain_s=drain_s,
        clicks=clicks,
        counted_pg=pg[0],
        counted_ch=ch[0] if ch else None,
        counted_after_s=counted_after_s,
        tiers=tiers,
        generator=generator_cpu,
        harness=max(harness, 0.0),
        machine=machine,
        window=window,
        idle=ctx.idle,
        reasons=reasons,
    )
    say(report.line())
    return report


def run_ceiling(ctx: Context) -> Ceiling:
    """nginx alone answering a static 302 (the throwaway nginx of `just bench redirect`, started
    by its own code), driven by vegeta at its max rate (64 requests in flight, like wrk -c64)."""
    spec = importlib.util.spec_from_file_location("redirect_bench", HERE / "redirect.py")
    assert spec is not None and spec.loader is not None
    redirect_bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(redirect_bench)
    case = redirect_bench.Case("ceiling (nginx 302)", "nginx", "ceiling")
    proc, url = redirect_bench.start_case(case, Path(), "", None)
    assert isinstance(proc, Proc)
    try:
        wait_http(f"{url}/{ctx.codes[0]}", expect=302, timeout=30, proc=proc)
        plan = Plan(rate=0, seconds=ctx.args.ceiling_seconds)
        targets, results = WORK / "ceiling.targets", WORK / "ceiling.bin"
        write_targets(targets, Plan(1, 1), url, ctx.codes, ctx.api_key, run_id())
        pids = proc.tree()
        before = cpu_ticks(pids)
        say(f"ceiling: static 302 from a throwaway nginx (1 worker) for {plan.seconds:.0f}s at max rate ...")
        generator = attack(plan, targets, results, rate="0", max_workers=64)
        server = (cpu_ticks(pids) - before) / os.sysconf("SC_CLK_TCK")
        result = read_results(results, url)
        targets.unlink(missing_ok=True)
        results.unlink(missing_ok=True)
        wrk = wrk_reference(f"{url}/{ctx.codes[0]}", plan.seconds)
    finally:
        proc.stop()
    ok = result.statuses.get(302, 0)
    ceiling = Ceiling(
        rps=ok / result.seconds if result.seconds else 0.0,
        requests=result.requests,
        errors=result.requests - ok,
        p50=quantile(result.latencies_ms, 0.5),
        p99=quantile(result.latencies_ms, 0.99),
        nginx_us=server * 1e6 / max(ok, 1),
        generator_us=generator * 1e6 / max(result.requests, 1),
        wrk_rps=wrk[0],
        wrk_us=wrk[1],
    )
    say(ceiling.line())
    return ceiling


def wrk_reference(url: str, seconds: float) -> tuple[float, float]:
    """wrk (Debian; closed loop, so it cannot hold a rate) on the same ceiling: req/s and its CPU
    per request, the reference for what the constant-rate generator costs."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    out = subprocess.run(
        ["wrk", "-t1", "-c64", f"-d{max(1, round(seconds))}s", url],
        capture_output=True,
        text=True,
        timeout=seconds + 60,
        check=True,
    ).stdout
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
    line = next(x for x in out.splitlines() if x.strip().startswith("Requests/sec:"))
    rps = float(line.split()[1])
    return rps, cpu * 1e6 / max(rps * seconds, 1)


async def series(ctx: Context, kind: str, steps: list[int], write_every: int) -> list[StepReport]:
    out: list[StepReport] = []
    for rate in steps:
        report = await run_step(ctx, kind, Plan(rate, ctx.args.step_seconds, write_every, ctx.args.zipf))
        out.append(report)
        if not report.passed:
            say(f"{kind}: {rate:,}/s failed ({'; '.join(report.reasons)}): series ends here")
            break
    return out


def bound_seconds(args: argparse.Namespace, parts: set[str], mix_steps: int) -> float:
    per_step: float = args.step_seconds + 2 * args.settle_seconds + 30  # + idle wait, reading results
    steps = (len(args.rates) if "reads" in parts else 0) + (mix_steps if "mix" in parts else 0)
    ceiling: float = 2 * args.ceiling_seconds + 30 if "ceiling" in parts else 0.0
    idle: float = args.idle_seconds
    return steps * per_step + ceiling + idle + 120


async def main() -> None:
    args = parse_args()
    parts = {p.strip() for p in args.only.split(",") if p.strip()}
    if not VEGETA.exists():
        raise SystemExit(f"{VEGETA} missing: `just bench capacity` installs it (infra/scripts/install-loadgen.sh)")
    WORK.mkdir(parents=True, exist_ok=True)
    programs = supervised()
    limit = shorten_rate_limit(programs)
    allowed = writes_per_second_allowed(limit)
    # Steps at the edge of a moving window: two consecutive steps can fall in one window.
    mix_steps = [r for r in args.mix_rates if r / args.write_every * 2 <= allowed] if "mix" in parts else []
    throttled = [r for r in args.mix_rates if r not in mix_steps] if "mix" in parts else []
    expected = (len(args.rates) if "reads" in parts else 0) * args.step_seconds + len(mix_steps) * args.step_seconds
    say(
        f"stack at {PUBLIC}; steps of {args.step_seconds:.0f}s; reads {args.rates if 'reads' in parts else '-'}; "
        f"mix {mix_steps or '-'} (1 create per {args.write_every}); load time up to {expected / 60:.1f} min, "
        f"bounded at {bound_seconds(args, parts, len(mix_steps)) / 60:.1f} min in all "
        "(the first failing step ends a series)"
    )
    if throttled:
        say(
            f"mix steps {throttled} skipped: shorten's SHORTEN_RATE_LIMIT={limit} lets {allowed:,.0f} creates/s "
            "through; set SHORTEN_RATE_LIMIT=10000000/minute in .env, then `just down && just up` "
            "(docs/benchmarks/capacity.md)"
        )
    started = time.time()
    api_key = STACK.api_key_file.read_text().strip()
    codes = await create_links(PREFIX, args.codes, api_key)
    say(f"{len(codes)} bench links ready ({codes[0]} ..)")
    ctx = Context(args, codes, api_key, Counts(PREFIX))
    notes = machine_notes()
    ceiling = run_ceiling(ctx) if "ceiling" in parts else None
    ctx.idle = await measure_idle(args.idle_seconds) if parts & {"reads", "mix"} else {}
    reads = await series(ctx, "reads", args.rates, 0) if "reads" in parts else []
    mix = await series(ctx, "mix", mix_steps, args.write_every) if mix_steps else []
    elapsed = time.time() - started
    notes = {
        **notes,
        "load average after": " ".join(f"{x:.2f}" for x in os.getloadavg()),
        "vegeta": "v12.13.0 (infra/scripts/install-loadgen.sh)",
        "SHORTEN_RATE_LIMIT": limit,
        "ClickHouse check": ctx.counts.clickhouse_error or "per code, uniqExact(event_id) of click_events",
    }
    section = render_section(args, ceiling, reads, mix, throttled, notes, git_revision(), elapsed)
    print_run(section)
    if not args.no_write:
        write_doc(args.out, args.label, section)
        say(f"wrote {args.out.relative_to(ROOT)} (section '{args.label}')")
    passed = [r for r in reads if r.passed]
    sys.exit(0 if passed or "reads" not in parts else 1)


if __name__ == "__main__":
    run_bench(main(), say=say, on_interrupt="the generator was stopped")
