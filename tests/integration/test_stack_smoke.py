"""Smoke test of the native stack: every component answers, and the check notices when one is down."""

import asyncio
import subprocess
import sys
from pathlib import Path

import pytest
from stackctl import checks, sentinel
from stackctl.config import StackSettings

from tests.conftest import ROOT, wait_until

SETTINGS = StackSettings()
ALL_PROBES = {**checks.infra_probes(SETTINGS), **checks.service_probes(SETTINGS)}


def smoke() -> dict[str, str | None]:
    return asyncio.run(checks.run_probes(ALL_PROBES))


def smoke_cli() -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "stackctl", "check"], cwd=ROOT, capture_output=True, text=True, timeout=60
    )


def supervisorctl(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(ROOT / ".venv/bin/supervisorctl"), "-c", str(SETTINGS.supervisor_conf), *args],
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.integration
def test_every_component_answers() -> None:
    results = smoke()
    assert {name: err for name, err in results.items() if err} == {}
    assert set(results) >= {
        "kafka",
        "postgres",
        "redis",
        "redis-replica",
        "clickhouse",
        "nginx",
        "prometheus",
        "shorten-1",
        "analytics",
        "redirect-1",
        "redirect-2",
        "redirect-3",
        "aggregator-1",
        "aggregator-2",
        "aggregator-3",
    }
    assert smoke_cli().returncode == 0


COMPONENTS = [
    "kafka",
    "postgres",
    "redis",
    "redis-replica",
    "clickhouse",
    "nginx",
    "prometheus",
    "shorten-1",
    "redirect-2",
    "analytics",
    "aggregator-1",
]


@pytest.mark.destructive
@pytest.mark.parametrize("program", COMPONENTS)
def test_smoke_check_fails_when_one_component_is_down(program: str) -> None:
    assert supervisorctl("stop", program).returncode == 0
    try:
        failed = wait_until(lambda: smoke().get(program), timeout=30, what=f"{program} probe to fail")
        assert failed
        cli = smoke_cli()
        assert cli.returncode != 0
        assert any(line.startswith(program) and "FAIL" in line for line in cli.stdout.splitlines())
    finally:
        assert supervisorctl("start", program).returncode == 0
    # Everything recovers once the component is back (services reconnect by themselves).
    wait_until(lambda: not any(smoke().values()), timeout=120, interval=0.5, what="stack to recover")
    if program.startswith("redis"):  # Sentinel may have failed over meanwhile: primary back on `redis`
        asyncio.run(sentinel.fail_back(SETTINGS))


def program_pid(program: str) -> int:
    out = supervisorctl("pid", program).stdout.strip()
    return int(out) if out.isdigit() else 0


@pytest.mark.destructive
@pytest.mark.parametrize("program", ["shorten-1", "redirect-3", "analytics", "redis-replica"])
def test_a_crashed_program_is_restarted_by_the_supervisor(program: str) -> None:
    import os
    import signal

    before = program_pid(program)
    assert before > 0
    os.kill(before, signal.SIGKILL)
    wait_until(lambda: program_pid(program) not in (0, before), timeout=30, what=f"{program} restarted")
    wait_until(lambda: smoke().get(program) is None, timeout=60, interval=0.5, what=f"{program} ready again")
    # No orphan of the killed process keeps serving (e.g. a server's worker child).
    wait_until(lambda: orphans() == [], timeout=15, what="no orphaned service process")


def orphans() -> list[tuple[int, str]]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmd = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        if ppid == 1 and str(ROOT / ".venv/bin/python") in cmd and " serve" in cmd:
            found.append((int(entry.name), cmd))
    return found
