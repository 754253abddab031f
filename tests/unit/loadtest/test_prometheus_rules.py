"""The alert rules are valid (`promtool check rules`) and fire when they should (`promtool test rules`).

promtool comes with Debian's prometheus package, which the install script installs; a missing
promtool is a failure here, not a skip.
"""

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml  # type: ignore[import-untyped]

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[3]
RULES = ROOT / "infra/prometheus/alerts.yml"
RULE_TESTS = Path(__file__).with_name("alerts_test.yml")
SIGNALS = {
    "HttpP95LatencyHigh",
    "HttpP95LatencyClimbing",
    "KafkaConsumerLagGrowing",
    "RedisMemoryPressure",
    "PostgresWriteLatencyHigh",
    "ClickHouseInsertLatencyHigh",
    "ClickEventsDropped",
    "TargetDown",
}


def _promtool() -> str:
    path = shutil.which("promtool")
    assert path, "promtool is not on PATH: run `just install` (Debian package prometheus)"
    return path


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([_promtool(), *args], cwd=ROOT, capture_output=True, text=True, timeout=120)


def test_promtool_accepts_the_rules() -> None:
    result = _run("check", "rules", str(RULES))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_promtool_refuses_a_broken_rule(tmp_path: Path) -> None:
    """The check above can fail: a bad expression is reported."""
    broken = tmp_path / "broken.yml"
    broken.write_text(RULES.read_text().replace("expr: up == 0", "expr: up == == 0"))
    result = _run("check", "rules", str(broken))
    assert result.returncode != 0 and "FAILED" in result.stdout + result.stderr


def test_every_alert_fires_on_its_signal() -> None:
    result = _run("test", "rules", str(RULE_TESTS))
    assert result.returncode == 0, result.stdout + result.stderr
    cases = yaml.safe_load(RULE_TESTS.read_text())["tests"]
    tested = {t["alertname"] for case in cases for t in case["alert_rule_test"]}
    defined = {r["alert"] for g in yaml.safe_load(RULES.read_text())["groups"] for r in g["rules"] if "alert" in r}
    assert defined <= tested, f"alerts without a promtool test: {sorted(defined - tested)}"


def test_the_runbook_signals_have_alerts() -> None:
    defined = {r["alert"] for g in yaml.safe_load(RULES.read_text())["groups"] for r in g["rules"] if "alert" in r}
    assert defined >= SIGNALS, sorted(SIGNALS - defined)
    for group in yaml.safe_load(RULES.read_text())["groups"]:
        for rule in group["rules"]:
            if "alert" in rule:
                assert rule["labels"]["severity"] in ("warning", "critical") and rule["annotations"]["summary"]
