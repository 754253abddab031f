"""Tables of `just bench scale-out` (scale_out.py): per-click CPU per tier of each host count, the
ratio of each tier's cost at N hosts to its cost at 1, and the Markdown section written to
docs/benchmarks/scale-out.md. Pure: tests/unit/test_bench_scale_out.py."""

import argparse
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from capacity_report import StepReport, markdown_table, number
from scale_out_flush import FLUSH_MODES
from scale_out_hosts import HostPlan

# The tiers the scale-out table reports, each from the capacity bench's tiers
# (capacity_stack.TIER_PREFIXES: PgBouncer is counted with PostgreSQL, ZooKeeper with ClickHouse).
SCALE_OUT_TIERS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("nginx", ("nginx",)),
    ("redirect replicas", ("redirect",)),
    ("Kafka brokers", ("kafka",)),
    ("aggregator workers", ("aggregator",)),
    ("PostgreSQL + PgBouncer", ("postgresql",)),
    ("ClickHouse + ZooKeeper", ("clickhouse",)),
    ("others", ("shorten", "redis", "other services")),
)
TIER_NAMES = tuple(name for name, _ in SCALE_OUT_TIERS)
# A tier whose cost per click at N hosts is within this fraction of its cost at 1 host is "flat":
# two runs of one configuration on this shared machine differ by about that much.
FLAT_WITHIN = 0.15


def group_tiers(tiers: Mapping[str, float]) -> dict[str, float]:
    """The capacity bench's per-tier figures (CPU seconds or cores) summed into the scale-out
    tiers; a capacity tier missing from `tiers` counts 0."""
    return {name: sum(tiers.get(t, 0.0) for t in members) for name, members in SCALE_OUT_TIERS}


@dataclass
class Configuration:
    """One host count's measured step."""

    label: str  # the host count; "1 (again)" for a host count measured a second time
    plan: HostPlan
    step: StepReport
    idle: dict[str, float]  # capacity tier -> cores busy with no load, in this configuration
    reconfigure_s: float  # from the previous configuration until the workers were rebalanced
    load_before: tuple[float, float, float]  # os.getloadavg() before the step
    load_after: tuple[float, float, float]
    flushes: float | None = None  # the live workers' ClickHouse inserts over the step (one per target table per flush)
    flush: str = "group"  # the aggregator's flush mode (scale_out_flush.FLUSH_MODES)

    def gross_us(self) -> dict[str, float]:
        """CPU microseconds per click per tier over the step's window, idle burn included."""
        return {t: self.step.us(sec) for t, sec in group_tiers(self.step.tiers).items()}

    def idle_cores(self) -> dict[str, float]:
        return group_tiers(self.idle)

    def marginal_us(self) -> dict[str, float]:
        """CPU per click above each tier's idle burn of this configuration (measured just before
        its step, with the same processes running) over the same window."""
        idle = self.idle_cores()
        return {
            t: self.step.us(max(sec - idle[t] * self.step.window, 0.0))
            for t, sec in group_tiers(self.step.tiers).items()
        }


def label(n: int, earlier: Sequence[int], flush: str = "group") -> str:
    """A configuration's name in the tables: its host count, "per-worker" when the aggregator ran
    the per-worker flush interval (the code before the group's, measured in the same run), and
    "(again)" when the run measured that host count in that mode before (the repeat shows the
    run's noise and drift). `earlier`: the host counts measured before in the same mode."""
    repeat = list(earlier).count(n)
    name = FLUSH_MODES[flush].name.format(n=n)
    return name if not repeat else f"{name} (again)" if repeat == 1 else f"{name} (#{repeat + 1})"


def ratios(costs: Mapping[str, Mapping[str, float]], base: str = "1") -> dict[str, dict[str, float | None]]:
    """Each tier's cost in every configuration divided by its cost in the `base` one (None where
    the base is 0 or not measured), in the configurations' order."""
    reference = costs.get(base, {})
    out: dict[str, dict[str, float | None]] = {}
    for name, tiers in costs.items():
        if name == base:
            continue
        out[name] = {t: (v / reference[t] if reference.get(t) else None) for t, v in tiers.items()}
    return out


def trend(ratio: float | None, within: float = FLAT_WITHIN) -> str:
    if ratio is None:
        return "-"
    if ratio > 1 + within:
        return "grows"
    if ratio < 1 - within:
        return "falls"
    return "flat"


def _total(costs: Mapping[str, float]) -> float:
    return sum(costs.values())


def configurations_table(configs: Sequence[Configuration]) -> str:
    headers = [
        "hosts",
        "programs running",
        "asked /s",
        "achieved /s",
        "requests",
        "redirects served",
        "p50 ms",
        "p99 ms",
        "errors",
        "counted PG",
        "counted CH",
        "lag 0 after",
        "rebalance s",
        "aggregator ClickHouse inserts",
        "clicks per insert",
        "load avg before / after",
        "cores busy outside this stack",
        "verdict",
    ]
    rows = []
    for c in configs:
        s = c.step
        rows.append(
            [
                c.label,
                ", ".join(c.plan.running),
                f"{s.plan.rate:,}",
                number(s.achieved),
                f"{s.result.requests:,}",
                f"{s.clicks:,}",
                f"{s.p50:.2f}",
                f"{s.p99:.2f}",
                str(s.errors),
                f"{s.counted_pg:,}",
                number(s.counted_ch),
                f"{s.drain_s:.1f} s" if s.drain_s is not None else "not in time",
                f"{c.reconfigure_s:.0f}",
                number(c.flushes),
                number(s.clicks / c.flushes if c.flushes else None),
                f"{c.load_before[0]:.2f} / {c.load_after[0]:.2f}",
                f"{s.rest / s.window:.2f}" if s.window else "-",
                "PASS" if s.passed else "FAIL: " + "; ".join(s.reasons),
            ]
        )
    return markdown_table(headers, rows)


def cost_table(configs: Sequence[Configuration], which: str) -> str:
    """CPU us per click per tier, one row per host count; `which` is gross or marginal. The gross
    table adds the generator, this script and the rest of the machine."""
    extra = ["vegeta", "bench script", "rest of machine", "machine"] if which == "gross" else []
    headers = ["hosts", *TIER_NAMES, "**stack**", *extra, "window s"]
    rows = []
    for c in configs:
        costs = c.gross_us() if which == "gross" else c.marginal_us()
        s = c.step
        tail = [f"{s.us(s.generator):.1f}", f"{s.us(s.harness):.1f}", f"{s.us(s.rest):.1f}", f"{s.us(s.machine):.1f}"]
        rows.append(
            [
                c.label,
                *(f"{costs[t]:.1f}" for t in TIER_NAMES),
                f"**{_total(costs):.1f}**",
                *(tail if which == "gross" else []),
                f"{s.window:.0f}",
            ]
        )
    return markdown_table(headers, rows)


def idle_table(configs: Sequence[Configuration]) -> str:
    headers = ["hosts", *TIER_NAMES, "**stack**"]
    rows = []
    for c in configs:
        idle = c.idle_cores()
        rows.append([c.label, *(f"{idle[t]:.3f}" for t in TIER_NAMES), f"**{_total(idle):.3f}**"])
    return markdown_table(headers, rows)


def base_of(configs: Sequence[Configuration], c: Configuration) -> Configuration:
    """The 1-host configuration `c` is compared with: the first one whose replicas ran the same
    click-flush rule (the "batched" floor or not), else the first configuration."""
    one_host = FLUSH_MODES[c.flush].one_host
    same = [b for b in configs if b.plan.n == 1 and FLUSH_MODES[b.flush].one_host == one_host]
    return same[0] if same else configs[0]


def ratio_table(configs: Sequence[Configuration]) -> str:
    """Per tier: cost per click in each configuration / with 1 host (in the same replicas' rule),
    gross and marginal, and the trend at the most hosts measured."""
    gross = {c.label: {**c.gross_us(), "stack": _total(c.gross_us())} for c in configs}
    marginal = {c.label: {**c.marginal_us(), "stack": _total(c.marginal_us())} for c in configs}
    rg: dict[str, dict[str, float | None]] = {}
    rm: dict[str, dict[str, float | None]] = {}
    bases: dict[str, str] = {}
    for c in configs:
        base = base_of(configs, c).label
        if c.label == base:
            continue
        bases[c.label] = base
        rg[c.label] = ratios({base: gross[base], c.label: gross[c.label]}, base)[c.label]
        rm[c.label] = ratios({base: marginal[base], c.label: marginal[c.label]}, base)[c.label]
    names = list(rg)
    # The trend: at the most hosts, in the last configuration's flush mode (the code after).
    same_mode = [c for c in configs if c.flush == (configs[-1].flush if configs else "group")]
    most = max(same_mode, key=lambda c: c.plan.n).label if same_mode else ""
    headers = [
        "tier",
        *(f"gross {n} / {bases[n]}" for n in names),
        *(f"marginal {n} / {bases[n]}" for n in names),
        f"trend (marginal, {most} hosts; flat = within {FLAT_WITHIN:.0%})",
    ]
    rows = []
    for t in (*TIER_NAMES, "stack"):
        rows.append(
            [
                "**stack**" if t == "stack" else t,
                *(number(rg[n][t], ".2f") for n in names),
                *(number(rm[n][t], ".2f") for n in names),
                trend(rm[most][t]) if most in rm else "-",
            ]
        )
    return markdown_table(headers, rows)


def probe_table(probes: Sequence[StepReport], cores: int) -> str:
    headers = [
        "asked /s",
        "achieved /s",
        "p50 ms",
        "p99 ms",
        "errors",
        "lag 0 after",
        "served / counted PG",
        "machine busy",
        "verdict",
    ]
    rows = []
    for s in probes:
        rows.append(
            [
                f"{s.plan.rate:,}",
                number(s.achieved),
                f"{s.p50:.2f}",
                f"{s.p99:.2f}",
                str(s.errors),
                f"{s.drain_s:.1f} s" if s.drain_s is not None else "not in time",
                f"{s.clicks:,} / {s.counted_pg:,}",
                f"{busy_fraction(s, cores):.0%} of {cores} cores",
                "PASS" if s.passed else "FAIL: " + "; ".join(s.reasons),
            ]
        )
    return markdown_table(headers, rows)


def busy_fraction(step: StepReport, cores: int) -> float:
    """How much of the machine's cores were busy over the step's window (everything: this stack,
    the generator, the rest)."""
    return step.machine / (step.window * cores) if step.window and cores else 0.0


def render_section(
    args: argparse.Namespace,
    rate: int,
    why_rate: str,
    probes: Sequence[StepReport],
    configs: Sequence[Configuration],
    notes: Mapping[str, str],
    revision: str,
    elapsed: float,
) -> str:
    cores = os.cpu_count() or 1
    date = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    out = [f"## {args.label}: {date}, commit {revision}", ""]
    out += [
        (f"{rate:,} redirects/s per host (N hosts: N x {rate:,}/s)" if args.per_host else f"{rate:,} redirects/s")
        + f" for {args.step_seconds:.0f} s per configuration over {args.codes:,} codes, "
        f"hosts {', '.join(c.label for c in configs)} in this order; rate: {why_rate}. "
        f"Run time {elapsed / 60:.1f} min.",
        "",
    ]
    if probes:
        out += [
            "### Rate probe (1 host)",
            "",
            f"Steps of {args.probe_seconds:.0f} s at 1 host (one redirect replica and one aggregator worker carry "
            f"everything); pass = p99 < {args.p99_ms:.0f} ms, no error, lag 0 within {args.drain_seconds:.0f} s, "
            f"counts exact, and the machine at most {args.max_busy:.0%} busy (room for the configurations "
            "with more processes). The highest passing rate is the run's rate.",
            "",
            probe_table(probes, cores),
            "",
        ]
    out += [
        "### Configurations",
        "",
        configurations_table(configs),
        "",
        "### CPU per click per tier (gross), microseconds",
        "",
        "utime + stime (children included) of each tier's supervised processes and their descendants, from "
        "the step's start until its clicks were counted (the window), divided by the redirects served. Stopped "
        "programs cost nothing. nginx also proxies the services' ClickHouse requests (the cluster's ClickHouse "
        "balancer). vegeta is the load generator on the same cores; the rest of the machine is other people's "
        "processes and the kernel's softirq time for loopback networking.",
        "",
        cost_table(configs, "gross"),
        "",
        "### Idle burn per tier (cores busy with no load, measured before each step)",
        "",
        idle_table(configs),
        "",
        "### CPU per click per tier (marginal: the configuration's idle burn taken off), microseconds",
        "",
        cost_table(configs, "marginal"),
        "",
        "### Cost at N hosts / cost at 1 host",
        "",
        ratio_table(configs),
        "",
        "### Machine",
        "",
    ]
    out += [f"- {k}: {v}" for k, v in notes.items()]
    return "\n".join(out) + "\n"
