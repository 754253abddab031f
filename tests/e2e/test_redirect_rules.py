"""Redirect rules end to end (shorten API -> links topic -> every replica): expiry, max_clicks
across replicas, HEAD, Cache-Control per redirect type, and JSON errors."""

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from tests.conftest import public_url, redirect_replica_urls, wait_until_async
from tests.integration.redirect.support import (
    answers,
    api,
    create,
    metric_at,
    replicas,
    seconds_until_all,
    unique_code,
)

pytestmark = pytest.mark.e2e
__all__ = ["api", "replicas"]  # fixtures


def iso(at: datetime) -> str:
    return at.isoformat().replace("+00:00", "Z")


async def test_an_expiring_link_turns_410_on_every_replica(
    api: httpx.AsyncClient, replicas: list[httpx.AsyncClient]
) -> None:
    expires = datetime.now(UTC) + timedelta(seconds=3)
    link = await create(api, url="https://rules.example/soon", expires_at=iso(expires))
    await seconds_until_all(replicas, link["code"], (302, link["url"]))

    async def gone() -> bool:
        return await answers(replicas, link["code"]) == [(410, None)] * len(replicas)

    await wait_until_async(gone, timeout=15, interval=0.05, what="expired everywhere")
    assert datetime.now(UTC) >= expires  # not before its time
    for replica in replicas:
        assert (await replica.get(f"/{link['code']}")).json()["error"]["code"] == "link_expired"


async def test_max_clicks_is_counted_across_replicas_and_head_does_not_count(
    api: httpx.AsyncClient, replicas: list[httpx.AsyncClient]
) -> None:
    link = await create(api, url="https://rules.example/limited", max_clicks=4)
    code = link["code"]

    async def everywhere() -> bool:
        return [(await r.head(f"/{code}")).status_code for r in replicas] == [302] * len(replicas)

    await wait_until_async(everywhere, timeout=5, interval=0.01, what="limited link on every replica")
    async with httpx.AsyncClient(base_url=public_url(), timeout=5) as public:
        head = await public.head(f"/{code}")
    assert head.status_code == 302 and "location" not in head.headers  # no target without a click
    statuses = [(await replicas[i % len(replicas)].get(f"/{code}")).status_code for i in range(6)]
    assert statuses == [302, 302, 302, 302, 410, 410]
    for replica in replicas:
        response = await replica.get(f"/{code}")
        assert (response.status_code, response.json()["error"]["code"]) == (410, "link_click_limit_reached")
        assert (await replica.head(f"/{code}")).status_code == 410


async def test_head_answers_like_get_without_a_body(api: httpx.AsyncClient) -> None:
    link = await create(api, url="https://rules.example/head")
    async with httpx.AsyncClient(base_url=public_url(), timeout=5) as public:

        async def ok() -> httpx.Response | None:
            r = await public.head(f"/{link['code']}")
            return r if r.status_code == 302 else None

        head = await wait_until_async(ok, timeout=5, interval=0.01, what="HEAD redirect")
        assert (head.headers["location"], head.content) == (link["url"], b"")
        missing = await public.head(f"/{unique_code('none')}")
        assert (missing.status_code, missing.content) == (404, b"")


async def test_cache_control_fits_the_redirect_type(api: httpx.AsyncClient, replicas: list[httpx.AsyncClient]) -> None:
    permanent = await create(api, url="https://rules.example/perm", redirect_type=301)
    temporary = await create(api, url="https://rules.example/temp", redirect_type=302)
    limited = await create(api, url="https://rules.example/lim", redirect_type=301, max_clicks=100)
    await seconds_until_all(replicas, limited["code"], (301, limited["url"]))
    expected = {
        permanent["code"]: (301, "public, max-age=3600"),
        temporary["code"]: (302, "private, no-cache"),
        limited["code"]: (301, "private, no-cache"),  # every click must reach us to be counted
    }
    for code, (status, cache) in expected.items():
        for replica in replicas:
            response = await replica.get(f"/{code}")
            assert (response.status_code, response.headers["cache-control"]) == (status, cache)


@pytest.mark.parametrize("path", ["/{unknown}", "/bad.code", "/" + "x" * 65, "/%C3%BCml", "/a%20b", "/{unknown}/more"])
async def test_unknown_and_impossible_codes_are_json_404(path: str) -> None:
    async with httpx.AsyncClient(base_url=public_url(), timeout=5) as public:
        response = await public.get(path.format(unknown=unique_code("none")))
    body: dict[str, Any] = response.json()
    assert response.status_code == 404 and body["error"]["code"] == "not_found"
    assert set(body["error"]) == {"code", "message", "field"}


async def test_other_methods_on_a_code_are_json_405() -> None:
    async with httpx.AsyncClient(base_url=redirect_replica_urls()[0], timeout=5) as replica:
        response = await replica.post(f"/{unique_code()}")
    assert (response.status_code, response.json()["error"]["code"]) == (405, "method_not_allowed")


async def test_metrics_count_lookups_statuses_and_latency(api: httpx.AsyncClient) -> None:
    replica = redirect_replica_urls()[0]
    link = await create(api, url="https://rules.example/metrics")
    names = [
        "redirect_l1_hits_total",
        "redirect_l1_misses_total",
        "redirect_redis_hits_total",
        "redirect_redis_misses_total",
        'redirect_responses_total{status="302"}',
        "redirect_request_duration_seconds_count",
        "redirect_click_buffer_depth",
        "redirect_click_events_dropped_total",
        "redirect_links_consumer_lag",
    ]
    async with httpx.AsyncClient(base_url=replica, timeout=5) as client:

        async def served() -> bool:
            return (await client.head(f"/{link['code']}")).status_code == 302

        await wait_until_async(served, timeout=5, interval=0.01, what="link on the replica")
        before = {n: await metric_at(replica, n) for n in names}
        for _ in range(3):
            assert (await client.get(f"/{link['code']}")).status_code == 302
        after = {n: await metric_at(replica, n) for n in names}
    assert after["redirect_l1_hits_total"] - before["redirect_l1_hits_total"] >= 3
    assert after['redirect_responses_total{status="302"}'] - before['redirect_responses_total{status="302"}'] >= 3
    assert after["redirect_request_duration_seconds_count"] - before["redirect_request_duration_seconds_count"] >= 3
