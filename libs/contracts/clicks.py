"""Topic `clicks` (3 partitions, 7-day retention = the replay horizon).

Producers: redirect. Consumers: aggregator. Two record types share the topic:

- `ClicksBatched` (current): one record per *partition batch* of clicks. A redirect replica
  groups the clicks it served by the partition of their code (Kafka's default partitioner,
  murmur2 of the code) and publishes one record per partition and flush, with no key and an
  explicit partition. `batch_id` is a UUIDv7 fixed when the batch is formed; the encoded bytes
  are immutable, so every re-send after a producer error carries the same id. The aggregator
  deduplicates per record (`record_id`): a re-sent batch counts once.
- `LinkClicked` (version 1, the previous format, one click per record, key = code): still
  accepted, so records within the 7-day replay horizon stay replayable; its record id is its
  `event_id`.

Every click keeps its own UUIDv7 `event_id`, fixed when the redirect is served.
No raw IP address appears here: `visitor_key` is a keyed hash that rotates daily.
"""

import uuid
from datetime import datetime
from typing import Annotated, Literal

import msgspec

from contracts.errors import InvalidEvent
from contracts.links import Code

Device = Literal["desktop", "mobile", "tablet", "bot", "other"]

UNKNOWN_COUNTRY = "ZZ"
# A batch record stays well under Kafka's default 1 MB message limit.
MAX_BATCH_CLICKS = 2_000


class LinkClicked(msgspec.Struct, frozen=True, kw_only=True, tag="LinkClicked", tag_field="type"):
    """One click per record (the previous format; still consumed)."""

    schema_version: Literal[1] = 1
    event_id: str
    occurred_at: datetime
    code: str
    referrer: str | None = None
    user_agent: str = ""
    visitor_key: str
    device: Device = "other"
    is_bot: bool = False
    # ISO 3166-1 alpha-2 from a trusted edge header when present, else "ZZ" (unknown).
    country: str = UNKNOWN_COUNTRY


Country = Annotated[str, msgspec.Meta(pattern=r"^[A-Z]{2}$")]


class Click(msgspec.Struct, frozen=True, kw_only=True):
    """One click inside a `ClicksBatched` record: the fields of `LinkClicked`, without the tag,
    checked strictly at decode (what the previous format left to the consumer)."""

    event_id: uuid.UUID
    occurred_at: datetime
    code: Code
    referrer: Annotated[str, msgspec.Meta(max_length=2048)] | None = None
    user_agent: Annotated[str, msgspec.Meta(max_length=512)] = ""
    visitor_key: Annotated[str, msgspec.Meta(min_length=1, max_length=128)]
    device: Device = "other"
    is_bot: bool = False
    country: Country = UNKNOWN_COUNTRY


class ClicksBatched(msgspec.Struct, frozen=True, kw_only=True, tag="ClicksBatched", tag_field="type"):
    """The clicks one producer served for codes of one partition, published as one record."""

    schema_version: Literal[1] = 1
    batch_id: uuid.UUID  # UUIDv7; the record's idempotency key
    producer: Annotated[str, msgspec.Meta(min_length=1, max_length=64)]  # e.g. "redirect-2"
    clicks: Annotated[tuple[Click, ...], msgspec.Meta(min_length=1, max_length=MAX_BATCH_CLICKS)]


ClickRecord = ClicksBatched | LinkClicked

_encoder = msgspec.json.Encoder()
_decoder: msgspec.json.Decoder[ClickRecord] = msgspec.json.Decoder(ClickRecord)


def encode(record: ClickRecord) -> bytes:
    return _encoder.encode(record)


def decode(payload: bytes) -> ClickRecord:
    """Any record of the topic (strict): a batch or a single click."""
    try:
        return _decoder.decode(payload)
    except msgspec.DecodeError as exc:
        raise InvalidEvent(f"clicks: {exc}") from exc


def record_id(record: ClickRecord) -> str:
    """The id the aggregator deduplicates on: the batch id, or a single click's event id
    (a single click's id is not checked at decode: the consumer checks and canonicalises it)."""
    return str(record.batch_id) if isinstance(record, ClicksBatched) else record.event_id


def key(event: LinkClicked) -> bytes:
    return event.code.encode()


EXAMPLES: tuple[bytes, ...] = (
    b'{"type":"ClicksBatched","schema_version":1,"batch_id":"01890a5d-ac96-774b-bcce-b302099a8200",'
    b'"producer":"redirect-1","clicks":['
    b'{"event_id":"01890a5d-ac96-774b-bcce-b302099a8102","occurred_at":"2026-11-27T10:00:03.125Z",'
    b'"code":"aZ3kP9q","referrer":"https://news.example/",'
    b'"user_agent":"Mozilla/5.0 (X11; Linux x86_64)","visitor_key":"3f2a9c0d1e4b5a69",'
    b'"device":"desktop","is_bot":false,"country":"FR"},'
    b'{"event_id":"01890a5d-ac96-774b-bcce-b302099a8103","occurred_at":"2026-11-27T10:00:03.250Z",'
    b'"code":"Qx7_b-2","referrer":null,"user_agent":"Googlebot/2.1","visitor_key":"77aa01c2d3e4f506",'
    b'"device":"bot","is_bot":true,"country":"ZZ"}]}',
    b'{"type":"LinkClicked","schema_version":1,"event_id":"01890a5d-ac96-774b-bcce-b302099a8100",'
    b'"occurred_at":"2026-11-27T10:00:01.250Z","code":"aZ3kP9q","referrer":"https://news.example/",'
    b'"user_agent":"Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X)",'
    b'"visitor_key":"3f2a9c0d1e4b5a69","device":"mobile","is_bot":false,"country":"DE"}',
    b'{"type":"LinkClicked","schema_version":1,"event_id":"01890a5d-ac96-774b-bcce-b302099a8101",'
    b'"occurred_at":"2026-11-27T10:00:02Z","code":"aZ3kP9q","referrer":null,'
    b'"user_agent":"Slackbot-LinkExpanding 1.0 (+https://api.slack.com/robots)",'
    b'"visitor_key":"9b1c7e2f00aa4d13","device":"bot","is_bot":true,"country":"ZZ"}',
)
