"""Workspaces and scoped keys on the running stack: keys made with `just keys` work at once on
every shorten process, scopes are enforced, another workspace's links do not exist for the
caller, revocation and rotation take effect, the list walks a workspace's links."""

import asyncio
import json
import os
import secrets
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import LOCAL, ROOT, public_url, wait_until_async
from tests.integration.shorten.support import bearer, unique_alias

pytestmark = pytest.mark.integration


def keys_cli(*args: str) -> subprocess.CompletedProcess[str]:
    """`just keys ...` (the recipe runs exactly this) with the stack's environment."""
    return subprocess.run(
        [sys.executable, "-m", "shorten", "keys", *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=os.environ.copy(),
        timeout=120,
        check=False,
    )


def created_key(*args: str) -> dict[str, str]:
    done = keys_cli(*args, "--json")
    assert done.returncode == 0, done.stderr
    created: dict[str, str] = json.loads(done.stdout)
    return created


def new_workspace() -> str:
    return f"ws-{secrets.token_hex(5)}"


async def create(client: httpx.AsyncClient, key: str, **body: object) -> httpx.Response:
    return await client.post("/api/v1/links", json={"url": "https://ws.example/", **body}, headers=bearer(key))


@pytest.fixture
async def edge() -> AsyncIterator[httpx.AsyncClient]:
    """Through nginx: requests spread over every shorten process."""
    async with httpx.AsyncClient(base_url=public_url(), timeout=10) as client:
        yield client


async def test_a_key_created_with_the_cli_works_at_once_on_every_process(edge: httpx.AsyncClient) -> None:
    workspace = new_workspace()
    key = created_key("create", "--workspace", workspace, "--scopes", "links:write", "--name", "at once")
    assert key["secret"].startswith("lsk_") and key["workspace"] == workspace
    # No wait: the CLI returned once the key was in the topic. Several requests reach every process.
    responses = await asyncio.gather(*(create(edge, key["secret"]) for _ in range(6)))
    assert [r.status_code for r in responses] == [201] * 6, [r.text for r in responses]
    assert {r.json()["workspace"] for r in responses} == {workspace}


async def test_scopes_are_enforced_with_403(client: httpx.AsyncClient) -> None:
    workspace = new_workspace()
    writer = created_key("create", "--workspace", workspace, "--scopes", "links:write")["secret"]
    reader = created_key("create", "--workspace", workspace, "--scopes", "links:read")["secret"]
    stats_only = created_key("create", "--workspace", workspace, "--scopes", "stats:read")["secret"]
    code = (await create(client, writer)).json()["code"]

    assert (await client.get(f"/api/v1/links/{code}", headers=bearer(reader))).status_code == 200
    assert (await client.get("/api/v1/links", headers=bearer(reader))).status_code == 200
    assert (await client.get(f"/api/v1/links/{code}", headers=bearer(writer))).status_code == 200  # write implies read
    refused = [
        await create(client, reader),
        await client.patch(f"/api/v1/links/{code}", json={"tags": ["x"]}, headers=bearer(reader)),
        await client.delete(f"/api/v1/links/{code}", headers=bearer(reader)),
        await client.get(f"/api/v1/links/{code}", headers=bearer(stats_only)),
        await client.get("/api/v1/links", headers=bearer(stats_only)),
    ]
    for response in refused:
        assert (response.status_code, response.json()["error"]["code"]) == (403, "scope_missing"), response.text


async def test_another_workspaces_link_is_404_exactly_like_a_missing_code_and_is_not_listed(
    client: httpx.AsyncClient,
) -> None:
    ours = created_key("create", "--workspace", new_workspace(), "--scopes", "links:write")["secret"]
    theirs = created_key("create", "--workspace", new_workspace(), "--scopes", "admin")["secret"]
    alias = unique_alias("owned")
    assert (await create(client, ours, alias=alias)).status_code == 201
    missing = unique_alias("never")

    def shown(response: httpx.Response, code: str) -> tuple[int, bytes, list[tuple[str, str]]]:
        headers = [(k, v) for k, v in response.headers.items() if k not in {"date", "content-length"}]
        return response.status_code, response.content.replace(code.encode(), b"<code>"), headers

    for method, body in (("GET", None), ("PATCH", {"url": "https://hijack.example/"}), ("DELETE", None)):
        other = await client.request(method, f"/api/v1/links/{alias}", json=body, headers=bearer(theirs))
        none = await client.request(method, f"/api/v1/links/{missing}", json=body, headers=bearer(theirs))
        assert other.status_code == 404 and other.json()["error"]["code"] == "not_found"
        assert shown(other, alias) == shown(none, missing), method
    listed = (await client.get("/api/v1/links", params={"q": alias}, headers=bearer(theirs))).json()
    assert listed == {"links": [], "next_cursor": None}
    # Untouched, and still ours.
    mine = await client.get(f"/api/v1/links/{alias}", headers=bearer(ours))
    assert mine.status_code == 200 and mine.json()["url"] == "https://ws.example/"
    # Codes are one space: their alias is taken for us too (409 reveals that it exists).
    taken = await create(client, theirs, alias=alias)
    assert (taken.status_code, taken.json()["error"]["code"]) == (409, "alias_taken")


async def test_a_revoked_key_is_refused_within_a_bounded_time(edge: httpx.AsyncClient) -> None:
    key = created_key("create", "--workspace", new_workspace(), "--scopes", "links:read")
    assert (await edge.get("/api/v1/links", headers=bearer(key["secret"]))).status_code == 200
    done = keys_cli("revoke", key["key_id"])
    assert done.returncode == 0 and f"revoked {key['key_id']}" in done.stdout, done.stderr

    async def refused_by_every_process() -> bool:
        statuses = [(await edge.get("/api/v1/links", headers=bearer(key["secret"]))).status_code for _ in range(4)]
        return statuses == [401] * 4

    await wait_until_async(refused_by_every_process, timeout=5, what="the revoked key refused everywhere")
    again = keys_cli("revoke", key["key_id"])
    assert again.returncode == 0 and "revoked already" in again.stdout


async def test_rotation_with_grace_accepts_both_then_only_the_new_secret(edge: httpx.AsyncClient) -> None:
    old = created_key("create", "--workspace", new_workspace(), "--scopes", "links:read", "--name", "rotating")
    new = created_key("rotate", old["key_id"], "--grace", "4s")
    assert new["key_id"] != old["key_id"] and new["secret"] != old["secret"]
    assert (new["workspace"], new["scopes"], new["name"]) == (old["workspace"], old["scopes"], old["name"])
    for secret in (old["secret"], new["secret"]):
        assert (await edge.get("/api/v1/links", headers=bearer(secret))).status_code == 200

    async def old_refused() -> bool:
        return (await edge.get("/api/v1/links", headers=bearer(old["secret"]))).status_code == 401

    await wait_until_async(old_refused, timeout=15, interval=0.2, what="the old secret refused after its grace")
    assert (await edge.get("/api/v1/links", headers=bearer(new["secret"]))).status_code == 200
    listed = {k["key_id"]: k for k in json.loads(keys_cli("list", "--workspace", old["workspace"], "--json").stdout)}
    assert listed[old["key_id"]]["replaced_by"] == new["key_id"] and listed[new["key_id"]]["state"] == "active"


async def test_cli_errors_are_clear_and_non_zero() -> None:
    cases = [
        (("create", "--workspace", "Bad Slug", "--scopes", "links:read"), "workspace_invalid"),
        (("create", "--workspace", "acme", "--scopes", "links:delete"), "scope_invalid"),
        (("create", "--workspace", "acme", "--scopes", "links:read", "--expires-in", "soon"), "duration_invalid"),
        (("revoke", "k_doesnotexist"), "key_not_found"),
        (("rotate", "k_doesnotexist"), "key_not_found"),
        (("rotate", "k_local_admin"), "key_reserved"),
    ]
    for args, code in cases:
        done = keys_cli(*args)
        assert done.returncode == 1 and code in done.stderr and "Traceback" not in done.stderr, (args, done.stderr)
        assert done.stdout == ""


async def test_secrets_appear_in_no_listing_log_argv_or_config(client: httpx.AsyncClient) -> None:
    key = created_key("create", "--workspace", new_workspace(), "--scopes", "links:write", "--name", "secretive")
    secret = key["secret"]
    local = (LOCAL / "api-key").read_text().strip()
    # Used (and refused once, misspelt) so that every path that could log it has run.
    assert (await create(client, secret)).status_code == 201
    assert (await client.get("/api/v1/links", headers=bearer(secret + "x"))).status_code == 401
    listing = keys_cli("list")
    assert listing.returncode == 0 and key["key_id"] in listing.stdout
    listed_json = keys_cli("list", "--json").stdout
    from platformkit.apikeys import digest

    for text in (listing.stdout, listed_json):
        for s in (secret, local):
            assert s not in text and digest(s) not in text
    assert holding([secret.encode(), local.encode()]) == []


def holding(needles: list[bytes]) -> list[Path]:
    """The stack's config, its programs' logs and every process's argv that contain a needle."""
    found = []
    for path in [LOCAL / "supervisord.conf", *(LOCAL / "logs").glob("*.log"), *Path("/proc").glob("[0-9]*/cmdline")]:
        try:
            content = path.read_bytes()
        except OSError:  # a process that ended meanwhile
            continue
        if any(needle in content for needle in needles):
            found.append(path)
    return found


async def test_public_stats_and_tags_are_stored_changed_and_shown(client: httpx.AsyncClient) -> None:
    key = created_key("create", "--workspace", new_workspace(), "--scopes", "links:write")["secret"]
    created = (await create(client, key, public_stats=True, tags=["launch", "q4"])).json()
    assert (created["public_stats"], created["tags"]) == (True, ["launch", "q4"])
    changed = await client.patch(
        f"/api/v1/links/{created['code']}", json={"tags": ["q1"], "public_stats": False}, headers=bearer(key)
    )
    assert (changed.json()["public_stats"], changed.json()["tags"]) == (False, ["q1"])
    read = (await client.get(f"/api/v1/links/{created['code']}", headers=bearer(key))).json()
    assert read == changed.json()


async def test_the_list_filters_by_q_and_tag_newest_first(client: httpx.AsyncClient) -> None:
    key = created_key("create", "--workspace", new_workspace(), "--scopes", "links:write")["secret"]
    marker = secrets.token_hex(4)
    shop = (await create(client, key, url=f"https://Shop.example/{marker}/a", tags=["shop", "q4"])).json()
    blog = (await create(client, key, url="https://blog.example/b", alias=f"Blog-{marker}", tags=["q4"])).json()
    gone = (await create(client, key, url=f"https://shop.example/{marker}/gone", tags=["shop"])).json()
    assert (await client.delete(f"/api/v1/links/{gone['code']}", headers=bearer(key))).status_code == 204
    other = (await create(client, key, url="https://other.example/", tags=["other"])).json()

    async def codes(**params: str) -> list[str]:
        response = await client.get("/api/v1/links", params=params, headers=bearer(key))
        assert response.status_code == 200, response.text
        return [link["code"] for link in response.json()["links"]]

    assert await codes() == [other["code"], blog["code"], shop["code"]]  # newest first, deleted not listed
    assert await codes(q=marker.upper()) == [blog["code"], shop["code"]]  # code or URL, any case
    assert await codes(q="SHOP.EXAMPLE") == [shop["code"]]
    assert await codes(q="%") == []  # taken literally
    assert await codes(tag="q4") == [blog["code"], shop["code"]]
    assert await codes(tag="Q4") == []  # tags are exact
    assert await codes(tag="shop", q=marker) == [shop["code"]]
    for params, code in (
        ({"limit": "0"}, "limit_invalid"),
        ({"limit": "101"}, "limit_invalid"),
        ({"cursor": "bm90LWEtY3Vyc29y"}, "cursor_invalid"),
        ({"tag": "a,b"}, "tag_invalid"),
    ):
        response = await client.get("/api/v1/links", params=params, headers=bearer(key))
        assert (response.status_code, response.json()["error"]["code"]) == (422, code), params


async def test_pagination_walks_every_link_exactly_once_while_links_are_created(client: httpx.AsyncClient) -> None:
    key = created_key("create", "--workspace", new_workspace(), "--scopes", "links:write")["secret"]
    existing = [(await create(client, key, url=f"https://page.example/{i}")).json()["code"] for i in range(23)]
    stop = asyncio.Event()
    added: list[str] = []

    async def keep_creating() -> None:
        while not stop.is_set():
            added.append((await create(client, key, url="https://page.example/new")).json()["code"])

    writer = asyncio.create_task(keep_creating())
    seen: list[str] = []
    cursor: str | None = None
    pages = 0
    try:
        while True:
            params = {"limit": "5", **({"cursor": cursor} if cursor else {})}
            page = (await client.get("/api/v1/links", params=params, headers=bearer(key))).json()
            assert len(page["links"]) <= 5
            seen += [link["code"] for link in page["links"]]
            pages += 1
            cursor = page["next_cursor"]
            if cursor is None:
                break
            await asyncio.sleep(0)  # let the writer add links between pages
    finally:
        stop.set()
        await writer
    assert len(seen) == len(set(seen)), "a link was listed twice"
    assert set(existing) <= set(seen)
    assert set(seen) <= set(existing) | set(added)
    assert pages >= 5
