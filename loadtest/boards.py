"""`python -m loadtest boards`: where to watch a run (Prometheus, each /metrics, Grafana, rules).

Each URL is probed once (1 s timeout) so you see at a glance what is up.
"""

from dataclasses import dataclass
from pathlib import Path

import httpx
from stackctl.config import StackSettings

REPO_ROOT = Path(__file__).resolve().parents[1]
DASHBOARD = REPO_ROOT / "infra/grafana/dashboards/architecture-flow.json"
ALERT_RULES = REPO_ROOT / "infra/prometheus/alerts.yml"

# PromQL for the scaling runbook's capacity signals (paste into Prometheus' graph page).
# The service:* series are recording rules of infra/prometheus/alerts.yml (redirect's hot path included).
SIGNALS = (
    ("requests/s per service", "service:requests:rate5m"),
    ("p95 latency per service (s)", "service:http_request_duration_seconds:p95_5m"),
    ("Kafka consumer lag (records)", "topic:aggregator_consumer_lag:sum"),
    ("redirects served/s by status", "sum by (status) (rate(redirect_responses_total[1m]))"),
    ("clicks dropped (must be 0)", "sum(redirect_click_events_dropped_total)"),
    ("firing alerts", 'ALERTS{alertstate="firing"}'),
)


class BoardsEnv(StackSettings):
    """The stack's own port settings (same variables, same defaults), plus the compose-only UIs."""

    grafana_port: int = 3000
    dozzle_port: int = 9999


@dataclass(frozen=True)
class Board:
    what: str
    url: str
    probe: str = ""  # URL to probe; empty: not probed


def boards(env: BoardsEnv) -> list[Board]:
    prometheus = f"http://127.0.0.1:{env.prometheus_port}"
    rows = [
        Board("Prometheus (native stack and compose)", prometheus, f"{prometheus}/-/ready"),
        Board("  scrape targets", f"{prometheus}/targets"),
        Board("  alerts (infra/prometheus/alerts.yml)", f"{prometheus}/alerts"),
        Board(
            "public entry point",
            f"http://127.0.0.1:{env.public_http_port}",
            f"http://127.0.0.1:{env.public_http_port}/healthz",
        ),
        Board("shorten /metrics", f"http://127.0.0.1:{env.shorten_port}/metrics", "="),
        Board("analytics /metrics", f"http://127.0.0.1:{env.analytics_port}/metrics", "="),
    ]
    for n, port in enumerate(env.redirect_ports, start=1):
        rows.append(Board(f"redirect-{n} /metrics", f"http://127.0.0.1:{port}/metrics", "="))
    for n, port in enumerate(env.aggregator_ports, start=1):
        rows.append(Board(f"aggregator-{n} /metrics", f"http://127.0.0.1:{port}/metrics", "="))
    stackcheck = f"http://127.0.0.1:{env.stackcheck_port}"
    rows.append(Board("stack check /metrics (Redis memory)", f"{stackcheck}/metrics", "="))
    grafana = f"http://127.0.0.1:{env.grafana_port}"
    rows += [
        Board("Grafana (compose stack): Architecture Flow", f"{grafana}/d/architecture-flow", f"{grafana}/api/health"),
        Board("Dozzle logs (compose stack)", f"http://127.0.0.1:{env.dozzle_port}", "="),
    ]
    return rows


def _probe(client: httpx.Client, url: str) -> str:
    try:
        response = client.get(url)
    except httpx.HTTPError:
        return "down"
    return "up" if response.status_code < 400 else f"HTTP {response.status_code}"


def render(env: BoardsEnv, *, probe: bool = True) -> str:
    lines = ["Where to watch the stack:"]
    with httpx.Client(timeout=1.0) as client:
        for board in boards(env):
            target = board.url if board.probe == "=" else board.probe
            state = _probe(client, target) if probe and target else ""
            lines.append(f"  {board.what:<44} {board.url:<45} {state}")
    lines += [
        f"Dashboard JSON (import into any Grafana with a Prometheus datasource uid 'prometheus'): {DASHBOARD}",
        f"Alert rules (loaded by Prometheus): {ALERT_RULES}",
        "Runbook signals (Prometheus graph page):",
        *(f"  {name}: {query}" for name, query in SIGNALS),
        "Compose stack with Grafana: see docs/compose.md; load test: docs/loadtest.md",
    ]
    return "\n".join(lines)
