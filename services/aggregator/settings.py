"""Settings of the aggregator, read once from the environment at the entry point."""

from pathlib import Path

from croniter import croniter
from platformkit.settings import InfraSettings
from pydantic import Field, model_validator


class AggregatorSettings(InfraSettings):
    """Env names are the field names in upper case (AGGREGATOR_WORKER_ID, AGGREGATOR_WEB_PORT, ...)."""

    aggregator_app_id: str = "aggregator"  # = the Kafka consumer group id
    aggregator_worker_id: int = 1
    aggregator_web_host: str = "127.0.0.1"
    aggregator_web_port: int = 6061
    aggregator_data_dir: Path = Path(".local/aggregator-1")

    # Adaptive batching (see domain/batching.py for the rule).
    aggregator_batch_min: int = 500
    aggregator_batch_max: int = 50_000
    # Flush interval while traffic is light (lag small), <= 1 s. 1 s, not less: every flush costs
    # ClickHouse three parts whatever its size, and at a few thousand redirects/s 0.2 s flushes
    # made ClickHouse the costliest tier per click (0.5 s: ~1.9x its CPU per click at 1,000/s).
    aggregator_flush_min_s: float = 1.0
    # The flush interval above is the consumer group's: a worker owning 1/N of the `clicks`
    # partitions flushes light traffic every N x flush_min_s (at most flush_max_s), so adding
    # workers (hosts) does not multiply ClickHouse's parts and PostgreSQL's transactions per click
    # (docs/benchmarks/scale-out.md). False: every worker flushes every flush_min_s (the totals
    # lag less, the writes cost more per click as workers are added).
    aggregator_flush_shared_by_group: bool = True
    # How long the agent gathers a tick from the stream: the cadence of the live hand-off (the live
    # stats pages see a click within about this plus the redirect's flush), <= flush_min_s.
    aggregator_tick_s: float = 0.25
    aggregator_flush_max_s: float = 5.0  # flush interval at or above `lag_high` (a backlog)
    aggregator_lag_low: int = 1_000
    aggregator_lag_high: int = 50_000
    # The agent reads the stream in ticks of at most this many records (a batch record holds up
    # to 2,000 clicks), and faust buffers at most this many records ahead of the agent.
    aggregator_tick_records: int = 50
    aggregator_stream_buffer_records: int = 500

    # Retries inside the batch loop (never raise out: a raised batch would be acked).
    aggregator_retry_initial_s: float = 0.2
    aggregator_retry_max_s: float = 5.0

    # Dedup horizon: the event-id ledger keeps ids this long. Must cover the clicks topic's
    # retention (7 days, libs/contracts/topics.py) so a replay inside the topic is deduplicated.
    aggregator_ledger_retention_days: int = 8
    # Events whose occurred_at lies further in the future than this are poison (clock bugs).
    aggregator_max_future_skew_s: int = 3600
    # ClickHouse: monthly partitions older than this many months are dropped by `retention`.
    aggregator_clickhouse_retention_months: int = 13
    # When the stack's `retention` program runs the job: a cron expression in UTC (five fields,
    # or six with seconds last). Daily, outside business hours.
    aggregator_retention_schedule: str = "17 3 * * *"
    # The window table (faust): tumbling 1-minute windows, kept 15 minutes, written to the
    # table (and its changelog) at most every 30 s; the worker's view adds what is not written yet.
    aggregator_window_s: int = 60
    aggregator_window_expires_s: int = 900
    aggregator_window_flush_s: float = 30.0

    # Gap repair (domain/gaps.py): how often each owned partition's processing frontier is
    # checked, and how long it may sit behind processed offsets before the partition is re-read.
    aggregator_gap_check_s: float = 5.0
    aggregator_gap_stuck_s: float = 15.0
    # Sink recovery (entrypoints/recovery.py): how often a worker looks for journalled batches
    # another process left half-written (older than 30 s, nobody holding them).
    aggregator_recovery_check_s: float = 10.0

    # The live per-link counts (topic `link-activity`, read by analytics' live streams): one
    # record per flush, best-effort (TOPIC_LINK_ACTIVITY). Off: nothing is published (the live
    # streams stay silent); `just bench pipeline` compares the two.
    aggregator_live_activity: bool = True

    aggregator_pg_pool_size: int = 4
    aggregator_clickhouse_timeout_s: float = 30.0
    # ClickHouse write attempts (backoff 0.2 s doubling to AGGREGATOR_RETRY_MAX_S) before a batch
    # leaves its ClickHouse write to sink recovery and goes on, so PostgreSQL's totals keep up
    # while ClickHouse is down; 0 = retry in the batch until ClickHouse answers.
    aggregator_clickhouse_attempts: int = Field(default=5, ge=0)
    aggregator_commit_interval_s: float = 1.0
    # A dead worker's partitions move to the others after this long (faust's default is 60 s).
    aggregator_session_timeout_s: float = 10.0
    # Copies of faust's own topics (the window table's changelog): 3 on the cluster profile's three
    # brokers, where min.insync.replicas=2 refuses acks=all writes to a topic with fewer.
    aggregator_topic_replication_factor: int = 1

    @model_validator(mode="after")
    def _bounds(self) -> "AggregatorSettings":
        if not 0 < self.aggregator_batch_min <= self.aggregator_batch_max:
            raise ValueError("need 0 < aggregator_batch_min <= aggregator_batch_max")
        if not 0 < self.aggregator_flush_min_s <= 1.0:
            raise ValueError("need 0 < flush_min_s <= 1.0: the group flushes light traffic within a second")
        if not 0 < self.aggregator_tick_s <= self.aggregator_flush_min_s:
            raise ValueError("need 0 < tick_s <= flush_min_s: a flush takes whole ticks")
        if not self.aggregator_flush_min_s <= self.aggregator_flush_max_s <= 10.0:
            raise ValueError("need flush_min_s <= flush_max_s <= 10.0")
        if not 0 <= self.aggregator_lag_low < self.aggregator_lag_high:
            raise ValueError("need 0 <= aggregator_lag_low < aggregator_lag_high")
        if not croniter.is_valid(self.aggregator_retention_schedule):
            raise ValueError(
                f"aggregator_retention_schedule is not a cron expression: {self.aggregator_retention_schedule!r}"
            )
        if self.aggregator_ledger_retention_days < 7:
            raise ValueError("the ledger must keep ids at least as long as the clicks topic (7 days)")
        return self

    @property
    def ledger_retention_s(self) -> int:
        return self.aggregator_ledger_retention_days * 24 * 3600

    def consumer_name(self) -> str:
        return f"{self.aggregator_app_id}-{self.aggregator_worker_id}"
