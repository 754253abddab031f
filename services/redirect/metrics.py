"""Metrics of the redirect service, cheap enough for the request path.

The request path increments plain integers (`stats.l1_hits += 1`) and files its latency into a
list of bucket counts (one bisect); a custom collector turns them into Prometheus families when
/metrics is scraped. No locks: each process runs one asyncio loop, the only writer and reader.
Everything else (gauges such as buffer depth and consumer lag) is computed at scrape time.
"""

from bisect import bisect_left
from collections.abc import Callable, Iterator, Mapping

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector

LATENCY_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)


class LatencyHistogram:
    __slots__ = ("bounds", "counts", "sum")

    def __init__(self, bounds: tuple[float, ...] = LATENCY_BUCKETS) -> None:
        self.bounds = bounds
        self.counts = [0] * (len(bounds) + 1)  # last = above the largest bound (+Inf)
        self.sum = 0.0

    def observe(self, seconds: float) -> None:
        self.counts[bisect_left(self.bounds, seconds)] += 1
        self.sum += seconds

    def cumulative(self) -> list[tuple[str, float]]:
        out: list[tuple[str, float]] = []
        running = 0
        for bound, count in zip((*map(repr, self.bounds), "+Inf"), self.counts, strict=True):
            running += count
            out.append((bound, running))
        return out


class RedirectStats:
    """Counters the request path, the links consumer and the click pipeline bump inline."""

    def __init__(self) -> None:
        self.l1_hits = 0
        self.l1_misses = 0
        self.redis_hits = 0
        self.redis_misses = 0
        self.redis_errors = 0
        self.responses: dict[int, int] = {301: 0, 302: 0, 404: 0, 410: 0, 503: 0}
        self.latency = LatencyHistogram()
        self.links_applied = 0
        self.links_written = 0
        self.links_deadlettered = 0
        self.links_rebuilds = 0
        # Request path: links served from the L1 past their TTL because no store answered.
        self.stale_served = 0
        # Request path: requests answered 503 without a click because the proxy had given up
        # on them (X-Request-Start older than its read timeout less the margin).
        self.expired_requests = 0

    def finished(self, status: int, seconds: float) -> None:
        self.responses[status] = self.responses.get(status, 0) + 1
        self.latency.observe(seconds)


class RedirectCollector(Collector):
    """Exposes RedirectStats plus values computed at scrape time."""

    def __init__(
        self,
        stats: RedirectStats,
        *,
        click_counters: Callable[[], Mapping[str, int]],
        links_lag: Callable[[], Mapping[int, int]],
        l1_size: Callable[[], int],
    ) -> None:
        self._stats = stats
        self._clicks = click_counters
        self._lag = links_lag
        self._l1_size = l1_size

    def collect(self) -> Iterator[Metric]:
        s = self._stats
        for name, doc, value in (
            ("redirect_l1_hits", "Lookups answered by the in-process L1 cache", s.l1_hits),
            ("redirect_l1_misses", "Lookups the L1 cache could not answer", s.l1_misses),
            ("redirect_redis_hits", "Redis lookups that found the code", s.redis_hits),
            ("redirect_redis_misses", "Redis lookups that did not find the code", s.redis_misses),
            ("redirect_redis_errors", "Redis calls that failed on the request path", s.redis_errors),
            ("redirect_links_events_applied", "links events applied by this replica", s.links_applied),
            (
                "redirect_links_events_written",
                "links events that changed Redis (newer than its version)",
                s.links_written,
            ),
            (
                "redirect_links_events_deadlettered",
                "Poison links records sent to the dead-letter topic",
                s.links_deadlettered,
            ),
            ("redirect_links_rebuilds", "Rebuilds of a Redis read model that lost events", s.links_rebuilds),
            ("redirect_stale_served", "Links served from the L1 past their TTL (store unreachable)", s.stale_served),
            (
                "redirect_expired_requests",
                "Requests refused without a click: the proxy may already have re-sent them",
                s.expired_requests,
            ),
        ):
            yield CounterMetricFamily(name, doc, value=value)
        responses = CounterMetricFamily(
            "redirect_responses", "Responses of GET/HEAD /{code} by status", labels=["status"]
        )
        for status, count in sorted(s.responses.items()):
            responses.add_metric([str(status)], count)
        yield responses
        yield HistogramMetricFamily(
            "redirect_request_duration_seconds",
            "Latency of GET/HEAD /{code} inside the app",
            buckets=s.latency.cumulative(),
            sum_value=s.latency.sum,
        )
        clicks = self._clicks()
        yield GaugeMetricFamily(
            "redirect_click_buffer_depth", "Click events held in memory (not yet acked by Kafka)", value=clicks["depth"]
        )
        yield CounterMetricFamily(
            "redirect_click_events_dropped",
            "Click events dropped (buffer full or unbuildable)",
            value=clicks["dropped"],
        )
        yield CounterMetricFamily(
            "redirect_click_events_published", "Click events acknowledged by Kafka", value=clicks["published"]
        )
        yield CounterMetricFamily(
            "redirect_click_publish_failures", "Failed attempts to publish a batch of clicks", value=clicks["failures"]
        )
        lag = GaugeMetricFamily(
            "redirect_links_consumer_lag", "links records not yet applied by this replica", labels=["partition"]
        )
        for partition, behind in sorted(self._lag().items()):
            lag.add_metric([str(partition)], behind)
        yield lag
        yield GaugeMetricFamily("redirect_l1_entries", "Entries held by the L1 cache", value=self._l1_size())
