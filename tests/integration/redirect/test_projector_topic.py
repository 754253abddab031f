"""The links projector on real Kafka and Redis: events produced with contracts.links on a uuid
topic drive throwaway redirect replicas (the real entry point) sharing the tests' Redis db."""

import re
import time
import uuid
from datetime import UTC, datetime, timedelta

import httpx
import pytest
import redis.asyncio as aioredis
from aiokafka import AIOKafkaProducer
from contracts import deadletter, links
from contracts.links import LinkCreated, LinkDeleted, LinkUpdated

from tests.conftest import wait_until_async
from tests.integration.redirect.support import (
    KAFKA,
    RedirectProcess,
    expected_read_model,
    free_port,
    produce,
    read_topic,
    redis_db,
    redis_read_model,
    replica_env,
    run_replay,
    topics,
    unique_code,
)

pytestmark = pytest.mark.integration
__all__ = ["redis_db", "topics"]  # fixtures

NOW = datetime.now(UTC)


def created(code: str, url: str, **kw: object) -> LinkCreated:
    return LinkCreated(event_id=str(uuid.uuid4()), occurred_at=NOW, code=code, url=url, **kw)  # type: ignore[arg-type]


async def answers(urls: list[str], code: str) -> list[tuple[int, str | None]]:
    async with httpx.AsyncClient(timeout=2) as client:
        responses = [await client.get(f"{u}/{code}") for u in urls]
    return [(r.status_code, r.headers.get("location")) for r in responses]


async def test_events_reach_every_replica_within_a_second(topics: dict[str, str], redis_db: aioredis.Redis) -> None:
    async with RedirectProcess(replica_env(topics)) as a, RedirectProcess(replica_env(topics)) as b:
        urls, code = [a.url, b.url], unique_code()

        async def all_answer(expected: tuple[int, str | None]) -> bool:
            return await answers(urls, code) == [expected] * 2

        assert await answers(urls, code) == [(404, None)] * 2  # cached as unknown in both L1s
        steps: list[tuple[object, tuple[int, str | None]]] = [
            (created(code, "https://e.example/one"), (302, "https://e.example/one")),
            (
                LinkUpdated(event_id="u", occurred_at=NOW, code=code, url="https://e.example/two", redirect_type=301),
                (301, "https://e.example/two"),
            ),
            (LinkDeleted(event_id="d", occurred_at=NOW, code=code), (410, None)),
        ]
        for event, expected in steps:
            await produce(topics["links"], [event])  # type: ignore[list-item]
            started = time.monotonic()
            await wait_until_async(lambda e=expected: all_answer(e), timeout=1.0, interval=0.01, what=str(expected))
            assert time.monotonic() - started <= 1.0
        stored = await redis_db.hgetall(f"link:{code}")
        assert (stored[b"d"], int(stored[b"o"])) == (b"1", 2)


async def test_poison_is_dead_lettered_once_and_the_stream_goes_on(
    topics: dict[str, str], redis_db: aioredis.Redis
) -> None:
    async with RedirectProcess(replica_env(topics)) as a, RedirectProcess(replica_env(topics)) as b:
        code = unique_code()
        [(partition, offset), _] = await produce(
            topics["links"], [(b"poison-1", b"{not json"), created(code, "https://e.example/after")]
        )

        async def both_serve_and_caught_up() -> bool:
            lags = [await p.metric("redirect_links_consumer_lag") for p in (a, b)]
            return await answers([a.url, b.url], code) == [(302, "https://e.example/after")] * 2 and lags == [0, 0]

        await wait_until_async(both_serve_and_caught_up, timeout=10, what="both replicas past the poison")
        records = [deadletter.decode(r.value or b"") for r in await read_topic(topics["dlq"])]
        assert [(d.source_topic, d.partition, d.offset, d.payload()) for d in records] == [
            (topics["links"], partition, offset, b"{not json")
        ]
        assert "links:" in records[0].error


async def test_replay_links_rebuilds_an_emptied_redis_exactly(topics: dict[str, str], redis_db: aioredis.Redis) -> None:
    codes = [unique_code() for _ in range(30)]
    later = NOW + timedelta(days=1)
    events: list[object] = [created(c, f"https://e.example/{i}") for i, c in enumerate(codes)]
    events += [
        LinkUpdated(
            event_id=f"u{i}",
            occurred_at=NOW,
            code=c,
            url=f"https://e.example/u{i}",
            redirect_type=301,
            expires_at=later,
            max_clicks=5,
        )
        for i, c in enumerate(codes[:10])
    ]
    events += [LinkDeleted(event_id=f"d{i}", occurred_at=NOW, code=c) for i, c in enumerate(codes[10:15])]
    events.append((b"poison-2", b'{"type":"LinkCreated"}'))
    await produce(topics["links"], events)  # type: ignore[arg-type]

    first = await run_replay(replica_env(topics))
    assert first.returncode == 0, first.stderr
    assert "rebuilding Redis from offset 0" in first.stdout and "done, caught up to" in first.stdout
    assert "(100%)" in first.stdout.splitlines()[-2]  # the final progress line: every partition at 100%
    expected = expected_read_model(await read_topic(topics["links"]))
    assert len(expected) == 30
    assert await redis_read_model(redis_db) == expected

    second = await run_replay(replica_env(topics))  # idempotent: nothing changes, nothing is written
    assert second.returncode == 0 and " 0 written" in second.stdout.splitlines()[-2]
    assert await redis_read_model(redis_db) == expected

    # Redirects are served from the rebuilt Redis (L1 off, and this replica applies nothing itself).
    async with RedirectProcess(replica_env(topics, REDIRECT_L1_ENABLED="false")) as replica:
        got = {c: (await answers([replica.url], c))[0] for c in codes}
        assert await replica.metric("redirect_links_events_applied_total") == 0
    for i, c in enumerate(codes):
        if i < 10:
            assert got[c] == (301, f"https://e.example/u{i}")
        elif i < 15:
            assert got[c] == (410, None)
        else:
            assert got[c] == (302, f"https://e.example/{i}")


async def test_readiness_needs_redis_and_a_caught_up_consumer(topics: dict[str, str]) -> None:
    dead_redis = f"redis://127.0.0.1:{free_port()}/0"  # nothing listens there
    # No Redis at all (and no Sentinel: it would name the live primary).
    env = replica_env(topics, REDIS_URL=dead_redis, REDIS_REPLICA_URL=dead_redis, REDIS_SENTINELS="")
    async with RedirectProcess(env, wait_ready=False) as replica:
        async with httpx.AsyncClient(base_url=replica.url, timeout=5) as client:
            assert (await client.get("/healthz")).json() == {"status": "ok"}
            ready = await client.get("/readyz")
            assert ready.status_code == 503 and ready.json()["status"] == "not_ready"
            checks = ready.json()["checks"]
            assert checks["redis"] != "ok" and checks["links_consumer"].startswith("NotCaughtUp")
            lookup = await client.get(f"/{unique_code()}")
            assert (lookup.status_code, lookup.json()["error"]["code"]) == (503, "unavailable")


async def test_replay_links_shows_progress_while_it_runs(topics: dict[str, str], redis_db: aioredis.Redis) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=KAFKA, enable_idempotence=True, acks="all", linger_ms=20)
    await producer.start()
    try:
        for i in range(30_000):
            event = created(f"bulk-{i:05d}", f"https://e.example/bulk/{i}")
            await producer.send(topics["links"], links.encode(event), key=links.key(event))
        await producer.flush()
    finally:
        await producer.stop()
    result = await run_replay(replica_env(topics))
    assert result.returncode == 0, result.stderr
    progress = [line for line in result.stdout.splitlines() if "applied" in line]
    percents = [[int(p) for p in re.findall(r"\((\d+)%\)", line)] for line in progress]
    assert any(min(p) < 100 for p in percents[:-1]), result.stdout  # seen before the end
    assert min(percents[-1]) == 100 and " 30000 applied" in progress[-1]
    assert await redis_db.hget("link:bulk-29999", "u") == b"https://e.example/bulk/29999"
