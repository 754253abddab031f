"""ClickHouse down: analytics answers 503 JSON (never 500) and is not ready; the aggregator keeps
its batch and retries, so clicks produced during the outage are counted once it is back.
Destructive: stops ClickHouse for a few seconds."""

import subprocess

import httpx
import pytest

from tests.conftest import LOCAL, ROOT, analytics_url, wait_until_async
from tests.integration.aggregator.support import ClickProducer, Expected, Stores, make_click, unique_code

pytestmark = [pytest.mark.integration, pytest.mark.destructive]


def supervisorctl(*args: str) -> str:
    return subprocess.run(
        [str(ROOT / ".venv/bin/supervisorctl"), "-c", str(LOCAL / "supervisord.conf"), *args],
        capture_output=True,
        text=True,
        timeout=180,
    ).stdout


async def test_clickhouse_outage_is_503_and_loses_no_click(api_key: str) -> None:
    code = unique_code("out")
    async with ClickProducer() as producer, Stores() as stores:
        await producer.send([make_click(code, 0)])
        await stores.wait_counted(code, Expected(1, 0))
        supervisorctl("stop", "clickhouse")
        try:
            async with httpx.AsyncClient(
                base_url=analytics_url(), timeout=15, headers={"Authorization": f"Bearer {api_key}"}
            ) as api:
                ready = await api.get("/readyz")
                assert ready.status_code == 503 and ready.json()["checks"]["clickhouse"] != "ok"
                for path in (f"/api/v1/links/{code}/stats", "/api/v1/top?window=1h&limit=3"):
                    r = await api.get(path)
                    assert r.status_code == 503, (path, r.text)
                    assert r.json()["error"]["code"] == "store_unavailable"
            await producer.send([make_click(code, i) for i in range(1, 6)])  # while ClickHouse is down
        finally:
            supervisorctl("start", "clickhouse")
        await stores.wait_counted(code, Expected(6, 0), timeout=180)

    async def ready_again() -> bool:
        async with httpx.AsyncClient(base_url=analytics_url(), timeout=5) as api:
            return (await api.get("/readyz")).status_code == 200

    await wait_until_async(ready_again, timeout=60, interval=0.5, what="analytics ready again")
