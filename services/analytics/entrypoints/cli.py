"""`python -m analytics serve`: the API under the server ANALYTICS_SERVER names (hypercorn)."""

import argparse

from platformkit.server import serve
from telemetry.logs import setup_logging


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m analytics")
    sub = p.add_subparsers(dest="command", required=True)
    sub.add_parser("serve", help="serve the analytics API")
    p.parse_args(argv)
    from analytics.settings import AnalyticsSettings

    settings = AnalyticsSettings()
    setup_logging("analytics", settings.log_level)
    serve(
        factory="analytics.entrypoints.app:create_app",
        server=settings.analytics_server,
        host=settings.analytics_host,
        port=settings.analytics_port,
        log_level=settings.log_level,
    )
