"""Serve an ASGI app factory under the server a setting names: hypercorn, granian or uvicorn.

hypercorn is the customer's server and works for every service; the redirect service
defaults to the fastest one measured by `just bench redirect` (see docs/benchmarks).
"""

import logging

from platformkit.settings import ServerName

log = logging.getLogger(__name__)


def serve(*, factory: str, server: ServerName, host: str, port: int, log_level: str = "info") -> None:
    """Run `factory` ("package.module:function", returns an ASGI app) until SIGTERM/SIGINT."""
    log.info("serving %s with %s on %s:%d", factory, server, host, port)
    if server == "hypercorn":
        _serve_hypercorn(factory, host, port)
    elif server == "granian":
        from granian import Granian
        from granian.constants import Interfaces, Loops

        Granian(
            factory,
            address=host,
            port=port,
            interface=Interfaces.ASGI,
            workers=1,
            loop=Loops.uvloop,
            factory=True,
            log_level=log_level.lower(),  # type: ignore[arg-type]
        ).serve()
    elif server == "uvicorn":
        import uvicorn

        uvicorn.run(
            factory,
            factory=True,
            host=host,
            port=port,
            loop="uvloop",
            http="httptools",
            access_log=False,
            log_level=log_level.lower(),
        )
    else:  # pragma: no cover - ServerName is a Literal, settings validation refuses others
        raise ValueError(f"unknown server {server!r}")


def _load(factory: str) -> object:
    import importlib

    module_name, _, attr = factory.partition(":")
    return getattr(importlib.import_module(module_name), attr)()


def _serve_hypercorn(factory: str, host: str, port: int) -> None:
    import uvloop
    from hypercorn.asyncio import serve as hypercorn_serve
    from hypercorn.config import Config

    config = Config()
    config.bind = [f"{host}:{port}"]
    config.accesslog = None
    config.graceful_timeout = 5

    async def main() -> None:
        app = _load(factory)
        await hypercorn_serve(app, config)  # type: ignore[arg-type]

    uvloop.run(main())
