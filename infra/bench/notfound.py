"""404 benchmark (`just bench notfound`): how fast unknown codes are answered under load.

Bots scan random codes; every one of them misses the L1 (each code is new), is looked up in Redis
and answered 404. Against the running stack (its nginx and three replicas), one constant-rate
vegeta attack (open model: no coordinated omission) mixes, for `--seconds` at `--rate`:
  - redirects of the bench links (`bench-redirect-NNNN`, created when missing): the reference,
    the L1 hit path, measured in the same run;
  - GETs of random codes never created (`--unknown-share` of the requests, a fresh code each);
  - creates through the shorten API (`--write-every`: one in N requests), so the links consumers
    and the write path are busy as well.
Prints p50/p90/p99/max per kind and the target: p99 of 404s < 10 ms (issue 9), PASS/FAIL, and
writes docs/benchmarks/notfound.md. Loopback only, bounded (one attack of `--seconds`).
"""

import argparse
import asyncio
import base64
import csv
import json
import math
import random
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

from capacity_load import VEGETA, Plan, attack
from redirect_bench_support import BENCH, PUBLIC, ROOT, cpu_ticks, ensure_codes, machine_notes, say, supervised_pids

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


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rate", type=int, default=1000, help="requests/s (all kinds)")
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--unknown-share", type=float, default=0.3)
    parser.add_argument("--write-every", type=int, default=20, help="one create in N requests (0: none)")
    parser.add_argument("--codes", type=int, default=1000)
    parser.add_argument("--no-write", action="store_true", help="print only, do not write the doc")
    args = parser.parse_args()
    if not VEGETA.exists():
        subprocess.run(["bash", str(ROOT / "infra/scripts/install-loadgen.sh")], check=True)
    BENCH.mkdir(parents=True, exist_ok=True)
    links = asyncio.run(ensure_codes(args.codes))
    run = uuid.uuid4().hex[:8]
    targets, results = BENCH / f"notfound-{run}.targets", BENCH / f"notfound-{run}.bin"
    api_key = (ROOT / ".local" / "api-key").read_text().strip()
    write_targets(
        targets,
        rate=args.rate,
        seconds=args.seconds,
        codes=list(links),
        unknown_share=args.unknown_share,
        write_every=args.write_every,
        api_key=api_key,
        run=run,
    )
    pids = supervised_pids()
    say(
        f"attack: {args.rate}/s for {args.seconds:.0f}s, {args.unknown_share:.0%} unknown codes, "
        f"one create in {args.write_every}"
    )
    started, ticks = time.time(), cpu_ticks(pids)
    try:
        attack(Plan(rate=args.rate, seconds=args.seconds), targets, results)
        latencies = read_latencies(results)
    finally:
        targets.unlink(missing_ok=True)
        results.unlink(missing_ok=True)
    stack_cpu_s = (cpu_ticks(pids) - ticks) / 100
    rows = []
    for kind, label in (
        ("404", "unknown code -> 404"),
        ("302", "bench link -> 302 (reference)"),
        ("201", "create -> 201"),
        ("other", "other (errors)"),
    ):
        v = latencies[kind]
        rows.append((label, len(v), pct(v, 0.5), pct(v, 0.9), pct(v, 0.99), v[-1] if v else float("nan")))
    p99 = pct(latencies["404"], 0.99)
    verdict = "PASS" if p99 < TARGET_P99_MS and not latencies["other"] else "FAIL"
    table = ["| requests | count | p50 ms | p90 ms | p99 ms | max ms |", "|---|---|---|---|---|---|"]
    table += [f"| {r[0]} | {r[1]:,} | {r[2]:.2f} | {r[3]:.2f} | {r[4]:.2f} | {r[5]:.2f} |" for r in rows]
    ratio = p99 / pct(latencies["302"], 0.99)
    summary = (
        f"p99 of 404s: **{p99:.2f} ms** (target < {TARGET_P99_MS:.0f} ms) -> **{verdict}**; "
        f"{ratio:.2f}x the p99 of L1 hits in the same run; stack CPU {stack_cpu_s:.1f} s "
        f"({stack_cpu_s / max(1, sum(len(v) for v in latencies.values())) * 1e6:.0f} us/request, all programs)"
    )
    print("\n".join(table))
    print(summary)
    if not args.no_write:
        notes = machine_notes()
        OUT.write_text(
            "# Benchmark: 404s of unknown codes under load (`just bench notfound`)\n\n"
            f"Generated by `infra/bench/notfound.py` on {datetime.fromtimestamp(started, UTC):%Y-%m-%d %H:%M} UTC "
            f"against the running stack (`./justw up`): one vegeta attack at {args.rate} requests/s for "
            f"{args.seconds:.0f} s through nginx (open model), {args.unknown_share:.0%} of them GETs of random "
            f"codes never created (a fresh code each: every one misses the L1 and reads Redis), one create in "
            f"{args.write_every} through the shorten API, the rest redirects of {args.codes} bench links (the L1 "
            "hit path: the reference, same run).\n\n" + "\n".join(table) + "\n\n" + summary + "\n\n"
            "Reproduce: `./justw up`, then `just bench notfound` (options: `--rate`, `--seconds`, "
            "`--unknown-share`, `--write-every`).\n\n"
            "Machine: " + ", ".join(f"{k}: {v}" for k, v in notes.items()) + "\n"
        )
        say(f"wrote {OUT.relative_to(ROOT)}")
    return 0 if verdict == "PASS" else 1


if __name__ == "__main__":
    sys.exit(main())
