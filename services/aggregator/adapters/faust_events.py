"""Events whose offsets faust may commit only after our pipeline made them durable.

faust-streaming acks events it decides to skip during a rebalance (fetched for an older
generation, or read while the flow is paused) "so that the lag does not grow" (streams.py,
`skipped_value`). For at-least-once delivery that loses the event whenever that offset gets
committed before the partition is re-read -- we saw one click in 300,000 vanish this way when
three workers started together. `DurableAckEvent` refuses every ack the pipeline did not
allow: the offset stays uncommitted, the commit stalls at it, and gap repair
(domain/gaps.py, entrypoints/gap_repair.py) seeks the partition back and re-reads it.
"""

from typing import Any

import faust

from aggregator.ports import SourceRecord


class DurableAckEvent(faust.Event):
    """Installed with `faust.App(Event=DurableAckEvent)`; the agents call `allow_ack()` after
    the sinks (or the dead-letter topic) hold the event, then `stream.ack(event)`."""

    durable = False

    def allow_ack(self) -> None:
        self.durable = True

    def ack(self) -> bool:
        if not self.durable:
            return False  # a skip, not a write: leave the offset uncommitted
        return bool(super().ack())


def to_record(event: Any) -> SourceRecord:
    """A faust stream event -> the pipeline's record (the event itself stays with the agent)."""
    m = event.message
    return SourceRecord(
        topic=m.topic,
        partition=m.partition,
        offset=m.offset,
        key=m.key,
        value=m.value,
        timestamp_ms=int((m.timestamp or 0) * 1000),
        # The trace contexts from the redirect replica (only read when tracing is on).
        headers=m.headers or (),
    )
