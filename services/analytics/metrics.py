"""Prometheus metrics of the live streams, read from the hub and the feed at scrape time (no work
on the path of an event). Registered for the life of the app (lifespan), then removed."""

from collections.abc import Iterator

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from analytics.adapters.link_activity import LinkActivityFeed
from analytics.service_layer.live import LiveHub


class LiveCollector(Collector):
    def __init__(self, hub: LiveHub, feed: LinkActivityFeed) -> None:
        self._hub = hub
        self._feed = feed

    def collect(self) -> Iterator[Metric]:
        hub, feed = self._hub, self._feed
        yield GaugeMetricFamily("analytics_live_streams", "Live streams open in this process", value=hub.subscribers)
        yield GaugeMetricFamily(
            "analytics_live_streams_max",
            "Live streams this process accepts (ANALYTICS_LIVE_MAX_STREAMS)",
            value=hub.max_streams,
        )
        yield CounterMetricFamily(
            "analytics_live_streams_refused", "Live streams refused with 503 (the limit was reached)", value=hub.refused
        )
        yield CounterMetricFamily(
            "analytics_live_records", "link-activity records read (all links)", value=feed.records
        )
        yield CounterMetricFamily(
            "analytics_live_records_invalid", "link-activity records skipped (undecodable)", value=feed.invalid
        )
        yield CounterMetricFamily(
            "analytics_live_rows_delivered",
            "link-activity rows of a link someone was listening to",
            value=hub.rows_delivered,
        )
