"""One scenario's outcome as a table row, and the table `just chaos` prints (pure)."""

import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field

from loadtest.tally import CodeOutcome

COLUMNS = (
    "scenario",
    "requests",
    "failed requests",
    "clicks served",
    "clicks counted",
    "lost",
    "counted twice",
    "seconds to recover",
)


@dataclass(frozen=True)
class ClickBalance:
    served: int
    counted: int
    lost: int  # served (answered 301/302) but never counted
    twice: int  # counted beyond what was served, even allowing every request of unknown fate


def balance(outcomes: Mapping[str, CodeOutcome], counted: Mapping[str, int | None]) -> ClickBalance:
    """Per code: a click served and not counted is lost; one counted above served + indeterminate
    (requests cut off by the fault: the client cannot know whether they were served) is counted
    twice. A code analytics does not report counts as all lost."""
    served = lost = twice = total = 0
    for code, outcome in outcomes.items():
        got = counted.get(code) or 0
        served += outcome.ok
        total += got
        lost += max(0, outcome.ok - got)
        twice += max(0, got - outcome.ok - outcome.indeterminate)
    return ClickBalance(served=served, counted=total, lost=lost, twice=twice)


@dataclass(frozen=True)
class Row:
    scenario: str
    requests: int
    failed: int
    clicks: ClickBalance
    recover_seconds: float
    passed: bool
    notes: tuple[str, ...] = field(default_factory=tuple)
    # Figures tests assert on: redirect_failures, update_failures, updates_acked, redirect_rate
    details: dict[str, float] = field(default_factory=dict)

    def cells(self) -> list[str]:
        c = self.clicks
        return [
            self.scenario,
            f"{self.requests:,}",
            f"{self.failed:,}",
            f"{c.served:,}",
            f"{c.counted:,}",
            f"{c.lost:,}",
            f"{c.twice:,}",
            f"{self.recover_seconds:.1f}",
        ]

    def to_json(self) -> dict[str, object]:
        return {**asdict(self), "notes": list(self.notes)}


def table(rows: Sequence[Row], *, markdown: bool = True) -> str:
    """The result table (markdown: also what docs/reliability.md holds), then one line of notes
    per scenario."""
    header = [*COLUMNS, "ok"]
    body = [[*r.cells(), "yes" if r.passed else "NO"] for r in rows]
    if markdown:
        lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
        lines += ["| " + " | ".join(cells) + " |" for cells in body]
    else:
        widths = [max(len(str(x)) for x in col) for col in zip(header, *body, strict=True)]
        lines = ["  ".join(str(x).ljust(w) for x, w in zip(cells, widths, strict=True)) for cells in [header, *body]]
    notes = [f"- {r.scenario}: " + "; ".join(r.notes) for r in rows if r.notes]
    return "\n".join(lines + (["", *notes] if notes else []))


def dump(rows: Sequence[Row]) -> str:
    return json.dumps([r.to_json() for r in rows], indent=2)
