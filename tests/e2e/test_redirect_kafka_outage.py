"""Destructive: Kafka stopped. Redirects keep being served (L1/Redis); click events wait in
each replica's bounded buffer (depth gauge) and reach the `clicks` topic when Kafka is back;
a replica whose buffer is full drops new clicks and counts them."""

import httpx
import pytest

from tests.conftest import redirect_replica_urls, wait_until, wait_until_async
from tests.integration.redirect.support import (
    TOPIC_CLICKS,
    ClicksTopic,
    RedirectProcess,
    api,
    create,
    end_offsets,
    metric_at,
    seconds_until_all,
)
from tests.integration.shorten.support import kafka_answers, program_state, supervisorctl

pytestmark = [pytest.mark.e2e, pytest.mark.destructive]
__all__ = ["api"]  # fixture

PER_REPLICA = 4
SMALL_BUFFER = 3
SENT_TO_SMALL = 5


async def test_clicks_wait_out_a_kafka_outage_within_the_bound(api: httpx.AsyncClient) -> None:
    link = await create(api, url="https://outage.example/clicks")
    code, replicas = link["code"], redirect_replica_urls()
    clients = [httpx.AsyncClient(base_url=u, timeout=5) for u in replicas]
    try:
        await seconds_until_all(clients, code, (302, link["url"]))
        async with RedirectProcess({"REDIRECT_CLICK_BUFFER_MAX": str(SMALL_BUFFER)}) as small:
            small_client = httpx.AsyncClient(base_url=small.url, timeout=5)
            assert (await small_client.head(f"/{code}")).status_code == 302
            start = await end_offsets(TOPIC_CLICKS)
            supervisorctl("stop", "kafka")
            try:
                assert program_state("kafka") == "STOPPED"
                for client in clients:
                    for _ in range(PER_REPLICA):
                        assert (await client.get(f"/{code}")).status_code == 302  # served without Kafka
                for _ in range(SENT_TO_SMALL):
                    assert (await small_client.get(f"/{code}")).status_code == 302
                for url in replicas:
                    assert await metric_at(url, "redirect_click_buffer_depth") >= PER_REPLICA
                assert await small.metric("redirect_click_buffer_depth") == SMALL_BUFFER
                assert await small.metric("redirect_click_events_dropped_total") == SENT_TO_SMALL - SMALL_BUFFER
            finally:
                supervisorctl("start", "kafka")
                wait_until(lambda: program_state("kafka") == "RUNNING", timeout=120, what="kafka running again")
                await wait_until_async(kafka_answers, timeout=120, interval=0.5, what="kafka answering again")
            expected = len(replicas) * PER_REPLICA + SMALL_BUFFER
            async with ClicksTopic(start=start) as topic:
                await topic.wait_for_unique(code, expected, timeout=120)
                await topic.poll()
                unique = topic.unique_for_code(code)
                assert len(unique) == expected  # nothing lost; the dropped ones never appear
                # At least once: a batch in flight when Kafka went away may arrive twice, always
                # as the same event (same id, same content), which the aggregator counts once.
                assert all(e == unique[e.event_id] for e in topic.for_code(code))
                # ... inside the same record: a re-sent batch is the same batch (same id, same clicks).
                batches = {r.batch.batch_id: r.batch for r in topic.records_with(code)}
                assert all(r.batch == batches[r.batch.batch_id] for r in topic.records_with(code))

            async def drained() -> bool:
                return await small.metric("redirect_click_buffer_depth") == 0

            await wait_until_async(drained, timeout=30, what="small buffer drained")
            await small_client.aclose()
    finally:
        for client in clients:
            await client.aclose()
