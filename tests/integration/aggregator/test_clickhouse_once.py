"""ClickHouse receives a batch once, whatever an earlier attempt left: every target's insert
ends with a marker row in the same part, a retry writes only where the marker is missing, and a
body cut off mid-send inserts nothing."""

import socket
import time
import uuid
from datetime import UTC, datetime
from urllib.parse import quote, urlsplit

import httpx
import msgspec
import pytest
from aggregator.adapters.clickhouse import (
    TARGETS,
    ClickHouse,
    ClickHouseEvents,
    build_client,
    gzip_framed,
    marker_row,
    month_start,
    raw_body,
)
from aggregator.domain.click_records import ClickRow
from aggregator.metrics import AggregatorMetrics

from tests.integration.aggregator.support import CLICKHOUSE_DB, CLICKHOUSE_URL, GRAINS, Expected, Stores, unique_code

pytestmark = pytest.mark.integration


def rows(code: str, n: int) -> list[ClickRow]:
    now = int(time.time())
    return [
        ClickRow(
            event_id=str(uuid.uuid4()),
            code=code,
            occurred_at=now,
            visitor_key=f"v{i % 3}",
            referrer="",
            referrer_host="",
            country="DE",
            device="mobile",
            is_bot=1 if i % 4 == 0 else 0,
        )
        for i in range(n)
    ]


async def counts(stores: Stores, code: str) -> list[Expected]:
    return [
        await stores.ch_raw(code),
        *[await stores.ch_rollup(code, g) for g in GRAINS],
        *[await stores.ch_breakdown(code, g) for g in GRAINS],
        *[await stores.ch_top(code, g) for g in GRAINS],
    ]


async def test_a_retry_writes_only_the_targets_an_earlier_attempt_missed() -> None:
    code = unique_code("once")
    batch = rows(code, 40)
    sink = uuid.uuid4()
    async with build_client(CLICKHOUSE_URL, database=CLICKHOUSE_DB, timeout_s=30) as http, Stores() as stores:
        clickhouse = ClickHouse(http)
        events = ClickHouseEvents(clickhouse, AggregatorMetrics())
        # An earlier attempt wrote the raw table (with its marker) and died before the feeds.
        marker = marker_row(sink, month_start(batch[0].occurred_at))
        raw = TARGETS[0]
        await clickhouse.insert(
            raw.insert_sql, framed_body=gzip_framed(raw_body([*batch, marker])), query_id=f"test-{sink}"
        )
        assert await stores.ch_raw(code) == Expected(30, 10)
        assert await stores.ch_rollup(code, "minute") == Expected(0, 0)
        await events.write(sink, batch)  # the retry
        await events.write(sink, batch)  # and once more, e.g. by a recovery
        assert await counts(stores, code) == [Expected(30, 10)] * 10
        # Markers never show where analytics looks (is_bot 0/1) and sit beside the data.
        for table in ("clicks_totals", "clicks_breakdown"):
            assert await stores.query(f"SELECT count() FROM {table} WHERE code = '{marker.code}' AND is_bot = 2") == [
                ["1"]
            ]


async def test_a_first_attempt_skips_the_lookup_and_a_second_sink_id_is_a_second_batch() -> None:
    code = unique_code("once")
    async with build_client(CLICKHOUSE_URL, database=CLICKHOUSE_DB, timeout_s=30) as http, Stores() as stores:
        events = ClickHouseEvents(ClickHouse(http), AggregatorMetrics())
        await events.write(uuid.uuid4(), rows(code, 8), fresh=True)
        await events.write(uuid.uuid4(), rows(code, 8), fresh=True)
        assert await counts(stores, code) == [Expected(12, 4)] * 10


def test_a_body_cut_off_mid_send_inserts_nothing() -> None:
    """ClickHouse takes a plain body cut at a line boundary as complete; a gzip-framed one fails."""
    code = unique_code("cut")
    framed = gzip_framed(raw_body(rows(code, 2000)))
    sql = TARGETS[0].insert_sql
    url = urlsplit(CLICKHOUSE_URL)
    for cut in (len(framed) // 2, len(framed) - 4):
        with socket.create_connection((url.hostname, url.port)) as conn:
            conn.sendall(
                f"POST /?database={CLICKHOUSE_DB}&query={quote(sql)} HTTP/1.1\r\nHost: x\r\n"
                f"Content-Encoding: gzip\r\nContent-Length: {len(framed)}\r\n\r\n".encode()
                + framed[:cut]
            )
            conn.shutdown(socket.SHUT_WR)  # the client dies: the server sees the stream end early
            conn.recv(4096)  # the server's answer (an error) or the close
    answer = httpx.post(
        CLICKHOUSE_URL,
        params={"database": CLICKHOUSE_DB},
        content=f"SELECT count() FROM click_events WHERE code = '{code}'".encode(),
    )
    assert answer.text.strip() == "0"


def test_markers_split_by_month() -> None:
    from aggregator.adapters.clickhouse import split_by_month

    dec31 = int(datetime(2026, 12, 31, 23, 59, 59, tzinfo=UTC).timestamp())
    jan1 = dec31 + 1
    batch = [
        msgspec.structs.replace(rows("a", 1)[0], occurred_at=dec31),
        msgspec.structs.replace(rows("b", 1)[0], occurred_at=jan1),
    ]
    months = split_by_month(batch)
    assert sorted(months) == [month_start(dec31), jan1]
    sink = uuid.uuid4()
    assert marker_row(sink, jan1).code == f"~{sink.hex}-202701" and marker_row(sink, jan1).is_bot == 2
