"""Scale-out benchmark (`just bench scale-out`): the cluster with 1, 2 and 3 hosts, CPU per click per tier.

The capacity benchmark's reads-only step on the cluster profile with 1, 2 and 3 hosts carrying
redirect replicas and aggregator workers, and each tier's CPU per click at every host count.
Issue 11, item 3.

For each host count N (scale_out_hosts.py): hosts 1..N run their redirect replica and aggregator
worker, the other hosts' are stopped through the cluster's supervisorctl, nginx sends redirects to
the live replicas only (the others' upstream servers marked `down`, nginx reloaded), and the live
workers take every `clicks` partition (consumer group rebalance, lag 0). Then, with the capacity
bench's own code (capacity.py's measure_idle and run_step): each tier's idle burn for
--idle-seconds, then one step of --rate redirects/s for --step-seconds with vegeta (constant
rate, open model) to nginx on 127.0.0.1, its p50/p99, the clicks counted per code in PostgreSQL
(clicks.link_totals on the primary) and ClickHouse (the Distributed click_events) against the
302s served, the consumer lag back to 0, and the CPU time of every tier's processes over the
step (/proc utime + stime) per click. The cluster is put back as `just up` left it at the end
(every program running, nginx.conf as rendered), also on Ctrl-C or a failure.

Without --rate, a short probe at 1 host (the configuration where one replica and one worker
carry everything) picks the rate: the highest of --probe-rates that passes (no error, p99 under
--p99-ms, lag drained, counts exact, the machine at most --max-busy busy).

With --flush-modes group,worker each host count above 1 runs twice: with the aggregator's
light-traffic flush interval shared by the group (the default, AGGREGATOR_FLUSH_SHARED_BY_GROUP)
and per worker (the code before it), before and after in one run (scale_out_flush.py; at 1 host
the two are the same rule, so 1 host runs once). --flush-modes group,batched compares the replicas'
click flush without and with their light-traffic batch floor (REDIRECT_CLICK_FLUSH_MIN_CLICKS),
each against 1 host in its own mode.

Prints the report and writes its section of docs/benchmarks/scale-out.md (by --label).
"""

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

from capacity import PREFIX, WORK, Context, measure_idle, rates, run_step
from capacity_load import VEGETA, Plan
from capacity_report import StepReport, print_run, write_doc
from capacity_stack import Counts, create_links, git_revision, workers_metric_total
from contracts.topics import CLICKS
from redirect_bench_support import ROOT, STACK, machine_notes, run_bench
from scale_out_flush import FLUSH_MODES, as_rendered, configurations, set_flush_mode
from scale_out_hosts import apply, host_plan, mark_redirect_servers, restore
from scale_out_report import Configuration, busy_fraction, label, render_section

# The aggregator's ClickHouse inserts (a flush makes one per target table): a histogram's count,
# summed over the live workers.
FLUSHES = "aggregator_clickhouse_insert_seconds_count"
TITLE = "# Benchmark: scale-out on the cluster profile (`just bench scale-out`)"


def say(msg: str) -> None:
    print(f"[bench scale-out] {msg}", flush=True)


def host_counts(text: str) -> list[int]:
    out = [int(x) for x in text.split(",") if x.strip()]
    if not out or any(n <= 0 for n in out) or out[0] != 1:
        raise argparse.ArgumentTypeError("host counts must be positive and start with 1 (the base), e.g. 1,2,3,1")
    return out


def flush_modes(text: str) -> list[str]:
    out = [x.strip() for x in text.split(",") if x.strip()]
    if not out or any(m not in FLUSH_MODES for m in out) or len(set(out)) != len(out):
        raise argparse.ArgumentTypeError(f"flush modes: distinct names of {sorted(FLUSH_MODES)}, e.g. worker,group")
    return out


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="just bench scale-out", description=__doc__.split("\n")[0])
    p.add_argument(
        "--hosts",
        type=host_counts,
        default=None,
        help="host counts, in order (default 1,2,..,all,1: the repeat of 1 shows the run's noise and drift)",
    )
    p.add_argument("--rate", type=int, default=None, help="redirects/s of every configuration (default: probed)")
    p.add_argument(
        "--per-host",
        action="store_true",
        help="the rate is per host: N hosts get N x --rate (how a real scale-out grows: each replica and "
        "worker keeps its own rate); without it every configuration gets --rate in all",
    )
    p.add_argument("--probe-rates", type=rates, default=rates("500,750,1000,1500"), help="ascending")
    p.add_argument("--probe-seconds", type=float, default=20.0)
    p.add_argument("--max-busy", type=float, default=0.75, help="a probe step fails above this share of the cores")
    p.add_argument("--step-seconds", type=float, default=60.0)
    p.add_argument("--codes", type=int, default=1000, help="bench links the redirects are spread over")
    p.add_argument("--p99-ms", type=float, default=100.0)
    p.add_argument("--drain-seconds", type=float, default=5.0, help="lag must be 0 this soon after a step")
    p.add_argument("--settle-seconds", type=float, default=60.0, help="how long lag and counts are polled")
    p.add_argument("--idle-seconds", type=float, default=15.0, help="idle CPU of each tier per configuration")
    p.add_argument("--rebalance-seconds", type=float, default=180.0, help="bound on reaching a configuration")
    p.add_argument(
        "--flush-modes",
        type=flush_modes,
        default=["group"],
        help="flush modes measured at each host count, in order: group (the default rule), "
        "worker (the aggregator's per-worker interval, the code before it), records (group, and each of "
        "N replicas flushes its clicks every N x its interval), batched (group, and the replicas' light-"
        "traffic batch floor; the other modes run without it); e.g. worker,group or group,batched",
    )
    p.add_argument("--label", default="results", help="section of the doc this run writes (others are kept)")
    p.add_argument("--out", type=Path, default=ROOT / "docs" / "benchmarks" / "scale-out.md")
    p.add_argument("--no-write", action="store_true", help="print only, do not write the doc")
    args = p.parse_args()
    # run_step's other knobs: reads only, codes in turn.
    args.zipf, args.write_every = 0.0, 0
    return args


def bound_seconds(args: argparse.Namespace, hosts: list[int]) -> float:
    per_step: float = 2 * args.settle_seconds + 150  # drain + counts, and run_step's wait for lag 0 (120 s)
    probes: float = 0 if args.rate else len(args.probe_rates) * (args.probe_seconds + per_step) + args.rebalance_seconds
    each = args.rebalance_seconds + 120 + args.idle_seconds + args.step_seconds + per_step
    configs: float = len(configurations(hosts, args.flush_modes)) * each
    return probes + configs + 120


def uptime() -> str:
    return subprocess.run(["uptime"], capture_output=True, text=True, check=False).stdout.strip()


async def probe_rate(ctx: Context, args: argparse.Namespace, original_nginx: str) -> tuple[int, list[StepReport]]:
    """The highest of --probe-rates that 1 host sustains (see the module's docstring)."""
    plan = host_plan(STACK, 1)
    await apply(STACK, plan, original_nginx, CLICKS.partitions, args.rebalance_seconds)
    ctx.lag_endpoints, ctx.idle = list(plan.lag_endpoints), {}
    cores = os.cpu_count() or 1
    probes: list[StepReport] = []
    for rate in args.probe_rates:
        say(f"probe at 1 host: {rate:,}/s for {args.probe_seconds:.0f}s")
        step = await run_step(ctx, "reads", Plan(rate, args.probe_seconds))
        if busy_fraction(step, cores) > args.max_busy:
            step.reasons.append(f"machine {busy_fraction(step, cores):.0%} busy > {args.max_busy:.0%}")
        probes.append(step)
        if not step.passed:
            break
    passing = [s.plan.rate for s in probes if s.passed]
    if not passing:
        raise RuntimeError(f"no probe rate passed at 1 host: {'; '.join(probes[0].reasons)}")
    return passing[-1], probes


AGGREGATORS = [f"aggregator-{i}" for i in range(1, len(STACK.aggregator_ports) + 1)]
REPLICAS = [f"redirect-{i}" for i in range(1, len(STACK.redirect_ports) + 1)]
# The replicas' click flush interval as configured (the redirect's default, 0.1 s).
REPLICA_FLUSH_S = float(os.environ.get("REDIRECT_CLICK_FLUSH_INTERVAL_SECONDS", "0.1"))


def rate_at(rate: int, n: int, per_host: bool) -> int:
    """The redirects/s of a configuration of `n` hosts: `rate` in all, or per host."""
    return rate * n if per_host else rate


async def measure(
    ctx: Context,
    args: argparse.Namespace,
    n: int,
    earlier: list[int],
    rate: int,
    original_nginx: str,
    flush: str = "group",
    rendered_supervisor: str | None = None,
) -> Configuration:
    plan = host_plan(STACK, n)
    if rendered_supervisor is not None and set_flush_mode(
        STACK.supervisor_conf, rendered_supervisor, flush, n, AGGREGATORS, REPLICAS, REPLICA_FLUSH_S
    ):
        say(f"workers and replicas restarted with the {flush} flush mode at {n} host(s)")
    say(f"to {plan.describe()}, {flush} flush ...")
    reconfigure_s = await apply(STACK, plan, original_nginx, CLICKS.partitions, args.rebalance_seconds)
    say(f"{n} host(s) live after {reconfigure_s:.0f}s; idle burn for {args.idle_seconds:.0f}s")
    ctx.lag_endpoints = list(plan.lag_endpoints)
    ctx.idle = await measure_idle(args.idle_seconds, ctx.lag_endpoints)
    load_before = os.getloadavg()
    flushes_before = await workers_metric_total(plan.lag_endpoints, FLUSHES)
    step = await run_step(ctx, "reads", Plan(rate, args.step_seconds))
    flushes_after = await workers_metric_total(plan.lag_endpoints, FLUSHES)
    flushes = flushes_after - flushes_before if flushes_before is not None and flushes_after is not None else None
    return Configuration(
        label(n, earlier, flush), plan, step, ctx.idle, reconfigure_s, load_before, os.getloadavg(), flushes, flush
    )


async def main() -> None:
    args = parse_args()
    if not STACK.is_cluster:
        raise SystemExit("STACK_PROFILE is not cluster: run `just bench scale-out` on `just up --profile cluster`")
    if not VEGETA.exists():
        raise SystemExit(f"{VEGETA} missing: `just bench scale-out` installs it (infra/scripts/install-loadgen.sh)")
    hosts = args.hosts or [*range(1, len(STACK.hosts) + 1), 1]
    for n in hosts:
        host_plan(STACK, n)  # refuses a host count the cluster does not have, before anything runs
    if args.rate is not None and args.rate <= 0:
        raise SystemExit("--rate must be positive")
    modes_asked = args.flush_modes != ["group"]
    # As rendered: the aggregators without a flush mode of ours (also after an interrupted run).
    rendered_supervisor = as_rendered(STACK.supervisor_conf.read_text(), AGGREGATORS, REPLICAS) if modes_asked else None
    conf_path = STACK.path("nginx", "nginx.conf")
    # As rendered, every redirect server live (also when an interrupted run left marks behind).
    original_nginx = mark_redirect_servers(conf_path.read_text(), host_plan(STACK, len(STACK.hosts)).redirect_servers)
    say(
        f"cluster at 127.0.0.1:{STACK.public_http_port}; host counts {hosts}; rate "
        f"{args.rate or 'probed from ' + str(args.probe_rates)}; steps of {args.step_seconds:.0f}s; "
        f"bounded at {bound_seconds(args, hosts) / 60:.1f} min"
    )
    WORK.mkdir(parents=True, exist_ok=True)  # the steps' targets and results
    started = time.time()
    notes = {**machine_notes(), "uptime at start": uptime()}
    api_key = STACK.api_key_file.read_text().strip()
    codes = await create_links(PREFIX, args.codes, api_key)
    say(f"{len(codes)} bench links ready ({codes[0]} ..)")
    ctx = Context(args, codes, api_key, Counts(PREFIX))
    configs: list[Configuration] = []
    probes: list[StepReport] = []
    broken = ""
    try:
        if args.rate is None:
            rate, probes = await probe_rate(ctx, args, original_nginx)
            failed = next((s for s in probes if not s.passed), None)
            why = (
                f"the highest of the probe's rates {', '.join(f'{r:,}' for r in args.probe_rates)}/s that 1 host "
                "sustained (table below)"
                + (f"; {failed.plan.rate:,}/s failed: {'; '.join(failed.reasons)}" if failed else "")
            )
        else:
            rate, why = args.rate, "given (--rate)"
        say(f"rate {rate:,}/s ({why})")
        planned = configurations(hosts, args.flush_modes)
        for i, (n, flush) in enumerate(planned):
            earlier = [m for m, f in planned[:i] if f == flush]
            try:
                at = rate_at(rate, n, args.per_host)
                configs.append(await measure(ctx, args, n, earlier, at, original_nginx, flush, rendered_supervisor))
            except RuntimeError as exc:  # keep what was measured: the report says where it stopped
                broken = f"{label(n, earlier, flush)} host(s): {exc}"
                say(f"stopped at {broken}")
                break
    finally:
        say("restoring every host's programs, supervisord.conf and nginx.conf as rendered")
        if rendered_supervisor is not None:
            set_flush_mode(STACK.supervisor_conf, rendered_supervisor, None, 1, AGGREGATORS, REPLICAS, REPLICA_FLUSH_S)
        restore(STACK, original_nginx)
    elapsed = time.time() - started
    notes = {
        **notes,
        "uptime at end": uptime(),
        "vegeta": "v12.13.0 (infra/scripts/install-loadgen.sh)",
        "clicks partitions": str(CLICKS.partitions),
        "flush modes": ", ".join(args.flush_modes)
        + " (group: a worker with 1/N of the partitions flushes every N x AGGREGATOR_FLUSH_MIN_S; "
        "per-worker: every worker every AGGREGATOR_FLUSH_MIN_S, the code before it; records: group, and "
        f"each of N replicas sends its clicks every N x {REPLICA_FLUSH_S:g} s; group, per-worker and records "
        "run the replicas with REDIRECT_CLICK_FLUSH_MIN_CLICKS=0 (a flush per interval, the code before it); "
        "batched: group, and the replicas' default floor)",
        "ClickHouse check": ctx.counts.clickhouse_error or "per code, uniqExact(event_id) of click_events",
        **({"run stopped at": broken} if broken else {}),
    }
    if not configs:
        raise RuntimeError(f"nothing measured: {broken}")
    section = render_section(args, rate, why, probes, configs, notes, git_revision(), elapsed)
    print_run(section)
    if not args.no_write:
        write_doc(args.out, args.label, section, title=TITLE)
        say(f"wrote {args.out} (section '{args.label}')")
    sys.exit(0 if not broken and all(c.step.passed for c in configs) else 1)


if __name__ == "__main__":
    run_bench(main(), say=say, on_interrupt="the generator was stopped and the cluster restored")
