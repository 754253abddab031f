"""A key made with `just keys` (the justfile recipe) works through the public entry point at
once, its links reach the redirect and the `links` topic with their workspace, and another
workspace sees none of them."""

import json
import os
import secrets
import subprocess
from collections.abc import AsyncIterator

import httpx
import pytest
from contracts.links import LinkCreated

from tests.conftest import ROOT, public_url, wait_until_async
from tests.integration.shorten.support import LinksTopic, bearer

pytestmark = pytest.mark.e2e


def just_keys(*args: str) -> dict[str, str]:
    done = subprocess.run(
        [str(ROOT / ".venv/bin/just"), "keys", *args, "--json"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=os.environ.copy(),
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    created: dict[str, str] = json.loads(done.stdout)
    return created


@pytest.fixture
async def public() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=public_url(), timeout=10) as client:
        yield client


async def test_a_workspace_key_from_just_keys_creates_links_only_its_workspace_sees(
    public: httpx.AsyncClient, api_key: str
) -> None:
    workspace = f"e2e-{secrets.token_hex(4)}"
    key = just_keys("create", "--workspace", workspace, "--scopes", "links:write,stats:read")
    async with LinksTopic() as topic:
        created = await public.post(
            "/api/v1/links", json={"url": "https://e2e.example/ws", "tags": ["e2e"]}, headers=bearer(key["secret"])
        )
        assert created.status_code == 201, created.text
        code = created.json()["code"]
        [seen] = await topic.wait_for([code], 1, timeout=15)
        event = seen.event
    assert isinstance(event, LinkCreated) and (event.workspace, event.tags) == (workspace, ("e2e",))
    redirect = await public.get(f"/{code}")
    assert (redirect.status_code, redirect.headers["location"]) == (302, "https://e2e.example/ws")

    async def listed() -> list[str]:
        page = (await public.get("/api/v1/links", params={"tag": "e2e"}, headers=bearer(key["secret"]))).json()
        return [link["code"] for link in page["links"]]

    assert await wait_until_async(listed, timeout=5) == [code]
    # The stack's admin key is admin of `default`, not of this workspace.
    assert (await public.get(f"/api/v1/links/{code}", headers=bearer(api_key))).status_code == 404
    assert code not in [
        link["code"]
        for link in (await public.get("/api/v1/links", params={"q": code}, headers=bearer(api_key))).json()["links"]
    ]
