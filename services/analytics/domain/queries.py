"""Parse and check the query parameters of the two endpoints. Pure: `now` is passed in.

Ranges are half-open [from, to), aligned to the interval (from rounded down, to rounded up)
and capped so a response never has more than ~1500 points: minute -> at most 24 h, hour -> at
most 31 days, day -> at most 366 days (plus the one bucket alignment may add).
"""

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Annotated, Literal, TypeVar

import msgspec
from contracts.links import CODE_PATTERN, CODE_RE, Tag
from platformkit.openapi import MultiItems, QueryInvalid, parse_query

from analytics.domain.errors import InvalidParameter

P = TypeVar("P", bound=msgspec.Struct)
Interval = Literal["minute", "hour", "day"]
Window = Literal["1h", "24h", "7d"]

STEP: dict[Interval, int] = {"minute": 60, "hour": 3600, "day": 86400}
MAX_RANGE: dict[Interval, timedelta] = {
    "minute": timedelta(hours=24),
    "hour": timedelta(days=31),
    "day": timedelta(days=366),
}
# Without `from`: the last hour of minutes, the last day of hours, the last 30 days of days.
DEFAULT_RANGE: dict[Interval, timedelta] = {
    "minute": timedelta(hours=1),
    "hour": timedelta(hours=24),
    "day": timedelta(days=30),
}
TOP_LIMIT_MAX = 100
WINDOWS: dict[Window, timedelta] = {"1h": timedelta(hours=1), "24h": timedelta(hours=24), "7d": timedelta(days=7)}
EARLIEST = datetime(2000, 1, 1, tzinfo=UTC)
# ClickHouse's DateTime ends in 2106, Python's datetime in 9999: a range past LATEST could
# neither be aligned nor queried, so it is refused as a bad parameter, not left to overflow.
LATEST = datetime(2100, 1, 1, tzinfo=UTC)

# The query strings, as the entrypoint decodes them (platformkit.openapi.parse_query) and as the
# OpenAPI document describes them. What a type cannot say (time ranges) is checked below.
Code = Annotated[str, msgspec.Meta(pattern=f"^{CODE_PATTERN}$", description="a short code or alias")]
TimeText = Annotated[
    str,
    msgspec.Meta(
        max_length=64,
        extra_json_schema={"format": "date-time"},
        description=f"ISO 8601 time from {EARLIEST.date()} to before {LATEST.date()} (UTC if no offset)",
    ),
]
IncludeBots = Annotated[bool, msgspec.Meta(description="count bot clicks too (they are always counted apart)")]


class StatsPath(msgspec.Struct, frozen=True):
    code: Code


class StatsParams(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    from_: Annotated[
        TimeText | None,
        msgspec.Meta(
            description="start, rounded down to the interval; default: 1 h (minute), 24 h (hour) or "
            "30 days (day) before `to`; at most 24 h of minutes, 31 days of hours, 366 days of days"
        ),
    ] = msgspec.field(default=None, name="from")
    to: Annotated[TimeText | None, msgspec.Meta(description="end (exclusive), rounded up; default: now")] = None
    interval: Interval = "hour"
    include_bots: IncludeBots = False


class TopParams(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    window: Window = "24h"
    limit: Annotated[int, msgspec.Meta(ge=1, le=TOP_LIMIT_MAX)] = 10
    include_bots: IncludeBots = False
    tag: Annotated[Tag | None, msgspec.Meta(description="only links with this tag")] = None


class LiveParams(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """GET /api/v1/links/{code}/live takes no parameter (an unknown one is refused)."""


# The rule a bad parameter breaks, by parameter (the stable `code` of the 422).
PARAMETER_RULES = {
    "from": "time_invalid",
    "to": "time_invalid",
    "interval": "interval_invalid",
    "include_bots": "bool_invalid",
    "window": "window_invalid",
    "limit": "limit_invalid",
    "tag": "tag_invalid",
    "code": "code_invalid",
}


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
        raise _invalid("time_invalid", f"{field} must be an ISO 8601 time, e.g. 2026-01-31T10:00:00Z", field) from None
    moment = moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    if not EARLIEST <= moment < LATEST:
        raise _invalid("time_invalid", f"{field} must be from {EARLIEST.date()} to before {LATEST.date()}", field)
    return moment


def floor_to(moment: datetime, step_s: int) -> datetime:
    ts = int(moment.timestamp())
    return datetime.fromtimestamp(ts - ts % step_s, UTC)


def ceil_to(moment: datetime, step_s: int) -> datetime:
    floored = floor_to(moment, step_s)
    return floored if floored == moment else floored + timedelta(seconds=step_s)


def decode_params(struct: type[P], params: Mapping[str, str] | MultiItems) -> P:
    """The query string decoded into the Struct the OpenAPI document describes; a bad parameter
    is a 422 whose code names the rule it breaks (PARAMETER_RULES)."""
    try:
        return parse_query(struct, params)
    except QueryInvalid as exc:
        unknown = "unknown field" in str(exc)
        rule = "parameter_unknown" if unknown else PARAMETER_RULES.get(exc.field or "", "parameter_unknown")
        raise _invalid(rule, str(exc), exc.field or "") from None


def parse_stats(code: str, raw: Mapping[str, str] | MultiItems, *, now: datetime) -> StatsQuery:
    params = decode_params(StatsParams, raw)
    code = parse_code(code)
    interval = params.interval
    step = STEP[interval]
    end = parse_time(params.to, "to") if params.to is not None else now
    start = parse_time(params.from_, "from") if params.from_ is not None else None
    if start is not None and start >= end:
        raise _invalid("range_invalid", "from must be before to", "from")
    end = ceil_to(end, step)
    start = floor_to(start, step) if start is not None else end - DEFAULT_RANGE[interval]
    if end - start > MAX_RANGE[interval] + timedelta(seconds=step):
        raise _invalid("range_too_large", f"at most {MAX_RANGE[interval]} for interval={interval}", "from")
    return StatsQuery(code=code, start=start, end=end, interval=interval, include_bots=params.include_bots)


def parse_live(code: str, raw: Mapping[str, str] | MultiItems) -> str:
    decode_params(LiveParams, raw)
    return parse_code(code)


def parse_top(raw: Mapping[str, str] | MultiItems, *, now: datetime, workspace: str) -> TopQuery:
    params = decode_params(TopParams, raw)
    window = params.window
    # 1h is counted in minute buckets, 24h and 7d in hour buckets (the bucket holding now-window
    # is included whole).
    step = 60 if window == "1h" else 3600
    return TopQuery(
        workspace=workspace,
        tag=params.tag,
        window=window,
        start=floor_to(now - WINDOWS[window], step),
        end=now,
        limit=params.limit,
        include_bots=params.include_bots,
    )
