"""Settings of the redirect service, read once from the environment at the entry point.

Env names are the field names in upper case (REDIRECT_PORT, REDIRECT_L1_SIZE, ...).
"""

from platformkit.settings import InfraSettings, ServerName
from pydantic import Field, SecretStr, field_validator

from redirect.domain.visitor import IpNetwork, parse_networks

# Used only when REDIRECT_VISITOR_KEY_SECRET is unset (local stack, tests); the service logs a
# warning. Production sets a real secret: with this one, visitor keys are only pseudonymous.
DEVELOPMENT_VISITOR_SECRET = "redirect-development-visitor-secret-not-for-production"


class RedirectSettings(InfraSettings):
    redirect_host: str = "127.0.0.1"
    redirect_port: int = 8011
    # granian: the fastest of the three for this app on `just bench redirect`
    # (docs/benchmarks/redirect.md); hypercorn and uvicorn work too.
    redirect_server: ServerName = "granian"
    redirect_replica_id: int = 1

    # L1 (in-process LRU + TTL). TTL is a safety net: the links consumer updates entries at once.
    redirect_l1_enabled: bool = True
    redirect_l1_size: int = 100_000
    redirect_l1_ttl_seconds: float = 30.0
    redirect_l1_negative_ttl_seconds: float = 5.0
    # Cache warmer: this many of the hottest codes (Redis sorted set) are loaded at start.
    redirect_warm_count: int = 10_000
    redirect_warm_timeout_seconds: float = 5.0
    # The hit-count sorted set is trimmed to this many codes.
    redirect_hot_set_size: int = 100_000

    # Cache-Control max-age of a 301 (browsers then skip us: no click counted, deletes not seen).
    redirect_permanent_max_age: int = 3600

    # Click events: bounded in-process buffer (raw + built + in flight). Past it, new clicks are
    # dropped and counted in redirect_click_events_dropped_total.
    redirect_click_buffer_max: int = 100_000
    # How long the builder waits to gather a batch; also the usual click-to-Kafka delay. A flush
    # costs ~0.5-1 ms of CPU whatever its size (wakeups, one produce request and its ack): at
    # 10 ms and a few thousand redirects/s that was most of a click's cost (docs/benchmarks/redirect.md).
    redirect_click_flush_interval_seconds: float = 0.1
    # Light traffic: after the interval, wait on (an interval at a time, at most the max) until
    # this many clicks are held. Kafka and the aggregator pay per record (one per partition per
    # flush), so without it N replicas sharing the same clicks send N times one replica's
    # records (docs/benchmarks/scale-out.md); with it the records follow the clicks. At a few
    # hundred redirects/s per replica or more the floor is met in the first interval. 0: off.
    redirect_click_flush_min_clicks: int = Field(default=50, ge=0)
    redirect_click_flush_max_seconds: float = Field(default=0.3, ge=0)
    redirect_click_batch_max: int = 5_000
    redirect_click_linger_ms: int = 5
    redirect_kafka_request_timeout_ms: int = 10_000
    redirect_shutdown_flush_timeout_seconds: float = 10.0
    redirect_ua_cache_size: int = 10_000

    # nginx's read timeout for redirects (rendered into its config from the same setting). nginx
    # re-sends a GET to the next replica when this one has not answered within it; a replica
    # that was stalled (frozen host, long pause) and answers after that would count a second
    # click for one visit. So a request whose X-Request-Start (nginx's clock when it built the
    # upstream request) is older than the timeout less the margin is answered 503 without a
    # click: nginx has re-sent it, or passes the 503 on. The margin covers the clock skew
    # between the proxy and the replica and the answer's way back. 0: no check.
    redirect_proxy_read_timeout_seconds: float = Field(default=30.0, ge=0)
    redirect_proxy_clock_margin_seconds: float = Field(default=0.5, ge=0)

    # Visitor key secret (keyed BLAKE2b with a daily salt derived from it).
    redirect_visitor_key_secret: SecretStr = SecretStr("")
    # Peers allowed to set X-Forwarded-For / X-Real-IP / the country header (comma-separated, CIDR ok).
    redirect_trusted_proxies: str = "127.0.0.1,::1"
    # e.g. "CF-IPCountry"; empty: country is "ZZ".
    redirect_country_header: str = ""
    # Countries from the client address (offline database, adapters/geoip.py) when no trusted
    # country header says otherwise. Off: "ZZ" unless the header gives one.
    redirect_geoip: bool = True

    # Links consumer.
    redirect_links_fetch_max_wait_ms: int = 200
    redirect_links_batch_max: int = 1_000
    # Redis away: fetched links events keep going into the L1 and wait for Redis in memory, up
    # to this many; past it the consumer pauses until Redis takes them.
    redirect_links_max_pending: int = 200_000
    # Redis primary away: link reads go to REDIS_REPLICA_URL (empty: none) for this long before
    # the primary is tried again.
    redirect_primary_retry_seconds: float = 1.0

    @field_validator("redirect_trusted_proxies")
    @classmethod
    def _proxies_parse(cls, value: str) -> str:
        parse_networks(value)  # a malformed entry refuses to start
        return value

    def trusted_networks(self) -> tuple[IpNetwork, ...]:
        return parse_networks(self.redirect_trusted_proxies)

    def visitor_secret(self) -> bytes:
        return (self.redirect_visitor_key_secret.get_secret_value() or DEVELOPMENT_VISITOR_SECRET).encode()

    def expire_requests_after(self) -> float:
        """Age (s, by the proxy's X-Request-Start) past which a request gets no click; 0: never."""
        timeout = self.redirect_proxy_read_timeout_seconds
        return max(timeout - self.redirect_proxy_clock_margin_seconds, 0.001) if timeout > 0 else 0.0

    def l1_size(self) -> int:
        return self.redirect_l1_size if self.redirect_l1_enabled else 0
