"""One bounded load-test run, start to finish.

guard host -> seed codes and wait until they redirect -> locust headless in subprocesses (bounded)
-> read CSV stats and merge the per-process tallies -> poll analytics until the click counts match
(or the drain deadline passes) -> save and print the summary. Exit status: 0 check passed,
1 check failed, 2 the run could not be carried out.
"""

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import httpx

from loadtest.analytics import AnalyticsClicks, StoreCounts
from loadtest.check import CountCheck, await_counts
from loadtest.commands import Command, RunPaths, deadline_seconds, locust_commands
from loadtest.guard import require_loopback
from loadtest.seed import create_codes, wait_until_served
from loadtest.settings import Profile
from loadtest.stats import read_run_stats
from loadtest.summary import build_summary, format_summary, save_summary
from loadtest.tally import TALLY_GLOB, RedirectTally, read_run_tallies, write_tally

REPO_ROOT = Path(__file__).resolve().parents[1]
SEED_TIMEOUT = 120.0
GRACE_SECONDS = 10.0
LINGER_SECONDS = 2.0  # how long workers may outlive their driver before they are stopped

EXIT_PASSED, EXIT_CHECK_FAILED, EXIT_NOT_RUN = 0, 1, 2


class RunError(RuntimeError):
    """The run could not be carried out (setup, locust crash, missing output)."""


@dataclass(frozen=True)
class RunResult:
    exit_code: int
    summary: dict[str, object]
    summary_file: Path


def free_loopback_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _say(message: str) -> None:
    print(f"[loadtest] {message}", flush=True)


async def _prepare(profile: Profile, host: str, paths: RunPaths, *, api_key: str, run_id: str) -> int:
    """Create the seeded codes, write them for the users, wait until each redirects."""
    probes = RedirectTally()
    async with httpx.AsyncClient(base_url=host, timeout=10.0) as client:
        _say(f"seeding {profile.seed_codes} links through {host}")
        codes = await create_codes(
            client, count=profile.seed_codes, api_key=api_key, run_id=run_id, timeout=SEED_TIMEOUT
        )
        paths.codes_file.write_text(json.dumps(codes))
        await wait_until_served(client, codes, probes, timeout=SEED_TIMEOUT)
    write_tally(paths.tally_dir, probes, name="seed-probes")
    return len(codes)


def _run_locust(commands: Sequence[Command], *, paths: RunPaths, api_key: str, deadline: float) -> None:
    env = {
        **os.environ,
        "LOADTEST_API_KEY": api_key,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH", "")])),
    }
    processes: list[tuple[Command, subprocess.Popen[bytes]]] = []
    try:
        for command in commands:
            out = paths.run_dir / f"locust-{command.role}.out"
            with out.open("wb") as sink:  # the child keeps its own copy of the descriptor
                process = subprocess.Popen(
                    command.argv,
                    cwd=REPO_ROOT,
                    env=env,
                    stdin=subprocess.DEVNULL,
                    stdout=sink,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,  # its own process group: we can stop exactly its tree
                )
            processes.append((command, process))
        driver_command, driver = processes[0]
        try:
            code = driver.wait(timeout=deadline)
        except subprocess.TimeoutExpired as exc:
            raise RunError(f"locust {driver_command.role} still running after {deadline:.0f}s; stopped") from exc
        if code != 0:
            raise RunError(f"locust {driver_command.role} exited with {code}; see {paths.run_dir}/locust-*")
        # The driver ends only after every worker stopped its users and wrote its tally. Workers
        # may outlive it (locust --processes does not wait for its forks; a worker of a master
        # that has gone waits for a heartbeat timeout): give them a moment, then stop them.
        end = time.monotonic() + LINGER_SECONDS
        for _, process in processes:
            _group_gone(process, deadline=max(0.1, end - time.monotonic()))
    finally:
        _stop_all([p for _, p in processes])


def _group_gone(process: subprocess.Popen[bytes], *, deadline: float) -> bool:
    """True once no process is left in the group `process` leads (it is reaped on the way)."""
    end = time.monotonic() + deadline
    while True:
        process.poll()  # reap the leader, or it lingers as a zombie member of its group
        try:
            os.killpg(process.pid, 0)
        except ProcessLookupError:
            return True
        if time.monotonic() >= end:
            return False
        time.sleep(0.1)


def _stop_all(processes: Sequence[subprocess.Popen[bytes]]) -> None:
    """Stop what is still running among the processes we started and their forks: each was started
    as the leader of its own process group, so the group id names exactly that tree."""
    for sig, wait in ((signal.SIGINT, GRACE_SECONDS), (signal.SIGKILL, 5.0)):
        alive = [p for p in processes if not _group_gone(p, deadline=0)]
        if not alive:
            return
        for process in alive:
            try:
                os.killpg(process.pid, sig)
            except ProcessLookupError:
                pass
        for process in alive:
            _group_gone(process, deadline=wait)


async def _check(
    host: str, tally: RedirectTally, *, api_key: str, timeout: float
) -> tuple[CountCheck, dict[str, StoreCounts]]:
    async with httpx.AsyncClient(base_url=host, timeout=10.0) as client:
        fetch = AnalyticsClicks(client, api_key=api_key)
        check = await await_counts(tally.outcomes(), fetch, timeout=timeout, on_poll=_Progress())
        return check, fetch.last


class _Progress:
    """Says every ~15 s how far analytics has got, so a long drain is visibly alive."""

    def __init__(self, every: float = 15.0) -> None:
        self._every = every
        self._next = every

    def __call__(self, check: CountCheck, waited: float) -> None:
        if waited >= self._next and not check.passed:
            self._next = waited + self._every
            _say(
                f"{waited:.0f}s: analytics has {check.counted} of {check.served} clicks; "
                f"{len(check.mismatches)} of {check.codes} codes pending"
            )


def run(profile: Profile, *, api_key: str, out_dir: Path) -> RunResult:
    """Carry out one run; raises RunError (or NotLoopback, SeedError) when it cannot."""
    host = require_loopback(profile.host)
    profile.validate()
    started = datetime.now(UTC)
    run_id = f"{started:%Y%m%dT%H%M%SZ}-{profile.name}"
    paths = RunPaths(out_dir / run_id)
    paths.tally_dir.mkdir(parents=True, exist_ok=True)
    wall_start = time.monotonic()

    seeded = asyncio.run(_prepare(profile, host, paths, api_key=api_key, run_id=run_id))
    commands = locust_commands(
        profile, paths, master_port=free_loopback_port() if profile.workers else 0, python=sys.executable
    )
    _say(
        f"running profile {profile.name}: {profile.users} users ({profile.read_users} readers at "
        f"{profile.read_rps_per_user}/s, {profile.write_users} writers at {profile.write_rps_per_user}/s) "
        f"for {profile.run_time}s against {host}; locust output in {paths.run_dir}"
    )
    _run_locust(commands, paths=paths, api_key=api_key, deadline=deadline_seconds(profile))

    stats = read_run_stats(paths.csv_prefix)
    expected = 1 + max(profile.processes, profile.workers) + 1  # driver (+ workers) + seed probes
    found = len(list(paths.tally_dir.glob(TALLY_GLOB)))
    if found < expected:
        raise RunError(f"only {found} of {expected} redirect tallies were written; cannot check the counts")
    tally = read_run_tallies(paths.tally_dir)
    _say(f"locust done; waiting up to {profile.drain_timeout:.0f}s for analytics to count every click")
    check, store_counts = asyncio.run(_check(host, tally, api_key=api_key, timeout=profile.drain_timeout))

    summary = build_summary(
        run_id=run_id,
        profile=profile,
        started_at=started.isoformat().replace("+00:00", "Z"),
        wall_seconds=time.monotonic() - wall_start,
        stats=stats,
        tally=tally,
        seeded=seeded,
        check=check,
        artifacts=paths.run_dir,
        store_counts={m.code: store_counts[m.code] for m in check.mismatches if m.code in store_counts},
    )
    summary_file = save_summary(summary, out_dir / f"{run_id}.json")
    return RunResult(EXIT_PASSED if check.passed else EXIT_CHECK_FAILED, summary, summary_file)


def recheck(run_dir: Path, *, host: str, api_key: str, timeout: float) -> CountCheck:
    """The count check again, for a past run (e.g. one that timed out while the pipeline was behind)."""
    tally = read_run_tallies(RunPaths(run_dir).tally_dir)
    if not tally.attempts:
        raise RunError(f"no redirect tallies under {run_dir}/tally")
    check, _ = asyncio.run(_check(require_loopback(host), tally, api_key=api_key, timeout=timeout))
    return check


def print_result(result: RunResult) -> None:
    print(format_summary(result.summary))
    print(f"  summary      {result.summary_file}")
