"""The relay use case against fakes: id order, mark only after ack, retry what failed."""

import asyncio
from collections.abc import Sequence

import pytest
from shorten.adapters.kafka import producer_config
from shorten.ports import OutboxRecord
from shorten.service_layer.outbox_relay import OutboxRelay

from tests.conftest import wait_until_async
from tests.unit.shorten.fakes import FakeOutbox, FakePublisher

pytestmark = pytest.mark.unit


async def done(outbox: FakeOutbox, count: int) -> bool:
    return len(outbox.published) >= count


def relay(outbox: FakeOutbox, publisher: FakePublisher, **kwargs: float) -> OutboxRelay:
    options: dict[str, float] = {"batch_size": 4, "poll_interval": 30.0, "backoff_max": 0.01, **kwargs}
    return OutboxRelay(outbox=outbox, publisher=publisher, **options)  # type: ignore[arg-type]


async def test_drain_publishes_everything_in_id_order_across_batches() -> None:
    outbox, publisher = FakeOutbox(10), FakePublisher()
    assert await relay(outbox, publisher).drain() == 10
    assert [r.id for r in publisher.acked] == list(range(1, 11))
    assert outbox.published == list(range(1, 11))
    assert publisher.calls == 3  # batches of 4, 4, 2


async def test_empty_outbox_publishes_nothing() -> None:
    outbox, publisher = FakeOutbox(0), FakePublisher()
    assert await relay(outbox, publisher).drain() == 0
    assert publisher.calls == 0


async def test_nothing_is_marked_before_the_broker_acked() -> None:
    outbox, publisher = FakeOutbox(3), FakePublisher(failures=[0, 0])
    r = relay(outbox, publisher)
    # After two failed attempts the third succeeds; nothing was marked in between.
    assert await r.drain() == 3
    assert publisher.calls == 3
    assert outbox.published == [1, 2, 3]
    assert [rec.id for rec in publisher.acked] == [1, 2, 3]


async def test_partial_ack_marks_the_prefix_and_resends_only_the_rest() -> None:
    outbox, publisher = FakeOutbox(4), FakePublisher(failures=[2])
    assert await relay(outbox, publisher).drain() == 4
    # 1, 2 acked on the failed call; 3, 4 on the retry: nothing lost, nothing doubled.
    assert [r.id for r in publisher.acked] == [1, 2, 3, 4]
    assert outbox.published == [1, 2, 3, 4]


async def test_an_idle_relay_publishes_within_a_poll_interval() -> None:
    outbox, publisher = FakeOutbox(0), FakePublisher()
    r = relay(outbox, publisher, poll_interval=0.05)
    task = asyncio.create_task(r.run())
    try:
        await asyncio.sleep(0)  # let it read the empty outbox and start sleeping
        outbox.add(2)
        await wait_until_async(lambda: done(outbox, 2), timeout=2, what="poll-driven publish")
    finally:
        task.cancel()
    assert outbox.published == [1, 2]


async def test_a_busy_relay_batches_the_records_committed_while_it_waited() -> None:
    """Five records committed one by one while a batch is in flight go out as ONE batch on the
    next pass, and every batch is marked by the next pass's read, not a round trip of its own."""
    outbox = FakeOutbox(1)

    class CommitsDuringPublish(FakePublisher):
        async def publish(self, records: Sequence[OutboxRecord]) -> None:
            await super().publish(records)
            if self.calls == 1:
                for _ in range(5):
                    outbox.add(1)

    publisher = CommitsDuringPublish()
    r = relay(outbox, publisher, batch_size=100, poll_interval=0.01, batch_wait=0.01)
    task = asyncio.create_task(r.run())
    try:
        await wait_until_async(lambda: done(outbox, 6), timeout=5, what="both batches marked")
    finally:
        task.cancel()
    assert outbox.published == [1, 2, 3, 4, 5, 6]
    assert [len(batch) for batch in publisher.batches] == [1, 5]
    assert outbox.separate_marks == 0


async def test_a_stopped_relay_marks_what_the_broker_acknowledged() -> None:
    outbox, publisher = FakeOutbox(3), FakePublisher()
    r = relay(outbox, publisher, poll_interval=0.01, batch_wait=30.0)
    task = asyncio.create_task(r.run())
    await wait_until_async(lambda: asyncio.sleep(0, publisher.calls == 1), timeout=2, what="one publish")
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert [rec.id for rec in publisher.acked] == [1, 2, 3]
    assert outbox.published == [1, 2, 3]


async def test_purge_runs_at_most_once_per_interval() -> None:
    now = [0.0]
    outbox = FakeOutbox(0)
    r = OutboxRelay(
        outbox=outbox, publisher=FakePublisher(), retention_seconds=3600, purge_interval=60, clock=lambda: now[0]
    )
    await r.purge_if_due()
    await r.purge_if_due()
    now[0] = 61.0
    await r.purge_if_due()
    assert outbox.purged_with == [3600, 3600]


def test_producer_is_idempotent_and_waits_for_all_replicas() -> None:
    config = producer_config(bootstrap_servers="k:9092", request_timeout_ms=10_000, client_id="shorten-relay")
    assert config["enable_idempotence"] is True
    assert config["acks"] == "all"
    assert config["bootstrap_servers"] == "k:9092"
