"""`python -m redirect serve` (a redirect replica) | `python -m redirect replay-links`."""

import argparse
import asyncio

from platformkit.server import serve
from telemetry.logs import setup_logging

from redirect.settings import RedirectSettings


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m redirect")
    parser.add_argument("command", choices=["serve", "replay-links"])
    args = parser.parse_args(argv)
    settings = RedirectSettings()
    setup_logging(
        f"redirect-{settings.redirect_replica_id}" if args.command == "serve" else "redirect-replay", settings.log_level
    )
    if args.command == "serve":
        serve(
            factory="redirect.entrypoints.app:app_from_env",
            server=settings.redirect_server,
            host=settings.redirect_host,
            port=settings.redirect_port,
            log_level=settings.log_level,
        )
    else:
        from redirect.entrypoints.replay import replay_links

        asyncio.run(replay_links(settings))


if __name__ == "__main__":
    main()
