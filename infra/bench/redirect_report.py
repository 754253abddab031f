"""The results of `just bench redirect` (infra/bench/redirect.py): medians over the rounds, the
verdict of the target, the printed table and the Markdown report (template redirect-report.md)."""

import argparse
import dataclasses
import statistics
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

# Issue 8: redirect / <server> costs at most 1/0.80 of bare / <server> in CPU per request.
TARGET = 0.80


@dataclass(frozen=True)
class Case:
    name: str
    server: str
    kind: str  # ceiling | bare | redirect | redirect-nol1 | redirect-baseline | stack


@dataclass
class Result:
    case: Case
    rps: float
    p50: float
    p99: float
    cpu_us: float | None
    errors: int
    requests: int
    # redirect under the default server only: the click pipeline's CPU per click (us), by stage
    click_cpu: dict[str, float] = field(default_factory=dict)


def summarise(rounds: list[list[Result]]) -> list[Result]:
    """Median per case over the rounds (each measure separately; the click cost per stage too)."""
    out = []
    for per_case in zip(*rounds, strict=True):
        cpu = [r.cpu_us for r in per_case if r.cpu_us is not None]
        stages = [r.click_cpu for r in per_case if r.click_cpu]
        out.append(
            Result(
                per_case[0].case,
                statistics.median(r.rps for r in per_case),
                statistics.median(r.p50 for r in per_case),
                statistics.median(r.p99 for r in per_case),
                statistics.median(cpu) if cpu else None,
                sum(r.errors for r in per_case),
                sum(r.requests for r in per_case),
                {k: statistics.median(s[k] for s in stages) for k in stages[0]} if stages else {},
            )
        )
    return out


@dataclass(frozen=True)
class Verdict:
    """redirect vs bare under one server, on the medians."""

    server: str
    rps_ratio: float
    cpu_ratio: float | None  # bare CPU per request / redirect CPU per request
    click_share: float | None  # the click pipeline's CPU per click / redirect CPU per request
    # For information (the verdict is on the medians): bare/redirect CPU within each round.
    per_round: tuple[float, ...] = ()

    @property
    def ok(self) -> bool:
        return self.cpu_ratio is not None and self.cpu_ratio >= TARGET


def table(results: list[Result]) -> tuple[list[list[str]], list[Verdict]]:
    ceiling = next((r.rps for r in results if r.case.kind == "ceiling"), None)
    bare = {r.case.server: r for r in results if r.case.kind == "bare"}
    rows, verdicts = [], []
    for r in results:
        ref = bare.get(r.case.server) if r.case.kind.startswith("redirect") else None
        ratio = f"{r.rps / ref.rps:.2f}" if ref else ("1.00" if r.case.kind == "bare" else "-")
        cpu_ratio = ref.cpu_us / r.cpu_us if ref and ref.cpu_us and r.cpu_us else None
        target = "-"
        if r.case.kind in ("redirect", "redirect-baseline") and ref:
            share = r.click_cpu["total"] / r.cpu_us if r.click_cpu and r.cpu_us else None
            verdict = Verdict(r.case.server, r.rps / ref.rps, cpu_ratio, share)
            if r.case.kind == "redirect":
                verdicts.append(verdict)
            target = "PASS" if verdict.ok else "FAIL"
        rows.append(
            [
                r.case.name,
                f"{r.rps:,.0f}",
                f"{r.p50:.2f}",
                f"{r.p99:.2f}",
                f"{r.cpu_us:.1f}" if r.cpu_us is not None else "-",
                f"{r.rps / ceiling:.2f}" if ceiling else "-",
                ratio,
                f"{cpu_ratio:.2f}" if cpu_ratio is not None else "-",
                target,
                f"{r.click_cpu['total']:.1f} ({r.click_cpu['total'] / r.cpu_us:.0%})"
                if r.click_cpu and r.cpu_us
                else "-",
                str(r.errors),
            ]
        )
    return rows, verdicts


HEADERS = [
    "case",
    "req/s",
    "p50 ms",
    "p99 ms",
    "server CPU us/req",
    "x ceiling",
    "x bare req/s",
    "x bare by CPU (bare/this)",
    f"CPU >= {TARGET:.0%} of bare",
    "click CPU us (share)",
    "errors",
]


def print_table(rows: list[list[str]]) -> None:
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(HEADERS)]
    print("  ".join(h.ljust(w) for h, w in zip(HEADERS, widths, strict=True)))
    for row in rows:
        print("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)))


def with_rounds(verdicts: list[Verdict], rounds: list[list[Result]]) -> list[Verdict]:
    """Add each round's own bare/redirect CPU ratio (the two ran back to back in that round)."""
    out = []
    for v in verdicts:
        ratios = []
        for results in rounds:
            cpu = {r.case.kind: r.cpu_us for r in results if r.case.server == v.server}
            bare, redirect = cpu.get("bare"), cpu.get("redirect")
            if bare and redirect:
                ratios.append(bare / redirect)
        out.append(dataclasses.replace(v, per_round=tuple(ratios)))
    return out


def verdict_markdown(verdicts: list[Verdict]) -> str:
    lines = []
    for v in verdicts:
        cpu = f"{v.cpu_ratio:.0%}" if v.cpu_ratio is not None else "?"
        verdict = "PASS" if v.ok else "FAIL"
        line = f"- redirect / {v.server}: **{cpu}** of bare / {v.server} by CPU per request -> **{verdict}**"
        line += f" (by req/s: {v.rps_ratio:.0%}; by CPU within each round: {rounds_text(v)})"
        if v.click_share is not None:
            line += f"; the click pipeline is **{v.click_share:.0%}** of a redirect's CPU"
        lines.append(line)
    return "\n".join(lines)


def rounds_text(v: Verdict) -> str:
    return ", ".join(f"{r:.0%}" for r in v.per_round) or "-"


def render_markdown(
    headers: list[str],
    rows: list[list[str]],
    verdict: str,
    notes: Mapping[str, str],
    args: argparse.Namespace,
    default: str,
    elapsed: float,
) -> str:
    table = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    table += ["| " + " | ".join(row) + " |" for row in rows]
    machine = "\n".join(f"- {k}: {v}" for k, v in notes.items())
    template = (Path(__file__).with_name("redirect-report.md")).read_text()
    return template.format(
        date=datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        table="\n".join(table),
        verdict=verdict,
        machine=machine,
        duration=args.duration,
        connections=args.connections,
        threads=args.threads,
        codes=args.codes,
        rounds=args.rounds,
        warmup=args.warmup,
        default=default,
        elapsed=f"{elapsed:.0f}",
    )
