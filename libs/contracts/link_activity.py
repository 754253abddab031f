"""Topic `link-activity` (1 partition, no key, 1-hour retention): live per-link click counts.

Producer: aggregator (each worker, once per flush, right after PostgreSQL counted the batch).
Consumers: analytics (every process, from the end, no consumer group: the live stats streams,
`GET /api/v1/links/{code}/live`).

A `LinkActivity` record is one flush's counts, in columns: link `codes[i]` received `clicks[i]`
human and `bot_clicks[i]` bot clicks whose own times lie in `[first_at[i], last_at[i]]` (Unix
seconds). Only clicks PostgreSQL counted as new are in it (a re-sent or replayed batch is not).
The topic is a **live view, best-effort**: a record the producer could not send is dropped and
never retried, nothing deduplicates it, and the records of a worker killed between its count and
its send are simply missing. The exact counts are the totals in PostgreSQL and ClickHouse
(`/stats`); a live client adds these deltas to a total it read there and reads it again now and
then.

Columns, not one struct per link: a flush of a long tail of links holds nearly as many codes as
clicks, and the aggregator already has these lists (what the batch adds to the lifetime totals),
so publishing costs one encode of five lists, not an object per link. A flush with more than
`MAX_LINKS` links becomes several records (`split`), each well under Kafka's 1 MB default.
"""

from collections.abc import Iterator, Sequence
from datetime import datetime
from typing import Annotated, Literal

import msgspec

from contracts.errors import InvalidEvent
from contracts.links import Code

# Worst case per link ~100 bytes of JSON (a 64-character code and five numbers): ~400 KB.
MAX_LINKS = 4_000

Count = Annotated[int, msgspec.Meta(ge=0)]
UnixSeconds = Annotated[int, msgspec.Meta(ge=0)]
Column = Annotated[list[Count], msgspec.Meta(max_length=MAX_LINKS)]
TimeColumn = Annotated[list[UnixSeconds], msgspec.Meta(max_length=MAX_LINKS)]


class LinkActivity(msgspec.Struct, frozen=True, kw_only=True, tag="LinkActivity", tag_field="type"):
    """What one aggregator flush counted, per link (the five lists have the same length)."""

    schema_version: Literal[1] = 1
    producer: Annotated[str, msgspec.Meta(min_length=1, max_length=64)]  # e.g. "aggregator-2"
    counted_at: datetime  # when PostgreSQL committed these counts
    codes: Annotated[list[Code], msgspec.Meta(min_length=1, max_length=MAX_LINKS)]
    clicks: Column
    bot_clicks: Column
    first_at: TimeColumn
    last_at: TimeColumn

    def rows(self) -> Iterator[tuple[str, int, int, int, int]]:
        """(code, clicks, bot_clicks, first_at, last_at) per link."""
        return zip(self.codes, self.clicks, self.bot_clicks, self.first_at, self.last_at, strict=True)


_encoder = msgspec.json.Encoder()
_decoder: msgspec.json.Decoder[LinkActivity] = msgspec.json.Decoder(LinkActivity)


def encode(record: LinkActivity) -> bytes:
    return _encoder.encode(record)


def decode(payload: bytes) -> LinkActivity:
    """Strict: the schema, every code's pattern, and five columns of one length."""
    try:
        record = _decoder.decode(payload)
    except msgspec.DecodeError as exc:
        raise InvalidEvent(f"link-activity: {exc}") from exc
    n = len(record.codes)
    if not len(record.clicks) == len(record.bot_clicks) == len(record.first_at) == len(record.last_at) == n:
        raise InvalidEvent("link-activity: the columns differ in length")
    return record


def split(
    *,
    producer: str,
    counted_at: datetime,
    codes: Sequence[str],
    clicks: Sequence[int],
    bot_clicks: Sequence[int],
    first_at: Sequence[int],
    last_at: Sequence[int],
) -> list[LinkActivity]:
    """One flush's columns as records of at most MAX_LINKS links (none for no link)."""
    return [
        LinkActivity(
            producer=producer,
            counted_at=counted_at,
            codes=list(codes[i : i + MAX_LINKS]),
            clicks=list(clicks[i : i + MAX_LINKS]),
            bot_clicks=list(bot_clicks[i : i + MAX_LINKS]),
            first_at=list(first_at[i : i + MAX_LINKS]),
            last_at=list(last_at[i : i + MAX_LINKS]),
        )
        for i in range(0, len(codes), MAX_LINKS)
    ]


EXAMPLES: tuple[bytes, ...] = (
    b'{"type":"LinkActivity","schema_version":1,"producer":"aggregator-1",'
    b'"counted_at":"2026-11-27T10:00:04.031Z","codes":["aZ3kP9q","Qx7_b-2"],'
    b'"clicks":[3,0],"bot_clicks":[1,2],"first_at":[1795773601,1795773602],'
    b'"last_at":[1795773603,1795773603]}',
    b'{"type":"LinkActivity","schema_version":1,"producer":"aggregator-3",'
    b'"counted_at":"2026-11-27T10:00:05Z","codes":["launch-2026"],'
    b'"clicks":[1],"bot_clicks":[0],"first_at":[1795773604],"last_at":[1795773604]}',
)
