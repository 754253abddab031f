"""Where the Redis primary is: a plain URL, or whatever Redis Sentinel names (managed failover).

With `REDIS_SENTINELS` set (host:port,host:port,...), every connection the pool opens asks the
sentinels for the current primary of `REDIS_SENTINEL_MASTER`; after a failover, connections to the
old primary fail (or answer READONLY once it has been demoted) and the next one goes to the new
primary. `REDIS_URL` still gives the database number and credentials. With `REDIS_SENTINELS`
empty, `REDIS_URL` is the primary, as before.
"""

from typing import Any

from redis.asyncio import BlockingConnectionPool, ConnectionPool, Redis
from redis.asyncio.connection import parse_url
from redis.asyncio.retry import Retry
from redis.asyncio.sentinel import Sentinel, SentinelConnectionPool
from redis.backoff import NoBackoff


class BlockingSentinelPool(SentinelConnectionPool, BlockingConnectionPool):
    """A Sentinel-managed pool that waits (up to `timeout`) for a free connection when all are in
    use, as BlockingConnectionPool does, instead of failing at once (SentinelConnectionPool).

    The method resolution order puts Sentinel's address discovery in front of the blocking
    pool's checkout; neither overrides what the other defines."""


def sentinel_addresses(spec: str) -> list[tuple[str, int]]:
    """`host:port,host:port` -> [(host, port), ...]; ValueError on a malformed entry."""
    addresses = []
    for item in (part.strip() for part in spec.split(",")):
        if not item:
            continue
        host, sep, port = item.rpartition(":")
        if not sep or not host or not port.isdigit():
            raise ValueError(f"sentinel address {item!r} is not host:port")
        addresses.append((host, int(port)))
    return addresses


def primary_pool(
    url: str,
    *,
    sentinels: str = "",
    master: str = "shortlink",
    max_connections: int = 128,
    timeout: float = 2.0,
    blocking: bool = True,
) -> ConnectionPool:
    """A connection pool to the Redis primary; commands fail within `timeout` when it is away.

    `blocking`: wait for a free connection when `max_connections` are in use (else fail)."""
    connection: dict[str, Any] = {"socket_connect_timeout": timeout, "socket_timeout": timeout}
    addresses = sentinel_addresses(sentinels)
    if not addresses:
        if blocking:
            return BlockingConnectionPool.from_url(url, max_connections=max_connections, timeout=timeout, **connection)
        return ConnectionPool.from_url(url, max_connections=max_connections, **connection)
    options = {k: v for k, v in parse_url(url).items() if k in ("db", "username", "password")}
    # No client-side retries behind Sentinel: redis-py's default (3, exponential from 1 s) made a
    # command wait ~10 s with the sentinels away; the sentinels are already tried in turn, and the
    # callers have their own policy (the redirect answers from L1 or 503, the projector retries).
    connection["retry"] = Retry(NoBackoff(), 0)
    manager = Sentinel(addresses, sentinel_kwargs=dict(connection), **connection)  # type: ignore[no-untyped-call]
    if blocking:
        return BlockingSentinelPool(  # type: ignore[no-untyped-call]
            master, manager, max_connections=max_connections, timeout=timeout, **options, **connection
        )
    return SentinelConnectionPool(  # type: ignore[no-untyped-call]
        master, manager, max_connections=max_connections, **options, **connection
    )


def connect_primary(url: str, *, sentinels: str = "", master: str = "shortlink", **pool: Any) -> "Redis":
    """A client of the Redis primary (see `primary_pool`)."""
    return Redis(connection_pool=primary_pool(url, sentinels=sentinels, master=master, **pool))
