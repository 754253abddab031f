"""The loopback guard: load only ever goes to this machine, enforced in code at every layer."""

import subprocess
import sys
from pathlib import Path

import pytest

from loadtest.__main__ import main
from loadtest.commands import LOCUSTFILE
from loadtest.guard import NotLoopback, is_loopback_host, require_loopback

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[3]


@pytest.mark.parametrize(
    ("url", "base"),
    [
        ("http://127.0.0.1:8080", "http://127.0.0.1:8080"),
        ("http://127.0.0.1:8080/", "http://127.0.0.1:8080"),
        ("http://127.255.255.254", "http://127.255.255.254"),
        ("https://localhost:8443", "https://localhost:8443"),
        ("http://LOCALHOST:8080", "http://localhost:8080"),
        ("http://[::1]:8080", "http://[::1]:8080"),
    ],
)
def test_loopback_hosts_are_accepted(url: str, base: str) -> None:
    assert require_loopback(url) == base


@pytest.mark.parametrize(
    "url",
    [
        "http://host.docker.internal:8080",  # the runbook's container default: not loopback
        "http://10.0.0.1:8080",
        "http://192.168.1.10",
        "http://0.0.0.0:8080",
        "http://128.0.0.1",
        "http://example.com",
        "http://localhost.example.com",
        "http://127.0.0.1.nip.io",
        "http://127.0.0.1@example.com",  # userinfo trick: the host is example.com
        "http://user:pw@127.0.0.1:8080",
        "http://127.1",  # numeric shorthands are not resolved
        "http://2130706433",
        "http://[::ffff:127.0.0.1]:8080",
        "http://[::2]",
        "ftp://127.0.0.1",
        "127.0.0.1:8080",
        "http://127.0.0.1:8080/api",
        "http://127.0.0.1:99999",
        "",
    ],
)
def test_everything_else_is_refused(url: str) -> None:
    with pytest.raises(NotLoopback):
        require_loopback(url)


def test_is_loopback_host_needs_a_literal() -> None:
    assert is_loopback_host("127.0.0.1") and is_loopback_host("::1") and is_loopback_host("localhost")
    assert not is_loopback_host("localhost.") and not is_loopback_host("127.0.0.256")


def test_the_cli_refuses_a_remote_host_before_doing_anything(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    code = main(["run", "--host", "http://10.1.2.3:8080", "--run-time", "5s", "--out-dir", str(out)])
    assert code == 2
    assert "only localhost, 127.0.0.0/8 and ::1" in capsys.readouterr().err
    assert not out.exists()  # no run directory: nothing was seeded or started


def test_the_dist_host_from_the_runbook_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("REQUEST_GENERATOR_HOST_DIST", "http://host.docker.internal:8080")
    code = main(["run", "--profile", "dist", "--out-dir", str(tmp_path / "out")])
    assert code == 2
    assert "host.docker.internal" in capsys.readouterr().err


def test_the_locustfile_itself_refuses_a_remote_host(tmp_path: Path) -> None:
    """Run by hand, bypassing the runner: locust exits before sending a request."""
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "locust",
            "-f",
            str(LOCUSTFILE),
            "--headless",
            "--host",
            "http://10.9.8.7:8080",
            "--users",
            "1",
            "--run-time",
            "5s",
            "--stop-timeout",
            "1",
            "--read-users",
            "1",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0
    assert "NotLoopback" in result.stderr and "refusing to generate load" in result.stderr
    assert "Ramping to" not in result.stderr


def test_the_callers_own_local_hosts_are_accepted_and_nothing_else_besides() -> None:
    """The cluster's hosts in their network namespaces (10.231.0.11 ...): the caller names them."""
    assert require_loopback("http://10.231.0.12:8012", local_hosts={"10.231.0.12"}) == "http://10.231.0.12:8012"
    with pytest.raises(NotLoopback):
        require_loopback("http://10.231.0.13:8012", local_hosts={"10.231.0.12"})
    with pytest.raises(NotLoopback):
        require_loopback("http://10.231.0.12:8012")
