"""Only acks the pipeline allowed reach the consumer: faust's own skip-acks are refused."""

from types import SimpleNamespace

import pytest
from aggregator.adapters.faust_events import DurableAckEvent

pytestmark = pytest.mark.unit


class Message:
    def __init__(self) -> None:
        self.acks: list[object] = []

    def ack(self, consumer: object) -> bool:
        self.acks.append(consumer)
        return True


def test_an_event_is_acked_only_after_the_pipeline_allowed_it() -> None:
    consumer = object()
    message = Message()
    event = DurableAckEvent(SimpleNamespace(consumer=consumer), b"k", b"v", {}, message)  # type: ignore[arg-type]
    assert event.ack() is False and message.acks == []  # what faust does when it skips an event
    event.allow_ack()
    assert event.ack() is True and message.acks == [consumer]
    other = DurableAckEvent(SimpleNamespace(consumer=consumer), b"k", b"v", {}, Message())  # type: ignore[arg-type]
    assert other.ack() is False  # the allowance is per event
