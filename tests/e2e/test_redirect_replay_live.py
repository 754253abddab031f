"""Destructive: the live read model is emptied and `python -m redirect replay-links` rebuilds it
from offset 0 of the stack's `links` topic; Redis then says what the topic says, and a replica
reading only Redis (L1 off) serves the links made through the API."""

import re

import httpx
import pytest
import redis.asyncio as aioredis

from tests.integration.redirect.support import (
    LIVE_REDIS_URL,
    TOPIC_LINKS,
    Raw,
    RedirectProcess,
    answers,
    api,
    create,
    empty_read_model,
    expected_read_model,
    read_topic,
    redis_read_model,
    replicas,
    run_replay,
    seconds_until_all,
)

pytestmark = [pytest.mark.e2e, pytest.mark.destructive]
__all__ = ["api", "replicas"]  # fixtures


Versions = dict[str, dict[int, tuple[int, dict[bytes, bytes]]]]


def versions(records: list[Raw]) -> Versions:
    """Every valid version of every code on the topic: code -> offset -> (partition, fields),
    projected independently of the service's code."""
    out: Versions = {}
    for r in records:
        for code, fields in expected_read_model([r]).items():
            out.setdefault(code, {})[r.offset] = (r.partition, fields)
    return out


async def test_replay_rebuilds_the_emptied_live_read_model(
    api: httpx.AsyncClient, replicas: list[httpx.AsyncClient]
) -> None:
    kept = await create(api, url="https://replay.example/kept")
    changed = await create(api, url="https://replay.example/before")
    deleted = await create(api, url="https://replay.example/deleted")
    assert (
        await api.patch(f"/api/v1/links/{changed['code']}", json={"url": "https://replay.example/after"})
    ).is_success
    assert (await api.delete(f"/api/v1/links/{deleted['code']}")).status_code == 204
    await seconds_until_all(replicas, deleted["code"], (410, None))
    await seconds_until_all(replicas, changed["code"], (302, "https://replay.example/after"))

    client = aioredis.Redis.from_url(LIVE_REDIS_URL)
    try:
        assert await empty_read_model(client) > 0
        assert await client.exists(f"link:{kept['code']}", "links:offsets") == 0

        result = await run_replay({})
        assert result.returncode == 0, result.stderr
        progress = [line for line in result.stdout.splitlines() if re.search(r"p0 \d+/\d+ \(\d+%\)", line)]
        assert progress and "(100%)" in progress[-1]
        targets = {int(p): int(o) for p, o in re.findall(r"(\d+): (\d+)", result.stdout.splitlines()[-1])}

        model = await redis_read_model(client)
        topic = versions(await read_topic(TOPIC_LINKS))
    finally:
        await client.aclose()
    # Every version in Redis is one the topic has; every code with a version below the offsets the
    # replay caught up to is there, at that version or a newer one (live replicas keep applying).
    assert set(model) <= set(topic)
    for code, fields in model.items():
        assert topic[code][int(fields[b"o"])][1] == fields, code
    for code, by_offset in topic.items():
        below = [o for o, (p, _) in by_offset.items() if o < targets[p]]
        if below:
            assert code in model and int(model[code][b"o"]) >= max(below), code

    async with RedirectProcess({"REDIRECT_L1_ENABLED": "false"}) as redis_only:
        async with httpx.AsyncClient(base_url=redis_only.url, timeout=5) as direct:
            got = [await answers([direct], link["code"]) for link in (kept, changed, deleted)]
    assert got == [[(302, kept["url"])], [(302, "https://replay.example/after")], [(410, None)]]
