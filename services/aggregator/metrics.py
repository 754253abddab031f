"""Prometheus metrics of one aggregator worker, served at GET /metrics on its faust web port."""

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
SIZE_BUCKETS = (1, 10, 50, 100, 250, 500, 1000, 2500, 5000, 10_000, 20_000, 50_000)


class AggregatorMetrics:
    """Built once per process (bootstrap), on its own registry: nothing at import time."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.consumer_lag = Gauge(
            "aggregator_consumer_lag",
            "Records behind the partition's high watermark, per consumer group",
            ["group", "topic", "partition"],
            registry=r,
        )
        self.clickhouse_insert_seconds = Histogram(
            "aggregator_clickhouse_insert_seconds",
            "ClickHouse insert latency per batch",
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.clickhouse_batch_rows = Histogram(
            "aggregator_clickhouse_batch_rows",
            "Rows per ClickHouse insert",
            buckets=SIZE_BUCKETS,
            registry=r,
        )
        self.postgres_write_seconds = Histogram(
            "aggregator_postgres_write_seconds",
            "PostgreSQL ledger+totals transaction latency",
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.batch_size = Histogram(
            "aggregator_batch_records",
            "Clicks per flushed batch",
            buckets=SIZE_BUCKETS,
            registry=r,
        )
        self.flush_interval = Gauge(
            "aggregator_flush_interval_seconds",
            "Current flush interval (adapts to lag)",
            registry=r,
        )
        self.partition_share = Gauge(
            "aggregator_partition_share",
            "This worker's share of the clicks partitions (its light-traffic flush interval is the"
            " group's over this share)",
            registry=r,
        )
        self.records = Counter(
            "aggregator_records_processed",
            "Kafka records taken from the clicks topic (a batch record holds many clicks)",
            registry=r,
        )
        self.processed = Counter(
            "aggregator_events_processed",
            "Clicks in the records taken from the clicks topic",
            registry=r,
        )
        self.counted = Counter(
            "aggregator_events_counted",
            "Clicks of new records, added to the totals",
            registry=r,
        )
        self.deduplicated = Counter(
            "aggregator_events_deduplicated",
            "Clicks of records already counted (re-sent, redelivered, replayed)",
            registry=r,
        )
        self.recovered = Counter(
            "aggregator_sink_recoveries",
            "Journalled batches a worker finished writing to ClickHouse for a process that stopped half-way",
            registry=r,
        )
        self.dead_lettered = Counter(
            "aggregator_events_dead_lettered",
            "Poison records sent to the dead-letter topic",
            registry=r,
        )
        self.sink_retries = Counter(
            "aggregator_sink_retries",
            "Failed write attempts that were retried",
            registry=r,
        )
        self.gap_seeks = Counter(
            "aggregator_gap_seeks",
            "Partitions re-read because records were skipped (rebalance race)",
            registry=r,
        )
        self.links_applied = Counter(
            "aggregator_link_events",
            "links-topic events applied to clicks.links_known",
            registry=r,
        )

        self.live_sent = Counter(
            "aggregator_live_records_sent",
            "link-activity records delivered (the live per-link counts analytics streams)",
            registry=r,
        )
        self.live_dropped = Counter(
            "aggregator_live_records_dropped",
            "link-activity records dropped (a send still in flight, or a failed send): live view only",
            registry=r,
        )

    def render(self) -> bytes:
        return generate_latest(self.registry)
