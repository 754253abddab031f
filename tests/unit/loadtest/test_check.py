"""The click-count check: exact per code, bounded by indeterminate requests, polled to a deadline."""

from collections.abc import Mapping, Sequence

import pytest

from loadtest.check import CountCheck, await_counts, evaluate
from loadtest.tally import CodeOutcome

pytestmark = pytest.mark.unit


def outcomes(**spec: tuple[int, int, int]) -> dict[str, CodeOutcome]:
    """code=(ok, no_click, attempts)"""
    return {code: CodeOutcome(ok=o, no_click=n, attempts=a) for code, (o, n, a) in spec.items()}


def test_exact_counts_pass() -> None:
    check = evaluate(outcomes(a=(5, 0, 5), b=(2, 1, 3)), {"a": 5, "b": 2})
    assert check.passed
    assert (check.served, check.counted, check.codes, check.indeterminate) == (7, 7, 2, 0)


@pytest.mark.parametrize(
    "counted",
    [
        {"a": 4, "b": 2},  # a click lost
        {"a": 6, "b": 2},  # a click counted twice
        {"a": 5, "b": 3},  # a 404 counted as a click
        {"a": 5},  # analytics does not know b yet
        {"a": 5, "b": None},
    ],
)
def test_any_difference_fails_and_names_the_code(counted: Mapping[str, int | None]) -> None:
    check = evaluate(outcomes(a=(5, 0, 5), b=(2, 1, 3)), counted)
    assert not check.passed
    assert len(check.mismatches) == 1
    assert check.to_json()["mismatched_codes"] == 1


def test_the_sum_alone_is_not_enough() -> None:
    """One code over, another under: the totals agree but the check fails."""
    check = evaluate(outcomes(a=(5, 0, 5), b=(2, 0, 2)), {"a": 6, "b": 1})
    assert check.counted == check.served == 7
    assert not check.passed and len(check.mismatches) == 2


def test_indeterminate_requests_widen_the_bound_and_nothing_else() -> None:
    spec = outcomes(a=(5, 0, 7))  # two requests of unknown outcome (timeouts)
    assert evaluate(spec, {"a": 5}).passed
    assert evaluate(spec, {"a": 7}).passed
    assert not evaluate(spec, {"a": 4}).passed
    assert not evaluate(spec, {"a": 8}).passed


def test_nothing_served_is_a_failure_not_a_vacuous_pass() -> None:
    check = evaluate(outcomes(a=(0, 3, 3)), {"a": 0})
    assert not check.passed and "no redirect" in check.reason


class FakeAnalytics:
    """Analytics counts that change over successive polls, on a fake clock."""

    def __init__(self, snapshots: list[dict[str, int | None]]) -> None:
        self.snapshots = snapshots
        self.polls = 0
        self.now = 0.0
        self.asked: list[list[str]] = []

    async def __call__(self, codes: Sequence[str]) -> Mapping[str, int | None]:
        snapshot = self.snapshots[min(self.polls, len(self.snapshots) - 1)]
        self.polls += 1
        self.asked.append(list(codes))
        return {code: snapshot.get(code) for code in codes}

    async def sleep(self, seconds: float) -> None:
        self.now += seconds

    def clock(self) -> float:
        return self.now


async def _run(fake: FakeAnalytics, spec: dict[str, CodeOutcome], timeout: float = 30.0) -> CountCheck:
    return await await_counts(
        spec, fake, timeout=timeout, interval=1.0, confirm=3.0, clock=fake.clock, sleep=fake.sleep
    )


async def test_waits_for_the_pipeline_to_drain_then_confirms() -> None:
    fake = FakeAnalytics([{"a": None}, {"a": 2}, {"a": 4}, {"a": 5}, {"a": 5}])
    check = await _run(fake, outcomes(a=(5, 0, 5)))
    assert check.passed
    assert fake.polls == 5  # None, 2, 4, 5 (match), 5 (confirmed after the pause)
    assert check.polls == 5 and check.waited_seconds == pytest.approx(6.0)


async def test_a_late_double_count_after_a_match_fails() -> None:
    fake = FakeAnalytics([{"a": 5}, {"a": 6}])
    check = await _run(fake, outcomes(a=(5, 0, 5)))
    assert not check.passed and check.overcounted
    assert fake.polls == 2


async def test_an_overcount_fails_at_once() -> None:
    fake = FakeAnalytics([{"a": 9}, {"a": 5}])
    check = await _run(fake, outcomes(a=(5, 0, 5)))
    assert not check.passed and fake.polls == 1


async def test_an_undercount_times_out_with_the_reason() -> None:
    fake = FakeAnalytics([{"a": 3}])
    check = await _run(fake, outcomes(a=(5, 0, 5)), timeout=10.0)
    assert not check.passed
    assert check.reason.startswith("timed out after 10s")
    assert check.mismatches[0].counted == 3 and check.mismatches[0].served == 5
    assert 10 <= fake.polls <= 12


async def test_only_unsettled_codes_are_fetched_again_and_the_confirmation_fetches_all() -> None:
    fake = FakeAnalytics([{"a": 5, "b": 0}, {"a": 5, "b": 1}, {"a": 5, "b": 2}, {"a": 5, "b": 2}])
    check = await _run(fake, outcomes(a=(5, 0, 5), b=(2, 0, 2)))
    assert check.passed
    assert fake.asked == [["a", "b"], ["b"], ["b"], ["a", "b"]]


async def test_a_settled_code_that_grows_later_is_caught_by_the_confirmation() -> None:
    fake = FakeAnalytics([{"a": 5, "b": 1}, {"a": 5, "b": 2}, {"a": 6, "b": 2}])
    check = await _run(fake, outcomes(a=(5, 0, 5), b=(2, 0, 2)))
    assert not check.passed and check.overcounted
    assert fake.asked == [["a", "b"], ["b"], ["a", "b"]]
