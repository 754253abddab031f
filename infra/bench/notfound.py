"""404 benchmark (`just bench notfound`): how fast unknown codes are answered under load.

Bots scan random codes; every one of them misses the L1 (each code is new), is looked up in Redis
and answered 404. Against the running stack (its nginx and three replicas), one constant-rate
vegeta attack (open model: no coordinated omission) mixes, for `--seconds` at `--rate`:
  - redirects of the bench links (`bench-redirect-NNNN`, created when missing): the reference,
    the L1 hit path, measured in the same run;
  - GETs of random codes never created (`--unknown-share` of the requests, a fresh code each);
  - creates through the shorten API (`--write-every`: one in N requests), so the links consumers
    and the write path are busy as well.
A warm-up of the same mix comes first and is not counted (the replicas' L1 holds the bench
links, nginx's upstream connections are open), then `--rounds` attacks of `--seconds`. Prints
p50/p90/p99/max per kind over the rounds pooled, each round's p99 of 404s, and the target: p99
of 404s < 10 ms (issue 9), PASS/FAIL; writes docs/benchmarks/notfound.md. Loopback only,
bounded (warm-up + rounds x `--seconds`).
"""

import argparse
import asyncio
import base64
import contextlib
import csv
import json
import math
import os
import random
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from capacity_load import VEGETA, Plan, attack
from redirect_bench_support import (
    BENCH,
    CTL,
    PUBLIC,
    ROOT,
    cpu_ticks,
    descendants,
    ensure_codes,
    machine_notes,
    say,
    supervised_pids,
)

TARGET_P99_MS = 10.0
OUT = ROOT / "docs" / "benchmarks" / "notfound.md"


def write_targets(
    path: Path,
    *,
    rate: int,
    seconds: float,
    codes: list[str],
    unknown_share: float,
    write_every: int,
    api_key: str,
    run: str,
) -> None:
    rng = random.Random(run)
    total = math.ceil(rate * seconds) + rate
    header = {"Authorization": [f"Bearer {api_key}"], "Content-Type": ["application/json"]}
    path.unlink(missing_ok=True)
    path.touch(mode=0o600)  # the creates carry the API key
    with path.open("w") as out:
        for i in range(total):
            if write_every and i % write_every == 0:
                body = json.dumps({"url": f"https://bench.example/nf/{run}/{i}"}).encode()
                line = {
                    "method": "POST",
                    "url": f"{PUBLIC}/api/v1/links",
                    "header": header,
                    "body": base64.b64encode(body).decode(),
                }
            elif rng.random() < unknown_share:
                line = {"method": "GET", "url": f"{PUBLIC}/nf{run}{uuid.UUID(int=rng.getrandbits(128)).hex[:12]}"}
            else:
                line = {"method": "GET", "url": f"{PUBLIC}/{codes[i % len(codes)]}"}
            out.write(json.dumps(line) + "\n")


def read_latencies(results: Path) -> dict[str, list[float]]:
    """kind -> sorted latencies in ms: "404" (unknown codes), "302" (hits), "201" (creates),
    "other" (anything else: errors)."""
    encoded = subprocess.run(
        [str(VEGETA), "encode", "--to", "csv", str(results)], capture_output=True, text=True, check=True, timeout=120
    )
    out: dict[str, list[float]] = {"404": [], "302": [], "201": [], "other": []}
    for row in csv.reader(encoded.stdout.splitlines()):
        status, latency_ms = row[1], int(row[2]) / 1e6
        out[status if status in out else "other"].append(latency_ms)
    for values in out.values():
        values.sort()
    return out


def pct(values: list[float], q: float) -> float:
    return values[max(0, math.ceil(q * len(values)) - 1)] if values else float("nan")


KINDS = (
    ("404", "unknown code -> 404"),
    ("302", "bench link -> 302 (reference)"),
    ("201", "create -> 201"),
    ("other", "other (errors)"),
)


def cpu_set(cpu_list: str) -> set[int]:
    """ "0-2,5" -> {0, 1, 2, 5} (taskset's list format)."""
    out: set[int] = set()
    for part in cpu_list.split(","):
        first, _, last = part.partition("-")
        out.update(range(int(first), int(last or first) + 1))
    return out


def background_pids() -> set[int]:
    """Every supervised program off the redirect path (stackctl.render.on_redirect_path), with
    its children (PostgreSQL's backends, granian's workers)."""
    from stackctl.render import on_redirect_path

    status = subprocess.run([*CTL, "status"], capture_output=True, text=True, check=False).stdout
    roots = set()
    for line in status.splitlines():
        fields = line.split()
        if len(fields) >= 4 and fields[1] == "RUNNING" and not on_redirect_path(fields[0]):
            roots.add(int(fields[3].rstrip(",")))
    return descendants(roots)


def pin(pids: set[int], cpus: set[int]) -> None:
    """What `taskset -a -p` does: every thread of these processes onto `cpus`."""
    for pid in pids:
        with contextlib.suppress(OSError):
            for task in Path(f"/proc/{pid}/task").iterdir():
                with contextlib.suppress(OSError):
                    os.sched_setaffinity(int(task.name), cpus)


def attack_mix(args: argparse.Namespace, codes: list[str], api_key: str, seconds: float) -> dict[str, list[float]]:
    """One open-model attack of the mix for `seconds`; latencies by kind (fresh random codes)."""
    run = uuid.uuid4().hex[:8]
    targets, results = BENCH / f"notfound-{run}.targets", BENCH / f"notfound-{run}.bin"
    write_targets(
        targets,
        rate=args.rate,
        seconds=seconds,
        codes=codes,
        unknown_share=args.unknown_share,
        write_every=args.write_every,
        api_key=api_key,
        run=run,
    )
    try:
        attack(Plan(rate=args.rate, seconds=seconds), targets, results)
        return read_latencies(results)
    finally:
        targets.unlink(missing_ok=True)
        results.unlink(missing_ok=True)


@dataclass
class Mode:
    """One configuration of the stack measured over its rounds (pooled)."""

    name: str
    cpus: set[int] | None  # the background programs' CPUs while it runs (None: left as they are)
    latencies: dict[str, list[float]] = field(default_factory=lambda: {kind: [] for kind, _ in KINDS})
    round_p99s: list[float] = field(default_factory=list)
    cpu_ticks: int = 0

    def p99(self, kind: str = "404") -> float:
        return pct(sorted(self.latencies[kind]), 0.99)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rate", type=int, default=300, help="requests/s (all kinds)")
    parser.add_argument("--seconds", type=float, default=20.0, help="length of each measured round")
    parser.add_argument("--rounds", type=int, default=3, help="measured rounds (per mode); the verdict pools them")
    parser.add_argument("--warmup", type=float, default=5.0, help="seconds of the same mix first, not counted")
    parser.add_argument("--unknown-share", type=float, default=0.3)
    parser.add_argument("--write-every", type=int, default=0, help="one create in N requests (0: none)")
    parser.add_argument("--codes", type=int, default=1000)
    parser.add_argument(
        "--partition-ab",
        action="store_true",
        help="alternate rounds without and with the CPU partition (BACKGROUND_CPUS) on the running stack",
    )
    parser.add_argument("--no-write", action="store_true", help="print only, do not write the doc")
    args = parser.parse_args()
    if not VEGETA.exists():
        subprocess.run(["bash", str(ROOT / "infra/scripts/install-loadgen.sh")], check=True)
    BENCH.mkdir(parents=True, exist_ok=True)
    from stackctl.config import StackSettings

    configured = StackSettings().background_cpu_list  # type: ignore[call-arg]
    server = os.environ.get("REDIRECT_SERVER") or "granian"
    everything = set(range(os.cpu_count() or 1))
    if args.partition_ab:
        partition = configured or StackSettings(background_cpus="auto").background_cpu_list  # type: ignore[call-arg]
        if not partition:
            parser.error("--partition-ab needs two CPUs or more")
        modes = [Mode("no partition", everything), Mode(f"background on CPUs {partition}", cpu_set(partition))]
    else:
        modes = [Mode(f"background on CPUs {configured}" if configured else "no partition", None)]
    config = f"replicas under {server}, BACKGROUND_CPUS resolved to {configured or '(none)'}"
    codes = list(asyncio.run(ensure_codes(args.codes)))
    api_key = (ROOT / ".local" / "api-key").read_text().strip()
    say(
        f"attack: {args.rate}/s, {args.unknown_share:.0%} unknown codes, one create in {args.write_every}; "
        f"{args.warmup:.0f} s warm-up, then {args.rounds} x {args.seconds:.0f} s per mode ({len(modes)}); {config}"
    )
    if args.warmup > 0:  # the replicas' L1 holds the bench links and every connection is open
        attack_mix(args, codes, api_key, args.warmup)
    pids = supervised_pids()
    started = time.time()
    try:
        for _ in range(args.rounds):
            for mode in modes:  # alternating: the modes share the machine's moods
                if mode.cpus is not None:
                    pin(background_pids(), mode.cpus)
                ticks = cpu_ticks(pids)
                latencies = attack_mix(args, codes, api_key, args.seconds)
                mode.cpu_ticks += cpu_ticks(pids) - ticks
                mode.round_p99s.append(pct(latencies["404"], 0.99))
                say(f"{mode.name}, round {len(mode.round_p99s)}: p99 of 404s {mode.round_p99s[-1]:.2f} ms")
                for kind, values in latencies.items():
                    mode.latencies[kind] += values
    finally:
        if args.partition_ab:  # back to what the stack was started with
            pin(background_pids(), cpu_set(configured) if configured else everything)
    table = ["| mode | requests | count | p50 ms | p90 ms | p99 ms | max ms |", "|---|---|---|---|---|---|---|"]
    for mode in modes:
        for kind, label in KINDS:
            v = sorted(mode.latencies[kind])
            table.append(
                f"| {mode.name} | {label} | {len(v):,} | {pct(v, 0.5):.2f} | {pct(v, 0.9):.2f} | "
                f"{pct(v, 0.99):.2f} | {(v[-1] if v else float('nan')):.2f} |"
            )
    summaries, verdicts = [], []
    for mode in modes:
        p99 = mode.p99()
        verdict = "PASS" if p99 < TARGET_P99_MS and not mode.latencies["other"] else "FAIL"
        verdicts.append(verdict)
        requests = sum(len(v) for v in mode.latencies.values())
        summaries.append(
            f"- {mode.name}: p99 of 404s over {args.rounds} rounds **{p99:.2f} ms** (target < "
            f"{TARGET_P99_MS:.0f} ms) -> **{verdict}**; by round {', '.join(f'{r:.2f}' for r in mode.round_p99s)} "
            f"ms; {p99 / mode.p99('302'):.2f}x the p99 of L1 hits in the same rounds; replicas + nginx CPU "
            f"{mode.cpu_ticks / 100 / max(1, requests) * 1e6:.0f} us/request"
        )
    # The verdict is the stack as started (the partition when it is configured).
    verdict = verdicts[-1] if configured or not args.partition_ab else verdicts[0]
    print("\n".join(table))
    print("\n".join(summaries))
    if not args.no_write:
        notes = machine_notes()
        OUT.write_text(
            "# Benchmark: 404s of unknown codes under load (`just bench notfound`)\n\n"
            f"Generated by `infra/bench/notfound.py` on {datetime.fromtimestamp(started, UTC):%Y-%m-%d %H:%M} UTC "
            f"against the running stack (`./justw up`; {config}): vegeta at {args.rate} requests/s through nginx "
            f"(open model), {args.warmup:.0f} s of warm-up not counted, then {args.rounds} rounds of "
            f"{args.seconds:.0f} s per mode, pooled"
            + (
                " (modes alternating round by round: the background programs' CPUs set on the running "
                "stack, as `taskset -a -p` would)"
                if args.partition_ab
                else ""
            )
            + f"; {args.unknown_share:.0%} of the requests GET random codes never created (a fresh code each: "
            f"every one misses the L1 and reads Redis), one create in {args.write_every} through the shorten API, "
            f"the rest redirects of {args.codes} bench links (the L1 hit path: the reference, same rounds).\n\n"
            + "\n".join(table)
            + "\n\n"
            + "\n".join(summaries)
            + "\n\nReproduce: `./justw up`, then `just bench notfound` (options: `--rate`, `--seconds`, "
            "`--rounds`, `--warmup`, `--unknown-share`, `--write-every`, `--partition-ab`).\n\n"
            "Machine: " + ", ".join(f"{k}: {v}" for k, v in notes.items()) + "\n"
        )
        say(f"wrote {OUT.relative_to(ROOT)}")
    return 0 if verdict == "PASS" else 1


if __name__ == "__main__":
    sys.exit(main())
