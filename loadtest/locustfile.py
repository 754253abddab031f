"""Locust users: writers create links, readers follow redirects with Zipf popularity.

Run by `python -m loadtest run` (runner.py), which passes the options below; it also works by
hand: `locust -f loadtest/locustfile.py --headless -H http://127.0.0.1:8080 -t 30s -u 10 -r 5
--read-users 9 --write-users 1 --codes-file codes.json --tally-dir /tmp/tally`.

- Readers never follow the redirect (allow_redirects=False): only 301/302 is a success, and each
  one is tallied per code (tally.py) so the runner can check analytics' click counts exactly.
  They send a normal browser User-Agent, so analytics counts their clicks (bots are excluded).
- Writers POST /api/v1/links with the API key from the LOADTEST_API_KEY environment variable
  (never on a command line); a 429 is a failure and the writer waits as Retry-After asks.
- Any host that is not loopback is refused before a single request (guard.py).
- With `--stop-after N` the driver (local runner or master) ends the load itself after N seconds:
  it stops the users gracefully, waits for the workers' last stats reports, then quits. Locust's
  own `--run-time` path quits the master 0.5 s after telling workers to stop, which loses the
  reports of workers still finishing requests; `--run-time` stays set as the outer bound.
"""

import csv
import json
import logging
import os
import random
import time
import uuid
from argparse import ArgumentParser
from pathlib import Path
from typing import Any

import gevent  # type: ignore[import-untyped]
from locust import FastHttpUser, constant_throughput, events, task
from locust.env import Environment
from locust.exception import StopUser
from locust.runners import MasterRunner, WorkerRunner
from locust.stats import PERCENTILES_TO_REPORT, StatsCSV

from loadtest.browser import BROWSER_USER_AGENTS, REDIRECT_OK
from loadtest.guard import NotLoopback, require_loopback
from loadtest.pool import CodePool
from loadtest.tally import RedirectTally, write_tally

log = logging.getLogger("loadtest")

MAX_RETRY_AFTER = 10.0
# Workers report stats to the master every 3 s (locust.runners.WORKER_REPORT_INTERVAL).
REPORT_GRACE = 4.0


class RunState:
    """This process's pool of codes and its redirect tally; built when the test starts."""

    def __init__(self, *, codes: list[str], zipf_s: float, fresh_after: float, tally_dir: Path, api_key: str):
        self.pool = CodePool(codes, s=zipf_s, fresh_after=fresh_after, clock=time.monotonic)
        self.tally = RedirectTally()
        self.tally_dir = tally_dir
        self.api_key = api_key
        self.rng = random.Random()
        self.stopping = False


_state: RunState | None = None


def state() -> RunState:
    if _state is None:
        raise StopUser("the test has not started (no code pool)")
    return _state


@events.init_command_line_parser.add_listener  # type: ignore[untyped-decorator]
def _options(parser: ArgumentParser) -> None:
    group = parser.add_argument_group("shortlink load test")
    group.add_argument("--read-users", type=int, default=1, help="reader users (fixed count)")
    group.add_argument("--write-users", type=int, default=0, help="writer users (fixed count)")
    group.add_argument("--read-rps", type=float, default=1.0, help="requests per second per reader")
    group.add_argument("--write-rps", type=float, default=1.0, help="requests per second per writer")
    group.add_argument("--codes-file", default="", help="JSON list of seeded codes, hottest first")
    group.add_argument("--tally-dir", default="", help="where each process writes tally-<pid>.json")
    group.add_argument("--zipf-s", type=float, default=1.1, help="Zipf exponent of code popularity")
    group.add_argument("--fresh-after", type=float, default=5.0, help="seconds before a new code is read")
    group.add_argument("--stop-after", type=float, default=0.0, help="seconds of load, then a graceful stop")


@events.init.add_listener  # type: ignore[untyped-decorator]
def _configure(environment: Environment, **_: Any) -> None:
    options = environment.parsed_options
    if options is None:
        return
    if environment.host:
        require_loopback(environment.host)  # the master / local runner refuses before spawning
    ReaderUser.fixed_count = options.read_users
    WriterUser.fixed_count = options.write_users
    ReaderUser.wait_time = constant_throughput(options.read_rps)
    WriterUser.wait_time = constant_throughput(options.write_rps)


@events.test_start.add_listener  # type: ignore[untyped-decorator]
def _start(environment: Environment, **_: Any) -> None:
    global _state
    options = environment.parsed_options
    if options is not None and options.stop_after > 0 and not isinstance(environment.runner, WorkerRunner):
        gevent.spawn(_stop_after, environment, options.stop_after)
    if options is None or not options.codes_file or not options.tally_dir:
        return  # a master without users needs no pool
    codes = json.loads(Path(options.codes_file).read_text())
    _state = RunState(
        codes=[str(c) for c in codes],
        zipf_s=options.zipf_s,
        fresh_after=options.fresh_after,
        tally_dir=Path(options.tally_dir),
        api_key=os.environ.get("LOADTEST_API_KEY", ""),
    )


def _stop_after(environment: Environment, seconds: float) -> None:
    gevent.sleep(seconds)
    runner = environment.runner
    if runner is None:
        return
    log.info("%.0f s of load done: stopping users", seconds)
    runner.stop()  # graceful: running requests finish (--stop-timeout); a master waits for its workers
    if isinstance(runner, MasterRunner):
        gevent.sleep(REPORT_GRACE)  # the workers' last periodic stats reports
    runner.quit()


@events.test_stopping.add_listener  # type: ignore[untyped-decorator]
def _stopping(environment: Environment, **_: Any) -> None:
    """Locust stops a *waiting* user by killing it, and a user whose wait just ended may still
    look waiting: it would be killed inside its next request, whose outcome we could not know.
    So once stopping starts, no new request begins (set before any user is stopped)."""
    if _state is not None:
        _state.stopping = True


@events.test_stop.add_listener  # type: ignore[untyped-decorator]
def _stop(environment: Environment, **_: Any) -> None:
    _save_tally()


@events.quitting.add_listener  # type: ignore[untyped-decorator]
def _quitting(environment: Environment, **_: Any) -> None:
    _save_tally()
    _save_final_stats(environment)


def _save_tally() -> None:
    if _state is not None:
        path = write_tally(_state.tally_dir, _state.tally)
        log.info("redirect tally written to %s", path)


def _save_final_stats(environment: Environment) -> None:
    """Write the final stats in locust's CSV format to `<csv prefix>_final_{stats,failures}.csv`.

    Locust's own `--csv` files are rewritten once a second by a background greenlet, so at exit
    they can miss the last second; at `quitting` (after the runner and its workers stopped) the
    driver's stats are complete.
    """
    options = environment.parsed_options
    prefix = getattr(options, "csv_prefix", None)
    if not prefix or isinstance(environment.runner, WorkerRunner):
        return
    writer = StatsCSV(environment, PERCENTILES_TO_REPORT)
    with open(f"{prefix}_final_stats.csv", "w", newline="") as fh:
        writer.requests_csv(csv.writer(fh))
    with open(f"{prefix}_final_failures.csv", "w", newline="") as fh:
        writer.failures_csv(csv.writer(fh))


class _LoopbackUser(FastHttpUser):
    abstract = True
    network_timeout = 10.0
    connection_timeout = 5.0

    def on_start(self) -> None:
        try:
            require_loopback(self.host or "")
        except NotLoopback as exc:
            log.error("%s", exc)
            raise StopUser() from exc
        self.user_agent = random.choice(BROWSER_USER_AGENTS)


class ReaderUser(_LoopbackUser):
    """Follows one redirect per task, choosing the code with Zipf popularity."""

    fixed_count = 1
    wait_time = constant_throughput(1)

    @task
    def follow(self) -> None:
        run = state()
        if run.stopping:
            raise StopUser()
        code = run.pool.pick(run.rng)
        run.tally.started(code)
        with self.client.get(
            f"/{code}",
            name="GET /{code}",
            allow_redirects=False,
            catch_response=True,
            headers={"User-Agent": self.user_agent, "Accept": "text/html"},
        ) as response:
            status = response.status_code
            if status in REDIRECT_OK:
                run.tally.served(code)
                response.success()
            elif 400 <= status < 500:
                run.tally.refused(code)
                response.failure(f"HTTP {status}: no redirect")
            else:  # 0 = no response (timeout, reset), 5xx = maybe served: indeterminate
                response.failure(f"HTTP {status}: outcome unknown")


class WriterUser(_LoopbackUser):
    """Creates one link per task; its code joins this process's pool after the propagation delay."""

    fixed_count = 0
    wait_time = constant_throughput(1)

    @task
    def create(self) -> None:
        run = state()
        if run.stopping:
            raise StopUser()
        body = {"url": f"https://example.com/loadtest/{uuid.uuid4().hex}"}
        headers = {"Authorization": f"Bearer {run.api_key}", "User-Agent": self.user_agent}
        retry_after = 0.0
        with self.client.post(
            "/api/v1/links", json=body, headers=headers, name="POST /api/v1/links", catch_response=True
        ) as response:
            if response.status_code == 201:
                try:
                    run.pool.created_code(str(response.json()["code"]))
                    response.success()
                except (ValueError, KeyError, TypeError):
                    response.failure("201 without a code in the body")
            elif response.status_code == 429:
                response.failure("HTTP 429: rate limited")
                retry_after = _retry_after(response.headers.get("Retry-After") if response.headers else None)
            else:
                response.failure(f"HTTP {response.status_code}")
        if retry_after:
            time.sleep(retry_after)  # gevent-patched: only this user waits


def _retry_after(header: str | None) -> float:
    try:
        return min(MAX_RETRY_AFTER, max(0.0, float(header or 1)))
    except ValueError:
        return 1.0
