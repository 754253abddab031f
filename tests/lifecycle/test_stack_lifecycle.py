"""`just down` leaves nothing behind; `just up` brings the whole stack back to serving.

Runs last (its own pytest invocation in `just test`), since it stops everything."""

import subprocess

import pytest
from stackctl import checks, supervisor
from stackctl.config import StackSettings

from tests.conftest import ROOT

SETTINGS = StackSettings()


def just(*args: str, timeout: float) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(ROOT / ".venv/bin/just"), *args], cwd=ROOT, capture_output=True, text=True, timeout=timeout
    )


@pytest.mark.destructive
def test_down_leaves_nothing_running_and_up_serves_again() -> None:
    down = just("down", timeout=180)
    assert down.returncode == 0, down.stdout + down.stderr
    assert supervisor.supervisord_pid(SETTINGS) is None
    assert {n: p for n, p in checks.stack_ports(SETTINGS).items() if checks.port_in_use(p)} == {}
    assert supervisor.leftover_processes(SETTINGS) == []
    assert just("check", timeout=60).returncode != 0

    up = just("up", timeout=600)
    assert up.returncode == 0, up.stdout[-3000:] + up.stderr[-3000:]
    check = just("check", timeout=60)
    assert check.returncode == 0, check.stdout
