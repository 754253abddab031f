"""The Kubernetes edge's nginx.conf (infra/k8s/base/edge/nginx.conf, as rendered into the
`shortlink-edge` ConfigMap) routes as the compose and native edges do: run here with Debian's
nginx on loopback, its upstreams pointed at three small local HTTP servers standing in for the
redirect, shorten and analytics Services."""

import json
import re
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest

from tests.conftest import ROOT
from tests.unit.test_k8s_manifests import objects

pytestmark = pytest.mark.unit


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def upstream(name: str) -> ThreadingHTTPServer:
    """Answers every request with JSON naming itself, the path and the X-Forwarded-For it got."""

    class Handler(BaseHTTPRequestHandler):
        def _answer(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            self.rfile.read(length)
            body = json.dumps(
                {"upstream": name, "path": self.path, "forwarded_for": self.headers.get("X-Forwarded-For")}
            ).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        do_GET = do_POST = _answer

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


@pytest.fixture
def edge(tmp_path: Path) -> Iterator[str]:
    conf = objects("prod", "ConfigMap")
    text = next(c for name, c in conf.items() if name.startswith("shortlink-edge"))["data"]["nginx.conf"]
    servers = {name: upstream(name) for name in ("redirect", "shorten", "analytics")}
    for name, server in servers.items():
        text, count = re.subn(rf"server {name}:\d+", f"server 127.0.0.1:{server.server_address[1]}", text)
        assert count == 1, name
    port = free_port()
    text = text.replace("listen 8080 ", f"listen 127.0.0.1:{port} ").replace("/tmp/", f"{tmp_path}/")
    (tmp_path / "nginx.conf").write_text(text)
    (tmp_path / "logs").mkdir()
    process = subprocess.Popen(
        ["/usr/sbin/nginx", "-p", str(tmp_path), "-c", str(tmp_path / "nginx.conf"), "-g", "daemon off;"],
        stderr=subprocess.PIPE,
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 15
    try:
        while True:
            try:
                httpx.get(f"{base}/healthz", timeout=1)
                break
            except httpx.TransportError:
                assert process.poll() is None, process.stderr.read() if process.stderr else ""
                assert time.monotonic() < deadline, "nginx did not answer within 15 s"
                time.sleep(0.05)
        yield base
    finally:
        process.terminate()
        process.wait(timeout=15)
        for server in servers.values():
            server.shutdown()


def test_the_edge_routes_like_the_other_stacks(edge: str) -> None:
    with httpx.Client(base_url=edge, timeout=5, follow_redirects=False) as client:
        routes = {
            ("GET", "/abc123"): "redirect",
            ("GET", "/readyz"): "redirect",
            ("POST", "/api/v1/links"): "shorten",
            ("GET", "/api/v1/links/abc123"): "shorten",
            ("GET", "/api/v1/links/abc123/stats"): "analytics",
            ("GET", "/api/v1/top"): "analytics",
            ("GET", "/api/v1/openapi/shorten.json"): "shorten",
            ("GET", "/api/v1/openapi/analytics.json"): "analytics",
        }
        for (method, path), name in routes.items():
            answer = client.request(method, path, json={} if method == "POST" else None)
            assert answer.status_code == 200 and answer.json()["upstream"] == name, (method, path, answer.text)
        assert client.get("/api/v1/openapi/shorten.json").json()["path"] == "/openapi.json"
        assert client.get("/healthz").json() == {"status": "ok"}
        for path, code in (("/metrics", "not_found"), ("/api/v2/nothing", "not_found")):
            answer = client.get(path)
            assert answer.status_code == 404 and answer.json()["error"]["code"] == code, path
        too_large = client.post("/api/v1/links", content=b"x" * 100_000)
        assert too_large.status_code == 413 and too_large.json()["error"]["code"] == "payload_too_large"


def test_a_client_forwarded_for_is_replaced_by_the_address_nginx_saw(edge: str) -> None:
    answer = httpx.get(f"{edge}/abc123", headers={"X-Forwarded-For": "203.0.113.9"}, timeout=5)
    assert answer.json()["forwarded_for"] == "127.0.0.1"


def public_locations(conf: str) -> set[str]:
    """`location <modifier> <path>` of the server listening on the public port (the first one)."""
    server = conf.split("server {", 2)[1]
    return {" ".join(m.split()) for m in re.findall(r"location\s+([^{]+)\{", server)}


def test_the_edge_has_the_same_public_routes_as_compose() -> None:
    conf = next(c for name, c in objects("prod", "ConfigMap").items() if name.startswith("shortlink-edge"))
    compose = (ROOT / "compose" / "nginx" / "nginx.conf").read_text()
    assert public_locations(conf["data"]["nginx.conf"]) == public_locations(compose)
