"""Clicks of a throwaway replica on real Kafka: the fields, the privacy rules, one record per
partition batch (on the partition Kafka gives the codes, trace context per click), and the
flush of the buffer on SIGTERM."""

import uuid
from datetime import UTC, datetime

import httpx
import pytest
import redis.asyncio as aioredis
from contracts.links import LinkCreated
from redirect.adapters.kafka_clicks import partition_for
from redirect.domain.visitor import VisitorKeys

from tests.conftest import wait_until_async
from tests.integration.redirect.support import (
    ClicksTopic,
    RedirectProcess,
    free_port,
    produce,
    redis_db,
    replica_env,
    topics,
    unique_code,
)

pytestmark = pytest.mark.integration
__all__ = ["redis_db", "topics"]  # fixtures

SLACK = "Slackbot-LinkExpanding 1.0 (+https://api.slack.com/robots)"
IPHONE = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 Mobile/15E148"


async def make_link(topics: dict[str, str], replica: RedirectProcess) -> str:
    code = unique_code("clk")
    event = LinkCreated(event_id=str(uuid.uuid4()), occurred_at=datetime.now(UTC), code=code, url="https://e.example/")
    await produce(topics["links"], [event])

    async def served() -> bool:
        async with httpx.AsyncClient() as client:
            return (await client.head(f"{replica.url}/{code}")).status_code == 302

    await wait_until_async(served, timeout=5, what=f"{code} served")
    return code


async def test_click_events_carry_the_right_fields_and_no_ip(topics: dict[str, str], redis_db: aioredis.Redis) -> None:
    settings = replica_env(topics, REDIRECT_COUNTRY_HEADER="CF-IPCountry", REDIRECT_VISITOR_KEY_SECRET="test-secret")
    async with RedirectProcess(settings) as replica, ClicksTopic(topics["clicks"]) as topic:
        code = await make_link(topics, replica)
        async with httpx.AsyncClient(base_url=replica.url) as client:
            for ua, ip, country in ((SLACK, "203.0.113.7", "de"), (IPHONE, "198.51.100.9", "fr")):
                headers = {
                    "User-Agent": ua,
                    "Referer": "https://news.example/a",
                    "X-Forwarded-For": ip,
                    "CF-IPCountry": country,
                }
                assert (await client.get(f"/{code}", headers=headers)).status_code == 302
        bot, person = await topic.wait_for(code, 2, timeout=10)
        log = replica.log.read_text()
    assert (bot.is_bot, bot.device, bot.user_agent, bot.referrer, bot.country) == (
        True,
        "bot",
        SLACK,
        "https://news.example/a",
        "DE",
    )
    assert (person.is_bot, person.device, person.country) == (False, "mobile", "FR")
    keys = VisitorKeys(b"test-secret")
    assert bot.visitor_key == keys.key("203.0.113.7", SLACK, bot.occurred_at.date())
    assert person.visitor_key == keys.key("198.51.100.9", IPHONE, person.occurred_at.date())
    assert bot.event_id != person.event_id and bot.event_id.version == person.event_id.version == 7
    assert abs((datetime.now(UTC) - bot.occurred_at).total_seconds()) < 30
    # No raw client address anywhere: not in the event, not in the replica's log.
    for event in (bot, person):
        assert "203.0.113.7" not in repr(event) and "198.51.100.9" not in repr(event)
    assert "203.0.113.7" not in log and "198.51.100.9" not in log


async def test_sigterm_flushes_the_buffered_clicks(topics: dict[str, str], redis_db: aioredis.Redis) -> None:
    # The builder waits an hour before a batch: only the shutdown flush can deliver these.
    settings = replica_env(topics, REDIRECT_CLICK_FLUSH_INTERVAL_SECONDS="3600")
    async with RedirectProcess(settings) as replica, ClicksTopic(topics["clicks"]) as topic:
        code = await make_link(topics, replica)
        async with httpx.AsyncClient(base_url=replica.url) as client:
            for _ in range(5):
                assert (await client.get(f"/{code}")).status_code == 302
        assert await replica.metric("redirect_click_buffer_depth") == 5
        await topic.poll()
        assert topic.for_code(code) == []
        assert await replica.stop() == 0
        events = await topic.wait_for(code, 5, timeout=10)
        assert "click buffer closed: 5 events published" in replica.log.read_text()
    assert len({e.event_id for e in events}) == 5


async def test_one_record_per_partition_each_on_the_partition_of_its_codes(
    topics: dict[str, str], redis_db: aioredis.Redis
) -> None:
    """One flush (the SIGTERM one) of clicks on many codes: one record per partition, no key,
    on the partition Kafka's default partitioner gives each of its codes; tracing on, one
    traceparent header per click, continuing the client's trace when it sent one."""
    settings = replica_env(
        topics,
        REDIRECT_CLICK_FLUSH_INTERVAL_SECONDS="3600",
        # Tracing on (spans exported to a port nobody listens on: the export fails, harmlessly).
        OTEL_EXPORTER_OTLP_ENDPOINT=f"http://127.0.0.1:{free_port()}/v1/traces",
    )
    client_trace = "4bf92f3577b34da6a3ce929d0e0e4736"
    async with RedirectProcess(settings) as replica, ClicksTopic(topics["clicks"], start={}) as topic:
        codes = [await make_link(topics, replica) for _ in range(6)]
        async with httpx.AsyncClient(base_url=replica.url) as client:
            for code in codes:
                parent = {"traceparent": f"00-{client_trace}-00f067aa0ba902b7-01"}
                for headers in ({}, parent):
                    assert (await client.get(f"/{code}", headers=headers)).status_code == 302
        assert await replica.stop() == 0
        for code in codes:
            await topic.wait_for(code, 2, timeout=10)
    partitions = {partition_for(code.encode(), 3) for code in codes}
    assert len(topic.records) == len(partitions)  # one record per partition of this flush
    for record in topic.records:
        assert record.key is None and record.batch.producer.startswith("redirect-")
        assert {partition_for(c.code.encode(), 3) for c in record.batch.clicks} == {record.partition}
        assert [name for name, _ in record.headers] == ["traceparent"] * len(record.batch.clicks)
        trace_ids = [value.split(b"-")[1].decode() for _, value in record.headers]
        assert trace_ids.count(client_trace) == len(record.batch.clicks) // 2  # the ones that sent it
    assert len({r.batch.batch_id for r in topic.records}) == len(topic.records)
