"""`just up` from a second checkout (another .local) while this stack holds the ports refuses
to start, names the busy ports, and creates nothing; the running stack is untouched."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from stackctl import checks
from stackctl.config import StackSettings

from tests.conftest import ROOT

pytestmark = pytest.mark.integration


def test_up_refuses_ports_another_stack_holds(tmp_path: Path) -> None:
    settings = StackSettings()
    assert checks.port_in_use(settings.public_http_port)  # the stack the tests run against
    other = tmp_path / "other-checkout-local"
    result = subprocess.run(
        [sys.executable, "-m", "stackctl", "up"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={**os.environ, "LOCAL_DIR": str(other)},
        timeout=60,
    )
    assert result.returncode != 0
    assert "ports in use by processes this stack does not run" in result.stderr
    assert f"nginx {settings.public_http_port}" in result.stderr
    assert f"kafka {settings.kafka_port}" in result.stderr
    assert not other.exists()  # refused before generating keys, configs or data
    assert checks.port_in_use(settings.public_http_port)
