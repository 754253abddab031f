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
    WORKER_PORTS,
    ClickProducer,
    Expected,
    Stores,
    make_click,
    unique_code,
)

pytestmark = [pytest.mark.integration, pytest.mark.destructive]


def supervisorctl(*args: str) -> str:
    result = subprocess.run([str(ROOT / ".venv/bin/supervisorctl"), "-c", str(LOCAL / "supervisord.conf"), *args],
                            capture_output=True, text=True, timeout=180)
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
        sending = asyncio.create_task(producer.send(events))

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
        await wait_until_async(lambda: all_counted(stores, expected), timeout=240, interval=0.5,
                               what="every click counted exactly once after the kill")
        for code in codes:
            assert await stores.ledger_count(code) == per_code
    await wait_until_async(workers_ready, timeout=60, interval=0.5, what="workers ready again")


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
        await wait_until_async(lambda: all_counted(stores, expected), timeout=300, interval=0.5,
                               what="every click counted exactly once across the Kafka restart")
    await wait_until_async(workers_ready, timeout=120, interval=0.5, what="workers ready again")


async def _at_least(get, n: int) -> bool:  # type: ignore[no-untyped-def]
    return bool(get() >= n)
