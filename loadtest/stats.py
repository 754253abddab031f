"""Reading locust's `--csv` output (`<prefix>_stats.csv`, `<prefix>_failures.csv`)."""

import csv
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class RequestStats:
    """One row of `<prefix>_stats.csv` (times in milliseconds)."""

    kind: str
    name: str
    requests: int
    failures: int
    rps: float
    p50_ms: float | None
    p95_ms: float | None
    p99_ms: float | None
    max_ms: float | None

    @property
    def error_rate(self) -> float:
        return self.failures / self.requests if self.requests else 0.0

    def to_json(self) -> dict[str, Any]:
        return {
            **asdict(self),
            "rps": round(self.rps, 1),
            "max_ms": None if self.max_ms is None else round(self.max_ms, 1),
            "error_rate": round(self.error_rate, 6),
        }


@dataclass(frozen=True)
class Failure:
    method: str
    name: str
    error: str
    occurrences: int


@dataclass(frozen=True)
class RunStats:
    total: RequestStats
    by_name: tuple[RequestStats, ...]
    failures: tuple[Failure, ...]


def _number(raw: str | None) -> float | None:
    if raw is None or raw.strip() in ("", "N/A"):
        return None
    return float(raw)


def _row(row: dict[str, str]) -> RequestStats:
    return RequestStats(
        kind=row.get("Type", ""),
        name=row["Name"],
        requests=int(row["Request Count"]),
        failures=int(row["Failure Count"]),
        rps=float(row["Requests/s"]),
        p50_ms=_number(row.get("50%")),
        p95_ms=_number(row.get("95%")),
        p99_ms=_number(row.get("99%")),
        max_ms=_number(row.get("Max Response Time")),
    )


def read_run_stats(prefix: Path) -> RunStats:
    """Parse the final stats of a run: `<prefix>_final_{stats,failures}.csv`, written by our
    locustfile at exit in locust's `--csv` format (locust's own `<prefix>_stats.csv` is refreshed
    once a second and may miss the last second of the run)."""
    stats_file = prefix.with_name(prefix.name + "_final_stats.csv")
    failures_file = prefix.with_name(prefix.name + "_final_failures.csv")
    with stats_file.open(newline="") as fh:
        rows = [_row(r) for r in csv.DictReader(fh)]
    total = next((r for r in rows if r.name == "Aggregated"), None)
    if total is None:
        raise ValueError(f"{stats_file} has no Aggregated row")
    failures: list[Failure] = []
    if failures_file.exists():
        with failures_file.open(newline="") as fh:
            failures = [Failure(r["Method"], r["Name"], r["Error"], int(r["Occurrences"])) for r in csv.DictReader(fh)]
    return RunStats(total, tuple(r for r in rows if r.name != "Aggregated"), tuple(failures))
