"""platformkit.retry: the one retry policy (tenacity) every service uses. No test sleeps: the
policy's `sleep` records the delays and returns at once."""

import asyncio
import logging

import pytest
from platformkit.retry import RetryPolicy, RetrySchedule, made_progress
from prometheus_client import CollectorRegistry, Counter

pytestmark = pytest.mark.unit


class Unavailable(Exception):
    pass


class Sleeps:
    def __init__(self) -> None:
        self.calls: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.calls.append(seconds)


class Flaky:
    """Fails `failures` times with `error`, then answers."""

    def __init__(self, failures: int, error: BaseException | None = None) -> None:
        self.failures = failures
        self.error = error or Unavailable("away")
        self.calls = 0

    async def __call__(self) -> str:
        self.calls += 1
        if self.calls <= self.failures:
            raise self.error
        return "done"


def policy(sleeps: Sleeps, **kwargs: object) -> RetryPolicy:
    options: dict[str, object] = {"what": "test write", "initial_s": 0.1, "max_s": 0.4, "sleep": sleeps, **kwargs}
    return RetryPolicy(**options)  # type: ignore[arg-type]


async def test_the_listed_errors_are_retried_with_doubling_capped_delays() -> None:
    sleeps, flaky = Sleeps(), Flaky(4)
    assert await policy(sleeps, retry_on=(Unavailable,)).call(flaky) == "done"
    assert flaky.calls == 5 and sleeps.calls == [0.1, 0.2, 0.4, 0.4]


async def test_other_errors_are_raised_at_once() -> None:
    sleeps, flaky, retried = Sleeps(), Flaky(1, KeyError("bug")), []
    with pytest.raises(KeyError):
        await policy(sleeps, retry_on=(Unavailable,), on_retry=lambda: retried.append(1)).call(flaky)
    assert flaky.calls == 1 and sleeps.calls == [] and retried == []


async def test_after_its_attempts_the_policy_gives_up_with_the_last_failure_itself() -> None:
    sleeps, flaky = Sleeps(), Flaky(10)
    with pytest.raises(Unavailable, match="away"):
        await policy(sleeps, max_attempts=3).call(flaky)
    assert flaky.calls == 3 and sleeps.calls == [0.1, 0.2]


async def test_cancellation_is_never_retried() -> None:
    sleeps, flaky = Sleeps(), Flaky(1, asyncio.CancelledError())
    with pytest.raises(asyncio.CancelledError):
        await policy(sleeps).call(flaky)
    assert flaky.calls == 1 and sleeps.calls == []
    with pytest.raises(ValueError, match="cancellation"):
        policy(sleeps, retry_on=(BaseException,))


async def test_each_retried_failure_increments_the_counter_and_logs_one_line(caplog: pytest.LogCaptureFixture) -> None:
    registry = CollectorRegistry()
    retries = Counter("test_retries", "retried failures", registry=registry)
    with caplog.at_level(logging.WARNING, logger="platformkit.retry"):
        await policy(Sleeps(), on_retry=retries.inc).call(Flaky(2))
    assert registry.get_sample_value("test_retries_total") == 2
    lines = [r for r in caplog.records if r.name == "platformkit.retry"]
    assert [(r.retry_of, r.attempt, r.retry_in_s) for r in lines] == [("test write", 1, 0.1), ("test write", 2, 0.2)]  # type: ignore[attr-defined]
    assert "test write failed (attempt 1), retrying in 0.1s: Unavailable('away')" in lines[0].getMessage()


async def test_jitter_adds_at_most_jitter_s_and_never_passes_the_cap() -> None:
    sleeps = Sleeps()
    await policy(sleeps, jitter_s=0.05).call(Flaky(5))
    for delay, plain in zip(sleeps.calls, [0.1, 0.2, 0.4, 0.4, 0.4], strict=True):
        assert plain <= delay <= min(plain + 0.05, 0.4)


async def test_a_session_that_made_progress_backs_off_from_the_start_again() -> None:
    sleeps, events = Sleeps(), ["fail", "fail", "progress", "fail", "progress", "stop"]

    async def session() -> None:
        async for attempt in policy(sleeps, max_attempts=3).attempts():
            with attempt:
                while True:
                    event = events.pop(0)
                    if event == "fail":
                        raise Unavailable("reader failed")
                    if event == "stop":
                        return
                    made_progress(attempt)

    await session()
    # two failures, then progress: the next failure waits the first delay again, and the three
    # attempts are counted from there (three failures in all did not exhaust them)
    assert sleeps.calls == [0.1, 0.2, 0.1]


def test_a_schedule_gives_the_policys_delays_to_a_caller_that_tries_again_later() -> None:
    retried: list[int] = []
    schedule = RetrySchedule(policy(Sleeps(), max_s=0.3, on_retry=lambda: retried.append(1)))
    assert [schedule.failed(Unavailable("x")) for _ in range(4)] == [0.1, 0.2, 0.3, 0.3]
    schedule.succeeded()
    assert schedule.failed() == 0.1 and len(retried) == 5
