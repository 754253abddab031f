"""`python -m chaos [--ci] [--only NAME ...] [--list]`: run the fault scenarios on the running
stack, print the table, keep the rows as JSON in .local/chaos/."""

import argparse
import asyncio
import os
import sys
import time

from stackctl.config import StackSettings

from chaos.cluster_scenarios import CLUSTER_SCENARIOS
from chaos.report import dump, table
from chaos.run import run_all
from chaos.scenarios import SCENARIOS, by_name
from chaos.stack import Stack


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="chaos", description=__doc__)
    parser.add_argument("--ci", action="store_true", help="only the short subset CI runs")
    parser.add_argument("--only", nargs="+", metavar="NAME", help="only these scenarios (see --list)")
    parser.add_argument("--list", action="store_true", help="list the scenarios and exit")
    parser.add_argument("--max-seconds", type=float, default=1800, help="stop the whole run after this long")
    parser.add_argument(
        "--profile",
        choices=("default", "cluster"),
        help="the stack's profile (STACK_PROFILE); cluster: the cluster's own faults (docs/cluster.md)",
    )
    args = parser.parse_args(argv)
    if args.profile:
        os.environ["STACK_PROFILE"] = args.profile
    settings = StackSettings()
    catalogue = CLUSTER_SCENARIOS if settings.is_cluster else SCENARIOS
    if args.list:
        for s in catalogue:
            print(f"{s.name:<36} {'ci ' if s.ci else '   '}{s.what}")
        return 0
    scenarios = by_name(args.only, catalogue) if args.only else [s for s in catalogue if s.ci or not args.ci]
    started = time.monotonic()
    rows = asyncio.run(asyncio.wait_for(run_all(Stack(settings), scenarios), args.max_seconds))
    out = settings.path("chaos", time.strftime("%Y%m%dT%H%M%S") + ".json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(dump(rows))
    print()
    print(table(rows))
    print(f"\n{len(rows)} scenarios in {time.monotonic() - started:.0f}s; rows in {out}")
    return 0 if all(r.passed for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
