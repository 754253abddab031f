"""The `links` agent: remembers which codes exist and who owns them (clicks.links_known in
PostgreSQL: analytics tells "known link, no clicks yet" (200, zeros) from "never seen" (404) and
decides who may read its stats, without calling shorten) and each workspace's links in ClickHouse
(link_workspaces: /top ranks one workspace's links inside ClickHouse). Both writes are idempotent
per event, so a batch retried or replayed changes nothing."""

from datetime import UTC, datetime
from typing import Any

import faust
from contracts import InvalidEvent, deadletter, links
from contracts.deadletter import MessageDeadLettered
from contracts.links import LinkEvent

from aggregator.adapters.kafka import FaustDeadLetters
from aggregator.bootstrap import LazyStores
from aggregator.domain.link_owners import owner_rows
from aggregator.metrics import AggregatorMetrics
from aggregator.service_layer.pipeline import Backoff, PipelineConfig, retry_until_done


def split(events: list[Any], *, consumer: str, now: datetime) -> tuple[list[LinkEvent], list[MessageDeadLettered]]:
    """Decode a batch of `links` events; undecodable ones become dead-letter records."""
    good: list[LinkEvent] = []
    poison: list[MessageDeadLettered] = []
    for event in events:
        m = event.message
        try:
            if m.value is None:
                raise InvalidEvent("links: empty record (tombstone)")
            good.append(links.decode(m.value))
        except InvalidEvent as exc:
            poison.append(
                deadletter.build(
                    source_topic=m.topic,
                    partition=m.partition,
                    offset=m.offset,
                    key=m.key,
                    payload=m.value or b"",
                    error=exc.reason,
                    consumer=consumer,
                    failed_at=now,
                )
            )
    return good, poison


def register(
    app: faust.App,
    topic: Any,
    *,
    runtime: LazyStores,
    dead_letters: FaustDeadLetters,
    config: PipelineConfig,
    backoff: Backoff,
    metrics: AggregatorMetrics,
) -> None:
    async def apply(batch: list[Any]) -> None:
        good, poison = split(batch, consumer=config.consumer, now=datetime.now(UTC))
        if poison:
            await retry_until_done(lambda: dead_letters.publish(poison), what="dead-letter publish", backoff=backoff)
        if good:
            rt = await retry_until_done(runtime.get, what="open stores", backoff=backoff)
            # PostgreSQL first (what analytics' 404s and access checks read), then ClickHouse (only
            # /top's ranking): while ClickHouse is away the batch in hand is known to analytics;
            # later batches wait for it, as every agent's batches do for their stores.
            await retry_until_done(lambda: rt.links.apply(good), what="links_known upsert", backoff=backoff)
            rows = owner_rows(good)
            await retry_until_done(lambda: rt.link_owners.put(rows), what="link_workspaces insert", backoff=backoff)
            metrics.links_applied.inc(len(good))

    @app.agent(topic, concurrency=1)
    async def remember_links(stream: Any) -> None:
        async for batch in stream.noack_take(500, within=0.5):
            await apply(batch)
            for event in batch:  # acked only once applied (see adapters/faust_events.py)
                event.allow_ack()
                await stream.ack(event)
