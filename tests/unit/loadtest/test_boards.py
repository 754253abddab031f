"""`just boards` lists every place to watch, from the same port settings as the stack."""

import pytest

from loadtest.boards import ALERT_RULES, DASHBOARD, BoardsEnv, render

pytestmark = pytest.mark.unit


def test_every_metrics_endpoint_prometheus_grafana_and_the_files_are_listed(monkeypatch: pytest.MonkeyPatch) -> None:
    # Every port the assertions name is set here: a checkout's .env (another stack's ports) must
    # not decide what this test expects.
    monkeypatch.setenv("REDIRECT_REPLICA_PORTS", "8111,8112")
    monkeypatch.setenv("PROMETHEUS_PORT", "19090")
    monkeypatch.setenv("SHORTEN_PORT", "8001")
    monkeypatch.setenv("ANALYTICS_PORT", "8002")
    monkeypatch.setenv("AGGREGATOR_WEB_PORTS", "6061,6062,6063")
    monkeypatch.setenv("GRAFANA_PORT", "3000")
    text = render(BoardsEnv(), probe=False)
    for url in (
        "http://127.0.0.1:19090",
        "http://127.0.0.1:8001/metrics",
        "http://127.0.0.1:8002/metrics",
        "http://127.0.0.1:8111/metrics",
        "http://127.0.0.1:8112/metrics",
        "http://127.0.0.1:6063/metrics",
        "http://127.0.0.1:3000/d/architecture-flow",
    ):
        assert url in text
    assert "8013" not in text
    assert str(DASHBOARD) in text and DASHBOARD.exists()
    assert str(ALERT_RULES) in text and ALERT_RULES.exists()
