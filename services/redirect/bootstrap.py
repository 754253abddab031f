"""Wiring: settings -> adapters -> projector, lookup, click pipeline. Clients are built here,
inside the lifespan, never at import time, and closed on the way out (clicks flushed first)."""

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from contracts import deadletter
from opentelemetry import trace
from platformkit.tasks import cancel_and_wait
from prometheus_client import CollectorRegistry
from telemetry import tracing

from redirect.adapters import geoip
from redirect.adapters.kafka_clicks import KafkaClickSink, producer_config
from redirect.adapters.kafka_links import DeadLetters, LinksReader
from redirect.adapters.redis_cache import ReadFailover, RedisLinkStore, connect
from redirect.clicks import ClickBuffer
from redirect.domain import useragent
from redirect.domain.batches import BatchFormer
from redirect.domain.clicks import ClickFactory
from redirect.domain.l1 import L1Cache
from redirect.domain.links import Link
from redirect.domain.visitor import TrustedProxies, VisitorKeys
from redirect.entrypoints.redirect import Core
from redirect.lookup import Lookup
from redirect.metrics import RedirectCollector, RedirectStats
from redirect.ports import HotCounter
from redirect.projector import LinksProjector
from redirect.settings import RedirectSettings

log = logging.getLogger(__name__)


@dataclass(frozen=True, kw_only=True)
class Runtime:
    core: Core
    store: RedisLinkStore
    projector: LinksProjector


def build_projector(
    settings: RedirectSettings,
    *,
    store: RedisLinkStore,
    stats: RedirectStats,
    l1: L1Cache[Link] | None,
    dead_letters: DeadLetters | None,
    client_id: str,
    report_seen: bool = False,
) -> LinksProjector:
    def reader() -> LinksReader:
        first, *more = settings.links_topics()
        return LinksReader(
            topic=first,
            more_topics=tuple(more),
            bootstrap_servers=settings.kafka_bootstrap_servers,
            client_id=client_id,
            fetch_max_wait_ms=settings.redirect_links_fetch_max_wait_ms,
        )

    async def dead_letter(record: deadletter.MessageDeadLettered, key: bytes | None) -> None:
        assert dead_letters is not None
        await dead_letters.publish(record, key=key)

    return LinksProjector(
        reader_factory=reader,
        store=store,
        stats=stats,
        l1=l1,
        l1_ttl=settings.redirect_l1_ttl_seconds,
        permanent_max_age=settings.redirect_permanent_max_age,
        dead_letter=dead_letter if dead_letters is not None else None,
        consumer_name=client_id,
        topic=settings.topic_links,
        fetch_max_records=settings.redirect_links_batch_max,
        max_pending=settings.redirect_links_max_pending,
        report_as=client_id if report_seen else None,
    )


def click_pipeline(
    settings: RedirectSettings, *, hot: HotCounter | None, client_id: str
) -> tuple[ClickBuffer, KafkaClickSink]:
    """The click buffer and its Kafka sink (also driven alone by `just bench redirect`)."""
    if not settings.redirect_visitor_key_secret.get_secret_value():
        log.warning("REDIRECT_VISITOR_KEY_SECRET is not set: using the development secret (not for production)")
    factory = ClickFactory(
        visitor_keys=VisitorKeys(settings.visitor_secret()),
        proxies=TrustedProxies(settings.trusted_networks()),
        classify=useragent.make_classifier(settings.redirect_ua_cache_size),
        country_header=settings.redirect_country_header,
        country_of=geoip.country_of if settings.redirect_geoip else (lambda _address: None),
        ua_cache_size=settings.redirect_ua_cache_size,
    )
    sink = KafkaClickSink(
        topic=settings.topic_clicks,
        config=producer_config(
            bootstrap_servers=settings.kafka_bootstrap_servers,
            client_id=f"{client_id}-clicks",
            linger_ms=settings.redirect_click_linger_ms,
            request_timeout_ms=settings.redirect_kafka_request_timeout_ms,
        ),
    )
    buffer = ClickBuffer(
        factory=factory,
        former=BatchFormer(producer=client_id),
        sink=sink,
        hot=hot,
        max_events=settings.redirect_click_buffer_max,
        batch_max=settings.redirect_click_batch_max,
        flush_interval=settings.redirect_click_flush_interval_seconds,
        traced=tracing.tracing_enabled(),
        hot_keep=settings.redirect_hot_set_size,
    )
    return buffer, sink


@asynccontextmanager
async def build_runtime(settings: RedirectSettings, registry: CollectorRegistry) -> AsyncIterator[Runtime]:
    client_id = f"redirect-{settings.redirect_replica_id}"
    store = RedisLinkStore(
        connect(settings.redis_url, sentinels=settings.redis_sentinels, master=settings.redis_sentinel_master)
    )
    # Reads fall back on the Redis replica while the primary is away. Behind Sentinel the
    # replica's address can change at a failover; REDIS_REPLICA_URL names the one to read.
    replica = RedisLinkStore(connect(settings.redis_replica_url)) if settings.redis_replica_url else None
    reads = ReadFailover(store, replica, retry_after=settings.redirect_primary_retry_seconds)
    stats = RedirectStats()
    l1: L1Cache[Link] = L1Cache(max_size=settings.l1_size())
    dead_letters = DeadLetters(
        topic=settings.topic_deadletter, bootstrap_servers=settings.kafka_bootstrap_servers, client_id=client_id
    )
    projector = build_projector(
        settings, store=store, stats=stats, l1=l1, dead_letters=dead_letters, client_id=client_id, report_seen=True
    )
    lookup = Lookup(
        store=store,
        reads=reads,
        l1=l1,
        stats=stats,
        anchored=lambda: projector.anchored,
        rebuilding=lambda: projector.rebuilding,
        ttl=settings.redirect_l1_ttl_seconds,
        negative_ttl=settings.redirect_l1_negative_ttl_seconds,
        permanent_max_age=settings.redirect_permanent_max_age,
    )
    useragent.warm_up()
    clicks, sink = click_pipeline(settings, hot=store, client_id=client_id)
    collector = RedirectCollector(stats, click_counters=clicks.counters, links_lag=projector.lag, l1_size=l1.__len__)
    registry.register(collector)
    core = Core(
        l1=l1,
        lookup=lookup,
        clicks=clicks,
        stats=stats,
        permanent_max_age=settings.redirect_permanent_max_age,
        tracer=trace.get_tracer("redirect") if tracing.tracing_enabled() else None,
    )
    projector_task: asyncio.Task[None] | None = None
    try:
        await sink.warm_up()
        clicks.start()
        await _start_projector_and_warm(settings, projector, lookup)
        projector_task = asyncio.create_task(projector.run(), name="links-projector")
        yield Runtime(core=core, store=store, projector=projector)
    finally:
        # Click events first: they are the data at stake (the read model is rebuilt from the topic).
        await clicks.close(settings.redirect_shutdown_flush_timeout_seconds)
        if projector_task is not None:
            await _stop_projector(projector, projector_task, timeout=PROJECTOR_STOP_TIMEOUT_S)
        await dead_letters.aclose()
        await store.aclose()
        if replica is not None:
            await replica.aclose()
        registry.unregister(collector)


# One fetch timeout (0.5 s) plus a reader stop; a projector still running after this is left behind.
PROJECTOR_STOP_TIMEOUT_S = 5.0


async def _stop_projector(projector: LinksProjector, task: "asyncio.Task[None]", *, timeout: float) -> None:
    """Stop the projector's loop (flag and cancel) and wait a bounded time: shutdown never hangs on it."""
    projector.stop()
    await cancel_and_wait({task}, timeout=timeout, log=log)


async def _start_projector_and_warm(settings: RedirectSettings, projector: LinksProjector, lookup: Lookup) -> None:
    """Anchor the projector (read its start offsets), then warm the L1 -- in that order (see lookup.py)."""
    try:
        async with asyncio.timeout(settings.redirect_warm_timeout_seconds):
            await projector.anchor()
            await lookup.warm(settings.redirect_warm_count)
    except Exception as exc:  # TimeoutError, StoreUnavailable: serve anyway, readiness tells
        log.warning("start: projector anchor / cache warm-up incomplete (%s)", exc or type(exc).__name__)
