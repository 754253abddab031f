"""What the retention job removes. Pure: the adapters list partitions, this decides."""

from datetime import datetime, timedelta

from croniter import croniter


def month_index(year: int, month: int) -> int:
    return year * 12 + (month - 1)


def oldest_kept_month(now: datetime, keep_months: int) -> int:
    """YYYYMM of the oldest monthly partition to keep (the current month counts as one)."""
    if keep_months < 1:
        raise ValueError("keep_months must be >= 1")
    index = month_index(now.year, now.month) - (keep_months - 1)
    return (index // 12) * 100 + index % 12 + 1


def partitions_to_drop(partitions: list[str], *, now: datetime, keep_months: int) -> list[str]:
    """Monthly partition ids (toYYYYMM, e.g. "202401") older than the kept months, sorted."""
    limit = oldest_kept_month(now, keep_months)
    old = {p for p in partitions if p.isdigit() and len(p) == 6 and int(p) < limit}
    return sorted(old)


def ledger_cutoff(now: datetime, retention: timedelta) -> datetime:
    """Ledger rows for events that occurred before this instant may be pruned.

    The live stream and the replay tool refuse events older than the same horizon, so a
    pruned id can never come back and be counted twice.
    """
    return now - retention


def seconds_until_next_run(schedule: str, now: datetime) -> float:
    """Seconds from `now` (aware, UTC) to the next time the cron `schedule` names (> 0)."""
    following: datetime = croniter(schedule, now).get_next(datetime)
    return max((following - now).total_seconds(), 0.001)
