"""Destructive: Kafka stopped. The shorten API still accepts links (the outbox holds their
events); when Kafka is back the relay publishes every LinkCreated, in order, and the links
redirect through the public entry point."""

from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx
import pytest
from contracts.links import LinkCreated, LinkUpdated

from tests.conftest import public_url, wait_until, wait_until_async
from tests.integration.shorten.support import (
    LinksTopic,
    end_offsets,
    kafka_answers,
    outbox_rows,
    program_state,
    supervisorctl,
    unique_alias,
)

pytestmark = [pytest.mark.e2e, pytest.mark.destructive]


@dataclass(frozen=True)
class Outage:
    offsets: dict[int, int]
    links: list[dict[str, object]]  # in creation order
    updated: str  # the code also updated during the outage


@pytest.fixture(scope="module")
async def outage(api_key: str) -> AsyncIterator[Outage]:
    offsets = await end_offsets()
    auth = {"Authorization": f"Bearer {api_key}"}
    created: list[dict[str, object]] = []
    supervisorctl("stop", "kafka")
    try:
        assert program_state("kafka") == "STOPPED"
        async with httpx.AsyncClient(base_url=public_url(), timeout=10) as client:
            for i in range(6):
                body: dict[str, object] = {"url": f"https://outage.example/{i}"}
                if i % 2:
                    body["alias"] = unique_alias("outage")
                response = await client.post("/api/v1/links", json=body, headers=auth)
                assert response.status_code == 201, response.text
                created.append(response.json())
            updated = str(created[0]["code"])
            patched = await client.patch(
                f"/api/v1/links/{updated}", json={"url": "https://outage.example/new"}, headers=auth
            )
            assert patched.status_code == 200
            created[0] = patched.json()
        # Kafka is really down: the events wait in the outbox, unpublished.
        pending = await outbox_rows([str(link["code"]) for link in created])
        assert len(pending) == 7 and all(r["published_at"] is None for r in pending)
    finally:
        supervisorctl("start", "kafka")
        wait_until(lambda: program_state("kafka") == "RUNNING", timeout=120, what="kafka running again")
        await wait_until_async(kafka_answers, timeout=120, interval=0.5, what="kafka answering again")
    yield Outage(offsets=offsets, links=created, updated=updated)


async def test_links_created_while_kafka_is_down_all_reach_the_topic_in_order(outage: Outage) -> None:
    codes = [str(link["code"]) for link in outage.links]
    async with LinksTopic(start_offsets=outage.offsets) as topic:
        seen = await topic.wait_for(codes, len(codes) + 1, timeout=180)

    # Nothing lost, nothing doubled: exactly the events the outbox holds.
    rows = await outbox_rows(codes)
    assert sorted(s.event.event_id for s in seen) == sorted(r["event_id"] for r in rows)
    # Per code: LinkCreated first (then the update, for the updated one).
    for code in codes:
        kinds = [type(s.event) for s in seen if s.event.code == code]
        assert kinds == ([LinkCreated, LinkUpdated] if code == outage.updated else [LinkCreated])
    # Per partition, events appear in the order they were written (outbox id order).
    outbox_order = {r["event_id"]: r["id"] for r in rows}
    for partition in {s.partition for s in seen}:
        in_partition = sorted((s for s in seen if s.partition == partition), key=lambda s: s.offset)
        ids = [outbox_order[s.event.event_id] for s in in_partition]
        assert ids == sorted(ids)
    final = {s.event.code: s.event for s in seen}
    assert isinstance(final[outage.updated], LinkUpdated) and final[outage.updated].url == "https://outage.example/new"


def test_links_created_while_kafka_is_down_redirect_after_it_returns(outage: Outage) -> None:
    with httpx.Client(base_url=public_url(), timeout=5, follow_redirects=False) as client:
        for link in outage.links:

            def redirected(code: str = str(link["code"]), url: object = link["url"]) -> bool:
                response = client.get(f"/{code}")
                return response.status_code in (301, 302) and response.headers.get("location") == url

            wait_until(redirected, timeout=120, interval=0.25, what=f"redirect of {link['code']}")
