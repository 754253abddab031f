"""Which ClickHouse partitions and ledger rows the retention job removes."""

from datetime import UTC, datetime, timedelta

import pytest
from aggregator.domain.retention import ledger_cutoff, oldest_kept_month, partitions_to_drop
from aggregator.domain.windows import MinuteCount, merge_counts

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("now", "keep", "oldest"),
    [
        (datetime(2026, 11, 27, tzinfo=UTC), 1, 202611),
        (datetime(2026, 11, 27, tzinfo=UTC), 13, 202511),
        (datetime(2026, 1, 1, tzinfo=UTC), 2, 202512),
        (datetime(2026, 1, 1, tzinfo=UTC), 25, 202401),
    ],
)
def test_oldest_kept_month(now: datetime, keep: int, oldest: int) -> None:
    assert oldest_kept_month(now, keep) == oldest


def test_partitions_older_than_the_kept_months_are_dropped() -> None:
    now = datetime(2026, 11, 27, tzinfo=UTC)
    parts = ["202611", "202511", "202510", "202401", "tuple()", "20251", "202510"]
    assert partitions_to_drop(parts, now=now, keep_months=13) == ["202401", "202510"]
    assert partitions_to_drop(["202611"], now=now, keep_months=1) == []


def test_keep_months_must_be_positive() -> None:
    with pytest.raises(ValueError):
        oldest_kept_month(datetime(2026, 1, 1, tzinfo=UTC), 0)


def test_ledger_cutoff_is_the_horizon() -> None:
    now = datetime(2026, 11, 27, 12, tzinfo=UTC)
    assert ledger_cutoff(now, timedelta(days=8)) == datetime(2026, 11, 19, 12, tzinfo=UTC)


def test_minute_counts_merge_humans_and_bots_per_window() -> None:
    m1, m2 = datetime(2026, 1, 1, 0, 1, tzinfo=UTC), datetime(2026, 1, 1, 0, 2, tzinfo=UTC)
    merged = merge_counts([("b", m1, False, 2), ("a", m2, True, 1), ("a", m2, False, 3), ("a", m1, False, 1)])
    assert merged == [
        MinuteCount(code="a", minute=m1, clicks=1, bot_clicks=0),
        MinuteCount(code="a", minute=m2, clicks=3, bot_clicks=1),
        MinuteCount(code="b", minute=m1, clicks=2, bot_clicks=0),
    ]

