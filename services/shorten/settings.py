"""Settings of the shorten service, read once from the environment at the entry point."""

from typing import Literal

from limits import RateLimitItem, parse
from platformkit.clientip import parse_networks
from platformkit.settings import InfraSettings, ServerName
from pydantic import field_validator, model_validator

from shorten.domain.targets import TargetRules


class ShortenSettings(InfraSettings):
    """Env names are the field names in upper case (SHORTEN_PORT, SHORTEN_RATE_LIMIT, ...)."""

    shorten_host: str = "127.0.0.1"
    shorten_port: int = 8001
    # The server `just bench writes` measured the least CPU per create on (docs/benchmarks/writes.md).
    shorten_server: ServerName = "uvicorn"
    # API keys are managed with `just keys` and read from the `keys` topic (platformkit.keys_log).
    topic_keys: str = "keys"
    # A key not (yet) in this process's key book: wait at most this long for the `keys` topic's
    # end as of the miss (a key created a moment ago works at once), then 401.
    shorten_keys_miss_wait_seconds: float = 1.0
    # Writes per API key (its key id), moving window in Redis (limits syntax: "600/minute",
    # "10/second"). The default leaves room for the local stack, where every test and the load
    # test share the local admin key.
    shorten_rate_limit: str = "6000/minute"
    # Failed authentications per client address (moving window in Redis): past it, every
    # request of that address that needs a key gets 429 until the window admits it again.
    shorten_auth_failure_limit: str = "30/minute"
    # Peers whose X-Forwarded-For names the client (nginx on loopback); CIDR ok.
    shorten_trusted_proxies: str = "127.0.0.1,::1"
    # short_url = base + "/" + code
    shorten_public_base_url: str = "http://127.0.0.1:8080"
    # Other public host names this service answers on (comma-separated): links to them are
    # refused like links to the base URL's host (url_self_reference, no redirect loops).
    shorten_extra_domains: str = ""
    # Targets an operator refuses (comma-separated host names, which cover their subdomains, and
    # IP addresses / CIDR ranges for IP-literal targets): url_host_denied. Empty: none.
    shorten_denied_targets: str = ""
    shorten_max_body_bytes: int = 16 * 1024
    # POST /api/v1/links/bulk (at most 10,000 rows): its body limit (JSON or CSV; 413 above),
    # the rows written per transaction, and how long the answer waits, in total, until every
    # created link is served by every redirect replica (0: do not wait).
    shorten_bulk_max_body_bytes: int = 16 * 1024 * 1024
    shorten_bulk_chunk_rows: int = 1000
    shorten_bulk_visible_timeout_seconds: float = 10.0
    shorten_code_length: int = 8
    # Per process: the most PostgreSQL connections one shorten process holds.
    shorten_db_pool_size: int = 10
    # The most one request's link-store call may take (a pooled connection, PgBouncer's queue,
    # row locks and the statement included); past it the request gets 503 with Retry-After, below
    # the clients' usual 5 s timeout (a timed-out client cannot know whether its write happened).
    shorten_store_deadline_seconds: float = 3.0
    # asyncpg store: how many create statements one process runs at once. Creates arriving while
    # that many run are written together by the next one (one commit for all: group commit).
    # 0: no group commit (one statement per create, as before; `just bench writes` compares).
    shorten_db_batches_in_flight: int = 2
    # The LinkStore adapter: "asyncpg" (adapters/asyncpg_store.py, one round trip per create)
    # or "sqlalchemy" (adapters/postgres.py, the previous one; `just bench writes` baseline).
    shorten_store: Literal["asyncpg", "sqlalchemy"] = "asyncpg"

    # Outbox relay (`python -m shorten relay`).
    shorten_relay_batch_size: int = 500
    # How often an idle relay reads the outbox (one indexed query that finds nothing).
    shorten_relay_poll_interval: float = 0.05
    # While busy (the last pass published something), the next pass starts this much later, so
    # the records committed meanwhile make one batch (one read, one send, one mark).
    shorten_relay_batch_wait: float = 0.01
    # A relay that does not hold the advisory lock retries taking it this often.
    shorten_relay_standby_interval: float = 2.0
    shorten_relay_backoff_max: float = 5.0
    # Published outbox rows are deleted this long after they were published.
    shorten_relay_retention_seconds: int = 24 * 3600
    shorten_relay_purge_interval: float = 300.0
    shorten_relay_request_timeout_ms: int = 10_000
    # Read your writes (service_layer/visibility.py): a write is answered once every live redirect replica
    # serves it, waiting at most this long (0: do not wait). A replica counts as live while its
    # last report in Redis is younger than the heartbeat setting. After a wait runs into the
    # bound, writes wait at most the degraded bound for the cooldown.
    shorten_visible_timeout_seconds: float = 2.0
    shorten_visible_poll_seconds: float = 0.005
    shorten_visible_heartbeat_seconds: float = 3.0
    shorten_visible_cooldown_seconds: float = 5.0
    shorten_visible_degraded_timeout_seconds: float = 0.25

    @field_validator("shorten_rate_limit", "shorten_auth_failure_limit")
    @classmethod
    def _rate_limit_parses(cls, value: str) -> str:
        parse(value)  # raises ValueError on a malformed limit: refuse to start
        return value

    @field_validator("shorten_code_length")
    @classmethod
    def _code_length(cls, value: int) -> int:
        if not 7 <= value <= 32:
            raise ValueError("shorten_code_length must be between 7 and 32")
        return value

    @field_validator("shorten_store_deadline_seconds")
    @classmethod
    def _deadline(cls, value: float) -> float:
        if not 0 < value <= 30:
            raise ValueError("shorten_store_deadline_seconds must be in (0, 30]")
        return value

    @field_validator("shorten_public_base_url")
    @classmethod
    def _strip_slash(cls, value: str) -> str:
        return value.rstrip("/")

    @model_validator(mode="after")
    def _target_rules_parse(self) -> "ShortenSettings":
        self.target_rules()  # a malformed host or range refuses to start
        return self

    def target_rules(self) -> TargetRules:
        return TargetRules.from_settings(
            public_base_url=self.shorten_public_base_url,
            extra_domains=self.shorten_extra_domains,
            denied_targets=self.shorten_denied_targets,
        )

    def rate_limit(self) -> RateLimitItem:
        return parse(self.shorten_rate_limit)

    def auth_failure_limit(self) -> RateLimitItem:
        return parse(self.shorten_auth_failure_limit)

    @field_validator("shorten_trusted_proxies")
    @classmethod
    def _networks_parse(cls, value: str) -> str:
        parse_networks(value)
        return value
