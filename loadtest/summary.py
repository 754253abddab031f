"""The run's summary: what was asked, what locust measured, and the click-count check."""

import json
from collections.abc import Mapping
from dataclasses import asdict
from pathlib import Path
from typing import Any

from loadtest.analytics import StoreCounts
from loadtest.check import CountCheck
from loadtest.settings import Profile
from loadtest.stats import RunStats
from loadtest.tally import RedirectTally

MAX_FAILURE_ROWS = 10


def build_summary(
    *,
    run_id: str,
    profile: Profile,
    started_at: str,
    wall_seconds: float,
    stats: RunStats,
    tally: RedirectTally,
    seeded: int,
    check: CountCheck,
    artifacts: Path,
    store_counts: Mapping[str, StoreCounts] | None = None,
) -> dict[str, Any]:
    """`store_counts`: both analytics stores' counts of the mismatched codes (for the report)."""
    outcomes = tally.outcomes().values()
    total = stats.total
    return {
        "run_id": run_id,
        "profile": profile.name,
        "started_at": started_at,
        "wall_seconds": round(wall_seconds, 1),
        "parameters": asdict(profile),
        "requests": {
            "total": total.requests,
            "failures": total.failures,
            "error_rate": round(total.error_rate, 6),
            "rps": round(total.rps, 1),
            "p50_ms": total.p50_ms,
            "p95_ms": total.p95_ms,
            "p99_ms": total.p99_ms,
            "max_ms": None if total.max_ms is None else round(total.max_ms, 1),
        },
        "by_name": [row.to_json() for row in stats.by_name],
        "failures": [asdict(f) for f in sorted(stats.failures, key=lambda f: -f.occurrences)[:MAX_FAILURE_ROWS]],
        "redirects": {
            "codes_requested": len(outcomes),
            "attempts": sum(o.attempts for o in outcomes),
            "served": sum(o.ok for o in outcomes),
            "no_click": sum(o.no_click for o in outcomes),
            "indeterminate": sum(o.indeterminate for o in outcomes),
        },
        "seeded_codes": seeded,
        "check": {
            **check.to_json(),
            "store_counts": {
                code: {"postgres_lifetime": c.lifetime, "clickhouse_range": c.in_range}
                for code, c in sorted((store_counts or {}).items())[:MAX_FAILURE_ROWS]
            },
        },
        "passed": check.passed,
        "artifacts": str(artifacts),
    }


def _ms(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.0f} ms"


def format_summary(summary: dict[str, Any]) -> str:
    """A few lines for the terminal."""
    req = summary["requests"]
    red = summary["redirects"]
    check = summary["check"]
    lines = [
        f"load test {summary['run_id']} (profile {summary['profile']}, {summary['wall_seconds']} s wall)",
        f"  requests     {req['total']} at {req['rps']} req/s; errors {req['failures']} ({req['error_rate']:.2%})",
        f"  latency      p50 {_ms(req['p50_ms'])}  p95 {_ms(req['p95_ms'])}  p99 {_ms(req['p99_ms'])}",
    ]
    for row in summary["by_name"]:
        lines.append(
            f"    {row['kind']:<5} {row['name']:<22} {row['requests']:>8} req  {row['rps']:>8.1f}/s  "
            f"err {row['error_rate']:.2%}  p50 {_ms(row['p50_ms'])}  p95 {_ms(row['p95_ms'])}  p99 {_ms(row['p99_ms'])}"
        )
    for f in summary["failures"]:
        lines.append(f"    failure x{f['occurrences']}: {f['method']} {f['name']}: {f['error']}")
    lines += [
        f"  redirects    {red['served']} served over {red['codes_requested']} codes "
        f"({red['no_click']} without redirect, {red['indeterminate']} of unknown outcome)",
        f"  click check  {'PASSED' if check['passed'] else 'FAILED'}: {check['reason']} "
        f"(waited {check['waited_seconds']} s, {check['polls']} polls)",
    ]
    for mismatch in check["mismatches"]:
        stores = check["store_counts"].get(mismatch["code"])
        lines.append(
            f"    code {mismatch['code']}: analytics {mismatch['counted']} vs served {mismatch['served']}"
            f" (+{mismatch['indeterminate']} unknown)"
            + (f"; PostgreSQL {stores['postgres_lifetime']}, ClickHouse {stores['clickhouse_range']}" if stores else "")
        )
    lines.append(f"  artifacts    {summary['artifacts']}")
    return "\n".join(lines)


def save_summary(summary: dict[str, Any], path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(summary, indent=2) + "\n")
    return path
