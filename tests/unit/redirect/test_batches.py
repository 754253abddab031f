"""Partition batches: formed once within the caps, one record per partition, bytes fixed."""

import uuid
from datetime import UTC, datetime

import pytest
from contracts import clicks
from contracts.clicks import MAX_BATCH_CLICKS, Click
from redirect.adapters.kafka_clicks import partition_for
from redirect.domain.batches import MAX_BATCH_BYTES, BatchFormer, BuiltClick, ClickBatch

pytestmark = pytest.mark.unit

WHEN = datetime(2026, 11, 27, 10, 0, tzinfo=UTC)


def click(code: str = "abc1234", *, user_agent: str = "Mozilla/5.0", referrer: str | None = None) -> Click:
    return Click(
        event_id=uuid.uuid4(),
        occurred_at=WHEN,
        code=code,
        referrer=referrer,
        user_agent=user_agent,
        visitor_key="0" * 32,
    )


def partition_of(code: str) -> int:
    return partition_for(code.encode(), 3)


def record(batch: ClickBatch) -> clicks.ClicksBatched:
    decoded = clicks.decode(batch.value)
    assert isinstance(decoded, clicks.ClicksBatched)
    return decoded


def test_clicks_are_grouped_by_the_partition_of_their_code() -> None:
    codes = [f"code{i}" for i in range(30)]
    batches = BatchFormer(producer="redirect-1").form([(click(c), ()) for c in codes], partition_of)
    assert len(batches) == 3
    for batch in batches:
        assert [c.code for c in record(batch).clicks] == [c for c in codes if partition_of(c) == batch.partition]


def test_batches_stay_within_the_click_cap_and_the_byte_cap() -> None:
    many: list[BuiltClick] = [(click(), ()) for _ in range(MAX_BATCH_CLICKS + 1)]
    assert [b.clicks for b in BatchFormer(producer="redirect-1").form(many, partition_of)] == [MAX_BATCH_CLICKS, 1]
    # Long user agents and referrers: the byte cap closes batches long before 2000 clicks.
    big: list[BuiltClick] = [(click(user_agent="u" * 512, referrer="https://r/" + "x" * 2000), ()) for _ in range(900)]
    batches = BatchFormer(producer="redirect-1").form(big, partition_of)
    assert len(batches) > 1 and sum(b.clicks for b in batches) == 900
    assert all(len(b.value) <= MAX_BATCH_BYTES for b in batches)


def test_text_that_escapes_beyond_the_estimate_is_split_not_oversized() -> None:
    # Control characters take 6 bytes each in JSON (\u0001): the estimate is 6x short.
    built: list[BuiltClick] = [(click(referrer="\x01" * 2048), ()) for _ in range(100)]
    ids = iter(uuid.uuid4() for _ in range(1000))
    batches = BatchFormer(producer="redirect-1", batch_ids=lambda: next(ids), max_bytes=200_000).form(
        built, partition_of
    )
    assert all(len(b.value) <= 200_000 for b in batches) and sum(b.clicks for b in batches) == 100
    assert [c.event_id for b in batches for c in record(b).clicks] == [c.event_id for c, _ in built]
    assert len({b.batch_id for b in batches}) == len(batches)


def test_trace_headers_follow_their_clicks_into_the_split_halves() -> None:
    parents = [("traceparent", f"00-{i:032x}-{i:016x}-01".encode()) for i in range(4)]
    built: list[BuiltClick] = [(click(referrer="\x01" * 2048), (parents[i],)) for i in range(4)]
    batches = BatchFormer(producer="redirect-1", max_bytes=30_000).form(built, partition_of)
    assert [b.clicks for b in batches] == [2, 2]
    assert [b.headers for b in batches] == [(parents[0], parents[1]), (parents[2], parents[3])]


def test_a_batch_is_encoded_once_with_its_id_and_the_producer() -> None:
    [batch] = BatchFormer(producer="redirect-2").form([(click(), ())], partition_of)
    decoded = record(batch)
    assert (decoded.batch_id, decoded.producer, batch.batch_id.version) == (batch.batch_id, "redirect-2", 7)
    assert batch.timestamp_ms == int(WHEN.timestamp() * 1000)
    with pytest.raises(AttributeError):
        batch.value = b"other"  # type: ignore[misc]
