"""A click's country comes from the visitor's address (offline IP database in the redirect's click
builder): clicks sent through a trusted proxy address for well-known public and documentation
addresses show up in the link's stats under their registry countries ("ZZ" for none)."""

import uuid

import httpx
import pytest
from iptocc import country_code

from tests.conftest import public_url, redirect_replica_urls, wait_until_async

pytestmark = pytest.mark.e2e

# Google DNS (US), Cloudflare's 1.1.1.1 (APNIC: AU), RIPE NCC (NL) by IPv4 and IPv6, a
# documentation address (none) and a private one (none).
ADDRESSES = ["8.8.8.8", "8.8.4.4", "1.1.1.1", "193.0.6.139", "2001:67c:2e8:22::c100:68b", "203.0.113.7", "10.20.30.40"]


async def test_countries_of_clicks_come_from_the_client_addresses(api_key: str) -> None:
    expected: dict[str, int] = {}
    for address in ADDRESSES:
        country = country_code(address) or "ZZ"
        expected[country] = expected.get(country, 0) + 1
    assert expected["US"] == 2 and expected["AU"] == 1 and expected["NL"] == 2 and expected["ZZ"] == 2
    auth = {"Authorization": f"Bearer {api_key}"}
    async with httpx.AsyncClient(base_url=public_url(), timeout=10) as public:
        created = await public.post(
            "/api/v1/links", json={"url": f"https://example.com/geo/{uuid.uuid4()}"}, headers=auth
        )
        assert created.status_code == 201, created.text
        code = created.json()["code"]
        # Straight to a replica from 127.0.0.1, one of its trusted proxy addresses (like nginx):
        # the replica takes the client from X-Forwarded-For.
        replica = redirect_replica_urls()[0]
        for address in ADDRESSES:
            answer = await public.get(f"{replica}/{code}", headers={"X-Forwarded-For": address})
            assert answer.status_code == 302, answer.text

        async def countries() -> dict[str, int] | None:
            stats = await public.get(f"/api/v1/links/{code}/stats", headers=auth)
            if stats.status_code != 200 or stats.json()["lifetime"]["clicks"] < len(ADDRESSES):
                return None
            return {share["value"]: share["clicks"] for share in stats.json()["countries"]}

        assert await wait_until_async(countries, timeout=30, interval=0.3, what="the clicks in the stats") == expected
