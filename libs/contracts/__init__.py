"""Topic contracts: one module per Kafka topic, versioned event types, example payloads.

Producers and consumers import these types; nobody hand-builds a dict for a topic.
Decoding is strict: a payload that does not match raises `InvalidEvent`, which consumers
route to the dead-letter topic with the reason.
"""

from contracts.errors import InvalidEvent

__all__ = ["InvalidEvent"]
