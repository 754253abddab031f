"""The codes one locust process reads: the seeded set (hottest first) plus codes its writers created.

A freshly created code is not readable at once (shorten -> outbox -> Kafka -> redirect's Redis),
so it joins the Zipf pool only `fresh_after` seconds after it was created.
"""

import random
from collections import deque
from collections.abc import Callable, Iterable

from loadtest.zipf import ZipfPicker


class CodePool:
    def __init__(self, seeded: Iterable[str], *, s: float, fresh_after: float, clock: Callable[[], float]) -> None:
        self._picker: ZipfPicker[str] = ZipfPicker(seeded, s=s)
        self._pending: deque[tuple[float, str]] = deque()
        self._fresh_after = fresh_after
        self._clock = clock
        self.created = 0

    def __len__(self) -> int:
        return len(self._picker)

    @property
    def pending(self) -> int:
        return len(self._pending)

    def created_code(self, code: str) -> None:
        """A writer created `code`; readers may request it after the propagation delay."""
        self.created += 1
        self._pending.append((self._clock() + self._fresh_after, code))

    def pick(self, rng: random.Random) -> str:
        now = self._clock()
        while self._pending and self._pending[0][0] <= now:
            self._picker.add(self._pending.popleft()[1])
        return self._picker.pick(rng)
