"""API keys of workspaces: who is calling, and what may they do.

A key is `Authorization: Bearer <secret>`. Services keep only SHA-256 digests of secrets, in a
`KeyBook` fed from the `keys` topic (contracts.keys): the newest event per key id wins, so a
revocation reaches every process as fast as its reader reads the topic. A caller is looked up by
the digest of what they sent: a dict lookup on a digest reveals nothing about the secret, and
secrets are 256-bit random strings, so there is nothing to guess at.

`FailedAuth` limits failed attempts per client address (in every service that authenticates).
"""

import hashlib
import math
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol

from contracts.keys import SCOPES, KeyEvent, KeyIssued, Scope

from platformkit.failures import ApiError

SECRET_PREFIX = "lsk_"  # recognisable in leaked-secret scanners and logs


def digest(secret: str) -> str:
    """Hex SHA-256 of a key's secret: the only form in which a key is stored or published."""
    return hashlib.sha256(secret.strip().encode()).hexdigest()


def new_secret() -> str:
    return SECRET_PREFIX + secrets.token_urlsafe(32)


def new_key_id() -> str:
    return "k_" + secrets.token_urlsafe(9)


@dataclass(frozen=True, slots=True)
class Principal:
    """An authenticated caller: the key, its workspace and what it may do there."""

    key_id: str
    workspace: str
    scopes: frozenset[Scope]

    def allows(self, scope: Scope) -> bool:
        # admin implies everything; a key that writes links may read them (it is shown them anyway)
        return (
            scope in self.scopes or "admin" in self.scopes or (scope == "links:read" and "links:write" in self.scopes)
        )

    def require(self, scope: Scope) -> None:
        """403 when the key lacks `scope` (the caller is known: hiding nothing by a 404 here)."""
        if not self.allows(scope):
            raise ApiError(f"this API key lacks the scope {scope!r}", status=403, code="scope_missing", field="scope")


def parse_scopes(text: str) -> tuple[Scope, ...]:
    """`links:write,stats:read` -> scopes; ValueError naming the unknown one."""
    scopes: list[Scope] = []
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        if part not in SCOPES:
            raise ValueError(f"unknown scope {part!r}; known: {', '.join(SCOPES)}")
        if part not in scopes:
            scopes.append(part)  # checked against SCOPES above
    if not scopes:
        raise ValueError("at least one scope is required")
    return tuple(scopes)


def missing_key() -> ApiError:
    return ApiError(
        "missing Authorization: Bearer <api key>",
        status=401,
        code="api_key_missing",
        headers={"WWW-Authenticate": "Bearer"},
    )


def invalid_key() -> ApiError:
    return ApiError("invalid API key", status=401, code="api_key_invalid", headers={"WWW-Authenticate": "Bearer"})


def bearer_secret(authorization: str | None) -> str | None:
    """The secret of a `Bearer` header; None when there is no header; 401 when it is malformed."""
    if not authorization:
        return None
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise invalid_key()
    return token.strip()


class KeyBook:
    """The live keys, by digest, from `keys` events applied in log order."""

    def __init__(self, *, clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        self._by_digest: dict[str, KeyIssued] = {}
        self._digest_of: dict[str, str] = {}  # key_id -> digest, to drop a re-issued/revoked key
        self._clock = clock

    def apply(self, event: KeyEvent) -> None:
        old = self._digest_of.pop(event.key_id, None)
        if old is not None:
            self._by_digest.pop(old, None)
        if isinstance(event, KeyIssued):
            self._by_digest[event.digest] = event
            self._digest_of[event.key_id] = event.digest

    def __len__(self) -> int:
        return len(self._by_digest)

    def find(self, secret: str) -> Principal | None:
        """The principal of `secret`, or None for an unknown, revoked or expired key."""
        issued = self._by_digest.get(digest(secret))
        if issued is None or (issued.expires_at is not None and issued.expires_at <= self._clock()):
            return None
        return Principal(issued.key_id, issued.workspace, frozenset(issued.scopes))


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

    def __init__(
        self, hit: Callable[[str], Awaitable[Verdict]], *, clock: Callable[[], float] = time.monotonic
    ) -> None:
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
    return ApiError(
        "too many failed authentications from this address",
        status=429,
        code="auth_rate_limited",
        headers={"Retry-After": str(max(1, retry_after))},
    )
