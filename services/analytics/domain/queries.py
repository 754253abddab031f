"""Parse and check the query parameters of the two endpoints. Pure: `now` is passed in.

Ranges are half-open [from, to), aligned to the interval (from rounded down, to rounded up)
and capped so a response never has more than ~1500 points: minute -> at most 24 h, hour -> at
most 31 days, day -> at most 366 days (plus the one bucket alignment may add).
"""

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal

from analytics.domain.errors import InvalidParameter

Interval = Literal["minute", "hour", "day"]
Window = Literal["1h", "24h", "7d"]

CODE_RE = re.compile(r"[A-Za-z0-9_-]{1,64}")
INTERVALS: dict[str, Interval] = {"minute": "minute", "hour": "hour", "day": "day"}
WINDOW_NAMES: dict[str, Window] = {"1h": "1h", "24h": "24h", "7d": "7d"}
STEP: dict[Interval, int] = {"minute": 60, "hour": 3600, "day": 86400}
MAX_RANGE: dict[Interval, timedelta] = {
    "minute": timedelta(hours=24), "hour": timedelta(days=31), "day": timedelta(days=366),
}
# Without `from`: the last hour of minutes, the last day of hours, the last 30 days of days.
DEFAULT_RANGE: dict[Interval, timedelta] = {
    "minute": timedelta(hours=1), "hour": timedelta(hours=24), "day": timedelta(days=30),
}
WINDOWS: dict[Window, timedelta] = {"1h": timedelta(hours=1), "24h": timedelta(hours=24), "7d": timedelta(days=7)}
TOP_LIMIT_DEFAULT, TOP_LIMIT_MAX = 10, 100
EARLIEST = datetime(2000, 1, 1, tzinfo=UTC)
# ClickHouse's DateTime ends in 2106, Python's datetime in 9999: a range past LATEST could
# neither be aligned nor queried, so it is refused as a bad parameter, not left to overflow.
LATEST = datetime(2100, 1, 1, tzinfo=UTC)
LIMIT_RE = re.compile(r"[0-9]{1,4}")  # ASCII digits only: str.isdigit() also accepts '²'
STATS_PARAMS = frozenset({"from", "to", "interval", "include_bots"})
TOP_PARAMS = frozenset({"window", "limit", "include_bots", "tag"})
TAG_RE = re.compile(r"[^\x00-\x1f,]{1,40}")  # contracts.links.Tag


@dataclass(frozen=True, kw_only=True)
class StatsQuery:
    code: str
    start: datetime  # aligned, inclusive
    end: datetime  # aligned, exclusive
    interval: Interval
    include_bots: bool

    @property
    def step_s(self) -> int:
        return STEP[self.interval]


@dataclass(frozen=True, kw_only=True)
class TopQuery:
    workspace: str  # only this workspace's links are ranked
    tag: str | None  # only links with this tag
    window: Window
    start: datetime
    end: datetime
    limit: int
    include_bots: bool


@dataclass(frozen=True, kw_only=True)
class Span:
    """Buckets of one size, `start <= bucket < end` (end None: up to whatever is newest)."""

    interval: Interval
    start: datetime
    end: datetime | None


COARSER: dict[Interval, Interval] = {"minute": "hour", "hour": "day"}


def covering_spans(start: datetime, end: datetime, interval: Interval) -> list[Span]:
    """[start, end) (aligned to `interval`) as the fewest buckets: whole UTC days in the middle,
    whole hours around them, `interval` buckets at the edges. The same clicks as `interval`
    buckets throughout; unique visitors merge far fewer (and smaller: sampled) states."""
    coarser = COARSER.get(interval)
    if coarser is None:
        return [Span(interval=interval, start=start, end=end)]
    first, last = ceil_to(start, STEP[coarser]), floor_to(end, STEP[coarser])
    if first >= last:
        return [Span(interval=interval, start=start, end=end)]
    spans = [Span(interval=interval, start=start, end=first)] if start < first else []
    spans += covering_spans(first, last, coarser)
    spans += [Span(interval=interval, start=last, end=end)] if last < end else []
    return spans


def top_spans(query: TopQuery) -> list[Span]:
    """The buckets that add up to /top's window: 1h in minutes, 24h in hours; 7d in hours for
    the partial days at both ends and whole UTC days between (the same sum as hours throughout,
    ~24x fewer rows to read)."""
    if query.window == "1h":
        return [Span(interval="minute", start=query.start, end=None)]
    if query.window == "24h":
        return [Span(interval="hour", start=query.start, end=None)]
    first_day, last_day = ceil_to(query.start, STEP["day"]), floor_to(query.end, STEP["day"])
    spans = []
    if query.start < first_day:
        spans.append(Span(interval="hour", start=query.start, end=first_day))
    if first_day < last_day:
        spans.append(Span(interval="day", start=first_day, end=last_day))
    spans.append(Span(interval="hour", start=max(last_day, query.start), end=None))
    return spans


def _invalid(rule: str, message: str, field: str) -> InvalidParameter:
    return InvalidParameter(message, code=rule, field=field)


def parse_code(code: str) -> str:
    if not CODE_RE.fullmatch(code):
        raise _invalid("code_invalid", "code must be 1-64 characters of A-Z a-z 0-9 _ -", "code")
    return code


def parse_time(value: str, field: str) -> datetime:
    try:
        moment = datetime.fromisoformat(value.strip().replace("Z", "+00:00").replace(" ", "+"))
    except ValueError:
        raise _invalid("time_invalid", f"{field} must be an ISO 8601 time, e.g. 2026-01-31T10:00:00Z",
                       field) from None
    moment = moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    if not EARLIEST <= moment < LATEST:
        raise _invalid("time_invalid", f"{field} must be from {EARLIEST.date()} to before {LATEST.date()}",
                       field)
    return moment


def parse_bool(value: str | None, field: str) -> bool:
    if value is None:
        return False
    lowered = value.strip().lower()
    if lowered in ("true", "1", "yes"):
        return True
    if lowered in ("false", "0", "no"):
        return False
    raise _invalid("bool_invalid", f"{field} must be true or false", field)


def _reject_unknown(params: Mapping[str, str], allowed: frozenset[str]) -> None:
    unknown = sorted(set(params) - allowed)
    if unknown:
        raise _invalid("parameter_unknown", f"unknown parameter {unknown[0]!r}; allowed: "
                       + ", ".join(sorted(allowed)), unknown[0])


def floor_to(moment: datetime, step_s: int) -> datetime:
    ts = int(moment.timestamp())
    return datetime.fromtimestamp(ts - ts % step_s, UTC)


def ceil_to(moment: datetime, step_s: int) -> datetime:
    floored = floor_to(moment, step_s)
    return floored if floored == moment else floored + timedelta(seconds=step_s)


def parse_stats(code: str, params: Mapping[str, str], *, now: datetime) -> StatsQuery:
    _reject_unknown(params, STATS_PARAMS)
    code = parse_code(code)
    interval = INTERVALS.get(params.get("interval", "hour"))
    if interval is None:
        raise _invalid("interval_invalid", "interval must be minute, hour or day", "interval")
    step = STEP[interval]
    end = parse_time(params["to"], "to") if "to" in params else now
    start = parse_time(params["from"], "from") if "from" in params else None
    if start is not None and start >= end:
        raise _invalid("range_invalid", "from must be before to", "from")
    end = ceil_to(end, step)
    start = floor_to(start, step) if start is not None else end - DEFAULT_RANGE[interval]
    if end - start > MAX_RANGE[interval] + timedelta(seconds=step):
        raise _invalid("range_too_large", f"at most {MAX_RANGE[interval]} for interval={interval}",
                       "from")
    return StatsQuery(code=code, start=start, end=end, interval=interval,
                      include_bots=parse_bool(params.get("include_bots"), "include_bots"))


def parse_tag(value: str | None) -> str | None:
    if value is None:
        return None
    if not TAG_RE.fullmatch(value):
        raise _invalid("tag_invalid", "tag must be 1-40 characters without commas or control characters", "tag")
    return value


def parse_top(params: Mapping[str, str], *, now: datetime, workspace: str) -> TopQuery:
    _reject_unknown(params, TOP_PARAMS)
    window = WINDOW_NAMES.get(params.get("window", "24h"))
    if window is None:
        raise _invalid("window_invalid", "window must be 1h, 24h or 7d", "window")
    raw_limit = params.get("limit", str(TOP_LIMIT_DEFAULT))
    if not LIMIT_RE.fullmatch(raw_limit) or not 1 <= int(raw_limit) <= TOP_LIMIT_MAX:
        raise _invalid("limit_invalid", f"limit must be an integer from 1 to {TOP_LIMIT_MAX}", "limit")
    # 1h is counted in minute buckets, 24h and 7d in hour buckets (the bucket holding now-window
    # is included whole).
    step = 60 if window == "1h" else 3600
    return TopQuery(
        workspace=workspace,
        tag=parse_tag(params.get("tag")),
        window=window,
        start=floor_to(now - WINDOWS[window], step),
        end=now,
        limit=int(raw_limit),
        include_bots=parse_bool(params.get("include_bots"), "include_bots"),
    )
