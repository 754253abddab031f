"""The run's correctness check: clicks counted by analytics == redirects served, per code.

Pure: the polling loop takes the fetch function and the clock as arguments.

For each code the generator requested, with `ok` redirects served (301/302) and `indeterminate`
requests whose fate the client cannot know (see tally.py), analytics must report
`ok <= clicks <= ok + indeterminate`; with no indeterminate request that is exact equality.
Counts only grow, so a code above its bound fails at once; a code below it is given until the
deadline (the pipeline drains asynchronously). A match is confirmed by one more poll after a
short pause, so a late double count is not missed.
"""

import asyncio
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from loadtest.tally import CodeOutcome

Fetch = Callable[[Sequence[str]], Awaitable[Mapping[str, int | None]]]


@dataclass(frozen=True)
class Mismatch:
    code: str
    counted: int | None
    served: int
    indeterminate: int


@dataclass(frozen=True)
class CountCheck:
    passed: bool
    reason: str
    codes: int
    served: int
    indeterminate: int
    counted: int
    mismatches: tuple[Mismatch, ...] = ()
    waited_seconds: float = 0.0
    polls: int = 0

    @property
    def overcounted(self) -> bool:
        return any(m.counted is not None and m.counted > m.served + m.indeterminate for m in self.mismatches)

    def to_json(self, *, max_mismatches: int = 20) -> dict[str, Any]:
        return {
            "passed": self.passed,
            "reason": self.reason,
            "codes": self.codes,
            "redirects_served": self.served,
            "indeterminate": self.indeterminate,
            "clicks_counted": self.counted,
            "mismatched_codes": len(self.mismatches),
            "mismatches": [
                {"code": m.code, "counted": m.counted, "served": m.served, "indeterminate": m.indeterminate}
                for m in self.mismatches[:max_mismatches]
            ],
            "waited_seconds": round(self.waited_seconds, 1),
            "polls": self.polls,
        }


def evaluate(outcomes: Mapping[str, CodeOutcome], counted: Mapping[str, int | None]) -> CountCheck:
    """Compare one snapshot of analytics counts with what the generator saw."""
    served = sum(o.ok for o in outcomes.values())
    indeterminate = sum(o.indeterminate for o in outcomes.values())
    total = sum(c for c in (counted.get(code) for code in outcomes) if c is not None)
    mismatches = tuple(
        Mismatch(code, counted.get(code), o.ok, o.indeterminate)
        for code, o in outcomes.items()
        if not _within(counted.get(code), o)
    )
    if served == 0:
        return CountCheck(False, "no redirect was served: nothing to check", len(outcomes), 0, indeterminate, total)
    if mismatches:
        reason = f"{len(mismatches)} of {len(outcomes)} codes differ: analytics {total} vs served {served}"
        if indeterminate:
            reason += f" (+ up to {indeterminate} indeterminate)"
        return CountCheck(False, reason, len(outcomes), served, indeterminate, total, mismatches)
    reason = f"analytics counted {total} clicks for {served} redirects served over {len(outcomes)} codes"
    if indeterminate:
        reason += f" ({indeterminate} requests of unknown outcome allowed for, {total - served} of them counted)"
    return CountCheck(True, reason, len(outcomes), served, indeterminate, total)


def _within(counted: int | None, outcome: CodeOutcome) -> bool:
    return counted is not None and outcome.ok <= counted <= outcome.ok + outcome.indeterminate


async def await_counts(
    outcomes: Mapping[str, CodeOutcome],
    fetch: Fetch,
    *,
    timeout: float,
    interval: float = 2.0,
    confirm: float = 3.0,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    on_poll: Callable[[CountCheck, float], None] | None = None,
) -> CountCheck:
    """Poll analytics until the counts match (and still match `confirm` seconds later), a code
    is over-counted, or `timeout` passes. Returns the last evaluation.

    While waiting, only the codes that do not match yet are fetched again (cheap on a busy
    stack); the confirming poll fetches every code.
    """
    start = clock()
    polls = 0
    latest: dict[str, int | None] = {}
    pending = list(outcomes)
    confirmed_total: int | None = None
    while True:
        latest.update(await fetch(pending))
        polls += 1
        check = evaluate(outcomes, latest)
        waited = clock() - start
        if on_poll is not None:
            on_poll(check, waited)
        if check.served == 0 or check.overcounted:
            return _with_time(check, waited, polls)
        if check.passed and confirmed_total == check.counted:
            return _with_time(check, waited, polls)
        if waited >= timeout:
            if check.passed:  # matched on the very last poll: no time left to confirm
                return _with_time(check, waited, polls)
            return _with_time(replace(check, reason=f"timed out after {timeout:.0f}s: {check.reason}"), waited, polls)
        if check.passed:
            confirmed_total, pending = check.counted, list(outcomes)
            await sleep(confirm)
        else:
            confirmed_total, pending = None, [m.code for m in check.mismatches]
            await sleep(interval)


def _with_time(check: CountCheck, waited: float, polls: int) -> CountCheck:
    return replace(check, waited_seconds=waited, polls=polls)
