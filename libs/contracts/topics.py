"""The project's Kafka topics and their settings, declared once.

`infra/scripts/create_topics.py` creates them at stack start; services take the names
from their settings (defaults equal these names).
"""

from dataclasses import dataclass, field


@dataclass(frozen=True, kw_only=True)
class TopicSpec:
    name: str
    partitions: int
    config: dict[str, str] = field(default_factory=dict)


SEVEN_DAYS_MS = str(7 * 24 * 3600 * 1000)

LINKS = TopicSpec(
    name="links",
    partitions=3,
    # Compacted: the newest event per code is the link's state, kept forever, so a
    # redirect replica (or `just replay links`) can rebuild its read model from offset 0.
    config={"cleanup.policy": "compact", "min.compaction.lag.ms": "60000"},
)

CLICKS = TopicSpec(
    name="clicks",
    # One partition per aggregator worker (3 workers in one consumer group).
    partitions=3,
    # The replay horizon: click events are kept 7 days; the aggregator's event-id ledger
    # keeps ids at least as long, so any replay inside the horizon is deduplicated.
    config={"cleanup.policy": "delete", "retention.ms": SEVEN_DAYS_MS},
)

KEYS = TopicSpec(
    name="keys",
    partitions=1,
    # Compacted like `links`: the newest event per key id is that key's state, kept forever, so
    # every authenticating process rebuilds the key book from offset 0 at start. One partition:
    # the log is tiny and its end offset is one number to wait for.
    config={"cleanup.policy": "compact", "min.compaction.lag.ms": "60000"},
)

DEADLETTER = TopicSpec(
    name="deadletter",
    partitions=1,
    config={"cleanup.policy": "delete", "retention.ms": SEVEN_DAYS_MS},
)

LINK_ACTIVITY = TopicSpec(
    name="link-activity",
    # A live view read from its end by every analytics process: one partition keeps the order
    # of each worker's flushes and is a single fetch. Records are worth seconds, so an hour is
    # plenty, and 10-minute segments let that retention apply (only closed segments expire).
    partitions=1,
    config={"cleanup.policy": "delete", "retention.ms": str(3600 * 1000), "segment.ms": str(600 * 1000)},
)

ALL_TOPICS: tuple[TopicSpec, ...] = (LINKS, CLICKS, KEYS, DEADLETTER, LINK_ACTIVITY)
