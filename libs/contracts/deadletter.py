"""Topic `deadletter`: poison messages from any consumer, with the reason.

Producers: every consumer that meets an undecodable or invalid message (aggregator,
redirect's links projector). Consumers: people (inspect with `just dlq`), replay tools.
The original payload is kept verbatim (base64) so nothing is lost.
"""

import base64
from datetime import datetime

import msgspec

from contracts.errors import InvalidEvent


class MessageDeadLettered(msgspec.Struct, frozen=True, kw_only=True, tag="MessageDeadLettered", tag_field="type"):
    schema_version: int = 1
    source_topic: str
    partition: int
    offset: int
    key_b64: str | None
    payload_b64: str
    error: str
    consumer: str
    failed_at: datetime

    def payload(self) -> bytes:
        return base64.b64decode(self.payload_b64)


def build(
    *,
    source_topic: str,
    partition: int,
    offset: int,
    key: bytes | None,
    payload: bytes,
    error: str,
    consumer: str,
    failed_at: datetime,
) -> MessageDeadLettered:
    return MessageDeadLettered(
        source_topic=source_topic,
        partition=partition,
        offset=offset,
        key_b64=base64.b64encode(key).decode() if key is not None else None,
        payload_b64=base64.b64encode(payload).decode(),
        error=error[:2000],
        consumer=consumer,
        failed_at=failed_at,
    )


_encoder = msgspec.json.Encoder()
_decoder: msgspec.json.Decoder[MessageDeadLettered] = msgspec.json.Decoder(MessageDeadLettered)


def encode(record: MessageDeadLettered) -> bytes:
    return _encoder.encode(record)


def decode(payload: bytes) -> MessageDeadLettered:
    try:
        return _decoder.decode(payload)
    except msgspec.DecodeError as exc:
        raise InvalidEvent(f"deadletter: {exc}") from exc


EXAMPLES: tuple[bytes, ...] = (
    b'{"type":"MessageDeadLettered","schema_version":1,"source_topic":"clicks","partition":2,'
    b'"offset":41,"key_b64":"YVozaw==","payload_b64":"bm90IGpzb24=",'
    b'"error":"clicks: JSON is malformed","consumer":"aggregator","failed_at":"2026-11-27T10:00:00Z"}',
)
