"""Wiring: settings -> adapters -> projector, lookup, click pipeline; the one place that wires.

`bootstrap(settings, **overrides)` builds every object of a replica without connecting anything
(Redis and Kafka clients connect on first use) and returns the `Runtime`; the lifespan calls
`start()` (connect, anchor the projector, warm the L1) and `stop()` (clicks flushed first).
Unit tests pass fakes of the ports (`store`, `click_sink`, ...) as overrides."""

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass, field

from contracts import deadletter
from opentelemetry import trace
from platformkit.tasks import cancel_and_wait
from prometheus_client import REGISTRY, CollectorRegistry
from telemetry import tracing
from telemetry.runtime import RuntimeWatch

from redirect.adapters import geoip
from redirect.adapters.kafka_clicks import KafkaClickSink, producer_config
from redirect.adapters.kafka_links import DeadLetters, LinksReader
from redirect.adapters.redis_cache import ReadFailover, RedisLinkStore, connect
from redirect.domain import useragent
from redirect.domain.batches import BatchFormer
from redirect.domain.click_factory import ClickFactory
from redirect.domain.l1 import L1Cache
from redirect.domain.links import Link
from redirect.domain.visitor import TrustedProxies, VisitorKeys
from redirect.metrics import RedirectCollector, RedirectStats
from redirect.ports import ClickSink, HotCounter, LinksSource, LinkStore, ReadModelWriter
from redirect.service_layer.click_buffer import ClickBuffer
from redirect.service_layer.links_projector import LinksProjector
from redirect.service_layer.lookup import Lookup
from redirect.service_layer.redirects import Core
from redirect.settings import RedirectSettings

log = logging.getLogger(__name__)

# One fetch timeout (0.5 s) plus a reader stop; a projector still running after this is left behind.
PROJECTOR_STOP_TIMEOUT_S = 5.0


@dataclass(frozen=True, kw_only=True)
class Runtime:
    """A wired redirect replica: what the hot path and the ops routes read, and its start/stop."""

    settings: RedirectSettings
    core: Core
    store: LinkStore
    replica: LinkStore | None
    projector: LinksProjector
    sink: ClickSink
    dead_letters: DeadLetters | None
    registry: CollectorRegistry
    collector: RedirectCollector
    # Event-loop lag and GC pauses (telemetry/runtime.py): where a tail latency comes from when
    # no request is slow.
    watch: RuntimeWatch
    _tasks: dict[str, "asyncio.Task[None]"] = field(default_factory=dict)

    async def start(self) -> None:
        """Connect the click sink, start the click buffer, anchor the projector, warm the L1
        (bounded: the replica serves anyway, readiness tells), then run the projector."""
        self.registry.register(self.collector)
        self.watch.start()
        await self.sink.warm_up()
        self.core.clicks.start()
        await _start_projector_and_warm(self.settings, self.projector, self.core.lookup)
        self._tasks["projector"] = asyncio.create_task(self.projector.run(), name="links-projector")

    async def stop(self) -> None:
        """Click events first: they are the data at stake (the read model is rebuilt from the topic)."""
        try:
            await self.core.clicks.close(self.settings.redirect_shutdown_flush_timeout_seconds)
            task = self._tasks.pop("projector", None)
            if task is not None:
                await _stop_projector(self.projector, task, timeout=PROJECTOR_STOP_TIMEOUT_S)
            if self.dead_letters is not None:
                await self.dead_letters.aclose()
            await self.store.aclose()
            if self.replica is not None:
                await self.replica.aclose()
        finally:
            self.registry.unregister(self.collector)
            await self.watch.stop()


def bootstrap(
    settings: RedirectSettings,
    *,
    store: LinkStore | None = None,
    replica: LinkStore | None = None,
    click_sink: ClickSink | None = None,
    dead_letters: DeadLetters | None = None,
    links_source: Callable[[], LinksSource] | None = None,
    registry: CollectorRegistry = REGISTRY,
) -> Runtime:
    """Build a replica from its settings; each keyword replaces the adapter of that port (tests).
    Nothing connects here."""
    client_id = f"redirect-{settings.redirect_replica_id}"
    if store is None:
        store = RedisLinkStore(
            connect(settings.redis_url, sentinels=settings.redis_sentinels, master=settings.redis_sentinel_master)
        )
        # Reads fall back on the Redis replica while the primary is away. Behind Sentinel the
        # replica's address can change at a failover; REDIS_REPLICA_URL names the one to read.
        if replica is None and settings.redis_replica_url:
            replica = RedisLinkStore(connect(settings.redis_replica_url))
    reads = ReadFailover(store, replica, retry_after=settings.redirect_primary_retry_seconds)
    stats = RedirectStats()
    l1: L1Cache[Link] = L1Cache(max_size=settings.l1_size())
    if dead_letters is None:
        dead_letters = DeadLetters(
            topic=settings.topic_deadletter, bootstrap_servers=settings.kafka_bootstrap_servers, client_id=client_id
        )
    projector = build_projector(
        settings,
        store=store,
        stats=stats,
        l1=l1,
        dead_letters=dead_letters,
        client_id=client_id,
        report_seen=True,
        links_source=links_source,
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
    clicks, sink = click_pipeline(settings, hot=store, client_id=client_id, sink=click_sink)
    core = Core(
        l1=l1,
        lookup=lookup,
        clicks=clicks,
        stats=stats,
        permanent_max_age=settings.redirect_permanent_max_age,
        expire_after=settings.expire_requests_after(),
        tracer=trace.get_tracer("redirect") if tracing.tracing_enabled() else None,
    )
    return Runtime(
        settings=settings,
        core=core,
        store=store,
        replica=replica,
        projector=projector,
        sink=sink,
        dead_letters=dead_letters,
        registry=registry,
        collector=RedirectCollector(stats, click_counters=clicks.counters, links_lag=projector.lag, l1_size=l1.__len__),
        watch=RuntimeWatch(registry),
    )


def build_projector(
    settings: RedirectSettings,
    *,
    store: ReadModelWriter,
    stats: RedirectStats,
    l1: L1Cache[Link] | None,
    dead_letters: DeadLetters | None,
    client_id: str,
    report_seen: bool = False,
    links_source: Callable[[], LinksSource] | None = None,
) -> LinksProjector:
    def reader() -> LinksSource:
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
        reader_factory=links_source or reader,
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
    settings: RedirectSettings, *, hot: HotCounter | None, client_id: str, sink: ClickSink | None = None
) -> tuple[ClickBuffer, ClickSink]:
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
    if sink is None:
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
        flush_min_clicks=settings.redirect_click_flush_min_clicks,
        flush_max_interval=settings.redirect_click_flush_max_seconds,
        traced=tracing.tracing_enabled(),
        hot_keep=settings.redirect_hot_set_size,
    )
    return buffer, sink


@dataclass(frozen=True, kw_only=True)
class Replay:
    """`replay-links`: a projector that applies `links` into Redis only (no L1, no dead letters)."""

    store: LinkStore
    stats: RedirectStats
    projector: LinksProjector

    async def aclose(self) -> None:
        await self.store.aclose()


def bootstrap_replay(settings: RedirectSettings, *, store: LinkStore | None = None) -> Replay:
    if store is None:
        store = RedisLinkStore(
            connect(settings.redis_url, sentinels=settings.redis_sentinels, master=settings.redis_sentinel_master)
        )
    stats = RedirectStats()
    projector = build_projector(
        settings, store=store, stats=stats, l1=None, dead_letters=None, client_id="redirect-replay"
    )
    return Replay(store=store, stats=stats, projector=projector)


async def _stop_projector(projector: LinksProjector, task: "asyncio.Task[None]", *, timeout: float) -> None:
    """Stop the projector's loop (flag and cancel) and wait a bounded time: shutdown never hangs on it."""
    projector.stop()
    await cancel_and_wait({task}, timeout=timeout, log=log)


async def _start_projector_and_warm(settings: RedirectSettings, projector: LinksProjector, lookup: Lookup) -> None:
    """Anchor the projector (read its start offsets), then warm the L1 -- in that order (see
    service_layer/lookup.py)."""
    try:
        async with asyncio.timeout(settings.redirect_warm_timeout_seconds):
            await projector.anchor()
            await lookup.warm(settings.redirect_warm_count)
    except Exception as exc:  # TimeoutError, StoreUnavailable: serve anyway, readiness tells
        log.warning("start: projector anchor / cache warm-up incomplete (%s)", exc or type(exc).__name__)
