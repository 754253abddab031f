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
import json
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

from redirect_bench_support import (
    BENCH,
    PUBLIC_HTTP_PORT,
    PY,
    ROOT,
    Proc,
    baseline_tree,
    click_cost,
    cpu_ticks,
    ensure_codes,
    free_port,
    machine_notes,
    say,
    supervised_pids,
    temp_topic,
    wait_http,
)
from redirect_report import (
    HEADERS,
    TARGET,
    Case,
    Result,
    print_table,
    render_markdown,
    rounds_text,
    summarise,
    table,
    verdict_markdown,
    with_rounds,
)

SERVERS = ("granian", "uvicorn", "hypercorn")
HERE = Path(__file__).resolve().parent


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
        return None, f"http://127.0.0.1:{PUBLIC_HTTP_PORT}"
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


async def prepare(args: argparse.Namespace) -> tuple[Path, Path]:
    BENCH.mkdir(parents=True, exist_ok=True)
    links = await ensure_codes(args.codes)
    codes_file, links_file = BENCH / "redirect-codes.txt", BENCH / "redirect-links.json"
    codes_file.write_text("\n".join(links) + "\n")
    links_file.write_text(json.dumps(links))
    return codes_file, links_file


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
        say(f"wrote {args.out}")
    sys.exit(0)


if __name__ == "__main__":
    main()
