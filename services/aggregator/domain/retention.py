"""What the retention job removes. Pure: the adapters list partitions, this decides."""

import re
from datetime import date, datetime, timedelta

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


# Days of record-ledger partitions created ahead of today by every run of the (daily) job: a week
# of missed runs before a day has no partition (its rows then wait, counted once, in the ledger's
# DEFAULT partition until the day is created).
LEDGER_DAYS_AHEAD = 7
LEDGER_PARTITION_RE = re.compile(r"record_ledger_p(\d{8})")


def ledger_partition_name(day: date) -> str:
    """The partition clicks.create_record_ledger_day creates for a UTC day."""
    return f"record_ledger_p{day:%Y%m%d}"


def ledger_days_to_create(now: datetime, *, ahead: int = LEDGER_DAYS_AHEAD) -> list[date]:
    """The UTC days whose ledger partitions must exist: today and `ahead` days after it (the
    creation is idempotent; the adapter skips the days that exist)."""
    today = now.date()
    return [today + timedelta(days=n) for n in range(ahead + 1)]


def ledger_partitions_to_drop(partitions: list[str], *, cutoff: datetime) -> list[str]:
    """Daily ledger partitions (record_ledger_pYYYYMMDD) whose whole day ended at or before the
    cutoff: every record in them has its newest click older than the dedup horizon, so a copy of
    it would be refused before the ledger anyway. Sorted; other names (the DEFAULT) are kept."""
    doomed = []
    for name in partitions:
        found = LEDGER_PARTITION_RE.fullmatch(name)
        if found is None:
            continue
        day = datetime.strptime(found.group(1), "%Y%m%d").replace(tzinfo=cutoff.tzinfo)
        if day + timedelta(days=1) <= cutoff:
            doomed.append(name)
    return sorted(doomed)


def seconds_until_next_run(schedule: str, now: datetime) -> float:
    """Seconds from `now` (aware, UTC) to the next time the cron `schedule` names (> 0)."""
    following: datetime = croniter(schedule, now).get_next(datetime)
    return max((following - now).total_seconds(), 0.001)
