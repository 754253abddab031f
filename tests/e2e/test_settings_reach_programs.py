"""A setting given to `just restart` reaches the restarted program: with OTEL_EXPORTER_OTLP_ENDPOINT
set, shorten-1 sends its spans to that OTLP receiver (and none of scrapes or probes); restarted
without it, it sends none. Destructive: restarts shorten-1 twice."""

import os
import subprocess
import threading
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from tests.conftest import ROOT, shorten_url, wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.destructive]


class Received:
    def __init__(self) -> None:
        self.spans: list[tuple[str, str, str]] = []  # (service.name, span name, url path)
        self.lock = threading.Lock()

    def names(self, service: str) -> list[str]:
        with self.lock:
            return [name for svc, name, _ in self.spans if svc == service]

    def paths(self) -> set[str]:
        with self.lock:
            return {path for _, _, path in self.spans if path}


@pytest.fixture
def otlp_receiver() -> Iterator[tuple[str, Received]]:
    received = Received()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            request = ExportTraceServiceRequest.FromString(body)
            with received.lock:
                for resource_spans in request.resource_spans:
                    attrs = {a.key: a.value.string_value for a in resource_spans.resource.attributes}
                    for scope in resource_spans.scope_spans:
                        for span in scope.spans:
                            path = next(
                                (a.value.string_value for a in span.attributes if a.key in ("url.path", "http.target")),
                                "",
                            )
                            received.spans.append((attrs.get("service.name", ""), span.name, path))
            self.send_response(200)
            self.send_header("Content-Type", "application/x-protobuf")
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/v1/traces", received
    finally:
        server.shutdown()


def restart_shorten_1(**settings: str | None) -> None:
    env = dict(os.environ)
    for name, value in settings.items():
        if value is None:
            env.pop(name, None)
        else:
            env[name] = value
    subprocess.run(
        [str(ROOT / "justw"), "restart", "shorten-1"], cwd=ROOT, env=env, check=True, capture_output=True, timeout=120
    )

    def ready() -> bool:
        try:
            return httpx.get(f"{shorten_url()}/readyz", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    wait_until(ready, timeout=60, what="shorten-1 ready after the restart")


def test_a_setting_reaches_the_program_at_restart(otlp_receiver: tuple[str, Received], api_key: str) -> None:
    endpoint, received = otlp_receiver
    try:
        restart_shorten_1(OTEL_EXPORTER_OTLP_ENDPOINT=endpoint)
        assert program_environment("shorten-1")["OTEL_EXPORTER_OTLP_ENDPOINT"] == endpoint
        for _ in range(3):
            httpx.get(f"{shorten_url()}/healthz", timeout=5)
            httpx.get(f"{shorten_url()}/metrics", timeout=5)
        created = httpx.post(
            f"{shorten_url()}/api/v1/links",
            json={"url": f"https://example.com/{uuid.uuid4()}"},
            headers={"Authorization": f"Bearer {api_key}"},
            timeout=10,
        )
        assert created.status_code == 201, created.text
        # The batch span processor exports within its schedule delay (5 s by default).
        wait_until(
            lambda: any("POST" in n for n in received.names("shorten")),
            timeout=30,
            what="shorten's span of the POST at the OTLP receiver",
        )
        assert not {p for p in received.paths() if p.rstrip("/").endswith(("/healthz", "/readyz", "/metrics"))}
    finally:
        restart_shorten_1(OTEL_EXPORTER_OTLP_ENDPOINT=None)
    # Restarted without the setting, the program no longer has it.
    assert "OTEL_EXPORTER_OTLP_ENDPOINT" not in program_environment("shorten-1")


def program_environment(program: str) -> dict[str, str]:
    pid = subprocess.run(
        [str(ROOT / ".venv/bin/supervisorctl"), "-c", str(ROOT / ".local/supervisord.conf"), "pid", program],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    with open(f"/proc/{int(pid)}/environ", "rb") as environ:
        pairs = [item.decode().partition("=") for item in environ.read().split(b"\0") if item]
    return {k: v for k, _, v in pairs}
