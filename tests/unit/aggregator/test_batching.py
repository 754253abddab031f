"""The dynamic flush rule: light traffic flushes fast, lag grows batches, never more than 1 s."""

import pytest
from aggregator.domain.batching import FlushPolicy, FlushTarget, first_of_each_id
from aggregator.domain.click_records import ClickRow
from aggregator.service_layer.accumulator import Batcher, LagTracker
from aggregator.settings import AggregatorSettings
from pydantic import ValidationError

pytestmark = pytest.mark.unit

POLICY = FlushPolicy(batch_min=500, batch_max=20_000, flush_min_s=0.2, flush_max_s=1.0, lag_low=1_000, lag_high=50_000)
DEFAULTS = FlushPolicy(
    batch_min=500, batch_max=50_000, flush_min_s=1.0, flush_max_s=5.0, lag_low=1_000, lag_high=50_000
)


def test_light_traffic_flushes_small_batches_quickly() -> None:
    target = POLICY.target(0)
    assert (target.max_events, target.max_wait_s) == (500, 0.2)
    assert POLICY.target(1_000) == target


def test_lag_grows_batch_and_interval_up_to_the_caps() -> None:
    middle = POLICY.target(25_500)
    assert middle.max_events == 10_250 and middle.max_wait_s == pytest.approx(0.6)
    assert POLICY.target(50_000).max_events == 20_000
    assert POLICY.target(10**9).max_wait_s == 1.0


@pytest.mark.parametrize("lag", [0, 1, 999, 1_001, 10_000, 49_999, 50_000, 10**7])
def test_interval_is_bounded_and_monotonic(lag: int) -> None:
    assert POLICY.flush_min_s <= POLICY.target(lag).max_wait_s <= 1.0
    assert DEFAULTS.flush_min_s <= DEFAULTS.target(lag).max_wait_s <= DEFAULTS.flush_max_s
    for policy in (POLICY, DEFAULTS):
        assert policy.target(lag + 1).max_events >= policy.target(lag).max_events
        assert policy.target(lag + 1).max_wait_s >= policy.target(lag).max_wait_s


def test_default_settings_flush_light_traffic_within_a_second_and_backlogs_in_big_batches() -> None:
    settings = AggregatorSettings()
    policy = FlushPolicy(
        batch_min=settings.aggregator_batch_min,
        batch_max=settings.aggregator_batch_max,
        flush_min_s=settings.aggregator_flush_min_s,
        flush_max_s=settings.aggregator_flush_max_s,
        lag_low=settings.aggregator_lag_low,
        lag_high=settings.aggregator_lag_high,
    )
    assert policy == DEFAULTS
    assert policy.target(0).max_wait_s <= 1.0 and policy.target(settings.aggregator_lag_low).max_wait_s <= 1.0
    assert policy.target(10**6) == FlushTarget(max_events=50_000, max_wait_s=5.0)


def test_should_flush_on_size_or_age() -> None:
    assert not POLICY.should_flush(buffered=0, oldest_age_s=10, lag=0)
    assert POLICY.should_flush(buffered=500, oldest_age_s=0, lag=0)
    assert not POLICY.should_flush(buffered=499, oldest_age_s=0.1, lag=0)
    assert POLICY.should_flush(buffered=1, oldest_age_s=0.2, lag=0)
    assert not POLICY.should_flush(buffered=5_000, oldest_age_s=0.5, lag=50_000)
    assert POLICY.should_flush(buffered=20_000, oldest_age_s=0.0, lag=50_000)


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_batcher_flushes_light_traffic_at_the_minimum_interval_and_waits_longer_while_behind() -> None:
    clock = Clock()
    batcher: Batcher[int] = Batcher(POLICY, clock)
    assert not batcher.due(lag=0)  # nothing buffered
    batcher.add([1, 2])
    # Caught up is no reason to flush sooner: each flush costs ClickHouse parts whatever its size.
    assert not batcher.due(lag=0)
    clock.now += POLICY.flush_min_s
    assert batcher.due(lag=0)
    assert not batcher.due(lag=30_000)  # behind: collect more
    clock.now += 0.3
    assert not batcher.due(lag=30_000)
    clock.now += 0.3  # 0.8 s >= the interval at this lag (~0.68 s)
    assert batcher.due(lag=30_000)
    assert batcher.drain() == [1, 2] and len(batcher) == 0 and batcher.oldest_age() == 0.0


def test_batcher_age_starts_with_the_first_buffered_event() -> None:
    clock = Clock()
    batcher: Batcher[int] = Batcher(POLICY, clock)
    batcher.add([])
    clock.now += 5
    batcher.add([1])
    assert batcher.oldest_age() == 0.0
    clock.now += 0.1
    batcher.add([2])
    assert batcher.oldest_age() == pytest.approx(0.1)


def test_a_ticks_age_counts_from_when_the_tick_began() -> None:
    """faust's take(within=) hands over a tick at the end of its own interval: a click that arrived
    early in the tick is already ~one interval old then. Counting its age from the hand-over
    flushed it one tick later while records kept arriving (lag > 0): two ticks, ~2 s, on a live
    stats page."""
    clock = Clock()
    batcher: Batcher[int] = Batcher(POLICY, clock)
    tick_began = clock.now
    clock.now += POLICY.flush_min_s  # the tick's interval passes, then faust hands it over
    batcher.add([1], arrived_since=tick_began)
    assert batcher.oldest_age() == pytest.approx(POLICY.flush_min_s)
    assert batcher.due(lag=1)  # still a record behind, but the tick's clicks are due now
    batcher.add([2], arrived_since=clock.now - 60)  # later ticks do not move the oldest age
    assert batcher.oldest_age() == pytest.approx(POLICY.flush_min_s)
    batcher.drain()
    batcher.add([3], arrived_since=clock.now + 5)  # a clock from the future is taken as now
    assert batcher.oldest_age() == 0.0


def test_while_the_stream_holds_more_only_the_size_rule_flushes() -> None:
    """After a long flush (a sink retrying) the next ticks are old and full: flushing each as it
    comes would write one tick per flush and never catch up (the ClickHouse-outage chaos scenario
    saw PostgreSQL's totals fall 18 s behind that way). While ticks come full, collect, for at most
    the interval counted from the first tick collected."""
    clock = Clock()
    batcher: Batcher[int] = Batcher(POLICY, clock)
    batcher.add([1], weight=100, arrived_since=clock.now - 5)
    assert batcher.due(lag=0)  # old enough
    assert not batcher.due(lag=0, more_waiting=True)  # ...but more is waiting: take it first
    clock.now += POLICY.flush_min_s
    assert batcher.due(lag=0, more_waiting=True)  # collected for the interval: a backlog still flushes
    batcher.drain()
    batcher.add([3], weight=100, arrived_since=clock.now - 5)
    batcher.add([4], weight=POLICY.target(0).max_events - 100)
    assert batcher.due(lag=0, more_waiting=True)  # the batch is full


def test_the_light_traffic_interval_is_the_groups_spread_over_its_workers() -> None:
    """A write costs ClickHouse parts on every shard and replica whatever its size: N workers each
    flushing every flush_min_s paid that N times per second for the same clicks (scale-out bench:
    196, 344, 384 inserts per 30,000 clicks at 1, 2, 3 hosts). Each worker's interval is the
    group's over its share of the partitions, so the group still writes ~once per flush_min_s."""
    assert DEFAULTS.light_interval_s() == DEFAULTS.flush_min_s == 1.0
    assert DEFAULTS.light_interval_s(1 / 3) == pytest.approx(3.0)
    assert DEFAULTS.light_interval_s(0.5) == pytest.approx(2.0)
    assert DEFAULTS.light_interval_s(1 / 12) == DEFAULTS.flush_max_s  # never past the backlog's interval
    assert DEFAULTS.light_interval_s(0.0) == DEFAULTS.flush_max_s  # owns nothing between rebalances
    assert DEFAULTS.light_interval_s(2.0) == DEFAULTS.flush_min_s
    # Behind, the interval still grows to flush_max_s, and the size rule is the worker's own.
    for share in (1.0, 0.5, 1 / 3):
        assert DEFAULTS.target(10**6, share=share) == FlushTarget(max_events=50_000, max_wait_s=5.0)
        assert DEFAULTS.target(0, share=share).max_events == DEFAULTS.batch_min
        assert DEFAULTS.target(25_000, share=share).max_wait_s >= DEFAULTS.target(0, share=share).max_wait_s


def test_a_worker_with_a_third_of_the_partitions_flushes_every_third_second() -> None:
    clock = Clock()
    batcher: Batcher[int] = Batcher(DEFAULTS, clock)
    batcher.add([1], arrived_since=clock.now)
    clock.now += DEFAULTS.flush_min_s
    assert batcher.due(lag=0)  # alone in the group
    assert not batcher.due(lag=0, share=1 / 3)
    clock.now += 2 * DEFAULTS.flush_min_s
    assert batcher.due(lag=0, share=1 / 3)
    batcher.drain()
    batcher.add([2], weight=DEFAULTS.batch_min)
    assert batcher.due(lag=0, share=1 / 3)  # a full batch goes at once whatever the share


@pytest.mark.parametrize(
    ("owned", "total", "shared", "share"),
    [
        (1, 3, True, 1 / 3),
        (2, 6, True, 1 / 3),
        (3, 3, True, 1.0),
        (0, 3, True, 0.0),
        (1, None, True, 1.0),
        (1, 0, True, 1.0),
        (1, 3, False, 1.0),
    ],
)
def test_partition_share(owned: int, total: int | None, shared: bool, share: float) -> None:
    from aggregator.bootstrap import partition_share

    assert partition_share(owned=owned, total=total, shared_by_group=shared) == pytest.approx(share)


def test_the_flush_interval_is_shared_by_the_group_by_default() -> None:
    assert AggregatorSettings().aggregator_flush_shared_by_group is True


def test_lag_tracker() -> None:
    lags = LagTracker()
    lags.set_highwater(0, 100)
    assert lags.lag(0) == 0  # nothing seen yet: unknown counts as caught up
    lags.seen(0, 9)
    lags.seen(0, 4)  # older offsets never move it back
    assert lags.lag(0) == 90
    lags.seen(1, 50)
    lags.set_highwater(1, 51)
    assert lags.total() == 90
    lags.keep_only({1})
    assert lags.total() == 0 and lags.lag(0) == 0


def test_an_unknown_high_watermark_keeps_the_last_known() -> None:
    """After a Kafka restart the consumer knows no high watermark until a fetch answers: the lag
    (and the /metrics and /readyz built on it) keeps its last value instead of failing."""
    lags = LagTracker()
    lags.seen(0, 9)
    lags.set_highwater(0, 20)
    lags.set_highwater(0, None)
    assert (lags.lag(0), lags.total()) == (10, 10)
    lags.set_highwater(1, None)
    assert lags.lag(1) == 0 and lags.total() == 10


def row(event_id: str) -> ClickRow:
    return ClickRow(
        event_id=event_id,
        code="c",
        occurred_at=0,
        visitor_key="v",
        referrer="",
        referrer_host="",
        country="ZZ",
        device="other",
        is_bot=0,
    )


def test_repeats_inside_a_batch_are_dropped_keeping_order() -> None:
    rows = [row("a"), row("b"), row("a"), row("c"), row("b")]
    assert [r.event_id for r in first_of_each_id(rows)] == ["a", "b", "c"]


@pytest.mark.parametrize(
    "env",
    [
        {"AGGREGATOR_FLUSH_MIN_S": "1.5", "AGGREGATOR_FLUSH_MAX_S": "2"},
        {"AGGREGATOR_FLUSH_MAX_S": "11"},
        {"AGGREGATOR_FLUSH_MIN_S": "0.5", "AGGREGATOR_FLUSH_MAX_S": "0.4"},
        {"AGGREGATOR_BATCH_MIN": "0"},
        {"AGGREGATOR_LEDGER_RETENTION_DAYS": "6"},
        {"AGGREGATOR_LAG_LOW": "10", "AGGREGATOR_LAG_HIGH": "10"},
    ],
)
def test_settings_refuse_rules_that_break_the_guarantees(monkeypatch: pytest.MonkeyPatch, env: dict[str, str]) -> None:
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    with pytest.raises(ValidationError):
        AggregatorSettings()


def test_default_settings_cover_the_replay_horizon() -> None:
    settings = AggregatorSettings()
    assert settings.ledger_retention_s >= 7 * 24 * 3600
    assert settings.aggregator_flush_min_s <= 1.0
