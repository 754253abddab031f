"""The load generator of `just bench capacity`: vegeta (constant rate, open model: a request is
sent on schedule whether or not earlier ones have answered, so a slow stack cannot slow the
load down and hide its own latency, i.e. no coordinated omission). Writes the targets file of a
step, runs one attack (its own CPU time taken from the kernel when it exits) and reads back every
request's result: status, latency and URL, so redirects served are counted per code."""

import base64
import contextlib
import csv
import itertools
import json
import math
import os
import random
import resource
import signal
import subprocess
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from redirect_bench_support import ROOT

VEGETA = ROOT / ".local" / "tools" / "bin" / "vegeta"
BROWSER_HEADERS = (
    "User-Agent: Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Safari/537.36",
    "Referer: https://bench.example/page",
)
MAX_WORKERS = 2048  # bound on concurrent requests in flight (each one a goroutine and a connection)


@dataclass(frozen=True)
class Plan:
    """One step's load: `rate` requests/s for `seconds`; every `write_every`-th is a create."""

    rate: int
    seconds: float
    write_every: int = 0  # 0: reads only; 5: one writer per four readers
    zipf: float = 0.0  # 0: codes in turn (uniform); s > 1: Zipf-distributed popularity


def write_targets(path: Path, plan: Plan, base: str, codes: list[str], api_key: str, run_id: str) -> int:
    """vegeta's JSON targets. Reads only and uniform: one line per code, which vegeta cycles
    through. Otherwise one line per request of the step (every create has its own URL)."""
    rng = random.Random(run_id)
    order = codes[:]
    rng.shuffle(order)
    gets = [json.dumps({"method": "GET", "url": f"{base}/{c}"}) for c in order]
    if not plan.write_every and not plan.zipf:
        path.write_text("\n".join(gets) + "\n")
        return len(gets)
    total = math.ceil(plan.rate * plan.seconds) + plan.rate  # one spare second of targets
    path.unlink(missing_ok=True)
    path.touch(mode=0o600)  # the creates carry the API key: owner-only, like .local/api-key
    post_header = {"Authorization": [f"Bearer {api_key}"], "Content-Type": ["application/json"]}
    picks = _zipf_picks(len(gets), plan.zipf, total, rng) if plan.zipf else None
    with path.open("w") as out:
        for i in range(total):
            if plan.write_every and i % plan.write_every == 0:
                body = json.dumps({"url": f"https://bench.example/new/{run_id}/{i}"}).encode()
                line = {
                    "method": "POST",
                    "url": f"{base}/api/v1/links",
                    "header": post_header,
                    "body": base64.b64encode(body).decode(),
                }
                out.write(json.dumps(line) + "\n")
            else:
                out.write((gets[picks[i]] if picks else gets[i % len(gets)]) + "\n")
    return total


def _zipf_picks(n: int, s: float, k: int, rng: random.Random) -> list[int]:
    """k indexes into n codes, the i-th most popular drawn with weight 1 / i**s."""
    cumulative = list(itertools.accumulate(1 / (i**s) for i in range(1, n + 1)))
    return rng.choices(range(n), cum_weights=cumulative, k=k)


@dataclass
class AttackResult:
    requests: int
    seconds: float  # first request sent to last answer received
    sent_seconds: float  # first to last request sent (what the rate applied to)
    statuses: Counter[int]
    errors: Counter[str]
    latencies_ms: list[float]  # sorted, every request
    read_latencies_ms: list[float]  # sorted, GET /{code}
    write_latencies_ms: list[float]  # sorted, POST /api/v1/links
    served: dict[str, int] = field(default_factory=dict)  # code -> 302s received
    creates: int = 0  # 201s received
    failed: int = 0  # redirects not answered 302 and creates not answered 201 (timeouts included)
    cpu_seconds: float = 0.0  # vegeta's own user + system time


def attack(
    plan: Plan,
    targets: Path,
    results: Path,
    *,
    timeout_s: float = 5.0,
    max_workers: int = MAX_WORKERS,
    rate: str | None = None,
) -> float:
    """Run one vegeta attack to completion (bounded: duration + 60 s); returns its CPU seconds.
    Ctrl-C or any error stops vegeta before the exception goes on."""
    cmd = [
        str(VEGETA),
        "attack",
        "-format=json",
        f"-targets={targets}",
        f"-rate={rate or f'{plan.rate}/1s'}",
        f"-duration={plan.seconds}s",
        f"-timeout={timeout_s}s",
        "-redirects=-1",
        "-keepalive=true",
        "-max-body=0",
        "-http2=false",
        f"-max-workers={max_workers}",
        f"-output={results}",
        "-workers=64",
    ]
    for header in BROWSER_HEADERS:
        cmd += ["-header", header]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    log = results.with_suffix(".log")  # a file, not a pipe: a full pipe would stall vegeta mid-step
    with log.open("wb") as err:
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=err, start_new_session=True)
    deadline = time.monotonic() + plan.seconds + 60
    try:
        while proc.poll() is None:
            if time.monotonic() > deadline:
                raise RuntimeError(f"vegeta still running {plan.seconds + 60:.0f}s after it started")
            time.sleep(0.2)
    finally:
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGINT)  # vegeta stops the attack and flushes its results
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    stderr = log.read_text(errors="replace")
    log.unlink(missing_ok=True)
    if proc.returncode != 0:
        raise RuntimeError(f"vegeta attack exited {proc.returncode}: {stderr[-2000:]}")
    return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def read_results(results: Path, base: str) -> AttackResult:
    """Every request's outcome (vegeta encode --to csv: timestamp, code, latency, bytes out, bytes
    in, error, body, attack, seq, method, url, headers)."""
    encoded = subprocess.Popen(
        [str(VEGETA), "encode", "--to", "csv", str(results)], stdout=subprocess.PIPE, text=True, bufsize=1 << 20
    )
    assert encoded.stdout is not None
    statuses: Counter[int] = Counter()
    errors: Counter[str] = Counter()
    served: Counter[str] = Counter()
    reads: list[float] = []
    writes: list[float] = []
    first_sent = last_sent = last_done = 0
    prefix = len(base) + 1
    creates = failed = 0
    for row in csv.reader(encoded.stdout):
        sent, status, latency_ns = int(row[0]), int(row[1]), int(row[2])
        first_sent = sent if not first_sent else min(first_sent, sent)
        last_sent = max(last_sent, sent)
        last_done = max(last_done, sent + latency_ns)
        statuses[status] += 1
        if row[5]:
            errors[_short_error(row[5])] += 1
        latency_ms = latency_ns / 1e6
        if row[9] == "POST":
            writes.append(latency_ms)
            creates += status == 201
            failed += status != 201
        else:
            reads.append(latency_ms)
            if status == 302:
                served[row[10][prefix:]] += 1
            else:
                failed += 1
    if encoded.wait(120) != 0:
        raise RuntimeError(f"vegeta encode exited {encoded.returncode}")
    reads.sort()
    writes.sort()
    requests = sum(statuses.values())
    return AttackResult(
        requests=requests,
        seconds=(last_done - first_sent) / 1e9,
        sent_seconds=(last_sent - first_sent) / 1e9,
        statuses=statuses,
        errors=errors,
        latencies_ms=sorted(reads + writes),
        read_latencies_ms=reads,
        write_latencies_ms=writes,
        served=dict(served),
        creates=creates,
        failed=failed,
    )


def _short_error(message: str) -> str:
    """Group errors by kind: vegeta's messages carry addresses and ports that differ per request."""
    for kind in ("timeout", "connection refused", "connection reset", "EOF", "too many open files"):
        if kind.lower() in message.lower():
            return kind
    return message[:80]


def run_id() -> str:
    return uuid.uuid4().hex[:10]
