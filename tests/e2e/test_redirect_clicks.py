"""Every redirect served by the stack publishes one click (inside a partition batch record) on
the `clicks` topic, with the right fields; bots and link previews are flagged, not dropped; HEAD is not a click."""

import re

import httpx
import pytest

from tests.conftest import public_url, wait_until_async
from tests.integration.redirect.support import ClicksTopic, api, create, replicas

pytestmark = pytest.mark.e2e
__all__ = ["api", "replicas"]  # fixtures

PREVIEWS = {
    "Slackbot-LinkExpanding 1.0 (+https://api.slack.com/robots)",
    "facebookexternalhit/1.1 (+http://www.facebook.com/externalhit_uatext.php)",
    "Twitterbot/1.0",
    "WhatsApp/2.23.20.0 A",
    "Mozilla/5.0 (compatible; Discordbot/2.0; +https://discordapp.com)",
    "LinkedInBot/1.0 (compatible; Mozilla/5.0; Apache-HttpClient +http://www.linkedin.com)",
    "TelegramBot (like TwitterBot)",
    "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
}
FIREFOX = "Mozilla/5.0 (X11; Ubuntu; Linux x86_64; rv:120.0) Gecko/20100101 Firefox/120.0"
UUID7 = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}")


async def test_clicks_through_nginx_carry_the_request_and_flag_bots(api: httpx.AsyncClient) -> None:
    link = await create(api, url="https://clicks.example/a")
    code = link["code"]
    async with ClicksTopic() as topic, httpx.AsyncClient(base_url=public_url(), timeout=5) as public:

        async def served() -> bool:
            return (await public.head(f"/{code}")).status_code == 302  # HEAD: no click

        await wait_until_async(served, timeout=5, interval=0.01, what="link served through nginx")
        # Clients on three loopback addresses; every request also claims some other address in
        # X-Forwarded-For, which nginx must not pass on (the client would pick its visitor key).
        sent = [(ua, "127.0.0.10") for ua in sorted(PREVIEWS)] + [(FIREFOX, "127.0.0.1")] * 2
        sent.append((FIREFOX, "127.0.0.12"))
        for i, (ua, ip) in enumerate(sent):
            headers = {"User-Agent": ua, "Referer": "https://ref.example/p", "X-Forwarded-For": f"203.0.113.{i}"}
            transport = httpx.AsyncHTTPTransport(local_address=ip)
            async with httpx.AsyncClient(base_url=public_url(), timeout=5, transport=transport) as client:
                assert (await client.get(f"/{code}", headers=headers)).status_code == 302
        events = await topic.wait_for(code, len(sent), timeout=15)
        await topic.poll()
        assert len(topic.for_code(code)) == len(sent)  # one per GET; the HEADs made none

    assert len({e.event_id for e in events}) == len(sent) and all(UUID7.fullmatch(str(e.event_id)) for e in events)
    by_ua: dict[str, list[object]] = {}
    for e in events:
        assert (e.code, e.referrer, e.country) == (code, "https://ref.example/p", "ZZ")
        assert re.fullmatch(r"[0-9a-f]{32}", e.visitor_key) and "203.0.113" not in e.visitor_key
        by_ua.setdefault(e.user_agent, []).append(e)
    for ua in PREVIEWS:
        [bot] = by_ua[ua]
        assert (bot.is_bot, bot.device) == (True, "bot"), ua  # type: ignore[attr-defined]
    people = [e for e in events if e.user_agent == FIREFOX]
    assert [(p.is_bot, p.device) for p in people] == [(False, "desktop")] * 3
    # The visitor key is per client (the address that connected to nginx) and user agent; the
    # two requests from 127.0.0.1 (an address the replicas trust as a proxy) claimed different
    # X-Forwarded-For addresses.
    keys = [p.visitor_key for p in sorted(people, key=lambda p: p.occurred_at)]
    assert keys[0] == keys[1] != keys[2]


async def test_every_replica_publishes_each_redirect_once(
    api: httpx.AsyncClient, replicas: list[httpx.AsyncClient]
) -> None:
    link = await create(api, url="https://clicks.example/b")
    code = link["code"]

    async def everywhere() -> bool:  # HEAD: served, but no click
        return [(await r.head(f"/{code}")).status_code for r in replicas] == [302] * len(replicas)

    await wait_until_async(everywhere, timeout=5, interval=0.01, what="link on every replica")
    async with ClicksTopic() as topic:
        for i in range(12):
            assert (await replicas[i % 3].get(f"/{code}")).status_code == 302
        events = await topic.wait_for(code, 12, timeout=15)
        await topic.poll()
    assert len(topic.for_code(code)) == 12 and len({e.event_id for e in events}) == 12
