"""Regions (docs/regions.md): a redirect replica reads its region's `links` and the copies of
other regions' (TOPIC_LINKS_REMOTE, MirrorMaker 2's `A.links`), here two uuid topics on the
stack's Kafka, into one read model."""

import uuid
from datetime import UTC, datetime

import httpx
import pytest
import redis.asyncio as aioredis
from contracts.links import LinkCreated

from tests.conftest import wait_until_async
from tests.integration.redirect.support import (
    RedirectProcess,
    produce,
    redis_db,
    replica_env,
    temp_topics,
    topics,
    unique_code,
)

pytestmark = pytest.mark.integration
__all__ = ["redis_db", "topics"]  # fixtures


def created(code: str, url: str) -> LinkCreated:
    return LinkCreated(event_id=str(uuid.uuid4()), occurred_at=datetime.now(UTC), code=code, url=url)


async def test_links_of_this_region_and_of_a_remote_region_both_redirect(
    topics: dict[str, str], redis_db: aioredis.Redis
) -> None:
    async with temp_topics(("remote-links", 2, {"cleanup.policy": "compact"})) as [remote]:
        env = replica_env(topics, TOPIC_LINKS_REMOTE=remote)
        async with RedirectProcess(env) as replica, httpx.AsyncClient(timeout=2) as http:
            local_code, remote_code = unique_code("local"), unique_code("remote")
            [(local_partition, _)] = await produce(topics["links"], [created(local_code, "https://e.example/here")])
            [(remote_partition, _)] = await produce(remote, [created(remote_code, "https://e.example/there")])

            async def both_redirect() -> bool:
                got = [await http.get(f"{replica.url}/{c}") for c in (local_code, remote_code)]
                return [(r.status_code, r.headers.get("location")) for r in got] == [
                    (302, "https://e.example/here"),
                    (302, "https://e.example/there"),
                ]

            await wait_until_async(both_redirect, timeout=10, interval=0.02, what="both links redirecting")
            # Positions in Redis: this region's topic keeps its partition numbers, the second
            # topic's are numbered from 1000 (redirect/adapters/kafka_links.py).
            offsets = {int(k): int(v) for k, v in (await redis_db.hgetall("links:offsets")).items()}
            assert offsets[local_partition] == 1
            assert offsets[1000 + remote_partition] == 1
            assert set(offsets) <= {0, 1, 2, 1000, 1001}
