"""The faults `just chaos` injects, one `Scenario` each. To add one: write an async fault
(`FaultContext` -> `FaultOutcome`) and append a `Scenario` to `SCENARIOS`.

A fault injects its failure, waits out the outage (the sleeps here *are* the outage, not
synchronisation), restores the component and returns once its probe passes again. The runner
keeps the load going across all of it and checks the books afterwards.
"""

import asyncio
import os
import signal
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import aiohttp
from stackctl import sentinel

from chaos.stack import Stack
from chaos.traffic import HEADERS, RedirectLoad, WriteLoad


@dataclass
class FaultContext:
    stack: Stack
    redirects: RedirectLoad
    writes: WriteLoad
    run_id: str


@dataclass
class FaultOutcome:
    ready_at: float  # monotonic time the component answered its probe again
    notes: list[str] = field(default_factory=list)
    requests: int = 0  # the fault's own requests (probing scenarios), on top of the load's
    failed: int = 0
    ok: bool = True  # the scenario's own expectation held


Fault = Callable[[FaultContext], Awaitable[FaultOutcome]]
Cleanup = Callable[[Stack], Awaitable[None]]


@dataclass(frozen=True)
class Scenario:
    name: str
    what: str
    fault: Fault
    redirect_rate: float | None = 100.0  # per second, open loop; None: closed loop at `concurrency`
    concurrency: int = 32
    target: str = "public"  # "public" (through nginx) or a redirect program, e.g. "redirect-1"
    write_rate: float = 4.0
    links: int = 20
    before_s: float = 3.0
    after_s: float = 5.0
    redirects_may_fail: bool = False
    writes_may_fail: bool = False  # beyond 503 + Retry-After, which is always an acceptable refusal
    # Clicks that may be lost, in seconds of the load's rate: a replica SIGKILLed loses what it
    # answered but had not handed to Kafka yet (services/redirect/README.md, docs/reliability.md)
    loss_bound_s: float = 0.0
    # Clicks that may be counted twice, in seconds of the load's rate (same idea): a host that stops
    # answering and resumes answers the requests nginx already re-sent to another one after its
    # read timeout (docs/cluster.md). Either bound above 0: the books are read once counts settle.
    twice_bound_s: float = 0.0
    # The load's client timeout: longer than nginx's redirect read timeout when a scenario needs
    # nginx to re-send requests to another replica and the clients to see the answers.
    request_timeout_s: float = 5.0
    ci: bool = False  # in the short subset CI runs (tests/e2e/test_chaos.py)
    cleanup: Cleanup | None = None  # after the books are checked (e.g. fail Redis back)


def _elapsed(since: float) -> str:
    return f"{time.monotonic() - since:.1f}s"


def kill(program: str, *, probe: str | None = None) -> Fault:
    """SIGKILL the program; supervisord restarts it."""

    async def fault(ctx: FaultContext) -> FaultOutcome:
        at = time.monotonic()
        old = await ctx.stack.sigkill(program)
        ready = await ctx.stack.wait_restarted(program, old)
        if probe is not None:
            ready = await ctx.stack.wait_ready(probe)
        return FaultOutcome(ready, [f"{program} SIGKILLed, serving again after {ready - at:.1f}s"])

    return fault


def stop_for(program: str, seconds: float) -> Fault:
    """Stop the program for `seconds`, then start it again."""

    async def fault(ctx: FaultContext) -> FaultOutcome:
        at = time.monotonic()
        await ctx.stack.stop(program)
        await asyncio.sleep(seconds)
        await ctx.stack.start(program)
        ready = await ctx.stack.wait_ready(program)
        return FaultOutcome(ready, [f"{program} down {seconds:.0f}s, ready {ready - at - seconds:.1f}s after start"])

    return fault


async def postgres_clicks(stack: Stack, codes: list[str]) -> int:
    """Human clicks PostgreSQL's totals hold for these codes."""
    import asyncpg

    conn = await asyncpg.connect(stack.s.postgres_dsn, timeout=5)
    try:
        total = await conn.fetchval(
            "SELECT coalesce(sum(clicks), 0) FROM clicks.link_totals WHERE code = ANY($1::text[])", codes
        )
    finally:
        await conn.close()
    return int(total)


def clickhouse_down(seconds: float, *, keep_up_within_s: float = 10.0) -> Fault:
    """ClickHouse stopped `seconds`. PostgreSQL's totals must keep counting meanwhile: at the end
    of the outage they hold at least every click served `keep_up_within_s` before."""

    async def fault(ctx: FaultContext) -> FaultOutcome:
        at = time.monotonic()
        await ctx.stack.stop("clickhouse")
        await asyncio.sleep(seconds - keep_up_within_s)
        served_before = sum(o.ok for o in ctx.redirects.tally.outcomes().values())
        await asyncio.sleep(keep_up_within_s)
        counted = await postgres_clicks(ctx.stack, ctx.redirects.codes)
        await ctx.stack.start("clickhouse")
        ready = await ctx.stack.wait_ready("clickhouse")
        kept_up = counted >= served_before
        return FaultOutcome(
            ready,
            [
                f"clickhouse down {seconds:.0f}s, ready {ready - at - seconds:.1f}s after start",
                f"PostgreSQL totals at the end of the outage: {counted:,} clicks, {served_before:,} served "
                f"{keep_up_within_s:.0f}s before ({'kept up' if kept_up else 'FELL BEHIND'})",
            ],
            ok=kept_up,
        )

    return fault


def frozen_past_read_timeout(program: str) -> Fault:
    """SIGSTOP the program (and its children) until nginx's redirect read timeout has passed for
    the requests it holds, plus 2 s, then SIGCONT: nginx re-sends those requests to the other
    replicas, and the thawed replica must answer its copies without a click
    (REDIRECT_PROXY_READ_TIMEOUT_SECONDS; its redirect_expired_requests counter shows them)."""

    async def fault(ctx: FaultContext) -> FaultOutcome:
        seconds = ctx.stack.s.redirect_read_timeout + 2
        group = os.getpgid(await ctx.stack.pid(program))
        expired_before = await _metric(ctx.stack, program, "redirect_expired_requests_total")
        at = time.monotonic()
        os.killpg(group, signal.SIGSTOP)
        try:
            await asyncio.sleep(seconds)
        finally:
            os.killpg(group, signal.SIGCONT)
        ready = await ctx.stack.wait_ready(program)
        expired = await _metric(ctx.stack, program, "redirect_expired_requests_total") - expired_before
        return FaultOutcome(
            ready,
            [
                f"{program} frozen {seconds:.0f}s, ready {ready - at - seconds:.1f}s after; "
                f"{expired:.0f} late copies refused"
            ],
            ok=expired > 0,
        )

    return fault


async def _metric(stack: Stack, program: str, name: str) -> float:
    """A counter of redirect replica `program`'s /metrics (0 when absent)."""
    url = stack.replica_urls[int(program.rsplit("-", 1)[1]) - 1]
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as http:
        async with http.get(f"{url}/metrics") as response:
            text = await response.text()
    for line in text.splitlines():
        if line.startswith(name + " ") or line.startswith(name + "{"):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def restart(program: str) -> Fault:
    async def fault(ctx: FaultContext) -> FaultOutcome:
        at = time.monotonic()
        await ctx.stack.restart(program)
        ready = await ctx.stack.wait_ready(program)
        return FaultOutcome(ready, [f"{program} restarted, ready after {ready - at:.1f}s"])

    return fault


def redis_failover(hold_s: float) -> Fault:
    """SIGKILL the Redis primary and keep it down `hold_s` (a lost host, not a crash supervisord
    undoes in a second): Sentinel promotes the replica; then the old primary returns as replica."""

    async def fault(ctx: FaultContext) -> FaultOutcome:
        s = ctx.stack.s
        primary = await sentinel.primary_port(s)
        program = "redis" if primary == s.redis_port else "redis-replica"
        other = s.redis_replica_port if primary == s.redis_port else s.redis_port
        at = time.monotonic()
        await ctx.stack.sigkill(program)
        await ctx.stack.stop(program)
        promoted = await sentinel.wait_promoted(s, other, timeout=60)
        await asyncio.sleep(max(0.0, hold_s - (time.monotonic() - at)))
        await ctx.stack.start(program)
        await sentinel.wait_settled(s, other, timeout=90)
        ready = time.monotonic()
        return FaultOutcome(
            ready,
            [
                f"{program} (primary) SIGKILLed and kept down {hold_s:.0f}s; "
                f"replica promoted after {promoted - at:.1f}s",
                f"old primary back as replica {ready - at - hold_s:.1f}s after its start",
            ],
        )

    return fault


async def fail_back(stack: Stack) -> None:
    await sentinel.fail_back(stack.s)


def redis_down_without_sentinel(seconds: float) -> Fault:
    """The Redis primary stopped with no Sentinel to promote the replica (all three stopped)."""

    async def fault(ctx: FaultContext) -> FaultOutcome:
        sentinels = [f"redis-sentinel-{i}" for i in range(1, len(ctx.stack.s.sentinel_ports) + 1)]
        at = time.monotonic()
        await ctx.stack.stop(*sentinels)
        await ctx.stack.stop("redis")
        await asyncio.sleep(seconds)
        await ctx.stack.start("redis")
        await ctx.stack.start(*sentinels)
        ready = await ctx.stack.wait_ready("redis", "redis-replica", *sentinels)
        return FaultOutcome(ready, [f"Redis primary and Sentinels down {seconds:.0f}s, back after {_elapsed(at)}"])

    return fault


def read_your_writes(count: int) -> Fault:
    """`count` times: create a link and GET it at once through nginx (and the same right after a
    PATCH and after a DELETE); any other answer than the new state is a failed request."""

    async def fault(ctx: FaultContext) -> FaultOutcome:
        base, key = ctx.stack.public_url, ctx.stack.api_key
        auth = {"Authorization": f"Bearer {key}"}
        wrong = requests = 0
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as http:
            for i in range(count):
                url = f"https://example.com/chaos/{ctx.run_id}/ryw/{i}"
                async with http.post(f"{base}/api/v1/links", json={"url": url}, headers=auth) as created:
                    body = await created.json()
                requests += 1
                if created.status != 201:
                    wrong += 1
                    continue
                code = body["code"]
                steps: list[tuple[str, str | None]] = [("get", url)]
                if i % 3 == 1:
                    steps = [("patch", url + "/v2")]
                elif i % 3 == 2:
                    steps = [("delete", None)]
                for verb, expect in steps:
                    if verb == "patch":
                        async with http.patch(f"{base}/api/v1/links/{code}", json={"url": expect}, headers=auth) as r:
                            requests += 1
                            if r.status != 200:
                                wrong += 1
                                continue
                    elif verb == "delete":
                        async with http.delete(f"{base}/api/v1/links/{code}", headers=auth) as r:
                            requests += 1
                            if r.status not in (200, 204):
                                wrong += 1
                                continue
                    async with http.get(f"{base}/{code}", allow_redirects=False, headers=HEADERS) as r:
                        requests += 1
                        location = r.headers.get("Location")
                        good = (r.status in (301, 302) and location == expect) if expect else r.status in (404, 410)
                        wrong += 0 if good else 1
        return FaultOutcome(
            time.monotonic(),
            [f"{wrong} of {count} writes not read back at once"],
            requests=requests,
            failed=wrong,
            ok=wrong == 0,
        )

    return fault


def self_reference() -> Fault:
    """A link to the shortener itself must be refused (422 url_self_reference)."""

    async def fault(ctx: FaultContext) -> FaultOutcome:
        base = ctx.stack.public_url
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as http:
            async with http.post(
                f"{base}/api/v1/links",
                json={"url": f"{base}/abc"},
                headers={"Authorization": f"Bearer {ctx.stack.api_key}"},
            ) as r:
                status, body = r.status, await r.text()
        refused = status == 422 and "url_self_reference" in body
        return FaultOutcome(
            time.monotonic(), [f"a link to {base}/abc: {status}"], requests=1, failed=0 if refused else 1, ok=refused
        )

    return fault


# A redirect replica hands clicks to Kafka every REDIRECT_CLICK_FLUSH_INTERVAL_SECONDS (0.1 s)
# and the producer's round trip (at full rate its REDIRECT_CLICK_FLUSH_MIN_CLICKS floor is met
# in the first interval; under light traffic it waits up to REDIRECT_CLICK_FLUSH_MAX_SECONDS);
# SIGKILLed, it loses at most what it answered in that time. Measured: 68 clicks at 844
# redirects/s, 96 at 768/s (0.08-0.13 s); the bound allows for a slow, shared machine.
REDIRECT_KILL_LOSS_BOUND_S = 0.5

SCENARIOS: list[Scenario] = [
    Scenario(
        "kill redirect replica at full rate",
        "SIGKILL redirect-1 while it serves as fast as it can "
        "(direct, closed loop): clicks answered but still in its buffer",
        kill("redirect-1", probe="redirect-1"),
        redirect_rate=None,
        concurrency=48,
        target="redirect-1",
        redirects_may_fail=True,
        loss_bound_s=REDIRECT_KILL_LOSS_BOUND_S,
        write_rate=0,
        ci=True,
    ),
    Scenario(
        "kill redirect replica behind nginx",
        "SIGKILL redirect-2 under load through nginx",
        kill("redirect-2", probe="redirect-2"),
        loss_bound_s=REDIRECT_KILL_LOSS_BOUND_S,
    ),
    Scenario(
        "redirect replica frozen past nginx's timeout",
        "redirect-2 SIGSTOPped past nginx's redirect read timeout under load through nginx: "
        "the requests nginx re-sent elsewhere are counted once",
        frozen_past_read_timeout("redirect-2"),
        request_timeout_s=30.0,
        after_s=5,
        ci=True,
    ),
    Scenario("kill aggregator worker", "SIGKILL aggregator-2 under load", kill("aggregator-2", probe="aggregator-2")),
    Scenario(
        "kill shorten",
        "SIGKILL shorten-1 under load and link updates",
        kill("shorten-1", probe="shorten-1"),
        write_rate=20,
        writes_may_fail=True,
    ),
    Scenario("kill relay", "SIGKILL the outbox relay under link updates", kill("shorten-relay"), write_rate=20),
    Scenario("kill analytics", "SIGKILL analytics under load", kill("analytics", probe="analytics")),
    Scenario("restart kafka", "Kafka restarted under load and link updates", restart("kafka"), after_s=8),
    Scenario(
        "redis sentinel failover",
        "SIGKILL the Redis primary (kept down 10 s) under load and link updates",
        redis_failover(10),
        write_rate=10,
        after_s=8,
        redirects_may_fail=True,
        cleanup=fail_back,
        ci=True,
    ),
    Scenario(
        "postgres down 30 s",
        "PostgreSQL stopped 30 s under load and link updates",
        stop_for("postgres", 30),
        after_s=8,
        ci=True,
    ),
    Scenario("clickhouse down 60 s", "ClickHouse stopped 60 s under load", clickhouse_down(60), ci=True),
    Scenario(
        "redis primary down, no sentinel",
        "Redis primary and all Sentinels stopped 60 s (issue 9 item 2)",
        redis_down_without_sentinel(60),
        redirects_may_fail=True,
        after_s=8,
    ),
    Scenario(
        "read your writes",
        "500 creates (and PATCH, DELETE) each read back at once (issue 9 item 1)",
        read_your_writes(500),
        redirect_rate=20,
        write_rate=0,
    ),
    Scenario(
        "self reference",
        "a link to the shortener itself (issue 9 item 5)",
        self_reference(),
        redirect_rate=10,
        write_rate=0,
        before_s=0.5,
        after_s=0.5,
    ),
]


def by_name(names: list[str], catalogue: list[Scenario] | None = None) -> list[Scenario]:
    known = {s.name: s for s in (SCENARIOS if catalogue is None else catalogue)}
    missing = [n for n in names if n not in known]
    if missing:
        raise KeyError(f"unknown scenarios {missing}; known: {list(known)}")
    return [known[n] for n in names]
