"""API keys: `Authorization: Bearer <key>`, compared in constant time (failed attempts are
limited per client address by platformkit.apikeys.FailedAuth)."""

import hashlib
import hmac

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
