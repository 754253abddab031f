"""The load a fault lands on: redirects (tallied per code, as the load test does) and link updates
(each link's last acknowledged target remembered), until told to stop.

Loopback only: every base URL passes loadtest's guard. Redirects go either at a fixed rate (open
loop: a slow stack does not slow the sender) or as fast as `concurrency` requests in flight allow
(closed loop: the target's highest sustained rate).
"""

import asyncio
import time
from collections import Counter
from collections.abc import Collection
from dataclasses import dataclass, field

import aiohttp

from loadtest.browser import BROWSER_USER_AGENTS, REDIRECT_OK
from loadtest.guard import require_loopback
from loadtest.tally import RedirectTally

REQUEST_TIMEOUT_S = 5.0
MAX_IN_FLIGHT = 512
HEADERS = {"User-Agent": BROWSER_USER_AGENTS[0], "Accept": "text/html"}


@dataclass
class Failures:
    """Requests that did not succeed: how many, why (status or error name), and when the last one
    happened (monotonic), which bounds how long clients saw the fault."""

    count: int = 0
    reasons: Counter[str] = field(default_factory=Counter)
    last_at: float | None = None

    def add(self, reason: str) -> None:
        self.count += 1
        self.reasons[reason] += 1
        self.last_at = time.monotonic()


class RedirectLoad:
    def __init__(
        self, base_url: str, codes: list[str], tally: RedirectTally, *, rate: float | None, concurrency: int = 32
    ) -> None:
        self.base = require_loopback(base_url)
        self.codes = codes
        self.tally = tally
        self.rate = rate
        self.concurrency = concurrency
        self.sent = 0
        self.failures = Failures()
        self.started_at = self.stopped_at = 0.0
        self._stop = asyncio.Event()
        self._next = 0

    def stop(self) -> None:
        self._stop.set()

    @property
    def achieved_rate(self) -> float:
        return self.sent / max(1e-9, self.stopped_at - self.started_at)

    def _code(self) -> str:
        code = self.codes[self._next % len(self.codes)]
        self._next += 1
        return code

    async def one(self, session: aiohttp.ClientSession, code: str) -> None:
        self.sent += 1
        self.tally.started(code)
        try:
            async with session.get(f"{self.base}/{code}", allow_redirects=False, headers=HEADERS) as response:
                status = response.status
                await response.read()
        except (aiohttp.ClientError, TimeoutError) as exc:
            self.failures.add(type(exc).__name__)
            return
        if status in REDIRECT_OK:
            self.tally.served(code)
            return
        if 400 <= status < 500:
            self.tally.refused(code)
        self.failures.add(f"HTTP {status}")

    async def run(self, session: aiohttp.ClientSession) -> None:
        self.started_at = time.monotonic()
        try:
            if self.rate is None:
                await asyncio.gather(*(self._worker(session) for _ in range(self.concurrency)))
            else:
                await self._open_loop(session, self.rate)
        finally:
            self.stopped_at = time.monotonic()

    async def _worker(self, session: aiohttp.ClientSession) -> None:
        while not self._stop.is_set():
            await self.one(session, self._code())

    async def _open_loop(self, session: aiohttp.ClientSession, rate: float) -> None:
        in_flight: set[asyncio.Task[None]] = set()
        start, launched = time.monotonic(), 0
        while not self._stop.is_set():
            due = int((time.monotonic() - start) * rate) - launched
            for _ in range(max(0, due)):
                launched += 1
                if len(in_flight) >= MAX_IN_FLIGHT:  # the stack is not answering: count, do not pile up
                    self.sent += 1
                    self.failures.add("client backlog full")
                    continue
                task = asyncio.create_task(self.one(session, self._code()))
                in_flight.add(task)
                task.add_done_callback(in_flight.discard)
            await asyncio.sleep(min(0.01, 1 / rate))
        if in_flight:
            await asyncio.gather(*in_flight)


@dataclass
class LinkState:
    """What a link must redirect to once the stack has settled: the last acknowledged target, or
    one written after it whose answer never came (it may or may not have been applied)."""

    acked: str
    unsure: list[str] = field(default_factory=list)

    def acceptable(self) -> set[str]:
        return {self.acked, *self.unsure}


class WriteLoad:
    """PATCH each link's target in turn, one request at a time (so each link's updates are
    ordered), at `rate` per second."""

    def __init__(self, base_url: str, api_key: str, links: dict[str, str], *, rate: float, tag: str) -> None:
        self.base = require_loopback(base_url)
        self.api_key = api_key
        self.links = {code: LinkState(url) for code, url in links.items()}
        self.rate = rate
        self.tag = tag
        self.sent = 0
        self.acked = 0
        self.failures = Failures()
        self.refusals_without_retry_after = 0
        self._stop = asyncio.Event()

    def stop(self) -> None:
        self._stop.set()

    async def run(self, session: aiohttp.ClientSession) -> None:
        if self.rate <= 0 or not self.links:
            return
        codes, version = list(self.links), 0
        start = time.monotonic()
        while not self._stop.is_set():
            code = codes[version % len(codes)]
            version += 1
            await self.one(session, code, f"https://example.com/chaos/{self.tag}/{code}/v{version}")
            pause = start + version / self.rate - time.monotonic()
            if pause > 0:
                try:
                    await asyncio.wait_for(self._stop.wait(), pause)
                except TimeoutError:
                    pass

    async def one(self, session: aiohttp.ClientSession, code: str, url: str) -> None:
        self.sent += 1
        state = self.links[code]
        try:
            async with session.patch(
                f"{self.base}/api/v1/links/{code}",
                json={"url": url},
                headers={"Authorization": f"Bearer {self.api_key}"},
            ) as response:
                status = response.status
                retry_after = response.headers.get("Retry-After")
                await response.read()
        except (aiohttp.ClientError, TimeoutError) as exc:
            state.unsure.append(url)
            self.failures.add(type(exc).__name__)
            return
        if status == 200:
            self.links[code] = LinkState(url)
            self.acked += 1
            return
        if status >= 500 and status != 503:
            state.unsure.append(url)  # an unexpected error: maybe applied, maybe not
        if status == 503 and retry_after is None:
            self.refusals_without_retry_after += 1
        self.failures.add(f"HTTP {status}")


def session(*, limit: int = MAX_IN_FLIGHT, timeout_s: float = REQUEST_TIMEOUT_S) -> aiohttp.ClientSession:
    return aiohttp.ClientSession(
        timeout=aiohttp.ClientTimeout(total=timeout_s),
        connector=aiohttp.TCPConnector(limit=limit, force_close=False),
    )


async def stale_links(
    replica_urls: list[str],
    links: dict[str, LinkState],
    tally: RedirectTally,
    *,
    timeout: float,
    local_hosts: Collection[str] = (),
) -> dict[str, str]:
    """Ask every redirect replica directly for every link until each answers an acceptable target,
    or `timeout` passes. Returns code -> what a replica still answers wrongly (empty: no update
    lost). These requests are real redirects: they go into `tally` like the load's."""
    deadline = time.monotonic() + timeout
    pending = {(require_loopback(url, local_hosts=local_hosts), code) for url in replica_urls for code in links}
    wrong: dict[str, str] = {}
    async with session(limit=16) as http:
        while pending:
            wrong = {}
            for base, code in sorted(pending):
                tally.started(code)
                try:
                    async with http.get(f"{base}/{code}", allow_redirects=False, headers=HEADERS) as response:
                        status, location = response.status, response.headers.get("Location")
                except (aiohttp.ClientError, TimeoutError) as exc:
                    wrong[code] = f"{base}: {type(exc).__name__}"
                    continue
                if status in REDIRECT_OK:
                    tally.served(code)
                elif 400 <= status < 500:
                    tally.refused(code)
                if status in REDIRECT_OK and location in links[code].acceptable():
                    pending.discard((base, code))
                else:
                    wrong[code] = f"{base}: {status} {location}"
            if not pending or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.5)
    return wrong
