"""Which ClickHouse partitions and ledger rows the retention job removes."""

from datetime import UTC, date, datetime, timedelta

import pytest
from aggregator.domain.click_records import ClickRow
from aggregator.domain.retention import (
    ledger_cutoff,
    ledger_days_to_create,
    ledger_partition_name,
    ledger_partitions_to_drop,
    oldest_kept_month,
    partitions_to_drop,
    seconds_until_next_run,
)
from aggregator.domain.windows import code_totals
from aggregator.settings import AggregatorSettings
from pydantic import ValidationError

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


def test_ledger_partitions_are_created_a_week_ahead_in_utc_days() -> None:
    now = datetime(2026, 12, 30, 23, 59, tzinfo=UTC)
    days = ledger_days_to_create(now)
    assert days[0] == date(2026, 12, 30) and days[-1] == date(2027, 1, 6) and len(days) == 8
    assert ledger_partition_name(date(2027, 1, 6)) == "record_ledger_p20270106"


def test_a_ledger_day_is_dropped_only_once_all_of_it_is_past_the_horizon() -> None:
    cutoff = ledger_cutoff(datetime(2026, 11, 27, 12, tzinfo=UTC), timedelta(days=8))  # 11-19 12:00
    names = [
        "record_ledger_p20261117",
        "record_ledger_p20261118",  # ends 11-19 00:00 <= cutoff: gone
        "record_ledger_p20261119",  # half of it is still inside the horizon: kept
        "record_ledger_p20261127",
        "record_ledger_default",
        "record_ledger_p2026111",
    ]
    assert ledger_partitions_to_drop(names, cutoff=cutoff) == ["record_ledger_p20261117", "record_ledger_p20261118"]
    exactly = datetime(2026, 11, 19, tzinfo=UTC)
    assert ledger_partitions_to_drop(["record_ledger_p20261118"], cutoff=exactly) == ["record_ledger_p20261118"]
    assert ledger_partitions_to_drop(["record_ledger_p20261118"], cutoff=exactly - timedelta(seconds=1)) == []


def test_totals_merge_humans_and_bots_per_link() -> None:
    m1 = int(datetime(2026, 1, 1, 0, 1, tzinfo=UTC).timestamp())
    rows = [row("b", m1 + 5), row("a", m1 + 61, bot=1), row("b", m1 + 59), row("a", m1 + 70), row("a", m1 + 1)]
    totals = code_totals(rows)
    assert sorted(zip(*totals, strict=True)) == [("a", 2, 1, m1 + 1, m1 + 70), ("b", 2, 0, m1 + 5, m1 + 59)]


def row(code: str, at: int, *, bot: int = 0) -> ClickRow:
    return ClickRow(
        event_id="e",
        code=code,
        occurred_at=at,
        visitor_key="v",
        referrer="",
        referrer_host="",
        country="ZZ",
        device="other",
        is_bot=bot,
    )


@pytest.mark.parametrize(
    ("schedule", "now", "seconds"),
    [
        ("17 3 * * *", datetime(2026, 11, 27, 3, 0, tzinfo=UTC), 17 * 60),
        ("17 3 * * *", datetime(2026, 11, 27, 3, 17, tzinfo=UTC), 24 * 3600),  # just ran: tomorrow
        ("17 3 * * *", datetime(2026, 11, 27, 5, 0, tzinfo=UTC), 22 * 3600 + 17 * 60),
        ("0 0 1 * *", datetime(2026, 12, 31, 23, 0, tzinfo=UTC), 3600),  # across a year
        ("* * * * * */10", datetime(2026, 11, 27, 5, 0, 4, tzinfo=UTC), 6),  # 6th field: seconds
    ],
)
def test_the_next_scheduled_run(schedule: str, now: datetime, seconds: float) -> None:
    assert seconds_until_next_run(schedule, now) == seconds


def test_a_schedule_that_is_not_cron_is_refused_at_start(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AGGREGATOR_RETENTION_SCHEDULE", "every day at three")
    with pytest.raises(ValidationError, match="not a cron expression"):
        AggregatorSettings()
    monkeypatch.setenv("AGGREGATOR_RETENTION_SCHEDULE", "17 3 * * *")
    assert AggregatorSettings().aggregator_retention_schedule == "17 3 * * *"
