"""Count the `clicks` topic's partitions at start and every `interval_s` after (faust task).

The flush rule spreads the group's light-traffic interval over its workers by each worker's share
of the partitions (domain/batching.py). A worker knows its own partitions from its assignment; the
topic's total is in faust's consumer only on the group's leader, so each worker asks the broker."""

import asyncio
import logging

import faust
from platformkit.kafka import topic_partitions

from aggregator.service_layer.clicks_flow import ClicksFlow

log = logging.getLogger(__name__)


def register(app: faust.App, *, flow: ClicksFlow, bootstrap_servers: str, topic: str, interval_s: float) -> None:
    async def count_clicks_partitions() -> None:
        while True:
            try:
                flow.partitions_total = len(
                    await topic_partitions(bootstrap_servers, topic, client_id="aggregator-partition-count")
                )
            except Exception as exc:  # Kafka away: keep the last count (or none: each worker alone)
                log.warning("could not count the partitions of %s: %s", topic, exc)
            await asyncio.sleep(interval_s)

    app.task(count_clicks_partitions)
