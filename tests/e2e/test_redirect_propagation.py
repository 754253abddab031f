"""Links made through the shorten API redirect on every replica (8011-8013) within 1 s (p99) of
the 201; updates and deletes are obeyed by every replica within 1 s (no stale L1 target)."""

import math

import httpx
import pytest

from tests.conftest import public_url, wait_until_async
from tests.integration.redirect.support import api, create, replicas, seconds_until_all, unique_code

pytestmark = pytest.mark.e2e
__all__ = ["api", "replicas"]  # fixtures

DEADLINE = 1.0


async def test_created_links_redirect_on_every_replica_within_a_second_p99(
    api: httpx.AsyncClient, replicas: list[httpx.AsyncClient]
) -> None:
    delays = []
    for i in range(25):
        link = await create(api, url=f"https://propagation.example/{i}", alias=unique_code("prop"))
        delays.append(await seconds_until_all(replicas, link["code"], (302, link["url"])))
    delays.sort()
    p99 = delays[math.ceil(0.99 * len(delays)) - 1]
    assert p99 <= DEADLINE, f"p99 {p99:.3f}s; all: {[round(d, 3) for d in delays]}"


async def test_an_update_is_obeyed_by_every_replica_within_a_second(
    api: httpx.AsyncClient, replicas: list[httpx.AsyncClient]
) -> None:
    link = await create(api, url="https://propagation.example/old")
    code = link["code"]
    await seconds_until_all(replicas, code, (302, "https://propagation.example/old"))  # now in every L1
    for url, rtype in (("https://propagation.example/new", 301), ("https://propagation.example/newer", 302)):
        response = await api.patch(f"/api/v1/links/{code}", json={"url": url, "redirect_type": rtype})
        assert response.status_code == 200, response.text
        assert await seconds_until_all(replicas, code, (rtype, url)) <= DEADLINE


async def test_a_delete_is_obeyed_by_every_replica_within_a_second(
    api: httpx.AsyncClient, replicas: list[httpx.AsyncClient]
) -> None:
    link = await create(api, url="https://propagation.example/doomed")
    await seconds_until_all(replicas, link["code"], (302, link["url"]))
    assert (await api.delete(f"/api/v1/links/{link['code']}")).status_code == 204
    assert await seconds_until_all(replicas, link["code"], (410, None)) <= DEADLINE
    for replica in replicas:
        body = (await replica.get(f"/{link['code']}")).json()
        assert body["error"]["code"] == "link_deleted"


async def test_through_the_public_entry_point(api: httpx.AsyncClient) -> None:
    link = await create(api, url="https://propagation.example/public")
    async with httpx.AsyncClient(base_url=public_url(), timeout=5) as public:

        async def redirects() -> bool:
            return (await public.get(f"/{link['code']}")).status_code == 302

        await wait_until_async(redirects, timeout=DEADLINE, interval=0.01, what="redirect through nginx")
        got = await public.get(f"/{link['code']}")
        assert (got.headers["location"], got.headers["cache-control"]) == (link["url"], "private, no-cache")
