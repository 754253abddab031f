"""The click pipeline on the real stack: exact counts in both stores, no double count, poison to
the dead-letter topic, the live window table and the workers' metrics."""

import asyncio

import httpx
import msgspec
import pytest
from aggregator.bootstrap import flush_policy
from contracts import clicks

from tests.conftest import analytics_url, wait_until_async
from tests.integration.aggregator.support import (
    GRAINS,
    TOPIC_CLICKS,
    TOPIC_DEADLETTER,
    WORKER_PORTS,
    ClickProducer,
    Expected,
    Stores,
    batches,
    deadletters_after,
    end_offsets,
    iso,
    key_b64,
    make_click,
    seconds_ago,
    unique_code,
)

pytestmark = pytest.mark.integration


async def test_both_record_formats_on_one_topic_count_exactly_once_and_the_stores_agree(api_key: str) -> None:
    code = unique_code()
    humans = [make_click(code, i) for i in range(150)]
    bots = [make_click(code, i, bot=True) for i in range(30)]
    async with ClickProducer() as producer, Stores() as stores:
        # Batch records (the current format) for most clicks, single clicks (the previous one) for
        # the rest, on the same topic and partition.
        records = batches(humans[:100] + bots[:20], partitions=await producer.partitions(), size=25)
        await producer.send_batches(records)
        await producer.send(humans[100:] + bots[20:])
        # Again: a batch re-sent by the redirect after a producer error, redelivered single clicks.
        await producer.send_batches(records[:2])
        await producer.send(humans[100:120] + bots[25:])
        # Same partition, so once the sentinel is counted the repeats were processed.
        sentinel = make_click(code, 999)
        await producer.send([sentinel])
        expected = Expected(clicks=151, bot_clicks=30)
        await stores.wait_counted(code, expected)
        ids = [str(b.batch_id) for _, b in records] + [e.event_id for e in humans[100:] + bots[20:] + [sentinel]]
        assert await stores.ledger_has(ids) == len(ids) == 5 + 61  # one ledger row per record
        # Stores agree: PostgreSQL totals == ClickHouse raw == every rollup grain == top table.
        for grain in GRAINS:
            assert await stores.ch_rollup(code, grain) == expected, grain
            assert await stores.ch_top(code, grain) == expected, grain
        dims = await stores.ch_dims(code)
        per_dim: dict[str, int] = {}
        for dim, _value, _bot, _minute, n in dims:
            per_dim[dim] = per_dim.get(dim, 0) + int(n)
        assert per_dim == {"country": 181, "device": 181, "referrer": 181}
    async with httpx.AsyncClient(
        base_url=analytics_url(), timeout=10, headers={"Authorization": f"Bearer {api_key}"}
    ) as api:
        body = (
            await api.get(
                f"/api/v1/links/{code}/stats", params={"interval": "minute", "from": iso(seconds_ago(30 * 60))}
            )
        ).json()
    assert body["lifetime"]["clicks"] == 151 and body["lifetime"]["bot_clicks"] == 30
    assert body["totals"]["clicks"] == 151
    assert body["totals"]["unique_visitors"] == 7
    assert sum(p["clicks"] for p in body["series"]) == 151
    assert sum(d["clicks"] for d in body["devices"]) == 151
    assert {c["value"] for c in body["countries"]} == {"DE", "FR", "US", "ZZ"}
    assert "(direct)" in {r["value"] for r in body["top_referrers"]}


async def test_poison_goes_to_the_deadletter_topic_and_the_stream_goes_on() -> None:
    code = unique_code("dlq")
    good = make_click(code, 1)
    wrong_version = msgspec.json.decode(clicks.encode(make_click(code, 2)))
    wrong_version["schema_version"] = 2
    wrong_schema = {"type": "LinkClicked", "code": code}
    bad_id = msgspec.json.decode(clicks.encode(make_click(code, 3)))
    bad_id["event_id"] = "not-a-uuid"
    poison = [
        b"\x00\xffnot json at all",
        msgspec.json.encode(wrong_version),
        msgspec.json.encode(wrong_schema),
        msgspec.json.encode(bad_id),
    ]
    start = await end_offsets(TOPIC_DEADLETTER)
    async with ClickProducer() as producer, Stores() as stores:
        sent = [await producer.send_raw(code.encode(), value) for value in poison]
        await producer.send([good])
        await stores.wait_counted(code, Expected(1, 0))
        records = await deadletters_after(
            start,
            until=lambda found: {(r.partition, r.offset) for r in found if r.key_b64 == key_b64(code)} >= set(sent),
        )
        assert await stores.pg_totals(code) == Expected(1, 0)  # only the valid event counted
    mine = {(r.partition, r.offset): r for r in records if r.key_b64 == key_b64(code)}
    assert set(mine) == set(sent)
    by_offset = [mine[s] for s in sent]
    assert [r.payload() for r in by_offset] == poison
    assert all(r.source_topic == TOPIC_CLICKS and r.consumer.startswith("aggregator-") for r in by_offset)
    assert "malformed" in by_offset[0].error
    assert "schema_version" in by_offset[1].error
    assert "missing required field" in by_offset[2].error
    assert "not a UUID" in by_offset[3].error


async def test_window_table_holds_the_deduplicated_minute_counts() -> None:
    code = unique_code("win")
    events = [make_click(code, i) for i in range(12)] + [make_click(code, i, bot=True) for i in range(3)]
    async with ClickProducer() as producer, Stores() as stores:
        await producer.send(events + events[:6])
        await stores.wait_counted(code, Expected(12, 3))

    async def windows() -> tuple[int, int]:
        async with httpx.AsyncClient(timeout=5) as http:
            answers = await asyncio.gather(
                *(http.get(f"http://127.0.0.1:{p}/links/{code}/window") for p in WORKER_PORTS)
            )
        rows = [w for a in answers for w in a.json()["windows"]]
        return sum(w["clicks"] for w in rows), sum(w["bot_clicks"] for w in rows)

    async def complete() -> bool:
        return await windows() == (12, 3)

    await wait_until_async(complete, timeout=10, what="window table")


async def test_workers_expose_metrics_and_readiness() -> None:
    names = (
        'aggregator_consumer_lag{group="aggregator",',
        "aggregator_clickhouse_insert_seconds_bucket",
        "aggregator_clickhouse_batch_rows_bucket",
        "aggregator_postgres_write_seconds_bucket",
        "aggregator_events_processed_total",
        "aggregator_events_deduplicated_total",
        "aggregator_events_dead_lettered_total",
        "aggregator_flush_interval_seconds",
    )
    async with httpx.AsyncClient(timeout=5) as http:
        for port in WORKER_PORTS:
            text = (await http.get(f"http://127.0.0.1:{port}/metrics")).text
            assert all(name in text for name in names), port
            ready = await http.get(f"http://127.0.0.1:{port}/readyz")
            assert ready.status_code == 200 and ready.json()["checks"] == {"postgres": "ok", "clickhouse": "ok"}
        assert (await http.get(f"http://127.0.0.1:{WORKER_PORTS[0]}/links/bad%20code/window")).status_code == 422


def _gauge(text: str, name: str) -> float:
    [line] = [line for line in text.splitlines() if line.startswith(f"{name} ")]
    return float(line.split()[1])


async def test_the_groups_flush_interval_is_shared_by_the_workers() -> None:
    """Each worker counts the topic's partitions and flushes light traffic at the group's interval
    over its share: three workers on three partitions each own a third and wait 3 x 1 s."""
    from aggregator.settings import AggregatorSettings

    settings = AggregatorSettings()

    async def shares() -> list[float] | None:
        async with httpx.AsyncClient(timeout=5) as http:
            texts = [(await http.get(f"http://127.0.0.1:{port}/metrics")).text for port in WORKER_PORTS]
        found = [_gauge(text, "aggregator_partition_share") for text in texts]
        return found if all(0 < share < 1 for share in found) else None

    found = await wait_until_async(shares, timeout=90, interval=1.0, what="every worker's partition share")
    assert sum(found) == pytest.approx(1.0)
    assert found == pytest.approx([1 / len(WORKER_PORTS)] * len(WORKER_PORTS))
    policy = flush_policy(settings)
    assert [policy.light_interval_s(share) for share in found] == pytest.approx(
        [settings.aggregator_flush_min_s * len(WORKER_PORTS)] * len(WORKER_PORTS)
    )
