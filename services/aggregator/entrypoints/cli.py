"""`python -m aggregator worker | replay-clicks --from ISO [--to ISO] [--code C ...]
| retention [--dry-run | --scheduled] | backfill-link-owners`."""

import argparse
import asyncio
from datetime import UTC, datetime

from telemetry.logs import setup_logging


def _parse_time(text: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not an ISO 8601 time: {text!r}") from exc
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m aggregator")
    sub = p.add_subparsers(dest="command", required=True)
    sub.add_parser("worker", help="run one faust worker (group = app id 'aggregator')")
    replay = sub.add_parser(
        "replay-clicks",
        help="re-read the clicks topic from a time and push it through the same idempotent sinks",
    )
    replay.add_argument("--from", dest="from_", type=_parse_time, required=True, help="ISO 8601 start")
    replay.add_argument("--to", type=_parse_time, default=None, help="ISO 8601 end (default: now)")
    replay.add_argument("--code", action="append", default=[], help="only these codes (repeatable)")
    replay.add_argument("--batch-size", type=int, default=500, help="records per batch")
    replay.add_argument(
        "--rebuild",
        action="store_true",
        help="the listed codes' sinks were emptied: count their clicks again (needs --code)",
    )
    retention = sub.add_parser("retention", help="drop old ClickHouse partitions, prune the id ledger")
    when = retention.add_mutually_exclusive_group()
    when.add_argument("--dry-run", action="store_true", help="print what would be removed")
    when.add_argument(
        "--scheduled", action="store_true", help="keep running; run the job at each AGGREGATOR_RETENTION_SCHEDULE time"
    )
    sub.add_parser(
        "backfill-link-owners", help="copy clicks.links_known's owners and tags into ClickHouse (once, after upgrading)"
    )
    return p


def main(argv: list[str] | None = None) -> None:
    args = parser().parse_args(argv)
    from aggregator.settings import AggregatorSettings

    settings = AggregatorSettings()
    worker = f"aggregator-{settings.aggregator_worker_id}"
    setup_logging(worker if args.command == "worker" else f"aggregator-{args.command}", settings.log_level)
    if args.command == "worker":
        from aggregator.entrypoints.run_worker import run

        run(settings)
    elif args.command == "replay-clicks":
        from aggregator.entrypoints.replay import replay_clicks

        code = asyncio.run(
            replay_clicks(
                settings,
                start=args.from_,
                end=args.to,
                codes=set(args.code),
                batch_size=args.batch_size,
                rebuild=args.rebuild,
            )
        )
        raise SystemExit(code)
    elif args.command == "backfill-link-owners":
        from aggregator.entrypoints.backfill_link_owners import backfill_link_owners

        asyncio.run(backfill_link_owners(settings))
    elif args.scheduled:
        from aggregator.entrypoints.retention import run_retention_on_schedule

        asyncio.run(run_retention_on_schedule(settings))
    else:
        from aggregator.entrypoints.retention import run_retention

        asyncio.run(run_retention(settings, dry_run=args.dry_run))
