"""Every service outlasts nginx on an idle keep-alive connection.

nginx reuses an idle upstream connection for up to its upstream `keepalive_timeout`. If the
service closes that connection first, a request nginx sends on it at that moment fails with a
502, and nginx does not retry a POST: a link creation through the public port got a 503 in CI
exactly this way (hypercorn's default idle timeout is 5 s)."""

import re
from pathlib import Path

import pytest
from platformkit.server import KEEP_ALIVE_TIMEOUT_S
from stackctl.config import StackSettings
from stackctl.render import TEMPLATES, render_text, template_values

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
_UPSTREAM = re.compile(r"upstream\s+(\w+)\s*\{([^}]*)\}")
_SECONDS = re.compile(r"^\s*keepalive_timeout\s+(\d+)s?;", re.M)


def upstream_idle_timeouts(nginx_conf: str) -> dict[str, int]:
    out = {}
    for name, body in _UPSTREAM.findall(nginx_conf):
        found = _SECONDS.findall(body)
        assert len(found) == 1, f"upstream {name}: one explicit keepalive_timeout expected, found {found}"
        out[name] = int(found[0])
    return out


def nginx_conf(which: str) -> str:
    if which == "native":
        return render_text((TEMPLATES / "nginx.conf").read_text(), template_values(StackSettings()))
    return (ROOT / "compose" / "nginx" / "nginx.conf").read_text()


@pytest.mark.parametrize("which", ["native", "compose"])
def test_nginx_drops_idle_upstream_connections_before_the_services_do(which: str) -> None:
    timeouts = upstream_idle_timeouts(nginx_conf(which))
    assert set(timeouts) == {"redirect", "shorten", "analytics", "stackcheck"}
    for name, seconds in timeouts.items():
        # A margin of seconds, not a tie: the close and the reuse must not meet.
        assert seconds + 10 <= KEEP_ALIVE_TIMEOUT_S, name


def test_granian_keeps_an_idle_connection_as_long_as_the_other_servers(monkeypatch: pytest.MonkeyPatch) -> None:
    """granian closes a connection on which no request head arrived within its HTTP/1 header read
    timeout (30 s by default), idle keep-alive connections included: that must outlast nginx too."""
    import granian
    from granian.http import HTTP1Settings
    from platformkit.server import serve

    captured: dict[str, object] = {}

    class Recorder:
        def __init__(self, *args: object, **kwargs: object) -> None:
            captured.update(kwargs)

        def serve(self) -> None:
            return None

    monkeypatch.setattr(granian, "Granian", Recorder)
    monkeypatch.setenv("PLATFORMKIT_APP_FACTORY", "")  # serve() sets it; restored afterwards
    serve(factory="shorten.entrypoints.app:app_from_env", server="granian", host="127.0.0.1", port=1)
    settings = captured["http1_settings"]
    assert isinstance(settings, HTTP1Settings)
    assert settings.header_read_timeout >= KEEP_ALIVE_TIMEOUT_S * 1000
