"""The links API against the running shorten service and its real PostgreSQL."""

import re
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from tests.conftest import public_url
from tests.integration.shorten.support import BASE62, link_row, unique_alias

pytestmark = pytest.mark.integration

LINK_KEYS = {
    "code",
    "short_url",
    "url",
    "expires_at",
    "redirect_type",
    "max_clicks",
    "created_at",
    "workspace",
    "public_stats",
    "tags",
}


def future(days: int = 30) -> str:
    return (datetime.now(UTC) + timedelta(days=days)).replace(microsecond=0).isoformat()


async def create(client: httpx.AsyncClient, auth: dict[str, str], **body: object) -> httpx.Response:
    return await client.post("/api/v1/links", json=body, headers=auth)


async def test_create_returns_201_and_the_link(client: httpx.AsyncClient, auth: dict[str, str]) -> None:
    before = datetime.now(UTC)
    response = await create(client, auth, url="https://example.com/some/page?x=1")
    assert response.status_code == 201, response.text
    body = response.json()
    assert set(body) == LINK_KEYS
    assert re.fullmatch(f"{BASE62}{{7,}}", body["code"])
    assert body["short_url"] == f"{public_url()}/{body['code']}"
    assert body["url"] == "https://example.com/some/page?x=1"
    assert (body["redirect_type"], body["expires_at"], body["max_clicks"]) == (302, None, None)
    created_at = datetime.fromisoformat(body["created_at"])
    assert created_at.tzinfo is not None and before - timedelta(seconds=5) < created_at < before + timedelta(seconds=5)
    assert response.headers["location"] == f"/api/v1/links/{body['code']}"


async def test_create_with_every_option_and_read_it_back(client: httpx.AsyncClient, auth: dict[str, str]) -> None:
    alias = unique_alias()
    expires_at = future()
    response = await create(
        client, auth, url="https://example.org/x", alias=alias, expires_at=expires_at, redirect_type=301, max_clicks=7
    )
    assert response.status_code == 201, response.text
    created = response.json()
    assert created["code"] == alias
    assert datetime.fromisoformat(created["expires_at"]) == datetime.fromisoformat(expires_at)
    assert (created["redirect_type"], created["max_clicks"]) == (301, 7)
    fetched = await client.get(f"/api/v1/links/{alias}", headers=auth)
    assert fetched.status_code == 200
    assert fetched.json() == created
    # The details hold the target (also of expired links and links past max_clicks): key only.
    anonymous = await client.get(f"/api/v1/links/{alias}")
    assert (anonymous.status_code, anonymous.json()["error"]["code"]) == (401, "api_key_missing")
    wrong = await client.get(f"/api/v1/links/{alias}", headers={"Authorization": "Bearer sk_wrong"})
    assert (wrong.status_code, wrong.json()["error"]["code"]) == (401, "api_key_invalid")


async def test_generated_codes_are_random_not_sequential(client: httpx.AsyncClient, auth: dict[str, str]) -> None:
    codes = []
    for _ in range(12):
        response = await create(client, auth, url="https://example.com/")
        assert response.status_code == 201
        codes.append(response.json()["code"])
    assert len(set(codes)) == len(codes)
    assert codes != sorted(codes)
    assert len({c[0] for c in codes}) > 3  # a counter would share its leading characters


async def test_idn_host_is_stored_as_punycode(client: httpx.AsyncClient, auth: dict[str, str]) -> None:
    response = await create(client, auth, url="https://bücher.example/straße")
    assert response.status_code == 201, response.text
    assert response.json()["url"] == "https://xn--bcher-kva.example/stra%C3%9Fe"


async def test_patch_changes_fields_and_null_clears_limits(client: httpx.AsyncClient, auth: dict[str, str]) -> None:
    alias = unique_alias()
    assert (await create(client, auth, url="https://a.example/", alias=alias, max_clicks=3)).status_code == 201
    expires_at = future(10)
    response = await client.patch(
        f"/api/v1/links/{alias}",
        json={"url": "https://b.example/new", "redirect_type": 301, "expires_at": expires_at},
        headers=auth,
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["url"], body["redirect_type"], body["max_clicks"]) == ("https://b.example/new", 301, 3)
    assert datetime.fromisoformat(body["expires_at"]) == datetime.fromisoformat(expires_at)

    cleared = await client.patch(f"/api/v1/links/{alias}", json={"expires_at": None, "max_clicks": None}, headers=auth)
    assert cleared.status_code == 200
    assert (cleared.json()["expires_at"], cleared.json()["max_clicks"]) == (None, None)
    assert (await client.get(f"/api/v1/links/{alias}", headers=auth)).json() == cleared.json()


async def test_delete_is_soft_and_the_code_is_never_reused(client: httpx.AsyncClient, auth: dict[str, str]) -> None:
    alias = unique_alias()
    assert (await create(client, auth, url="https://a.example/", alias=alias)).status_code == 201
    deleted = await client.delete(f"/api/v1/links/{alias}", headers=auth)
    assert deleted.status_code == 204 and deleted.content == b""

    # A deleted link answers 410 Gone (documented choice), for reads and writes alike.
    for response in (
        await client.get(f"/api/v1/links/{alias}", headers=auth),
        await client.patch(f"/api/v1/links/{alias}", json={"max_clicks": 5}, headers=auth),
        await client.delete(f"/api/v1/links/{alias}", headers=auth),
    ):
        assert response.status_code == 410
        assert response.json()["error"]["code"] == "link_deleted"

    again = await create(client, auth, url="https://other.example/", alias=alias)
    assert again.status_code == 409 and again.json()["error"]["code"] == "alias_taken"

    row = await link_row(alias)
    assert row is not None and row["deleted_at"] is not None and row["url"] == "https://a.example/"


@pytest.mark.parametrize("code", ["nOsUcH99", "zz-unknown-alias", "x", "a" * 65, "bad.code"])
async def test_unknown_code_is_404(client: httpx.AsyncClient, auth: dict[str, str], code: str) -> None:
    for response in (
        await client.get(f"/api/v1/links/{code}", headers=auth),
        await client.patch(f"/api/v1/links/{code}", json={"max_clicks": 1}, headers=auth),
        await client.delete(f"/api/v1/links/{code}", headers=auth),
    ):
        assert response.status_code == 404, response.text
        assert response.json()["error"]["code"] == "not_found"
