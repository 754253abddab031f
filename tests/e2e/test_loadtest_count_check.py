"""A short, bounded locust run through nginx: analytics counts exactly the redirects served.

Runs `python -m loadtest run` as `just loadtest` does, scaled down (~15 s, 5 users), against the
real stack on 127.0.0.1:8080, and reads the summary it saves.
"""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import public_url

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
RUN_SECONDS = 15
# The drain deadline is generous: earlier tests (replays, restarts) can leave the aggregators a
# backlog of other clicks to work through before they reach this run's.
DRAIN_SECONDS = 360
# seeding (<= 120 s) + run + stop (10 s) + drain + process start-up; the runner bounds each phase.
TIMEOUT = 120 + RUN_SECONDS + 10 + DRAIN_SECONDS + 60


@pytest.mark.parametrize(
    "shape",
    [
        ["--profile", "default"],  # one locust process
        ["--profile", "100k", "--processes", "2"],  # locust --processes: master + forked workers
        ["--profile", "dist", "--workers", "2"],  # a --master and two --worker commands
    ],
    ids=["single", "processes", "dist"],
)
def test_short_load_then_every_click_is_counted_exactly(tmp_path: Path, shape: list[str]) -> None:
    out = tmp_path / "loadtest"
    command = [
        sys.executable,
        "-m",
        "loadtest",
        "run",
        *shape,
        "--host",
        public_url(),
        "--run-time",
        f"{RUN_SECONDS}s",
        "--users",
        "5",
        "--spawn-rate",
        "5",
        "--read-users",
        "4",
        "--write-users",
        "1",
        "--read-rps",
        "4",
        "--write-rps",
        "1",
        "--seed-codes",
        "15",
        "--drain-timeout",
        str(DRAIN_SECONDS),
        "--out-dir",
        str(out),
    ]
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=TIMEOUT)
    report = f"exit {result.returncode}\n{result.stdout}\n{result.stderr}"
    assert result.returncode == 0, report

    [summary_file] = out.glob("*.json")
    summary = json.loads(summary_file.read_text())
    check, redirects = summary["check"], summary["redirects"]
    assert summary["passed"] is True and check["passed"] is True, report
    # The run really served redirects (15 probes + readers) and the check really compared them.
    assert redirects["served"] >= 15 + 20, report
    assert check["redirects_served"] == redirects["served"] and check["codes"] >= 15
    assert redirects["served"] <= check["clicks_counted"] <= redirects["served"] + redirects["indeterminate"]
    assert summary["requests"]["total"] > 0 and summary["requests"]["p95_ms"] is not None
    assert "click check  PASSED" in result.stdout
    assert {row["name"] for row in summary["by_name"]} == {"GET /{code}", "POST /api/v1/links"}
    # Every process's tally was merged: locust's count of reads plus the runner's probes of the
    # seeded codes is what the tallies hold.
    [reads] = [row for row in summary["by_name"] if row["name"] == "GET /{code}"]
    probes = json.loads((Path(summary["artifacts"]) / "tally" / "tally-seed-probes.json").read_text())
    assert reads["requests"] + sum(probes["attempts"].values()) == redirects["attempts"], report
