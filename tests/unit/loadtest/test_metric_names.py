"""Every metric the dashboard and the alert rules name is one some service really defines.

The catalog comes from the prometheus_client constructors in services/, libs/ and infra/ (see
promql.py); a panel or rule that names anything else (a typo, a metric a service renamed or never
added) fails here.
"""

import json
from pathlib import Path
from typing import Any

import pytest
import yaml  # type: ignore[import-untyped]

from tests.unit.loadtest.promql import Parsed, defined_metrics, exposed_series, parse_promql

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[3]
DASHBOARD = ROOT / "infra/grafana/dashboards/architecture-flow.json"
RULES = ROOT / "infra/prometheus/alerts.yml"
SERIES = exposed_series(defined_metrics())
# Used by the board and the rules but defined by no code yet, with who is to provide it.
# test_pending_metrics_are_still_missing fails as soon as one appears: then delete it here.
PENDING: dict[str, str] = {}
KNOWN = {**SERIES, **{name: frozenset({"role", "job", "instance"}) for name in PENDING}}
# What the brief asks the board to show; each must appear in some panel.
REQUIRED_ON_BOARD = {
    "http_requests_total",
    "http_request_duration_seconds_bucket",
    "aggregator_consumer_lag",
    "redirect_l1_hits_total",
    "redirect_redis_hits_total",
    "redirect_click_buffer_depth",
    "redirect_click_events_dropped_total",
    "aggregator_clickhouse_insert_seconds_bucket",
    "aggregator_postgres_write_seconds_bucket",
    "redirect_responses_total",
    "redirect_request_duration_seconds_bucket",
    "stack_redis_used_memory_bytes",
}


def _panels(dashboard: dict[str, Any]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for panel in dashboard["panels"]:
        out.append(panel)
        out.extend(panel.get("panels", []))
    return out


def dashboard_expressions() -> list[tuple[str, str]]:
    dashboard = json.loads(DASHBOARD.read_text())
    return [(p["title"], t["expr"]) for p in _panels(dashboard) for t in p.get("targets", [])]


def rule_expressions() -> tuple[list[tuple[str, str]], set[str]]:
    rules = [r for g in yaml.safe_load(RULES.read_text())["groups"] for r in g["rules"]]
    recorded = {r["record"] for r in rules if "record" in r}
    return [(r.get("alert") or r["record"], r["expr"]) for r in rules], recorded


def _problems(parsed: Parsed, known: dict[str, frozenset[str]]) -> list[str]:
    problems = [f"unknown metric {m}" for m in sorted(parsed.metrics - known.keys())]
    for metric, label in parsed.selector_labels:
        if metric in known and label not in known[metric]:
            problems.append(f"{metric} has no label {label!r}")
    usable = set().union(*(known.get(m, frozenset()) for m in parsed.metrics)) if parsed.metrics else set()
    problems += [f"no metric here has label {label!r}" for label in sorted(parsed.grouping_labels - usable)]
    return problems


def test_the_catalog_is_read_from_the_code() -> None:
    """Sanity of the catalog itself: the shared HTTP metrics and the aggregator's are found."""
    assert SERIES["http_requests_total"] >= {"service", "route", "method", "status", "job", "instance"}
    assert "le" in SERIES["http_request_duration_seconds_bucket"]
    assert "aggregator_consumer_lag" in SERIES and "aggregator_events_processed_total" in SERIES
    assert "aggregator_events_processed" not in SERIES  # a Counter is exposed with _total


def test_the_parser_sees_metrics_labels_and_grouping() -> None:
    parsed = parse_promql(
        'sum by (service) (rate(http_requests_total{status=~"5..", route!="/x"}[$__rate_interval]))'
        " / ignoring(job) up offset 1h > 2 * (a:b:c offset 5m) and 1e3"
    )
    assert parsed.metrics == {"http_requests_total", "up", "a:b:c"}
    assert set(parsed.selector_labels) == {("http_requests_total", "status"), ("http_requests_total", "route")}
    assert parsed.grouping_labels == {"service", "job"}


def test_the_check_catches_a_wrong_name_and_a_wrong_label() -> None:
    def problems(expr: str) -> list[str]:
        return _problems(parse_promql(expr), SERIES)

    assert problems("rate(http_request_total[1m])") == ["unknown metric http_request_total"]
    assert problems('http_requests_total{code="200"}') == ["http_requests_total has no label 'code'"]
    assert problems("sum by (sevice) (http_requests_total)") == ["no metric here has label 'sevice'"]


@pytest.mark.parametrize(("title", "expr"), dashboard_expressions(), ids=lambda v: str(v)[:60])
def test_every_panel_query_names_defined_metrics(title: str, expr: str) -> None:
    assert _problems(parse_promql(expr), KNOWN) == [], f"panel {title!r}: {expr}"


def test_every_rule_names_defined_metrics() -> None:
    expressions, recorded = rule_expressions()
    known = dict(KNOWN)
    for name in recorded:  # recorded series keep the labels their expression groups by
        known[name] = frozenset({"service", "topic"})
    problems = {name: p for name, expr in expressions if (p := _problems(parse_promql(expr), known))}
    assert problems == {}


def test_the_board_shows_what_the_runbook_watches() -> None:
    named = set().union(*(parse_promql(expr).metrics for _, expr in dashboard_expressions()))
    assert named >= REQUIRED_ON_BOARD, sorted(REQUIRED_ON_BOARD - named)


def test_pending_metrics_are_still_missing() -> None:
    """Keeps PENDING honest: a metric some code now defines must leave the list (and be checked)."""
    assert not PENDING.keys() & SERIES.keys()
