"""Query parameters: defaults, alignment, caps, and a named 422 for every bad value."""

from datetime import UTC, datetime, timedelta

import pytest
from analytics.domain.errors import InvalidParameter
from analytics.domain.queries import Span, covering_spans, parse_stats, parse_top, top_spans
from analytics.entrypoints.app import STATUS

pytestmark = pytest.mark.unit

NOW = datetime(2026, 11, 27, 10, 17, 42, tzinfo=UTC)


def refused(call) -> tuple[str, str | None]:  # type: ignore[no-untyped-def]
    with pytest.raises(InvalidParameter) as info:
        call()
    assert STATUS[type(info.value)] == 422
    return info.value.code, info.value.field


def test_stats_defaults_last_24h_by_hour_aligned() -> None:
    q = parse_stats("aZ3kP9q", {}, now=NOW)
    assert (q.interval, q.include_bots) == ("hour", False)
    assert q.start == datetime(2026, 11, 26, 11, tzinfo=UTC)
    assert q.end == datetime(2026, 11, 27, 11, tzinfo=UTC)


@pytest.mark.parametrize(
    ("interval", "start", "end"),
    [
        ("minute", datetime(2026, 11, 27, 9, 18, tzinfo=UTC), datetime(2026, 11, 27, 10, 18, tzinfo=UTC)),
        ("day", datetime(2026, 10, 29, tzinfo=UTC), datetime(2026, 11, 28, tzinfo=UTC)),
    ],
)
def test_default_range_per_interval_is_within_the_cap(interval: str, start: datetime, end: datetime) -> None:
    q = parse_stats("abc", {"interval": interval}, now=NOW)
    assert (q.start, q.end) == (start, end)
    assert parse_stats("abc", {"interval": interval, "to": "2026-11-27T10:17:42Z"}, now=NOW).end == end


def test_stats_range_is_aligned_to_the_interval() -> None:
    q = parse_stats(
        "abc",
        {
            "from": "2026-11-27T09:00:30Z",
            "to": "2026-11-27T09:05:00+00:00",
            "interval": "minute",
            "include_bots": "true",
        },
        now=NOW,
    )
    assert (q.start, q.end, q.step_s, q.include_bots) == (
        datetime(2026, 11, 27, 9, 0, tzinfo=UTC),
        datetime(2026, 11, 27, 9, 5, tzinfo=UTC),
        60,
        True,
    )
    day = parse_stats("abc", {"from": "2026-11-01T13:00:00+02:00", "interval": "day"}, now=NOW)
    assert day.start == datetime(2026, 11, 1, tzinfo=UTC) and day.end == datetime(2026, 11, 28, tzinfo=UTC)


def test_naive_times_are_utc_and_a_plus_sign_decoded_as_space_still_parses() -> None:
    q = parse_stats("abc", {"from": "2026-11-27T08:00:00", "to": "2026-11-27T09:00:00 00:00"}, now=NOW)
    assert (q.start, q.end) == (datetime(2026, 11, 27, 8, tzinfo=UTC), datetime(2026, 11, 27, 9, tzinfo=UTC))


@pytest.mark.parametrize(
    ("code", "params", "rule", "field"),
    [
        ("bad code", {}, "code_invalid", "code"),
        ("x" * 65, {}, "code_invalid", "code"),
        ("abc", {"interval": "week"}, "interval_invalid", "interval"),
        ("abc", {"from": "yesterday"}, "time_invalid", "from"),
        ("abc", {"to": "2026-13-01T00:00:00Z"}, "time_invalid", "to"),
        ("abc", {"from": "1999-12-31T00:00:00Z"}, "time_invalid", "from"),
        ("abc", {"from": "2100-01-01T00:00:00Z", "to": "2026-01-02T00:00:00Z"}, "time_invalid", "from"),
        ("abc", {"to": "9999-12-31T23:59:59Z", "interval": "minute"}, "time_invalid", "to"),
        ("abc", {"from": "2026-11-27T10:00:00Z", "to": "2026-11-27T10:00:00Z"}, "range_invalid", "from"),
        ("abc", {"from": "2026-11-27T10:00:00Z", "to": "2026-11-27T09:00:00Z"}, "range_invalid", "from"),
        ("abc", {"from": "2026-11-25T00:00:00Z", "interval": "minute"}, "range_too_large", "from"),
        ("abc", {"from": "2026-09-01T00:00:00Z", "interval": "hour"}, "range_too_large", "from"),
        ("abc", {"from": "2024-01-01T00:00:00Z", "interval": "day"}, "range_too_large", "from"),
        ("abc", {"include_bots": "maybe"}, "bool_invalid", "include_bots"),
        ("abc", {"limit": "3"}, "parameter_unknown", "limit"),
    ],
)
def test_stats_refusals(code: str, params: dict[str, str], rule: str, field: str) -> None:
    assert refused(lambda: parse_stats(code, params, now=NOW)) == (rule, field)


def test_caps_are_inclusive_and_tolerate_alignment() -> None:
    exact = parse_stats(
        "abc", {"from": "2026-11-26T10:17:00Z", "to": "2026-11-27T10:17:00Z", "interval": "minute"}, now=NOW
    )
    assert exact.end - exact.start == timedelta(hours=24)
    unaligned = parse_stats(
        "abc", {"from": "2026-11-26T10:17:30Z", "to": "2026-11-27T10:17:30Z", "interval": "minute"}, now=NOW
    )
    assert unaligned.end - unaligned.start == timedelta(hours=24, minutes=1)


def test_top_defaults_and_windows() -> None:
    q = parse_top({}, now=NOW, workspace="acme")
    assert (q.window, q.limit, q.include_bots, q.end) == ("24h", 10, False, NOW)
    assert q.start == datetime(2026, 11, 26, 10, tzinfo=UTC)  # hour buckets
    assert parse_top({"window": "1h"}, now=NOW, workspace="acme").start == datetime(2026, 11, 27, 9, 17, tzinfo=UTC)
    assert parse_top({"window": "7d", "limit": "100"}, now=NOW, workspace="acme").start == datetime(
        2026, 11, 20, 10, tzinfo=UTC
    )
    assert (q.workspace, q.tag) == ("acme", None)
    assert parse_top({"tag": "launch q4"}, now=NOW, workspace="acme").tag == "launch q4"


def test_a_range_is_covered_by_the_fewest_buckets_that_add_up_to_it() -> None:
    def at(day: int, hour: int = 0, minute: int = 0) -> datetime:
        return datetime(2026, 11, day, hour, minute, tzinfo=UTC)

    assert covering_spans(at(26, 10, 18), at(27, 10, 18), "minute") == [
        Span(interval="minute", start=at(26, 10, 18), end=at(26, 11)),
        Span(interval="hour", start=at(26, 11), end=at(27, 10)),
        Span(interval="minute", start=at(27, 10), end=at(27, 10, 18)),
    ]
    assert covering_spans(at(1, 22), at(27, 11), "hour") == [
        Span(interval="hour", start=at(1, 22), end=at(2)),
        Span(interval="day", start=at(2), end=at(27)),
        Span(interval="hour", start=at(27), end=at(27, 11)),
    ]
    # Aligned to a coarser grain throughout: that grain only; inside one bucket of it: the interval's.
    assert covering_spans(at(26), at(27), "minute") == [Span(interval="day", start=at(26), end=at(27))]
    assert covering_spans(at(26, 10, 5), at(26, 10, 50), "minute") == [
        Span(interval="minute", start=at(26, 10, 5), end=at(26, 10, 50))
    ]
    assert covering_spans(at(1), at(27), "day") == [Span(interval="day", start=at(1), end=at(27))]


def test_top_spans_read_whole_days_between_the_partial_days_of_7d() -> None:
    assert top_spans(parse_top({"window": "1h"}, now=NOW, workspace="acme")) == [
        Span(interval="minute", start=datetime(2026, 11, 27, 9, 17, tzinfo=UTC), end=None)
    ]
    assert top_spans(parse_top({"window": "24h"}, now=NOW, workspace="acme")) == [
        Span(interval="hour", start=datetime(2026, 11, 26, 10, tzinfo=UTC), end=None)
    ]
    # 2026-11-20 10:00 .. now (2026-11-27 10:17): hours of the 20th, days 21st-26th, hours of the 27th.
    assert top_spans(parse_top({"window": "7d"}, now=NOW, workspace="acme")) == [
        Span(interval="hour", start=datetime(2026, 11, 20, 10, tzinfo=UTC), end=datetime(2026, 11, 21, tzinfo=UTC)),
        Span(interval="day", start=datetime(2026, 11, 21, tzinfo=UTC), end=datetime(2026, 11, 27, tzinfo=UTC)),
        Span(interval="hour", start=datetime(2026, 11, 27, tzinfo=UTC), end=None),
    ]
    # Just after midnight the window starts on a whole day: no partial first day.
    midnight = datetime(2026, 11, 27, 0, 0, 5, tzinfo=UTC)
    assert top_spans(parse_top({"window": "7d"}, now=midnight, workspace="acme")) == [
        Span(interval="day", start=datetime(2026, 11, 20, tzinfo=UTC), end=datetime(2026, 11, 27, tzinfo=UTC)),
        Span(interval="hour", start=datetime(2026, 11, 27, tzinfo=UTC), end=None),
    ]


@pytest.mark.parametrize(
    ("params", "rule", "field"),
    [
        ({"window": "2h"}, "window_invalid", "window"),
        ({"limit": "0"}, "limit_invalid", "limit"),
        ({"limit": "101"}, "limit_invalid", "limit"),
        ({"limit": "-1"}, "limit_invalid", "limit"),
        ({"limit": "ten"}, "limit_invalid", "limit"),
        ({"limit": "\u00b2"}, "limit_invalid", "limit"),
        ({"limit": "\u0665"}, "limit_invalid", "limit"),  # Arabic-Indic five: int() takes it
        ({"limit": "9" * 400}, "limit_invalid", "limit"),
        ({"from": "2026-11-27T00:00:00Z"}, "parameter_unknown", "from"),
        ({"tag": ""}, "tag_invalid", "tag"),
        ({"tag": "a,b"}, "tag_invalid", "tag"),
        ({"tag": "x" * 41}, "tag_invalid", "tag"),
        ({"tag": "new\nline"}, "tag_invalid", "tag"),
        ({"workspace": "other"}, "parameter_unknown", "workspace"),  # the key decides, never a parameter
    ],
)
def test_top_refusals(params: dict[str, str], rule: str, field: str) -> None:
    assert refused(lambda: parse_top(params, now=NOW, workspace="acme")) == (rule, field)
