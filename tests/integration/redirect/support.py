"""Helpers for redirect tests against the real stack (also imported by tests/e2e).

Tests that need their own topics get uuid-named ones (created and deleted here) and a Redis
database of their own (TEST_REDIS_DB), so they can empty it without touching the live read model.
Throwaway redirect processes run the real entry point (`python -m redirect serve`) on a free port.
"""

import asyncio
import contextlib
import os
import re
import signal
import socket
import time
import uuid
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC
from pathlib import Path
from types import TracebackType
from typing import Any

import httpx
import pytest
import redis.asyncio as aioredis
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from contracts import clicks, links
from contracts.clicks import Click, ClicksBatched
from contracts.errors import InvalidEvent
from contracts.links import CODE_RE, LinkDeleted, LinkEvent
from platformkit.kafka import topic_partitions

from tests.conftest import ROOT, public_url, redirect_replica_urls, wait_until_async

KAFKA = os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9092")
REDIS_PORT = int(os.environ.get("REDIS_PORT", "6380"))
LIVE_REDIS_URL = os.environ.get("REDIS_URL", f"redis://127.0.0.1:{REDIS_PORT}/0")
# A database of the stack's Redis used only by these tests (the services use db 0).
TEST_REDIS_DB = 13
TEST_REDIS_URL = f"redis://127.0.0.1:{REDIS_PORT}/{TEST_REDIS_DB}"
REDIS_REPLICA_PORT = int(os.environ.get("REDIS_REPLICA_PORT", "6381"))
TEST_REDIS_REPLICA_URL = f"redis://127.0.0.1:{REDIS_REPLICA_PORT}/{TEST_REDIS_DB}"
TOPIC_CLICKS = os.environ.get("TOPIC_CLICKS", "clicks")
TOPIC_LINKS = os.environ.get("TOPIC_LINKS", "links")
PYTHON = str(ROOT / ".venv/bin/python")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def unique_code(prefix: str = "rd") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


@contextlib.asynccontextmanager
async def temp_topics(*specs: tuple[str, int, Mapping[str, str]]) -> AsyncIterator[list[str]]:
    """Create uuid-named topics (prefix, partitions, config); delete them afterwards."""
    names = [f"test-redirect-{prefix}-{uuid.uuid4().hex[:10]}" for prefix, _, _ in specs]
    admin = AIOKafkaAdminClient(bootstrap_servers=KAFKA)
    await admin.start()
    try:
        await admin.create_topics(
            [NewTopic(n, p, 1, topic_configs=dict(c)) for n, (_, p, c) in zip(names, specs, strict=True)]
        )
        yield names
    finally:
        with contextlib.suppress(Exception):
            await admin.delete_topics(names)
        await admin.close()


async def produce(topic: str, events: Iterable[LinkEvent | tuple[bytes, bytes | None]]) -> list[tuple[int, int]]:
    """Produce link events (or raw key/value pairs) in order; return (partition, offset) of each."""
    producer = AIOKafkaProducer(bootstrap_servers=KAFKA, enable_idempotence=True, acks="all")
    await producer.start()
    try:
        out = []
        for item in events:
            key, value = (links.key(item), links.encode(item)) if not isinstance(item, tuple) else item
            meta = await producer.send_and_wait(topic, value, key=key)
            out.append((meta.partition, meta.offset))
        return out
    finally:
        await producer.stop()


@dataclass(frozen=True)
class Raw:
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None


async def _consumer(topic: str, start: Mapping[int, int] | None) -> tuple[AIOKafkaConsumer, dict[int, int]]:
    consumer = AIOKafkaConsumer(bootstrap_servers=KAFKA, group_id=None, enable_auto_commit=False)
    await consumer.start()
    tps = [TopicPartition(topic, p) for p in await topic_partitions(KAFKA, topic)]
    consumer.assign(tps)
    ends = {tp.partition: off for tp, off in (await consumer.end_offsets(tps)).items()}
    for tp in tps:
        consumer.seek(tp, (start or {}).get(tp.partition, 0) if start is not None else ends[tp.partition])
    return consumer, ends


async def read_topic(topic: str, until: Mapping[int, int] | None = None) -> list[Raw]:
    """Every record from offset 0 up to `until` (default: the end offsets now)."""
    consumer, ends = await _consumer(topic, {})
    target = dict(until or ends)
    out: list[Raw] = []
    try:
        positions = {p: 0 for p in target}
        deadline = time.monotonic() + 60
        while any(positions[p] < end for p, end in target.items()):
            assert time.monotonic() < deadline, f"reading {topic} timed out at {positions} of {target}"
            for tp, records in (await consumer.getmany(timeout_ms=200)).items():
                for r in records:
                    positions[tp.partition] = r.offset + 1
                    if r.offset < target[tp.partition]:
                        out.append(Raw(tp.partition, r.offset, r.key, r.value))
    finally:
        await consumer.stop()
    return out


async def end_offsets(topic: str) -> dict[int, int]:
    consumer, ends = await _consumer(topic, None)
    await consumer.stop()
    return ends


@dataclass(frozen=True)
class ClickRecord:
    """One record of a clicks topic as the redirect publishes it: a partition batch."""

    partition: int
    key: bytes | None
    headers: tuple[tuple[str, bytes], ...]
    batch: ClicksBatched


class ClicksTopic:
    """Reads a clicks topic from `start` offsets (default: its end offsets at entry), keeping
    every record (`records`) and every click in them (`seen`)."""

    def __init__(self, topic: str = TOPIC_CLICKS, *, start: Mapping[int, int] | None = None) -> None:
        self.topic = topic
        self.start = start
        self.records: list[ClickRecord] = []
        self.seen: list[Click] = []
        self._consumer: AIOKafkaConsumer | None = None

    async def __aenter__(self) -> "ClicksTopic":
        self._consumer, _ = await _consumer(self.topic, self.start)
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        assert self._consumer is not None
        await self._consumer.stop()

    async def poll(self) -> None:
        assert self._consumer is not None
        for records in (await self._consumer.getmany(timeout_ms=100)).values():
            for r in records:
                batch = clicks.decode(r.value)
                assert isinstance(batch, ClicksBatched), f"the redirect published a {type(batch).__name__}"
                self.records.append(ClickRecord(r.partition, r.key, tuple(r.headers), batch))
                self.seen.extend(batch.clicks)

    def for_code(self, code: str) -> list[Click]:
        return [e for e in self.seen if e.code == code]

    def unique_for_code(self, code: str) -> dict[uuid.UUID, Click]:
        """Clicks of `code` by event id (a re-sent batch repeats its clicks: counted once)."""
        return {e.event_id: e for e in self.for_code(code)}

    def records_with(self, code: str) -> list[ClickRecord]:
        return [r for r in self.records if any(c.code == code for c in r.batch.clicks)]

    async def wait_for_unique(self, code: str, count: int, *, timeout: float) -> dict[uuid.UUID, Click]:
        deadline = time.monotonic() + timeout
        while len(self.unique_for_code(code)) < count:
            got = len(self.unique_for_code(code))
            assert time.monotonic() < deadline, f"{got}/{count} distinct clicks for {code} in {timeout}s"
            await self.poll()
        return self.unique_for_code(code)

    async def wait_for(self, code: str, count: int, *, timeout: float) -> list[Click]:
        deadline = time.monotonic() + timeout
        while len(self.for_code(code)) < count:
            assert time.monotonic() < deadline, f"{len(self.for_code(code))}/{count} clicks for {code} in {timeout}s"
            await self.poll()
        return self.for_code(code)


async def fresh_test_redis() -> aioredis.Redis:
    """The tests' own Redis database, emptied of redirect keys."""
    client = aioredis.Redis.from_url(TEST_REDIS_URL)
    await empty_read_model(client, also=("redirect:*",))
    return client


async def empty_read_model(client: aioredis.Redis, *, also: Sequence[str] = ()) -> int:
    """Delete the read model (link:*, links:offsets) and any `also` patterns; return keys deleted.

    links:offsets goes last: a live replica that finds it behind its own position rebuilds the
    model from the topic at once (links_projector._check_model), and deleted first, a replica
    busy rebuilding wrote keys back while the scan still deleted them (seen under load)."""
    deleted = 0
    for pattern in ("link:*", *also):
        batch: list[bytes] = []
        async for key in client.scan_iter(match=pattern, count=1000):
            batch.append(key)
            if len(batch) >= 1000:
                deleted += await client.delete(*batch)
                batch = []
        if batch:
            deleted += await client.delete(*batch)
    deleted += await client.delete("links:offsets")
    return int(deleted)


@dataclass
class RedirectProcess:
    """`python -m redirect serve` on a free port with env overrides; stopped with SIGTERM."""

    env: Mapping[str, str]
    wait_ready: bool = True  # False: only wait for /healthz (the process answers)
    port: int = field(default_factory=free_port)
    log: Path = field(default_factory=lambda: ROOT / ".local" / "logs" / f"test-redirect-{uuid.uuid4().hex[:8]}.log")
    proc: asyncio.subprocess.Process | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def __aenter__(self) -> "RedirectProcess":
        env = {**os.environ, "REDIRECT_PORT": str(self.port), "REDIRECT_REPLICA_ID": "99", **self.env}
        self.log.parent.mkdir(parents=True, exist_ok=True)
        with self.log.open("wb") as out:
            self.proc = await asyncio.create_subprocess_exec(
                PYTHON,
                "-m",
                "redirect",
                "serve",
                cwd=ROOT,
                env=env,
                stdout=out,
                stderr=asyncio.subprocess.STDOUT,
                start_new_session=True,
            )
        try:
            await wait_until_async(self.ready, timeout=30, interval=0.1, what=f"redirect on :{self.port} ready")
        except BaseException:
            await self.stop()
            raise
        return self

    async def ready(self) -> bool:
        assert self.proc is not None
        assert self.proc.returncode is None, f"redirect exited early:\n{self.log.read_text()[-3000:]}"
        try:
            async with httpx.AsyncClient(timeout=2) as client:
                return (await client.get(f"{self.url}/{'readyz' if self.wait_ready else 'healthz'}")).status_code == 200
        except httpx.HTTPError:
            return False

    async def stop(self, timeout: float = 30) -> int:
        """SIGTERM to the process group (as supervisord does) and wait; return the exit code."""
        proc = self.proc
        if proc is None:
            return 0
        if proc.returncode is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                await asyncio.wait_for(proc.wait(), timeout)
            except TimeoutError:
                os.killpg(proc.pid, signal.SIGKILL)
                await proc.wait()
        assert proc.returncode is not None
        return proc.returncode

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()
        if exc is None:
            self.log.unlink(missing_ok=True)  # kept only when the test failed

    async def metric(self, name: str) -> float:
        return await metric_at(self.url, name)


def metric_value(text: str, name: str) -> float:
    """The value of `name`, summed over its label sets."""
    values = [float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line.startswith((name + " ", name + "{"))]
    assert values, f"metric {name} not exposed"
    return sum(values)


async def metric_at(base_url: str, name: str) -> float:
    async with httpx.AsyncClient(timeout=5) as client:
        return metric_value((await client.get(f"{base_url}/metrics")).text, name)


@dataclass(frozen=True)
class Finished:
    returncode: int
    stdout: str
    stderr: str


async def run_replay(env: Mapping[str, str], timeout: float = 120) -> Finished:
    """`python -m redirect replay-links` with env overrides, run to completion."""
    proc = await asyncio.create_subprocess_exec(
        PYTHON,
        "-m",
        "redirect",
        "replay-links",
        cwd=ROOT,
        env={**os.environ, **env},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), timeout)
    assert proc.returncode is not None
    return Finished(proc.returncode, out.decode(), err.decode())


_SERVABLE_URL = re.compile(r"[\x21-\x7e]{1,8192}")


def expected_read_model(records: Sequence[Raw]) -> dict[str, dict[bytes, bytes]]:
    """The read model the topic implies, computed independently of the service's code: per key,
    the last valid event's fields as the service stores them. Invalid records (not a contract
    event, key != code, a code or URL that cannot be served, max_clicks < 1) are skipped."""
    out: dict[str, dict[bytes, bytes]] = {}
    for r in sorted(records, key=lambda r: (r.partition, r.offset)):
        try:
            event = links.decode(r.value or b"")
        except InvalidEvent:
            continue
        if r.key != event.code.encode() or not CODE_RE.fullmatch(event.code):
            continue
        if isinstance(event, LinkDeleted):
            fields = {"u": "", "t": "302", "e": "", "m": "", "d": "1"}
        else:
            if not _SERVABLE_URL.fullmatch(event.url) or (event.max_clicks is not None and event.max_clicks < 1):
                continue
            exp = event.expires_at
            if exp is not None and exp.tzinfo is None:
                exp = exp.replace(tzinfo=UTC)
            fields = {
                "u": event.url,
                "t": str(event.redirect_type),
                "e": "" if exp is None else repr(exp.timestamp()),
                "m": "" if event.max_clicks is None else str(event.max_clicks),
                "d": "0",
            }
        out[event.code] = {k.encode(): v.encode() for k, v in {**fields, "o": str(r.offset)}.items()}
    return out


async def redis_read_model(client: aioredis.Redis) -> dict[str, dict[bytes, bytes]]:
    out: dict[str, dict[bytes, bytes]] = {}
    async for key in client.scan_iter(match="link:*", count=1000):
        out[key.decode()[len("link:") :]] = await client.hgetall(key)
    return out


# -- end to end through the shorten API and the stack's replicas ------------------------------


@pytest.fixture
async def api(api_key: str) -> AsyncIterator[httpx.AsyncClient]:
    headers = {"Authorization": f"Bearer {api_key}"}
    async with httpx.AsyncClient(base_url=public_url(), headers=headers, timeout=10) as client:
        yield client


@pytest.fixture
async def replicas() -> AsyncIterator[list[httpx.AsyncClient]]:
    clients = [httpx.AsyncClient(base_url=url, timeout=2) for url in redirect_replica_urls()]
    yield clients
    for client in clients:
        await client.aclose()


async def answers(replicas: list[httpx.AsyncClient], code: str) -> list[tuple[int, str | None]]:
    responses = [await r.get(f"/{code}") for r in replicas]
    return [(r.status_code, r.headers.get("location")) for r in responses]


async def seconds_until_all(replicas: list[httpx.AsyncClient], code: str, expected: tuple[int, str | None]) -> float:
    """Poll every replica from now until each answers `expected`; return how long that took."""
    started = time.monotonic()

    async def done() -> bool:
        return await answers(replicas, code) == [expected] * len(replicas)

    await wait_until_async(done, timeout=10, interval=0.01, what=f"{code} -> {expected} on every replica")
    return time.monotonic() - started


async def create(api: httpx.AsyncClient, **body: Any) -> dict[str, Any]:
    response = await api.post("/api/v1/links", json=body)
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


# -- fixtures of the tests that run their own replicas on uuid topics and the tests' Redis db ----------


@pytest.fixture
async def topics() -> AsyncIterator[dict[str, str]]:
    """uuid-named links (compacted), clicks and dead-letter topics, deleted afterwards."""
    specs = (("links", 3, {"cleanup.policy": "compact"}), ("clicks", 3, {}), ("dlq", 1, {}))
    async with temp_topics(*specs) as names:
        yield dict(zip(("links", "clicks", "dlq"), names, strict=True))


@pytest.fixture
async def redis_db() -> AsyncIterator[aioredis.Redis]:
    """The tests' Redis database, empty of redirect keys before and after."""
    client = await fresh_test_redis()
    yield client
    await empty_read_model(client, also=("redirect:*",))
    await client.aclose()


def replica_env(topics: Mapping[str, str], **extra: str) -> dict[str, str]:
    """Environment of a throwaway replica on the uuid topics and the tests' Redis db."""
    return {
        "TOPIC_LINKS": topics["links"],
        "TOPIC_CLICKS": topics["clicks"],
        "TOPIC_DEADLETTER": topics["dlq"],
        "REDIS_URL": TEST_REDIS_URL,
        # Its reads fall back to the stack's Redis replica, the same test database there.
        "REDIS_REPLICA_URL": TEST_REDIS_REPLICA_URL,
        **extra,
    }
