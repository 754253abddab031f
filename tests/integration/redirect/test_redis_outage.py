"""The Redis primary down for 60 s (REDIS_OUTAGE_SECONDS), then back EMPTY (its data directory
lost): every code the replicas have served keeps redirecting through nginx the whole time, nginx
ejects no replica, unknown codes get the replica's answer or a JSON 503 with Retry-After (in the
last third the Redis replica is stopped too, so the L1 serves links past their TTL), a link
updated and one created during the outage are served at once and reach Redis when it is back,
and an empty Redis is rebuilt from `links` without an operator.

Destructive: stops the stack's Redis primary and replica (restarted in `finally`, the primary's
data directory kept in the first part) and empties the primary in the second."""

import asyncio
import os
import shutil
import subprocess
import time
from collections import Counter
from typing import Any

import httpx
import pytest
import redis.asyncio as aioredis
from stackctl.config import StackSettings

from tests.conftest import LOCAL, ROOT, public_url, redirect_replica_urls, wait_until_async
from tests.integration.redirect.support import LIVE_REDIS_URL, api, create, unique_code
from tests.integration.shorten.support import end_offsets

pytestmark = [pytest.mark.integration, pytest.mark.destructive]
__all__ = ["api"]  # fixture

OUTAGE_S = float(os.environ.get("REDIS_OUTAGE_SECONDS", "60"))
EMPTY_WATCH_S = 15.0
CODES = 12


SENTINELS = [f"redis-sentinel-{i}" for i in range(1, len(StackSettings().sentinel_ports) + 1)]


def supervisorctl(*args: str) -> str:
    return subprocess.run(
        [str(ROOT / ".venv/bin/supervisorctl"), "-c", str(LOCAL / "supervisord.conf"), *args],
        capture_output=True,
        text=True,
        timeout=120,
    ).stdout


class Watch:
    """Requests through nginx and on each replica; tallies what the served codes got."""

    def __init__(self, expected: dict[str, str]) -> None:
        self.expected = expected  # code -> URL it must redirect to (updated when a PATCH returns)
        self.in_flight: dict[str, str] = {}  # code -> URL a PATCH not yet answered may already show
        self.clients = [httpx.AsyncClient(base_url=url, timeout=5) for url in [public_url(), *redirect_replica_urls()]]
        self.served = Counter[str]()
        self.wrong: list[str] = []
        self.unknown = Counter[int]()

    async def round(self) -> None:
        for code, url in list(self.expected.items()):
            for client in self.clients:
                r = await client.get(f"/{code}")
                if r.status_code in (301, 302) and r.headers["location"] in (url, self.in_flight.get(code)):
                    self.served[code] += 1
                else:
                    self.wrong.append(f"{client.base_url}/{code}: {r.status_code} {r.headers.get('location')} {r.text}")
        for client in self.clients:
            r = await client.get(f"/{unique_code('nx')}")
            self.unknown[r.status_code] += 1
            if r.status_code == 503:
                body = r.json()["error"]
                assert r.headers.get("retry-after") and body["code"] == "unavailable", (r.headers, body)
            else:
                assert r.status_code == 404, r.text

    async def run_for(self, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            await self.round()
            await asyncio.sleep(0.02)

    async def aclose(self) -> None:
        for client in self.clients:
            await client.aclose()


async def _in_redis(store: Any, code: str, url: str) -> bool:
    try:
        return bool(await store.hget(f"link:{code}", "u") == url.encode())
    except aioredis.RedisError:
        return False


async def test_redis_primary_down_then_back_empty(api: httpx.AsyncClient) -> None:
    links = [await create(api, url=f"https://outage.example/{i}", alias=unique_code("ro")) for i in range(CODES)]
    watch = Watch({link["code"]: link["url"] for link in links})
    store = aioredis.Redis.from_url(LIVE_REDIS_URL, socket_timeout=2, socket_connect_timeout=2)
    try:
        await watch.round()  # every code served by every replica: in every L1
        assert watch.wrong == []
        # The primary is down with nobody to promote the replica (the Sentinel failover has its
        # own test, tests/e2e/test_chaos.py): the sentinels stop first and start again last.
        supervisorctl("stop", *SENTINELS)
        supervisorctl("stop", "redis")
        try:
            outage = asyncio.create_task(watch.run_for(OUTAGE_S))
            await asyncio.sleep(min(5.0, OUTAGE_S / 4))
            changed, new_url = links[0]["code"], "https://outage.example/changed"
            watch.in_flight[changed] = new_url
            r = await api.patch(f"/api/v1/links/{changed}", json={"url": new_url})
            assert r.status_code == 200, r.text
            watch.expected[changed] = new_url  # from its answer on, only the new URL
            born = await create(api, url="https://outage.example/born", alias=unique_code("ro"))
            watch.expected[born["code"]] = born["url"]
            # The last third without the Redis replica either: links past their L1 TTL (filled
            # before the outage) are served from the L1, unknown codes get 503 + Retry-After.
            await asyncio.sleep(OUTAGE_S * 2 / 3 - min(5.0, OUTAGE_S / 4))
            supervisorctl("stop", "redis-replica")
            await outage
        finally:
            supervisorctl("start", "redis-replica")
            supervisorctl("start", "redis")
            supervisorctl("start", *SENTINELS)
        assert watch.wrong == [], f"{len(watch.wrong)} wrong answers during the outage: {watch.wrong[:5]}"
        assert all(watch.served[code] > 0 for code in watch.expected)

        async def outage_writes_in_redis() -> bool:
            return await _in_redis(store, changed, new_url) and await _in_redis(store, born["code"], born["url"])

        await wait_until_async(outage_writes_in_redis, timeout=30, interval=0.2, what="outage writes in Redis")

        # Back EMPTY: the read model rebuilds itself from `links` while the codes keep redirecting.
        supervisorctl("stop", *SENTINELS)
        supervisorctl("stop", "redis")
        try:
            # Its data lost; its config file (which primary it follows, kept by Sentinel) is not data.
            for entry in (LOCAL / "redis" / "primary").iterdir():
                if entry.name != "redis.conf":
                    shutil.rmtree(entry) if entry.is_dir() else entry.unlink()
        finally:
            supervisorctl("start", "redis")
            supervisorctl("start", *SENTINELS)
        await watch.run_for(EMPTY_WATCH_S)
        assert watch.wrong == [], f"{len(watch.wrong)} wrong answers after the empty restart: {watch.wrong[:5]}"

        async def rebuilt() -> bool:
            return all([await _in_redis(store, code, url) for code, url in watch.expected.items()])

        await wait_until_async(rebuilt, timeout=60, interval=0.5, what="the read model rebuilt from links")
        ends = await end_offsets()

        async def whole_topic_applied() -> bool:  # so the tests after this one find a complete model
            stored = {int(p): int(o) for p, o in (await store.hgetall("links:offsets")).items()}
            return all(stored.get(p, 0) >= end for p, end in ends.items())

        await wait_until_async(whole_topic_applied, timeout=60, interval=0.5, what="links:offsets at the topic's end")
        assert watch.unknown[503] > 0  # while neither Redis answered
        print(f"served: {sum(watch.served.values())}, unknown codes answered: {dict(watch.unknown)}")
    finally:
        for program in ("redis", "redis-replica", *SENTINELS):
            if "RUNNING" not in supervisorctl("status", program):
                supervisorctl("start", program)
        await store.aclose()
        await watch.aclose()
