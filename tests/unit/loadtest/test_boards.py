"""`just boards` lists every place to watch, from the same port settings as the stack."""

import pytest

from loadtest.boards import ALERT_RULES, DASHBOARD, BoardsEnv, render

pytestmark = pytest.mark.unit


def test_every_metrics_endpoint_prometheus_grafana_and_the_files_are_listed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REDIRECT_REPLICA_PORTS", "8111,8112")
    monkeypatch.setenv("PROMETHEUS_PORT", "19090")
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
