"""No loss under failure: a worker SIGKILLed mid-batch, and Kafka restarted mid-run. Totals end
exact in both stores (at-least-once delivery + idempotent sinks). Marked destructive: run last."""

import asyncio
import os
import signal
import subprocess

import httpx
import pytest
from aiokafka.errors import KafkaError

from tests.conftest import LOCAL, ROOT, wait_until_async
from tests.integration.aggregator.support import (
    GRAINS,
    WORKER_PORTS,
    ClickProducer,
    Expected,
    Stores,
    batches,
    make_click,
    unique_code,
)

pytestmark = [pytest.mark.integration, pytest.mark.destructive]


def supervisorctl(*args: str) -> str:
    result = subprocess.run(
        [str(ROOT / ".venv/bin/supervisorctl"), "-c", str(LOCAL / "supervisord.conf"), *args],
        capture_output=True,
        text=True,
        timeout=180,
    )
    return result.stdout.strip()


def worker_pid(name: str) -> int:
    out = supervisorctl("pid", name)
    assert out.isdigit() and int(out) > 0, f"{name} is not running: {out!r}"
    return int(out)


async def processed(port: int) -> float:
    async with httpx.AsyncClient(timeout=5) as http:
        text = (await http.get(f"http://127.0.0.1:{port}/metrics")).text
    line = next(ln for ln in text.splitlines() if ln.startswith("aggregator_events_processed_total"))
    return float(line.split()[-1])


async def workers_ready() -> bool:
    async with httpx.AsyncClient(timeout=2) as http:
        try:
            answers = [await http.get(f"http://127.0.0.1:{p}/readyz") for p in WORKER_PORTS]
        except httpx.HTTPError:
            return False
    return all(a.status_code == 200 for a in answers)


async def all_counted(stores: Stores, expected: dict[str, Expected]) -> bool:
    for code, want in expected.items():
        if await stores.pg_totals(code) != want or await stores.ch_raw(code) != want:
            return False
    return True


async def test_no_loss_when_a_worker_is_killed_mid_batch() -> None:
    codes = [unique_code("kill") for _ in range(30)]
    per_code = 2000
    events = [make_click(c, i, bot=i % 10 == 0) for i in range(per_code) for c in codes]
    expected = {c: Expected(per_code * 9 // 10, per_code // 10) for c in codes}
    victim_port = WORKER_PORTS[1]
    before_pid = worker_pid("aggregator-2")
    baseline = await processed(victim_port)
    async with ClickProducer() as producer, Stores() as stores:
        # Both formats: half the clicks as batch records, half as single clicks (the slow part).
        records = batches(events[::2], partitions=await producer.partitions(), size=200)

        async def send() -> None:
            await producer.send_batches(records)
            await producer.send(events[1::2])

        sending = asyncio.create_task(send())

        async def victim_busy() -> bool:
            return await processed(victim_port) > baseline + 500

        await wait_until_async(victim_busy, timeout=60, interval=0.02, what="aggregator-2 processing")
        os.kill(before_pid, signal.SIGKILL)  # mid-batch: it is consuming a backlog right now
        await sending
        assert not await all_counted(stores, expected)  # the kill really landed mid-run

        async def restarted() -> bool:
            out = supervisorctl("pid", "aggregator-2")
            return out.isdigit() and int(out) not in (0, before_pid)

        await wait_until_async(restarted, timeout=60, interval=0.2, what="supervisord restarting aggregator-2")
        await wait_until_async(
            lambda: all_counted(stores, expected),
            timeout=240,
            interval=0.5,
            what="every click counted exactly once after the kill",
        )
        ids = [str(b.batch_id) for _, b in records] + [e.event_id for e in events[1::2]]
        assert await stores.ledger_has(ids) == len(ids)
    await wait_until_async(workers_ready, timeout=60, interval=0.5, what="workers ready again")


async def test_a_batch_half_written_when_its_worker_is_killed_counts_exactly_once_after_restart() -> None:
    """PostgreSQL counted the batch, ClickHouse never got it (stopped), the worker is killed while
    it retries the write: after the restart the redelivered records are duplicates, and the
    journal entry the dead worker left is what makes ClickHouse receive the clicks, once."""
    codes = [unique_code("half") for _ in range(6)]
    events = [make_click(c, i, bot=i % 5 == 0) for c in codes for i in range(100)]
    expected = {c: Expected(80, 20) for c in codes}
    async with ClickProducer() as producer, Stores() as stores:
        records = batches(events, partitions=await producer.partitions(), size=50)
        assert "clickhouse: stopped" in await asyncio.to_thread(supervisorctl, "stop", "clickhouse")
        try:
            await producer.send_batches(records)

            async def claimed_in_postgres() -> bool:
                # A worker claims a flush, then retries its ClickHouse write until it is killed.
                return any([await stores.pg_totals(c) is not None for c in codes])

            await wait_until_async(
                claimed_in_postgres,
                timeout=120,
                interval=0.2,
                what="PostgreSQL claimed batches of ours while ClickHouse is down",
            )
            assert await stores.journal_entries() > 0  # the ClickHouse writes are owed
            for name in ("aggregator-1", "aggregator-2", "aggregator-3"):
                os.kill(worker_pid(name), signal.SIGKILL)
        finally:
            assert "clickhouse: started" in await asyncio.to_thread(supervisorctl, "start", "clickhouse")
        await wait_until_async(lambda: _answers(stores), timeout=60, interval=0.2, what="ClickHouse answering")
        await wait_until_async(
            lambda: all_counted(stores, expected),
            timeout=240,
            interval=0.5,
            what="ClickHouse receives the half-written batches after the restart",
        )
        await wait_until_async(lambda: _none_owed(stores), timeout=60, interval=0.5, what="journal finished")
        assert await _metric_sum("aggregator_sink_recoveries_total") >= 1  # finished by the recovery
        for code, want in expected.items():  # nothing counted twice, in any table
            assert await stores.pg_totals(code) == want
            for grain in GRAINS:
                assert await stores.ch_rollup(code, grain) == want
                assert await stores.ch_top(code, grain) == want
    await wait_until_async(workers_ready, timeout=120, interval=0.5, what="workers ready again")


async def _metric_sum(name: str) -> float:
    async with httpx.AsyncClient(timeout=5) as http:
        texts = [(await http.get(f"http://127.0.0.1:{p}/metrics")).text for p in WORKER_PORTS]
    return sum(float(ln.split()[-1]) for t in texts for ln in t.splitlines() if ln.startswith(name + " "))


async def _answers(stores: Stores) -> bool:
    try:
        return await stores.query("SELECT 1") == [["1"]]
    except httpx.HTTPError:
        return False


async def _none_owed(stores: Stores) -> bool:
    return await stores.journal_entries() == 0


async def test_no_loss_when_kafka_restarts_during_the_run() -> None:
    codes = [unique_code("kfk") for _ in range(10)]
    chunks = [[make_click(c, i * 100 + j) for c in codes for j in range(10)] for i in range(100)]
    expected = {c: Expected(1000, 0) for c in codes}
    sent_chunks = 0

    async def produce() -> None:
        nonlocal sent_chunks
        for chunk in chunks:
            while True:  # a producer that retries until acked; repeats are harmless (same event ids)
                try:
                    async with ClickProducer() as producer:
                        await producer.send(chunk)
                    break
                except (KafkaError, OSError):
                    await asyncio.sleep(0.5)
            sent_chunks += 1

    async with Stores() as stores:
        producing = asyncio.create_task(produce())
        await wait_until_async(lambda: _at_least(lambda: sent_chunks, 15), timeout=60, what="first chunks sent")
        restart = await asyncio.to_thread(supervisorctl, "restart", "kafka")
        assert "kafka: started" in restart, restart
        await asyncio.wait_for(producing, timeout=300)
        await wait_until_async(
            lambda: all_counted(stores, expected),
            timeout=300,
            interval=0.5,
            what="every click counted exactly once across the Kafka restart",
        )
    await wait_until_async(workers_ready, timeout=120, interval=0.5, what="workers ready again")


async def _at_least(get, n: int) -> bool:  # type: ignore[no-untyped-def]
    return bool(get() >= n)
