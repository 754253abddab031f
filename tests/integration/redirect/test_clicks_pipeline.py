"""Click events of a throwaway replica on real Kafka: the fields, the privacy rules, and the
flush of the buffer on SIGTERM."""

import uuid
from datetime import UTC, datetime

import httpx
import pytest
import redis.asyncio as aioredis
from contracts.links import LinkCreated
from redirect.domain.visitor import VisitorKeys

from tests.conftest import wait_until_async
from tests.integration.redirect.support import (
    ClicksTopic,
    RedirectProcess,
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
    assert bot.event_id != person.event_id and bot.event_id[14] == person.event_id[14] == "7"  # UUIDv7
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
