"""Retrying, one way for every service: tenacity with one policy shape.

A `RetryPolicy` names what it retries (logs say which operation failed), which exceptions are
worth another attempt, the backoff (the first delay, doubling up to a cap, plus up to `jitter_s`
of random delay so processes that failed together do not retry in step) and when to give up
(`max_attempts`; None: never). Before each sleep it logs one line (JSON through the process's
logging setup, with the operation, attempt, delay and error as fields) and calls `on_retry`
(a service's retry counter, e.g. aggregator_sink_retries_total). Giving up re-raises the last
failure itself, never tenacity's RetryError; cancellation is never retried.

Two ways to use it:
- `await policy.call(operation)`: run an awaitable factory until it succeeds or the policy gives
  up (a batch's write, a claim);
- `async for attempt in policy.attempts(): with attempt: ...`: a long-running session (a Kafka
  reader, a sender loop) restarted after a failure; `made_progress(attempt)` inside the session
  makes the next failure back off from the first delay again (as if it were the first).
Both build a tenacity `AsyncRetrying` (a few objects): `call` only after a first failure,
`attempts` once per session; never per request. `RetrySchedule` gives the same delays to a caller
that does not wait in place but tries again at a later turn (the redirect's links projector
between fetches).

Tests pass `sleep` (records the delays, returns at once) and `jitter_s=0` (exact delays).
"""

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TypeVar

from tenacity import (
    AsyncRetrying,
    AttemptManager,
    RetryCallState,
    retry_if_exception_type,
    stop_after_attempt,
    stop_never,
    wait_exponential_jitter,
)
from tenacity.stop import stop_base
from tenacity.wait import wait_base

T = TypeVar("T")
_log = logging.getLogger(__name__)


def _never() -> None:
    return None


@dataclass(frozen=True, kw_only=True)
class RetryPolicy:
    what: str  # the operation, as logs name it ("ClickHouse write", "links reader")
    initial_s: float  # the first delay; each further one doubles, up to max_s
    max_s: float
    jitter_s: float = 0.0  # up to this much random delay added to each (still capped at max_s)
    max_attempts: int | None = None  # give up (re-raise) after this many failed attempts; None: never
    retry_on: tuple[type[BaseException], ...] = (Exception,)
    on_retry: Callable[[], None] = _never  # called once per failed attempt that is retried
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep
    log: logging.Logger = field(default=_log)
    level: int = logging.WARNING

    def __post_init__(self) -> None:
        if asyncio.CancelledError in self.retry_on or any(issubclass(asyncio.CancelledError, t) for t in self.retry_on):
            raise ValueError("cancellation is never retried: retry_on must not cover CancelledError")
        if self.max_attempts is not None and self.max_attempts < 1:
            raise ValueError(f"max_attempts must be at least 1 (or None), not {self.max_attempts}")

    def wait(self) -> wait_base:
        return wait_exponential_jitter(multiplier=self.initial_s, max=self.max_s, exp_base=2, jitter=self.jitter_s)

    def stop(self) -> stop_base:
        return stop_never if self.max_attempts is None else stop_after_attempt(self.max_attempts)

    def retrying(self) -> AsyncRetrying:
        """A fresh tenacity controller for one call or one session (they are not reentrant)."""
        return AsyncRetrying(
            sleep=self.sleep,
            stop=self.stop(),
            wait=self.wait(),
            retry=retry_if_exception_type(self.retry_on),
            before_sleep=self._before_sleep,
            reraise=True,
        )

    async def call(self, operation: Callable[[], Awaitable[T]]) -> T:
        """`await operation()` until it succeeds; the last failure once the policy gives up. The
        first attempt runs without tenacity (a call that succeeds costs one await); tenacity
        takes over from its failure, as attempt 1."""
        try:
            return await operation()
        except self.retry_on as exc:
            first: BaseException | None = exc
        async for attempt in self.retrying():
            with attempt:
                if first is not None:
                    failed, first = first, None
                    raise failed
                return await operation()
        raise AssertionError("tenacity ended without a result or an error")  # pragma: no cover

    def attempts(self) -> AsyncRetrying:
        """`async for attempt in policy.attempts(): with attempt: ...` (see the module docstring)."""
        return self.retrying()

    def _before_sleep(self, state: RetryCallState) -> None:
        exc = state.outcome.exception() if state.outcome is not None else None
        delay = state.next_action.sleep if state.next_action is not None else 0.0
        self.retried(state.attempt_number, delay, exc)

    def retried(self, attempt: int, delay: float, exc: BaseException | None) -> None:
        """One failed attempt that will be retried: one log line, one `on_retry`."""
        self.log.log(
            self.level,
            "%s failed (attempt %d), retrying in %.1fs: %r",
            self.what,
            attempt,
            delay,
            exc,
            extra={"retry_of": self.what, "attempt": attempt, "retry_in_s": round(delay, 3)},
        )
        self.on_retry()


def made_progress(attempt: AttemptManager) -> None:
    """Inside a session's attempt: it got somewhere, so its next failure is counted as a first
    failure (first delay, attempt 1, and `max_attempts` counted afresh)."""
    attempt.retry_state.attempt_number = 1


class RetrySchedule:
    """The policy's delays for a caller that tries again at a later turn instead of sleeping in
    place: `failed()` returns how long to wait before the next try, `succeeded()` starts over."""

    def __init__(self, policy: RetryPolicy) -> None:
        self._policy = policy
        self._wait = policy.wait()
        self._state = RetryCallState(retry_object=policy.retrying(), fn=None, args=(), kwargs={})
        self.failures = 0

    def failed(self, exc: BaseException | None = None) -> float:
        self.failures += 1
        self._state.attempt_number = self.failures
        delay = float(self._wait(self._state))
        self._policy.retried(self.failures, delay, exc)
        return delay

    def succeeded(self) -> None:
        self.failures = 0
