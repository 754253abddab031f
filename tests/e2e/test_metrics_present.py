"""Every capacity signal of the scaling plan is exposed on /metrics, and Prometheus scrapes it."""

import httpx
import pytest
from stackctl.config import StackSettings

from tests.conftest import analytics_url, public_url, redirect_replica_urls, shorten_url, wait_until

pytestmark = pytest.mark.e2e

SETTINGS = StackSettings()

HTTP = {"http_requests_total", "http_request_duration_seconds"}
REDIRECT = {
    # the hot path's own request metrics (per status) and latency histogram
    "redirect_responses_total",
    "redirect_request_duration_seconds",
    # L1 and Redis hit ratios
    "redirect_l1_hits_total",
    "redirect_l1_misses_total",
    "redirect_redis_hits_total",
    "redirect_redis_misses_total",
    # producer buffer depth and dropped events
    "redirect_click_buffer_depth",
    "redirect_click_events_dropped_total",
    # links consumer lag per partition
    "redirect_links_consumer_lag",
    *HTTP,
}
AGGREGATOR = {
    "aggregator_consumer_lag",  # per consumer group, topic and partition
    "aggregator_postgres_write_seconds",
    "aggregator_clickhouse_insert_seconds",
    "aggregator_clickhouse_batch_rows",
    "aggregator_events_dead_lettered_total",
}
STACK = {"stack_redis_used_memory_bytes", "stack_redis_maxmemory_bytes"}


def exposed(url: str) -> set[str]:
    text = httpx.get(url + "/metrics", timeout=5).text
    return {line.split()[2] for line in text.splitlines() if line.startswith("# TYPE ")} | {
        line.split("{")[0].split()[0] for line in text.splitlines() if line and not line.startswith("#")
    }


def test_every_listed_metric_is_exposed() -> None:
    # One request each, so the per-route HTTP series exist.
    httpx.get(shorten_url() + "/api/v1/links/NoSuchCode123", timeout=5)
    httpx.get(analytics_url() + "/api/v1/top", timeout=5)  # 401 without a key: the series exist all the same
    for url in redirect_replica_urls():
        httpx.get(url + "/NoSuchCode123", timeout=5)
        httpx.get(url + "/healthz", timeout=5)
    missing: dict[str, set[str]] = {}
    expected = {
        shorten_url(): HTTP,
        analytics_url(): HTTP,
        **{url: REDIRECT for url in redirect_replica_urls()},
        **{f"http://127.0.0.1:{p}": AGGREGATOR for p in SETTINGS.aggregator_ports},
        f"http://127.0.0.1:{SETTINGS.stackcheck_port}": STACK,
    }
    for url, names in expected.items():
        gap = names - exposed(url)
        if gap:
            missing[url] = gap
    assert missing == {}


def test_redis_memory_is_reported_for_primary_and_replica() -> None:
    text = httpx.get(f"http://127.0.0.1:{SETTINGS.stackcheck_port}/metrics", timeout=5).text
    for role in ("primary", "replica"):
        line = next(ln for ln in text.splitlines() if ln.startswith(f'stack_redis_used_memory_bytes{{role="{role}"}}'))
        assert float(line.split()[-1]) > 0


def test_prometheus_scrapes_every_service() -> None:
    api = f"http://127.0.0.1:{SETTINGS.prometheus_port}/api/v1/query"
    jobs = {"shorten", "analytics", "redirect", "aggregator", "stackcheck"}

    def all_up() -> dict[str, float] | None:
        result = httpx.get(api, params={"query": "up"}, timeout=5).json()["data"]["result"]
        by_target = {f"{r['metric']['job']}/{r['metric']['instance']}": float(r["value"][1]) for r in result}
        seen_jobs = {key.split("/")[0] for key in by_target}
        return by_target if jobs <= seen_jobs and all(v == 1.0 for v in by_target.values()) else None

    targets = wait_until(all_up, timeout=30, interval=1, what="every Prometheus target up")
    assert len([t for t in targets if t.startswith("redirect/")]) == len(SETTINGS.redirect_ports)
    assert len([t for t in targets if t.startswith("aggregator/")]) == len(SETTINGS.aggregator_ports)
    # The public entry point never serves /metrics.
    assert httpx.get(public_url() + "/metrics", timeout=5).status_code == 404
