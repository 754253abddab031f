"""Sink recovery's re-read: offsets the log no longer (or never) holds end the read at once,
instead of a loop that polls for ever inside the journal transaction."""

from typing import Any

import pytest
from aggregator.adapters.kafka import KafkaRecordFetcher, RecordsMissing
from aiokafka import TopicPartition

pytestmark = pytest.mark.unit

TP = TopicPartition("clicks", 0)


class Consumer:
    """The calls `_read` makes, over a log holding offsets [start, end)."""

    def __init__(self, start: int, end: int) -> None:
        self.start, self.end, self.at = start, end, 0
        self.polls = 0

    def assign(self, _: Any) -> None: ...

    async def beginning_offsets(self, tps: list[TopicPartition]) -> dict[TopicPartition, int]:
        return {tp: self.start for tp in tps}

    async def end_offsets(self, tps: list[TopicPartition]) -> dict[TopicPartition, int]:
        return {tp: self.end for tp in tps}

    def seek(self, _: TopicPartition, offset: int) -> None:
        self.at = offset

    async def position(self, _: TopicPartition) -> int:
        return self.at

    async def getmany(self, tp: TopicPartition, **_: Any) -> dict[TopicPartition, list[Any]]:
        self.polls += 1
        assert self.polls < 100, "polled on past the log end"
        return {}


@pytest.mark.parametrize(("start", "end", "reason"), [(0, 5, "past the log end"), (10, 20, "before the log start")])
async def test_offsets_outside_the_log_are_missing_at_once(start: int, end: int, reason: str) -> None:
    consumer = Consumer(start, end)
    with pytest.raises(RecordsMissing, match=reason):
        await KafkaRecordFetcher("unused")._read(consumer, TP, {7, 8})  # type: ignore[arg-type]
    assert consumer.polls == 0
