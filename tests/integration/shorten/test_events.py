"""Link writes reach the `links` topic through the outbox relay: key = code, in order, fast."""

import re
import statistics
import time

import httpx
import pytest
from contracts.links import LinkCreated, LinkDeleted, LinkUpdated

from tests.conftest import wait_until_async
from tests.integration.shorten.support import LinksTopic, outbox_rows, unique_alias

pytestmark = pytest.mark.integration

UUID7 = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}")


async def test_created_link_reaches_the_topic_in_milliseconds(client: httpx.AsyncClient, auth: dict[str, str]) -> None:
    latencies = []
    async with LinksTopic() as topic:
        for i in range(5):
            sent = time.monotonic()
            response = await client.post(
                "/api/v1/links", json={"url": f"https://e.com/{i}", "max_clicks": 4}, headers=auth
            )
            assert response.status_code == 201
            link = response.json()
            [seen] = await topic.wait_for([link["code"]], 1, timeout=20)
            latencies.append(seen.seen_at - sent)
            assert seen.key == link["code"].encode()
            event = seen.event
            assert isinstance(event, LinkCreated)
            assert (event.code, event.url, event.redirect_type, event.max_clicks, event.expires_at) == (
                link["code"], link["url"], 302, 4, None,
            )  # fmt: skip
            assert UUID7.fullmatch(event.event_id)
            assert event.occurred_at.isoformat().replace("+00:00", "Z") == link["created_at"]
    # The relay polls the outbox every SHORTEN_RELAY_POLL_INTERVAL (50 ms): a create reaches the
    # topic within that plus one Kafka round trip, far below these bounds.
    assert max(latencies) < 2.0 and statistics.median(latencies) < 0.5, latencies


async def test_update_and_delete_follow_in_order(client: httpx.AsyncClient, auth: dict[str, str]) -> None:
    alias = unique_alias("ev")
    async with LinksTopic() as topic:
        assert (
            await client.post("/api/v1/links", json={"url": "https://a.example/", "alias": alias}, headers=auth)
        ).status_code == 201
        assert (
            await client.patch(f"/api/v1/links/{alias}", json={"url": "https://b.example/"}, headers=auth)
        ).status_code == 200
        assert (
            await client.patch(f"/api/v1/links/{alias}", json={"redirect_type": 301}, headers=auth)
        ).status_code == 200
        assert (await client.delete(f"/api/v1/links/{alias}", headers=auth)).status_code == 204
        seen = await topic.wait_for([alias], 4, timeout=20)

    assert [type(s.event) for s in seen] == [LinkCreated, LinkUpdated, LinkUpdated, LinkDeleted]
    assert len({s.partition for s in seen}) == 1  # key = code: one partition, so one order
    assert [s.offset for s in seen] == sorted(s.offset for s in seen)
    assert all(s.key == alias.encode() for s in seen)
    first_update, second_update = seen[1].event, seen[2].event
    assert isinstance(first_update, LinkUpdated) and isinstance(second_update, LinkUpdated)
    assert (first_update.url, first_update.redirect_type) == ("https://b.example/", 302)
    assert (second_update.url, second_update.redirect_type) == ("https://b.example/", 301)  # full state

    # The outbox rows carry the same stable event ids, in the same order, all marked published.
    rows = await wait_until_async(lambda: _all_published(alias), timeout=10, what="outbox rows marked published")
    assert [r["event_id"] for r in rows] == [s.event.event_id for s in seen]
    assert len({s.event.event_id for s in seen}) == 4


async def _all_published(code: str) -> list[object] | None:
    rows = await outbox_rows([code])
    return rows if rows and all(r["published_at"] is not None for r in rows) else None


async def test_refused_writes_produce_no_event(client: httpx.AsyncClient, auth: dict[str, str]) -> None:
    alias = unique_alias("noev")
    assert (
        await client.post("/api/v1/links", json={"url": "https://a.example/", "alias": alias}, headers=auth)
    ).status_code == 201
    assert (
        await client.post("/api/v1/links", json={"url": "https://b.example/", "alias": alias}, headers=auth)
    ).status_code == 409
    assert (await client.patch(f"/api/v1/links/{alias}", json={"max_clicks": 0}, headers=auth)).status_code == 422
    assert [r["event_type"] for r in await outbox_rows([alias])] == ["LinkCreated"]
