"""Tumbling one-minute windows per link. Pure bucketing of newly counted clicks."""

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True, kw_only=True)
class MinuteCount:
    """Clicks newly counted by the sinks (duplicates excluded) in one (code, minute) window."""

    code: str
    minute: datetime
    clicks: int
    bot_clicks: int


def merge_counts(rows: list[tuple[str, datetime, bool, int]]) -> list[MinuteCount]:
    """(code, minute, is_bot, n) rows -> one MinuteCount per (code, minute), sorted."""
    humans: dict[tuple[str, datetime], int] = defaultdict(int)
    bots: dict[tuple[str, datetime], int] = defaultdict(int)
    for code, minute, is_bot, n in rows:
        (bots if is_bot else humans)[(code, minute)] += n
    keys = sorted(set(humans) | set(bots))
    return [MinuteCount(code=c, minute=m, clicks=humans[(c, m)], bot_clicks=bots[(c, m)]) for c, m in keys]
