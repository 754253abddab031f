"""Kafka adapter of the relay: an idempotent aiokafka producer (acks=all) for shorten's topics
(`links`, `keys`): each outbox record names its topic, mapped here to the configured name.

With idempotence aiokafka never expires a batch: while the broker is away, send futures
simply wait and the producer retries in order (no reordering, no duplicates). Errors that
do surface (the broker unreachable at start, non-retriable errors) fail the publish; the
producer is then stopped (waiting for its in-flight batches, so an old batch can never
land after a resend) and a new one is started on the next attempt.
"""

import asyncio
import logging
from collections.abc import Mapping, Sequence
from types import TracebackType
from typing import NoReturn

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError
from opentelemetry import trace
from opentelemetry.trace import SpanKind
from platformkit.kafka import start_producer
from telemetry import tracing

from shorten.ports import OutboxRecord, PublishFailed

log = logging.getLogger(__name__)
_tracer = trace.get_tracer("shorten.relay")


def producer_config(*, bootstrap_servers: str, request_timeout_ms: int, client_id: str) -> dict[str, object]:
    """Pure: the producer settings the relay relies on (idempotent, acks from all replicas)."""
    return {
        "bootstrap_servers": bootstrap_servers,
        "client_id": client_id,
        "enable_idempotence": True,
        "acks": "all",
        "linger_ms": 0,
        "request_timeout_ms": request_timeout_ms,
        "retry_backoff_ms": 200,
    }


class KafkaPublisher:
    def __init__(self, *, topics: Mapping[str, str], config: dict[str, object]) -> None:
        """`topics`: the outbox's topic names -> the Kafka topics (settings TOPIC_LINKS, TOPIC_KEYS)."""
        self._topics = dict(topics)
        self._config = config
        self._producer: AIOKafkaProducer | None = None

    async def __aenter__(self) -> "KafkaPublisher":
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        # The process is ending: do not wait forever for a broker that is away. Records not
        # acknowledged stay unpublished in the outbox and are sent by the next relay.
        await self._discard(timeout=5.0)

    async def _started(self) -> AIOKafkaProducer:
        if self._producer is None:
            self._producer = await start_producer(self._config)
        return self._producer

    async def _discard(self, timeout: float | None = None) -> None:
        producer, self._producer = self._producer, None
        if producer is not None:
            try:
                await asyncio.wait_for(producer.stop(), timeout)
            except Exception as exc:  # the producer is being dropped after a failure anyway
                log.debug("stopping a failed producer: %s", exc)

    async def warm_up(self) -> None:
        """Start the producer now so the first publish is fast; a failure is retried later."""
        try:
            await self._started()
        except (KafkaError, OSError) as exc:
            log.warning("Kafka is not reachable yet (%s); publishing will retry", exc)
            await self._discard()

    async def publish(self, records: Sequence[OutboxRecord]) -> None:
        """Send in order, key = code, then wait for every ack; see Publisher.publish."""
        futures: list[asyncio.Future[object]] = []
        try:
            producer = await self._started()
            send = self._send_traced if tracing.tracing_enabled() else self._send
            for record in records:
                futures.append(await send(producer, record))
        except (KafkaError, OSError) as exc:
            await self._fail(futures, exc)
        results = await asyncio.gather(*futures, return_exceptions=True)
        errors = [r for r in results if isinstance(r, BaseException)]
        if errors:
            await self._fail(futures, errors[0], results)

    async def _send(self, producer: AIOKafkaProducer, record: OutboxRecord) -> "asyncio.Future[object]":
        # Tracing off: nothing to record here, so the request's trace context is passed on as
        # stored (what the no-op span of _send_traced would inject), without a span per record.
        headers = [("traceparent", record.traceparent.encode())] if record.traceparent else []
        future: asyncio.Future[object] = await producer.send(
            self._topics[record.topic], value=record.payload, key=record.code.encode(), headers=headers
        )
        return future

    async def _send_traced(self, producer: AIOKafkaProducer, record: OutboxRecord) -> "asyncio.Future[object]":
        # Continue the trace of the request that wrote the record (stored beside it).
        parent = tracing.context_from_traceparent(record.traceparent)
        topic = self._topics[record.topic]
        with _tracer.start_as_current_span(
            f"{topic} publish",
            context=parent,
            kind=SpanKind.PRODUCER,
            attributes={
                "messaging.system": "kafka",
                "messaging.destination.name": topic,
                "link.code": record.code,
                "messaging.message.id": record.event_id,
            },
        ):
            future: asyncio.Future[object] = await producer.send(
                topic, value=record.payload, key=record.code.encode(), headers=tracing.kafka_headers()
            )
            return future

    async def _fail(
        self, futures: list[asyncio.Future[object]], exc: BaseException, results: list[object] | None = None
    ) -> NoReturn:
        if results is None:
            results = list(await asyncio.gather(*futures, return_exceptions=True))
        acked = 0
        for result in results:
            if isinstance(result, BaseException):
                break
            acked += 1
        await self._discard()
        raise PublishFailed(f"{type(exc).__name__}: {exc}", acked=acked) from (
            exc if isinstance(exc, Exception) else None
        )
