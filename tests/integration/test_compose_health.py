"""The compose stack's health server (compose/composectl) serves the same Redis memory metrics
as the native one, read from the Redis its settings name; here those are the native stack's
Redis primary and replica. Prometheus scrapes it as job `stackcheck` in both stacks."""

import re
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import pytest
import yaml
from stackctl.config import StackSettings
from stackctl.render import TEMPLATES, render_text, template_values

from tests.conftest import ROOT

pytestmark = pytest.mark.integration

SETTINGS = StackSettings()


@asynccontextmanager
async def compose_health(monkeypatch: pytest.MonkeyPatch, *, replica_url: str) -> AsyncIterator[httpx.AsyncClient]:
    monkeypatch.syspath_prepend(str(ROOT / "compose"))
    monkeypatch.setenv("REDIS_URL", f"redis://127.0.0.1:{SETTINGS.redis_port}/0")
    monkeypatch.setenv("REDIS_REPLICA_URL", replica_url)
    from composectl.health import create_app

    transport = httpx.ASGITransport(app=create_app())
    async with httpx.AsyncClient(transport=transport, base_url="http://stackcheck") as client:
        yield client


def samples(text: str, name: str) -> dict[str, float]:
    found = re.findall(rf'^{name}{{role="(\w+)"}} (\S+)$', text, re.M)
    return {role: float(value) for role, value in found}


async def test_compose_health_server_reports_redis_memory_per_role(monkeypatch: pytest.MonkeyPatch) -> None:
    async with compose_health(monkeypatch, replica_url=f"redis://127.0.0.1:{SETTINGS.redis_replica_port}/0") as c:
        response = await c.get("/metrics")
    assert response.status_code == 200
    used = samples(response.text, "stack_redis_used_memory_bytes")
    limit = samples(response.text, "stack_redis_maxmemory_bytes")
    assert set(used) == set(limit) == {"primary", "replica"}
    assert all(v > 0 for v in used.values())
    assert limit["primary"] > 0  # the stack sets a maxmemory: the pressure alert has a denominator


async def test_an_unreachable_redis_has_no_sample_rather_than_a_stale_one(monkeypatch: pytest.MonkeyPatch) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed = s.getsockname()[1]
    async with compose_health(monkeypatch, replica_url=f"redis://127.0.0.1:{closed}/0") as c:
        text = (await c.get("/metrics")).text
    assert set(samples(text, "stack_redis_used_memory_bytes")) == {"primary"}


def test_both_prometheus_configs_scrape_the_same_jobs() -> None:
    native = yaml.safe_load(render_text((TEMPLATES / "prometheus.yml").read_text(), template_values(SETTINGS)))
    compose = yaml.safe_load(Path(ROOT / "compose" / "prometheus" / "prometheus.yml").read_text())

    def jobs(conf: dict[str, list[dict[str, str]]]) -> set[str]:
        return {job["job_name"] for job in conf["scrape_configs"]}

    assert jobs(compose) == jobs(native)
    assert "stackcheck" in jobs(compose)


async def test_compose_health_reports_each_service_by_name(monkeypatch: pytest.MonkeyPatch) -> None:
    # The compose host names (shorten, redirect-1, ...) do not resolve outside Docker: every
    # service check fails here, and the report must say so per service, as a JSON 503.
    async with compose_health(monkeypatch, replica_url=f"redis://127.0.0.1:{SETTINGS.redis_replica_port}/0") as c:
        response = await c.get("/healthz")
    from composectl.settings import ComposeSettings

    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "failing"
    assert set(body["checks"]) == set(ComposeSettings().service_urls())
    assert all(v != "ok" for v in body["checks"].values())
