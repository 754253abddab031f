"""API keys: `Authorization: Bearer <key>`, compared in constant time; failed attempts are
limited per client address."""

import hashlib
import hmac
import math
import time
from collections.abc import Awaitable, Callable
from typing import Protocol

from platformkit.errors import ApiError


def _digest(key: str) -> bytes:
    return hashlib.sha256(key.encode()).digest()


class ApiKeys:
    """The accepted keys, kept only as SHA-256 digests.

    Comparing fixed-length digests with hmac.compare_digest against EVERY key (no early exit)
    makes the time independent of how much of a key matched and of which key matched.
    """

    def __init__(self, keys: tuple[str, ...]) -> None:
        self._digests = tuple(_digest(k) for k in keys)

    def identify(self, authorization: str | None) -> str:
        """The caller's key id (a digest prefix, safe for logs and Redis keys), or 401."""
        if not authorization:
            raise ApiError(
                "missing Authorization: Bearer <api key>",
                status=401,
                code="api_key_missing",
                headers={"WWW-Authenticate": "Bearer"},
            )
        scheme, _, token = authorization.partition(" ")
        candidate = _digest(token.strip())
        matched = [hmac.compare_digest(candidate, d) for d in self._digests]
        if scheme.lower() != "bearer" or not token.strip() or not any(matched):
            raise ApiError(
                "invalid API key", status=401, code="api_key_invalid", headers={"WWW-Authenticate": "Bearer"}
            )
        return candidate.hex()[:16]


class Verdict(Protocol):
    @property
    def allowed(self) -> bool: ...

    @property
    def retry_after(self) -> int: ...


class FailedAuth:
    """Failed authentications per client address, counted in a window shared by every process
    (`hit`, e.g. RedisRateLimiter.hit). Past the limit, the address is refused with 429 for the
    rest of the window, even with a right key: a limit on guessing must not let the guess that
    happens to be right through. The refusal is remembered in this process (no Redis call on a
    request that authenticates); another process learns it from that address's next failure, so
    an address gets at most the limit plus one try per process per window."""

    MAX_REMEMBERED = 10_000  # addresses refused at once; beyond it the memory starts over

    def __init__(self, hit: Callable[[str], Awaitable[Verdict]], *,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._hit = hit
        self._clock = clock
        self._refused_until: dict[str, float] = {}

    def check(self, address: str) -> None:
        """429 while `address` is refused."""
        until = self._refused_until.get(address)
        if until is None:
            return
        left = until - self._clock()
        if left > 0:
            raise too_many_failures(math.ceil(left))
        del self._refused_until[address]

    async def failed(self, address: str) -> ApiError | None:
        """Count a failure; the 429 to answer instead of 401 once `address` is past the limit."""
        verdict = await self._hit(address)
        if verdict.allowed:
            return None
        if len(self._refused_until) >= self.MAX_REMEMBERED:
            self._refused_until.clear()
        self._refused_until[address] = self._clock() + verdict.retry_after
        return too_many_failures(verdict.retry_after)


def too_many_failures(retry_after: int) -> ApiError:
    return ApiError("too many failed authentications from this address", status=429,
                    code="auth_rate_limited", headers={"Retry-After": str(max(1, retry_after))})
