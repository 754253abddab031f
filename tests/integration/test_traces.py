"""OpenTelemetry traces cross every service boundary, through Kafka headers.

The services' own code runs in this process with an in-memory span exporter, against the real
PostgreSQL, Kafka, Redis and ClickHouse: the shorten API and outbox relay, three redirect links
projectors (one per replica), a redirect app, and the aggregator's batch pipeline. The live
shorten-relay is stopped for the link test so that this process's relay publishes the outbox.
"""

import asyncio
import logging
import subprocess
import uuid
from collections.abc import Iterator, Sequence

import pytest
from aiokafka import AIOKafkaConsumer
from aiokafka.structs import TopicPartition
from contracts import clicks
from contracts.deadletter import MessageDeadLettered
from contracts.topics import CLICKS
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind
from platformkit.tasks import cancel_and_wait
from stackctl.config import StackSettings
from starlette.testclient import TestClient
from telemetry import tracing

from tests.conftest import ROOT, wait_until_async

pytestmark = [pytest.mark.integration, pytest.mark.destructive]


@pytest.fixture(scope="module")
def spans() -> Iterator[InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    provider = tracing.setup_tracing("trace-test", extra_processors=[SimpleSpanProcessor(exporter)])
    assert provider is not None and tracing.tracing_enabled()
    yield exporter
    exporter.clear()


def supervisorctl(*args: str) -> None:
    conf = StackSettings().supervisor_conf
    subprocess.run([str(ROOT / ".venv/bin/supervisorctl"), "-c", str(conf), *args], check=True, capture_output=True)


def named(spans: Sequence[ReadableSpan], name: str) -> list[ReadableSpan]:
    return [s for s in spans if s.name == name]


def parent_id(span: ReadableSpan) -> int | None:
    return span.parent.span_id if span.parent is not None else None


async def test_link_trace_runs_from_post_through_relay_into_each_replica(
    spans: InMemorySpanExporter, api_key: str
) -> None:
    from redirect.adapters.redis_cache import RedisLinkStore, connect
    from redirect.bootstrap import build_projector
    from redirect.domain.l1 import L1Cache
    from redirect.metrics import RedirectStats
    from redirect.settings import RedirectSettings
    from shorten.adapters.kafka import KafkaPublisher, producer_config
    from shorten.adapters.postgres import create_engine
    from shorten.adapters.postgres_outbox import PostgresOutbox
    from shorten.entrypoints.app import create_app
    from shorten.service_layer.outbox_relay import OutboxRelay
    from shorten.settings import ShortenSettings

    spans.clear()
    shorten_settings = ShortenSettings()
    redirect_settings = RedirectSettings()
    stores = [RedisLinkStore(connect(redirect_settings.redis_url)) for _ in range(3)]
    projectors = [
        build_projector(
            redirect_settings,
            store=store,
            stats=RedirectStats(),
            l1=L1Cache(max_size=1000),
            dead_letters=None,
            client_id=f"trace-test-replica-{i}",
        )
        for i, store in enumerate(stores, start=1)
    ]
    supervisorctl("stop", "shorten-relay")
    tasks: list[asyncio.Task[None]] = []
    try:
        # A bound on the whole exchange, inside the event loop: pytest-timeout fires outside it and
        # skips this `finally`, which left the live relay stopped for the tests after this one. A
        # hang fails here instead, with the traceback of the await that hung.
        async with asyncio.timeout(120):
            # Each "replica" anchors before anything is published, so each applies our event itself.
            for projector in projectors:
                await projector.anchor()
            tasks = [asyncio.create_task(p.run()) for p in projectors]

            with TestClient(create_app(shorten_settings)) as client:
                created = client.post(
                    "/api/v1/links",
                    json={"url": f"https://example.com/trace/{uuid.uuid4()}"},
                    headers={"Authorization": f"Bearer {api_key}"},
                )
            assert created.status_code == 201, created.text
            code = created.json()["code"]

            engine = create_engine(shorten_settings.postgres_dsn_asyncpg(), application_name="trace-test", pooled=False)
            try:
                async with PostgresOutbox.open(engine) as outbox:
                    assert await wait_until_async(outbox.try_lock, timeout=15, what="the relay lock")
                    config = producer_config(
                        bootstrap_servers=shorten_settings.kafka_bootstrap_servers,
                        request_timeout_ms=10_000,
                        client_id="trace-test-relay",
                    )
                    topics = {"links": shorten_settings.topic_links, "keys": shorten_settings.topic_keys}
                    async with KafkaPublisher(topics=topics, config=config) as publisher:
                        assert await OutboxRelay(outbox=outbox, publisher=publisher).drain() >= 1
            finally:
                await engine.dispose()

            def publish_span() -> ReadableSpan | None:
                found = [
                    s
                    for s in named(spans.get_finished_spans(), "links publish")
                    if s.attributes and s.attributes.get("link.code") == code
                ]
                return found[0] if found else None

            async def applied_by_every_replica() -> list[ReadableSpan] | None:
                publish = publish_span()
                if publish is None:
                    return None
                parent = publish.context.span_id
                applied = [s for s in named(spans.get_finished_spans(), "links apply") if parent_id(s) == parent]
                return applied if len(applied) == 3 else None

            applied = await wait_until_async(applied_by_every_replica, timeout=15, what="3 replicas' consumer spans")
    finally:
        try:
            # One cancel is not enough: aiokafka swallows a cancellation that lands in its own
            # cleanup and the projector fetches on (CI hung here until pytest-timeout). `stop()`
            # ends the loop at its next fetch, and cancel_and_wait cancels again, within a bound.
            for projector in projectors:
                projector.stop()
            still_running = await cancel_and_wait(tasks, timeout=30, log=logging.getLogger(__name__))
            for store in stores:
                await store.aclose()
        finally:
            supervisorctl("start", "shorten-relay")
        assert not still_running, f"projector tasks did not stop: {still_running}"

    finished = spans.get_finished_spans()
    server = [s for s in finished if s.kind == SpanKind.SERVER and s.name.startswith("POST")]
    assert len(server) == 1
    publish = publish_span()
    assert publish is not None and publish.kind == SpanKind.PRODUCER
    # POST (shorten) -> outbox row -> relay's publish span -> each replica's consumer span.
    assert publish.context.trace_id == server[0].context.trace_id
    assert parent_id(publish) == server[0].context.span_id
    assert {s.context.trace_id for s in applied} == {server[0].context.trace_id}
    assert {s.kind for s in applied} == {SpanKind.CONSUMER}
    assert {s.attributes["redirect.consumer"] for s in applied if s.attributes} == {
        "trace-test-replica-1",
        "trace-test-replica-2",
        "trace-test-replica-3",
    }


class _NoDeadLetters:
    async def publish(self, records: Sequence[MessageDeadLettered]) -> None:
        raise AssertionError(f"unexpected poison in the trace test: {records}")


async def test_click_trace_runs_from_redirect_through_clicks_topic_to_the_sink_write(
    spans: InMemorySpanExporter, api_key: str
) -> None:
    import httpx
    from aggregator.bootstrap import open_stores, pipeline_config
    from aggregator.metrics import AggregatorMetrics
    from aggregator.ports import SourceRecord
    from aggregator.service_layer.pipeline import process_batch
    from aggregator.settings import AggregatorSettings
    from redirect.entrypoints.app import create_app
    from redirect.settings import RedirectSettings

    from tests.conftest import public_url, redirect_replica_urls

    spans.clear()
    async with httpx.AsyncClient(base_url=public_url(), timeout=10) as public:
        created = await public.post(
            "/api/v1/links",
            json={"url": f"https://example.com/click-trace/{uuid.uuid4()}"},
            headers={"Authorization": f"Bearer {api_key}"},
        )
        assert created.status_code == 201, created.text
        code = created.json()["code"]

        async def known_to_replicas() -> bool:
            # HEAD: answered like GET but emits no click, so the only click is the traced one.
            answers = [await public.head(f"{url}/{code}") for url in redirect_replica_urls()]
            return all(a.status_code == 302 for a in answers)

        await wait_until_async(known_to_replicas, timeout=10, what="the link in the read model")

    settings = RedirectSettings(redirect_replica_id=99, redirect_warm_count=0)
    consumer = AIOKafkaConsumer(bootstrap_servers=settings.kafka_bootstrap_servers, enable_auto_commit=False)
    await consumer.start()
    try:
        partitions = [TopicPartition(settings.topic_clicks, p) for p in range(CLICKS.partitions)]
        consumer.assign(partitions)
        ends = await consumer.end_offsets(partitions)
        for tp in partitions:
            consumer.seek(tp, ends[tp])

        # The redirect app's lifespan flushes its click buffer on exit.
        with TestClient(create_app(settings)) as client:
            response = client.get(f"/{code}", follow_redirects=False, headers={"User-Agent": "Mozilla/5.0 trace"})
        assert response.status_code == 302

        found: list[SourceRecord] = []

        async def click_message() -> bool:
            batches = await consumer.getmany(timeout_ms=500)
            for tp, messages in batches.items():
                for m in messages:
                    record = clicks.decode(m.value)
                    carried = record.clicks if isinstance(record, clicks.ClicksBatched) else (record,)
                    if any(c.code == code for c in carried):
                        found.append(
                            SourceRecord(
                                topic=tp.topic,
                                partition=tp.partition,
                                offset=m.offset,
                                key=m.key,
                                value=m.value,
                                timestamp_ms=m.timestamp,
                                headers=tuple(m.headers or ()),
                            )
                        )
            return bool(found)

        await wait_until_async(click_message, timeout=15, what="the click on the topic")
    finally:
        await consumer.stop()

    assert len(found) == 1
    assert any(name == "traceparent" for name, _ in found[0].headers)
    aggregator_settings = AggregatorSettings()
    runtime = await open_stores(aggregator_settings, AggregatorMetrics())
    try:
        # The same batch pipeline the faust workers run (its sinks are idempotent, so the live
        # workers' copy of this click is not counted twice).
        await process_batch(
            found,
            config=pipeline_config(aggregator_settings),
            events=runtime.events,
            ledger=runtime.ledger,
            dead_letters=_NoDeadLetters(),
        )
    finally:
        await runtime.close()

    finished = spans.get_finished_spans()
    server = [s for s in finished if s.kind == SpanKind.SERVER and s.name == "GET /{code}"]
    assert len(server) == 1
    process = [s for s in named(finished, "clicks process") if parent_id(s) == server[0].context.span_id]
    assert len(process) == 1 and process[0].kind == SpanKind.CONSUMER
    sink = [s for s in finished if s.name.startswith("sink write") and parent_id(s) == process[0].context.span_id]
    assert len(sink) == 1
    assert {s.context.trace_id for s in (*server, *process, *sink)} == {server[0].context.trace_id}
