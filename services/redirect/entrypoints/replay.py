"""`python -m redirect replay-links`: rebuild the Redis read model from offset 0 of `links`.

Idempotent (the same offset-guarded Lua apply the replicas use: a version already in Redis is
never replaced by an older one), prints progress per partition every second (or every 10 000 records) while it runs, and
exits once it has applied everything up to the end offsets taken when it started. Poison records
are reported, not dead-lettered again (the live replicas did that when they first met them).
Running replicas keep serving meanwhile; their L1 is not touched.
"""

import asyncio
import contextlib
import sys
import time
from typing import TextIO

from redirect.bootstrap import bootstrap_replay
from redirect.metrics import RedirectStats
from redirect.service_layer.links_projector import LinksProjector
from redirect.settings import RedirectSettings


def progress_line(projector: LinksProjector, stats: RedirectStats, started: float) -> str:
    targets = projector.targets or {}
    parts = []
    for p, end in sorted(targets.items()):
        done = min(projector.next_offsets.get(p, 0), end)
        pct = 100.0 if end == 0 else 100.0 * done / end
        parts.append(f"p{p} {done}/{end} ({pct:.0f}%)")
    return (
        f"replay-links: {' | '.join(parts) or 'starting'} | {stats.links_applied} applied, "
        f"{stats.links_written} written | {time.monotonic() - started:.1f}s"
    )


async def replay_links(
    settings: RedirectSettings, *, out: TextIO = sys.stdout, every: float = 1.0, every_records: int = 10_000
) -> int:
    """Replay; return the number of records applied."""
    replay = bootstrap_replay(settings)
    stats, projector = replay.stats, replay.projector
    projector.start_from({})
    started = time.monotonic()

    async def report() -> None:
        """A progress line every `every` seconds, or sooner after each `every_records` records."""
        last_time, last_count = time.monotonic(), 0
        while True:
            await asyncio.sleep(0.1)
            now = time.monotonic()
            if now - last_time >= every or stats.links_applied - last_count >= every_records:
                print(progress_line(projector, stats, started), file=out, flush=True)
                last_time, last_count = now, stats.links_applied

    print(f"replay-links: rebuilding Redis from offset 0 of topic {settings.topic_links!r}", file=out, flush=True)
    reporter = asyncio.create_task(report())
    try:
        await projector.run(until_caught_up=True, fetch_timeout_ms=200)
    finally:
        reporter.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await reporter
        await replay.aclose()
    print(progress_line(projector, stats, started), file=out, flush=True)
    print(f"replay-links: done, caught up to {projector.targets}", file=out, flush=True)
    return stats.links_applied
