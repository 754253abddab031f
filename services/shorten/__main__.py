"""`python -m shorten serve` (REST API) | `relay` (outbox -> Kafka) | `keys ...` (API keys, `just keys`)
| `import links.csv` (bulk import through the API, `just import`)."""

import argparse
import sys

import uvloop
from platformkit.server import serve
from telemetry.logs import setup_logging

from shorten.settings import ShortenSettings


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["keys"]:
        from shorten.entrypoints.keys_cli import main as keys_main

        sys.exit(keys_main(argv[1:]))
    if argv[:1] == ["import"]:
        from shorten.entrypoints.import_cli import main as import_main

        sys.exit(import_main(argv[1:]))
    parser = argparse.ArgumentParser(prog="python -m shorten")
    parser.add_argument("command", choices=["serve", "relay", "keys"])
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
        from shorten.entrypoints.run_relay import run

        uvloop.run(run(settings))  # the API processes run on uvloop too


if __name__ == "__main__":
    main()
