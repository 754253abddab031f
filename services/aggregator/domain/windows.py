"""Per-batch tallies of newly counted clicks per link, for the lifetime totals. Pure. A long tail
of links makes these tallies nearly as many as the clicks, so they are plain lists and ints,
built in one pass, never sorted here (PostgreSQL orders the totals by code itself, which is the
lock order)."""

from collections.abc import Iterable
from typing import TYPE_CHECKING, NamedTuple

if TYPE_CHECKING:
    from aggregator.domain.click_records import ClickRow


class TotalsColumns(NamedTuple):
    """What a batch adds to the lifetime totals, one column per list (as the SQL takes them)."""

    codes: list[str]
    clicks: list[int]
    bot_clicks: list[int]
    first_s: list[int]
    last_s: list[int]


def code_totals(rows: Iterable["ClickRow"]) -> TotalsColumns:
    """Sink rows -> what they add to each link's totals (clicks, bot clicks, first and last)."""
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
    columns = TotalsColumns(list(acc), [], [], [], [])
    for clicks, bots, first, last in acc.values():
        columns.clicks.append(clicks)
        columns.bot_clicks.append(bots)
        columns.first_s.append(first)
        columns.last_s.append(last)
    return columns
