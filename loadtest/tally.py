"""Per-code redirect outcomes seen by the load generator, and their files.

Every redirect request is counted three ways, per short code:
- `attempts`: requests started;
- `ok`: answered 301/302 (a redirect was served, so exactly one click must be counted);
- `no_click`: answered with a status that serves no redirect (4xx), so no click.
The rest (`attempts - ok - no_click`: timeouts, dropped connections, 5xx from the proxy, requests
cut off at stop) are *indeterminate*: the service may or may not have served them.

Each locust process writes its tally to `tally-<pid>.json` in the run's directory when the test
stops; the runner merges every file of the run.
"""

import json
import os
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

TALLY_GLOB = "tally-*.json"


@dataclass(frozen=True)
class CodeOutcome:
    ok: int
    no_click: int
    attempts: int

    @property
    def indeterminate(self) -> int:
        return max(0, self.attempts - self.ok - self.no_click)


@dataclass
class RedirectTally:
    attempts: Counter[str] = field(default_factory=Counter)
    ok: Counter[str] = field(default_factory=Counter)
    no_click: Counter[str] = field(default_factory=Counter)

    def started(self, code: str) -> None:
        self.attempts[code] += 1

    def served(self, code: str) -> None:
        self.ok[code] += 1

    def refused(self, code: str) -> None:
        self.no_click[code] += 1

    def merge(self, other: "RedirectTally") -> None:
        self.attempts.update(other.attempts)
        self.ok.update(other.ok)
        self.no_click.update(other.no_click)

    def outcomes(self) -> dict[str, CodeOutcome]:
        """Every code that was requested at least once."""
        return {
            code: CodeOutcome(ok=self.ok[code], no_click=self.no_click[code], attempts=self.attempts[code])
            for code in sorted(self.attempts)
        }

    def to_json(self) -> dict[str, dict[str, int]]:
        return {"attempts": dict(self.attempts), "ok": dict(self.ok), "no_click": dict(self.no_click)}

    @classmethod
    def from_json(cls, data: object) -> "RedirectTally":
        if not isinstance(data, dict):
            raise ValueError("a tally file holds a JSON object")
        tally = cls()
        for name in ("attempts", "ok", "no_click"):
            counts = data.get(name, {})
            if not isinstance(counts, dict) or not all(
                isinstance(k, str) and isinstance(v, int) and v >= 0 for k, v in counts.items()
            ):
                raise ValueError(f"tally field {name!r} must map codes to non-negative integers")
            getattr(tally, name).update(counts)
        return tally


def write_tally(directory: Path, tally: RedirectTally, *, name: str = "") -> Path:
    """Write `tally-<name or pid>.json` atomically (temp file + rename): never half a file."""
    directory.mkdir(parents=True, exist_ok=True)
    target = directory / f"tally-{name or os.getpid()}.json"
    temp = target.with_suffix(".tmp")
    temp.write_text(json.dumps(tally.to_json()))
    temp.replace(target)
    return target


def read_tallies(paths: Iterable[Path]) -> RedirectTally:
    merged = RedirectTally()
    for path in paths:
        merged.merge(RedirectTally.from_json(json.loads(path.read_text())))
    return merged


def read_run_tallies(directory: Path) -> RedirectTally:
    """Merge every process's tally file of one run."""
    return read_tallies(sorted(directory.glob(TALLY_GLOB)))
