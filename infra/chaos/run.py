"""Run scenarios one after another on the running native stack and check the books of each:
every click served counted exactly once in both stores, every acknowledged link update served by
every replica, and how long clients saw the fault."""

import asyncio
import time
import uuid
from collections.abc import Callable, Sequence

import httpx

from chaos import traffic
from chaos.report import Row, balance
from chaos.scenarios import FaultContext, Scenario
from chaos.stack import Stack
from loadtest.analytics import AnalyticsClicks
from loadtest.check import await_counts
from loadtest.seed import create_codes, wait_until_served
from loadtest.tally import RedirectTally

# After the load stops: the pipeline drains and both stores agree (ClickHouse's share of an
# outage comes back through sink recovery, which takes journal entries older than 30 s).
COUNT_TIMEOUT_S = 150.0
LINK_TIMEOUT_S = 30.0


async def await_settled(
    codes: list[str], analytics: AnalyticsClicks, *, timeout: float, quiet_s: float = 8.0, interval: float = 2.0
) -> None:
    """Poll until both stores agree on every code and nothing changed for `quiet_s`, or `timeout`."""
    start = time.monotonic()
    last: tuple[int | None, ...] = ()
    changed = start
    while time.monotonic() - start < timeout:
        counts = tuple((await analytics(codes)).values())
        if counts != last:
            last, changed = counts, time.monotonic()
        elif None not in counts and time.monotonic() - changed >= quiet_s:
            return
        await asyncio.sleep(interval)


async def run_scenario(stack: Stack, scenario: Scenario, *, say: Callable[[str], None] = print) -> Row:
    run_id = f"{scenario.name.replace(' ', '-')}-{uuid.uuid4().hex[:8]}"
    api_key = stack.api_key
    tally = RedirectTally()
    say(f"[chaos] {scenario.name}: {scenario.what}")
    await stack.wait_all_ready()
    async with httpx.AsyncClient(base_url=stack.public_url, timeout=10) as http:
        codes = await create_codes(http, count=scenario.links, api_key=api_key, run_id=run_id, timeout=60)
        await wait_until_served(http, codes, tally, timeout=60)
        targets = {code: f"https://example.com/loadtest/{run_id}/{i}" for i, code in enumerate(codes)}
        if scenario.target == "public":
            base = stack.public_url
        else:
            base = stack.replica_urls[int(scenario.target.rsplit("-", 1)[1]) - 1]
            async with httpx.AsyncClient(base_url=base, timeout=10) as direct:
                await wait_until_served(direct, codes, tally, timeout=60)
        redirects = traffic.RedirectLoad(
            base, codes, tally, rate=scenario.redirect_rate, concurrency=scenario.concurrency
        )
        writes = traffic.WriteLoad(stack.public_url, api_key, targets, rate=scenario.write_rate, tag=run_id)
        async with traffic.session(timeout_s=scenario.request_timeout_s) as session:
            load = asyncio.gather(redirects.run(session), writes.run(session))
            try:
                await asyncio.sleep(scenario.before_s)
                fault_at = time.monotonic()
                outcome = await scenario.fault(FaultContext(stack, redirects, writes, run_id))
                await asyncio.sleep(scenario.after_s)
            finally:
                redirects.stop()
                writes.stop()
                await load
        say(
            f"[chaos] {scenario.name}: load stopped ({redirects.sent} redirects at "
            f"{redirects.achieved_rate:.0f}/s, {writes.sent} updates); checking the books"
        )
        stale = await traffic.stale_links(
            stack.replica_urls, writes.links, tally, timeout=LINK_TIMEOUT_S, local_hosts=stack.local_hosts
        )
        outcomes = tally.outcomes()
        analytics = AnalyticsClicks(http, api_key=api_key)
        if scenario.loss_bound_s > 0 or scenario.twice_bound_s > 0:  # counts may never match: wait until they settle
            await await_settled(list(outcomes), analytics, timeout=COUNT_TIMEOUT_S)
        else:
            await await_counts(outcomes, analytics, timeout=COUNT_TIMEOUT_S)
    if scenario.cleanup is not None:
        await scenario.cleanup(stack)
    pg = {code: counts.lifetime for code, counts in analytics.last.items()}
    ch = {code: counts.in_range for code, counts in analytics.last.items()}
    books = balance(outcomes, pg)
    ch_books = balance(outcomes, ch)
    last_failure = max((t for t in (redirects.failures.last_at, writes.failures.last_at) if t), default=fault_at)
    recover = max(outcome.ready_at, last_failure) - fault_at
    write_failures = dict(writes.failures.reasons)
    write_refusals_ok = set(write_failures) <= {"HTTP 503"} and writes.refusals_without_retry_after == 0
    redirect_failures = dict(redirects.failures.reasons)
    notes = [
        *outcome.notes,
        f"redirects {redirects.sent:,} at {redirects.achieved_rate:.0f}/s"
        + (f", failed: {redirect_failures}" if redirect_failures else ""),
    ]
    if writes.sent:
        failed_writes = f", refused/failed: {write_failures}" if write_failures else ""
        notes.append(f"link updates {writes.sent:,}{failed_writes}")
        if writes.refusals_without_retry_after:
            notes.append(f"{writes.refusals_without_retry_after} 503s without Retry-After")
    if stale:
        notes.append(f"link updates not served by every replica: {len(stale)} codes, e.g. {next(iter(stale.items()))}")
    if ch_books != books:
        notes.append(f"ClickHouse: counted {ch_books.counted:,}, lost {ch_books.lost:,}, twice {ch_books.twice:,}")
    passed = (
        outcome.ok
        and books.twice <= scenario.twice_bound_s * redirects.achieved_rate
        and ch_books == books
        and not stale
        and books.lost <= scenario.loss_bound_s * redirects.achieved_rate
        and (scenario.redirects_may_fail or redirects.failures.count == 0)
        and (scenario.writes_may_fail or write_refusals_ok)
    )
    row = Row(
        scenario=scenario.name,
        # Every redirect requested (the load's, and the setup's and the link check's, which are
        # tallied clicks too), every update, and the fault's own probing requests.
        requests=sum(o.attempts for o in outcomes.values()) + writes.sent + outcome.requests,
        failed=redirects.failures.count + writes.failures.count + outcome.failed,
        clicks=books,
        recover_seconds=recover,
        passed=passed,
        notes=tuple(notes),
        details={
            "redirect_failures": redirects.failures.count,
            "update_failures": writes.failures.count,
            "updates_acked": writes.acked,
            "redirect_rate": redirects.achieved_rate,
        },
    )
    say(f"[chaos] {scenario.name}: {'ok' if passed else 'FAILED'} | " + " | ".join(row.cells()[1:]))
    return row


async def run_all(stack: Stack, scenarios: Sequence[Scenario], *, say: Callable[[str], None] = print) -> list[Row]:
    rows = []
    for scenario in scenarios:
        rows.append(await run_scenario(stack, scenario, say=say))
    return rows
