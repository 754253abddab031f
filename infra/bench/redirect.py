"""Redirect benchmark (`just bench redirect`): throughput and p50/p99 of redirects on loopback.

Every case is measured with the same wrk command (-t1 -c64 -d10s by default) and the same Lua
script (infra/bench/redirect.lua: requests spread over the bench codes, p50/p99 from wrk's
`done` callback), after a short warm-up:
  ceiling            nginx alone returning a static 302 (throwaway nginx, 1 worker, .local/bench)
  bare / <server>    a bare Starlette app answering 302 from a dict (redirect_bare_app.py)
  redirect / <server> the redirect service: L1 -> Redis -> response -> click event to Kafka
  redirect no-L1     the same under the default server with REDIRECT_L1_ENABLED=false
  redirect (baseline) the service's code at another git revision (`--baseline REF`), under the
                     default server, right after the current one: before/after in the same run
  stack :8080        the stack's 3 replicas behind its nginx (the real public entry point)
for <server> in granian, uvicorn, hypercorn. Every case runs `--rounds` times (default 3) and the
table shows the medians. Throwaway processes run on free ports and are stopped at the end; their
clicks go to a throwaway topic (not the aggregator's `clicks`). After each round's redirect case
under the default server, redirect_click_cost.py measures the CPU the click pipeline spends per
click in-process, at that case's batch size: the click's share of a redirect's CPU.
Prints a table (req/s, p50, p99, server CPU per request, ratio to the ceiling and to the bare
app on the same server, and the target: redirect >= 80% of bare by CPU per request, PASS/FAIL)
and writes docs/benchmarks/redirect.md.
"""

import argparse
import asyncio
import dataclasses
import json
import os
import statistics
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from redirect_bench_support import (
    ROOT,
    Proc,
    cpu_ticks,
    ensure_codes,
    free_port,
    machine_notes,
    render_markdown,
    say,
    supervised_pids,
    temp_topic,
    wait_http,
)

SERVERS = ("granian", "uvicorn", "hypercorn")
# Issue 8: redirect / <server> costs at most 1/0.80 of bare / <server> in CPU per request.
TARGET = 0.80
PY = str(ROOT / ".venv/bin/python")
BENCH = ROOT / ".local" / "bench"
HERE = Path(__file__).resolve().parent


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


def default_server() -> str:
    """The service's own default (read from its settings in a child: this file is named redirect.py)."""
    code = "from redirect.settings import RedirectSettings as S; print(S.model_fields['redirect_server'].default)"
    return subprocess.run([PY, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True).stdout.strip()


def wrk(url: str, codes: Path, args: argparse.Namespace, duration: float) -> dict[str, float]:
    cmd = [
        "wrk",
        f"-t{args.threads}",
        f"-c{args.connections}",
        f"-d{max(1, round(duration))}s",
        "--timeout",
        "5s",
        "-s",
        str(HERE / "redirect.lua"),
        url,
        "--",
        str(codes),
    ]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=duration + 60, check=True).stdout
    line = next(x for x in out.splitlines() if x.startswith("BENCH "))
    return {k: float(v) for k, v in (kv.split("=") for kv in line.split()[1:])}


def measure(case: Case, url: str, pids: set[int], codes: Path, args: argparse.Namespace) -> Result:
    if args.warmup > 0:
        wrk(url, codes, args, args.warmup)
    before = cpu_ticks(pids)
    got = wrk(url, codes, args, args.duration)
    ticks = cpu_ticks(pids) - before
    requests = int(got["requests"])
    cpu_us = ticks / os.sysconf("SC_CLK_TCK") * 1e6 / requests if pids and requests else None
    result = Result(
        case,
        got["rps"],
        got["p50_ms"],
        got["p99_ms"],
        cpu_us,
        int(got["socket_errors"] + got["status_errors"]),
        requests,
    )
    say(
        f"{case.name:<22} {result.rps:>10.0f} req/s  p50 {result.p50:6.2f} ms  p99 {result.p99:7.2f} ms"
        f"  cpu {cpu_us or 0:6.1f} us/req  errors {result.errors}"
    )
    return result


def start_case(case: Case, links_file: Path, clicks_topic: str, baseline: Path | None) -> tuple[Proc | None, str]:
    """Start what `case` measures; return the process (None for the stack) and its base URL."""
    if case.kind == "stack":
        return None, f"http://127.0.0.1:{os.environ.get('PUBLIC_HTTP_PORT', '8080')}"
    port = free_port()
    if case.kind == "ceiling":
        prefix = BENCH / "nginx"
        (prefix / "tmp").mkdir(parents=True, exist_ok=True)
        conf = (HERE / "redirect-nginx.conf").read_text()
        for key, value in {
            "prefix": str(prefix),
            "port": str(port),
            "user_directive": "user root;" if os.geteuid() == 0 else "",
        }.items():
            conf = conf.replace("{{" + key + "}}", value)
        (prefix / "nginx.conf").write_text(conf)
        proc = Proc.start(["/usr/sbin/nginx", "-p", str(prefix), "-c", str(prefix / "nginx.conf")], {}, BENCH)
    elif case.kind == "bare":
        cmd = [
            PY,
            str(HERE / "redirect_bare_app.py"),
            "--server",
            case.server,
            "--port",
            str(port),
            "--links",
            str(links_file),
        ]
        proc = Proc.start(cmd, {}, BENCH)
    else:
        env = {
            "REDIRECT_PORT": str(port),
            "REDIRECT_SERVER": case.server,
            "REDIRECT_REPLICA_ID": str(90 + port % 9),
            "TOPIC_CLICKS": clicks_topic,
            "LOG_LEVEL": "WARNING",
            "REDIRECT_L1_ENABLED": "false" if case.kind == "redirect-nol1" else "true",
        }
        if case.kind == "redirect-baseline":
            assert baseline is not None
            # Ahead of the editable install on sys.path: that revision's services and libs.
            env["PYTHONPATH"] = f"{baseline / 'services'}:{baseline / 'libs'}"
        proc = Proc.start([PY, "-m", "redirect", "serve"], env, BENCH)
    return proc, f"http://127.0.0.1:{port}"


def cases(default: str, servers: list[str], baseline: str | None) -> list[Case]:
    out = [Case("ceiling (nginx 302)", "nginx", "ceiling")]
    for server in servers:  # bare and full back to back: the same background load for both
        out += [Case(f"bare / {server}", server, "bare"), Case(f"redirect / {server}", server, "redirect")]
        if baseline and server == default:
            out.append(Case(f"redirect @{baseline} / {server}", server, "redirect-baseline"))
    out.append(Case(f"redirect no-L1 / {default}", default, "redirect-nol1"))
    out.append(Case("stack :8080 (3 replicas)", "granian x3", "stack"))
    return out


def run_round(
    plan: list[Case], codes: Path, links_file: Path, topic: str, args: argparse.Namespace, default: str
) -> list[Result]:
    results = []
    probe = codes.read_text().split()[0]
    for case in plan:
        proc, url = start_case(case, links_file, topic, args.baseline_tree)
        try:
            wait_http(f"{url}/{probe}", expect=302, timeout=60, proc=proc)
            pids = proc.tree() if proc is not None else supervised_pids()
            results.append(measure(case, url, pids, codes, args))
        finally:
            if proc is not None:
                proc.stop()
        if case.kind == "redirect" and case.server == default:
            results[-1].click_cpu = click_cost(results[-1].rps, codes, topic)
    return results


def click_cost(rps: float, codes: Path, topic: str) -> dict[str, float]:
    """The click pipeline's CPU per click, in a child (redirect_click_cost.py), with flushes of
    the size the redirect case formed: its req/s x the flush interval."""
    code = "from redirect.settings import RedirectSettings as S; print(S().redirect_click_flush_interval_seconds)"
    interval = float(subprocess.run([PY, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True).stdout)
    per_flush = max(1, round(rps * interval))
    # -P: not infra/bench first on sys.path (its redirect.py would shadow the service package)
    cmd = [PY, "-P", str(HERE / "redirect_click_cost.py"), "--per-flush", str(per_flush), "--codes", str(codes)]
    out = subprocess.run(
        cmd,
        cwd=ROOT,
        env={**os.environ, "TOPIC_CLICKS": topic},
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    ).stdout
    cost: dict[str, float] = json.loads(out.splitlines()[-1])
    say(
        f"{'click pipeline':<22} {cost['total']:6.2f} us CPU/click (build {cost['build']:.2f}, form {cost['form']:.2f},"
        f" publish {cost['publish']:.2f}) in flushes of {per_flush}"
    )
    return cost


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


async def prepare(args: argparse.Namespace) -> tuple[Path, Path]:
    BENCH.mkdir(parents=True, exist_ok=True)
    links = await ensure_codes(args.codes)
    codes_file, links_file = BENCH / "redirect-codes.txt", BENCH / "redirect-links.json"
    codes_file.write_text("\n".join(links) + "\n")
    links_file.write_text(json.dumps(links))
    return codes_file, links_file


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


def baseline_tree(ref: str) -> Path:
    """`services/` and `libs/` of git revision `ref`, extracted under .local/bench (no checkout)."""
    sha = subprocess.run(["git", "rev-parse", "--short", ref], cwd=ROOT, capture_output=True, text=True, check=True)
    tree = BENCH / f"baseline-{sha.stdout.strip()}"
    if not tree.exists():
        partial = tree.with_name(tree.name + ".partial")
        subprocess.run(["rm", "-rf", str(partial)], check=True)
        partial.mkdir(parents=True)
        archive = subprocess.run(["git", "archive", ref, "services", "libs"], cwd=ROOT, capture_output=True, check=True)
        subprocess.run(["tar", "-x", "-C", str(partial)], input=archive.stdout, check=True)
        partial.rename(tree)
    say(f"baseline: {ref} extracted in {tree.relative_to(ROOT)}")
    return tree


def main() -> None:
    parser = argparse.ArgumentParser(prog="just bench redirect", description=__doc__.split("\n")[0])
    parser.add_argument("--duration", type=float, default=float(os.environ.get("BENCH_REDIRECT_DURATION", "10")))
    parser.add_argument("--warmup", type=float, default=2.0)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--codes", type=int, default=1000, help="bench links to spread requests over")
    parser.add_argument("--rounds", type=int, default=3, help="repeat every case; the table shows medians")
    parser.add_argument("--only", default="", help="comma-separated case kinds (ceiling,bare,redirect,...)")
    parser.add_argument("--servers", default=",".join(SERVERS), help="comma-separated servers for bare/redirect")
    parser.add_argument(
        "--baseline", default="", help="a git revision: also run the redirect at that revision (before/after)"
    )
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "benchmarks" / "redirect.md")
    parser.add_argument("--no-write", action="store_true", help="print only, do not write the doc")
    args = parser.parse_args()

    default = default_server()
    args.baseline_tree = baseline_tree(args.baseline) if args.baseline else None
    servers = [s for s in args.servers.split(",") if s]
    plan = [c for c in cases(default, servers, args.baseline) if not args.only or c.kind in args.only.split(",")]
    say(f"default server of the redirect service: {default}; cases: {len(plan)}; rounds: {args.rounds}")
    codes_file, links_file = asyncio.run(prepare(args))
    notes_before = machine_notes()
    started = time.time()
    with temp_topic(f"bench-redirect-clicks-{uuid.uuid4().hex[:8]}") as topic:
        rounds = [run_round(plan, codes_file, links_file, topic, args, default) for _ in range(args.rounds)]
    results = summarise(rounds)
    rows, verdicts = table(results)
    verdicts = with_rounds(verdicts, rounds)
    print()
    print_table(rows)
    for v in verdicts:
        cpu = f"{v.cpu_ratio:.0%}" if v.cpu_ratio is not None else "?"
        print(
            f"target: redirect / {v.server} by CPU per request = {cpu} of bare / {v.server} (line {TARGET:.0%}, median"
            f" of {args.rounds}) -> {'PASS' if v.ok else 'FAIL'}; by req/s {v.rps_ratio:.0%};"
            f" by CPU within each round {rounds_text(v)}"
        )
        if v.click_share is not None:
            print(f"click share: the click pipeline's CPU is {v.click_share:.0%} of a redirect's CPU ({v.server})")
    if not args.no_write and rows:
        notes = {**notes_before, "load average after": machine_notes()["load average"]}
        text = render_markdown(HEADERS, rows, verdict_markdown(verdicts), notes, args, default, time.time() - started)
        args.out.write_text(text)
        say(f"wrote {args.out.relative_to(ROOT)}")
    sys.exit(0)


if __name__ == "__main__":
    main()
