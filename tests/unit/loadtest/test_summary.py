"""Reading locust's final CSV stats and the run summary that is printed and saved."""

import json
from pathlib import Path
from typing import Any

import pytest

from loadtest.analytics import StoreCounts
from loadtest.check import evaluate
from loadtest.settings import LoadtestEnv, profile_from_env
from loadtest.stats import read_run_stats
from loadtest.summary import build_summary, format_summary, save_summary
from loadtest.tally import RedirectTally

pytestmark = pytest.mark.unit

HEADER = (
    "Type,Name,Request Count,Failure Count,Median Response Time,Average Response Time,Min Response Time,"
    "Max Response Time,Average Content Size,Requests/s,Failures/s,50%,66%,75%,80%,90%,95%,98%,99%,99.9%,99.99%,100%"
)
STATS = f"""{HEADER}
GET,GET /{{code}},1000,10,3,4.2,0.6,210.5,0.0,95.5,0.9,3,4,5,5,7,12,30,60,200,210,210
POST,POST /api/v1/links,40,2,9,11.0,2.0,80.0,19.0,3.8,0.2,9,10,12,13,20,40,70,80,80,80,80
,Aggregated,1040,12,3,4.5,0.6,210.5,0.7,99.3,1.1,3,4,5,6,8,14,35,62,200,210,210
"""
FAILURES = """Method,Name,Error,Occurrences,First Seen,Last Seen
GET,GET /{code},HTTP 404: no redirect,10,,
POST,POST /api/v1/links,HTTP 429: rate limited,2,,
"""


@pytest.fixture
def prefix(tmp_path: Path) -> Path:
    (tmp_path / "stats_final_stats.csv").write_text(STATS)
    (tmp_path / "stats_final_failures.csv").write_text(FAILURES)
    return tmp_path / "stats"


def test_final_stats_are_read(prefix: Path) -> None:
    stats = read_run_stats(prefix)
    assert (stats.total.requests, stats.total.failures, stats.total.rps) == (1040, 12, 99.3)
    assert (stats.total.p50_ms, stats.total.p95_ms, stats.total.p99_ms) == (3, 14, 62)
    assert stats.total.error_rate == pytest.approx(12 / 1040)
    assert [r.name for r in stats.by_name] == ["GET /{code}", "POST /api/v1/links"]
    assert stats.failures[1].error == "HTTP 429: rate limited"


def test_no_requests_means_no_percentiles(tmp_path: Path) -> None:
    (tmp_path / "s_final_stats.csv").write_text(f"{HEADER}\n,Aggregated,0,0,0,0,0,0,0,0,0" + ",N/A" * 11 + "\n")
    stats = read_run_stats(tmp_path / "s")
    assert stats.total.p95_ms is None and stats.total.error_rate == 0 and stats.failures == ()


def test_stats_without_a_total_are_refused(tmp_path: Path) -> None:
    (tmp_path / "s_final_stats.csv").write_text(HEADER + "\n")
    with pytest.raises(ValueError, match="Aggregated"):
        read_run_stats(tmp_path / "s")


def _summary(prefix: Path, counted: int, stores: dict[str, StoreCounts] | None = None) -> dict[str, Any]:
    tally = RedirectTally()
    for _ in range(990):
        tally.started("a")
        tally.served("a")
    for _ in range(10):
        tally.started("b")
        tally.refused("b")
    check = evaluate(tally.outcomes(), {"a": counted, "b": 0})
    return build_summary(
        run_id="r1",
        profile=profile_from_env("default", LoadtestEnv()),
        started_at="2026-11-27T10:00:00Z",
        wall_seconds=100.04,
        stats=read_run_stats(prefix),
        tally=tally,
        seeded=100,
        check=check,
        artifacts=prefix.parent,
        store_counts=stores,
    )


def test_summary_has_rates_percentiles_errors_and_the_check(prefix: Path, tmp_path: Path) -> None:
    summary = _summary(prefix, 990)
    assert summary["passed"] is True
    assert summary["requests"] == {
        "total": 1040,
        "failures": 12,
        "error_rate": round(12 / 1040, 6),
        "rps": 99.3,
        "p50_ms": 3,
        "p95_ms": 14,
        "p99_ms": 62,
        "max_ms": 210.5,
    }
    assert summary["redirects"] == {
        "codes_requested": 2,
        "attempts": 1000,
        "served": 990,
        "no_click": 10,
        "indeterminate": 0,
    }
    text = format_summary(summary)
    for fragment in ("99.3 req/s", "p50 3 ms", "p95 14 ms", "p99 62 ms", "(1.15%)", "click check  PASSED"):
        assert fragment in text
    saved = save_summary(summary, tmp_path / "out" / "r1.json")
    assert json.loads(saved.read_text()) == summary


def test_a_failed_check_is_visible_with_both_stores_counts(prefix: Path) -> None:
    summary = _summary(prefix, 989, stores={"a": StoreCounts(lifetime=989, in_range=990)})
    assert summary["passed"] is False
    assert summary["check"]["store_counts"] == {"a": {"postgres_lifetime": 989, "clickhouse_range": 990}}
    text = format_summary(summary)
    assert "click check  FAILED" in text
    assert "code a: analytics 989 vs served 990 (+0 unknown); PostgreSQL 989, ClickHouse 990" in text
