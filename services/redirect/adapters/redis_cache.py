"""The read model in Redis, shared by every replica.

Keys (the first two are the read model, rebuilt by `replay-links`; the others are not):
- `link:{code}`          hash u=url t=redirect type e=expires (epoch s, "" none) m=max_clicks ("")
                         d=deleted (1/0) o=offset of the event it came from
- `links:offsets`        hash partition -> next offset to apply (0 when absent)
- `redirect:clicks:{code}` clicks served so far, only for links with max_clicks
- `redirect:hot`         sorted set code -> hits (cache warmer input, bumped off the request path)
- `links:seen`           hash `{replica}:{partition}` -> next offset that replica's L1 holds, and
                         `{replica}:at` -> when it said so (epoch ms): what `shorten` waits on
                         before answering a write (read your writes, shorten/service_layer/visibility.py)

Every write goes through Lua so each step is atomic across replicas: a link hash is written only
if the event's offset is newer than the stored one, so three replicas applying one event (or a
replay applying old ones) are idempotent.
"""

import time
from collections.abc import Mapping, Sequence
from typing import Any

import redis.asyncio as aioredis
from platformkit.redis_primary import connect_primary
from redis.exceptions import RedisError

from redirect.domain.links import NOT_FOUND, Link
from redirect.ports import Applied, Change, LinkGetter, SeenReport, StoreUnavailable

OFFSETS_KEY = "links:offsets"
SEEN_KEY = "links:seen"
REPLICA_RETRY_S = 5.0
HOT_KEY = "redirect:hot"
FIELDS = ("u", "t", "e", "m", "d", "o")

# KEYS[1] link hash, KEYS[2] offsets hash. ARGV[1] partition, ARGV[2] offset, ARGV[3] "set" or
# "skip" (poison: only advance), ARGV[4] the position the applying consumer was at before this
# record (everything before it was applied by someone), ARGV[5..] field/value pairs.
# Returns 4*gap + 2*advanced + written. A gap: Redis stands before that position, i.e. it lost
# events a replica had applied (restarted empty, or from an old snapshot): the offset is not
# advanced over the hole (the replica fills it from the topic, service_layer/links_projector.py), the link hash is
# still written if newer (its own guard keeps that safe).
_APPLY = """
local offset = tonumber(ARGV[2])
local advanced = 0
local gap = 0
local nxt = tonumber(redis.call('HGET', KEYS[2], ARGV[1]) or '0')
if nxt < tonumber(ARGV[4]) then
  gap = 1
elseif nxt <= offset then
  redis.call('HSET', KEYS[2], ARGV[1], offset + 1)
  advanced = 1
end
local written = 0
if ARGV[3] == 'set' then
  local stored = tonumber(redis.call('HGET', KEYS[1], 'o') or '-1')
  if stored < offset then
    redis.call('DEL', KEYS[1])
    redis.call('HSET', KEYS[1], unpack(ARGV, 5))
    written = 1
  end
end
return gap * 4 + advanced * 2 + written
"""

# KEYS[1] click counter, ARGV[1] max_clicks. 1 = this click is within the limit (counted), 0 = over.
_TRY_CLICK = """
local used = tonumber(redis.call('GET', KEYS[1]) or '0')
if used >= tonumber(ARGV[1]) then return 0 end
redis.call('INCR', KEYS[1])
return 1
"""


def link_key(code: str) -> str:
    return f"link:{code}"


def clicks_key(code: str) -> str:
    return f"redirect:clicks:{code}"


def encode_link(link: Link) -> list[str]:
    """Field/value pairs of the link hash (flat)."""
    return [
        "u",
        link.url,
        "t",
        str(link.redirect_type),
        "e",
        "" if link.expires_at is None else repr(link.expires_at),
        "m",
        "" if link.max_clicks is None else str(link.max_clicks),
        "d",
        "1" if link.deleted else "0",
        "o",
        str(link.offset),
    ]


def decode_link(values: Sequence[Any]) -> Link:
    """HMGET result (FIELDS order) -> Link; NOT_FOUND when the hash does not exist."""
    url, rtype, expires, max_clicks, deleted, offset = values
    if offset is None:
        return NOT_FOUND
    return Link(
        offset=int(offset),
        url=(url or b"").decode(),
        redirect_type=int(rtype or b"302"),
        expires_at=float(expires) if expires else None,
        max_clicks=int(max_clicks) if max_clicks else None,
        deleted=deleted == b"1",
    )


class RedisLinkStore:
    """Redis adapter of the read model. Every Redis failure becomes StoreUnavailable."""

    def __init__(self, client: "aioredis.Redis", *, replica_wait_ms: int = 100) -> None:
        self._redis = client
        # After each applied batch, WAIT until one Redis replica has it (at most this long): a
        # replica promoted by Sentinel then holds every change this process counts as applied,
        # so a failover loses no link update. With no replica answering in time the store does
        # not wait again for REPLICA_RETRY_S (a stopped replica must not slow the projection).
        self._replica_wait_ms = replica_wait_ms
        self._skip_wait_until = 0.0
        self._apply = client.register_script(_APPLY)
        self._try_click = client.register_script(_TRY_CLICK)

    async def aclose(self) -> None:
        await self._redis.aclose()

    async def ping(self) -> None:
        await self._redis.ping()

    async def get(self, code: str) -> Link:
        try:
            values = await self._redis.hmget(link_key(code), FIELDS)
        except RedisError as exc:
            raise StoreUnavailable(f"redis: {exc}") from exc
        return decode_link(values)

    async def get_many(self, codes: Sequence[str]) -> list[Link]:
        try:
            async with self._redis.pipeline(transaction=False) as pipe:
                for code in codes:
                    pipe.hmget(link_key(code), FIELDS)
                rows: list[Any] = await pipe.execute()
        except RedisError as exc:
            raise StoreUnavailable(f"redis: {exc}") from exc
        return [decode_link(row) for row in rows]

    async def apply(self, changes: Sequence[Change], *, seen: "SeenReport | None" = None) -> list[Applied]:
        """Apply records in order in one round trip; see the module docstring for the guard.
        With `seen`, the replica's position is reported in the same round trip, after them."""
        if not changes:
            return []
        try:
            async with self._redis.pipeline(transaction=False) as pipe:
                for ch in changes:
                    verb, fields = ("set", encode_link(ch.link)) if ch.link is not None else ("skip", [])
                    await self._apply(
                        keys=[link_key(ch.code), OFFSETS_KEY],
                        args=[ch.partition, ch.offset, verb, ch.after, *fields],
                        client=pipe,
                    )
                if seen is not None:
                    pipe.hset(SEEN_KEY, mapping=seen.fields())
                wait = self._replica_wait_ms > 0 and time.monotonic() >= self._skip_wait_until
                if wait:
                    pipe.execute_command("WAIT", 1, self._replica_wait_ms)
                results: list[Any] = await pipe.execute()
        except RedisError as exc:
            raise StoreUnavailable(f"redis: {exc}") from exc
        if wait and int(results.pop()) < 1:
            self._skip_wait_until = time.monotonic() + REPLICA_RETRY_S
        if seen is not None:
            results.pop()
        return [Applied(advanced=bool(int(r) & 2), written=bool(int(r) & 1), gap=bool(int(r) & 4)) for r in results]

    async def report_seen(self, seen: "SeenReport") -> None:
        """The replica's position and a heartbeat, on their own (no change to apply)."""
        try:
            await self._redis.hset(SEEN_KEY, mapping=seen.fields())
        except RedisError as exc:
            raise StoreUnavailable(f"redis: {exc}") from exc

    async def offsets(self) -> dict[int, int]:
        """Next offset to apply per partition (partitions never applied are absent: start at 0)."""
        try:
            raw: dict[Any, Any] = await self._redis.hgetall(OFFSETS_KEY)
        except RedisError as exc:
            raise StoreUnavailable(f"redis: {exc}") from exc
        return {int(p): int(o) for p, o in raw.items()}

    async def try_click(self, code: str, max_clicks: int) -> bool:
        """Count one click if the link is under its limit (atomic across replicas)."""
        try:
            return bool(await self._try_click(keys=[clicks_key(code)], args=[max_clicks]))
        except RedisError as exc:
            raise StoreUnavailable(f"redis: {exc}") from exc

    async def clicks_used(self, code: str) -> int:
        try:
            value = await self._redis.get(clicks_key(code))
        except RedisError as exc:
            raise StoreUnavailable(f"redis: {exc}") from exc
        return int(value or 0)

    async def bump_hot(self, counts: Mapping[str, int], *, keep: int | None = None) -> None:
        """Add hits to the hot set; with `keep`, trim it to the `keep` hottest codes."""
        try:
            async with self._redis.pipeline(transaction=False) as pipe:
                for code, hits in counts.items():
                    pipe.zincrby(HOT_KEY, hits, code)
                if keep is not None:
                    pipe.zremrangebyrank(HOT_KEY, 0, -(keep + 1))
                await pipe.execute()
        except RedisError as exc:
            raise StoreUnavailable(f"redis: {exc}") from exc

    async def hottest(self, count: int) -> list[str]:
        try:
            codes: list[Any] = await self._redis.zrevrange(HOT_KEY, 0, count - 1)
        except RedisError as exc:
            raise StoreUnavailable(f"redis: {exc}") from exc
        return [c.decode() for c in codes]


class ReadFailover:
    """Reads of the read model: the primary, or the Redis replica while the primary is away.

    After a primary failure, reads go to the replica for `retry_after` seconds before the primary
    is tried again, so an outage costs one failed attempt per interval, not one per request.
    Writes (projector, click limits, hot set) never come here: they need the primary.
    """

    def __init__(self, primary: LinkGetter, replica: LinkGetter | None, *, retry_after: float = 1.0) -> None:
        self._primary = primary
        self._replica = replica
        self._retry_after = retry_after
        self._primary_down_until = 0.0
        self.replica_reads = 0

    async def get(self, code: str) -> Link:
        return (await self._read([code]))[0]

    async def get_many(self, codes: Sequence[str]) -> list[Link]:
        return await self._read(codes)

    async def _read(self, codes: Sequence[str]) -> list[Link]:
        if self._replica is None or time.monotonic() >= self._primary_down_until:
            try:
                return await self._primary.get_many(codes) if len(codes) > 1 else [await self._primary.get(codes[0])]
            except StoreUnavailable:
                if self._replica is None:
                    raise
                self._primary_down_until = time.monotonic() + self._retry_after
        self.replica_reads += len(codes)
        return await self._replica.get_many(codes) if len(codes) > 1 else [await self._replica.get(codes[0])]


def connect(
    url: str, *, max_connections: int = 128, sentinels: str = "", master: str = "shortlink"
) -> "aioredis.Redis":
    """A client of the Redis primary at `url`, or the one `sentinels` name (hiredis parser when
    installed); commands fail fast when Redis is away."""
    return connect_primary(url, sentinels=sentinels, master=master, max_connections=max_connections, timeout=2)
