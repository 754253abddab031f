"""`python -m shorten serve` (REST API) | `python -m shorten relay` (outbox -> Kafka)."""

import argparse

import uvloop
from platformkit.server import serve
from telemetry.logs import setup_logging

from shorten.settings import ShortenSettings


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m shorten")
    parser.add_argument("command", choices=["serve", "relay"])
    args = parser.parse_args(argv)
    settings = ShortenSettings()
    setup_logging("shorten" if args.command == "serve" else "shorten-relay", settings.log_level)
    if args.command == "serve":
        serve(
            factory="shorten.entrypoints.app:app_from_env",
            server=settings.shorten_server,
            host=settings.shorten_host,
            port=settings.shorten_port,
            log_level=settings.log_level,
        )
    else:
        from shorten.entrypoints.relay import run

        uvloop.run(run(settings))  # the API processes run on uvloop too


if __name__ == "__main__":
    main()
