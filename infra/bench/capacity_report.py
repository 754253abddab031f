"""Tables and the Markdown section of `just bench capacity` (infra/bench/capacity.py), the
capacity model, and the update of docs/benchmarks/capacity.md (one section per --label; the
hand-written head and the other labels' sections are kept)."""

import argparse
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from capacity_load import AttackResult, Plan
from capacity_stack import TIERS

NAMED_TIERS = ("nginx", "redirect", "kafka", "aggregator", "postgresql", "clickhouse")
MODEL_RATES = (10_000, 100_000, 1_000_000)
TARGET_RATE = 10_000


@dataclass(frozen=True)
class Ceiling:
    rps: float
    requests: int
    errors: int
    p50: float
    p99: float
    nginx_us: float  # nginx CPU per request
    generator_us: float  # vegeta CPU per request
    wrk_rps: float  # wrk -c64 on the same nginx: the closed-loop reference
    wrk_us: float  # wrk CPU per request

    def line(self) -> str:
        return (
            f"ceiling: {self.rps:,.0f} req/s, p50 {self.p50:.2f} ms, p99 {self.p99:.2f} ms, errors "
            f"{self.errors}; nginx {self.nginx_us:.1f} us/req, vegeta {self.generator_us:.1f} us/req; "
            f"wrk -c64 {self.wrk_rps:,.0f} req/s at {self.wrk_us:.1f} us/req"
        )


@dataclass
class StepReport:
    kind: str  # reads | mix
    plan: Plan
    result: AttackResult
    p50: float
    p99: float
    read_p99: float
    write_p99: float
    errors: int
    drain_s: float | None  # lag back to 0 after the step's end (None: not within --settle-seconds)
    clicks: int  # 302s received
    counted_pg: int
    counted_ch: int | None
    counted_after_s: float
    tiers: dict[str, float]  # tier -> CPU seconds over the window
    generator: float  # CPU seconds
    harness: float  # CPU seconds of this script (and vegeta encode)
    machine: float  # CPU seconds, whole machine
    window: float  # seconds from the step's start to the counts' check
    idle: dict[str, float] = field(default_factory=dict)  # tier -> cores busy with no load
    reasons: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return not self.reasons

    @property
    def achieved(self) -> float:
        r = self.result
        return (r.requests - 1) / r.sent_seconds if r.sent_seconds > 0 else 0.0

    @property
    def unit(self) -> int:
        """What CPU is divided by: clicks for reads only, all requests for the mix."""
        return self.clicks if self.kind == "reads" else self.result.requests

    def us(self, seconds: float) -> float:
        return seconds * 1e6 / self.unit if self.unit else float("nan")

    def marginal_us(self, tier: str) -> float:
        """CPU per click above the tier's idle burn over the same window."""
        return self.us(max(self.tiers[tier] - self.idle.get(tier, 0.0) * self.window, 0.0))

    @property
    def rest(self) -> float:
        return max(self.machine - sum(self.tiers.values()) - self.generator - self.harness, 0.0)

    def line(self) -> str:
        drain = f"{self.drain_s:.1f}s" if self.drain_s is not None else "no"
        cpu = " ".join(f"{t} {self.us(self.tiers[t]):.0f}" for t in NAMED_TIERS)
        return (
            f"{self.kind} {self.plan.rate:,}/s: achieved {self.achieved:,.0f}/s, p50 {self.p50:.1f} ms, p99 "
            f"{self.p99:.1f} ms, errors {self.errors}, lag 0 after {drain}, served {self.clicks:,}, counted "
            f"{self.counted_pg:,} (PG) {self.counted_ch if self.counted_ch is not None else '-'} (CH); "
            f"us/click: {cpu}, vegeta {self.us(self.generator):.0f} -> {'PASS' if self.passed else 'FAIL'}"
        )


def markdown_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    align = "|".join("---:" if i else "---" for i in range(len(headers)))
    lines = ["| " + " | ".join(headers) + " |", "|" + align + "|"]
    return "\n".join(lines + ["| " + " | ".join(r) + " |" for r in rows])


def number(x: float | None, fmt: str = ",.0f") -> str:
    return "-" if x is None or x != x else format(x, fmt)


def steps_table(steps: Sequence[StepReport]) -> str:
    headers = [
        "series",
        "asked /s",
        "achieved /s",
        "requests",
        "p50 ms",
        "p99 ms",
        "p99 reads / writes ms",
        "errors",
        "lag 0 after",
        "redirects served",
        "counted PG",
        "counted CH",
        "creates",
        "cores busy outside this stack",
        "verdict",
    ]
    rows = []
    for s in steps:
        rows.append(
            [
                s.kind,
                f"{s.plan.rate:,}",
                number(s.achieved),
                f"{s.result.requests:,}",
                f"{s.p50:.2f}",
                f"{s.p99:.2f}",
                f"{s.read_p99:.1f} / {number(s.write_p99, '.1f')}" if s.kind == "mix" else "-",
                str(s.errors),
                f"{s.drain_s:.1f} s" if s.drain_s is not None else "not in time",
                f"{s.clicks:,}",
                f"{s.counted_pg:,}",
                number(s.counted_ch),
                f"{s.result.creates:,}" if s.kind == "mix" else "-",
                f"{s.rest / s.window:.2f}" if s.window else "-",
                "PASS" if s.passed else "FAIL: " + "; ".join(s.reasons),
            ]
        )
    return markdown_table(headers, rows)


def cpu_table(steps: Sequence[StepReport]) -> str:
    headers = ["series", "asked /s", "per", *TIERS, "vegeta", "bench script", "rest of machine", "machine", "window s"]
    rows = []
    for s in steps:
        rows.append(
            [
                s.kind,
                f"{s.plan.rate:,}",
                "click" if s.kind == "reads" else "request",
                *(f"{s.us(s.tiers[t]):.1f}" for t in TIERS),
                f"{s.us(s.generator):.1f}",
                f"{s.us(s.harness):.1f}",
                f"{s.us(s.rest):.1f}",
                f"{s.us(s.machine):.1f}",
                f"{s.window:.0f}",
            ]
        )
    return markdown_table(headers, rows)


def model_basis(reads: Sequence[StepReport]) -> tuple[StepReport, str] | None:
    """The reads-only step whose per-click costs the model scales, and why that one: the highest
    that passed (its batching is closest to full load); else the highest whose clicks were all
    counted exactly (the pipeline did all the work, only latency or errors failed); else the
    lowest measured."""
    passing = [s for s in reads if s.passed]
    if passing:
        return passing[-1], "the highest that passed"
    exact = [s for s in reads if s.counted_pg == s.clicks and s.drain_s is not None]
    if exact:
        return exact[-1], "no step passed: the highest whose clicks were all counted"
    return (reads[0], "no step passed: the lowest") if reads else None


def model_table(basis: StepReport) -> str:
    headers = [
        "tier",
        "idle cores",
        "CPU us per click (gross)",
        "CPU us per click (marginal)",
        *(f"cores at {r:,}/s" for r in MODEL_RATES),
    ]
    rows, totals = [], [0.0 for _ in MODEL_RATES]
    for t in NAMED_TIERS:
        us = basis.marginal_us(t)
        cores = [us * r / 1e6 for r in MODEL_RATES]
        totals = [a + b for a, b in zip(totals, cores, strict=True)]
        rows.append(
            [
                t,
                f"{basis.idle.get(t, 0.0):.3f}",
                f"{basis.us(basis.tiers[t]):.1f}",
                f"{us:.1f}",
                *(f"{c:,.2f}" for c in cores),
            ]
        )
    gross = sum(basis.us(basis.tiers[t]) for t in NAMED_TIERS)
    marginal = sum(basis.marginal_us(t) for t in NAMED_TIERS)
    idle = sum(basis.idle.get(t, 0.0) for t in NAMED_TIERS)
    rows.append(
        [
            "**total (six tiers)**",
            f"**{idle:.3f}**",
            f"**{gross:.1f}**",
            f"**{marginal:.1f}**",
            *(f"**{c:,.2f}**" for c in totals),
        ]
    )
    return markdown_table(headers, rows)


def stack_alone(basis: StepReport) -> str:
    """What this machine's cores would serve at these per-click costs with the generator elsewhere."""
    cores = os.cpu_count() or 1
    every_tier = basis.us(sum(basis.tiers[t] for t in TIERS))  # gross: idle burn at this rate included
    generator = basis.us(basis.generator)
    return (
        f"At these costs every tier of the stack together (the six above plus shorten, Redis and the other "
        f"services, idle burn included) needs {every_tier:.0f} us of CPU per click: this machine's {cores} cores "
        f"would serve about **{cores * 1e6 / every_tier:,.0f} redirects/s with the load generator on another "
        f"machine**, and about {cores * 1e6 / (every_tier + generator):,.0f}/s with vegeta here "
        f"({generator:.0f} us per request)."
    )


def highest(steps: Sequence[StepReport]) -> StepReport | None:
    passing = [s for s in steps if s.passed]
    return passing[-1] if passing else None


def render_section(
    args: argparse.Namespace,
    ceiling: Ceiling | None,
    reads: Sequence[StepReport],
    mix: Sequence[StepReport],
    throttled: Sequence[int],
    notes: Mapping[str, str],
    revision: str,
    elapsed: float,
) -> str:
    date = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    out = [f"## {args.label}: {date}, commit {revision}", ""]
    best_reads, best_mix = highest(reads), highest(mix)
    summary = []
    if reads:
        verdict = "PASS" if best_reads and best_reads.plan.rate >= TARGET_RATE else "FAIL"
        first_fail = next((s for s in reads if not s.passed), None)
        summary.append(
            f"- **Highest sustained reads-only rate: {best_reads.plan.rate:,}/s**"
            if best_reads
            else "- **Highest sustained reads-only rate: none of the steps passed**"
        )
        summary[-1] += f" (target {TARGET_RATE:,}/s: {verdict})"
        if first_fail:
            summary.append(f"  - first failing step {first_fail.plan.rate:,}/s: {'; '.join(first_fail.reasons)}")
    if mix or throttled:
        summary.append(
            f"- **Highest sustained 1:{args.write_every - 1} mix rate: {best_mix.plan.rate:,}/s** "
            f"({best_mix.plan.rate // args.write_every:,} creates/s + "
            f"{best_mix.plan.rate - best_mix.plan.rate // args.write_every:,} redirects/s)"
            if best_mix
            else f"- **Highest sustained 1:{args.write_every - 1} mix rate: none of the steps passed**"
        )
        first_fail = next((s for s in mix if not s.passed), None)
        if first_fail:
            summary.append(f"  - first failing step {first_fail.plan.rate:,}/s: {'; '.join(first_fail.reasons)}")
        if throttled:
            summary.append(
                f"  - not run (SHORTEN_RATE_LIMIT={notes.get('SHORTEN_RATE_LIMIT')} would throttle): "
                + ", ".join(f"{r:,}/s" for r in throttled)
            )
    if ceiling:
        summary.append(
            f"- nginx static-302 ceiling, same run: **{ceiling.rps:,.0f} req/s** (p50 {ceiling.p50:.2f} ms, p99 "
            f"{ceiling.p99:.2f} ms, {ceiling.errors} errors; nginx {ceiling.nginx_us:.1f} us/request, "
            f"vegeta {ceiling.generator_us:.1f} us/request; wrk -c64 on the same nginx: {ceiling.wrk_rps:,.0f} "
            f"req/s at {ceiling.wrk_us:.1f} us/request)"
        )
    out += [*summary, ""]
    out += [
        f"Steps of {args.step_seconds:.0f} s over {args.codes:,} codes "
        f"({'Zipf s=' + str(args.zipf) if args.zipf else 'uniform'}); pass = p99 < {args.p99_ms:.0f} ms, no error, "
        f">= 98 % of the requests sent; lag 0 within {args.drain_seconds:.0f} s; counted = served, per code. "
        f"Run time {elapsed / 60:.1f} min.",
        "",
        "### Steps",
        "",
        steps_table([*reads, *mix]) if reads or mix else "(no step run)",
        "",
        "### CPU per click (reads) or per request (mix), microseconds",
        "",
        "Each tier's processes (supervised program and its descendants; utime + stime, children "
        "included) from the step's start until its clicks were counted (the window), divided by the "
        "redirects served (reads) or requests (mix). vegeta is the load generator (it shares the cores); "
        "the rest of the machine includes the other stacks on this shared host.",
        "",
        cpu_table([*reads, *mix]) if reads or mix else "(no step run)",
        "",
    ]
    chosen = model_basis(reads)
    if chosen:
        basis, why = chosen
        out += [
            "### Capacity model",
            "",
            "Cores per tier = marginal CPU us per click x rate / 1e6 (marginal: the tier's idle burn, "
            "measured first with no load, taken off), with the per-click costs of the reads-only step at "
            f"{basis.plan.rate:,}/s ({why}). "
            "Linear: it assumes each tier keeps its per-click cost when scaled out (more replicas, "
            "partitions, workers), which holds for batching tiers only while their batches stay as full.",
            "",
            model_table(basis),
            "",
            stack_alone(basis),
            "",
        ]
    out += ["### Machine", ""] + [f"- {k}: {v}" for k, v in notes.items()]
    return "\n".join(out) + "\n"


def print_run(section: str) -> None:
    print()
    print(section)


BEGIN = "<!-- capacity-run: {label} -->"
END = "<!-- /capacity-run -->"


def write_doc(
    path: Path, label: str, section: str, *, title: str = "# Capacity benchmark (`just bench capacity`)"
) -> None:
    """Replace this label's section of the doc (append it when new); keep everything else. A new
    doc starts with `title`."""
    text = path.read_text() if path.exists() else title + "\n\n"
    block = f"{BEGIN.format(label=label)}\n{section}{END}\n"
    pattern = re.compile(re.escape(BEGIN.format(label=label)) + r".*?" + re.escape(END) + r"\n?", re.S)
    text = pattern.sub(lambda _: block, text) if pattern.search(text) else text.rstrip("\n") + "\n\n" + block
    path.write_text(text)
