"""Public stats through nginx: reads without a key are limited per client address, and the
address is the one that connected to the edge, whatever X-Forwarded-For the client sends.

Each test connects from its own loopback address (127.x.y.z: all of 127.0.0.0/8 is this host), so
exhausting that address's window touches no other test."""

import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
import pytest
from analytics.settings import AnalyticsSettings

from tests.conftest import public_url, wait_until_async
from tests.integration.aggregator.support import unique_code
from tests.support.keys import issue_key, link_created, publish_links

pytestmark = pytest.mark.e2e


def loopback_address() -> str:
    return f"127.{secrets.randbelow(200) + 20}.{secrets.randbelow(250) + 1}.{secrets.randbelow(250) + 1}"


@asynccontextmanager
async def client_from(address: str) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.AsyncHTTPTransport(local_address=address)
    async with httpx.AsyncClient(transport=transport, base_url=public_url(), timeout=10) as client:
        yield client


async def test_public_stats_are_limited_per_connecting_address_not_per_forwarded_header() -> None:
    limit = AnalyticsSettings().public_rate_limit().amount  # the service's setting (the stack keeps the default)
    acme = f"ws-{secrets.token_hex(5)}"
    owner = await issue_key(acme, ("stats:read",))
    code = unique_code("plim")
    await publish_links([link_created(code, workspace=acme, public_stats=True)])
    async with client_from(loopback_address()) as spoofer, client_from(loopback_address()) as bystander:

        async def public_now() -> bool:
            r = await spoofer.get(f"/api/v1/links/{code}/stats", headers=owner.headers)
            return r.status_code == 200

        await wait_until_async(public_now, timeout=30, interval=0.2, what=f"{code} known")
        statuses = []
        for i in range(limit + 1):
            # A new "client" in every request's X-Forwarded-For: nginx replaces it with the address
            # that connected, so they are all the same client.
            r = await spoofer.get(
                f"/api/v1/links/{code}/stats", headers={"X-Forwarded-For": f"198.51.100.{i % 250}, 203.0.113.{i % 250}"}
            )
            statuses.append(r.status_code)
            if r.status_code == 429:
                break
        assert statuses.count(200) <= limit and statuses[-1] == 429, statuses
        assert r.json()["error"]["code"] == "public_rate_limited"
        assert 1 <= int(r.headers["retry-after"]) <= 60
        again = await spoofer.get(f"/api/v1/links/{code}/stats", headers={"X-Forwarded-For": "192.0.2.77"})
        assert again.status_code == 429  # a spoofed header is no way out
        assert (await bystander.get(f"/api/v1/links/{code}/stats")).status_code == 200  # another address
        assert (await spoofer.get(f"/api/v1/links/{code}/stats", headers=owner.headers)).status_code == 200  # keys
