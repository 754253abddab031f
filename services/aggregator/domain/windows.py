"""Tumbling one-minute windows and per-link totals of newly counted clicks. Pure."""

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from aggregator.domain.clicks import ClickRow


@dataclass(frozen=True, kw_only=True)
class MinuteCount:
    """Clicks newly counted by the sinks (duplicates excluded) in one (code, minute) window."""

    code: str
    minute: datetime
    clicks: int
    bot_clicks: int


@dataclass(frozen=True, kw_only=True)
class CodeTotals:
    """What a batch adds to one link's lifetime totals (Unix seconds for the first/last click)."""

    code: str
    clicks: int
    bot_clicks: int
    first_s: int
    last_s: int


def merge_counts(rows: list[tuple[str, datetime, bool, int]]) -> list[MinuteCount]:
    """(code, minute, is_bot, n) rows -> one MinuteCount per (code, minute), sorted."""
    humans: dict[tuple[str, datetime], int] = defaultdict(int)
    bots: dict[tuple[str, datetime], int] = defaultdict(int)
    for code, minute, is_bot, n in rows:
        (bots if is_bot else humans)[(code, minute)] += n
    keys = sorted(set(humans) | set(bots))
    return [MinuteCount(code=c, minute=m, clicks=humans[(c, m)], bot_clicks=bots[(c, m)]) for c, m in keys]


def minute_counts(rows: Iterable["ClickRow"]) -> list[MinuteCount]:
    """Sink rows -> one MinuteCount per (code, minute), sorted."""
    counts: dict[tuple[str, int], list[int]] = {}
    for row in rows:
        key = (row.code, row.occurred_at - row.occurred_at % 60)
        pair = counts.get(key)
        if pair is None:
            pair = counts[key] = [0, 0]
        pair[row.is_bot] += 1
    return [MinuteCount(code=c, minute=datetime.fromtimestamp(m, UTC), clicks=h, bot_clicks=b)
            for (c, m), (h, b) in sorted(counts.items())]


def code_totals(rows: Iterable["ClickRow"]) -> list[CodeTotals]:
    """Sink rows -> what they add to each link's totals, sorted by code (the lock order)."""
    acc: dict[str, list[int]] = {}
    for row in rows:
        t = acc.get(row.code)
        at = row.occurred_at
        if t is None:
            acc[row.code] = t = [0, 0, at, at]
        t[row.is_bot] += 1
        if at < t[2]:
            t[2] = at
        elif at > t[3]:
            t[3] = at
    return [CodeTotals(code=c, clicks=h, bot_clicks=b, first_s=f, last_s=la)
            for c, (h, b, f, la) in sorted(acc.items())]
