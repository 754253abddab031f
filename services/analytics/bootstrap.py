"""Wiring: settings -> store clients, key book, rate limiters -> the use cases' ports; the one
place that wires.

`bootstrap(settings, **overrides)` builds the `Runtime` without connecting anything; `start()`
opens the PostgreSQL pool and the ClickHouse engine and follows the `keys` topic up to its end
(no 401 for a valid key at start), `stop()` closes them all. Unit tests pass fakes of the ports
(`totals`, `events`, `keys`, the rate limits) as overrides.
"""

from collections.abc import Mapping
from contextlib import AsyncExitStack

import asyncpg
from limits import RateLimitItem
from platformkit.apikeys import FailedAuth
from platformkit.clientip import ClientAddress, parse_networks
from platformkit.keys_log import KeysLog
from platformkit.ratelimit import RedisRateLimiter
from prometheus_client import REGISTRY

from analytics.adapters.clickhouse import ClickHouseEvents, build_client
from analytics.adapters.link_activity import LinkActivityFeed
from analytics.adapters.memory_cache import CountedCache, TtlCache
from analytics.adapters.postgres import PostgresTotals
from analytics.metrics import LiveCollector
from analytics.ports import Authenticator, Events, Hit, Totals
from analytics.service_layer.callers import Callers
from analytics.service_layer.live import LiveHub
from analytics.settings import AnalyticsSettings


class Runtime:
    """The analytics API process, wired: the stores (after `start`), who is calling, the /top cache."""

    def __init__(
        self,
        settings: AnalyticsSettings,
        *,
        callers: Callers,
        keys: KeysLog | None,
        limiters: list[RedisRateLimiter],
        totals: Totals | None,
        events: Events | None,
        live_feed: bool = True,
    ) -> None:
        self.settings = settings
        self.callers = callers
        self.client_address = ClientAddress(parse_networks(settings.analytics_trusted_proxies))
        # Per (workspace, tag, window, limit, bots): room for many workspaces' answers at once.
        self.top_cache = TtlCache(settings.analytics_top_cache_s, max_entries=4096)
        # Multi-region drill (docs/regions.md): this region's name and the other regions' totals
        # (their PostgreSQL, opened at start); empty on a one-region stack.
        self.region = settings.analytics_region
        self.remote_totals: dict[str, Totals] = {}
        # GET /api/v1/links/{code}/live: who listens to which code, fed by the `link-activity`
        # topic (followed from start to stop; `live_feed=False` to bootstrap: not followed).
        self.live_hub = LiveHub(max_streams=settings.analytics_live_max_streams)
        self._live_feed = live_feed
        self._keys = keys
        self._limiters = limiters
        self._totals = totals
        self._events = events
        self._stack = AsyncExitStack()

    @property
    def totals(self) -> Totals:
        assert self._totals is not None, "runtime not started"
        return self._totals

    @property
    def events(self) -> Events:
        assert self._events is not None, "runtime not started"
        return self._events

    async def start(self) -> None:
        settings, stack = self.settings, self._stack
        for limiter in self._limiters:
            stack.push_async_callback(limiter.aclose)
        if self._totals is None:
            pool = await asyncpg.create_pool(
                settings.postgres_read_dsn(),
                min_size=1,
                max_size=settings.analytics_db_pool_size,
                command_timeout=10,
                statement_cache_size=settings.postgres_statement_cache_size,
            )
            stack.push_async_callback(pool.close)
            self._totals = PostgresTotals(pool)
        if self._events is None:
            events = ClickHouseEvents(
                build_client(
                    settings.clickhouse_url,
                    database=settings.clickhouse_database,
                    timeout_s=settings.analytics_clickhouse_timeout_s,
                    pool_size=settings.analytics_clickhouse_pool_size,
                ),
                visitors=CountedCache(
                    max_entries=settings.analytics_visitor_cache_entries, ttl_s=settings.analytics_visitor_cache_s
                ),
            )
            stack.push_async_callback(events.aclose)
            self._events = events
        for name, dsn in settings.remote_totals_dsns().items():
            if name in self.remote_totals:  # given to bootstrap (tests)
                continue
            remote_pool = await asyncpg.create_pool(
                dsn,
                min_size=1,
                max_size=2,
                command_timeout=10,
                statement_cache_size=settings.postgres_statement_cache_size,
            )
            stack.push_async_callback(remote_pool.close)
            self.remote_totals[name] = PostgresTotals(remote_pool)
        if self._keys is not None:
            await self._keys.start()
            stack.push_async_callback(self._keys.stop)
        if self._live_feed:
            feed = LinkActivityFeed(
                bootstrap_servers=settings.kafka_bootstrap_servers,
                topic=settings.topic_link_activity,
                client_id="analytics-live",
                on_row=self.live_hub.publish,
            )
            await feed.start()
            stack.push_async_callback(feed.stop)
            stack.callback(self.live_hub.close)  # first on the way out: every open stream ends
            collector = LiveCollector(self.live_hub, feed)
            REGISTRY.register(collector)
            stack.callback(REGISTRY.unregister, collector)

    async def stop(self) -> None:
        await self._stack.aclose()


def _limiter(settings: AnalyticsSettings, limit: RateLimitItem, namespace: str) -> RedisRateLimiter:
    return RedisRateLimiter(
        redis_url=settings.redis_url,
        limit=limit,
        namespace=namespace,
        sentinels=settings.redis_sentinels,
        sentinel_master=settings.redis_sentinel_master,
    )


def bootstrap(
    settings: AnalyticsSettings,
    *,
    totals: Totals | None = None,
    events: Events | None = None,
    keys: Authenticator | None = None,
    per_key: Hit | None = None,
    per_address: Hit | None = None,
    auth_failures: Hit | None = None,
    remote_totals: Mapping[str, Totals] | None = None,
    live_feed: bool = True,
) -> Runtime:
    """Wire the API process from its settings; each keyword replaces that port's adapter (tests).
    Nothing connects here: `Runtime.start()` does."""
    limiters: list[RedisRateLimiter] = []

    def hit(given: Hit | None, limit: RateLimitItem, namespace: str) -> Hit:
        if given is not None:
            return given
        limiter = _limiter(settings, limit, namespace)
        limiters.append(limiter)
        return limiter.hit

    key_book: KeysLog | None = None  # the `keys` topic, followed in memory (started with the runtime)
    if keys is None:
        key_book = keys = KeysLog(
            bootstrap_servers=settings.kafka_bootstrap_servers,
            topic=settings.topic_keys,
            client_id="analytics",
            miss_wait_s=settings.analytics_key_miss_wait_s,
        )
    callers = Callers(
        keys=keys,
        per_key=hit(per_key, settings.key_rate_limit(), "analytics-key"),
        per_address=hit(per_address, settings.public_rate_limit(), "analytics-public"),
        failed_auth=FailedAuth(hit(auth_failures, settings.auth_failure_limit(), "analytics-authfail")),
    )
    runtime = Runtime(
        settings, callers=callers, keys=key_book, limiters=limiters, totals=totals, events=events, live_feed=live_feed
    )
    if remote_totals is not None:
        runtime.remote_totals.update(remote_totals)
    return runtime
