"""`python -m composectl secrets`, `init` and `migrate` (one-shot) | `python -m composectl health-server`."""

import argparse
import asyncio
import sys
from pathlib import Path

from composectl.settings import ComposeSettings


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="composectl")
    sub = parser.add_subparsers(dest="command", required=True)
    secrets_command = sub.add_parser("secrets", help="generate the stack's missing secrets (file names are printed)")
    secrets_command.add_argument("--dir", type=Path, default=None, help="default: /run/shortlink-secrets")
    sub.add_parser("init", help="wait for Kafka/PostgreSQL/ClickHouse, create topics, migrate")
    sub.add_parser("migrate", help="wait for PostgreSQL/ClickHouse, migrate (no topics: Kubernetes)")
    sub.add_parser("health-server", help="serve the combined /healthz and /readyz")
    args = parser.parse_args(argv)
    if args.command == "secrets":  # runs before anything else exists: needs no settings
        from composectl import secrets

        secrets.ensure(args.dir or secrets.SECRETS_DIR)
        return 0
    settings = ComposeSettings()
    if args.command == "init":
        from composectl import init

        asyncio.run(init.run(settings))
    elif args.command == "migrate":
        from composectl import init

        asyncio.run(init.run_migrations(settings))
    else:
        from platformkit.server import serve

        serve(
            factory="composectl.health:create_app",
            server="hypercorn",
            host=settings.stackcheck_host,
            port=settings.stackcheck_port,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
