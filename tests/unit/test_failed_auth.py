"""Failed authentications per client address: 401 up to the limit, then 429 for the window."""

from dataclasses import dataclass

import pytest
from platformkit.apikeys import FailedAuth
from platformkit.errors import ApiError


@dataclass(frozen=True)
class Verdict:
    allowed: bool
    retry_after: int = 0


class Window:
    """A stand-in for the shared window: `limit` failures per address, then refused for 30 s."""

    def __init__(self, limit: int) -> None:
        self.limit, self.hits = limit, {}  # type: dict[str, int]

    async def hit(self, address: str) -> Verdict:
        self.hits[address] = self.hits.get(address, 0) + 1
        return Verdict(True) if self.hits[address] <= self.limit else Verdict(False, 30)


async def test_past_the_limit_the_address_is_refused_until_the_window_admits_it() -> None:
    now = [0.0]
    window = Window(limit=3)
    guard = FailedAuth(window.hit, clock=lambda: now[0])
    assert [await guard.failed("198.51.100.7") for _ in range(3)] == [None, None, None]
    refused = await guard.failed("198.51.100.7")
    assert refused is not None and (refused.status, refused.code) == (429, "auth_rate_limited")
    assert refused.headers == {"Retry-After": "30"}
    with pytest.raises(ApiError) as blocked:  # even a request with the right key
        guard.check("198.51.100.7")
    assert blocked.value.status == 429
    guard.check("203.0.113.9")  # other addresses are not affected
    now[0] += 30.5
    guard.check("198.51.100.7")  # the window passed
