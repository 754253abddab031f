"""Who is calling, and may they call now: authentication (the `keys` topic, KeysLog) and the rate
limits, in the order that keeps each limit meaningful.

- A request without a key (`Authorization` absent or empty) is anonymous: where anonymous reads are
  allowed (stats, which only public links answer) it counts against the public limit of its client
  address (the TCP peer, or what a trusted proxy put in X-Forwarded-For: ClientAddress), so guessing
  codes costs the same as reading public stats. Where a key is required, it is a failed
  authentication.
- A request with a key is authenticated (401 for an unknown, revoked, expired or malformed key: a
  bad credential is never silently read as "anonymous"); failures count per client address
  (FailedAuth: past its limit, 429 even for a right key); a known key counts against its own limit.
"""

from dataclasses import dataclass

from platformkit.apikeys import FailedAuth, Principal, Verdict
from platformkit.failures import ApiError

from analytics.ports import Authenticator, Hit


def rate_limited(verdict: Verdict, *, code: str, what: str) -> ApiError:
    return ApiError(
        f"rate limit exceeded for {what}",
        status=429,
        code=code,
        headers={"Retry-After": str(max(1, verdict.retry_after))},
    )


@dataclass(frozen=True, kw_only=True)
class Callers:
    keys: Authenticator
    failed_auth: FailedAuth
    per_key: Hit  # stats and /top with a key, per key id
    per_address: Hit  # stats without a key, per client address

    async def identify(self, *, address: str, header: str | None, key_required: bool) -> Principal | None:
        """The caller's principal (None: anonymous, only when not `key_required`), or ApiError
        401/429. `address`: the client address (ClientAddress); `header`: `Authorization`."""
        if header is None and not key_required:
            verdict = await self.per_address(address)
            if not verdict.allowed:
                raise rate_limited(
                    verdict, code="public_rate_limited", what="reads without an API key from this address"
                )
            return None
        self.failed_auth.check(address)
        try:
            principal = await self.keys.authenticate(header)
        except ApiError as refused:
            raise (await self.failed_auth.failed(address) or refused) from None
        verdict = await self.per_key(principal.key_id)
        if not verdict.allowed:
            raise rate_limited(verdict, code="rate_limited", what="this API key")
        return principal
